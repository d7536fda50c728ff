//! `netconform-agent-linux`: the reference agent of the external target.
//!
//! The harness starts it inside the stack's network namespace (see docs/agent-protocol.md);
//! it makes real Linux socket calls there (TCP and UDP) and answers the state queries and
//! controls the way the built-in Linux target does, over the `netconform-agent/1.2` protocol
//! on stdin and stdout. Certifying the kernel through it and through `--target linux` gives
//! the same verdicts, which is what tests/external_target.rs checks.
//!
//! An agent for another stack looks the same: read [`AgentEnv`], open the stack on its
//! interface, implement [`AgentStack`] (only `call` is required; the rest defaults to
//! `unsupported`), then [`serve_stdio`]. Log to stderr: stdout belongs to the protocol.

use netconform::dut::agent::{AgentEnv, AgentInfo, AgentStack, serve_stdio};
use netconform::dut::linux::KernelStack;
use netconform::dut::{CallOutcome, Control, DutError, SocketCall, StateAnswer, StateQuery};

/// The kernel of the namespace the agent runs in.
struct LinuxAgent {
    kernel: KernelStack,
}

impl AgentStack for LinuxAgent {
    fn info(&self) -> AgentInfo {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        AgentInfo {
            stack: "linux".into(),
            version: release.trim().to_string(),
            environment: vec![format!("interface = {}", self.kernel.link().name)],
        }
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.kernel.call(call)
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.kernel.query(query)
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.kernel.control(control)
    }
}

fn main() {
    let env = match AgentEnv::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!(
                "netconform-agent-linux: {e} (the harness sets it; see docs/agent-protocol.md)"
            );
            std::process::exit(2);
        }
    };
    // The harness already put the addresses on the interface and pinned the sysctls: the
    // kernel needs nothing else.
    let kernel = match KernelStack::open_here(&env.namespace, &env.interface) {
        Ok(kernel) => kernel,
        Err(e) => {
            eprintln!("netconform-agent-linux: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = serve_stdio(&mut LinuxAgent { kernel }) {
        eprintln!("netconform-agent-linux: {e}");
        std::process::exit(1);
    }
}
