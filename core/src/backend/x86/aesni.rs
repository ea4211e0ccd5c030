//! The 128-bit bulk loop: AES-NI and PCLMULQDQ, 8 blocks per iteration, the GHASH of the 8
//! ciphertext blocks reduced once, with Karatsuba's three multiplications a block. For CPUs
//! without VAES: Zen 2 and earlier, Intel's before Ice Lake (Cascade Lake servers among them).

use core::arch::x86_64::*;

use super::aes::{load_partial, store_partial};
use super::ghash::{Products, byte_swap_mask};
use super::{Capture, Gcm, bytes_at, keep_first};

/// Blocks per iteration.
const BLOCKS: usize = 8;

/// Transforms `len` bytes from `src` to `dst`, counting blocks from `gcm.counter` and folding
/// the ciphertext into `gcm.hash`. With `capture`, the call starts the payload and covers
/// the header-protection sample at that offset: keep what [`Capture::keep`] makes of it in
/// `gcm.sample` on the way.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
/// disjoint; `len` a multiple of 16 unless this is the payload's end; the CPU must have
/// AES-NI, PCLMULQDQ and SSE4.1.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
pub(super) unsafe fn crypt(
    gcm: &mut Gcm<'_>,
    src: *const u8,
    dst: *mut u8,
    len: usize,
    capture: Option<Capture<'_>>,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        // The counters this call makes: whole iterations, then the tail's blocks.
        let byte_counters = gcm.byte_counters(len.div_ceil(16));
        match (gcm.key.round_keys.rounds(), byte_counters) {
            (10, true) => crypt_rounds::<10, true>(gcm, src, dst, len, capture),
            (10, false) => crypt_rounds::<10, false>(gcm, src, dst, len, capture),
            (_, true) => crypt_rounds::<14, true>(gcm, src, dst, len, capture),
            (_, false) => crypt_rounds::<14, false>(gcm, src, dst, len, capture),
        }
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_rounds<const ROUNDS: usize, const BYTE_COUNTERS: bool>(
    gcm: &mut Gcm<'_>,
    src: *const u8,
    dst: *mut u8,
    len: usize,
    capture: Option<Capture<'_>>,
) {
    // Locals, not fields: stores through `dst` could alias `gcm` as far as the compiler
    // knows, and would force the hash and the counter through memory on every iteration.
    let seal = gcm.seal;
    let mut hash = gcm.hash;
    let mut counter = gcm.counter;
    let mut sample = None;
    let swap = byte_swap_mask();
    let keys = &gcm.key.round_keys;
    let round_keys: [__m128i; 15] = core::array::from_fn(|i| {
        if i <= ROUNDS {
            keys.get(i)
        } else {
            _mm_setzero_si128()
        }
    });
    let encrypt = |mut block: __m128i| {
        block = _mm_xor_si128(block, round_keys[0]);
        for key in &round_keys[1..ROUNDS] {
            block = _mm_aesenc_si128(block, *key);
        }
        _mm_aesenclast_si128(block, round_keys[ROUNDS])
    };
    let powers = &gcm.key.powers;

    let mut done = 0;
    // Whole iterations; a shorter payload skips their set-up.
    if len >= 16 * BLOCKS {
        // The powers H^8 .. H^1 and their folded halves, for Karatsuba.
        let wide_powers: [(__m128i, __m128i); BLOCKS] = core::array::from_fn(|i| {
            let power = powers.power(BLOCKS - i);
            (power, _mm_xor_si128(power, _mm_shuffle_epi32(power, 0x4e)))
        });
        // Counter blocks in byte order, moved on by adding to their last byte (see avx512).
        let mut counters = gcm.counter_block(counter);
        let step = |n: i32| _mm_set_epi32(n << 24, 0, 0, 0);
        while len - done >= 16 * BLOCKS {
            let mut blocks = [_mm_setzero_si128(); BLOCKS];
            for (i, block) in blocks.iter_mut().enumerate() {
                let counter_block = if BYTE_COUNTERS {
                    _mm_add_epi32(counters, step(i as i32))
                } else {
                    gcm.counter_block(counter.wrapping_add(i as u32))
                };
                *block = _mm_xor_si128(counter_block, round_keys[0]);
            }
            if BYTE_COUNTERS {
                counters = _mm_add_epi32(counters, step(BLOCKS as i32));
            }
            for key in &round_keys[1..ROUNDS] {
                for block in &mut blocks {
                    *block = _mm_aesenc_si128(*block, *key);
                }
            }
            let mut products = Karatsuba::zero();
            let mut previous = _mm_setzero_si128();
            for (i, block) in blocks.iter().enumerate() {
                let at = done + 16 * i;
                // SAFETY: `at + 16 <= len`: inside both ranges. Each block is read before it is
                // written, so in place works.
                let (input, output) = unsafe {
                    let input = _mm_loadu_si128(src.add(at).cast());
                    let output =
                        _mm_xor_si128(input, _mm_aesenclast_si128(*block, round_keys[ROUNDS]));
                    _mm_storeu_si128(dst.add(at).cast(), output);
                    (input, output)
                };
                if let (16, Some(capture)) = (at, capture) {
                    sample = bytes_at(previous, output, capture.offset).map(|s| capture.keep(s));
                }
                previous = output;
                let mut text = _mm_shuffle_epi8(if seal { output } else { input }, swap);
                if i == 0 {
                    text = _mm_xor_si128(text, hash);
                }
                let (power, folded) = wide_powers[i];
                products.add(text, power, folded);
            }
            hash = products.reduce();
            counter = counter.wrapping_add(BLOCKS as u32);
            done += 16 * BLOCKS;
        }
    }

    // Fewer than 8 blocks, the last maybe partial: whole blocks straight from and to the
    // payload, a partial one with scalar loads and stores (see `load_partial`).
    let rest = len - done;
    if rest > 0 {
        let blocks = rest.div_ceil(16);
        let mut products = Products::zero();
        let mut previous = _mm_setzero_si128();
        for i in 0..blocks {
            let at = done + 16 * i;
            let n = (len - at).min(16);
            // SAFETY: `at + n <= len`: inside the source range, read before written.
            let input = unsafe {
                if n == 16 {
                    _mm_loadu_si128(src.add(at).cast())
                } else {
                    load_partial(core::slice::from_raw_parts(src.add(at), n))
                }
            };
            let keystream = encrypt(gcm.counter_block(counter.wrapping_add(i as u32)));
            let output = _mm_xor_si128(input, keystream);
            // SAFETY: as above, inside the destination range.
            unsafe {
                if n == 16 {
                    _mm_storeu_si128(dst.add(at).cast(), output);
                } else {
                    store_partial(dst.add(at), n, output);
                }
            }
            match (at, capture) {
                (0, Some(capture)) if capture.offset == 0 => sample = Some(capture.keep(output)),
                (16, Some(capture)) if sample.is_none() => {
                    sample = bytes_at(previous, output, capture.offset).map(|s| capture.keep(s));
                }
                _ => {}
            }
            previous = output;
            // The hash takes the ciphertext's bytes only: zeros above them.
            let text = if seal {
                // SAFETY: `keep_first` points at 32 readable bytes.
                _mm_and_si128(output, unsafe { _mm_loadu_si128(keep_first(n).cast()) })
            } else {
                input
            };
            let mut text = _mm_shuffle_epi8(text, swap);
            if i == 0 {
                text = _mm_xor_si128(text, hash);
            }
            products.add(text, powers.power(blocks - i));
        }
        hash = products.reduce();
        counter = counter.wrapping_add(blocks as u32);
    }
    gcm.hash = hash;
    gcm.counter = counter;
    // Stored only where taken (see `avx512::crypt_rounds`).
    if let Some(sample) = sample {
        gcm.sample = Some(sample);
    }
}

/// Sums of products with Karatsuba's three multiplications a block instead of four. On Zen 3
/// a carry-less multiplication holds the pipes the AES rounds run on about twice as long as
/// a round, and the shuffle and XOR that fold a block's halves less than one. (On Intel
/// cores the multiplication has a port of its own; not measured here.)
#[derive(Clone, Copy)]
struct Karatsuba {
    low: __m128i,
    /// Sum of (a.lo ^ a.hi) * (b.lo ^ b.hi); the true middle is this ^ low ^ high.
    folded: __m128i,
    high: __m128i,
}

impl Karatsuba {
    #[inline]
    #[target_feature(enable = "sse2")]
    fn zero() -> Karatsuba {
        Karatsuba {
            low: _mm_setzero_si128(),
            folded: _mm_setzero_si128(),
            high: _mm_setzero_si128(),
        }
    }

    /// Adds the product of `a` and `b`; `b_folded` holds the XOR of `b`'s halves.
    #[inline]
    #[target_feature(enable = "sse2,pclmulqdq")]
    fn add(&mut self, a: __m128i, b: __m128i, b_folded: __m128i) {
        let a_folded = _mm_xor_si128(a, _mm_shuffle_epi32(a, 0x4e));
        self.low = _mm_xor_si128(self.low, _mm_clmulepi64_si128(a, b, 0x00));
        self.folded = _mm_xor_si128(self.folded, _mm_clmulepi64_si128(a_folded, b_folded, 0x00));
        self.high = _mm_xor_si128(self.high, _mm_clmulepi64_si128(a, b, 0x11));
    }

    #[inline]
    #[target_feature(enable = "sse2,pclmulqdq")]
    fn reduce(self) -> __m128i {
        Products {
            low: self.low,
            middle: _mm_xor_si128(_mm_xor_si128(self.folded, self.low), self.high),
            high: self.high,
        }
        .reduce()
    }
}
