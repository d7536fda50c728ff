//! Every link type in pcap and pcapng (written with pcap-file's own writers), several
//! interfaces in one pcapng, timestamp resolutions, damaged and garbage input.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use proptest::prelude::*;

use super::*;
use crate::wire::{Frame, MacAddr, TcpFlags, TcpSegment};

const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const B_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// A SYN over IPv4 from A, a SYN-ACK over IPv6 from B, and an ARP request from A.
fn ethernet_frames() -> Vec<Vec<u8>> {
    vec![
        Frame::tcp_v4(
            A_MAC,
            B_MAC,
            A4,
            B4,
            TcpSegment::new(40000, 80, 1000, 0, TcpFlags::SYN),
        )
        .emit(),
        Frame::tcp_v6(
            B_MAC,
            A_MAC,
            B6,
            A6,
            TcpSegment::new(80, 40000, 5000, 1001, TcpFlags::SYN_ACK),
        )
        .emit(),
        Frame::arp_request(A_MAC, A4, B4).emit(),
    ]
}

/// The IP frames only (what raw IP and loopback links can carry).
fn ip_frames() -> Vec<Vec<u8>> {
    ethernet_frames().into_iter().take(2).collect()
}

fn ether_type_of(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// What the reader gives for `frame` on a link without the Ethernet header: zero
/// destination, `src` (or zero) as source, the same ether type and payload.
fn synthetic(frame: &[u8], src: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![0; 6];
    out.extend_from_slice(src.unwrap_or(&[0; 6]));
    out.extend_from_slice(&frame[12..]);
    out
}

/// SLL (113): packet type, ARPHRD_ETHER, address length 6, address padded to 8, protocol.
fn sll(frame: &[u8], packet_type: u16) -> Vec<u8> {
    let mut p = packet_type.to_be_bytes().to_vec();
    p.extend([0, 1, 0, 6]);
    p.extend(&frame[6..12]);
    p.extend([0, 0]);
    p.extend(&frame[12..]);
    p
}

/// SLL2 (276): protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length 6,
/// address padded to 8.
fn sll2(frame: &[u8], packet_type: u8) -> Vec<u8> {
    let mut p = frame[12..14].to_vec();
    p.extend([0, 0, 0, 0, 0, 7, 0, 1, packet_type, 6]);
    p.extend(&frame[6..12]);
    p.extend([0, 0]);
    p.extend(&frame[14..]);
    p
}

/// BSD loopback: the address family (AF_INET 2, AF_INET6 24 as on NetBSD) in host order
/// for NULL (0), network order for LOOP (108).
fn loopback(frame: &[u8], network_order: bool) -> Vec<u8> {
    let af: u32 = if ether_type_of(frame) == ether_type::IPV6 {
        24
    } else {
        2
    };
    let mut p = if network_order {
        af.to_be_bytes().to_vec()
    } else {
        af.to_ne_bytes().to_vec()
    };
    p.extend(&frame[14..]);
    p
}

/// One link type's test case: the packets as captured and the frames the reader must give.
struct Case {
    link: DataLink,
    packets: Vec<Vec<u8>>,
    expected: Vec<Vec<u8>>,
    directions: Vec<PacketDirection>,
}

fn cases() -> Vec<Case> {
    let eth = ethernet_frames();
    let ip = ip_frames();
    let unknown = |n: usize| vec![PacketDirection::Unknown; n];
    let mut cases = vec![Case {
        link: DataLink::ETHERNET,
        packets: eth.clone(),
        expected: eth.clone(),
        directions: unknown(eth.len()),
    }];
    // Cooked captures: outgoing (4), to this host (0), broadcast (1).
    let cooked_types = [4u8, 0, 1];
    let cooked_directions = vec![
        PacketDirection::Outbound,
        PacketDirection::Inbound,
        PacketDirection::Inbound,
    ];
    let cooked_expected: Vec<Vec<u8>> = eth.iter().map(|f| synthetic(f, Some(&f[6..12]))).collect();
    cases.push(Case {
        link: DataLink::LINUX_SLL,
        packets: eth
            .iter()
            .zip(cooked_types)
            .map(|(f, t)| sll(f, u16::from(t)))
            .collect(),
        expected: cooked_expected.clone(),
        directions: cooked_directions.clone(),
    });
    cases.push(Case {
        link: DataLink::LINUX_SLL2,
        packets: eth
            .iter()
            .zip(cooked_types)
            .map(|(f, t)| sll2(f, t))
            .collect(),
        expected: cooked_expected,
        directions: cooked_directions,
    });
    let ip_expected: Vec<Vec<u8>> = ip.iter().map(|f| synthetic(f, None)).collect();
    for link in [DataLink::RAW, DataLink::Unknown(12), DataLink::Unknown(14)] {
        cases.push(Case {
            link,
            packets: ip.iter().map(|f| f[14..].to_vec()).collect(),
            expected: ip_expected.clone(),
            directions: unknown(ip.len()),
        });
    }
    cases.push(Case {
        link: DataLink::IPV4,
        packets: vec![ip[0][14..].to_vec()],
        expected: vec![ip_expected[0].clone()],
        directions: unknown(1),
    });
    cases.push(Case {
        link: DataLink::IPV6,
        packets: vec![ip[1][14..].to_vec()],
        expected: vec![ip_expected[1].clone()],
        directions: unknown(1),
    });
    for (link, network_order) in [(DataLink::NULL, false), (DataLink::LOOP, true)] {
        cases.push(Case {
            link,
            packets: ip.iter().map(|f| loopback(f, network_order)).collect(),
            expected: ip_expected.clone(),
            directions: unknown(ip.len()),
        });
    }
    cases
}

/// Timestamps of packet `i`: a wall-clock second plus `i` ms and 7 µs.
fn ts_ns(i: usize) -> u64 {
    1_700_000_000_000_000_000 + i as u64 * 1_000_000 + 7_000
}

fn pcap_of(
    link: DataLink,
    packets: &[Vec<u8>],
    endianness: Endianness,
    ts_resolution: TsResolution,
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        endianness,
        ts_resolution,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("writer");
    for (i, p) in packets.iter().enumerate() {
        let ts = Duration::from_nanos(ts_ns(i));
        w.write_packet(&PcapPacket::new(ts, p.len() as u32, p))
            .expect("packet");
    }
    w.into_writer()
}

fn idb(link: DataLink, tsresol: Option<u8>) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 0,
        options: tsresol
            .map(InterfaceDescriptionOption::IfTsResol)
            .into_iter()
            .collect(),
    }
}

/// An EPB whose raw 64-bit timestamp is `raw` (pcap-file writes a Duration's nanoseconds
/// as the raw value, whatever the interface's resolution).
fn epb(interface_id: u32, raw: u64, data: &[u8], flags: Option<u32>) -> EnhancedPacketBlock<'_> {
    EnhancedPacketBlock {
        interface_id,
        timestamp: Duration::from_nanos(raw),
        original_len: data.len() as u32,
        data: Cow::Borrowed(data),
        options: flags.map(EnhancedPacketOption::Flags).into_iter().collect(),
    }
}

/// A pcapng with one interface of `link` at nanosecond resolution.
fn pcapng_of(link: DataLink, packets: &[Vec<u8>], endianness: Endianness) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).expect("writer");
    w.write_pcapng_block(idb(link, Some(9))).expect("idb");
    for (i, p) in packets.iter().enumerate() {
        w.write_pcapng_block(epb(0, ts_ns(i), p, None))
            .expect("epb");
    }
    w.into_inner()
}

fn check(what: &str, capture: &Capture, case: &Case) {
    let frames: Vec<&Vec<u8>> = capture.packets.iter().map(|p| &p.frame).collect();
    assert_eq!(
        frames,
        case.expected.iter().collect::<Vec<_>>(),
        "{what}: frames"
    );
    let times: Vec<u64> = capture.packets.iter().map(|p| p.ts_ns).collect();
    let expected: Vec<u64> = (0..case.packets.len()).map(ts_ns).collect();
    assert_eq!(times, expected, "{what}: timestamps");
    let directions: Vec<PacketDirection> = capture.packets.iter().map(|p| p.direction).collect();
    assert_eq!(directions, case.directions, "{what}: directions");
    assert!(
        capture.problems.is_empty(),
        "{what}: {:?}",
        capture.problems
    );
    // What the reader gives parses as the frame it was.
    for f in &frames {
        assert!(Frame::parse(f).is_ok(), "{what}: {f:02x?}");
    }
}

#[test]
fn every_link_type_in_pcap_both_byte_orders_and_resolutions() {
    for case in cases() {
        for endianness in [Endianness::Little, Endianness::Big] {
            for resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
                let what = format!("pcap {:?} {endianness:?} {resolution:?}", case.link);
                let bytes = pcap_of(case.link, &case.packets, endianness, resolution);
                for mode in [ReadMode::Strict, ReadMode::Lenient] {
                    let capture = parse(&bytes, mode).unwrap_or_else(|e| panic!("{what}: {e}"));
                    check(&what, &capture, &case);
                }
            }
        }
    }
}

#[test]
fn every_link_type_in_pcapng_both_byte_orders() {
    for case in cases() {
        for endianness in [Endianness::Little, Endianness::Big] {
            let what = format!("pcapng {:?} {endianness:?}", case.link);
            let bytes = pcapng_of(case.link, &case.packets, endianness);
            for mode in [ReadMode::Strict, ReadMode::Lenient] {
                let capture = parse(&bytes, mode).unwrap_or_else(|e| panic!("{what}: {e}"));
                check(&what, &capture, &case);
            }
        }
    }
}

/// Two interfaces, Ethernet at the default microsecond resolution and Linux cooked SLL2 at
/// nanoseconds, their packets interleaved; the EPB flags say the direction on the first,
/// the cooked packet type on the second.
#[test]
fn pcapng_with_two_interfaces_of_different_link_types() {
    let eth = ethernet_frames();
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, None))
        .expect("idb 0");
    w.write_pcapng_block(idb(DataLink::LINUX_SLL2, Some(9)))
        .expect("idb 1");
    let cooked = sll2(&eth[1], 4);
    // Interface 0: microseconds; interface 1: nanoseconds.
    w.write_pcapng_block(epb(0, 1_700_000_000_000_000, &eth[0], Some(0b01)))
        .expect("epb");
    w.write_pcapng_block(epb(1, 1_700_000_000_000_000_500, &cooked, None))
        .expect("epb");
    w.write_pcapng_block(epb(0, 1_700_000_000_000_002, &eth[2], Some(0b10)))
        .expect("epb");
    let bytes = w.into_inner();
    let capture = parse(&bytes, ReadMode::Strict).expect("reads");
    assert_eq!(
        capture.packets,
        vec![
            Packet {
                ts_ns: 1_700_000_000_000_000_000,
                frame: eth[0].clone(),
                direction: PacketDirection::Inbound,
            },
            Packet {
                ts_ns: 1_700_000_000_000_000_500,
                frame: synthetic(&eth[1], Some(&eth[1][6..12])),
                direction: PacketDirection::Outbound,
            },
            Packet {
                ts_ns: 1_700_000_000_000_002_000,
                frame: eth[2].clone(),
                direction: PacketDirection::Outbound,
            },
        ]
    );
}

#[test]
fn pcapng_timestamp_resolutions_and_offset() {
    let frame = &ethernet_frames()[0];
    // (if_tsresol, raw value, nanoseconds)
    for (tsresol, raw, ns) in [
        (None, 1_500_000, 1_500_000_000),
        (Some(6), 1_500_000, 1_500_000_000),
        (Some(3), 1_500, 1_500_000_000),
        (Some(9), 1_500_000_000, 1_500_000_000),
        (Some(12), 1_500_000_000_000, 1_500_000_000),
        (Some(0x80 | 10), 1536, 1_500_000_000),
        (Some(0x80 | 30), 3 << 29, 1_500_000_000),
        (Some(127), u64::MAX, 0),
    ] {
        let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
        w.write_pcapng_block(idb(DataLink::ETHERNET, tsresol))
            .expect("idb");
        w.write_pcapng_block(epb(0, raw, frame, None)).expect("epb");
        let capture = parse(&w.into_inner(), ReadMode::Strict).expect("reads");
        assert_eq!(capture.packets[0].ts_ns, ns, "if_tsresol {tsresol:?}");
    }
    // if_tsoffset: seconds added to every timestamp.
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    let mut with_offset = idb(DataLink::ETHERNET, Some(9));
    with_offset
        .options
        .push(InterfaceDescriptionOption::IfTsOffset(100));
    w.write_pcapng_block(with_offset).expect("idb");
    w.write_pcapng_block(epb(0, 5, frame, None)).expect("epb");
    let capture = parse(&w.into_inner(), ReadMode::Strict).expect("reads");
    assert_eq!(capture.packets[0].ts_ns, 100_000_000_005);
}

/// A simple packet block belongs to interface 0, is padded to 32 bits (the padding is not
/// the packet's) and takes the time of the packet before it.
#[test]
fn pcapng_simple_packet_blocks() {
    let eth = ethernet_frames();
    let odd = &eth[2][..41];
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, Some(9)))
        .expect("idb");
    w.write_pcapng_block(epb(0, 77, &eth[0], None))
        .expect("epb");
    w.write_pcapng_block(SimplePacketBlock {
        original_len: odd.len() as u32,
        data: Cow::Borrowed(odd),
    })
    .expect("spb");
    let capture = parse(&w.into_inner(), ReadMode::Strict).expect("reads");
    assert_eq!(capture.packets.len(), 2);
    assert_eq!(capture.packets[1].frame, odd);
    assert_eq!(capture.packets[1].ts_ns, 77);
}

#[test]
fn write_is_nanosecond_ethernet_pcap_and_reads_back() {
    let frames: Vec<(u64, Vec<u8>)> = ethernet_frames()
        .into_iter()
        .enumerate()
        .map(|(i, f)| (ts_ns(i) + 1, f))
        .collect();
    let mut bytes = Vec::new();
    write(&mut bytes, frames.iter().map(|(t, f)| (*t, f.as_slice()))).expect("writes");
    assert_eq!(bytes[..4], 0xa1b23c4du32.to_be_bytes());
    assert_eq!(bytes[20..24], 1u32.to_be_bytes(), "LINKTYPE_ETHERNET");
    let capture = parse(&bytes, ReadMode::Strict).expect("reads");
    assert_eq!(capture.frames(), frames);
    assert_eq!(capture.into_frames(), frames);
    // The file helpers.
    let dir = std::env::temp_dir().join(format!("netconform-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("w.pcap");
    write_file(&path, &frames).expect("write_file");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
    assert_eq!(
        read(&path, ReadMode::Strict).expect("read").into_frames(),
        frames
    );
    let _ = std::fs::remove_dir_all(&dir);
    let e = read(&dir.join("missing.pcap"), ReadMode::Lenient).unwrap_err();
    assert!(matches!(e, CaptureError::Io { .. }), "{e}");
    assert!(e.to_string().starts_with("cannot read "), "{e}");
    let e = write_file(&dir.join("missing/w.pcap"), &frames).unwrap_err();
    assert!(
        matches!(&e, CaptureError::Write(m) if m.contains("missing/w.pcap")),
        "{e}"
    );
}

#[test]
fn garbage_capture_is_an_error() {
    assert!(matches!(
        parse(b"hello world", ReadMode::Lenient),
        Err(CaptureError::UnknownFormat(_))
    ));
    let e = parse(b"hello world", ReadMode::Strict).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a pcap or pcapng file (magic [68, 65, 6c, 6c])"
    );
    assert!(parse(&[], ReadMode::Lenient).is_err());
    assert!(matches!(
        parse(&[0xd4, 0xc3], ReadMode::Lenient),
        Err(CaptureError::UnknownFormat(_))
    ));
    assert!(matches!(
        parse(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0], ReadMode::Lenient),
        Err(CaptureError::Truncated { packets: 0, .. })
    ));
    assert!(matches!(
        parse(&PCAPNG_MAGIC, ReadMode::Lenient),
        Err(CaptureError::Truncated { packets: 0, .. })
    ));
}

#[test]
fn truncated_captures_strict_and_lenient() {
    let eth = ethernet_frames();
    for (format, bytes) in [
        (
            "pcap",
            pcap_of(
                DataLink::ETHERNET,
                &eth,
                Endianness::Little,
                TsResolution::MicroSecond,
            ),
        ),
        (
            "pcapng",
            pcapng_of(DataLink::ETHERNET, &eth, Endianness::Big),
        ),
    ] {
        let cut = &bytes[..bytes.len() - 10];
        let e = parse(cut, ReadMode::Strict).unwrap_err();
        assert!(
            matches!(e, CaptureError::Truncated { packets: 2, .. }),
            "{format}: {e}"
        );
        assert!(
            e.to_string()
                .starts_with("capture truncated after 2 packets"),
            "{format}: {e}"
        );
        let lenient = parse(cut, ReadMode::Lenient).expect("lenient");
        assert_eq!(lenient.frames().len(), 2, "{format}");
        assert_eq!(lenient.problems, vec![e.to_string()], "{format}");
        // Every possible cut: an error or a prefix of the packets, never a panic.
        for n in 0..bytes.len() {
            for mode in [ReadMode::Strict, ReadMode::Lenient] {
                if let Ok(c) = parse(&bytes[..n], mode) {
                    assert!(c.packets.len() <= eth.len());
                    for (p, f) in c.packets.iter().zip(&eth) {
                        assert_eq!(&p.frame, f, "{format} cut at {n}");
                    }
                }
            }
        }
    }
}

#[test]
fn corrupt_pcap_record_length_is_not_called_truncation() {
    let mut bytes = pcap_of(
        DataLink::ETHERNET,
        &ethernet_frames(),
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    // incl_len of the first record.
    bytes[24 + 8..24 + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let e = parse(&bytes, ReadMode::Strict).unwrap_err();
    assert!(matches!(e, CaptureError::Format(_)), "{e}");
    assert!(e.to_string().contains("corrupt"), "{e}");
}

#[test]
fn snaplen_cut_packet_strict_and_lenient() {
    let eth = ethernet_frames();
    let header = PcapHeader {
        snaplen: 40,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("writer");
    for f in &eth {
        let kept = &f[..f.len().min(40)];
        w.write_packet(&PcapPacket::new(Duration::ZERO, f.len() as u32, kept))
            .expect("packet");
    }
    let bytes = w.into_writer();
    let e = parse(&bytes, ReadMode::Strict).unwrap_err();
    assert!(
        matches!(
            e,
            CaptureError::PacketCut {
                index: 0,
                captured: 40,
                original: 54
            }
        ),
        "{e}"
    );
    let lenient = parse(&bytes, ReadMode::Lenient).expect("lenient");
    assert_eq!(lenient.packets.len(), 3);
    assert_eq!(lenient.problems.len(), 3, "{:?}", lenient.problems);
    assert_eq!(lenient.packets[0].frame, eth[0][..40]);
}

#[test]
fn unsupported_link_type_is_named() {
    let frame = &ethernet_frames()[0];
    for mode in [ReadMode::Strict, ReadMode::Lenient] {
        let bytes = pcap_of(
            DataLink::USB_LINUX,
            std::slice::from_ref(frame),
            Endianness::Little,
            TsResolution::MicroSecond,
        );
        let e = parse(&bytes, mode).unwrap_err();
        assert!(
            matches!(&e, CaptureError::LinkType { number: 189, name } if name == "USB_LINUX"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(
                "unsupported link type USB_LINUX (189): netconform reads Ethernet (1)"
            ),
            "{e}"
        );
        // Even without packets: the file's one link type is unreadable.
        let empty = pcap_of(
            DataLink::Unknown(4000),
            &[],
            Endianness::Big,
            TsResolution::NanoSecond,
        );
        let e = parse(&empty, mode).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unsupported link type unknown (4000)"),
            "{e}"
        );
    }
    // pcapng: an interface of an unsupported type fails a strict read at its first packet;
    // a lenient read skips its packets, says so once, and keeps the other interface's.
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, None))
        .expect("idb");
    w.write_pcapng_block(idb(DataLink::BLUETOOTH_HCI_H4, None))
        .expect("idb");
    w.write_pcapng_block(epb(1, 1, frame, None)).expect("epb");
    w.write_pcapng_block(epb(0, 2, frame, None)).expect("epb");
    w.write_pcapng_block(epb(1, 3, frame, None)).expect("epb");
    let bytes = w.into_inner();
    let e = parse(&bytes, ReadMode::Strict).unwrap_err();
    assert!(
        matches!(&e, CaptureError::LinkType { number: 187, name } if name == "BLUETOOTH_HCI_H4"),
        "{e}"
    );
    let lenient = parse(&bytes, ReadMode::Lenient).expect("lenient");
    assert_eq!(lenient.packets.len(), 1);
    assert_eq!(lenient.packets[0].ts_ns, 2000);
    assert_eq!(lenient.problems, vec![e.to_string()]);
}

#[test]
fn link_types_become_ethernet() {
    let ip = [0x45, 0, 0, 20];
    let raw = to_ethernet(DataLink::RAW, &ip).unwrap().0;
    assert_eq!(&raw[12..14], &[8, 0]);
    assert_eq!(&raw[14..], &ip);
    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 9, 0, 0,
    ];
    sll2.push(0x60);
    let e = to_ethernet(DataLink::LINUX_SLL2, &sll2).unwrap().0;
    assert_eq!(&e[6..12], &[2, 0, 0, 0, 0, 9]);
    assert_eq!(&e[12..], &[0x86, 0xdd, 0x60]);
    assert!(to_ethernet(DataLink::LINUX_SLL, &[0; 15]).is_err());
    assert!(matches!(
        to_ethernet(DataLink::USB_LINUX, &[]),
        Err(CaptureError::LinkType { .. })
    ));
}

/// A packet too short for its link's header is a clear error (strict) or a skipped packet
/// (lenient), never a panic.
#[test]
fn short_link_headers() {
    for (link, need) in [
        (DataLink::LINUX_SLL, 16),
        (DataLink::LINUX_SLL2, 20),
        (DataLink::NULL, 4),
        (DataLink::LOOP, 4),
    ] {
        let bytes = pcap_of(
            link,
            &[vec![0; need - 1], vec![0x45; need + 20]],
            Endianness::Little,
            TsResolution::MicroSecond,
        );
        let e = parse(&bytes, ReadMode::Strict).unwrap_err();
        assert!(
            e.to_string().ends_with(&format!(
                "packet of {} bytes, its header needs {need}",
                need - 1
            )),
            "{link:?}: {e}"
        );
        let lenient = parse(&bytes, ReadMode::Lenient).expect("lenient");
        assert_eq!(lenient.packets.len(), 1, "{link:?}");
        assert_eq!(lenient.problems.len(), 1, "{link:?}");
    }
}

/// A packet on an interface that was never described, and a whole block whose content
/// does not parse: errors in a strict read, skipped in a lenient one.
#[test]
fn pcapng_unknown_interface_and_unreadable_block() {
    let frame = &ethernet_frames()[0];
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, Some(9)))
        .expect("idb");
    w.write_pcapng_block(epb(0, 1, frame, None)).expect("epb");
    let mut bytes = w.into_inner();
    // An EPB for interface 5, by hand (pcap-file's writer refuses it).
    let epb_at = bytes.len();
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, Some(9)))
        .expect("idb");
    let before = w.get_ref().len();
    w.write_pcapng_block(epb(0, 2, frame, None)).expect("epb");
    let mut block = w.into_inner()[before..].to_vec();
    block[8..12].copy_from_slice(&5u32.to_le_bytes());
    bytes.extend(&block);
    // An EPB whose flags option has length 3 (must be 4): a whole block that does not parse.
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, Some(9)))
        .expect("idb");
    let before = w.get_ref().len();
    w.write_pcapng_block(epb(0, 3, frame, Some(0b10)))
        .expect("epb");
    let mut block = w.into_inner()[before..].to_vec();
    // The option starts after 28 bytes of block header and the padded packet.
    let option = 28 + frame.len().div_ceil(4) * 4;
    assert_eq!(block[option..option + 2], 2u16.to_le_bytes(), "epb_flags");
    block[option + 2..option + 4].copy_from_slice(&3u16.to_le_bytes());
    bytes.extend(&block);
    // And a good packet after them.
    let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
    w.write_pcapng_block(idb(DataLink::ETHERNET, Some(9)))
        .expect("idb");
    let before = w.get_ref().len();
    w.write_pcapng_block(epb(0, 4, frame, None)).expect("epb");
    bytes.extend(&w.into_inner()[before..]);
    assert!(epb_at < bytes.len());

    let e = parse(&bytes, ReadMode::Strict).unwrap_err();
    assert_eq!(
        e.to_string(),
        "capture format: packet 1: interface 5 has no interface description block"
    );
    let lenient = parse(&bytes, ReadMode::Lenient).expect("lenient");
    let times: Vec<u64> = lenient.packets.iter().map(|p| p.ts_ns).collect();
    assert_eq!(times, vec![1, 4]);
    assert_eq!(lenient.problems.len(), 2, "{:?}", lenient.problems);
    assert!(
        lenient.problems[1]
            .starts_with("capture format: after 2 packets: unreadable enhanced packet block"),
        "{:?}",
        lenient.problems
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes after either magic, in either mode: a result or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        pcapng in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = if pcapng {
            PCAPNG_MAGIC.to_vec()
        } else {
            0xa1b2c3d4u32.to_le_bytes().to_vec()
        };
        bytes.extend(tail);
        let _ = parse(&bytes, ReadMode::Strict);
        let _ = parse(&bytes, ReadMode::Lenient);
    }

    /// A valid capture of any link type with bytes overwritten: never a panic.
    #[test]
    fn damaged_captures_never_panic(
        case in 0usize..11,
        pcapng in any::<bool>(),
        damage in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let cases = cases();
        let case = &cases[case % cases.len()];
        let mut bytes = if pcapng {
            pcapng_of(case.link, &case.packets, Endianness::Little)
        } else {
            pcap_of(case.link, &case.packets, Endianness::Little, TsResolution::NanoSecond)
        };
        for (at, byte) in damage {
            let n = bytes.len();
            bytes[at % n] = byte;
        }
        let _ = parse(&bytes, ReadMode::Strict);
        let _ = parse(&bytes, ReadMode::Lenient);
    }
}
