//! NAT on the router lab: an nftables masquerade ruleset installed in the router namespace,
//! and the router's connection tracking table read back and flushed.
//!
//! Everything here runs **inside the router namespace**: the `nft` and `conntrack` processes
//! are spawned from the namespace's worker thread ([`Namespace::run`]). A child inherits the
//! network namespace of the thread that forks it (the namespace is a property of the task,
//! and `fork`/`posix_spawn` copy the calling task's), so `nft -f -` there sees only the
//! router's tables, and `conntrack -F` flushes only the router's table. The host
//! namespace's rules and connections are never read or touched. (The tests check this: a
//! ruleset installed in a lab is not in the host's `nft list tables`.)
//!
//! The table is read from `/proc/thread-self/net/nf_conntrack` on the worker (the file
//! follows the reading *thread's* namespace; `/proc/self/net` would follow the process
//! leader's), which needs no tool; when the kernel has no conntrack procfs
//! (`CONFIG_NF_CONNTRACK_PROCFS` off), `conntrack -L -o extended` prints the same format.
//! Both go through [`parse_conntrack`] into typed [`ConntrackEntry`]s.
//!
//! The ruleset (one table of our own, `ip ncf_nat`):
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
//! The tools come from Debian's `nftables` and `conntrack` packages; when one is missing the
//! error says so ([`SandboxError::ToolMissing`]).

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{Namespace, RouterLab, SandboxError};

/// The nftables table the harness creates in a router namespace.
pub const NFT_TABLE: &str = "ncf_nat";

/// The Debian packages that carry `nft` and `conntrack`.
const PACKAGES: &str = "apt-get install nftables conntrack";

/// The masquerade ruleset for traffic leaving through interface `oifname`.
pub fn masquerade_ruleset(oifname: &str) -> String {
    format!(
        "table ip {NFT_TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"{oifname}\" masquerade\n\
         \t}}\n\
         }}\n"
    )
}

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

/// Parses `/proc/net/nf_conntrack` (or `conntrack -L -o extended`) text.
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

/// Runs `tool args` on the calling thread's namespace (call it from a namespace worker),
/// `stdin` fed to it, and returns its standard output.
fn run_tool(
    namespace: &str,
    tool: &'static str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, SandboxError> {
    // Root's PATH has /usr/sbin; a plain user's may not, so try the usual places too.
    let candidates = [
        tool.to_string(),
        format!("/usr/sbin/{tool}"),
        format!("/sbin/{tool}"),
    ];
    let mut child = None;
    for c in &candidates {
        match Command::new(c)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(ch) => {
                child = Some(ch);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(SandboxError::Tool {
                    namespace: namespace.to_string(),
                    command: format!("{tool} {}", args.join(" ")),
                    detail: e.to_string(),
                });
            }
        }
    }
    let Some(mut child) = child else {
        return Err(SandboxError::ToolMissing {
            tool,
            install: PACKAGES,
        });
    };
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| SandboxError::Tool {
                namespace: namespace.to_string(),
                command: format!("{tool} {}", args.join(" ")),
                detail: format!("writing its input: {e}"),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| SandboxError::Tool {
        namespace: namespace.to_string(),
        command: format!("{tool} {}", args.join(" ")),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(SandboxError::Tool {
            namespace: namespace.to_string(),
            command: format!("{tool} {}", args.join(" ")),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Feeds `ruleset` to `nft -f -` inside `ns`.
pub fn nft_apply(ns: &Namespace, ruleset: &str) -> Result<(), SandboxError> {
    let (name, ruleset) = (ns.name().to_string(), ruleset.to_string());
    ns.run(move || run_tool(&name, "nft", &["-f", "-"], Some(&ruleset)).map(|_| ()))?
}

/// `nft list ruleset` inside `ns`.
pub fn nft_ruleset(ns: &Namespace) -> Result<String, SandboxError> {
    let name = ns.name().to_string();
    ns.run(move || run_tool(&name, "nft", &["list", "ruleset"], None))?
}

/// The connection tracking table of `ns`.
pub fn conntrack_entries(ns: &Namespace) -> Result<Vec<ConntrackEntry>, SandboxError> {
    let name = ns.name().to_string();
    let text =
        ns.run(
            move || match std::fs::read_to_string("/proc/thread-self/net/nf_conntrack") {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    run_tool(&name, "conntrack", &["-L", "-o", "extended"], None)
                }
                Err(e) => Err(SandboxError::Tool {
                    namespace: name.clone(),
                    command: "read /proc/thread-self/net/nf_conntrack".into(),
                    detail: e.to_string(),
                }),
            },
        )??;
    parse_conntrack(&text).map_err(|e| SandboxError::Tool {
        namespace: ns.name().to_string(),
        command: "read the conntrack table".into(),
        detail: e.to_string(),
    })
}

/// Empties the connection tracking table of `ns` (`conntrack -F` inside it).
pub fn conntrack_flush(ns: &Namespace) -> Result<(), SandboxError> {
    let name = ns.name().to_string();
    ns.run(move || run_tool(&name, "conntrack", &["-F"], None).map(|_| ()))?
}

impl RouterLab {
    /// Masquerades everything the router sends out of segment `segment`: installs
    /// [`masquerade_ruleset`] for that segment's router interface in the router namespace.
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
        nft_apply(self.router(), &masquerade_ruleset(&link))
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

    #[test]
    fn the_ruleset_names_the_outside_interface() {
        let r = masquerade_ruleset("ncf3r1");
        assert!(r.contains("table ip ncf_nat"));
        assert!(r.contains("oifname \"ncf3r1\" masquerade\n"));
    }
}
