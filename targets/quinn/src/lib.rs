//! quinn with its 1-RTT packet protection done by quicseal (issue 11,
//! docs/quinn-offload-design.md): [`SealServerConfig`] / [`SealClientConfig`] give quinn
//! keys that leave 1-RTT packets in the clear, and [`SealedSocket`], quicseal's userspace
//! GSO/GRO socket, seals and opens them with the connection's flows from the [`Registry`]
//! both share. See `examples/echo.rs` for an endpoint a quinn user can copy.
//!
//! The keys: rustls, which quinn uses for
//! its handshake, hands every QUIC key it derives to the `quic::Algorithm` of the negotiated
//! cipher suite. [`provider`] is ring's rustls provider with each TLS 1.3 suite's QUIC
//! algorithm replaced by a [`CaptureAlgorithm`], which passes everything on to ring unchanged
//! and, on a thread where [`capture`] is running, also keeps a copy of the key bytes. The
//! session layer arms the capture around the rustls calls that yield 1-RTT keys (they are
//! synchronous, with no callback into the stack), and [`OneRttKeys::from_captures`] and
//! [`next_generation`] turn what was captured into quicseal [`quicseal::KeyMaterial`].
//!
//! That is rustls's supported hook: no key log, no secrets read out of rustls's internals.
//! What it relies on is the order rustls calls the algorithm in (header protection key then
//! packet key, local direction then remote; an update's two packet keys local then remote);
//! [`OneRttKeys::from_captures`] checks the pattern every time and refuses any other, and
//! the tests pin it against RFC 9001's vectors and a real handshake.

#![forbid(unsafe_code)]

mod capture;
mod registry;
mod replay;
mod session;
mod socket;

pub mod interop;

pub use capture::{CaptureAlgorithm, Captured, OneRttKeys, capture, next_generation, provider};
pub use registry::{ROUTES_PER_FLOW, Registry};
pub use session::{SealClientConfig, SealServerConfig};
pub use socket::SealedSocket;
