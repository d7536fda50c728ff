//! Unit tests of the spoilers: each field spoil changes that field and nothing else, and
//! each frame spoil does what it says on a scripted link, leaving the harness's machinery
//! alone; calls, tables, settings and services are misreported as documented.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant as StdInstant;

use super::*;
use crate::dut::Endpoints;
use crate::wire::{ArpOperation, Icmpv4Message, TcpFlags, TcpOption, TcpSegment};

const STACK: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

fn segment(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut s = TcpSegment::new(80, 4000, seq, 7, TcpFlags(0x10));
    s.window = 100;
    s.options = vec![TcpOption::Mss(1460), TcpOption::WindowScale(7)];
    s.payload = payload.to_vec();
    Frame::tcp_v4(STACK, PEER, STACK_IP, PEER_IP, s).emit()
}

fn echo_reply() -> Vec<u8> {
    Frame::icmpv4(
        STACK,
        PEER,
        STACK_IP,
        PEER_IP,
        Icmpv4Message::echo_reply(0x6e63, 1, b"barrier".to_vec()),
    )
    .emit()
}

/// The test's machinery: echo replies (as the host barrier's are).
fn machinery(bytes: &[u8]) -> bool {
    matches!(
        Frame::parse(bytes).ok().and_then(|f| f.transport().cloned()),
        Some(Transport::Icmpv4(m)) if m.icmp_type == 0
    )
}

fn tcp(bytes: &[u8]) -> TcpSegment {
    match Frame::parse(bytes)
        .ok()
        .and_then(|f| f.transport().cloned())
    {
        Some(Transport::Tcp(s)) => s,
        other => panic!("not TCP: {other:?}"),
    }
}

/// Each TCP field spoil changes its field and leaves the others as they were.
#[test]
fn a_tcp_field_spoil_changes_that_field_only() {
    let original = segment(1000, b"data");
    let before = tcp(&original);
    let after = |f: Field| tcp(&spoil_field(f, &original).expect("a TCP frame has it"));
    assert_eq!(after(Field::TcpSeq).seq, 1001);
    assert_eq!(after(Field::TcpSeq).ack, before.ack);
    assert_eq!(after(Field::TcpAck).ack, 8);
    assert_eq!(after(Field::TcpAck).seq, before.seq);
    assert_eq!(after(Field::TcpWindow).window, 50);
    assert_eq!(
        after(Field::TcpFlags).flags.0,
        0x18,
        "PSH on a segment with data"
    );
    assert_eq!(
        tcp(&spoil_field(Field::TcpFlags, &segment(1, b"")).unwrap())
            .flags
            .0,
        0x11,
        "FIN on a segment without"
    );
    let options = after(Field::TcpOptions).options;
    assert!(options.contains(&TcpOption::Mss(1460)), "{options:?}");
    assert!(
        !options
            .iter()
            .any(|o| matches!(o, TcpOption::WindowScale(_))),
        "{options:?}"
    );
    assert_eq!(after(Field::TcpOptions).payload, before.payload);
    let bad = Frame::parse(&spoil_field(Field::TransportChecksum, &original).unwrap()).unwrap();
    assert_eq!(tcp(&bad.emit()).seq, before.seq);
    match bad.transport() {
        Some(Transport::Tcp(s)) => assert_eq!(s.checksum_valid, Some(false)),
        other => panic!("{other:?}"),
    }
    let ttl = |b: &[u8]| Frame::parse(b).unwrap().as_ipv4().unwrap().ttl;
    assert_eq!(
        ttl(&spoil_field(Field::IpTtl, &original).unwrap()),
        ttl(&original) - 1
    );
    let mac = Frame::parse(&spoil_field(Field::SrcMac, &original).unwrap()).unwrap();
    assert_eq!(mac.ethernet.src, MacAddr([2, 0, 0, 0, 0, 3]));
    assert_eq!(mac.ethernet.dst, PEER);
}

/// A field a frame does not have is not spoiled (the spoil did not act).
#[test]
fn a_field_the_frame_lacks_is_left_alone() {
    let arp = Frame::arp_request(STACK, STACK_IP, PEER_IP).emit();
    for f in [
        Field::TcpSeq,
        Field::TcpAck,
        Field::IpTtl,
        Field::IcmpCode,
        Field::TransportChecksum,
    ] {
        assert_eq!(spoil_field(f, &arp), None, "{f:?}");
    }
    let op = Frame::parse(&spoil_field(Field::ArpOperation, &arp).unwrap()).unwrap();
    match op.network {
        Network::Arp(a) => assert_eq!(a.operation, ArpOperation::Reply),
        other => panic!("{other:?}"),
    }
    let pure_ack = segment(5, b"");
    let mut no_ack = tcp(&pure_ack);
    no_ack.flags = TcpFlags(0x02);
    no_ack.options.clear();
    let syn = Frame::tcp_v4(STACK, PEER, STACK_IP, PEER_IP, no_ack).emit();
    assert_eq!(spoil_field(Field::TcpAck, &syn), None, "no ACK bit");
    assert_eq!(spoil_field(Field::TcpOptions, &syn), None, "no options");
    // An echo reply is no ICMP error: its code stays.
    assert_eq!(spoil_field(Field::IcmpCode, &echo_reply()), None);
    assert_eq!(spoil_field(Field::TcpSeq, b"short"), None);
}

/// A link that hands out a script of frames, one per read, then nothing.
struct Script {
    endpoints: Endpoints,
    out: VecDeque<Vec<u8>>,
    controls: usize,
    /// The DUT runs on a virtual clock (stopped at zero).
    virtual_clock: bool,
}

impl Script {
    fn new(frames: &[Vec<u8>]) -> Box<Script> {
        Box::new(Script {
            endpoints: Endpoints {
                harness_mac: PEER,
                stack_mac: STACK,
                stack_ipv4: Some((STACK_IP, 24)),
                peer_ipv4: Some(PEER_IP),
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
            out: frames.iter().cloned().collect(),
            controls: 0,
            virtual_clock: false,
        })
    }
}

impl Dut for Script {
    fn name(&self) -> &str {
        "script"
    }
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
    fn virtual_now(&self) -> Option<crate::time::Instant> {
        self.virtual_clock.then_some(crate::time::Instant::ZERO)
    }
    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }
    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }
    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for Script {
    fn send_frame(&mut self, _: &[u8]) -> Result<(), DutError> {
        Ok(())
    }
    fn recv_frame(&mut self, _: StdInstant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.out.pop_front())
    }
}

impl Sockets for Script {
    fn call(&mut self, _: &SocketCall) -> Result<CallOutcome, DutError> {
        Ok(CallOutcome::Data(b"hello".to_vec()))
    }
}

impl Tables for Script {
    fn query(&mut self, _: &StateQuery) -> Result<StateAnswer, DutError> {
        Ok(StateAnswer::Fdb(vec![crate::dut::FdbEntry {
            mac: PEER,
            port: 1,
            state: crate::dut::FdbState::Fresh,
        }]))
    }
    fn control(&mut self, _: &Control) -> Result<(), DutError> {
        self.controls += 1;
        Ok(())
    }
}

/// Reads everything `spoil` hands over from a script of `frames`: the frames and how often
/// the spoil acted.
fn read_all(spoil: Spoil, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, usize) {
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(Script::new(frames), spoil, machinery, Arc::clone(&applied));
    let mut out = Vec::new();
    while let Some(f) = s.recv_frame(StdInstant::now()).unwrap() {
        out.push(f);
    }
    (out, s.applied())
}

#[test]
fn frame_spoils_act_on_the_conversation_and_spare_the_machinery() {
    let (a, b, reply) = (segment(1, b"a"), segment(2, b"b"), echo_reply());
    let frames = [reply.clone(), a.clone(), b.clone()];
    assert_eq!(
        read_all(Spoil::DropFirst, &frames),
        (vec![reply.clone(), b.clone()], 1)
    );
    assert_eq!(
        read_all(Spoil::DuplicateFirst, &frames),
        (vec![reply.clone(), a.clone(), a.clone(), b.clone()], 1)
    );
    assert_eq!(
        read_all(Spoil::SwapFirstTwo, &frames),
        (vec![reply.clone(), b.clone(), a.clone()], 1)
    );
    // A frame held for a swap never crosses the machinery: no swap, the spoil did not act.
    assert_eq!(
        read_all(Spoil::SwapFirstTwo, &[a.clone(), reply.clone(), b.clone()]),
        (vec![a.clone(), reply.clone(), b.clone()], 0)
    );
    // The late copy comes once the stack is quiet.
    assert_eq!(
        read_all(Spoil::ExtraLate, &frames),
        (vec![reply.clone(), a.clone(), b.clone(), a.clone()], 1)
    );
    // Every conversation frame with the field, none of the machinery.
    let (out, applied) = read_all(Spoil::Field(Field::TcpSeq), &frames);
    assert_eq!(applied, 2);
    assert_eq!(out[0], reply);
    assert_eq!((tcp(&out[1]).seq, tcp(&out[2]).seq), (2, 3));
    // Nothing to change: not applied.
    assert_eq!(
        read_all(Spoil::Field(Field::ArpOperation), &frames),
        (frames.to_vec(), 0)
    );
    assert_eq!(
        read_all(Spoil::DropFirst, std::slice::from_ref(&reply)),
        (vec![reply], 0)
    );
}

#[test]
fn a_delayed_frame_comes_late_and_says_when_it_left() {
    let (a, b) = (segment(1, b"a"), segment(2, b"b"));
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(
        Script::new(&[a.clone(), b.clone()]),
        Spoil::DelayFirst,
        machinery,
        Arc::clone(&applied),
    );
    let start = StdInstant::now();
    // The next frame overtakes the held one.
    assert_eq!(s.recv_frame(start + DELAY * 2).unwrap(), Some(b));
    // Not before its time.
    assert_eq!(s.recv_frame(StdInstant::now()).unwrap(), None);
    assert_eq!(s.recv_frame(start + DELAY * 2).unwrap(), Some(a));
    assert!(start.elapsed() >= DELAY, "{:?}", start.elapsed());
    let left = s.last_frame_at().expect("a delayed frame has its stamp");
    assert!(left >= start + DELAY, "stamped when it was released");
    assert_eq!(s.applied(), 1);
}

#[test]
fn calls_tables_settings_are_misreported() {
    let applied = Arc::new(AtomicUsize::new(0));
    let mut call = Spoiled::new(
        Script::new(&[]),
        Spoil::CallOutcome,
        machinery,
        Arc::clone(&applied),
    );
    let recv = SocketCall::Recv {
        sock: crate::dut::SocketId(1),
        max: 10,
        timeout_ms: 0,
    };
    assert_eq!(
        call.call(&recv).unwrap(),
        CallOutcome::Data(vec![b'h' ^ 0xff, b'e', b'l', b'l', b'o'])
    );
    assert_eq!(
        call.call(&recv).unwrap(),
        CallOutcome::Data(b"hello".to_vec()),
        "the first only"
    );
    assert_eq!(call.applied(), 1);

    let applied = Arc::new(AtomicUsize::new(0));
    let mut table = Spoiled::new(
        Script::new(&[]),
        Spoil::TableEntry,
        machinery,
        Arc::clone(&applied),
    );
    match table.query(&StateQuery::Fdb).unwrap() {
        StateAnswer::Fdb(v) => assert_eq!(v[0].port, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(table.applied(), 1);

    let applied = Arc::new(AtomicUsize::new(0));
    let mut ignore = Spoiled::new(
        Script::new(&[]),
        Spoil::IgnoreSettings,
        machinery,
        Arc::clone(&applied),
    );
    ignore.control(&Control::FlushFdb).unwrap();
    assert_eq!(ignore.applied(), 1);
    // A spoil of another plane leaves the settings alone and the answers as they were.
    let applied = Arc::new(AtomicUsize::new(0));
    let mut other = Spoiled::new(
        Script::new(&[]),
        Spoil::DropFirst,
        machinery,
        Arc::clone(&applied),
    );
    other.control(&Control::FlushFdb).unwrap();
    match other.query(&StateQuery::Fdb).unwrap() {
        StateAnswer::Fdb(v) => assert_eq!(v[0].port, 1),
        a => panic!("{a:?}"),
    }
    assert_eq!(
        other.call(&recv).unwrap(),
        CallOutcome::Data(b"hello".to_vec())
    );
    assert_eq!(other.applied(), 0);
}

#[test]
fn a_spoiled_dut_offers_the_planes_of_the_one_it_wraps() {
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(Script::new(&[]), Spoil::DropFirst, machinery, applied);
    let dut: &mut dyn Dut = &mut s;
    let caps = dut.capabilities();
    assert_eq!(
        (
            caps.link_ports,
            caps.tcp,
            caps.udp,
            caps.tables,
            caps.services.len()
        ),
        (1, true, false, true, 0)
    );
    assert!(
        dut.environment()
            .contains(&"spoiled by = drop-first".to_string())
    );
    assert_eq!(Spoil::Field(Field::TcpSeq).name(), "field:tcp-seq");
    assert_eq!(Spoil::IgnoreSettings.name(), "ignore-settings");
}

/// The phantom shows a neighbour for an address the harness announced and the stack does
/// not hold, and leaves an answer that already has it (or another table) alone.
#[test]
fn the_phantom_neighbour_is_what_the_harness_announced() {
    use crate::sandbox::NeighbourEntry;
    struct Neighbours(Box<Script>, Vec<NeighbourEntry>);
    impl Dut for Neighbours {
        fn name(&self) -> &str {
            "n"
        }
        fn endpoints(&self) -> &Endpoints {
            &self.0.endpoints
        }
        fn link(&mut self) -> Option<&mut dyn Link> {
            Some(self.0.as_mut())
        }
        fn tables(&mut self) -> Option<&mut dyn Tables> {
            Some(self)
        }
    }
    impl Tables for Neighbours {
        fn query(&mut self, q: &StateQuery) -> Result<StateAnswer, DutError> {
            match q {
                StateQuery::Neighbours => Ok(StateAnswer::Neighbours(self.1.clone())),
                _ => self.0.query(q),
            }
        }
    }
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(
        Box::new(Neighbours(Script::new(&[]), Vec::new())),
        Spoil::TablePhantom,
        machinery,
        Arc::clone(&applied),
    );
    // Nothing announced yet: nothing to add.
    assert_eq!(
        s.query(&StateQuery::Neighbours).unwrap(),
        StateAnswer::Neighbours(vec![])
    );
    assert_eq!(s.applied(), 0);
    s.send_frame(&Frame::arp_reply(PEER, PEER_IP, STACK, STACK_IP).emit())
        .unwrap();
    match s.query(&StateQuery::Neighbours).unwrap() {
        StateAnswer::Neighbours(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].dst, std::net::IpAddr::V4(PEER_IP));
            assert_eq!(v[0].lladdr, Some(PEER));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.applied(), 1);
    // Another table is left as it was.
    assert!(matches!(s.query(&StateQuery::Fdb).unwrap(), StateAnswer::Fdb(v) if v[0].port == 1));
    assert_eq!(s.applied(), 1);
}

/// A link whose frames become readable one read at a time: the second is not there yet
/// when the first is read.
struct Slow(Box<Script>, bool);

impl Dut for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn endpoints(&self) -> &Endpoints {
        &self.0.endpoints
    }
    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }
}

impl Link for Slow {
    fn send_frame(&mut self, _: &[u8]) -> Result<(), DutError> {
        Ok(())
    }
    fn recv_frame(&mut self, deadline: StdInstant) -> Result<Option<Vec<u8>>, DutError> {
        // Every other read (the spoiler's peek at "now") finds nothing.
        self.1 = !self.1;
        if self.1 || deadline > StdInstant::now() {
            Ok(self.0.out.pop_front())
        } else {
            Ok(None)
        }
    }
}

/// A swap never holds the first frame back waiting for a second: with nothing behind it,
/// the first goes at once and the spoil did not act.
#[test]
fn a_swap_does_not_wait_for_the_second_frame() {
    let (a, b) = (segment(1, b"a"), segment(2, b"b"));
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(
        Box::new(Slow(Script::new(&[a.clone(), b.clone()]), false)),
        Spoil::SwapFirstTwo,
        machinery,
        Arc::clone(&applied),
    );
    let later = StdInstant::now() + std::time::Duration::from_secs(5);
    assert_eq!(s.recv_frame(later).unwrap(), Some(a));
    assert_eq!(s.recv_frame(later).unwrap(), Some(b));
    assert_eq!(s.applied(), 0);
}

/// The stack's own frame, sent after the harness left it alone for QUIET, is held back
/// DELAY and says so in its stamp; an answer (a frame soon after what the harness did) and
/// the machinery are never held, and only the first own frame is.
#[test]
fn a_timer_frame_comes_late_and_an_answer_does_not() {
    let (answer, own, later) = (segment(1, b"a"), segment(2, b"b"), segment(3, b"c"));
    let reply = echo_reply();
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(
        Script::new(&[answer.clone(), reply.clone(), own.clone(), later.clone()]),
        Spoil::DelayTimer,
        machinery,
        Arc::clone(&applied),
    );
    // Right after the harness began: an answer, handed over at once.
    assert_eq!(s.recv_frame(StdInstant::now()).unwrap(), Some(answer));
    std::thread::sleep(QUIET + std::time::Duration::from_millis(20));
    // The machinery is never held, however quiet the harness was.
    assert_eq!(s.recv_frame(StdInstant::now()).unwrap(), Some(reply));
    assert_eq!(s.applied(), 0);
    // The stack's own frame is held; the next overtakes it (only the first is held).
    let read = StdInstant::now();
    assert_eq!(s.recv_frame(read + DELAY * 2).unwrap(), Some(later));
    assert_eq!(s.applied(), 1);
    assert_eq!(
        s.recv_frame(StdInstant::now()).unwrap(),
        None,
        "not before its time"
    );
    assert_eq!(s.recv_frame(read + DELAY * 2).unwrap(), Some(own));
    assert!(read.elapsed() >= DELAY, "{:?}", read.elapsed());
    let left = s.last_frame_at().expect("a delayed frame has its stamp");
    assert!(left >= read + DELAY, "stamped DELAY after it left");
    assert_eq!(s.applied(), 1);
}

/// A frame, a call or a setting of the harness's makes what the stack sends next an
/// answer; a DUT on a virtual clock is never spoiled this way.
#[test]
fn what_the_harness_does_makes_the_next_frame_an_answer() {
    let quiet = QUIET + std::time::Duration::from_millis(20);
    let frame = segment(1, b"a");
    let recv = SocketCall::Recv {
        sock: crate::dut::SocketId(1),
        max: 10,
        timeout_ms: 0,
    };
    let pokes: [&dyn Fn(&mut Spoiled); 3] = [
        &|s| s.send_frame(&segment(9, b"peer")).unwrap(),
        &|s| {
            s.call(&recv).unwrap();
        },
        &|s| s.control(&Control::FlushFdb).unwrap(),
    ];
    for (i, poke) in pokes.iter().enumerate() {
        let applied = Arc::new(AtomicUsize::new(0));
        let mut s = Spoiled::new(
            Script::new(std::slice::from_ref(&frame)),
            Spoil::DelayTimer,
            machinery,
            Arc::clone(&applied),
        );
        std::thread::sleep(quiet);
        poke(&mut s);
        assert_eq!(
            s.recv_frame(StdInstant::now()).unwrap(),
            Some(frame.clone())
        );
        assert_eq!(s.applied(), 0, "poke {i}");
    }
    let mut on_a_virtual_clock = Script::new(std::slice::from_ref(&frame));
    on_a_virtual_clock.virtual_clock = true;
    let applied = Arc::new(AtomicUsize::new(0));
    let mut s = Spoiled::new(
        on_a_virtual_clock,
        Spoil::DelayTimer,
        machinery,
        Arc::clone(&applied),
    );
    std::thread::sleep(quiet);
    assert_eq!(s.recv_frame(StdInstant::now()).unwrap(), Some(frame));
    assert_eq!(s.applied(), 0);
    assert_eq!(Spoil::DelayTimer.name(), "delay-timer");
}

/// A router-like DUT whose frames come out of given ports, one per read.
struct Ports(Box<Script>, VecDeque<(usize, Vec<u8>)>);

impl Dut for Ports {
    fn name(&self) -> &str {
        "ports"
    }
    fn endpoints(&self) -> &Endpoints {
        &self.0.endpoints
    }
    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }
}

impl Link for Ports {
    fn send_frame(&mut self, _: &[u8]) -> Result<(), DutError> {
        Ok(())
    }
    fn recv_frame(&mut self, _: StdInstant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(None)
    }
    fn ports(&self) -> usize {
        2
    }
    fn recv_frame_any(&mut self, _: StdInstant) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        Ok(self.1.pop_front())
    }
}

/// The late copy of `extra-late` comes behind the stack's answer to the machinery out of
/// another port (a frame more out of port 1 after the barrier on port 0 was answered); an
/// answer out of the copy's own port leaves it for the quiet moment, as on a host.
#[test]
fn the_late_copy_comes_behind_a_barrier_answer_out_of_another_port() {
    let (a, b, reply) = (segment(1, b"a"), segment(2, b"b"), echo_reply());
    let read = |frames: Vec<(usize, Vec<u8>)>| {
        let applied = Arc::new(AtomicUsize::new(0));
        let mut s = Spoiled::new(
            Box::new(Ports(Script::new(&[]), frames.into())),
            Spoil::ExtraLate,
            machinery,
            Arc::clone(&applied),
        );
        let mut out = Vec::new();
        while let Some(f) = s.recv_frame_any(StdInstant::now()).unwrap() {
            out.push(f);
        }
        (out, s.applied())
    };
    assert_eq!(
        read(vec![(1, a.clone()), (0, reply.clone()), (1, b.clone())]),
        (
            vec![
                (1, a.clone()),
                (0, reply.clone()),
                (1, a.clone()),
                (1, b.clone())
            ],
            1
        )
    );
    // The barrier answered out of the copy's own port: the copy waits for the quiet.
    assert_eq!(
        read(vec![(1, a.clone()), (1, reply.clone()), (1, b.clone())]),
        (vec![(1, a.clone()), (1, reply), (1, b), (1, a)], 1)
    );
}
