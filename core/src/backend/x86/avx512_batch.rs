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
//! past the 16 a key keeps are built once per batch ([`HashPowers`]), for packets of up to
//! [`MAX_BLOCKS`] blocks. Per 16 blocks this costs less than one packet's own loop does
//! (no reduction, and no shuffles to bring the packets' blocks together); the rest is
//! shared.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::aes::RoundKeys;
use super::avx512::{SchoolbookProducts, WideProducts, folded};
use super::ghash::{POWERS, byte_swap_mask};
use super::{AesGcmKey, counter_base};
use crate::backend::{NONCE_LEN, TAG_LEN};

/// Packets per group: one to a 512-bit vector.
pub(super) const LANES: usize = 4;

/// Most blocks a grouped packet hashes (its header's, its payload's and the lengths block):
/// enough for datagrams of 1 500 bytes, the powers of the hash key a batch builds for them
/// 1.5 KB on the stack. Longer packets are sealed one by one.
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
pub(super) fn groups(len: usize, aad_len: usize) -> bool {
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
    fn blocks(self) -> usize {
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
/// itself otherwise. `powers` are the batch's, built here if its packets need more.
///
/// # Safety
/// Each packet's `src` must be valid for reads and its `dst` for writes of `shape.len`
/// bytes, the same bytes or disjoint (packets whose bytes overlap each other's come out
/// wrong: every access goes through these pointers, each chunk's loads before its stores);
/// each `aad` is `shape.aad_len` bytes long; the CPU must have AVX-512F/BW/VL, VAES,
/// VPCLMULQDQ, AES-NI, PCLMULQDQ and SSE4.1.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn seal(
    key: &AesGcmKey,
    powers: &mut HashPowers,
    packets: &[Packet<'_>],
    shape: Shape,
    sample_at: usize,
    header_keys: Option<&RoundKeys>,
    tags: &mut [[u8; TAG_LEN]; LANES],
) -> Option<[[u8; 16]; LANES]> {
    let powers = powers.for_group(key, packets, shape);
    // SAFETY: forwarded from the caller; `powers` covers the shape's blocks.
    unsafe {
        match key.round_keys.rounds() {
            10 => {
                crypt_rounds::<10, true>(key, powers, packets, shape, sample_at, header_keys, tags)
            }
            _ => {
                crypt_rounds::<14, true>(key, powers, packets, shape, sample_at, header_keys, tags)
            }
        }
    }
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
    powers: &mut HashPowers,
    packets: &[Packet<'_>],
    shape: Shape,
    tags: &mut [[u8; TAG_LEN]; LANES],
) {
    let powers = powers.for_group(key, packets, shape);
    // SAFETY: forwarded from the caller; `powers` covers the shape's blocks. No sample is
    // taken (an offset past every payload).
    unsafe {
        match key.round_keys.rounds() {
            10 => crypt_rounds::<10, false>(key, powers, packets, shape, usize::MAX, None, tags),
            _ => crypt_rounds::<14, false>(key, powers, packets, shape, usize::MAX, None, tags),
        }
    };
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
    // SAFETY: only the masked bytes are read, which the caller vouches for.
    vector(core::array::from_fn(|k| match regions.get(k) {
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

/// In each lane, the 16 bytes at offset `at` (0 ..= 15) of the 32 bytes `low` then `high`.
#[inline]
#[target_feature(enable = "avx512bw")]
fn lanes_at(low: __m512i, high: __m512i, at: usize) -> __m512i {
    macro_rules! shift {
        ($($n:literal)*) => {
            match at {
                $($n => _mm512_alignr_epi8::<$n>(high, low),)*
                _ => low,
            }
        };
    }
    shift!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
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

/// [`seal`] (`SEAL`) or [`open`]: the same pass, GHASH taking the ciphertext as it is
/// stored (sealing) or as it is loaded (opening).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
unsafe fn crypt_rounds<const ROUNDS: usize, const SEAL: bool>(
    key: &AesGcmKey,
    powers: Powers,
    packets: &[Packet<'_>],
    Shape { len, aad_len }: Shape,
    sample_at: usize,
    header_keys: Option<&RoundKeys>,
    tags: &mut [[u8; TAG_LEN]; LANES],
) -> Option<[[u8; 16]; LANES]> {
    let count = packets.len().min(LANES);
    let lane = |k: usize| packets.get(k);
    let swap = _mm512_broadcast_i32x4(byte_swap_mask());
    let broadcast_keys = |keys: &RoundKeys| -> [__m512i; 15] {
        core::array::from_fn(|i| _mm512_broadcast_i32x4(keys.get(i)))
    };
    let round_keys = broadcast_keys(&key.round_keys);
    let aad_blocks = aad_len.div_ceil(16);
    let blocks = len.div_ceil(16);
    let total = Shape { len, aad_len }.blocks();
    // SAFETY: `powers` reach H^`total` (the callers asked them to), and the closures are
    // asked for no higher power.
    let powers_from = |m: usize| unsafe { powers.from(m) };
    let power = |m: usize| unsafe { powers.one(m) };

    let bases = vector(core::array::from_fn(|k| {
        lane(k).map_or_else(|| _mm_setzero_si128(), |packet| counter_base(packet.nonce))
    }));
    let aads: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(core::ptr::null(), |packet| packet.aad.as_ptr()));
    let lengths = _mm512_broadcast_i32x4(_mm_set_epi64x(
        (aad_len as u64 * 8) as i64,
        (len as u64 * 8) as i64,
    ));
    // The headers' blocks (one lane a packet) and the lengths block, each times its power:
    // added to the payloads' products at the end.
    let mut head = WideProducts::zero();
    for i in 0..aad_blocks {
        // SAFETY: the masked bytes lie inside each `aad_len`-byte header.
        let block = unsafe { gather(&aads, count, 16 * i, block_mask(aad_len, 16 * i)) };
        let (p, f) = power(total - i);
        head.add(_mm512_shuffle_epi8(block, swap), p, f);
    }
    let (p, f) = power(1);
    head.add(lengths, p, f);

    let first = packets.first()?;
    let sources: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.src, |packet| packet.src));
    let destinations: [*mut u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.dst, |packet| packet.dst));
    let tag_masks = encrypt::<ROUNDS>(
        &round_keys,
        _mm512_shuffle_epi8(
            _mm512_add_epi32(bases, _mm512_maskz_set1_epi32(0x1111, 1)),
            swap,
        ),
    );
    let sample_block = sample_at / 16;
    let takes_sample = sample_at.checked_add(16).is_some_and(|end| end <= len);
    let (mut sample_low, mut sample) = (_mm512_setzero_si512(), None);
    // The last key's rounds take the text: see `avx512::crypt_rounds`.
    let last_key = round_keys[ROUNDS];
    // A counter block in byte order is its packet's nonce, then the counter: a grouped
    // packet's counters stay below 256, so only the last byte differs, and it is the same
    // in every packet of a chunk. So each packet's nonce is XORed with the first round key
    // once, and a chunk's blocks are those XORed with one vector of counters, shared, which
    // moves on by four: one addition a chunk, not one a packet.
    debug_assert!(blocks + 5 < 256);
    let keyed_nonces: [__m512i; LANES] = core::array::from_fn(|k| {
        let base = lane(k).map_or_else(|| counter_base(first.nonce), |p| counter_base(p.nonce));
        _mm512_xor_si512(
            _mm512_shuffle_epi8(_mm512_broadcast_i32x4(base), swap),
            round_keys[0],
        )
    });
    // Payload blocks 0 to 3 take counters 2 to 5 (counter 1 is J0's).
    let mut counters = _mm512_shuffle_epi8(
        _mm512_set_epi32(0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2),
        swap,
    );
    let four = _mm512_maskz_set1_epi32(0x8888, 4 << 24);
    // Each packet's products, lane j of `sums[k]` the sum of packet k's blocks 4i + j.
    let mut sums = [SchoolbookProducts::zero(); LANES];
    // Chunks of four blocks a packet, each hashed as soon as it is made, the last one, with
    // fewer blocks or a partial one, with masked loads and stores. No software pipelining
    // (each chunk hashed during the next one's rounds, as in `avx512::crypt_rounds`): the
    // texts it carried from one chunk to the next cost register moves and spills on every
    // chunk, on the ports the loop is bound by, and the out-of-order window overlaps the
    // chunks anyway. Paired runs on an Intel Xeon with AVX-512, batches of 16: 1350-byte
    // AES-128-GCM datagrams sealed in 0.92x the time, 600-byte 0.905x, AES-256-GCM 0.956x;
    // GRO opens 0.946x.
    for chunk in 0..blocks.div_ceil(4) {
        let at = 64 * chunk;
        let mut state = keyed_nonces.map(|nonce| _mm512_xor_si512(nonce, counters));
        counters = _mm512_add_epi32(counters, four);
        for key in &round_keys[1..ROUNDS] {
            for s in &mut state {
                *s = _mm512_aesenc_epi128(*s, *key);
            }
        }
        let bytes = (len - at).min(64);
        // Masked loads and stores only where they are needed: on Zen 4 a masked store
        // costs several plain ones.
        let mask = u64::MAX >> (64 - bytes);
        // SAFETY: the masked bytes from `at` lie inside each payload (a lane without a
        // packet reads the first one's); read before written.
        let inputs: [__m512i; LANES] = core::array::from_fn(|k| unsafe {
            let source = sources[k].add(at);
            if bytes == 64 {
                _mm512_loadu_si512(source.cast())
            } else {
                _mm512_maskz_loadu_epi8(mask, source.cast())
            }
        });
        let outputs: [__m512i; LANES] = core::array::from_fn(|k| {
            _mm512_aesenclast_epi128(state[k], _mm512_xor_si512(last_key, inputs[k]))
        });
        for (row, destination) in outputs.into_iter().zip(destinations).take(count) {
            // SAFETY: as above.
            unsafe {
                let destination = destination.add(at);
                if bytes == 64 {
                    _mm512_storeu_si512(destination.cast(), row);
                } else {
                    _mm512_mask_storeu_epi8(destination.cast(), mask, row);
                }
            }
        }
        // The ciphertext as GHASH takes it: zero past the payload's end (as the masked
        // loads leave the input).
        let texts: [__m512i; LANES] = if !SEAL {
            inputs
        } else if bytes == 64 {
            outputs
        } else {
            core::array::from_fn(|k| _mm512_maskz_mov_epi8(mask, outputs[k]))
        };
        // The sample's two blocks, from the chunk or chunks that hold them.
        if takes_sample && 4 * chunk <= sample_block + 1 && sample_block < 4 * chunk + 4 {
            let in_chunk = |block: usize| block.checked_sub(4 * chunk).filter(|&i| i < 4);
            if let Some(i) = in_chunk(sample_block) {
                sample_low = vector(core::array::from_fn(|k| block_of(texts[k], i)));
                if sample_at.is_multiple_of(16) {
                    sample = Some(sample_low);
                }
            }
            if let Some(i) = in_chunk(sample_block + 1).filter(|_| !sample_at.is_multiple_of(16)) {
                let high = vector(core::array::from_fn(|k| block_of(texts[k], i)));
                sample = Some(lanes_at(sample_low, high, sample_at % 16));
            }
        }
        // Payload block b is H^(blocks + 1 - b)'s (the lengths block follows it).
        let powers = powers_from(blocks + 1 - 4 * chunk);
        for (sum, text) in sums.iter_mut().zip(texts) {
            sum.add(_mm512_shuffle_epi8(text, swap), powers);
        }
    }
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
    let tag_vector = _mm512_xor_si512(_mm512_shuffle_epi8(hash, swap), tag_masks);
    // SAFETY: `tags` is four 16-byte blocks: one 64-byte store.
    unsafe { _mm512_storeu_si512(tags.as_mut_ptr().cast(), tag_vector) };
    kept.map(|kept| {
        let mut blocks = [[0; 16]; LANES];
        // SAFETY: as for `tags`.
        unsafe { _mm512_storeu_si512(blocks.as_mut_ptr().cast(), kept) };
        blocks
    })
}

/// Block `i` (0 ..= 3) of a vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn block_of(v: __m512i, i: usize) -> __m128i {
    match i {
        0 => _mm512_castsi512_si128(v),
        1 => _mm512_extracti32x4_epi32::<1>(v),
        2 => _mm512_extracti32x4_epi32::<2>(v),
        _ => _mm512_extracti32x4_epi32::<3>(v),
    }
}

/// The powers of a key's hash key that a batch's groups multiply their blocks by, each block
/// by the power it has in its packet's GHASH (H^n for the first of n, H for the lengths
/// block), so that the products add up over a whole packet with one reduction at the end.
/// The key keeps 16 of them; a batch of longer packets builds the rest once, here.
pub(super) struct HashPowers {
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
    /// None built yet: nothing to pay for a batch of short packets.
    pub(super) fn new() -> HashPowers {
        HashPowers {
            table: PowerTable([MaybeUninit::uninit(); MAX_BLOCKS + 3]),
            built: 0,
        }
    }

    /// The powers a group of `packets` of `shape` hashes its blocks by.
    #[target_feature(enable = "avx512f,vpclmulqdq,sse2")]
    fn for_group(&mut self, key: &AesGcmKey, packets: &[Packet<'_>], shape: Shape) -> Powers {
        debug_assert!(groups(shape.len, shape.aad_len));
        debug_assert!(
            packets
                .iter()
                .all(|packet| packet.aad.len() == shape.aad_len)
        );
        self.up_to(key, shape.blocks())
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
        // SAFETY: each vector of powers [H^(b+4), .., H^(b+1)] goes to slot MAX_BLOCKS -
        // (b + 4), with b + 4 <= MAX_BLOCKS (the callers' and the loops' bounds).
        let mut put = |b: usize, powers: __m512i| {
            unsafe { _mm512_storeu_si512(table.add(MAX_BLOCKS - b - 4).cast(), powers) };
            built = b + 4;
        };
        // SAFETY: the key's powers from H^(4j + 4) down are 64 readable bytes for j < 4.
        let mut low: [__m512i; 8] = core::array::from_fn(|j| match j {
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
        if self.built > 0 {
            // SAFETY: only `build`, which needs AVX-512F, builds powers: the CPU has it.
            unsafe { self.wipe() }
        }
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
        unsafe { _mm512_loadu_si512(self.end.wrapping_sub(16 * m).cast()) }
    }

    /// H^m in every lane, and its folded halves.
    ///
    /// # Safety
    /// As for [`from`](Self::from).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn one(self, m: usize) -> (__m512i, __m512i) {
        // SAFETY: H^m is readable.
        let power = unsafe {
            _mm512_broadcast_i32x4(_mm_loadu_si128(self.end.wrapping_sub(16 * m).cast()))
        };
        (power, folded(power))
    }
}
