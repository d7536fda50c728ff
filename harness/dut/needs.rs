//! What a check needs from the device under test: its set-up (IPv6, a pre-resolved peer,
//! pinned settings) and its shape (a host, a switch with N ports, a router, a TLS stack).
//!
//! The checks state their needs in these terms and each device under test builds itself
//! from them, so the type lives with the devices, not with the checks.

/// What a check needs from the set-up of its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Needs {
    /// IPv6 on the stack. Checks that do not need it get a stack with IPv6 off, so its
    /// multicast listener reports never interleave with their traces.
    pub ipv6: bool,
    /// The stack already knows the peer's link-layer address (no ARP or neighbour
    /// discovery exchange before the first answer).
    pub peer_preresolved: bool,
    /// Settings the check pins on the stack, as `(name, value)` (for Linux: per-namespace
    /// sysctls such as `net.ipv4.tcp_early_retrans`); recorded in the report's environment.
    pub settings: &'static [(&'static str, &'static str)],
    /// A switch with this many ports and this ageing time (`None`: a host stack). On a
    /// target that is not such a switch the check's first multi-port event is unsupported.
    pub switch: Option<SwitchNeeds>,
    /// A router with this many segments (`None`: a host stack). On a target that is not a
    /// router the check's first query for its ports is unsupported.
    pub router: Option<RouterNeeds>,
    /// A TLS stack (client and server) rather than a bare host stack. On a target without
    /// one the check's exchange is unsupported.
    pub tls: bool,
}

impl Needs {
    /// What the check needs, in a few words, for an unsupported verdict's reason.
    pub fn describe(&self) -> String {
        if self.tls {
            "a TLS service".into()
        } else if let Some(s) = self.switch {
            format!("a switch with {} ports", s.ports)
        } else if let Some(r) = self.router {
            format!("a router with {} segments", r.segments)
        } else {
            "an IP host on an Ethernet link".into()
        }
    }
}

/// What a router check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouterNeeds {
    /// Segments (ports), at least this many.
    pub segments: usize,
}

/// What a switch check needs: how many ports, and the ageing time its model assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SwitchNeeds {
    /// Ports, at least this many.
    pub ports: usize,
    /// The ageing time of the filtering database, in milliseconds (a multiple of 10: Linux
    /// counts it in centiseconds).
    pub ageing_ms: u32,
}

impl Needs {
    /// IPv4 only, resolution through ARP.
    pub const IPV4: Needs = Needs {
        ipv6: false,
        peer_preresolved: false,
        settings: &[],
        switch: None,
        router: None,
        tls: false,
    };

    /// What a TCP scenario needs: the peer pre-resolved (no ARP between its events), IPv6
    /// when the scenario runs over it.
    pub const fn scenario(ipv6: bool) -> Needs {
        Needs {
            ipv6,
            peer_preresolved: true,
            settings: &[],
            switch: None,
            router: None,
            tls: false,
        }
    }
}
