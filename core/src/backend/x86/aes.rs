//! AES key expansion and single blocks with AES-NI (FIPS 197 §5.2, Intel's AES-NI white paper).

use core::arch::x86_64::*;

use zeroize::Zeroize;

/// Round keys of AES-128 (11 used) or AES-256 (15), stored as bytes so that they can be wiped.
#[derive(Clone)]
pub(super) struct RoundKeys {
    keys: [[u8; 16]; 15],
    rounds: usize,
}

impl RoundKeys {
    /// Expands a 16- or 32-byte key; `None` for any other length.
    #[target_feature(enable = "aes,sse2")]
    pub(super) fn expand(key: &[u8]) -> Option<RoundKeys> {
        let mut expanded = [_mm_setzero_si128(); 15];
        let rounds = match key.len() {
            16 => {
                expand128(load(key.first_chunk()?), &mut expanded);
                10
            }
            32 => {
                let (low, high) = key.split_first_chunk::<16>()?;
                expand256(load(low), load(high.first_chunk()?), &mut expanded);
                14
            }
            _ => return None,
        };
        let mut keys = [[0; 16]; 15];
        for (bytes, key) in keys.iter_mut().zip(&expanded) {
            store(bytes, *key);
        }
        Some(RoundKeys { keys, rounds })
    }

    /// Rounds: 10 for AES-128, 14 for AES-256.
    pub(super) fn rounds(&self) -> usize {
        self.rounds
    }

    /// The round keys' bytes, key `i` at `16 * i` (those past `rounds` zero).
    pub(super) fn bytes(&self) -> &[[u8; 16]; 15] {
        &self.keys
    }

    /// Round key `i` (0 ..= rounds).
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn get(&self, i: usize) -> __m128i {
        // Clamped, not indexed as is: the same for every valid `i`, and no panic path for the
        // kernel object.
        load(&self.keys[i.min(14)])
    }

    /// Encrypts one block.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    pub(super) fn encrypt(&self, block: __m128i) -> __m128i {
        match self.rounds {
            10 => self.encrypt_rounds::<10>(block),
            _ => self.encrypt_rounds::<14>(block),
        }
    }

    /// Encrypts `N` blocks, their rounds interleaved: one block's rounds are a dependent
    /// chain that leaves the AES units idle most of the time; `N` chains fill them.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    pub(super) fn encrypt_blocks<const N: usize>(&self, blocks: [__m128i; N]) -> [__m128i; N] {
        match self.rounds {
            10 => self.encrypt_blocks_rounds::<N, 10>(blocks),
            _ => self.encrypt_blocks_rounds::<N, 14>(blocks),
        }
    }

    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn encrypt_blocks_rounds<const N: usize, const ROUNDS: usize>(
        &self,
        blocks: [__m128i; N],
    ) -> [__m128i; N] {
        let first = self.get(0);
        let mut states = blocks.map(|block| _mm_xor_si128(block, first));
        for i in 1..ROUNDS {
            let key = self.get(i);
            for state in &mut states {
                *state = _mm_aesenc_si128(*state, key);
            }
        }
        let last = self.get(ROUNDS);
        states.map(|state| _mm_aesenclast_si128(state, last))
    }

    /// Encrypts one block with a round count known at compile time, so the rounds unroll.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn encrypt_rounds<const ROUNDS: usize>(&self, block: __m128i) -> __m128i {
        let mut state = _mm_xor_si128(block, self.get(0));
        for i in 1..ROUNDS {
            state = _mm_aesenc_si128(state, self.get(i));
        }
        _mm_aesenclast_si128(state, self.get(ROUNDS))
    }
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.keys.zeroize();
    }
}

/// Loads a block.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// Up to 16 bytes into a block, zero above them (see [`partial_value`](super::partial_value)). A longer slice
/// gives its first 16.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load_partial(bytes: &[u8]) -> __m128i {
    let value = super::partial_value(bytes);
    _mm_set_epi64x((value >> 64) as i64, value as i64)
}

/// Stores the first `n` (below 16) bytes of `block` at `dst` with scalar stores: no trip
/// through a buffer on the stack, and no call to `memcpy`.
///
/// # Safety
/// `dst` must be valid for writes of `n` bytes.
#[inline]
#[target_feature(enable = "sse2,sse4.1")]
pub(super) unsafe fn store_partial(dst: *mut u8, n: usize, block: __m128i) {
    let mut word = _mm_cvtsi128_si64(block) as u64;
    let mut at = 0;
    // SAFETY: each store ends at or below `n`, inside what the caller promises.
    unsafe {
        if n >= 8 {
            dst.cast::<u64>().write_unaligned(word.to_le());
            word = _mm_extract_epi64(block, 1) as u64;
            at = 8;
        }
        if n & 4 != 0 {
            dst.add(at)
                .cast::<u32>()
                .write_unaligned((word as u32).to_le());
            word >>= 32;
            at += 4;
        }
        if n & 2 != 0 {
            dst.add(at)
                .cast::<u16>()
                .write_unaligned((word as u16).to_le());
            word >>= 16;
            at += 2;
        }
        if n & 1 != 0 {
            dst.add(at).write(word as u8);
        }
    }
}

/// Stores a block into 16 bytes.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn store(bytes: &mut [u8; 16], block: __m128i) {
    // SAFETY: `bytes` is 16 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), block) }
}

/// `key` with each 32-bit word XORed with all the words below it, then with `t`.
#[target_feature(enable = "sse2")]
fn mix(mut key: __m128i, t: __m128i) -> __m128i {
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    _mm_xor_si128(key, t)
}

#[target_feature(enable = "aes,sse2")]
fn expand128(key: __m128i, out: &mut [__m128i; 15]) {
    macro_rules! round {
        ($i:expr, $rcon:expr) => {
            out[$i] = mix(
                out[$i - 1],
                _mm_shuffle_epi32(_mm_aeskeygenassist_si128(out[$i - 1], $rcon), 0xff),
            );
        };
    }
    out[0] = key;
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
}

#[target_feature(enable = "aes,sse2")]
fn expand256(low: __m128i, high: __m128i, out: &mut [__m128i; 15]) {
    // Even round keys take RotWord+SubWord+Rcon of the previous odd one; odd round keys take
    // SubWord (no rotation, no Rcon) of the previous even one.
    macro_rules! even {
        ($i:expr, $rcon:expr) => {
            out[$i] = mix(
                out[$i - 2],
                _mm_shuffle_epi32(_mm_aeskeygenassist_si128(out[$i - 1], $rcon), 0xff),
            );
        };
    }
    macro_rules! odd {
        ($i:expr) => {
            out[$i] = mix(
                out[$i - 2],
                _mm_shuffle_epi32(_mm_aeskeygenassist_si128(out[$i - 1], 0), 0xaa),
            );
        };
    }
    out[0] = low;
    out[1] = high;
    even!(2, 0x01);
    odd!(3);
    even!(4, 0x02);
    odd!(5);
    even!(6, 0x04);
    odd!(7);
    even!(8, 0x08);
    odd!(9);
    even!(10, 0x10);
    odd!(11);
    even!(12, 0x20);
    odd!(13);
    even!(14, 0x40);
}
