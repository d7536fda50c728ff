//! Published TLS vectors against the key-schedule model (`netconform::models::tls`): RFC 8448
//! §3 and §4 (every printed secret, key, IV, Finished, binder and record), the TLS 1.2 PRF
//! (IETF-list, NIST CAVP via OpenSSL, the one EMS-labelled output OpenSSL publishes), and TLS 1.3
//! vectors from sources independent of RFC 8448 (rustls/OpenSSL, OpenSSL ACVP SHA-384,
//! RFC 9001 ChaCha20). Each fixture under `fixtures/tls/` names its source in `provenance`.
//!
//! Transcript hashes are computed from the transcribed handshake messages, then compared with the
//! hashes the sources print, so a transcription error in either shows up.

use std::collections::BTreeMap;
use std::path::Path;

use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use netconform::models::tls::*;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tls")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.trim_start()
            .trim_start_matches('{')
            .trim_start()
            .starts_with("\"provenance\""),
        "{name}: the first field must be \"provenance\""
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        v["provenance"].as_str().is_some_and(|p| p.len() > 100),
        "{name}: provenance text"
    );
    v
}

/// The hex string at `path` (slash-separated keys) decoded.
fn hx(v: &Value, path: &str) -> Vec<u8> {
    let mut cur = v;
    for key in path.split('/') {
        cur = &cur[key];
    }
    let s = cur
        .as_str()
        .unwrap_or_else(|| panic!("no hex string at {path}"));
    hex::decode(s).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn arr32(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("32 bytes")
}

fn transcript(v: &Value, messages: &[&str]) -> Vec<u8> {
    let mut t = Transcript::new(HashAlg::Sha256);
    for m in messages {
        t.add(&hx(v, &format!("messages/{m}")));
    }
    t.hash()
}

fn x25519(v: &Value) -> Vec<u8> {
    let client_private = arr32(&hx(v, "x25519/client_private"));
    let server_private = arr32(&hx(v, "x25519/server_private"));
    let base = x25519_dalek::X25519_BASEPOINT_BYTES;
    assert_eq!(
        x25519_dalek::x25519(client_private, base).to_vec(),
        hx(v, "x25519/client_public")
    );
    assert_eq!(
        x25519_dalek::x25519(server_private, base).to_vec(),
        hx(v, "x25519/server_public")
    );
    let shared = x25519_dalek::x25519(client_private, arr32(&hx(v, "x25519/server_public")));
    assert_eq!(
        x25519_dalek::x25519(server_private, arr32(&hx(v, "x25519/client_public"))),
        shared
    );
    assert_eq!(shared.to_vec(), hx(v, "x25519/shared_secret"));
    shared.to_vec()
}

/// Open every record of the fixture with the keys it names, in order, one protection state per
/// key, checking the sequence number, content type and plaintext.
fn open_records(v: &Value, keys: &BTreeMap<&str, TrafficKeys>) {
    let mut states: BTreeMap<String, RecordProtection13> = BTreeMap::new();
    let records = v["records"].as_array().expect("records");
    assert!(!records.is_empty());
    for r in records {
        let name = r["name"].as_str().expect("name");
        let key_name = r["keys"].as_str().expect("keys");
        let state = states.entry(key_name.to_string()).or_insert_with(|| {
            let k = keys
                .get(key_name)
                .unwrap_or_else(|| panic!("no keys {key_name}"));
            RecordProtection13::new(Aead::Aes128Gcm, k).expect("RFC keys fit")
        });
        assert_eq!(
            Some(state.seq()),
            r["seq"].as_u64(),
            "{name}: sequence number"
        );
        let record = hx(r, "record");
        let (header, body) = record.split_at(5);
        let header: [u8; 5] = header.try_into().expect("5 bytes");
        let (content_type, plaintext) = state
            .open(&header, body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            Some(u64::from(content_type)),
            r["content_type"].as_u64(),
            "{name}"
        );
        assert_eq!(
            hex::encode(&plaintext),
            r["plaintext"].as_str().expect("plaintext"),
            "{name}"
        );

        // And the model seals the same plaintext back to the same record (RFC 8448 uses no
        // padding), from a state at the same sequence number.
        let mut sealer =
            RecordProtection13::new(Aead::Aes128Gcm, &keys[key_name]).expect("RFC keys fit");
        for _ in 0..r["seq"].as_u64().expect("seq") {
            sealer.seal(23, b"", 0);
        }
        assert_eq!(
            sealer.seal(content_type, &plaintext, 0),
            record,
            "{name}: seal"
        );
    }
}

#[test]
fn rfc8448_section3_simple_1rtt() {
    let v = load("rfc8448-3-simple-1rtt.json");
    let alg = HashAlg::Sha256;
    let suite = CipherSuite::from_name(v["suite"].as_str().expect("suite")).expect("known suite");
    assert_eq!(
        (suite.id, suite.hash, suite.aead),
        (0x1301, alg, Aead::Aes128Gcm)
    );
    let ks = |name: &str| hx(&v, &format!("key_schedule/{name}"));

    // Transcript hashes from the messages.
    let th = |name: &str| hx(&v, &format!("transcript_hashes/{name}"));
    assert_eq!(alg.hash(b""), th("empty"));
    let ch_sh = transcript(&v, &["client_hello", "server_hello"]);
    assert_eq!(ch_sh, th("client_hello..server_hello"));
    let ch_cv = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "certificate",
            "certificate_verify",
        ],
    );
    let ch_sf = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "certificate",
            "certificate_verify",
            "server_finished",
        ],
    );
    assert_eq!(ch_sf, th("client_hello..server_finished"));
    let ch_cf = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "certificate",
            "certificate_verify",
            "server_finished",
            "client_finished",
        ],
    );
    assert_eq!(ch_cf, th("client_hello..client_finished"));

    // The HkdfLabel encodings RFC 8448 prints as "info".
    for l in v["hkdf_labels"].as_array().expect("hkdf_labels") {
        let label = l["label"].as_str().expect("label");
        let len = usize::try_from(l["len"].as_u64().expect("len")).expect("small");
        assert_eq!(
            hkdf_label(len, label, &hx(l, "context")),
            Ok(hx(l, "info")),
            "{label}"
        );
    }

    // The schedule.
    let ecdhe = x25519(&v);
    let early = EarlySecret::new(alg, None);
    assert_eq!(early.secret(), ks("early_secret"));
    assert_eq!(hkdf_extract(alg, &[0; 32], &[0; 32]), ks("early_secret"));
    assert_eq!(early.derived(), ks("derived_for_handshake"));
    assert_eq!(
        derive_secret(alg, early.secret(), "derived", &alg.hash(b"")),
        ks("derived_for_handshake")
    );
    let hs = early.into_handshake(Some(&ecdhe));
    assert_eq!(hs.secret(), ks("handshake_secret"));
    let c_hs = hs.client_handshake_traffic_secret(&ch_sh);
    let s_hs = hs.server_handshake_traffic_secret(&ch_sh);
    assert_eq!(c_hs.bytes(), ks("c_hs_traffic"));
    assert_eq!(s_hs.bytes(), ks("s_hs_traffic"));
    assert_eq!(hs.derived(), ks("derived_for_master"));
    let master = hs.into_master();
    assert_eq!(master.secret(), ks("master_secret"));
    let c_ap = master.client_application_traffic_secret_0(&ch_sf);
    let s_ap = master.server_application_traffic_secret_0(&ch_sf);
    assert_eq!(c_ap.bytes(), ks("c_ap_traffic"));
    assert_eq!(s_ap.bytes(), ks("s_ap_traffic"));
    assert_eq!(master.exporter_master_secret(&ch_sf), ks("exp_master"));
    let rms = master.resumption_master_secret(&ch_cf);
    assert_eq!(rms.secret(), ks("res_master"));
    assert_eq!(rms.psk(&ks("ticket_nonce")), ks("resumption_psk"));
    // The nonce the NewSessionTicket carries is the one the PSK was derived with.
    let nst = hx(&v, "messages/new_session_ticket");
    assert_eq!(
        nst[12..15],
        [2, 0, 0],
        "ticket_nonce<0..255> of two bytes 00 00"
    );

    // Traffic keys and IVs.
    let tk = |name: &str| TrafficKeys {
        key: hx(&v, &format!("traffic_keys/{name}/key")),
        iv: hx(&v, &format!("traffic_keys/{name}/iv")),
    };
    assert_eq!(s_hs.keys(Aead::Aes128Gcm), tk("server_handshake"));
    assert_eq!(c_hs.keys(Aead::Aes128Gcm), tk("client_handshake"));
    assert_eq!(s_ap.keys(Aead::Aes128Gcm), tk("server_application"));
    assert_eq!(c_ap.keys(Aead::Aes128Gcm), tk("client_application"));

    // Finished: keys, verify_data, and the Finished messages' bodies.
    let fin = |name: &str| hx(&v, &format!("finished/{name}"));
    assert_eq!(s_hs.finished_key(), fin("server_finished_key"));
    assert_eq!(c_hs.finished_key(), fin("client_finished_key"));
    assert_eq!(s_hs.verify_data(&ch_cv), fin("server_verify_data"));
    assert_eq!(c_hs.verify_data(&ch_sf), fin("client_verify_data"));
    assert_eq!(
        hx(&v, "messages/server_finished")[4..],
        fin("server_verify_data")
    );
    assert_eq!(
        hx(&v, "messages/client_finished")[4..],
        fin("client_verify_data")
    );

    // Traffic secrets from a "key log" give the same keys.
    let logged = TrafficSecret::new(alg, ks("s_ap_traffic"));
    assert_eq!(logged, s_ap);
    assert_eq!(
        format!("{logged:?}"),
        format!("TrafficSecret(Sha256, {})", hex::encode(ks("s_ap_traffic")))
    );

    let keys = BTreeMap::from([
        ("server_handshake", tk("server_handshake")),
        ("client_handshake", tk("client_handshake")),
        ("server_application", tk("server_application")),
        ("client_application", tk("client_application")),
    ]);
    open_records(&v, &keys);
}

#[test]
fn rfc8448_section4_resumed_0rtt() {
    let v = load("rfc8448-4-resumed-0rtt.json");
    let alg = HashAlg::Sha256;
    let ks = |name: &str| hx(&v, &format!("key_schedule/{name}"));
    let th = |name: &str| hx(&v, &format!("transcript_hashes/{name}"));

    // §4 resumes §3: its PSK is §3's resumption PSK.
    let s3 = load("rfc8448-3-simple-1rtt.json");
    assert_eq!(ks("psk"), hx(&s3, "key_schedule/resumption_psk"));

    // The ClientHello: prefix ‖ binders list (u16 length 0x0021, u8 length 0x20, binder).
    let ch = hx(&v, "messages/client_hello");
    let prefix = hx(&v, "messages/client_hello_prefix");
    assert_eq!(ch[..prefix.len()], prefix[..]);
    let mut binders = vec![0x00, 0x21, 0x20];
    binders.extend_from_slice(&ks("binder"));
    assert_eq!(ch[prefix.len()..], binders[..]);
    assert_eq!(
        transcript(&v, &["client_hello_prefix"]),
        th("client_hello_prefix")
    );
    assert_eq!(transcript(&v, &["client_hello"]), th("client_hello"));

    let early = EarlySecret::new(alg, Some(&ks("psk")));
    assert_eq!(early.secret(), ks("early_secret"));
    assert_eq!(early.binder_key(PskKind::Resumption), ks("binder_key"));
    assert_eq!(
        TrafficSecret::new(alg, ks("binder_key")).finished_key(),
        ks("binder_finished_key")
    );
    assert_eq!(
        early.binder(PskKind::Resumption, &th("client_hello_prefix")),
        ks("binder")
    );
    let ch_hash = th("client_hello");
    let c_e = early.client_early_traffic_secret(&ch_hash);
    assert_eq!(c_e.bytes(), ks("c_e_traffic"));
    assert_eq!(
        early.early_exporter_master_secret(&ch_hash),
        ks("e_exp_master")
    );
    assert_eq!(early.derived(), ks("derived_for_handshake"));

    let ecdhe = x25519(&v);
    let ch_sh = transcript(&v, &["client_hello", "server_hello"]);
    assert_eq!(ch_sh, th("client_hello..server_hello"));
    let hs = early.into_handshake(Some(&ecdhe));
    assert_eq!(hs.secret(), ks("handshake_secret"));
    let c_hs = hs.client_handshake_traffic_secret(&ch_sh);
    let s_hs = hs.server_handshake_traffic_secret(&ch_sh);
    assert_eq!(c_hs.bytes(), ks("c_hs_traffic"));
    assert_eq!(s_hs.bytes(), ks("s_hs_traffic"));
    assert_eq!(hs.derived(), ks("derived_for_master"));
    let master = hs.into_master();
    assert_eq!(master.secret(), ks("master_secret"));

    let ch_ee = transcript(
        &v,
        &["client_hello", "server_hello", "encrypted_extensions"],
    );
    let ch_sf = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "server_finished",
        ],
    );
    assert_eq!(ch_sf, th("client_hello..server_finished"));
    let ch_eoed = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "server_finished",
            "end_of_early_data",
        ],
    );
    let ch_cf = transcript(
        &v,
        &[
            "client_hello",
            "server_hello",
            "encrypted_extensions",
            "server_finished",
            "end_of_early_data",
            "client_finished",
        ],
    );
    assert_eq!(ch_cf, th("client_hello..client_finished"));

    let c_ap = master.client_application_traffic_secret_0(&ch_sf);
    let s_ap = master.server_application_traffic_secret_0(&ch_sf);
    assert_eq!(c_ap.bytes(), ks("c_ap_traffic"));
    assert_eq!(s_ap.bytes(), ks("s_ap_traffic"));
    assert_eq!(master.exporter_master_secret(&ch_sf), ks("exp_master"));
    assert_eq!(
        master.resumption_master_secret(&ch_cf).secret(),
        ks("res_master")
    );

    // Finished (PSK handshake: no Certificate/CertificateVerify; EndOfEarlyData is in the
    // client's transcript).
    let fin = |name: &str| hx(&v, &format!("finished/{name}"));
    assert_eq!(s_hs.verify_data(&ch_ee), fin("server_verify_data"));
    assert_eq!(c_hs.verify_data(&ch_eoed), fin("client_verify_data"));
    assert_eq!(
        hx(&v, "messages/server_finished")[4..],
        fin("server_verify_data")
    );
    assert_eq!(
        hx(&v, "messages/client_finished")[4..],
        fin("client_verify_data")
    );

    let tk = |name: &str| TrafficKeys {
        key: hx(&v, &format!("traffic_keys/{name}/key")),
        iv: hx(&v, &format!("traffic_keys/{name}/iv")),
    };
    assert_eq!(c_e.keys(Aead::Aes128Gcm), tk("client_early"));
    assert_eq!(s_hs.keys(Aead::Aes128Gcm), tk("server_handshake"));
    assert_eq!(c_hs.keys(Aead::Aes128Gcm), tk("client_handshake"));
    assert_eq!(s_ap.keys(Aead::Aes128Gcm), tk("server_application"));
    assert_eq!(c_ap.keys(Aead::Aes128Gcm), tk("client_application"));

    let keys = BTreeMap::from([
        ("client_early", tk("client_early")),
        ("server_handshake", tk("server_handshake")),
        ("client_handshake", tk("client_handshake")),
        ("server_application", tk("server_application")),
        ("client_application", tk("client_application")),
    ]);
    open_records(&v, &keys);
}

fn hash_alg(name: &str) -> HashAlg {
    match name {
        "SHA256" => HashAlg::Sha256,
        "SHA384" => HashAlg::Sha384,
        other => panic!("hash {other} not modelled"),
    }
}

#[test]
fn tls12_prf_vectors() {
    let v = load("tls12-prf.json");
    let cases = v["prf"].as_array().expect("prf");
    assert_eq!(cases.len(), 2);
    for c in cases {
        let alg = hash_alg(c["hash"].as_str().expect("hash"));
        let want = hx(c, "output");
        let got = prf(
            alg,
            &hx(c, "secret"),
            c["label"].as_str().expect("label"),
            &hx(c, "seed"),
            want.len(),
        );
        assert_eq!(hex::encode(got), hex::encode(&want), "{alg:?}");
    }

    // NIST CAVP master secret.
    let m = &v["nist_cavp"]["master_secret"];
    let ms = MasterSecret12::from_pre_master(
        HashAlg::Sha256,
        &hx(m, "pre_master_secret"),
        &arr32(&hx(m, "client_random")),
        &arr32(&hx(m, "server_random")),
    );
    assert_eq!(ms.bytes(), hx(m, "master_secret"));

    // NIST CAVP key expansion: the whole 128-byte block, then the model's cut of it per suite.
    let k = &v["nist_cavp"]["key_expansion"];
    let block = hx(k, "key_block");
    let mut seed = hx(k, "server_random");
    seed.extend_from_slice(&hx(k, "client_random"));
    assert_eq!(
        prf(
            HashAlg::Sha256,
            &hx(k, "master_secret"),
            "key expansion",
            &seed,
            128
        ),
        block
    );
    let ms =
        MasterSecret12::from_logged(HashAlg::Sha256, &hx(k, "master_secret")).expect("48 bytes");
    let (cr, sr) = (
        arr32(&hx(k, "client_random")),
        arr32(&hx(k, "server_random")),
    );
    for suite in CipherSuite::ALL
        .iter()
        .filter(|s| s.version == Version::Tls12)
    {
        let (kl, il) = (suite.aead.key_len(), suite.aead.tls12_iv_len());
        let kb = ms.key_block(suite, &cr, &sr);
        assert_eq!(kb.client_key, block[..kl], "{}", suite.name);
        assert_eq!(kb.server_key, block[kl..2 * kl], "{}", suite.name);
        assert_eq!(kb.client_iv, block[2 * kl..2 * kl + il], "{}", suite.name);
        assert_eq!(
            kb.server_iv,
            block[2 * kl + il..2 * kl + 2 * il],
            "{}",
            suite.name
        );
    }

    // The one published output under the EMS label (see the provenance).
    for e in v["extended_master_secret"].as_array().expect("ems") {
        let alg = hash_alg(e["hash"].as_str().expect("hash"));
        let ms = MasterSecret12::extended(alg, &hx(e, "pre_master_secret"), &hx(e, "session_hash"));
        assert_eq!(ms.bytes(), hx(e, "master_secret"));
    }
}

#[test]
fn tls13_rustls_openssl_vector_sha256() {
    let v = load("tls13-kdf-second-source.json");
    let r = &v["rustls_openssl"];
    let alg = HashAlg::Sha256;
    let hs = EarlySecret::new(alg, None).into_handshake(Some(&hx(r, "ecdhe")));
    let start = hx(r, "hs_start_hash");
    let full = hx(r, "hs_full_hash");
    let check = |secret: TrafficSecret, prefix: &str| {
        assert_eq!(
            secret.bytes(),
            hx(r, &format!("{prefix}_traffic")),
            "{prefix}"
        );
        let keys = secret.keys(Aead::Aes128Gcm);
        assert_eq!(keys.key, hx(r, &format!("{prefix}_key")), "{prefix}");
        assert_eq!(keys.iv, hx(r, &format!("{prefix}_iv")), "{prefix}");
    };
    check(hs.client_handshake_traffic_secret(&start), "c_hs");
    check(hs.server_handshake_traffic_secret(&start), "s_hs");
    let master = hs.into_master();
    check(master.client_application_traffic_secret_0(&full), "c_ap");
    check(master.server_application_traffic_secret_0(&full), "s_ap");
}

#[test]
fn tls13_openssl_acvp_vectors_sha384() {
    let v = load("tls13-kdf-second-source.json");
    let alg = HashAlg::Sha384;

    let f = &v["openssl_acvp_sha384"]["full_session"];
    let early = EarlySecret::new(alg, None);
    assert_eq!(early.secret(), hx(f, "early_secret"));
    let ch = hx(f, "client_hello_hash");
    assert_eq!(
        early.client_early_traffic_secret(&ch).bytes(),
        hx(f, "c_e_traffic")
    );
    assert_eq!(
        early.early_exporter_master_secret(&ch),
        hx(f, "e_exp_master")
    );
    let hs = early.into_handshake(Some(&hx(f, "ecdhe")));
    assert_eq!(hs.secret(), hx(f, "handshake_secret"));
    let ch_sh = hx(f, "ch_sh_hash");
    assert_eq!(
        hs.client_handshake_traffic_secret(&ch_sh).bytes(),
        hx(f, "c_hs_traffic")
    );
    assert_eq!(
        hs.server_handshake_traffic_secret(&ch_sh).bytes(),
        hx(f, "s_hs_traffic")
    );
    let master = hs.into_master();
    assert_eq!(master.secret(), hx(f, "master_secret"));
    let ch_sf = hx(f, "ch_sf_hash");
    assert_eq!(
        master.client_application_traffic_secret_0(&ch_sf).bytes(),
        hx(f, "c_ap_traffic")
    );
    assert_eq!(
        master.server_application_traffic_secret_0(&ch_sf).bytes(),
        hx(f, "s_ap_traffic")
    );
    assert_eq!(master.exporter_master_secret(&ch_sf), hx(f, "exp_master"));
    assert_eq!(
        master
            .resumption_master_secret(&hx(f, "ch_cf_hash"))
            .secret(),
        hx(f, "res_master")
    );
    // SHA-384 keys for TLS_AES_256_GCM_SHA384 are well formed (no published value to compare).
    let keys = master
        .client_application_traffic_secret_0(&ch_sf)
        .keys(Aead::Aes256Gcm);
    assert_eq!((keys.key.len(), keys.iv.len()), (32, 12));

    let p = &v["openssl_acvp_sha384"]["psk_session_start"];
    let early = EarlySecret::new(alg, Some(&hx(p, "psk")));
    assert_eq!(early.secret(), hx(p, "early_secret"));
    let ch = hx(p, "client_hello_hash");
    assert_eq!(
        early.client_early_traffic_secret(&ch).bytes(),
        hx(p, "c_e_traffic")
    );
    assert_eq!(
        early.early_exporter_master_secret(&ch),
        hx(p, "e_exp_master")
    );
    // psk_ke: no (EC)DHE, the IKM is zeros.
    let hs = early.into_handshake(None);
    assert_eq!(hs.secret(), hx(p, "handshake_secret_psk_only"));
    assert_eq!(
        hs.client_handshake_traffic_secret(&hx(p, "ch_sh_hash"))
            .bytes(),
        hx(p, "c_hs_traffic")
    );
}

#[test]
fn rfc9001_chacha20_expand_label_and_nonce() {
    let v = load("tls13-kdf-second-source.json");
    let q = &v["rfc9001_chacha20"];
    let secret = hx(q, "secret");
    for e in q["expand_label"].as_array().expect("expand_label") {
        let label = e["label"].as_str().expect("label");
        let len = usize::try_from(e["len"].as_u64().expect("len")).expect("small");
        assert_eq!(
            hkdf_expand_label(HashAlg::Sha256, &secret, label, b"", len),
            hx(e, "output"),
            "{label}"
        );
    }
    // The packet opens with the derived ChaCha20 key and the RFC 8446 §5.3 nonce construction.
    let key = hkdf_expand_label(
        HashAlg::Sha256,
        &secret,
        "quic key",
        b"",
        Aead::ChaCha20Poly1305.key_len(),
    );
    let iv: [u8; 12] = hkdf_expand_label(HashAlg::Sha256, &secret, "quic iv", b"", 12)
        .try_into()
        .expect("12 bytes");
    let nonce = record_nonce(&iv, q["packet_number"].as_u64().expect("pn"));
    let packet = hx(q, "protected_packet");
    let header_len = usize::try_from(q["header_len"].as_u64().expect("len")).expect("small");
    let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key).expect("32-byte key");
    let aad = hx(q, "unprotected_header");
    let payload = cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &packet[header_len..],
                aad: &aad,
            },
        )
        .expect("RFC 9001 A.5 packet authenticates");
    assert_eq!(payload, hx(q, "payload"));
}
