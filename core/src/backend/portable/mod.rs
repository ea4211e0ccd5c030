//! The portable backend: RustCrypto primitives composed into streaming AEADs, which walk a
//! packet's payload in whatever pieces its scatter-gather segments make.

mod aes_gcm;
mod chacha20_poly1305;
mod cipher_mac;
mod header;
mod mac;

use aes::{Aes128, Aes256};

use super::{Backend, HeaderKey, NONCE_LEN, PacketKey, Payload, Sealed, TAG_LEN};
use crate::{CipherSuite, Error};
use aes_gcm::{AesGcmKey, AesGcmStream};
use chacha20_poly1305::{ChaCha20Poly1305Key, ChaCha20Poly1305Stream};

pub use header::PortableHeaderKey;

/// RustCrypto-based ciphers: AES-NI/CLMUL where the CPU has them (detected at run time),
/// constant-time software elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl Backend for Portable {
    type PacketKey = PortablePacketKey;
    type HeaderKey = PortableHeaderKey;

    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<PortablePacketKey, Error> {
        Ok(match suite {
            CipherSuite::Aes128GcmSha256 => PortablePacketKey::Aes128Gcm(AesGcmKey::new(key)?),
            CipherSuite::Aes256GcmSha384 => PortablePacketKey::Aes256Gcm(AesGcmKey::new(key)?),
            CipherSuite::ChaCha20Poly1305Sha256 => {
                PortablePacketKey::ChaCha20Poly1305(ChaCha20Poly1305Key::new(key)?)
            }
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
    Aes128Gcm(AesGcmKey<Aes128>),
    /// AEAD_AES_256_GCM.
    Aes256Gcm(AesGcmKey<Aes256>),
    /// AEAD_CHACHA20_POLY1305.
    ChaCha20Poly1305(ChaCha20Poly1305Key),
}

impl core::fmt::Debug for PortablePacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PortablePacketKey::Aes128Gcm(_) => "PortablePacketKey::Aes128Gcm",
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
    Aes128Gcm(AesGcmStream<'k, Aes128>),
    /// AEAD_AES_256_GCM.
    Aes256Gcm(AesGcmStream<'k, Aes256>),
    /// AEAD_CHACHA20_POLY1305.
    ChaCha20Poly1305(ChaCha20Poly1305Stream),
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
            PortablePacketKey::Aes128Gcm(k) => {
                PortableStream::Aes128Gcm(k.begin(nonce, aad, direction))
            }
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
            PortableStream::Aes128Gcm(s) => s.update(input, output),
            PortableStream::Aes256Gcm(s) => s.update(input, output),
            PortableStream::ChaCha20Poly1305(s) => s.update(input, output),
        }
    }

    #[inline(always)]
    fn update_in_place(&mut self, data: &mut [u8]) {
        match self {
            PortableStream::Aes128Gcm(s) => s.update_in_place(data),
            PortableStream::Aes256Gcm(s) => s.update_in_place(data),
            PortableStream::ChaCha20Poly1305(s) => s.update_in_place(data),
        }
    }

    #[inline(always)]
    fn finish(self) -> [u8; TAG_LEN] {
        match self {
            PortableStream::Aes128Gcm(s) => s.finish(),
            PortableStream::Aes256Gcm(s) => s.finish(),
            PortableStream::ChaCha20Poly1305(s) => s.finish(),
        }
    }
}
