//! Stack target: Fuchsia Netstack3 in-process on its fake clock against the TCP model (rfc
//! profile), one TCP scenario per input, as `stack_smoltcp` drives smoltcp: a panic is a
//! crash, a disagreement outside deviations/netstack3.toml a finding filed in
//! $NETCONFORM_FINDINGS. Built with the feature `netstack3` (ci/fuzz-build).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform_netstack3::fuzz::run("stack_netstack3", data));
