//! Frame parser: arbitrary bytes never panic the parser or the renderer, and every frame
//! that parses survives emit → parse unchanged (once its computed fields are filled in).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netconform::trace::{Direction, HostNames, Trace};
use netconform::wire::Frame;

fuzz_target!(|data: &[u8]| {
    // The receive path renders whatever a stack sends, parsable or not.
    let mut trace = Trace::default();
    trace.push_frame(netconform::time::Instant::ZERO, Direction::Received, data.to_vec());
    let _ = trace.render(&HostNames::default());

    if let Ok(mut frame) = Frame::parse(data) {
        let _ = frame.to_string();
        frame.fill_computed();
        let bytes = frame.emit();
        let again = Frame::parse(&bytes).unwrap_or_else(|e| panic!("emitted frame does not parse: {e}\n{frame:?}"));
        assert_eq!(frame, again, "parse(emit(frame)) differs");
    }
});
