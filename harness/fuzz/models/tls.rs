//! `model_tls`: record protection under every suite of [`CipherSuite::ALL`], TLS 1.3
//! KeyUpdate chains, the TLS 1.2 PRF, HKDF-Expand-Label and the transcript hash, each checked
//! against what RFC 8446 / RFC 5246 say must hold.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};

use crate::fuzz::Outcome;
use crate::models::tls::{
    CipherSuite, HashAlg, MasterSecret12, RecordProtection12, RecordProtection13, TlsModelError,
    TrafficSecret, Transcript, hkdf_label, prf, try_hkdf_expand_label,
};

const T: &str = "model_tls";

#[derive(Debug, Arbitrary)]
enum Event {
    /// One record sealed and opened; with `flip`, a copy with one bit flipped first.
    Record {
        suite: u8,
        content: Vec<u8>,
        content_type: u8,
        padding: u8,
        flip: Option<(u16, u8)>,
    },
    /// Every TLS 1.3 chain moves to its next application traffic secret (RFC 8446 §7.2).
    KeyUpdate,
    Prf {
        sha384: bool,
        secret: Vec<u8>,
        seed: Vec<u8>,
        len: u16,
        len2: u16,
    },
    Expand {
        sha384: bool,
        secret: Vec<u8>,
        label_len: u16,
        context_len: u16,
        len: u16,
    },
    Transcript {
        sha384: bool,
        message: Vec<u8>,
        split: u16,
    },
}

fn alg(sha384: bool) -> HashAlg {
    if sha384 {
        HashAlg::Sha384
    } else {
        HashAlg::Sha256
    }
}

/// One direction of one suite: the sender's and the receiver's record protection.
enum Chain {
    Tls13 {
        secret: TrafficSecret,
        seal: RecordProtection13,
        open: RecordProtection13,
    },
    Tls12 {
        seal: RecordProtection12,
        open: RecordProtection12,
    },
}

fn chain(suite: &CipherSuite, seed: u8) -> Result<Chain, String> {
    let err = |e: TlsModelError| format!("{}: {e}", suite.name);
    match suite.version {
        crate::models::tls::Version::Tls13 => {
            let bytes = vec![seed; suite.hash.output_len()];
            let secret = TrafficSecret::new(suite.hash, bytes);
            let keys = secret.keys(suite.aead);
            if keys.key.len() != suite.aead.key_len() || keys.iv.len() != 12 {
                return Err(format!("{}: keys {keys:?}", suite.name));
            }
            Ok(Chain::Tls13 {
                seal: RecordProtection13::new(suite.aead, &keys).map_err(err)?,
                open: RecordProtection13::new(suite.aead, &keys).map_err(err)?,
                secret,
            })
        }
        crate::models::tls::Version::Tls12 => {
            let (cr, sr) = ([seed; 32], [seed ^ 0x5a; 32]);
            let ms = MasterSecret12::from_pre_master(suite.hash, &[seed; 48], &cr, &sr);
            let kb = ms.key_block(suite, &cr, &sr);
            if kb.client_key.len() != suite.aead.key_len()
                || kb.client_iv.len() != suite.aead.tls12_iv_len()
                || kb.client_key == kb.server_key
            {
                return Err(format!("{}: key block {kb:?}", suite.name));
            }
            Ok(Chain::Tls12 {
                seal: RecordProtection12::new(suite.aead, &kb.client_key, &kb.client_iv)
                    .map_err(err)?,
                open: RecordProtection12::new(suite.aead, &kb.client_key, &kb.client_iv)
                    .map_err(err)?,
            })
        }
    }
}

/// Seal then open; a flipped bit must not open and must not move the receiver's sequence
/// number.
pub(crate) fn check_record13(
    seal: &mut RecordProtection13,
    open: &mut RecordProtection13,
    content_type: u8,
    content: &[u8],
    padding: usize,
    flip: Option<(usize, u8)>,
) -> Result<Vec<u8>, String> {
    let record = seal.seal(content_type, content, padding);
    if record.len() != 5 + content.len() + 1 + padding + 16 || seal.seq() != open.seq() + 1 {
        return Err(format!(
            "sealed {} bytes of content and {padding} of padding into {} bytes (seq {})",
            content.len(),
            record.len(),
            seal.seq()
        ));
    }
    let split = |r: &[u8]| -> ([u8; 5], Vec<u8>) {
        let mut h = [0u8; 5];
        h.copy_from_slice(&r[..5]);
        (h, r[5..].to_vec())
    };
    if let Some((at, bit)) = flip {
        let mut bad = record.clone();
        let at = at % bad.len();
        bad[at] ^= 1 << (bit % 8);
        let (h, body) = split(&bad);
        let seq = open.seq();
        if let Ok(opened) = open.open(&h, &body) {
            return Err(format!(
                "byte {at} flipped, and the record opened: {opened:?}"
            ));
        }
        if open.seq() != seq {
            return Err(format!(
                "a failed open moved the sequence number to {}",
                open.seq()
            ));
        }
    }
    let (h, body) = split(&record);
    match open.open(&h, &body) {
        Ok((t, c)) if t == content_type && c == content => Ok(record),
        other => Err(format!(
            "sealed type {content_type} {content:02x?}, opened {other:?}"
        )),
    }
}

/// The TLS 1.2 counterpart of [`check_record13`]. The length field is not an input of
/// `open` (the caller passes the fragment), so a flip never lands there.
pub(crate) fn check_record12(
    seal: &mut RecordProtection12,
    open: &mut RecordProtection12,
    content_type: u8,
    content: &[u8],
    flip: Option<(usize, u8)>,
) -> Result<(), String> {
    let record = seal.seal(content_type, 0x0303, content);
    if record.len() < 5 + content.len() + 16 || seal.seq() != open.seq() + 1 {
        return Err(format!(
            "sealed {} bytes into {} (seq {})",
            content.len(),
            record.len(),
            seal.seq()
        ));
    }
    let parts = |r: &[u8]| (r[0], u16::from_be_bytes([r[1], r[2]]), r[5..].to_vec());
    if let Some((at, bit)) = flip {
        let mut bad = record.clone();
        let mut at = at % (bad.len() - 2);
        if at >= 3 {
            at += 2;
        }
        bad[at] ^= 1 << (bit % 8);
        let (t, v, f) = parts(&bad);
        let seq = open.seq();
        if let Ok(opened) = open.open(t, v, &f) {
            return Err(format!(
                "byte {at} flipped, and the record opened: {opened:02x?}"
            ));
        }
        if open.seq() != seq {
            return Err(format!(
                "a failed open moved the sequence number to {}",
                open.seq()
            ));
        }
    }
    let (t, v, f) = parts(&record);
    match open.open(t, v, &f) {
        Ok(c) if c == content => Ok(()),
        other => Err(format!("sealed {content:02x?}, opened {other:?}")),
    }
}

/// HKDF-Expand-Label written out from RFC 5869 §2.3 and RFC 8446 §7.1, with HMAC (keyed once
/// with the PRK, the key's pads hashed once for all blocks).
fn expand_reference(alg: HashAlg, prk: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut okm = Vec::new();
    let mut t: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    let key = alg.hmac_key(prk);
    while okm.len() < len {
        let mut input = t.clone();
        input.extend_from_slice(info);
        input.push(counter);
        t = key.mac(&input);
        okm.extend_from_slice(&t);
        counter = counter.wrapping_add(1);
    }
    okm.truncate(len);
    okm
}

/// HKDF-Expand-Label: an error exactly when RFC 8446's encoding cannot express the input
/// (more than 255·Hash.length bytes, a label over 249 bytes, a context over 255), else the
/// requested length and the RFC's bytes.
pub(crate) fn check_expand(
    alg: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
    got: &Result<Vec<u8>, TlsModelError>,
) -> Result<(), String> {
    let expressible = len <= 255 * alg.output_len() && label.len() <= 249 && context.len() <= 255;
    match got {
        Ok(v) if expressible => {
            let info = hkdf_label(len, label, context).map_err(|e| e.to_string())?;
            let want = expand_reference(alg, secret, &info, len);
            if *v == want {
                Ok(())
            } else {
                Err(format!(
                    "expand_label({len}) = {v:02x?}, RFC 5869: {want:02x?}"
                ))
            }
        }
        Err(_) if !expressible => Ok(()),
        other => Err(format!(
            "expand_label(len {len}, label {} bytes, context {} bytes) = {other:?}",
            label.len(),
            context.len()
        )),
    }
}

/// One entry of the transcript, for the determinism check: the bytes each event produced.
#[derive(Debug, PartialEq)]
enum Step {
    /// A TLS 1.3 record as sealed.
    Record13(Vec<u8>),
    /// A TLS 1.2 record sealed and opened under the suite named.
    Sealed12(&'static str),
    /// The next traffic secret of a chain.
    Secret(Vec<u8>),
    /// PRF output.
    Prf(Vec<u8>),
    /// HKDF-Expand-Label output, or its error.
    Expand(Result<Vec<u8>, String>),
    /// A message_hash.
    MessageHash(Vec<u8>),
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Step>, String> {
    let seed = u8::arbitrary(u).map_err(|e| e.to_string())?;
    let mut chains: BTreeMap<u16, Chain> = BTreeMap::new();
    let mut out = Vec::new();
    for ev in super::events::<Event>(u) {
        match ev {
            Event::Record {
                suite,
                mut content,
                content_type,
                padding,
                flip,
            } => {
                let s = CipherSuite::ALL[usize::from(suite) % CipherSuite::ALL.len()];
                content.truncate(300);
                let chain = match chains.entry(s.id) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(chain(&s, seed)?),
                };
                let flip = flip.map(|(a, b)| (usize::from(a), b));
                // RFC 8446 §5.4: the content type is never zero.
                let content_type = content_type.max(1);
                match chain {
                    Chain::Tls13 { seal, open, .. } => {
                        let padding = usize::from(padding % 64);
                        let r = check_record13(seal, open, content_type, &content, padding, flip)
                            .map_err(|e| format!("{}: {e}", s.name))?;
                        out.push(Step::Record13(r));
                    }
                    Chain::Tls12 { seal, open } => {
                        check_record12(seal, open, content_type, &content, flip)
                            .map_err(|e| format!("{}: {e}", s.name))?;
                        out.push(Step::Sealed12(s.name));
                    }
                }
            }
            Event::KeyUpdate => {
                for (id, c) in chains.iter_mut() {
                    let Chain::Tls13 { secret, seal, open } = c else {
                        continue;
                    };
                    let s = CipherSuite::from_id(*id).ok_or("a chain of an unknown suite")?;
                    let next = secret.next();
                    if next == *secret
                        || secret.next() != next
                        || next.bytes().len() != s.hash.output_len()
                    {
                        return Err(format!("{}: KeyUpdate {secret:?} -> {next:?}", s.name));
                    }
                    let keys = next.keys(s.aead);
                    let mut old_seal = std::mem::replace(
                        seal,
                        RecordProtection13::new(s.aead, &keys).map_err(|e| e.to_string())?,
                    );
                    *open = RecordProtection13::new(s.aead, &keys).map_err(|e| e.to_string())?;
                    // A record under the old key does not open under the new one.
                    let stale = old_seal.seal(23, b"old", 0);
                    let mut h = [0u8; 5];
                    h.copy_from_slice(&stale[..5]);
                    if open.open(&h, &stale[5..]).is_ok() {
                        return Err(format!("{}: a record of the old key opened", s.name));
                    }
                    *secret = next;
                    out.push(Step::Secret(secret.bytes().to_vec()));
                }
            }
            Event::Prf {
                sha384,
                secret,
                seed,
                len,
                len2,
            } => {
                let (len, len2) = (prf_len(len), prf_len(len2));
                let a = prf(alg(sha384), &secret, "fuzz", &seed, len);
                let b = prf(alg(sha384), &secret, "fuzz", &seed, len2);
                let n = len.min(len2);
                if a.len() != len || b.len() != len2 || a[..n] != b[..n] {
                    return Err(format!(
                        "PRF of {len} and {len2} bytes: {} and {} bytes, prefixes differ: {}",
                        a.len(),
                        b.len(),
                        a.get(..n) != b.get(..n)
                    ));
                }
                out.push(Step::Prf(a));
            }
            Event::Expand {
                sha384,
                secret,
                label_len,
                context_len,
                len,
            } => {
                let label = "l".repeat(usize::from(label_len % 300));
                let context = vec![0x33; usize::from(context_len % 300)];
                let len = expand_len(alg(sha384), len);
                let got = try_hkdf_expand_label(alg(sha384), &secret, &label, &context, len);
                check_expand(alg(sha384), &secret, &label, &context, len, &got)?;
                out.push(Step::Expand(got.map_err(|e| e.to_string())));
            }
            Event::Transcript {
                sha384,
                message,
                split,
            } => {
                let a = alg(sha384);
                let at = usize::from(split) % (message.len() + 1);
                let mut whole = Transcript::new(a);
                whole.add(&message);
                let mut parts = Transcript::new(a);
                parts.add(&message[..at]);
                parts.add(&message[at..]);
                if whole.hash() != parts.hash() || whole.hash() != a.hash(&message) {
                    return Err(format!("transcript of {message:02x?} split at {at}"));
                }
                let mh = whole.into_message_hash().hash();
                let mut synthetic = vec![0xfe, 0, 0, a.output_len() as u8];
                synthetic.extend_from_slice(&a.hash(&message));
                if mh != a.hash(&synthetic) {
                    return Err(format!("message_hash of {message:02x?}"));
                }
                out.push(Step::MessageHash(mh));
            }
        }
    }
    Ok(out)
}

/// The length of a PRF output: 0 to 159 bytes, five SHA-256 blocks and the boundaries at
/// every multiple of 32 and 48 (the P_hash chaining that longer outputs repeat). Lengths
/// up to 1,023 made the PRF most of the target's time for no new behaviour.
pub(crate) fn prf_len(raw: u16) -> usize {
    usize::from(raw % 160)
}

/// The length asked of HKDF-Expand-Label. Mostly short (0 to 96 bytes: none, one and
/// several blocks of either hash, their boundaries); one value in 256 (the top byte 0xff)
/// lands within 4 bytes of the largest length RFC 5869 allows, 255·HashLen, on either side,
/// so the limit and the first length past it stay reached. Drawn uniformly up to 13,000
/// bytes, as before, an input asked for about 6,000 bytes on average: some 4,000 SHA-2
/// compressions per input, the whole cost of the target, for a behaviour (the block
/// chain) the short lengths already exercise; the limit itself is what a long length
/// tests, and it keeps being tested, at a 256th of the cost.
pub(crate) fn expand_len(alg: HashAlg, raw: u16) -> usize {
    if raw >> 8 == 0xff {
        255 * alg.output_len() - 4 + usize::from(raw & 7)
    } else {
        usize::from(raw % 97)
    }
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
