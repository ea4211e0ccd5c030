//! Poly1305's long runs on 512-bit registers with AVX-512 IFMA (52-bit multiply-accumulate):
//! eight interleaved hashes, lane j taking blocks j, j + 8, j + 16 and so on, each multiplied
//! by r⁸ per step; the last step multiplies lane j by r^(8 - j) instead, so that the lanes'
//! sum is the one hash of the whole run. Limbs stay 44, 44 and 42 bits as in the scalar code,
//! well inside IFMA's 52, and each step reduces only partly.

use core::arch::x86_64::*;

use super::{Columns, MASK42, MASK44, Multiplier};

/// Blocks per step: one per 64-bit lane.
pub(in crate::backend::x86) const LANES: usize = 8;

/// The shortest run worth the vector units: below it, r⁵ to r⁸, loading the lanes and adding
/// them up cost more than the scalar code saves. Sixteen blocks while the scalar code took
/// nine multiplications a block; with four (`Single`), 32. It also bounds the payloads whose
/// seal hashes on the integer units beside the header mask's block: on Zen 4, 300- to
/// 512-byte ChaCha20-Poly1305 packets sealed 80-115 ns faster, opened up to 45 ns faster.
pub(super) const MIN_BLOCKS: usize = 32;

/// Lane-wise multipliers: limbs r0, r1, r2 and the reduction's 20·r1, 20·r2.
#[derive(Clone, Copy)]
struct Lanes {
    r: [__m512i; 3],
    s: [__m512i; 2],
}

impl Lanes {
    /// `power(j)` in lane j.
    #[inline(always)]
    fn new(power: impl Fn(usize) -> Multiplier) -> Lanes {
        let lanes: [Multiplier; LANES] = core::array::from_fn(power);
        let pick = |limb: fn(&Multiplier) -> u64| {
            let words: [u64; LANES] = core::array::from_fn(|j| limb(&lanes[j]));
            // SAFETY: for the intrinsics, only called from functions with AVX-512F enabled;
            // the array is 64 readable bytes.
            unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
        };
        Lanes {
            r: [pick(|m| m.r[0]), pick(|m| m.r[1]), pick(|m| m.r[2])],
            s: [pick(|m| m.s[0]), pick(|m| m.s[1])],
        }
    }
}

/// A run of whole eight-block chunks in progress on the vector units, fed one chunk at a time
/// so that a caller can spread the chunks between other work (ChaCha20's rounds).
pub(in crate::backend::x86) struct Run {
    acc: [__m512i; 3],
    every: Lanes,
    last: Lanes,
    /// Chunks still to come.
    left: usize,
}

impl Run {
    /// Starts a run of `chunks` chunks after the running hash `h`, given r to r⁴ (`low`) and
    /// r⁵ to r⁸ (`high`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn new(
        h: [u64; 3],
        chunks: usize,
        low: &[Multiplier; 4],
        high: &[Multiplier; 4],
    ) -> Run {
        // Lane j's power in the last step is r^(8 - j): r⁸ to r⁵ from `high`, r⁴ to r from
        // `low`.
        let power = |k: usize| if k > 4 { high[k - 5] } else { low[k - 1] };
        let zero = _mm512_setzero_si512();
        Run {
            // The running hash enters lane 0, added to the run's first block.
            acc: [
                _mm512_mask_set1_epi64(zero, 1, h[0] as i64),
                _mm512_mask_set1_epi64(zero, 1, h[1] as i64),
                _mm512_mask_set1_epi64(zero, 1, h[2] as i64),
            ],
            every: Lanes::new(|_| high[3]),
            last: Lanes::new(|j| power(LANES - j)),
            left: chunks,
        }
    }

    /// Hashes the next chunk: its lanes multiplied by r⁸, or for the run's last chunk by the
    /// powers that line the lanes up. A chunk must be left.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(in crate::backend::x86) fn step(&mut self, chunk: &[[u8; 16]; LANES]) {
        debug_assert!(self.left > 0);
        self.left -= 1;
        let m = if self.left == 0 {
            &self.last
        } else {
            &self.every
        };
        self.acc = multiply(add(self.acc, message(chunk)), m);
    }

    /// The hash after the run, partly reduced; every chunk must have been hashed.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn finish(self) -> [u64; 3] {
        debug_assert_eq!(self.left, 0);
        // Eight lanes' limbs add up to 47 bits at most: carried back within their widths as
        // the scalar code carries its column sums.
        Columns(
            self.acc
                .map(|limb| u128::from(_mm512_reduce_add_epi64(limb) as u64)),
        )
        .carry()
    }
}

/// Hashes `steps` blocks of up to eight messages side by side, message j in lane j under its
/// own key `keys[j]` (r, not a power: each lane is one message's whole hash) from the
/// running hash `h[j]`; `block(i)` gives block i of every lane's message. Returns each
/// lane's hash, partly reduced as the scalar code leaves it. One step is one dependent
/// multiplication for all eight: the messages' chains run side by side.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn hash_lanes(
    h: &mut [[u64; 3]; LANES],
    keys: &[Multiplier; LANES],
    steps: usize,
    mut block: impl FnMut(usize) -> [[u8; 16]; LANES],
) {
    let lanes = Lanes::new(|j| keys[j]);
    let mut acc = [_mm512_setzero_si512(); 3];
    for (limb, acc) in acc.iter_mut().enumerate() {
        let words: [u64; LANES] = core::array::from_fn(|j| h[j][limb]);
        // SAFETY: 64 readable bytes.
        *acc = unsafe { _mm512_loadu_si512(words.as_ptr().cast()) };
    }
    for i in 0..steps {
        acc = multiply(add(acc, message(&block(i))), &lanes);
    }
    let mut limbs = [[0u64; LANES]; 3];
    for (limb, acc) in limbs.iter_mut().zip(acc) {
        // SAFETY: 64 writable bytes.
        unsafe { _mm512_storeu_si512(limb.as_mut_ptr().cast(), acc) };
    }
    for (j, h) in h.iter_mut().enumerate() {
        // Partly reduced lanes, carried within their widths as the scalar code leaves them.
        *h = Columns([0, 1, 2].map(|limb| u128::from(limbs[limb][j]))).carry();
    }
}

/// Eight blocks as limbs, block j in lane j, with the 2^128 bit every AEAD block carries.
#[inline(always)]
fn message(chunk: &[[u8; 16]; LANES]) -> [__m512i; 3] {
    // SAFETY: for the intrinsics, only called from functions with AVX-512F enabled; the chunk
    // is 128 readable bytes.
    unsafe {
        let first = _mm512_loadu_si512(chunk.as_ptr().cast());
        let second = _mm512_loadu_si512(chunk[4..].as_ptr().cast());
        // Each block's low and high 64-bit words, gathered across the two registers.
        let low =
            _mm512_permutex2var_epi64(first, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), second);
        let high =
            _mm512_permutex2var_epi64(first, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), second);
        let mask44 = _mm512_set1_epi64(MASK44 as i64);
        [
            _mm512_and_si512(low, mask44),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64(low, 44), _mm512_slli_epi64(high, 20)),
                mask44,
            ),
            _mm512_or_si512(_mm512_srli_epi64(high, 24), _mm512_set1_epi64(1 << 40)),
        ]
    }
}

#[inline(always)]
fn add(a: [__m512i; 3], b: [__m512i; 3]) -> [__m512i; 3] {
    // SAFETY: for the intrinsics, only called from functions with AVX-512F enabled.
    core::array::from_fn(|i| unsafe { _mm512_add_epi64(a[i], b[i]) })
}

/// h · m lane by lane, partly reduced: limbs back under 44, 44 + a few and 42 bits.
///
/// Each column sums three 88-bit products; IFMA yields a product's bits 0-51 and 52-103
/// separately, so each column comes as a low and a high sum. A high sum's unit, 2^52, is 2^8
/// of the next column's 2^44; the third column's high sum lands at 2^140 = 2^130 · 2^10,
/// which is 5 · 2^10 modulo 2^130 - 5.
#[inline(always)]
fn multiply(h: [__m512i; 3], m: &Lanes) -> [__m512i; 3] {
    // SAFETY: for the intrinsics, only called from functions with AVX-512F and IFMA enabled.
    unsafe {
        let ([r0, r1, r2], [s1, s2]) = (m.r, m.s);
        let zero = _mm512_setzero_si512();
        let column = |a: __m512i, b: __m512i, c: __m512i, high: bool| {
            if high {
                let x = _mm512_madd52hi_epu64(zero, h[0], a);
                let x = _mm512_madd52hi_epu64(x, h[1], b);
                _mm512_madd52hi_epu64(x, h[2], c)
            } else {
                let x = _mm512_madd52lo_epu64(zero, h[0], a);
                let x = _mm512_madd52lo_epu64(x, h[1], b);
                _mm512_madd52lo_epu64(x, h[2], c)
            }
        };
        let (d0, e0) = (column(r0, s2, s1, false), column(r0, s2, s1, true));
        let (d1, e1) = (column(r1, r0, s2, false), column(r1, r0, s2, true));
        let (d2, e2) = (column(r2, r1, r0, false), column(r2, r1, r0, true));
        let mask44 = _mm512_set1_epi64(MASK44 as i64);
        let mask42 = _mm512_set1_epi64(MASK42 as i64);
        let h0 = _mm512_and_si512(d0, mask44);
        let d1 = _mm512_add_epi64(
            _mm512_add_epi64(d1, _mm512_srli_epi64(d0, 44)),
            _mm512_slli_epi64(e0, 8),
        );
        let h1 = _mm512_and_si512(d1, mask44);
        let d2 = _mm512_add_epi64(
            _mm512_add_epi64(d2, _mm512_srli_epi64(d1, 44)),
            _mm512_slli_epi64(e1, 8),
        );
        let h2 = _mm512_and_si512(d2, mask42);
        let c = _mm512_add_epi64(_mm512_srli_epi64(d2, 42), _mm512_slli_epi64(e2, 10));
        // h0 + 5c, then its carry into h1.
        let h0 = _mm512_add_epi64(h0, _mm512_add_epi64(c, _mm512_slli_epi64(c, 2)));
        let h1 = _mm512_add_epi64(h1, _mm512_srli_epi64(h0, 44));
        [_mm512_and_si512(h0, mask44), h1, h2]
    }
}
