//! The TCP suite: fixed checks ([`basic`]), timer checks ([`timers`]), the state matrix
//! and generated scenarios ([`checks`], [`matrix`]), all run through one scenario runner
//! ([`scenario`]) that compares the stack with [`crate::models::tcp`].

pub mod basic;
pub mod checks;
pub mod expect;
pub mod matrix;
pub mod profile;
pub mod scenario;
pub mod timers;
