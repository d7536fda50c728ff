//! Every legitimate parser difference listed in `netconform::fuzz::differences` is still
//! needed: a concrete input makes its target excuse a disagreement by that entry (and by no
//! entry outside its own layer). If a reference parser changes and an entry stops applying,
//! this fails and the entry goes.

use std::net::Ipv4Addr;

use netconform::fuzz::{self, Difference};
use netconform::wire::{Frame, MacAddr, TcpFlags, TcpSegment, VlanTag};

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const IP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn run(target: &str, data: &[u8]) -> fuzz::Allowed {
    let t = fuzz::target(target).expect("target exists");
    (t.run)(data).unwrap_or_else(|f| panic!("{f}"))
}

/// A TCP header (20 bytes + `options`, padded), ports 1000 → 80.
fn tcp(flags: u8, options: &[u8], src_port: u16) -> Vec<u8> {
    let mut opts = options.to_vec();
    opts.resize(opts.len().div_ceil(4) * 4, 0);
    let doff = u8::try_from((20 + opts.len()) / 4).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&src_port.to_be_bytes());
    b.extend_from_slice(&80u16.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&[doff << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    b.extend_from_slice(&opts);
    b
}

/// The IPv4 packet (or IPv6 packet, or ARP packet) of a frame: everything after 14 bytes.
fn network(frame: &Frame) -> Vec<u8> {
    frame.emit().split_off(14)
}

fn expect(target: &str, data: &[u8], d: Difference) {
    let allowed = run(target, data);
    assert!(
        allowed.contains(d),
        "{target}: {} not used; used {:?}",
        d.name(),
        allowed.iter().map(Difference::name).collect::<Vec<_>>()
    );
}

#[test]
fn every_difference_is_hit_by_an_input() {
    let syn = Frame::tcp_v4(
        A,
        B,
        IP_A,
        IP_B,
        TcpSegment::new(1000, 80, 1, 0, TcpFlags::SYN),
    );
    let mut covered = Vec::new();
    let mut check = |target: &str, data: Vec<u8>, d: Difference| {
        expect(target, &data, d);
        covered.push(d);
    };

    // Four VLAN tags: etherparse keeps three link extensions.
    let mut tagged = syn.clone();
    tagged.vlans = (1..=4).map(VlanTag::new).collect();
    check(
        "ethernet",
        tagged.emit(),
        Difference::EtherparseLinkExtLimit,
    );

    // MACsec (ether type 0x88E5) with a plausible SecTAG.
    let mut macsec = syn.emit()[..12].to_vec();
    macsec.extend_from_slice(&[0x88, 0xe5, 0x0c, 0x00, 0, 0, 0, 1]);
    macsec.extend_from_slice(&[0u8; 32]);
    check("ethernet", macsec, Difference::MacsecNotParsed);

    // ARP with hardware type 6 (IEEE 802).
    let mut arp = vec![0, 6, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&[0u8; 20]);
    check("arp", arp, Difference::ArpSmoltcpEthernetIpv4Only);

    // An IPv4 fragment (more fragments set).
    let mut frag = network(&syn);
    frag[6] |= 0x20;
    frag[10..12].copy_from_slice(&[0, 0]);
    check("ipv4", frag, Difference::Ipv4SmoltcpNoFragments);

    // IPv6: destination options, then hop-by-hop (RFC 8200 §4.1 wants it first).
    let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 60, 64];
    v6.extend_from_slice(&[0u8; 32]);
    v6.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]); // dest opts → hop-by-hop
    v6.extend_from_slice(&[59, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop → no next header
    check("ipv6", v6, Difference::Ipv6HopByHopNotFirst);

    // Payload length 0 with a hop-by-hop header: a jumbogram to etherparse.
    let mut jumbo = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
    jumbo.extend_from_slice(&[0u8; 32]);
    jumbo.extend_from_slice(&[59, 0, 0xc2, 4, 0, 0, 0, 0]);
    check("ipv6", jumbo, Difference::Ipv6Jumbogram);

    // A timestamp request of 12 bytes (RFC 792 gives it 20).
    check(
        "icmpv4",
        vec![13, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0],
        Difference::Icmpv4TimestampLength,
    );

    // A timestamp request of 40 bytes.
    let mut long = vec![13, 0, 0, 0, 0, 1, 0, 1];
    long.resize(40, 0);
    check("icmpv4", long, Difference::Icmpv4TimestampLength);

    // A neighbour solicitation cut to its 8-byte header, and a type smoltcp does not know.
    check(
        "icmpv6",
        vec![135, 0, 0, 0, 0, 0, 0, 0],
        Difference::Icmpv6SmoltcpFixedPart,
    );
    check(
        "icmpv6",
        vec![6, 0, 0, 0, 0, 0, 0, 0],
        Difference::Icmpv6SmoltcpFixedPart,
    );

    // TCP source port 0.
    check("tcp", tcp(0x02, &[], 0), Difference::SmoltcpRejectsPortZero);
    // SYN and FIN together.
    check(
        "tcp",
        tcp(0x03, &[], 1000),
        Difference::TcpSmoltcpRejectsFlagCombination,
    );
    // An MSS option of length 3.
    check(
        "tcp",
        tcp(0x02, &[2, 3, 5], 1000),
        Difference::TcpSmoltcpRejectsMalformedOptions,
    );
    // Window scale 15.
    check(
        "tcp",
        tcp(0x02, &[3, 3, 15], 1000),
        Difference::TcpSmoltcpClampsWindowScale,
    );
    // Four SACK blocks.
    let mut sack = vec![1, 1, 5, 34];
    for i in 0..8u32 {
        sack.extend_from_slice(&(i * 100).to_be_bytes());
    }
    check(
        "tcp",
        tcp(0x10, &sack, 1000),
        Difference::TcpSmoltcpSackThreeBlocks,
    );
    // A timestamps option of length 6.
    check(
        "tcp",
        tcp(0x10, &[8, 6, 0, 0, 0, 1], 1000),
        Difference::TcpTimestampsLength,
    );

    let layer_entries: Vec<Difference> = Difference::ALL
        .iter()
        .copied()
        // DNS and HTTP entries are shown in tests/wire_dns.rs and tests/wire_http.rs.
        .filter(|d| !d.between().contains("wire::dns") && !d.between().contains("wire::http"))
        .collect();
    for d in layer_entries {
        assert!(
            covered.contains(&d),
            "no input shows {} is needed",
            d.name()
        );
    }
}

/// Each entry says who differs and why, and names are unique.
#[test]
fn every_difference_is_documented() {
    let mut names = std::collections::BTreeSet::new();
    for d in Difference::ALL {
        assert!(names.insert(d.name()), "duplicate name {}", d.name());
        assert!(!d.between().is_empty() && d.reason().len() > 40, "{d:?}");
    }
}

/// Real traffic needs no excuse: the seeds cut from kernel traces pass with no difference
/// applied, except the flag combinations the harness's own RFC 9293 probes send on purpose.
#[test]
fn kernel_seeds_need_no_difference() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    for target in [
        "ethernet", "arp", "ipv4", "ipv6", "icmpv4", "icmpv6", "tcp", "udp",
    ] {
        for entry in std::fs::read_dir(root.join(target)).expect("seeds") {
            let path = entry.expect("entry").path();
            if !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kernel-"))
            {
                continue;
            }
            let allowed = run(target, &std::fs::read(&path).expect("read"));
            assert!(
                allowed
                    .iter()
                    .all(|d| d == Difference::TcpSmoltcpRejectsFlagCombination),
                "{}: {:?}",
                path.display(),
                allowed.iter().map(Difference::name).collect::<Vec<_>>()
            );
        }
    }
}
