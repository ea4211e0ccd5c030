//! ChaCha20 header protection (RFC 9001 §5.4.4) on AVX-512: the mask is the first five bytes
//! of one ChaCha20 block whose counter and nonce are the sample. One block is a chain of 20
//! dependent rounds, so a batch's masks are computed sixteen at a time, one sample in each
//! 32-bit lane, for about the time of one.

use core::arch::x86_64::*;

use zeroize::Zeroizing;

use super::chacha20::{self, ChaChaState, KeyWords, LaneBlock};
use super::chacha20_poly1305::PendingBlock;
use crate::Error;
use crate::backend::{HeaderKey, MASK_LEN, SAMPLE_LEN};

/// Fewest samples worth a sixteen-lane call: below, one block each (the row layout, about
/// two thirds of the time) costs less.
const MIN_LANES: usize = 3;

/// A ChaCha20 header-protection key.
#[derive(Clone)]
pub(in crate::backend) struct ChaCha20HeaderKey {
    key: Zeroizing<[u8; 32]>,
}

impl ChaCha20HeaderKey {
    /// Wraps a 32-byte key; fails on a CPU without AVX-512.
    pub(in crate::backend) fn new(key: &[u8]) -> Result<ChaCha20HeaderKey, Error> {
        Ok(ChaCha20HeaderKey {
            key: chacha20::avx512_key(key)?,
        })
    }

    /// One mask: its block alone, by rows in 128-bit registers. Four blocks' rows in 512-bit
    /// registers take the same chain and, on a CPU that issues 512-bit instructions as two
    /// halves (Zen 4), four times the issue for the three blocks no one reads.
    #[target_feature(enable = "avx512f,avx512vl")]
    fn one(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        let mut mask = self.begin(sample);
        for _ in 0..10 {
            mask.double_round();
        }
        mask.finish()
    }

    /// Up to sixteen masks from one call.
    #[target_feature(enable = "avx512f")]
    fn sixteen(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        // Word w of every sample, lane by lane; lanes past the samples stay zero.
        let mut words = [[0u32; 16]; 4];
        for (lane, sample) in samples.iter().enumerate().take(16) {
            for (w, bytes) in sample.chunks_exact(4).enumerate() {
                words[w][lane] = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
        // SAFETY: each array holds 16 words: one 64-byte load.
        let [counters, n0, n1, n2] =
            words.map(|w| unsafe { _mm512_loadu_si512(w.as_ptr().cast()) });
        let x = chacha20::vertical(&KeyWords::new(&self.key), counters, [n0, n1, n2]);
        // The mask is words 0 and (its first byte) 1 of each block.
        let mut first = Zeroizing::new([[0u32; 16]; 2]);
        // SAFETY: each array holds 16 words: one 64-byte store.
        unsafe {
            _mm512_storeu_si512(first[0].as_mut_ptr().cast(), x[0]);
            _mm512_storeu_si512(first[1].as_mut_ptr().cast(), x[1]);
        }
        for (lane, mask) in masks.iter_mut().enumerate().take(samples.len().min(16)) {
            mask[..4].copy_from_slice(&first[0][lane].to_le_bytes());
            mask[4] = first[1][lane] as u8;
        }
    }
}

impl ChaCha20HeaderKey {
    /// Starts the mask of `sample` as one block in four 128-bit rows, for a caller that
    /// advances it a double round at a time beside other work: the packet key's second
    /// keystream call, which does not wait for it (nor it for the call).
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn begin(&self, sample: &[u8; SAMPLE_LEN]) -> PendingMask {
        let (counter, nonce) = split(sample);
        let start = chacha20::Row4::start(&ChaChaState::new(&self.key, &nonce), counter);
        PendingMask { rows: start, start }
    }

    /// The mask of `sample` as a block for the free last lane of an eight-block keystream
    /// call ([`LaneBlock`]).
    #[inline]
    pub(super) fn lane(&self, sample: &[u8; SAMPLE_LEN]) -> LaneBlock {
        let (counter, nonce) = split(sample);
        LaneBlock::new(KeyWords::new(&self.key), counter, &nonce)
    }
}

/// A header-protection mask in progress ([`ChaCha20HeaderKey::begin`]).
pub(super) struct PendingMask {
    rows: chacha20::Row4,
    start: chacha20::Row4,
}

impl PendingMask {
    /// One of the block's ten double rounds.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn double_round(&mut self) {
        self.rows.double_round();
    }

    /// The mask, once the ten double rounds are done.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) fn finish(self) -> [u8; MASK_LEN] {
        let first = self.rows.first_word_pair(&self.start);
        let mut mask = [0; MASK_LEN];
        mask.copy_from_slice(&first.to_le_bytes()[..MASK_LEN]);
        mask
    }
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

/// The block counter (the sample's first four bytes, little-endian) and the nonce (the rest).
pub(super) fn split(sample: &[u8; SAMPLE_LEN]) -> (u32, [u8; 12]) {
    let counter = u32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]);
    let mut nonce = [0; 12];
    nonce.copy_from_slice(&sample[4..]);
    (counter, nonce)
}

impl HeaderKey for ChaCha20HeaderKey {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        // SAFETY: the key exists, so the CPU has AVX-512.
        unsafe { self.one(sample) }
    }

    fn batches_masks(&self) -> bool {
        true
    }

    fn masks(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        for (samples, masks) in samples.chunks(16).zip(masks.chunks_mut(16)) {
            if samples.len() < MIN_LANES {
                for (sample, mask) in samples.iter().zip(masks) {
                    *mask = self.mask(sample);
                }
            } else {
                // SAFETY: as for `mask`.
                unsafe { self.sixteen(samples, masks) }
            }
        }
    }
}
