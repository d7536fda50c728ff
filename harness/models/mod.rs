//! Reference models: pure, sans-IO state machines, one per protocol.
//!
//! A model never reads a clock, opens a socket or draws a random number: time, the peer's
//! initial sequence numbers and every other choice arrive as inputs, which makes a model
//! testable, shrinkable and fast. Every model takes a [`profile::Profile`] over its own
//! deviation enum (the one profile type, [`profile`]): each deviation is one named switch
//! with the RFC or IEEE section it departs from. [`diff`] writes how an observed packet
//! differs from the one a model expects, in the one vocabulary of every report.

pub mod arp;
pub mod diff;
pub mod forward;
pub mod nat;
pub mod profile;
pub mod route;
pub mod seq;
pub mod switch;
pub mod tcp;
pub mod tcp_timers;
pub mod tls;
