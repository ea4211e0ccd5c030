//! The 512-bit bulk loop: VAES and VPCLMULQDQ on four vectors of four blocks, 16 blocks per
//! iteration with one GHASH reduction, and the tail (fewer than 16 blocks, the last maybe
//! partial) with masked loads and stores instead of byte loops.

use core::arch::x86_64::*;

use super::ghash::{POWERS, byte_swap_mask, polynomial};
use super::{Capture, Gcm, bytes_at};

/// Vectors per iteration.
const VECTORS: usize = 4;

/// Transforms `len` bytes from `src` to `dst`, counting blocks from `gcm.counter` and folding
/// the ciphertext into `gcm.hash`. With `capture`, the call starts the payload and covers
/// the header-protection sample at that offset: keep what [`Capture::keep`] makes of it in
/// `gcm.sample` on the way.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
/// disjoint; `len` a multiple of 16 unless this is the payload's end; the CPU must have
/// AVX-512F/BW/VL, VAES, VPCLMULQDQ, AES-NI and PCLMULQDQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn crypt(
    gcm: &mut Gcm<'_>,
    src: *const u8,
    dst: *mut u8,
    len: usize,
    capture: Option<Capture<'_>>,
) {
    // The counters this call makes: four per vector, whole vectors.
    let byte_counters = gcm.byte_counters(len.div_ceil(64) * 4);
    let whole = len >= 64 * VECTORS;
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

/// Fewer than 16 bytes, zero-padded to a block, with one masked load.
#[target_feature(enable = "avx512bw,avx512vl")]
pub(super) fn load_partial(bytes: &[u8]) -> __m128i {
    let mask = (1u16 << bytes.len().min(15)) - 1;
    // SAFETY: the mask covers `bytes` only; masked-off bytes are not read.
    unsafe { _mm_maskz_loadu_epi8(mask, bytes.as_ptr().cast()) }
}

/// The sample at `offset` of the payload's first 32 bytes, which start `output`.
#[inline]
#[target_feature(enable = "avx512f,ssse3")]
fn first_sample(output: __m512i, offset: usize) -> Option<__m128i> {
    bytes_at(
        _mm512_castsi512_si128(output),
        _mm512_extracti32x4_epi32(output, 1),
        offset,
    )
}

/// 128-bit lane `lane` (1 to 3) of `v`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_of(v: __m512i, lane: usize) -> __m128i {
    match lane {
        1 => _mm512_extracti32x4_epi32::<1>(v),
        2 => _mm512_extracti32x4_epi32::<2>(v),
        _ => _mm512_extracti32x4_epi32::<3>(v),
    }
}

/// The XOR of a vector's four 128-bit lanes.
#[target_feature(enable = "avx512f")]
fn fold_lanes(v: __m512i) -> __m128i {
    let half = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    _mm_xor_si128(
        _mm256_castsi256_si128(half),
        _mm256_extracti128_si256(half, 1),
    )
}

/// Block j of row k to block k of row j: four shuffles of 128-bit lanes in pairs, then four
/// of the pairs.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn transpose([a, b, c, d]: [__m512i; 4]) -> [__m512i; 4] {
    // [a0 a1 b0 b1], [a2 a3 b2 b3], [c0 c1 d0 d1], [c2 c3 d2 d3]
    let ab_low = _mm512_shuffle_i64x2::<0b01_00_01_00>(a, b);
    let ab_high = _mm512_shuffle_i64x2::<0b11_10_11_10>(a, b);
    let cd_low = _mm512_shuffle_i64x2::<0b01_00_01_00>(c, d);
    let cd_high = _mm512_shuffle_i64x2::<0b11_10_11_10>(c, d);
    [
        _mm512_shuffle_i64x2::<0b10_00_10_00>(ab_low, cd_low),
        _mm512_shuffle_i64x2::<0b11_01_11_01>(ab_low, cd_low),
        _mm512_shuffle_i64x2::<0b10_00_10_00>(ab_high, cd_high),
        _mm512_shuffle_i64x2::<0b11_01_11_01>(ab_high, cd_high),
    ]
}

/// Each lane's halves XORed, as Karatsuba's middle product takes them.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn folded(v: __m512i) -> __m512i {
    _mm512_xor_si512(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC))
}

/// Lane-wise partial products of 4 blocks at a time, summed, with Karatsuba's three
/// multiplications per block instead of four. Where the products' latency is what the
/// packet waits on (the tail of [`crypt_rounds`], and the headers' and powers' products of
/// `avx512_batch`), the multiplication saved counts; where the ports are what bounds the loop,
/// [`SchoolbookProducts`] are the better trade on the CPUs measured so far.
#[derive(Clone, Copy)]
pub(super) struct WideProducts {
    low: __m512i,
    /// Sum of (a.lo ^ a.hi) * (b.lo ^ b.hi); the true middle is this ^ low ^ high.
    karatsuba: __m512i,
    high: __m512i,
}

impl WideProducts {
    #[target_feature(enable = "avx512f")]
    pub(super) fn zero() -> WideProducts {
        WideProducts {
            low: _mm512_setzero_si512(),
            karatsuba: _mm512_setzero_si512(),
            high: _mm512_setzero_si512(),
        }
    }

    /// Adds the products of `a` and `b`, lane by lane; `b_folded` holds the XOR of each of
    /// `b`'s lanes' halves.
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    pub(super) fn add(&mut self, a: __m512i, b: __m512i, b_folded: __m512i) {
        let a_folded = folded(a);
        self.low = _mm512_xor_si512(self.low, _mm512_clmulepi64_epi128(a, b, 0x00));
        self.karatsuba = _mm512_xor_si512(
            self.karatsuba,
            _mm512_clmulepi64_epi128(a_folded, b_folded, 0x00),
        );
        self.high = _mm512_xor_si512(self.high, _mm512_clmulepi64_epi128(a, b, 0x11));
    }

    /// Reduces each lane (the two folds of [`Products::reduce`](super::ghash::Products::reduce),
    /// on whole vectors), then adds the four lanes. Reduction is linear, so the sum is the
    /// same as reducing the lanes' sum, in about half the instructions: the 512-bit loop is
    /// bound by the two vector ports that take 512-bit instructions, not by the AES rounds'
    /// latency, so each instruction saved counts (an in-process A/B on an Intel Xeon with
    /// AVX-512: 1323-byte payloads sealed about 7% faster, opened 3%).
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    fn reduce(self) -> __m128i {
        fold_lanes(self.reduce_lanes())
    }

    /// Lane k: the sum of `products[k]`'s four lanes.
    #[target_feature(enable = "avx512f")]
    pub(super) fn lanes_summed(products: [WideProducts; 4]) -> WideProducts {
        let sum = |rows: [__m512i; 4]| {
            let [a, b, c, d] = transpose(rows);
            _mm512_ternarylogic_epi32(_mm512_xor_si512(a, b), c, d, 0x96)
        };
        WideProducts {
            low: sum(products.map(|p| p.low)),
            karatsuba: sum(products.map(|p| p.karatsuba)),
            high: sum(products.map(|p| p.high)),
        }
    }

    /// Both sums added.
    #[target_feature(enable = "avx512f")]
    pub(super) fn plus(self, other: WideProducts) -> WideProducts {
        WideProducts {
            low: _mm512_xor_si512(self.low, other.low),
            karatsuba: _mm512_xor_si512(self.karatsuba, other.karatsuba),
            high: _mm512_xor_si512(self.high, other.high),
        }
    }

    /// Reduces each lane on its own: four hashes, one per lane.
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    pub(super) fn reduce_lanes(self) -> __m512i {
        let middle = _mm512_ternarylogic_epi32(self.karatsuba, self.low, self.high, 0x96);
        reduce_terms(self.low, middle, self.high)
    }
}

/// Reduces each lane of the products whose low, true middle and high terms these are (the
/// two folds of [`Products::reduce`](super::ghash::Products::reduce), on whole vectors).
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn reduce_terms(low: __m512i, middle: __m512i, high: __m512i) -> __m512i {
    let poly = _mm512_broadcast_i32x4(polynomial());
    let middle = _mm512_ternarylogic_epi32(
        middle,
        _mm512_shuffle_epi32(low, _MM_PERM_BADC),
        _mm512_clmulepi64_epi128(poly, low, 0x01),
        0x96,
    );
    _mm512_ternarylogic_epi32(
        high,
        _mm512_shuffle_epi32(middle, _MM_PERM_BADC),
        _mm512_clmulepi64_epi128(poly, middle, 0x01),
        0x96,
    )
}

/// Lane-wise products of 4 blocks at a time, summed, with four multiplications per block
/// (schoolbook) instead of Karatsuba's three: no folded halves of the text (a shuffle and an
/// XOR a vector) or of the powers. On an Intel Xeon with AVX-512 the 512-bit AES rounds take
/// one port and the multiplications and shuffles the other, so a shuffle costs what a
/// multiplication does, and the XORs the fold saves fill the AES port's gaps only as far
/// as the scheduler lets them: the whole iterations of [`crypt_rounds`] and the batch loop
/// of `avx512_batch`, bound by that second port, gain from each one dropped. On Zen 4, an
/// earlier build measured schoolbook seals 3-5 ns faster at 1350 bytes and opens 1-4 ns
/// slower (docs/performance.md); it has not been measured there since.
#[derive(Clone, Copy)]
pub(super) struct SchoolbookProducts {
    pub(super) low: __m512i,
    pub(super) middle: __m512i,
    pub(super) high: __m512i,
}

impl SchoolbookProducts {
    #[target_feature(enable = "avx512f")]
    pub(super) fn zero() -> SchoolbookProducts {
        SchoolbookProducts {
            low: _mm512_setzero_si512(),
            middle: _mm512_setzero_si512(),
            high: _mm512_setzero_si512(),
        }
    }

    /// Adds the products of `a` and `b`, lane by lane.
    #[inline]
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    pub(super) fn add(&mut self, a: __m512i, b: __m512i) {
        self.low = _mm512_xor_si512(self.low, _mm512_clmulepi64_epi128(a, b, 0x00));
        self.middle = _mm512_ternarylogic_epi32(
            self.middle,
            _mm512_clmulepi64_epi128(a, b, 0x01),
            _mm512_clmulepi64_epi128(a, b, 0x10),
            0x96,
        );
        self.high = _mm512_xor_si512(self.high, _mm512_clmulepi64_epi128(a, b, 0x11));
    }

    /// The same sums in Karatsuba's form, whose middle term is the true one XOR the low and
    /// high ones: to add to such sums.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn karatsuba(self) -> WideProducts {
        WideProducts {
            low: self.low,
            karatsuba: _mm512_ternarylogic_epi32(self.middle, self.low, self.high, 0x96),
            high: self.high,
        }
    }

    /// Reduces each lane, then adds the four lanes, as [`WideProducts::reduce`] does.
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    fn reduce(self) -> __m128i {
        fold_lanes(reduce_terms(self.low, self.middle, self.high))
    }
}

/// With `BYTE_COUNTERS` (the caller checked that the counter's low byte does not wrap in
/// this call: payloads up to about 4 KB), the counter blocks are kept in their byte order
/// and each vector's counters move on by adding to their last byte, rather than reversed
/// and byte-swapped before every AES: one shuffle a vector fewer, on the port the GHASH
/// multiplications and shuffles already crowd.
///
/// `WHOLE`: the call has at least one whole iteration (16 blocks). Then the tail's keystream
/// is computed ahead and the lengths block joins the tail's reduction; a shorter payload
/// keeps the plain order, which measured faster for it (64- and 256-byte opens 2-5 ns).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
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
    let swap = _mm512_broadcast_i32x4(byte_swap_mask());
    let keys = &gcm.key.round_keys;
    let round_keys: [__m512i; 15] = core::array::from_fn(|i| {
        if i <= ROUNDS {
            _mm512_broadcast_i32x4(keys.get(i))
        } else {
            _mm512_setzero_si512()
        }
    });
    // The counter blocks in byte order.
    let blocks_of = |counters: __m512i| {
        if BYTE_COUNTERS {
            counters
        } else {
            _mm512_shuffle_epi8(counters, swap)
        }
    };
    let encrypt = |counters: __m512i| {
        let mut block = _mm512_xor_si512(blocks_of(counters), round_keys[0]);
        for key in &round_keys[1..ROUNDS] {
            block = _mm512_aesenc_epi128(block, *key);
        }
        _mm512_aesenclast_epi128(block, round_keys[ROUNDS])
    };
    let powers = &gcm.key.powers;
    // Lane i counts block counter + i; each vector moves on by four.
    let c = counter as i32;
    let mut counters = _mm512_add_epi32(
        _mm512_broadcast_i32x4(gcm.counter_base),
        _mm512_set_epi32(
            0,
            0,
            0,
            c.wrapping_add(3),
            0,
            0,
            0,
            c.wrapping_add(2),
            0,
            0,
            0,
            c.wrapping_add(1),
            0,
            0,
            0,
            c,
        ),
    );
    let mut four = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4);
    // J0 (counter 1) in every lane, in the form `counters` takes.
    let mut j0_counters = _mm512_add_epi32(
        _mm512_broadcast_i32x4(gcm.counter_base),
        _mm512_maskz_set1_epi32(0x1111, 1),
    );
    if BYTE_COUNTERS {
        // The counter's last byte is the top byte of each lane's last 32-bit word.
        counters = _mm512_shuffle_epi8(counters, swap);
        j0_counters = _mm512_shuffle_epi8(j0_counters, swap);
        four = _mm512_set_epi32(
            4 << 24,
            0,
            0,
            0,
            4 << 24,
            0,
            0,
            0,
            4 << 24,
            0,
            0,
            0,
            4 << 24,
            0,
            0,
            0,
        );
    }
    // Four powers from H^n down. SAFETY: `powers_from(n)` points at 64 readable bytes for n
    // in 1 ..= 16.
    let load_powers = |n: usize| unsafe { _mm512_loadu_si512(powers.powers_from(n).cast()) };
    // The whole iterations multiply schoolbook-style (see `SchoolbookProducts`): paired
    // `TxFlow` runs on an Intel Xeon with AVX-512, 1350-byte AES-128-GCM and AES-256-GCM
    // datagrams sealed in 0.96x the time, opened in 0.97x. The tail keeps Karatsuba's
    // three products: it waits on them rather than on the port, and schoolbook there took
    // 1.017x the time for 256-byte seals.
    let wide_powers: [__m512i; VECTORS] = core::array::from_fn(|i| load_powers(POWERS - 4 * i));

    // AES-256: where this call ends the payload and its last vector has a lane to spare,
    // that lane makes E_K(J0), the tag's mask, instead of a chain of fifteen instructions
    // of its own when the packet ends (`Gcm::finish`), which the tag would wait for. Paired
    // runs through `TxFlow` on an Intel Xeon with AVX-512: 1350-byte AES-256-GCM datagrams
    // sealed in 0.97x the time, 64- and 256-byte ones and opens even. AES-128-GCM's eleven
    // instructions end no later than the last GHASH reduction: its 1350-byte seals took
    // 1.012x the time with the lane, so it keeps the chain.
    let tail_blocks = (len % (64 * VECTORS)).div_ceil(16);
    let j0_lane = (ROUNDS == 14 && gcm.remaining == 0 && !tail_blocks.is_multiple_of(4))
        .then_some(tail_blocks % 4);
    let last_vector = tail_blocks.div_ceil(4).wrapping_sub(1);
    let with_j0 = |v: usize, counters: __m512i| match j0_lane {
        Some(lane) if v == last_vector => {
            _mm512_mask_blend_epi32(0xf << (4 * lane), counters, j0_counters)
        }
        _ => counters,
    };
    // After whole iterations, the keystream of the vectors after them is computed ahead:
    // the counters are known, and the rounds then run beside the loop's instead of after
    // it, where the tail's hash, and the tag, would wait on them.
    let mut tail_keystream = [_mm512_setzero_si512(); VECTORS];
    if WHOLE {
        let whole = len / (64 * VECTORS);
        let tail_vectors = (len - whole * 64 * VECTORS).div_ceil(64);
        // The iterations' counters, added in one step: `four` times the vectors they take.
        let skipped = (whole * VECTORS * 4) as i32;
        let mut next = _mm512_add_epi32(
            counters,
            if BYTE_COUNTERS {
                _mm512_maskz_set1_epi32(0x8888, skipped << 24)
            } else {
                _mm512_maskz_set1_epi32(0x1111, skipped)
            },
        );
        for (v, keystream) in tail_keystream.iter_mut().enumerate().take(tail_vectors) {
            *keystream = encrypt(with_j0(v, next));
            next = _mm512_add_epi32(next, four);
        }
        if let (Some(lane), Some(last)) = (j0_lane, tail_keystream.get(last_vector)) {
            gcm.tag_mask = Some(lane_of(*last, lane));
        }
    }
    // Hashes vector `i` of an iteration's 16 blocks (the first carries the hash so far).
    let absorb = |products: &mut SchoolbookProducts, i: usize, text: __m512i, hash: __m128i| {
        let mut text = _mm512_shuffle_epi8(text, swap);
        if i == 0 {
            text = _mm512_xor_si512(text, _mm512_zextsi128_si512(hash));
        }
        products.add(text, wide_powers[i]);
    };
    // Whole iterations, software-pipelined: each one's ciphertext (sealing) or text
    // (opening) is hashed during the next one's AES rounds, a vector after each of the
    // first rounds. The carry-less multiplications share the AES rounds' two vector ports
    // on Zen 4; in this order they reach the scheduler mixed with rounds that can run
    // beside them, not after the rounds they wait on (AES-128-GCM 1350-byte seals 176 ->
    // 164 ns on Zen 4, AES-256-GCM 204 -> 197; opens within 3 ns either way).
    let mut done = 0;
    let mut pending: Option<[__m512i; VECTORS]> = None;
    while len - done >= 64 * VECTORS {
        let mut blocks = [_mm512_setzero_si512(); VECTORS];
        for block in &mut blocks {
            *block = _mm512_xor_si512(blocks_of(counters), round_keys[0]);
            counters = _mm512_add_epi32(counters, four);
        }
        let mut products = SchoolbookProducts::zero();
        for (round, key) in round_keys[1..ROUNDS].iter().enumerate() {
            for block in &mut blocks {
                *block = _mm512_aesenc_epi128(*block, *key);
            }
            if let Some(pending) = &pending {
                match round {
                    0..VECTORS => absorb(&mut products, round, pending[round], hash),
                    VECTORS => hash = products.reduce(),
                    _ => {}
                }
            }
        }
        let mut texts = [_mm512_setzero_si512(); VECTORS];
        for (i, (block, text)) in blocks.iter().zip(&mut texts).enumerate() {
            let at = done + 64 * i;
            // SAFETY: `at + 64 <= len`: inside both ranges; read before written.
            let input = unsafe { _mm512_loadu_si512(src.add(at).cast()) };
            // The last round adds its key; the text joins the key instead of the round's
            // result, which saves the XOR after the last round on every block's way to
            // the hash (AES-GCM 1350-byte seals 3-5 ns faster on Zen 4, opens unchanged).
            let output =
                _mm512_aesenclast_epi128(*block, _mm512_xor_si512(round_keys[ROUNDS], input));
            // SAFETY: as above.
            unsafe { _mm512_storeu_si512(dst.add(at).cast(), output) };
            *text = if seal { output } else { input };
        }
        // Only a seal captures: `texts` is its ciphertext.
        if let (0, Some(capture)) = (done, capture) {
            sample = first_sample(texts[0], capture.offset).map(|s| capture.keep(s));
        }
        pending = Some(texts);
        counter = counter.wrapping_add(16);
        done += 64 * VECTORS;
    }
    if let Some(pending) = pending {
        let mut products = SchoolbookProducts::zero();
        for (i, text) in pending.iter().enumerate() {
            absorb(&mut products, i, *text, hash);
        }
        hash = products.reduce();
    }

    let rest = len - done;
    if rest > 0 {
        let blocks = rest.div_ceil(16);
        // Where this call ends the payload and a power is left over, the lengths block joins
        // the tail's reduction instead of taking one of its own after it, on the tag's chain.
        let with_lengths = WHOLE && gcm.remaining == 0 && blocks < POWERS;
        let mut products = WideProducts::zero();
        // The lengths block goes in the lane after the payload's last block (a vector of its
        // own when that one is full), multiplied by H.
        let first_power = blocks + usize::from(with_lengths);
        for i in 0..first_power.div_ceil(4) {
            let at = done + 64 * i;
            let mut text = _mm512_setzero_si512();
            if let Some(bytes) = rest.checked_sub(64 * i).filter(|&bytes| bytes > 0) {
                let keystream = if WHOLE {
                    // `get`: no panic path for the kernel object (`i` is below 4).
                    tail_keystream
                        .get(i)
                        .copied()
                        .unwrap_or(_mm512_setzero_si512())
                } else {
                    let keystream = encrypt(with_j0(i, counters));
                    counters = _mm512_add_epi32(counters, four);
                    if let (Some(lane), true) = (j0_lane, i == last_vector) {
                        gcm.tag_mask = Some(lane_of(keystream, lane));
                    }
                    keystream
                };
                let mask = u64::MAX >> (64 - bytes.min(64));
                // SAFETY: the mask covers `bytes` bytes from `at`, inside both ranges;
                // masked-off bytes are neither read nor written. Read before written.
                let (input, output) = unsafe {
                    let input = _mm512_maskz_loadu_epi8(mask, src.add(at).cast());
                    let output = _mm512_xor_si512(input, keystream);
                    _mm512_mask_storeu_epi8(dst.add(at).cast(), mask, output);
                    (input, _mm512_maskz_mov_epi8(mask, output))
                };
                if let (0, Some(capture)) = (at, capture) {
                    sample = first_sample(output, capture.offset).map(|s| capture.keep(s));
                }
                text = _mm512_shuffle_epi8(if seal { output } else { input }, swap);
            }
            if i == 0 {
                text = _mm512_xor_si512(text, _mm512_zextsi128_si512(hash));
            }
            if with_lengths && blocks / 4 == i {
                let lane = (0b11u8 << (2 * (blocks % 4))) as __mmask8;
                let lengths = _mm512_broadcast_i32x4(gcm.lengths_block());
                text = _mm512_mask_mov_epi64(text, lane, lengths);
            }
            let power = load_powers(first_power - 4 * i);
            products.add(text, power, folded(power));
        }
        hash = products.reduce();
        counter = counter.wrapping_add(blocks as u32);
        gcm.lengths_hashed = with_lengths;
    }
    gcm.hash = hash;
    gcm.counter = counter;
    // Stored only where taken: `gcm.sample.or(sample)` loaded the whole `Option` back from
    // the stack as one 32-byte value just after narrower stores had written it, and waited
    // for them (64-byte AES-128-GCM seals, `PacketKey` alone: 44.7 -> 38.7 ns).
    if let Some(sample) = sample {
        gcm.sample = Some(sample);
    }
}
