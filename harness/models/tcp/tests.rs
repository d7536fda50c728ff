//! Script-like tests of the TCP model: each reads as the exchange it checks.

use super::*;

const IRS: u32 = 1_000_000;

fn linux() -> Tcp {
    Tcp::new(Config::ipv4(Profile::linux()))
}

fn rfc() -> Tcp {
    Tcp::new(Config::ipv4(Profile::rfc()))
}

fn syn() -> SegmentIn {
    SegmentIn {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        ..SegmentIn::new(Flags::SYN, IRS, 0, 0)
    }
}

fn seg(flags: Flags, seq: u32, ack: u32, len: u32) -> SegmentIn {
    SegmentIn::new(flags, seq, ack, len)
}

/// The only segment in `out`, or a panic naming what was there.
fn one_segment(out: &[Output]) -> &SegmentOut {
    let segs: Vec<_> = out
        .iter()
        .filter_map(|o| {
            if let Output::Segment(s) = o {
                Some(s)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(segs.len(), 1, "expected one segment, got {out:?}");
    segs[0]
}

fn no_segment(out: &[Output]) {
    assert!(
        !out.iter().any(|o| matches!(o, Output::Segment(_))),
        "expected silence, got {out:?}"
    );
}

/// LISTEN → SYN → SYN-ACK → ACK: ESTABLISHED with RCV.NXT = IRS+1, SND.NXT = ISS+1.
fn established(mut tcp: Tcp) -> Tcp {
    tcp.handle_call(Call::Listen);
    let out = tcp.handle_segment(&syn());
    assert_eq!(one_segment(&out).flags, Flags::SYN_ACK);
    let out = tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 1, 0));
    assert_eq!(out, vec![Output::Established]);
    assert_eq!(tcp.state(), State::Established);
    tcp.observe_window(64_000);
    tcp
}

#[test]
fn passive_open_answers_with_syn_ack_and_echoed_options() {
    let mut tcp = linux();
    tcp.handle_call(Call::Listen);
    let out = tcp.handle_segment(&syn());
    let s = one_segment(&out);
    assert_eq!((s.flags, s.seq, s.ack), (Flags::SYN_ACK, 0, IRS + 1));
    assert_eq!(s.options.mss, Some(1460));
    assert!(s.options.window_scale && s.options.sack_permitted);
    assert!(
        !s.options.timestamps,
        "RFC 7323 §3.2: no TSopt on a SYN-ACK unless the SYN had one"
    );
    assert_eq!(tcp.state(), State::SynReceived);
}

#[test]
fn closed_port_answers_syn_with_rst_ack_and_ack_with_rst() {
    let mut tcp = linux();
    let s = one_segment(&tcp.handle_segment(&syn())).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::RST_ACK, 0, IRS + 1));
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS, 777, 0))).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 777));
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS, 0, 0)));
}

#[test]
fn listen_resets_an_ack_and_ignores_a_rst() {
    let mut tcp = linux();
    tcp.handle_call(Call::Listen);
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS, 55, 0))).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 55));
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS, 0, 0)));
    assert_eq!(tcp.state(), State::Listen);
}

#[test]
fn syn_fin_to_listen_is_a_profile_switch() {
    let syn_fin = SegmentIn {
        flags: Flags {
            fin: true,
            ..Flags::SYN
        },
        ..syn()
    };
    let mut l = linux();
    l.handle_call(Call::Listen);
    no_segment(&l.handle_segment(&syn_fin));
    let mut r = rfc();
    r.handle_call(Call::Listen);
    assert_eq!(
        one_segment(&r.handle_segment(&syn_fin)).flags,
        Flags::SYN_ACK
    );
}

#[test]
fn in_order_data_is_acknowledged_and_delivered() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::PSH_ACK, IRS + 1, 1, 100))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 101));
    assert_eq!(
        tcp.handle_call(Call::Receive(1000)),
        vec![Output::Deliver(100)]
    );
}

#[test]
fn out_of_order_data_draws_a_dup_ack_with_sack_then_a_cumulative_ack() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 101, 1, 100))).clone();
    assert_eq!(s.ack, IRS + 1);
    assert_eq!(s.options.sack_blocks, vec![(IRS + 101, IRS + 201)]);
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 1, 100))).clone();
    assert_eq!(s.ack, IRS + 201);
    assert!(s.options.sack_blocks.is_empty());
}

#[test]
fn duplicate_data_draws_a_dsack() {
    let mut tcp = established(linux());
    tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 1, 100));
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 1, 100))).clone();
    assert_eq!(s.ack, IRS + 101);
    assert_eq!(s.options.sack_blocks, vec![(IRS + 1, IRS + 101)]);
}

#[test]
fn rst_validation_follows_rfc5961() {
    // Exact: reset.
    let mut tcp = established(linux());
    let out = tcp.handle_segment(&seg(Flags::RST, IRS + 1, 0, 0));
    assert_eq!(out, vec![Output::Error(AppError::ConnectionReset)]);
    assert_eq!(tcp.state(), State::Closed);
    // In window, not exact: challenge ACK, connection kept.
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::RST, IRS + 10, 0, 0))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 1));
    assert_eq!(tcp.state(), State::Established);
    // Outside the window: silence (RCV.NXT+RCV.WND itself is inside for Linux, see
    // `linux_accepts_an_empty_segment_at_the_right_edge`).
    let mut tcp = established(linux());
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS, 0, 0)));
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS + 2 + 64_000, 0, 0)));
    assert_eq!(tcp.state(), State::Established);
}

#[test]
fn syn_in_established_draws_a_challenge_ack() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::SYN, IRS + 5, 0, 0))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 1));
    assert_eq!(tcp.state(), State::Established);
}

#[test]
fn ack_of_unsent_data_is_answered_and_dropped() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 500, 10))).clone();
    assert_eq!(
        (s.flags, s.seq, s.ack),
        (Flags::ACK, 1, IRS + 1),
        "the data is not acknowledged"
    );
    assert_eq!(tcp.unread(), 0);
}

#[test]
fn active_close_goes_through_fin_wait_to_time_wait() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_call(Call::Close)).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::FIN_ACK, 1, IRS + 1));
    assert_eq!(tcp.state(), State::FinWait1);
    no_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 2, 0)));
    assert_eq!(tcp.state(), State::FinWait2);
    let s = one_segment(&tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 2, IRS + 2));
    assert_eq!(tcp.state(), State::TimeWait);
    // A retransmitted FIN in TIME-WAIT is acknowledged again.
    let s = one_segment(&tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0))).clone();
    assert_eq!((s.flags, s.ack), (Flags::ACK, IRS + 2));
}

#[test]
fn simultaneous_close_passes_through_closing() {
    let mut tcp = established(linux());
    tcp.handle_call(Call::Close);
    let s = one_segment(&tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 1, 0))).clone();
    assert_eq!(s.ack, IRS + 2);
    assert_eq!(tcp.state(), State::Closing);
    no_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 2, 2, 0)));
    assert_eq!(tcp.state(), State::TimeWait);
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack() {
    let mut tcp = established(linux());
    let s = one_segment(&tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 1, 0))).clone();
    assert_eq!(s.ack, IRS + 2);
    assert_eq!(tcp.state(), State::CloseWait);
    assert_eq!(
        tcp.handle_call(Call::Receive(10)),
        vec![Output::EndOfStream]
    );
    let s = one_segment(&tcp.handle_call(Call::Close)).clone();
    assert_eq!((s.flags, s.seq), (Flags::FIN_ACK, 1));
    assert_eq!(tcp.state(), State::LastAck);
    no_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 2, 2, 0)));
    assert_eq!(tcp.state(), State::Closed);
}

#[test]
fn close_with_unread_data_resets_with_the_profile_flags() {
    for (mut tcp, flags) in [
        (established(linux()), Flags::RST_ACK),
        (established(rfc()), Flags::RST),
    ] {
        tcp.handle_segment(&seg(Flags::PSH_ACK, IRS + 1, 1, 10));
        let s = one_segment(&tcp.handle_call(Call::Close)).clone();
        assert_eq!((s.flags, s.seq), (flags, 1));
        assert_eq!(tcp.state(), State::Closed);
    }
}

#[test]
fn fin_in_syn_received_moves_to_close_wait() {
    let mut tcp = linux();
    tcp.handle_call(Call::Listen);
    tcp.handle_segment(&syn());
    let out = tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 1, 0));
    assert!(out.contains(&Output::Established));
    assert_eq!(one_segment(&out).ack, IRS + 2);
    assert_eq!(tcp.state(), State::CloseWait);
}

#[test]
fn syn_received_syn_handling_is_a_profile_switch() {
    let mut tcp = linux();
    tcp.handle_call(Call::Listen);
    tcp.handle_segment(&syn());
    // The same SYN again: SYN-ACK again.
    assert_eq!(
        one_segment(&tcp.handle_segment(&syn())).flags,
        Flags::SYN_ACK
    );
    // A new SYN in the window: embryonic reset <SEQ=0><ACK=SEG.SEQ+1><RST,ACK>, request gone.
    let s = one_segment(&tcp.handle_segment(&seg(Flags::SYN, IRS + 10, 0, 0))).clone();
    assert_eq!(
        (s.flags, s.seq, s.seq_from, s.ack),
        (Flags::RST_ACK, 0, SeqFrom::Literal, IRS + 11)
    );
    assert_eq!(tcp.state(), State::Listen);
    // RFC: back to LISTEN silently.
    let mut tcp = rfc();
    tcp.handle_call(Call::Listen);
    tcp.handle_segment(&syn());
    no_segment(&tcp.handle_segment(&seg(Flags::SYN, IRS + 10, 0, 0)));
    assert_eq!(tcp.state(), State::Listen);
    // RFC: the retransmitted SYN lies before RCV.NXT: unacceptable, acknowledged.
    let mut tcp = rfc();
    tcp.handle_call(Call::Listen);
    tcp.handle_segment(&syn());
    let s = one_segment(&tcp.handle_segment(&syn())).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 1));
    assert_eq!(tcp.state(), State::SynReceived);
}

/// SYN-RECEIVED in a request socket (`tcp_check_req`): the ACK number is checked first.
#[test]
fn syn_received_request_socket_checks_the_ack_before_the_sequence() {
    let syn_received = |mut tcp: Tcp| {
        tcp.handle_call(Call::Listen);
        tcp.handle_segment(&syn());
        tcp.observe_window(64_240);
        tcp
    };
    // An ACK before the window that acknowledges nothing we sent.
    let stale = seg(Flags::ACK, IRS, 5, 0);
    let mut l = syn_received(linux());
    let s = one_segment(&l.handle_segment(&stale)).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 5));
    assert_eq!(l.state(), State::SynReceived);
    let mut r = syn_received(rfc());
    let s = one_segment(&r.handle_segment(&stale)).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 1));
    // A SYN-ACK in the window acknowledging our SYN: reset <SEQ=SEG.ACK>, request gone.
    let mut l = syn_received(linux());
    let s = one_segment(&l.handle_segment(&seg(Flags::SYN_ACK, IRS + 1, 1, 0))).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 1));
    assert_eq!(l.state(), State::Listen);
    // A RST at RCV.NXT+RCV.WND (an empty segment at the edge is in `tcp_in_window`).
    let edge_rst = seg(Flags::RST, IRS + 1 + 64_240, 0, 0);
    let mut l = syn_received(linux());
    assert_eq!(one_segment(&l.handle_segment(&edge_rst)).flags, Flags::ACK);
    assert_eq!(l.state(), State::SynReceived);
    let mut r = syn_received(rfc());
    no_segment(&r.handle_segment(&edge_rst));
    // An empty ACK at the edge completes the handshake, silently.
    let mut l = syn_received(linux());
    let out = l.handle_segment(&seg(Flags::ACK, IRS + 1 + 64_240, 1, 0));
    assert_eq!(out, vec![Output::Established]);
}

#[test]
fn active_open_and_simultaneous_open() {
    let mut tcp = linux();
    let s = one_segment(&tcp.handle_call(Call::Connect)).clone();
    assert_eq!((s.flags, s.seq), (Flags::SYN, 0));
    assert_eq!(s.options.mss, Some(1460));
    // A SYN-ACK acking something else: RST <SEQ=SEG.ACK>.
    let bad = SegmentIn {
        flags: Flags::SYN_ACK,
        ack: 7,
        ..syn()
    };
    let s = one_segment(&tcp.handle_segment(&bad)).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 7));
    assert_eq!(tcp.state(), State::SynSent);
    // A bare SYN: simultaneous open, SYN-ACK with the same ISS.
    let s = one_segment(&tcp.handle_segment(&syn())).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::SYN_ACK, 0, IRS + 1));
    assert_eq!(tcp.state(), State::SynReceived);
}

/// RFC 7323 §3.2: no TSopt on a <SYN,ACK> unless the <SYN> had one; Linux's simultaneous-open
/// SYN-ACK repeats its own SYN, timestamps included.
#[test]
fn simultaneous_open_syn_ack_options_are_a_profile_switch() {
    for (mut tcp, timestamps) in [(linux(), true), (rfc(), false)] {
        tcp.handle_call(Call::Connect);
        let s = one_segment(&tcp.handle_segment(&syn())).clone();
        assert_eq!(s.flags, Flags::SYN_ACK);
        assert_eq!(s.options.timestamps, timestamps);
        assert!(s.options.sack_permitted && s.options.window_scale);
    }
}

#[test]
fn data_is_segmented_at_the_send_mss() {
    let mut tcp = established(linux());
    let out = tcp.handle_call(Call::Send(3000));
    let lens: Vec<_> = out
        .iter()
        .filter_map(|o| {
            if let Output::Segment(s) = o {
                Some((s.len, s.flags))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        lens,
        vec![(1460, Flags::ACK), (1460, Flags::ACK), (80, Flags::PSH_ACK)]
    );
}

#[test]
fn time_wait_syn_above_rcv_nxt_reopens_under_linux() {
    let mut tcp = established(linux());
    tcp.handle_call(Call::Close);
    tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 2, 0));
    tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0));
    assert_eq!(tcp.state(), State::TimeWait);
    let new_syn = SegmentIn {
        seq: IRS + 100_000,
        ..syn()
    };
    assert_eq!(
        one_segment(&tcp.handle_segment(&new_syn)).flags,
        Flags::SYN_ACK
    );
    assert_eq!(tcp.state(), State::SynReceived);
}

#[test]
fn time_wait_reopen_picks_the_old_snd_nxt_plus_65537() {
    let mut tcp = established(linux());
    tcp.handle_call(Call::Close);
    tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0));
    tcp.handle_segment(&seg(Flags::ACK, IRS + 2, 2, 0));
    assert_eq!(tcp.state(), State::TimeWait);
    let new_syn = SegmentIn {
        seq: IRS + 100_000,
        ..syn()
    };
    let s = one_segment(&tcp.handle_segment(&new_syn)).clone();
    assert_eq!(
        (s.flags, s.seq, s.ack),
        (Flags::SYN_ACK, 2 + 65_537, IRS + 100_001)
    );
}

/// An ACK with the peer's window, which the model learns as MAX.SND.WND.
fn ack_with_window(seq: u32, ack: u32, len: u32) -> SegmentIn {
    SegmentIn {
        window: 501,
        ..seg(Flags::ACK, seq, ack, len)
    }
}

/// `tcp_sequence`: an empty segment at RCV.NXT+RCV.WND is acceptable.
#[test]
fn linux_accepts_an_empty_segment_at_the_right_edge() {
    let edge = IRS + 1 + 64_000;
    // A RST there: Linux challenges it, the RFC drops it.
    let mut l = established(linux());
    let s = one_segment(&l.handle_segment(&seg(Flags::RST, edge, 0, 0))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 1, IRS + 1));
    no_segment(&established(rfc()).handle_segment(&seg(Flags::RST, edge, 0, 0)));
    // A pure ACK there: Linux takes it silently, the RFC acknowledges it.
    no_segment(&established(linux()).handle_segment(&seg(Flags::ACK, edge, 1, 0)));
    let s = one_segment(&established(rfc()).handle_segment(&seg(Flags::ACK, edge, 1, 0))).clone();
    assert_eq!(s.reason, "unacceptable segment");
}

/// `tcp_sequence`: text beyond the window is refused while the receive queue holds the FIN,
/// but a FIN alone beyond it is let through (and then ignored in CLOSE-WAIT).
#[test]
fn linux_end_of_window_depends_on_the_receive_queue_and_the_fin() {
    let close_wait = || {
        let mut tcp = established(linux());
        tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 1, 0));
        assert_eq!(tcp.state(), State::CloseWait);
        tcp
    };
    let edge = IRS + 2 + 64_000;
    let data = SegmentIn {
        flags: Flags::PSH_ACK,
        ..seg(Flags::ACK, edge - 1, 1, 10)
    };
    assert_eq!(
        one_segment(&close_wait().handle_segment(&data)).reason,
        "unacceptable segment"
    );
    no_segment(&close_wait().handle_segment(&seg(Flags::FIN_ACK, edge, 1, 0)));
    // Once the application read the end of stream, the queue is empty: accepted, ignored.
    let mut tcp = close_wait();
    assert_eq!(
        tcp.handle_call(Call::Receive(100)),
        vec![Output::EndOfStream]
    );
    no_segment(&tcp.handle_segment(&data));
}

#[test]
fn segments_without_ack_rst_or_syn_are_dropped_by_linux_before_the_sequence_check() {
    let stale_fin = seg(
        Flags {
            fin: true,
            ..Flags::NONE
        },
        IRS,
        0,
        0,
    );
    no_segment(&established(linux()).handle_segment(&stale_fin));
    let s = one_segment(&established(rfc()).handle_segment(&stale_fin)).clone();
    assert_eq!((s.flags, s.ack), (Flags::ACK, IRS + 1));
}

/// RFC 5961 §5.2 with MAX.SND.WND learned from the peer's window (scaled by 2^7), and
/// Linux's bound by the bytes acknowledged so far.
#[test]
fn old_acks_are_ignored_within_max_snd_wnd_and_linux_bounds_it_by_bytes_acked() {
    let open = |tcp: Tcp| {
        let mut tcp = tcp;
        tcp.handle_call(Call::Listen);
        tcp.handle_segment(&syn());
        tcp.handle_segment(&ack_with_window(IRS + 1, 1, 0));
        tcp.observe_window(64_000);
        tcp
    };
    // Nothing acknowledged yet: SND.UNA−1 is within MAX.SND.WND (501 << 7) for the RFC.
    let mut r = open(rfc());
    no_segment(&r.handle_segment(&ack_with_window(IRS + 1, 0, 0)));
    // Linux: min(MAX.SND.WND, bytes_acked = 0) = 0, so it is too old: challenge ACK.
    let mut l = open(linux());
    let s = one_segment(&l.handle_segment(&ack_with_window(IRS + 1, 0, 0))).clone();
    assert_eq!(s.reason, "challenge ACK (ACK too old)");
    // After 100 bytes acknowledged, SND.UNA−1 is old, not too old, for Linux too.
    l.handle_call(Call::Send(100));
    no_segment(&l.handle_segment(&ack_with_window(IRS + 1, 101, 0)));
    no_segment(&l.handle_segment(&ack_with_window(IRS + 1, 100, 0)));
    assert_eq!(l.snd_una(), 101);
}

/// Orphaned FIN-WAIT-1 and a socket whose peer closed answer new text with the reset
/// `tcp_v4_send_reset` makes: <SEQ=SEG.ACK><CTL=RST>.
#[test]
fn text_after_the_receiving_side_shut_down_resets() {
    let fin_wait_1 = |tcp: Tcp| {
        let mut tcp = established(tcp);
        tcp.handle_call(Call::Close);
        assert_eq!(tcp.state(), State::FinWait1);
        tcp
    };
    let data = SegmentIn {
        flags: Flags::PSH_ACK,
        ..seg(Flags::ACK, IRS + 1, 1, 10)
    };
    let mut l = fin_wait_1(linux());
    let s = one_segment(&l.handle_segment(&data)).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 1));
    assert_eq!(l.state(), State::Closed);
    // RFC 1122 §4.2.2.13: a reset from SND.NXT.
    let mut r = fin_wait_1(rfc());
    let s = one_segment(&r.handle_segment(&data)).clone();
    assert_eq!((s.flags, s.seq), (Flags::RST, 2));
    // CLOSE-WAIT: text starting before RCV.NXT resets (EPIPE), text at RCV.NXT is ignored.
    let close_wait = || {
        let mut tcp = established(linux());
        tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 1, 0));
        tcp
    };
    let mut l = close_wait();
    let early = SegmentIn {
        flags: Flags::PSH_ACK,
        ..seg(Flags::ACK, IRS + 1, 1, 10)
    };
    let out = l.handle_segment(&early);
    assert_eq!(
        (one_segment(&out).flags, one_segment(&out).seq),
        (Flags::RST, 1)
    );
    assert!(out.contains(&Output::Error(AppError::BrokenPipe)));
    let at_rcv_nxt = SegmentIn {
        flags: Flags::PSH_ACK,
        ..seg(Flags::ACK, IRS + 2, 1, 10)
    };
    no_segment(&close_wait().handle_segment(&at_rcv_nxt));
}

/// An orphaned FIN-WAIT-2 is a time-wait minisocket (`tcp_timewait_state_process`).
#[test]
fn orphaned_fin_wait_2_is_a_minisocket_under_linux() {
    let fin_wait_2 = |tcp: Tcp| {
        let mut tcp = established(tcp);
        tcp.handle_call(Call::Close);
        no_segment(&tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 2, 0)));
        assert_eq!(tcp.state(), State::FinWait2);
        tcp
    };
    // The ACK number is not checked: an ACK of unsent data is absorbed.
    no_segment(&fin_wait_2(linux()).handle_segment(&seg(Flags::ACK, IRS + 1, 3, 0)));
    let s = one_segment(&fin_wait_2(rfc()).handle_segment(&seg(Flags::ACK, IRS + 1, 3, 0))).clone();
    assert_eq!(s.reason, "ACK of unsent data");
    // A SYN at RCV.NXT: reset <SEQ=0><ACK=SEG.SEQ+1>, connection gone.
    let mut l = fin_wait_2(linux());
    let s = one_segment(&l.handle_segment(&seg(Flags::SYN, IRS + 1, 0, 0))).clone();
    assert_eq!(
        (s.flags, s.seq_from, s.ack),
        (Flags::RST_ACK, SeqFrom::Literal, IRS + 2)
    );
    assert_eq!(l.state(), State::Closed);
    // A RST outside the window is acknowledged.
    let mut l = fin_wait_2(linux());
    assert_eq!(
        one_segment(&l.handle_segment(&seg(Flags::RST, IRS, 0, 0))).flags,
        Flags::ACK
    );
    // The FIN: TIME-WAIT.
    let mut l = fin_wait_2(linux());
    let s = one_segment(&l.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0))).clone();
    assert_eq!((s.flags, s.ack), (Flags::ACK, IRS + 2));
    assert_eq!(l.state(), State::TimeWait);
}

/// TIME-WAIT is a minisocket under Linux: an empty ACK at RCV.NXT is absorbed, a RST
/// elsewhere ignored, and everything else acknowledged.
#[test]
fn time_wait_minisocket_rules() {
    let time_wait = |tcp: Tcp| {
        let mut tcp = established(tcp);
        tcp.handle_call(Call::Close);
        tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 2, 0));
        tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0));
        assert_eq!(tcp.state(), State::TimeWait);
        tcp
    };
    let beyond = seg(Flags::ACK, IRS + 2, 3, 0);
    no_segment(&time_wait(linux()).handle_segment(&beyond));
    assert_eq!(
        one_segment(&time_wait(rfc()).handle_segment(&beyond)).reason,
        "ACK of unsent data"
    );
    let in_window_rst = seg(Flags::RST, IRS + 7, 0, 0);
    no_segment(&time_wait(linux()).handle_segment(&in_window_rst));
    assert_eq!(
        one_segment(&time_wait(rfc()).handle_segment(&in_window_rst)).reason,
        "challenge ACK (RST in window)"
    );
    // A retransmitted FIN is acknowledged under both.
    for tcp in [time_wait(linux()), time_wait(rfc())] {
        let mut tcp = tcp;
        let s = one_segment(&tcp.handle_segment(&seg(Flags::FIN_ACK, IRS + 1, 2, 0))).clone();
        assert_eq!((s.flags, s.seq, s.ack), (Flags::ACK, 2, IRS + 2));
        assert_eq!(tcp.state(), State::TimeWait);
    }
    // RST at RCV.NXT: gone.
    let mut l = time_wait(linux());
    no_segment(&l.handle_segment(&seg(Flags::RST, IRS + 2, 0, 0)));
    assert_eq!(l.state(), State::Closed);
}

/// Found by the `model_tcp` fuzz target (fuzz/regressions/model_tcp/): a SYN whose MSS
/// option is smaller than the timestamps option made `send_mss` subtract with overflow.
#[test]
fn an_mss_smaller_than_the_timestamps_option_does_not_underflow() {
    let mut tcp = linux();
    tcp.handle_call(Call::Listen);
    let tiny = SegmentIn {
        mss: Some(4),
        timestamps: true,
        ..syn()
    };
    tcp.handle_segment(&tiny);
    tcp.handle_segment(&seg(Flags::ACK, IRS + 1, 1, 0));
    assert_eq!(tcp.state(), State::Established);
    assert_eq!(tcp.send_mss(), 0);
    let out = tcp.handle_call(Call::Send(3));
    let lens: Vec<u32> = segments(&out).iter().map(|s| s.len).collect();
    assert_eq!(lens, vec![1, 1, 1]);
}
