//! `netconform::wire::http` on real exchanges (`corpora/http/`, see its SOURCES.md), on the
//! request-smuggling classics, and each HTTP entry of `fuzz::differences` shown to be hit by
//! a concrete input through the `http` fuzz target.

use netconform::fuzz::{self, Difference};
use netconform::wire::http::{
    Body, Chunk, HeaderField, HttpParseError, HttpRequest, HttpResponse, HttpVersion,
};

mod common;

fn seeds() -> Vec<(String, Vec<u8>)> {
    common::seeds("http", 12)
}

fn seed(name: &str) -> Vec<u8> {
    common::seed("http", name)
}

/// Responses to a HEAD request are named so.
fn to_head(file: &str) -> bool {
    file.contains("to-head")
}

#[test]
fn curls_chunked_post_reads_to_exact_fields() {
    let bytes = seed("request-post-chunked-curl.bin");
    let (r, used) = HttpRequest::parse(&bytes).expect("parse");
    assert_eq!(used, bytes.len());
    assert_eq!(
        (r.method.as_str(), r.target.as_str(), r.version),
        ("POST", "/echo", HttpVersion::Http11)
    );
    assert_eq!(
        r.headers,
        vec![
            HeaderField::new("Host", "127.0.0.1:8080"),
            HeaderField::new("User-Agent", "curl/7.88.1"),
            HeaderField::new("Accept", "*/*"),
            HeaderField::new("Transfer-Encoding", "chunked"),
            HeaderField::new("Content-Type", "application/x-www-form-urlencoded"),
        ]
    );
    assert_eq!(
        r.body,
        Body::Chunked {
            chunks: vec![Chunk {
                extensions: vec![],
                data: b"line one\nline two\n".to_vec()
            }],
            last_extensions: vec![],
            trailers: vec![],
        }
    );
}

#[test]
fn the_chunked_response_keeps_extensions_and_trailers() {
    let (r, _) =
        HttpResponse::parse(&seed("response-chunked-ext-trailer.bin"), false).expect("parse");
    assert_eq!((r.status, &r.reason[..]), (200, &b"OK"[..]));
    let Body::Chunked {
        chunks, trailers, ..
    } = &r.body
    else {
        panic!("chunked body expected: {r:?}");
    };
    assert_eq!(chunks[0].extensions, b";lang=en");
    assert_eq!(r.body.content(), b"chunked body.");
    assert_eq!(trailers, &vec![HeaderField::new("X-Checksum", "1234")]);
}

#[test]
fn bodiless_responses_have_no_body() {
    for (file, head) in [
        ("response-204-python.bin", false),
        ("response-304-python.bin", false),
        ("response-to-head-python.bin", true),
    ] {
        let bytes = seed(file);
        let (r, used) = HttpResponse::parse(&bytes, head).expect(file);
        assert_eq!((r.body, used), (Body::None, bytes.len()), "{file}");
    }
    // The HEAD response announces 27 bytes it does not send: read as a GET response it is
    // cut short.
    assert!(matches!(
        HttpResponse::parse(&seed("response-to-head-python.bin"), false),
        Err(HttpParseError::Length { needed: 27, .. })
    ));
}

#[test]
fn pipelined_requests_and_responses_read_one_after_the_other() {
    let requests =
        HttpRequest::parse_all(&seed("request-pipelined-get-head-get.bin")).expect("all");
    let lines: Vec<String> = requests.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        [
            "GET /index.html HTTP/1.1, 2 fields, body 0 bytes",
            "HEAD /index.html HTTP/1.1, 1 fields, body 0 bytes",
            "GET /nocontent HTTP/1.1, 2 fields, body 0 bytes",
        ]
    );
    let bytes = seed("response-pipelined-200-200-204.bin");
    let (first, a) = HttpResponse::parse(&bytes, false).expect("first");
    let (second, b) = HttpResponse::parse(&bytes[a..], true).expect("second");
    let (third, c) = HttpResponse::parse(&bytes[a + b..], false).expect("third");
    assert_eq!(a + b + c, bytes.len());
    assert_eq!((first.status, second.status, third.status), (200, 200, 204));
    assert_eq!(first.body.content(), b"hello from the seed server\n");
}

#[test]
fn every_prefix_of_every_seed_is_incomplete() {
    for (file, bytes) in seeds() {
        let used = if file.starts_with("request") {
            HttpRequest::parse(&bytes).map(|(_, n)| n)
        } else {
            HttpResponse::parse(&bytes, to_head(&file)).map(|(_, n)| n)
        }
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        for cut in 0..used {
            let result = if file.starts_with("request") {
                HttpRequest::parse(&bytes[..cut]).map(|_| ())
            } else {
                HttpResponse::parse(&bytes[..cut], to_head(&file)).map(|_| ())
            };
            assert!(
                matches!(
                    result,
                    Err(HttpParseError::Incomplete { .. } | HttpParseError::Length { .. })
                ),
                "{file} cut to {cut}: {result:?}"
            );
        }
    }
}

#[test]
fn every_seed_round_trips() {
    for (file, bytes) in seeds() {
        if file.starts_with("request") {
            for r in HttpRequest::parse_all(&bytes).expect("requests") {
                let again = r.emit();
                assert_eq!(HttpRequest::parse(&again), Ok((r, again.len())), "{file}");
            }
        } else {
            let (r, _) = HttpResponse::parse(&bytes, to_head(&file)).expect("response");
            let again = r.emit();
            assert_eq!(
                HttpResponse::parse(&again, to_head(&file)),
                Ok((r, again.len())),
                "{file}"
            );
        }
    }
}

fn request(text: &str) -> Result<(HttpRequest, usize), HttpParseError> {
    HttpRequest::parse(text.as_bytes())
}

#[test]
fn request_smuggling_classics_are_rejected() {
    assert_eq!(
        request(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        Err(HttpParseError::ContentLengthWithTransferEncoding)
    );
    assert_eq!(
        request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        Err(HttpParseError::ConflictingContentLength { first: 1, other: 2 })
    );
    assert_eq!(
        request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 3\r\n\r\nabc"),
        Err(HttpParseError::ConflictingContentLength { first: 2, other: 3 })
    );
    assert!(matches!(
        request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nab"),
        Err(HttpParseError::InvalidContentLength { .. })
    ));
    assert!(matches!(
        request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"),
        Err(HttpParseError::Chunk { offset: 56, .. })
    ));
    assert!(matches!(
        request(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"
        ),
        Err(HttpParseError::Chunk {
            reason: "chunk-size too large",
            ..
        })
    ));
    assert!(matches!(
        request(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"
        ),
        Err(HttpParseError::Chunk {
            reason: "chunk-data not followed by CRLF",
            ..
        })
    ));
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n"),
        Err(HttpParseError::ObsFold { offset: 33 })
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n"),
        Err(HttpParseError::SpaceBeforeColon { offset: 39 })
    );
    assert!(matches!(
        request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        Err(HttpParseError::TransferEncoding { .. })
    ));
    assert!(matches!(
        request(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        Err(HttpParseError::TransferEncoding { .. })
    ));
    assert_eq!(
        request("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Err(HttpParseError::TransferEncodingInHttp10)
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        Err(HttpParseError::DuplicateHost { count: 2 })
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\n\r\n"),
        Err(HttpParseError::MissingHost)
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
        Err(HttpParseError::FieldValue {
            offset: 29,
            byte: 0
        })
    );
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
        Err(HttpParseError::BareCr { offset: 29 })
    );
}

#[test]
fn identical_content_length_lists_are_accepted() {
    let (r, used) = request(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabcGET",
    )
    .expect("identical values");
    assert_eq!((r.body, used), (Body::Length(b"abc".to_vec()), 72));
}

#[test]
fn a_response_without_length_is_read_until_close() {
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nrest of it";
    let (r, used) = HttpResponse::parse(bytes, false).expect("until close");
    assert_eq!(
        (r.body, used),
        (Body::UntilClose(b"rest of it".to_vec()), bytes.len())
    );
}

// ---- each HTTP difference, hit by a concrete input ----

fn http_target(input: &[u8]) -> netconform::fuzz::Allowed {
    let t = fuzz::target("http").expect("http target");
    (t.run)(input).unwrap_or_else(|f| panic!("{f}"))
}

#[test]
fn the_seeds_need_no_difference() {
    for (file, bytes) in seeds() {
        let used: Vec<Difference> = http_target(&bytes).iter().collect();
        // A request read as a response (and the reverse) fails in the head, where httparse
        // agrees; a HEAD response read as a GET response is only cut short, which is no
        // disagreement either.
        assert!(used.is_empty(), "{file}: {used:?}");
    }
}

#[test]
fn each_http_difference_is_hit() {
    let cases: [(Difference, &[u8]); 6] = [
        (
            Difference::HttparseAcceptsBareLf,
            b"GET / HTTP/1.1\nHost: a\n\n",
        ),
        (
            Difference::HttparseSkipsLeadingEmptyLines,
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        (
            Difference::HttparseObsTextInTarget,
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        (
            Difference::HttparseStatusWithoutReasonSp,
            b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Difference::HttparseObsTextReason,
            b"HTTP/1.1 200 \xe9t\xe9\r\nContent-Length: 0\r\n\r\n",
        ),
        (Difference::HttparseHeadOnly, b"GET / HTTP/1.1\r\n\r\n"),
    ];
    for (d, input) in cases {
        let allowed = http_target(input);
        assert!(
            allowed.contains(d),
            "{} not hit by {:?}: {:?}",
            d.name(),
            input.escape_ascii().to_string(),
            allowed.iter().collect::<Vec<_>>()
        );
    }
}
