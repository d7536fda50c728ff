//! The service capability: a DUT that serves a protocol with a process (or library) of its
//! own, started in a namespace the harness made, with a configuration the harness wrote.
//!
//! A check asks the DUT which implementations of a service it offers
//! ([`crate::dut::Services::offered`]) and then runs an exchange with each
//! ([`crate::dut::Services::exchange`]). TLS is the first service: rustls (both of its crypto
//! providers) in-process over the kernel's TCP, and OpenSSL's `s_server` and `s_client`.
//! What crosses the wire is captured, and each side's key log is read the way
//! `netconform tls verify` reads any key log.

use serde::{Deserialize, Serialize};

use crate::dut::tls::{TlsRun, TlsScenario};

/// A protocol a DUT can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// TLS 1.2 and 1.3: a server and the client that reaches it.
    Tls,
}

impl std::fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceKind::Tls => write!(f, "TLS"),
        }
    }
}

/// One implementation of a service a DUT offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImpl {
    /// The protocol.
    pub kind: ServiceKind,
    /// A stable id the check passes back (`rustls/aws-lc-rs`, `openssl`).
    pub id: String,
    /// What it is, with its version, for reports.
    pub description: String,
}

/// An exchange with a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceRequest {
    /// One TLS connection between the implementation's client and its server: the
    /// handshake, application data both ways, and (TLS 1.3, when the scenario asks) a
    /// KeyUpdate each way.
    TlsExchange {
        /// [`ServiceImpl::id`] of the implementation.
        implementation: String,
        /// What to run.
        scenario: TlsScenario,
    },
}

impl std::fmt::Display for ServiceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceRequest::TlsExchange {
                implementation,
                scenario,
            } => write!(
                f,
                "TLS exchange with {implementation}: version {:#06x}, suite {:#06x}{}",
                scenario.version,
                scenario.suite,
                if scenario.key_update {
                    ", key update"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What an exchange with a service produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceAnswer {
    /// One TLS connection, captured, with each side's key log.
    TlsExchange(Box<TlsRun>),
}
