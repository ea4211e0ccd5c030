//! The shape both AEADs share: a stream cipher, and a one-time MAC over the ciphertext.

use chacha20::cipher::{InOutBuf, StreamCipher};
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
                self.crypt(input, output);
                self.mac.absorb(output);
            }
            Direction::Open => {
                self.mac.absorb(input);
                self.crypt(input, output);
            }
        }
    }

    #[inline(always)]
    pub(super) fn update_in_place(&mut self, data: &mut [u8]) {
        match self.direction {
            Direction::Seal => {
                self.crypt_in_place(data);
                self.mac.absorb(data);
            }
            Direction::Open => {
                self.mac.absorb(data);
                self.crypt_in_place(data);
            }
        }
    }

    /// The keystream XORed from `input` into `output`. The `try_` forms: the panicking ones
    /// would give the kernel object a panic path for what cannot happen here (a packet
    /// reaching the end of the keystream, or pieces of unequal length); were it to, the
    /// output is zeroed, never left as cleartext.
    #[inline(always)]
    fn crypt(&mut self, input: &[u8], output: &mut [u8]) {
        let done = InOutBuf::new(input, output)
            .ok()
            .is_some_and(|buf| self.cipher.try_apply_keystream_inout(buf).is_ok());
        if !done {
            output.fill(0);
        }
    }

    /// [`crypt`](Self::crypt) in place.
    #[inline(always)]
    fn crypt_in_place(&mut self, data: &mut [u8]) {
        if self.cipher.try_apply_keystream(data).is_err() {
            data.fill(0);
        }
    }

    /// Ends the text section: the MAC, ready for the lengths block, and the text's length.
    #[inline(always)]
    pub(super) fn end(mut self) -> (MacStream<U>, u64) {
        let text_len = self.mac.end_section();
        (self.mac, text_len)
    }
}
