//! Per-namespace sysctls through `/proc/sys`, from a thread inside the namespace.
//!
//! `/proc/sys/net/...` resolves to the namespace of the thread that opens it, so every read
//! and write here runs on the namespace's worker ([`Namespace::run`]). Every value set is
//! read back and **recorded** ([`SysctlRecord`]: name, old value, new value) so a report can
//! print the environment a verdict was obtained in.
//!
//! The default pinned sets ([`harness_defaults`], [`target_defaults`]) and why each entry is
//! there:
//!
//! | sysctl | value | where | why |
//! |---|---|---|---|
//! | `net.ipv6.conf.{all,default}.disable_ipv6` | 1 | harness; target without v6 | the kernel never sends DAD, RS or MLD, and owns no v6 address |
//! | `net.ipv6.conf.{all,default}.accept_dad` | 0 | target with v6 | no duplicate address detection |
//! | `net.ipv6.conf.{all,default}.dad_transmits` | 0 | target with v6 | no DAD neighbour solicitations |
//! | `net.ipv6.conf.{all,default}.router_solicitations` | 0 | target with v6 | no router solicitations |
//! | `net.ipv4.conf.{all,default}.rp_filter` | 0 | both | no reverse-path drops of crafted sources |
//! | `net.ipv4.conf.{all,default}.send_redirects` | 0 | both | no ICMP redirects |
//! | `net.ipv4.tcp_invalid_ratelimit` | 0 | target | out-of-window/challenge ACKs are not rate limited (500 ms by default) |
//! | `net.ipv4.tcp_timestamps` | 1 | target | RFC 7323 timestamps on (Linux default, pinned) |
//! | `net.ipv4.tcp_sack` | 1 | target | SACK on (default, pinned) |
//! | `net.ipv4.tcp_window_scaling` | 1 | target | window scaling on (default, pinned) |
//! | `net.ipv4.tcp_ecn` | 0 | target | no ECN negotiation (default is 2: accept only) |
//! | `net.ipv4.tcp_syn_retries` | 6 | target | SYN retransmissions (default, pinned) |
//! | `net.ipv4.tcp_rmem` | `4096 131072 6291456` | target | a child netns inherits init_net's values; the window scale depends on the max |
//! | `net.ipv4.tcp_wmem` | `4096 16384 4194304` | target | kernel defaults, pinned for the same reason |
//! | `net.ipv4.tcp_congestion_control` | first of `cubic`, `reno` in `tcp_allowed_congestion_control` | target | a child netns inherits init_net's CC (e.g. bbr) and may only pick allowed ones (EPERM otherwise) |
//! | `net.ipv4.tcp_early_retrans` | 3 | target | TLP with RACK (default, pinned) |
//! | `net.ipv4.tcp_no_metrics_save` | 1 | target | no cached metrics carried from one connection to the next |
//! | `net.ipv4.ip_no_pmtu_disc` | 0 | target | path MTU discovery on, DF set (default, pinned) |

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Namespace, SandboxError};

/// One sysctl the harness set: where, what it was and what it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlRecord {
    /// The namespace name.
    pub namespace: String,
    /// The sysctl, dotted (`net.ipv4.tcp_sack`).
    pub name: String,
    /// The value before (whitespace normalised).
    pub old: String,
    /// The value after, as read back.
    pub new: String,
}

/// The `/proc/sys` path of a dotted sysctl name.
pub fn path_of(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

fn normalise(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_here(namespace: &str, name: &str) -> Result<String, SandboxError> {
    let path = path_of(name);
    std::fs::read_to_string(&path)
        .map(|v| normalise(&v))
        .map_err(|source| SandboxError::Sysctl {
            namespace: namespace.to_string(),
            path,
            source,
        })
}

fn write_here(namespace: &str, name: &str, value: &str) -> Result<SysctlRecord, SandboxError> {
    let old = read_here(namespace, name)?;
    let path = path_of(name);
    std::fs::write(&path, value).map_err(|source| SandboxError::Sysctl {
        namespace: namespace.to_string(),
        path,
        source,
    })?;
    let new = read_here(namespace, name)?;
    if new != normalise(value) {
        return Err(SandboxError::SysctlMismatch {
            namespace: namespace.to_string(),
            name: name.to_string(),
            wanted: normalise(value),
            got: new,
        });
    }
    Ok(SysctlRecord {
        namespace: namespace.to_string(),
        name: name.to_string(),
        old,
        new,
    })
}

/// Reads a sysctl inside `ns`.
pub fn read(ns: &Namespace, name: &str) -> Result<String, SandboxError> {
    let (n, s) = (ns.name().to_string(), name.to_string());
    ns.run(move || read_here(&n, &s))?
}

/// Sets a sysctl inside `ns`, reads it back and returns the record.
pub fn set(ns: &Namespace, name: &str, value: &str) -> Result<SysctlRecord, SandboxError> {
    let (n, s, v) = (ns.name().to_string(), name.to_string(), value.to_string());
    ns.run(move || write_here(&n, &s, &v))?
}

/// Sets several sysctls inside `ns` in one trip to its worker; stops at the first error.
pub fn set_all(
    ns: &Namespace,
    values: &[(String, String)],
) -> Result<Vec<SysctlRecord>, SandboxError> {
    let n = ns.name().to_string();
    let values = values.to_vec();
    ns.run(move || {
        values
            .iter()
            .map(|(name, value)| write_here(&n, name, value))
            .collect()
    })?
}

/// Sets several sysctls in the **calling thread's** namespace (a process started inside the
/// namespace, such as an agent), reads each back; `namespace` names it in the records.
pub fn set_all_here(
    namespace: &str,
    values: &[(String, String)],
) -> Result<Vec<SysctlRecord>, SandboxError> {
    values
        .iter()
        .map(|(name, value)| write_here(namespace, name, value))
        .collect()
}

fn both(prefix: &str, key: &str, value: &str) -> Vec<(String, String)> {
    ["all", "default"]
        .iter()
        .map(|which| (format!("{prefix}.{which}.{key}"), value.to_string()))
        .collect()
}

/// The pinned set for a harness namespace: IPv6 off, no rp_filter, no redirects.
pub fn harness_defaults() -> Vec<(String, String)> {
    let mut v = both("net.ipv6.conf", "disable_ipv6", "1");
    v.extend(both("net.ipv4.conf", "rp_filter", "0"));
    v.extend(both("net.ipv4.conf", "send_redirects", "0"));
    v
}

/// IPv6 on (for `all` and `default`), addresses usable at once: no duplicate address
/// detection and no router solicitations.
pub fn ipv6_on() -> Vec<(String, String)> {
    let mut v = both("net.ipv6.conf", "disable_ipv6", "0");
    v.extend(both("net.ipv6.conf", "accept_dad", "0"));
    v.extend(both("net.ipv6.conf", "dad_transmits", "0"));
    v.extend(both("net.ipv6.conf", "router_solicitations", "0"));
    v
}

/// Picks the congestion control to pin: the first of `cubic`, `reno` that the namespace
/// allows, else the current one. Runs inside `ns`.
pub fn choose_congestion_control(ns: &Namespace) -> Result<String, SandboxError> {
    let allowed = read(ns, "net.ipv4.tcp_allowed_congestion_control")?;
    let current = read(ns, "net.ipv4.tcp_congestion_control")?;
    let allowed: Vec<&str> = allowed.split_whitespace().collect();
    Ok(["cubic", "reno"]
        .into_iter()
        .find(|cc| allowed.contains(cc) || *cc == current)
        .map(str::to_string)
        .unwrap_or(current))
}

/// The pinned set for a target namespace running a TCP lab (see the module table).
/// `congestion_control` comes from [`choose_congestion_control`].
pub fn target_defaults(ipv6: bool, congestion_control: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if ipv6 {
        v.extend(ipv6_on());
    } else {
        v.extend(both("net.ipv6.conf", "disable_ipv6", "1"));
    }
    v.extend(both("net.ipv4.conf", "rp_filter", "0"));
    v.extend(both("net.ipv4.conf", "send_redirects", "0"));
    for (k, val) in [
        ("net.ipv4.tcp_invalid_ratelimit", "0"),
        ("net.ipv4.tcp_timestamps", "1"),
        ("net.ipv4.tcp_sack", "1"),
        ("net.ipv4.tcp_window_scaling", "1"),
        ("net.ipv4.tcp_ecn", "0"),
        ("net.ipv4.tcp_syn_retries", "6"),
        ("net.ipv4.tcp_rmem", "4096 131072 6291456"),
        ("net.ipv4.tcp_wmem", "4096 16384 4194304"),
        ("net.ipv4.tcp_congestion_control", congestion_control),
        ("net.ipv4.tcp_early_retrans", "3"),
        ("net.ipv4.tcp_no_metrics_save", "1"),
        ("net.ipv4.ip_no_pmtu_disc", "0"),
        ("net.ipv4.ip_default_ttl", "64"),
        ("net.ipv4.tcp_rfc1337", "0"),
        ("net.ipv4.tcp_dsack", "1"),
        ("net.ipv4.tcp_syn_linear_timeouts", "4"),
        ("net.ipv4.tcp_synack_retries", "5"),
        ("net.ipv4.tcp_fin_timeout", "60"),
        ("net.ipv4.tcp_fastopen", "1"),
    ] {
        v.push((k.to_string(), val.to_string()));
    }
    v
}

/// One report line per record, `<role> <name> = <new> (was <old>)`: the role is `dut_role`
/// for records of the namespace named `dut_namespace`, `harness` for the others.
pub fn environment_lines(
    records: &[SysctlRecord],
    dut_namespace: &str,
    dut_role: &str,
) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let role = if r.namespace == dut_namespace {
                dut_role
            } else {
                "harness"
            };
            format!("{role} {} = {} (was {})", r.name, r.new, r.old)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_map_to_proc_sys() {
        assert_eq!(
            path_of("net.ipv4.tcp_sack"),
            PathBuf::from("/proc/sys/net/ipv4/tcp_sack")
        );
        assert_eq!(normalise("4096\t131072\t6291456\n"), "4096 131072 6291456");
    }
}
