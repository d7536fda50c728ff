//! Trace tests: snapshot of a rendered scenario, JSON, pcap round trip, pcapng, tshark.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

use super::*;
use crate::pcap::CaptureError;
use crate::wire::{Faults, Frame, Icmpv4Message, MacAddr, TcpFlags, TcpOption, TcpSegment};

const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const DUT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DUT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER_ISN: u32 = 3_000_000_000;
const DUT_ISN: u32 = 123_456;

fn names() -> HostNames {
    HostNames::new()
        .with_host("peer", Some(PEER_MAC), &[IpAddr::V4(PEER)])
        .with_host("dut", Some(DUT_MAC), &[IpAddr::V4(DUT)])
}

fn seg(from_peer: bool, seq: u32, ack: u32, flags: TcpFlags) -> TcpSegment {
    let (src, dst) = if from_peer { (40000, 80) } else { (80, 40000) };
    TcpSegment::new(src, dst, seq, ack, flags)
}

fn tcp(from_peer: bool, s: TcpSegment) -> Vec<u8> {
    if from_peer {
        Frame::tcp_v4(PEER_MAC, DUT_MAC, PEER, DUT, s).emit()
    } else {
        Frame::tcp_v4(DUT_MAC, PEER_MAC, DUT, PEER, s).emit()
    }
}

/// Handshake with options, data, FIN close, an ARP exchange, an ICMP error, a bad
/// checksum, an unknown host and a malformed frame.
fn scenario() -> Trace {
    use Direction::{Received, Sent};
    let ms = Instant::from_micros;
    let mut t = Trace::new();
    t.push_note(ms(0), "handshake");
    t.push_frame(ms(0), Sent, Frame::arp_request(PEER_MAC, PEER, DUT).emit());
    t.push_frame(
        ms(80),
        Received,
        Frame::arp_reply(DUT_MAC, DUT, PEER_MAC, PEER).emit(),
    );
    let mut syn = seg(true, PEER_ISN, 0, TcpFlags::SYN);
    syn.options = vec![
        TcpOption::Mss(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps {
            val: 1_000_000,
            ecr: 0,
        },
        TcpOption::Nop,
        TcpOption::WindowScale(7),
    ];
    t.push_frame(ms(100), Sent, tcp(true, syn));
    let mut syn_ack = seg(false, DUT_ISN, PEER_ISN + 1, TcpFlags::SYN_ACK);
    syn_ack.window = 65160;
    syn_ack.options = vec![
        TcpOption::Mss(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps {
            val: 777,
            ecr: 1_000_000,
        },
        TcpOption::Nop,
        TcpOption::WindowScale(7),
    ];
    t.push_frame(ms(1_234), Received, tcp(false, syn_ack));
    t.push_frame(
        ms(1_300),
        Sent,
        tcp(true, seg(true, PEER_ISN + 1, DUT_ISN + 1, TcpFlags::ACK)),
    );
    t.push_call(ms(1_400), "accept(dut:80)", "Ok(fd 5)");
    let mut data = seg(true, PEER_ISN + 1, DUT_ISN + 1, TcpFlags::PSH_ACK);
    data.payload = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    t.push_frame(ms(2_000), Sent, tcp(true, data));
    let mut ack = seg(false, DUT_ISN + 1, PEER_ISN + 19, TcpFlags::ACK);
    ack.options = vec![
        TcpOption::Nop,
        TcpOption::Nop,
        TcpOption::Sack(vec![(PEER_ISN + 19, PEER_ISN + 29)]),
    ];
    t.push_frame(ms(2_050), Received, tcp(false, ack));
    t.push_note(ms(3_000), "close");
    t.push_frame(
        ms(3_000),
        Sent,
        tcp(
            true,
            seg(true, PEER_ISN + 19, DUT_ISN + 1, TcpFlags::FIN_ACK),
        ),
    );
    t.push_frame(
        ms(3_010),
        Received,
        tcp(
            false,
            seg(false, DUT_ISN + 1, PEER_ISN + 20, TcpFlags::FIN_ACK),
        ),
    );
    let bad = Frame::tcp_v4(
        PEER_MAC,
        DUT_MAC,
        PEER,
        DUT,
        seg(true, PEER_ISN + 20, DUT_ISN + 2, TcpFlags::ACK),
    );
    t.push_frame(
        ms(3_020),
        Sent,
        bad.emit_with(
            &Faults::default()
                .wrong_transport_checksum()
                .wrong_ipv4_checksum(),
        ),
    );
    // A UDP probe to a closed port and the ICMP error it draws.
    let probe = crate::wire::UdpDatagram::new(5000, 9, b"x".to_vec());
    let probe = Frame::udp_v4(PEER_MAC, DUT_MAC, PEER, DUT, probe).emit();
    t.push_frame(ms(4_000), Sent, probe.clone());
    let quoted = probe[14..].to_vec();
    let icmp = Frame::icmpv4(
        DUT_MAC,
        PEER_MAC,
        DUT,
        PEER,
        Icmpv4Message::dest_unreachable(3, quoted),
    );
    t.push_frame(ms(4_001), Received, icmp.emit());
    // A host nobody named, and a frame cut short.
    let stranger = Frame::icmpv4(
        DUT_MAC,
        PEER_MAC,
        Ipv4Addr::new(192, 0, 2, 7),
        PEER,
        Icmpv4Message::echo_request(1, 1, vec![0; 8]),
    );
    t.push_frame(ms(5_000), Received, stranger.emit());
    let cut = Frame::tcp_v4(PEER_MAC, DUT_MAC, PEER, DUT, seg(true, 1, 0, TcpFlags::RST))
        .emit_with(&Faults::default().truncate(46));
    t.push_frame(ms(6_000), Sent, cut);
    t.push_frame(ms(6_001), Received, vec![1, 2, 3]);
    let mut lldp = DUT_MAC.0.to_vec();
    lldp.extend_from_slice(&PEER_MAC.0);
    lldp.extend_from_slice(&[0x88, 0xcc, 1, 2, 3, 4]);
    t.push_frame(ms(7_000), Received, lldp);
    t
}

#[test]
fn renders_scenario_snapshot() {
    insta::assert_snapshot!(scenario().render(&names()));
}

#[test]
fn rendering_is_deterministic_and_names_unknown_hosts_in_order() {
    let t = scenario();
    assert_eq!(t.render(&names()), t.render(&names()));
    let anonymous = t.render(&HostNames::new());
    assert!(
        anonymous.contains("ARP who-has host2 tell host1"),
        "{anonymous}"
    );
}

#[test]
fn json_has_layers_and_errors() {
    let v = scenario().to_json_decoded(&names());
    // The stream reads back to the value.
    let mut streamed = Vec::new();
    scenario()
        .write_json_decoded(&names(), &mut streamed)
        .expect("serialises");
    let back: serde_json::Value = serde_json::from_slice(&streamed).expect("JSON");
    assert_eq!(back, v);
    assert!(
        serde_json::to_string(&v)
            .expect("serialises")
            .starts_with(r#"[{"at_us":0,"kind":"note","line":"#),
        "{v}"
    );
    let events = v.as_array().expect("array");
    assert_eq!(events.len(), scenario().events.len());
    let syn = &events[3];
    assert_eq!(syn["direction"], "sent");
    assert_eq!(
        syn["frame"]["network"]["Ipv4"]["transport"]["Tcp"]["flags"],
        "S"
    );
    let cut = events
        .iter()
        .find(|e| e["error"].is_object())
        .expect("a malformed frame");
    assert_eq!(cut["error"]["layer"], "IPv4");
    assert_eq!(cut["error"]["offset"], 14);
    assert_eq!(cut["error"]["needed"], 40);
    assert_eq!(cut["error"]["present"], 32);
    assert_eq!(events[0]["kind"], "note");
    assert_eq!(events[6]["kind"], "call");
    // And a trace saves and loads as JSON.
    let saved = serde_json::to_string(&scenario()).expect("serialises");
    assert_eq!(serde_json::from_str::<Trace>(&saved).ok(), Some(scenario()));
}

#[test]
fn pcap_round_trip() {
    let t = scenario();
    let mut buf = Vec::new();
    t.write_pcap(&mut buf).expect("writes");
    let back = Trace::read_capture_from(buf.as_slice()).expect("reads");
    let sent: Vec<_> = t.frames().map(|(at, _, b)| (at, b.to_vec())).collect();
    let read: Vec<_> = back.frames().map(|(at, _, b)| (at, b.to_vec())).collect();
    assert_eq!(sent, read);
    assert!(back.frames().all(|(_, d, _)| d == Direction::Received));
}

#[test]
fn pcapng_with_directions_and_wall_clock_times() {
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    // pcap-file writes a Duration's nanoseconds as the raw timestamp: say so (the pcapng
    // default is microseconds).
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    };
    w.write_pcapng_block(idb).expect("idb");
    let frame = Frame::arp_request(PEER_MAC, PEER, DUT).emit();
    for (i, flags) in [(0u64, 0b10u32), (5, 0b01)] {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: std::time::Duration::from_micros(1_700_000_000_000_000 + i * 1000),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
            options: vec![EnhancedPacketOption::Flags(flags)],
        };
        w.write_pcapng_block(epb).expect("epb");
    }
    let t = Trace::read_capture_from(w.into_inner().as_slice()).expect("reads");
    let got: Vec<_> = t.frames().map(|(at, d, _)| (at, d)).collect();
    assert_eq!(
        got,
        vec![
            (Instant::ZERO, Direction::Sent),
            (Instant::from_millis(5), Direction::Received)
        ]
    );
}

/// A link type netconform cannot read, garbage and a missing file are clear errors. (Raw
/// IP, which this test used as its unreadable link type before `crate::pcap` read it, is
/// now read: see `linux_cooked_and_raw_ip_captures_read_as_ethernet`.)
#[test]
fn unsupported_link_type_and_garbage_are_clear_errors() {
    let header = pcap_file::pcap::PcapHeader {
        datalink: DataLink::USB_LINUX,
        ..Default::default()
    };
    let w = pcap_file::pcap::PcapWriter::with_header(Vec::new(), header).expect("writer");
    let e = Trace::read_capture_from(w.into_writer().as_slice()).unwrap_err();
    assert!(
        matches!(e, TraceError::Capture(CaptureError::LinkType { .. })),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("unsupported link type USB_LINUX (189): netconform reads Ethernet (1)"),
        "{e}"
    );
    let e = Trace::read_capture_from(&b"hello world"[..]).unwrap_err();
    assert!(
        matches!(e, TraceError::Capture(CaptureError::UnknownFormat(_))),
        "{e}"
    );
    let e = show(Path::new("/nonexistent/x.pcap"), false).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot read /nonexistent/x.pcap"),
        "{e}"
    );
}

/// `tcpdump -i any` writes Linux cooked captures: they read as Ethernet frames (a zero
/// destination MAC, the link-layer address as source), outgoing packets as sent; raw IP
/// captures read the same way.
#[test]
fn linux_cooked_and_raw_ip_captures_read_as_ethernet() {
    let syn = tcp(true, seg(true, PEER_ISN, 0, TcpFlags::SYN));
    let syn_ack = tcp(false, seg(false, DUT_ISN, PEER_ISN + 1, TcpFlags::SYN_ACK));
    // SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length 6,
    // address padded to 8, then the IP packet.
    let sll2 = |frame: &[u8], packet_type: u8| {
        let mut p = frame[12..14].to_vec();
        p.extend([0, 0, 0, 0, 0, 3, 0, 1, packet_type, 6]);
        p.extend(&frame[6..12]);
        p.extend([0, 0]);
        p.extend(&frame[14..]);
        p
    };
    let pcap_of = |link: DataLink, packets: &[Vec<u8>]| {
        let header = pcap_file::pcap::PcapHeader {
            datalink: link,
            ..Default::default()
        };
        let mut w = pcap_file::pcap::PcapWriter::with_header(Vec::new(), header).expect("writer");
        for (i, p) in packets.iter().enumerate() {
            let ts = std::time::Duration::from_millis(i as u64);
            w.write_packet(&pcap_file::pcap::PcapPacket::new(ts, p.len() as u32, p))
                .expect("packet");
        }
        w.into_writer()
    };
    let cooked = pcap_of(DataLink::LINUX_SLL2, &[sll2(&syn, 4), sll2(&syn_ack, 0)]);
    let t = Trace::read_capture_from(cooked.as_slice()).expect("reads SLL2");
    let got: Vec<_> = t.frames().map(|(at, d, b)| (at, d, b.to_vec())).collect();
    let expected = |frame: &[u8], src: &[u8]| {
        let mut e = vec![0; 6];
        e.extend(src);
        e.extend(&frame[12..]);
        e
    };
    assert_eq!(
        got,
        vec![
            (Instant::ZERO, Direction::Sent, expected(&syn, &PEER_MAC.0)),
            (
                Instant::from_millis(1),
                Direction::Received,
                expected(&syn_ack, &DUT_MAC.0)
            ),
        ]
    );
    let text = t.render(&names());
    assert!(text.contains("> peer.40000 > dut.80: S 0:0(0)"), "{text}");
    assert!(
        text.contains("< dut.80 > peer.40000: S. 0:0(0) ack 1"),
        "{text}"
    );
    let raw = pcap_of(DataLink::RAW, &[syn[14..].to_vec(), syn_ack[14..].to_vec()]);
    let t = Trace::read_capture_from(raw.as_slice()).expect("reads raw IP");
    let bytes: Vec<_> = t.frames().map(|(_, _, b)| b.to_vec()).collect();
    assert_eq!(
        bytes,
        vec![expected(&syn, &[0; 6]), expected(&syn_ack, &[0; 6])]
    );
}

#[test]
fn show_renders_text_and_json() {
    let dir = std::env::temp_dir().join(format!("netconform-trace-show-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("s.pcap");
    let file = std::fs::File::create(&path).expect("create");
    scenario().write_pcap(file).expect("write");
    let text = show(&path, false).expect("text");
    assert_eq!(text.lines().count(), scenario().frames().count());
    assert!(
        text.starts_with("    0.000 < ARP who-has host2 tell host1"),
        "{text}"
    );
    let json = show(&path, true).expect("json");
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Opens the pcap with tshark when it is installed; `NETCONFORM_REQUIRE_TSHARK=1` makes a
/// missing tshark a failure.
#[test]
fn tshark_opens_our_pcap() {
    let required = std::env::var("NETCONFORM_REQUIRE_TSHARK").is_ok_and(|v| v == "1");
    let probe = std::process::Command::new("tshark")
        .arg("--version")
        .output();
    if probe.is_err() {
        assert!(
            !required,
            "NETCONFORM_REQUIRE_TSHARK=1 but tshark is not installed (apt-get install tshark)"
        );
        crate::sandbox::report_skip(
            "tshark_opens_our_pcap",
            "tshark is not installed (apt-get install tshark)",
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("netconform-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("scenario.pcap");
    scenario()
        .write_pcap(std::fs::File::create(&path).expect("create"))
        .expect("write");
    let out = std::process::Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(&path)
        .output()
        .expect("tshark runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("damaged") && !stdout.contains("damaged"),
        "{stderr}{stdout}"
    );
    let frames = scenario().frames().count();
    assert_eq!(stdout.lines().count(), frames, "{stdout}");
    // With checksum validation on, tshark agrees with us: only the frame we broke on
    // purpose (IPv4 header and TCP) is flagged.
    let out = std::process::Command::new("tshark")
        .args([
            "-n",
            "-V",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(["-o", "udp.check_checksum:TRUE", "-r"])
        .arg(&path)
        .output()
        .expect("tshark runs");
    let verbose = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = verbose
        .lines()
        .filter(|l| l.to_lowercase().contains("checksum status: bad]"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.len(), 2, "{bad:?}");
}

mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_frames_render_without_panic(frames in vec(vec(any::<u8>(), 0..120), 0..8)) {
            let mut t = Trace::new();
            for (i, f) in frames.into_iter().enumerate() {
                t.push_frame(Instant::from_micros(i as u64), Direction::Received, f);
            }
            prop_assert_eq!(t.render(&HostNames::new()).lines().count(), t.events.len());
            let value = t.to_json_decoded(&HostNames::new());
            let mut streamed = Vec::new();
            t.write_json_decoded(&HostNames::new(), &mut streamed).expect("serialises");
            let back: serde_json::Value = serde_json::from_slice(&streamed).expect("JSON");
            prop_assert_eq!(back, value);
        }
    }
}
