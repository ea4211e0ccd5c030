//! The 128-bit bulk loop: AES-NI and PCLMULQDQ, 8 blocks per iteration, the GHASH of the 8
//! ciphertext blocks reduced once.

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
        match gcm.key.round_keys.rounds() {
            10 => crypt_rounds::<10>(gcm, src, dst, len, capture),
            _ => crypt_rounds::<14>(gcm, src, dst, len, capture),
        }
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_rounds<const ROUNDS: usize>(
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
    while len - done >= 16 * BLOCKS {
        let mut blocks = [_mm_setzero_si128(); BLOCKS];
        for (i, block) in blocks.iter_mut().enumerate() {
            *block = _mm_xor_si128(
                gcm.counter_block(counter.wrapping_add(i as u32)),
                round_keys[0],
            );
        }
        for key in &round_keys[1..ROUNDS] {
            for block in &mut blocks {
                *block = _mm_aesenc_si128(*block, *key);
            }
        }
        let mut products = Products::zero();
        let mut previous = _mm_setzero_si128();
        for (i, block) in blocks.iter().enumerate() {
            let at = done + 16 * i;
            // SAFETY: `at + 16 <= len`: inside both ranges. Each block is read before it is
            // written, so in place works.
            let (input, output) = unsafe {
                let input = _mm_loadu_si128(src.add(at).cast());
                let output = _mm_xor_si128(input, _mm_aesenclast_si128(*block, round_keys[ROUNDS]));
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
            products.add(text, powers.power(BLOCKS - i));
        }
        hash = products.reduce();
        counter = counter.wrapping_add(BLOCKS as u32);
        done += 16 * BLOCKS;
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
    gcm.sample = gcm.sample.or(sample);
}
