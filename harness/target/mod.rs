//! target (filled in below).
