//! QUIC 1-RTT packet protection (RFC 9000 §17.3, RFC 9001 §5-6) without `std` or `alloc`, for
//! kernels, userspace and NIC firmware alike. `unsafe` is forbidden in every module but the
//! backends' instruction-set code (`backend::x86`'s SIMD, `backend::riscv`'s scalar-crypto
//! instructions), where every block says which invariant makes it sound, and denied in
//! `backend`'s own code around them.
//!
//! A [`TxFlow`] seals and an [`RxFlow`] opens the 1-RTT packets of one direction of one
//! connection. Each is a value the caller owns (a socket keeps its own), holding the suite's
//! keys, the key-phase state, the AEAD limits and [`Counters`]. Both work on datagrams: any
//! long-header packets at the front pass through untouched and the trailing 1-RTT packet is
//! protected.
//!
//! - Sealing reads cleartext from a scatter-gather source (`&[&[u8]]`) and writes the
//!   protected packet into a scatter-gather destination (`&mut [&mut [u8]]`) in one pass:
//!   [`TxFlow::seal`], [`TxFlow::seal_numbered`], and [`TxFlow::seal_gso`] for a GSO batch
//!   whose `gso_size` includes the tag.
//! - Opening goes the same way ([`RxFlow::open`]) or in place ([`RxFlow::open_in_place`],
//!   [`RxFlow::open_gro`]).
//! - Keys come from a traffic secret ([`TrafficSecret`], later generations by "quic ku") or,
//!   generation by generation, from explicit [`KeyMaterial`].
//! - Every packet gets its own `Result`; nothing on the datapath panics or allocates, and
//!   [`Error`] carries no key-dependent detail.
//! - [`FlowTable`] maps destination connection IDs to flows for callers that multiplex many
//!   connections on one socket.
//! - [`engine`]: batches of seal and open jobs on flows, done as they are posted
//!   ([`engine::Inline`], the CPU) or when the batch completes (an engine behind a device,
//!   as the SmartNIC's host driver is).
//! - Ciphers sit behind [`backend::Backend`], which takes whole packets, one or a batch:
//!   [`backend::Auto`] (the default) picks fused AES-GCM (AVX-512, AVX2 or AES-NI) and
//!   ChaCha20-Poly1305 (AVX-512 or AVX2) on x86_64 where the CPU has them,
//!   [`backend::Portable`] (RustCrypto) otherwise.
//!
//! Features: `std` implements `std::error::Error`; `defmt` derives `defmt::Format`, for
//! firmware. `defmt` names its interned strings with JSON, which a shared library's export
//! list cannot carry: don't enable it in a build that links the C ABI's `cdylib` (as
//! `cargo build --workspace --all-features` would).
#![no_std]
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::undocumented_unsafe_blocks
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backend;

/// Declares modules that neither use `unsafe` nor may allow it: every module but `backend`,
/// whose instruction-set code needs it.
macro_rules! safe_modules {
    ($($vis:vis mod $name:ident;)*) => {
        $(#[forbid(unsafe_code)] $vis mod $name;)*
    };
}

safe_modules! {
    mod counters;
    pub mod engine;
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
}

pub use counters::Counters;
pub use error::Error;
pub use flow::{Batch, DEFAULT_MAX_GSO_SEGMENTS, Datagram, FlowConfig, Outcome, PacketInfo, Usage};
pub use flow_table::{CountedFlow, FlowTable, ROUTE_AHEAD};
pub use gso::{GsoLayout, gro_batch, gro_datagrams};
pub use keys::{KeyMaterial, TrafficSecret};
pub use rx::RxFlow;
pub use suite::{CipherSuite, Limits};
pub use tx::TxFlow;

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
