//! Parser targets for the link, network and transport layers: the harness's parsers
//! (`crate::wire`) against etherparse and smoltcp::wire, and parse → emit → parse.

use super::{Allowed, FuzzTarget, Kind, Outcome, ensure};
use crate::trace::{Direction, HostNames, Trace};
use crate::wire::Frame;

pub(super) static TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "etherparse_bare",
        kind: Kind::Bare,
        about: "etherparse's SlicedPacket::from_ethernet alone (the speed baseline)",
        run: etherparse_bare,
    },
    FuzzTarget {
        name: "receive",
        kind: Kind::ReceivePath,
        about: "a frame a stack sent, through parse, trace, compare and report: never panics",
        run: receive,
    },
];

/// The speed baseline: etherparse's strict slicer, nothing else.
fn etherparse_bare(data: &[u8]) -> Outcome {
    let _ = std::hint::black_box(etherparse::SlicedPacket::from_ethernet(data));
    Ok(Allowed::NONE)
}

/// The receive path (see `fuzz/fuzz_targets/receive.rs`).
fn receive(data: &[u8]) -> Outcome {
    const T: &str = "receive";
    let mut trace = Trace::default();
    trace.push_frame(
        crate::time::Instant::ZERO,
        Direction::Received,
        data.to_vec(),
    );
    let _ = trace.render(&HostNames::default());
    if let Ok(mut frame) = Frame::parse(data) {
        let _ = frame.to_string();
        frame.fill_computed();
        let again = Frame::parse(&frame.emit());
        ensure!(
            again.as_ref() == Ok(&frame),
            T,
            "parse(emit(frame)) = {again:?}, not {frame:?}"
        );
    }
    Ok(Allowed::NONE)
}
