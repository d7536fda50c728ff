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
}

impl DutKind {
    /// Parses a `--target` value: `linux`, `smoltcp`, `openssl`, `pytcp` or
    /// `external:CONFIG` (the config file is read now, so a broken one is reported before
    /// anything runs; `pytcp` is the external target of [`crate::dut::pytcp::config`], which
    /// fails when pmd-pytcp is not installed).
    pub fn parse(text: &str) -> Result<DutKind, String> {
        match text {
            "linux" => Ok(DutKind::Linux),
            "smoltcp" => Ok(DutKind::Smoltcp),
            "openssl" => Ok(DutKind::Openssl),
            // PyTCP through its built-in agent: an external target (crate::dut::pytcp).
            "pytcp" => crate::dut::pytcp::config().map(|c| DutKind::External(Box::new(c))),
            _ => match text.strip_prefix("external:") {
                Some("") => Err("external: needs the agent's config file: external:PATH".into()),
                Some(path) => ExternalConfig::load(path.as_ref())
                    .map(|c| DutKind::External(Box::new(c)))
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "unknown target {text:?}: expected linux, smoltcp, openssl, pytcp or external:CONFIG"
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
        }
    }

    /// Whether building it needs network namespaces (root).
    pub fn needs_netns(&self) -> bool {
        !matches!(self, DutKind::Smoltcp)
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
        }
    }
}
