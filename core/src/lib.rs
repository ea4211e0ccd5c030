//! quicseal: QUIC 1-RTT packet protection.
#![no_std]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;
mod counters;
mod error;
mod flow;
mod flow_table;
mod generation;
mod gso;
mod keys;
pub mod packet_number;
mod protect;
mod rx;
pub mod sg;
mod suite;
mod tx;
pub mod wire;

pub use counters::Counters;
pub use error::Error;
pub use flow::{Batch, DEFAULT_MAX_GSO_SEGMENTS, Datagram, FlowConfig, Outcome, PacketInfo};
pub use flow_table::{CountedFlow, FlowTable};
pub use keys::{KeyMaterial, TrafficSecret};
pub use rx::RxFlow;
pub use suite::{CipherSuite, Limits};
pub use tx::TxFlow;
