//! netconform: a protocol conformance and fuzz harness for TCP/IP stacks.
//!
//! The crate is laid out by role (see `DESIGN.md`):
//! - [`wire`]: frames, built and parsed (etherparse underneath), one file per protocol;
//! - [`sandbox`]: network namespaces and veth pairs, created and removed through netlink;
//! - [`dut`]: the devices under test behind one trait (the Linux kernel first);
//! - [`pcap`]: captures read (pcap, pcapng, any common link type) and written, in one place;
//! - [`trace`]: what crossed the wire, recorded, normalised, rendered and written as pcap;
//! - [`engine`]: sessions, runners and verdicts, for any protocol;
//! - [`suites`]: one suite per protocol: its checks, clauses and runner glue;
//! - [`report`]: certification reports (JSON, JUnit XML, HTML, terminal summary, comparison);
//! - [`fuzz`]: the logic of every fuzz target, replayed by `cargo test`.
#![warn(missing_docs)]

pub mod bench;
pub mod dut;
pub mod engine;
pub mod fuzz;
pub mod models;
pub mod pcap;
pub mod report;
pub mod sandbox;
pub mod suites;
pub mod time;
pub mod tls;
pub mod trace;
pub mod wire;
