//! Poly1305's long runs on 256-bit registers with AVX2, for CPUs without AVX-512 IFMA: eight
//! interleaved hashes in two registers' four lanes each, lane j of register k taking blocks
//! 4k + j, 4k + j + 8, 4k + j + 16 and so on, each multiplied by r⁸ per step; the last step
//! multiplies block i of its eight by r^(8 - i) instead, so that the lanes' sum is the one
//! hash of the whole run. Two registers, not one, because a step's multiplication and
//! carries form a chain: two independent chains keep the vector units busy. AVX2 multiplies
//! 32 by 32 bits (`vpmuludq`), so the run works in five 26-bit limbs (as poly1305-donna-32
//! does) and converts from and back to the scalar code's 44-bit limbs at its ends.

use core::arch::x86_64::*;

use super::{MASK42, MASK44, Multiplier};

/// Blocks per register: one per 64-bit lane.
const LANES: usize = 4;

/// Blocks per step: two registers' lanes.
pub(super) const BLOCKS: usize = 2 * LANES;

/// The shortest run worth the vector units: below it, r⁵ to r⁸, converting the powers and
/// the hash, loading the lanes and adding them up cost more than the scalar code saves.
/// Sixteen blocks while the scalar code took nine multiplications a block; with four, 40:
/// measured on Zen 4 with the AVX2 backend forced (`QUICSEAL_BACKEND=avx2`), 300- and
/// 512-byte ChaCha20-Poly1305 packets sealed and opened 30-50 ns faster, 700 bytes and up
/// alike. Not yet measured on a CPU without AVX-512, whose multipliers may move it.
pub(super) const MIN_BLOCKS: usize = 40;

const MASK26: u64 = (1 << 26) - 1;

/// A number below about 2^131 in five 26-bit limbs, from three limbs of 44, 44 (plus a
/// carry) and 42 bits: the top limb takes whatever lies above bit 104.
#[inline(always)]
fn to_26(x: [u64; 3]) -> [u64; 5] {
    let x1 = x[1] + (x[0] >> 44);
    let (x0, x1, x2) = (x[0] & MASK44, x1 & MASK44, x[2] + (x1 >> 44));
    [
        x0 & MASK26,
        ((x0 >> 26) | (x1 << 18)) & MASK26,
        (x1 >> 8) & MASK26,
        ((x1 >> 34) | (x2 << 10)) & MASK26,
        x2 >> 16,
    ]
}

/// Five limbs of about 26 bits (up to 2^30 each) back to the scalar code's three, partly
/// reduced mod 2^130 - 5 as its column carries leave them.
#[inline(always)]
fn from_26(l: [u64; 5]) -> [u64; 3] {
    let s0 = l[0] + (l[1] << 26);
    let s1 = (s0 >> 44) + (l[2] << 8) + (l[3] << 34);
    let s2 = (s1 >> 44) + (l[4] << 16);
    let h0 = (s0 & MASK44) + (s2 >> 42) * 5;
    [h0 & MASK44, (s1 & MASK44) + (h0 >> 44), s2 & MASK42]
}

/// Lane-wise multipliers: limbs r0 to r4 and the reduction's 5·r1 to 5·r4.
struct Lanes {
    r: [__m256i; 5],
    s: [__m256i; 4],
}

impl Lanes {
    /// `powers[j]` in lane j. Loops, not closures or `array::map`: those would not inherit
    /// the caller's target features, and the intrinsics in them would stay calls.
    #[inline(always)]
    fn new(powers: [&Multiplier; LANES]) -> Lanes {
        // limbs[i][j]: limb i of lane j's power; then five times limbs 1 to 4.
        let mut limbs = [[0u64; LANES]; 9];
        for (j, power) in powers.iter().enumerate() {
            for (i, limb) in to_26(power.r).into_iter().enumerate() {
                limbs[i][j] = limb;
                if i > 0 {
                    limbs[4 + i][j] = 5 * limb;
                }
            }
        }
        // SAFETY: for the intrinsics, only called from functions with AVX2 enabled; each
        // array is 32 readable bytes.
        let mut vectors = [unsafe { _mm256_setzero_si256() }; 9];
        for (vector, lanes) in vectors.iter_mut().zip(&limbs) {
            // SAFETY: as above.
            *vector = unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) };
        }
        for vector in &mut vectors {
            // SAFETY: only called from functions with AVX2 enabled.
            *vector = unsafe { opaque(*vector) };
        }
        let [r0, r1, r2, r3, r4, s1, s2, s3, s4] = vectors;
        Lanes {
            r: [r0, r1, r2, r3, r4],
            s: [s1, s2, s3, s4],
        }
    }
}

/// Hashes `chunks` (eight blocks each) after the running hash `h`, given r to r⁴ (`low`) and
/// r⁵ to r⁸ (`high`); returns the hash after them, partly reduced as the scalar code leaves
/// it.
#[target_feature(enable = "avx2")]
pub(super) fn absorb(
    h: [u64; 3],
    chunks: &[[[u8; 16]; BLOCKS]],
    low: &[Multiplier; 4],
    high: &[Multiplier; 4],
) -> [u64; 3] {
    let Some((last, rest)) = chunks.split_last() else {
        return h;
    };
    let every = Lanes::new([&high[3]; LANES]);
    // The running hash enters the first register's lane 0, added to the run's first block.
    let start = to_26(h);
    let mut first = [_mm256_setzero_si256(); 5];
    for (limb, value) in first.iter_mut().zip(start) {
        *limb = _mm256_set_epi64x(0, 0, 0, value as i64);
    }
    let mut second = [_mm256_setzero_si256(); 5];
    for chunk in rest {
        let (a, b) = message(chunk);
        first = multiply(add(first, a), &every);
        second = multiply(add(second, b), &every);
    }
    let (a, b) = message(last);
    let first = multiply(
        add(first, a),
        &Lanes::new([&high[3], &high[2], &high[1], &high[0]]),
    );
    let second = multiply(
        add(second, b),
        &Lanes::new([&low[3], &low[2], &low[1], &low[0]]),
    );
    // Eight lanes' limbs add up to 30 bits at most.
    let mut sums = [0u64; 5];
    for (sum, (a, b)) in sums.iter_mut().zip(first.into_iter().zip(second)) {
        let mut lanes = [0u64; LANES];
        // SAFETY: 32 writable bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), _mm256_add_epi64(a, b)) };
        *sum = lanes.iter().sum();
    }
    from_26(sums)
}

/// Eight blocks as limbs, blocks 0-3 in the first registers' lanes and 4-7 in the second's.
#[inline(always)]
fn message(chunk: &[[u8; 16]; BLOCKS]) -> ([__m256i; 5], [__m256i; 5]) {
    // SAFETY: the chunk's two halves are four blocks each.
    let halves = unsafe { &*chunk.as_ptr().cast::<[[[u8; 16]; LANES]; 2]>() };
    (limbs(&halves[0]), limbs(&halves[1]))
}

/// `x`, with nothing the compiler knows about it.
///
/// `vpmuludq` multiplies the low 32 bits of each lane. The compiler knows the limbs' upper
/// bits are zero, drops the intrinsic's masking as redundant, and is then left with a
/// 64-bit multiplication whose operands, coming round the loop, it can no longer prove
/// small: it emits three multiplications and shifts for each one. Hiding the operands'
/// origin keeps the masking, and so the single instruction.
///
/// # Safety
/// The caller must enable AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn opaque(mut x: __m256i) -> __m256i {
    // SAFETY: an empty instruction sequence that reads and writes only this register.
    unsafe {
        core::arch::asm!("/* {0} */", inout(ymm_reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    x
}

/// Four blocks as limbs, block j in lane j, with the 2^128 bit every AEAD block carries.
#[inline(always)]
fn limbs(blocks: &[[u8; 16]; LANES]) -> [__m256i; 5] {
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled; the blocks
    // are 64 readable bytes.
    unsafe {
        let first = _mm256_loadu_si256(blocks.as_ptr().cast());
        let second = _mm256_loadu_si256(blocks[2..].as_ptr().cast());
        // Each block's low and high 64-bit words: unpacking pairs blocks 0 and 2, 1 and 3 in
        // the 128-bit lanes; the permutation puts them in order.
        let low = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(first, second), 0xd8);
        let high = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(first, second), 0xd8);
        let mask = _mm256_set1_epi64x(MASK26 as i64);
        [
            _mm256_and_si256(low, mask),
            _mm256_and_si256(_mm256_srli_epi64(low, 26), mask),
            _mm256_and_si256(
                _mm256_or_si256(_mm256_srli_epi64(low, 52), _mm256_slli_epi64(high, 12)),
                mask,
            ),
            _mm256_and_si256(_mm256_srli_epi64(high, 14), mask),
            _mm256_or_si256(_mm256_srli_epi64(high, 40), _mm256_set1_epi64x(1 << 24)),
        ]
    }
}

#[inline(always)]
fn add(a: [__m256i; 5], b: [__m256i; 5]) -> [__m256i; 5] {
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled.
    unsafe {
        [
            _mm256_add_epi64(a[0], b[0]),
            _mm256_add_epi64(a[1], b[1]),
            _mm256_add_epi64(a[2], b[2]),
            _mm256_add_epi64(a[3], b[3]),
            _mm256_add_epi64(a[4], b[4]),
        ]
    }
}

/// h · m lane by lane, partly reduced: every limb back under 26 bits but the second and the
/// last, a few bits over.
///
/// Limbs of h under 2^27 times limbs of m under 2^26 (or five times that, where a product
/// passes 2^130 and wraps around as 5) sum to under 2^59 a column.
#[inline(always)]
fn multiply(mut h: [__m256i; 5], m: &Lanes) -> [__m256i; 5] {
    for limb in &mut h {
        // SAFETY: only called from functions with AVX2 enabled.
        *limb = unsafe { opaque(*limb) };
    }
    let ([r0, r1, r2, r3, r4], [s1, s2, s3, s4]) = (m.r, m.s);
    let d0 = column(&h, [r0, s4, s3, s2, s1]);
    let d1 = column(&h, [r1, r0, s4, s3, s2]);
    let d2 = column(&h, [r2, r1, r0, s4, s3]);
    let d3 = column(&h, [r3, r2, r1, r0, s4]);
    let d4 = column(&h, [r4, r3, r2, r1, r0]);
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled.
    unsafe {
        // Two carry chains side by side: 3 -> 4 -> 0 -> 1 and 0 -> 1 -> 2 -> 3 -> 4.
        let d4 = _mm256_add_epi64(d4, carry(d3));
        let d3 = low(d3);
        let d1 = _mm256_add_epi64(d1, carry(d0));
        let d0 = low(d0);
        let c = carry(d4);
        let d4 = low(d4);
        // d0 + 5c.
        let d0 = _mm256_add_epi64(d0, _mm256_add_epi64(c, _mm256_slli_epi64(c, 2)));
        let d2 = _mm256_add_epi64(d2, carry(d1));
        let d1 = low(d1);
        let d1 = _mm256_add_epi64(d1, carry(d0));
        let d0 = low(d0);
        let d3 = _mm256_add_epi64(d3, carry(d2));
        let d2 = low(d2);
        let d4 = _mm256_add_epi64(d4, carry(d3));
        let d3 = low(d3);
        [d0, d1, d2, d3, d4]
    }
}

/// One column of the product: the sum of h's limbs times `m`'s.
#[inline(always)]
fn column(h: &[__m256i; 5], m: [__m256i; 5]) -> __m256i {
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled.
    unsafe {
        let x = _mm256_add_epi64(_mm256_mul_epu32(h[0], m[0]), _mm256_mul_epu32(h[1], m[1]));
        let y = _mm256_add_epi64(_mm256_mul_epu32(h[2], m[2]), _mm256_mul_epu32(h[3], m[3]));
        _mm256_add_epi64(_mm256_add_epi64(x, y), _mm256_mul_epu32(h[4], m[4]))
    }
}

/// What a limb carries into the next: its bits from 26 up.
#[inline(always)]
fn carry(x: __m256i) -> __m256i {
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled.
    unsafe { _mm256_srli_epi64(x, 26) }
}

/// A limb's own 26 bits.
#[inline(always)]
fn low(x: __m256i) -> __m256i {
    // SAFETY: for the intrinsics, only called from functions with AVX2 enabled.
    unsafe { _mm256_and_si256(x, _mm256_set1_epi64x(MASK26 as i64)) }
}
