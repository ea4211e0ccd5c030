//! The packets of a batch sealed or opened four at a time. Sealed alone, a short packet
//! waits on chains that depend on each other (its counter blocks' AES rounds, then GHASH over
//! the ciphertext and the header-protection mask's rounds over its sample) with the vector
//! units mostly idle, and a long one pays its own start and end (E_K(J0), the header's hash,
//! the tail, the last reductions, the mask). The packets of a GSO or a GRO batch have
//! payloads and headers of one length, so one instruction stream carries four such packets:
//! each step takes four blocks of each, one packet to a 512-bit vector, as a packet's own
//! loop takes sixteen of its own.
//!
//! What differs is GHASH. A packet's own loop multiplies each step's blocks by H^16 .. H and
//! reduces once a step (Horner's rule, 16 blocks at a time). Here a step has four blocks of
//! each packet, and a reduction a step per packet would cost as much as the rounds. Instead
//! every block is multiplied by the power it has in its packet's whole hash (H^n for the
//! first of n blocks, H for the lengths block): the products of all steps add up, lane by
//! lane, and each packet's four lanes are added and reduced once, at the end. The powers
//! past the 16 a key keeps are built as far as a batch needs them ([`HashPowers`], kept from
//! batch to batch by a sending flow: [`BatchTables`]), for packets of up to [`MAX_BLOCKS`]
//! blocks. Per 16 blocks this costs less than one packet's own loop does
//! (no reduction, and no shuffles to bring the packets' blocks together); the rest is
//! shared.
//!
//! The steps also skip each block's first AES round. A grouped packet's counter blocks
//! differ in their last four bytes only (the counter), and those bytes are the same in
//! every packet of a step. SubBytes works byte by byte, and ShiftRows and MixColumns are
//! linear, so round 1 of a block (its bytes XORed with the first round key, then a round
//! with the second) is the same round of its keyed nonce's bytes, the counter's four
//! replaced by 0x52, which SubBytes takes to zero, XORed with one of its keyed counter's
//! bytes, the nonce's replaced by 0x52, with a zero round key. The first is computed once a
//! group for each packet, the second once for each step with the powers ([`CounterRounds`]), and a
//! step starts from the two XORed: one XOR a vector where a round was an XOR and an AES
//! round. The step loop, alone in a C harness, went from about 45 to 43 cycles a step.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::aes::RoundKeys;
use super::avx512::{SchoolbookProducts, WideProducts, folded};
use super::ghash::{POWERS, byte_swap_mask};
use super::{AesGcmKey, counter_base};
use crate::backend::{NONCE_LEN, TAG_LEN};
use crate::protect::SHORT_HEADER_PROTECTED_BITS;
use crate::wire::short_header::MAX_SHORT_HEADER_LEN;

/// Packets per group: one to a 512-bit vector.
pub(super) const LANES: usize = 4;

/// Most blocks a grouped packet hashes (its header's, its payload's and the lengths block):
/// enough for datagrams of 1 500 bytes, the tables a batch builds for them
/// ([`BatchTables`]) about 3 KiB. Longer packets are sealed one by one.
pub(super) const MAX_BLOCKS: usize = 96;
const _: () = assert!(
    MAX_BLOCKS.is_multiple_of(4),
    "the table holds whole vectors"
);
const _: () = assert!(
    MAX_BLOCKS + 4 < 256,
    "a grouped packet's counters differ in their last byte only"
);

/// True when packets with `len` bytes of payload and `aad_len` bytes of header can be
/// grouped: they hash at most [`MAX_BLOCKS`] blocks.
pub(super) const fn groups(len: usize, aad_len: usize) -> bool {
    Shape { len, aad_len }.blocks() <= MAX_BLOCKS
}

/// What the packets of a group have in common: their payload's and their header's lengths.
#[derive(Clone, Copy)]
pub(super) struct Shape {
    len: usize,
    aad_len: usize,
}

impl Shape {
    /// Payloads of `len` bytes, headers of `aad_len`.
    pub(super) fn new(len: usize, aad_len: usize) -> Shape {
        Shape { len, aad_len }
    }

    /// Blocks GHASH takes: the header's, the payload's and the lengths block.
    const fn blocks(self) -> usize {
        self.aad_len.div_ceil(16) + self.len.div_ceil(16) + 1
    }
}

/// One packet of a group: its nonce, its header (the AAD), and its payload, in one piece in
/// the source and in the destination (the same bytes in place, else disjoint).
#[derive(Clone, Copy)]
pub(super) struct Packet<'a> {
    pub(super) nonce: &'a [u8; NONCE_LEN],
    pub(super) aad: &'a [u8],
    pub(super) src: *const u8,
    pub(super) dst: *mut u8,
}

impl Packet<'_> {
    /// A lane without a packet.
    pub(super) const EMPTY: Packet<'static> = Packet {
        nonce: &[0; NONCE_LEN],
        aad: &[],
        src: core::ptr::null(),
        dst: core::ptr::null_mut(),
    };
}

/// Seals `packets` (one to four; any more are left alone), each of `shape` (one that
/// [`groups`] takes), and puts packet k's tag in `tags[k]`. Where the 16-byte sample at
/// payload offset `sample_at` lies inside the payload, returns what
/// [`Capture::keep`](super::Capture::keep) would make of each packet's sample, lane by lane:
/// with `header_keys`, the mask's block, its rounds run beside the final GHASH; the sample
/// itself otherwise. `tables` are the batch's (or kept from the caller's last batch), built
/// here if its packets need more, from the start if they were built for another key.
///
/// # Safety
/// Each packet's `src` must be valid for reads and its `dst` for reads and writes of
/// `shape.len` bytes, the same bytes or disjoint (packets whose bytes overlap each other's
/// come out wrong: every access goes through these pointers, each step's loads before its
/// stores);
/// each `aad` is `shape.aad_len` bytes long; the CPU must have AVX-512F/BW/VL, VAES,
/// VPCLMULQDQ, AES-NI, PCLMULQDQ and SSE4.1.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn seal(
    key: &AesGcmKey,
    tables: &mut BatchTables,
    packets: &[Packet<'_>],
    shape: Shape,
    sample_at: usize,
    header_keys: Option<&RoundKeys>,
    tags: &mut [[u8; TAG_LEN]; LANES],
) -> Option<[[u8; 16]; LANES]> {
    let tables = tables.for_group(key, packets, shape);
    // SAFETY: forwarded from the caller; `tables` cover the shape's blocks and steps.
    let end = unsafe {
        match key.round_keys.rounds() {
            10 => crypt_rounds::<10, true>(key, tables, packets, shape, sample_at, header_keys),
            _ => crypt_rounds::<14, true>(key, tables, packets, shape, sample_at, header_keys),
        }
    };
    end.store_tags(tags);
    end.kept.map(|kept| {
        let mut blocks = [[0; 16]; LANES];
        // SAFETY: `blocks` is four 16-byte blocks: one 64-byte store.
        unsafe { _mm512_storeu_si512(blocks.as_mut_ptr().cast(), kept) };
        blocks
    })
}

/// True when a 16-byte header-protection sample at offset `sample_at` of a `len`-byte
/// payload lies inside it: where [`seal`] keeps each packet's, and [`seal_whole`] protects
/// the headers.
pub(super) fn sample_inside(sample_at: usize, len: usize) -> bool {
    sample_at.checked_add(16).is_some_and(|end| end <= len)
}

/// Where [`seal_whole`] puts a group's headers, and how it protects them: short headers
/// (RFC 9001 §5.4.1), of the group's header length, at most [`MAX_SHORT_HEADER_LEN`].
pub(super) struct Headers<'k> {
    /// The header-protection key's rounds.
    pub(super) keys: &'k RoundKeys,
    /// Where each packet's sample starts, from its payload's first byte.
    pub(super) sample_at: usize,
    /// Where the packet number starts in each header.
    pub(super) pn_offset: usize,
    /// Where packet k's protected header goes.
    pub(super) out: [*mut u8; LANES],
}

const _: () = assert!(
    MAX_SHORT_HEADER_LEN <= 32,
    "a short header fits the 256-bit vector seal_whole protects it in"
);

/// Seals `packets` (one to four; any more are left alone), each of `shape`, as [`seal`]
/// does, and writes each one whole: its tag right after its payload, and its header (its
/// `aad`) to `headers.out[k]`, protected with the mask its sample takes under
/// `headers.keys` (the first byte's low five bits and the packet number's bytes). The masks
/// and the tags go from the registers that made them to the packets, not through memory of
/// their own.
///
/// # Safety
/// As for [`seal`]; besides, each packet's 16-byte sample at payload offset
/// `headers.sample_at` lies inside its payload ([`sample_inside`]; else nothing is kept to
/// mask the headers with, and neither they nor the tags are written), 16 writable bytes
/// follow each `dst`'s `shape.len` (for the tag), the headers are short headers (a first
/// byte, then a packet number of 1 to 4 bytes from `headers.pn_offset`, at least 1, to the
/// end, no longer than [`MAX_SHORT_HEADER_LEN`]), and each `headers.out[k]` of a packet is
/// valid for writes of its header's length, disjoint from every other byte the call reads
/// or writes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn seal_whole(
    key: &AesGcmKey,
    tables: &mut BatchTables,
    packets: &[Packet<'_>],
    shape: Shape,
    headers: &Headers<'_>,
) {
    let (sample_at, header_len) = (headers.sample_at, shape.aad_len);
    debug_assert!(sample_inside(sample_at, shape.len) && header_len <= MAX_SHORT_HEADER_LEN);
    debug_assert!(
        headers.pn_offset > 0
            && header_len
                .checked_sub(headers.pn_offset)
                .is_some_and(|pn_len| (1..=4).contains(&pn_len))
    );
    let tables = tables.for_group(key, packets, shape);
    let keys = Some(headers.keys);
    // SAFETY: forwarded from the caller; `tables` cover the shape's blocks and steps.
    let end = unsafe {
        match key.round_keys.rounds() {
            10 => crypt_rounds::<10, true>(key, tables, packets, shape, sample_at, keys),
            _ => crypt_rounds::<14, true>(key, tables, packets, shape, sample_at, keys),
        }
    };
    debug_assert!(end.kept.is_some(), "the sample lies inside each payload");
    let Some(kept) = end.kept else { return };
    let tags = lanes_of(end.tags);
    let masks = lanes_of(kept);
    let (spread, keep) = mask_spread(headers.pn_offset, header_len);
    // The header's bytes: the low `header_len` bits.
    let bytes = u32::MAX
        .checked_shr(32u32.saturating_sub(header_len as u32))
        .unwrap_or(0);
    let outputs = tags.into_iter().zip(masks).zip(headers.out);
    for (packet, ((tag, mask), out)) in packets.iter().zip(outputs) {
        // SAFETY: the caller vouches for the 16 bytes after the payload, for the header's
        // bytes to read (`aad`) and to write (`out`).
        unsafe {
            _mm_storeu_si128(packet.dst.add(shape.len).cast(), tag);
            let mask = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(mask), spread);
            let cleartext = _mm256_maskz_loadu_epi8(bytes, packet.aad.as_ptr().cast());
            // cleartext ^ (mask & keep)
            let protected = _mm256_ternarylogic_epi32::<0x78>(cleartext, mask, keep);
            _mm256_mask_storeu_epi8(out.cast(), bytes, protected);
        }
    }
}

/// The four 128-bit lanes of `vector`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lanes_of(vector: __m512i) -> [__m128i; LANES] {
    [
        _mm512_castsi512_si128(vector),
        _mm512_extracti32x4_epi32::<1>(vector),
        _mm512_extracti32x4_epi32::<2>(vector),
        _mm512_extracti32x4_epi32::<3>(vector),
    ]
}

/// How a short header of `len` bytes, its packet number from `pn_offset` on, takes its
/// mask (RFC 9001 §5.4.1): a shuffle that puts mask byte 0 at header byte 0 and mask bytes 1
/// to 4 on the packet number's bytes, and which bits of each byte are masked (the first
/// byte's low five, all of the packet number's, none of the connection ID's). The same in
/// both 128-bit halves, as the shuffle works per half.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn mask_spread(pn_offset: usize, len: usize) -> (__m256i, __m256i) {
    let positions = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31,
    );
    let pn_offset = _mm256_set1_epi8(pn_offset as i8);
    let number = _mm256_cmpge_epu8_mask(positions, pn_offset)
        & _mm256_cmplt_epu8_mask(positions, _mm256_set1_epi8(len as i8));
    // Byte pn_offset + i takes mask byte 1 + i; the others mask byte 0, kept only at 0.
    let spread = _mm256_maskz_add_epi8(
        number,
        _mm256_sub_epi8(positions, pn_offset),
        _mm256_set1_epi8(1),
    );
    let keep = _mm256_mask_blend_epi8(
        number,
        _mm256_maskz_set1_epi8(1, SHORT_HEADER_PROTECTED_BITS as i8),
        _mm256_set1_epi8(-1),
    );
    (spread, keep)
}

/// Opens `packets` (one to four; any more are left alone) in place, each of `shape` (one
/// that [`groups`] takes), and puts in `tags[k]` the tag packet k's ciphertext should carry.
/// The payloads are decrypted whatever their tags: the caller compares them and wipes what
/// fails.
///
/// # Safety
/// As for [`seal`], with each packet's `src` and `dst` the same pointer.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn open(
    key: &AesGcmKey,
    tables: &mut BatchTables,
    packets: &[Packet<'_>],
    shape: Shape,
    tags: &mut [[u8; TAG_LEN]; LANES],
) {
    let tables = tables.for_group(key, packets, shape);
    // SAFETY: forwarded from the caller; `tables` cover the shape's blocks and steps. No
    // sample is taken (an offset past every payload).
    let end = unsafe {
        match key.round_keys.rounds() {
            10 => crypt_rounds::<10, false>(key, tables, packets, shape, usize::MAX, None),
            _ => crypt_rounds::<14, false>(key, tables, packets, shape, usize::MAX, None),
        }
    };
    end.store_tags(tags);
}

/// A vector of one block per lane, lanes past `blocks`' count zero.
#[inline]
#[target_feature(enable = "avx512f")]
fn vector(blocks: [__m128i; LANES]) -> __m512i {
    let v = _mm512_castsi128_si512(blocks[0]);
    let v = _mm512_inserti32x4::<1>(v, blocks[1]);
    let v = _mm512_inserti32x4::<2>(v, blocks[2]);
    _mm512_inserti32x4::<3>(v, blocks[3])
}

/// Up to 16 bytes at `at` of each of the first `count` regions, lane by lane (`mask` says
/// which bytes of the block; the others, and lanes past `count`, are zero).
///
/// # Safety
/// The masked bytes at `at` of each of the first `count` regions must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn gather(regions: &[*const u8; LANES], count: usize, at: usize, mask: u16) -> __m512i {
    vector(core::array::from_fn(|k| match regions.get(k) {
        // SAFETY: only the masked bytes are read, which the caller vouches for.
        Some(region) if k < count => unsafe { _mm_maskz_loadu_epi8(mask, region.add(at).cast()) },
        _ => _mm_setzero_si128(),
    }))
}

/// Which bytes of the block at byte `at` of `len` lie inside: all 16 but in the last block.
#[inline]
fn block_mask(len: usize, at: usize) -> u16 {
    match len - at {
        16.. => u16::MAX,
        rest => (1 << rest) - 1,
    }
}

/// Which bytes of a vector of counter blocks are the counters': the last four of each block.
const COUNTER_BYTES: u64 = 0xf000_f000_f000_f000;

/// The byte SubBytes takes to zero: a byte of a block set to it drops out of round 1's
/// output but for the round key.
const SUBBYTES_ZERO: i8 = 0x52;

/// Round 1 of counter blocks `nonces` (each lane the nonce, in byte order, and any counter)
/// but for their counters: the first round key, `keys[0]`, added, the counter's bytes set
/// to [`SUBBYTES_ZERO`], one AES round with the second, `keys[1]`. XORed with a step's
/// [`CounterRounds`], the blocks' states after round 1.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,vaes")]
fn nonce_rounds(keys: [__m512i; 2], nonces: __m512i) -> __m512i {
    let keyed = _mm512_xor_si512(nonces, keys[0]);
    _mm512_aesenc_epi128(
        _mm512_mask_set1_epi8(keyed, COUNTER_BYTES, SUBBYTES_ZERO),
        keys[1],
    )
}

/// Each lane of `block` encrypted with `round_keys` (each broadcast to every lane).
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn encrypt<const ROUNDS: usize>(round_keys: &[__m512i; 15], block: __m512i) -> __m512i {
    let mut block = _mm512_xor_si512(block, round_keys[0]);
    for round_key in &round_keys[1..ROUNDS] {
        block = _mm512_aesenc_epi128(block, *round_key);
    }
    _mm512_aesenclast_epi128(block, round_keys[ROUNDS])
}

/// [`encrypt`] with each round key broadcast from `keys` as its round comes.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn encrypt_broadcasting<const ROUNDS: usize>(keys: &RoundKeys, block: __m512i) -> __m512i {
    let mut block = _mm512_xor_si512(block, _mm512_broadcast_i32x4(keys.get(0)));
    for round in 1..ROUNDS {
        block = _mm512_aesenc_epi128(block, _mm512_broadcast_i32x4(keys.get(round)));
    }
    _mm512_aesenclast_epi128(block, _mm512_broadcast_i32x4(keys.get(ROUNDS)))
}

/// What a group keeps in memory across [`whole_steps`]' assembly, which uses every vector
/// register: what every step reads, laid out for the assembly to address (each packet's
/// nonce rounds, see [`nonce_rounds`]; the byte-order shuffle), and each packet's E_K(J0),
/// which masks its tag. E_K(J0) is computed before the steps, off the tag's path at the
/// end, and read back from here after them: a vector still live across the assembly would
/// be spilled to a stack slot of the compiler's choosing, which nothing wipes. The nonce
/// rounds and the tag masks are key material: wiped on drop.
#[repr(C, align(64))]
struct StepConstants {
    nonce_rounds: [__m512i; LANES],
    swap: __m512i,
    tag_masks: __m512i,
    /// The bytes of the payload's last step if it ends inside (see [`whole_steps`]), else
    /// zero.
    tail: u64,
}

impl StepConstants {
    /// Zeroes the key material, a 512-bit store a vector.
    #[target_feature(enable = "avx512f")]
    fn wipe(&mut self) {
        for vector in self.nonce_rounds.iter_mut().chain([&mut self.tag_masks]) {
            // SAFETY: a vector of the struct: valid and aligned for the write.
            unsafe { core::ptr::write_volatile(vector, _mm512_setzero_si512()) };
        }
    }
}

impl Drop for StepConstants {
    fn drop(&mut self) {
        // SAFETY: only `crypt_rounds`, which needs AVX-512F, makes them: the CPU has it.
        unsafe { self.wipe() }
    }
}

/// What every step of a group reads: [`StepConstants`], the round keys, the batch's counter
/// rounds, and where each packet's payload comes from and goes (a lane without a packet
/// reads the first packet's, and stores the same bytes there again).
struct Lanes<'k> {
    constants: StepConstants,
    round_keys: &'k RoundKeys,
    counter_rounds: StepRounds,
    sources: [*const u8; LANES],
    destinations: [*mut u8; LANES],
}

/// Round `$r` of the four states, `zmm0` to `zmm3`: its key loaded to every lane of
/// `zmm10`, then used.
#[rustfmt::skip]
macro_rules! aes_round {
    ($r:literal) => {
        concat!(
            "vbroadcasti32x4 zmm10, xmmword ptr [{keys} + 16 * ", $r, "]\n",
            "vaesenc zmm0, zmm0, zmm10\n",
            "vaesenc zmm1, zmm1, zmm10\n",
            "vaesenc zmm2, zmm2, zmm10\n",
            "vaesenc zmm3, zmm3, zmm10\n",
        )
    };
}

/// The first half of GHASH for one packet's four blocks, `$text`: byte-swapped in place,
/// then multiplied by the step's powers (`zmm19`), the low products added to `$low`, the
/// first middle ones left in `zmm8`.
#[rustfmt::skip]
macro_rules! hash_first {
    ($text:literal, $low:literal) => {
        concat!(
            "vpshufb ", $text, ", ", $text, ", zmm17\n",
            "vpclmulqdq zmm8, ", $text, ", zmm19, 0x00\n",
            "vpxorq ", $low, ", ", $low, ", zmm8\n",
            "vpclmulqdq zmm8, ", $text, ", zmm19, 0x01\n",
        )
    };
}

/// The second half: the other middle products and the high ones, added to `$middle` and
/// `$high` (schoolbook, as [`SchoolbookProducts::add`]); `zmm9` and `$text` overwritten.
#[rustfmt::skip]
macro_rules! hash_second {
    ($text:literal, $middle:literal, $high:literal) => {
        concat!(
            "vpclmulqdq zmm9, ", $text, ", zmm19, 0x10\n",
            "vpternlogd ", $middle, ", zmm8, zmm9, 0x96\n",
            "vpclmulqdq ", $text, ", ", $text, ", zmm19, 0x11\n",
            "vpxorq ", $high, ", ", $high, ", ", $text, "\n",
        )
    };
}

/// GHASH of the four packets' texts, `zmm4` to `zmm7`, each into its sums.
macro_rules! hash_lanes {
    () => {
        concat!(
            hash_first!("zmm4", "zmm20"),
            hash_second!("zmm4", "zmm21", "zmm22"),
            hash_first!("zmm5", "zmm23"),
            hash_second!("zmm5", "zmm24", "zmm25"),
            hash_first!("zmm6", "zmm26"),
            hash_second!("zmm6", "zmm27", "zmm28"),
            hash_first!("zmm7", "zmm29"),
            hash_second!("zmm7", "zmm30", "zmm31"),
        )
    };
}

/// Round 2 of the four states, with its key held in `zmm18`.
#[rustfmt::skip]
macro_rules! second_round {
    () => {
        concat!(
            "vaesenc zmm0, zmm0, zmm18\n",
            "vaesenc zmm1, zmm1, zmm18\n",
            "vaesenc zmm2, zmm2, zmm18\n",
            "vaesenc zmm3, zmm3, zmm18\n",
        )
    };
}

/// Rounds 2 to 9 of a step, the previous step's GHASH between them: half a packet's after
/// each.
macro_rules! rounds_hashing {
    () => {
        concat!(
            second_round!(),
            hash_first!("zmm4", "zmm20"),
            aes_round!(3),
            hash_second!("zmm4", "zmm21", "zmm22"),
            aes_round!(4),
            hash_first!("zmm5", "zmm23"),
            aes_round!(5),
            hash_second!("zmm5", "zmm24", "zmm25"),
            aes_round!(6),
            hash_first!("zmm6", "zmm26"),
            aes_round!(7),
            hash_second!("zmm6", "zmm27", "zmm28"),
            aes_round!(8),
            hash_first!("zmm7", "zmm29"),
            aes_round!(9),
            hash_second!("zmm7", "zmm30", "zmm31"),
        )
    };
}

/// A step's start, its states after round 1: each packet's nonce rounds XORed with the
/// step's counter rounds, read from the batch's table.
macro_rules! states {
    () => {
        concat!(
            "vmovdqu64 zmm11, zmmword ptr [{counter_rounds} + {at}]\n",
            "vpxord zmm0, zmm12, zmm11\n",
            "vpxord zmm1, zmm13, zmm11\n",
            "vpxord zmm2, zmm14, zmm11\n",
            "vpxord zmm3, zmm15, zmm11\n",
        )
    };
}

/// A sealing step's end: the last round (its key, `zmm16`, XORed with the text, read from
/// the sources: see `avx512::crypt_rounds`), the ciphertext to `zmm4`-`zmm7`, stored; every
/// lane's text read before any is stored (a lane without a packet reads and writes the
/// first packet's bytes).
macro_rules! sealing_end {
    () => {
        concat!(
            "vpxord zmm8, zmm16, zmmword ptr [{s0} + {at}]\n",
            "vaesenclast zmm4, zmm0, zmm8\n",
            "vpxord zmm8, zmm16, zmmword ptr [{s1} + {at}]\n",
            "vaesenclast zmm5, zmm1, zmm8\n",
            "vpxord zmm8, zmm16, zmmword ptr [{s2} + {at}]\n",
            "vaesenclast zmm6, zmm2, zmm8\n",
            "vpxord zmm8, zmm16, zmmword ptr [{s3} + {at}]\n",
            "vaesenclast zmm7, zmm3, zmm8\n",
            "vmovdqu64 zmmword ptr [{d0} + {at}], zmm4\n",
            "vmovdqu64 zmmword ptr [{d1} + {at}], zmm5\n",
            "vmovdqu64 zmmword ptr [{d2} + {at}], zmm6\n",
            "vmovdqu64 zmmword ptr [{d3} + {at}], zmm7\n",
        )
    };
}

/// The last round of an opening step, its ciphertext in `zmm4`-`zmm7` (its key, `zmm16`,
/// XORed with it): the plaintext in `zmm0`-`zmm3`.
macro_rules! opening_last_round {
    () => {
        concat!(
            "vpxord zmm8, zmm16, zmm4\n",
            "vaesenclast zmm0, zmm0, zmm8\n",
            "vpxord zmm8, zmm16, zmm5\n",
            "vaesenclast zmm1, zmm1, zmm8\n",
            "vpxord zmm8, zmm16, zmm6\n",
            "vaesenclast zmm2, zmm2, zmm8\n",
            "vpxord zmm8, zmm16, zmm7\n",
            "vaesenclast zmm3, zmm3, zmm8\n",
        )
    };
}

/// An opening step's end: the ciphertext loaded to `zmm4`-`zmm7` (kept for GHASH), the
/// last round, the plaintext stored.
macro_rules! opening_end {
    () => {
        concat!(
            "vmovdqu64 zmm4, zmmword ptr [{s0} + {at}]\n",
            "vmovdqu64 zmm5, zmmword ptr [{s1} + {at}]\n",
            "vmovdqu64 zmm6, zmmword ptr [{s2} + {at}]\n",
            "vmovdqu64 zmm7, zmmword ptr [{s3} + {at}]\n",
            opening_last_round!(),
            "vmovdqu64 zmmword ptr [{d0} + {at}], zmm0\n",
            "vmovdqu64 zmmword ptr [{d1} + {at}], zmm1\n",
            "vmovdqu64 zmmword ptr [{d2} + {at}], zmm2\n",
            "vmovdqu64 zmmword ptr [{d3} + {at}], zmm3\n",
        )
    };
}

/// [`sealing_end!`] for a last step that ends inside the payload: only the bytes `k1` marks
/// read and stored, and the ciphertext zero past them, as GHASH takes it.
macro_rules! sealing_tail_end {
    () => {
        concat!(
            "vmovdqu8 zmm8{{k1}}{{z}}, zmmword ptr [{s0} + {at}]\n",
            "vpxord zmm8, zmm8, zmm16\n",
            "vaesenclast zmm4, zmm0, zmm8\n",
            "vmovdqu8 zmm8{{k1}}{{z}}, zmmword ptr [{s1} + {at}]\n",
            "vpxord zmm8, zmm8, zmm16\n",
            "vaesenclast zmm5, zmm1, zmm8\n",
            "vmovdqu8 zmm8{{k1}}{{z}}, zmmword ptr [{s2} + {at}]\n",
            "vpxord zmm8, zmm8, zmm16\n",
            "vaesenclast zmm6, zmm2, zmm8\n",
            "vmovdqu8 zmm8{{k1}}{{z}}, zmmword ptr [{s3} + {at}]\n",
            "vpxord zmm8, zmm8, zmm16\n",
            "vaesenclast zmm7, zmm3, zmm8\n",
            "vmovdqu8 zmmword ptr [{d0} + {at}]{{k1}}, zmm4\n",
            "vmovdqu8 zmmword ptr [{d1} + {at}]{{k1}}, zmm5\n",
            "vmovdqu8 zmmword ptr [{d2} + {at}]{{k1}}, zmm6\n",
            "vmovdqu8 zmmword ptr [{d3} + {at}]{{k1}}, zmm7\n",
            "vmovdqu8 zmm4{{k1}}{{z}}, zmm4\n",
            "vmovdqu8 zmm5{{k1}}{{z}}, zmm5\n",
            "vmovdqu8 zmm6{{k1}}{{z}}, zmm6\n",
            "vmovdqu8 zmm7{{k1}}{{z}}, zmm7\n",
        )
    };
}

/// [`opening_end!`] for a last step that ends inside the payload: only the bytes `k1` marks
/// read (the others zero, as GHASH takes them) and stored.
macro_rules! opening_tail_end {
    () => {
        concat!(
            "vmovdqu8 zmm4{{k1}}{{z}}, zmmword ptr [{s0} + {at}]\n",
            "vmovdqu8 zmm5{{k1}}{{z}}, zmmword ptr [{s1} + {at}]\n",
            "vmovdqu8 zmm6{{k1}}{{z}}, zmmword ptr [{s2} + {at}]\n",
            "vmovdqu8 zmm7{{k1}}{{z}}, zmmword ptr [{s3} + {at}]\n",
            opening_last_round!(),
            "vmovdqu8 zmmword ptr [{d0} + {at}]{{k1}}, zmm0\n",
            "vmovdqu8 zmmword ptr [{d1} + {at}]{{k1}}, zmm1\n",
            "vmovdqu8 zmmword ptr [{d2} + {at}]{{k1}}, zmm2\n",
            "vmovdqu8 zmmword ptr [{d3} + {at}]{{k1}}, zmm3\n",
        )
    };
}

/// The group's steps from payload byte 0: `steps` whole ones (at least one), then, unless
/// the constants' `tail` is zero, one that ends inside the payload, `tail` marking the
/// bytes it takes from its start (as [`short_step`] does where no whole step comes first),
/// with `powers` the first step's powers (each next step's 64 bytes above).
///
/// In assembly, with the registers and the order chosen by hand. The loop is bound by the
/// two ports that take 512-bit instructions: the AES rounds run on one, carry-less
/// multiplications and shuffles on the other, XORs and additions on either, each bound to
/// a port as it is issued. Each step's GHASH is spread between the next step's rounds, as
/// the single packet's loop spreads its own (`avx512::crypt_rounds`): with the same
/// instructions in blocks, a step's GHASH after its rounds, 1350-byte AES-128-GCM batches
/// took 1.07 times as long, as if the XORs issued in the GHASH block took turns on the
/// rounds' port. Compiled from intrinsics, the register allocator also rotated sums and
/// nonces through other registers or spilled them (from none to 38 moves a step,
/// depending on how the rest of the function happened to be written).
///
/// Registers: states `zmm0`-`zmm3`, texts `zmm4`-`zmm7` (the ciphertext, which GHASH takes:
/// the output when sealing, `SEAL`, the input when opening), products `zmm8` and `zmm9`,
/// the round key `zmm10` (each broadcast from the key's own for its round), the step's
/// counter rounds `zmm11`, the nonce rounds `zmm12`-`zmm15`, the last round key `zmm16`,
/// the byte-order shuffle `zmm17`, the second round key `zmm18`, the powers being used
/// `zmm19`, packet k's sums (low, middle, high) `zmm(20 + 3k)` to `zmm(22 + 3k)`, and the
/// tail's bytes `k1`. The
/// loop is short of load ports as well: the counter rounds loaded once a step rather than
/// as each of the four XORs' operand, and the second round key held rather than broadcast
/// each step, each took about 1% off a 1350-byte AES-128-GCM batch.
///
/// A tail's step runs here, its rounds beside its predecessor's GHASH as the loop's do. Run
/// after the assembly from intrinsics, it left that GHASH alone on the multiplier's port
/// and its own rounds alone on the AES port: 1350-byte AES-128-GCM batches took about 1%
/// longer.
///
/// # Safety
/// `steps` must be at least 1, the `64 * steps` bytes from each source readable and from
/// each destination writable (the same bytes or disjoint, as for [`seal`]), and so the
/// bytes the constants' `tail` marks after them, the powers readable from `powers` up to
/// `steps - 1` vectors above it (`steps` with a tail), and the counter rounds of `steps`
/// steps (one more with a tail) from `lanes.counter_rounds`; the CPU must have AVX-512F
/// and BW, VAES and VPCLMULQDQ.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq")]
unsafe fn whole_steps<const ROUNDS: usize, const SEAL: bool>(
    lanes: &Lanes<'_>,
    steps: usize,
    powers: *const u8,
    sums: &mut [SchoolbookProducts; LANES],
) {
    let [s0, s1, s2, s3] = lanes.sources;
    let [d0, d1, d2, d3] = lanes.destinations;
    let [sum0, sum1, sum2, sum3] = sums;
    macro_rules! run {
        ([$($round:literal)*], $last:literal, $end:expr, $tail_end:expr) => {
            // SAFETY: the template reads the constants (the tail's mask among them), the
            // counter rounds of every step, each source's and writes each destination's
            // `64 * steps` bytes and then only the tail's bytes the mask marks, reads the
            // powers (all valid, the caller says), and writes only the registers declared.
            unsafe {
                core::arch::asm!(
                    "vmovdqu64 zmm12, zmmword ptr [{c} + {nonces}]",
                    "vmovdqu64 zmm13, zmmword ptr [{c} + {nonces} + 64]",
                    "vmovdqu64 zmm14, zmmword ptr [{c} + {nonces} + 128]",
                    "vmovdqu64 zmm15, zmmword ptr [{c} + {nonces} + 192]",
                    concat!("vbroadcasti32x4 zmm16, xmmword ptr [{keys} + 16 * ", $last, "]"),
                    "vmovdqu64 zmm17, zmmword ptr [{c} + {swap}]",
                    "vbroadcasti32x4 zmm18, xmmword ptr [{keys} + 16 * 2]",
                    // The first step, with no GHASH to run beside its rounds.
                    states!(),
                    second_round!(), aes_round!(3), aes_round!(4), aes_round!(5),
                    aes_round!(6), aes_round!(7), aes_round!(8), aes_round!(9),
                    $(aes_round!($round),)*
                    $end,
                    "add {at}, 64",
                    "dec {n}",
                    "jz 3f",
                    // The next steps, each with its predecessor's GHASH.
                    "2:",
                    "vmovdqu64 zmm19, zmmword ptr [{p}]",
                    "add {p}, 64",
                    states!(),
                    rounds_hashing!(),
                    $(aes_round!($round),)*
                    $end,
                    "add {at}, 64",
                    "dec {n}",
                    "jnz 2b",
                    "3:",
                    // A step that ends inside the payload, with its predecessor's GHASH.
                    "kmovq k1, qword ptr [{c} + {tail}]",
                    "kortestq k1, k1",
                    "jz 4f",
                    "vmovdqu64 zmm19, zmmword ptr [{p}]",
                    "add {p}, 64",
                    states!(),
                    rounds_hashing!(),
                    $(aes_round!($round),)*
                    $tail_end,
                    // The last step's GHASH.
                    "4:",
                    "vmovdqu64 zmm19, zmmword ptr [{p}]",
                    hash_lanes!(),
                    c = in(reg) &lanes.constants,
                    s0 = in(reg) s0,
                    s1 = in(reg) s1,
                    s2 = in(reg) s2,
                    s3 = in(reg) s3,
                    d0 = in(reg) d0,
                    d1 = in(reg) d1,
                    d2 = in(reg) d2,
                    d3 = in(reg) d3,
                    at = inout(reg) 0usize => _,
                    p = inout(reg) powers => _,
                    n = inout(reg) steps => _,
                    tail = const core::mem::offset_of!(StepConstants, tail),
                    nonces = const core::mem::offset_of!(StepConstants, nonce_rounds),
                    keys = in(reg) lanes.round_keys.bytes().as_ptr(),
                    swap = const core::mem::offset_of!(StepConstants, swap),
                    counter_rounds = in(reg) lanes.counter_rounds.step(0),
                    inout("zmm20") sum0.low,
                    inout("zmm21") sum0.middle,
                    inout("zmm22") sum0.high,
                    inout("zmm23") sum1.low,
                    inout("zmm24") sum1.middle,
                    inout("zmm25") sum1.high,
                    inout("zmm26") sum2.low,
                    inout("zmm27") sum2.middle,
                    inout("zmm28") sum2.high,
                    inout("zmm29") sum3.low,
                    inout("zmm30") sum3.middle,
                    inout("zmm31") sum3.high,
                    out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                    out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                    out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                    out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
                    out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                    out("k1") _,
                    options(nostack),
                )
            }
        };
    }
    match (ROUNDS, SEAL) {
        (10, true) => run!([], 10, sealing_end!(), sealing_tail_end!()),
        (10, false) => run!([], 10, opening_end!(), opening_tail_end!()),
        (_, true) => run!([10 11 12 13], 14, sealing_end!(), sealing_tail_end!()),
        (_, false) => run!([10 11 12 13], 14, opening_end!(), opening_tail_end!()),
    }
}

/// The group's one step where each payload is shorter than a step: the constants' `tail`
/// says which of its bytes lie inside. As a step of [`whole_steps`], from intrinsics (it
/// runs once a group), the bytes outside read as zero and not written.
///
/// # Safety
/// The bytes `tail` marks must lie inside each payload, and the first step's counter rounds
/// must be in the batch's table.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq")]
unsafe fn short_step<const ROUNDS: usize, const SEAL: bool>(
    lanes: &Lanes<'_>,
    round_keys: &[__m512i; 15],
    powers: __m512i,
    sums: &mut [SchoolbookProducts; LANES],
) {
    let constants = &lanes.constants;
    let mask = constants.tail;
    // SAFETY: the caller vouches for the step's counter rounds.
    let counter_rounds = unsafe { lanes.counter_rounds.load(0) };
    let mut state = constants
        .nonce_rounds
        .map(|nonce| _mm512_xor_si512(nonce, counter_rounds));
    for key in &round_keys[2..ROUNDS] {
        for s in &mut state {
            *s = _mm512_aesenc_epi128(*s, *key);
        }
    }
    // SAFETY: the caller vouches for the bytes; the loads come before the stores.
    let inputs: [__m512i; LANES] =
        core::array::from_fn(|k| unsafe { _mm512_maskz_loadu_epi8(mask, lanes.sources[k].cast()) });
    let outputs: [__m512i; LANES] = core::array::from_fn(|k| {
        _mm512_aesenclast_epi128(state[k], _mm512_xor_si512(round_keys[ROUNDS], inputs[k]))
    });
    for (row, destination) in outputs.into_iter().zip(lanes.destinations) {
        // SAFETY: as above.
        unsafe { _mm512_mask_storeu_epi8(destination.cast(), mask, row) };
    }
    // The ciphertext as GHASH takes it: zero past the payload's end (as the masked loads
    // leave the input).
    let texts: [__m512i; LANES] = if SEAL {
        core::array::from_fn(|k| _mm512_maskz_mov_epi8(mask, outputs[k]))
    } else {
        inputs
    };
    for (sum, text) in sums.iter_mut().zip(texts) {
        sum.add(_mm512_shuffle_epi8(text, constants.swap), powers);
    }
}

/// [`seal`] (`SEAL`) or [`open`]: the same pass, GHASH taking the ciphertext as it is
/// stored (sealing) or as it is loaded (opening).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
unsafe fn crypt_rounds<const ROUNDS: usize, const SEAL: bool>(
    key: &AesGcmKey,
    GroupTables {
        powers,
        counter_rounds,
    }: GroupTables,
    packets: &[Packet<'_>],
    Shape { len, aad_len }: Shape,
    sample_at: usize,
    header_keys: Option<&RoundKeys>,
) -> GroupEnd {
    let count = packets.len().min(LANES);
    let lane = |k: usize| packets.get(k);
    let aad_blocks = aad_len.div_ceil(16);
    let blocks = len.div_ceil(16);
    let total = Shape { len, aad_len }.blocks();
    // SAFETY: `powers` reach H^`total` (the callers asked them to), and the closures are
    // asked for no higher power.
    let powers_from = |m: usize| unsafe { powers.from(m) };
    // SAFETY: as for `powers_from`.
    let power = |m: usize| unsafe { powers.one(m) };

    // First what the whole steps' assembly reads and what is kept across it, both through
    // memory ([`StepConstants`]), and nothing else: computed here, the round keys and the
    // headers' products were spilled around it (14 vectors a group, key material among
    // them, left on the stack).
    let swap = _mm512_broadcast_i32x4(byte_swap_mask());
    let Some(first) = packets.first() else {
        return GroupEnd {
            tags: _mm512_setzero_si512(),
            kept: None,
        };
    };
    let sources: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.src, |packet| packet.src));
    let destinations: [*mut u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.dst, |packet| packet.dst));
    // A counter block in byte order is its packet's nonce, then the counter, and the
    // counters of a step are the same in every packet: its round 1 is its packet's nonce
    // rounds XORed with the step's counter rounds (see the module's documentation).
    let bases = vector(core::array::from_fn(|k| {
        lane(k).map_or_else(|| _mm_setzero_si128(), |packet| counter_base(packet.nonce))
    }));
    let tag_masks = encrypt_broadcasting::<ROUNDS>(
        &key.round_keys,
        _mm512_shuffle_epi8(
            _mm512_add_epi32(bases, _mm512_maskz_set1_epi32(0x1111, 1)),
            swap,
        ),
    );
    let first_keys = [0, 1].map(|i| _mm512_broadcast_i32x4(key.round_keys.get(i)));
    let nonce_rounds: [__m512i; LANES] = core::array::from_fn(|k| {
        let base = lane(k).map_or_else(|| counter_base(first.nonce), |p| counter_base(p.nonce));
        nonce_rounds(
            first_keys,
            _mm512_shuffle_epi8(_mm512_broadcast_i32x4(base), swap),
        )
    });
    let full_steps = len / 64;
    // The bytes of the step that ends inside the payload, if one does.
    let tail = match len - 64 * full_steps {
        0 => 0,
        rest => u64::MAX >> (64 - rest),
    };
    let lanes = Lanes {
        constants: StepConstants {
            nonce_rounds,
            swap,
            tag_masks,
            tail,
        },
        round_keys: &key.round_keys,
        counter_rounds,
        sources,
        destinations,
    };
    // Each packet's products, lane j of `sums[k]` the sum of packet k's blocks 4i + j.
    let mut sums = [SchoolbookProducts::zero(); LANES];
    let swap = lanes.constants.swap;
    let broadcast_keys = |keys: &RoundKeys| -> [__m512i; 15] {
        core::array::from_fn(|i| _mm512_broadcast_i32x4(keys.get(i)))
    };
    // Payload block b is H^(blocks + 1 - b)'s (the lengths block follows it).
    if full_steps > 0 {
        // SAFETY: the whole steps' bytes and the tail's lie inside each payload (and the
        // first one's, which lanes without a packet read and write), the powers reach
        // H^(blocks + 1) (see `powers_from`), each step's four 64 bytes above the last's,
        // and the counter rounds cover every step of the payload (the callers asked for
        // them).
        unsafe {
            whole_steps::<ROUNDS, SEAL>(&lanes, full_steps, powers.at(blocks + 1), &mut sums)
        };
    } else if tail != 0 {
        let round_keys = broadcast_keys(&key.round_keys);
        // SAFETY: the masked bytes lie inside each payload, and the counter rounds cover its
        // one step.
        unsafe {
            short_step::<ROUNDS, SEAL>(&lanes, &round_keys, powers_from(blocks + 1), &mut sums)
        };
    }
    // The headers' blocks (one lane a packet) and the lengths block, each times its power:
    // added to the payloads' products.
    let aads: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(core::ptr::null(), |packet| packet.aad.as_ptr()));
    let lengths = _mm512_broadcast_i32x4(_mm_set_epi64x(
        (aad_len as u64 * 8) as i64,
        (len as u64 * 8) as i64,
    ));
    let mut head = WideProducts::zero();
    for i in 0..aad_blocks {
        // SAFETY: the masked bytes lie inside each `aad_len`-byte header.
        let block = unsafe { gather(&aads, count, 16 * i, block_mask(aad_len, 16 * i)) };
        let (p, f) = power(total - i);
        head.add(_mm512_shuffle_epi8(block, swap), p, f);
    }
    let (p, f) = power(1);
    head.add(lengths, p, f);
    let takes_sample = sample_inside(sample_at, len);
    // The samples, read back from the ciphertext just stored rather than picked out of
    // the step that made them: the steps have no sample to look for.
    let readable: [*const u8; LANES] = destinations.map(|destination| destination.cast_const());
    // SAFETY: the 16 bytes at `sample_at` lie inside each packet's payload, written above.
    let sample =
        (SEAL && takes_sample).then(|| unsafe { gather(&readable, count, sample_at, u16::MAX) });
    // The sample's rounds, issued here, run beside the final reduction.
    let kept = match (sample, header_keys) {
        (Some(sample), Some(keys)) => {
            let keys_for_lanes = broadcast_keys(keys);
            Some(match keys.rounds() {
                10 => encrypt::<10>(&keys_for_lanes, sample),
                _ => encrypt::<14>(&keys_for_lanes, sample),
            })
        }
        (sample, _) => sample,
    };
    // Each packet's lanes added, one lane a packet as the headers', and one reduction for
    // the four hashes.
    let hash = WideProducts::lanes_summed(sums.map(|sum| sum.karatsuba()))
        .plus(head)
        .reduce_lanes();
    GroupEnd {
        tags: _mm512_xor_si512(_mm512_shuffle_epi8(hash, swap), lanes.constants.tag_masks),
        kept,
    }
}

/// What a group's pass ends with, one lane a packet: the tags, and what was kept of each
/// sample (see [`seal`]).
struct GroupEnd {
    tags: __m512i,
    kept: Option<__m512i>,
}

impl GroupEnd {
    /// The tags to `tags`, packet k's to `tags[k]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store_tags(&self, tags: &mut [[u8; TAG_LEN]; LANES]) {
        // SAFETY: `tags` is four 16-byte blocks: one 64-byte store.
        unsafe { _mm512_storeu_si512(tags.as_mut_ptr().cast(), self.tags) };
    }
}

/// What a batch's groups read besides their key: the powers of the hash key past the key's
/// own ([`HashPowers`]) and each step's counter rounds ([`CounterRounds`]), each built as far
/// as the groups need them. They may outlive a batch (a sending flow keeps them, see
/// [`PacketKey::BatchTables`](crate::backend::PacketKey::BatchTables)), so they remember the
/// key bytes they derive from and are built again, the old ones wiped, for a group of
/// another key.
pub(in crate::backend) struct BatchTables {
    /// The key bytes the tables were built from ([`sources`]); zero before any are built.
    built_for: [u8; 32],
    powers: HashPowers,
    counter_rounds: CounterRounds,
}

impl BatchTables {
    /// Nothing built yet: nothing to pay for a batch of short packets.
    pub(super) fn new() -> BatchTables {
        BatchTables {
            built_for: [0; 32],
            powers: HashPowers::new(),
            counter_rounds: CounterRounds::new(),
        }
    }

    /// The tables a group of `packets` of `shape` reads, built as far as it needs them,
    /// from the start (the old ones wiped) if they were built for another key.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,sse2")]
    fn for_group(&mut self, key: &AesGcmKey, packets: &[Packet<'_>], shape: Shape) -> GroupTables {
        debug_assert!(groups(shape.len, shape.aad_len));
        debug_assert!(
            packets
                .iter()
                .all(|packet| packet.aad.len() == shape.aad_len)
        );
        let sources = sources(key);
        // SAFETY: `built_for` is 32 bytes.
        let built_for = unsafe { _mm256_loadu_si256(self.built_for.as_ptr().cast()) };
        if _mm256_cmpneq_epi8_mask(sources, built_for) != 0 {
            self.powers.clear();
            self.counter_rounds.clear();
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(self.built_for.as_mut_ptr().cast(), sources) };
        }
        GroupTables {
            powers: self.powers.up_to(key, shape.blocks()),
            counter_rounds: self
                .counter_rounds
                .up_to(&key.round_keys, shape.len.div_ceil(64)),
        }
    }
}

impl Default for BatchTables {
    fn default() -> BatchTables {
        BatchTables::new()
    }
}

impl Drop for BatchTables {
    /// The key bytes they were built for are key material: wiped (the tables wipe
    /// themselves).
    fn drop(&mut self) {
        // SAFETY: `built_for` is valid for the write.
        unsafe { core::ptr::write_volatile(&mut self.built_for, [0; 32]) };
    }
}

/// What a key's [`BatchTables`] derive from, all of it and no more: the hash key H, which the
/// powers are powers of, and the last four bytes of the first round key, which the counter
/// rounds take in (the rest zero: for AES-128 the first round key is the key itself). Two
/// keys with equal sources have equal tables.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn sources(key: &AesGcmKey) -> __m256i {
    // SAFETY: H^1's 16 bytes are readable.
    let hash_key = unsafe { _mm_loadu_si128(key.powers.powers_from(1).cast()) };
    let counter_bytes = _mm_and_si128(key.round_keys.get(0), _mm_set_epi32(-1, 0, 0, 0));
    _mm256_inserti32x4::<1>(_mm256_castsi128_si256(counter_bytes), hash_key)
}

/// Where a group reads the tables of its batch.
#[derive(Clone, Copy)]
struct GroupTables {
    powers: Powers,
    counter_rounds: StepRounds,
}

/// Most steps a grouped packet's payload takes: at most [`MAX_BLOCKS`] blocks less the
/// lengths block, four a step.
const MAX_STEPS: usize = (MAX_BLOCKS - 1).div_ceil(4);
const _: () = assert!(
    groups(64 * MAX_STEPS - 16, 0) && !groups(64 * MAX_STEPS + 1, 0),
    "the longest payload `groups` takes has MAX_STEPS steps"
);

/// Round 1 of each step's counters, the other half of [`nonce_rounds`]: for step s, lane j
/// holds one AES round, with a zero round key, of a block whose last four bytes are payload
/// block 4s + j's counter (4s + j + 2: counter 1 is J0's) XORed with the first round key's
/// last four, and whose other twelve are [`SUBBYTES_ZERO`]. They depend on those four bytes
/// alone, and are key material: wiped on drop.
///
/// `built` comes first, in C's order: after the table, the compiler made one `memset` of
/// the table (uninitialised, so free to be zero) and `built`, 1.5 KB each time one was
/// made.
#[repr(C)]
pub(super) struct CounterRounds {
    built: usize,
    /// Step s's rounds at `s`; the first `built` written.
    table: CounterTable,
}

/// A table of one vector a step, each 64-byte aligned.
#[repr(C, align(64))]
struct CounterTable([MaybeUninit<[u8; 64]>; MAX_STEPS]);

impl CounterRounds {
    /// None built yet.
    fn new() -> CounterRounds {
        CounterRounds {
            built: 0,
            table: CounterTable([MaybeUninit::uninit(); MAX_STEPS]),
        }
    }

    /// The rounds of the first `steps` steps (at most [`MAX_STEPS`]) under `keys`, built as
    /// far as they must be.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,vaes")]
    fn up_to(&mut self, keys: &RoundKeys, steps: usize) -> StepRounds {
        debug_assert!(
            steps <= MAX_STEPS,
            "a grouped payload takes at most MAX_STEPS steps"
        );
        if self.built < steps {
            self.build(keys, steps.min(MAX_STEPS));
        }
        StepRounds(self.table.0.as_ptr().cast())
    }

    /// Builds the rounds of steps `built` to `steps` (at most [`MAX_STEPS`]).
    #[target_feature(enable = "avx512f,avx512bw,vaes")]
    fn build(&mut self, keys: &RoundKeys, steps: usize) {
        let filled = _mm512_mask_mov_epi8(
            _mm512_set1_epi8(SUBBYTES_ZERO),
            COUNTER_BYTES,
            _mm512_broadcast_i32x4(keys.get(0)),
        );
        // The counters of step `built`, in the last byte of each lane (a big-endian 32-bit
        // counter; below 256, `MAX_BLOCKS` says, so its other bytes stay zero), and how far
        // a step moves them.
        let first = 4 * self.built as i32 + 2;
        let mut counters = _mm512_maskz_set1_epi32(0x8888, first << 24);
        counters = _mm512_add_epi32(
            counters,
            _mm512_set_epi32(
                3 << 24,
                0,
                0,
                0,
                2 << 24,
                0,
                0,
                0,
                1 << 24,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ),
        );
        let step = _mm512_maskz_set1_epi32(0x8888, 4 << 24);
        let zero = _mm512_setzero_si512();
        let slots = self.table.0.get_mut(self.built..steps).unwrap_or_default();
        for slot in slots {
            let rounds = _mm512_aesenc_epi128(_mm512_xor_si512(filled, counters), zero);
            // SAFETY: a slot of the table, 64 bytes: valid for the write.
            unsafe { _mm512_storeu_si512(slot.as_mut_ptr().cast(), rounds) };
            counters = _mm512_add_epi32(counters, step);
        }
        self.built = self.built.max(steps);
    }

    /// Wipes the rounds built: none are, after.
    fn clear(&mut self) {
        if self.built > 0 {
            // SAFETY: only `up_to`, which needs AVX-512F, builds rounds: the CPU has it.
            unsafe { self.wipe() };
            self.built = 0;
        }
    }

    /// Zeroes the rounds built, a 512-bit store a step.
    #[target_feature(enable = "avx512f")]
    fn wipe(&mut self) {
        for slot in self.table.0.iter_mut().take(self.built) {
            // SAFETY: a slot of the table: valid and aligned for the write.
            unsafe { core::ptr::write_volatile(slot.as_mut_ptr().cast(), _mm512_setzero_si512()) };
        }
    }
}

impl Drop for CounterRounds {
    /// Derived from the first round key: wiped, as the key is.
    fn drop(&mut self) {
        self.clear();
    }
}

/// Where a group reads each step's counter rounds: step s's vector at `s`.
#[derive(Clone, Copy)]
struct StepRounds(*const __m512i);

impl StepRounds {
    /// Where step `step`'s rounds are.
    fn step(self, step: usize) -> *const u8 {
        self.0.wrapping_add(step).cast()
    }

    /// Step `step`'s rounds.
    ///
    /// # Safety
    /// The step's rounds must have been built.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(self, step: usize) -> __m512i {
        // SAFETY: built, the caller says: 64 readable bytes.
        unsafe { _mm512_loadu_si512(self.step(step).cast()) }
    }
}

/// The powers of a key's hash key that a batch's groups multiply their blocks by, each block
/// by the power it has in its packet's GHASH (H^n for the first of n, H for the lengths
/// block), so that the products add up over a whole packet with one reduction at the end.
/// The key keeps 16 of them; longer packets need the rest, built here as far as they do.
struct HashPowers {
    /// H^MAX_BLOCKS .. H^1, H^m at `MAX_BLOCKS - m`, then three zero blocks; only the last
    /// `built` powers and, once any are, the zeros are written.
    table: PowerTable,
    built: usize,
}

/// A table of powers, each 16-byte aligned (so that it is wiped a block at a time), its
/// vectors of four 64-byte aligned.
#[repr(C, align(64))]
struct PowerTable([MaybeUninit<[u8; 16]>; MAX_BLOCKS + 3]);

impl HashPowers {
    /// None built yet.
    fn new() -> HashPowers {
        HashPowers {
            table: PowerTable([MaybeUninit::uninit(); MAX_BLOCKS + 3]),
            built: 0,
        }
    }

    /// The powers up to H^`total`: the key's own where they are enough, else the table,
    /// built as far as it must be.
    #[target_feature(enable = "avx512f,vpclmulqdq,sse2")]
    fn up_to(&mut self, key: &AesGcmKey, total: usize) -> Powers {
        if total <= POWERS {
            return Powers {
                end: key.powers.end(),
            };
        }
        if self.built < total {
            self.build(key, total);
        }
        Powers {
            end: self.table.0.as_ptr().wrapping_add(MAX_BLOCKS).cast(),
        }
    }

    /// Builds H^17 and up, four to a vector, at least to H^`total` (at most
    /// [`MAX_BLOCKS`]): the first 16 times H^16, then the first 32 times H^32, then times
    /// H^64, each vector's multiplication independent of the others of its step.
    #[target_feature(enable = "avx512f,vpclmulqdq,sse2")]
    fn build(&mut self, key: &AesGcmKey, total: usize) {
        let table = self.table.0.as_mut_ptr();
        let mut built = 0;
        let mut put = |b: usize, powers: __m512i| {
            // SAFETY: each vector of powers [H^(b+4), .., H^(b+1)] goes to slot MAX_BLOCKS -
            // (b + 4), with b + 4 <= MAX_BLOCKS (the callers' and the loops' bounds).
            unsafe { _mm512_storeu_si512(table.add(MAX_BLOCKS - b - 4).cast(), powers) };
            built = b + 4;
        };
        let mut low: [__m512i; 8] = core::array::from_fn(|j| match j {
            // SAFETY: the key's powers from H^(4j + 4) down are 64 readable bytes for j < 4.
            0..4 => unsafe { _mm512_loadu_si512(key.powers.powers_from(4 * j + 4).cast()) },
            _ => _mm512_setzero_si512(),
        });
        let times = |powers: __m512i, by: __m512i| {
            let mut products = WideProducts::zero();
            products.add(powers, by, folded(by));
            products.reduce_lanes()
        };
        // Lane 0 of [H^k, ..] in every lane.
        let broadcast = |v: __m512i| _mm512_shuffle_i64x2::<0>(v, v);
        for (j, powers) in low.iter().enumerate().take(4) {
            put(4 * j, *powers);
        }
        let h16 = broadcast(low[3]);
        for j in 0..4 {
            low[4 + j] = times(low[j], h16);
            put(16 + 4 * j, low[4 + j]);
        }
        let mut top = low[7];
        for k in [32, 64] {
            if total <= k {
                break;
            }
            // H^k: the vector last built starts with it.
            let by = broadcast(top);
            for (j, powers) in low.iter().enumerate() {
                if k + 4 * j >= total || k + 4 * j + 4 > MAX_BLOCKS {
                    break;
                }
                top = times(*powers, by);
                put(k + 4 * j, top);
            }
        }
        // SAFETY: the three slots past H^1 are inside the table.
        unsafe {
            _mm_storeu_si128(table.add(MAX_BLOCKS).cast(), _mm_setzero_si128());
            _mm256_storeu_si256(table.add(MAX_BLOCKS + 1).cast(), _mm256_setzero_si256());
        }
        self.built = built;
    }

    /// Wipes the powers built: none are, after.
    fn clear(&mut self) {
        if self.built > 0 {
            // SAFETY: only `build`, which needs AVX-512F, builds powers: the CPU has it.
            unsafe { self.wipe() };
            self.built = 0;
        }
    }

    /// Zeroes the powers built, four to a 512-bit store as `build` wrote them: a store a
    /// power took about 40 ns a batch, 2% of a GSO batch's seal of 1350-byte datagrams.
    #[target_feature(enable = "avx512f")]
    fn wipe(&mut self) {
        let table = self.table.0.as_mut_ptr();
        for b in (0..self.built).step_by(4) {
            // SAFETY: `built` is a multiple of four, at most MAX_BLOCKS: the vector
            // [H^(b+4), .., H^(b+1)]'s slot, MAX_BLOCKS - (b + 4), is inside the table and,
            // MAX_BLOCKS being a multiple of four too, 64-byte aligned.
            unsafe {
                core::ptr::write_volatile(
                    table.add(MAX_BLOCKS - b - 4).cast::<__m512i>(),
                    _mm512_setzero_si512(),
                );
            }
        }
    }
}

impl Drop for HashPowers {
    /// Powers of the hash key are key material: wiped, as the key's own are.
    fn drop(&mut self) {
        self.clear();
    }
}

/// Where a group reads its powers: H^m 16·m bytes below `end`, three zero blocks from it.
#[derive(Clone, Copy)]
struct Powers {
    end: *const u8,
}

impl Powers {
    /// [H^m, H^(m-1), H^(m-2), H^(m-3)] (zero for powers below H^1).
    ///
    /// # Safety
    /// H^m must be one of the powers these cover (1 <= m <= what they were asked for).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn from(self, m: usize) -> __m512i {
        // SAFETY: H^m and the 48 bytes after it (lower powers or the zeros) are readable.
        unsafe { _mm512_loadu_si512(self.at(m).cast()) }
    }

    /// Where H^m is, the lower powers following it.
    fn at(self, m: usize) -> *const u8 {
        self.end.wrapping_sub(16 * m)
    }

    /// H^m in every lane, and its folded halves.
    ///
    /// # Safety
    /// As for [`from`](Self::from).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn one(self, m: usize) -> (__m512i, __m512i) {
        // SAFETY: H^m is readable.
        let power = unsafe { _mm512_broadcast_i32x4(_mm_loadu_si128(self.at(m).cast())) };
        (power, folded(power))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::backend::x86::Width;

    /// Round 1 of a counter block as AES-NI computes it: the first round key added, one round
    /// with the second.
    fn first_round(keys: &RoundKeys, block: [u8; 16]) -> [u8; 16] {
        // SAFETY: the caller checked the CPU (AES-NI is part of every width).
        unsafe {
            let state = _mm_xor_si128(_mm_loadu_si128(block.as_ptr().cast()), keys.get(0));
            let mut out = [0; 16];
            _mm_storeu_si128(
                out.as_mut_ptr().cast(),
                _mm_aesenc_si128(state, keys.get(1)),
            );
            out
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        /// A grouped packet's state after round 1, for every step a batch can take, is its
        /// nonce rounds XORed with the step's counter rounds, each lane the block with its own
        /// counter: the identity the steps rely on, for both key lengths.
        #[test]
        fn nonce_and_counter_rounds_make_round_one(
            long_key in any::<bool>(),
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; NONCE_LEN]>(),
        ) {
            if !Width::Avx512.available() {
                return Ok(());
            }
            let key = &key[..if long_key { 32 } else { 16 }];
            // SAFETY: the CPU has AVX-512 (`Width::Avx512`), AES-NI among it.
            let keys = unsafe { RoundKeys::expand(key) }.unwrap();
            let mut rounds = CounterRounds::new();
            // SAFETY: the CPU has AVX-512 (`Width::Avx512`), VAES among it.
            let (nonce_vector, steps) = unsafe {
                let first_keys = [0, 1].map(|i| _mm512_broadcast_i32x4(keys.get(i)));
                let mut block = [0; 16];
                block[..NONCE_LEN].copy_from_slice(&nonce);
                let nonces = _mm512_broadcast_i32x4(_mm_loadu_si128(block.as_ptr().cast()));
                (nonce_rounds(first_keys, nonces), rounds.up_to(&keys, MAX_STEPS))
            };
            for step in 0..MAX_STEPS {
                let mut states = [[0u8; 16]; LANES];
                // SAFETY: as above, and the table was built to `MAX_STEPS`.
                unsafe {
                    let state = _mm512_xor_si512(nonce_vector, steps.load(step));
                    _mm512_storeu_si512(states.as_mut_ptr().cast(), state);
                }
                for (lane, state) in states.iter().enumerate() {
                    let mut block = [0; 16];
                    block[..NONCE_LEN].copy_from_slice(&nonce);
                    block[12..].copy_from_slice(&((4 * step + lane + 2) as u32).to_be_bytes());
                    prop_assert_eq!(*state, first_round(&keys, block), "step {} lane {}", step, lane);
                }
            }
        }
    }

    /// Rounds built in two calls, the second going further, are the rounds built in one.
    #[test]
    fn counter_rounds_built_in_parts_match_built_at_once() {
        if !Width::Avx512.available() {
            return;
        }
        // SAFETY: the CPU has AVX-512, AES-NI among it.
        let keys = unsafe { RoundKeys::expand(&[7; 16]) }.unwrap();
        let (mut parts, mut whole) = (CounterRounds::new(), CounterRounds::new());
        // SAFETY: the CPU has AVX-512 and VAES; every step loaded was built.
        unsafe {
            parts.up_to(&keys, 3);
            let parts = parts.up_to(&keys, MAX_STEPS);
            let whole = whole.up_to(&keys, MAX_STEPS);
            for step in 0..MAX_STEPS {
                let equal = _mm512_cmpeq_epi64_mask(parts.load(step), whole.load(step));
                assert_eq!(equal, 0xff, "step {step}");
            }
        }
    }
}
