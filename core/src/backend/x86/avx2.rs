//! The 256-bit bulk loop: VAES and VPCLMULQDQ on four vectors of two blocks, 8 blocks per
//! iteration with one GHASH reduction (Karatsuba, as the 512-bit loop), for CPUs that have
//! VAES without AVX-512. AVX2 has no masked byte loads and stores, so the last, partial block
//! is read and written with scalar loads and stores: copied through a buffer on the stack,
//! as it was first, it cost a short packet about half its time in store-forwarding stalls
//! and wiping.

use core::arch::x86_64::*;

use super::aes::{load, load_partial, store_partial};
use super::ghash::{POWERS, Products, byte_swap_mask};
use super::{Capture, Gcm, bytes_at};

/// Vectors per iteration.
const VECTORS: usize = 4;
/// Blocks per iteration.
const BLOCKS: usize = 2 * VECTORS;

/// Transforms `len` bytes from `src` to `dst`, counting blocks from `gcm.counter` and folding
/// the ciphertext into `gcm.hash`. With `capture`, the call starts the payload and covers
/// the header-protection sample at that offset: keep what [`Capture::keep`] makes of it in
/// `gcm.sample` on the way.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
/// disjoint; `len` a multiple of 16 unless this is the payload's end; the CPU must have AVX2,
/// VAES, VPCLMULQDQ, AES-NI, PCLMULQDQ and SSE4.1.
#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn crypt(
    gcm: &mut Gcm<'_>,
    src: *const u8,
    dst: *mut u8,
    len: usize,
    capture: Option<Capture<'_>>,
) {
    // The counters this call makes: two per vector, whole vectors.
    let byte_counters = gcm.byte_counters(len.div_ceil(32) * 2);
    let whole = len >= 32 * VECTORS;
    // SAFETY: forwarded from the caller.
    unsafe {
        by_rounds!(
            crypt_rounds,
            gcm.key.round_keys.rounds(),
            byte_counters,
            whole,
            gcm,
            src,
            dst,
            len,
            capture,
        )
    }
}

/// The XOR of a vector's two 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn fold_lanes(v: __m256i) -> __m128i {
    _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
}

/// Lane-wise partial products of 2 blocks at a time, summed, with Karatsuba's three
/// multiplications per block.
#[derive(Clone, Copy)]
struct WideProducts {
    low: __m256i,
    /// Sum of (a.lo ^ a.hi) * (b.lo ^ b.hi); the true middle is this ^ low ^ high.
    karatsuba: __m256i,
    high: __m256i,
}

impl WideProducts {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn zero() -> WideProducts {
        WideProducts {
            low: _mm256_setzero_si256(),
            karatsuba: _mm256_setzero_si256(),
            high: _mm256_setzero_si256(),
        }
    }

    /// Adds the products of `a` and `b`, lane by lane; `b_folded` holds the XOR of each of
    /// `b`'s lanes' halves.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn add(&mut self, a: __m256i, b: __m256i, b_folded: __m256i) {
        let a_folded = _mm256_xor_si256(a, _mm256_shuffle_epi32(a, 0x4e));
        self.low = _mm256_xor_si256(self.low, _mm256_clmulepi64_epi128(a, b, 0x00));
        self.karatsuba = _mm256_xor_si256(
            self.karatsuba,
            _mm256_clmulepi64_epi128(a_folded, b_folded, 0x00),
        );
        self.high = _mm256_xor_si256(self.high, _mm256_clmulepi64_epi128(a, b, 0x11));
    }

    /// Adds the two lanes and reduces.
    #[inline]
    #[target_feature(enable = "avx2,pclmulqdq")]
    fn reduce(self) -> __m128i {
        let middle = _mm256_xor_si256(_mm256_xor_si256(self.karatsuba, self.low), self.high);
        Products {
            low: fold_lanes(self.low),
            middle: fold_lanes(middle),
            high: fold_lanes(self.high),
        }
        .reduce()
    }
}

/// With `BYTE_COUNTERS` (the caller checked that the counter's low byte does not wrap in
/// this call: payloads up to about 4 KB), the counter blocks are kept in their byte order and
/// move on by adding to their last byte, as in avx512, rather than byte-swapped before every
/// AES: four shuffles fewer an iteration, on Zen 3 each about as costly to the rounds as a
/// round (1350-byte AES-256-GCM seals and opens about 3% faster, AES-128-GCM opens 2%).
///
/// `WHOLE`: the call has at least one whole iteration (8 blocks). Then, as in the 512-bit
/// loop, the lengths block joins the tail's reduction; a shorter payload hashes it after.
#[target_feature(enable = "avx2,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
unsafe fn crypt_rounds<const ROUNDS: usize, const BYTE_COUNTERS: bool, const WHOLE: bool>(
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
    let swap = _mm256_broadcastsi128_si256(byte_swap_mask());
    let keys = &gcm.key.round_keys;
    let round_keys: [__m256i; 15] = core::array::from_fn(|i| {
        if i <= ROUNDS {
            _mm256_broadcastsi128_si256(keys.get(i))
        } else {
            _mm256_setzero_si256()
        }
    });
    // Counter blocks as AES takes them, and the step that moves each lane `n` blocks on: in
    // byte order, an addition to the last byte (the top byte of the lane's last 32 bits).
    let ready = |counters: __m256i| {
        if BYTE_COUNTERS {
            counters
        } else {
            _mm256_shuffle_epi8(counters, swap)
        }
    };
    let step = |n: i32| {
        if BYTE_COUNTERS {
            _mm256_set_epi32(n << 24, 0, 0, 0, n << 24, 0, 0, 0)
        } else {
            _mm256_set_epi32(0, 0, 0, n, 0, 0, 0, n)
        }
    };
    let encrypt = |counters: __m256i| {
        let mut block = _mm256_xor_si256(ready(counters), round_keys[0]);
        for key in &round_keys[1..ROUNDS] {
            block = _mm256_aesenc_epi128(block, *key);
        }
        _mm256_aesenclast_epi128(block, round_keys[ROUNDS])
    };
    let powers = &gcm.key.powers;
    // Lane i counts block counter + i; each vector moves on by two.
    let c = counter as i32;
    let mut counters = _mm256_add_epi32(
        _mm256_broadcastsi128_si256(gcm.counter_base),
        _mm256_set_epi32(0, 0, 0, c.wrapping_add(1), 0, 0, 0, c),
    );
    // J0 (counter 1) in both lanes, in the form `counters` takes.
    let mut j0_counters = _mm256_add_epi32(
        _mm256_broadcastsi128_si256(gcm.counter_base),
        _mm256_set_epi32(0, 0, 0, 1, 0, 0, 0, 1),
    );
    if BYTE_COUNTERS {
        // Swapped once, here, instead of before every AES.
        counters = _mm256_shuffle_epi8(counters, swap);
        j0_counters = _mm256_shuffle_epi8(j0_counters, swap);
    }
    let two = step(2);
    // Two powers and their folded halves.
    let load_powers = |n: usize| {
        // SAFETY: `powers_from(n)` points at 64 readable bytes for n in 1 ..= 16, so 32 are
        // readable too.
        let power = unsafe { _mm256_loadu_si256(powers.powers_from(n).cast()) };
        let folded = _mm256_xor_si256(power, _mm256_shuffle_epi32(power, 0x4e));
        (power, folded)
    };
    let wide_powers: [(__m256i, __m256i); VECTORS] =
        core::array::from_fn(|i| load_powers(BLOCKS - 2 * i));
    const { assert!(BLOCKS <= POWERS) };

    // The keystream of the pairs after the whole iterations is computed ahead: the counters
    // are known, and the rounds then run beside the loop's instead of after it, where the
    // tail's hash, and the tag, would wait on them. With no whole iteration, all of a short
    // payload's rounds are issued before its first pair is loaded, hashed and (sealing)
    // sampled, rather than a pair's at a time in the tail's loop (64- to 150-byte datagrams
    // sealed in 0.92-0.94x the time on Zen 3; their opens did not move).
    let mut tail_keystream = [_mm256_setzero_si256(); VECTORS];
    {
        let whole = len / (32 * VECTORS);
        let tail_blocks = (len - whole * 32 * VECTORS).div_ceil(16);
        let tail_pairs = tail_blocks.div_ceil(2);
        let skipped = (whole * BLOCKS) as i32;
        let mut next = _mm256_add_epi32(counters, step(skipped));
        // Where this call ends the payload and its last pair has a block to spare (an odd
        // number of blocks after the whole iterations: 64- and 1350-byte datagrams), that
        // lane makes E_K(J0), the tag's mask, instead of a chain of fifteen AES
        // instructions of its own when the packet ends (`Gcm::finish`). Paired runs on Zen
        // 3, one binary: AES-256-GCM seals of 64-, 256- and 1350-byte datagrams in 0.96-0.99x
        // the time, opens 0.955x at 64 bytes and 0.98x at 1350; AES-128-GCM 0.97-0.99x,
        // its 1350-byte opens even.
        let j0_lane = gcm.remaining == 0 && tail_blocks % 2 == 1;
        for (pair, keystream) in tail_keystream.iter_mut().enumerate().take(tail_pairs) {
            if j0_lane && pair + 1 == tail_pairs {
                next = _mm256_blend_epi32(next, j0_counters, 0xf0);
            }
            *keystream = encrypt(next);
            next = _mm256_add_epi32(next, two);
        }
        if j0_lane
            && let Some(last) = tail_pairs
                .checked_sub(1)
                .and_then(|i| tail_keystream.get(i))
        {
            gcm.tag_mask = Some(_mm256_extracti128_si256(*last, 1));
        }
    }
    // Hashes pair `i` of an iteration's 8 blocks (the first carries the hash so far).
    let absorb = |products: &mut WideProducts, i: usize, text: __m256i, hash: __m128i| {
        let mut text = _mm256_shuffle_epi8(text, swap);
        if i == 0 {
            text = _mm256_xor_si256(text, _mm256_zextsi128_si256(hash));
        }
        products.add(text, wide_powers[i].0, wide_powers[i].1);
    };
    // Whole iterations, software-pipelined as in avx512: each one's text is hashed during
    // the next one's rounds (on Zen 4, 1350-byte AES-128-GCM seals 270 -> 227 ns and opens
    // 260 -> 238; AES-256-GCM 335 -> 268 and 329 -> 277).
    let mut done = 0;
    let mut pending: Option<[__m256i; VECTORS]> = None;
    while len - done >= 32 * VECTORS {
        let mut blocks = [_mm256_setzero_si256(); VECTORS];
        for block in &mut blocks {
            *block = _mm256_xor_si256(ready(counters), round_keys[0]);
            counters = _mm256_add_epi32(counters, two);
        }
        let mut products = WideProducts::zero();
        for (round, key) in round_keys[1..ROUNDS].iter().enumerate() {
            for block in &mut blocks {
                *block = _mm256_aesenc_epi128(*block, *key);
            }
            if let Some(pending) = &pending {
                match round {
                    0..VECTORS => absorb(&mut products, round, pending[round], hash),
                    VECTORS => hash = products.reduce(),
                    _ => {}
                }
            }
        }
        let mut texts = [_mm256_setzero_si256(); VECTORS];
        for (i, (block, text)) in blocks.iter().zip(&mut texts).enumerate() {
            let at = done + 32 * i;
            // SAFETY: `at + 32 <= len`: inside both ranges; read before written.
            let input = unsafe { _mm256_loadu_si256(src.add(at).cast()) };
            // The text joins the last round key, off the rounds' chain (see avx512).
            let output =
                _mm256_aesenclast_epi128(*block, _mm256_xor_si256(round_keys[ROUNDS], input));
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(dst.add(at).cast(), output) };
            *text = if seal { output } else { input };
        }
        // Only a seal captures: `texts` is its ciphertext.
        if let (0, Some(capture)) = (done, capture) {
            sample = first_sample(texts[0], capture.offset).map(|s| capture.keep(s));
        }
        pending = Some(texts);
        counter = counter.wrapping_add(BLOCKS as u32);
        done += 32 * VECTORS;
    }
    if let Some(pending) = pending {
        let mut products = WideProducts::zero();
        for (i, text) in pending.iter().enumerate() {
            absorb(&mut products, i, *text, hash);
        }
        hash = products.reduce();
    }

    // Fewer than 8 blocks, the last maybe partial, two at a time: whole pairs straight from
    // and to the payload, a partial pair's bytes with scalar loads and stores (see
    // `load_partial`).
    let rest = len - done;
    if rest > 0 {
        let blocks = rest.div_ceil(16);
        // Where this call ends the payload, the lengths block joins the tail's reduction
        // instead of taking one of its own after it, on the tag's chain: in the lane after
        // the payload's last block (a pair of its own when that one is full), times H.
        let with_lengths = WHOLE && gcm.remaining == 0;
        let first_power = blocks + usize::from(with_lengths);
        let mut products = WideProducts::zero();
        for pair in 0..first_power.div_ceil(2) {
            let at = done + 32 * pair;
            let mut text = _mm256_setzero_si256();
            if let Some(n) = len.checked_sub(at).filter(|&n| n > 0) {
                let n = n.min(32);
                // SAFETY: `at + n <= len`: inside the source range, read before written.
                let input = unsafe {
                    if n == 32 {
                        _mm256_loadu_si256(src.add(at).cast())
                    } else {
                        load_partial_pair(core::slice::from_raw_parts(src.add(at), n))
                    }
                };
                // `get`: no panic path for the kernel object (`pair` is below 4).
                let keystream = tail_keystream
                    .get(pair)
                    .copied()
                    .unwrap_or(_mm256_setzero_si256());
                let output = _mm256_xor_si256(input, keystream);
                // SAFETY: as above, inside the destination range.
                unsafe {
                    if n == 32 {
                        _mm256_storeu_si256(dst.add(at).cast(), output);
                    } else {
                        store_partial_pair(dst.add(at), n, output);
                    }
                }
                if let (0, Some(capture)) = (at, capture) {
                    sample = first_sample(output, capture.offset).map(|s| capture.keep(s));
                }
                // The hash takes the ciphertext's bytes only: zeros above them.
                let hashed = if seal {
                    _mm256_and_si256(output, keep_first(n))
                } else {
                    input
                };
                text = _mm256_shuffle_epi8(hashed, swap);
            }
            if pair == 0 {
                text = _mm256_xor_si256(text, _mm256_zextsi128_si256(hash));
            }
            if with_lengths && blocks / 2 == pair {
                let lengths = _mm256_broadcastsi128_si256(gcm.lengths_block());
                text = if blocks.is_multiple_of(2) {
                    _mm256_blend_epi32(text, lengths, 0x0f)
                } else {
                    _mm256_blend_epi32(text, lengths, 0xf0)
                };
            }
            let (power, folded) = load_powers(first_power - 2 * pair);
            products.add(text, power, folded);
        }
        hash = products.reduce();
        counter = counter.wrapping_add(blocks as u32);
        gcm.lengths_hashed = with_lengths;
    }
    gcm.hash = hash;
    gcm.counter = counter;
    // Stored only where taken (see `avx512::crypt_rounds`).
    if let Some(sample) = sample {
        gcm.sample = Some(sample);
    }
}

/// Fewer than 32 bytes into a vector, zero above them, without a 32-byte load that would
/// wait on narrower stores.
#[inline]
#[target_feature(enable = "avx2")]
fn load_partial_pair(bytes: &[u8]) -> __m256i {
    let (low, high) = match bytes.split_first_chunk::<16>() {
        Some((low, high)) => (load(low), load_partial(high)),
        None => (load_partial(bytes), _mm_setzero_si128()),
    };
    _mm256_set_m128i(high, low)
}

/// Stores the first `n` (below 32) bytes of `pair` at `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `n` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_partial_pair(dst: *mut u8, n: usize, pair: __m256i) {
    let low = _mm256_castsi256_si128(pair);
    // SAFETY: every store is below `n`, as the caller promises.
    unsafe {
        if n >= 16 {
            _mm_storeu_si128(dst.cast(), low);
            store_partial(dst.add(16), n - 16, _mm256_extracti128_si256(pair, 1));
        } else {
            store_partial(dst, n, low);
        }
    }
}

/// A mask keeping a vector's first `n` (at most 32) bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn keep_first(n: usize) -> __m256i {
    // SAFETY: `keep_first` points at 32 readable bytes.
    unsafe { _mm256_loadu_si256(super::keep_first(n).cast()) }
}

/// The sample at `offset` of the payload's first 32 bytes, which `output` holds.
#[inline]
#[target_feature(enable = "avx2,ssse3")]
fn first_sample(output: __m256i, offset: usize) -> Option<__m128i> {
    bytes_at(
        _mm256_castsi256_si128(output),
        _mm256_extracti128_si256(output, 1),
        offset,
    )
}
