//! `netconform::wire::dns` on real messages (`corpora/dns/`, see its SOURCES.md) and on
//! crafted broken ones; and each DNS entry of `fuzz::differences` shown to be hit by a
//! concrete input through the `dns` fuzz target.

use std::net::Ipv4Addr;

use netconform::fuzz::{self, Difference};
use netconform::wire::dns::{
    DnsFlags, DnsMessage, DnsName, DnsParseError, DnsQuestion, DnsRecord, EdnsOption, RData, class,
    rtype,
};

mod common;

fn seeds() -> Vec<(String, Vec<u8>)> {
    common::seeds("dns", 10)
}

fn seed(name: &str) -> Vec<u8> {
    common::seed("dns", name)
}

fn name(text: &str) -> DnsName {
    DnsName::from_dotted(text)
}

fn header(qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = vec![0x12, 0x34, 0x81, 0x80];
    for n in [qd, an, ns, ar] {
        h.extend_from_slice(&n.to_be_bytes());
    }
    h
}

#[test]
fn the_compressed_cname_response_reads_to_exact_fields() {
    let m = DnsMessage::parse(&seed("response-cname-2a-compressed-edns.bin")).expect("parse");
    assert!(m.flags.qr && m.flags.rd && m.flags.ra && !m.flags.tc && !m.flags.aa);
    assert_eq!(m.flags.opcode, 0);
    assert_eq!(m.rcode(), 0);
    assert_eq!(
        m.questions,
        vec![DnsQuestion {
            name: name("www.example.com"),
            qtype: rtype::A,
            qclass: class::IN
        }]
    );
    assert_eq!(
        m.answers,
        vec![
            DnsRecord {
                name: name("www.example.com"),
                rtype: rtype::CNAME,
                class: class::IN,
                ttl: 300,
                data: RData::Cname(name("web.example.com")),
            },
            DnsRecord {
                name: name("web.example.com"),
                rtype: rtype::A,
                class: class::IN,
                ttl: 60,
                data: RData::A(Ipv4Addr::new(192, 0, 2, 10)),
            },
            DnsRecord {
                name: name("web.example.com"),
                rtype: rtype::A,
                class: class::IN,
                ttl: 60,
                data: RData::A(Ipv4Addr::new(192, 0, 2, 11)),
            },
        ]
    );
    assert!(m.authorities.is_empty());
    let edns = m.edns().expect("OPT");
    assert_eq!((edns.udp_payload_size, edns.version), (1232, 0));
    assert_eq!(
        m.to_string(),
        "id ".to_string()
            + &m.id.to_string()
            + " response QUERY NOERROR rd ra; question www.example.com. IN A; \
               answer www.example.com. 300 IN CNAME web.example.com.; \
               answer web.example.com. 60 IN A 192.0.2.10; \
               answer web.example.com. 60 IN A 192.0.2.11; \
               additional OPT udp 1232 ttl 0x00000000 "
    );
}

#[test]
fn nxdomain_mx_txt_and_tc_read_as_sent() {
    let nx = DnsMessage::parse(&seed("response-nxdomain-soa-edns.bin")).expect("nx");
    assert_eq!(nx.rcode(), 3);
    let RData::Soa(soa) = &nx.authorities[0].data else {
        panic!("SOA expected: {nx}");
    };
    assert_eq!(soa.mname, name("ns1.example.com"));
    assert_eq!(soa.rname, name("hostmaster.example.com"));
    assert_eq!(
        (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
        (2024010101, 7200, 3600, 1209600, 300)
    );
    let mx = DnsMessage::parse(&seed("response-mx-2-compressed.bin")).expect("mx");
    assert_eq!(
        mx.answers[1].data,
        RData::Mx {
            preference: 20,
            exchange: name("backup.example.com")
        }
    );
    let txt = DnsMessage::parse(&seed("response-txt-2-strings.bin")).expect("txt");
    assert_eq!(
        txt.answers[0].data,
        RData::Txt(vec![b"v=spf1 -all ok".to_vec(), b"second one".to_vec()])
    );
    let tc = DnsMessage::parse(&seed("response-truncated-tc.bin")).expect("tc");
    assert!(tc.flags.tc && tc.answers.is_empty());
}

#[test]
fn every_prefix_of_every_seed_is_a_length_error() {
    for (file, bytes) in seeds() {
        DnsMessage::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        for cut in 0..bytes.len() {
            match DnsMessage::parse(&bytes[..cut]) {
                Err(DnsParseError::Length { .. } | DnsParseError::CountTooLarge { .. }) => {}
                other => panic!("{file} cut to {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_seed_round_trips_with_and_without_compression() {
    for (file, bytes) in seeds() {
        let m = DnsMessage::parse(&bytes).expect("seed");
        let plain = m.emit();
        assert_eq!(DnsMessage::parse(&plain).as_ref(), Ok(&m), "{file} emit");
        let compressed = m.emit_compressed();
        assert_eq!(
            DnsMessage::parse(&compressed).as_ref(),
            Ok(&m),
            "{file} emit_compressed"
        );
        assert!(compressed.len() <= plain.len(), "{file}");
        if file.starts_with("query") {
            // Queries carry one name: nothing to compress, so emit gives the bytes back.
            assert_eq!(plain, bytes, "{file}");
        }
    }
}

#[test]
fn compression_shares_suffixes_and_keeps_case() {
    let rr = |owner: &str, target: &str| DnsRecord {
        name: name(owner),
        rtype: rtype::CNAME,
        class: class::IN,
        ttl: 1,
        data: RData::Cname(name(target)),
    };
    let m = DnsMessage {
        id: 7,
        flags: DnsFlags::default(),
        questions: vec![],
        answers: vec![
            rr("a.Example.com", "b.example.com"),
            rr("c.example.com", "a.Example.com"),
        ],
        authorities: vec![],
        additionals: vec![],
    };
    let compressed = m.emit_compressed();
    assert!(compressed.len() < m.emit().len());
    let again = DnsMessage::parse(&compressed).expect("parse");
    assert_eq!(again, m);
    assert_eq!(again.answers[1].data, RData::Cname(name("a.Example.com")));
}

#[test]
fn pointer_loops_and_forward_pointers_are_rejected() {
    // The question name is a pointer to itself.
    let mut m = header(1, 0, 0, 0);
    m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::BadPointer {
            offset: 12,
            target: 12,
            ..
        })
    ));
    // A label, then a pointer back to that label: a loop through one label.
    let mut m = header(1, 0, 0, 0);
    m.extend_from_slice(b"\x01a\xc0\x0c\x00\x01\x00\x01");
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::BadPointer { offset: 14, .. })
    ));
    // The second name's target is before it, but the labels there run into the second
    // name.
    // (The first question is the root, and its type and class bytes read as two labels.)
    let mut m = header(2, 0, 0, 0);
    m.extend_from_slice(b"\x00\x01\x01\x01\x01");
    m.extend_from_slice(b"\xc0\x0d\x00\x01\x00\x01");
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::BadPointer { .. })
    ));
    // A forward pointer.
    let mut m = header(1, 0, 0, 0);
    m.extend_from_slice(b"\xc0\x12\x00\x01\x00\x01\x01a\x00");
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::BadPointer { target: 18, .. })
    ));
}

#[test]
fn counts_the_message_cannot_hold_fail_before_allocating() {
    let mut m = header(0xffff, 0, 0, 0);
    m.extend_from_slice(b"\x00\x00\x01\x00\x01");
    assert_eq!(
        DnsMessage::parse(&m),
        Err(DnsParseError::CountTooLarge {
            section: "question",
            count: 0xffff,
            offset: 12,
            remaining: 5,
            max: 1
        })
    );
    let mut m = header(0, 0, 0, 0xffff);
    m.extend_from_slice(&[0; 22]);
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::CountTooLarge {
            section: "additional",
            max: 2,
            ..
        })
    ));
}

#[test]
fn label_types_and_name_limits_are_enforced() {
    let mut m = header(1, 0, 0, 0);
    m.extend_from_slice(b"\x41a\x00\x00\x01\x00\x01");
    assert_eq!(
        DnsMessage::parse(&m),
        Err(DnsParseError::LabelType {
            offset: 12,
            byte: 0x41
        })
    );
    // Four 63-byte labels: 4 * 64 + 1 = 257 bytes.
    let mut m = header(1, 0, 0, 0);
    for _ in 0..4 {
        m.push(63);
        m.extend_from_slice(&[b'x'; 63]);
    }
    m.extend_from_slice(b"\x00\x00\x01\x00\x01");
    assert!(matches!(
        DnsMessage::parse(&m),
        Err(DnsParseError::NameTooLong { offset: 12, .. })
    ));
    // Three 63-byte labels and one 61-byte label: exactly 255, accepted.
    let mut m = header(1, 0, 0, 0);
    for len in [63, 63, 63, 61] {
        m.push(len);
        m.extend_from_slice(&vec![b'x'; usize::from(len)]);
    }
    m.extend_from_slice(b"\x00\x00\x01\x00\x01");
    let ok = DnsMessage::parse(&m).expect("255-byte name");
    assert_eq!(ok.questions[0].name.wire_len(), 255);
}

#[test]
fn opt_placement_and_rdata_lengths_are_enforced() {
    let opt = |owner: &[u8]| {
        let mut r = owner.to_vec();
        r.extend_from_slice(b"\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
        r
    };
    let mut in_answer = header(0, 1, 0, 0);
    in_answer.extend(opt(b"\x00"));
    assert!(matches!(
        DnsMessage::parse(&in_answer),
        Err(DnsParseError::Opt {
            reason: "not in the additional section",
            ..
        })
    ));
    let mut twice = header(0, 0, 0, 2);
    twice.extend(opt(b"\x00"));
    twice.extend(opt(b"\x00"));
    assert!(matches!(
        DnsMessage::parse(&twice),
        Err(DnsParseError::Opt {
            reason: "a second OPT record",
            ..
        })
    ));
    let mut named = header(0, 0, 0, 1);
    named.extend(opt(b"\x01a\x00"));
    assert!(matches!(
        DnsMessage::parse(&named),
        Err(DnsParseError::Opt {
            reason: "owner name is not the root",
            ..
        })
    ));
    // An A record with 5 bytes of RDATA.
    let mut a5 = header(0, 1, 0, 0);
    a5.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x05\x01\x02\x03\x04\x05");
    assert!(matches!(
        DnsMessage::parse(&a5),
        Err(DnsParseError::Rdata { offset: 23, .. })
    ));
    // An empty A outside UPDATE is an error, inside UPDATE it is RData::Empty.
    let mut empty = header(0, 1, 0, 0);
    empty.extend_from_slice(b"\x00\x00\x01\x00\xff\x00\x00\x00\x00\x00\x00");
    assert!(matches!(
        DnsMessage::parse(&empty),
        Err(DnsParseError::Rdata { .. })
    ));
    empty[2] = 5 << 3;
    let update = DnsMessage::parse(&empty).expect("UPDATE");
    assert_eq!(update.answers[0].data, RData::Empty);
}

// ---- each DNS difference, hit by a concrete input ----

fn dns_target(input: &[u8]) -> netconform::fuzz::Allowed {
    let t = fuzz::target("dns").expect("dns target");
    (t.run)(input).unwrap_or_else(|f| panic!("{f}"))
}

fn message_with(answers: Vec<DnsRecord>, additionals: Vec<DnsRecord>) -> DnsMessage {
    DnsMessage {
        id: 0xbeef,
        flags: DnsFlags {
            qr: true,
            rd: true,
            ra: true,
            ..DnsFlags::default()
        },
        questions: vec![DnsQuestion {
            name: name("example.com"),
            qtype: rtype::A,
            qclass: class::IN,
        }],
        answers,
        authorities: vec![],
        additionals,
    }
}

fn raw(rtype: u16, data: &[u8]) -> DnsRecord {
    DnsRecord {
        name: name("example.com"),
        rtype,
        class: class::IN,
        ttl: 60,
        data: RData::Raw(data.to_vec()),
    }
}

fn opt(udp: u16, options: Vec<EdnsOption>) -> DnsRecord {
    DnsRecord {
        name: DnsName::root(),
        rtype: rtype::OPT,
        class: udp,
        ttl: 0,
        data: RData::Opt(options),
    }
}

#[test]
fn the_seeds_need_no_difference() {
    for (file, bytes) in seeds() {
        assert_eq!(dns_target(&bytes).iter().count(), 0, "{file}");
    }
}

#[test]
fn each_dns_difference_is_hit() {
    let mut trailing = seed("query-mx-noedns.bin");
    trailing.push(0);
    let cases: Vec<(Difference, Vec<u8>)> = vec![
        (Difference::HickoryIgnoresTrailingBytes, trailing),
        (
            // SRV needs priority, weight, port and a name; one byte is not that.
            Difference::HickoryChecksOpaqueRdata,
            message_with(vec![raw(rtype::SRV, b"\x01")], vec![]).emit(),
        ),
        (
            Difference::HickoryRejectsEmptyRdata,
            message_with(vec![raw(65280, b"")], vec![]).emit(),
        ),
        (
            Difference::HickorySigOutsideAdditional,
            message_with(vec![raw(24, b"\x01\x02\x03")], vec![]).emit(),
        ),
        (Difference::HickoryDropsTruncatedEdnsOption, {
            // OPT RDATA holding only an option code.
            let mut m = message_with(vec![], vec![opt(1232, vec![])]).emit();
            let len = m.len();
            m[len - 2..].copy_from_slice(&[0, 2]);
            m.extend_from_slice(&[0, 10]);
            m
        }),
        (
            // An empty Client Subnet option: hickory needs family and prefix lengths.
            Difference::HickoryValidatesEdnsOptions,
            message_with(
                vec![],
                vec![opt(
                    1232,
                    vec![EdnsOption {
                        code: 8,
                        data: vec![],
                    }],
                )],
            )
            .emit(),
        ),
        (Difference::HickoryDropsZBit, {
            let mut m = message_with(vec![], vec![]);
            m.flags.z = true;
            m.emit()
        }),
        (
            Difference::HickoryEdnsPayloadFloor,
            message_with(
                vec![],
                vec![opt(
                    100,
                    vec![EdnsOption {
                        code: 65001,
                        data: vec![1; 3],
                    }],
                )],
            )
            .emit(),
        ),
    ];
    for (d, input) in cases {
        let allowed = dns_target(&input);
        assert!(
            allowed.contains(d),
            "{} not hit by {:02x?}: {:?}",
            d.name(),
            input,
            allowed.iter().collect::<Vec<_>>()
        );
    }
}
