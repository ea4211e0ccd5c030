//! GHASH (NIST SP 800-38D §6.4) with carry-less multiplication, in the bit-reflected form
//! Linux's `aes-gcm-avx10-x86_64.S` documents: blocks are byte-reversed on load, the hash key
//! is multiplied by x once when the key is made, and a product of 256 bits reduces in two folds
//! by x^63 + x^62 + x^57. Powers of the key are computed once per key, so that many blocks can
//! be multiplied independently and reduced together.

use core::arch::x86_64::*;

use zeroize::Zeroize;

use super::aes::{load, store};

/// Powers of the hash key kept per key: enough for 16 blocks (four 512-bit vectors) per
/// reduction.
pub(super) const POWERS: usize = 16;

/// Reverses the bytes of each 128-bit lane: GCM's byte order to the reflected one and back.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn byte_swap_mask() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// x^128 + x^127 + x^126 + x^121 + 1 in the reflected form, as the folds use it: the high
/// half is x^63 + x^62 + x^57.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn polynomial() -> __m128i {
    _mm_set_epi64x(0xc200_0000_0000_0000_u64 as i64, 1)
}

/// The powers H^16 .. H^1 of a hash key, highest first, then three zero blocks so that a
/// 64-byte load starting at any power stays inside (the zero lanes meet zeroed data).
/// Karatsuba's folded halves of each power are not kept: two instructions per loaded vector
/// make them, and a flow's key state, read from memory when many flows take turns, stays a
/// third smaller.
#[derive(Clone)]
pub(super) struct KeyPowers {
    powers: [[u8; 16]; POWERS + 3],
}

impl KeyPowers {
    /// Prepares the powers of `h` = AES_K(0^128), as GCM's bytes.
    #[target_feature(enable = "sse2,ssse3,pclmulqdq")]
    pub(super) fn new(h: __m128i) -> KeyPowers {
        let h = _mm_shuffle_epi8(h, byte_swap_mask());
        // Multiply by x: shift the 128-bit value left by one (each 64-bit half doubled, the
        // carry between the halves put back), and reduce if a bit fell off the top.
        let carries = _mm_srai_epi32(_mm_shuffle_epi32(h, 0xd3), 31);
        let fold = _mm_set_epi32(0xc200_0000_u32 as i32, 1, 0, 1);
        let h = _mm_xor_si128(_mm_add_epi64(h, h), _mm_and_si128(carries, fold));
        let mut powers = [[0; 16]; POWERS + 3];
        let mut power = h;
        for slot in powers[..POWERS].iter_mut().rev() {
            store(slot, power);
            power = multiply(power, h);
        }
        KeyPowers { powers }
    }

    /// H^n, for n in 1 ..= 16.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn power(&self, n: usize) -> __m128i {
        // `get`, not indexing: no panic path for the kernel object (zero past the range).
        self.powers
            .get(POWERS.wrapping_sub(n))
            .map_or_else(|| _mm_setzero_si128(), |power| load(power))
    }

    /// Where the powers end: H^m lies 16·m bytes below, and the three zero blocks start here.
    pub(super) fn end(&self) -> *const u8 {
        self.powers.as_ptr().wrapping_add(POWERS).cast()
    }

    /// The powers from H^n down, as stored: block `i` of what this points at is H^(n - i).
    /// Reading 64 bytes is in bounds for any n in 1 ..= 16.
    pub(super) fn powers_from(&self, n: usize) -> *const u8 {
        // Pointer arithmetic, not a slice: no panic path for the kernel object, and the
        // readers' SAFETY arguments hold `n` to 1 ..= 16 already.
        self.powers
            .as_ptr()
            .wrapping_add(POWERS.wrapping_sub(n))
            .cast()
    }
}

impl Drop for KeyPowers {
    fn drop(&mut self) {
        self.powers.zeroize();
    }
}

/// Sums of partial products: low, middle and high 128 bits of 256-bit products, to add up
/// over many blocks and reduce once.
#[derive(Clone, Copy)]
pub(super) struct Products {
    pub(super) low: __m128i,
    pub(super) middle: __m128i,
    pub(super) high: __m128i,
}

impl Products {
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn zero() -> Products {
        Products {
            low: _mm_setzero_si128(),
            middle: _mm_setzero_si128(),
            high: _mm_setzero_si128(),
        }
    }

    /// Adds the product of `a` and `b`.
    #[inline]
    #[target_feature(enable = "sse2,pclmulqdq")]
    pub(super) fn add(&mut self, a: __m128i, b: __m128i) {
        self.low = _mm_xor_si128(self.low, _mm_clmulepi64_si128(a, b, 0x00));
        self.middle = _mm_xor_si128(
            self.middle,
            _mm_xor_si128(
                _mm_clmulepi64_si128(a, b, 0x01),
                _mm_clmulepi64_si128(a, b, 0x10),
            ),
        );
        self.high = _mm_xor_si128(self.high, _mm_clmulepi64_si128(a, b, 0x11));
    }

    /// Reduces the sum to 128 bits.
    #[inline]
    #[target_feature(enable = "sse2,pclmulqdq")]
    pub(super) fn reduce(self) -> __m128i {
        let poly = polynomial();
        let middle = _mm_xor_si128(
            _mm_xor_si128(self.middle, _mm_shuffle_epi32(self.low, 0x4e)),
            _mm_clmulepi64_si128(poly, self.low, 0x01),
        );
        _mm_xor_si128(
            _mm_xor_si128(self.high, _mm_shuffle_epi32(middle, 0x4e)),
            _mm_clmulepi64_si128(poly, middle, 0x01),
        )
    }
}

/// a * b in the reflected field.
#[inline]
#[target_feature(enable = "sse2,pclmulqdq")]
pub(super) fn multiply(a: __m128i, b: __m128i) -> __m128i {
    let mut products = Products::zero();
    products.add(a, b);
    products.reduce()
}
