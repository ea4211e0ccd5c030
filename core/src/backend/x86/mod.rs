//! Fused AES-GCM for x86_64: counter-mode AES and GHASH in one pass over the payload, many
//! blocks per iteration, with the round keys and the powers of the hash key prepared when a
//! key is made; and ChaCha20-Poly1305 on AVX-512 ([`ChaCha20Poly1305Key`]).
//!
//! Three widths share everything but the bulk loop:
//! - [`Width::Avx512`]: VAES and VPCLMULQDQ on 512-bit registers, 16 blocks per iteration,
//!   tails with AVX-512 masked loads and stores.
//! - [`Width::Avx2`]: VAES and VPCLMULQDQ on 256-bit registers, 8 blocks per iteration, for
//!   CPUs with VAES but no AVX-512.
//! - [`Width::AesNi`]: AES-NI and PCLMULQDQ on 128-bit registers, 8 blocks per iteration.
//!
//! On the 512-bit width, a batch's packets of one length (a GSO batch's, a GRO batch's) are
//! sealed and opened four at a time, one to each 512-bit vector (`avx512_batch`).
//!
//! A key of a width is only made on a CPU that has the width's instructions (checked by
//! [`Width::available`]); that is the invariant every `unsafe` call into a `target_feature`
//! function below relies on.
#![allow(unsafe_code)]

/// Calls a bulk loop's `$loop::<ROUNDS, BYTE_COUNTERS, WHOLE>($args)` with the key's number
/// of rounds (10 or 14), and the call's two flags as the loops define them: its counter
/// blocks can move on in their byte order (see [`Gcm::byte_counters`]), and it holds at least
/// one whole iteration.
macro_rules! by_rounds {
    ($loop:ident, $rounds:expr, $byte_counters:expr, $whole:expr, $($args:expr),* $(,)?) => {
        match ($rounds, $byte_counters, $whole) {
            (10, true, true) => $loop::<10, true, true>($($args),*),
            (10, true, false) => $loop::<10, true, false>($($args),*),
            (10, false, true) => $loop::<10, false, true>($($args),*),
            (10, false, false) => $loop::<10, false, false>($($args),*),
            (_, true, true) => $loop::<14, true, true>($($args),*),
            (_, true, false) => $loop::<14, true, false>($($args),*),
            (_, false, true) => $loop::<14, false, true>($($args),*),
            (_, false, false) => $loop::<14, false, false>($($args),*),
        }
    };
}

mod aes;
mod aesni;
mod avx2;
mod avx512;
mod avx512_batch;
mod chacha20;
mod chacha20_avx2;
mod chacha20_header;
mod chacha20_poly1305;
mod ghash;
mod poly1305;

pub(super) use self::avx512_batch::BatchTables;
pub(super) use self::chacha20_avx2::{
    ChaCha20Avx2HeaderKey, ChaCha20Poly1305Avx2Key, available as chacha20_avx2_available,
};
pub(super) use self::chacha20_header::ChaCha20HeaderKey;
pub(super) use self::chacha20_poly1305::ChaCha20Poly1305Key;

use core::arch::x86_64::*;
use core::ptr;

use self::aes::{RoundKeys, load, store};
use self::ghash::{KeyPowers, Products, byte_swap_mask, multiply};
use crate::Error;
use crate::backend::{
    BatchBuffers, HeaderKey, MASK_LEN, NONCE_LEN, OpenJob, Payload, SAMPLE_LEN, SealJob, Sealed,
    StridedPackets, TAG_LEN,
};
use crate::sg::{SgDestination, SgSource};
use crate::wire::short_header::MAX_SHORT_HEADER_LEN;

/// Bytes in a cache line on every x86_64 CPU quicseal runs on.
const CACHE_LINE: usize = 64;

/// Prefetches every cache line of `value` into all cache levels (see
/// [`backend::prefetch`](super::prefetch)).
#[inline]
pub(super) fn prefetch<T: ?Sized>(value: &T) {
    let start: *const u8 = (value as *const T).cast();
    let (first, lines) = cache_lines(start.addr(), size_of_val(value));
    let first_line = start.wrapping_sub(first);
    for line in 0..lines {
        // SAFETY: `prefetcht0` is SSE, which this module's `cfg` requires. A prefetch is a
        // hint: it changes nothing the program can observe and never faults, whatever the
        // address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(
                first_line
                    .wrapping_add(line.wrapping_mul(CACHE_LINE))
                    .cast(),
            )
        };
    }
}

/// The cache lines that `len` bytes at `address` touch: how far before `address` the first
/// one starts, and how many there are (none for no bytes). Wrapping arithmetic: no panic
/// path for the kernel object (an object's bytes never wrap the address space).
fn cache_lines(address: usize, len: usize) -> (usize, usize) {
    let misalignment = address % CACHE_LINE;
    if len == 0 {
        return (misalignment, 0);
    }
    let lines = misalignment.wrapping_add(len).div_ceil(CACHE_LINE);
    (misalignment, lines)
}

/// 32 bytes of ones and 32 of zeros, for [`keep_first`].
static ONES_THEN_ZEROS: [u8; 64] = {
    let mut table = [0; 64];
    let mut i = 0;
    while i < 32 {
        table[i] = 0xff;
        i += 1;
    }
    table
};

/// 32 readable bytes whose first `n` (at most 32) are ones and the rest zeros: loaded, a
/// mask that keeps a vector's first `n` bytes.
fn keep_first(n: usize) -> *const u8 {
    ONES_THEN_ZEROS.as_ptr().wrapping_add(32 - n.min(32))
}

/// Up to 16 bytes as a little-endian number, zero above them, assembled from scalar loads
/// that stay inside `bytes`: copying them to a zeroed block on the stack and loading that
/// instead makes the load wait for the copy's narrower stores (a store-forwarding stall,
/// about 15 cycles on AMD Zen 3, on the path of every short packet). A longer slice gives
/// its first 16.
#[inline]
fn partial_value(bytes: &[u8]) -> u128 {
    let n = bytes.len();
    let u64_at = |at: usize| {
        bytes
            .get(at..)
            .and_then(|rest| rest.first_chunk::<8>())
            .map_or(0, |word| u64::from_le_bytes(*word))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..)
            .and_then(|rest| rest.first_chunk::<4>())
            .map_or(0, |word| u64::from(u32::from_le_bytes(*word)))
    };
    let byte_at = |at: usize| bytes.get(at).map_or(0, |&byte| u64::from(byte));
    // Two overlapping loads cover 8 to 16 (or 4 to 8) bytes; the overlap holds the same
    // bytes twice, so shifting the second one into place and ORing is exact.
    let (low, high) = match n {
        16.. => (u64_at(0), u64_at(8)),
        9..=15 => (u64_at(0), u64_at(n - 8) >> (8 * (16 - n))),
        8 => (u64_at(0), 0),
        4..=7 => (u32_at(0) | u32_at(n - 4) << (8 * (n - 4)), 0),
        1..=3 => (
            byte_at(0) | byte_at(n / 2) << (8 * (n / 2)) | byte_at(n - 1) << (8 * (n - 1)),
            0,
        ),
        0 => (0, 0),
    };
    u128::from(low) | u128::from(high) << 64
}

/// Which registers and instructions the fused AES-GCM uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Width {
    /// VAES + VPCLMULQDQ on 512-bit registers (AVX-512F/BW/VL).
    Avx512,
    /// VAES + VPCLMULQDQ on 256-bit registers (AVX2).
    Avx2,
    /// AES-NI + PCLMULQDQ on 128-bit registers.
    AesNi,
}

impl Width {
    /// True for the width whose keys seal and open a batch's packets side by side, four to a
    /// vector (`avx512_batch`). Its header keys unmask a GRO batch's headers together first,
    /// the path those opens need; on the other widths packets go one by one.
    fn groups_packets(self) -> bool {
        self == Width::Avx512
    }

    /// True when this CPU can run the width: CPUID (and, for AVX-512, that the OS saves the
    /// 512-bit registers) read once and cached, in std and no_std builds alike; a build whose
    /// target features already promise the instructions skips the check.
    pub(super) fn available(self) -> bool {
        match self {
            Width::Avx512 => avx512_cpuid::get(),
            Width::Avx2 => vaes_avx2_cpuid::get(),
            Width::AesNi => aesni_cpuid::get(),
        }
    }
}

cpufeatures::new!(aesni_cpuid, "aes", "pclmulqdq", "sse4.1", "ssse3");
cpufeatures::new!(
    aes_avx2_cpuid,
    "aes",
    "pclmulqdq",
    "sse4.1",
    "ssse3",
    "avx2"
);

/// VAES and VPCLMULQDQ on 256-bit registers, checked without cpufeatures' help: cpufeatures
/// 0.3 files both flags under AVX-512 and also requires the OS to save the 512-bit registers,
/// which no OS enables on a CPU without AVX-512. So on exactly the CPUs the 256-bit width is
/// for (AMD Zen 3, Intel Alder Lake and later client cores) it would answer no. Here the OS
/// check is AVX2's (YMM state, inside `aes_avx2_cpuid`) and the two flags are CPUID leaf 7's
/// ECX bits 9 and 10, read once and cached like cpufeatures' answers.
mod vaes_avx2_cpuid {
    use core::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    pub(super) fn get() -> bool {
        match STATE.load(Ordering::Relaxed) {
            UNKNOWN => {
                let present = detect();
                STATE.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
                present
            }
            state => state == PRESENT,
        }
    }

    fn detect() -> bool {
        const VAES: u32 = 1 << 9;
        const VPCLMULQDQ: u32 = 1 << 10;
        // AVX2 implies CPUID leaf 7 exists, so the second query is only made where it is valid.
        if !super::aes_avx2_cpuid::get() {
            return false;
        }
        let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
        leaf7.ecx & (VAES | VPCLMULQDQ) == VAES | VPCLMULQDQ
    }
}
// Poly1305 on the vector units (beside the AVX-512 this module's ChaCha20 needs anyway) ...
cpufeatures::new!(ifma_cpuid, "avx512f", "avx512ifma");
// ... or on AVX2.
cpufeatures::new!(avx2_cpuid, "avx2");
// ChaCha20-Poly1305 on AVX2 for CPUs without AVX-512: the stitched code's Poly1305 multiplies
// with BMI2's `mulx`, which every CPU with AVX2 has (Intel since Haswell, AMD since
// Excavator), so that it is not one more requirement in practice.
cpufeatures::new!(avx2_bmi2_cpuid, "avx2", "bmi2");
cpufeatures::new!(
    avx512_cpuid,
    "aes",
    "pclmulqdq",
    "sse4.1",
    "ssse3",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "vaes",
    "vpclmulqdq"
);

/// An AES-128-GCM or AES-256-GCM key: round keys and the powers of the hash key.
#[derive(Clone)]
pub(super) struct AesGcmKey {
    width: Width,
    round_keys: RoundKeys,
    powers: KeyPowers,
}

impl AesGcmKey {
    /// Prepares `key` (16 or 32 bytes) for `width`, which must be available.
    pub(super) fn new(width: Width, key: &[u8]) -> Result<AesGcmKey, Error> {
        if !width.available() {
            return Err(Error::InvalidConfig);
        }
        // SAFETY: `Width::AesNi`'s features are a subset of every width's, checked just above.
        unsafe { AesGcmKey::prepare(width, key) }
    }

    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn prepare(width: Width, key: &[u8]) -> Result<AesGcmKey, Error> {
        let round_keys = RoundKeys::expand(key).ok_or(Error::InvalidKeyLength)?;
        let powers = KeyPowers::new(round_keys.encrypt(_mm_setzero_si128()));
        Ok(AesGcmKey {
            width,
            round_keys,
            powers,
        })
    }

    /// Encrypts `payload`; returns the tag and `header_key`'s mask of the sample at payload
    /// offset `sample_at`.
    #[inline]
    pub(super) fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let mask = |sample: &[u8; SAMPLE_LEN]| header_key.mask(sample);
        // SAFETY: the key exists, so its width's features (a superset of these) are there.
        unsafe { self.seal_with_features(mask, None, nonce, aad, sample_at, &mut payload) }
    }

    /// [`seal`](Self::seal) with this module's own AES header key, whose rounds for the mask
    /// then run inside the bulk loop, as soon as the loop has the sample, instead of after it.
    #[inline]
    pub(super) fn seal_with_aes_mask(
        &self,
        header_key: &AesHeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let mask = |sample: &[u8; SAMPLE_LEN]| header_key.mask(sample);
        let keys = Some(&header_key.round_keys);
        // SAFETY: as for `seal`.
        unsafe { self.seal_with_features(mask, keys, nonce, aad, sample_at, &mut payload) }
    }

    /// True when [`seal_batch`](Self::seal_batch) groups packets: on the 512-bit width, of
    /// any length (the other widths seal one by one, and queueing first would cost more than
    /// nothing).
    pub(super) fn batches_seals(&self) -> bool {
        self.width.groups_packets()
    }

    /// Seals a batch: on the 512-bit width, runs of up to four packets with payloads and
    /// headers of one length, each in one piece (a GSO batch's packets, but its last), side
    /// by side, one to a vector; the others one by one. With this module's own header key
    /// (`own`), a group's masks come from rounds run beside its last GHASH.
    pub(super) fn seal_batch(
        &self,
        header_key: &impl HeaderKey,
        own: Option<&AesHeaderKey>,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        let mut tables = avx512_batch::BatchTables::new();
        let mut first = 0;
        // `get`s, not indexing: the kernel object must keep no panic path the compiler
        // cannot see past.
        while let (Some(rest), Some(results)) = (jobs.get(first..), sealed.get_mut(first..)) {
            let Some(job) = rest.first() else { break };
            let mut packets = [avx512_batch::Packet::EMPTY; avx512_batch::LANES];
            let grouped = self.group(buffers, rest, &mut packets);
            if grouped < 2 {
                if let Some(result) = results.first_mut() {
                    let payload = buffers.payload(job);
                    *result = match own {
                        Some(own) => self.seal_with_aes_mask(
                            own,
                            &job.nonce,
                            job.aad,
                            job.sample_at,
                            payload,
                        ),
                        None => self.seal(header_key, &job.nonce, job.aad, job.sample_at, payload),
                    };
                }
                first += 1;
                continue;
            }
            // Checked before anything is encrypted: each sealed packet gets its result.
            let (Some(group_jobs), Some(group_results), Some(group_packets)) = (
                rest.get(..grouped),
                results.get_mut(..grouped),
                packets.get(..grouped),
            ) else {
                break;
            };
            let mut tags = [[0; TAG_LEN]; avx512_batch::LANES];
            // SAFETY: `group` gave `grouped` packets of one payload length, one header length
            // and one sample offset, within the limits, each payload `job.len` bytes in one
            // piece of the jobs' non-overlapping payloads; a key of this width exists, so the
            // CPU has its features.
            let kept = unsafe {
                avx512_batch::seal(
                    self,
                    &mut tables,
                    group_packets,
                    avx512_batch::Shape::new(job.len, job.aad.len()),
                    job.sample_at,
                    own.map(|own| &own.round_keys),
                    &mut tags,
                )
            };
            for (result, tag) in group_results.iter_mut().zip(tags) {
                result.tag = tag;
            }
            let masks = group_masks(header_key, own.is_some(), kept, grouped, || {
                core::array::from_fn(|k| match (group_jobs.get(k), group_results.get(k)) {
                    (Some(job), Some(result)) => {
                        buffers.payload(job).sample(job.sample_at, &result.tag)
                    }
                    _ => [0; SAMPLE_LEN],
                })
            });
            for (result, mask) in group_results.iter_mut().zip(masks) {
                result.mask = mask;
            }
            first += grouped;
        }
    }

    /// How many of `jobs`, from the first, [`seal_batch`](Self::seal_batch) seals side by
    /// side, their payloads' places in `packets`: those like the first in payload length,
    /// header length and sample offset, with payloads in one piece, if the first's shape is
    /// one [`avx512_batch::groups`] takes and this is the 512-bit width.
    fn group<'j>(
        &self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &'j [SealJob<'_>],
        packets: &mut [avx512_batch::Packet<'j>; avx512_batch::LANES],
    ) -> usize {
        let Some(lead) = jobs.first() else { return 0 };
        if !self.width.groups_packets() || !avx512_batch::groups(lead.len, lead.aad.len()) {
            return 0;
        }
        let shape = |job: &SealJob<'_>| (job.len, job.aad.len(), job.sample_at);
        let alike = jobs
            .iter()
            .take(avx512_batch::LANES)
            .take_while(|job| shape(job) == shape(lead))
            .count();
        let lanes = jobs.get(..alike).unwrap_or_default();
        // A job whose range the buffers do not hold (the trait's callers check, but it is a
        // safe API) ends the group: sealed alone, it cannot write past them.
        let places: [Option<Span>; avx512_batch::LANES] = spans(buffers, lanes, lead.len);
        let mut grouped = 0;
        for ((job, packet), place) in jobs.iter().zip(packets).zip(places) {
            let Some(Span { src, dst, .. }) = place else {
                break;
            };
            *packet = avx512_batch::Packet {
                nonce: &job.nonce,
                aad: job.aad,
                src,
                dst,
            };
            grouped += 1;
        }
        grouped
    }

    /// True when [`seal_strided`](Self::seal_strided) seals strided packets with payloads of
    /// `payload_len` bytes and headers of `header_len` side by side: on the 512-bit width,
    /// where [`avx512_batch::groups`] takes them.
    pub(super) fn groups_strided(&self, payload_len: usize, header_len: usize) -> bool {
        self.width.groups_packets() && avx512_batch::groups(payload_len, header_len)
    }

    /// Seals strided packets ([`PacketKey::seal_strided`]) four side by side, one to a
    /// vector (a last one alone), and writes each one's tag and protected header: no jobs to
    /// build and no results to hand back, as [`seal_batch`](Self::seal_batch) has. With this
    /// module's own header key (`own`), the masks come from rounds run beside each group's
    /// last GHASH, and where each sample lies inside its payload the group's tags and
    /// headers go to the packets from the registers that made them
    /// ([`avx512_batch::seal_whole`]). For shapes that
    /// [`groups_strided`](Self::groups_strided) takes. The groups read `tables`, built as far
    /// as they need and kept for the caller's next batch.
    ///
    /// [`PacketKey::seal_strided`]: crate::backend::PacketKey::seal_strided
    pub(super) fn seal_strided(
        &self,
        header_key: &impl HeaderKey,
        own: Option<&AesHeaderKey>,
        mut packets: StridedPackets<'_, '_>,
        nonces: &[[u8; NONCE_LEN]],
        tables: &mut BatchTables,
    ) -> bool {
        if !packets.holds(nonces.len()) {
            return false;
        }
        let layout = packets.layout;
        let shape = avx512_batch::Shape::new(layout.payload_len, layout.header_len);
        let sample_at = layout.sample_at();
        // Groups with this module's header key, each sample inside its payload, and a header
        // that fits a vector are written whole by the batch code, masks and tags from its
        // registers.
        let whole = own.filter(|_| {
            layout.header_len <= MAX_SHORT_HEADER_LEN
                && avx512_batch::sample_inside(sample_at, layout.payload_len)
        });
        for (group, group_nonces) in nonces.chunks(avx512_batch::LANES).enumerate() {
            let first = group * avx512_batch::LANES;
            let count = group_nonces.len();
            let mut sealed = [Sealed {
                tag: [0; TAG_LEN],
                mask: [0; MASK_LEN],
            }; avx512_batch::LANES];
            let src = packets.src;
            let aad = |k: usize| layout.header(src, k);
            if let ([nonce], Some(result)) = (group_nonces, sealed.first_mut()) {
                let (src_at, dst_at) = layout.payload_at(first);
                let sources = [src];
                let source = SgSource::new(&sources);
                let mut pieces = [&mut *packets.dst];
                let mut destination = SgDestination::new(&mut pieces);
                let payload = Payload::Copy {
                    src: &source,
                    src_at,
                    dst: &mut destination,
                    dst_at,
                    len: layout.payload_len,
                };
                *result = match own {
                    Some(own) => {
                        self.seal_with_aes_mask(own, nonce, aad(first), sample_at, payload)
                    }
                    None => self.seal(header_key, nonce, aad(first), sample_at, payload),
                };
            } else {
                // Pointers from one borrow of each buffer, valid together for the group.
                let destination = packets.dst.as_mut_ptr();
                let lanes: [avx512_batch::Packet<'_>; avx512_batch::LANES] =
                    core::array::from_fn(|j| match group_nonces.get(j) {
                        Some(nonce) => {
                            let (src_at, dst_at) = layout.payload_at(first + j);
                            avx512_batch::Packet {
                                nonce,
                                aad: aad(first + j),
                                src: src.as_ptr().wrapping_add(src_at),
                                dst: destination.wrapping_add(dst_at),
                            }
                        }
                        None => avx512_batch::Packet::EMPTY,
                    });
                let lanes = lanes.get(..count).unwrap_or_default();
                if let Some(own) = whole {
                    let headers = avx512_batch::Headers {
                        keys: &own.round_keys,
                        sample_at,
                        pn_offset: layout.pn_offset,
                        out: core::array::from_fn(|j| {
                            destination.wrapping_add((first + j).wrapping_mul(layout.dst_stride))
                        }),
                    };
                    // SAFETY: the buffers hold every packet sealed (`holds`), none running
                    // into the next, and the source and the destination are separate
                    // borrows: each payload is `payload_len` bytes readable in `src` and
                    // writable in `dst`, its header `header_len` bytes in `src` and, once
                    // protected, at `headers.out[j]` right before its payload in `dst`, its
                    // tag's 16 bytes right after it. Each sample lies inside its payload and
                    // each header is a short one (`whole`; `holds` checked that a first byte
                    // comes before the packet number, and the packet number's length).
                    // `groups_strided` took the shape, and a key of the 512-bit width exists,
                    // so the CPU has its features.
                    unsafe { avx512_batch::seal_whole(self, tables, lanes, shape, &headers) };
                    // Written whole: nothing left to finish.
                    continue;
                }
                let mut tags = [[0; TAG_LEN]; avx512_batch::LANES];
                // SAFETY: the buffers hold every packet (`holds`), none running into the next
                // (the strides are at least a packet long), the source and the destination
                // are separate borrows: each payload is `payload_len` bytes readable in `src`
                // and readable and writable in `dst`, disjoint from the others; each header
                // is `header_len` bytes; `groups_strided` took the shape, and a key of the
                // 512-bit width exists, so the CPU has its features.
                let kept = unsafe {
                    avx512_batch::seal(
                        self,
                        tables,
                        lanes,
                        shape,
                        sample_at,
                        own.map(|own| &own.round_keys),
                        &mut tags,
                    )
                };
                for (result, tag) in sealed.iter_mut().zip(tags) {
                    result.tag = tag;
                }
                let masks = group_masks(header_key, own.is_some(), kept, count, || {
                    core::array::from_fn(|j| {
                        sealed
                            .get(j)
                            .map_or([0; SAMPLE_LEN], |s| packets.sample(first + j, &s.tag))
                    })
                });
                for (result, mask) in sealed.iter_mut().zip(masks) {
                    result.mask = mask;
                }
            }
            for (j, result) in sealed.iter().enumerate().take(count) {
                let finished = packets.finish(first + j, result);
                debug_assert!(finished, "the buffers hold every packet");
            }
        }
        true
    }

    /// True when [`open_batch`](Self::open_batch) opens packets side by side: on the
    /// 512-bit width, of any length.
    pub(super) fn batches_opens(&self) -> bool {
        self.width.groups_packets()
    }

    /// Opens a batch in place: on the 512-bit width, runs of up to four packets with payloads
    /// and headers of one length (a GRO batch's, but its last) side by side, one to a vector;
    /// the others one by one.
    pub(super) fn open_batch(
        &self,
        buffer: &mut [u8],
        jobs: &[OpenJob<'_>],
        tags: &mut [[u8; TAG_LEN]],
    ) {
        let mut tables = avx512_batch::BatchTables::new();
        let mut first = 0;
        // `get`s, not indexing: no panic path for the kernel object.
        while let (Some(rest), Some(results)) = (jobs.get(first..), tags.get_mut(first..)) {
            let Some(job) = rest.first() else { break };
            let mut packets = [avx512_batch::Packet::EMPTY; avx512_batch::LANES];
            let grouped = self.group_opens(buffer, rest, &mut packets);
            let (Some(group_results), Some(group_packets)) =
                (results.get_mut(..grouped), packets.get(..grouped))
            else {
                break;
            };
            if grouped < 2 {
                if let Some(tag) = results.first_mut() {
                    *tag = self.open(&job.nonce, job.aad, Payload::InPlace(job.payload(buffer)));
                }
                first += 1;
                continue;
            }
            let mut group_tags = [[0; TAG_LEN]; avx512_batch::LANES];
            // SAFETY: `group_opens` gave `grouped` packets of one payload length and one
            // header length, within the limits, each payload `job.len` bytes of `buffer`,
            // read and written in place through pointers from one borrow of it (the jobs'
            // payloads do not overlap; were they to, their bytes would come out wrong, not
            // out of bounds); a key of this width exists, so the CPU has its features.
            unsafe {
                avx512_batch::open(
                    self,
                    &mut tables,
                    group_packets,
                    avx512_batch::Shape::new(job.len, job.aad.len()),
                    &mut group_tags,
                )
            };
            for (tag, group_tag) in group_results.iter_mut().zip(group_tags) {
                *tag = group_tag;
            }
            first += grouped;
        }
    }

    /// How many of `jobs`, from the first, [`open_batch`](Self::open_batch) opens side by
    /// side, their payloads' places in `packets`: those like the first in payload length and
    /// header length, if the first's header is short enough and this is the 512-bit width.
    fn group_opens<'j>(
        &self,
        buffer: &mut [u8],
        jobs: &'j [OpenJob<'_>],
        packets: &mut [avx512_batch::Packet<'j>; avx512_batch::LANES],
    ) -> usize {
        let Some(lead) = jobs.first() else { return 0 };
        if !self.width.groups_packets() || !avx512_batch::groups(lead.len, lead.aad.len()) {
            return 0;
        }
        let alike = jobs
            .iter()
            .take(avx512_batch::LANES)
            .take_while(|job| (job.len, job.aad.len()) == (lead.len, lead.aad.len()))
            .count();
        let lanes = jobs.get(..alike).unwrap_or_default();
        let ats: [_; avx512_batch::LANES] =
            core::array::from_fn(|k| lanes.get(k).map(|job| job.at));
        let mut grouped = 0;
        for ((job, packet), bytes) in jobs
            .iter()
            .zip(packets)
            .zip(in_place_pointers(buffer, ats, lead.len))
        {
            // A job whose range the buffer does not hold (the trait's callers check, but it
            // is a safe API) ends the group: opened alone, it gets an empty payload.
            let Some(bytes) = bytes else { break };
            // One pointer for both: the bytes are read, then written, through it.
            *packet = avx512_batch::Packet {
                nonce: &job.nonce,
                aad: job.aad,
                src: bytes.cast_const(),
                dst: bytes,
            };
            grouped += 1;
        }
        grouped
    }

    /// Seals with `mask` as the header key; with `header_keys` (the same key's rounds), the
    /// bulk loop encrypts the sample itself.
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn seal_with_features(
        &self,
        mask: impl Fn(&[u8; SAMPLE_LEN]) -> [u8; MASK_LEN],
        header_keys: Option<&RoundKeys>,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        payload: &mut Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let capture = Capture {
            offset: sample_at,
            header_keys,
        };
        // SAFETY: this function enables what `start` needs.
        let mut gcm = unsafe { Gcm::start(self, nonce, aad, payload.len(), Some(capture)) };
        gcm.run(payload);
        // The sample usually came from a register while the ciphertext was in it: then the
        // mask's AES ran in the bulk loop (own header key) or runs beside the final GHASH.
        // Where it did not (a short payload, a first segment shorter than the sample), it is
        // read back once the tag is known.
        let early = gcm.sample.map(|sample| match header_keys {
            Some(_) => mask_bytes(sample),
            None => {
                let mut bytes = [0; SAMPLE_LEN];
                store(&mut bytes, sample);
                mask(&bytes)
            }
        });
        let tag = gcm.finish();
        let mask = early.unwrap_or_else(|| mask(&payload.sample(sample_at, &tag)));
        Sealed { tag, mask }
    }

    /// Decrypts `payload` and returns the tag its ciphertext should carry.
    #[inline]
    pub(super) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        // SAFETY: as for `seal`.
        unsafe { self.open_with_features(nonce, aad, &mut payload) }
    }

    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn open_with_features(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        // SAFETY: this function enables what `start` needs.
        let mut gcm = unsafe { Gcm::start(self, nonce, aad, payload.len(), None) };
        gcm.run(payload);
        gcm.finish()
    }
}

/// What a bulk loop sealing the payload's start does with the header-protection sample.
#[derive(Clone, Copy)]
struct Capture<'k> {
    /// Where the sample starts in the payload.
    offset: usize,
    /// The header key's round keys, where the packet key was handed this module's own.
    header_keys: Option<&'k RoundKeys>,
}

impl Capture<'_> {
    /// What to keep of the sample: with the header key's rounds, the mask's block, its AES
    /// issued right where the loop took the sample so that it runs beside the loop's own
    /// rounds; the sample itself otherwise.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn keep(&self, sample: __m128i) -> __m128i {
        match self.header_keys {
            Some(keys) => keys.encrypt(sample),
            None => sample,
        }
    }
}

/// The mask (RFC 9001 §5.4.3): the first five bytes of the encrypted sample, straight from
/// the register; the rest of the block is never stored.
#[inline]
#[target_feature(enable = "sse2")]
fn mask_bytes(block: __m128i) -> [u8; MASK_LEN] {
    let low = _mm_cvtsi128_si64(block).to_le_bytes();
    [low[0], low[1], low[2], low[3], low[4]]
}

/// The nonce and a zero counter, byte-reversed, so that the counter is the low 32-bit lane
/// and adding to it is one instruction.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn counter_base(nonce: &[u8; NONCE_LEN]) -> __m128i {
    // The nonce into a register from scalar loads: a 16-byte load of a 12-byte copy would
    // wait for the copy's stores to drain.
    let word = |i: usize| i32::from_le_bytes([nonce[i], nonce[i + 1], nonce[i + 2], nonce[i + 3]]);
    let j0 = _mm_set_epi32(0, word(8), word(4), word(0));
    _mm_shuffle_epi8(j0, byte_swap_mask())
}

/// One packet's AES-GCM in progress.
struct Gcm<'k> {
    key: &'k AesGcmKey,
    /// The nonce and a zero counter, byte-reversed, so that the counter is the low 32-bit
    /// lane and adding to it is one instruction.
    counter_base: __m128i,
    /// The counter of the next keystream block.
    counter: u32,
    /// The GHASH accumulator, reflected.
    hash: __m128i,
    /// Keystream of a block that straddles two pieces of the payload ...
    keystream: [u8; 16],
    /// ... its ciphertext so far ...
    partial: [u8; 16],
    /// ... and how many of its bytes are done; 16 when no block is open.
    partial_len: usize,
    /// Payload bytes not yet seen.
    remaining: usize,
    /// Where the header-protection sample starts in the payload, when sealing and the bulk
    /// loop is to take it from a register ...
    capture: Option<Capture<'k>>,
    /// ... and what it kept of the sample once taken (see [`Capture::keep`]).
    sample: Option<__m128i>,
    aad_len: usize,
    text_len: usize,
    seal: bool,
    /// The lengths block is in `hash` already: the bulk loop that ended the payload folded
    /// it into its last reduction.
    lengths_hashed: bool,
    /// E_K(J0), where the bulk loop that ended the payload computed it in a lane its last
    /// keystream pair (256-bit) or vector (512-bit, AES-256) left free.
    tag_mask: Option<__m128i>,
}

impl<'k> Gcm<'k> {
    /// Starts a packet: the header hashed (E_K(J0) waits for [`finish`](Self::finish)).
    /// Always inlined (and so without `target_feature`, which rules that out): as a call, the
    /// state it returned went through memory on its way to the bulk loop (AES-256-GCM
    /// 1350-byte seals 5 ns faster inlined, AES-128 3 ns, opens unchanged, on Zen 4).
    ///
    /// # Safety
    /// The caller must enable AES-NI, PCLMULQDQ, SSE2, SSSE3 and SSE4.1.
    #[inline(always)]
    unsafe fn start(
        key: &'k AesGcmKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        text_len: usize,
        capture: Option<Capture<'k>>,
    ) -> Gcm<'k> {
        // SAFETY: the caller enables the features these need.
        unsafe {
            let mut gcm = Gcm {
                key,
                counter_base: counter_base(nonce),
                counter: 2,
                hash: _mm_setzero_si128(),
                keystream: [0; 16],
                partial: [0; 16],
                partial_len: 16,
                remaining: text_len,
                capture,
                sample: None,
                aad_len: aad.len(),
                text_len,
                seal: capture.is_some(),
                lengths_hashed: false,
                tag_mask: None,
            };
            let (blocks, tail) = aad.as_chunks::<16>();
            for group in blocks.chunks(ghash::POWERS) {
                gcm.hash_blocks(group.iter().map(|block| load(block)));
            }
            if !tail.is_empty() {
                let block = gcm.load_partial(tail);
                gcm.hash_blocks(core::iter::once(block));
            }
            gcm
        }
    }

    /// Fewer than 16 bytes, zero-padded to a block: with a masked load on AVX-512, through
    /// a block on the stack otherwise.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_partial(&self, bytes: &[u8]) -> __m128i {
        debug_assert!(bytes.len() < 16);
        match self.key.width {
            // SAFETY: a key of this width exists, so the CPU has AVX-512BW/VL.
            Width::Avx512 => unsafe { avx512::load_partial(bytes) },
            Width::Avx2 | Width::AesNi => aes::load_partial(bytes),
        }
    }

    /// Runs the whole payload through the bulk loop: in one call where it lies in one piece,
    /// else through [`update`](Self::update), in the pieces its segments make.
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn run(&mut self, payload: &mut Payload<'_, '_, '_, '_>) {
        // A payload in one piece goes straight to the bulk loop: no walk over segments, no
        // partial block to continue, and one call fewer that takes this state through
        // memory (64-byte datagrams sealed about 3% faster, on Zen 3).
        if let Some(Span { src, dst, len }) = contiguous(payload) {
            self.remaining = 0;
            if len > 0 {
                let capture = self.capture.filter(|c| holds_sample(len, c.offset));
                // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
                // disjoint: the whole payload, which starts and ends here.
                unsafe { self.bulk(src, dst, len, capture) };
            }
            return;
        }
        // SAFETY: `walk` hands over ranges valid for `update`, the same or disjoint.
        walk(payload, |src, dst, len| unsafe {
            self.update(src, dst, len)
        });
    }

    /// The width's bulk loop over `len` bytes (see [`update`](Self::update)).
    ///
    /// # Safety
    /// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
    /// disjoint; `len` a multiple of 16 unless this is the payload's end; `capture` only
    /// where the range starts the payload and covers the sample. `self.remaining` must
    /// already leave this range out: where it is zero, the loops take the range as the
    /// payload's end and fold the lengths block into its hash.
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn bulk(
        &mut self,
        src: *const u8,
        dst: *mut u8,
        len: usize,
        capture: Option<Capture<'k>>,
    ) {
        // SAFETY: forwarded from the caller; the width's features are present because the
        // key exists.
        unsafe {
            match self.key.width {
                Width::Avx512 => avx512::crypt(self, src, dst, len, capture),
                Width::Avx2 => avx2::crypt(self, src, dst, len, capture),
                Width::AesNi => aesni::crypt(self, src, dst, len, capture),
            }
        }
    }

    /// Whether a call that makes `counters` counter blocks from here can keep them in their
    /// byte order and move each on by adding to its last byte: the counter's low byte does
    /// not wrap on the way (payloads up to about 4 KB, whose blocks count from 2).
    #[inline]
    fn byte_counters(&self, counters: usize) -> bool {
        (self.counter & 0xff) as usize + counters <= 256
    }

    /// The counter block for `counter`, ready for AES.
    #[inline]
    #[target_feature(enable = "sse2,ssse3")]
    fn counter_block(&self, counter: u32) -> __m128i {
        let block = _mm_add_epi32(self.counter_base, _mm_cvtsi32_si128(counter as i32));
        _mm_shuffle_epi8(block, byte_swap_mask())
    }

    /// Folds up to 16 blocks (in GCM's byte order) into the hash with one reduction.
    #[inline]
    #[target_feature(enable = "sse2,ssse3,pclmulqdq")]
    fn hash_blocks(&mut self, blocks: impl ExactSizeIterator<Item = __m128i>) {
        let count = blocks.len();
        debug_assert!((1..=ghash::POWERS).contains(&count));
        let mut products = Products::zero();
        let mut carry = self.hash;
        for (i, block) in blocks.enumerate() {
            let block = _mm_xor_si128(_mm_shuffle_epi8(block, byte_swap_mask()), carry);
            carry = _mm_setzero_si128();
            products.add(block, self.key.powers.power(count - i));
        }
        self.hash = products.reduce();
    }

    /// Transforms `len` bytes from `src` to `dst`.
    ///
    /// # Safety
    /// `src` must be valid for reads and `dst` for writes of `len` bytes, and the two ranges
    /// must be the same or not overlap. `len` is at most `self.remaining`.
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn update(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        debug_assert!(len <= self.remaining);
        let start = self.text_len - self.remaining;
        let mut done = 0;
        if self.partial_len < 16 {
            // SAFETY: forwarded from the caller.
            done = unsafe { self.continue_block(src, dst, len) };
        }
        self.remaining -= len;
        let rest = len - done;
        // Only the payload's last piece may end inside a block; earlier pieces leave a
        // straddling block to `continue_block`.
        let bulk = if self.remaining == 0 {
            rest
        } else {
            rest & !15
        };
        if bulk > 0 {
            // The bulk loop takes the sample if it starts the payload and covers it.
            let capture = self
                .capture
                .filter(|c| start + done == 0 && holds_sample(bulk, c.offset));
            // SAFETY: `done + bulk <= len`, so both ranges are inside the caller's, and a
            // multiple of 16 unless the payload ends here.
            unsafe { self.bulk(src.add(done), dst.add(done), bulk, capture) };
            done += bulk;
        }
        if done < len {
            let block = self.counter_block(self.counter);
            self.counter = self.counter.wrapping_add(1);
            store(&mut self.keystream, self.key.round_keys.encrypt(block));
            self.partial_len = 0;
            // SAFETY: `done < len`, inside the caller's ranges.
            let more = unsafe { self.continue_block(src.add(done), dst.add(done), len - done) };
            debug_assert_eq!(done + more, len);
        }
    }

    /// Continues the open straddling block with up to `len` bytes; returns how many it took.
    ///
    /// # Safety
    /// As for [`update`](Self::update).
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn continue_block(&mut self, src: *const u8, dst: *mut u8, len: usize) -> usize {
        let take = (16 - self.partial_len).min(len);
        for i in 0..take {
            // SAFETY: `i < len`; each byte is read before it is written, so in place works.
            let (input, output) = unsafe {
                let input = src.add(i).read();
                // `% 16`: `partial_len < 16` holds; the mask keeps the kernel object free of
                // a panic path the compiler cannot see past.
                let output = input ^ self.keystream[self.partial_len % 16];
                dst.add(i).write(output);
                (input, output)
            };
            self.partial[self.partial_len % 16] = if self.seal { output } else { input };
            self.partial_len += 1;
        }
        if self.partial_len == 16 {
            self.hash_blocks(core::iter::once(load(&self.partial)));
        }
        take
    }

    /// GHASH's last block: the header's and the payload's lengths in bits, reflected.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn lengths_block(&self) -> __m128i {
        _mm_set_epi64x(
            (self.aad_len as u64 * 8) as i64,
            (self.text_len as u64 * 8) as i64,
        )
    }

    /// Ends the packet: hashes any open block and the lengths, and returns the tag, masked
    /// with E_K(J0). The 256-bit loop makes that block in a free lane of its last keystream
    /// pair where the payload leaves one, at no cost in instructions, and the 512-bit loop
    /// in one of its last vector's for AES-256. Otherwise its rounds
    /// are issued here, after the payload's, not when the packet starts: the core issues the
    /// oldest AES instruction that is ready, so rounds no one waits for yet, issued first,
    /// held back the keystream's chain, which the ciphertext, the header mask and the hash
    /// all wait on. On Zen 3, in the backend alone, seals of a 37-byte payload took
    /// 0.85-0.93x the time, of 1 323 bytes 0.97x; through `TxFlow`, AES-256-GCM datagrams
    /// 0.94-0.95x at 64 bytes and 0.98x at 1350, AES-128-GCM ones and opens about even.
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn finish(&mut self) -> [u8; TAG_LEN] {
        let tag_mask = match self.tag_mask {
            Some(tag_mask) => tag_mask,
            None => self.key.round_keys.encrypt(self.counter_block(1)),
        };
        if self.partial_len < 16 {
            self.partial[self.partial_len..].fill(0);
            self.hash_blocks(core::iter::once(load(&self.partial)));
        }
        let hash = if self.lengths_hashed {
            self.hash
        } else {
            multiply(
                _mm_xor_si128(self.hash, self.lengths_block()),
                self.key.powers.power(1),
            )
        };
        // Wiped here rather than on drop: a `Drop` impl keeps this state in memory, moved with
        // a memcpy, where otherwise it lives in registers.
        // SAFETY: all three are valid, aligned, exclusively borrowed.
        unsafe {
            ptr::write_volatile(&mut self.keystream, [0; 16]);
            ptr::write_volatile(&mut self.partial, [0; 16]);
            ptr::write_volatile(&mut self.tag_mask, Some(_mm_setzero_si128()));
        }
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        let mut tag = [0; TAG_LEN];
        store(
            &mut tag,
            _mm_xor_si128(_mm_shuffle_epi8(hash, byte_swap_mask()), tag_mask),
        );
        tag
    }
}

/// Calls `update(src, dst, len)` on the pieces of `payload` its segments make, in order:
/// `src` valid for reads and `dst` for writes of `len` bytes, the same bytes (in place) or
/// disjoint (a copy), which is what the fused ciphers' raw-pointer loops need.
#[inline]
fn walk(payload: &mut Payload<'_, '_, '_, '_>, mut update: impl FnMut(*const u8, *mut u8, usize)) {
    match payload {
        Payload::InPlace(data) => {
            let at = data.as_mut_ptr();
            update(at, at, data.len());
        }
        Payload::Copy {
            src,
            src_at,
            dst,
            dst_at,
            len,
        } => {
            // Two slices of one length, one shared and one exclusive: they do not overlap.
            let walked = dst.zip_from(*dst_at, src, *src_at, *len, |input, output| {
                update(input.as_ptr(), output.as_mut_ptr(), input.len())
            });
            debug_assert!(walked, "the core checked both buffers' lengths");
        }
    }
}

/// Where the payloads of the first `N` of `jobs`, `len` bytes each, lie in `buffers`, for
/// those the buffers hold in one piece: every pointer from one borrow of each buffer, valid
/// together (one taken from each job's payload would lose its right to the bytes once the
/// next job's was taken).
fn spans<const N: usize>(
    buffers: &mut BatchBuffers<'_, '_, '_, '_>,
    jobs: &[SealJob<'_>],
    len: usize,
) -> [Option<Span>; N] {
    match buffers {
        BatchBuffers::Copy { src, dst } => {
            let ats: [usize; N] =
                core::array::from_fn(|k| jobs.get(k).map_or(usize::MAX, |job| job.dst_at));
            let destinations = dst.piece_pointers(ats, len);
            core::array::from_fn(|k| {
                let input = src.piece(jobs.get(k)?.src_at, len)?;
                Some(Span {
                    src: input.as_ptr(),
                    dst: destinations.get(k).copied().flatten()?,
                    len,
                })
            })
        }
        BatchBuffers::InPlace(buffer) => {
            let ats: [Option<usize>; N] =
                core::array::from_fn(|k| jobs.get(k).map(|job| job.dst_at));
            // One pointer for both: the bytes are read, then written, through it.
            in_place_pointers(buffer, ats, len).map(|at| {
                at.map(|at| Span {
                    src: at.cast_const(),
                    dst: at,
                    len,
                })
            })
        }
    }
}

/// Where the `len` bytes at each of `ats` start in `buffer`, for those it holds: pointers
/// from one borrow of it, valid together (ones taken from a borrow each would each end the
/// last one's right to the bytes).
fn in_place_pointers<const N: usize>(
    buffer: &mut [u8],
    ats: [Option<usize>; N],
    len: usize,
) -> [Option<*mut u8>; N] {
    let buffer_len = buffer.len();
    let base = buffer.as_mut_ptr();
    ats.map(|at| {
        let at = at?;
        at.checked_add(len).filter(|&end| end <= buffer_len)?;
        Some(base.wrapping_add(at))
    })
}

/// A payload in one piece: `src` is valid for reads and `dst` for writes of `len` bytes,
/// the same bytes or disjoint, for as long as the payload is borrowed.
#[derive(Clone, Copy)]
struct Span {
    src: *const u8,
    dst: *mut u8,
    len: usize,
}

/// Whether `len` bytes hold the header-protection sample at offset `at`: without an
/// addition that could wrap, since `at` comes from a caller of a safe API.
#[inline]
fn holds_sample(len: usize, at: usize) -> bool {
    at.checked_add(SAMPLE_LEN).is_some_and(|end| end <= len)
}

/// The payload's source and destination, if each lies in one piece. Answered from the
/// segments' lengths, not by a walk whose callback fills a `Span` in memory: reading that
/// back at once waited on its narrower stores (a store-forwarding stall, about 5 ns a
/// packet when grouping a batch).
#[inline]
fn contiguous(payload: &mut Payload<'_, '_, '_, '_>) -> Option<Span> {
    match payload {
        Payload::InPlace(data) => {
            // One pointer for both: a second, shared one would lose its right to read once
            // the first write goes through the mutable one.
            let at = data.as_mut_ptr();
            Some(Span {
                src: at,
                dst: at,
                len: data.len(),
            })
        }
        Payload::Copy {
            src,
            src_at,
            dst,
            dst_at,
            len,
        } => {
            let input = src.piece(*src_at, *len)?;
            let output = dst.piece_mut(*dst_at, *len)?;
            Some(Span {
                src: input.as_ptr(),
                dst: output.as_mut_ptr(),
                len: *len,
            })
        }
    }
}

/// The masks of a group's `count` packets from what [`avx512_batch::seal`] kept: with this
/// module's own header key (`own`), the encrypted samples' first bytes (RFC 9001 §5.4.3);
/// with another, its masks of the samples. Where the samples run into the tags, nothing was
/// kept, and `samples` reads them once the tags are known.
fn group_masks(
    header_key: &impl HeaderKey,
    own: bool,
    kept: Option<[[u8; 16]; avx512_batch::LANES]>,
    count: usize,
    samples: impl FnOnce() -> [[u8; SAMPLE_LEN]; avx512_batch::LANES],
) -> [[u8; MASK_LEN]; avx512_batch::LANES] {
    let mut masks = [[0; MASK_LEN]; avx512_batch::LANES];
    match (kept, own) {
        (Some(blocks), true) => {
            for (mask, block) in masks.iter_mut().zip(blocks) {
                *mask = *block.first_chunk().unwrap_or(&[0; MASK_LEN]);
            }
        }
        (kept, _) => {
            let samples = kept.unwrap_or_else(samples);
            header_key.masks(samples.get(..count).unwrap_or_default(), &mut masks);
        }
    }
    masks
}

/// The header-protection masks of up to `N` sealed packets (their tags known), asked of
/// `header_key` together, so that a key that batches them computes them in one call.
fn set_masks<const N: usize>(
    header_key: &impl HeaderKey,
    buffers: &mut BatchBuffers<'_, '_, '_, '_>,
    jobs: &[SealJob<'_>],
    sealed: &mut [Sealed],
) {
    let mut samples = [[0; SAMPLE_LEN]; N];
    for ((job, sealed), sample) in jobs.iter().zip(&*sealed).zip(&mut samples) {
        *sample = buffers.payload(job).sample(job.sample_at, &sealed.tag);
    }
    let mut masks = [[0; MASK_LEN]; N];
    // `get`: at most `N` jobs come, but the kernel object must keep no panic path the
    // compiler cannot see past.
    header_key.masks(samples.get(..jobs.len()).unwrap_or_default(), &mut masks);
    for (sealed, mask) in sealed.iter_mut().zip(masks) {
        sealed.mask = mask;
    }
}

/// The 16 bytes at offset `at` (0 ..= 15) of the 32 bytes `low` then `high`.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn bytes_at(low: __m128i, high: __m128i, at: usize) -> Option<__m128i> {
    macro_rules! shift {
        ($($n:literal)*) => {
            match at {
                $($n => Some(_mm_alignr_epi8(high, low, $n)),)*
                _ => None,
            }
        };
    }
    shift!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// An AES header-protection key: the sample encrypted with AES-ECB (RFC 9001 §5.4.3).
#[derive(Clone)]
pub(super) struct AesHeaderKey {
    round_keys: RoundKeys,
    /// The width of the packet keys it serves: on the 512-bit width a receiver gains from
    /// unmasking a GRO batch's headers first, to open the payloads side by side.
    width: Width,
}

impl AesHeaderKey {
    /// Prepares a 16- or 32-byte key for packet keys of `width`; fails on a CPU without
    /// AES-NI.
    pub(super) fn new(width: Width, key: &[u8]) -> Result<AesHeaderKey, Error> {
        if !Width::AesNi.available() {
            return Err(Error::InvalidConfig);
        }
        // SAFETY: AES-NI checked just above.
        let round_keys = unsafe { RoundKeys::expand(key) }.ok_or(Error::InvalidKeyLength)?;
        Ok(AesHeaderKey { round_keys, width })
    }

    /// True where a receiver should compute a GRO batch's masks together, before opening
    /// its payloads: where [`AesGcmKey::open_batch`] opens them side by side. Elsewhere the
    /// datagrams open one by one, each unmasked on its way, which measured faster (64-byte
    /// datagrams 80 ns against 84 on the 256-bit width, the masks themselves aside).
    pub(super) fn batches_masks(&self) -> bool {
        self.width.groups_packets()
    }

    /// The mask for `sample`.
    #[inline]
    pub(super) fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        // SAFETY: the key exists, so AES-NI is there.
        unsafe { self.mask_aesni(sample) }
    }

    #[inline]
    #[target_feature(enable = "aes,sse2,sse4.1")]
    fn mask_aesni(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        mask_bytes(self.round_keys.encrypt(load(sample)))
    }

    /// The masks for several samples, `masks[i]` for `samples[i]`, eight at a time with their
    /// rounds interleaved (a receiver unmasks a GRO batch's headers before opening it).
    pub(super) fn masks(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        // SAFETY: the key exists, so AES-NI is there.
        unsafe { self.masks_aesni(samples, masks) }
    }

    #[target_feature(enable = "aes,sse2,sse4.1")]
    fn masks_aesni(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        const INTERLEAVED: usize = 8;
        for (samples, masks) in samples
            .chunks(INTERLEAVED)
            .zip(masks.chunks_mut(INTERLEAVED))
        {
            let blocks: [__m128i; INTERLEAVED] = core::array::from_fn(|i| {
                samples
                    .get(i)
                    .map_or_else(|| _mm_setzero_si128(), |sample| load(sample))
            });
            let encrypted = self.round_keys.encrypt_blocks(blocks);
            for (mask, block) in masks.iter_mut().zip(encrypted) {
                *mask = mask_bytes(block);
            }
        }
    }
}

#[cfg(test)]
mod tests;
