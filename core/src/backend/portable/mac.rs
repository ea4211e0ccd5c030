//! A universal hash (GHASH or Poly1305) fed in pieces of any length.

use universal_hash::UniversalHash;
use universal_hash::array::Array;
use universal_hash::consts::U16;

type Block = Array<u8, U16>;

/// Buffers a partial block between pieces so the hash sees whole 16-byte blocks, and counts
/// the bytes of the current section (AAD or text) for the final lengths block.
#[derive(Clone)]
pub(super) struct MacStream<U> {
    mac: U,
    pending: [u8; 16],
    pending_len: usize,
    section_len: u64,
}

impl<U: UniversalHash<BlockSize = U16>> MacStream<U> {
    pub(super) fn new(mac: U) -> Self {
        MacStream {
            mac,
            pending: [0; 16],
            pending_len: 0,
            section_len: 0,
        }
    }

    /// Hashes `data` as the continuation of the current section.
    pub(super) fn absorb(&mut self, mut data: &[u8]) {
        self.section_len += data.len() as u64;
        if self.pending_len > 0 {
            // `get`s, not indexing: `pending_len < 16` holds, but the kernel object must keep
            // no panic path the compiler cannot see past.
            let take = 16usize.saturating_sub(self.pending_len).min(data.len());
            let (head, rest) = data.split_at_checked(take).unwrap_or((data, &[]));
            if let Some(slot) = self
                .pending
                .get_mut(self.pending_len..self.pending_len + head.len())
            {
                slot.copy_from_slice(head);
            }
            self.pending_len += head.len();
            data = rest;
            if self.pending_len < 16 {
                return;
            }
            self.mac.update(&[Block::from(self.pending)]);
            self.pending_len = 0;
        }
        let (blocks, rest) = Block::slice_as_chunks(data);
        self.mac.update(blocks);
        if let Some(slot) = self.pending.get_mut(..rest.len()) {
            slot.copy_from_slice(rest);
        }
        self.pending_len = rest.len();
    }

    /// Ends the current section: zero-pads a partial block and returns the section's length
    /// in bytes.
    #[inline(always)]
    pub(super) fn end_section(&mut self) -> u64 {
        if self.pending_len > 0 {
            self.mac
                .update_padded(self.pending.get(..self.pending_len).unwrap_or_default());
            self.pending_len = 0;
        }
        core::mem::take(&mut self.section_len)
    }

    /// Hashes the final lengths block and returns the raw tag.
    #[inline(always)]
    pub(super) fn finish(mut self, lengths: [u8; 16]) -> [u8; 16] {
        self.mac.update(&[Block::from(lengths)]);
        self.mac.finalize().into()
    }
}
