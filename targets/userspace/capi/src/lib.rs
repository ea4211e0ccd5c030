//! C ABI for quicseal: lets C QUIC stacks (ngtcp2, msquic, picoquic users) seal GSO batches
//! and open GRO batches of 1-RTT packets with the allocation-free core.
//!
//! Built as `libquicseal.a` and `libquicseal.so`; the declarations are in
//! `include/quicseal.h`, generated from this crate by cbindgen (`tests/header.rs` checks that
//! the committed header is current). `docs/c-abi.md` is the guide.
//!
//! The boundary holds these rules, everywhere:
//!
//! - Handles (`quicseal_tx`, `quicseal_rx`) are opaque and owned by the caller between a
//!   `*_new_*` and a `*_free`; freeing wipes their keys (the core zeroizes on drop).
//! - Every buffer comes with an explicit length. A NULL pointer is accepted only with a zero
//!   length; otherwise it is `QUICSEAL_NULL_POINTER`. Buffers that are written must not
//!   overlap any other buffer of the call (`QUICSEAL_INVALID_ARGUMENT`).
//! - Every function returns a `quicseal_status` (or a value with a documented fallback) and
//!   never unwinds into C: each body runs under `catch_unwind`. A handle whose call panicked is
//!   poisoned, since its key and packet-number state may be half updated, and refuses every
//!   later call with `QUICSEAL_PANIC` (the core is not expected to panic at all).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// The exported names are C's: `quicseal_tx`, `QUICSEAL_OK`.
#![allow(non_camel_case_types)]

mod boundary;

// In this order in the header: constants and configuration, status codes, then the sending
// and the receiving direction.
mod config;
mod status;
mod types;

mod tx;

mod rx;

pub use config::*;
pub use rx::*;
pub use status::*;
pub use tx::*;
pub use types::*;

// docs/c-abi.md promises that a handle may move from one thread to another between calls:
// this stops compiling if a handle's state ever stops being `Send`. (Not `Sync`: one handle
// must never be used from two threads at once.)
const _: fn() = || {
    fn may_move_between_threads<T: Send>() {}
    may_move_between_threads::<quicseal_tx>();
    may_move_between_threads::<quicseal_rx>();
};
