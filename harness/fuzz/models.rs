//! Model targets: an arbitrary event sequence drives a model, and the model's invariants are
//! asserted after every step.

use super::FuzzTarget;

pub(super) static TARGETS: &[FuzzTarget] = &[];
