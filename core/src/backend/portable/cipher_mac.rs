//! The shape both AEADs share: a stream cipher, and a one-time MAC over the ciphertext.

use aes::cipher::StreamCipher;
use universal_hash::UniversalHash;
use universal_hash::consts::U16;

use super::Direction;
use super::mac::MacStream;

/// Encrypts (or decrypts) and MACs the ciphertext side of each piece: the output when sealing,
/// the input when opening.
pub(super) struct CipherMac<C, U> {
    cipher: C,
    mac: MacStream<U>,
    direction: Direction,
}

impl<C: StreamCipher, U: UniversalHash<BlockSize = U16>> CipherMac<C, U> {
    /// Starts the text section; `mac` has already absorbed (and ended) the AAD section.
    pub(super) fn new(cipher: C, mac: MacStream<U>, direction: Direction) -> Self {
        CipherMac {
            cipher,
            mac,
            direction,
        }
    }

    #[inline(always)]
    pub(super) fn update(&mut self, input: &[u8], output: &mut [u8]) {
        match self.direction {
            Direction::Seal => {
                self.cipher.apply_keystream_b2b(input, output);
                self.mac.absorb(output);
            }
            Direction::Open => {
                self.mac.absorb(input);
                self.cipher.apply_keystream_b2b(input, output);
            }
        }
    }

    #[inline(always)]
    pub(super) fn update_in_place(&mut self, data: &mut [u8]) {
        match self.direction {
            Direction::Seal => {
                self.cipher.apply_keystream(data);
                self.mac.absorb(data);
            }
            Direction::Open => {
                self.mac.absorb(data);
                self.cipher.apply_keystream(data);
            }
        }
    }

    /// Ends the text section: the MAC, ready for the lengths block, and the text's length.
    #[inline(always)]
    pub(super) fn end(mut self) -> (MacStream<U>, u64) {
        let text_len = self.mac.end_section();
        (self.mac, text_len)
    }
}
