//! The portable backend: RustCrypto primitives composed into streaming AEADs, which walk a
//! packet's payload in whatever pieces its scatter-gather segments make.

#[cfg(feature = "portable-aes")]
mod aes_gcm;
mod chacha20_poly1305;
mod cipher_mac;
mod header;
mod mac;

#[cfg(all(
    feature = "portable-aes",
    target_arch = "riscv32",
    target_feature = "zkne",
    target_feature = "zbkc",
    target_feature = "zbkb"
))]
use super::riscv::{Aes128, Aes256, GHash};
/// What the AES suites run on: RustCrypto's AES and GHASH, or on a RISC-V core with the
/// scalar-crypto extensions (a build with target features `zkne`, `zbkc` and `zbkb`) the
/// core's own on them. The AES-GCM and the header protection around them are the same.
#[cfg(all(
    feature = "portable-aes",
    not(all(
        target_arch = "riscv32",
        target_feature = "zkne",
        target_feature = "zbkc",
        target_feature = "zbkb"
    ))
))]
use {
    aes::{Aes128, Aes256},
    ghash::GHash,
};

use super::{Backend, HeaderKey, NONCE_LEN, PacketKey, Payload, Sealed, TAG_LEN};
use crate::{CipherSuite, Error};
#[cfg(feature = "portable-aes")]
use aes_gcm::{AesGcmKey, AesGcmStream};
use chacha20_poly1305::{ChaCha20Poly1305Key, ChaCha20Poly1305Stream};

pub use header::PortableHeaderKey;

/// RustCrypto-based ciphers: AES-NI/CLMUL where the CPU has them (detected at run time),
/// constant-time software elsewhere. Without the `portable-aes` feature (a default one) it
/// has ChaCha20-Poly1305 only and refuses the AES suites ([`Error::UnknownSuite`]): the
/// kernel object leaves RustCrypto's AES out, whose software backend keeps panic paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl Backend for Portable {
    type PacketKey = PortablePacketKey;
    type HeaderKey = PortableHeaderKey;

    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<PortablePacketKey, Error> {
        Ok(match suite {
            #[cfg(feature = "portable-aes")]
            CipherSuite::Aes128GcmSha256 => PortablePacketKey::Aes128Gcm(AesGcmKey::new(key)?),
            #[cfg(feature = "portable-aes")]
            CipherSuite::Aes256GcmSha384 => PortablePacketKey::Aes256Gcm(AesGcmKey::new(key)?),
            CipherSuite::ChaCha20Poly1305Sha256 => {
                PortablePacketKey::ChaCha20Poly1305(ChaCha20Poly1305Key::new(key)?)
            }
            #[cfg(not(feature = "portable-aes"))]
            _ => return Err(Error::UnknownSuite),
        })
    }

    fn header_key(suite: CipherSuite, key: &[u8]) -> Result<PortableHeaderKey, Error> {
        PortableHeaderKey::new(suite, key)
    }
}

/// An AEAD key of one of the three suites.
#[derive(Clone)]
pub enum PortablePacketKey {
    /// AEAD_AES_128_GCM.
    #[cfg(feature = "portable-aes")]
    Aes128Gcm(AesGcmKey<Aes128>),
    /// AEAD_AES_256_GCM.
    #[cfg(feature = "portable-aes")]
    Aes256Gcm(AesGcmKey<Aes256>),
    /// AEAD_CHACHA20_POLY1305.
    ChaCha20Poly1305(ChaCha20Poly1305Key),
}

impl core::fmt::Debug for PortablePacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            #[cfg(feature = "portable-aes")]
            PortablePacketKey::Aes128Gcm(_) => "PortablePacketKey::Aes128Gcm",
            #[cfg(feature = "portable-aes")]
            PortablePacketKey::Aes256Gcm(_) => "PortablePacketKey::Aes256Gcm",
            PortablePacketKey::ChaCha20Poly1305(_) => "PortablePacketKey::ChaCha20Poly1305",
        })
    }
}

/// Which way a stream transforms its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Plaintext in, ciphertext out: the tag covers the output.
    Seal,
    /// Ciphertext in, plaintext out: the tag covers the input.
    Open,
}

/// One packet's protection in progress under a [`PortablePacketKey`].
// It lives on the stack for one packet; boxing the large variants would need a heap.
#[allow(clippy::large_enum_variant)]
enum PortableStream<'k> {
    /// AEAD_AES_128_GCM.
    #[cfg(feature = "portable-aes")]
    Aes128Gcm(AesGcmStream<'k, Aes128>),
    /// AEAD_AES_256_GCM.
    #[cfg(feature = "portable-aes")]
    Aes256Gcm(AesGcmStream<'k, Aes256>),
    /// AEAD_CHACHA20_POLY1305.
    ChaCha20Poly1305(ChaCha20Poly1305Stream),
    /// Never made (`Infallible`): gives the key's lifetime a use in builds without the AES
    /// variants.
    #[cfg(not(feature = "portable-aes"))]
    #[allow(dead_code)]
    Borrowed(core::convert::Infallible, core::marker::PhantomData<&'k ()>),
}

impl PortablePacketKey {
    #[inline(always)]
    fn begin(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        direction: Direction,
    ) -> PortableStream<'_> {
        match self {
            #[cfg(feature = "portable-aes")]
            PortablePacketKey::Aes128Gcm(k) => {
                PortableStream::Aes128Gcm(k.begin(nonce, aad, direction))
            }
            #[cfg(feature = "portable-aes")]
            PortablePacketKey::Aes256Gcm(k) => {
                PortableStream::Aes256Gcm(k.begin(nonce, aad, direction))
            }
            PortablePacketKey::ChaCha20Poly1305(k) => {
                PortableStream::ChaCha20Poly1305(k.begin(nonce, aad, direction))
            }
        }
    }

    /// Streams `payload` through the AEAD in the pieces its segments make.
    #[inline(always)]
    fn run(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
        direction: Direction,
    ) -> [u8; TAG_LEN] {
        let mut stream = self.begin(nonce, aad, direction);
        match payload {
            Payload::Copy {
                src,
                src_at,
                dst,
                dst_at,
                len,
            } => {
                let walked = dst.zip_from(*dst_at, src, *src_at, *len, |i, o| stream.update(i, o));
                debug_assert!(walked, "the core checked both buffers' lengths");
            }
            Payload::InPlace(data) => stream.update_in_place(data),
        }
        stream.finish()
    }
}

impl PacketKey for PortablePacketKey {
    type BatchTables = ();

    fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let tag = self.run(nonce, aad, &mut payload, Direction::Seal);
        let mask = header_key.mask(&payload.sample(sample_at, &tag));
        Sealed { tag, mask }
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        self.run(nonce, aad, &mut payload, Direction::Open)
    }
}

impl PortableStream<'_> {
    #[inline(always)]
    fn update(&mut self, input: &[u8], output: &mut [u8]) {
        match self {
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes128Gcm(s) => s.update(input, output),
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes256Gcm(s) => s.update(input, output),
            PortableStream::ChaCha20Poly1305(s) => s.update(input, output),
            #[cfg(not(feature = "portable-aes"))]
            PortableStream::Borrowed(never, _) => match *never {},
        }
    }

    #[inline(always)]
    fn update_in_place(&mut self, data: &mut [u8]) {
        match self {
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes128Gcm(s) => s.update_in_place(data),
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes256Gcm(s) => s.update_in_place(data),
            PortableStream::ChaCha20Poly1305(s) => s.update_in_place(data),
            #[cfg(not(feature = "portable-aes"))]
            PortableStream::Borrowed(never, _) => match *never {},
        }
    }

    #[inline(always)]
    fn finish(self) -> [u8; TAG_LEN] {
        match self {
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes128Gcm(s) => s.finish(),
            #[cfg(feature = "portable-aes")]
            PortableStream::Aes256Gcm(s) => s.finish(),
            PortableStream::ChaCha20Poly1305(s) => s.finish(),
            #[cfg(not(feature = "portable-aes"))]
            PortableStream::Borrowed(never, _) => match never {},
        }
    }
}
