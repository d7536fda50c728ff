//! TLS record and handshake parsers: arbitrary bytes, read as one direction of a TLS
//! stream, never panic the record reader, the handshake reassembly or the body parsers;
//! every record re-emits to the bytes it was read from and every handshake message
//! re-encodes to the bytes it was reassembled from (see `netconform::wire::tls::fuzz_one`).
//!
//! Seeds in `corpora/tls/`: the RFC 8448 §3/§4 records and handshake messages quoted in
//! `tests/tls_wire.rs`; the plaintext ones (server flight, NewSessionTicket, §4 ClientHello)
//! wrapped in a handshake record header by hand, and one ClientHello cut over three records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netconform::wire::tls::fuzz_one(data);
});
