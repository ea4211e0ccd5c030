//! Scatter-gather buffers: a packet's bytes spread over a list of slices of any lengths, as an
//! `iovec` array, a chain of socket buffers or a NIC descriptor list hands them over.
//!
//! Positions are byte offsets into the logical concatenation of the segments. Every accessor
//! checks its range and reports failure instead of panicking.

/// Read-only bytes over a list of slices.
#[derive(Clone, Copy, Debug)]
pub struct SgSource<'a> {
    segments: &'a [&'a [u8]],
    len: usize,
}

impl<'a> SgSource<'a> {
    /// Views `segments` as one sequence of bytes.
    #[inline]
    pub fn new(segments: &'a [&'a [u8]]) -> SgSource<'a> {
        SgSource {
            segments,
            len: total_len(segments.iter().map(|s| s.len())),
        }
    }

    /// Total length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte at `at`, if there is one.
    #[inline]
    pub fn byte(&self, at: usize) -> Option<u8> {
        if let Some(byte) = self.segments.first().and_then(|first| first.get(at)) {
            return Some(*byte);
        }
        let (index, offset) = locate(self.segments.iter().map(|s| s.len()), at)?;
        self.segments.get(index)?.get(offset).copied()
    }

    /// The `len` bytes from `at`, if they lie in one segment (and there are that many): for
    /// code that takes a range in one piece faster than piece by piece.
    #[inline]
    pub fn piece(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        let (index, offset) = locate(self.segments.iter().map(|s| s.len()), at)?;
        range(self.segments.get(index)?, offset, len)
    }

    /// Fills `out` with the bytes from `at` on; false (with `out` partly written) if they run
    /// out first.
    #[inline]
    pub fn read(&self, at: usize, out: &mut [u8]) -> bool {
        // The common case, bytes inside the first segment, without the walk.
        if let Some(bytes) = self
            .segments
            .first()
            .and_then(|first| range(first, at, out.len()))
        {
            copy_bytes(out, bytes);
            return true;
        }
        self.read_across(at, out)
    }

    #[inline(never)]
    fn read_across(&self, at: usize, out: &mut [u8]) -> bool {
        let mut filled = 0;
        self.for_each_chunk(at, out.len(), |chunk| {
            fill(out, &mut filled, chunk);
        })
    }

    /// Calls `f` on consecutive chunks covering `len` bytes from `at`; false if the range runs
    /// past the end (then `f` saw only part of it).
    pub fn for_each_chunk(&self, at: usize, len: usize, mut f: impl FnMut(&[u8])) -> bool {
        let Some((mut index, mut offset)) = locate(self.segments.iter().map(|s| s.len()), at)
        else {
            return len == 0;
        };
        let mut left = len;
        while left > 0 {
            let Some(segment) = self.segments.get(index) else {
                return false;
            };
            let chunk = segment.get(offset.min(segment.len())..).unwrap_or_default();
            let n = chunk.len().min(left);
            if let Some(piece) = chunk.get(..n).filter(|_| n > 0) {
                f(piece);
            }
            left -= n;
            index += 1;
            offset = 0;
        }
        true
    }
}

/// Writable bytes over a list of mutable slices.
#[derive(Debug)]
pub struct SgDestination<'a, 'b> {
    segments: &'a mut [&'b mut [u8]],
    len: usize,
}

impl<'a, 'b> SgDestination<'a, 'b> {
    /// Views `segments` as one writable sequence of bytes.
    #[inline]
    pub fn new(segments: &'a mut [&'b mut [u8]]) -> SgDestination<'a, 'b> {
        let len = total_len(segments.iter().map(|s| s.len()));
        SgDestination { segments, len }
    }

    /// Total length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no room at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `len` bytes from `at`, if they lie in one segment (and there are that many), to
    /// read back what was written: see [`SgSource::piece`].
    #[inline]
    pub fn piece(&self, at: usize, len: usize) -> Option<&[u8]> {
        let (index, offset) = locate(self.segments.iter().map(|s| s.len()), at)?;
        range(self.segments.get(index)?, offset, len)
    }

    /// Where the `len` bytes from each of `ats` start, for those that lie in one segment:
    /// for code that writes several pieces at once through raw pointers. Each segment is
    /// borrowed once, so the pointers stay valid together until the destination is used
    /// again (ones taken from separate [`piece_mut`](Self::piece_mut) calls would each end
    /// the last one's right to write).
    pub fn piece_pointers<const N: usize>(
        &mut self,
        ats: [usize; N],
        len: usize,
    ) -> [Option<*mut u8>; N] {
        let mut pointers = [None; N];
        let mut start = 0usize;
        for segment in self.segments.iter_mut() {
            let segment_len = segment.len();
            let base = segment.as_mut_ptr();
            for (pointer, at) in pointers.iter_mut().zip(ats) {
                let inside = at.checked_sub(start).filter(|offset| {
                    offset
                        .checked_add(len)
                        .is_some_and(|end| end <= segment_len)
                });
                if let Some(offset) = inside {
                    *pointer = Some(base.wrapping_add(offset));
                }
            }
            start = start.saturating_add(segment_len);
        }
        pointers
    }

    /// The `len` bytes from `at`, if they lie in one segment (and there are that many), to
    /// write: see [`SgSource::piece`].
    #[inline]
    pub fn piece_mut(&mut self, at: usize, len: usize) -> Option<&mut [u8]> {
        // The common case, bytes inside the first segment, without the walk.
        let in_first = self
            .segments
            .first()
            .is_some_and(|first| at.checked_add(len).is_some_and(|end| end <= first.len()));
        let (index, offset) = if in_first {
            (0, at)
        } else {
            locate(self.segments.iter().map(|s| s.len()), at)?
        };
        range_mut(self.segments.get_mut(index)?, offset, len)
    }

    /// Copies `data` to `at`; false (with part of it written) if it runs past the end.
    #[inline]
    pub fn write(&mut self, at: usize, data: &[u8]) -> bool {
        // The common case, bytes inside the first segment, without the walk.
        if let Some(bytes) = self
            .segments
            .first_mut()
            .and_then(|first| range_mut(first, at, data.len()))
        {
            copy_bytes(bytes, data);
            return true;
        }
        self.write_across(at, data)
    }

    /// XORs `data` into the bytes at `at`; false (with part of them changed) if it runs past
    /// the end.
    #[inline]
    pub fn xor(&mut self, at: usize, data: &[u8]) -> bool {
        if let Some(bytes) = self
            .segments
            .first_mut()
            .and_then(|first| range_mut(first, at, data.len()))
        {
            xor_into(bytes, data);
            return true;
        }
        let mut taken = 0;
        self.for_each_chunk_mut(at, data.len(), |chunk| {
            xor_into(chunk, data.get(taken..).unwrap_or_default());
            taken += chunk.len();
        })
    }

    fn write_across(&mut self, at: usize, data: &[u8]) -> bool {
        let mut taken = 0;
        self.for_each_chunk_mut(at, data.len(), |chunk| {
            if let Some(piece) = data.get(taken..taken + chunk.len()) {
                chunk.copy_from_slice(piece);
            }
            taken += chunk.len();
        })
    }

    /// Fills `out` with the bytes at `at`; false if they run out first.
    pub fn read(&mut self, at: usize, out: &mut [u8]) -> bool {
        let mut filled = 0;
        self.for_each_chunk_mut(at, out.len(), |chunk| {
            fill(out, &mut filled, chunk);
        })
    }

    /// Calls `f` on consecutive mutable chunks covering `len` bytes from `at`; false if the
    /// range runs past the end.
    pub fn for_each_chunk_mut(
        &mut self,
        at: usize,
        len: usize,
        mut f: impl FnMut(&mut [u8]),
    ) -> bool {
        let Some((mut index, mut offset)) = locate(self.segments.iter().map(|s| s.len()), at)
        else {
            return len == 0;
        };
        let mut left = len;
        while left > 0 {
            let Some(segment) = self.segments.get_mut(index) else {
                return false;
            };
            let start = offset.min(segment.len());
            let chunk = segment.get_mut(start..).unwrap_or_default();
            let n = chunk.len().min(left);
            if let Some(piece) = chunk.get_mut(..n).filter(|_| n > 0) {
                f(piece);
            }
            left -= n;
            index += 1;
            offset = 0;
        }
        true
    }

    /// Walks `len` bytes of `source` from `source_at` and of `self` from `at` in lockstep,
    /// calling `f(input, output)` on pieces of equal length that lie within one segment of
    /// each. False, with part of the range visited, if either side runs out.
    pub fn zip_from(
        &mut self,
        at: usize,
        source: &SgSource<'_>,
        source_at: usize,
        len: usize,
        mut f: impl FnMut(&[u8], &mut [u8]),
    ) -> bool {
        // The common case, both ranges inside the first segments, without the walk.
        if let (Some(input), Some(output)) = (
            source
                .segments
                .first()
                .and_then(|first| range(first, source_at, len)),
            self.segments
                .first_mut()
                .and_then(|first| range_mut(first, at, len)),
        ) {
            if len > 0 {
                f(input, output);
            }
            return true;
        }
        let src_lens = source.segments.iter().map(|s| s.len());
        let dst_lens = self.segments.iter().map(|s| s.len());
        let (Some((mut si, mut so)), Some((mut di, mut doff))) =
            (locate(src_lens, source_at), locate(dst_lens, at))
        else {
            return len == 0;
        };
        let mut left = len;
        while left > 0 {
            let (Some(input), Some(output)) = (source.segments.get(si), self.segments.get_mut(di))
            else {
                return false;
            };
            let (input_len, output_len) = (input.len(), output.len());
            let input = input.get(so.min(input_len)..).unwrap_or_default();
            let output = output.get_mut(doff.min(output_len)..).unwrap_or_default();
            let n = input.len().min(output.len()).min(left);
            if let (true, Some(input), Some(output)) = (n > 0, input.get(..n), output.get_mut(..n))
            {
                f(input, output);
            }
            left -= n;
            so += n;
            doff += n;
            if so >= input_len {
                si += 1;
                so = 0;
            }
            if doff >= output_len {
                di += 1;
                doff = 0;
            }
        }
        true
    }
}

/// XORs `data` into `bytes`, as far as both go.
#[inline]
pub(crate) fn xor_into(bytes: &mut [u8], data: &[u8]) {
    for (byte, d) in bytes.iter_mut().zip(data) {
        *byte ^= d;
    }
}

/// Copies `from` to `to`, as far as both go: the few bytes of a header or a tag as one or two
/// fixed-size copies (overlapping where the length is not theirs) instead of a call to
/// `memcpy`, which took about 40 instructions a header on the way to its nonce.
#[inline(always)]
pub(crate) fn copy_bytes(to: &mut [u8], from: &[u8]) {
    /// Copies the first and the last `N` bytes (`N <= len <= 2 * N`): all of them.
    #[inline(always)]
    fn ends<const N: usize>(to: &mut [u8], from: &[u8]) {
        if let (Some(to), Some(from)) = (to.first_chunk_mut::<N>(), from.first_chunk::<N>()) {
            *to = *from;
        }
        // `get`, not `last_chunk`, whose split keeps a panic path in the kernel object.
        let last = to.len().saturating_sub(N);
        if let (Some(to), Some(from)) = (
            to.get_mut(last..).and_then(|to| to.first_chunk_mut::<N>()),
            from.get(last..).and_then(|from| from.first_chunk::<N>()),
        ) {
            *to = *from;
        }
    }
    let len = to.len().min(from.len());
    let (Some(to), Some(from)) = (to.get_mut(..len), from.get(..len)) else {
        return;
    };
    match len {
        16..=32 => ends::<16>(to, from),
        8..=15 => ends::<8>(to, from),
        4..=7 => ends::<4>(to, from),
        _ => to.copy_from_slice(from),
    }
}

/// `len` bytes of `segment` from `at`, if it holds them.
#[inline]
fn range(segment: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    segment.get(at..at.checked_add(len)?)
}

/// `len` bytes of `segment` from `at`, if it holds them.
#[inline]
fn range_mut(segment: &mut [u8], at: usize, len: usize) -> Option<&mut [u8]> {
    segment.get_mut(at..at.checked_add(len)?)
}

/// Total length of segments, saturating: segments that alias one buffer can add up past
/// `usize::MAX` on 32-bit targets.
fn total_len(lens: impl Iterator<Item = usize>) -> usize {
    lens.fold(0, usize::saturating_add)
}

/// Copies `chunk` into `out` at `*filled` and moves `*filled` past it (walks hand over chunks
/// that add up to `out`'s length; `get` keeps the compiler from needing to know that).
fn fill(out: &mut [u8], filled: &mut usize, chunk: &[u8]) {
    if let Some(to) = out.get_mut(*filled..*filled + chunk.len()) {
        to.copy_from_slice(chunk);
    }
    *filled += chunk.len();
}

/// The segment index and offset of byte `at`, given the segments' lengths. `at` equal to the
/// total length maps past the last segment, so that empty ranges at the end are valid.
fn locate(lens: impl Iterator<Item = usize>, at: usize) -> Option<(usize, usize)> {
    let mut start = 0;
    let mut count = 0;
    for (index, len) in lens.enumerate() {
        if at < start + len {
            return Some((index, at - start));
        }
        start += len;
        count = index + 1;
    }
    (at == start).then_some((count, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_reads_across_segments() {
        let segments: [&[u8]; 4] = [b"ab", b"", b"cde", b"f"];
        let source = SgSource::new(&segments);
        assert_eq!(source.len(), 6);
        assert_eq!(source.byte(2), Some(b'c'));
        assert_eq!(source.byte(6), None);
        let mut out = [0; 4];
        assert!(source.read(1, &mut out));
        assert_eq!(&out, b"bcde");
        assert!(!source.read(3, &mut out));
        assert!(source.read(6, &mut []));
    }

    #[test]
    fn destination_writes_across_segments() {
        let (mut a, mut b, mut c) = ([0u8; 1], [0u8; 0], [0u8; 3]);
        let mut segments: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut dst = SgDestination::new(&mut segments);
        assert!(dst.write(0, b"xyz"));
        assert!(!dst.write(3, b"12"));
        let mut back = [0; 4];
        assert!(dst.read(0, &mut back));
        assert_eq!(&back, b"xyz1");
    }

    #[test]
    fn xor_changes_bytes_across_segments() {
        let (mut a, mut b) = ([1u8; 2], [1u8; 3]);
        let mut segments: [&mut [u8]; 2] = [&mut a, &mut b];
        let mut dst = SgDestination::new(&mut segments);
        assert!(dst.xor(1, &[2, 3, 4]));
        assert!(dst.xor(0, &[8]));
        assert!(!dst.xor(4, &[1, 1]));
        let mut back = [0; 5];
        assert!(dst.read(0, &mut back));
        assert_eq!(back, [9, 3, 2, 5, 0]);
    }

    #[test]
    fn pieces_are_ranges_inside_one_segment() {
        let segments: [&[u8]; 2] = [b"hello ", b"world"];
        let source = SgSource::new(&segments);
        assert_eq!(source.piece(1, 4), Some(&b"ello"[..]));
        assert_eq!(source.piece(6, 5), Some(&b"world"[..]));
        assert_eq!(source.piece(4, 3), None, "across two segments");
        assert_eq!(source.piece(7, 5), None, "past the end");
        let (mut a, mut b) = ([0u8; 4], [0u8; 5]);
        let mut out: [&mut [u8]; 2] = [&mut a, &mut b];
        let mut dst = SgDestination::new(&mut out);
        dst.piece_mut(5, 3).unwrap().copy_from_slice(b"xyz");
        assert_eq!(dst.piece_mut(3, 2), None, "across two segments");
        assert_eq!(dst.piece_mut(9, 1), None, "past the end");
        assert_eq!(dst.piece(5, 3), Some(&b"xyz"[..]));
        assert_eq!(dst.piece(3, 2), None, "across two segments");
        assert_eq!(b, *b"\0xyz\0");
    }

    #[test]
    fn piece_pointers_point_where_pieces_lie() {
        let (mut a, mut b) = ([0u8; 4], [0u8; 5]);
        let (a_start, b_start) = (a.as_ptr() as usize, b.as_ptr() as usize);
        let mut out: [&mut [u8]; 2] = [&mut a, &mut b];
        let mut dst = SgDestination::new(&mut out);
        let pointers = dst.piece_pointers([0, 2, 4, 5, 8, 3], 2);
        let at = |pointer: Option<*mut u8>| pointer.map(|p| p as usize);
        assert_eq!(at(pointers[0]), Some(a_start));
        assert_eq!(at(pointers[1]), Some(a_start + 2));
        assert_eq!(at(pointers[2]), Some(b_start));
        assert_eq!(at(pointers[3]), Some(b_start + 1));
        assert_eq!(pointers[4], None, "past the end");
        assert_eq!(pointers[5], None, "across two segments");
    }

    #[test]
    fn zip_pairs_equal_pieces() {
        let segments: [&[u8]; 2] = [b"hello ", b"world"];
        let source = SgSource::new(&segments);
        let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 4], [0u8; 5]);
        let mut out: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut dst = SgDestination::new(&mut out);
        let mut pieces = 0;
        assert!(dst.zip_from(1, &source, 0, 11, |i, o| {
            assert_eq!(i.len(), o.len());
            o.copy_from_slice(i);
            pieces += 1;
        }));
        assert_eq!(pieces, 4);
        let mut back = [0; 11];
        assert!(dst.read(1, &mut back));
        assert_eq!(&back, b"hello world");
        assert!(!dst.zip_from(3, &source, 0, 11, |_, _| {}));
    }

    /// Every length a header, a sample or a tag has, and past the widest two-copy case:
    /// the bytes land where they belong, none past them, none before.
    #[test]
    fn short_copies_copy_exactly_the_shorter_length() {
        let from: [u8; 40] = core::array::from_fn(|i| i as u8 + 1);
        for to_len in 0usize..40 {
            for from_len in [to_len.saturating_sub(1), to_len, to_len + 1] {
                let mut to = [0xee; 48];
                copy_bytes(&mut to[4..4 + to_len], &from[..from_len]);
                let n = to_len.min(from_len);
                assert_eq!(&to[4..4 + n], &from[..n], "{to_len} {from_len}");
                assert!(to[..4].iter().all(|&b| b == 0xee), "{to_len} {from_len}");
                assert!(
                    to[4 + n..].iter().all(|&b| b == 0xee),
                    "{to_len} {from_len}"
                );
            }
        }
    }
}
