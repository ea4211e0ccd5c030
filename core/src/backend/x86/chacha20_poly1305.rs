//! ChaCha20-Poly1305 (RFC 8439 §2.8) for x86_64 with AVX-512: the keystream 16 blocks at a
//! time on the vector units, Poly1305 on the integer units, one pass over the payload.

use zeroize::Zeroizing;

use super::chacha20::{self, ChaChaState};
use super::poly1305::Poly1305;
use super::{Width, walk};
use crate::Error;
use crate::backend::{HeaderKey, NONCE_LEN, Payload, Sealed, TAG_LEN};

/// Bytes of one ChaCha20 block.
const BLOCK: usize = 64;

/// A ChaCha20-Poly1305 key: the raw key is all the state there is (the Poly1305 key is new
/// for every packet).
#[derive(Clone)]
pub(in crate::backend) struct ChaCha20Poly1305Key {
    key: Zeroizing<[u8; 32]>,
}

impl ChaCha20Poly1305Key {
    /// Wraps a 32-byte key; fails on a CPU without AVX-512.
    pub(in crate::backend) fn new(key: &[u8]) -> Result<ChaCha20Poly1305Key, Error> {
        if !Width::Avx512.available() {
            return Err(Error::InvalidConfig);
        }
        let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidKeyLength)?;
        Ok(ChaCha20Poly1305Key {
            key: Zeroizing::new(key),
        })
    }

    /// Encrypts `payload`; returns the tag and `header_key`'s mask of the sample at payload
    /// offset `sample_at`.
    pub(in crate::backend) fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        // SAFETY: the key exists, so the CPU has AVX-512.
        let tag = unsafe { self.run(nonce, aad, &mut payload, true) };
        Sealed {
            tag,
            mask: header_key.mask(&payload.sample(sample_at, &tag)),
        }
    }

    /// Decrypts `payload` and returns the tag its ciphertext should carry.
    pub(in crate::backend) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        // SAFETY: as for `seal`.
        unsafe { self.run(nonce, aad, &mut payload, false) }
    }

    /// Two passes over the payload, each a simple loop: the cipher (16 blocks at a time on
    /// the vector units) and Poly1305 over the ciphertext (on the integer units), the
    /// ciphertext read back from the cache when sealing. The one-time key's block is issued
    /// first, so that its rounds overlap the cipher's pass. Opening in place must hash the
    /// ciphertext before it is overwritten, so there the hash goes first.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn run(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
        seal: bool,
    ) -> [u8; TAG_LEN] {
        let state = ChaChaState::new(&self.key, nonce);
        // Block 0's first 32 bytes are the one-time Poly1305 key; the text starts at block 1.
        let mut poly = {
            let block0 = Zeroizing::new(chacha20::block(&state, 0));
            let key: Zeroizing<[u8; 32]> = Zeroizing::new(core::array::from_fn(|i| block0[i]));
            Poly1305::new(&key)
        };
        let hash_first = !seal && matches!(payload, Payload::InPlace(_));
        if hash_first {
            hash_text(&mut poly, aad, payload, false);
        }
        let mut cipher = Cipher {
            state,
            counter: 1,
            keystream: Zeroizing::new([0; BLOCK]),
            used: BLOCK,
            remaining: payload.len(),
        };
        // SAFETY: `walk` hands over ranges valid for `update`, the same or disjoint; the key
        // exists, so the CPU has AVX-512.
        walk(payload, |src, dst, len| unsafe {
            cipher.update(src, dst, len)
        });
        if !hash_first {
            hash_text(&mut poly, aad, payload, seal);
        }
        let mut lengths = [0; 16];
        lengths[..8].copy_from_slice(&(aad.len() as u64).to_le_bytes());
        lengths[8..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        poly.finish(&lengths)
    }
}

/// Hashes the AAD and the ciphertext, each padded: the destination's bytes once sealed, the
/// source's when opening.
fn hash_text(poly: &mut Poly1305, aad: &[u8], payload: &mut Payload<'_, '_, '_, '_>, sealed: bool) {
    poly.absorb(aad);
    poly.pad();
    match payload {
        Payload::InPlace(data) => poly.absorb(data),
        Payload::Copy {
            src,
            src_at,
            dst,
            dst_at,
            len,
        } => {
            let walked = if sealed {
                dst.for_each_chunk_mut(*dst_at, *len, |chunk| poly.absorb(chunk))
            } else {
                src.for_each_chunk(*src_at, *len, |chunk| poly.absorb(chunk))
            };
            debug_assert!(walked, "the core checked both buffers' lengths");
        }
    }
    poly.pad();
}

/// One packet's keystream in progress, walked in the pieces the payload's segments make.
struct Cipher {
    state: ChaChaState,
    /// The block counter of the next keystream block.
    counter: u32,
    /// A keystream block that straddles two pieces of the payload ...
    keystream: Zeroizing<[u8; BLOCK]>,
    /// ... and how much of it is used; `BLOCK` when none is open.
    used: usize,
    /// Payload bytes not yet seen.
    remaining: usize,
}

impl Cipher {
    /// Transforms `len` bytes from `src` to `dst`.
    ///
    /// # Safety
    /// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
    /// disjoint; `len` is at most `self.remaining`; the CPU has AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn update(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        debug_assert!(len <= self.remaining);
        let mut done = 0;
        if self.used < BLOCK {
            // SAFETY: forwarded.
            done = unsafe { self.continue_block(src, dst, len) };
        }
        self.remaining -= len;
        let rest = len - done;
        // Only the payload's last piece may end inside a block.
        let bulk = if self.remaining == 0 {
            rest
        } else {
            rest - rest % BLOCK
        };
        if bulk > 0 {
            // SAFETY: `done + bulk <= len`: inside the caller's ranges.
            self.counter = unsafe {
                chacha20::xor(
                    &self.state,
                    self.counter,
                    src.add(done),
                    dst.add(done),
                    bulk,
                )
            };
            done += bulk;
        }
        if done < len {
            *self.keystream = chacha20::block(&self.state, self.counter);
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
            // SAFETY: `done < len`, inside the caller's ranges.
            let more = unsafe { self.continue_block(src.add(done), dst.add(done), len - done) };
            debug_assert_eq!(done + more, len);
        }
    }

    /// Continues the open straddling block with up to `len` bytes; returns how many it took.
    ///
    /// # Safety
    /// As for [`update`](Self::update).
    unsafe fn continue_block(&mut self, src: *const u8, dst: *mut u8, len: usize) -> usize {
        let take = (BLOCK - self.used).min(len);
        for (i, key) in self.keystream[self.used..self.used + take]
            .iter()
            .enumerate()
        {
            // SAFETY: `i < take <= len`; each byte is read before it is written.
            unsafe { dst.add(i).write(src.add(i).read() ^ key) };
        }
        self.used += take;
        take
    }
}
