//! ChaCha20-Poly1305 (RFC 8439 §2.8) as a stream: `chacha20` and `poly1305`.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use zeroize::{Zeroize, Zeroizing};

use super::Direction;
use super::cipher_mac::CipherMac;
use super::mac::MacStream;
use crate::Error;
use crate::backend::TAG_LEN;

/// A ChaCha20-Poly1305 key. ChaCha20 has no key schedule to keep: the raw key is all there is.
#[derive(Clone)]
pub struct ChaCha20Poly1305Key {
    key: Zeroizing<[u8; 32]>,
}

impl ChaCha20Poly1305Key {
    pub(super) fn new(key: &[u8]) -> Result<Self, Error> {
        let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidKeyLength)?;
        Ok(ChaCha20Poly1305Key {
            key: Zeroizing::new(key),
        })
    }

    #[inline(always)]
    pub(super) fn begin(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        direction: Direction,
    ) -> ChaCha20Poly1305Stream {
        let mut cipher = ChaCha20::new(&(*self.key).into(), nonce.into());
        // Block 0's first 32 bytes are the one-time Poly1305 key; the text starts at block 1.
        let mut block0 = [0u8; 64];
        // `try_`: block 0 of a fresh keystream cannot fail, and the panicking form would give
        // the kernel object a panic path.
        let _ = cipher.try_apply_keystream(&mut block0);
        let mut mac_key = [0u8; 32];
        if let Some(first) = block0.first_chunk::<32>() {
            mac_key = *first;
        }
        let mut mac = MacStream::new(Poly1305::new(&mac_key.into()));
        block0.zeroize();
        mac_key.zeroize();
        mac.absorb(aad);
        let aad_len = mac.end_section();
        ChaCha20Poly1305Stream {
            text: CipherMac::new(cipher, mac, direction),
            aad_len,
        }
    }
}

/// One packet's ChaCha20-Poly1305 in progress.
pub(super) struct ChaCha20Poly1305Stream {
    text: CipherMac<ChaCha20, Poly1305>,
    aad_len: u64,
}

impl ChaCha20Poly1305Stream {
    #[inline(always)]
    pub(super) fn update(&mut self, input: &[u8], output: &mut [u8]) {
        self.text.update(input, output);
    }

    #[inline(always)]
    pub(super) fn update_in_place(&mut self, data: &mut [u8]) {
        self.text.update_in_place(data);
    }

    #[inline(always)]
    pub(super) fn finish(self) -> [u8; TAG_LEN] {
        let (mac, text_len) = self.text.end();
        let mut lengths = [0; 16];
        lengths[..8].copy_from_slice(&self.aad_len.to_le_bytes());
        lengths[8..].copy_from_slice(&text_len.to_le_bytes());
        mac.finish(lengths)
    }
}
