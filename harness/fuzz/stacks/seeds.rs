//! Seeds of the stack targets: the TCP scenarios the harness already has, as inputs
//! ([`super::input::encode`]): the path into every state of the matrix, every segment kind
//! in order in every state (the matrix cells at RCV.NXT acknowledging SND.NXT, IPv4 and
//! IPv6), and the saved regressions (`fixtures/tcp-regressions/`, whatever profile they
//! were found under: the target's profile applies).

use crate::models::profile::ProfileName;
use crate::suites::tcp::matrix;
use crate::suites::tcp::scenario::{AckAt, PeerSegment, SegmentKind, SeqAt, TcpScenario};

use super::input;

/// `(name, input)` for every seed: `path-<ipv>-<state>`, `cell-<ipv>-<state>-<kind>`, and
/// `regression-<name>` for each of `regressions` (file stem, scenario).
pub fn seeds(regressions: &[(String, TcpScenario)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for ipv6 in [false, true] {
        let ip = if ipv6 { "v6" } else { "v4" };
        for state in matrix::STATES {
            let slug = state.to_string().to_lowercase();
            let path = TcpScenario {
                name: String::new(),
                profile: ProfileName::Rfc,
                ipv6,
                peer_mss: Some(1460),
                events: matrix::path_to(state),
            };
            out.extend(input::encode(&path).map(|b| (format!("path-{ip}-{slug}"), b)));
            for kind in SegmentKind::ALL {
                let probe = PeerSegment {
                    kind,
                    seq: SeqAt::RcvNxt,
                    ack: AckAt::Nxt,
                    ..PeerSegment::next(kind)
                };
                let cell = matrix::cell(ProfileName::Rfc, ipv6, state, probe);
                let name = format!("cell-{ip}-{slug}-{kind:?}").to_lowercase();
                out.extend(input::encode(&cell).map(|b| (name, b)));
            }
        }
    }
    for (name, scenario) in regressions {
        out.extend(input::encode(scenario).map(|b| (format!("regression-{name}"), b)));
    }
    out
}
