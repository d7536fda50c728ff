//! NAT on the router lab: an nftables masquerade ruleset installed in the router namespace,
//! and the router's connection tracking table read back and flushed.
//!
//! Everything here runs **inside the router namespace** and needs no tool: the harness speaks
//! nfnetlink itself (`sandbox/nfnetlink.rs`) over a `NETLINK_NETFILTER` socket opened on the
//! namespace's worker thread ([`Namespace::run`]). A netlink socket belongs to the network
//! namespace of the thread that creates it, so the ruleset goes into the router's nf_tables
//! only, the dump lists the router's connections only, and the flush empties the router's
//! table only. The host namespace's rules and connections are never read or touched. (The
//! tests check this: a ruleset installed in a lab is not among the host's tables.)
//!
//! The ruleset (one table of our own, `ip ncf_nat`), installed as one nf_tables transaction
//! (table, chain, rule between `NFNL_MSG_BATCH_BEGIN` and `NFNL_MSG_BATCH_END`):
//!
//! ```text
//! table ip ncf_nat {
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         oifname "<router end of the outside segment>" masquerade
//!     }
//! }
//! ```
//!
//! The table is read with a ctnetlink dump (`IPCTNL_MSG_CT_GET`) into typed
//! [`ConntrackEntry`]s that read as `/proc/net/nf_conntrack` prints the same connections;
//! [`parse_conntrack`] reads that text, which the tests use as a cross-check of the decoding
//! ([`conntrack_proc_entries`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::nfnetlink::{Nfnl, masquerade_changes};
pub use super::nfnetlink::{NftRule, NftTable};
use super::{Namespace, RouterLab, SandboxError};

/// The nftables table the harness creates in a router namespace.
pub const NFT_TABLE: &str = "ncf_nat";

/// One direction of a tracked connection, as conntrack prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConntrackTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP, UDP), or the ICMP identifier.
    pub sport: u16,
    /// Destination port (TCP, UDP), or the ICMP identifier.
    pub dport: u16,
}

impl std::fmt::Display for ConntrackTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} > {}:{}",
            self.src, self.sport, self.dst, self.dport
        )
    }
}

/// One entry of the connection tracking table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackEntry {
    /// The layer-4 protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub protocol: u8,
    /// Seconds left before the entry expires.
    pub timeout_s: u32,
    /// The protocol state (TCP only: `SYN_SENT`, `ESTABLISHED`...).
    pub state: Option<String>,
    /// The original direction (as the first packet was seen, before NAT).
    pub original: ConntrackTuple,
    /// The reply direction the tracker expects (after NAT: to the translated source).
    pub reply: ConntrackTuple,
    /// Status flags in brackets (`UNREPLIED`, `ASSURED`).
    pub flags: Vec<String>,
}

impl std::fmt::Display for ConntrackEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.protocol {
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            p => format!("proto {p}"),
        };
        write!(f, "{name} {} | reply {}", self.original, self.reply)?;
        if let Some(s) = &self.state {
            write!(f, " {s}")?;
        }
        for flag in &self.flags {
            write!(f, " [{flag}]")?;
        }
        Ok(())
    }
}

/// Why a conntrack line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conntrack line {line}: {reason}: {text:?}")]
pub struct ConntrackParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
    /// The line.
    pub text: String,
}

#[derive(Default)]
struct PartialTuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    id: Option<u16>,
}

impl PartialTuple {
    fn finish(&self) -> Option<ConntrackTuple> {
        let (sport, dport) = match (self.sport, self.dport, self.id) {
            (Some(s), Some(d), _) => (s, d),
            (_, _, Some(id)) => (id, id),
            // Protocols without ports (GRE, ...): zero.
            _ => (0, 0),
        };
        Some(ConntrackTuple {
            src: self.src?,
            dst: self.dst?,
            sport,
            dport,
        })
    }
}

/// Parses `/proc/net/nf_conntrack` (or `conntrack -L -o extended`) text: the tests' cross-check
/// of the ctnetlink decoding.
///
/// A line reads `ipv4 2 udp 17 29 [STATE] src=.. dst=.. sport=.. dport=.. [FLAGS] src=..
/// dst=.. sport=.. dport=.. [FLAGS] mark=0 zone=0 use=2`; ICMP tuples carry `type= code=
/// id=` instead of ports (the identifier then stands for both ports). Unknown `key=value`
/// fields are ignored. Blank lines and the `conntrack` tool's summary line are skipped.
pub fn parse_conntrack(text: &str) -> Result<Vec<ConntrackEntry>, ConntrackParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("conntrack v") {
            continue;
        }
        let err = |reason: &str| ConntrackParseError {
            line: i + 1,
            reason: reason.to_string(),
            text: line.to_string(),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        // ipv4 2 udp 17 29 ...
        if words.len() < 5 {
            return Err(err("fewer than five fields"));
        }
        let protocol: u8 = words[3].parse().map_err(|_| err("protocol number"))?;
        let timeout_s: u32 = words[4].parse().map_err(|_| err("timeout"))?;
        let mut tuples = [PartialTuple::default(), PartialTuple::default()];
        let mut which = 0usize;
        let mut state = None;
        let mut flags = Vec::new();
        for w in &words[5..] {
            if let Some(flag) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                flags.push(flag.to_string());
                continue;
            }
            let Some((key, value)) = w.split_once('=') else {
                state = Some(w.to_string());
                continue;
            };
            let ip = || value.parse::<IpAddr>().map_err(|_| err("address"));
            let port = || value.parse::<u16>().map_err(|_| err("port or identifier"));
            match key {
                "src" => {
                    if tuples[which].src.is_some() {
                        which += 1;
                        if which > 1 {
                            return Err(err("more than two tuples"));
                        }
                    }
                    tuples[which].src = Some(ip()?);
                }
                "dst" => tuples[which].dst = Some(ip()?),
                "sport" => tuples[which].sport = Some(port()?),
                "dport" => tuples[which].dport = Some(port()?),
                "id" => tuples[which].id = Some(port()?),
                _ => {}
            }
        }
        let (Some(original), Some(reply)) = (tuples[0].finish(), tuples[1].finish()) else {
            return Err(err("missing src= or dst= in a direction"));
        };
        out.push(ConntrackEntry {
            protocol,
            timeout_s,
            state,
            original,
            reply,
            flags,
        });
    }
    Ok(out)
}

/// Installs the masquerade ruleset for traffic leaving through interface `oifname` in `ns`
/// (see the module docs), as one transaction: all of it or, with a [`SandboxError::Netlink`]
/// naming the refused message and the errno, nothing.
pub fn nft_masquerade(ns: &Namespace, oifname: &str) -> Result<(), SandboxError> {
    let changes = masquerade_changes(NFT_TABLE, oifname)?;
    let name = ns.name().to_string();
    ns.run(move || Nfnl::open(&name)?.transaction(changes))?
}

/// The nftables tables of `ns`, every family.
pub fn nft_tables(ns: &Namespace) -> Result<Vec<NftTable>, SandboxError> {
    let name = ns.name().to_string();
    ns.run(move || Nfnl::open(&name)?.tables())?
}

/// The nftables tables of the **calling thread's** namespace (read only; the tests use it
/// to show that the host namespace has no table of ours).
pub fn nft_tables_here() -> Result<Vec<NftTable>, SandboxError> {
    Nfnl::open("(calling thread)")?.tables()
}

/// The rules of table `table` (family `ip`) in `ns`, in order, in `nft` syntax as far as
/// the harness knows the expressions.
pub fn nft_rules(ns: &Namespace, table: &str) -> Result<Vec<NftRule>, SandboxError> {
    let (name, table) = (ns.name().to_string(), table.to_string());
    ns.run(move || Nfnl::open(&name)?.rules(&table))?
}

/// The connection tracking table of `ns` (a ctnetlink dump, IPv4 and IPv6).
pub fn conntrack_entries(ns: &Namespace) -> Result<Vec<ConntrackEntry>, SandboxError> {
    let name = ns.name().to_string();
    ns.run(move || Nfnl::open(&name)?.conntrack())?
}

/// The connection tracking table of `ns` as `/proc/thread-self/net/nf_conntrack` prints it
/// (the file follows the reading *thread's* namespace), parsed. A cross-check of
/// [`conntrack_entries`] for the tests; it needs `CONFIG_NF_CONNTRACK_PROCFS`.
pub fn conntrack_proc_entries(ns: &Namespace) -> Result<Vec<ConntrackEntry>, SandboxError> {
    let name = ns.name().to_string();
    let path = "/proc/thread-self/net/nf_conntrack";
    let text = ns
        .run(move || std::fs::read_to_string(path))?
        .map_err(|e| SandboxError::NetlinkIo {
            namespace: name.clone(),
            op: format!("read {path}"),
            detail: e.to_string(),
        })?;
    parse_conntrack(&text).map_err(|e| SandboxError::NetlinkIo {
        namespace: ns.name().to_string(),
        op: format!("parse {path}"),
        detail: e.to_string(),
    })
}

/// Empties the connection tracking table of `ns` (a ctnetlink flush inside it).
pub fn conntrack_flush(ns: &Namespace) -> Result<(), SandboxError> {
    let name = ns.name().to_string();
    ns.run(move || Nfnl::open(&name)?.flush_conntrack())?
}

impl RouterLab {
    /// Masquerades everything the router sends out of segment `segment`: installs the
    /// masquerade ruleset ([`nft_masquerade`]) for that segment's router interface in the
    /// router namespace.
    pub fn install_masquerade(&self, segment: usize) -> Result<(), SandboxError> {
        let link = self
            .segments()
            .get(segment)
            .ok_or_else(|| SandboxError::NoSuchInterface {
                namespace: self.router().name().to_string(),
                interface: format!("segment {segment}"),
            })?
            .router_link
            .name
            .clone();
        nft_masquerade(self.router(), &link)
    }

    /// The router's connection tracking table.
    pub fn conntrack(&self) -> Result<Vec<ConntrackEntry>, SandboxError> {
        conntrack_entries(self.router())
    }

    /// Empties the router's connection tracking table (the router namespace's only).
    pub fn flush_conntrack(&self) -> Result<(), SandboxError> {
        conntrack_flush(self.router())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_parse_into_typed_entries() {
        let text = "\
ipv4     2 udp      17 28 src=10.78.1.10 dst=10.78.2.2 sport=5000 dport=7000 [UNREPLIED] src=10.78.2.2 dst=10.78.2.1 sport=7000 dport=52591 mark=0 zone=0 use=2
ipv4     2 tcp      6 118 SYN_SENT src=10.78.1.11 dst=10.78.2.2 sport=40000 dport=80 [UNREPLIED] src=10.78.2.2 dst=10.78.2.1 sport=80 dport=40000 mark=0 zone=0 use=2
ipv4     2 icmp     1 29 src=10.78.1.10 dst=10.78.2.2 type=8 code=0 id=4660 src=10.78.2.2 dst=10.78.2.1 type=0 code=0 id=4660 [ASSURED] mark=0 zone=0 use=2
";
        let e = parse_conntrack(text).expect("parses");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].protocol, 17);
        assert_eq!(e[0].timeout_s, 28);
        assert_eq!(e[0].flags, vec!["UNREPLIED".to_string()]);
        assert_eq!(e[0].reply.dport, 52591);
        assert_eq!(
            e[0].original.to_string(),
            "10.78.1.10:5000 > 10.78.2.2:7000"
        );
        assert_eq!(e[1].state.as_deref(), Some("SYN_SENT"));
        assert_eq!((e[2].original.sport, e[2].original.dport), (4660, 4660));
        assert_eq!(e[2].flags, vec!["ASSURED".to_string()]);
        assert!(
            parse_conntrack(
                "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n"
            )
            .expect("summary skipped")
            .is_empty()
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "ipv4 2 udp",
            "ipv4 2 udp x 29 src=1.2.3.4",
            "ipv4 2 udp 17 29 src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2",
            "ipv4 2 udp 17 29 src=nope dst=5.6.7.8",
            "ipv4 2 udp 17 29 src=1.1.1.1 dst=1.1.1.1 src=1.1.1.1 dst=1.1.1.1 src=1.1.1.1",
            "ipv4 2 udp 17 29 src=1.1.1.1 dst=1.1.1.1 sport=99999 dport=1 src=1.1.1.1 dst=1.1.1.1",
        ] {
            assert!(parse_conntrack(bad).is_err(), "{bad}");
        }
    }
}
