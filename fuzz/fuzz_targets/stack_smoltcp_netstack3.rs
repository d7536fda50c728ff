//! Two-stack target: the same TCP scenario on smoltcp and on Netstack3, where both agree
//! with the TCP model, compared with each other where the model leaves the answer open; a
//! difference is a finding of its own kind, filed by what differed in $NETCONFORM_FINDINGS
//! (`netconform::fuzz::stacks::pair`). Built with the feature `netstack3` (ci/fuzz-build).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    netconform_netstack3::fuzz::run("stack_smoltcp_netstack3", data)
});
