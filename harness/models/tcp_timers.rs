//! When a TCP stack must retransmit and give up: the timer side of the TCP model.
//!
//! Read first: RFC 6298 §2 and §5 (the retransmission timer: initial RTO of 1 s, doubling
//! on each expiry), RFC 9293 §3.8.3 (R1/R2, MUST-20/21/23), RFC 9293 §3.8.4 and RFC 1122
//! §4.2.3.6 (keep-alives). Pure: durations in, schedules out, under a [`TimerProfile`].

use crate::models::profile::{Deviation, Profile};

/// One place where Linux's timers depart from the RFC text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TimerDeviation {
    /// RFC 6298 §5.5 doubles the RTO on every expiry and RFC 9293 §3.8.3 counts
    /// retransmissions; Linux keeps the first `tcp_syn_linear_timeouts` SYN retransmissions
    /// 1 s apart and gives up on a time budget (`tcp_retransmit_timer`, `tcp_model_timeout`).
    SynLinearTimeouts,
    /// RFC 9293 §3.8.4 leaves what happens after unanswered keep-alives to the
    /// implementation; Linux sends `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>` and reports
    /// ETIMEDOUT (`tcp_keepalive_timer` → `tcp_write_err`).
    KeepaliveDropSendsReset,
    /// RFC 9293 §3.10.7.4 / MUST-13: TIME-WAIT lasts 2·MSL, MSL being 2 minutes (4 min);
    /// Linux uses a fixed 60 s (`TCP_TIMEWAIT_LEN`), with no sysctl to change it.
    TimeWaitSixtySeconds,
    /// RFC 6298 §2.4: "Whenever RTO is computed, if it is less than 1 second, then the RTO
    /// SHOULD be rounded up to 1 second"; Linux's floor is 200 ms (`TCP_RTO_MIN`,
    /// `tcp_rto_min_us`).
    RtoMinTwoHundredMs,
    /// RFC 9293 §3.8.3 / §3.10.8: the user timeout bounds how long data may stay
    /// unacknowledged; Linux counts TCP_USER_TIMEOUT from the first retransmission
    /// (`retrans_stamp` in `retransmits_timed_out`), so it aborts one RTO later.
    UserTimeoutFromFirstRetransmission,
    /// RFC 9293 §3.8.6.1 and RFC 1122 §4.2.2.17 describe a zero-window probe carrying new
    /// data; Linux probes with a zero-length segment at SEQ=SND.UNA−1 (`tcp_xmit_probe_skb`),
    /// which the peer must acknowledge all the same.
    ZeroWindowProbeHasNoData,
}

/// The timer side of a profile: the one profile type ([`Profile`]) over [`TimerDeviation`].
pub type TimerProfile = Profile<TimerDeviation>;

impl Deviation for TimerDeviation {
    const MODEL: &'static str = "tcp timers";
    const ALL: &'static [TimerDeviation] = &[
        TimerDeviation::SynLinearTimeouts,
        TimerDeviation::KeepaliveDropSendsReset,
        TimerDeviation::TimeWaitSixtySeconds,
        TimerDeviation::RtoMinTwoHundredMs,
        TimerDeviation::UserTimeoutFromFirstRetransmission,
        TimerDeviation::ZeroWindowProbeHasNoData,
    ];
    /// Linux 6.x: every deviation.
    const LINUX: &'static [TimerDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            TimerDeviation::SynLinearTimeouts => "RFC 6298 §5.5",
            TimerDeviation::KeepaliveDropSendsReset => "RFC 9293 §3.8.4",
            TimerDeviation::TimeWaitSixtySeconds => "RFC 9293 §3.10.7.4, MUST-13",
            TimerDeviation::RtoMinTwoHundredMs => "RFC 6298 §2.4",
            TimerDeviation::UserTimeoutFromFirstRetransmission => "RFC 9293 §3.8.3",
            TimerDeviation::ZeroWindowProbeHasNoData => "RFC 9293 §3.8.6.1",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            TimerDeviation::SynLinearTimeouts => {
                "the first SYN retransmissions are 1 s apart, and it gives up on a time budget"
            }
            TimerDeviation::KeepaliveDropSendsReset => {
                "after unanswered keep-alives it sends RST,ACK and reports ETIMEDOUT"
            }
            TimerDeviation::TimeWaitSixtySeconds => "TIME-WAIT lasts 60 s, not 2·MSL (4 min)",
            TimerDeviation::RtoMinTwoHundredMs => "the RTO floor is 200 ms, not 1 s",
            TimerDeviation::UserTimeoutFromFirstRetransmission => {
                "TCP_USER_TIMEOUT counts from the first retransmission"
            }
            TimerDeviation::ZeroWindowProbeHasNoData => {
                "zero-window probes are empty segments at SND.UNA-1"
            }
        }
    }
}

/// The initial retransmission timeout, RFC 6298 §2.1 (and Linux's TCP_TIMEOUT_INIT).
pub const INITIAL_RTO_MS: u64 = 1000;

/// When a connecting stack sends its SYN again and when it gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynSchedule {
    /// Milliseconds after the first SYN at which each retransmission is due.
    pub retransmits_ms: Vec<u64>,
    /// Milliseconds after the first SYN at which the connect fails (ETIMEDOUT).
    pub give_up_ms: u64,
}

/// The SYN schedule for `syn_retries` (TCP_SYNCNT) under `profile`.
///
/// RFC 6298 §5.5: on each expiry the RTO doubles ("back off the timer"); the connection
/// gives up after `syn_retries` retransmissions, when the next timer expires.
///
/// Linux (`tcp_retransmit_timer`, `retransmits_timed_out`, `tcp_model_timeout`): the first
/// `linear_timeouts` retransmissions of a SYN keep the RTO at 1 s instead of doubling it
/// (`tcp_syn_linear_timeouts`, 4 by default since 6.5), and the give-up point is a time
/// budget computed as if the RTO had doubled, `(2^(retries+1) − 1) × 1 s`; the stack
/// retransmits at every expiry until that budget is spent.
pub fn syn_schedule(profile: &TimerProfile, syn_retries: u32, linear_timeouts: u32) -> SynSchedule {
    if !profile.has(TimerDeviation::SynLinearTimeouts) {
        let (retransmits_ms, give_up_ms) = doubling(INITIAL_RTO_MS, syn_retries as usize);
        return SynSchedule {
            retransmits_ms,
            give_up_ms,
        };
    }
    let mut retransmits_ms = Vec::new();
    let mut now = 0u64;
    let mut rto = INITIAL_RTO_MS;
    {
        let budget = INITIAL_RTO_MS * ((2u64 << syn_retries.min(30)) - 1);
        let mut sent = 0u32;
        loop {
            now += rto;
            if now >= budget {
                return SynSchedule {
                    retransmits_ms,
                    give_up_ms: now,
                };
            }
            retransmits_ms.push(now);
            sent += 1;
            if sent > linear_timeouts {
                rto *= 2;
            }
        }
    }
}

/// `count` expiries of a timer that starts at `first_rto_ms` and doubles each time (RFC
/// 6298 §5.5): the moment of each, counted from the start, and the moment of the next.
fn doubling(first_rto_ms: u64, count: usize) -> (Vec<u64>, u64) {
    let mut at: u64 = 0;
    let mut rto = first_rto_ms;
    let mut expiries = Vec::with_capacity(count);
    // Saturating: Linux accepts up to 127 SYN retries, and 2^127 ms does not fit.
    for _ in 0..count {
        at = at.saturating_add(rto);
        expiries.push(at);
        rto = rto.saturating_mul(2);
    }
    (expiries, at.saturating_add(rto))
}

/// The smallest RTO, in milliseconds (RFC 6298 §2.4: 1 s; Linux: 200 ms).
pub fn rto_min_ms(profile: &TimerProfile) -> u64 {
    if profile.has(TimerDeviation::RtoMinTwoHundredMs) {
        200
    } else {
        1000
    }
}

/// When unacknowledged data is sent again: milliseconds after its first transmission of
/// each of the first `count` retransmissions, for a connection whose only RTT sample is
/// `rtt_ms` (RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR, floored at the
/// minimum; §5.5: doubled on every expiry).
pub fn data_retransmit_schedule(profile: &TimerProfile, rtt_ms: u64, count: usize) -> Vec<u64> {
    doubling((3 * rtt_ms).max(rto_min_ms(profile)), count).0
}

/// When a connection whose data stays unacknowledged is aborted by a user timeout of
/// `user_timeout_ms`, in milliseconds after the data's first transmission.
pub fn user_timeout_abort_ms(profile: &TimerProfile, rtt_ms: u64, user_timeout_ms: u64) -> u64 {
    if profile.has(TimerDeviation::UserTimeoutFromFirstRetransmission) {
        data_retransmit_schedule(profile, rtt_ms, 1)[0] + user_timeout_ms
    } else {
        user_timeout_ms
    }
}

/// When a stack in SYN-RECEIVED sends its SYN-ACK again, and when it gives up on the
/// connection attempt, in milliseconds after the first SYN-ACK: the initial RTO of 1 s,
/// doubled on every expiry (RFC 6298 §2.1, §5.5), `retries` retransmissions.
pub fn synack_schedule(retries: u32) -> SynSchedule {
    let (retransmits_ms, give_up_ms) = doubling(INITIAL_RTO_MS, retries as usize);
    SynSchedule {
        retransmits_ms,
        give_up_ms,
    }
}

/// How long TIME-WAIT lasts, in milliseconds.
pub fn time_wait_ms(profile: &TimerProfile) -> u64 {
    if profile.has(TimerDeviation::TimeWaitSixtySeconds) {
        60_000
    } else {
        2 * 120_000
    }
}

/// When a silent peer is probed and when the connection is dropped, measured from the
/// moment keep-alive was switched on with an idle connection (RFC 9293 §3.8.4, RFC 1122
/// §4.2.3.6): the first probe after `idle_s`, then one every `interval_s`, and after
/// `count` unanswered probes the connection is dropped (Linux: with a RST, ETIMEDOUT to the
/// application).
pub fn keepalive_schedule(idle_s: u64, interval_s: u64, count: u32) -> (Vec<u64>, u64) {
    let probes: Vec<u64> = (0..u64::from(count))
        .map(|k| (idle_s + k * interval_s) * 1000)
        .collect();
    let drop_at = (idle_s + u64::from(count) * interval_s) * 1000;
    (probes, drop_at)
}

#[cfg(test)]
mod tests {

    #[test]
    fn doubling_saturates_instead_of_overflowing() {
        let (expiries, end) = doubling(1000, 127);
        assert_eq!(expiries.len(), 127);
        assert!(expiries.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(end, u64::MAX);
    }

    use super::*;

    #[test]
    fn rfc_syn_backoff_doubles() {
        let s = syn_schedule(&TimerProfile::rfc(), 3, 4);
        assert_eq!(s.retransmits_ms, vec![1000, 3000, 7000]);
        assert_eq!(s.give_up_ms, 15_000);
    }

    #[test]
    fn linux_syn_retries_are_linear_within_a_doubling_budget() {
        // Measured on 6.18 (shared/research/tcp.md C14): TCP_SYNCNT=1 → SYNs at 0, 1, 2 s,
        // ETIMEDOUT at 3 s; TCP_SYNCNT=2 → SYNs at 0..5 s, ETIMEDOUT at 7 s.
        let s = syn_schedule(&TimerProfile::linux(), 1, 4);
        assert_eq!(s.retransmits_ms, vec![1000, 2000]);
        assert_eq!(s.give_up_ms, 3000);
        let s = syn_schedule(&TimerProfile::linux(), 2, 4);
        assert_eq!(s.retransmits_ms, vec![1000, 2000, 3000, 4000, 5000]);
        assert_eq!(s.give_up_ms, 7000);
    }

    #[test]
    fn time_wait_is_two_msl_or_linuxs_minute() {
        assert_eq!(time_wait_ms(&TimerProfile::rfc()), 240_000);
        assert_eq!(time_wait_ms(&TimerProfile::linux()), 60_000);
    }

    #[test]
    fn data_retransmissions_back_off_from_the_minimum_rto() {
        assert_eq!(
            data_retransmit_schedule(&TimerProfile::linux(), 0, 3),
            vec![200, 600, 1400]
        );
        assert_eq!(
            data_retransmit_schedule(&TimerProfile::rfc(), 0, 2),
            vec![1000, 3000]
        );
    }

    #[test]
    fn synack_retransmissions_double() {
        let s = synack_schedule(2);
        assert_eq!(s.retransmits_ms, vec![1000, 3000]);
        assert_eq!(s.give_up_ms, 7000);
    }

    #[test]
    fn keepalive_probes_then_drop() {
        assert_eq!(keepalive_schedule(1, 1, 2), (vec![1000, 2000], 3000));
    }
}
