//! quicseal: QUIC 1-RTT packet protection.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
mod error;
mod keys;
pub mod packet_number;
pub mod sg;
mod suite;
pub mod wire;

pub use error::Error;
pub use keys::{KeyMaterial, TrafficSecret};
pub use suite::{CipherSuite, Limits};
