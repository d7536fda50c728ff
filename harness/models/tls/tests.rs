//! Unit tests of the TLS model: typestate order, record round trips for every AEAD in both
//! versions, tampering and garbage input. Published vectors live in `tests/tls_vectors.rs`.

use proptest::prelude::*;

use super::*;

const AEADS: [Aead; 3] = [Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::ChaCha20Poly1305];

fn keys13(aead: Aead) -> TrafficKeys {
    TrafficSecret::new(HashAlg::Sha256, vec![7; 32]).keys(aead)
}

fn pair13(aead: Aead) -> (RecordProtection13, RecordProtection13) {
    let keys = keys13(aead);
    (
        RecordProtection13::new(aead, &keys).expect("model-derived keys fit"),
        RecordProtection13::new(aead, &keys).expect("model-derived keys fit"),
    )
}

fn pair12(aead: Aead) -> (RecordProtection12, RecordProtection12) {
    let key = vec![3; aead.key_len()];
    let iv = vec![5; aead.tls12_iv_len()];
    (
        RecordProtection12::new(aead, &key, &iv).expect("lengths fit"),
        RecordProtection12::new(aead, &key, &iv).expect("lengths fit"),
    )
}

fn split13(record: &[u8]) -> ([u8; 5], &[u8]) {
    let (h, rest) = record.split_at(5);
    (h.try_into().expect("5 bytes"), rest)
}

#[test]
fn suites_are_found_by_id_and_name() {
    for s in CipherSuite::ALL {
        assert_eq!(CipherSuite::from_id(s.id), Some(*s));
        assert_eq!(CipherSuite::from_name(s.name), Some(*s));
        assert!(s.name.starts_with("TLS_"));
    }
    assert_eq!(CipherSuite::ALL.len(), 13);
    let s = CipherSuite::from_id(0xc02f).expect("known suite");
    assert_eq!(s.name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_eq!(
        (s.version, s.hash, s.aead),
        (Version::Tls12, HashAlg::Sha256, Aead::Aes128Gcm)
    );
    assert_eq!(
        CipherSuite::from_id(0x1302).map(|s| s.hash),
        Some(HashAlg::Sha384)
    );
    assert_eq!(CipherSuite::from_id(0x0000), None);
}

#[test]
fn typestates_follow_the_rfc_order_for_both_hashes() {
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        let n = alg.output_len();
        let early = EarlySecret::new(alg, None);
        assert_eq!(early.secret().len(), n);
        // The zero PSK is the same as no PSK (RFC 8446 §7.1).
        assert_eq!(
            EarlySecret::new(alg, Some(&vec![0; n])).secret(),
            early.secret()
        );
        let derived = early.derived();
        let hs = early.clone().into_handshake(Some(&[9; 32]));
        assert_eq!(
            hs.secret(),
            hkdf_extract(alg, &derived, &[9; 32]).as_slice()
        );
        let c = hs.client_handshake_traffic_secret(&alg.hash(b"x"));
        let s = hs.server_handshake_traffic_secret(&alg.hash(b"x"));
        assert_ne!(c, s);
        assert_eq!(c.alg(), alg);
        let master = hs.into_master();
        assert_eq!(master.secret().len(), n);
        let rms = master.resumption_master_secret(&alg.hash(b"y"));
        assert_eq!(rms.psk(&[0, 0]).len(), n);
        // Each KeyUpdate generation differs from the last.
        let ap = master.client_application_traffic_secret_0(&alg.hash(b"z"));
        assert_ne!(ap.next(), ap);
        assert_eq!(ap.next().bytes().len(), n);
        assert_eq!(ap.verify_data(&alg.hash(b"")).len(), n);
        // Binder: HMAC(finished_key(binder_key), hash), and the two kinds differ.
        let bk = early.binder_key(PskKind::Resumption);
        assert_ne!(bk, early.binder_key(PskKind::External));
        let h = alg.hash(b"truncated");
        assert_eq!(
            early.binder(PskKind::Resumption, &h),
            alg.hmac(&TrafficSecret::new(alg, bk).finished_key(), &h)
        );
        for aead in AEADS {
            let keys = ap.keys(aead);
            assert_eq!((keys.key.len(), keys.iv.len()), (aead.key_len(), 12));
        }
    }
}

#[test]
fn message_hash_replaces_client_hello1() {
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        let mut t = Transcript::new(alg);
        t.add(b"\x01\x00\x00\x02hi");
        let synthetic = t.clone().into_message_hash();
        let mut expected = vec![0xfe, 0, 0, u8::try_from(alg.output_len()).expect("small")];
        expected.extend_from_slice(&alg.hash(b"\x01\x00\x00\x02hi"));
        assert_eq!(synthetic.hash(), alg.hash(&expected));
        // Hashing is incremental: fragments give the same hash as the whole.
        let mut parts = Transcript::new(alg);
        parts.add(b"\x01\x00");
        parts.add(b"\x00\x02hi");
        assert_eq!(parts.hash(), t.hash());
    }
}

#[test]
fn hkdf_inputs_beyond_the_encoding_are_errors_not_panics() {
    let alg = HashAlg::Sha256;
    assert_eq!(
        try_hkdf_expand_label(alg, &[1; 32], "key", b"", 255 * 32 + 1),
        Err(TlsModelError::OutputTooLong {
            requested: 255 * 32 + 1,
            max: 255 * 32
        })
    );
    assert!(hkdf_expand_label(alg, &[1; 32], "key", b"", 100_000).is_empty());
    let long = "x".repeat(250);
    assert_eq!(
        try_hkdf_expand_label(alg, &[1; 32], &long, b"", 16),
        Err(TlsModelError::LabelTooLong { len: 250 })
    );
    assert_eq!(
        try_hkdf_expand_label(alg, &[1; 32], "key", &[0; 256], 16),
        Err(TlsModelError::ContextTooLong { len: 256 })
    );
    assert!(try_export_keying_material(alg, &[1; 32], &long, b"", 16).is_err());
    assert_eq!(
        export_keying_material(alg, &[1; 32], "EXPORTER-x", &[0; 1000], 40).len(),
        40
    );
    // A short (e.g. truncated key-log) secret still expands, by HMAC directly.
    assert_eq!(hkdf_expand_label(alg, &[1; 3], "key", b"", 100).len(), 100);
    // ... and T(1) = HMAC(PRK, info ‖ 0x01) (RFC 5869 §2.3).
    let mut t1_input = hkdf_label(100, "key", b"").expect("encodable");
    t1_input.push(1);
    assert_eq!(
        hkdf_expand_label(alg, &[1; 3], "key", b"", 100)[..32].to_vec(),
        alg.hmac(&[1; 3], &t1_input)
    );
    // Empty salt is the zero salt.
    assert_eq!(
        hkdf_extract(alg, b"", b"ikm"),
        hkdf_extract(alg, &[0; 32], b"ikm")
    );
}

#[test]
fn tls12_master_secret_must_be_48_bytes() {
    assert_eq!(
        MasterSecret12::from_logged(HashAlg::Sha256, &[0; 47]),
        Err(TlsModelError::WrongLength {
            what: "TLS 1.2 master secret",
            expected: 48,
            got: 47
        })
    );
    let ms = MasterSecret12::from_logged(HashAlg::Sha384, &[1; 48]).expect("48 bytes");
    assert_eq!(ms.bytes(), &[1; 48]);
    assert_ne!(
        ms.verify_data(Sender::Client, b"h"),
        ms.verify_data(Sender::Server, b"h")
    );
    for s in CipherSuite::ALL {
        let kb = ms.key_block(s, &[1; 32], &[2; 32]);
        assert_eq!(kb.client_key.len(), s.aead.key_len());
        assert_eq!(kb.server_iv.len(), s.aead.tls12_iv_len());
    }
}

#[test]
fn bad_key_and_iv_lengths_are_errors() {
    for aead in AEADS {
        let short = TrafficKeys {
            key: vec![0; aead.key_len() - 1],
            iv: vec![0; 12],
        };
        assert!(matches!(
            RecordProtection13::new(aead, &short),
            Err(TlsModelError::BadKeyLength { .. })
        ));
        let bad_iv = TrafficKeys {
            key: vec![0; aead.key_len()],
            iv: vec![0; 8],
        };
        assert!(matches!(
            RecordProtection13::new(aead, &bad_iv),
            Err(TlsModelError::BadIvLength { .. })
        ));
        assert!(matches!(
            RecordProtection12::new(aead, &vec![0; aead.key_len()], &[0; 5]),
            Err(TlsModelError::BadIvLength { .. })
        ));
        assert!(matches!(
            RecordProtection12::new(aead, &[0; 3], &vec![0; aead.tls12_iv_len()]),
            Err(TlsModelError::BadKeyLength { .. })
        ));
    }
}

#[test]
fn tls13_round_trip_padding_and_sequence() {
    for aead in AEADS {
        let (mut tx, mut rx) = pair13(aead);
        for (i, padding) in [0usize, 1, 17].into_iter().enumerate() {
            let record = tx.seal(22, b"hello", padding);
            assert_eq!(&record[..3], &[23, 3, 3]);
            assert_eq!(record.len(), 5 + 5 + 1 + padding + 16);
            let (h, body) = split13(&record);
            assert_eq!(rx.open(&h, body), Ok((22, b"hello".to_vec())));
            assert_eq!((tx.seq(), rx.seq()), (i as u64 + 1, i as u64 + 1));
        }
        // Empty content is fine; the type byte is what must be there.
        let record = tx.seal(21, b"", 3);
        let (h, body) = split13(&record);
        assert_eq!(rx.open(&h, body), Ok((21, Vec::new())));
    }
}

#[test]
fn tls13_a_record_replayed_or_out_of_order_fails() {
    let (mut tx, mut rx) = pair13(Aead::Aes128Gcm);
    let first = tx.seal(23, b"one", 0);
    let second = tx.seal(23, b"two", 0);
    let (h2, b2) = split13(&second);
    assert_eq!(
        rx.open(&h2, b2),
        Err(TlsModelError::Authentication { seq: 0 })
    );
    assert_eq!(rx.seq(), 0, "a failed open leaves the sequence number");
    let (h1, b1) = split13(&first);
    assert!(rx.open(&h1, b1).is_ok());
    assert!(rx.open(&h1, b1).is_err(), "replay at seq 1");
    assert!(rx.open(&h2, b2).is_ok());
}

#[test]
fn tls13_every_flipped_bit_fails_authentication() {
    for aead in AEADS {
        let (mut tx, _) = pair13(aead);
        let record = tx.seal(22, b"finished!", 2);
        for bit in 0..record.len() * 8 {
            let mut bad = record.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (h, body) = split13(&bad);
            let (_, mut rx) = pair13(aead);
            let got = rx.open(&h, body);
            assert!(got.is_err(), "{aead:?} bit {bit} accepted");
            assert_eq!(rx.seq(), 0);
        }
    }
}

#[test]
fn tls13_garbage_is_rejected_with_typed_errors() {
    let (mut tx, mut rx) = pair13(Aead::ChaCha20Poly1305);
    assert_eq!(
        rx.open(&[23, 3, 3, 0, 16], &[0; 16]),
        Err(TlsModelError::BadRecord {
            needed: 17,
            got: 16
        })
    );
    assert_eq!(
        rx.open(&[22, 3, 3, 0, 20], &[0; 20]),
        Err(TlsModelError::NotApplicationData { content_type: 22 })
    );
    assert_eq!(
        rx.open(&[23, 3, 3, 0, 30], &[0; 20]),
        Err(TlsModelError::HeaderLengthMismatch {
            header: 30,
            actual: 20
        })
    );
    let big = vec![0; (1 << 14) + 257];
    let [hi, lo] = u16::try_from(big.len()).expect("fits").to_be_bytes();
    assert!(matches!(
        rx.open(&[23, 3, 3, hi, lo], &big),
        Err(TlsModelError::RecordOverflow { .. })
    ));
    assert_eq!(
        rx.open(&[23, 3, 3, 0, 40], &[0xaa; 40]),
        Err(TlsModelError::Authentication { seq: 0 })
    );
    // An authentic record of only padding has no content type (RFC 8446 §5.4): content type 0
    // with no content is all zeros.
    let record = tx.seal(0, b"", 4);
    let (h, body) = split13(&record);
    assert_eq!(
        rx.open(&h, body),
        Err(TlsModelError::NoContentType { seq: 0 })
    );
    // A record too long for the length field cannot be sealed.
    assert!(tx.seal(23, &vec![1; 70_000], 0).is_empty());
}

#[test]
fn tls12_round_trip_and_tampering() {
    for aead in AEADS {
        let (mut tx, mut rx) = pair12(aead);
        let record = tx.seal(23, 0x0303, b"GET / HTTP/1.1\r\n");
        let explicit = if aead == Aead::ChaCha20Poly1305 { 0 } else { 8 };
        assert_eq!(record.len(), 5 + explicit + 16 + 16);
        assert_eq!(&record[..3], &[23, 3, 3]);
        // Tampering: header fields are in the AAD, the fragment is authenticated.
        for bit in 0..(record.len() - 5) * 8 {
            let mut bad = record[5..].to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (_, mut fresh) = pair12(aead);
            assert!(fresh.open(23, 0x0303, &bad).is_err(), "{aead:?} bit {bit}");
        }
        let (_, mut fresh) = pair12(aead);
        assert!(
            fresh.open(22, 0x0303, &record[5..]).is_err(),
            "type is authenticated"
        );
        let (_, mut fresh) = pair12(aead);
        assert!(
            fresh.open(23, 0x0302, &record[5..]).is_err(),
            "version is authenticated"
        );
        assert_eq!(
            rx.open(23, 0x0303, &record[5..]),
            Ok(b"GET / HTTP/1.1\r\n".to_vec())
        );
        assert_eq!(rx.seq(), 1);
        // Short and oversized fragments.
        assert_eq!(
            rx.open(23, 0x0303, &[0; 3]),
            Err(TlsModelError::BadRecord {
                needed: explicit + 16,
                got: 3
            })
        );
        assert!(matches!(
            rx.open(23, 0x0303, &vec![0; (1 << 14) + 2049]),
            Err(TlsModelError::RecordOverflow { .. })
        ));
        assert_eq!(rx.seq(), 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tls13_open_inverts_seal(
        aead_index in 0usize..3,
        content_type in 1u8..=255,
        content in proptest::collection::vec(any::<u8>(), 0..600),
        padding in 0usize..64,
        records in 1usize..4,
    ) {
        let aead = AEADS[aead_index];
        let (mut tx, mut rx) = pair13(aead);
        for _ in 0..records {
            let record = tx.seal(content_type, &content, padding);
            let (h, body) = split13(&record);
            prop_assert_eq!(rx.open(&h, body), Ok((content_type, content.clone())));
        }
        prop_assert_eq!(tx.seq(), rx.seq());
    }

    #[test]
    fn tls12_open_inverts_seal(
        aead_index in 0usize..3,
        content_type in any::<u8>(),
        version in any::<u16>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        records in 1usize..4,
    ) {
        let aead = AEADS[aead_index];
        let (mut tx, mut rx) = pair12(aead);
        for _ in 0..records {
            let record = tx.seal(content_type, version, &plaintext);
            prop_assert_eq!(record[0], content_type);
            prop_assert_eq!(rx.open(content_type, version, &record[5..]), Ok(plaintext.clone()));
        }
    }

    #[test]
    fn opening_garbage_never_panics(
        aead_index in 0usize..3,
        header in any::<[u8; 5]>(),
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let aead = AEADS[aead_index];
        let (_, mut rx13) = pair13(aead);
        prop_assert!(rx13.open(&header, &body).is_err());
        let (_, mut rx12) = pair12(aead);
        prop_assert!(rx12.open(header[0], 0x0303, &body).is_err());
    }
}

#[test]
fn a_key_with_its_pads_hashed_once_gives_the_same_hmac() {
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        // Keys shorter than, equal to and longer than the hash's block (64/128 bytes).
        for key_len in [0, 1, 32, 64, 128, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5c).collect();
            let keyed = alg.hmac_key(&key);
            for data in [&b""[..], b"abc", &[7u8; 300][..]] {
                assert_eq!(
                    keyed.mac(data),
                    alg.hmac(&key, data),
                    "{alg:?} key {key_len}"
                );
            }
            // The key is kept, not consumed: a second MAC under it is the same again.
            assert_eq!(keyed.mac(b"abc"), alg.hmac(&key, b"abc"));
            assert_ne!(
                keyed.mac(b"abc"),
                alg.hmac(&[key.clone(), vec![1]].concat(), b"abc")
            );
        }
    }
}
