//! target (filled in by the foundation work).
