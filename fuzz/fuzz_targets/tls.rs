//! TLS record and handshake parsers: arbitrary bytes, read as one direction of a TLS
//! stream, never panic the record reader, the handshake reassembly or the body parsers;
//! every record re-emits to the bytes it was read from and every handshake message
//! re-encodes to the bytes it was reassembled from (see `netconform::wire::tls::fuzz_one`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("tls", data));
