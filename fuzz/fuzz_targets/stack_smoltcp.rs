//! Stack target: smoltcp in-process against the TCP model (rfc profile), one TCP scenario per input; a smoltcp panic is a crash, a disagreement outside deviations/smoltcp.toml a finding filed in $NETCONFORM_FINDINGS (see `netconform::fuzz::stacks`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("stack_smoltcp", data));
