//! Timer checks that finish in seconds: SYN retransmission with backoff and keep-alive.
//!
//! Per-socket options shorten the timers (TCP_SYNCNT, TCP_KEEPIDLE/INTVL/CNT); the
//! schedule comes from [`crate::models::tcp_timers`] under the session's profile. Observed
//! times are judged against the schedule with a tolerance that covers the kernel's timer
//! granularity and the round trip measured in the same run, never against wall-clock
//! constants alone.

use crate::engine::Uses;
use std::net::IpAddr;

use crate::dut::{CallOutcome, DutError, Family, SocketCall, SocketId, SocketOption};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::models::profile::Deviation as _;
use crate::models::tcp_timers::{TimerDeviation, keepalive_schedule, syn_schedule};
use crate::suites::tcp::basic::{TcpFlow, answer_arp, open};
use crate::suites::tcp::expect::{ExpectTcp, Presence};
use crate::time::{Duration, Instant};
use crate::wire::TcpFlags;

const SYN_BACKOFF: Clause = Clause {
    id: "rfc6298-5.5-syn-backoff",
    source: "RFC 6298 §5.5, §2.1; RFC 9293 §3.8.1, §3.8.3",
    url: "https://www.rfc-editor.org/rfc/rfc6298#section-5",
    text: "(2.1) Until a round-trip time (RTT) measurement has been made ... the sender SHOULD set RTO <- 1 \
           second. (5.5) The host MUST set RTO <- RTO * 2 (\"back off the timer\"). RFC 9293: the application \
           MUST be able to set the value for R2 for a given connection (MUST-21).",
};

const KEEPALIVE: Clause = Clause {
    id: "rfc9293-3.8.4-keepalive",
    source: "RFC 9293 §3.8.4, RFC 1122 §4.2.3.6",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.8.4",
    text: "Keep-alive packets MUST only be sent when no sent data is outstanding, and no data or acknowledgment \
           packets have been received for the connection within an interval (MUST-26). ... An implementation \
           SHOULD send a keep-alive segment with no data (SHLD-12); ... the sequence number SND.NXT-1 elicits an \
           acknowledgment from the peer.",
};

const DATA_RETRANSMISSION: Clause = Clause {
    id: "rfc6298-5-data-retransmission",
    source: "RFC 6298 §2, §5; RFC 9293 §3.8.1 (MUST-18, MUST-19)",
    url: "https://www.rfc-editor.org/rfc/rfc6298#section-5",
    text: "(5.4) Retransmit the earliest segment that has not been acknowledged by the TCP receiver. (5.5) \
           The host MUST set RTO <- RTO * 2 (\"back off the timer\"). (2.4) Whenever RTO is computed, if it is \
           less than 1 second, then the RTO SHOULD be rounded up to 1 second.",
};

const USER_TIMEOUT: Clause = Clause {
    id: "rfc9293-3.10.8-user-timeout",
    source: "RFC 9293 §3.10.8, §3.8.3 (MUST-20, MUST-21)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.8",
    text: "USER TIMEOUT: For any state if the user timeout expires, flush all queues, signal the user \"error: \
           connection aborted due to user timeout\" in general and for any outstanding calls, delete the TCB, \
           enter the CLOSED state, and return.",
};

const SYNACK_RETRANSMISSION: Clause = Clause {
    id: "rfc6298-5-synack-retransmission",
    source: "RFC 6298 §2.1, §5.5; RFC 9293 §3.8.1",
    url: "https://www.rfc-editor.org/rfc/rfc6298#section-5",
    text: "(2.1) Until a round-trip time (RTT) measurement has been made for a segment sent between the sender \
           and receiver, the sender SHOULD set RTO <- 1 second. (5.5) The host MUST set RTO <- RTO * 2.",
};

const ZERO_WINDOW: Clause = Clause {
    id: "rfc9293-3.8.6.1-zero-window",
    source: "RFC 9293 §3.8.6.1 (MUST-35, MUST-36, SHLD-29, SHLD-30)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.8.6.1",
    text: "The sending TCP peer must regularly transmit at least one octet of new data (if available), or \
           retransmit to the receiving TCP peer even if the send window is zero ... The transmitting host SHOULD \
           send the first zero-window probe when a zero window has existed for the retransmission timeout period \
           (SHLD-29), and SHOULD increase exponentially the interval between successive probes (SHLD-30).",
};

/// Settings the retransmission checks pin: no tail loss probe, so the first
/// retransmission is the RTO's (RFC 6298) and not RACK-TLP's probe (RFC 8985).
const NO_TLP: &[(&str, &str)] = &[("net.ipv4.tcp_early_retrans", "0")];

/// One SYN-ACK retransmission (`tcp_synack_retries`, per namespace).
const ONE_SYNACK_RETRY: &[(&str, &str)] = &[("net.ipv4.tcp_synack_retries", "1")];

/// The checks of this module.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "tcp.timer.synack-retransmission",
        title: "an unacknowledged SYN-ACK is retransmitted after 1 s, then the attempt is dropped",
        clauses: &[SYNACK_RETRANSMISSION],
        needs: Needs {
            ipv6: false,
            peer_preresolved: false,
            settings: ONE_SYNACK_RETRY,
            switch: None,
            router: None,
            uses: &[Uses::Link, Uses::TcpSockets],
        },
        run: synack_retransmission,
    },
    CheckSpec {
        id: "tcp.timer.zero-window",
        title: "a zero window holds data back; probes back off; an opened window releases the data",
        clauses: &[ZERO_WINDOW],
        needs: Needs {
            ipv6: false,
            peer_preresolved: false,
            settings: NO_TLP,
            switch: None,
            router: None,
            uses: &[Uses::Link, Uses::TcpSockets],
        },
        run: zero_window,
    },
    CheckSpec {
        id: "tcp.timer.data-retransmission",
        title: "unacknowledged data is retransmitted after the RTO, which doubles on every expiry",
        clauses: &[DATA_RETRANSMISSION],
        needs: Needs {
            ipv6: false,
            peer_preresolved: false,
            settings: NO_TLP,
            switch: None,
            router: None,
            uses: &[Uses::Link, Uses::TcpSockets],
        },
        run: data_retransmission,
    },
    CheckSpec {
        id: "tcp.timer.user-timeout",
        title: "TCP_USER_TIMEOUT aborts a connection whose data stays unacknowledged, with ETIMEDOUT",
        clauses: &[USER_TIMEOUT],
        needs: Needs {
            ipv6: false,
            peer_preresolved: false,
            settings: NO_TLP,
            switch: None,
            router: None,
            uses: &[Uses::Link, Uses::TcpSockets],
        },
        run: user_timeout,
    },
    CheckSpec {
        id: "tcp.timer.syn-retransmission",
        title: "an unanswered SYN is retransmitted on schedule (TCP_SYNCNT=1) and connect fails with ETIMEDOUT",
        clauses: &[SYN_BACKOFF],
        needs: Needs::IPV4,
        run: syn_retransmission,
    },
    CheckSpec {
        id: "tcp.timer.keepalive",
        title: "keep-alive probes (SEQ=SND.NXT-1, no data) on schedule, then the connection is dropped",
        clauses: &[KEEPALIVE],
        needs: Needs::IPV4,
        run: keepalive,
    },
];

/// The most the measured round trip adds to a timed event's late bound.
///
/// The timer checks judge frames on the kernel's timestamps, so the harness's own latency
/// reaches a judgement only where an instant is read on the harness's clock: a reference
/// taken at the call that armed the timer (keep-alive, zero-window probe) and a call that
/// returns when the stack gave up (connect, the user timeout). Ten round trips, as measured
/// by a barrier in the same run, cover that latency on a loaded machine; capped, because
/// uncapped a slow round trip widened the window without bound: at 40 ms a retransmission
/// due at 1 s passed 400 ms late, a timer firing late by 40 % of its value. With both cores
/// kept busy (`certify --only tcp.timer --repeat 3 --hog`, docs/PERFORMANCE.md) a barrier's
/// round trip took 0.2 to 0.5 ms, once 7 ms, so the cap (ten round trips of 10 ms) never
/// bound there and the verdicts under load are those of the uncapped judge; what it
/// removes is a window opened by a round trip over 10 ms.
pub const RTT_ALLOWANCE_CAP: Duration = Duration::from_millis(100);

/// The window, in ms after the reference, in which an event due `expected_ms` after it is
/// on time: not before it (less one 4 ms jiffy, the kernel's tick at HZ=250), and not
/// later than the timer wheel's slack allows (10 %, at least 60 ms) plus ten round trips
/// capped at [`RTT_ALLOWANCE_CAP`].
fn window(expected_ms: u64, rtt: Duration) -> (u64, u64) {
    let early = expected_ms.saturating_sub(4);
    let allowance = (10 * rtt.total_millis()).min(RTT_ALLOWANCE_CAP.total_millis());
    let late = expected_ms + (expected_ms / 10).max(60) + allowance;
    (early, late)
}

/// Whether `observed` (ms since `start`) is on schedule at `expected` ms: within
/// [`window`].
fn on_time(
    step: &str,
    start: Instant,
    observed: Instant,
    expected_ms: u64,
    rtt: Duration,
) -> Result<(), CheckError> {
    let got = observed.saturating_since(start).total_millis();
    let (early, late) = window(expected_ms, rtt);
    if (early..=late).contains(&got) {
        Ok(())
    } else {
        Err(CheckError::WrongAnswer {
            step: step.into(),
            expected: format!("at {expected_ms} ms (window {early}..={late} ms)"),
            observed: format!("at {got} ms"),
        })
    }
}

/// Waits for `expected` (up to 2 s past its instant) and requires that it left the stack
/// on schedule: `at` ms after `start`, judged by [`on_time`] on its kernel timestamp.
fn expect_on_time(
    session: &mut Session<'_>,
    step: &str,
    expected: &ExpectTcp,
    start: Instant,
    at: u64,
    rtt: Duration,
) -> Result<(), CheckError> {
    session.expect(step, Duration::from_millis(at + 2000), expected)?;
    on_time(step, start, session.last_received(), at, rtt)
}

/// Requires a call to have failed with ETIMEDOUT.
fn expect_etimedout(step: &str, outcome: &CallOutcome) -> Result<(), CheckError> {
    match outcome {
        CallOutcome::Errno { name, .. } if name == "ETIMEDOUT" => Ok(()),
        other => Err(CheckError::WrongAnswer {
            step: step.into(),
            expected: "ETIMEDOUT".into(),
            observed: other.to_string(),
        }),
    }
}

/// The round trip of one ping-like exchange, measured now (a barrier costs one).
fn round_trip(session: &mut Session<'_>) -> Result<Duration, CheckError> {
    let before = session.now();
    session.barrier(
        "measuring the round trip",
        false,
        Duration::from_millis(1000),
    )?;
    Ok(session.now().saturating_since(before))
}

/// Makes the stack resolve the peer before the timed part starts: the barrier's echo
/// reply needs the peer's MAC, so the stack asks for it, and the harness answers.
fn answer_arp_ahead(session: &mut Session<'_>) -> Result<(), CheckError> {
    let e = session.ipv4()?;
    let probe = crate::wire::Frame::icmpv4(
        e.peer_mac,
        e.stack_mac,
        e.peer,
        e.stack,
        crate::wire::Icmpv4Message::echo_request(0x7e57, 1, b"resolve".to_vec()),
    );
    session.send("ping the stack so that it resolves the peer", &probe)?;
    answer_arp(session)?;
    // The echo reply itself.
    session.next_frame("echo reply", Duration::from_millis(1000))?;
    Ok(())
}

fn syn_retransmission(session: &mut Session<'_>) -> Result<(), CheckError> {
    const SOCK: SocketId = SocketId(7);
    const PEER_PORT: u16 = 9000;
    const STACK_PORT: u16 = 41_000;
    let e = session.ipv4()?;
    session.call(
        "socket",
        SocketCall::Socket {
            sock: SOCK,
            family: Family::Ipv4,
        },
    )?;
    let retries = syn_retries(session, SOCK)?;
    let schedule = syn_schedule(&TimerDeviation::profile(session.profile()), retries, 4);
    session.call(
        "bind",
        SocketCall::Bind {
            sock: SOCK,
            addr: IpAddr::V4(e.stack),
            port: STACK_PORT,
        },
    )?;
    answer_arp_ahead(session)?;
    let rtt = round_trip(session)?;
    session.call_expect(
        "connect",
        SocketCall::Connect {
            sock: SOCK,
            family: Family::Ipv4,
            addr: IpAddr::V4(e.peer),
            port: PEER_PORT,
        },
        &CallOutcome::Ok,
    )?;
    let mut flow = TcpFlow::new(session, PEER_PORT, STACK_PORT, 0)?;
    let syn = crate::suites::tcp::expect::ExpectTcp {
        ack: None,
        mss: Presence::Equal(1460),
        ..flow.expect("SYN", TcpFlags::SYN, &[])
    };
    flow.expect_segment(session, "the stack sends its SYN", &syn)?;
    // The timer runs from the moment the SYN left the stack (its receive timestamp on the
    // harness's end), not from when the harness got round to reading it.
    let start = session.last_received();
    let iss = flow.stack_next().wrapping_sub(1);
    for (k, at) in schedule.retransmits_ms.iter().enumerate() {
        let step = format!("retransmission {} of the SYN", k + 1);
        let again = crate::suites::tcp::expect::ExpectTcp {
            seq: Some(iss),
            ack: None,
            ..syn.clone()
        };
        expect_on_time(session, &step, &again, start, *at, rtt)?;
    }
    let outcome = session.call(
        "wait for connect",
        SocketCall::WaitConnected {
            sock: SOCK,
            timeout_ms: schedule.give_up_ms + 3000,
        },
    )?;
    let step = "connect gives up";
    expect_etimedout(step, &outcome)?;
    on_time(step, start, session.now(), schedule.give_up_ms, rtt)?;
    session.expect_silence("no SYN after giving up", Duration::from_millis(300))?;
    session.call("close", SocketCall::Close { sock: SOCK })?;
    Ok(())
}

fn keepalive(session: &mut Session<'_>) -> Result<(), CheckError> {
    let (idle, interval, count) = (1, 1, 2);
    let (probes, drop_at) = keepalive_schedule(idle, interval, count);
    let (mut flow, conn) = open(session)?;
    let rtt = round_trip(session)?;
    for option in [
        SocketOption::KeepIdle(idle as u32),
        SocketOption::KeepInterval(interval as u32),
        SocketOption::KeepCount(count),
    ] {
        session.call(
            "set keep-alive options",
            SocketCall::SetOption { sock: conn, option },
        )?;
    }
    // The keep-alive timer is armed by the call that switches keep-alive on: the schedule
    // runs from the moment that call was made, not from its return, which a loaded harness
    // reads late (a probe on time would look early).
    let start = session.now();
    session.call(
        "set keep-alive options",
        SocketCall::SetOption {
            sock: conn,
            option: SocketOption::KeepAlive(true),
        },
    )?;
    for (k, at) in probes.iter().enumerate() {
        let step = format!("keep-alive probe {}", k + 1);
        // SEQ=SND.NXT-1 and no data: the peer must answer with an ACK (RFC 1122 4.2.3.6).
        let probe = crate::suites::tcp::expect::ExpectTcp {
            seq: Some(flow.stack_next().wrapping_sub(1)),
            ..flow.expect("keep-alive probe", TcpFlags::ACK, &[])
        };
        expect_on_time(session, &step, &probe, start, *at, rtt)?;
    }
    let step = "the connection is dropped";
    if TimerDeviation::profile(session.profile()).has(TimerDeviation::KeepaliveDropSendsReset) {
        let reset = flow.expect(
            "RST after unanswered probes",
            TcpFlags::RST | TcpFlags::ACK,
            &[],
        );
        flow.expect_segment_within(session, step, &reset, Duration::from_millis(drop_at + 2000))?;
        on_time(step, start, session.last_received(), drop_at, rtt)?;
    }
    // Whatever the profile says about the RST, the application learns of the drop.
    // After the last probe the drop is due one interval later; a second more is slack.
    let left = interval * 1000 + 1000;
    let outcome = session.call(
        "read",
        SocketCall::Recv {
            sock: conn,
            max: 100,
            timeout_ms: left,
        },
    )?;
    expect_etimedout(step, &outcome)?;
    session.call("close", SocketCall::Close { sock: conn })?;
    Ok(())
}

/// Opens a connection, has the stack send `len` bytes and returns the flow, the socket, the
/// data segment's expectation and when it was seen.
/// Closes `conn` with SO_LINGER 0 (a RST, no lingering state).
fn abort(session: &mut Session<'_>, conn: SocketId) -> Result<(), CheckError> {
    session.call(
        "abort",
        SocketCall::SetOption {
            sock: conn,
            option: SocketOption::Linger(Some(0)),
        },
    )?;
    session.call("close", SocketCall::Close { sock: conn })?;
    Ok(())
}

/// Opens a connection, sets `options` on it, has the stack send `len` bytes the peer never
/// acknowledges; returns the flow, the socket, the data's expectation, when it was seen
/// and the round trip measured before.
fn send_unacknowledged(
    session: &mut Session<'_>,
    len: usize,
    options: &[SocketOption],
) -> Result<
    (
        TcpFlow,
        SocketId,
        crate::suites::tcp::expect::ExpectTcp,
        Instant,
        Duration,
    ),
    CheckError,
> {
    let (mut flow, conn) = open(session)?;
    for option in options {
        session.call(
            "set an option",
            SocketCall::SetOption {
                sock: conn,
                option: *option,
            },
        )?;
    }
    let rtt = round_trip(session)?;
    let data = vec![b'd'; len];
    session.call_expect(
        "the application writes",
        SocketCall::Send {
            sock: conn,
            data: data.clone(),
        },
        &CallOutcome::Sent(len),
    )?;
    let expected = flow.expect("data", TcpFlags::PSH | TcpFlags::ACK, &data);
    flow.expect_segment(session, "the stack sends the data", &expected)?;
    // The retransmission timer runs from the moment the data left the stack (its receive
    // timestamp on the harness's end): the harness may read it late on a loaded machine,
    // and a reference taken then made a retransmission on time look early.
    let sent_at = session.last_received();
    Ok((flow, conn, expected, sent_at, rtt))
}

fn data_retransmission(session: &mut Session<'_>) -> Result<(), CheckError> {
    let profile = TimerDeviation::profile(session.profile());
    let (mut flow, conn, expected, sent_at, rtt) = send_unacknowledged(session, 100, &[])?;
    let schedule =
        crate::models::tcp_timers::data_retransmit_schedule(&profile, rtt.total_millis(), 3);
    for (k, at) in schedule.iter().enumerate() {
        let step = format!("retransmission {} of the data", k + 1);
        expect_on_time(session, &step, &expected, sent_at, *at, rtt)?;
    }
    // The peer finally acknowledges: the retransmissions stop.
    flow.send(
        session,
        "the peer acknowledges",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    session.expect_silence(
        "nothing is retransmitted after the ACK",
        Duration::from_millis(schedule[0] + 100),
    )?;
    abort(session, conn)
}

fn user_timeout(session: &mut Session<'_>) -> Result<(), CheckError> {
    const USER_TIMEOUT_MS: u32 = 1000;
    let profile = TimerDeviation::profile(session.profile());
    let (_flow, conn, expected, sent_at, rtt) =
        send_unacknowledged(session, 100, &[SocketOption::UserTimeout(USER_TIMEOUT_MS)])?;
    let schedule =
        crate::models::tcp_timers::data_retransmit_schedule(&profile, rtt.total_millis(), 8);
    let abort_at = crate::models::tcp_timers::user_timeout_abort_ms(
        &profile,
        rtt.total_millis(),
        u64::from(USER_TIMEOUT_MS),
    );
    for (k, at) in schedule.iter().take_while(|at| **at < abort_at).enumerate() {
        let step = format!("retransmission {} before the user timeout", k + 1);
        expect_on_time(session, &step, &expected, sent_at, *at, rtt)?;
    }
    let step = "the user timeout aborts the connection";
    let outcome = session.call(
        step,
        SocketCall::Recv {
            sock: conn,
            max: 100,
            timeout_ms: u64::from(USER_TIMEOUT_MS) + 2000,
        },
    )?;
    expect_etimedout(step, &outcome)?;
    on_time(step, sent_at, session.now(), abort_at, rtt)?;
    session.call("close", SocketCall::Close { sock: conn })?;
    Ok(())
}

/// No frame for `window`, but for the stack revalidating the peer's address: a long quiet
/// period (a declared retry count of 5 waits 32 s) outlives a neighbour entry's reachable
/// time, and a stack that polls its neighbours (RFC 1122 §2.3.2.1's unicast poll) asks for
/// the peer again. Such a request is answered by the peer (a unicast reply) and noted; any
/// other frame fails the step.
fn silence_but_neighbour_upkeep(
    session: &mut Session<'_>,
    step: &str,
    window: Duration,
) -> Result<(), CheckError> {
    let e = session.ipv4()?;
    let end = session.now() + window;
    loop {
        let left = end.saturating_since(session.now());
        if left == Duration::ZERO {
            return Ok(());
        }
        let Some(observed) = session.next_frame(step, left)? else {
            return Ok(());
        };
        let upkeep = match &observed.parsed {
            Ok(f) => match &f.network {
                crate::wire::Network::Arp(a) => {
                    a.operation == crate::wire::ArpOperation::Request
                        && a.sender_mac == e.stack_mac
                        && a.sender_ip == e.stack
                        && a.target_ip == e.peer
                }
                _ => false,
            },
            Err(_) => false,
        };
        if !upkeep {
            return Err(CheckError::Unexpected {
                step: step.into(),
                observed: observed.summary(),
            });
        }
        session
            .note("the stack revalidates the peer's address (neighbour upkeep): the peer answers");
        let reply = crate::wire::Frame::arp_reply(e.peer_mac, e.peer, e.stack_mac, e.stack);
        session.send("the peer answers the revalidation", &reply)?;
    }
}

/// The SYN retries of socket `sock`: 1, set with `TCP_SYNCNT`; or, on a stack without the
/// option that keeps them at a fixed count its profile declares (`[tcp] syn_retries`), that
/// count, which the exchange must then show (lwIP: `TCP_SYNMAXRTX`, a compile-time
/// constant). Without either the check is unsupported, with the stack's reason.
fn syn_retries(session: &mut Session<'_>, sock: SocketId) -> Result<u32, CheckError> {
    let set = session.call(
        "set TCP_SYNCNT",
        SocketCall::SetOption {
            sock,
            option: SocketOption::SynCount(1),
        },
    );
    match set {
        Ok(_) => Ok(1),
        Err(CheckError::Dut {
            source: DutError::NotSupported { what },
            step,
        }) => {
            let declared = session.fixed_behaviour().and_then(|f| {
                f.syn_retries()
                    .map(|n| (n, f.stack.clone(), f.file.clone()))
            });
            let Some((retries, stack, file)) = declared else {
                return Err(CheckError::Dut {
                    step,
                    source: DutError::NotSupported { what },
                });
            };
            session.note(format!(
                "ran against {stack}'s fixed SYN retries ({file}): {retries} ({what}; the check sets TCP_SYNCNT = 1)"
            ));
            Ok(retries)
        }
        Err(e) => Err(e),
    }
}

/// The SYN-ACK retries the check pins (`ONE_SYNACK_RETRY`), or, on a stack that keeps
/// them at a fixed count its profile declares (`[tcp] synack_retries`), that count: the
/// schedule is then the declared one's, and the exchange must show it (a retransmission
/// more or fewer than declared fails the check).
fn synack_retries(session: &mut Session<'_>) -> u32 {
    let Some(fixed) = session.fixed_behaviour() else {
        return 1;
    };
    let Some(retries) = fixed.synack_retries() else {
        return 1;
    };
    session.note(format!(
        "ran against {}'s fixed SYN-ACK retries ({}): {retries} (the check pins net.ipv4.tcp_synack_retries = 1)",
        fixed.stack, fixed.file
    ));
    retries
}

fn synack_retransmission(session: &mut Session<'_>) -> Result<(), CheckError> {
    const PORT: u16 = 8081;
    let retries = synack_retries(session);
    let schedule = crate::models::tcp_timers::synack_schedule(retries);
    let e = session.ipv4()?;
    session.call_expect(
        "listen",
        SocketCall::Listen {
            sock: SocketId(3),
            family: Family::Ipv4,
            addr: Some(IpAddr::V4(e.stack)),
            port: PORT,
            backlog: 8,
        },
        &CallOutcome::Ok,
    )?;
    answer_arp_ahead(session)?;
    let rtt = round_trip(session)?;
    let mut flow = TcpFlow::new(session, 40_001, PORT, 5_000_000)?;
    flow.send(session, "the peer sends a SYN", flow.syn())?;
    let syn_ack = flow.expect("SYN-ACK", TcpFlags::SYN | TcpFlags::ACK, &[]);
    flow.expect_segment(session, "the stack answers", &syn_ack)?;
    let start = session.last_received();
    let again = crate::suites::tcp::expect::ExpectTcp {
        seq: Some(flow.stack_next().wrapping_sub(1)),
        ..syn_ack.clone()
    };
    for (k, at) in schedule.retransmits_ms.iter().enumerate() {
        let step = format!("retransmission {} of the SYN-ACK", k + 1);
        expect_on_time(session, &step, &again, start, *at, rtt)?;
    }
    // Nothing more is sent, and once the attempt is given up a late ACK meets the listener,
    // which answers it with <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.2).
    let quiet = schedule.give_up_ms - schedule.retransmits_ms.last().copied().unwrap_or(0);
    silence_but_neighbour_upkeep(
        session,
        "no further SYN-ACK",
        Duration::from_millis(quiet + (quiet / 10).max(60) + 300),
    )?;
    let late = flow.segment(TcpFlags::ACK, &[]);
    let ack_value = late.ack;
    flow.send(session, "the peer's ACK comes too late", late)?;
    let reset = crate::suites::tcp::expect::ExpectTcp {
        seq: Some(ack_value),
        ack: None,
        ..flow.expect("RST", TcpFlags::RST, &[])
    };
    session.expect(
        "the attempt is gone: the listener resets",
        Duration::from_millis(1000),
        &reset,
    )?;
    session.call("close", SocketCall::Close { sock: SocketId(3) })?;
    Ok(())
}

fn zero_window(session: &mut Session<'_>) -> Result<(), CheckError> {
    let profile = TimerDeviation::profile(session.profile());
    let (mut flow, conn) = open(session)?;
    let rtt = round_trip(session)?;
    // The peer closes its window.
    let closed = crate::wire::TcpSegment {
        window: 0,
        ..flow.segment(TcpFlags::ACK, &[])
    };
    flow.send(session, "the peer advertises a zero window", closed)?;
    let data = vec![b'z'; 100];
    // The probe timer is armed by the write that finds the window closed: the schedule
    // runs from the moment the call was made, not from its return.
    let start = session.now();
    session.call_expect(
        "the application writes",
        SocketCall::Send {
            sock: conn,
            data: data.clone(),
        },
        &CallOutcome::Sent(100),
    )?;
    let schedule =
        crate::models::tcp_timers::data_retransmit_schedule(&profile, rtt.total_millis(), 2);
    for (k, at) in schedule.iter().enumerate() {
        let step = format!("zero-window probe {}", k + 1);
        let probe = if profile.has(TimerDeviation::ZeroWindowProbeHasNoData) {
            crate::suites::tcp::expect::ExpectTcp {
                seq: Some(flow.stack_next().wrapping_sub(1)),
                ..flow.expect("zero-window probe", TcpFlags::ACK, &[])
            }
        } else {
            // One octet of new data.
            crate::suites::tcp::expect::ExpectTcp {
                ..flow.expect("zero-window probe", TcpFlags::ACK, &data[..1])
            }
        };
        expect_on_time(session, &step, &probe, start, *at, rtt)?;
    }
    // The peer opens its window: the data goes out at once.
    flow.send(
        session,
        "the peer opens its window",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    let expected = flow.expect("the held data", TcpFlags::PSH | TcpFlags::ACK, &data);
    flow.expect_segment(session, "the stack sends the held data", &expected)?;
    flow.send(
        session,
        "the peer acknowledges",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    abort(session, conn)
}

#[cfg(test)]
mod tests;
