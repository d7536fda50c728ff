//! Parser targets for the application layer: DNS messages and HTTP/1.1.
//!
//! `dns` runs `crate::wire::dns` against hickory-proto's `Message::from_vec`, `http` runs
//! `crate::wire::http` against httparse (the head; httparse does not frame bodies), both in
//! the three shapes of the research notes: acceptance, a normalised tuple when both accept,
//! and parse → emit → parse identity. A disagreement is excused only by a
//! [`Difference`] whose conditions the input meets; the classifiers below check those
//! conditions on the input, not on the error text.

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData as HRData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::{Allowed, Difference, FuzzTarget, Kind, Outcome, ensure};
use crate::wire::dns::{self, DnsMessage, DnsName, DnsParseError, DnsRecord, RData};
use crate::wire::http::{HeaderField, HttpParseError, HttpRequest, HttpResponse, MAX_FIELDS};

pub(super) static TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "dns",
        kind: Kind::Parser,
        about: "DNS messages: wire::dns vs hickory-proto (acceptance, fields), emit round trips",
        run: dns,
    },
    FuzzTarget {
        name: "http",
        kind: Kind::Parser,
        about: "HTTP/1.x requests and responses: wire::http vs httparse heads, emit round trips",
        run: http,
    },
];

const DNS: &str = "dns";
const HTTP: &str = "http";

/// The `dns` target: never panics, agrees with hickory-proto up to [`Difference`]s, and
/// re-emits (with and without compression) to the same message.
fn dns(data: &[u8]) -> Outcome {
    let ours = DnsMessage::parse(data);
    if let Ok(m) = &ours {
        super::display(m);
        for (how, bytes) in [("emit", m.emit()), ("emit_compressed", m.emit_compressed())] {
            let again = DnsMessage::parse(&bytes);
            ensure!(
                again.as_ref() == Ok(m),
                DNS,
                "parse({how}(m)) = {again:?}, not {m:?}"
            );
        }
    }
    let theirs = Message::from_vec(data);
    match (&ours, &theirs) {
        (Err(_), Err(_)) => Ok(Allowed::NONE),
        (Ok(m), Ok(h)) => compare_dns(m, h),
        (Ok(m), Err(e)) => why_hickory_rejects(data, m, &e.to_string()),
        (Err(e), Ok(_)) => match e {
            DnsParseError::TrailingBytes { .. } => {
                Ok(Allowed::NONE.with(Difference::HickoryIgnoresTrailingBytes))
            }
            DnsParseError::Length { what, .. } if what.starts_with("EDNS option") => {
                Ok(Allowed::NONE.with(Difference::HickoryDropsTruncatedEdnsOption))
            }
            _ => Err(super::Finding::new(
                DNS,
                format!("wire::dns rejects ({e}) what hickory-proto accepts"),
            )),
        },
    }
}

fn lower<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    labels.map(|l| l.to_ascii_lowercase()).collect()
}

fn same_name(ours: &DnsName, theirs: &hickory_proto::rr::Name) -> bool {
    ours.to_lowercase() == lower(theirs.iter())
}

fn compare_dns(m: &DnsMessage, h: &Message) -> Outcome {
    let mut allowed = Allowed::NONE;
    let md = &h.metadata;
    let f = m.flags;
    let ours = (
        m.id,
        f.qr,
        f.opcode,
        f.aa,
        f.tc,
        f.rd,
        f.ra,
        f.ad,
        f.cd,
        m.rcode(),
    );
    let theirs = (
        md.id,
        md.message_type == MessageType::Response,
        u8::from(md.op_code),
        md.authoritative,
        md.truncation,
        md.recursion_desired,
        md.recursion_available,
        md.authentic_data,
        md.checking_disabled,
        u16::from(md.response_code),
    );
    ensure!(
        ours == theirs,
        DNS,
        "header (id, qr, opcode, aa, tc, rd, ra, ad, cd, rcode): ours {ours:?}, hickory {theirs:?}"
    );
    if f.z {
        allowed = allowed.with(Difference::HickoryDropsZBit);
    }
    ensure!(
        m.questions.len() == h.queries.len(),
        DNS,
        "{} questions, hickory {}",
        m.questions.len(),
        h.queries.len()
    );
    for (i, (q, hq)) in m.questions.iter().zip(&h.queries).enumerate() {
        ensure!(
            same_name(&q.name, hq.name())
                && q.qtype == u16::from(hq.query_type())
                && q.qclass == u16::from(hq.query_class()),
            DNS,
            "question {i}: ours {} {} {}, hickory {hq:?}",
            q.name,
            q.qtype,
            q.qclass
        );
    }
    let additionals: Vec<&DnsRecord> = m
        .additionals
        .iter()
        .filter(|r| r.rtype != dns::rtype::OPT)
        .collect();
    for (section, ours, theirs) in [
        ("answer", m.answers.iter().collect::<Vec<_>>(), &h.answers),
        ("authority", m.authorities.iter().collect(), &h.authorities),
        ("additional", additionals, &h.additionals),
    ] {
        ensure!(
            ours.len() == theirs.len(),
            DNS,
            "{section}: {} records, hickory {}",
            ours.len(),
            theirs.len()
        );
        for (i, (r, hr)) in ours.iter().zip(theirs).enumerate() {
            ensure!(
                same_record(r, hr),
                DNS,
                "{section} {i}: ours {r}, hickory {hr:?}"
            );
        }
    }
    match (m.edns(), &h.edns) {
        (None, None) => {}
        (Some(e), Some(he)) => {
            if e.udp_payload_size < 512 {
                allowed = allowed.with(Difference::HickoryEdnsPayloadFloor);
            }
            let ours = (
                e.udp_payload_size.max(512),
                e.extended_rcode,
                e.version,
                e.dnssec_ok,
            );
            let theirs = (
                he.max_payload(),
                he.rcode_high(),
                he.version(),
                he.flags().dnssec_ok,
            );
            ensure!(
                ours == theirs,
                DNS,
                "EDNS (payload, rcode high, version, DO): ours {ours:?}, hickory {theirs:?}"
            );
        }
        (ours, theirs) => {
            return Err(super::Finding::new(
                DNS,
                format!("EDNS: ours {ours:?}, hickory {theirs:?}"),
            ));
        }
    }
    Ok(allowed)
}

fn same_record(r: &DnsRecord, hr: &Record) -> bool {
    if !(same_name(&r.name, &hr.name)
        && r.rtype == u16::from(hr.record_type())
        && r.class == u16::from(hr.dns_class)
        && r.ttl == hr.ttl)
    {
        return false;
    }
    match (&r.data, &hr.data) {
        (RData::A(a), HRData::A(ha)) => *a == ha.0,
        (RData::Aaaa(a), HRData::AAAA(ha)) => *a == ha.0,
        (RData::Ns(n), HRData::NS(hn)) => same_name(n, &hn.0),
        (RData::Cname(n), HRData::CNAME(hn)) => same_name(n, &hn.0),
        (RData::Ptr(n), HRData::PTR(hn)) => same_name(n, &hn.0),
        (
            RData::Mx {
                preference,
                exchange,
            },
            HRData::MX(mx),
        ) => *preference == mx.preference && same_name(exchange, &mx.exchange),
        (RData::Txt(strings), HRData::TXT(txt)) => {
            strings.len() == txt.txt_data.len()
                && strings
                    .iter()
                    .zip(&txt.txt_data)
                    .all(|(a, b)| a[..] == b[..])
        }
        (RData::Soa(s), HRData::SOA(hs)) => {
            same_name(&s.mname, &hs.mname)
                && same_name(&s.rname, &hs.rname)
                && (s.serial, s.refresh, s.retry, s.expire, s.minimum)
                    == (
                        hs.serial,
                        hs.refresh as u32,
                        hs.retry as u32,
                        hs.expire as u32,
                        hs.minimum,
                    )
        }
        (RData::Empty, HRData::Update0(_)) => true,
        (RData::Raw(raw), HRData::Update0(_)) => raw.is_empty(),
        // Types kept raw are not compared; typed ones must match in kind.
        (RData::Raw(_), _) => !dns::rtype::is_typed(r.rtype),
        _ => false,
    }
}

/// hickory-proto rejects a message wire::dns accepts: decode it with hickory's readers one
/// part at a time, as `Message::read` does, to find the part, and excuse it only when that
/// part is a case a [`Difference`] describes.
fn why_hickory_rejects(data: &[u8], m: &DnsMessage, error: &str) -> Outcome {
    let finding = |what: String| {
        Err(super::Finding::new(
            DNS,
            format!("hickory-proto rejects ({error}) what wire::dns accepts: {what}; ours: {m}"),
        ))
    };
    let mut d = BinDecoder::new(data);
    let header = match Header::read(&mut d) {
        Ok(h) => h,
        Err(e) => return finding(format!("header: {e}")),
    };
    for i in 0..m.questions.len() {
        if let Err(e) = Query::read(&mut d) {
            return finding(format!("question {i}: {e}"));
        }
    }
    let update = header.metadata.op_code == OpCode::Update;
    for (section, records) in [
        ("answer", &m.answers),
        ("authority", &m.authorities),
        ("additional", &m.additionals),
    ] {
        for (i, r) in records.iter().enumerate() {
            let hr = match Record::read(&mut d) {
                Ok(hr) => hr,
                Err(_) if !dns::rtype::is_typed(r.rtype) => {
                    return Ok(Allowed::NONE.with(Difference::HickoryChecksOpaqueRdata));
                }
                Err(_) if hickory_rejects_an_option(&r.data) => {
                    return Ok(Allowed::NONE.with(Difference::HickoryValidatesEdnsOptions));
                }
                Err(e) => return finding(format!("{section} {i} ({r}): {e}")),
            };
            if !update
                && hr.record_type() != RecordType::OPT
                && matches!(hr.data, HRData::Update0(_))
            {
                return if r.data == RData::Raw(Vec::new()) {
                    Ok(Allowed::NONE.with(Difference::HickoryRejectsEmptyRdata))
                } else {
                    finding(format!("{section} {i} ({r}): empty RDATA"))
                };
            }
            if section != "additional"
                && matches!(hr.record_type(), RecordType::SIG | RecordType::TSIG)
            {
                return Ok(Allowed::NONE.with(Difference::HickorySigOutsideAdditional));
            }
        }
    }
    finding("every part decodes alone".into())
}

/// Whether hickory's EDNS option decoder rejects one of the options of an OPT RDATA.
fn hickory_rejects_an_option(data: &RData) -> bool {
    let RData::Opt(options) = data else {
        return false;
    };
    options
        .iter()
        .any(|o| EdnsOption::try_from((EdnsCode::from(o.code), &o.data[..])).is_err())
}

/// The `http` target: the input as a request and as a response (to a GET and to a HEAD):
/// never panics, heads agree with httparse up to [`Difference`]s, every message re-emits to
/// itself, and pipelined requests are read one after the other.
fn http(data: &[u8]) -> Outcome {
    let mut allowed = http_request(data)?;
    allowed = allowed.union(http_response(data)?);
    // Pipelined requests: each one round trips; stop at the first error.
    let mut rest = data;
    for _ in 0..16 {
        let Ok((request, used)) = HttpRequest::parse(rest) else {
            break;
        };
        ensure!(
            used > 0 && used <= rest.len(),
            HTTP,
            "request used {used} bytes"
        );
        let bytes = request.emit();
        let again = HttpRequest::parse(&bytes);
        ensure!(
            again == Ok((request.clone(), bytes.len())),
            HTTP,
            "parse(emit(request)) = {again:?}, not {request:?}"
        );
        super::display(&request);
        rest = &rest[used..];
        if rest.is_empty() {
            break;
        }
    }
    for to_head in [false, true] {
        if let Ok((response, used)) = HttpResponse::parse(data, to_head) {
            ensure!(used <= data.len(), HTTP, "response used {used} bytes");
            let bytes = response.emit();
            let again = HttpResponse::parse(&bytes, to_head);
            ensure!(
                again == Ok((response.clone(), bytes.len())),
                HTTP,
                "parse(emit(response)) = {again:?}, not {response:?}"
            );
            super::display(&response);
        }
    }
    Ok(allowed)
}

fn same_fields(ours: &[HeaderField], theirs: &[httparse::Header<'_>]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .all(|(a, b)| a.name == b.name && a.value == b.value)
}

/// Our head error when httparse accepted the head: excused only by the rule it names.
fn why_we_reject_head(e: &HttpParseError, data: &[u8], request: bool) -> Outcome {
    let d = match e {
        HttpParseError::BareLf { .. } => Difference::HttparseAcceptsBareLf,
        HttpParseError::LeadingEmptyLine { .. } => Difference::HttparseSkipsLeadingEmptyLines,
        HttpParseError::StartLine { offset, .. }
            if request && data.get(*offset).is_some_and(|&b| b >= 0x80) =>
        {
            Difference::HttparseObsTextInTarget
        }
        HttpParseError::StartLine { offset: 12, .. }
            if !request && matches!(data.get(12), Some(b'\r' | b'\n')) =>
        {
            Difference::HttparseStatusWithoutReasonSp
        }
        _ => {
            return Err(super::Finding::new(
                HTTP,
                format!(
                    "wire::http rejects the {} head ({e}) that httparse accepts",
                    if request { "request" } else { "response" }
                ),
            ));
        }
    };
    Ok(Allowed::NONE.with(d))
}

/// Whether a full-message error is a rule httparse does not apply (any error after a head
/// both accepted, except the body being cut short).
fn beyond_the_head(e: &HttpParseError) -> bool {
    !matches!(
        e,
        HttpParseError::Incomplete { .. } | HttpParseError::Length { .. }
    )
}

fn http_request(data: &[u8]) -> Outcome {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut theirs = httparse::Request::new(&mut headers);
    let status = theirs.parse(data);
    let ours = HttpRequest::parse_head(data);
    let mut allowed = match (&ours, status) {
        (Ok((r, len)), Ok(httparse::Status::Complete(their_len))) => {
            let same = *len == their_len
                && Some(r.method.as_str()) == theirs.method
                && Some(r.target.as_str()) == theirs.path
                && Some(r.version.minor()) == theirs.version
                && same_fields(&r.headers, theirs.headers);
            ensure!(
                same,
                HTTP,
                "request head: ours {r:?} ({len} bytes), httparse {theirs:?} ({their_len} bytes)"
            );
            Allowed::NONE
        }
        (Err(e), Ok(httparse::Status::Complete(_))) => why_we_reject_head(e, data, true)?,
        (Ok((r, _)), other) => {
            return Err(super::Finding::new(
                HTTP,
                format!(
                    "httparse does not accept ({other:?}) the request head wire::http reads as {r:?}"
                ),
            ));
        }
        (Err(_), _) => Allowed::NONE,
    };
    if ours.is_ok()
        && let Err(e) = HttpRequest::parse(data)
        && beyond_the_head(&e)
    {
        allowed = allowed.with(Difference::HttparseHeadOnly);
    }
    Ok(allowed)
}

fn http_response(data: &[u8]) -> Outcome {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut theirs = httparse::Response::new(&mut headers);
    let status = theirs.parse(data);
    let ours = HttpResponse::parse_head(data);
    let mut allowed = match (&ours, status) {
        (Ok((r, len)), Ok(httparse::Status::Complete(their_len))) => {
            let mut allowed = Allowed::NONE;
            let reason_same = if r.reason.iter().any(|&b| b >= 0x80) {
                allowed = allowed.with(Difference::HttparseObsTextReason);
                theirs.reason == Some("")
            } else {
                theirs.reason.map(str::as_bytes) == Some(&r.reason[..])
            };
            let same = *len == their_len
                && Some(r.version.minor()) == theirs.version
                && Some(r.status) == theirs.code
                && reason_same
                && same_fields(&r.headers, theirs.headers);
            ensure!(
                same,
                HTTP,
                "response head: ours {r:?} ({len} bytes), httparse {theirs:?} ({their_len} bytes)"
            );
            allowed
        }
        (Err(e), Ok(httparse::Status::Complete(_))) => why_we_reject_head(e, data, false)?,
        (Ok((r, _)), other) => {
            return Err(super::Finding::new(
                HTTP,
                format!(
                    "httparse does not accept ({other:?}) the response head wire::http reads as {r:?}"
                ),
            ));
        }
        (Err(_), _) => Allowed::NONE,
    };
    if ours.is_ok()
        && let Err(e) = HttpResponse::parse(data, false)
        && beyond_the_head(&e)
    {
        allowed = allowed.with(Difference::HttparseHeadOnly);
    }
    Ok(allowed)
}
