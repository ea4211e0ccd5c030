//! Where the cipher work happens, behind small traits so that other implementations plug in:
//! a fused SIMD AES-GCM, a NIC's crypto engine, RISC-V scalar-crypto instructions.
//!
//! The seam is a *streaming* AEAD. Copy-fused scatter-gather protection feeds a packet to the
//! cipher in pieces whose boundaries fall wherever the caller's segments do, reading each byte
//! once and writing it once, with no bounce buffer. Any backend that can encrypt a piece,
//! remember a partial block, and finish with a tag fits.
//!
//! [`Portable`] is built on RustCrypto's `aes`, `ctr`, `ghash`, `chacha20` and `poly1305`,
//! which pick AES-NI/CLMUL or constant-time software at run time.

mod portable;

pub use portable::{Portable, PortableHeaderKey, PortablePacketKey, PortableStream};

use crate::{CipherSuite, Error};

/// Length of the AEAD tag of every QUIC v1 suite.
pub const TAG_LEN: usize = 16;
/// Length of the header-protection sample (RFC 9001 §5.4.2).
pub const SAMPLE_LEN: usize = 16;
/// Length of a header-protection mask the core uses: one byte for the first byte, four for the
/// packet number.
pub const MASK_LEN: usize = 5;

/// Which way a stream transforms its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Plaintext in, ciphertext out: the tag covers the output.
    Seal,
    /// Ciphertext in, plaintext out: the tag covers the input.
    Open,
}

/// A family of cipher implementations.
pub trait Backend {
    /// One key generation's AEAD key.
    type PacketKey: PacketKey;
    /// The header-protection key.
    type HeaderKey: HeaderKey;

    /// Prepares an AEAD key of `suite` from its raw bytes.
    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<Self::PacketKey, Error>;

    /// Prepares a header-protection key of `suite` from its raw bytes.
    fn header_key(suite: CipherSuite, key: &[u8]) -> Result<Self::HeaderKey, Error>;
}

/// An AEAD key that protects one packet at a time as a stream.
///
/// Implementations wipe their key schedule when dropped.
pub trait PacketKey {
    /// The state of one packet's protection.
    type Stream<'k>: AeadStream
    where
        Self: 'k;

    /// Starts protecting (or opening) one packet with `nonce`, authenticating `aad`.
    fn begin(&self, nonce: &[u8; 12], aad: &[u8], direction: Direction) -> Self::Stream<'_>;
}

/// One packet's AEAD in progress. Pieces may have any length, including 0.
pub trait AeadStream {
    /// Transforms `input` into `output`; the two have the same length.
    fn update(&mut self, input: &[u8], output: &mut [u8]);

    /// Transforms `data` where it lies.
    fn update_in_place(&mut self, data: &mut [u8]);

    /// Ends the packet and returns the tag: to append when sealing, to compare (in constant
    /// time) when opening.
    fn finish(self) -> [u8; TAG_LEN];
}

/// A header-protection key (RFC 9001 §5.4).
pub trait HeaderKey {
    /// The mask for `sample`; only its first [`MASK_LEN`] bytes are used.
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN];
}
