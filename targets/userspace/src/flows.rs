//! Who holds the keys for a batch: one connection's flow, or a table of flows when many
//! connections share one socket.

use quicseal::backend::{Backend, TAG_LEN};
use quicseal::{
    Batch, DEFAULT_MAX_GSO_SEGMENTS, Error, FlowTable, GsoLayout, Outcome, RxFlow, TxFlow,
};

/// Seals a GSO batch: cleartext datagrams at a stride of `gso_size - 16` in `src` become
/// protected datagrams at a stride of `gso_size` in `dst`, with one outcome per datagram in
/// `results` (see [`TxFlow::seal_gso`] for the contract).
pub trait SealGso {
    /// Seals the batch; fails as a whole only for a batch of the wrong shape.
    fn seal_gso(
        &mut self,
        src: &[&[u8]],
        gso_size: usize,
        dst: &mut [u8],
        results: &mut [Outcome],
    ) -> Result<Batch, Error>;

    /// Seals one datagram from the scatter-gather `src` into `dst` (its cleartext's length
    /// and a tag). A lone datagram has no segment size to respect, so the implementations
    /// here seal a packet shorter than [`GsoLayout::min_gso_size`] (an ACK, say), where a
    /// batch of them is refused. By default, a batch of one, which keeps that limit.
    fn seal_one(&mut self, src: &[&[u8]], dst: &mut [u8]) -> Outcome {
        let mut results = [Err(Error::Malformed)];
        let gso_size = dst.len();
        // The one outcome says what the batch of one did.
        let _ = self.seal_gso(src, gso_size, dst, &mut results)?;
        results[0]
    }
}

/// Opens a GRO batch in place: datagrams coalesced at `segment_size` bytes, one outcome per
/// datagram in `results` (see [`RxFlow::open_gro`]).
pub trait OpenGro {
    /// Opens the batch; fails as a whole only for a batch of the wrong shape.
    fn open_gro(
        &mut self,
        buffer: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error>;

    /// Most datagrams one [`open_gro`](Self::open_gro) call takes (a flow's
    /// `FlowConfig::max_segments`); [`crate::RecvBatch::open`] splits larger messages into
    /// calls of at most this many. No limit unless an implementation says otherwise.
    fn max_segments(&self) -> usize {
        usize::MAX
    }
}

impl<B: Backend> SealGso for TxFlow<B> {
    fn seal_gso(
        &mut self,
        src: &[&[u8]],
        gso_size: usize,
        dst: &mut [u8],
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        TxFlow::seal_gso(self, src, gso_size, &mut [dst], results)
    }

    fn seal_one(&mut self, src: &[&[u8]], dst: &mut [u8]) -> Outcome {
        TxFlow::seal(self, src, &mut [dst])
    }
}

/// Each datagram is sealed by the flow its destination connection ID names, so one batch
/// may mix connections (as a server's batch to one address rarely does, but may).
///
/// The core's table seals a batch with the flow of its first datagram; this routes each
/// datagram on its own with [`FlowTable::seal`], with the core's [`GsoLayout`] for the shape
/// and [`TxFlow::seal_gso`]'s rule that every datagram but the last comes out exactly
/// `gso_size` bytes long.
impl<B: Backend, const N: usize> SealGso for FlowTable<TxFlow<B>, N> {
    fn seal_gso(
        &mut self,
        src: &[&[u8]],
        gso_size: usize,
        dst: &mut [u8],
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        if gso_size < GsoLayout::min_gso_size(self.dcid_len()) {
            return Err(Error::GsoSizeTooSmall);
        }
        let total: usize = src.iter().map(|piece| piece.len()).sum();
        let layout = GsoLayout::new(total, gso_size, DEFAULT_MAX_GSO_SEGMENTS)?;
        let (segments, stride) = (layout.segments, layout.cleartext_stride);
        if segments > results.len() || dst.len() < layout.sealed_len {
            return Err(Error::BufferTooSmall);
        }
        let mut batch = Batch {
            datagrams: segments,
            ..Batch::default()
        };
        let mut pieces = Vec::with_capacity(src.len());
        for (index, result) in results[..segments].iter_mut().enumerate() {
            let start = index * stride;
            let len = stride.min(total - start);
            sub_pieces(src, start, len, &mut pieces);
            let at = index * gso_size;
            let last = index + 1 == segments;
            // In range: `dst` holds the layout's `sealed_len` bytes, checked above.
            let out = &mut dst[at..at + len + TAG_LEN];
            *result = self.seal(&pieces, &mut [out]).and_then(|datagram| {
                if datagram.len == gso_size || last {
                    Ok(datagram)
                } else {
                    Err(Error::GsoLayout)
                }
            });
            match result {
                Ok(datagram) => {
                    batch.ok += 1;
                    batch.len = at + datagram.len;
                }
                Err(_) => batch.failed += 1,
            }
        }
        Ok(batch)
    }

    fn seal_one(&mut self, src: &[&[u8]], dst: &mut [u8]) -> Outcome {
        FlowTable::seal(self, src, &mut [dst])
    }
}

/// Collects into `out` the parts of the scatter-gather `pieces` that hold bytes
/// `start..start + len` of their concatenation.
fn sub_pieces<'a>(pieces: &[&'a [u8]], mut start: usize, mut len: usize, out: &mut Vec<&'a [u8]>) {
    out.clear();
    for piece in pieces {
        if len == 0 {
            break;
        }
        if start >= piece.len() {
            start -= piece.len();
            continue;
        }
        let take = (piece.len() - start).min(len);
        out.push(&piece[start..start + take]);
        start = 0;
        len -= take;
    }
}

impl<B: Backend> OpenGro for RxFlow<B> {
    fn open_gro(
        &mut self,
        buffer: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        RxFlow::open_gro(self, buffer, segment_size, results)
    }

    fn max_segments(&self) -> usize {
        self.config().max_segments
    }
}

impl<B: Backend, const N: usize> OpenGro for FlowTable<RxFlow<B>, N> {
    fn open_gro(
        &mut self,
        buffer: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        FlowTable::open_gro(self, buffer, segment_size, results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_pieces_cut_across_boundaries() {
        let (a, b, c) = (&b"abc"[..], &b""[..], &b"defgh"[..]);
        let mut out = Vec::new();
        sub_pieces(&[a, b, c], 2, 4, &mut out);
        assert_eq!(out, [&b"c"[..], &b"def"[..]]);
        sub_pieces(&[a, b, c], 3, 5, &mut out);
        assert_eq!(out, [&b"defgh"[..]]);
        sub_pieces(&[a, b, c], 0, 0, &mut out);
        assert!(out.is_empty());
    }
}
