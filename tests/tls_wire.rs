//! TLS on the wire: records and handshake messages (RFC 8448 §3 and §4 message bytes),
//! SSLKEYLOGFILE parsing, and TCP stream reassembly from frames and pcap files.
//!
//! Provenance of the RFC 8448 bytes: the hex below is the RFC's own trace, as quoted
//! line by line in libbitcoin-network `test/tls/rfc8448.hpp` (§3) and in the s2n-tls and
//! Swift test suites (§4 ClientHello, 512 octets, with its 477-octet binder prefix); the
//! same values appear in `/work/shared/research/tls.md` §4.1. Bytes built by hand in this
//! file (TCP segments, key log lines other than RFC 8448 secrets, pcap headers) say so.

mod common;

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use netconform::pcap::{self, Capture, CaptureError, ReadMode};
use netconform::tls::keylog::label;
use netconform::tls::{KeyLog, KeyLogError, TcpConversation, conversations_from_frames};
use netconform::wire::tls::{
    Handshake, HandshakeMessage, HandshakeReader, RecordReader, TlsParseError, TlsRecord,
    content_type, handshake_type,
};
use netconform::wire::{Frame, MacAddr, TcpFlags, TcpSegment, VlanTag};

fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("test vector is hex")
}

fn arr32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

/// RFC 8448 §3 {client} send handshake record: complete record (ClientHello, 196 octets).
const CH_RECORD: &str = "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001";

/// RFC 8448 §3 {server} send handshake record: complete record (ServerHello, 90 octets).
const SH_RECORD: &str = "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304";

/// RFC 8448 §3 {server} send handshake record: payload (EncryptedExtensions, Certificate,
/// CertificateVerify, Finished, coalesced, before encryption).
const SERVER_FLIGHT: &str = "080000240022000a00140012001d00170018001901000101010201030104001c00024001000000000b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de100000f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718";

/// RFC 8448 §3 {server} send handshake record: complete record (the server flight above,
/// encrypted: one application_data record of 674 octets).
const SERVER_FLIGHT_RECORD_HEAD: &str = "17030302a2";

/// RFC 8448 §3 {client} send handshake record: complete record (client Finished, encrypted).
const CLIENT_FINISHED_RECORD: &str = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";

/// RFC 8448 §3 {server} construct a NewSessionTicket handshake message (205 octets).
const NEW_SESSION_TICKET: &str = "040000c90000001efad6aac502000000b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d3570008002a000400000400";

/// RFC 8448 §4 {client} send handshake record: payload (ClientHello with a PSK, 512 octets).
const RESUMED_CH: &str = "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb0021203add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d";

const CLIENT_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const CLIENT_SHARE: &str = "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c";
const SERVER_SHARE: &str = "c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f";

/// Every record of `bytes`, and what is left pending.
fn records(bytes: &[u8]) -> (Vec<TlsRecord>, usize) {
    let mut r = RecordReader::new();
    r.push(bytes);
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("records parse") {
        out.push(rec);
    }
    (out, r.pending())
}

/// Every handshake message in the payloads of `records`.
fn messages(records: &[TlsRecord]) -> Vec<HandshakeMessage> {
    let mut h = HandshakeReader::new();
    let mut out = Vec::new();
    for rec in records {
        h.push(&rec.fragment);
        while let Some(m) = h.next_message().expect("messages parse") {
            out.push(m);
        }
    }
    assert_eq!(h.pending(), 0);
    out
}

// ---------------------------------------------------------------- RFC 8448 messages

#[test]
fn rfc8448_client_hello() {
    let (recs, pending) = records(&unhex(CH_RECORD));
    assert_eq!((recs.len(), pending), (1, 0));
    assert_eq!(recs[0].content_type, content_type::HANDSHAKE);
    assert_eq!(recs[0].version, 0x0301);
    assert_eq!(recs[0].fragment.len(), 196);
    let msgs = messages(&recs);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].type_name(), "ClientHello");
    assert_eq!(msgs[0].encoded(), recs[0].fragment);
    let Handshake::ClientHello(ch) = msgs[0].parse_body().unwrap() else {
        panic!("not a ClientHello")
    };
    assert_eq!(ch.legacy_version, 0x0303);
    assert_eq!(ch.random, arr32(CLIENT_RANDOM));
    assert!(ch.session_id.is_empty());
    assert_eq!(ch.cipher_suites, vec![0x1301, 0x1303, 0x1302]);
    assert_eq!(ch.compression_methods, vec![0]);
    let types: Vec<u16> = ch.extensions.iter().map(|e| e.ext_type).collect();
    // server_name, renegotiation_info, supported_groups, session_ticket, key_share,
    // supported_versions, signature_algorithms, psk_key_exchange_modes, record_size_limit.
    assert_eq!(types, vec![0, 0xff01, 10, 35, 51, 43, 13, 45, 28]);
    assert_eq!(ch.supported_versions(), vec![0x0304]);
    assert_eq!(ch.key_shares(), vec![(0x001d, unhex(CLIENT_SHARE))]);
    assert!(!ch.extended_master_secret());
    assert!(!ch.early_data());
    assert_eq!(ch.pre_shared_key(), None);
}

#[test]
fn rfc8448_server_hello() {
    let msgs = messages(&records(&unhex(SH_RECORD)).0);
    let Handshake::ServerHello(sh) = msgs[0].parse_body().unwrap() else {
        panic!("not a ServerHello")
    };
    assert_eq!(
        sh.random,
        arr32("a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e26928")
    );
    assert!(sh.session_id.is_empty());
    assert_eq!(sh.cipher_suite, 0x1301);
    assert_eq!(sh.compression_method, 0);
    assert!(!sh.is_hello_retry_request());
    assert_eq!(sh.selected_version(), 0x0304);
    assert_eq!(sh.legacy_version, 0x0303);
    assert_eq!(sh.key_share(), Some((0x001d, unhex(SERVER_SHARE))));
    assert_eq!(sh.selected_psk(), None);
    assert!(!sh.extended_master_secret());
    assert_eq!(msgs[0].encoded().len(), 90);
}

#[test]
fn rfc8448_server_flight_coalesced_in_one_record() {
    let mut h = HandshakeReader::new();
    h.push(&unhex(SERVER_FLIGHT));
    let mut parsed = Vec::new();
    while let Some(m) = h.next_message().unwrap() {
        parsed.push((m.type_name(), m.parse_body().unwrap()));
    }
    assert_eq!(h.pending(), 0);
    let names: Vec<&str> = parsed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        vec![
            "EncryptedExtensions",
            "Certificate",
            "CertificateVerify",
            "Finished"
        ]
    );
    let Handshake::EncryptedExtensions(ee) = &parsed[0].1 else {
        panic!()
    };
    let types: Vec<u16> = ee.iter().map(|e| e.ext_type).collect();
    assert_eq!(types, vec![10, 28, 0]);
    let Handshake::Certificate(cert) = &parsed[1].1 else {
        panic!()
    };
    assert_eq!(cert.len(), 0x1b9);
    let Handshake::CertificateVerify { scheme, signature } = &parsed[2].1 else {
        panic!()
    };
    assert_eq!(*scheme, 0x0804); // rsa_pss_rsae_sha256
    assert_eq!(signature.len(), 128);
    assert_eq!(
        parsed[3].1,
        Handshake::Finished(unhex(
            "9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"
        ))
    );
}

#[test]
fn rfc8448_encrypted_records_are_framed() {
    let (recs, pending) = records(&unhex(CLIENT_FINISHED_RECORD));
    assert_eq!((recs.len(), pending), (1, 0));
    assert_eq!(recs[0].content_type, content_type::APPLICATION_DATA);
    assert_eq!(recs[0].fragment.len(), 0x35);
    assert_eq!(recs[0].header().to_vec(), unhex("1703030035"));
    // The encrypted server flight's header announces 674 bytes; with 5 only, it waits.
    let (recs, pending) = records(&unhex(SERVER_FLIGHT_RECORD_HEAD));
    assert_eq!((recs.len(), pending), (0, 5));
}

#[test]
fn rfc8448_new_session_ticket() {
    let bytes = unhex(NEW_SESSION_TICKET);
    let msgs = messages(&[TlsRecord {
        content_type: content_type::HANDSHAKE,
        version: 0x0303,
        fragment: bytes.clone(),
    }]);
    assert_eq!(msgs[0].encoded(), bytes);
    let Handshake::NewSessionTicket(t) = msgs[0].parse_body().unwrap() else {
        panic!()
    };
    assert_eq!(t.lifetime, 30);
    assert_eq!(t.age_add, 0xfad6aac5);
    assert_eq!(t.nonce, vec![0, 0]);
    assert_eq!(t.ticket.len(), 0xb2);
    assert_eq!(t.extensions.len(), 1);
    assert_eq!(t.extensions[0].ext_type, 42); // early_data: max_early_data_size 1024
    assert_eq!(t.extensions[0].data, vec![0, 0, 4, 0]);
}

#[test]
fn rfc8448_resumed_client_hello_pre_shared_key() {
    let bytes = unhex(RESUMED_CH);
    assert_eq!(bytes.len(), 512);
    let mut h = HandshakeReader::new();
    h.push(&bytes);
    let m = h.next_message().unwrap().unwrap();
    assert_eq!(m.encoded(), bytes);
    let Handshake::ClientHello(ch) = m.parse_body().unwrap() else {
        panic!()
    };
    assert!(ch.early_data());
    assert_eq!(
        ch.key_shares()[0].1,
        unhex("e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b")
    );
    let psk = ch.pre_shared_key().expect("pre_shared_key");
    // The RFC prints the "ClientHello prefix" the binder covers: 477 octets.
    assert_eq!(psk.truncated_len, 477);
    // fuzz_one checks the same invariant (binders list length at truncated_len).
    netconform::wire::tls::fuzz_one(&handshake_record(&bytes));
    assert_eq!(psk.identities.len(), 1);
    // The identity is the ticket of the §3 NewSessionTicket.
    let ticket = {
        let Ok(Handshake::NewSessionTicket(t)) = HandshakeMessage {
            msg_type: handshake_type::NEW_SESSION_TICKET,
            body: unhex(NEW_SESSION_TICKET)[4..].to_vec(),
        }
        .parse_body() else {
            panic!()
        };
        t.ticket
    };
    assert_eq!(psk.identities[0], (ticket, 0xfad6aacb));
    assert_eq!(
        psk.binders,
        vec![unhex(
            "3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d"
        )]
    );
}

// ---------------------------------------------------------------- record reader

fn handshake_record(fragment: &[u8]) -> Vec<u8> {
    TlsRecord {
        content_type: content_type::HANDSHAKE,
        version: 0x0303,
        fragment: fragment.to_vec(),
    }
    .emit()
}

#[test]
fn message_split_over_three_records() {
    let ch = unhex(CH_RECORD)[5..].to_vec();
    let mut stream = Vec::new();
    for part in [&ch[..3], &ch[3..100], &ch[100..]] {
        stream.extend(handshake_record(part));
    }
    let (recs, pending) = records(&stream);
    assert_eq!((recs.len(), pending), (3, 0));
    let mut h = HandshakeReader::new();
    h.push(&recs[0].fragment);
    assert_eq!(h.next_message(), Ok(None));
    assert_eq!(h.pending(), 3);
    h.push(&recs[1].fragment);
    assert_eq!(h.next_message(), Ok(None));
    h.push(&recs[2].fragment);
    let m = h.next_message().unwrap().unwrap();
    assert_eq!(m.encoded(), ch);
    assert_eq!(h.pending(), 0);
}

#[test]
fn coalesced_records_and_byte_by_byte_delivery() {
    let mut stream = unhex(CH_RECORD);
    stream.extend(unhex(SH_RECORD));
    stream.extend(unhex(CLIENT_FINISHED_RECORD));
    let (all_at_once, _) = records(&stream);
    assert_eq!(all_at_once.len(), 3);
    let mut r = RecordReader::new();
    let mut one_by_one = Vec::new();
    for b in &stream {
        r.push(std::slice::from_ref(b));
        while let Some(rec) = r.next_record().unwrap() {
            one_by_one.push(rec);
        }
    }
    assert_eq!(one_by_one, all_at_once);
    assert_eq!(r.offset(), stream.len() as u64);
}

#[test]
fn truncated_stream_leaves_pending_bytes() {
    let stream = unhex(CH_RECORD);
    let (recs, pending) = records(&stream[..stream.len() - 1]);
    assert!(recs.is_empty());
    assert_eq!(pending, stream.len() - 1);
    let (recs, pending) = records(&stream[..3]);
    assert!(recs.is_empty());
    assert_eq!(pending, 3);
}

#[test]
fn garbage_is_an_error_with_its_offset() {
    let mut stream = unhex(SH_RECORD);
    stream.extend(b"\x99garbage");
    let mut r = RecordReader::new();
    r.push(&stream);
    assert!(r.next_record().unwrap().is_some());
    let e = r.next_record().unwrap_err();
    assert_eq!(
        e,
        TlsParseError::UnknownContentType {
            offset: 95,
            content_type: 0x99
        }
    );
    assert_eq!(
        e.to_string(),
        "TLS record at stream offset 95: unknown content type 153"
    );
}

fn record_strategy() -> impl Strategy<Value = TlsRecord> {
    (
        20u8..=24,
        (0u8..=4).prop_map(|minor| 0x0300 | u16::from(minor)),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(content_type, version, fragment)| TlsRecord {
            content_type,
            version,
            fragment,
        })
}

#[test]
fn properties() {
    let config = Config {
        cases: common::cases(256),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config.clone(), common::rng(0x746c_7377));
    // Arbitrary bytes never panic, whatever the split.
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            netconform::wire::tls::fuzz_one(&bytes);
            Ok(())
        })
        .unwrap();
    // Records: emit → parse identity, and the same when the stream arrives cut anywhere.
    let mut runner = TestRunner::new_with_rng(config.clone(), common::rng(0x746c_7378));
    runner
        .run(
            &(
                proptest::collection::vec(record_strategy(), 0..6),
                any::<usize>(),
            ),
            |(recs, cut)| {
                let stream: Vec<u8> = recs.iter().flat_map(TlsRecord::emit).collect();
                let cut = cut % (stream.len() + 1);
                let mut r = RecordReader::new();
                let mut got = Vec::new();
                for part in [&stream[..cut], &stream[cut..]] {
                    r.push(part);
                    while let Some(rec) = r.next_record().unwrap() {
                        got.push(rec);
                    }
                }
                prop_assert_eq!(got, recs);
                prop_assert_eq!(r.pending(), 0);
                Ok(())
            },
        )
        .unwrap();
    // Handshake messages: encode → reassemble identity over any record boundaries.
    let message = (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..700))
        .prop_map(|(msg_type, body)| HandshakeMessage { msg_type, body });
    let mut runner = TestRunner::new_with_rng(config, common::rng(0x746c_7379));
    runner
        .run(
            &(
                proptest::collection::vec(message, 0..5),
                proptest::collection::vec(1usize..300, 1..8),
            ),
            |(msgs, sizes)| {
                let stream: Vec<u8> = msgs.iter().flat_map(HandshakeMessage::encoded).collect();
                let mut h = HandshakeReader::new();
                let mut got = Vec::new();
                let mut at = 0;
                for size in sizes.iter().cycle() {
                    if at >= stream.len() {
                        break;
                    }
                    let end = (at + size).min(stream.len());
                    h.push(&stream[at..end]);
                    at = end;
                    while let Some(m) = h.next_message().unwrap() {
                        let _ = m.parse_body();
                        got.push(m);
                    }
                }
                prop_assert_eq!(got, msgs);
                prop_assert_eq!(h.pending(), 0);
                Ok(())
            },
        )
        .unwrap();
}

// ---------------------------------------------------------------- key log

/// OpenSSL's layout (header line, then the TLS 1.3 secrets in the order `s_client
/// -keylogfile` writes them), filled with the RFC 8448 §3 client random and secrets.
fn openssl_keylog() -> String {
    format!(
        "# SSL/TLS secrets log file, generated by OpenSSL\n\
         SERVER_HANDSHAKE_TRAFFIC_SECRET {CLIENT_RANDOM} b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38\n\
         EXPORTER_SECRET {CLIENT_RANDOM} fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50\n\
         SERVER_TRAFFIC_SECRET_0 {CLIENT_RANDOM} a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643\n\
         CLIENT_HANDSHAKE_TRAFFIC_SECRET {CLIENT_RANDOM} b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21\n\
         CLIENT_TRAFFIC_SECRET_0 {CLIENT_RANDOM} 9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5\n"
    )
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netconform-tls-wire-{}-{name}", std::process::id()))
}

#[test]
fn keylog_in_openssl_format() {
    let path = temp_path("keys.log");
    std::fs::write(&path, openssl_keylog()).unwrap();
    let log = KeyLog::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let random = arr32(CLIENT_RANDOM);
    assert_eq!(log.len(), 5);
    assert!(!log.is_empty());
    assert_eq!(log.client_randoms(), vec![random]);
    assert_eq!(
        log.secret(&random, label::CLIENT_HANDSHAKE_TRAFFIC_SECRET),
        Some(&unhex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")[..])
    );
    assert_eq!(log.secret(&random, label::CLIENT_RANDOM), None);
    assert_eq!(log.secret(&[0; 32], label::EXPORTER_SECRET), None);
    assert_eq!(
        log.labels_for(&random),
        vec![
            label::SERVER_HANDSHAKE_TRAFFIC_SECRET,
            label::EXPORTER_SECRET,
            label::SERVER_TRAFFIC_SECRET_0,
            label::CLIENT_HANDSHAKE_TRAFFIC_SECRET,
            label::CLIENT_TRAFFIC_SECRET_0,
        ]
    );
    // Written back and read again: the same log.
    assert_eq!(KeyLog::parse(&log.to_text()).unwrap(), log);
    // Insert builds the same thing.
    let mut built = KeyLog::default();
    for l in log.labels_for(&random) {
        built.insert(l, random, log.secret(&random, l).unwrap().to_vec());
    }
    assert_eq!(built.to_text(), log.to_text());
    assert!(matches!(
        KeyLog::load(&temp_path("absent")),
        Err(KeyLogError::Io { .. })
    ));
}

#[test]
fn keylog_errors_name_the_line() {
    // Hand-made lines: a bad hex digit in the secret on line 3.
    let text = format!(
        "# header\nCLIENT_RANDOM {CLIENT_RANDOM} {}\nCLIENT_RANDOM {CLIENT_RANDOM} 0g\n",
        "ab".repeat(48)
    );
    let e = KeyLog::parse(&text).unwrap_err();
    assert!(matches!(e, KeyLogError::Malformed { line: 3, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("key log line 3: secret is not hex"),
        "{e}"
    );
    // Client random of 31 bytes on line 1.
    let e = KeyLog::parse(&format!("CLIENT_RANDOM {} 00\n", "ab".repeat(31))).unwrap_err();
    assert!(matches!(e, KeyLogError::Malformed { line: 1, .. }), "{e}");
    // Two fields.
    let e = KeyLog::parse("\n\nEXPORTER_SECRET abcd\n").unwrap_err();
    assert!(matches!(e, KeyLogError::Malformed { line: 3, .. }), "{e}");
}

#[test]
fn keylog_duplicates_and_conflicts() {
    let line = format!("CLIENT_RANDOM {CLIENT_RANDOM} {}\n", "ab".repeat(48));
    let twice = KeyLog::parse(&format!("{line}{line}")).unwrap();
    assert_eq!(twice.len(), 1);
    let other = format!("CLIENT_RANDOM {CLIENT_RANDOM} {}\n", "cd".repeat(48));
    let e = KeyLog::parse(&format!("{line}# comment\n{other}")).unwrap_err();
    match e {
        KeyLogError::Conflict {
            line,
            first_line,
            label,
            client_random,
        } => {
            assert_eq!((line, first_line), (3, 1));
            assert_eq!(label, "CLIENT_RANDOM");
            assert_eq!(client_random, CLIENT_RANDOM);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    // Unknown labels are kept, not failed on.
    let log = KeyLog::parse(&format!("SOME_FUTURE_SECRET {CLIENT_RANDOM} 0102\n")).unwrap();
    assert_eq!(
        log.labels_for(&arr32(CLIENT_RANDOM)),
        vec!["SOME_FUTURE_SECRET"]
    );
}

// ---------------------------------------------------------------- TCP reassembly

/// A hand-built TCP connection: frames from `harness/wire` with stream offsets turned into
/// sequence numbers from the ISNs.
#[derive(Clone)]
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    client_isn: u32,
    server_isn: u32,
    vlan: Option<u16>,
}

const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const MAC_S: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

impl Flow {
    fn v4(client_port: u16, client_isn: u32, server_isn: u32) -> Flow {
        Flow {
            client: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), client_port),
            server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 443),
            client_isn,
            server_isn,
            vlan: None,
        }
    }

    fn segment(&self, from_client: bool, flags: TcpFlags, offset: u32, payload: &[u8]) -> Vec<u8> {
        let (src, dst, isn, peer_isn) = if from_client {
            (self.client, self.server, self.client_isn, self.server_isn)
        } else {
            (self.server, self.client, self.server_isn, self.client_isn)
        };
        let seq = if flags.contains(TcpFlags::SYN) {
            isn
        } else {
            isn.wrapping_add(1).wrapping_add(offset)
        };
        let ack = if flags.contains(TcpFlags::ACK) {
            peer_isn.wrapping_add(1)
        } else {
            0
        };
        let mut seg = TcpSegment::new(src.port(), dst.port(), seq, ack, flags);
        seg.payload = payload.to_vec();
        let (src_mac, dst_mac) = if from_client {
            (MAC_C, MAC_S)
        } else {
            (MAC_S, MAC_C)
        };
        let mut frame = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Frame::tcp_v4(src_mac, dst_mac, s, d, seg),
            (IpAddr::V6(s), IpAddr::V6(d)) => Frame::tcp_v6(src_mac, dst_mac, s, d, seg),
            _ => unreachable!("mixed address families"),
        };
        if let Some(vid) = self.vlan {
            frame.vlans.push(VlanTag::new(vid));
        }
        frame.emit()
    }

    fn open(&self) -> Vec<Vec<u8>> {
        vec![
            self.segment(true, TcpFlags::SYN, 0, &[]),
            self.segment(false, TcpFlags::SYN_ACK, 0, &[]),
            self.segment(true, TcpFlags::ACK, 0, &[]),
        ]
    }

    fn data(&self, from_client: bool, offset: u32, payload: &[u8]) -> Vec<u8> {
        self.segment(from_client, TcpFlags::PSH_ACK, offset, payload)
    }

    fn close(&self, client_len: u32, server_len: u32) -> Vec<Vec<u8>> {
        vec![
            self.segment(true, TcpFlags::FIN_ACK, client_len, &[]),
            self.segment(false, TcpFlags::FIN_ACK, server_len, &[]),
            self.segment(true, TcpFlags::ACK, client_len + 1, &[]),
        ]
    }
}

fn timed(frames: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| (i as u64 * 1_000_000, f))
        .collect()
}

fn one(frames: Vec<Vec<u8>>) -> TcpConversation {
    let mut convs = conversations_from_frames(&timed(frames));
    assert_eq!(convs.len(), 1, "{convs:#?}");
    convs.remove(0)
}

#[test]
fn in_order() {
    let f = Flow::v4(40000, 1000, 5000);
    let mut frames = f.open();
    frames.push(f.data(true, 0, b"hello "));
    frames.push(f.data(true, 6, b"server"));
    frames.push(f.data(false, 0, b"hi"));
    frames.extend(f.close(12, 2));
    let c = one(frames);
    assert_eq!(c.client, f.client);
    assert_eq!(c.server, f.server);
    assert_eq!(c.client_data, b"hello server");
    assert_eq!(c.server_data, b"hi");
    assert!(c.complete, "{c}");
    assert!(c.problems.is_empty(), "{c}");
    assert_eq!(c.first_frame, 0);
}

#[test]
fn out_of_order_and_retransmitted() {
    let f = Flow::v4(40001, 7, 9);
    let mut frames = f.open();
    frames.push(f.data(true, 4, b"efgh"));
    frames.push(f.data(true, 0, b"abcd"));
    frames.push(f.data(true, 0, b"abcd")); // plain retransmission
    frames.push(f.data(true, 2, b"cdef")); // overlapping, same bytes
    frames.push(f.data(false, 0, b"ok"));
    frames.extend(f.close(8, 2));
    let c = one(frames);
    assert_eq!(c.client_data, b"abcdefgh");
    assert!(c.complete, "{c}");
    assert!(c.problems.is_empty(), "{c}");
}

#[test]
fn overlapping_retransmission_with_different_bytes() {
    let f = Flow::v4(40002, 100, 200);
    let mut frames = f.open();
    frames.push(f.data(true, 0, b"abcdef"));
    frames.push(f.data(true, 3, b"dXfghi"));
    frames.extend(f.close(9, 0));
    let c = one(frames);
    assert_eq!(c.client_data, b"abcdefghi", "first copy kept");
    assert_eq!(
        c.problems,
        vec![
            "client→server: retransmission carries different bytes at stream offset 4..5 (first copy kept)"
        ]
    );
}

#[test]
fn hole_is_reported_and_data_after_it_withheld() {
    let f = Flow::v4(40003, 100, 200);
    let mut frames = f.open();
    frames.push(f.data(true, 0, &[1; 1448]));
    // The segment at 1448..2896 is not in the capture.
    frames.push(f.data(true, 2896, &[3; 1448]));
    frames.push(f.data(false, 0, b"x"));
    frames.extend(f.close(4344, 1));
    let c = one(frames);
    assert_eq!(c.client_data, vec![1; 1448]);
    assert_eq!(c.server_data, b"x");
    assert!(!c.complete);
    assert_eq!(
        c.problems,
        vec!["client→server: 1448 bytes missing at stream offset 1448 (capture dropped a segment)"]
    );
    // A missing tail before the FIN is a hole too.
    let mut frames = f.open();
    frames.push(f.data(true, 0, b"abc"));
    frames.extend(f.close(10, 0));
    let c = one(frames);
    assert_eq!(
        c.problems,
        vec!["client→server: 7 bytes missing at stream offset 3 (capture dropped a segment)"]
    );
}

#[test]
fn isn_near_wraparound() {
    let f = Flow::v4(40004, u32::MAX - 2, u32::MAX);
    let mut frames = f.open();
    frames.push(f.data(true, 0, b"0123"));
    frames.push(f.data(true, 4, b"4567"));
    frames.push(f.data(false, 0, b"server bytes"));
    frames.extend(f.close(8, 12));
    let c = one(frames);
    assert_eq!(c.client_data, b"01234567");
    assert_eq!(c.server_data, b"server bytes");
    assert!(c.complete, "{c}");
}

#[test]
fn two_connections_and_port_reuse() {
    let a = Flow::v4(40005, 1, 2);
    let b = Flow::v4(40006, 3, 4);
    let a2 = Flow::v4(40005, 77_777, 88_888);
    let mut frames = a.open();
    frames.extend(b.open());
    frames.push(a.data(true, 0, b"first"));
    frames.push(b.data(true, 0, b"other"));
    frames.extend(a.close(5, 0));
    // A new SYN on the same 4-tuple after FIN: a new conversation.
    frames.extend(a2.open());
    frames.push(a2.data(true, 0, b"second"));
    frames.push(a2.segment(false, TcpFlags::RST_ACK, 0, &[]));
    frames.extend(b.close(5, 0));
    let convs = conversations_from_frames(&timed(frames));
    let summary: Vec<(u16, &[u8], usize, bool)> = convs
        .iter()
        .map(|c| {
            (
                c.client.port(),
                &c.client_data[..],
                c.first_frame,
                c.complete,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (40005, &b"first"[..], 0, true),
            (40006, &b"other"[..], 3, true),
            (40005, &b"second"[..], 11, true),
        ]
    );
    assert_eq!(convs[2].problems, vec!["RST from server at offset 0"]);
}

#[test]
fn ipv6_with_vlan_tag() {
    let f = Flow {
        client: SocketAddr::new(
            IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            50000,
        ),
        server: SocketAddr::new(IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap()), 443),
        client_isn: 0x8000_0000,
        server_isn: 12,
        vlan: Some(10),
    };
    let mut frames = f.open();
    frames.push(f.data(true, 0, &unhex(CH_RECORD)));
    frames.push(f.data(false, 0, &unhex(SH_RECORD)));
    frames.extend(f.close(200 + 1, 95));
    let c = one(frames);
    assert!(c.complete, "{c}");
    assert!(c.client.is_ipv6());
    assert_eq!(c.client_data, unhex(CH_RECORD));
    assert_eq!(c.server_data, unhex(SH_RECORD));
    // And the TLS layer on top: ClientHello and ServerHello out of the streams.
    let ch = messages(&records(&c.client_data).0);
    let sh = messages(&records(&c.server_data).0);
    assert_eq!(ch[0].msg_type, handshake_type::CLIENT_HELLO);
    assert_eq!(sh[0].msg_type, handshake_type::SERVER_HELLO);
}

#[test]
fn capture_started_mid_connection() {
    let f = Flow::v4(40007, 1000, 2000);
    // No handshake: the server speaks first in the capture; the client is the side
    // talking to port 443.
    let frames = vec![f.data(false, 10, b"later"), f.data(true, 50, b"data")];
    let c = one(frames);
    assert_eq!(c.client, f.client);
    assert_eq!(c.client_data, b"data");
    assert_eq!(c.server_data, b"later");
    assert!(!c.complete);
    assert!(
        c.problems[0].starts_with("no SYN: capture started mid-connection"),
        "{c}"
    );
}

// ---------------------------------------------------------------- pcap files

fn sample_frames() -> Vec<(u64, Vec<u8>)> {
    let f = Flow::v4(40008, 42, 4242);
    let mut frames = f.open();
    frames.push(f.data(true, 0, &unhex(CH_RECORD)));
    frames.push(f.data(false, 0, &unhex(SH_RECORD)));
    frames.extend(f.close(201, 95));
    timed(frames)
}

/// A strict read (`crate::pcap`): the frames, or the first problem.
fn read_pcap(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, CaptureError> {
    pcap::read(path, ReadMode::Strict).map(Capture::into_frames)
}

/// A lenient read (`crate::pcap`): what could be read, and the problems.
fn read_capture(path: &Path) -> Result<Capture, CaptureError> {
    pcap::read(path, ReadMode::Lenient)
}

/// A pcap file by hand: little-endian, microsecond timestamps, `linktype`, and for each
/// packet the captured bytes and the original length.
fn pcap_bytes(linktype: u32, packets: &[(Vec<u8>, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(linktype.to_le_bytes());
    for (i, (data, original)) in packets.iter().enumerate() {
        out.extend((i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((*original as u32).to_le_bytes());
        out.extend(data);
    }
    out
}

#[test]
fn pcap_round_trip() {
    let frames = sample_frames();
    let path = temp_path("round-trip.pcap");
    pcap::write_file(&path, &frames).unwrap();
    let read = read_pcap(&path).unwrap();
    assert_eq!(read, frames);
    let lenient = read_capture(&path).unwrap();
    assert_eq!(lenient.frames(), frames);
    assert!(lenient.problems.is_empty());
    std::fs::remove_file(&path).ok();
    let c = &conversations_from_frames(&read)[0];
    assert!(c.complete);
    assert_eq!(c.client_data, unhex(CH_RECORD));
}

#[test]
fn truncated_pcap_is_reported_not_panicked_on() {
    let frames = sample_frames();
    let path = temp_path("truncated.pcap");
    pcap::write_file(&path, &frames).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = read_pcap(&path).unwrap_err();
    assert!(
        matches!(e, CaptureError::Truncated { packets, .. } if packets == frames.len() - 1),
        "{e}"
    );
    let lenient = read_capture(&path).unwrap();
    assert_eq!(lenient.packets.len(), frames.len() - 1);
    assert_eq!(lenient.problems.len(), 1);
    // Every possible cut: never a panic.
    for cut in 0..bytes.len() {
        let _ = pcap::parse(&bytes[..cut], ReadMode::Lenient);
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn snaplen_cut_packet() {
    let frames = sample_frames();
    let packets: Vec<(Vec<u8>, usize)> = frames
        .iter()
        .enumerate()
        .map(|(i, (_, f))| {
            if i == 3 {
                (f[..96].to_vec(), f.len())
            } else {
                (f.clone(), f.len())
            }
        })
        .collect();
    let path = temp_path("snaplen.pcap");
    std::fs::write(&path, pcap_bytes(1, &packets)).unwrap();
    let e = read_pcap(&path).unwrap_err();
    assert!(
        matches!(
            e,
            CaptureError::PacketCut {
                index: 3,
                captured: 96,
                ..
            }
        ),
        "{e}"
    );
    let lenient = read_capture(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(lenient.problems.len(), 1);
    assert_eq!(lenient.packets.len(), frames.len());
    // The cut segment does not parse, so its bytes are a hole.
    let c = &conversations_from_frames(&lenient.frames())[0];
    assert!(!c.complete);
    assert!(c.client_data.is_empty());
    assert!(
        c.problems[0].contains("201 bytes missing at stream offset 0"),
        "{c}"
    );
}

#[test]
fn linux_cooked_captures() {
    let frames = sample_frames();
    // SLL (113), by hand: packet type, ARPHRD_ETHER, address length 6, source MAC padded
    // to 8, protocol; then the IP packet.
    let sll: Vec<(Vec<u8>, usize)> = frames
        .iter()
        .map(|(_, f)| {
            let mut p = vec![0, 0, 0, 1, 0, 6];
            p.extend(&f[6..12]);
            p.extend([0, 0]);
            p.extend(&f[12..]);
            let len = p.len();
            (p, len)
        })
        .collect();
    // SLL2 (276), by hand: protocol, reserved, ifindex, ARPHRD, packet type, address
    // length, address; then the IP packet.
    let sll2: Vec<(Vec<u8>, usize)> = frames
        .iter()
        .map(|(_, f)| {
            let mut p = f[12..14].to_vec();
            p.extend([0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
            p.extend(&f[6..12]);
            p.extend([0, 0]);
            p.extend(&f[14..]);
            let len = p.len();
            (p, len)
        })
        .collect();
    // Raw IP (101).
    let raw: Vec<(Vec<u8>, usize)> = frames
        .iter()
        .map(|(_, f)| (f[14..].to_vec(), f.len() - 14))
        .collect();
    for (linktype, packets) in [(113, sll), (276, sll2), (101, raw)] {
        let path = temp_path(&format!("link-{linktype}.pcap"));
        std::fs::write(&path, pcap_bytes(linktype, &packets)).unwrap();
        let read = read_pcap(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(read.len(), frames.len());
        let c = &conversations_from_frames(&read)[0];
        assert!(c.complete, "linktype {linktype}: {c}");
        assert_eq!(c.client_data, unhex(CH_RECORD), "linktype {linktype}");
        assert_eq!(c.server_data, unhex(SH_RECORD), "linktype {linktype}");
    }
}

#[test]
fn pcapng_capture() {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let frames = sample_frames();
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 65535,
        options: vec![],
    })
    .unwrap();
    for (ts, data) in &frames {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(*ts),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: vec![],
        })
        .unwrap();
    }
    let bytes = w.into_inner();
    let path = temp_path("capture.pcapng");
    std::fs::write(&path, &bytes).unwrap();
    let read = read_pcap(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        read.iter().map(|(_, f)| f).collect::<Vec<_>>(),
        frames.iter().map(|(_, f)| f).collect::<Vec<_>>()
    );
    for cut in 0..bytes.len() {
        let _ = pcap::parse(&bytes[..cut], ReadMode::Lenient);
    }
}

#[test]
fn reassembly_properties() {
    let config = Config {
        cases: common::cases(128),
        failure_persistence: None,
        ..Config::default()
    };
    // Any segmentation, order and duplication of a stream gives back the stream, from any
    // ISN (including ones that wrap within the stream).
    let mut runner = TestRunner::new_with_rng(config.clone(), common::rng(0x7463_7072));
    let case = (
        proptest::collection::vec(any::<u8>(), 1..3000),
        prop_oneof![any::<u32>(), (u32::MAX - 3000)..=u32::MAX],
        proptest::collection::vec((1usize..700, any::<bool>()), 1..20),
        any::<u64>(),
    );
    runner
        .run(&case, |(payload, isn, cuts, shuffle)| {
            let f = Flow::v4(40100, isn, 1);
            let mut segments = Vec::new();
            let mut at = 0;
            for (size, duplicate) in cuts.iter().cycle() {
                if at >= payload.len() {
                    break;
                }
                let end = (at + size).min(payload.len());
                let seg = f.data(true, at as u32, &payload[at..end]);
                if *duplicate {
                    segments.push(seg.clone());
                }
                segments.push(seg);
                at = end;
            }
            // A deterministic shuffle driven by the case.
            let mut state = shuffle | 1;
            for i in (1..segments.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                segments.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut frames = f.open();
            frames.extend(segments);
            frames.extend(f.close(payload.len() as u32, 0));
            let c = one(frames);
            prop_assert_eq!(&c.client_data, &payload);
            prop_assert!(c.complete, "{}", c);
            prop_assert!(c.problems.is_empty(), "{}", c);
            Ok(())
        })
        .unwrap();
    // Arbitrary segments (any flags, sequence numbers, payloads, on two 4-tuples) never
    // panic the reassembly.
    let mut runner = TestRunner::new_with_rng(config, common::rng(0x7463_7073));
    let segment = (
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    runner
        .run(&proptest::collection::vec(segment, 0..40), |segments| {
            let flows = [Flow::v4(40200, 0, 0), Flow::v4(40201, 0, 0)];
            let frames: Vec<Vec<u8>> = segments
                .iter()
                .map(|(second, from_client, flags, seq, payload)| {
                    let f = &flows[usize::from(*second)];
                    f.segment(*from_client, TcpFlags(*flags & 0x1f), *seq, payload)
                })
                .collect();
            for c in conversations_from_frames(&timed(frames)) {
                let _ = c.to_string();
            }
            Ok(())
        })
        .unwrap();
}
