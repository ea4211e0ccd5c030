//! Batches: UDP GSO on the sending side, GRO on the receiving side.
//!
//! GSO with tag accounting: the sender lays its cleartext packets out at a stride of
//! `gso_size - 16` and names the `gso_size` the wire will see; sealing adds each packet's tag,
//! so every protected packet but the last comes out exactly `gso_size` bytes long, ready for
//! one `UDP_SEGMENT` send. GRO: the kernel hands over datagrams coalesced at a segment size;
//! each is opened on its own. Either way one bad datagram gets its own error and the others go
//! on.

use crate::backend::{Backend, BatchBuffers, SAMPLE_LEN, TAG_LEN};
use crate::flow::{Batch, Outcome};
use crate::packet_number::MAX_PN_LEN;
use crate::protect::SEAL_BATCH;
use crate::sg::{SgDestination, SgSource};
use crate::tx::Segment;
use crate::{Error, RxFlow, TxFlow};

/// The shape of a GSO batch, computed here once so that every shim sizes its buffers and
/// result slices from the core's arithmetic instead of its own.
///
/// ```
/// use quicseal::GsoLayout;
///
/// // Two full 100-byte datagrams and a 46-byte one, from 198 bytes of cleartext.
/// let layout = GsoLayout::new(84 + 84 + 30, 100, 64)?;
/// assert_eq!((layout.segments, layout.cleartext_stride, layout.sealed_len), (3, 84, 246));
/// # Ok::<(), quicseal::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GsoLayout {
    /// Datagrams in the batch.
    pub segments: usize,
    /// Bytes of cleartext per datagram: `gso_size` less the tag sealing adds.
    pub cleartext_stride: usize,
    /// Bytes of the sealed batch: the cleartext and one tag per datagram.
    pub sealed_len: usize,
}

impl GsoLayout {
    /// Smallest `gso_size` a flow whose connection IDs are `dcid_len` bytes accepts: a short
    /// header with the longest packet number, a header-protection sample and a tag.
    pub const fn min_gso_size(dcid_len: usize) -> usize {
        1 + dcid_len + MAX_PN_LEN + SAMPLE_LEN + TAG_LEN
    }

    /// The layout of `cleartext_len` bytes of cleartext sealed at `gso_size` (tag included),
    /// for a sender that takes at most `max_segments` datagrams in one batch. Fails with
    /// [`Error::GsoSizeTooSmall`] when `gso_size` leaves no room beside the tag and
    /// [`Error::TooManySegments`] past `max_segments`. A flow also refuses a `gso_size` below
    /// its [`TxFlow::min_gso_size`]; [`TxFlow::gso_layout`] checks both.
    pub const fn new(
        cleartext_len: usize,
        gso_size: usize,
        max_segments: usize,
    ) -> Result<GsoLayout, Error> {
        if gso_size <= TAG_LEN {
            return Err(Error::GsoSizeTooSmall);
        }
        let cleartext_stride = gso_size - TAG_LEN;
        let segments = cleartext_len.div_ceil(cleartext_stride);
        if segments > max_segments {
            return Err(Error::TooManySegments);
        }
        Ok(GsoLayout {
            segments,
            cleartext_stride,
            sealed_len: cleartext_len + segments * TAG_LEN,
        })
    }

    /// The layout a flow whose connection IDs are `dcid_len` bytes, taking at most
    /// `max_segments` datagrams a batch, gives `cleartext_len` bytes at `gso_size`, or why it
    /// refuses the batch whole: [`new`](Self::new)'s checks and [`min_gso_size`](Self::min_gso_size).
    /// What [`TxFlow::gso_layout`] answers, for callers that size buffers without the flow
    /// at hand (a host laying out a NIC's window).
    pub const fn for_flow(
        cleartext_len: usize,
        gso_size: usize,
        dcid_len: usize,
        max_segments: usize,
    ) -> Result<GsoLayout, Error> {
        if gso_size < Self::min_gso_size(dcid_len) {
            return Err(Error::GsoSizeTooSmall);
        }
        GsoLayout::new(cleartext_len, gso_size, max_segments)
    }

    /// [`for_flow`](Self::for_flow)'s layout, if `dst_len` bytes hold the sealed batch and
    /// `outcomes` slots its datagrams' outcomes: everything [`TxFlow::seal_gso`] checks
    /// before it seals any of a batch, so that an engine without the flow at hand (a host
    /// posting the batch to a NIC, [`crate::engine`]) refuses the same batches.
    pub fn for_batch(
        cleartext_len: usize,
        gso_size: usize,
        dcid_len: usize,
        max_segments: usize,
        dst_len: usize,
        outcomes: usize,
    ) -> Result<GsoLayout, Error> {
        let layout = GsoLayout::for_flow(cleartext_len, gso_size, dcid_len, max_segments)?;
        if layout.segments > outcomes || dst_len < layout.sealed_len {
            return Err(Error::BufferTooSmall);
        }
        Ok(layout)
    }

    /// The layout of a batch laid out in place: `buffer_len` bytes at a stride of `gso_size`,
    /// each datagram holding its cleartext and room for its tag.
    pub const fn in_place(
        buffer_len: usize,
        gso_size: usize,
        max_segments: usize,
    ) -> Result<GsoLayout, Error> {
        if gso_size <= TAG_LEN {
            return Err(Error::GsoSizeTooSmall);
        }
        let segments = buffer_len.div_ceil(gso_size);
        if segments > max_segments {
            return Err(Error::TooManySegments);
        }
        Ok(GsoLayout {
            segments,
            cleartext_stride: gso_size - TAG_LEN,
            sealed_len: buffer_len,
        })
    }
}

/// Datagrams in a GRO buffer of `len` bytes coalesced at `segment_size`: an empty buffer is
/// one (empty, so malformed) datagram; `None` for bytes with a zero segment size.
pub const fn gro_datagrams(len: usize, segment_size: usize) -> Option<usize> {
    match (len, segment_size) {
        (0, _) => Some(1),
        (_, 0) => None,
        _ => Some(len.div_ceil(segment_size)),
    }
}

/// Datagrams in a GRO batch of `len` bytes coalesced at `segment_size`, if a flow taking at
/// most `max_segments` datagrams a batch opens it, with `outcomes` slots for their outcomes:
/// everything [`RxFlow::open_gro`] checks before it opens any of a batch, so that an engine
/// without the flow at hand ([`crate::engine`]) refuses the same batches.
pub fn gro_batch(
    len: usize,
    segment_size: usize,
    max_segments: usize,
    outcomes: usize,
) -> Result<usize, Error> {
    let segments = gro_datagrams(len, segment_size).ok_or(Error::InvalidConfig)?;
    if segments > max_segments {
        Err(Error::TooManySegments)
    } else if segments > outcomes {
        Err(Error::BufferTooSmall)
    } else {
        Ok(segments)
    }
}

impl<B: Backend> TxFlow<B> {
    /// Smallest `gso_size` this flow accepts: a header with a 4-byte packet number, a sample
    /// and a tag.
    pub fn min_gso_size(&self) -> usize {
        GsoLayout::min_gso_size(self.config().dcid_len)
    }

    /// The layout [`seal_gso`](Self::seal_gso) gives `cleartext_len` bytes at `gso_size`, or
    /// why it refuses the batch whole (a `gso_size` below
    /// [`min_gso_size`](Self::min_gso_size), more segments than `FlowConfig::max_segments`).
    pub fn gso_layout(&self, cleartext_len: usize, gso_size: usize) -> Result<GsoLayout, Error> {
        let config = self.config();
        GsoLayout::for_flow(
            cleartext_len,
            gso_size,
            config.dcid_len,
            config.max_segments,
        )
    }

    /// Like [`gso_layout`](Self::gso_layout), for [`seal_gso_in_place`](Self::seal_gso_in_place)
    /// on a buffer of `buffer_len` bytes.
    pub fn gso_layout_in_place(
        &self,
        buffer_len: usize,
        gso_size: usize,
    ) -> Result<GsoLayout, Error> {
        if gso_size < self.min_gso_size() {
            return Err(Error::GsoSizeTooSmall);
        }
        GsoLayout::in_place(buffer_len, gso_size, self.config().max_segments)
    }

    /// Seals a GSO batch: `src` holds cleartext datagrams at a stride of `gso_size - 16`
    /// (the last may be shorter); each is sealed (see [`seal`](Self::seal)) into `dst` at a
    /// stride of `gso_size`. Outcomes go to `results[i]`. A datagram that fails has nothing
    /// sealed in its stretch of `dst` (at most its long-header packets, copied), so the caller
    /// must not send the batch as it is.
    ///
    /// Fails as a whole, touching nothing, when `gso_size` is below
    /// [`min_gso_size`](Self::min_gso_size), the batch has more segments than
    /// `FlowConfig::max_segments`, or `dst` or `results` is too small.
    ///
    /// ```
    /// use quicseal::{CipherSuite, Error, FlowConfig, TxFlow};
    ///
    /// let mut tx: TxFlow = TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[7; 32], FlowConfig::new(0))?;
    /// let gso_size = 100;
    /// let mut cleartext = vec![0u8; 84 + 84 + 30]; // two full datagrams and a short one
    /// for (n, start) in [0, 84, 168].into_iter().enumerate() {
    ///     cleartext[start] = 0x40; // short header, 1-byte packet number
    ///     cleartext[start + 1] = n as u8;
    /// }
    /// let mut out = vec![0u8; 100 + 100 + 46];
    /// let mut results = [Err(Error::Malformed); 3];
    /// let batch = tx.seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results)?;
    /// assert_eq!((batch.ok, batch.len), (3, 246)); // ready for one UDP_SEGMENT=100 send
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seal_gso(
        &mut self,
        src: &[&[u8]],
        gso_size: usize,
        dst: &mut [&mut [u8]],
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let src = SgSource::new(src);
        let mut dst = SgDestination::new(dst);
        let config = self.config();
        let layout = GsoLayout::for_batch(
            src.len(),
            gso_size,
            config.dcid_len,
            config.max_segments,
            dst.len(),
            results.len(),
        )?;
        let (segments, stride) = (layout.segments, layout.cleartext_stride);

        let results = &mut results[..segments];
        let lone = self.seal_lone_packets(&src, &mut dst, gso_size, results);
        if lone.datagrams == segments {
            return Ok(lone);
        }
        let mut buffers = BatchBuffers::Copy {
            src: &src,
            dst: &mut dst,
        };
        let src_len = src.len();
        let place = |index: usize| {
            let src_at = index * stride;
            Segment {
                src_at,
                len: stride.min(src_len - src_at),
                dst_at: index * gso_size,
                // A datagram of long-header packets only gains no tag: unless it is the
                // last, it would leave a hole in the layout.
                sealed_len: (index + 1 < segments).then_some(gso_size),
            }
        };
        let rest = results.get_mut(lone.datagrams..).unwrap_or_default();
        let place_rest = |index: usize| place(lone.datagrams + index);
        Ok(lone.then(self.seal_segments(&mut buffers, rest, place_rest)))
    }

    /// Seals a GSO batch in place: `buffer` is laid out as it will be sent, datagrams at a
    /// stride of `gso_size` (the last may be shorter), each holding its cleartext followed by
    /// 16 spare bytes for its tag. Outcomes go to `results[i]`, as for
    /// [`seal_gso`](Self::seal_gso); a datagram with no 1-RTT packet to take the tag fails with
    /// [`Error::GsoLayout`].
    ///
    /// ```
    /// use quicseal::{CipherSuite, Error, FlowConfig, TxFlow};
    ///
    /// let mut tx: TxFlow = TxFlow::from_secret(CipherSuite::ChaCha20Poly1305Sha256, &[7; 32], FlowConfig::new(0))?;
    /// let mut buffer = vec![0u8; 100 + 60]; // one full 100-byte datagram and a 60-byte one
    /// for (n, start) in [0, 100].into_iter().enumerate() {
    ///     buffer[start] = 0x40; // short header, 1-byte packet number
    ///     buffer[start + 1] = n as u8;
    /// }
    /// let mut results = [Err(Error::Malformed); 2];
    /// let batch = tx.seal_gso_in_place(&mut buffer, 100, &mut results)?;
    /// assert_eq!((batch.ok, batch.len), (2, 160));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn seal_gso_in_place(
        &mut self,
        buffer: &mut [u8],
        gso_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let segments = self.gso_layout_in_place(buffer.len(), gso_size)?.segments;
        if segments > results.len() {
            return Err(Error::BufferTooSmall);
        }
        let last = buffer.len() % gso_size;
        if last != 0 && last <= TAG_LEN {
            return Err(Error::GsoLayout);
        }
        let buffer_len = buffer.len();
        let mut buffers = BatchBuffers::InPlace(buffer);
        let place = |index: usize| {
            let at = index * gso_size;
            let datagram_len = gso_size.min(buffer_len - at);
            Segment {
                src_at: at,
                len: datagram_len - TAG_LEN,
                dst_at: at,
                sealed_len: Some(datagram_len),
            }
        };
        Ok(self.seal_segments(&mut buffers, &mut results[..segments], place))
    }
}

impl<B: Backend> RxFlow<B> {
    /// Opens a GRO batch in place: `buffer` holds datagrams coalesced at `segment_size`
    /// bytes (the last may be shorter); each is opened where it lies (see
    /// [`open_in_place`](Self::open_in_place)) and its outcome goes to `results[i]`. Once
    /// they are, the next key generation is prepared if a key update used it up
    /// ([`prepare_next_keys`](Self::prepare_next_keys)).
    ///
    /// Fails as a whole, touching nothing, for a zero `segment_size`, more segments than
    /// `FlowConfig::max_segments`, or too small a `results` slice.
    pub fn open_gro(
        &mut self,
        buffer: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let max_segments = self.config().max_segments;
        let batch = open_segments(
            buffer,
            segment_size,
            max_segments,
            results,
            |group, results| self.open_group(group, segment_size, results),
        )?;
        // A key update in the batch used up the next generation: derive the one after it now,
        // with every datagram of the batch opened.
        self.prepare_next_keys()?;
        Ok(batch)
    }
}

/// Datagrams of a GRO batch opened as a group: as many as a backend computes header-protection
/// masks for at once.
pub(crate) const OPEN_GROUP: usize = SEAL_BATCH;

/// Splits a GRO `buffer` at `segment_size` and hands `open_group` up to [`OPEN_GROUP`]
/// datagrams at a time (coalesced as they came, with their slice of `results` to fill; see
/// [`each_datagram`]), then tallies the outcomes. An empty buffer is one empty datagram.
pub(crate) fn open_segments(
    buffer: &mut [u8],
    segment_size: usize,
    max_segments: usize,
    results: &mut [Outcome],
    mut open_group: impl FnMut(&mut [u8], &mut [Outcome]),
) -> Result<Batch, Error> {
    let segments = gro_batch(buffer.len(), segment_size, max_segments, results.len())?;
    let results = &mut results[..segments];
    let len = buffer.len();
    if buffer.is_empty() {
        // One empty datagram: legitimate from the network, and malformed.
        open_group(buffer, results);
    } else {
        let group_len = segment_size.saturating_mul(OPEN_GROUP);
        for (group, results) in buffer
            .chunks_mut(group_len)
            .zip(results.chunks_mut(OPEN_GROUP))
        {
            open_group(group, results);
        }
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    Ok(Batch {
        datagrams: segments,
        ok,
        failed: segments - ok,
        len,
    })
}

/// Opens each datagram of a group from [`open_segments`] with `open`, its outcome to
/// `results[i]`; an empty group is one empty datagram.
pub(crate) fn each_datagram(
    group: &mut [u8],
    segment_size: usize,
    results: &mut [Outcome],
    mut open: impl FnMut(&mut [u8]) -> Outcome,
) {
    if group.is_empty() {
        if let Some(result) = results.first_mut() {
            *result = open(group);
        }
        return;
    }
    for (datagram, result) in group.chunks_mut(segment_size).zip(results) {
        *result = open(datagram);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(
            GsoLayout::new(84 * 2 + 30, 100, 64),
            Ok(GsoLayout {
                segments: 3,
                cleartext_stride: 84,
                sealed_len: 84 * 2 + 30 + 3 * TAG_LEN,
            })
        );
        assert_eq!(GsoLayout::new(0, 100, 64).map(|l| l.segments), Ok(0));
        assert_eq!(GsoLayout::new(84 * 3, 100, 3).map(|l| l.segments), Ok(3));
        assert_eq!(
            GsoLayout::new(84 * 3 + 1, 100, 3),
            Err(Error::TooManySegments)
        );
        assert_eq!(GsoLayout::new(10, TAG_LEN, 64), Err(Error::GsoSizeTooSmall));
        assert_eq!(
            GsoLayout::in_place(250, 100, 64),
            Ok(GsoLayout {
                segments: 3,
                cleartext_stride: 84,
                sealed_len: 250,
            })
        );
        assert_eq!(
            GsoLayout::in_place(201, 100, 2),
            Err(Error::TooManySegments)
        );
    }

    #[test]
    fn gro_counts() {
        assert_eq!(
            gro_datagrams(0, 0),
            Some(1),
            "an empty buffer is one datagram"
        );
        assert_eq!(gro_datagrams(0, 1200), Some(1));
        assert_eq!(gro_datagrams(1, 0), None);
        assert_eq!(gro_datagrams(2400, 1200), Some(2));
        assert_eq!(gro_datagrams(2401, 1200), Some(3));
    }
}
