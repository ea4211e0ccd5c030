//! Poly1305 (RFC 8439 §2.5). Long runs of blocks go to the vector units ([`Engine`]): with
//! AVX-512 IFMA ([`vector`]) eight blocks at a time, one per 64-bit lane, each lane multiplied
//! by r⁸; with AVX2 ([`avx2`]) four at a time in 26-bit limbs, each lane multiplied by r⁴.
//! The powers of r, the IFMA runs and the grouped multiplications that end a long payload's
//! hash ([`Poly1305::finish_with`]) work in 44-bit limbs, after poly1305-donna-64.
//! Everything else runs on the integer units one block at a time with r in two 64-bit words
//! ([`Single`]), the form of OpenSSL's scalar x86-64 code: four 64 x 64-bit multiplications
//! a block where 44-bit limbs take nine (on Zen 4, 256-byte ChaCha20-Poly1305 packets sealed
//! 421 -> 345 ns). The powers of r are computed per packet (the one-time key changes with
//! every packet), and only for a run long enough for the vector units.

use zeroize::Zeroize;

use super::partial_value;

mod avx2;
mod vector;
pub(super) use vector::LANES as VECTOR_LANES;

/// Where [`Poly1305::absorb`] hashes long runs of blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Engine {
    /// The integer units only.
    Integer,
    /// 256-bit registers, four blocks a step (the CPU has AVX2).
    Avx2,
    /// 512-bit registers with 52-bit multiply-accumulate, eight blocks a step (the CPU has
    /// AVX-512F and AVX-512 IFMA).
    Ifma,
}

impl Engine {
    /// The fastest engine this CPU has.
    pub(super) fn detected() -> Engine {
        if super::ifma_cpuid::get() {
            Engine::Ifma
        } else if super::avx2_cpuid::get() {
            Engine::Avx2
        } else {
            Engine::Integer
        }
    }

    /// Bytes of the shortest run this engine takes to the vector units: shorter ones stay on
    /// the integer units.
    pub(super) fn min_vector_bytes(self) -> usize {
        match self {
            Engine::Integer => usize::MAX,
            Engine::Avx2 => 16 * avx2::MIN_BLOCKS,
            Engine::Ifma => 16 * vector::MIN_BLOCKS,
        }
    }
}

const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;

/// A power of r as a multiplier: its limbs, and 5 * 4 times its two upper limbs (the
/// reduction folded into the multiplication).
#[derive(Clone, Copy, Default)]
pub(super) struct Multiplier {
    r: [u64; 3],
    s: [u64; 2],
}

impl Multiplier {
    fn new(r: [u64; 3]) -> Multiplier {
        Multiplier {
            r,
            s: [r[1] * (5 << 2), r[2] * (5 << 2)],
        }
    }

    /// self * other, partly reduced.
    fn times(&self, other: &Multiplier) -> Multiplier {
        let mut columns = Columns::default();
        columns.add(self.r, other);
        Multiplier::new(columns.carry())
    }

    /// self², partly reduced: [`times`](Self::times) with each cross product once, doubled,
    /// six multiplications where a product takes nine.
    fn squared(&self) -> Multiplier {
        let mul = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let [r0, r1, r2] = self.r;
        let s2 = self.s[1];
        Multiplier::new(
            Columns([
                mul(r0, r0) + mul(2 * r1, s2),
                mul(2 * r0, r1) + mul(r2, s2),
                mul(2 * r0, r2) + mul(r1, r1),
            ])
            .carry(),
        )
    }
}

/// Sums of the three 128-bit column products, to add several multiplications into before one
/// reduction.
#[derive(Clone, Copy, Default)]
pub(super) struct Columns(pub(super) [u128; 3]);

impl Columns {
    /// Adds x * m.
    #[inline(always)]
    fn add(&mut self, x: [u64; 3], m: &Multiplier) {
        let mul = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let ([r0, r1, r2], [s1, s2]) = (m.r, m.s);
        self.0[0] += mul(x[0], r0) + mul(x[1], s2) + mul(x[2], s1);
        self.0[1] += mul(x[0], r1) + mul(x[1], r0) + mul(x[2], s2);
        self.0[2] += mul(x[0], r2) + mul(x[1], r1) + mul(x[2], r0);
    }

    /// Carries back into three limbs, partly reduced mod 2^130 - 5.
    #[inline(always)]
    pub(super) fn carry(self) -> [u64; 3] {
        let [d0, mut d1, mut d2] = self.0;
        d1 += d0 >> 44;
        let h0 = (d0 as u64) & MASK44;
        d2 += d1 >> 44;
        let h1 = (d1 as u64) & MASK44;
        let h2 = (d2 as u64) & MASK42;
        let h0 = h0 + ((d2 >> 42) as u64) * 5;
        [h0 & MASK44, h1 + (h0 >> 44), h2]
    }
}

/// A block given as its little-endian value, as limbs with the 2^128 bit.
#[inline(always)]
fn value_limbs(value: u128) -> [u64; 3] {
    let (t0, t1) = (value as u64, (value >> 64) as u64);
    [
        t0 & MASK44,
        ((t0 >> 44) | (t1 << 20)) & MASK44,
        ((t1 >> 24) & MASK42) | (1 << 40),
    ]
}

/// A hash in 64-bit words: h₀ + h₁·2⁶⁴ + h₂·2¹²⁸, h₂ a few bits (partly reduced).
#[derive(Clone, Copy, Default)]
struct Wide([u64; 3]);

impl Wide {
    /// The same number in 44-bit limbs (the top one a bit wider: partly reduced).
    #[inline(always)]
    fn limbs(self) -> [u64; 3] {
        let [h0, h1, h2] = self.0;
        [
            h0 & MASK44,
            ((h0 >> 44) | (h1 << 20)) & MASK44,
            (h1 >> 24) | (h2 << 40),
        ]
    }

    /// A partly reduced number in 44-bit limbs (each within a few bits of its width).
    #[inline(always)]
    fn from_limbs([l0, l1, l2]: [u64; 3]) -> Wide {
        let low = u128::from(l0) + (u128::from(l1) << 44);
        let high = (low >> 64) + (u128::from(l2) << 24);
        Wide([low as u64, high as u64, (high >> 64) as u64])
    }
}

/// r in two 64-bit words, and 5/4 of the upper one: one block at a time on the integer units
/// with four 64 x 64-bit multiplications and two small ones, where 44-bit limbs take nine.
/// Clamping leaves r₁ a multiple of four, so r₁·2¹²⁸ = (r₁/4)·2¹³⁰ ≡ 5·(r₁/4) mod 2¹³⁰ - 5.
#[derive(Clone, Copy)]
struct Single([u64; 3]);

impl Single {
    /// r from the one-time key's first half, clamped (RFC 8439 §2.5): the one place that
    /// reads and clamps it ([`split_key`] takes its limbs from here).
    #[inline(always)]
    fn new(key: &[u8; 32]) -> Single {
        let word = |i: usize| u64::from_le_bytes(core::array::from_fn(|j| key[i + j]));
        let r0 = word(0) & 0x0fff_fffc_0fff_ffff;
        let r1 = word(8) & 0x0fff_fffc_0fff_fffc;
        Single([r0, r1, r1 + (r1 >> 2)])
    }

    /// (h + block + 2¹²⁸)·r, partly reduced (h₂ at most 4).
    #[inline(always)]
    fn block(self, Wide([h0, h1, h2]): Wide, block: u128) -> Wide {
        let [r0, r1, s1] = self.0;
        let mul = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let sum = u128::from(h0) + (block & u128::from(u64::MAX));
        let h0 = sum as u64;
        let sum = u128::from(h1) + (block >> 64) + (sum >> 64);
        let h1 = sum as u64;
        let h2 = h2 + (sum >> 64) as u64 + 1;
        // h₂ is a few bits and r₀, s₁ under 2⁶¹: h₂'s products fit in 64 bits.
        let d0 = mul(h0, r0) + mul(h1, s1);
        let d1 = mul(h0, r1) + mul(h1, r0) + u128::from(h2 * s1) + (d0 >> 64);
        let d2 = h2 * r0 + (d1 >> 64) as u64;
        // Bits 130 and up, times 5, back into the bottom.
        let carry = (d2 & !3) + (d2 >> 2);
        let sum = u128::from(d0 as u64) + u128::from(carry);
        let sum1 = u128::from(d1 as u64) + (sum >> 64);
        Wide([sum as u64, sum1 as u64, (d2 & 3) + (sum1 >> 64) as u64])
    }
}

/// [`Poly1305`]'s hash and r alone, a few registers' worth, for a loop that hashes a
/// block between groups of vector steps: kept apart from the rest of the state, the hash
/// stays in registers there instead of being stored after every block. Not wiped on drop,
/// like the scalar code's own locals (a `Drop` impl would keep it in memory): it goes back
/// to its [`Poly1305`] ([`resume`](Poly1305::resume)), whose drop wipes the hash and r.
pub(super) struct ScalarHash {
    single: Single,
    h: Wide,
}

impl ScalarHash {
    /// Hashes whole `blocks`, one at a time.
    #[inline(always)]
    pub(super) fn blocks(&mut self, blocks: &[[u8; 16]]) {
        for block in blocks {
            self.h = self.single.block(self.h, u128::from_le_bytes(*block));
        }
    }
}

/// Poly1305 in progress, fed in pieces of any length.
pub(super) struct Poly1305 {
    /// r, then r², r³, r⁴ once `raised`, in 44-bit limbs: for the vector units' runs and
    /// what follows them.
    powers: [Multiplier; 4],
    raised: bool,
    /// Where long runs go: the CPU has what it needs.
    engine: Engine,
    /// r for the integer units' one block at a time, in two 64-bit words.
    single: Single,
    /// The running hash in 64-bit words, h₀ + h₁·2⁶⁴ + h₂·2¹²⁸ with h₂ a few bits: the
    /// integer units' form. The vector units and the grouped multiplications take it in
    /// 44-bit limbs ([`Wide::limbs`]), converted on the way in and out.
    h: Wide,
    pad: [u64; 2],
    /// The current block's bytes so far as a little-endian number, zero above them: kept
    /// in a register, not in a buffer whose byte stores the block's load would wait for
    /// (and padded with zeros by construction, with no call to `memset`) ...
    pending: u128,
    /// ... and how many there are (below 16).
    pending_len: usize,
}

impl Poly1305 {
    /// Starts with the one-time key: r (clamped) then s. Long runs go to `engine`, which
    /// the CPU must have.
    #[inline]
    pub(super) fn new(key: &[u8; 32], engine: Engine) -> Poly1305 {
        let (r, pad) = split_key(key);
        Poly1305 {
            powers: [r; 4],
            raised: false,
            engine,
            single: Single::new(key),
            h: Wide::default(),
            pad,
            pending: 0,
            pending_len: 0,
        }
    }

    /// r to r⁴, computing r² to r⁴ the first time: r⁴ before r³, on the way to r⁸
    /// ([`higher_powers`](Self::higher_powers)).
    #[inline]
    fn raised(&mut self) -> &[Multiplier; 4] {
        if !self.raised {
            let r = self.powers[0];
            let r2 = r.squared();
            let r4 = r2.squared();
            self.powers[1..].copy_from_slice(&[r2, r2.times(&r), r4]);
            self.raised = true;
        }
        &self.powers
    }

    /// Hashes `data` as the continuation of the current section.
    #[inline]
    pub(super) fn absorb(&mut self, mut data: &[u8]) {
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(data.len());
            let (head, rest) = data.split_at(take);
            // `% 16`: `pending_len < 16` holds; the mask keeps the kernel object free of a
            // panic path (an overlong shift) the compiler cannot see past.
            self.pending |= partial_value(head) << (8 * (self.pending_len % 16));
            self.pending_len += take;
            data = rest;
            if self.pending_len < 16 {
                return;
            }
            self.block_value(self.pending);
            (self.pending, self.pending_len) = (0, 0);
        }
        let (mut blocks, rest) = data.as_chunks::<16>();
        if 16 * blocks.len() >= self.engine.min_vector_bytes() {
            match self.engine {
                Engine::Ifma => {
                    let (eights, others) = blocks.as_chunks::<{ vector::LANES }>();
                    // SAFETY: the engine is only chosen on a CPU with AVX-512F and IFMA.
                    unsafe { self.absorb_vector(eights) };
                    blocks = others;
                }
                Engine::Avx2 => {
                    let (eights, others) = blocks.as_chunks::<{ avx2::BLOCKS }>();
                    let higher = self.higher_powers();
                    let (h, powers) = (self.h.limbs(), self.raised());
                    // SAFETY: the engine is only chosen on a CPU with AVX2.
                    self.h = Wide::from_limbs(unsafe { avx2::absorb(h, eights, powers, &higher) });
                    blocks = others;
                }
                Engine::Integer => {}
            }
        }
        for block in blocks {
            self.block(block);
        }
        self.pending = partial_value(rest);
        self.pending_len = rest.len();
    }

    /// Hashes `chunks` in one run on the vector units. A function of its own with IFMA
    /// enabled, so that each step is inlined into the loop and the running hash stays in
    /// registers: called from [`absorb`](Self::absorb), which has no such features, every
    /// step was a call that passed the hash through memory (twice as slow).
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn absorb_vector(&mut self, chunks: &[[[u8; 16]; vector::LANES]]) {
        let mut run = self.vector_run(chunks.len());
        for chunk in chunks {
            run.step(chunk);
        }
        self.end_run(run);
    }

    /// Starts a run of `chunks` eight-block chunks on the vector units, to be fed chunk by
    /// chunk and handed back to [`end_run`](Self::end_run) before anything else is hashed.
    /// The section so far must end on a block boundary.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn vector_run(&mut self, chunks: usize) -> vector::Run {
        debug_assert_eq!(self.pending_len, 0);
        let higher = self.higher_powers();
        vector::Run::new(self.h.limbs(), chunks, &self.powers, &higher)
    }

    /// r⁵ to r⁸, for the vector units' runs: computed per run, as few packets are long
    /// enough to need them.
    #[inline]
    fn higher_powers(&mut self) -> [Multiplier; 4] {
        let [r, r2, r3, r4] = *self.raised();
        // r⁸ first: every step of a run but the last multiplies by it, and squaring is the
        // shortest way there; the others only the last step waits for.
        let r8 = r4.squared();
        [r4.times(&r), r4.times(&r2), r4.times(&r3), r8]
    }

    /// Takes the hash back from a finished run.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn end_run(&mut self, run: vector::Run) {
        self.h = Wide::from_limbs(run.finish());
    }

    /// Hashes `data` as a section of its own, zero-padded (RFC 8439 §2.8), where the hash so
    /// far ends on a block boundary: [`absorb`](Self::absorb) then [`pad`](Self::pad) for a
    /// packet's AAD (a block or two) on the integer units, always inlined. As calls, the two
    /// split the vector code around them (the registers saved, the keystream reloaded).
    #[inline(always)]
    pub(super) fn absorb_padded(&mut self, data: &[u8]) {
        debug_assert_eq!(self.pending_len, 0);
        let (blocks, rest) = data.as_chunks::<16>();
        for block in blocks {
            self.block(block);
        }
        if !rest.is_empty() {
            self.block_value(partial_value(rest));
        }
    }

    /// Ends the current section: a partial block is zero-padded (RFC 8439 §2.8).
    #[inline]
    pub(super) fn pad(&mut self) {
        if self.pending_len > 0 {
            self.block_value(self.pending);
            (self.pending, self.pending_len) = (0, 0);
        }
    }

    /// The running hash and r in the integer units' form, to hash whole blocks one at a
    /// time where the section so far ends on a block boundary; [`resume`](Self::resume)
    /// takes it back.
    #[inline(always)]
    pub(super) fn scalar(&self) -> ScalarHash {
        debug_assert_eq!(self.pending_len, 0);
        ScalarHash {
            single: self.single,
            h: self.h,
        }
    }

    /// Takes back the hash from [`scalar`](Self::scalar).
    #[inline(always)]
    pub(super) fn resume(&mut self, scalar: ScalarHash) {
        self.h = scalar.h;
    }

    /// h = (h + block + 2^128) * r, partly reduced.
    #[inline(always)]
    fn block(&mut self, block: &[u8; 16]) {
        self.block_value(u128::from_le_bytes(*block));
    }

    /// [`block`](Self::block) with the block as its little-endian value.
    #[inline(always)]
    fn block_value(&mut self, block: u128) {
        self.h = self.single.block(self.h, block);
    }

    /// Hashes the lengths block and returns the tag: h fully reduced mod 2^130 - 5, plus s.
    #[inline]
    pub(super) fn finish(mut self, lengths: &[u8; 16]) -> [u8; 16] {
        self.finish_here(lengths)
    }

    /// [`finish`](Self::finish) for a hash borrowed, not owned, which wipes it when dropped.
    #[inline]
    fn finish_here(&mut self, lengths: &[u8; 16]) -> [u8; 16] {
        self.block(lengths);
        tag(self.h.limbs(), self.pad)
    }

    /// Hashes `text`, the last bytes of a section that so far ends on a block boundary
    /// (after a vector run), zero-padded, then the lengths block, and returns the tag.
    /// With r² to r⁴ at hand, those blocks (up to nine for a text under a chunk) go up to
    /// four to a multiplication and one reduction, the first group taking what does not
    /// divide by four: the tag waits for one to three multiplications, not for a chain of
    /// one per block. Otherwise, or for a longer text, as [`absorb`](Self::absorb),
    /// [`pad`](Self::pad) and [`finish`](Self::finish). Borrows the hash: taken by value, it
    /// was copied whole on its way in, a 64-byte load right after the run's result was
    /// stored into it in 8-byte pieces (a store-forwarding stall on the tag's chain).
    #[inline]
    pub(super) fn finish_with(&mut self, text: &[u8], lengths: &[u8; 16]) -> [u8; 16] {
        const MOST: usize = 9;
        if !self.raised || self.pending_len > 0 || text.len() > 16 * (MOST - 1) {
            self.absorb(text);
            self.pad();
            return self.finish_here(lengths);
        }
        let (blocks, rest) = text.as_chunks::<16>();
        let partial = (!rest.is_empty()).then(|| partial_value(rest));
        let mut values = [0u128; MOST];
        let values_in = blocks
            .iter()
            .map(|block| u128::from_le_bytes(*block))
            .chain(partial)
            .chain([u128::from_le_bytes(*lengths)]);
        let mut n = 0;
        for (slot, value) in values.iter_mut().zip(values_in) {
            *slot = value;
            n += 1;
        }
        let values = values.get(..n).unwrap_or_default();
        let (first, fours) = values.split_at(values.len() % 4);
        let mut h = self.h.limbs();
        if !first.is_empty() {
            h = self.blocks_at_once(h, first);
        }
        for four in fours.chunks(4) {
            h = self.blocks_at_once(h, four);
        }
        tag(h, self.pad)
    }

    /// (h + m₀)·rᵏ + m₁·rᵏ⁻¹ + … + mₖ₋₁·r for the hash `h` in limbs and the k (one to four)
    /// blocks `values`, given as little-endian numbers: one reduction. r² to r⁴ must be
    /// raised.
    #[inline(always)]
    fn blocks_at_once(&self, h: [u64; 3], values: &[u128]) -> [u64; 3] {
        let mut columns = Columns::default();
        for (i, value) in values.iter().enumerate() {
            let [a, b, c] = value_limbs(*value);
            let x = if i == 0 {
                [h[0] + a, h[1] + b, h[2] + c]
            } else {
                [a, b, c]
            };
            if let Some(power) = self.powers.get(values.len() - 1 - i) {
                columns.add(x, power);
            }
        }
        columns.carry()
    }
}

/// The one-time key's halves: r, clamped ([`Single::new`]), as a multiplier in 44-bit
/// limbs, and s.
#[inline]
fn split_key(key: &[u8; 32]) -> (Multiplier, [u64; 2]) {
    let word = |i: usize| u64::from_le_bytes(core::array::from_fn(|j| key[i + j]));
    let r = Single::new(key).0;
    (
        Multiplier::new(Wide([r[0], r[1], 0]).limbs()),
        [word(16), word(24)],
    )
}

/// The tag from the final hash `h` (partly reduced) and s: h fully reduced mod 2^130 - 5,
/// plus s.
#[inline]
fn tag(h: [u64; 3], pad: [u64; 2]) -> [u8; 16] {
    let [mut h0, mut h1, mut h2] = h;
    let mut c;
    // Two rounds of carries bring every limb within its width.
    for _ in 0..2 {
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += c;
        c = h2 >> 42;
        h2 &= MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;
    }
    // h - p, chosen without a branch when it does not borrow.
    let mut g0 = h0 + 5;
    c = g0 >> 44;
    g0 &= MASK44;
    let mut g1 = h1 + c;
    c = g1 >> 44;
    g1 &= MASK44;
    let mut g2 = (h2 + c).wrapping_sub(1 << 42);
    let keep_g = (g2 >> 63).wrapping_sub(1);
    g0 &= keep_g;
    g1 &= keep_g;
    g2 &= keep_g;
    let keep_h = !keep_g;
    h0 = (h0 & keep_h) | g0;
    h1 = (h1 & keep_h) | g1;
    h2 = (h2 & keep_h) | g2;
    // + s, mod 2^128.
    let [t0, t1] = pad;
    h0 += t0 & MASK44;
    c = h0 >> 44;
    h0 &= MASK44;
    h1 += (((t0 >> 44) | (t1 << 20)) & MASK44) + c;
    c = h1 >> 44;
    h1 &= MASK44;
    h2 += ((t1 >> 24) & MASK42) + c;
    h2 &= MASK42;
    let low = h0 | (h1 << 44);
    let high = (h1 >> 20) | (h2 << 24);
    let mut tag = [0; 16];
    tag[..8].copy_from_slice(&low.to_le_bytes());
    tag[8..].copy_from_slice(&high.to_le_bytes());
    tag
}

/// The tags of up to eight messages hashed side by side on the vector units (AVX-512 IFMA),
/// one in each lane, for packets too short for one message's hash to fill the lanes: one
/// step multiplies all eight messages' running hashes, each by its own r. Message j is
/// `aads[j]` then `texts[j]`, each zero-padded to whole blocks, then `lengths`, under the
/// one-time key `keys[j]`; every message's AAD and text must be as long as the first
/// message's. `tags[j]` gets message j's tag.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn tags_side_by_side(
    keys: &[&[u8; 32]],
    aads: &[&[u8]],
    texts: &[&[u8]],
    lengths: &[u8; 16],
    tags: &mut [[u8; 16]],
) {
    let count = keys
        .len()
        .min(aads.len())
        .min(texts.len())
        .min(vector::LANES);
    let (Some(aad), Some(text)) = (aads.first(), texts.first()) else {
        return;
    };
    debug_assert!(aads[..count].iter().all(|a| a.len() == aad.len()));
    debug_assert!(texts[..count].iter().all(|t| t.len() == text.len()));
    let (aad_blocks, text_blocks) = (aad.len().div_ceil(16), text.len().div_ceil(16));
    let mut r = [Multiplier::default(); vector::LANES];
    let mut pads = [[0u64; 2]; vector::LANES];
    for ((r, pad), key) in r.iter_mut().zip(&mut pads).zip(keys) {
        (*r, *pad) = split_key(key);
    }
    // Block i of lane j's message, zero-padded; lanes past the messages hash zero blocks.
    let block = |i: usize| -> [[u8; 16]; vector::LANES] {
        let mut blocks = [[0u8; 16]; vector::LANES];
        for (j, out) in blocks.iter_mut().enumerate().take(count) {
            let piece = if i < aad_blocks {
                aads[j].get(16 * i..)
            } else if i < aad_blocks + text_blocks {
                texts[j].get(16 * (i - aad_blocks)..)
            } else {
                Some(&lengths[..])
            };
            match piece.map(|p| (p.first_chunk::<16>(), p)) {
                Some((Some(whole), _)) => *out = *whole,
                Some((None, part)) => out[..part.len()].copy_from_slice(part),
                None => {}
            }
        }
        blocks
    };
    let mut h = [[0u64; 3]; vector::LANES];
    vector::hash_lanes(&mut h, &r, aad_blocks + text_blocks + 1, block);
    for ((h, pad), tag_out) in h.iter().zip(&pads).zip(tags.iter_mut().take(count)) {
        *tag_out = tag(*h, *pad);
    }
    for r in &mut r {
        r.r.zeroize();
        r.s.zeroize();
    }
    pads.zeroize();
    h.zeroize();
}

impl Drop for Poly1305 {
    fn drop(&mut self) {
        for power in &mut self.powers {
            power.r.zeroize();
            power.s.zeroize();
        }
        self.h.0.zeroize();
        self.single.0.zeroize();
        self.pad.zeroize();
        self.pending.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// h fully reduced mod 2^130 - 5, as `tag` computes it (with a zero s).
    fn reduced(h: Wide) -> [u8; 16] {
        tag(h.limbs(), [0, 0])
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// The hash crosses between its two forms at every vector run's start and end: the
        /// conversions keep its value, for limbs up to a bit past their widths (partly
        /// reduced, as the vector runs leave them).
        #[test]
        fn limbs_and_words_keep_the_value(
            l0 in 0u64..1 << 45,
            l1 in 0u64..1 << 45,
            l2 in 0u64..1 << 43,
        ) {
            let wide = Wide::from_limbs([l0, l1, l2]);
            let value = |[a, b, c]: [u64; 3]| {
                // Bits 0-127 and 128 up of a + b·2^44 + c·2^88.
                let low = u128::from(a) + (u128::from(b) << 44);
                let high = (low >> 64) + (u128::from(c) << 24);
                (low as u64, high)
            };
            let Wide([w0, w1, w2]) = wide;
            prop_assert_eq!((w0, u128::from(w1) | (u128::from(w2) << 64)), value([l0, l1, l2]));
            prop_assert_eq!(Wide::from_limbs(wide.limbs()).0, wide.0);
        }

        /// One block on the integer units in 64-bit words agrees with the same block in
        /// 44-bit limbs, from running hashes anywhere in their partly reduced range (the top
        /// word up to 7 after a vector run) and with all-ones blocks and keys among them.
        #[test]
        fn a_block_in_words_matches_one_in_limbs(
            key in any::<[u8; 32]>(),
            h in any::<[u64; 2]>(),
            top in 0u64..8,
            block in any::<u128>(),
            saturate in any::<bool>(),
        ) {
            let (key, block) = if saturate { ([0xff; 32], u128::MAX) } else { (key, block) };
            let start = Wide([h[0], h[1], top]);
            let words = Single::new(&key).block(start, block);
            let (r, _) = split_key(&key);
            let [a, b, c] = value_limbs(block);
            let l = start.limbs();
            let mut columns = Columns::default();
            columns.add([l[0] + a, l[1] + b, l[2] + c], &r);
            let limbs = Wide::from_limbs(columns.carry());
            prop_assert_eq!(reduced(words), reduced(limbs));
            prop_assert!(words.0[2] <= 4);
        }
    }
}
