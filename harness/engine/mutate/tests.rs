//! Unit tests of the mutation analysis on the fake stack: a check that compares what the
//! stack sent is killed, one that asserts nothing is found vacuous, one that fails on the
//! DUT as it is is not judged.

use super::*;
use crate::dut::spoil::Field;
use crate::engine::barrier::host_machinery;
use crate::engine::tests::FakeStack;
use crate::engine::{CheckError, Session};
use crate::time::Duration;
use crate::wire::{Frame, MacAddr, TcpFlags, TcpSegment};

/// What the fake stack says before each echo reply: one TCP segment.
fn chatter() -> Vec<u8> {
    let mut s = TcpSegment::new(80, 4000, 1000, 7, TcpFlags(0x18));
    s.payload = b"hi".to_vec();
    Frame::tcp_v4(
        MacAddr([2, 0, 0, 0, 0, 2]),
        MacAddr([2, 0, 0, 0, 0, 1]),
        "10.9.0.2".parse().unwrap(),
        "10.9.0.1".parse().unwrap(),
        s,
    )
    .emit()
}

fn factory(_: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    let mut stack = FakeStack::new();
    stack.chatter = Some(chatter());
    Ok(Box::new(stack))
}

/// Requires exactly the chatter before the barrier's reply.
fn compares(s: &mut Session<'_>) -> Result<(), CheckError> {
    let seen = s.barrier("barrier", false, Duration::from_millis(200))?;
    let bytes: Vec<&[u8]> = seen.iter().map(|o| o.bytes.as_slice()).collect();
    if bytes == [chatter().as_slice()] {
        Ok(())
    } else {
        Err(CheckError::Mismatch {
            step: "the chatter".into(),
            differences: vec![format!("{} frames, not the chatter", bytes.len())],
        })
    }
}

/// Runs the barrier and asserts nothing.
fn asserts_nothing(s: &mut Session<'_>) -> Result<(), CheckError> {
    s.barrier("barrier", false, Duration::from_millis(200))?;
    Ok(())
}

fn fails(_: &mut Session<'_>) -> Result<(), CheckError> {
    Err(CheckError::Mismatch {
        step: "always".into(),
        differences: vec!["always".into()],
    })
}

fn spec(id: &'static str, run: fn(&mut Session<'_>) -> Result<(), CheckError>) -> CheckSpec {
    CheckSpec {
        id,
        title: id,
        clauses: &[],
        needs: Needs::IPV4,
        run,
    }
}

fn matrix() -> KillMatrix {
    let checks = [
        spec("fake.compares", compares),
        spec("fake.asserts-nothing", asserts_nothing),
        spec("other.fails", fails),
    ];
    mutate(
        "fake",
        &checks,
        &factory,
        &|_| host_machinery,
        2,
        ProfileName::Rfc,
        &|_, _, _| {},
    )
}

#[test]
fn a_check_that_compares_is_killed_and_one_that_asserts_nothing_is_vacuous() {
    let m = matrix();
    let row = |id: &str| m.rows.iter().find(|r| r.id == id).expect("a row");
    let compares = row("fake.compares");
    assert_eq!(compares.baseline, "PASS");
    assert_eq!(compares.cells.len(), Spoil::link().len());
    let killers = compares.killers();
    for spoil in [
        Spoil::DropFirst,
        Spoil::DuplicateFirst,
        Spoil::Field(Field::TcpSeq),
        Spoil::Field(Field::SrcMac),
    ] {
        assert!(
            killers.contains(&spoil),
            "{spoil} did not kill: {killers:?}"
        );
    }
    let outcome = |spoil: Spoil| {
        compares
            .cells
            .iter()
            .find(|c| c.spoil == spoil)
            .map(|c| c.outcome.clone())
    };
    // No ARP crossed: that spoil never acted, and says nothing.
    assert_eq!(
        outcome(Spoil::Field(Field::ArpOperation)),
        Some(Outcome::NotApplied)
    );
    assert!(!compares.vacuous());

    let nothing = row("fake.asserts-nothing");
    assert!(nothing.vacuous(), "{nothing:?}");
    assert!(
        nothing.cells.iter().any(|c| c.outcome == Outcome::Survived),
        "spoils acted on it and it passed: {nothing:?}"
    );

    let failing = row("other.fails");
    assert_eq!(failing.baseline, "FAIL");
    assert!(failing.cells.is_empty() && !failing.judged() && !failing.vacuous());

    assert_eq!(m.vacuous(), vec!["fake.asserts-nothing"]);
    let families = m.families();
    assert_eq!(
        families["fake"],
        Family {
            judged: 2,
            killed: 1,
            not_judged: 0
        }
    );
    assert_eq!(families["fake"].kill_rate(), 50.0);
    assert_eq!(families["other"].not_judged, 1);
    let text = m.render();
    assert!(text.contains("fake.asserts-nothing"), "{text}");
    assert!(text.contains("VACUOUS"), "{text}");
    assert!(
        text.contains("fake: 1 of 2 judged checks killed (50 %)"),
        "{text}"
    );
    assert!(text.contains("other.fails"), "{text}");
}

#[test]
fn the_spoils_follow_the_planes_a_check_uses() {
    use crate::dut::needs::Uses;
    let with = |uses: &'static [Uses]| {
        spoils_for(&Needs {
            uses,
            ..Needs::IPV4
        })
    };
    assert_eq!(with(&[Uses::Link]), Spoil::link());
    assert_eq!(with(&[Uses::TcpSockets]), vec![Spoil::CallOutcome]);
    assert_eq!(
        with(&[Uses::Tables]),
        vec![
            Spoil::TableEntry,
            Spoil::TablePhantom,
            Spoil::IgnoreSettings
        ]
    );
    assert_eq!(
        with(&[Uses::Service(crate::dut::service::ServiceKind::Tls)]),
        vec![Spoil::ServiceByte]
    );
    assert!(with(&[]).is_empty());
}

/// A verdict that flips with no spoil acting is flaky, not a kill.
#[test]
fn a_failure_with_no_spoil_acting_is_flaky_not_a_kill() {
    let fail = Verdict::Fail {
        step: "s".into(),
        differences: vec![],
    };
    assert_eq!(Outcome::of(&fail, 0), Outcome::Flaky { step: "s".into() });
    assert_eq!(Outcome::of(&fail, 1), Outcome::Killed { step: "s".into() });
    assert_eq!(Outcome::of(&Verdict::Pass, 0), Outcome::NotApplied);
    assert_eq!(Outcome::of(&Verdict::Pass, 3), Outcome::Survived);
}
