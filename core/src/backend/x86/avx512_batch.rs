//! The packets of a batch sealed or opened four at a time, one packet to each 128-bit lane
//! of the 512-bit vectors: lane k of a vector holds packet k's block. Sealed alone, a short
//! packet waits on chains that depend on each other (its counter blocks' AES rounds, then
//! GHASH over the ciphertext and the header-protection mask's rounds over its sample) with
//! the vector units mostly idle, and a long one pays its own start and end (E_K(J0), the
//! header's hash, the tail, the last reductions, the mask). The packets of a GSO or a GRO
//! batch have payloads and headers of one length, so one instruction stream carries four
//! such packets: each AES round and each carry-less multiplication serves four, and one
//! reduction a step gives four hashes. Per 16 blocks this costs what one packet's own loop
//! does; the rest is shared.

use core::arch::x86_64::*;

use super::aes::RoundKeys;
use super::avx512::WideProducts;
use super::ghash::{POWERS, byte_swap_mask};
use super::{AesGcmKey, counter_base};
use crate::backend::{NONCE_LEN, TAG_LEN};

/// Packets per group: one to a 128-bit lane.
pub(super) const LANES: usize = 4;

/// Most header (AAD) bytes of a grouped packet: one reduction hashes them.
pub(super) const MAX_AAD: usize = 16 * POWERS;

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

/// Seals `packets` (one to four; any more are left alone), each with `len` bytes of payload
/// and a header of `aad_len` bytes (at most [`MAX_AAD`]), and puts packet k's tag in
/// `tags[k]`. Where the 16-byte sample at payload offset `sample_at`
/// lies inside the payload, returns what [`Capture::keep`](super::Capture::keep) would make
/// of each packet's sample, lane by lane: with `header_keys`, the mask's block, its rounds
/// run beside the final GHASH; the sample itself otherwise.
///
/// # Safety
/// Each packet's `src` must be valid for reads and its `dst` for writes of `len` bytes, the
/// same bytes or disjoint (packets whose bytes overlap each other's come out wrong: every
/// access goes through these pointers, each chunk's loads before its stores); each `aad`
/// is `aad_len` bytes long; the CPU must have AVX-512F/BW/VL, VAES, VPCLMULQDQ, AES-NI, PCLMULQDQ and
/// SSE4.1.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn seal(
    key: &AesGcmKey,
    packets: &[Packet<'_>],
    len: usize,
    aad_len: usize,
    sample_at: usize,
    header_keys: Option<&RoundKeys>,
    tags: &mut [[u8; TAG_LEN]; LANES],
) -> Option<[[u8; 16]; LANES]> {
    debug_assert!(aad_len <= MAX_AAD);
    debug_assert!(packets.iter().all(|packet| packet.aad.len() == aad_len));
    // SAFETY: forwarded from the caller.
    unsafe {
        match key.round_keys.rounds() {
            10 => {
                crypt_rounds::<10, true>(key, packets, len, aad_len, sample_at, header_keys, tags)
            }
            _ => crypt_rounds::<14, true>(key, packets, len, aad_len, sample_at, header_keys, tags),
        }
    }
}

/// Opens `packets` (one to four; any more are left alone) in place, each with `len` bytes of
/// payload and a header of `aad_len` bytes (at most [`MAX_AAD`]), and puts in `tags[k]` the
/// tag packet k's ciphertext should carry. The payloads are decrypted whatever their tags:
/// the caller compares them and wipes what fails.
///
/// # Safety
/// As for [`seal`], with each packet's `src` and `dst` the same pointer.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
pub(super) unsafe fn open(
    key: &AesGcmKey,
    packets: &[Packet<'_>],
    len: usize,
    aad_len: usize,
    tags: &mut [[u8; TAG_LEN]; LANES],
) {
    debug_assert!(aad_len <= MAX_AAD);
    debug_assert!(packets.iter().all(|packet| packet.aad.len() == aad_len));
    // SAFETY: forwarded from the caller. No sample is taken (an offset past every payload).
    unsafe {
        match key.round_keys.rounds() {
            10 => crypt_rounds::<10, false>(key, packets, len, aad_len, usize::MAX, None, tags),
            _ => crypt_rounds::<14, false>(key, packets, len, aad_len, usize::MAX, None, tags),
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

/// Block j of row k to block k of row j: four shuffles of 128-bit lanes in pairs, then four
/// of the pairs.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose([a, b, c, d]: [__m512i; 4]) -> [__m512i; 4] {
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

/// `mask` for each lane of a vector.
#[inline]
fn lanes_mask(mask: u16) -> u64 {
    u64::from(mask) * 0x0001_0001_0001_0001
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
    packets: &[Packet<'_>],
    len: usize,
    aad_len: usize,
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
    let power = |n: usize| {
        let power = _mm512_broadcast_i32x4(key.powers.power(n));
        let folded = _mm512_xor_si512(power, _mm512_shuffle_epi32(power, _MM_PERM_BADC));
        (power, folded)
    };

    // Each lane's nonce and a zero counter, byte-reversed, so that a lane's counter is its
    // low 32 bits; vector i of the packets' keystream is counter i + 1 of each (E_K(J0)
    // first, which masks the tags, then the payload's blocks).
    let bases = vector(core::array::from_fn(|k| {
        lane(k).map_or_else(|| _mm_setzero_si128(), |packet| counter_base(packet.nonce))
    }));
    let counters =
        |i: usize| _mm512_add_epi32(bases, _mm512_maskz_set1_epi32(0x1111, (i + 1) as i32));

    // The headers first: their hash is ready before the payload's first ciphertext is.
    let aads: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(core::ptr::null(), |packet| packet.aad.as_ptr()));
    let aad_blocks = aad_len.div_ceil(16);
    let mut aad_hash = _mm512_setzero_si512();
    if aad_blocks > 0 {
        let mut products = WideProducts::zero();
        for i in 0..aad_blocks {
            // SAFETY: the masked bytes lie inside each `aad_len`-byte header.
            let block = unsafe { gather(&aads, count, 16 * i, block_mask(aad_len, 16 * i)) };
            let (power, folded) = power(aad_blocks - i);
            products.add(_mm512_shuffle_epi8(block, swap), power, folded);
        }
        aad_hash = products.reduce_lanes();
    }

    // A lane without a packet reads the first packet's payload (and stores nothing), so
    // that every lane loads the same way.
    let first = packets.first()?;
    let sources: [*const u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.src, |packet| packet.src));
    let destinations: [*mut u8; LANES] =
        core::array::from_fn(|k| lane(k).map_or(first.dst, |packet| packet.dst));
    let blocks = len.div_ceil(16);
    // H⁴, H³, H² and H, in every lane: each chunk of four blocks a lane is one step of
    // Horner's rule, its first block carrying the hash so far.
    let wide_powers: [(__m512i, __m512i); 4] = core::array::from_fn(|i| power(4 - i));
    let lengths = _mm512_broadcast_i32x4(_mm_set_epi64x(
        (aad_len as u64 * 8) as i64,
        (len as u64 * 8) as i64,
    ));
    // E_K(J0), which masks the tags.
    let tag_masks = encrypt::<ROUNDS>(&round_keys, _mm512_shuffle_epi8(counters(0), swap));
    // The sample's first block, then the sample.
    let sample_block = sample_at / 16;
    let (mut sample_low, mut sample) = (_mm512_setzero_si512(), None);
    let mut carry = aad_hash;
    // Hashes vector `v` of a chunk (the first carries the hash so far), multiplied by
    // `wide_powers[slot]`, H^(4 - slot).
    let absorb =
        |products: &mut WideProducts, v: usize, slot: usize, text: __m512i, carry: __m512i| {
            let mut text = _mm512_shuffle_epi8(text, swap);
            if v == 0 {
                text = _mm512_xor_si512(text, carry);
            }
            // `get`: no panic path for the kernel object (the slot is below 4).
            let (power, folded) = wide_powers
                .get(slot)
                .copied()
                .unwrap_or((_mm512_setzero_si512(), _mm512_setzero_si512()));
            products.add(text, power, folded);
        };
    // The last key's rounds take the text: see `avx512::crypt_rounds`.
    let last_key = round_keys[ROUNDS];
    // The counter blocks of payload blocks 0 to 3, in byte order; each chunk moves them on
    // by four, added to their last byte where no counter's low byte wraps (payloads to
    // about 4 KB), else recomputed.
    let byte_counters = blocks + 5 < 256;
    let mut next: [__m512i; 4] =
        core::array::from_fn(|v| _mm512_shuffle_epi8(counters(v + 1), swap));
    let four = _mm512_maskz_set1_epi32(0x8888, 4 << 24);
    // Chunks of four blocks a lane, software-pipelined as in `avx512::crypt_rounds`: each
    // chunk's ciphertext is hashed during the next one's rounds. Each lane's four blocks
    // come in one load, transposed to one block of each packet a vector, and go back the
    // same way; the last chunk, with fewer blocks or a partial one, with masked loads and
    // stores.
    let mut pending: Option<[__m512i; 4]> = None;
    let mut lengths_hashed = false;
    for chunk in 0..blocks.div_ceil(4) {
        let at = 64 * chunk;
        let mut vectors: [__m512i; 4] = core::array::from_fn(|v| {
            let block = if byte_counters {
                next[v]
            } else {
                _mm512_shuffle_epi8(counters(4 * chunk + v + 1), swap)
            };
            next[v] = _mm512_add_epi32(next[v], four);
            _mm512_xor_si512(block, round_keys[0])
        });
        let mut products = WideProducts::zero();
        for (round, key) in round_keys[1..ROUNDS].iter().enumerate() {
            for vector in &mut vectors {
                *vector = _mm512_aesenc_epi128(*vector, *key);
            }
            if let Some(pending) = &pending {
                match round {
                    0..4 => absorb(&mut products, round, round, pending[round], carry),
                    4 => carry = products.reduce_lanes(),
                    _ => {}
                }
            }
        }
        let bytes = (len - at).min(64);
        // Masked loads and stores only where they are needed: on Zen 4 a masked store
        // costs several plain ones.
        let mask = u64::MAX >> (64 - bytes);
        // SAFETY: the masked bytes from `at` lie inside each payload (a lane without a
        // packet reads the first one's); read before written.
        let rows: [__m512i; 4] = core::array::from_fn(|k| unsafe {
            let source = sources[k].add(at);
            if bytes == 64 {
                _mm512_loadu_si512(source.cast())
            } else {
                _mm512_maskz_loadu_epi8(mask, source.cast())
            }
        });
        let inputs = transpose(rows);
        let outputs: [__m512i; 4] = core::array::from_fn(|v| {
            _mm512_aesenclast_epi128(vectors[v], _mm512_xor_si512(last_key, inputs[v]))
        });
        for (row, destination) in transpose(outputs).into_iter().zip(destinations).take(count) {
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
        let texts: [__m512i; 4] = if !SEAL {
            inputs
        } else if bytes == 64 {
            outputs
        } else {
            core::array::from_fn(|v| {
                let valid = match bytes.saturating_sub(16 * v).min(16) {
                    0 => 0,
                    rest => u16::MAX >> (16 - rest),
                };
                _mm512_maskz_mov_epi8(lanes_mask(valid), outputs[v])
            })
        };
        if sample_at.checked_add(16).is_some_and(|end| end <= len) && at <= 16 * sample_block + 16 {
            for (v, text) in texts.iter().enumerate() {
                let block = 4 * chunk + v;
                if block == sample_block {
                    sample_low = *text;
                    if sample_at.is_multiple_of(16) {
                        sample = Some(*text);
                    }
                } else if block == sample_block + 1 && !sample_at.is_multiple_of(16) {
                    sample = Some(lanes_at(sample_low, *text, sample_at % 16));
                }
            }
        }
        if bytes == 64 {
            pending = Some(texts);
            continue;
        }
        // The last chunk, short (what was pending went in during its rounds): hashed now,
        // with the lengths block where a vector is to spare.
        pending = None;
        let hashed = bytes.div_ceil(16);
        let with_lengths = hashed < 4;
        let used = hashed + usize::from(with_lengths);
        let mut products = WideProducts::zero();
        for (v, text) in texts.iter().enumerate().take(hashed) {
            absorb(&mut products, v, 4 + v - used, *text, carry);
        }
        if with_lengths {
            products.add(lengths, wide_powers[3].0, wide_powers[3].1);
            lengths_hashed = true;
        }
        carry = products.reduce_lanes();
    }
    if let Some(pending) = pending {
        let mut products = WideProducts::zero();
        for (v, text) in pending.iter().enumerate() {
            absorb(&mut products, v, v, *text, carry);
        }
        carry = products.reduce_lanes();
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
    let hash = if lengths_hashed {
        carry
    } else {
        let mut products = WideProducts::zero();
        let (power, folded) = wide_powers[3];
        products.add(_mm512_xor_si512(carry, lengths), power, folded);
        products.reduce_lanes()
    };
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
