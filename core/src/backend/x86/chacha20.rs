//! ChaCha20 (RFC 8439 §2.3) with AVX-512, rotations in one instruction (`vprold`), in three
//! layouts: sixteen blocks "vertically" ([`keystream16`], a register per state word, for the
//! bulk), eight the same way on 256-bit registers ([`keystream8_with`]), and groups of four
//! blocks by rows ([`keystream`], one block in each 128-bit lane, the rows in four registers;
//! [`Row4`] for a single block advanced a double round at a time). The `_with` forms call
//! a hook in each double round, for work to run in the gaps of the rounds' chains.

use core::arch::x86_64::*;

use zeroize::Zeroizing;

use super::Width;
use crate::Error;
use crate::backend::MASK_LEN;

/// The key and nonce of one packet's keystream, as the state's rows 1 to 3 (row 3 with a zero
/// block counter).
#[derive(Clone, Copy)]
pub(super) struct ChaChaState {
    key_low: __m128i,
    key_high: __m128i,
    nonce: __m128i,
}

/// "expand 32-byte k".
pub(super) const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

impl ChaChaState {
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn new(key: &[u8; 32], nonce: &[u8; 12]) -> ChaChaState {
        let word = |bytes: &[u8], i: usize| {
            i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]])
        };
        ChaChaState {
            key_low: _mm_set_epi32(word(key, 12), word(key, 8), word(key, 4), word(key, 0)),
            key_high: _mm_set_epi32(word(key, 28), word(key, 24), word(key, 20), word(key, 16)),
            nonce: _mm_set_epi32(word(nonce, 8), word(nonce, 4), word(nonce, 0), 0),
        }
    }
}

/// Four blocks' rows: lane i holds block `counter + i`.
#[derive(Clone, Copy)]
struct Rows {
    a: __m512i,
    b: __m512i,
    c: __m512i,
    d: __m512i,
}

impl Rows {
    #[inline(always)]
    fn start(state: &ChaChaState, counter: u32) -> Rows {
        // SAFETY: for the intrinsics, only called from functions with AVX-512F enabled.
        unsafe {
            let counters = _mm512_set_epi32(
                0,
                0,
                0,
                counter.wrapping_add(3) as i32,
                0,
                0,
                0,
                counter.wrapping_add(2) as i32,
                0,
                0,
                0,
                counter.wrapping_add(1) as i32,
                0,
                0,
                0,
                counter as i32,
            );
            Rows {
                a: _mm512_broadcast_i32x4(_mm_set_epi32(
                    SIGMA[3] as i32,
                    SIGMA[2] as i32,
                    SIGMA[1] as i32,
                    SIGMA[0] as i32,
                )),
                b: _mm512_broadcast_i32x4(state.key_low),
                c: _mm512_broadcast_i32x4(state.key_high),
                d: _mm512_add_epi32(_mm512_broadcast_i32x4(state.nonce), counters),
            }
        }
    }
}

/// One block's rows in 128-bit registers: a single ChaCha20 block advanced a double round
/// at a time by a caller that has other work to put between them.
#[derive(Clone, Copy)]
pub(super) struct Row4 {
    a: __m128i,
    b: __m128i,
    c: __m128i,
    d: __m128i,
}

impl Row4 {
    /// Block `counter` of `state`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn start(state: &ChaChaState, counter: u32) -> Row4 {
        Row4 {
            a: _mm_set_epi32(
                SIGMA[3] as i32,
                SIGMA[2] as i32,
                SIGMA[1] as i32,
                SIGMA[0] as i32,
            ),
            b: state.key_low,
            c: state.key_high,
            d: _mm_add_epi32(state.nonce, _mm_cvtsi32_si128(counter as i32)),
        }
    }

    /// A column round and a diagonal round. To diagonalise, rows a, c and d turn against
    /// row b rather than b, c and d against a: b is the last row a quarter round writes and
    /// the first the next one reads (`a += b`), so turning it put a shuffle on the block's
    /// dependency chain in every half round, while a, c and d are written early enough for
    /// theirs to hide (a 64-byte seal's two chains, 311 -> 300 ns on Zen 4).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn double_round(&mut self) {
        macro_rules! quarter {
            () => {
                self.a = _mm_add_epi32(self.a, self.b);
                self.d = _mm_rol_epi32(_mm_xor_si128(self.d, self.a), 16);
                self.c = _mm_add_epi32(self.c, self.d);
                self.b = _mm_rol_epi32(_mm_xor_si128(self.b, self.c), 12);
                self.a = _mm_add_epi32(self.a, self.b);
                self.d = _mm_rol_epi32(_mm_xor_si128(self.d, self.a), 8);
                self.c = _mm_add_epi32(self.c, self.d);
                self.b = _mm_rol_epi32(_mm_xor_si128(self.b, self.c), 7);
            };
        }
        quarter!();
        self.a = _mm_shuffle_epi32(self.a, 0x93);
        self.c = _mm_shuffle_epi32(self.c, 0x39);
        self.d = _mm_shuffle_epi32(self.d, 0x4e);
        quarter!();
        self.a = _mm_shuffle_epi32(self.a, 0x39);
        self.c = _mm_shuffle_epi32(self.c, 0x93);
        self.d = _mm_shuffle_epi32(self.d, 0x4e);
    }

    /// Words 0 and 1 of the finished block (after the ten double rounds, the starting
    /// rows `start` added), little-endian: the first eight bytes of its keystream.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn first_word_pair(&self, start: &Row4) -> u64 {
        _mm_cvtsi128_si64(_mm_add_epi32(self.a, start.a)) as u64
    }
}

/// One quarter round on every column (or, after diagonalising, every diagonal) of each
/// group of four blocks' rows in `rows`, step by step across the groups: the groups' chains
/// reach the scheduler side by side (9 to 12 blocks on Zen 4: 600- and 700-byte
/// ChaCha20-Poly1305 seals 9-21 ns faster, 600-byte opens 13).
macro_rules! quarter_rounds {
    ($rows:expr) => {
        macro_rules! step {
            ($x:ident, $y:ident, $z:ident, $bits:literal) => {
                for r in $rows.iter_mut() {
                    r.$x = _mm512_add_epi32(r.$x, r.$y);
                    r.$z = _mm512_rol_epi32(_mm512_xor_si512(r.$z, r.$x), $bits);
                }
            };
        }
        step!(a, b, d, 16);
        step!(c, d, b, 12);
        step!(a, b, d, 8);
        step!(c, d, b, 7);
    };
}

/// One double round of the vertical layouts on AVX-512's registers, on an array `x` of
/// sixteen registers (word `w` of every lane's block in `x[w]`), with the width's add, xor
/// and rotate. (AVX2's sixteen registers step two quarter rounds at a time instead:
/// `chacha20_avx2::group`.)
///
/// The four quarter rounds of each half round are written step by step side by side (each
/// step `a += b; d = (d ^ a) <<< bits`, with the roles of the quarter round's four steps),
/// not one whole quarter round after another: the instructions reach the scheduler already
/// interleaved, four independent chains at a time. Sixteen blocks on Zen 4: 750 -> 715
/// cycles, 1350-byte ChaCha20-Poly1305 seals 704 -> 685 ns.
macro_rules! vertical_double_round {
    ($x:ident, $add:ident, $xor:ident, $rol:ident) => {
        macro_rules! step {
            ($a:literal, $b:literal, $d:literal, $bits:literal) => {
                $x[$a] = $add($x[$a], $x[$b]);
                $x[$d] = $rol($xor($x[$d], $x[$a]), $bits);
            };
        }
        // Columns (0, 4, 8, 12) to (3, 7, 11, 15).
        step!(0, 4, 12, 16);
        step!(1, 5, 13, 16);
        step!(2, 6, 14, 16);
        step!(3, 7, 15, 16);
        step!(8, 12, 4, 12);
        step!(9, 13, 5, 12);
        step!(10, 14, 6, 12);
        step!(11, 15, 7, 12);
        step!(0, 4, 12, 8);
        step!(1, 5, 13, 8);
        step!(2, 6, 14, 8);
        step!(3, 7, 15, 8);
        step!(8, 12, 4, 7);
        step!(9, 13, 5, 7);
        step!(10, 14, 6, 7);
        step!(11, 15, 7, 7);
        // Diagonals (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14).
        step!(0, 5, 15, 16);
        step!(1, 6, 12, 16);
        step!(2, 7, 13, 16);
        step!(3, 4, 14, 16);
        step!(10, 15, 5, 12);
        step!(11, 12, 6, 12);
        step!(8, 13, 7, 12);
        step!(9, 14, 4, 12);
        step!(0, 5, 15, 8);
        step!(1, 6, 12, 8);
        step!(2, 7, 13, 8);
        step!(3, 4, 14, 8);
        step!(10, 15, 5, 7);
        step!(11, 12, 6, 7);
        step!(8, 13, 7, 7);
        step!(9, 14, 4, 7);
    };
}

/// The keystream of `N` groups of four blocks from `counter` on, as 4 * `N` blocks in order:
/// `out[g][i]` is block `counter + 4 * g + i`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn keystream<const N: usize>(state: &ChaChaState, counter: u32) -> [[__m512i; 4]; N] {
    // SAFETY: AVX-512F is enabled here.
    unsafe { keystream_with::<N>(state, counter, |_| ()) }
}

/// [`keystream`], calling `side(i)` in double round `i` (0 to 9): work of the caller's that
/// does not depend on this keystream (Poly1305 of earlier ciphertext) runs in the gaps of the
/// rounds' dependency chains rather than after them. Always inlined, so that `side` is too,
/// into a caller that may enable more features than this module's functions do.
///
/// # Safety
/// The caller must enable AVX-512F.
#[inline(always)]
pub(super) unsafe fn keystream_with<const N: usize>(
    state: &ChaChaState,
    counter: u32,
    mut side: impl FnMut(usize),
) -> [[__m512i; 4]; N] {
    // SAFETY: for the intrinsics, the caller enables AVX-512F.
    unsafe {
        // Loops, not `array::from_fn`: a closure here would not inherit the caller's target
        // features, and its intrinsics would stay calls.
        let start = |g: usize| Rows::start(state, counter.wrapping_add(4 * g as u32));
        let mut rows = [start(0); N];
        for (g, r) in rows.iter_mut().enumerate() {
            *r = start(g);
        }
        for round in 0..10 {
            side(round);
            // Diagonalised by turning a, c and d, not b: see `Row4::double_round`. The
            // groups' quarter rounds go step by step side by side.
            quarter_rounds!(rows);
            for r in &mut rows {
                r.a = _mm512_shuffle_epi32(r.a, _MM_PERM_CBAD);
                r.c = _mm512_shuffle_epi32(r.c, _MM_PERM_ADCB);
                r.d = _mm512_shuffle_epi32(r.d, _MM_PERM_BADC);
            }
            quarter_rounds!(rows);
            for r in &mut rows {
                r.a = _mm512_shuffle_epi32(r.a, _MM_PERM_ADCB);
                r.c = _mm512_shuffle_epi32(r.c, _MM_PERM_CBAD);
                r.d = _mm512_shuffle_epi32(r.d, _MM_PERM_BADC);
            }
        }
        let mut out = [[_mm512_setzero_si512(); 4]; N];
        for (g, out) in out.iter_mut().enumerate() {
            // The starting rows again, cheaper to rebuild than to keep in registers all along.
            let (r, s) = (rows[g], start(g));
            let a = _mm512_add_epi32(r.a, s.a);
            let b = _mm512_add_epi32(r.b, s.b);
            let c = _mm512_add_epi32(r.c, s.c);
            let d = _mm512_add_epi32(r.d, s.d);
            // Lane i of a, b, c, d is block i's 16-byte rows: transpose to whole blocks.
            let ab_low = _mm512_shuffle_i32x4(a, b, 0x44);
            let cd_low = _mm512_shuffle_i32x4(c, d, 0x44);
            let ab_high = _mm512_shuffle_i32x4(a, b, 0xee);
            let cd_high = _mm512_shuffle_i32x4(c, d, 0xee);
            *out = [
                _mm512_shuffle_i32x4(ab_low, cd_low, 0x88),
                _mm512_shuffle_i32x4(ab_low, cd_low, 0xdd),
                _mm512_shuffle_i32x4(ab_high, cd_high, 0x88),
                _mm512_shuffle_i32x4(ab_high, cd_high, 0xdd),
            ];
        }
        out
    }
}

/// `2 * G` blocks from `counter` on by rows on 256-bit registers, two to a group, block
/// `2g + i` in 128-bit lane i of group g: a short payload's one-time key and first blocks.
/// The 512-bit rows of [`keystream`] compute four blocks in one chain, and on a CPU that
/// executes 512-bit instructions as two 256-bit halves (Zen 4) blocks no one reads cost as
/// much issue as those read; for five or six blocks, three groups have the shorter chain
/// and less issue than [`keystream8_with`]'s eight blocks. Group g's halves are `out[g]`:
/// its first block's two 32-byte halves, then its second's. Calls `side(i)` in double round
/// `i` as [`keystream_with`] does.
///
/// # Safety
/// The caller must enable AVX-512F and AVX-512VL.
#[inline(always)]
pub(super) unsafe fn keystream_pairs_with<const G: usize>(
    state: &ChaChaState,
    counter: u32,
    mut side: impl FnMut(usize),
) -> [[__m256i; 4]; G] {
    // SAFETY: for the intrinsics, the caller enables AVX-512F and AVX-512VL.
    unsafe {
        let sigma = _mm256_broadcastsi128_si256(_mm_set_epi32(
            SIGMA[3] as i32,
            SIGMA[2] as i32,
            SIGMA[1] as i32,
            SIGMA[0] as i32,
        ));
        let (key_low, key_high) = (
            _mm256_broadcastsi128_si256(state.key_low),
            _mm256_broadcastsi128_si256(state.key_high),
        );
        let nonce = _mm256_broadcastsi128_si256(state.nonce);
        // Loops, not `array::from_fn`, as in `keystream_with`.
        let mut d = [nonce; G];
        for (g, d) in d.iter_mut().enumerate() {
            let first = counter.wrapping_add(2 * g as u32);
            let counters =
                _mm256_set_epi32(0, 0, 0, first.wrapping_add(1) as i32, 0, 0, 0, first as i32);
            *d = _mm256_add_epi32(nonce, counters);
        }
        let start_d = d;
        let (mut a, mut b, mut c) = ([sigma; G], [key_low; G], [key_high; G]);
        // The groups' quarter rounds step by step side by side, as the vertical layouts'.
        macro_rules! step {
            ($x:ident, $y:ident, $z:ident, $bits:literal) => {
                for g in 0..G {
                    $x[g] = _mm256_add_epi32($x[g], $y[g]);
                    $z[g] = _mm256_rol_epi32(_mm256_xor_si256($z[g], $x[g]), $bits);
                }
            };
        }
        macro_rules! quarter {
            () => {
                step!(a, b, d, 16);
                step!(c, d, b, 12);
                step!(a, b, d, 8);
                step!(c, d, b, 7);
            };
        }
        for round in 0..10 {
            side(round);
            // Diagonalised by turning a, c and d, not b: see `Row4::double_round`.
            quarter!();
            for g in 0..G {
                a[g] = _mm256_shuffle_epi32(a[g], 0x93);
                c[g] = _mm256_shuffle_epi32(c[g], 0x39);
                d[g] = _mm256_shuffle_epi32(d[g], 0x4e);
            }
            quarter!();
            for g in 0..G {
                a[g] = _mm256_shuffle_epi32(a[g], 0x39);
                c[g] = _mm256_shuffle_epi32(c[g], 0x93);
                d[g] = _mm256_shuffle_epi32(d[g], 0x4e);
            }
        }
        let mut out = [[sigma; 4]; G];
        for (g, out) in out.iter_mut().enumerate() {
            let a = _mm256_add_epi32(a[g], sigma);
            let b = _mm256_add_epi32(b[g], key_low);
            let c = _mm256_add_epi32(c[g], key_high);
            let d = _mm256_add_epi32(d[g], start_d[g]);
            // Lane i of a, b, c, d is the group's block i's 16-byte rows: gather each
            // block's halves.
            *out = [
                _mm256_permute2x128_si256(a, b, 0x20),
                _mm256_permute2x128_si256(c, d, 0x20),
                _mm256_permute2x128_si256(a, b, 0x31),
                _mm256_permute2x128_si256(c, d, 0x31),
            ];
        }
        out
    }
}

/// Sixteen blocks from `counter` on, in order, computed "vertically": register `w` holds
/// word `w` of all sixteen blocks (block j in 32-bit lane j), so the rounds need no
/// shuffles; one transposition at the end turns the words into blocks. The row layout of
/// [`keystream`] spends three shuffles per half round on every four blocks, so this is the
/// one for the bulk of a long payload.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn keystream16(state: &ChaChaState, counter: u32) -> [__m512i; 16] {
    // SAFETY: AVX-512F is enabled here.
    unsafe { keystream16_with(state, counter, |_| ()) }
}

/// [`keystream16`], calling `side(i)` in double round `i` as [`keystream_with`] does.
///
/// # Safety
/// The caller must enable AVX-512F.
#[inline(always)]
pub(super) unsafe fn keystream16_with(
    state: &ChaChaState,
    counter: u32,
    side: impl FnMut(usize),
) -> [__m512i; 16] {
    // SAFETY: the caller enables AVX-512F, which the intrinsics and the callees need.
    unsafe {
        let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let counters = _mm512_add_epi32(_mm512_set1_epi32(counter as i32), lanes);
        let nonce = state.words(3);
        let nonces = [
            _mm512_set1_epi32(nonce[1] as i32),
            _mm512_set1_epi32(nonce[2] as i32),
            _mm512_set1_epi32(nonce[3] as i32),
        ];
        transpose(vertical_with(&state.key_words(), counters, nonces, side))
    }
}

impl ChaChaState {
    /// Row `row` (1 and 2: the key, 3: counter and nonce) as words.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn words(&self, row: usize) -> [u32; 4] {
        let row = match row {
            1 => self.key_low,
            2 => self.key_high,
            _ => self.nonce,
        };
        let mut words = [0u32; 4];
        // SAFETY: 16 writable bytes.
        unsafe { _mm_storeu_si128(words.as_mut_ptr().cast(), row) };
        words
    }

    /// Row `row` (1 and 2: the key, 3: a zero counter and the nonce).
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn row(&self, row: usize) -> __m128i {
        match row {
            1 => self.key_low,
            2 => self.key_high,
            _ => self.nonce,
        }
    }

    /// The key's eight words.
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn key_words(&self) -> KeyWords {
        let (low, high) = (self.words(1), self.words(2));
        KeyWords(core::array::from_fn(|w| {
            if w < 4 { low[w] } else { high[w - 4] }
        }))
    }
}

/// A 32-byte key for this module's code, kept wiped on drop; fails on a CPU without AVX-512
/// (the invariant every caller's `unsafe` relies on) or for a key of another length.
pub(super) fn avx512_key(key: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    if !Width::Avx512.available() {
        return Err(Error::InvalidConfig);
    }
    let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidKeyLength)?;
    Ok(Zeroizing::new(key))
}

/// A key as ChaCha20's eight state words, wiped when dropped.
pub(super) struct KeyWords(pub(super) [u32; 8]);

impl KeyWords {
    pub(super) fn new(key: &[u8; 32]) -> KeyWords {
        KeyWords(core::array::from_fn(|w| {
            u32::from_le_bytes([key[4 * w], key[4 * w + 1], key[4 * w + 2], key[4 * w + 3]])
        }))
    }
}

impl Drop for KeyWords {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Sixteen blocks under one key, each with its own counter and nonce (lane j of `counters`
/// and of the three `nonces` words): the state after the rounds and the final addition,
/// word `w` of every block in register `w`. Sixteen packets' header-protection masks, or
/// the first blocks of several short packets, come from one call, at the cost of one.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn vertical(key: &KeyWords, counters: __m512i, nonces: [__m512i; 3]) -> [__m512i; 16] {
    // SAFETY: AVX-512F is enabled here.
    unsafe { vertical_with(key, counters, nonces, |_| ()) }
}

/// [`vertical`], calling `side(i)` in double round `i` as [`keystream_with`] does.
///
/// # Safety
/// The caller must enable AVX-512F.
#[inline(always)]
unsafe fn vertical_with(
    key: &KeyWords,
    counters: __m512i,
    nonces: [__m512i; 3],
    mut side: impl FnMut(usize),
) -> [__m512i; 16] {
    // SAFETY: for the intrinsics, the caller enables AVX-512F.
    unsafe {
        // Loops, not `array::from_fn`, as in `keystream_with`.
        let mut start = [counters; 16];
        for (w, word) in start.iter_mut().enumerate() {
            *word = match w {
                0..4 => _mm512_set1_epi32(SIGMA[w] as i32),
                4..12 => _mm512_set1_epi32(key.0[w - 4] as i32),
                12 => counters,
                _ => nonces[w - 13],
            };
        }
        let mut x = start;
        for round in 0..10 {
            side(round);
            vertical_double_round!(x, _mm512_add_epi32, _mm512_xor_si512, _mm512_rol_epi32);
        }
        for (x, start) in x.iter_mut().zip(start) {
            *x = _mm512_add_epi32(*x, start);
        }
        x
    }
}

/// Eight blocks from `counter` on, in the vertical layout on 256-bit registers: the same
/// dependency chains as [`keystream16`]'s, so about the same time when the chains, not the
/// vector units, are what limits (a payload's last few blocks), and a third less than the
/// row layout's [`keystream`] of two groups. Block j is `out[2 * j]` (its first 32 bytes)
/// then `out[2 * j + 1]`. Calls `side(i)` in double round `i` as [`keystream_with`] does.
/// With `lane`, block 7 is that block instead ([`LaneBlock::mask`] reads it).
///
/// # Safety
/// The caller must enable AVX-512F and AVX-512VL.
#[inline(always)]
pub(super) unsafe fn keystream8_with(
    state: &ChaChaState,
    counter: u32,
    lane: Option<&LaneBlock>,
    mut side: impl FnMut(usize),
) -> [__m256i; 16] {
    // SAFETY: for the intrinsics, the caller enables AVX-512F and AVX-512VL.
    unsafe {
        let key = state.key_words();
        let nonce = state.words(3);
        let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
        // Loops, not `array::from_fn`, as in `keystream_with`.
        let mut start = [lanes; 16];
        for (w, word) in start.iter_mut().enumerate() {
            *word = match w {
                0..4 => _mm256_set1_epi32(SIGMA[w] as i32),
                4..12 => _mm256_set1_epi32(key.0[w - 4] as i32),
                12 => _mm256_add_epi32(_mm256_set1_epi32(counter as i32), lanes),
                _ => _mm256_set1_epi32(nonce[w - 12] as i32),
            };
        }
        if let Some(lane) = lane {
            let [_, _, _, _, keys @ .., counter, n0, n1, n2] = &mut start;
            lane.blend(keys, counter, [n0, n1, n2]);
        }
        let mut x = start;
        for round in 0..10 {
            side(round);
            vertical_double_round!(x, _mm256_add_epi32, _mm256_xor_si256, _mm256_rol_epi32);
        }
        for (x, start) in x.iter_mut().zip(start) {
            *x = _mm256_add_epi32(*x, start);
        }
        transpose8(x)
    }
}

/// A block of another key, counter and nonce that an eight-block vertical keystream call
/// ([`keystream8_with`], and the AVX2 key's) computes in its last lane where the payload
/// leaves that lane free: a header mask's block (RFC 9001 §5.4.4), whose own chain of
/// rounds otherwise runs by rows beside the call's.
pub(super) struct LaneBlock {
    key: KeyWords,
    counter: u32,
    nonce: [u32; 3],
}

impl LaneBlock {
    /// The lane the block takes: the last.
    pub(super) const LANE: usize = 7;

    /// Block `counter` under `key` and `nonce`.
    pub(super) fn new(key: KeyWords, counter: u32, nonce: &[u8; 12]) -> LaneBlock {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = *nonce;
        LaneBlock {
            key,
            counter,
            nonce: [
                u32::from_le_bytes([a0, a1, a2, a3]),
                u32::from_le_bytes([b0, b1, b2, b3]),
                u32::from_le_bytes([c0, c1, c2, c3]),
            ],
        }
    }

    /// Puts the block's key, counter and nonce into lane [`LANE`](Self::LANE) of a vertical
    /// call's starting words: `keys` (words 4 to 11), `counter` (12) and `nonces` (13 to
    /// 15). No indexing: no panic path for the kernel object. Always inlined, the three
    /// groups apart: as one chain of iterators over the twelve words, the AVX2 key's
    /// 1350-byte seals and opens took 1.02x the time.
    ///
    /// # Safety
    /// The caller must enable AVX2.
    #[inline(always)]
    pub(super) unsafe fn blend(
        &self,
        keys: &mut [__m256i; 8],
        counter: &mut __m256i,
        nonces: [&mut __m256i; 3],
    ) {
        // SAFETY: the caller enables AVX2.
        let into_lane = |all: __m256i, word: u32| unsafe {
            _mm256_blend_epi32::<{ 1 << LaneBlock::LANE }>(all, _mm256_set1_epi32(word as i32))
        };
        for (all, &word) in keys.iter_mut().zip(&self.key.0) {
            *all = into_lane(*all, word);
        }
        *counter = into_lane(*counter, self.counter);
        for (all, &word) in nonces.into_iter().zip(&self.nonce) {
            *all = into_lane(*all, word);
        }
    }

    /// The first five bytes of the block, from the call's output: the header mask.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn mask(keystream: &[__m256i; 16]) -> [u8; MASK_LEN] {
        let first = _mm256_extract_epi64::<0>(keystream[2 * LaneBlock::LANE]);
        let mut mask = [0; MASK_LEN];
        mask.copy_from_slice(&first.to_le_bytes()[..MASK_LEN]);
        mask
    }
}

/// Turns eight blocks' words in the vertical layout on 256-bit registers (word `w` of block
/// `j` in lane `j` of `x[w]`) into blocks: block j is `out[2 * j]` (its first 32 bytes) then
/// `out[2 * j + 1]`. Words 0-7 and 8-15 are each an 8x8 transposition: within 128-bit lanes
/// first, then across them. No closures: they would not inherit the caller's target features.
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
pub(super) unsafe fn transpose8(x: [__m256i; 16]) -> [__m256i; 16] {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        let mut out = x;
        for half in 0..2 {
            let words = &x[8 * half..8 * half + 8];
            // pairs[p]: words 2p and 2p + 1 interleaved, of blocks 0, 1, 4, 5 (low) and 2, 3,
            // 6, 7 (high).
            let mut pairs = [[x[0]; 2]; 4];
            for (p, pair) in pairs.iter_mut().enumerate() {
                let (a, b) = (words[2 * p], words[2 * p + 1]);
                *pair = [_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b)];
            }
            for k in 0..4 {
                // Words 0-3 (front) and 4-7 (back) of blocks k and 4 + k.
                let (i, high) = (k / 2, k % 2 == 1);
                let (front, back) = if high {
                    (
                        _mm256_unpackhi_epi64(pairs[0][i], pairs[1][i]),
                        _mm256_unpackhi_epi64(pairs[2][i], pairs[3][i]),
                    )
                } else {
                    (
                        _mm256_unpacklo_epi64(pairs[0][i], pairs[1][i]),
                        _mm256_unpacklo_epi64(pairs[2][i], pairs[3][i]),
                    )
                };
                out[2 * k + half] = _mm256_permute2x128_si256(front, back, 0x20);
                out[2 * (4 + k) + half] = _mm256_permute2x128_si256(front, back, 0x31);
            }
        }
        out
    }
}

/// Turns [`vertical`]'s words into blocks: register j is block j.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn transpose(x: [__m512i; 16]) -> [__m512i; 16] {
    // First each 128-bit lane's 4x4 words of four registers, so that a register holds words
    // 4q..4q+3 of one block in each lane ...
    let quads: [[__m512i; 4]; 4] = core::array::from_fn(|q| {
        let [a, b, c, d] = [x[4 * q], x[4 * q + 1], x[4 * q + 2], x[4 * q + 3]];
        let (ab_low, ab_high) = (_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        let (cd_low, cd_high) = (_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
        [
            _mm512_unpacklo_epi64(ab_low, cd_low),
            _mm512_unpackhi_epi64(ab_low, cd_low),
            _mm512_unpacklo_epi64(ab_high, cd_high),
            _mm512_unpackhi_epi64(ab_high, cd_high),
        ]
    });
    // ... then the 128-bit lanes: quads[q][k] lane l is words 4q.. of block 4l + k.
    let mut out = [_mm512_setzero_si512(); 16];
    for k in 0..4 {
        let [a, b, c, d] = [quads[0][k], quads[1][k], quads[2][k], quads[3][k]];
        let ab_low = _mm512_shuffle_i32x4(a, b, 0x44);
        let cd_low = _mm512_shuffle_i32x4(c, d, 0x44);
        let ab_high = _mm512_shuffle_i32x4(a, b, 0xee);
        let cd_high = _mm512_shuffle_i32x4(c, d, 0xee);
        out[k] = _mm512_shuffle_i32x4(ab_low, cd_low, 0x88);
        out[4 + k] = _mm512_shuffle_i32x4(ab_low, cd_low, 0xdd);
        out[8 + k] = _mm512_shuffle_i32x4(ab_high, cd_high, 0x88);
        out[12 + k] = _mm512_shuffle_i32x4(ab_high, cd_high, 0xdd);
    }
    out
}

/// XORs `len` bytes from `src` with the keystream from block `counter` on into `dst`; the last
/// block may be partial. Returns the counter of the block after the last one used.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
/// disjoint; the CPU must have AVX-512F, AVX-512BW and AVX-512VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn xor(
    state: &ChaChaState,
    counter: u32,
    src: *const u8,
    dst: *mut u8,
    len: usize,
) -> u32 {
    let mut done = 0;
    let mut counter = counter;
    while len - done >= 1024 {
        for (i, block) in keystream16(state, counter).iter().enumerate() {
            let at = done + 64 * i;
            // SAFETY: `at + 64 <= len`; read before written.
            unsafe {
                let text = _mm512_loadu_si512(src.add(at).cast());
                _mm512_storeu_si512(dst.add(at).cast(), _mm512_xor_si512(text, *block));
            }
        }
        counter = counter.wrapping_add(16);
        done += 1024;
    }
    if done < len {
        // The rest, fewer than 16 blocks, from one keystream call: the groups' rounds run
        // side by side instead of one group's after another's.
        let rest = len - done;
        // SAFETY: forwarded, for the rest of both ranges.
        unsafe {
            let (src, dst) = (src.add(done), dst.add(done));
            counter = match rest.div_ceil(256) {
                1 => tail::<1>(state, counter, src, dst, rest),
                2 => tail::<2>(state, counter, src, dst, rest),
                3 => tail::<3>(state, counter, src, dst, rest),
                _ => tail::<4>(state, counter, src, dst, rest),
            };
        }
    }
    counter
}

/// XORs the last `len` bytes (at most `4 * N` blocks) with `N` groups' keystream.
///
/// # Safety
/// As for [`xor`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn tail<const N: usize>(
    state: &ChaChaState,
    counter: u32,
    src: *const u8,
    dst: *mut u8,
    len: usize,
) -> u32 {
    let groups = keystream::<N>(state, counter);
    let mut done = 0;
    for block in groups.iter().flatten() {
        if done >= len {
            break;
        }
        let bytes = (len - done).min(64);
        let mask = u64::MAX >> (64 - bytes);
        // SAFETY: the mask covers `bytes` bytes from `done`, inside both ranges; masked-off
        // bytes are neither read nor written; read before written.
        unsafe {
            let text = _mm512_maskz_loadu_epi8(mask, src.add(done).cast());
            _mm512_mask_storeu_epi8(dst.add(done).cast(), mask, _mm512_xor_si512(text, *block));
        }
        done += bytes;
    }
    counter.wrapping_add(len.div_ceil(64) as u32)
}

/// XORs `len` bytes from `src` with the keystream at `keystream` into `dst`.
///
/// # Safety
/// `keystream` and `src` must be valid for reads and `dst` for writes of `len` bytes, `src`
/// and `dst` the same bytes or disjoint; the CPU must have AVX-512F, AVX-512BW and AVX-512VL.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn xor_with(keystream: *const u8, src: *const u8, dst: *mut u8, len: usize) {
    let mut done = 0;
    while done < len {
        let bytes = (len - done).min(64);
        let mask = u64::MAX >> (64 - bytes);
        // SAFETY: the mask covers `bytes` bytes from `done`, inside all three ranges;
        // masked-off bytes are neither read nor written; read before written.
        unsafe {
            let key = _mm512_maskz_loadu_epi8(mask, keystream.add(done).cast());
            let text = _mm512_maskz_loadu_epi8(mask, src.add(done).cast());
            _mm512_mask_storeu_epi8(dst.add(done).cast(), mask, _mm512_xor_si512(text, key));
        }
        done += bytes;
    }
}
