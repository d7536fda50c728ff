//! Netstack3's stack targets: `stack_netstack3` (Netstack3 in-process on its fake clock
//! against the TCP model under `deviations/netstack3.toml`) and `stack_smoltcp_netstack3`
//! (the same input on smoltcp and Netstack3, compared where the model leaves the answer
//! open), both `netconform::fuzz::stacks` targets. They live here because Netstack3's crates
//! need a newer toolchain than netconform's; [`register`] adds them to netconform's lists,
//! so that this crate's binary (`netconform fuzz ...` hands them over to it) and its fuzz
//! targets (`fuzz/fuzz_targets/stack_netstack3.rs`, built with the fuzz crate's feature
//! `netstack3`) find them by name.

use netconform::dut::needs::Needs;
use netconform::dut::{Dut, DutError};
use netconform::fuzz::stacks::{self, PairTarget, StackTarget};
use netconform::fuzz::{FuzzTarget, Kind};
use netconform::models::profile::ProfileName;

/// Netstack3, as `--target netstack3` builds it for a scenario.
pub static NETSTACK3: StackTarget = StackTarget {
    name: "stack_netstack3",
    stack: "netstack3",
    profile: ProfileName::Rfc,
    deviations: include_str!("../../../deviations/netstack3.toml"),
    // None documented: every panic of Netstack3 is a crash.
    known_panics: &[],
    build,
};

fn build(needs: &Needs) -> Result<Box<dyn Dut>, DutError> {
    crate::build_for(needs)
}

/// smoltcp and Netstack3 on the same input.
pub static SMOLTCP_NETSTACK3: PairTarget = PairTarget {
    name: "stack_smoltcp_netstack3",
    a: &stacks::SMOLTCP,
    b: &NETSTACK3,
};

/// The stack targets of this crate.
pub static STACKS: &[&StackTarget] = &[&NETSTACK3];

/// Their fuzz targets.
pub static TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "stack_netstack3",
        kind: Kind::Stack,
        about: "Netstack3 in-process against the TCP model (rfc profile), scenario by \
                scenario: a panic is a crash, a disagreement outside \
                deviations/netstack3.toml a finding filed by clause and state in \
                $NETCONFORM_FINDINGS",
        run: |data| stacks::run_target(&NETSTACK3, data),
    },
    FuzzTarget {
        name: "stack_smoltcp_netstack3",
        kind: Kind::Stack,
        about: "smoltcp and Netstack3 on the same scenario: where both agree with the TCP \
                model, a difference where it leaves the answer open (a call's outcome, \
                PSH, a zero window, option kinds, an answer one sends and the other not) \
                is a finding filed by what differed in $NETCONFORM_FINDINGS; a panic of \
                either is a crash",
        run: |data| stacks::run_pair(&SMOLTCP_NETSTACK3, data),
    },
];

/// Adds this crate's targets to netconform's lists (once; later calls do nothing).
pub fn register() {
    stacks::add(STACKS, std::slice::from_ref(&SMOLTCP_NETSTACK3));
    netconform::fuzz::add_targets(TARGETS);
}

/// What a file in `fuzz/fuzz_targets/` calls: [`register`], then
/// [`netconform::fuzz::run`].
pub fn run(name: &str, data: &[u8]) {
    register();
    netconform::fuzz::run(name, data);
}
