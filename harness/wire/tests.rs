//! Property tests for the whole frame: emit → parse → equal, truncations, arbitrary bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn tcp_options() -> impl Strategy<Value = Vec<TcpOption>> {
    let one = prop_oneof![
        any::<u16>().prop_map(TcpOption::Mss),
        any::<u8>().prop_map(TcpOption::WindowScale),
        Just(TcpOption::SackPermitted),
        vec(any::<(u32, u32)>(), 1..=3).prop_map(TcpOption::Sack),
        any::<(u32, u32)>().prop_map(|(val, ecr)| TcpOption::Timestamps { val, ecr }),
        Just(TcpOption::Nop),
        (prop_oneof![6u8..=7, 9u8..=254], vec(any::<u8>(), 0..6))
            .prop_map(|(kind, data)| TcpOption::Unknown { kind, data }),
    ];
    vec(one, 0..5).prop_map(|mut opts| {
        // Keep what fits in 40 bytes, and end with EOL when padding follows (that is how
        // padding parses back).
        while encode_len(&opts) > 40 {
            opts.pop();
        }
        if !encode_len(&opts).is_multiple_of(4) {
            opts.push(TcpOption::Eol);
        }
        opts
    })
}

fn encode_len(opts: &[TcpOption]) -> usize {
    let mut n = 0;
    for o in opts {
        n += match o {
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(b) => 2 + 8 * b.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Nop | TcpOption::Eol => 1,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
            TcpOption::Malformed(b) => b.len(),
        };
    }
    n
}

fn tcp() -> impl Strategy<Value = Transport> {
    (
        any::<(u16, u16, u32, u32, u8, u16, u16)>(),
        tcp_options(),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(
            |((src_port, dst_port, seq, ack, flags, window, urgent_ptr), options, payload)| {
                Transport::Tcp(TcpSegment {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags: TcpFlags(flags),
                    window,
                    urgent_ptr,
                    options,
                    payload,
                    checksum: 0,
                    checksum_valid: None,
                })
            },
        )
}

fn transport_v4() -> impl Strategy<Value = Transport> {
    prop_oneof![
        tcp(),
        (any::<(u16, u16)>(), vec(any::<u8>(), 0..30))
            .prop_map(|((s, d), p)| Transport::Udp(UdpDatagram::new(s, d, p))),
        (any::<(u16, u16)>(), vec(any::<u8>(), 0..30))
            .prop_map(|((i, s), p)| Transport::Icmpv4(Icmpv4Message::echo_request(i, s, p))),
        vec(any::<u8>(), 0..30).prop_map(|payload| Transport::Unknown {
            protocol: 253,
            payload
        }),
    ]
}

fn transport_v6() -> impl Strategy<Value = Transport> {
    prop_oneof![
        transport_v4(),
        any::<[u8; 16]>().prop_map(|t| {
            Transport::Icmpv6(Icmpv6Message::neighbor_solicitation(
                Ipv6Addr::from(t),
                None,
            ))
        }),
    ]
}

fn ext_header() -> impl Strategy<Value = Ipv6ExtHeader> {
    prop_oneof![
        (
            prop_oneof![Just(0u8), Just(43), Just(60)],
            0usize..3,
            any::<u8>()
        )
            .prop_map(|(protocol, k, b)| Ipv6ExtHeader {
                protocol,
                data: vec![b; 6 + 8 * k]
            }),
        (0usize..3, any::<u8>()).prop_map(|(k, b)| Ipv6ExtHeader {
            protocol: 51,
            data: vec![b; 10 + 4 * k]
        }),
        any::<u32>().prop_map(|id| Ipv6ExtHeader::fragment(0, false, id)),
    ]
}

fn network() -> impl Strategy<Value = Network> {
    prop_oneof![
        (any::<(u16, u16, u16, [u8; 4], [u8; 4])>(), mac(), mac()).prop_map(
            |((op, hw, proto, s, t), sm, tm)| Network::Arp(ArpRepr {
                operation: ArpOperation::from(op),
                hw_type: hw,
                proto_type: proto,
                sender_mac: sm,
                sender_ip: Ipv4Addr::from(s),
                target_mac: tm,
                target_ip: Ipv4Addr::from(t),
            })
        ),
        (
            any::<(u8, u8, u16, bool, u8, [u8; 4], [u8; 4])>(),
            0usize..3,
            transport_v4()
        )
            .prop_map(|((dscp, ecn, id, df, ttl, s, d), opt_words, transport)| {
                let mut p = Ipv4Packet::new(s.into(), d.into(), transport);
                (p.dscp, p.ecn, p.identification, p.dont_fragment, p.ttl) =
                    (dscp & 0x3f, ecn & 3, id, df, ttl);
                p.options = vec![1; 4 * opt_words];
                Network::Ipv4(p)
            }),
        (
            any::<(u8, u32, u8, [u8; 16], [u8; 16])>(),
            vec(ext_header(), 0..3),
            transport_v6()
        )
            .prop_map(|((tc, fl, hl, s, d), extensions, transport)| {
                let mut p = Ipv6Packet::new(s.into(), d.into(), transport);
                (p.traffic_class, p.flow_label, p.hop_limit) = (tc, fl & 0xf_ffff, hl);
                p.extensions = extensions;
                Network::Ipv6(p)
            }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        mac(),
        mac(),
        vec((0u8..8, any::<bool>(), 0u16..4096), 0..3),
        network(),
    )
        .prop_map(|(src, dst, tags, network)| {
            let mut f = Frame::new(src, dst, network);
            f.vlans = tags
                .into_iter()
                .map(|(pcp, dei, vid)| VlanTag {
                    pcp,
                    dei,
                    vid,
                    ether_type: 0,
                })
                .collect();
            f.fill_computed();
            f
        })
}

proptest! {
    #[test]
    fn emit_then_parse_is_identity(f in frame()) {
        let bytes = f.emit();
        prop_assert_eq!(Frame::parse(&bytes), Ok(f.clone()));
    }

    #[test]
    fn every_truncation_is_an_exact_length_error(f in frame()) {
        let bytes = f.emit();
        for n in 0..bytes.len() {
            let e = match Frame::parse(&bytes[..n]) {
                Err(e) => e,
                Ok(p) => return Err(TestCaseError::fail(format!("{n} bytes parsed: {p:?}"))),
            };
            match e.kind {
                ErrorKind::Length { needed, present } => {
                    prop_assert_eq!(present, n - e.offset, "{}", e);
                    prop_assert!(needed > present, "{}", e);
                    prop_assert!(e.offset + needed <= bytes.len(), "{}", e);
                }
                ErrorKind::Content(_) => prop_assert!(false, "content error on truncation: {}", e),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..200)) {
        if let Ok(f) = Frame::parse(&bytes) {
            let _ = f.to_string();
            let _ = f.emit();
        }
    }

    #[test]
    fn mutated_frames_never_panic(f in frame(), at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut bytes = f.emit();
        let i = at.index(bytes.len());
        bytes[i] = value;
        if let Ok(p) = Frame::parse(&bytes) {
            let _ = p.to_string();
            prop_assert_eq!(Frame::parse(&p.emit()).is_ok(), true);
        }
    }
}

/// The checksum as etherparse sums it, word by word: what `transport_checksum` computed
/// before it summed 32 bytes at a time.
fn etherparse_checksum(pseudo: &Pseudo, protocol: u8, bytes: &[u8]) -> u16 {
    let sum = etherparse::checksum::Sum16BitWords::new();
    let len = bytes.len();
    let sum = match pseudo {
        Pseudo::None => sum,
        Pseudo::V4 { src, dst } => sum
            .add_slice(src)
            .add_slice(dst)
            .add_slice(&[0, protocol])
            .add_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()),
        Pseudo::V6 { src, dst } => sum
            .add_slice(src)
            .add_slice(dst)
            .add_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes())
            .add_slice(&[0, 0, 0, protocol]),
    };
    sum.add_slice(bytes).ones_complement().to_be()
}

#[test]
fn transport_checksum_agrees_with_etherparse_word_by_word() {
    let pseudos = [
        Pseudo::None,
        Pseudo::V4 {
            src: [192, 0, 2, 1],
            dst: [255, 255, 255, 254],
        },
        Pseudo::V6 {
            src: [0xff; 16],
            dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        },
    ];
    // Every length up to three blocks and a tail (odd ones too), over patterned bytes, all
    // zeros and all ones (the sums that fold to 0xffff and to zero).
    let mut x = 0x1234_5678u32;
    let random: Vec<u8> = (0..200)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    for bytes in [random, vec![0; 200], vec![0xff; 200]] {
        for len in 0..bytes.len() {
            for (i, p) in pseudos.iter().enumerate() {
                let b = &bytes[..len];
                assert_eq!(
                    transport_checksum(p, 6 + i as u8, b),
                    etherparse_checksum(p, 6 + i as u8, b),
                    "pseudo {p:?}, {len} bytes"
                );
            }
        }
    }
    // A wrong sum is caught: one flipped bit changes the checksum.
    let mut b = vec![0x5a; 77];
    let before = transport_checksum(&Pseudo::None, 1, &b);
    b[70] ^= 1;
    assert_ne!(transport_checksum(&Pseudo::None, 1, &b), before);
}
