//! The `netconform` command line.
fn main() {}
