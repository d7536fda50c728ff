//! Unit tests of the timer checks' judge: a timed event early, on time, late, exactly on
//! each bound, and the round trip's allowance capped.

use super::*;

/// The judge's verdict on an event `got_ms` after the reference, due at `expected_ms`.
fn judge(got_ms: u64, expected_ms: u64, rtt_ms: u64) -> Result<(), CheckError> {
    let start = Instant::from_micros(5_000);
    on_time(
        "retransmission 1",
        start,
        start + Duration::from_millis(got_ms),
        expected_ms,
        Duration::from_millis(rtt_ms),
    )
}

/// The failure's expected and observed text.
fn failure(got_ms: u64, expected_ms: u64, rtt_ms: u64) -> (String, String, String) {
    match judge(got_ms, expected_ms, rtt_ms) {
        Err(CheckError::WrongAnswer {
            step,
            expected,
            observed,
        }) => (step, expected, observed),
        other => panic!("{got_ms} ms for {expected_ms} ms: expected a wrong answer, got {other:?}"),
    }
}

#[test]
fn an_event_on_its_instant_is_on_time() {
    assert!(judge(1000, 1000, 1).is_ok());
    assert!(judge(200, 200, 0).is_ok());
    // A little late, within the wheel's slack.
    assert!(judge(1050, 1000, 1).is_ok());
}

#[test]
fn an_early_event_fails_and_the_early_bound_is_one_jiffy() {
    // 1 s due: the window opens at 996 ms.
    assert!(judge(996, 1000, 1).is_ok(), "exactly the early bound");
    assert_eq!(
        failure(995, 1000, 1),
        (
            "retransmission 1".into(),
            "at 1000 ms (window 996..=1110 ms)".into(),
            "at 995 ms".into()
        )
    );
    assert!(judge(500, 1000, 1).is_err());
    // An event due within the first jiffy: the window opens at the reference.
    assert!(judge(0, 3, 0).is_ok());
}

#[test]
fn a_late_event_fails_and_the_late_bound_is_the_slack_plus_ten_round_trips() {
    // 10 % of 1 s (100 ms) and ten round trips of 1 ms.
    assert_eq!(window(1000, Duration::from_millis(1)), (996, 1110));
    assert!(judge(1110, 1000, 1).is_ok(), "exactly the late bound");
    assert_eq!(
        failure(1111, 1000, 1),
        (
            "retransmission 1".into(),
            "at 1000 ms (window 996..=1110 ms)".into(),
            "at 1111 ms".into()
        )
    );
    // Below 600 ms the slack is 60 ms.
    assert_eq!(window(200, Duration::ZERO), (196, 260));
    assert!(judge(260, 200, 0).is_ok());
    assert!(judge(261, 200, 0).is_err());
    // 3 s: 300 ms of slack.
    assert_eq!(window(3000, Duration::from_millis(2)), (2996, 3320));
}

#[test]
fn the_round_trip_allowance_is_capped() {
    let cap = RTT_ALLOWANCE_CAP.total_millis();
    // Up to the cap, ten round trips.
    assert_eq!(window(1000, Duration::from_millis(cap / 10)).1, 1100 + cap);
    // Beyond it, no more: a slow round trip no longer opens the window without bound.
    assert_eq!(window(1000, Duration::from_millis(40)).1, 1100 + cap);
    assert_eq!(window(1000, Duration::from_millis(5000)).1, 1100 + cap);
    // A timer that fires 400 ms late (the spoil `delay-timer`) fails even when the round
    // trip was slow: ten round trips of 40 ms used to accept it (window up to 1500 ms).
    assert!(judge(1400, 1000, 40).is_err());
    assert!(judge(1400, 1000, 1000).is_err());
    assert!(judge(600, 200, 40).is_err());
}
