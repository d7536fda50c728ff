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
    // Outside the window: silence.
    let mut tcp = established(linux());
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS, 0, 0)));
    no_segment(&tcp.handle_segment(&seg(Flags::RST, IRS + 1 + 64_000, 0, 0)));
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
    // A new SYN in the window: RST-ACK, request gone.
    let s = one_segment(&tcp.handle_segment(&seg(Flags::SYN, IRS + 10, 0, 0))).clone();
    assert_eq!((s.flags, s.seq, s.ack), (Flags::RST_ACK, 0, IRS + 11));
    assert_eq!(tcp.state(), State::Listen);
    // RFC: back to LISTEN silently.
    let mut tcp = rfc();
    tcp.handle_call(Call::Listen);
    tcp.handle_segment(&syn());
    no_segment(&tcp.handle_segment(&seg(Flags::SYN, IRS + 10, 0, 0)));
    assert_eq!(tcp.state(), State::Listen);
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
