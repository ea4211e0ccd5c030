//! Packets laid out at fixed strides ([`StridedPackets`]), as a sender lays out a GSO batch,
//! sealed with header protection applied, headers and tags written by the backend
//! ([`PacketKey::seal_strided`]); and the way every backend can do it, through
//! [`PacketKey::seal_batch`] ([`seal_strided_batches`]).

use super::{
    BatchBuffers, HeaderKey, MASK_LEN, NONCE_LEN, PacketKey, SAMPLE_LEN, SealJob, Sealed, TAG_LEN,
};
use crate::packet_number::MAX_PN_LEN;
use crate::protect::{self, SEAL_BATCH};
use crate::sg::{SgDestination, SgSource, copy_bytes};

/// Where the packets of a [`StridedPackets`] lie: each in one piece at a fixed stride from the
/// next, all with one header length and one payload length. Packet k's cleartext short header
/// (its AAD) is the `header_len` bytes at `k * src_stride` in the source, its payload the
/// `payload_len` bytes after it; sealed, its protected header, ciphertext and tag take the
/// same places from `k * dst_stride` in the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StridedLayout {
    /// From a packet's first byte in the source to the next one's.
    pub src_stride: usize,
    /// From a packet's first byte in the destination to the next one's.
    pub dst_stride: usize,
    /// Bytes of short header, the packet number's included.
    pub header_len: usize,
    /// Where the packet number starts in the header.
    pub pn_offset: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl StridedLayout {
    /// Where packet `k`'s payload starts in the source and in the destination, for a packet
    /// [`StridedPackets::holds`] admitted (past those, the positions wrap rather than panic,
    /// and mean nothing).
    #[inline]
    pub fn payload_at(self, k: usize) -> (usize, usize) {
        (
            k.wrapping_mul(self.src_stride)
                .wrapping_add(self.header_len),
            k.wrapping_mul(self.dst_stride)
                .wrapping_add(self.header_len),
        )
    }

    /// Packet `k`'s cleartext header, its AAD, in `src` (empty where `src` does not hold it).
    #[inline]
    pub fn header(self, src: &[u8], k: usize) -> &[u8] {
        k.checked_mul(self.src_stride)
            .and_then(|at| src.get(at..at.checked_add(self.header_len)?))
            .unwrap_or_default()
    }

    /// Where each packet's header-protection sample starts, from its payload's first byte
    /// (RFC 9001 §5.4.2).
    #[inline]
    pub fn sample_at(self) -> usize {
        protect::sample_at(self.pn_offset, self.header_len)
    }
}

/// Packets to seal laid out as [`StridedLayout`] says in one source and one destination: a GSO
/// batch's lone 1-RTT packets as a sender lays them out.
#[derive(Debug)]
pub struct StridedPackets<'s, 'd> {
    /// The packets' cleartext.
    pub src: &'s [u8],
    /// Where the sealed packets go.
    pub dst: &'d mut [u8],
    /// Where each packet lies in them.
    pub layout: StridedLayout,
}

impl StridedPackets<'_, '_> {
    /// True when the buffers hold `count` packets, none running into the next, each with a
    /// short header's shape (a first byte, then anything, then a packet number of one to four
    /// bytes that ends the header) and its sample inside its sealed packet: what
    /// [`PacketKey::seal_strided`] checks before it writes anything.
    #[inline]
    pub fn holds(&self, count: usize) -> bool {
        let Some(last) = count.checked_sub(1) else {
            return true;
        };
        let layout = self.layout;
        let packet_len = layout.header_len.saturating_add(layout.payload_len);
        let fits = |stride: usize, len: usize, buffer_len: usize| {
            (last == 0 || stride >= len)
                && last
                    .checked_mul(stride)
                    .and_then(|start| start.checked_add(len))
                    .is_some_and(|end| end <= buffer_len)
        };
        let pn_len = layout.header_len.checked_sub(layout.pn_offset);
        layout.pn_offset > 0
            && pn_len.is_some_and(|pn_len| (1..=MAX_PN_LEN).contains(&pn_len))
            && layout.sample_at() <= layout.payload_len
            && fits(layout.src_stride, packet_len, self.src.len())
            && fits(
                layout.dst_stride,
                packet_len.saturating_add(TAG_LEN),
                self.dst.len(),
            )
    }

    /// Packet `k`'s header-protection sample once its payload is sealed into the destination
    /// and `tag` is its tag: the ciphertext from the sample's start, then the tag where the
    /// payload ends first. For a packet [`holds`](Self::holds) admitted.
    pub fn sample(&self, k: usize, tag: &[u8; TAG_LEN]) -> [u8; SAMPLE_LEN] {
        let layout = self.layout;
        let mut sample = [0; SAMPLE_LEN];
        let ciphertext = k
            .checked_mul(layout.dst_stride)
            .and_then(|at| {
                let payload = self.dst.get(at.checked_add(layout.header_len)?..)?;
                payload.get(..layout.payload_len)?.get(layout.sample_at()..)
            })
            .unwrap_or_default();
        let from_payload = ciphertext.len().min(SAMPLE_LEN);
        let (head, rest) = sample.split_at_mut(from_payload);
        copy_bytes(head, ciphertext.get(..from_payload).unwrap_or_default());
        copy_bytes(rest, tag.get(..rest.len()).unwrap_or_default());
        sample
    }

    /// Writes packet `k`'s tag after its ciphertext and its header, protected with its mask,
    /// before it: the rest of sealing it once the payload is sealed. False, with nothing
    /// written, for a packet the buffers do not hold (which [`holds`](Self::holds) rules
    /// out).
    #[inline]
    pub fn finish(&mut self, k: usize, sealed: &Sealed) -> bool {
        let layout = self.layout;
        let header = layout.header(self.src, k);
        let sealed_len = layout
            .header_len
            .checked_add(layout.payload_len)
            .and_then(|len| len.checked_add(TAG_LEN));
        let out = k
            .checked_mul(layout.dst_stride)
            .zip(sealed_len)
            .and_then(|(at, len)| self.dst.get_mut(at..)?.get_mut(..len));
        let Some((head, rest)) = out.and_then(|out| out.split_at_mut_checked(layout.header_len))
        else {
            return false;
        };
        let Some(tag) = rest.get_mut(layout.payload_len..) else {
            return false;
        };
        if header.len() != head.len() {
            return false;
        }
        copy_bytes(tag, &sealed.tag);
        protect::write_header_protected(head, header, layout.pn_offset, &sealed.mask)
    }
}

/// [`PacketKey::seal_strided`] through [`PacketKey::seal_batch`], 16 packets at
/// a time, each packet's tag and protected header written from its results: its default, and
/// what a backend that seals some strided batches its own way does for the others.
pub fn seal_strided_batches(
    key: &(impl PacketKey + ?Sized),
    header_key: &impl HeaderKey,
    mut packets: StridedPackets<'_, '_>,
    nonces: &[[u8; NONCE_LEN]],
) -> bool {
    if !packets.holds(nonces.len()) {
        return false;
    }
    let layout = packets.layout;
    for (chunk, chunk_nonces) in nonces.chunks(SEAL_BATCH).enumerate() {
        let first = chunk * SEAL_BATCH;
        let src = packets.src;
        let jobs: [SealJob<'_>; SEAL_BATCH] = core::array::from_fn(|k| {
            // Slots past the chunk repeat its last packet: built, not handed over.
            let k = k.min(chunk_nonces.len().saturating_sub(1));
            let (src_at, dst_at) = layout.payload_at(first + k);
            SealJob {
                nonce: chunk_nonces.get(k).copied().unwrap_or_default(),
                aad: layout.header(src, first + k),
                sample_at: layout.sample_at(),
                src_at,
                dst_at,
                len: layout.payload_len,
            }
        });
        let jobs = jobs.get(..chunk_nonces.len()).unwrap_or_default();
        let mut sealed = [Sealed {
            tag: [0; TAG_LEN],
            mask: [0; MASK_LEN],
        }; SEAL_BATCH];
        {
            let sources = [src];
            let source = SgSource::new(&sources);
            let mut pieces = [&mut *packets.dst];
            let mut destination = SgDestination::new(&mut pieces);
            let mut buffers = BatchBuffers::Copy {
                src: &source,
                dst: &mut destination,
            };
            key.seal_batch(header_key, &mut buffers, jobs, &mut sealed);
        }
        for (k, sealed) in sealed.iter().enumerate().take(jobs.len()) {
            let finished = packets.finish(first + k, sealed);
            debug_assert!(finished, "the buffers hold every packet");
        }
    }
    true
}
