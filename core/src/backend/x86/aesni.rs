//! The 128-bit bulk loop: AES-NI and PCLMULQDQ, 8 blocks per iteration, the GHASH of the 8
//! ciphertext blocks reduced once.

use core::arch::x86_64::*;
use core::ptr;

use super::aes::{load, store};
use super::ghash::{Products, byte_swap_mask};
use super::{Gcm, bytes_at};

/// Blocks per iteration.
const BLOCKS: usize = 8;

/// Transforms `len` bytes from `src` to `dst`, counting blocks from `gcm.counter` and folding
/// the ciphertext into `gcm.hash`. With `capture`, the call starts the payload and covers
/// the header-protection sample at that offset: take it into `gcm.sample` on the way.
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
    capture: Option<usize>,
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
    capture: Option<usize>,
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
            if let (16, Some(offset)) = (at, capture) {
                sample = bytes_at(previous, output, offset);
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

    let rest = len - done;
    if rest > 0 {
        // Fewer than 8 blocks, the last maybe partial: through buffers on the stack.
        let blocks = rest.div_ceil(16);
        let mut input = [0u8; 16 * BLOCKS];
        let mut output = [0u8; 16 * BLOCKS];
        // SAFETY: `done + rest == len`: the rest of both ranges, into and out of buffers of
        // 128 > `rest` bytes.
        unsafe { ptr::copy_nonoverlapping(src.add(done), input.as_mut_ptr(), rest) };
        {
            let (inputs, _) = input.as_chunks::<16>();
            let (outputs, _) = output.as_chunks_mut::<16>();
            for (i, (text_in, text_out)) in inputs.iter().zip(outputs).take(blocks).enumerate() {
                let keystream = encrypt(gcm.counter_block(counter.wrapping_add(i as u32)));
                store(text_out, _mm_xor_si128(load(text_in), keystream));
            }
        }
        // SAFETY: as above.
        unsafe { ptr::copy_nonoverlapping(output.as_ptr(), dst.add(done), rest) };
        if let (0, Some(offset)) = (done, capture) {
            let (blocks, _) = output.as_chunks::<16>();
            sample = bytes_at(load(&blocks[0]), load(&blocks[1]), offset);
        }
        output.get_mut(rest..).unwrap_or_default().fill(0);
        let (texts, _) = if seal { &output } else { &input }.as_chunks::<16>();
        let mut products = Products::zero();
        for (i, text) in texts.iter().take(blocks).enumerate() {
            let mut text = _mm_shuffle_epi8(load(text), swap);
            if i == 0 {
                text = _mm_xor_si128(text, hash);
            }
            products.add(text, powers.power(blocks - i));
        }
        hash = products.reduce();
        counter = counter.wrapping_add(blocks as u32);
        zeroize::Zeroize::zeroize(&mut input);
        zeroize::Zeroize::zeroize(&mut output);
    }
    gcm.hash = hash;
    gcm.counter = counter;
    gcm.sample = gcm.sample.or(sample);
}
