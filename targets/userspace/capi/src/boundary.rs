//! What every exported function does at the boundary: catch panics, poison handles whose call
//! panicked, and turn C pointers and lengths into checked Rust references.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use quicseal_core::{Batch, Error, Outcome};

use crate::quicseal_status::{self, *};
use crate::{quicseal_batch, quicseal_result};

/// What a body returns: `Err` carries the status to hand back.
pub(crate) type Status<T = ()> = Result<T, quicseal_status>;

/// Runs `body`, turning its outcome, or a panic, into a status.
pub(crate) fn guard(body: impl FnOnce() -> Status) -> quicseal_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => QUICSEAL_OK,
        Ok(Err(status)) => status,
        Err(_) => QUICSEAL_PANIC,
    }
}

/// Runs `body`, returning `fallback` if it panics.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// What a handle holds around its state: the poison flag.
pub(crate) struct Handle<F> {
    state: F,
    poisoned: Cell<bool>,
}

impl<F> Handle<F> {
    pub(crate) fn new(state: F) -> Handle<F> {
        Handle {
            state,
            poisoned: Cell::new(false),
        }
    }

    /// Runs `body` on the state unless the handle is poisoned; a panic poisons it, since the
    /// flow's key-phase and packet-number state may be half updated (sealing again could
    /// reuse a nonce).
    pub(crate) fn run(&mut self, body: impl FnOnce(&mut F) -> Status) -> quicseal_status {
        let state = &mut self.state;
        Self::poisoning(&self.poisoned, || body(state))
    }

    /// Like [`run`](Self::run), for calls that only read the state.
    pub(crate) fn run_ref(&self, body: impl FnOnce(&F) -> Status) -> quicseal_status {
        Self::poisoning(&self.poisoned, || body(&self.state))
    }

    fn poisoning(poisoned: &Cell<bool>, body: impl FnOnce() -> Status) -> quicseal_status {
        if poisoned.get() {
            return QUICSEAL_PANIC;
        }
        let status = guard(body);
        if status == QUICSEAL_PANIC {
            poisoned.set(true);
        }
        status
    }
}

/// Checks that `len` bytes at `ptr` can be made a slice: NULL only with a zero length, and
/// the range within the address space.
fn check_range(ptr: *const u8, len: usize) -> Status<bool> {
    if len == 0 {
        return Ok(false);
    }
    if ptr.is_null() {
        return Err(QUICSEAL_NULL_POINTER);
    }
    if len > isize::MAX as usize || (ptr as usize).checked_add(len).is_none() {
        return Err(QUICSEAL_INVALID_ARGUMENT);
    }
    Ok(true)
}

/// The `len` bytes at `ptr`; NULL is accepted with a zero length.
///
/// # Safety
///
/// Unless NULL or `len` is 0, `ptr` is valid for reads of `len` bytes that nothing writes
/// while the slice lives.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Status<&'a [u8]> {
    if !check_range(ptr, len)? {
        return Ok(&[]);
    }
    // SAFETY: `ptr` is non-null and the range fits the address space (checked); the caller
    // guarantees it is readable and not written while the slice lives. u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The `len` writable bytes at `ptr`; NULL is accepted with a zero length.
///
/// # Safety
///
/// Unless NULL or `len` is 0, `ptr` is valid for reads and writes of `len` bytes that nothing
/// else accesses while the slice lives (the caller checks overlaps with [`disjoint`]).
pub(crate) unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> Status<&'a mut [u8]> {
    if !check_range(ptr, len)? {
        return Ok(&mut []);
    }
    // SAFETY: as in `bytes`, and the caller guarantees exclusive access.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An output pointer the caller must pass: non-null and aligned.
pub(crate) fn out<T>(ptr: *mut T) -> Status<NonNull<T>> {
    let ptr = NonNull::new(ptr).ok_or(QUICSEAL_NULL_POINTER)?;
    if !ptr.as_ptr().is_aligned() {
        return Err(QUICSEAL_INVALID_ARGUMENT);
    }
    Ok(ptr)
}

/// An output pointer the caller may leave NULL.
pub(crate) fn optional_out<T>(ptr: *mut T) -> Status<Option<NonNull<T>>> {
    match ptr.is_null() {
        true => Ok(None),
        false => out(ptr).map(Some),
    }
}

/// An array of `len` elements for output: NULL only with a zero length, aligned, and within
/// the address space.
pub(crate) fn out_array<T>(ptr: *mut T, len: usize) -> Status<Option<NonNull<T>>> {
    if len == 0 {
        return Ok(None);
    }
    let bytes = len
        .checked_mul(size_of::<T>())
        .ok_or(QUICSEAL_INVALID_ARGUMENT)?;
    check_range(ptr.cast(), bytes)?;
    out(ptr).map(Some)
}

/// A span of memory a call touches, for the overlap check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: usize,
    len: usize,
    written: bool,
}

impl Span {
    /// `len` bytes at `ptr` that the call only reads: NULL only with a zero length, and
    /// within the address space.
    pub(crate) fn read(ptr: *const u8, len: usize) -> Status<Span> {
        check_range(ptr, len)?;
        Ok(Span {
            start: ptr as usize,
            len,
            written: false,
        })
    }

    /// `len` bytes at `ptr` that the call writes, checked as by [`read`](Self::read).
    pub(crate) fn written(ptr: *const u8, len: usize) -> Status<Span> {
        Ok(Span {
            written: true,
            ..Span::read(ptr, len)?
        })
    }

    /// The `count` elements at `ptr`, already checked by [`out`] or [`out_array`], written.
    pub(crate) fn written_array<T>(ptr: Option<NonNull<T>>, count: usize) -> Span {
        Span {
            start: ptr.map_or(0, |p| p.as_ptr() as usize),
            len: ptr.map_or(0, |_| count * size_of::<T>()),
            written: true,
        }
    }

    fn overlaps(&self, other: &Span) -> bool {
        self.len > 0
            && other.len > 0
            && self.start < other.start + other.len
            && other.start < self.start + self.len
    }
}

/// Fails with `QUICSEAL_INVALID_ARGUMENT` if a span the call writes overlaps any other: Rust
/// may not hold a mutable reference to memory that another reference sees. (Calls that work
/// in place, such as `quicseal_tx_seal_in_place`, take one buffer that is both read and
/// written, so there is nothing for it to overlap.)
pub(crate) fn disjoint(spans: &[Span]) -> Status {
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if (a.written || b.written) && a.overlaps(b) {
                return Err(QUICSEAL_INVALID_ARGUMENT);
            }
        }
    }
    Ok(())
}

/// Writes `value` to an output pointer checked by [`out`].
///
/// # Safety
///
/// `ptr` is valid for writes of a `T`, and no reference to its memory is live.
pub(crate) unsafe fn put<T>(ptr: NonNull<T>, value: T) {
    // SAFETY: the caller guarantees `ptr` is writable and unaliased; `out` checked that it
    // is non-null and aligned. `write` reads nothing of what was there, which may be
    // uninitialised C memory.
    unsafe { ptr.as_ptr().write(value) }
}

/// Writes `results` to the C array checked by [`out_array`], which holds at least as many.
///
/// # Safety
///
/// `array` is valid for writes of `results.len()` elements (or `results` is empty), and no
/// reference to that memory is live.
pub(crate) unsafe fn put_results(array: Option<NonNull<quicseal_result>>, results: &[Outcome]) {
    let Some(array) = array else {
        debug_assert!(results.is_empty(), "a NULL array has no room");
        return;
    };
    for (i, outcome) in results.iter().enumerate() {
        // SAFETY: the caller guarantees room for `results.len()` elements, so `i` is in
        // bounds; `array` is aligned (checked by `out_array`).
        unsafe { put(array.add(i), quicseal_result::from(outcome)) }
    }
}

/// Runs one batch through the core: `outcomes` (the handle's reusable scratch) gets `room`
/// slots, `process` fills them, then the batch's outcomes go to the C `results` array and its
/// summary to `batch_out`, if given.
///
/// # Safety
///
/// As for [`put_results`] with `room` elements, and [`put`] for `batch_out`.
pub(crate) unsafe fn run_batch(
    outcomes: &mut Vec<Outcome>,
    room: usize,
    results: Option<NonNull<quicseal_result>>,
    batch_out: Option<NonNull<quicseal_batch>>,
    process: impl FnOnce(&mut [Outcome]) -> Result<Batch, Error>,
) -> Status {
    outcomes.clear();
    outcomes.resize(room, Err(Error::Malformed));
    let batch = process(outcomes)?;
    // SAFETY: the caller's guarantees; the core writes at most `room` outcomes.
    unsafe {
        put_results(results, &outcomes[..batch.datagrams]);
        if let Some(batch_out) = batch_out {
            put(batch_out, quicseal_batch::from(batch));
        }
    }
    Ok(())
}

/// Reports one datagram's outcome: writes it to `result_out` (if given) and returns its
/// status.
///
/// # Safety
///
/// As for [`put`], when `result_out` is given.
pub(crate) unsafe fn report(
    result_out: Option<NonNull<quicseal_result>>,
    outcome: &Outcome,
) -> Status {
    let result = quicseal_result::from(outcome);
    if let Some(result_out) = result_out {
        // SAFETY: the caller's guarantee.
        unsafe { put(result_out, result) }
    }
    match result.status {
        QUICSEAL_OK => Ok(()),
        status => Err(status),
    }
}

/// Builds a handle with `build` and stores it in `*handle_out`, which is set to NULL first,
/// so that it is NULL on any failure.
///
/// # Safety
///
/// `handle_out` is NULL (refused) or valid for writes of a pointer.
pub(crate) unsafe fn new_handle<H>(
    handle_out: *mut *mut H,
    build: impl FnOnce() -> Status<H>,
) -> quicseal_status {
    guard(|| {
        let handle_out = out(handle_out)?;
        // SAFETY: `out` checked that it is non-null and aligned; the caller guarantees it is
        // writable.
        unsafe { put(handle_out, std::ptr::null_mut()) };
        let handle = Box::into_raw(Box::new(build()?));
        // SAFETY: as above.
        unsafe { put(handle_out, handle) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_poisons_the_handle() {
        let mut handle = Handle::new(0u32);
        assert_eq!(handle.run_ref(|_| Ok(())), QUICSEAL_OK);
        assert_eq!(handle.run(|_| Err(QUICSEAL_MALFORMED)), QUICSEAL_MALFORMED);
        assert_eq!(
            handle.run(|flow| {
                *flow += 1;
                panic!("boundary test")
            }),
            QUICSEAL_PANIC
        );
        let mut ran = false;
        assert_eq!(
            handle.run(|_| {
                ran = true;
                Ok(())
            }),
            QUICSEAL_PANIC
        );
        assert!(!ran, "a poisoned handle runs nothing");
        assert_eq!(handle.run_ref(|_| Ok(())), QUICSEAL_PANIC);
        assert_eq!(guard(|| panic!("boundary test")), QUICSEAL_PANIC);
        assert_eq!(guard_value(7, || panic!("boundary test")), 7);
    }

    #[test]
    fn slices_accept_null_only_when_empty() {
        // SAFETY: NULL pointers, which are never dereferenced.
        unsafe {
            assert_eq!(bytes(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(bytes(std::ptr::null(), 1), Err(QUICSEAL_NULL_POINTER));
            assert!(bytes_mut(std::ptr::null_mut(), 0).is_ok());
        }
        let end = usize::MAX as *const u8;
        // SAFETY: the range is refused before anything is read.
        assert_eq!(unsafe { bytes(end, 2) }, Err(QUICSEAL_INVALID_ARGUMENT));
        assert_eq!(
            out_array(std::ptr::dangling_mut::<u64>(), usize::MAX / 4).err(),
            Some(QUICSEAL_INVALID_ARGUMENT)
        );
        assert_eq!(
            out(std::ptr::dangling_mut::<u64>().wrapping_byte_add(3)).err(),
            Some(QUICSEAL_INVALID_ARGUMENT),
            "misaligned"
        );
    }

    #[test]
    fn written_spans_must_not_overlap() {
        let buffer = [0u8; 64];
        let at = |i: usize| buffer[i..].as_ptr();
        let read = |i, n| Span::read(at(i), n).unwrap();
        let written = |i, n| Span::written(at(i), n).unwrap();
        assert!(disjoint(&[read(0, 32), written(32, 32)]).is_ok());
        assert!(disjoint(&[read(0, 33), written(32, 32)]).is_err());
        assert!(
            disjoint(&[read(0, 64), read(0, 64)]).is_ok(),
            "reads may share"
        );
        assert!(disjoint(&[written(0, 64), written(10, 0)]).is_ok(), "empty");
        assert!(disjoint(&[read(0, 8), written(40, 8), written(44, 1)]).is_err());
        assert_eq!(
            Span::read(std::ptr::null(), 1).err(),
            Some(QUICSEAL_NULL_POINTER)
        );
    }
}
