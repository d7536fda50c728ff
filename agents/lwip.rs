//! `netconform-agent-lwip`: lwIP 2.1.3 (Debian's `liblwip0`) behind the agent protocol.
//!
//! `netconform certify --target lwip` starts it once per check inside the stack's network
//! namespace, on a tap (docs/agent-protocol.md, "A user-space stack on a tap"). It starts
//! lwIP's threaded core (`tcpip_init`) with the unix port's tap interface (`tapif`, opened
//! by the name the harness gives through `PRECONFIGURED_TAPIF`), the harness's MAC and
//! addresses, then answers the harness's requests on stdin and stdout:
//!
//! - socket calls through lwIP's BSD socket API (`lwip_socket`...), every socket
//!   non-blocking, the calls that wait through `lwip_poll` with the call's timeout; lwIP on
//!   Linux uses the system's errno values, so its errnos are Linux's already;
//! - state read under lwIP's core lock: every TCP pcb (listeners, bound, active,
//!   TIME-WAIT) with its queues, TCP_INFO as far as a pcb keeps it, the ARP table
//!   (`etharp_get_entry`: stable entries only), the route lookup (`ip4_route`,
//!   `ip6_route`) and the routes lwIP has (the interface's subnet and default gateway);
//! - the controls lwIP can honour: the default route (lwIP has one gateway per interface),
//!   flushing the ARP table. Every other one is `unsupported`, with the reason.
//!
//! The C side is agents/lwip/shim.c (struct access and the lwIP calls). lwIP's assertion
//! messages are `printf`s: before lwIP starts, the agent keeps the protocol on a private
//! copy of stdout and points file descriptor 1 at stderr, so they reach the harness's
//! quote of the agent's stderr instead of breaking the protocol.
//!
//! Built only where `pkg-config --exists lwip` holds at build time (build.rs); elsewhere
//! the binary says how to install lwIP and exits.

#[cfg(netconform_lwip)]
#[path = "lwip/agent.rs"]
mod agent;

fn main() {
    #[cfg(netconform_lwip)]
    std::process::exit(agent::main());
    #[cfg(not(netconform_lwip))]
    {
        eprintln!(
            "netconform-agent-lwip: liblwip-dev is not installed (apt-get install liblwip-dev), \
             so this agent was built without lwIP; install it and rebuild"
        );
        std::process::exit(3);
    }
}
