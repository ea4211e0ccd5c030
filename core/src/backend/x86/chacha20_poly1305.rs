//! ChaCha20-Poly1305 (RFC 8439 §2.8) for x86_64 with AVX-512: the keystream 16 blocks at a
//! time on the vector units, and Poly1305 over the ciphertext on the vector units too: eight
//! blocks at a time with AVX-512 IFMA where the CPU has it, four with AVX2 elsewhere. With IFMA,
//! a payload in one piece that needs more than one keystream call has its Poly1305 steps
//! spread over the later calls' rounds (`seal_interleaved`, `open_interleaved`); otherwise
//! the cipher and the hash run one after the other.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;
use core::ops::RangeInclusive;
use core::ptr;

use zeroize::Zeroizing;

use super::chacha20::{self, ChaChaState, KeyWords, LaneBlock};
use super::chacha20_header::ChaCha20HeaderKey;
use super::poly1305::{Engine, Poly1305, VECTOR_LANES, tags_side_by_side};
use super::{Span, contiguous, holds_sample, set_masks, walk};
use crate::Error;
use crate::backend::{
    BatchBuffers, HeaderKey, MASK_LEN, NONCE_LEN, OpenJob, Payload, SAMPLE_LEN, SealJob, Sealed,
    TAG_LEN,
};

/// Bytes of one ChaCha20 block.
pub(super) const BLOCK: usize = 64;

/// A ChaCha20-Poly1305 key: the raw key is all the state there is (the Poly1305 key is new
/// for every packet).
#[derive(Clone)]
pub(in crate::backend) struct ChaCha20Poly1305Key {
    key: Zeroizing<[u8; 32]>,
    /// Where Poly1305's long runs go: AVX-512 IFMA where the CPU has it, AVX2 elsewhere.
    poly1305: Engine,
}

impl ChaCha20Poly1305Key {
    /// Wraps a 32-byte key; fails on a CPU without AVX-512.
    pub(in crate::backend) fn new(key: &[u8]) -> Result<ChaCha20Poly1305Key, Error> {
        Ok(ChaCha20Poly1305Key {
            key: chacha20::avx512_key(key)?,
            poly1305: Engine::detected(),
        })
    }

    /// The same key with Poly1305's long runs on `engine` (which the CPU must have), for
    /// tests of each engine on CPUs that would pick another.
    #[cfg(test)]
    pub(super) fn with_poly1305(mut self, engine: Engine) -> ChaCha20Poly1305Key {
        self.poly1305 = engine;
        self
    }

    /// Encrypts `payload`; returns the tag and `header_key`'s mask of the sample at payload
    /// offset `sample_at`.
    pub(in crate::backend) fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        self.seal_masking(header_key, None, nonce, aad, sample_at, payload)
    }

    /// [`seal`](Self::seal) with this module's own ChaCha20 header key, whose mask's block
    /// can run beside the payload's last keystream call rather than after the tag.
    pub(in crate::backend) fn seal_with_chacha20_mask(
        &self,
        header_key: &ChaCha20HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        let fused = Some((header_key, sample_at));
        self.seal_masking(header_key, fused, nonce, aad, sample_at, payload)
    }

    fn seal_masking(
        &self,
        header_key: &impl HeaderKey,
        fused: Option<(&ChaCha20HeaderKey, usize)>,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        // SAFETY: the key exists, so the CPU has AVX-512.
        let (tag, mask) = unsafe { self.seal_payload(nonce, aad, &mut payload, fused) };
        Sealed {
            tag,
            mask: mask.unwrap_or_else(|| header_key.mask(&payload.sample(sample_at, &tag))),
        }
    }

    /// Seals `payload`: the interleaved code where it applies, which also computes the
    /// header-protection mask when given the key and the sample's offset; the two passes of
    /// [`run`](Self::run) elsewhere.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn seal_payload(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
        mask: Option<(&ChaCha20HeaderKey, usize)>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        if self.poly1305 == Engine::Ifma
            && payload.len() > FIRST_CALL
            && let Some(span) = contiguous(payload)
        {
            // SAFETY: the engine is only IFMA on a CPU with AVX-512F and IFMA;
            // `contiguous` hands over ranges valid for `len` bytes, the same or disjoint.
            return unsafe { self.seal_interleaved(nonce, aad, span, mask) };
        }
        // Cut into pieces, a payload long enough for the vector units would go to the integer
        // units' Poly1305: slower by more than the mask's chain.
        if let Some((header_key, sample_at)) = mask
            && holds_sample(payload.len(), sample_at)
            && payload.len() < self.poly1305.min_vector_bytes()
            && let Some(span) = contiguous(payload)
        {
            // SAFETY: `contiguous` hands over ranges valid for `len` bytes, the same or
            // disjoint; the sample lies inside them.
            return unsafe { self.seal_short(nonce, aad, span, (header_key, sample_at)) };
        }
        (self.run(nonce, aad, payload, true, None).0, None)
    }

    /// Seals a payload lying in one piece with its header-protection mask, where
    /// [`seal_interleaved`](Self::seal_interleaved) does not apply and Poly1305 runs on the
    /// integer units (a payload too short for the vector units, or no IFMA): see
    /// [`seal_with_mask_beside_hash`].
    ///
    /// # Safety
    /// As for [`Span`]; the sample (at `sample_at`) lies inside it; the CPU must have
    /// AVX-512F, AVX-512BW and AVX-512VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn seal_short(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        span: Span,
        (header_key, sample_at): (&ChaCha20HeaderKey, usize),
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        let cipher = Cipher::new(ChaChaState::new(&self.key, nonce), span.len);
        let begin = |sample: &[u8; SAMPLE_LEN]| header_key.begin(sample);
        // SAFETY: forwarded; the features the cipher and the mask need are enabled here.
        let (tag, mask) = unsafe {
            seal_with_mask_beside_hash(cipher, begin, self.poly1305, aad, span, sample_at)
        };
        (tag, Some(mask))
    }

    /// Decrypts `payload` and returns the tag its ciphertext should carry.
    pub(in crate::backend) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        // SAFETY: as for `seal`.
        unsafe { self.run(nonce, aad, &mut payload, false, None).0 }
    }

    /// The payload lengths for which
    /// [`open_with_chacha20_mask`](Self::open_with_chacha20_mask) runs the mask's block
    /// beside the payload's keystream: those of [`open_interleaved`](Self::open_interleaved).
    pub(in crate::backend) fn masks_beside_open(&self) -> RangeInclusive<usize> {
        if self.poly1305 == Engine::Ifma {
            INTERLEAVED_OPENS
        } else {
            RangeInclusive::new(1, 0)
        }
    }

    /// [`open`](Self::open), also returning `header_key`'s mask of `sample`, for a receiver
    /// that guessed the packet's header and number: the mask's block runs in the second
    /// keystream call (in its free lane or by rows beside its double rounds, see
    /// [`lane_takes`]) where [`open_interleaved`](Self::open_interleaved)
    /// applies, after the payload elsewhere.
    pub(in crate::backend) fn open_with_chacha20_mask(
        &self,
        header_key: &ChaCha20HeaderKey,
        sample: &[u8; SAMPLE_LEN],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        mut payload: Payload<'_, '_, '_, '_>,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        // SAFETY: as for `seal`: the CPU has AVX-512.
        let (tag, mask) =
            unsafe { self.run(nonce, aad, &mut payload, false, Some((header_key, sample))) };
        (tag, mask.unwrap_or_else(|| header_key.mask(sample)))
    }

    /// Seals a batch, sixteen packets at a time: short packets in groups whose keystream
    /// blocks (the one-time key's and the payload's) share one sixteen-lane call, longer ones
    /// one by one, and then the header-protection masks of all sixteen together. A packet
    /// alone needs two ChaCha20 chains one after the other (its keystream, then the block of
    /// its ciphertext's sample); here a chain serves many packets.
    pub(in crate::backend) fn seal_batch(
        &self,
        header_key: &impl HeaderKey,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        for (jobs, sealed) in jobs.chunks(LANES).zip(sealed.chunks_mut(LANES)) {
            // SAFETY: the key exists, so the CPU has AVX-512.
            unsafe { self.seal_sixteen(header_key, buffers, jobs, sealed) }
        }
    }

    /// [`seal_batch`](Self::seal_batch) of at most sixteen packets.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn seal_sixteen(
        &self,
        header_key: &impl HeaderKey,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        // The grouped packets' one-time keys and ciphertexts, kept until every group's
        // payloads are encrypted, so that packets of different groups hash side by side.
        let mut one_time_keys = Zeroizing::new([[0u8; 32]; LANES]);
        // Whether each packet was encrypted in a group (`Some`), its ciphertext in one piece.
        let mut texts: [Option<bool>; LANES] = [None; LANES];
        // `get`s, not indexing, below: at most `LANES` jobs come (`seal_batch`), but the
        // kernel object must keep no panic path the compiler cannot see past.
        let mut first = 0;
        while let Some(rest) = jobs.get(first..).filter(|rest| !rest.is_empty()) {
            let group = group_len(rest.iter().map(|job| job.len), LANES, MAX_GROUPED_BLOCKS);
            let range = first..first + group;
            let (Some(group_jobs), Some(keys), Some(group_texts)) = (
                jobs.get(range.clone()),
                one_time_keys.get_mut(range.clone()),
                texts.get_mut(range),
            ) else {
                break;
            };
            if let ([job], Some(sealed)) = (group_jobs, sealed.get_mut(first)) {
                let payload = &mut buffers.payload(job);
                sealed.tag = self.seal_payload(&job.nonce, job.aad, payload, None).0;
            } else {
                self.encrypt_group(buffers, group_jobs, keys, group_texts);
            }
            first += group;
        }
        self.hash_grouped(buffers, jobs, &one_time_keys, &texts, sealed);
        set_masks::<LANES>(header_key, buffers, jobs, sealed);
    }

    /// Encrypts short packets whose blocks, one-time key's included, fit in sixteen lanes,
    /// from one keystream call, lane by lane each packet's counters 0, 1, ... and its nonce;
    /// keeps each one's one-time key and whether its ciphertext lies in one piece
    /// (`texts[k]` is `Some`: the packet was encrypted here).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn encrypt_group(
        &self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        one_time_keys: &mut [[u8; 32]],
        texts: &mut [Option<bool>],
    ) {
        let keystream = self.group_keystream(jobs.iter().map(|job| (&job.nonce, job.len)));
        let streams = streams(&keystream, jobs.iter().map(|job| job.len));
        for (((job, stream), key), text) in jobs.iter().zip(streams).zip(one_time_keys).zip(texts) {
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
                chacha20::xor_with(stream.as_ptr().add(used), src, dst, len);
                used += len;
            });
            *key = *one_time_key;
            *text = Some(contiguous(payload).is_some());
        }
    }

    /// The tags of the packets [`encrypt_group`](Self::encrypt_group) encrypted: with IFMA,
    /// those whose ciphertext lies in one piece side by side ([`Group`]); the others one by
    /// one.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn hash_grouped(
        &self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        one_time_keys: &[[u8; 32]; LANES],
        texts: &[Option<bool>; LANES],
        sealed: &mut [Sealed],
    ) {
        let mut tags = [[0; TAG_LEN]; LANES];
        let mut side_by_side = [false; LANES];
        if self.poly1305 == Engine::Ifma {
            let mut group = Group::new();
            let mut members = [0; LANES];
            // The ciphertexts read back through shared borrows, which do not end each
            // other's as pointers kept from the encryption's mutable ones would.
            let outputs: &BatchBuffers<'_, '_, '_, '_> = buffers;
            for (k, ((job, text), key)) in jobs.iter().zip(texts).zip(one_time_keys).enumerate() {
                if let (Some(true), Some(member)) = (text, members.get_mut(group.texts.len()))
                    && let Some(text) = outputs.output(job)
                {
                    *member = k;
                    group.push(key, job.aad, text);
                }
            }
            let mut group_tags = [[0; TAG_LEN]; LANES];
            // SAFETY: the engine is only IFMA on a CPU with AVX-512F and IFMA.
            unsafe { group.tags(&mut group_tags) };
            for (&k, tag) in members.iter().zip(group_tags).take(group.texts.len()) {
                if let (Some(slot), Some(side)) = (tags.get_mut(k), side_by_side.get_mut(k)) {
                    (*slot, *side) = (tag, true);
                }
            }
        }
        let per_packet = jobs.iter().zip(sealed).zip(texts);
        let per_lane = one_time_keys.iter().zip(&mut tags).zip(side_by_side);
        for (((job, sealed), text), ((key, tag), side_by_side)) in per_packet.zip(per_lane) {
            if text.is_none() {
                continue;
            }
            if !side_by_side {
                let mut poly = Poly1305::new(key, self.poly1305);
                hash_text(&mut poly, job.aad, &mut buffers.payload(job), true);
                *tag = poly.finish(&lengths(job.aad.len(), job.len));
            }
            sealed.tag = *tag;
        }
    }

    /// The keystream of short packets (nonce and payload length each) that fit in the lanes,
    /// from one sixteen-lane call: lane by lane each packet's counters 0, 1, ... and its nonce.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn group_keystream<'n>(
        &self,
        packets: impl Iterator<Item = (&'n [u8; NONCE_LEN], usize)>,
    ) -> Keystream {
        let mut counters = [0u32; LANES];
        let mut nonces = [[0u32; LANES]; 3];
        let mut lane = 0;
        for (nonce, len) in packets {
            let words: [u32; 3] = core::array::from_fn(|w| {
                let bytes = &nonce[4 * w..4 * w + 4];
                u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
            });
            for counter in 0..blocks(len) {
                if lane < LANES {
                    counters[lane] = counter as u32;
                    for (nonce, word) in nonces.iter_mut().zip(words) {
                        nonce[lane] = word;
                    }
                    lane += 1;
                }
            }
        }
        // SAFETY: each array holds sixteen words: one 64-byte load.
        let load = |words: [u32; LANES]| unsafe { _mm512_loadu_si512(words.as_ptr().cast()) };
        let vertical =
            chacha20::vertical(&KeyWords::new(&self.key), load(counters), nonces.map(load));
        let mut keystream = Keystream::new();
        keystream.fill([chacha20::transpose(vertical)]);
        keystream
    }

    /// True when [`seal_batch`](Self::seal_batch) gains over sealing packets of payloads up
    /// to `payload_len` bytes one by one: the masks, one ChaCha20 block each, computed side
    /// by side. Not where one packet's seal takes its mask's block into its own second
    /// keystream call ([`seal_interleaved`](Self::seal_interleaved), with IFMA): batched, the
    /// block would run apart from it (1350-byte packets of a GSO batch sealed 629 ns apiece
    /// against 605 one by one, on Zen 4).
    pub(in crate::backend) fn batches_seals(&self, payload_len: usize) -> bool {
        self.poly1305 != Engine::Ifma || payload_len <= FIRST_CALL
    }

    /// True when payloads of `payload_len` bytes are short enough for
    /// [`open_batch`](Self::open_batch) to share keystream calls between packets.
    pub(in crate::backend) fn batches_opens(&self, payload_len: usize) -> bool {
        blocks(payload_len) <= MAX_GROUPED_OPEN_BLOCKS
    }

    /// Opens a batch in place, sixteen packets at a time: short packets in groups whose
    /// keystream blocks share one sixteen-lane call as [`seal_batch`](Self::seal_batch)
    /// seals, longer ones one by one. A packet alone waits for a whole keystream call's
    /// chain; here a chain serves several packets. With IFMA the short packets' Poly1305s,
    /// over their ciphertexts and before those are decrypted, then run side by side across
    /// the groups ([`Group`]).
    pub(in crate::backend) fn open_batch(
        &self,
        buffer: &mut [u8],
        jobs: &[OpenJob<'_>],
        tags: &mut [[u8; TAG_LEN]],
    ) {
        for (jobs, tags) in jobs.chunks(LANES).zip(tags.chunks_mut(LANES)) {
            // SAFETY: the key exists, so the CPU has AVX-512.
            unsafe { self.open_sixteen(buffer, jobs, tags) }
        }
    }

    /// [`open_batch`](Self::open_batch) of at most sixteen packets. A group of four or more
    /// packets opens as soon as its keystream is there; smaller groups' keystreams wait in a
    /// [`StreamStore`] so that their Poly1305s fill the lanes together.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn open_sixteen(&self, buffer: &mut [u8], jobs: &[OpenJob<'_>], tags: &mut [[u8; TAG_LEN]]) {
        let mut store = StreamStore::new();
        let mut waiting: heapless::Vec<(usize, (usize, usize)), LANES> = heapless::Vec::new();
        let mut first = 0;
        while first < jobs.len() {
            let lens = jobs[first..].iter().map(|job| job.len);
            let group = group_len(lens, LANES, MAX_GROUPED_OPEN_BLOCKS);
            let range = first..first + group;
            if let ([job], Some(tag)) = (&jobs[range.clone()], tags.get_mut(first)) {
                *tag = self.open(&job.nonce, job.aad, Payload::InPlace(job.payload(buffer)));
            } else {
                let group_jobs = &jobs[range.clone()];
                let keystream =
                    self.group_keystream(group_jobs.iter().map(|job| (&job.nonce, job.len)));
                let streams = streams(&keystream, group_jobs.iter().map(|job| job.len));
                if group >= MIN_SIDE_BY_SIDE || self.poly1305 != Engine::Ifma {
                    let streams: heapless::Vec<&[u8], LANES> = streams.collect();
                    let members: heapless::Vec<usize, LANES> = range.collect();
                    self.open_with_streams(buffer, jobs, &members, &streams, tags);
                } else {
                    for (k, stream) in range.zip(streams) {
                        if let Some(blocks) = store.push(stream) {
                            let waits = waiting.push((k, blocks)).is_ok();
                            debug_assert!(waits, "at most sixteen packets");
                        }
                    }
                }
            }
            first += group;
        }
        let members: heapless::Vec<usize, LANES> = waiting.iter().map(|&(k, _)| k).collect();
        let streams: heapless::Vec<&[u8], LANES> = waiting
            .iter()
            .map(|&(_, blocks)| store.get(blocks))
            .collect();
        self.open_with_streams(buffer, jobs, &members, &streams, tags);
    }

    /// Opens the packets `jobs[members[i]]`, whose keystreams (the one-time key's block, then
    /// the payload's) are `streams[i]`: with IFMA, their Poly1305s side by side over the
    /// ciphertexts ([`Group`]), then the payloads decrypted; one by one otherwise. Each
    /// packet's tag goes to `tags[members[i]]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn open_with_streams(
        &self,
        buffer: &mut [u8],
        jobs: &[OpenJob<'_>],
        members: &[usize],
        streams: &[&[u8]],
        tags: &mut [[u8; TAG_LEN]],
    ) {
        if self.poly1305 != Engine::Ifma {
            for (&k, stream) in members.iter().zip(streams) {
                if let (Some(job), Some(tag)) = (jobs.get(k), tags.get_mut(k)) {
                    *tag = self.open_with(stream, job.aad, job.payload(buffer));
                }
            }
            return;
        }
        {
            let mut group = Group::new();
            for (&k, stream) in members.iter().zip(streams) {
                let Some(job) = jobs.get(k) else {
                    continue;
                };
                let text = job
                    .at
                    .checked_add(job.len)
                    .and_then(|end| buffer.get(job.at..end));
                group.push(stream, job.aad, text.unwrap_or_default());
            }
            let mut group_tags = [[0; TAG_LEN]; LANES];
            // SAFETY: the engine is only IFMA on a CPU with AVX-512F and IFMA.
            unsafe { group.tags(&mut group_tags) };
            for (&k, tag) in members.iter().zip(group_tags) {
                if let Some(out) = tags.get_mut(k) {
                    *out = tag;
                }
            }
        }
        for (&k, stream) in members.iter().zip(streams) {
            let Some(job) = jobs.get(k) else {
                continue;
            };
            let payload = job.payload(buffer);
            let at = payload.as_mut_ptr();
            let keys = stream.get(BLOCK..).unwrap_or_default();
            // SAFETY: the stream holds at least the payload's length (`streams` gives each
            // packet its blocks); in place; AVX-512 is enabled here.
            unsafe { chacha20::xor_with(keys.as_ptr(), at, at, payload.len().min(keys.len())) };
        }
    }

    /// Opens `payload` in place with `keystream`, computed ahead: block 0 (the one-time key),
    /// then at least the payload's length. The ciphertext is hashed before it is decrypted.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn open_with(&self, keystream: &[u8], aad: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        let (Some(one_time_key), Some(stream)) =
            (keystream.first_chunk::<32>(), keystream.get(BLOCK..))
        else {
            return [0; TAG_LEN];
        };
        debug_assert!(stream.len() >= payload.len());
        let mut poly = Poly1305::new(one_time_key, self.poly1305);
        poly.absorb_padded(aad);
        poly.absorb(payload);
        poly.pad();
        let at = payload.as_mut_ptr();
        // SAFETY: the keystream holds at least the payload's length; in place. The key exists,
        // so the CPU has AVX-512.
        unsafe { chacha20::xor_with(stream.as_ptr(), at, at, payload.len().min(stream.len())) };
        poly.finish(&lengths(aad.len(), payload.len()))
    }

    /// Two passes over the payload, each a simple loop: the cipher (16 blocks at a time on
    /// the vector units) and Poly1305 over the ciphertext, the ciphertext read back from the
    /// cache when sealing. The one-time key's block comes from the cipher's first keystream
    /// call, with up to 15 of the payload's. Opening in place must hash the ciphertext before
    /// it is overwritten, so there the hash goes first.
    ///
    /// Given the header key and the sample (opening only), runs the mask's block in
    /// [`open_interleaved`](Self::open_interleaved)'s second call and returns the mask;
    /// elsewhere returns `None`, the mask not computed.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn run(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: &mut Payload<'_, '_, '_, '_>,
        seal: bool,
        header: Option<(&ChaCha20HeaderKey, &[u8; SAMPLE_LEN])>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        if !seal
            && self.poly1305 == Engine::Ifma
            && INTERLEAVED_OPENS.contains(&payload.len())
            && let Some(span) = contiguous(payload)
        {
            // SAFETY: the engine is only IFMA on a CPU with AVX-512F and IFMA;
            // `contiguous` hands over ranges valid for `len` bytes, the same or disjoint.
            return unsafe { self.open_interleaved(nonce, aad, span, header) };
        }
        let cipher = Cipher::new(ChaChaState::new(&self.key, nonce), payload.len());
        // SAFETY: the key exists, so the CPU has AVX-512.
        (
            unsafe { two_passes(cipher, self.poly1305, aad, payload, seal) },
            None,
        )
    }

    /// Seals a payload longer than the first keystream call covers, lying in one piece, with
    /// Poly1305 on the vector units: each keystream call after the first hashes up to ten
    /// chunks of the ciphertext already written, one in each double round, so that the
    /// hash's multiply chains fill the gaps in the rounds' instead of running after them.
    /// Given the header key and the sample's offset (inside the first call's blocks), the
    /// mask's block runs in the second call too, in its free lane or by rows beside its
    /// double rounds ([`lane_takes`]), and comes back with the tag.
    ///
    /// # Safety
    /// As for [`Span`]; the CPU must have AVX-512F, AVX-512BW, AVX-512VL and AVX-512 IFMA.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512ifma")]
    unsafe fn seal_interleaved(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        Span { src, dst, len }: Span,
        mask: Option<(&ChaCha20HeaderKey, usize)>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        debug_assert!(len > FIRST_CALL);
        let state = ChaChaState::new(&self.key, nonce);
        let mut stream = Keystream::new();
        // SAFETY: AVX-512F is enabled here.
        stream.fill([unsafe { chacha20::keystream16_with(&state, 0, |_| ()) }]);
        let mut poly = Poly1305::new(stream.one_time_key(), Engine::Ifma);
        poly.absorb_padded(aad);
        let chunks = len / CHUNK;
        let mut run = poly.vector_run(chunks);
        // The first call's payload keystream: by pointer, not a slice, as the buffer shows
        // only what was written and a slice's bounds would be a panic path in the kernel
        // object.
        // SAFETY: the call filled sixteen blocks: block 0, then `FIRST_CALL` bytes.
        let keystream = unsafe { stream.bytes().as_ptr().add(BLOCK) };
        // The sample's ciphertext, from the source and the keystream rather than read back
        // from the masked stores about to be made (and before they overwrite the source).
        let sampled = mask
            .filter(|&(_, at)| holds_sample(FIRST_CALL, at))
            .map(|(key, at)| {
                let mut sample = [0; SAMPLE_LEN];
                for (i, out) in sample.iter_mut().enumerate() {
                    // SAFETY: `at + SAMPLE_LEN <= FIRST_CALL < len`: inside the source and
                    // the first call's payload keystream.
                    *out = unsafe { *src.add(at + i) ^ *keystream.add(at + i) };
                }
                (key, sample)
            });
        // The mask's block in the second call's free lane, or by rows beside its rounds.
        let second = (len - FIRST_CALL).div_ceil(BLOCK).min(16);
        let lane = sampled
            .as_ref()
            .filter(|_| lane_takes(second))
            .map(|(key, sample)| key.lane(sample));
        let mut pending = sampled
            .filter(|_| lane.is_none())
            .map(|(key, sample)| key.begin(&sample));
        // SAFETY: the first call's 15 payload blocks, inside both ranges (`len` is longer).
        unsafe { chacha20::xor_with(keystream, src, dst, FIRST_CALL) };
        let mut mask = None;
        let (mut done, mut hashed, mut counter) = (FIRST_CALL, 0, 16u32);
        while done < len {
            let take = (done / CHUNK - hashed).min(10);
            let blocks = (len - done).div_ceil(BLOCK).min(16);
            // The mask's ten double rounds, in the first of these calls.
            let mut header = pending.take();
            let side = |round: usize| {
                if round < take {
                    // SAFETY: chunk `hashed + round` lies before `done`: ciphertext written.
                    run.step(unsafe { chunk_at(dst, hashed + round) });
                }
                if let Some(header) = header.as_mut() {
                    header.double_round();
                }
            };
            let in_lane = lane.as_ref().filter(|_| counter == 16);
            // SAFETY: AVX-512F and AVX-512VL are enabled here.
            let (_, lane_mask) =
                unsafe { fill_with(&mut stream, &state, counter, blocks, in_lane, side) };
            if let Some(header) = header {
                mask = Some(header.finish());
            }
            mask = lane_mask.or(mask);
            hashed += take;
            let bytes = (len - done).min(blocks * BLOCK);
            // SAFETY: `done + bytes <= len`; the buffer holds `blocks` blocks.
            unsafe {
                chacha20::xor_with(stream.bytes().as_ptr(), src.add(done), dst.add(done), bytes)
            };
            done += bytes;
            counter += blocks as u32;
        }
        for chunk in hashed..chunks {
            // SAFETY: all `len` bytes are written.
            run.step(unsafe { chunk_at(dst, chunk) });
        }
        poly.end_run(run);
        // SAFETY: the bytes after the whole chunks, written.
        let text = unsafe { tail(dst, chunks, len) };
        (poly.finish_with(text, &lengths(aad.len(), len)), mask)
    }

    /// Opens a payload of two keystream calls, lying in one piece, with Poly1305 on the vector
    /// units: the second call hashes up to ten chunks of ciphertext in its double rounds, as
    /// [`seal_interleaved`](Self::seal_interleaved) does. Opening in place overwrites the
    /// ciphertext, so each chunk is decrypted only once hashed: those the second call hashes
    /// and the first call's keystream covers right after their steps, the rest after the tag.
    /// Given the header key and the sample (`header`), the mask's block runs in the second
    /// call as the seal's does, and comes back with the tag.
    ///
    /// # Safety
    /// As for [`seal_interleaved`](Self::seal_interleaved); and the span is at most
    /// `2 * FIRST_CALL + BLOCK` bytes long (the second call's sixteen blocks).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512ifma")]
    unsafe fn open_interleaved(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        Span { src, dst, len }: Span,
        header: Option<(&ChaCha20HeaderKey, &[u8; SAMPLE_LEN])>,
    ) -> ([u8; TAG_LEN], Option<[u8; MASK_LEN]>) {
        debug_assert!(len > FIRST_CALL && len <= 2 * FIRST_CALL + BLOCK);
        // The mask's block in the second call's free lane, or by rows beside its rounds.
        let blocks = (len - FIRST_CALL).div_ceil(BLOCK);
        let lane = header
            .filter(|_| lane_takes(blocks))
            .map(|(key, sample)| key.lane(sample));
        let mut header = header
            .filter(|_| lane.is_none())
            .map(|(key, sample)| key.begin(sample));
        let state = ChaChaState::new(&self.key, nonce);
        let mut first = Keystream::new();
        // SAFETY: AVX-512F is enabled here.
        first.fill([unsafe { chacha20::keystream16_with(&state, 0, |_| ()) }]);
        let mut poly = Poly1305::new(first.one_time_key(), Engine::Ifma);
        poly.absorb_padded(aad);
        let chunks = len / CHUNK;
        let mut run = poly.vector_run(chunks);
        let take = chunks.min(10);
        // A chunk hashed here and covered by the first call's keystream is decrypted right
        // after its step, beside the second call's rounds, rather than after the tag.
        let early = take.min(FIRST_CALL / CHUNK);
        let stream = first.bytes().as_ptr();
        let side = |round: usize| {
            if round < take {
                // SAFETY: chunk `round` is inside the source, not yet overwritten.
                run.step(unsafe { chunk_at(src, round) });
            }
            if round < early {
                // SAFETY: chunk `round` is inside both ranges and inside the first call's
                // payload keystream (`early` chunks fit in `FIRST_CALL`); its ciphertext
                // has just been hashed and is not read again.
                unsafe {
                    let at = CHUNK * round;
                    chacha20::xor_with(stream.add(BLOCK + at), src.add(at), dst.add(at), CHUNK);
                }
            }
            if let Some(header) = header.as_mut() {
                header.double_round();
            }
        };
        let mut second = Keystream::new();
        // SAFETY: AVX-512F is enabled here.
        let (_, lane_mask) =
            unsafe { fill_with(&mut second, &state, 16, blocks, lane.as_ref(), side) };
        for chunk in take..chunks {
            // SAFETY: inside the source, not yet overwritten.
            run.step(unsafe { chunk_at(src, chunk) });
        }
        poly.end_run(run);
        // SAFETY: the bytes after the whole chunks, not yet overwritten.
        let text = unsafe { tail(src, chunks, len) };
        let tag = poly.finish_with(text, &lengths(aad.len(), len));
        // SAFETY: both calls' ranges after the chunks decrypted early, inside `len`; each
        // buffer holds its call's blocks.
        unsafe {
            // Pointer arithmetic, not a slice: no panic path for the kernel object.
            let done = CHUNK * early;
            let rest = stream.add(BLOCK + done);
            chacha20::xor_with(rest, src.add(done), dst.add(done), FIRST_CALL - done);
            let (src, dst) = (src.add(FIRST_CALL), dst.add(FIRST_CALL));
            chacha20::xor_with(second.bytes().as_ptr(), src, dst, len - FIRST_CALL);
        }
        (
            tag,
            lane_mask.or_else(|| header.map(|header| header.finish())),
        )
    }
}

/// The payload lengths [`ChaCha20Poly1305Key::open_interleaved`] takes: two keystream
/// calls' worth.
const INTERLEAVED_OPENS: RangeInclusive<usize> = FIRST_CALL + 1..=2 * FIRST_CALL + BLOCK;

/// Payload bytes the first keystream call covers: fifteen blocks after the one-time key's.
const FIRST_CALL: usize = 15 * BLOCK;

/// Bytes of one vector Poly1305 step.
const CHUNK: usize = 16 * VECTOR_LANES;

/// Whole chunk `index` from `text`.
///
/// # Safety
/// `text` must be valid for reads of `CHUNK * (index + 1)` bytes, not written meanwhile.
#[inline(always)]
unsafe fn chunk_at<'a>(text: *const u8, index: usize) -> &'a [[u8; 16]; VECTOR_LANES] {
    // SAFETY: forwarded; the array has alignment 1.
    unsafe { &*text.add(CHUNK * index).cast() }
}

/// The bytes of `len` after `chunks` whole chunks.
///
/// # Safety
/// `text` must be valid for reads of `len` bytes, not written meanwhile.
#[inline(always)]
unsafe fn tail<'a>(text: *const u8, chunks: usize, len: usize) -> &'a [u8] {
    // SAFETY: forwarded.
    unsafe { core::slice::from_raw_parts(text.add(CHUNK * chunks), len - CHUNK * chunks) }
}

/// Fills `stream` with at least `blocks` (at most 16) keystream blocks from `counter` on,
/// calling `side` in each double round; returns how many, and `lane`'s mask where that
/// block ran in the call ([`lane_takes`]). By rows for up to six blocks (on 512-bit
/// registers for three or four, in pairs on 256-bit registers otherwise) or nine to twelve,
/// vertical on 256-bit registers for seven or eight, on 512-bit registers beyond:
/// whichever took least time in a packet on Zen 4, which issues 512-bit instructions as two
/// halves, so that blocks computed and not read cost as much as those read. Five or six
/// blocks as three pairs rather than the vertical eight: 256-byte ChaCha20-Poly1305 seals
/// 345 -> 326 ns, opens 373 -> 356, 1350-byte ones (whose second call has six) 670 -> 651
/// and 721 -> 704; four pairs for seven or eight measured slower than the vertical eight.
/// With a lane block, five to seven blocks go vertical (see [`lane_takes`]).
///
/// # Safety
/// The caller must enable AVX-512F and AVX-512VL.
#[inline(always)]
unsafe fn fill_with(
    stream: &mut Keystream,
    state: &ChaChaState,
    counter: u32,
    blocks: usize,
    lane: Option<&LaneBlock>,
    side: impl FnMut(usize),
) -> (usize, Option<[u8; MASK_LEN]>) {
    let lane = lane.filter(|_| lane_takes(blocks));
    // SAFETY: forwarded.
    unsafe {
        let filled = match blocks.div_ceil(4) {
            1 if blocks <= 2 => {
                let pairs = chacha20::keystream_pairs_with::<1>(state, counter, side);
                stream.fill_halves(pairs.as_flattened())
            }
            1 => stream.fill(chacha20::keystream_with::<1>(state, counter, side)),
            2 if blocks <= 6 && lane.is_none() => {
                let pairs = chacha20::keystream_pairs_with::<3>(state, counter, side);
                stream.fill_halves(pairs.as_flattened())
            }
            2 => {
                let keystream = chacha20::keystream8_with(state, counter, lane, side);
                if lane.is_some() {
                    // Not the lane's block: the buffer holds this nonce's keystream only.
                    let halves = keystream.get(..2 * blocks).unwrap_or_default();
                    return (
                        stream.fill_halves(halves),
                        Some(LaneBlock::mask(&keystream)),
                    );
                }
                stream.fill_halves(&keystream)
            }
            3 => stream.fill(chacha20::keystream_with::<3>(state, counter, side)),
            _ => stream.fill([chacha20::keystream16_with(state, counter, side)]),
        };
        (filled, None)
    }
}

/// Whether a keystream call of `blocks` blocks computes a header mask's block in the free
/// last lane of an eight-block call ([`LaneBlock`]) rather than by rows beside its rounds:
/// five to seven. The mask's chain by rows is as long as the call's own, and its
/// instructions compete with the call's and the hash's for the vector units: on an Intel
/// Xeon with AVX-512 (paired runs, one binary each), opens through `RxFlow` of 1250- to
/// 1400-byte datagrams (a second call of five to seven blocks) took 0.89-0.935x the time
/// and seals through `TxFlow` 0.94-0.965x, GSO batches of 1350-byte datagrams 0.97x; other
/// lengths even. The eight-block call alone took as long as three pairs by rows for six
/// blocks, but 1.19x the time of one row group for four (1200-byte datagrams), which keep
/// the rows. Not measured on Zen 4, where three pairs beat the eight-block call without a
/// mask (see [`fill_with`]).
fn lane_takes(blocks: usize) -> bool {
    (5..=7).contains(&blocks)
}

/// Lanes of a vertical keystream call, and packets per [`ChaCha20Poly1305Key::seal_batch`]
/// round.
const LANES: usize = 16;

/// Most blocks (one-time key's included) of a packet sealed in a group: at most half the
/// lanes, so that a group holds two packets or more; longer packets fill their own calls.
const MAX_GROUPED_BLOCKS: usize = LANES / 2;

/// Most blocks of a packet opened in a group: a third of the lanes, so that a group holds
/// three packets or more. Two packets to a call measured no faster than one call each (the
/// receiver's work to find their nonces ahead eats what the shared call saves).
const MAX_GROUPED_OPEN_BLOCKS: usize = LANES / 3;

/// Keystream blocks a `len`-byte payload needs, the one-time key's included.
pub(super) fn blocks(len: usize) -> usize {
    1 + len.div_ceil(BLOCK)
}

/// How many packets, from the first, of payloads `lens` long, one keystream call of
/// `lanes_in_call` lanes serves: those of at most `max_blocks` blocks whose blocks fit in
/// the lanes, and at least one.
pub(super) fn group_len(
    lens: impl Iterator<Item = usize>,
    lanes_in_call: usize,
    max_blocks: usize,
) -> usize {
    let mut lanes = 0;
    let mut count = 0;
    for len in lens {
        let needed = blocks(len);
        if needed > max_blocks || lanes + needed > lanes_in_call {
            break;
        }
        lanes += needed;
        count += 1;
    }
    count.max(1)
}

/// Each packet's keystream (its one-time key's block, then its payload's) in a group's
/// `keystream`, the packets' payloads `lens` long and laid out lane after lane.
pub(super) fn streams(
    keystream: &Keystream,
    lens: impl Iterator<Item = usize>,
) -> impl Iterator<Item = &[u8]> {
    let mut lane = 0;
    lens.map_while(move |len| {
        let end = lane + blocks(len);
        let stream = keystream.bytes().get(lane * BLOCK..end * BLOCK);
        debug_assert!(stream.is_some(), "group_len keeps a group within the lanes");
        lane = end;
        stream
    })
}

/// Fewest packets worth hashing side by side: a step costs the same for any number of
/// lanes, and with fewer the scalar code's runs of four blocks measured faster (two
/// 448-byte packets: 448 -> 638 ns a packet side by side; three 256-byte ones even).
const MIN_SIDE_BY_SIDE: usize = 4;

/// Keystream kept across a batch's groups, packet after packet, in whole blocks: only what
/// is stored is written (no clearing of the whole store first) and wiped when dropped.
struct StreamStore {
    blocks: [MaybeUninit<[u8; BLOCK]>; LANES * MAX_GROUPED_OPEN_BLOCKS],
    len: usize,
}

impl StreamStore {
    fn new() -> StreamStore {
        // Only `len` is stored, as in `Keystream::new`: a struct literal became a 5 KB memset.
        let mut store = MaybeUninit::<StreamStore>::uninit();
        // SAFETY: `len` is written before `assume_init`; `blocks` are `MaybeUninit`, so
        // leaving them uninitialised is valid.
        unsafe {
            ptr::addr_of_mut!((*store.as_mut_ptr()).len).write(0);
            store.assume_init()
        }
    }

    /// Appends `stream`, whole blocks; which blocks it went to, or `None` if it does not fit.
    fn push(&mut self, stream: &[u8]) -> Option<(usize, usize)> {
        let (blocks, rest) = stream.as_chunks::<BLOCK>();
        debug_assert!(rest.is_empty(), "a keystream comes in whole blocks");
        let end = self.len.checked_add(blocks.len())?;
        let slots = self.blocks.get_mut(self.len..end)?;
        for (slot, block) in slots.iter_mut().zip(blocks) {
            slot.write(*block);
        }
        let range = (self.len, end);
        self.len = end;
        Some(range)
    }

    /// The bytes of the blocks `push` stored at `range`.
    fn get(&self, (start, end): (usize, usize)) -> &[u8] {
        match self.blocks.get(start..end.min(self.len)) {
            // SAFETY: blocks below `len` were written by `push`; `MaybeUninit<T>` has `T`'s
            // layout.
            Some(blocks) => unsafe {
                core::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), blocks.len() * BLOCK)
            },
            None => &[],
        }
    }
}

impl Drop for StreamStore {
    fn drop(&mut self) {
        for block in &mut self.blocks[..self.len] {
            // SAFETY: a whole 64-byte block, writable; a volatile write is not optimised away.
            unsafe { ptr::write_volatile(block.as_mut_ptr(), [0; BLOCK]) };
        }
    }
}

/// A group's packets for their Poly1305s side by side: each one's keystream (the one-time
/// key's block first), AAD and ciphertext.
struct Group<'a> {
    streams: heapless::Vec<&'a [u8], LANES>,
    aads: heapless::Vec<&'a [u8], LANES>,
    texts: heapless::Vec<&'a [u8], LANES>,
}

impl<'a> Group<'a> {
    fn new() -> Group<'a> {
        Group {
            streams: heapless::Vec::new(),
            aads: heapless::Vec::new(),
            texts: heapless::Vec::new(),
        }
    }

    /// Adds a packet; a group holds as many as the keystream call's lanes.
    fn push(&mut self, stream: &'a [u8], aad: &'a [u8], text: &'a [u8]) {
        let pushed = self.streams.push(stream).is_ok()
            && self.aads.push(aad).is_ok()
            && self.texts.push(text).is_ok();
        debug_assert!(pushed, "a group holds at most one packet per lane");
    }

    /// The packets' tags, in runs of up to eight of equal lengths side by side (runs of fewer
    /// than [`MIN_SIDE_BY_SIDE`] one by one).
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA.
    #[target_feature(enable = "avx512f,avx512ifma")]
    unsafe fn tags(&self, tags: &mut [[u8; TAG_LEN]]) {
        // Pushed, not collected: `collect` into a `heapless::Vec` panics past its capacity,
        // and the kernel object must keep no panic path the compiler cannot see past.
        let mut keys: heapless::Vec<&[u8; 32], LANES> = heapless::Vec::new();
        for stream in &self.streams {
            let _ = keys.push(stream.first_chunk::<32>().unwrap_or(&[0; 32]));
        }
        let mut first = 0;
        while let (Some(aad), Some(text)) = (self.aads.get(first), self.texts.get(first)) {
            let same = |k: &usize| {
                self.aads.get(*k).is_some_and(|a| a.len() == aad.len())
                    && self.texts.get(*k).is_some_and(|t| t.len() == text.len())
            };
            let run = (first..self.texts.len())
                .take(VECTOR_LANES)
                .take_while(same)
                .count();
            let range = first..first + run;
            let (Some(keys), Some(aads), Some(texts), Some(tags)) = (
                keys.get(range.clone()),
                self.aads.get(range.clone()),
                self.texts.get(range.clone()),
                tags.get_mut(range),
            ) else {
                return;
            };
            let lengths = lengths(aad.len(), text.len());
            if run >= MIN_SIDE_BY_SIDE {
                tags_side_by_side(keys, aads, texts, &lengths, tags);
            } else {
                for (((key, aad), text), tag) in keys.iter().zip(aads).zip(texts).zip(tags) {
                    let mut poly = Poly1305::new(key, Engine::Ifma);
                    poly.absorb_padded(aad);
                    poly.absorb(text);
                    poly.pad();
                    *tag = poly.finish(&lengths);
                }
            }
            first += run;
        }
    }
}

/// A header-protection mask's ChaCha20 block in progress, advanced a double round at a
/// time beside other work ([`seal_with_mask_beside_hash`]).
pub(super) trait PendingBlock {
    /// One of the block's ten double rounds.
    ///
    /// # Safety
    /// The CPU must have what the header key's width needs.
    unsafe fn double_round(&mut self);

    /// The mask, after the ten double rounds.
    ///
    /// # Safety
    /// As for [`double_round`](Self::double_round).
    unsafe fn finish(self) -> [u8; MASK_LEN];
}

/// Seals a payload lying in one piece, and its header-protection mask: the mask's block, a
/// chain of its own once the sample's ciphertext is written, runs a double round at a time
/// between pieces of the Poly1305 work (at most nine) rather than after the tag. The two
/// then run side by side (on Zen 3 with AVX2, 64- to 470-byte datagrams sealed through
/// `TxFlow` in 0.85-0.89x the time of the tag first); in program order one after the
/// other, the mask's rounds did not start until the hash's instructions had nearly all
/// retired.
///
/// # Safety
/// As for [`Span`]; the sample (at `sample_at`) lies inside it; the CPU must have what
/// `cipher`, `engine` and `begin`'s block need.
#[inline(always)]
pub(super) unsafe fn seal_with_mask_beside_hash<M: PendingBlock>(
    mut cipher: impl PacketCipher,
    begin: impl FnOnce(&[u8; SAMPLE_LEN]) -> M,
    engine: Engine,
    aad: &[u8],
    Span { src, dst, len }: Span,
    sample_at: usize,
) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
    debug_assert!(sample_at + SAMPLE_LEN <= len);
    let poly = Poly1305::new(cipher.one_time_key(), engine);
    // SAFETY: for all that follows, forwarded; the whole payload, then the sample inside the
    // written destination, then the written destination.
    unsafe {
        cipher.update(src, dst, len);
        let mut header = begin(&*dst.add(sample_at).cast::<[u8; SAMPLE_LEN]>());
        let text = core::slice::from_raw_parts(dst, len);
        // The AAD with the first double round, then the ciphertext in up to nine pieces of
        // whole 64-byte runs (the scalar code's four blocks), one with each of the others,
        // and the tag with the next: its last multiplication and reduction run beside the
        // rounds still to come rather than after the last.
        let piece = len.div_ceil(9).next_multiple_of(BLOCK).max(BLOCK);
        let mut pieces = text.chunks(piece);
        let mut poly = Some(poly);
        let mut tag = None;
        header.double_round();
        if let Some(poly) = &mut poly {
            poly.absorb_padded(aad);
        }
        for _ in 1..10 {
            header.double_round();
            match (pieces.next(), &mut poly) {
                (Some(piece), Some(poly)) => poly.absorb(piece),
                _ => {
                    if let Some(mut poly) = poly.take() {
                        poly.pad();
                        tag = Some(poly.finish(&lengths(aad.len(), len)));
                    }
                }
            }
        }
        // Nine pieces leave no round for the tag.
        let tag = tag.unwrap_or_else(|| {
            poly.map(|mut poly| {
                poly.pad();
                poly.finish(&lengths(aad.len(), len))
            })
            .unwrap_or_default()
        });
        (tag, header.finish())
    }
}

/// Poly1305's last block: the AAD's and the text's lengths, little-endian.
pub(super) fn lengths(aad_len: usize, text_len: usize) -> [u8; 16] {
    let mut lengths = [0; 16];
    lengths[..8].copy_from_slice(&(aad_len as u64).to_le_bytes());
    lengths[8..].copy_from_slice(&(text_len as u64).to_le_bytes());
    lengths
}

/// Hashes the AAD and the ciphertext, each padded: the destination's bytes once sealed, the
/// source's when opening.
pub(super) fn hash_text(
    poly: &mut Poly1305,
    aad: &[u8],
    payload: &mut Payload<'_, '_, '_, '_>,
    sealed: bool,
) {
    poly.absorb_padded(aad);
    match payload {
        Payload::InPlace(data) => poly.absorb(data),
        Payload::Copy {
            src,
            src_at,
            dst,
            dst_at,
            len,
        } => {
            let walked = if sealed {
                dst.for_each_chunk_mut(*dst_at, *len, |chunk| poly.absorb(chunk))
            } else {
                src.for_each_chunk(*src_at, *len, |chunk| poly.absorb(chunk))
            };
            debug_assert!(walked, "the core checked both buffers' lengths");
        }
    }
    poly.pad();
}

/// A packet's keystream as [`two_passes`] walks it.
pub(super) trait PacketCipher {
    /// The one-time Poly1305 key: the first 32 bytes of block 0.
    fn one_time_key(&self) -> &[u8; 32];

    /// Transforms the payload's next `len` bytes from `src` to `dst`.
    ///
    /// # Safety
    /// `src` must be valid for reads and `dst` for writes of `len` bytes, the same bytes or
    /// disjoint; the CPU must have what the cipher needs.
    unsafe fn update(&mut self, src: *const u8, dst: *mut u8, len: usize);
}

/// The cipher over the payload, then Poly1305 over the ciphertext on `engine`, each a simple
/// loop; the ciphertext is read back from the cache when sealing. Opening in place must
/// hash the ciphertext before it is overwritten, so there the hash goes first.
///
/// # Safety
/// The CPU must have what `cipher` and `engine` need.
#[inline(always)]
pub(super) unsafe fn two_passes(
    mut cipher: impl PacketCipher,
    engine: Engine,
    aad: &[u8],
    payload: &mut Payload<'_, '_, '_, '_>,
    seal: bool,
) -> [u8; TAG_LEN] {
    let mut poly = Poly1305::new(cipher.one_time_key(), engine);
    let hash_first = !seal && matches!(payload, Payload::InPlace(_));
    if hash_first {
        hash_text(&mut poly, aad, payload, false);
    }
    // SAFETY: `walk` hands over ranges valid for `update`, the same or disjoint; the caller
    // promises the CPU.
    walk(payload, |src, dst, len| unsafe {
        cipher.update(src, dst, len)
    });
    if !hash_first {
        hash_text(&mut poly, aad, payload, seal);
    }
    poly.finish(&lengths(aad.len(), payload.len()))
}

/// One packet's keystream in progress, walked in the pieces the payload's segments make.
struct Cipher {
    state: ChaChaState,
    /// The block counter of the next keystream block to compute.
    counter: u32,
    /// Keystream computed ahead: block 0 and the payload's first blocks, or later a block that
    /// straddles two pieces of the payload ...
    buffer: Keystream,
    /// ... its bytes used ...
    used: usize,
    /// ... and its bytes computed.
    filled: usize,
    /// Payload bytes not yet seen.
    remaining: usize,
}

impl Cipher {
    /// Starts the keystream of a `len`-byte payload: block 0 (the one-time key) and as many
    /// of the payload's first blocks as share its keystream call, up to 15.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    fn new(state: ChaChaState, len: usize) -> Cipher {
        let mut buffer = Keystream::new();
        // SAFETY: AVX-512F and AVX-512VL are enabled here.
        let (blocks, _) = unsafe {
            fill_with(
                &mut buffer,
                &state,
                0,
                1 + len.div_ceil(BLOCK),
                None,
                |_| (),
            )
        };
        Cipher {
            state,
            counter: blocks as u32,
            buffer,
            used: BLOCK,
            filled: blocks * BLOCK,
            remaining: len,
        }
    }

    /// [`PacketCipher::update`]; `len` is at most `self.remaining`.
    ///
    /// # Safety
    /// As there; the CPU has AVX-512F, AVX-512BW and AVX-512VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn transform(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        debug_assert!(len <= self.remaining);
        // SAFETY: forwarded.
        let mut done = unsafe { self.xor_buffered(src, dst, len) };
        self.remaining -= len;
        let rest = len - done;
        // Only the payload's last piece may end inside a block.
        let bulk = if self.remaining == 0 {
            rest
        } else {
            rest - rest % BLOCK
        };
        if bulk > 0 {
            // SAFETY: `done + bulk <= len`: inside the caller's ranges.
            self.counter = unsafe {
                chacha20::xor(
                    &self.state,
                    self.counter,
                    src.add(done),
                    dst.add(done),
                    bulk,
                )
            };
            done += bulk;
        }
        if done < len {
            // A block that the next piece finishes, computed with the three after it.
            let blocks = self
                .buffer
                .fill(chacha20::keystream::<1>(&self.state, self.counter));
            self.counter = self.counter.wrapping_add(blocks as u32);
            (self.used, self.filled) = (0, blocks * BLOCK);
            // SAFETY: `done < len`, inside the caller's ranges.
            let more = unsafe { self.xor_buffered(src.add(done), dst.add(done), len - done) };
            debug_assert_eq!(done + more, len);
        }
    }

    /// XORs up to `len` bytes with the buffer's unused keystream; returns how many.
    ///
    /// # Safety
    /// As for [`update`](Self::update).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn xor_buffered(&mut self, src: *const u8, dst: *mut u8, len: usize) -> usize {
        let take = (self.filled - self.used).min(len);
        // `get`, not indexing: `used + take <= filled <= 1024` holds, but the kernel object
        // must keep no panic path the compiler cannot see past.
        let Some(keystream) = self.buffer.bytes().get(self.used..self.used + take) else {
            return 0;
        };
        // SAFETY: `take <= len`: inside the caller's ranges; the keystream slice holds
        // `take` bytes.
        unsafe { chacha20::xor_with(keystream.as_ptr(), src, dst, take) };
        self.used += take;
        take
    }
}

impl PacketCipher for Cipher {
    fn one_time_key(&self) -> &[u8; 32] {
        self.buffer.one_time_key()
    }

    #[inline(always)]
    unsafe fn update(&mut self, src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: forwarded; a `Cipher` is only made on a CPU with AVX-512.
        unsafe { self.transform(src, dst, len) }
    }
}

/// Up to 16 keystream blocks kept in memory, as 32-byte halves (the first is the one-time
/// key), wiped with whole-half stores when dropped: only the halves ever written, as a short
/// packet fills four blocks of the sixteen and wiping all 1 KB cost it about a tenth of its
/// time. For the same reason the buffer starts uninitialised, and only the halves written
/// so far can be read: clearing 1 KB first cost a 1350-byte ChaCha20-Poly1305 seal 10 ns,
/// an open (two buffers) 23 ns, on Zen 4.
#[repr(C, align(64))]
pub(super) struct Keystream {
    halves: [MaybeUninit<[u8; 32]>; HALVES],
    /// Halves from the start that have held keystream: initialised.
    written: usize,
}

/// 32-byte halves in a [`Keystream`]: sixteen blocks.
const HALVES: usize = 32;

impl Keystream {
    pub(super) fn new() -> Keystream {
        // Only `written` is stored: built as a struct literal, the compiler merged the
        // uninitialised halves with that store into a 1 KB memset of zeros.
        let mut stream = MaybeUninit::<Keystream>::uninit();
        // SAFETY: `written` is written before `assume_init`; `halves` is `MaybeUninit`, so
        // leaving it uninitialised is valid.
        unsafe {
            ptr::addr_of_mut!((*stream.as_mut_ptr()).written).write(0);
            stream.assume_init()
        }
    }

    /// Stores `N` groups of `M` blocks from the start; returns how many blocks that was.
    #[inline(always)]
    fn fill<const N: usize, const M: usize>(&mut self, groups: [[__m512i; M]; N]) -> usize {
        let blocks = (N * M).min(HALVES / 2);
        for (i, block) in groups.iter().flatten().enumerate().take(blocks) {
            // SAFETY: at most 16 blocks of 64 bytes: inside the buffer. The intrinsic needs
            // AVX-512F, which every caller enables.
            unsafe { _mm512_storeu_si512(self.halves.as_mut_ptr().add(2 * i).cast(), *block) };
        }
        self.written = self.written.max(2 * blocks);
        blocks
    }

    /// Stores blocks (at most 16) given as 32-byte halves, in order, from the start;
    /// returns how many blocks that was.
    #[inline(always)]
    pub(super) fn fill_halves(&mut self, halves: &[__m256i]) -> usize {
        let count = halves.len().min(HALVES);
        for (i, half) in halves.iter().enumerate().take(count) {
            // SAFETY: at most 32 halves of 32 bytes: inside the buffer. The intrinsic needs
            // AVX, which every caller enables.
            unsafe { _mm256_storeu_si256(self.halves.as_mut_ptr().add(i).cast(), *half) };
        }
        self.written = self.written.max(count);
        count / 2
    }

    /// The keystream written so far, from the start.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: the first `written` halves (at most all of them) are initialised;
        // `MaybeUninit<[u8; 32]>` has the layout of `[u8; 32]`.
        unsafe { core::slice::from_raw_parts(self.halves.as_ptr().cast::<u8>(), 32 * self.written) }
    }

    /// The one-time Poly1305 key, where the buffer starts at block 0: its first 32 bytes
    /// (zeros before anything is written, which no caller asks for).
    pub(super) fn one_time_key(&self) -> &[u8; 32] {
        self.bytes().first_chunk::<32>().unwrap_or(&[0; 32])
    }
}

impl Drop for Keystream {
    fn drop(&mut self) {
        // `take`, not a range: no panic path for the kernel object.
        for half in self.halves.iter_mut().take(self.written) {
            // SAFETY: a whole 32-byte half, writable; a volatile write is not optimised away.
            unsafe { ptr::write_volatile(half.as_mut_ptr(), [0; 32]) };
        }
    }
}
