//! sandbox (filled in by the foundation work).
