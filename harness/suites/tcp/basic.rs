//! The first end-to-end TCP checks: the harness, acting as the peer host, answers the
//! stack's ARP request, opens a connection to a listening socket, exchanges data and closes
//! it, comparing every frame the stack sends with what RFC 9293 (and RFC 826, RFC 7323,
//! RFC 6691) says it must be.
//!
//! Read first: RFC 9293 §3.5 (establishing a connection), §3.6 (closing), §3.10.7
//! (segment arrives); RFC 826 (ARP); RFC 7323 §2.2, §3.2 (options on a SYN-ACK).

use crate::engine::Uses;
use std::net::{IpAddr, Ipv4Addr};

use crate::dut::{CallOutcome, Family, ShutdownHow, SocketCall, SocketId, TcpState};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::suites::arp::expect::ExpectArp;
use crate::suites::arp::one_neighbour::ExpectToLearnedMac;
use crate::suites::tcp::expect::{ExpectTcp, Presence};
use crate::time::Duration;
use crate::wire::{ArpOperation, Frame, MacAddr, TcpFlags, TcpOption, TcpSegment};

/// How long the stack gets for an immediate answer. Immediate answers do not depend on
/// timing: this is only the point where waiting is given up.
const ANSWER: Duration = Duration::from_millis(1000);
/// How long silence is listened for where nothing must come.
const QUIET: Duration = Duration::from_millis(200);

const ARP_REQUEST: Clause = crate::suites::arp::REQUEST;

const SYN_ACK: Clause = Clause {
    id: "rfc9293-3.5-syn-ack",
    source: "RFC 9293 §3.10.7.2",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.2",
    text: "If the SYN bit is set ... Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ ... ISS should be \
           selected and a SYN segment sent of the form: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>",
};

const MSS_OPTION: Clause = Clause {
    id: "rfc9293-3.7.1-mss",
    source: "RFC 9293 §3.7.1, RFC 6691 §2",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.7.1",
    text: "TCP implementations SHOULD send an MSS Option in every SYN segment when its receive MSS differs \
           from the default 536 for IPv4 (MUST-15 to MUST-16); the MSS value is the MTU less the fixed IP and TCP headers.",
};

const SYN_ACK_OPTIONS: Clause = Clause {
    id: "rfc7323-3.2-ts-syn-ack",
    source: "RFC 7323 §2.2, §3.2",
    url: "https://www.rfc-editor.org/rfc/rfc7323#section-3.2",
    text: "A TCP MAY send the Window Scale option in a <SYN,ACK> segment only if it received a Window Scale \
           option in the initial <SYN> segment ... A TSopt MUST NOT be sent in a <SYN,ACK> segment unless the <SYN> \
           segment contained TSopt.",
};

const ACK_DATA: Clause = Clause {
    id: "rfc9293-3.10.7.4-ack-data",
    source: "RFC 9293 §3.10.7.4 (seventh), §3.8.6.3",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.4",
    text: "Once the TCP endpoint takes responsibility for the data, it advances RCV.NXT over the data accepted \
           ... Send an acknowledgment of the form: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>",
};

const SEND_DATA: Clause = Clause {
    id: "rfc9293-3.10.2-send",
    source: "RFC 9293 §3.10.2",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.2",
    text: "ESTABLISHED STATE: Segmentize the buffer and send it with a piggybacked acknowledgment \
           (acknowledgment value = RCV.NXT).",
};

const ACTIVE_CLOSE: Clause = Clause {
    id: "rfc9293-3.6-active-close",
    source: "RFC 9293 §3.6, §3.10.4, §3.10.7.4 (eighth)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.6",
    text: "ESTABLISHED STATE (CLOSE call): form a FIN segment and send it, and set state to FIN-WAIT-1 ... \
           FIN-WAIT-2 STATE (FIN arrives): Enter the TIME-WAIT state. Start the time-wait timer.",
};

const PASSIVE_CLOSE: Clause = Clause {
    id: "rfc9293-3.6-passive-close",
    source: "RFC 9293 §3.6, §3.10.7.4 (eighth)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.6",
    text: "If the FIN bit is set ... advance RCV.NXT over the FIN, and send an acknowledgment for the FIN ... \
           ESTABLISHED STATE: Enter the CLOSE-WAIT state. ... LAST-ACK STATE: The only thing that can arrive in \
           this state is an acknowledgment of our FIN. If our FIN is now acknowledged, delete the TCB, enter the \
           CLOSED state, and return.",
};

/// The same clause the matrix row for CLOSED enforces.
const CLOSED_PORT: Clause = crate::suites::tcp::checks::CLOSED;

/// IPv4, and no tail loss probe: these checks answer every segment at once, but a tail loss
/// probe (a timer of a few milliseconds, RFC 8985) would retransmit the stack's data whenever
/// the harness is slow to answer, and an immediate check must not depend on timing.
const IMMEDIATE: Needs = Needs {
    ipv6: false,
    peer_preresolved: false,
    settings: &[("net.ipv4.tcp_early_retrans", "0")],
    switch: None,
    router: None,
    uses: &[Uses::Link, Uses::TcpSockets],
};

/// The checks of this module, in the order `certify` runs them.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "tcp.passive-open.active-close",
        title: "ARP, three-way handshake to a listener, data both ways, close by the stack",
        clauses: &[
            ARP_REQUEST,
            SYN_ACK,
            MSS_OPTION,
            SYN_ACK_OPTIONS,
            ACK_DATA,
            SEND_DATA,
            ACTIVE_CLOSE,
        ],
        needs: IMMEDIATE,
        run: passive_open_active_close,
    },
    CheckSpec {
        id: "tcp.passive-open.passive-close",
        title: "three-way handshake to a listener, close by the peer (CLOSE-WAIT, LAST-ACK)",
        clauses: &[ARP_REQUEST, SYN_ACK, PASSIVE_CLOSE],
        needs: IMMEDIATE,
        run: passive_open_passive_close,
    },
    CheckSpec {
        id: "tcp.closed-port.syn",
        title: "a SYN to a port nobody listens on draws <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>",
        clauses: &[ARP_REQUEST, CLOSED_PORT],
        needs: IMMEDIATE,
        run: syn_to_closed_port,
    },
];

/// The port the stack listens on in these checks.
pub const SERVER_PORT: u16 = 8080;
/// The peer's port.
pub const PEER_PORT: u16 = 40_000;
/// The peer's initial sequence number (an input, as the model takes it).
pub const PEER_ISN: u32 = 1_000_000;
/// The peer's advertised window.
const PEER_WINDOW: u16 = 64_240;
/// The stack's listening socket and, once accepted, its connection.
const LISTENER: SocketId = SocketId(1);

/// One TCP connection seen from the peer: addresses, ports and both sequence spaces.
#[derive(Debug, Clone)]
pub struct TcpFlow {
    peer_mac: MacAddr,
    stack_mac: MacAddr,
    peer_ip: Ipv4Addr,
    stack_ip: Ipv4Addr,
    peer_port: u16,
    stack_port: u16,
    /// The peer's next sequence number (absolute).
    snd_nxt: u32,
    peer_isn: u32,
    /// The stack's ISN, learned from its SYN or SYN-ACK.
    stack_isn: Option<u32>,
    /// The next sequence number expected from the stack (absolute).
    rcv_nxt: u32,
    /// The TTL of the stack's segments ([`Session::tcp_config`]).
    ttl: u8,
}

impl TcpFlow {
    /// A flow from the session's peer to the stack's `stack_port`, peer ISN `isn`.
    pub fn new(
        session: &Session<'_>,
        peer_port: u16,
        stack_port: u16,
        isn: u32,
    ) -> Result<Self, CheckError> {
        let e = session.ipv4()?;
        Ok(TcpFlow {
            peer_mac: e.peer_mac,
            stack_mac: e.stack_mac,
            peer_ip: e.peer,
            stack_ip: e.stack,
            peer_port,
            stack_port,
            snd_nxt: isn,
            peer_isn: isn,
            stack_isn: None,
            rcv_nxt: 0,
            ttl: session.tcp_config().ttl,
        })
    }

    /// A segment from the peer with the current sequence and acknowledgment numbers.
    pub fn segment(&self, flags: TcpFlags, payload: &[u8]) -> TcpSegment {
        let ack = if flags.contains(TcpFlags::ACK) {
            self.rcv_nxt
        } else {
            0
        };
        TcpSegment {
            window: PEER_WINDOW,
            payload: payload.to_vec(),
            ..TcpSegment::new(self.peer_port, self.stack_port, self.snd_nxt, ack, flags)
        }
    }

    /// Wraps a segment from the peer in Ethernet and IPv4.
    pub fn frame(&self, segment: TcpSegment) -> Frame {
        Frame::tcp_v4(
            self.peer_mac,
            self.stack_mac,
            self.peer_ip,
            self.stack_ip,
            segment,
        )
    }

    /// Sends a segment and advances the peer's sequence space over its SYN, FIN and data.
    pub fn send(
        &mut self,
        session: &mut Session<'_>,
        step: &str,
        segment: TcpSegment,
    ) -> Result<(), CheckError> {
        let len = segment.payload.len() as u32
            + u32::from(segment.flags.contains(TcpFlags::SYN))
            + u32::from(segment.flags.contains(TcpFlags::FIN));
        session.send(step, &self.frame(segment))?;
        self.snd_nxt = self.snd_nxt.wrapping_add(len);
        Ok(())
    }

    /// The peer's SYN: MSS 1460, SACK permitted, window scale 7, no timestamps.
    pub fn syn(&self) -> TcpSegment {
        TcpSegment {
            options: vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ],
            ..self.segment(TcpFlags::SYN, &[])
        }
    }

    /// An expectation for the stack's next segment with `flags` and `payload`, at the
    /// current sequence numbers, options left open.
    pub fn expect(&self, name: &str, flags: TcpFlags, payload: &[u8]) -> ExpectTcp {
        ExpectTcp {
            name: name.to_string(),
            eth: (self.stack_mac, self.peer_mac),
            ip: (IpAddr::V4(self.stack_ip), IpAddr::V4(self.peer_ip)),
            ttl: Some(self.ttl),
            ports: (self.stack_port, self.peer_port),
            flags,
            seq: self.stack_isn.map(|_| self.rcv_nxt),
            ack: Some(self.snd_nxt),
            payload: payload.to_vec(),
            mss: Presence::Any,
            sack_permitted: Presence::Any,
            window_scale: Presence::Any,
            timestamps: Presence::Any,
            relative_to: (self.stack_isn, Some(self.peer_isn)),
        }
    }

    /// The next sequence number expected from the stack (its SND.NXT, absolute).
    pub fn stack_next(&self) -> u32 {
        self.rcv_nxt
    }

    /// Waits for the stack's segment, compares it, and advances the stack's sequence space.
    pub fn expect_segment(
        &mut self,
        session: &mut Session<'_>,
        step: &str,
        expected: &ExpectTcp,
    ) -> Result<(), CheckError> {
        self.expect_segment_within(session, step, expected, ANSWER)
    }

    /// [`TcpFlow::expect_segment`] with its own limit, for segments a timer sends.
    pub fn expect_segment_within(
        &mut self,
        session: &mut Session<'_>,
        step: &str,
        expected: &ExpectTcp,
        timeout: Duration,
    ) -> Result<(), CheckError> {
        let frame = session.expect(step, timeout, expected)?;
        let Some(seg) = frame.as_tcp() else {
            return Ok(());
        };
        if seg.flags.contains(TcpFlags::SYN) {
            self.stack_isn = Some(seg.seq);
            self.rcv_nxt = seg.seq;
        }
        self.rcv_nxt = self.rcv_nxt.wrapping_add(
            seg.payload.len() as u32
                + u32::from(seg.flags.contains(TcpFlags::SYN))
                + u32::from(seg.flags.contains(TcpFlags::FIN)),
        );
        Ok(())
    }
}

/// Expects the stack's broadcast ARP request for the peer and answers it; or, when the
/// stack declares that it never asks (`[arp.one_neighbour]`: passt), expects its next
/// frame to go straight to the MAC the peer sent from, and leaves that frame for the step
/// that waits for it.
///
/// The request is one case of RFC 826's clause, tallied ([`Session::tally`]): a check that
/// fails later (a RST without ACK) is then not labelled with this clause, which held. A stack
/// declared never to ask exercises nothing of it: no case is tallied.
pub(crate) fn answer_arp(session: &mut Session<'_>) -> Result<(), CheckError> {
    let e = session.ipv4()?;
    if let Some(learned) = ExpectToLearnedMac::declared(
        session.fixed_behaviour().as_deref(),
        e.peer_mac,
        e.stack_mac,
    ) {
        return session.expect_and_keep("stack resolves the peer", ANSWER, &learned);
    }
    let asked = session.expect(
        "stack resolves the peer",
        ANSWER,
        &ExpectArp {
            operation: ArpOperation::Request,
            eth_destination: MacAddr::BROADCAST,
            sender_mac: e.stack_mac,
            sender_ip: e.stack,
            target_mac: None,
            target_ip: e.peer,
        },
    );
    match &asked {
        Ok(_) => session.tally(ARP_REQUEST, None),
        Err(CheckError::Dut { .. }) => {}
        Err(other) => session.tally(ARP_REQUEST, Some(other.to_string())),
    }
    asked?;
    let reply = Frame::arp_reply(e.peer_mac, e.peer, e.stack_mac, e.stack);
    session.send("peer answers ARP", &reply)
}

/// Listen, then the peer's SYN; expect ARP, the SYN-ACK with its options, send the ACK,
/// accept. Leaves the connection ESTABLISHED.
pub(crate) fn open(session: &mut Session<'_>) -> Result<(TcpFlow, SocketId), CheckError> {
    let stack_ip = session.ipv4()?.stack;
    session.call_expect(
        "listen",
        SocketCall::Listen {
            sock: LISTENER,
            family: Family::Ipv4,
            addr: Some(IpAddr::V4(stack_ip)),
            port: SERVER_PORT,
            backlog: 8,
        },
        &CallOutcome::Ok,
    )?;
    session.expect_tcp_state(
        "listener is in LISTEN",
        SERVER_PORT,
        0,
        Some(TcpState::Listen),
    )?;
    let mut flow = TcpFlow::new(session, PEER_PORT, SERVER_PORT, PEER_ISN)?;
    flow.send(session, "peer sends SYN", flow.syn())?;
    answer_arp(session)?;
    let features = session.tcp_config();
    fn offered<T>(on: bool) -> Presence<T> {
        if on {
            Presence::Present
        } else {
            Presence::Absent
        }
    }
    let syn_ack = ExpectTcp {
        mss: Presence::Equal(1460),
        sack_permitted: offered(features.sack),
        window_scale: offered(features.window_scaling),
        timestamps: Presence::Absent,
        ..flow.expect("SYN-ACK", TcpFlags::SYN | TcpFlags::ACK, &[])
    };
    flow.expect_segment(session, "stack answers the SYN", &syn_ack)?;
    flow.send(
        session,
        "peer completes the handshake",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    let outcome = session.call(
        "accept",
        SocketCall::Accept {
            listener: LISTENER,
            timeout_ms: 1000,
        },
    )?;
    let CallOutcome::NewSocket(conn) = outcome else {
        return Err(CheckError::WrongAnswer {
            step: "accept".into(),
            expected: "a new socket".into(),
            observed: format!("{outcome:?}"),
        });
    };
    session.expect_tcp_state(
        "connection is ESTABLISHED",
        SERVER_PORT,
        PEER_PORT,
        Some(TcpState::Established),
    )?;
    Ok((flow, conn))
}

/// Data from the peer is acknowledged and delivered; data from the stack carries the
/// piggybacked acknowledgment.
fn exchange_data(
    session: &mut Session<'_>,
    flow: &mut TcpFlow,
    conn: SocketId,
) -> Result<(), CheckError> {
    let request = b"GET / HTTP/1.1\r\nHost: dut\r\n\r\n";
    flow.send(
        session,
        "peer sends data",
        flow.segment(TcpFlags::PSH | TcpFlags::ACK, request),
    )?;
    let ack = flow.expect("ACK of the data", TcpFlags::ACK, &[]);
    flow.expect_segment(session, "stack acknowledges the data", &ack)?;
    session.call_expect(
        "stack application reads",
        SocketCall::Recv {
            sock: conn,
            max: 4096,
            timeout_ms: 1000,
        },
        &CallOutcome::Data(request.to_vec()),
    )?;
    let response = b"HTTP/1.1 204 No Content\r\n\r\n";
    session.call_expect(
        "stack application writes",
        SocketCall::Send {
            sock: conn,
            data: response.to_vec(),
        },
        &CallOutcome::Sent(response.len()),
    )?;
    let data = flow.expect("data segment", TcpFlags::PSH | TcpFlags::ACK, response);
    flow.expect_segment(session, "stack sends the data", &data)?;
    flow.send(
        session,
        "peer acknowledges",
        flow.segment(TcpFlags::ACK, &[]),
    )
}

fn passive_open_active_close(session: &mut Session<'_>) -> Result<(), CheckError> {
    let (mut flow, conn) = open(session)?;
    exchange_data(session, &mut flow, conn)?;
    session.call_expect(
        "stack application closes",
        SocketCall::Close { sock: conn },
        &CallOutcome::Ok,
    )?;
    let fin = flow.expect("FIN", TcpFlags::FIN | TcpFlags::ACK, &[]);
    flow.expect_segment(session, "stack sends FIN", &fin)?;
    flow.send(
        session,
        "peer acknowledges the FIN",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    session.expect_silence("nothing answers an ACK of a FIN", QUIET)?;
    session.expect_tcp_state(
        "stack is in FIN-WAIT-2",
        SERVER_PORT,
        PEER_PORT,
        Some(TcpState::FinWait2),
    )?;
    flow.send(
        session,
        "peer sends its FIN",
        flow.segment(TcpFlags::FIN | TcpFlags::ACK, &[]),
    )?;
    let last_ack = flow.expect("ACK of the FIN", TcpFlags::ACK, &[]);
    flow.expect_segment(session, "stack acknowledges the FIN", &last_ack)?;
    session.expect_tcp_state(
        "stack is in TIME-WAIT",
        SERVER_PORT,
        PEER_PORT,
        Some(TcpState::TimeWait),
    )
}

fn passive_open_passive_close(session: &mut Session<'_>) -> Result<(), CheckError> {
    let (mut flow, conn) = open(session)?;
    flow.send(
        session,
        "peer sends FIN",
        flow.segment(TcpFlags::FIN | TcpFlags::ACK, &[]),
    )?;
    let ack = flow.expect("ACK of the FIN", TcpFlags::ACK, &[]);
    flow.expect_segment(session, "stack acknowledges the FIN", &ack)?;
    session.expect_tcp_state(
        "stack is in CLOSE-WAIT",
        SERVER_PORT,
        PEER_PORT,
        Some(TcpState::CloseWait),
    )?;
    session.call_expect(
        "stack application sees end of stream",
        SocketCall::Recv {
            sock: conn,
            max: 4096,
            timeout_ms: 1000,
        },
        &CallOutcome::Eof,
    )?;
    session.call_expect(
        "stack shuts down writing",
        SocketCall::Shutdown {
            sock: conn,
            how: ShutdownHow::Write,
        },
        &CallOutcome::Ok,
    )?;
    let fin = flow.expect("FIN", TcpFlags::FIN | TcpFlags::ACK, &[]);
    flow.expect_segment(session, "stack sends FIN", &fin)?;
    session.expect_tcp_state(
        "stack is in LAST-ACK",
        SERVER_PORT,
        PEER_PORT,
        Some(TcpState::LastAck),
    )?;
    flow.send(
        session,
        "peer acknowledges the FIN",
        flow.segment(TcpFlags::ACK, &[]),
    )?;
    session.expect_silence("nothing answers the last ACK", QUIET)?;
    session.expect_tcp_state("connection is CLOSED", SERVER_PORT, PEER_PORT, None)?;
    session.call_expect(
        "stack application closes",
        SocketCall::Close { sock: conn },
        &CallOutcome::Ok,
    )
}

fn syn_to_closed_port(session: &mut Session<'_>) -> Result<(), CheckError> {
    let mut flow = TcpFlow::new(session, PEER_PORT, SERVER_PORT + 1, PEER_ISN)?;
    flow.send(session, "peer sends SYN to a closed port", flow.syn())?;
    answer_arp(session)?;
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    let rst = ExpectTcp {
        seq: Some(0),
        mss: Presence::Absent,
        ..flow.expect("RST-ACK", TcpFlags::RST | TcpFlags::ACK, &[])
    };
    session.expect("stack refuses the SYN", ANSWER, &rst)?;
    session.expect_silence("nothing more", QUIET)
}
