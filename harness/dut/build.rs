//! Building a device under test from its name (`--target`) and what a check needs.
//!
//! On Linux a switch check gets the Linux bridge, a router check a router namespace, a TLS
//! check rustls, every other check a host stack; smoltcp and external stacks are hosts, and
//! the checks that need more answer `unsupported` at their first such event. OpenSSL is a
//! TLS service only: a check that needs anything else is unsupported before a DUT is built.

use crate::dut::external::{ExternalConfig, ExternalStack};
use crate::dut::needs::Needs;
use crate::dut::{Dut, DutError};

/// A device under test, as `--target` names it.
#[derive(Clone, Debug)]
pub enum DutKind {
    /// `linux`: the running Linux kernel, in throwaway network namespaces.
    Linux,
    /// `smoltcp`: smoltcp in-process, on a virtual clock.
    Smoltcp,
    /// `openssl`: OpenSSL's `s_server` and `s_client` (Debian's `openssl`), a TLS service
    /// and nothing else: every check that needs more than the TLS service is unsupported.
    Openssl,
    /// `external:CONFIG`: a stack behind an interface, driven by an agent (see
    /// docs/agent-protocol.md); CONFIG is the agent's TOML file, read once at start.
    External(Box<ExternalConfig>),
    /// `slirp`: libslirp as slirp4netns runs it (Debian `slirp4netns`), a user-mode NAT
    /// whose gateway is the stack (harness/dut/slirp.rs).
    Slirp(crate::dut::slirp::SlirpConfig),
    /// `passt`: passt (Debian `passt`), a user-mode translator reached over its UNIX socket
    /// in qemu's stream framing (harness/dut/passt.rs).
    Passt(crate::dut::passt::PasstConfig),
    /// A target built outside this crate and handed to the command line by the binary
    /// that links it (`netconform-netstack3`: Netstack3, whose crates need a newer
    /// toolchain than netconform's, see README).
    Extra(ExtraTarget),
}

/// A target that lives in a crate of its own (a workspace member) and builds its DUTs
/// itself; its binary runs netconform's command line with it added to `--target`.
#[derive(Clone, Copy)]
pub struct ExtraTarget {
    /// Its `--target` name, also the report's label and `deviations/<name>.toml`.
    pub name: &'static str,
    /// A fresh DUT for a check that needs `needs`.
    pub build: fn(&Needs) -> Result<Box<dyn Dut>, DutError>,
    /// The reviewed accepted deviations it carries (TOML, deviations/README.md).
    pub deviations: Option<&'static str>,
    /// Whether building its DUTs needs network namespaces (root).
    pub needs_netns: bool,
}

impl std::fmt::Debug for ExtraTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraTarget")
            .field("name", &self.name)
            .field("needs_netns", &self.needs_netns)
            .finish_non_exhaustive()
    }
}

impl DutKind {
    /// Parses a `--target` value: `linux`, `smoltcp`, `openssl`, `pytcp`, `lwip` or
    /// `external:CONFIG` (the config file is read now, so a broken one is reported before
    /// anything runs; `pytcp` is the external target of [`crate::dut::pytcp::config`], which
    /// fails when pmd-pytcp is not installed).
    pub fn parse(text: &str) -> Result<DutKind, String> {
        match text {
            "linux" => Ok(DutKind::Linux),
            "smoltcp" => Ok(DutKind::Smoltcp),
            "openssl" => Ok(DutKind::Openssl),
            "slirp" => crate::dut::slirp::config().map(DutKind::Slirp),
            "passt" => Ok(DutKind::Passt(Default::default())),
            // PyTCP through its built-in agent: an external target (crate::dut::pytcp).
            "pytcp" => crate::dut::pytcp::config().map(|c| DutKind::External(Box::new(c))),
            // lwIP through netconform-agent-lwip: an external target (crate::dut::lwip).
            "lwip" => crate::dut::lwip::config().map(|c| DutKind::External(Box::new(c))),
            _ => match text.strip_prefix("external:") {
                Some("") => Err("external: needs the agent's config file: external:PATH".into()),
                Some(path) => ExternalConfig::load(path.as_ref())
                    .map(|c| DutKind::External(Box::new(c)))
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "unknown target {text:?}: expected linux, smoltcp, openssl, pytcp, lwip, slirp, passt or external:CONFIG"
                )),
            },
        }
    }

    /// The name reports use for the DUT before it is built.
    pub fn label(&self) -> String {
        match self {
            DutKind::Linux => "linux".into(),
            DutKind::Smoltcp => "smoltcp".into(),
            DutKind::Openssl => "openssl".into(),
            DutKind::External(config) => config.stack.clone(),
            DutKind::Slirp(_) => "slirp".into(),
            DutKind::Passt(_) => "passt".into(),
            DutKind::Extra(target) => target.name.into(),
        }
    }

    /// The checks of its slow tier (ids, or prefixes ending in `*`): they wait out timers
    /// this stack runs on the wall clock and cannot shorten, so `certify` runs them only
    /// with `--slow`. Empty for the kernel (its timers are pinned short) and for stacks on
    /// a virtual clock.
    pub fn slow_tier(&self) -> &[String] {
        match self {
            DutKind::External(config) => &config.slow,
            _ => &[],
        }
    }

    /// How many checks `certify` runs at a time when `-j` is not given: the target's own
    /// number (an external configuration's `[stack] jobs`; `--target pytcp`:
    /// [`crate::dut::pytcp::JOBS`]), else 2.
    pub fn default_jobs(&self) -> usize {
        match self {
            DutKind::External(config) => config.jobs.unwrap_or(2),
            _ => 2,
        }
    }

    /// Whether check `id` is in its slow tier.
    pub fn is_slow(&self, id: &str) -> bool {
        self.slow_tier().iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => id == p,
        })
    }

    /// Whether building it needs network namespaces (root).
    pub fn needs_netns(&self) -> bool {
        match self {
            DutKind::Smoltcp => false,
            DutKind::Extra(target) => target.needs_netns,
            _ => true,
        }
    }

    /// A fresh DUT of this kind for a check (or scenario) that needs `needs` (whether it
    /// has the planes the check uses is the engine's question: `run_one` and `replay`).
    pub fn build(&self, needs: &Needs) -> Result<Box<dyn Dut>, DutError> {
        match self {
            DutKind::Linux => {
                if let Some(bridge) = crate::dut::bridge::bridge_config_for(needs) {
                    return Ok(Box::new(crate::dut::bridge::LinuxBridge::new(bridge)?));
                }
                if needs.uses_service(crate::dut::service::ServiceKind::Tls) {
                    return Ok(Box::new(crate::dut::tls::RustlsService::new()?));
                }
                if let Some(router) = crate::dut::router::router_config_for(needs) {
                    return Ok(Box::new(crate::dut::router::LinuxRouter::new(router)?));
                }
                Ok(Box::new(crate::dut::linux::LinuxHost::new(
                    crate::dut::linux::lab_config_for(needs),
                )?))
            }
            DutKind::Smoltcp => Ok(Box::new(crate::dut::smoltcp::SmoltcpHost::new(
                crate::dut::smoltcp::smoltcp_config_for(needs),
            )?)),
            DutKind::Openssl if needs.uses_service(crate::dut::service::ServiceKind::Tls) => {
                Ok(Box::new(crate::dut::openssl::OpensslService::new()?))
            }
            DutKind::Openssl => Err(DutError::NotSupported {
                what: format!(
                    "{}: the openssl target serves TLS only (no link, sockets or tables of its own)",
                    needs.describe()
                ),
            }),
            DutKind::External(config) => Ok(Box::new(ExternalStack::new(config, needs)?)),
            DutKind::Slirp(config) => {
                Ok(Box::new(crate::dut::slirp::SlirpHost::new(config, needs)?))
            }
            DutKind::Passt(config) => {
                Ok(Box::new(crate::dut::passt::PasstHost::new(config, needs)?))
            }
            DutKind::Extra(target) => (target.build)(needs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::external::ConfigError;

    fn parse(text: &str) -> Result<ExternalConfig, ConfigError> {
        ExternalConfig::parse(text, std::path::Path::new("/etc/ncf/agent.toml"))
    }

    /// A stack's configuration says how many checks run at a time (default 2).
    #[test]
    fn a_stack_says_how_many_checks_run_at_a_time() {
        let c = parse("[stack]\nname = \"k\"\njobs = 4\n[agent]\ncommand = [\"a\"]\n").unwrap();
        assert_eq!(c.jobs, Some(4));
        assert_eq!(DutKind::External(Box::new(c)).default_jobs(), 4);
        let c = parse("[stack]\nname = \"k\"\n[agent]\ncommand = [\"a\"]\n").unwrap();
        assert_eq!(DutKind::External(Box::new(c)).default_jobs(), 2);
        assert_eq!(DutKind::Linux.default_jobs(), 2);
        let e = parse("[stack]\nname = \"k\"\njobs = 0\n[agent]\ncommand = [\"a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`stack.jobs` is 0"), "{e}");
    }

    /// The slow tier names checks by id or by prefix; nothing else is slow.
    #[test]
    fn the_slow_tier_picks_its_checks() {
        let c = parse(
            "[stack]\nname = \"k\"\nslow = [\"tcp.timer.*\", \"tcp.matrix.v4.time-wait\"]\n[agent]\ncommand = [\"a\"]\n",
        )
        .unwrap();
        let kind = DutKind::External(Box::new(c));
        assert!(kind.is_slow("tcp.timer.keepalive"));
        assert!(kind.is_slow("tcp.matrix.v4.time-wait"));
        assert!(!kind.is_slow("tcp.matrix.v6.time-wait"));
        assert!(!kind.is_slow("tcp.timerx"));
        assert!(!DutKind::Linux.is_slow("tcp.timer.keepalive"));
    }
}
