//! ChaCha20-Poly1305 and ChaCha20 header protection for x86_64 CPUs with AVX2 but without the
//! AVX-512 that [`ChaCha20Poly1305Key`](super::ChaCha20Poly1305Key) needs (Intel before Ice
//! Lake, AMD before Zen 4). ChaCha20 runs eight blocks at a time in the vertical layout on
//! 256-bit registers, a register per state word, or for a few blocks (a short payload, a
//! header mask) two, four or six by rows, a register per row of two blocks: one dependency
//! chain per two blocks instead of one per word, about half the wait. AVX2 has no rotate
//! instruction, so rotations by 16 and 8 bits are byte shuffles and those by 12 and 7 two
//! shifts and an OR. A payload in one piece longer than the first keystream call is
//! stitched: each later call hashes ciphertext with Poly1305 on the integer units, one block
//! between groups of the rounds' vector steps (a seal's, that of the call before it; an
//! open's, a share of all that is left, ahead of the keystream). Other payloads
//! are walked twice, cipher then hash (Poly1305 four blocks at a time on the vector
//! registers), each pass over bytes still in the L1 cache.

use core::arch::x86_64::*;
use core::ops::RangeInclusive;

use zeroize::Zeroizing;

use super::chacha20::{ChaChaState, KeyWords, LaneBlock, SIGMA, transpose8};
use super::chacha20_header::split;
use super::chacha20_poly1305::{
    BLOCK, Keystream, PacketCipher, PendingBlock, blocks, group_len, hash_text, lengths,
    seal_with_mask_beside_hash, streams, two_passes,
};
use super::poly1305::{Engine, Poly1305, ScalarHash};
use super::{Span, contiguous, holds_sample, set_masks, spans, walk};
use crate::Error;
use crate::backend::{
    BatchBuffers, HeaderKey, MASK_LEN, NONCE_LEN, OpenJob, Payload, SAMPLE_LEN, SealJob, Sealed,
    TAG_LEN,
};

/// Most blocks (one-time key's included) of a packet sealed in a group: half the lanes, so
/// that a group has at least two packets (192-byte payloads at most).
const MAX_GROUPED_BLOCKS: usize = LANES / 2;

/// Most blocks of a packet opened in a group: a quarter of the lanes (64-byte payloads).
const MAX_GROUPED_OPEN_BLOCKS: usize = LANES / 4;

/// Where the vertical layout's two resting words wait: see [`group`].
#[repr(C, align(32))]
struct Scratch([__m256i; 4]);

/// A byte-shuffle control for a 256-bit register, aligned to its width.
#[repr(C, align(32))]
struct Shuffle([u8; 32]);

/// Byte i of each 32-bit word from byte (i - 2) mod 4 of the word: rotation by 16 bits.
static ROTATE_BY_16: Shuffle = Shuffle(rotation_control(2));

/// Byte i from byte (i - 1) mod 4: rotation by 8 bits.
static ROTATE_BY_8: Shuffle = Shuffle(rotation_control(1));

/// The control of `vpshufb` that rotates each 32-bit word left by `bytes` bytes.
const fn rotation_control(bytes: usize) -> [u8; 32] {
    let mut control = [0; 32];
    let mut i = 0;
    while i < 32 {
        control[i] = (i - i % 4 + (i + 4 - bytes) % 4) as u8;
        i += 1;
    }
    control
}

/// Blocks per keystream call: one in each 32-bit lane of a 256-bit register; and packets per
/// [`ChaCha20Poly1305Avx2Key::seal_batch`] round.
const LANES: usize = 8;

/// A 32-byte key for this module's code, kept wiped on drop; fails on a CPU without AVX2 and
/// BMI2 (the invariant every caller's `unsafe` relies on) or for a key of another length.
fn avx2_key(key: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    if !available() {
        return Err(Error::InvalidConfig);
    }
    let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidKeyLength)?;
    Ok(Zeroizing::new(key))
}

/// True when this CPU has AVX2 and BMI2: what the keys of this module need (BMI2 for the
/// packet key's scalar hash; the header key shares the check, since `Auto` picks the two
/// together).
pub(in crate::backend) fn available() -> bool {
    super::avx2_bmi2_cpuid::get()
}

/// `x` rotated left by `bits` (16, 12, 8 or 7) in each 32-bit lane.
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
unsafe fn rotate(x: __m256i, bits: i32, masks: (__m256i, __m256i)) -> __m256i {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        match bits {
            // Byte i of each word comes from byte (i - bits / 8) mod 4.
            16 => _mm256_shuffle_epi8(x, masks.0),
            8 => _mm256_shuffle_epi8(x, masks.1),
            12 => _mm256_or_si256(_mm256_slli_epi32(x, 12), _mm256_srli_epi32(x, 20)),
            _ => _mm256_or_si256(_mm256_slli_epi32(x, 7), _mm256_srli_epi32(x, 25)),
        }
    }
}

/// The byte shuffles of [`rotate`] by 16 and by 8, hidden from the compiler ([`opaque`]):
/// it turned a shuffle by the known rotation-by-16 mask into two word shuffles, two
/// instructions on the two pipes that shift and shuffle, which bound the rounds.
#[inline]
#[target_feature(enable = "avx2")]
fn rotation_masks() -> (__m256i, __m256i) {
    let by_16 = _mm256_set_epi8(
        13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4,
        7, 6, 1, 0, 3, 2,
    );
    let by_8 = _mm256_set_epi8(
        14, 13, 12, 15, 10, 9, 8, 11, 6, 5, 4, 7, 2, 1, 0, 3, 14, 13, 12, 15, 10, 9, 8, 11, 6, 5,
        4, 7, 2, 1, 0, 3,
    );
    // SAFETY: AVX2 is enabled here.
    unsafe { (opaque(by_16), opaque(by_8)) }
}

/// `x`, with nothing the compiler knows about it.
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

/// `add_xor_shuffle!(a, b, d, mask)`: a += b; d ^= a; d = d rotated by a byte shuffle
/// (`mask` names the operand holding its control), registers by number.
#[rustfmt::skip]
macro_rules! add_xor_shuffle {
    ($a:literal, $b:literal, $d:literal, $mask:literal) => {
        concat!(
            "vpaddd ymm", $a, ", ymm", $a, ", ymm", $b, "\n",
            "vpxor ymm", $d, ", ymm", $d, ", ymm", $a, "\n",
            "vpshufb ymm", $d, ", ymm", $d, ", [rip + {", $mask, "}]\n",
        )
    };
}

/// `add_xor_shift!(c, d, b, t, left, right)`: c += d; b ^= c; b = b rotated left by
/// `left` (`right` = 32 - `left`) with two shifts and an OR through the temporary `t`,
/// registers by number.
#[rustfmt::skip]
macro_rules! add_xor_shift {
    ($c:literal, $d:literal, $b:literal, $t:literal, $left:literal, $right:literal) => {
        concat!(
            "vpaddd ymm", $c, ", ymm", $c, ", ymm", $d, "\n",
            "vpxor ymm", $b, ", ymm", $b, ", ymm", $c, "\n",
            "vpslld ymm", $t, ", ymm", $b, ", ", $left, "\n",
            "vpsrld ymm", $b, ", ymm", $b, ", ", $right, "\n",
            "vpor ymm", $b, ", ymm", $b, ", ymm", $t, "\n",
        )
    };
}

/// One group's template: steps 1 and 2 of two quarter rounds (byte shuffle `by_16`, then
/// shifts by 12 and 20) or steps 3 and 4 (`by_8`, 7 and 25), on registers `[a0 b0 c0 d0]`
/// and `[a1 b1 c1 d1]`, then `$swap`, the moves to and from the scratch area at the end of
/// a pair (empty elsewhere). It opens with a comment that names all three operands (the
/// scratch area's pointer and the masks' symbols): `asm!` rejects a template that leaves one
/// unused.
macro_rules! steps {
    (
        $mask:literal, $left:literal, $right:literal,
        [$a0:literal $b0:literal $c0:literal $d0:literal],
        [$a1:literal $b1:literal $c1:literal $d1:literal],
        $swap:expr
    ) => {
        concat!(
            "/* {scratch} {by_16} {by_8} */\n",
            add_xor_shuffle!($a0, $b0, $d0, $mask),
            add_xor_shuffle!($a1, $b1, $d1, $mask),
            add_xor_shift!($c0, $d0, $b0, 14, $left, $right),
            add_xor_shift!($c1, $d1, $b1, 15, $left, $right),
            $swap,
        )
    };
}

/// The end of pair `A`: words 9 and 13 to slots 2 and 3, words 10 and 15 from slots 0 and 1.
macro_rules! swap_after_a {
    () => {
        "vmovdqa [{scratch} + 64], ymm9\nvmovdqa [{scratch} + 96], ymm12\n\
         vmovdqa ymm9, [{scratch}]\nvmovdqa ymm12, [{scratch} + 32]\n"
    };
}

/// The end of pair `C`: words 10 and 15 back to slots 0 and 1, words 9 and 13 from slots 2
/// and 3.
macro_rules! swap_after_c {
    () => {
        "vmovdqa [{scratch}], ymm9\nvmovdqa [{scratch} + 32], ymm12\n\
         vmovdqa ymm9, [{scratch} + 64]\nvmovdqa ymm12, [{scratch} + 96]\n"
    };
}

/// The registers of the words that stay in registers, `ymm0` to `ymm13` in order.
#[rustfmt::skip]
type Words14 = (
    __m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i,
    __m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i,
);

/// Group `G` (0 to 7) of a double round on the words in `r` and `scratch`.
///
/// The vertical layout's double rounds are written in assembly, with the registers chosen
/// by hand. The sixteen words fill AVX2's sixteen registers, and a rotation by 12 or 7 needs
/// a seventeenth for a moment. Compiled from intrinsics, the words went to memory and back
/// about twenty times a double round, wherever the compiler chose. Here fourteen words stay
/// in `ymm0` to `ymm13`, two wait in a scratch area, and `ymm14` and `ymm15` are the
/// rotations' temporaries: eight stores and loads a double round.
///
/// A double round is eight groups of steps, each one `asm!` block. A group holds two
/// quarter rounds' first two steps (rotations by 16 and 12) or last two (8 and 7), the two
/// chains side by side. The quarter rounds run two at a time: columns 0 and 1 (`A`), 2 and
/// 3 (`B`), then diagonals 0 and 1 (`C`), 2 and 3 (`D`). The words the two at rest need
/// next wait in registers. Between groups the caller's `side` work runs on the integer
/// units, and the compiler keeps the words where the blocks name them.
///
/// Words 9 and 13 sit in `ymm9` and `ymm12` during `D` and `A`, and in scratch slots 2 and
/// 3 during `B` and `C`; words 10 and 15 take those registers during `B` and `C` and wait
/// in slots 0 and 1 otherwise. Each swap happens at the end of `A` and of `C`. Every other
/// word `w` is in `ymm{w}` (0 to 8) or `ymm{w - 1}` (11 to 14).
///
/// Eight-block calls on Zen 3: the double rounds took 148 instructions with 22 memory
/// operands compiled, 138 with 24 here (136 in the blocks, 16 of their memory operands
/// the byte shuffles' masks, and the loop's two). 1350-byte
/// ChaCha20-Poly1305 seals ran in 0.97x the time, opens 0.985x.
///
/// The masks are addressed relative to the instruction pointer (`sym`), not through two
/// registers: in the stitched calls the integer side, the Poly1305 blocks between the
/// groups, then has two more registers, where it rebuilt the masks' addresses and reloaded
/// a word of r around every block.
///
/// # Safety
/// `scratch` must be valid for reads and writes of four registers, 32-byte aligned.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn group<const G: usize>(r: &mut Words14, scratch: *mut __m256i) {
    macro_rules! run {
        ($template:expr) => {
            // SAFETY: the template reads and writes the scratch area (valid, the caller
            // says) and reads the masks (statics, by their symbols), and writes only the
            // registers declared.
            unsafe {
                core::arch::asm!(
                    $template,
                    scratch = in(reg) scratch,
                    by_16 = sym ROTATE_BY_16,
                    by_8 = sym ROTATE_BY_8,
                    inout("ymm0") r.0, inout("ymm1") r.1, inout("ymm2") r.2, inout("ymm3") r.3,
                    inout("ymm4") r.4, inout("ymm5") r.5, inout("ymm6") r.6, inout("ymm7") r.7,
                    inout("ymm8") r.8, inout("ymm9") r.9, inout("ymm10") r.10,
                    inout("ymm11") r.11, inout("ymm12") r.12, inout("ymm13") r.13,
                    out("ymm14") _, out("ymm15") _,
                    options(nostack, preserves_flags),
                )
            }
        };
    }
    // Words (0 4 8 12) (1 5 9 13), (2 6 10 14) (3 7 11 15), (0 5 10 15) (1 6 11 12), (2 7 8 13)
    // (3 4 9 14), in their registers.
    match G {
        0 => run!(steps!("by_16", 12, 20, [0 4 8 11], [1 5 9 12], "")),
        1 => run!(steps!("by_8", 7, 25, [0 4 8 11], [1 5 9 12], swap_after_a!())),
        2 => run!(steps!("by_16", 12, 20, [2 6 9 13], [3 7 10 12], "")),
        3 => run!(steps!("by_8", 7, 25, [2 6 9 13], [3 7 10 12], "")),
        4 => run!(steps!("by_16", 12, 20, [0 5 9 12], [1 6 10 11], "")),
        5 => run!(steps!("by_8", 7, 25, [0 5 9 12], [1 6 10 11], swap_after_c!())),
        6 => run!(steps!("by_16", 12, 20, [2 7 8 12], [3 4 9 13], "")),
        _ => run!(steps!("by_8", 7, 25, [2 7 8 12], [3 4 9 13], "")),
    }
}

/// Eight blocks under one key, lane j with the counter and nonce of lane j of `counters` and
/// the three `nonces` words: the state after the rounds and the final addition, word `w` of
/// every block in register `w`.
#[inline]
#[target_feature(enable = "avx2")]
fn vertical(key: &KeyWords, counters: __m256i, nonces: [__m256i; 3]) -> [__m256i; 16] {
    // SAFETY: AVX2 is enabled here.
    unsafe { vertical_with(broadcast(key), counters, nonces, |_| ()) }
}

/// Each of `key`'s eight words in every lane.
#[inline]
#[target_feature(enable = "avx2")]
fn broadcast(key: &KeyWords) -> [__m256i; 8] {
    // A loop, not `map`: a closure would not inherit this function's features.
    let mut words = [_mm256_setzero_si256(); 8];
    for (word, &value) in words.iter_mut().zip(&key.0) {
        *word = _mm256_set1_epi32(value as i32);
    }
    words
}

/// [`vertical`] with the key given word by word, lane by lane (`keys[w]` holds word `w` of
/// each lane's key), calling `side(i)` for `i` from 0 to 79, one after each group of four
/// steps of the double rounds: work of the caller's that does not depend on these blocks
/// (Poly1305 of earlier ciphertext, on the integer units) runs beside the rounds, which
/// keep the vector units busy, rather than after them. Always inlined, so that `side` is
/// too.
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
unsafe fn vertical_with(
    keys: [__m256i; 8],
    counters: __m256i,
    nonces: [__m256i; 3],
    mut side: impl FnMut(usize),
) -> [__m256i; 16] {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        // Loops, not `array::from_fn`: a closure would not inherit the caller's features.
        let mut start = [counters; 16];
        for (w, word) in start.iter_mut().enumerate() {
            *word = match w {
                0..4 => _mm256_set1_epi32(SIGMA[w] as i32),
                4..12 => keys[w - 4],
                12 => counters,
                _ => nonces[w - 13],
            };
        }
        let [
            x0,
            x1,
            x2,
            x3,
            x4,
            x5,
            x6,
            x7,
            x8,
            x9,
            x10,
            x11,
            x12,
            x13,
            x14,
            x15,
        ] = start;
        let mut r = (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x11, x12, x13, x14);
        let mut scratch = Scratch([x10, x15, x9, x13]);
        let at = scratch.0.as_mut_ptr();
        for round in 0..DOUBLE_ROUNDS {
            // SAFETY: for each group, the scratch area is four aligned registers.
            macro_rules! group_then_side {
                ($($g:literal)*) => {$(
                    group::<$g>(&mut r, at);
                    side(GROUPS_PER_ROUND * round + $g);
                )*};
            }
            group_then_side!(0 1 2 3 4 5 6 7);
        }
        let [x10, x15, ..] = scratch.0;
        // Key words at first and state words at the end: wiped, as `Keystream` is.
        // SAFETY: `at` points to the scratch area's four registers, still borrowed here.
        for slot in 0..scratch.0.len() {
            core::ptr::write_volatile(at.add(slot), _mm256_setzero_si256());
        }
        let mut x = [
            r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, x10, r.10, r.11, r.12, r.13, x15,
        ];
        for (x, start) in x.iter_mut().zip(start) {
            *x = _mm256_add_epi32(*x, start);
        }
        x
    }
}

/// The keystream of blocks `counter` to `counter + 7`: block j is `out[2 * j]` (its first 32
/// bytes) then `out[2 * j + 1]`.
#[inline]
#[target_feature(enable = "avx2")]
fn keystream(state: &ChaChaState, counter: u32) -> [__m256i; 16] {
    // SAFETY: AVX2 is enabled here.
    unsafe { keystream_with(state, counter, None, |_| ()) }
}

/// [`keystream`], calling `side` in the double rounds as [`vertical_with`] does, and with
/// the last lane given over to `mask`'s block where there is one: block 7 of the result is
/// then the mask's ([`LaneBlock::mask`]). Where the payload's blocks and the one-time key's
/// do not fill the last call (a 1350-byte datagram's take 22 of its 24 lanes), the mask
/// costs nothing more; by rows among the rounds' steps, its chain added about 40 vector
/// instructions and 20 moves to and from memory a double round (all sixteen registers hold
/// the words).
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
unsafe fn keystream_with(
    state: &ChaChaState,
    counter: u32,
    mask: Option<&LaneBlock>,
    side: impl FnMut(usize),
) -> [__m256i; 16] {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        let nonce = state.words(3);
        let mut keys = broadcast(&state.key_words());
        let mut counters = _mm256_add_epi32(
            _mm256_set1_epi32(counter as i32),
            _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
        );
        let mut nonces = [
            _mm256_set1_epi32(nonce[1] as i32),
            _mm256_set1_epi32(nonce[2] as i32),
            _mm256_set1_epi32(nonce[3] as i32),
        ];
        if let Some(mask) = mask {
            let [n0, n1, n2] = &mut nonces;
            mask.blend(&mut keys, &mut counters, [n0, n1, n2]);
        }
        transpose8(vertical_with(keys, counters, nonces, side))
    }
}

/// Whether the keystream call from block `counter` leaves its last lane
/// ([`LaneBlock::LANE`]) free: the payload of `len` bytes needs blocks 0 (the one-time
/// key's) to `len.div_ceil(64)` only.
#[inline]
fn mask_lane_free(counter: u32, len: usize) -> bool {
    counter as usize + LaneBlock::LANE > len.div_ceil(BLOCK)
}

/// Whether a stitched payload of `len` bytes leaves its last keystream call a lane for the
/// header mask's block: its blocks and the one-time key's do not fill that call.
#[inline]
fn lanes_masks(len: usize) -> bool {
    len.div_ceil(BLOCK) % LANES != LANES - 1
}

/// Two blocks by rows: a register per row, one block in each 128-bit lane.
#[derive(Clone, Copy)]
struct Rows {
    a: __m256i,
    b: __m256i,
    c: __m256i,
    d: __m256i,
}

/// `G` groups of two blocks by rows under `state`'s key, group g's last row (block counter
/// and nonce of each lane's block) `d[g]`: the state after the rounds and the final
/// addition. Several groups run side by side, their chains independent.
#[inline]
#[target_feature(enable = "avx2")]
fn rows<const G: usize>(state: &ChaChaState, d: [__m256i; G]) -> [Rows; G] {
    rows_with(state, d, || ())
}

/// [`rows`], calling `side` after each double round: other work whose steps then sit
/// among the rounds', so that the core runs the two chains side by side.
#[inline]
#[target_feature(enable = "avx2")]
fn rows_with<const G: usize>(
    state: &ChaChaState,
    d: [__m256i; G],
    mut side: impl FnMut(),
) -> [Rows; G] {
    let start = rows_start(state, d);
    let mut x = start;
    for _ in 0..10 {
        // SAFETY: AVX2 is enabled here.
        unsafe { double_round_rows(&mut x) };
        side();
    }
    add_rows(&mut x, &start);
    x
}

/// The starting state of [`rows`].
#[inline]
#[target_feature(enable = "avx2")]
fn rows_start<const G: usize>(state: &ChaChaState, d: [__m256i; G]) -> [Rows; G] {
    let sigma = _mm256_setr_epi32(
        SIGMA[0] as i32,
        SIGMA[1] as i32,
        SIGMA[2] as i32,
        SIGMA[3] as i32,
        SIGMA[0] as i32,
        SIGMA[1] as i32,
        SIGMA[2] as i32,
        SIGMA[3] as i32,
    );
    let (b, c) = (
        _mm256_broadcastsi128_si256(state.row(1)),
        _mm256_broadcastsi128_si256(state.row(2)),
    );
    let mut start = [Rows {
        a: sigma,
        b,
        c,
        d: sigma,
    }; G];
    for (rows, d) in start.iter_mut().zip(d) {
        rows.d = d;
    }
    start
}

/// The final addition of the starting state.
#[inline]
#[target_feature(enable = "avx2")]
fn add_rows<const G: usize>(x: &mut [Rows; G], start: &[Rows; G]) {
    for (x, start) in x.iter_mut().zip(start) {
        x.a = _mm256_add_epi32(x.a, start.a);
        x.b = _mm256_add_epi32(x.b, start.b);
        x.c = _mm256_add_epi32(x.c, start.c);
        x.d = _mm256_add_epi32(x.d, start.d);
    }
}

/// A double round on `G` groups of two blocks by rows, the groups' steps side by side.
/// Diagonalised by turning a, c and d, not b, which the chain reads first: see
/// `chacha20::Row4::double_round`.
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
unsafe fn double_round_rows<const G: usize>(x: &mut [Rows; G]) {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        let masks = rotation_masks();
        for r in x.iter_mut() {
            quarter_rows(r, masks);
            r.a = _mm256_shuffle_epi32(r.a, 0x93);
            r.c = _mm256_shuffle_epi32(r.c, 0x39);
            r.d = _mm256_shuffle_epi32(r.d, 0x4e);
        }
        for r in x.iter_mut() {
            quarter_rows(r, masks);
            r.a = _mm256_shuffle_epi32(r.a, 0x39);
            r.c = _mm256_shuffle_epi32(r.c, 0x93);
            r.d = _mm256_shuffle_epi32(r.d, 0x4e);
        }
    }
}

/// A quarter round on the four columns (or, diagonalised, diagonals) of both blocks.
///
/// # Safety
/// The caller must enable AVX2.
#[inline(always)]
unsafe fn quarter_rows(r: &mut Rows, masks: (__m256i, __m256i)) {
    // SAFETY: for the intrinsics, the caller enables AVX2.
    unsafe {
        r.a = _mm256_add_epi32(r.a, r.b);
        r.d = rotate(_mm256_xor_si256(r.d, r.a), 16, masks);
        r.c = _mm256_add_epi32(r.c, r.d);
        r.b = rotate(_mm256_xor_si256(r.b, r.c), 12, masks);
        r.a = _mm256_add_epi32(r.a, r.b);
        r.d = rotate(_mm256_xor_si256(r.d, r.a), 8, masks);
        r.c = _mm256_add_epi32(r.c, r.d);
        r.b = rotate(_mm256_xor_si256(r.b, r.c), 7, masks);
    }
}

/// The keystream of the `2 * G` blocks from `counter` on, by rows, as 32-byte halves in
/// order into `buffer`; returns how many blocks that was.
#[inline]
#[target_feature(enable = "avx2")]
fn fill_by_rows<const G: usize>(
    buffer: &mut Keystream,
    state: &ChaChaState,
    counter: u32,
    side: impl FnMut(),
) -> usize {
    let nonce = _mm256_broadcastsi128_si256(state.row(3));
    let mut d = [nonce; G];
    for (g, d) in d.iter_mut().enumerate() {
        let first = counter.wrapping_add(2 * g as u32) as i32;
        let counters = _mm256_setr_epi32(first, 0, 0, 0, first.wrapping_add(1), 0, 0, 0);
        *d = _mm256_add_epi32(nonce, counters);
    }
    let groups = rows_with(state, d, side);
    // Six blocks at most: with eight, four groups by rows took longer than the vertical
    // layout (3-5% for 413- and 470-byte datagrams on Zen 3).
    const { assert!(G <= 3) };
    let mut halves = [nonce; 12];
    for (g, x) in groups.iter().enumerate() {
        // Lane 0 of every row is the group's first block, lane 1 its second.
        halves[4 * g] = _mm256_permute2x128_si256(x.a, x.b, 0x20);
        halves[4 * g + 1] = _mm256_permute2x128_si256(x.c, x.d, 0x20);
        halves[4 * g + 2] = _mm256_permute2x128_si256(x.a, x.b, 0x31);
        halves[4 * g + 3] = _mm256_permute2x128_si256(x.c, x.d, 0x31);
    }
    buffer.fill_halves(&halves[..4 * G])
}

/// XORs `len` bytes from `src` with those at `keystream` into `dst`.
///
/// # Safety
/// `keystream` and `src` must be valid for reads and `dst` for writes of `len` bytes, `src`
/// and `dst` the same bytes or disjoint; the CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn xor(keystream: *const u8, src: *const u8, dst: *mut u8, len: usize) {
    let mut done = 0;
    // SAFETY: every access is below `len` in all three ranges; each is read before written.
    unsafe {
        while len - done >= 32 {
            let key = _mm256_loadu_si256(keystream.add(done).cast());
            let text = _mm256_loadu_si256(src.add(done).cast());
            _mm256_storeu_si256(dst.add(done).cast(), _mm256_xor_si256(text, key));
            done += 32;
        }
        while done < len {
            *dst.add(done) = *src.add(done) ^ *keystream.add(done);
            done += 1;
        }
    }
}

/// One packet's keystream in progress, eight blocks computed at a time (fewer for a short
/// payload) and used in the pieces the payload's segments make.
struct Cipher {
    state: ChaChaState,
    /// The block counter of the next keystream call.
    counter: u32,
    /// The last call's blocks ...
    buffer: Keystream,
    /// ... how many of their bytes are used ...
    used: usize,
    /// ... and how many there are.
    filled: usize,
}

impl Cipher {
    /// Starts the keystream of a `len`-byte payload: block 0, whose first 32 bytes are the
    /// one-time Poly1305 key, and the payload's first blocks, up to seven; by rows when
    /// they are five or fewer (three groups side by side for five or six blocks: 256- to
    /// 340-byte datagrams sealed and opened in 0.93-0.94x the time of the vertical call, on
    /// Zen 3).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(state: ChaChaState, len: usize) -> Cipher {
        Cipher::new_with(state, len, || ())
    }

    /// [`new`](Self::new), calling `side` ten times among the rounds (once a double round):
    /// a header mask's block, run beside the keystream's chains rather than before them.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new_with(state: ChaChaState, len: usize, mut side: impl FnMut()) -> Cipher {
        let mut buffer = Keystream::new();
        let blocks = match 1 + len.div_ceil(BLOCK) {
            ..=2 => fill_by_rows::<1>(&mut buffer, &state, 0, side),
            3..=4 => fill_by_rows::<2>(&mut buffer, &state, 0, side),
            5..=6 => fill_by_rows::<3>(&mut buffer, &state, 0, side),
            _ => {
                let slot = |slot: usize| {
                    if slot % GROUPS_PER_ROUND == 1 {
                        side();
                    }
                };
                // SAFETY: AVX2 is enabled here.
                buffer.fill_halves(&unsafe { keystream_with(&state, 0, None, slot) })
            }
        };
        Cipher {
            state,
            counter: blocks as u32,
            buffer,
            used: BLOCK,
            filled: blocks * BLOCK,
        }
    }

    /// [`PacketCipher::update`].
    ///
    /// # Safety
    /// As there; the CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn transform(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        let mut done = 0;
        while done < len {
            if self.used == self.filled {
                let blocks = self
                    .buffer
                    .fill_halves(&keystream(&self.state, self.counter));
                self.counter = self.counter.wrapping_add(blocks as u32);
                (self.used, self.filled) = (0, blocks * BLOCK);
            }
            let take = (self.filled - self.used).min(len - done);
            // SAFETY: `done + take <= len`: inside the caller's ranges; the buffer holds
            // `take` bytes from `used` on.
            unsafe {
                let keystream = self.buffer.bytes().as_ptr().add(self.used);
                xor(keystream, src.add(done), dst.add(done), take);
            }
            self.used += take;
            done += take;
        }
    }
}

impl PacketCipher for Cipher {
    fn one_time_key(&self) -> &[u8; 32] {
        self.buffer.one_time_key()
    }

    #[inline(always)]
    unsafe fn update(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: forwarded; a `Cipher` is only made on a CPU with AVX2.
        unsafe { self.transform(src, dst, len) }
    }
}

/// A ChaCha20-Poly1305 key for CPUs with AVX2: the raw key is all the state there is (the
/// Poly1305 key is new for every packet).
#[derive(Clone)]
pub(in crate::backend) struct ChaCha20Poly1305Avx2Key {
    key: Zeroizing<[u8; 32]>,
}

impl ChaCha20Poly1305Avx2Key {
    /// Wraps a 32-byte key; fails on a CPU without AVX2 and BMI2 (see [`available`]).
    pub(in crate::backend) fn new(key: &[u8]) -> Result<ChaCha20Poly1305Avx2Key, Error> {
        Ok(ChaCha20Poly1305Avx2Key {
            key: avx2_key(key)?,
        })
    }

    /// Encrypts `payload`; returns the tag and `header_key`'s mask of the sample at payload
    /// offset `sample_at`.
    pub(in crate::backend) fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        // SAFETY: the key exists, so the CPU has AVX2.
        let tag = unsafe { self.run(nonce, aad, &mut payload, true) };
        Sealed {
            tag,
            mask: header_key.mask(&payload.sample(sample_at, &tag)),
        }
    }

    /// [`seal`](Self::seal) with this module's own header key, for a payload in one piece
    /// whose sample lies in the first keystream call's bytes: where the payload is longer
    /// than that call's, the mask's block runs in the last call's free lane or among the
    /// second call's rounds ([`seal_stitched`](Self::seal_stitched)); where it is not,
    /// beside the Poly1305 work ([`seal_with_mask_beside_hash`]). Either way not after the
    /// tag.
    pub(in crate::backend) fn seal_with_chacha20_mask(
        &self,
        header_key: &ChaCha20Avx2HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let len = payload.len();
        if holds_sample(len.min(FIRST_CALL), sample_at)
            && let Some(span) = contiguous(&mut payload)
        {
            if len <= FIRST_CALL {
                // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
                // disjoint, with the sample inside; the key exists, so the CPU has AVX2 and
                // BMI2.
                let (tag, mask) =
                    unsafe { self.seal_short(header_key, nonce, aad, span, sample_at) };
                return Sealed { tag, mask };
            }
            let mask = Some((header_key, sample_at));
            // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
            // disjoint, longer than the first call's; the key exists, so the CPU has AVX2
            // and BMI2.
            let (tag, mask) = unsafe { self.seal_stitched(nonce, aad, span, mask) };
            // Always computed there: the sample lies inside the first call's bytes.
            let mask = mask.unwrap_or_else(|| header_key.mask(&payload.sample(sample_at, &tag)));
            return Sealed { tag, mask };
        }
        self.seal(header_key, nonce, aad, sample_at, payload)
    }

    /// A payload in one piece, no longer than the first keystream call's, with its header
    /// mask: [`seal_with_mask_beside_hash`], the keystream from that one call, the hash
    /// multiplying with BMI2's `mulx` as the stitched code's does (on Zen 3, 64-byte
    /// datagrams sealed in 0.98x the time, 128-byte 0.985x).
    ///
    /// # Safety
    /// As for [`Span`]; the sample (at `sample_at`) lies inside it and `span.len` is at most
    /// [`FIRST_CALL`]; the CPU must have AVX2 and BMI2.
    #[target_feature(enable = "avx2,bmi2")]
    unsafe fn seal_short(
        &self,
        header_key: &ChaCha20Avx2HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        span: Span,
        sample_at: usize,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        debug_assert!(span.len <= FIRST_CALL);
        let cipher = Cipher::new(ChaChaState::new(&self.key, nonce), span.len);
        let begin = |sample: &[u8; SAMPLE_LEN]| header_key.begin(sample);
        // The pieces are at most 64 bytes: Poly1305 stays on the integer units.
        // SAFETY: forwarded; AVX2 is enabled here.
        unsafe { seal_with_mask_beside_hash(cipher, begin, Engine::Integer, aad, span, sample_at) }
    }

    /// Decrypts `payload` and returns the tag its ciphertext should carry.
    pub(in crate::backend) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        // SAFETY: as for `seal`.
        unsafe { self.run(nonce, aad, &mut payload, false) }
    }

    /// The payload lengths for which
    /// [`open_with_chacha20_mask`](Self::open_with_chacha20_mask) runs the mask's block
    /// beside the payload's keystream: all of them (see
    /// [`open_beside_keystream`](Self::open_beside_keystream) for those
    /// [`open_stitched`](Self::open_stitched) does not take).
    pub(in crate::backend) fn masks_beside_open(&self) -> RangeInclusive<usize> {
        0..=usize::MAX
    }

    /// [`open`](Self::open), also returning `header_key`'s mask of `sample`, for a receiver
    /// that guessed the packet's header and number: the mask's block runs beside the
    /// payload's keystream or its last hashing, in [`open_stitched`](Self::open_stitched)
    /// where that applies, and in [`open_beside_keystream`](Self::open_beside_keystream)
    /// elsewhere.
    pub(in crate::backend) fn open_with_chacha20_mask(
        &self,
        header_key: &ChaCha20Avx2HeaderKey,
        sample: &[u8; SAMPLE_LEN],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        if payload.len() > FIRST_CALL
            && let Some(span) = contiguous(&mut payload)
        {
            // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
            // disjoint, longer than the first call's; the keys exist, so the CPU has AVX2
            // and BMI2.
            let (tag, mask) =
                unsafe { self.open_stitched(nonce, aad, span, Some((header_key, sample))) };
            return (tag, mask.unwrap_or_else(|| header_key.mask(sample)));
        }
        // SAFETY: the keys exist, so the CPU has AVX2.
        unsafe { self.open_beside_keystream(header_key.begin(sample), nonce, aad, payload) }
    }

    /// [`open`](Self::open) of a payload that [`open_stitched`](Self::open_stitched) does
    /// not take (one call's keystream or less, or in pieces), with the header mask's block
    /// a double round at a time among the first keystream call's rounds: one chain's wait
    /// instead of two in a row (on Zen 3, in-order datagrams opened through `RxFlow` in
    /// 0.82x the time at 64 bytes and 0.91x at 256 and 400, against unmasking first).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn open_beside_keystream(
        &self,
        mut header: PendingMask,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        let state = ChaChaState::new(&self.key, nonce);
        // SAFETY: AVX2 is enabled here.
        let cipher = Cipher::new_with(state, payload.len(), || unsafe { header.double_round() });
        let mask = header.finish();
        // SAFETY: AVX2 is enabled here.
        let tag = unsafe { two_passes(cipher, Engine::Avx2, aad, &mut payload, false) };
        (tag, mask)
    }

    /// Seals a batch, eight packets at a time: short packets in groups whose keystream
    /// blocks (the one-time key's and the payload's) share one eight-lane call, longer ones
    /// one by one, and then the header-protection masks of all eight together. A packet
    /// alone needs two ChaCha20 chains one after the other (its keystream, then the block of
    /// its ciphertext's sample); here a chain serves several packets. With this module's
    /// own header key (`own`), runs of long packets of one length are sealed as a chain,
    /// each one's last hashing beside the next one's first keystream call
    /// ([`seal_chain`](Self::seal_chain)); and a long packet outside one takes its mask from
    /// its own calls, as alone ([`seal_stitched`](Self::seal_stitched)), where it costs
    /// nothing, and is left out of the shared mask call.
    pub(in crate::backend) fn seal_batch(
        &self,
        header_key: &impl HeaderKey,
        own: Option<&ChaCha20Avx2HeaderKey>,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        let mut first = 0;
        while let Some(rest) = jobs.get(first..).filter(|rest| !rest.is_empty()) {
            let chained = own.map_or(0, |own| {
                self.chain(own, buffers, rest, sealed.get_mut(first..))
            });
            if chained > 0 {
                first += chained;
                continue;
            }
            // The packets up to the next chain, eight at a time.
            let others = match own {
                Some(_) => (1..rest.len().min(LANES))
                    .find(|&i| Self::chains(rest.get(i..).unwrap_or_default()) > 0)
                    .unwrap_or(rest.len()),
                None => rest.len(),
            }
            .min(LANES);
            let (Some(jobs), Some(sealed)) =
                (rest.get(..others), sealed.get_mut(first..first + others))
            else {
                break;
            };
            // SAFETY: the key exists, so the CPU has AVX2.
            unsafe { self.seal_eight(header_key, own, buffers, jobs, sealed) };
            first += others;
        }
    }

    #[target_feature(enable = "avx2")]
    fn seal_eight(
        &self,
        header_key: &impl HeaderKey,
        own: Option<&ChaCha20Avx2HeaderKey>,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        // `get`s, not indexing: at most `LANES` jobs come, but the kernel object must keep
        // no panic path the compiler cannot see past.
        let mut masked = [false; LANES];
        let mut first = 0;
        while let Some(rest) = jobs.get(first..).filter(|rest| !rest.is_empty()) {
            let group = group_len(rest.iter().map(|job| job.len), LANES, MAX_GROUPED_BLOCKS);
            let (Some(group_jobs), Some(group_sealed)) = (
                jobs.get(first..first + group),
                sealed.get_mut(first..first + group),
            ) else {
                break;
            };
            match (group_jobs, own) {
                ([job], Some(own)) if job.len > FIRST_CALL => {
                    if let Some(sealed) = group_sealed.first_mut() {
                        let payload = buffers.payload(job);
                        *sealed = self.seal_with_chacha20_mask(
                            own,
                            &job.nonce,
                            job.aad,
                            job.sample_at,
                            payload,
                        );
                    }
                    if let Some(masked) = masked.get_mut(first) {
                        *masked = true;
                    }
                }
                ([job], _) => {
                    let payload = &mut buffers.payload(job);
                    for sealed in group_sealed {
                        sealed.tag = self.run(&job.nonce, job.aad, payload, true);
                    }
                }
                _ => self.seal_group(buffers, group_jobs, group_sealed),
            }
            first += group;
        }
        if !masked.contains(&true) {
            set_masks::<LANES>(header_key, buffers, jobs, sealed);
            return;
        }
        // The others' masks, side by side.
        let mut samples = [[0; SAMPLE_LEN]; LANES];
        let mut owners = [0; LANES];
        let mut count = 0;
        for (i, (job, sealed)) in jobs.iter().zip(&*sealed).enumerate() {
            if let (false, Some(sample), Some(owner)) = (
                masked.get(i).copied().unwrap_or(true),
                samples.get_mut(count),
                owners.get_mut(count),
            ) {
                *sample = buffers.payload(job).sample(job.sample_at, &sealed.tag);
                *owner = i;
                count += 1;
            }
        }
        if count > 0 {
            let mut masks = [[0; MASK_LEN]; LANES];
            header_key.masks(samples.get(..count).unwrap_or_default(), &mut masks);
            for (&owner, mask) in owners.iter().zip(masks).take(count) {
                if let Some(sealed) = sealed.get_mut(owner) {
                    sealed.mask = mask;
                }
            }
        }
    }

    /// Seals short packets whose blocks, one-time key's included, fit in the eight lanes,
    /// from one keystream call: lane by lane each packet's counters 0, 1, ... and its nonce.
    #[target_feature(enable = "avx2")]
    fn seal_group(
        &self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        let keystream = self.group_keystream(jobs.iter().map(|job| (&job.nonce, job.len)));
        let streams = streams(&keystream, jobs.iter().map(|job| job.len));
        for ((job, stream), sealed) in jobs.iter().zip(streams).zip(sealed) {
            let (Some(one_time_key), Some(stream)) =
                (stream.first_chunk::<32>(), stream.get(BLOCK..))
            else {
                continue;
            };
            debug_assert!(stream.len() >= job.len);
            let payload = &mut buffers.payload(job);
            let mut used = 0;
            // SAFETY: `walk` hands over ranges valid for `len` bytes, the same or disjoint,
            // `len` bytes in all: the stream holds at least that many from `used` on.
            walk(payload, |src, dst, len| unsafe {
                xor(stream.as_ptr().add(used), src, dst, len);
                used += len;
            });
            let mut poly = Poly1305::new(one_time_key, Engine::Avx2);
            hash_text(&mut poly, job.aad, payload, true);
            sealed.tag = poly.finish(&lengths(job.aad.len(), job.len));
        }
    }

    /// Whether [`open_batch`](Self::open_batch) groups payloads this long: those of one
    /// block (the one-time key's makes two lanes), four to a keystream call. Longer ones
    /// would leave too few packets a call for the shared chain to pay for the receiver's
    /// work of finding their nonces ahead.
    pub(in crate::backend) fn batches_opens(&self, payload_len: usize) -> bool {
        blocks(payload_len) <= MAX_GROUPED_OPEN_BLOCKS
    }

    /// Opens a batch in place, eight packets at a time: those [`batches_opens`] takes in
    /// groups whose keystream blocks share one eight-lane call, the others one by one. Each
    /// ciphertext is hashed before it is decrypted.
    ///
    /// [`batches_opens`]: Self::batches_opens
    pub(in crate::backend) fn open_batch(
        &self,
        buffer: &mut [u8],
        jobs: &[OpenJob<'_>],
        tags: &mut [[u8; TAG_LEN]],
    ) {
        for (jobs, tags) in jobs.chunks(LANES).zip(tags.chunks_mut(LANES)) {
            // SAFETY: the key exists, so the CPU has AVX2.
            unsafe { self.open_eight(buffer, jobs, tags) }
        }
    }

    #[target_feature(enable = "avx2")]
    fn open_eight(&self, buffer: &mut [u8], jobs: &[OpenJob<'_>], tags: &mut [[u8; TAG_LEN]]) {
        let mut first = 0;
        while let Some(rest) = jobs.get(first..).filter(|rest| !rest.is_empty()) {
            let lens = rest.iter().map(|job| job.len);
            let group = group_len(lens, LANES, MAX_GROUPED_OPEN_BLOCKS);
            let (Some(group_jobs), Some(group_tags)) = (
                jobs.get(first..first + group),
                tags.get_mut(first..first + group),
            ) else {
                break;
            };
            if let [job] = group_jobs {
                for tag in group_tags {
                    *tag = self.run(
                        &job.nonce,
                        job.aad,
                        &mut Payload::InPlace(job.payload(buffer)),
                        false,
                    );
                }
            } else {
                let keystream =
                    self.group_keystream(group_jobs.iter().map(|job| (&job.nonce, job.len)));
                let streams = streams(&keystream, group_jobs.iter().map(|job| job.len));
                for ((job, stream), tag) in group_jobs.iter().zip(streams).zip(group_tags) {
                    *tag = open_with(stream, job.aad, job.payload(buffer));
                }
            }
            first += group;
        }
    }

    /// The keystream of short packets (nonce and payload length each) that fit in the eight
    /// lanes, from one call: lane by lane each packet's counters 0, 1, ... and its nonce.
    #[target_feature(enable = "avx2")]
    fn group_keystream<'n>(
        &self,
        packets: impl Iterator<Item = (&'n [u8; NONCE_LEN], usize)>,
    ) -> Keystream {
        let mut counters = [0u32; LANES];
        let mut nonces = [[0u32; LANES]; 3];
        let mut lane = 0;
        for (nonce, len) in packets {
            let words: [u32; 3] = core::array::from_fn(|w| {
                let at = 4 * w;
                u32::from_le_bytes([nonce[at], nonce[at + 1], nonce[at + 2], nonce[at + 3]])
            });
            for counter in 0..blocks(len) {
                // `get_mut`s: `group_len` keeps a group within the lanes, and the kernel
                // object must keep no panic path the compiler cannot see past.
                if let Some(slot) = counters.get_mut(lane) {
                    *slot = counter as u32;
                    for (nonce, word) in nonces.iter_mut().zip(words) {
                        if let Some(slot) = nonce.get_mut(lane) {
                            *slot = word;
                        }
                    }
                    lane += 1;
                }
            }
        }
        // SAFETY: each array holds eight words: one 32-byte load.
        let load = |words: [u32; LANES]| unsafe { _mm256_loadu_si256(words.as_ptr().cast()) };
        let x = vertical(&KeyWords::new(&self.key), load(counters), nonces.map(load));
        let mut keystream = Keystream::new();
        // SAFETY: AVX2 is enabled here.
        keystream.fill_halves(&unsafe { transpose8(x) });
        keystream
    }

    /// A payload in one piece that needs more than one keystream call: Poly1305 on the
    /// integer units beside the keystream's rounds ([`seal_stitched`](Self::seal_stitched),
    /// [`open_stitched`](Self::open_stitched)). Otherwise the cipher over the payload, then
    /// Poly1305 over the ciphertext on the vector units: read back from the cache when
    /// sealing, and hashed first when opening in place, before the cipher overwrites it.
    #[target_feature(enable = "avx2")]
    fn run(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
        seal: bool,
    ) -> [u8; TAG_LEN] {
        if payload.len() > FIRST_CALL
            && let Some(span) = contiguous(payload)
        {
            // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
            // disjoint, longer than the first call's; the key exists, so the CPU has AVX2
            // and BMI2.
            return unsafe {
                if seal {
                    self.seal_stitched(nonce, aad, span, None).0
                } else {
                    self.open_stitched(nonce, aad, span, None).0
                }
            };
        }
        let cipher = Cipher::new(ChaChaState::new(&self.key, nonce), payload.len());
        // SAFETY: AVX2 is enabled here.
        unsafe { two_passes(cipher, Engine::Avx2, aad, payload, seal) }
    }

    /// Seals a payload in one piece, longer than the first keystream call's: each later
    /// call hashes the ciphertext written before it, one block at a time on the integer
    /// units, which the rounds leave idle; the last call's ciphertext is hashed after it,
    /// the same way (on Zen 3, 24 blocks in 147 ns; four blocks to a multiplication in
    /// 44-bit limbs took 219, and the vector units' setup does not pay below 40). Given
    /// the header key and the sample's offset (inside the first call's bytes), the mask's
    /// block runs in the last call's free lane ([`LaneBlock`]) or, where the payload fills
    /// that call, by rows beside the hashing of the last call's ciphertext
    /// ([`hash_beside`]); it comes back with the tag.
    ///
    /// The calls are bound by how many instructions the core can issue, the rounds' and
    /// the hash's together, more than by either's units: so the hash multiplies with
    /// BMI2's `mulx` (no moves through RAX and RDX) and keeps its state apart, in
    /// registers ([`ScalarHash`]). On Zen 3, 1350-byte datagrams opened in 0.95x the time;
    /// sealed in 0.97-0.98x in a loop of seals, 1.01x in the protect bench's rotation of
    /// contenders.
    ///
    /// # Safety
    /// As for [`Span`], and `len > FIRST_CALL`; the CPU must have AVX2 and BMI2.
    #[target_feature(enable = "avx2,bmi2")]
    unsafe fn seal_stitched(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        span: Span,
        mask: Option<(&ChaCha20Avx2HeaderKey, usize)>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        // SAFETY: forwarded; AVX2 and BMI2 are enabled here.
        let (mut tail, pending, mask) = unsafe { self.seal_calls(nonce, aad, span, mask, None) };
        let mask = match pending {
            Some(header) => {
                // SAFETY: the tail's text lies in the span's destination, written.
                let text = unsafe { tail.rest() };
                Some(hash_beside(&mut tail.poly, text, header))
            }
            None => mask,
        };
        // SAFETY: as above.
        (unsafe { tail.finish() }, mask)
    }

    /// The keystream calls of [`seal_stitched`](Self::seal_stitched), up to the hashing of
    /// the last call's ciphertext, which is left to the returned [`Tail`]; with the header
    /// mask's block to run beside that hashing ([`hash_beside`]) where the payload leaves
    /// it no lane, and the mask where it came from one. Given a `previous` packet's tail,
    /// the first call, which has nothing of this packet's to hash, hashes that one's whole
    /// blocks beside its rounds ([`seal_chain`](Self::seal_chain)).
    ///
    /// # Safety
    /// As for [`seal_stitched`](Self::seal_stitched), and `previous`'s text must be valid
    /// for reads; the caller must enable AVX2 and BMI2.
    #[inline(always)]
    unsafe fn seal_calls(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        Span { src, dst, len }: Span,
        mask: Option<(&ChaCha20Avx2HeaderKey, usize)>,
        previous: Option<&mut Tail>,
    ) -> (Tail, Option<PendingMask>, Option<[u8; MASK_LEN]>) {
        // SAFETY: the caller enables AVX2, which has SSE2.
        let state = unsafe { ChaChaState::new(&self.key, nonce) };
        let mut stream = Keystream::new();
        let first = match previous {
            // `keystream_with`, always inlined, not `keystream`: see `open_stitched`.
            // SAFETY: the caller enables AVX2.
            None => stream.fill_halves(&unsafe { keystream_with(&state, 0, None, |_| ()) }),
            Some(previous) => {
                // SAFETY: the caller says the previous tail's text is valid for reads.
                let text = unsafe { previous.whole_blocks() };
                // SAFETY: the caller enables AVX2 and BMI2.
                let (keystream, _) = unsafe {
                    stitched_call(&state, 0, None, len, &mut previous.poly, text, SEAL_SLOTS)
                };
                stream.fill_halves(&keystream)
            }
        };
        // Built here, not at the end: moved into place there, the hash's state went through
        // memory again (1452-byte seals took 1.02x the time).
        let mut tail = Tail {
            poly: Poly1305::new(stream.one_time_key(), Engine::Integer),
            text: dst.cast_const(),
            len: 0,
            lengths: lengths(aad.len(), len),
        };
        let poly = &mut tail.poly;
        poly.absorb_padded(aad);
        // SAFETY: the call filled eight blocks: block 0, then `FIRST_CALL` bytes, inside
        // both ranges (`len` is longer). By pointer, not a slice: no panic path for the
        // kernel object.
        unsafe { xor(stream.bytes().as_ptr().add(BLOCK), src, dst, FIRST_CALL) };
        // The header mask's block: in the last call's free lane if it has one, else by rows
        // beside the last call's hashing.
        let (mut pending, mut lane) = (None, None);
        if let Some((key, at)) = mask.filter(|&(_, at)| holds_sample(FIRST_CALL, at)) {
            // SAFETY: the sample lies inside the first call's ciphertext, just written.
            let sample = unsafe { &*dst.add(at).cast::<[u8; SAMPLE_LEN]>() };
            if lanes_masks(len) {
                lane = Some(key.lane(sample));
            } else {
                // SAFETY: the caller enables AVX2.
                pending = Some(unsafe { key.begin(sample) });
            }
        }
        let mut mask = None;
        let (mut done, mut hashed, mut counter) = (FIRST_CALL, 0, first as u32);
        while done < len {
            // SAFETY: the ciphertext from `hashed` to `done` is written and not written again.
            let text = unsafe { whole_blocks(dst.add(hashed), done - hashed) };
            // SAFETY: AVX2 and BMI2 are enabled here.
            let (keystream, in_lane) = unsafe {
                stitched_call(&state, counter, lane.as_ref(), len, poly, text, SEAL_SLOTS)
            };
            mask = in_lane.or(mask);
            let blocks = stream.fill_halves(&keystream);
            hashed = done;
            let bytes = (len - done).min(blocks * BLOCK);
            // SAFETY: `done + bytes <= len`; the buffer holds `blocks` blocks.
            unsafe { xor(stream.bytes().as_ptr(), src.add(done), dst.add(done), bytes) };
            done += bytes;
            counter = counter.wrapping_add(blocks as u32);
        }
        // SAFETY: inside the destination, whose `len` bytes are all written.
        tail.text = unsafe { dst.add(hashed) };
        tail.len = len - hashed;
        (tail, pending, mask)
    }

    /// Seals packets of one length with this module's header key (`key`), as
    /// [`seal_stitched`](Self::seal_stitched) would one by one ([`chains`](Self::chains)
    /// says which), but each packet's last call's ciphertext, which alone it hashes after
    /// its rounds with the vector units idle, is hashed beside the next packet's first
    /// call, which has nothing of its own to hash (it makes the one-time key the hash
    /// needs). Masks come from the last calls' free lanes; where the length leaves none,
    /// the caller computes them, since no hashing is left to run them beside.
    ///
    /// On Zen 3, GSO batches of 64 datagrams sealed in 0.905x the time at 1350 and 1452
    /// bytes, 0.955-0.965x at 1200 and 0.98x at 600 (against one by one, the batch's rounds
    /// of eight alike).
    ///
    /// # Safety
    /// Every span given (a packet without one ends the chain) as for [`Span`], disjoint
    /// from the others, and `len > FIRST_CALL`; the CPU must have AVX2 and BMI2.
    #[target_feature(enable = "avx2,bmi2")]
    unsafe fn seal_chain(
        &self,
        key: &ChaCha20Avx2HeaderKey,
        jobs: &[SealJob<'_>],
        spans: &[Option<Span>],
        sealed: &mut [Sealed],
    ) {
        let mut previous: Option<(&mut Sealed, Tail)> = None;
        for ((job, &span), sealed) in jobs.iter().zip(spans.iter().flatten()).zip(sealed) {
            let last = previous.as_mut().map(|(_, tail)| tail);
            let mask = lanes_masks(span.len).then_some((key, job.sample_at));
            // SAFETY: forwarded; the previous packet's span is still valid and apart from
            // this one's.
            let (tail, _, mask) = unsafe { self.seal_calls(&job.nonce, job.aad, span, mask, last) };
            if let Some((done, last)) = previous.take() {
                // SAFETY: as above.
                done.tag = unsafe { last.finish() };
            }
            if let Some(mask) = mask {
                sealed.mask = mask;
            }
            previous = Some((sealed, tail));
        }
        if let Some((done, last)) = previous {
            // SAFETY: as above.
            done.tag = unsafe { last.finish() };
        }
    }

    /// Seals the first of `jobs` that [`chains`](Self::chains) takes (and the buffers hold
    /// in one piece) with [`seal_chain`](Self::seal_chain); returns how many, none where
    /// there is no chain.
    #[inline]
    fn chain(
        &self,
        key: &ChaCha20Avx2HeaderKey,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: Option<&mut [Sealed]>,
    ) -> usize {
        let (count @ 2.., Some(lead)) = (Self::chains(jobs), jobs.first()) else {
            return 0;
        };
        let spans: [Option<Span>; MAX_CHAIN] =
            spans(buffers, jobs.get(..count).unwrap_or_default(), lead.len);
        // The chain ends at the first packet the buffers do not hold in one piece.
        let count = spans.iter().take_while(|span| span.is_some()).count();
        let (Some(jobs), Some(sealed), Some(spans), 2..) = (
            jobs.get(..count),
            sealed.and_then(|sealed| sealed.get_mut(..count)),
            spans.get(..count),
            count,
        ) else {
            return 0;
        };
        // SAFETY: `spans` hands over ranges valid for `len` bytes each, longer than the
        // first call's, from one borrow of the buffers, so valid together; the trait asks
        // for jobs apart (were they not, their bytes would come out wrong, not out of
        // bounds: no slice made from them outlives a write). The key exists, so the CPU has
        // AVX2 and BMI2.
        unsafe { self.seal_chain(key, jobs, spans, sealed) };
        if !lanes_masks(lead.len) {
            for (jobs, sealed) in jobs.chunks(LANES).zip(sealed.chunks_mut(LANES)) {
                set_masks::<LANES>(key, buffers, jobs, sealed);
            }
        }
        count
    }

    /// How many of `jobs`, from the first, [`seal_chain`](Self::seal_chain) takes: those
    /// of the first's length, where its last keystream call covers at least
    /// [`MIN_CHAINED_TAIL`], with samples inside the first call's bytes; at most
    /// [`MAX_CHAIN`]. Fewer than two make no chain.
    fn chains(jobs: &[SealJob<'_>]) -> usize {
        let Some(lead) = jobs.first() else { return 0 };
        if tail_len(lead.len) < MIN_CHAINED_TAIL {
            return 0;
        }
        let count = jobs
            .iter()
            .take(MAX_CHAIN)
            .take_while(|job| job.len == lead.len && holds_sample(FIRST_CALL, job.sample_at))
            .count();
        if count >= 2 { count } else { 0 }
    }

    /// Opens a payload in one piece, longer than the first keystream call's: the first call
    /// makes the one-time key, and each later call hashes, beside its rounds, an even share
    /// of the ciphertext not yet hashed ([`OPEN_SLOTS`]), at least up to the end of what the
    /// call before it covers. That part is decrypted only then (in place, that overwrites
    /// it), so two calls' keystreams are kept. Unlike a seal's, an open's ciphertext is
    /// there from the start: the hash runs ahead of the keystream, and what is left after
    /// the last call is what the calls' slots could not take (for a 1350-byte datagram, six
    /// blocks after each of the two later calls, where 22 were left after the last), so
    /// 1350-byte datagrams opened in 0.94-0.96x the time on Zen 3. Given the header key and the sample,
    /// the mask's block runs in the last call's free lane ([`LaneBlock`]) or, where the
    /// payload fills that call, by rows beside the hashing after it ([`hash_beside`]),
    /// which then keeps [`RESERVE_BESIDE_MASK`] blocks; it comes back with the tag.
    ///
    /// # Safety
    /// As for [`seal_stitched`](Self::seal_stitched).
    #[target_feature(enable = "avx2,bmi2")]
    unsafe fn open_stitched(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        Span { src, dst, len }: Span,
        header: Option<(&ChaCha20Avx2HeaderKey, &[u8; SAMPLE_LEN])>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        let state = ChaChaState::new(&self.key, nonce);
        let (mut first, mut second) = (Keystream::new(), Keystream::new());
        let (mut current, mut next) = (&mut first, &mut second);
        // The header mask's block: in the last call's free lane if it has one, else by rows
        // beside the last call's hashing.
        let (pending, lane) = match header {
            Some((key, sample)) if !lanes_masks(len) => (Some(key.begin(sample)), None),
            Some((key, sample)) => (None, Some(key.lane(sample))),
            None => (None, None),
        };
        // `keystream_with`, always inlined, not `keystream`: with callers here and in the
        // seal, the compiler made that a call whose 512-byte result it copied, and 1350-byte
        // seals took 1.06x the time.
        // SAFETY: AVX2 is enabled here.
        let first = unsafe { keystream_with(&state, 0, None, |_| ()) };
        let mut counter = current.fill_halves(&first) as u32;
        let mut mask = None;
        let mut poly = Poly1305::new(current.one_time_key(), Engine::Integer);
        poly.absorb_padded(aad);
        // What `current` covers: `covered` bytes of payload from `start`, its keystream
        // from `offset` in the buffer.
        let (mut start, mut covered, mut offset) = (0, FIRST_CALL, BLOCK);
        // The ciphertext hashed: `hashed` bytes, whole blocks, never short of `start`.
        let (whole, mut hashed) = (len / 16 * 16, 0);
        let reserve = if pending.is_some() {
            RESERVE_BESIDE_MASK
        } else {
            0
        };
        while start + covered < len {
            // This call's share of the whole blocks left, among it and the calls after it.
            // At least one: `start + covered < len`; `max` keeps the division free of a
            // panic path without the compiler having to see that.
            let calls = (len - start - covered).div_ceil(LANES * BLOCK).max(1);
            let share = ((whole - hashed) / 16)
                .saturating_sub(reserve)
                .div_ceil(calls)
                * 16;
            let take = share.max(start + covered - hashed).min(whole - hashed);
            // SAFETY: `hashed + take <= whole <= len`, from `start` on: inside the source,
            // not yet overwritten.
            let text = unsafe { whole_blocks(src.add(hashed), take) };
            hashed += take;
            // SAFETY: AVX2 and BMI2 are enabled here.
            let (keystream, in_lane) = unsafe {
                stitched_call(
                    &state,
                    counter,
                    lane.as_ref(),
                    len,
                    &mut poly,
                    text,
                    OPEN_SLOTS,
                )
            };
            mask = in_lane.or(mask);
            let blocks = next.fill_halves(&keystream);
            // SAFETY: `start + covered < len`: inside both ranges; the buffer holds the
            // keystream from `offset` on; the ciphertext is hashed and not read again.
            unsafe {
                let keystream = current.bytes().as_ptr().add(offset);
                xor(keystream, src.add(start), dst.add(start), covered);
            }
            core::mem::swap(&mut current, &mut next);
            start += covered;
            covered = (len - start).min(blocks * BLOCK);
            offset = 0;
            counter = counter.wrapping_add(blocks as u32);
        }
        // SAFETY: the rest of the source, from `hashed` on (past `start`), not yet
        // overwritten.
        let text = unsafe { core::slice::from_raw_parts(src.add(hashed), len - hashed) };
        if let Some(header) = pending {
            mask = Some(hash_beside(&mut poly, text, header));
        } else {
            poly.absorb(text);
            poly.pad();
        }
        let tag = poly.finish(&lengths(aad.len(), len));
        // SAFETY: the rest of both ranges; the buffer holds its keystream from `offset` on.
        unsafe {
            let keystream = current.bytes().as_ptr().add(offset);
            xor(keystream, src.add(start), dst.add(start), len - start);
        }
        (tag, mask)
    }
}

/// Hashes `text`, the rest of a stitched payload after its last keystream call, and pads
/// it, with `header`'s ten double rounds between its blocks; returns the mask. For payloads
/// whose blocks fill the last call, which leaves the mask no lane ([`LaneBlock`]).
///
/// After the last call the hash runs alone on the integer units, a chain of about 16
/// cycles a block, and the vector units wait: the mask's rows (about 40 vector
/// instructions and 20 moves a double round) cost nothing there. They had run among the
/// steps of a keystream call, whose vector units are the busy ones: 1452-byte datagrams
/// (1 425-byte payloads, 23 blocks and the one-time key's in three calls) now seal in
/// 0.93x the time and open in 0.95x on Zen 3 (paired, one binary). A double round goes
/// ahead of each tenth of the blocks, in program order: after them, its instructions
/// reached the core only once the hash's had nearly all retired (see
/// `seal_with_mask_beside_hash`).
///
/// A function of its own, not inlined: inlined into the stitched seal, it changed how the
/// compiler laid out the rest, and 1350-byte seals, which never come here, took 1.04x the
/// time.
#[inline(never)]
#[target_feature(enable = "avx2,bmi2")]
fn hash_beside(poly: &mut Poly1305, text: &[u8], mut header: PendingMask) -> [u8; MASK_LEN] {
    let (blocks, rest) = text.as_chunks::<16>();
    let per = blocks.len().div_ceil(DOUBLE_ROUNDS).max(1);
    let mut scalar = poly.scalar();
    let mut rounds = 0;
    for chunk in blocks.chunks(per) {
        if rounds < DOUBLE_ROUNDS {
            // SAFETY: AVX2 is enabled here.
            unsafe { header.double_round() };
            rounds += 1;
        }
        scalar.blocks(chunk);
    }
    for _ in rounds..DOUBLE_ROUNDS {
        // SAFETY: as above.
        unsafe { header.double_round() };
    }
    poly.resume(scalar);
    poly.absorb(rest);
    poly.pad();
    header.finish()
}

/// What a stitched seal leaves after its last keystream call: the hash so far, the
/// ciphertext still to hash (the last call's), and the lengths block the tag needs.
struct Tail {
    poly: Poly1305,
    /// Where the ciphertext still to hash starts: valid for reads of `len` bytes for as
    /// long as the payload is (see [`Span`]).
    text: *const u8,
    len: usize,
    /// The lengths block (RFC 8439 §2.8).
    lengths: [u8; 16],
}

impl Tail {
    /// The text's whole blocks, which the caller hashes: what is left is the partial one.
    ///
    /// # Safety
    /// The text must still be valid for reads.
    #[inline(always)]
    unsafe fn whole_blocks<'a>(&mut self) -> &'a [[u8; 16]] {
        let whole = self.len / 16 * 16;
        // SAFETY: forwarded: `whole` bytes from `text`.
        let blocks = unsafe { whole_blocks(self.text, whole) };
        self.text = self.text.wrapping_add(whole);
        self.len -= whole;
        blocks
    }

    /// All of the text still to hash, which the caller hashes and pads.
    ///
    /// # Safety
    /// The text must still be valid for reads.
    #[inline(always)]
    unsafe fn rest<'a>(&mut self) -> &'a [u8] {
        // SAFETY: forwarded.
        let text = unsafe { core::slice::from_raw_parts(self.text, self.len) };
        self.len = 0;
        text
    }

    /// Hashes the rest of the text and returns the tag.
    ///
    /// # Safety
    /// The text must still be valid for reads.
    #[inline(always)]
    unsafe fn finish(mut self) -> [u8; TAG_LEN] {
        // SAFETY: forwarded.
        let text = unsafe { self.rest() };
        self.poly.absorb(text);
        self.poly.pad();
        self.poly.finish(&self.lengths)
    }
}

/// Bytes of a stitched payload of `len` bytes that its last keystream call covers (none
/// for one no longer than the first call, which is not stitched).
fn tail_len(len: usize) -> usize {
    match len.checked_sub(FIRST_CALL + 1) {
        Some(beyond) => beyond % (LANES * BLOCK) + 1,
        None => 0,
    }
}

/// The shortest last call's payload [`seal_chain`](ChaCha20Poly1305Avx2Key::seal_chain)
/// takes, six Poly1305 blocks: the hashing a chain moves beside the next packet's first call
/// must pay for carrying the hash from one packet to the next (on Zen 3, batches of
/// 1000-byte datagrams, whose last call covers 13 bytes, took 1.03x the time chained;
/// 600-byte ones, 125 bytes, 0.985x).
const MIN_CHAINED_TAIL: usize = 6 * 16;

/// Packets a [`seal_chain`](ChaCha20Poly1305Avx2Key::seal_chain) takes at most: their
/// places are held together, on the stack. A longer run makes several chains, the last
/// packet of each hashing its tail alone. Eight, as many as the batch's other rounds take:
/// chains of 64 were no faster (1350-byte datagrams in batches of 64 sealed in 0.91x the
/// time of one by one either way, on Zen 3).
const MAX_CHAIN: usize = LANES;

/// Payload bytes the first keystream call covers: seven blocks after the one-time key's.
const FIRST_CALL: usize = (LANES - 1) * BLOCK;

/// `len` bytes (a multiple of 16) from `text` as blocks.
///
/// # Safety
/// `text` must be valid for reads of `len` bytes, not written while the blocks are used.
#[inline(always)]
unsafe fn whole_blocks<'a>(text: *const u8, len: usize) -> &'a [[u8; 16]] {
    debug_assert!(len.is_multiple_of(16));
    // SAFETY: forwarded; the array has alignment 1.
    unsafe { core::slice::from_raw_parts(text.cast(), len / 16) }
}

/// A stitched seal's or open's keystream call from block `counter` of a `len`-byte payload,
/// hashing `text` (ciphertext) into `poly` beside its rounds in `slots`
/// ([`hash_in_slot`]) and what is left right after; with `lane`'s mask block where the call
/// leaves it a lane ([`mask_lane_free`]). Returns the keystream and that mask.
///
/// # Safety
/// The caller must enable AVX2 and BMI2.
#[inline(always)]
unsafe fn stitched_call(
    state: &ChaChaState,
    counter: u32,
    lane: Option<&LaneBlock>,
    len: usize,
    poly: &mut Poly1305,
    text: &[[u8; 16]],
    slots: u16,
) -> ([__m256i; 16], Option<[u8; MASK_LEN]>) {
    let mut scalar = poly.scalar();
    let mut rest = text;
    let side = |slot: usize| hash_in_slot(&mut scalar, &mut rest, slot, slots);
    let in_lane = lane.filter(|_| mask_lane_free(counter, len));
    // SAFETY: the caller enables AVX2.
    let keystream = unsafe { keystream_with(state, counter, in_lane, side) };
    scalar.blocks(rest);
    poly.resume(scalar);
    // SAFETY: as above.
    let mask = in_lane.map(|_| unsafe { LaneBlock::mask(&keystream) });
    (keystream, mask)
}

/// Where a seal's stitched calls hash a block ([`hash_in_slot`]): groups 1, 4 and 6 of
/// every double round, three a double round, 30 of the 32 blocks of the call before.
///
/// The calls are bound by how many instructions the core issues, and by the hash's chain
/// where blocks come close together: one block's multiplications and carries take about 16
/// cycles, a double round about 40 to 47 on Zen 3. Every other slot, as it was (four
/// blocks a double round, then none in the last two or three), a call hashing 32 blocks
/// took 1.19x the time of one hashing none in a C probe of these instructions; three a
/// double round, 1.08x. Hashing only half the blocks, spread, cost nothing measurable.
/// 1350-byte datagrams sealed in 0.963-0.965x the time with this alone; with the masks'
/// registers freed too ([`group`]), sealed in 0.945x and opened in 0.935-0.945x, and 520-
/// to 2000-byte ones sealed and opened in 0.92-0.96x (two builds alternating). A few blocks
/// at once, once a double round, waited on each other while the rounds' instructions
/// filled the scheduler, and a share computed by division cost more than it hid (1350-byte
/// seals on Zen 3: 1135 and 1450 ns against 1020 every other slot, in session 23).
const SEAL_SLOTS: u16 = 0b0101_0010_0101_0010;

/// Where an open's stitched calls hash a block: groups 0, 1, 4 and 6 of even double rounds
/// and 1, 4 and 6 of odd ones, seven every two, 35 a call. An open's calls hash ahead of
/// the keystream ([`open_stitched`](ChaCha20Poly1305Avx2Key::open_stitched)), so they take
/// more than a call's 32 blocks each (the rest of a share right after the call), and
/// what is left after the last call shrinks to what they leave. On Zen 3 (paired runs of in-order opens through `RxFlow`), 1200- to
/// 1400-byte datagrams opened in 0.94-0.96x the time with these slots, 600-byte 0.96-0.97x,
/// 1000-byte 0.97-1.02x (their last call covers a block: little was left after it); three a double round
/// (the seal's), 0.97x at 1350 bytes; groups 0, 1, 4 and 6 of every double round, 0.92-0.96x
/// from 1200 to 1400 bytes but 1.045x at 1000; five a double round, 1.02-1.15x (the hash,
/// about 13 cycles a block on the integer units at best, outlasts the double round).
const OPEN_SLOTS: u16 = 0b0101_0010_0101_0011;

/// Blocks an open whose header mask runs beside its last hashing ([`hash_beside`]) leaves
/// for that hashing: about what hides the mask's ten double rounds by rows (1452-byte
/// datagrams opened in about 0.98x the time against none left, within the noise).
const RESERVE_BESIDE_MASK: usize = 20;

/// Groups of four steps in a double round: where [`vertical_with`] calls its `side`.
const GROUPS_PER_ROUND: usize = 8;

/// ChaCha20's double rounds (RFC 8439 §2.3).
const DOUBLE_ROUNDS: usize = 10;

/// The side work of slot `slot` of a stitched keystream call: the next of the blocks `rest`
/// holds where `slots` has the slot's bit (bit `g` for group `g` of an even double round,
/// `8 + g` of an odd one; [`SEAL_SLOTS`], [`OPEN_SLOTS`]); the caller hashes what is left
/// after the call.
#[inline(always)]
fn hash_in_slot(scalar: &mut ScalarHash, rest: &mut &[[u8; 16]], slot: usize, slots: u16) {
    if slots & (1 << (slot % (2 * GROUPS_PER_ROUND))) != 0
        && let Some((block, later)) = rest.split_first()
    {
        scalar.blocks(core::slice::from_ref(block));
        *rest = later;
    }
}

/// Opens `payload` in place with `keystream`, computed ahead: block 0 (the one-time key),
/// then at least the payload's length. The ciphertext is hashed before it is decrypted.
#[target_feature(enable = "avx2")]
fn open_with(keystream: &[u8], aad: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
    let (Some(one_time_key), Some(stream)) =
        (keystream.first_chunk::<32>(), keystream.get(BLOCK..))
    else {
        return [0; TAG_LEN];
    };
    debug_assert!(stream.len() >= payload.len());
    let mut poly = Poly1305::new(one_time_key, Engine::Avx2);
    poly.absorb_padded(aad);
    poly.absorb(payload);
    poly.pad();
    let at = payload.as_mut_ptr();
    // SAFETY: the keystream holds at least the payload's length; in place; AVX2 is enabled.
    unsafe { xor(stream.as_ptr(), at, at, payload.len().min(stream.len())) };
    poly.finish(&lengths(aad.len(), payload.len()))
}

/// A ChaCha20 header-protection key (RFC 9001 §5.4.4) for CPUs with AVX2: eight samples'
/// masks from one keystream call, one sample in each lane, for about the time of one.
#[derive(Clone)]
pub(in crate::backend) struct ChaCha20Avx2HeaderKey {
    key: Zeroizing<[u8; 32]>,
}

impl ChaCha20Avx2HeaderKey {
    /// Wraps a 32-byte key; fails on a CPU without AVX2 and BMI2 (see [`available`]).
    pub(in crate::backend) fn new(key: &[u8]) -> Result<ChaCha20Avx2HeaderKey, Error> {
        Ok(ChaCha20Avx2HeaderKey {
            key: avx2_key(key)?,
        })
    }

    /// Up to `2 * G` masks from one call by rows, a sample in each lane: a sample is the
    /// last row of its block as it stands, block counter then nonce.
    #[target_feature(enable = "avx2")]
    fn by_rows<const G: usize>(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        let zero = _mm_setzero_si128();
        let mut d = [_mm256_setzero_si256(); G];
        for (g, d) in d.iter_mut().enumerate() {
            let lane = |i: usize| match samples.get(2 * g + i) {
                // SAFETY: a sample is 16 readable bytes.
                Some(sample) => unsafe { _mm_loadu_si128(sample.as_ptr().cast()) },
                None => zero,
            };
            *d = _mm256_set_m128i(lane(1), lane(0));
        }
        let state = ChaChaState::new(&self.key, &[0; 12]);
        let groups = rows(&state, d);
        for (i, mask) in masks.iter_mut().enumerate().take(samples.len().min(2 * G)) {
            // Words 0 and 1 of block i: the first 64-bit word of its lane of row a.
            let a = groups[i / 2].a;
            let pair = if i % 2 == 0 {
                _mm256_extract_epi64(a, 0)
            } else {
                _mm256_extract_epi64(a, 2)
            };
            mask.copy_from_slice(&pair.to_le_bytes()[..MASK_LEN]);
        }
    }

    /// Up to eight masks from one call.
    #[target_feature(enable = "avx2")]
    fn eight(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        // Word w of every sample, lane by lane; lanes past the samples stay zero.
        let mut words = [[0u32; LANES]; 4];
        for (lane, sample) in samples.iter().enumerate().take(LANES) {
            let (counter, nonce) = split(sample);
            words[0][lane] = counter;
            for (w, bytes) in nonce.chunks_exact(4).enumerate() {
                words[1 + w][lane] = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
        // SAFETY: each array holds eight words: one 32-byte load.
        let [counters, n0, n1, n2] =
            words.map(|w| unsafe { _mm256_loadu_si256(w.as_ptr().cast()) });
        let x = vertical(&KeyWords::new(&self.key), counters, [n0, n1, n2]);
        // The mask is word 0 and the first byte of word 1 of each block.
        let mut first = Zeroizing::new([[0u32; LANES]; 2]);
        // SAFETY: each array holds eight words: one 32-byte store.
        unsafe {
            _mm256_storeu_si256(first[0].as_mut_ptr().cast(), x[0]);
            _mm256_storeu_si256(first[1].as_mut_ptr().cast(), x[1]);
        }
        for (lane, mask) in masks.iter_mut().enumerate().take(samples.len().min(LANES)) {
            mask[..4].copy_from_slice(&first[0][lane].to_le_bytes());
            mask[4] = first[1][lane] as u8;
        }
    }
}

impl ChaCha20Avx2HeaderKey {
    /// The mask of `sample` as a keystream call's last lane ([`LaneBlock`]).
    fn lane(&self, sample: &[u8; SAMPLE_LEN]) -> LaneBlock {
        let (counter, nonce) = split(sample);
        LaneBlock::new(KeyWords::new(&self.key), counter, &nonce)
    }

    /// Starts the mask of `sample`, to be run a double round at a time beside other work.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn begin(&self, sample: &[u8; SAMPLE_LEN]) -> PendingMask {
        // SAFETY: a sample is 16 readable bytes.
        let row = unsafe { _mm_loadu_si128(sample.as_ptr().cast()) };
        let d = _mm256_set_m128i(_mm_setzero_si128(), row);
        let start = rows_start(&ChaChaState::new(&self.key, &[0; 12]), [d]);
        PendingMask { x: start, start }
    }
}

/// A header-protection mask's ChaCha20 block in progress, by rows in the low lane: a
/// chain of its own once the sample is known, run a double round at a time beside other
/// work (a seal's second keystream call or, for a short payload, its Poly1305, once the
/// sample's ciphertext is written; an open's first keystream call) rather than after it.
struct PendingMask {
    x: [Rows; 1],
    start: [Rows; 1],
}

impl PendingBlock for PendingMask {
    #[inline(always)]
    unsafe fn double_round(&mut self) {
        // SAFETY: forwarded.
        unsafe { PendingMask::double_round(self) }
    }

    #[inline(always)]
    unsafe fn finish(self) -> [u8; MASK_LEN] {
        // SAFETY: forwarded.
        unsafe { PendingMask::finish(self) }
    }
}

impl PendingMask {
    /// One of the block's ten double rounds.
    ///
    /// # Safety
    /// The caller must enable AVX2.
    #[inline(always)]
    unsafe fn double_round(&mut self) {
        // SAFETY: forwarded.
        unsafe { double_round_rows(&mut self.x) };
    }

    /// The mask, after the ten double rounds: words 0 and 1 of the block, from the first
    /// 64-bit word of row a's low lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish(mut self) -> [u8; MASK_LEN] {
        add_rows(&mut self.x, &self.start);
        let pair = _mm256_extract_epi64(self.x[0].a, 0);
        let mut mask = [0; MASK_LEN];
        mask.copy_from_slice(&pair.to_le_bytes()[..MASK_LEN]);
        mask
    }
}

impl HeaderKey for ChaCha20Avx2HeaderKey {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        let mut mask = [[0; MASK_LEN]];
        // SAFETY: the key exists, so the CPU has AVX2.
        unsafe { self.by_rows::<1>(core::slice::from_ref(sample), &mut mask) };
        mask[0]
    }

    fn batches_masks(&self) -> bool {
        true
    }

    fn masks(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        for (samples, masks) in samples.chunks(LANES).zip(masks.chunks_mut(LANES)) {
            // SAFETY: as for `mask`.
            unsafe {
                match samples.len() {
                    ..=2 => self.by_rows::<1>(samples, masks),
                    3..=4 => self.by_rows::<2>(samples, masks),
                    5..=6 => self.by_rows::<3>(samples, masks),
                    _ => self.eight(samples, masks),
                }
            }
        }
    }
}
