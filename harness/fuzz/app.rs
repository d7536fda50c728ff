//! Parser targets for the application layer: DNS messages and HTTP/1.1.

use super::FuzzTarget;

pub(super) static TARGETS: &[FuzzTarget] = &[];
