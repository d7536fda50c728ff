//! TLS connections as captured: the byte streams of each TCP connection out of a pcap
//! (read by [`crate::pcap`], reassembled by [`stream`]), the secrets a peer logged for them ([`keylog`]), and — record by record,
//! message by message — what the peers said ([`crate::wire::tls`]).
//!
//! Read first: RFC 8446 §4 and §5 (TLS 1.3 handshake and record layer), RFC 9850 (the
//! SSLKEYLOGFILE format), RFC 9293 §3.4 (sequence numbers, for the reassembly).
//!
//! Nothing here panics on untrusted input (a capture, a key log, the bytes in them).

pub mod keylog;
pub mod report;
pub mod stream;
pub mod verify;

pub use keylog::{KeyLog, KeyLogError};
pub use stream::{TcpConversation, conversations_from_frames};
