//! The receiving direction: `quicseal_rx`.

use quicseal_core::{Outcome, RxFlow, gro_datagrams};

use crate::boundary::{
    Handle, Span, Status, bytes, bytes_mut, disjoint, new_handle, optional_out, out, out_array,
    put, report, run_batch,
};
use crate::config::suite;
use crate::quicseal_status::{self, *};
use crate::tx::{key_material, put_counters, read_config};
use crate::{
    quicseal_batch, quicseal_config, quicseal_counters, quicseal_result, quicseal_rx_state,
};

/// A receiving flow: one connection's 1-RTT keys (current, next, and previous for late
/// packets), largest packet number received, limits and counters. Opaque; create it with
/// `quicseal_rx_new_from_secret` or `quicseal_rx_new_from_keys`, free it with
/// `quicseal_rx_free`. Not thread-safe: use one handle from one thread at a time (it may
/// move between threads).
pub struct quicseal_rx {
    handle: Handle<Rx>,
}

struct Rx {
    flow: RxFlow,
    /// Room for a batch's outcomes, kept so that batches allocate nothing once it has grown.
    outcomes: Vec<Outcome>,
}

impl quicseal_rx {
    fn new(flow: RxFlow) -> quicseal_rx {
        quicseal_rx {
            handle: Handle::new(Rx {
                flow,
                outcomes: Vec::new(),
            }),
        }
    }
}

/// Runs `body` on the flow behind `rx`.
///
/// # Safety
///
/// `rx` is NULL or a live handle that no other thread is using.
unsafe fn with_rx(rx: *mut quicseal_rx, body: impl FnOnce(&mut Rx) -> Status) -> quicseal_status {
    // SAFETY: the caller passes NULL or a live, unshared handle.
    match unsafe { rx.as_mut() } {
        Some(rx) => rx.handle.run(body),
        None => QUICSEAL_NULL_POINTER,
    }
}

/// Like [`with_rx`], reading only.
///
/// # Safety
///
/// As for [`with_rx`].
unsafe fn with_rx_ref(rx: *const quicseal_rx, body: impl FnOnce(&Rx) -> Status) -> quicseal_status {
    // SAFETY: the caller passes NULL or a live handle no other thread is using.
    match unsafe { rx.as_ref() } {
        Some(rx) => rx.handle.run_ref(body),
        None => QUICSEAL_NULL_POINTER,
    }
}

/// Creates a receiving flow at key generation 0 of a TLS traffic secret; later generations
/// derive from it ("quic ku"), and the next one is kept ready, so the peer's key updates
/// need no calls.
///
/// `suite` is a `QUICSEAL_TLS_*` code point; `secret` holds `secret_len` bytes, the suite's
/// hash length. The flow copies the secret.
///
/// On success `*rx_out` is the new handle; on failure it is NULL.
///
/// # Safety
///
/// `secret` is valid for reads of `secret_len` bytes, `config` for reads of a
/// `quicseal_config`, `rx_out` for writes of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_new_from_secret(
    suite: u16,
    secret: *const u8,
    secret_len: usize,
    config: *const quicseal_config,
    rx_out: *mut *mut quicseal_rx,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        new_handle(rx_out, || {
            let suite = self::suite(suite)?;
            let config = read_config(config)?;
            let flow = RxFlow::from_secret(suite, bytes(secret, secret_len)?, config)?;
            Ok(quicseal_rx::new(flow))
        })
    }
}

/// Creates a receiving flow at key generation 0 of explicit keys (`key` and `hp` of the
/// suite's key length, 12-byte `iv`). Install each next generation with
/// `quicseal_rx_install_next_keys`, or packets of the next key phase are refused with
/// `QUICSEAL_KEY_UNAVAILABLE`.
///
/// On success `*rx_out` is the new handle; on failure it is NULL.
///
/// # Safety
///
/// Each buffer is valid for reads of its length, `config` for reads of a `quicseal_config`,
/// `rx_out` for writes of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_new_from_keys(
    suite: u16,
    key: *const u8,
    key_len: usize,
    iv: *const u8,
    iv_len: usize,
    hp: *const u8,
    hp_len: usize,
    config: *const quicseal_config,
    rx_out: *mut *mut quicseal_rx,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        new_handle(rx_out, || {
            let suite = self::suite(suite)?;
            let config = read_config(config)?;
            let keys = key_material(suite, (key, key_len), (iv, iv_len), Some((hp, hp_len)))?;
            Ok(quicseal_rx::new(RxFlow::from_keys(&keys, config)?))
        })
    }
}

/// Frees a receiving flow and wipes its keys. NULL is ignored.
///
/// # Safety
///
/// `rx` is NULL or a handle from `quicseal_rx_new_*` not freed yet; it is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_free(rx: *mut quicseal_rx) {
    if rx.is_null() {
        return;
    }
    // SAFETY: a live handle made by `Box::into_raw` in `new_handle`, freed once.
    let rx = unsafe { Box::from_raw(rx) };
    let _ = crate::boundary::guard(move || {
        drop(rx);
        Ok(())
    });
}

/// Installs the next key generation's AEAD `key` and 12-byte `iv`, for flows created from
/// explicit keys; replaces, and wipes, any next keys already there.
///
/// # Safety
///
/// `rx` is NULL or a live handle; each buffer is valid for reads of its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_install_next_keys(
    rx: *mut quicseal_rx,
    key: *const u8,
    key_len: usize,
    iv: *const u8,
    iv_len: usize,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_rx(rx, |rx| {
            let keys = key_material(rx.flow.suite(), (key, key_len), (iv, iv_len), None)?;
            Ok(rx.flow.install_next_keys(&keys)?)
        })
    }
}

/// Derives the next key generation's keys if a key update has used them up (flows made from
/// a secret): call it off the receive path, after a batch or from a timer, so that the
/// first packet of the peer's next key update does not wait for the derivation (an open
/// derives them itself when they are missing). `QUICSEAL_OK` with nothing to do when they are
/// ready or the flow was made from explicit keys (`quicseal_rx_install_next_keys`);
/// `quicseal_rx_state.next_keys_ready` says which.
///
/// # Safety
///
/// `rx` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_prepare_next_keys(rx: *mut quicseal_rx) -> quicseal_status {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { with_rx(rx, |rx| Ok(rx.flow.prepare_next_keys()?)) }
}

/// Drops, and wipes, the previous generation's keys: late packets of the old key phase no
/// longer open. RFC 9001 §6.5 suggests doing so about three PTOs after a key update.
///
/// # Safety
///
/// `rx` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_retire_previous_keys(rx: *mut quicseal_rx) -> quicseal_status {
    // SAFETY: the caller's guarantee, passed on.
    unsafe {
        with_rx(rx, |rx| {
            rx.flow.retire_previous_keys();
            Ok(())
        })
    }
}

/// Moves to the next key generation without a packet, as when state is restored; the
/// previous generation's keys are dropped. `QUICSEAL_KEY_UNAVAILABLE` for a flow of explicit
/// keys without next keys installed.
///
/// # Safety
///
/// `rx` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_advance_generation(rx: *mut quicseal_rx) -> quicseal_status {
    // SAFETY: the caller's guarantee, passed on.
    unsafe { with_rx(rx, |rx| Ok(rx.flow.advance_generation()?)) }
}

/// Sets the largest packet number received, against which truncated packet numbers are
/// decoded (as when state moves from one owner to another).
///
/// # Safety
///
/// `rx` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_set_largest_received(
    rx: *mut quicseal_rx,
    largest_received: u64,
) -> quicseal_status {
    // SAFETY: the caller's guarantee, passed on.
    unsafe {
        with_rx(rx, |rx| {
            rx.flow.set_largest_received(Some(largest_received));
            Ok(())
        })
    }
}

/// Forgets the largest packet number received, as for a flow that has received nothing.
///
/// # Safety
///
/// `rx` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_clear_largest_received(
    rx: *mut quicseal_rx,
) -> quicseal_status {
    // SAFETY: the caller's guarantee, passed on.
    unsafe {
        with_rx(rx, |rx| {
            rx.flow.set_largest_received(None);
            Ok(())
        })
    }
}

/// Opens one datagram from `src` into `dst`: long-header packets at its front are copied
/// untouched, then the 1-RTT packet's cleartext header and payload (without the tag, so
/// `dst` needs `src_len - QUICSEAL_TAG_LEN` bytes, or `src_len` without a 1-RTT packet).
/// On failure no plaintext is left in `dst`. `dst` must not overlap `src`; to open where the
/// datagram lies, use `quicseal_rx_open_in_place`. `result_out` (may be NULL) receives the
/// outcome; the return value is its status.
///
/// # Safety
///
/// `rx` is NULL or a live handle; `src` is valid for reads of `src_len` bytes, `dst` for
/// writes of `dst_len` bytes; `result_out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_open(
    rx: *mut quicseal_rx,
    src: *const u8,
    src_len: usize,
    dst: *mut u8,
    dst_len: usize,
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_rx(rx, |rx| {
            let result_out = optional_out(result_out)?;
            disjoint(&[
                Span::read(src, src_len)?,
                Span::written(dst, dst_len)?,
                Span::written_array(result_out, 1),
            ])?;
            let src = [bytes(src, src_len)?];
            let mut dst = [bytes_mut(dst, dst_len)?];
            let outcome = rx.flow.open(&src, &mut dst);
            report(result_out, &outcome)
        })
    }
}

/// Opens one datagram where it lies, in `buf[0..len)`. On success the first
/// `result_out->len` bytes are the long-header packets (untouched) and the 1-RTT packet's
/// cleartext header and payload; the tag's 16 bytes after them are left as they were. On an
/// authentication failure the payload is zeroed. `result_out` (may be NULL) receives the
/// outcome; the return value is its status.
///
/// # Safety
///
/// `rx` is NULL or a live handle; `buf` is valid for reads and writes of `len` bytes;
/// `result_out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_open_in_place(
    rx: *mut quicseal_rx,
    buf: *mut u8,
    len: usize,
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_rx(rx, |rx| {
            let result_out = optional_out(result_out)?;
            disjoint(&[Span::written(buf, len)?, Span::written_array(result_out, 1)])?;
            let outcome = rx.flow.open_in_place(bytes_mut(buf, len)?);
            report(result_out, &outcome)
        })
    }
}

/// Opens a GRO batch in place: `buf[0..len)` holds datagrams coalesced at `segment_size`
/// bytes (the last may be shorter), as the kernel hands them over with `UDP_GRO`; each is
/// opened where it lies, as by `quicseal_rx_open_in_place`, and its outcome goes to
/// `results[i]`. Datagram `i` starts at `buf + i * segment_size`; its cleartext is the first
/// `results[i].len` bytes there. An empty buffer (`len` 0) is one empty datagram, refused as
/// `QUICSEAL_MALFORMED` in `results[0]`.
///
/// Returns `QUICSEAL_OK` when the batch was processed (check `results` or `batch_out`), or
/// refuses it whole, touching nothing: `QUICSEAL_INVALID_CONFIG` for a zero `segment_size`,
/// `QUICSEAL_TOO_MANY_SEGMENTS`, `QUICSEAL_BUFFER_TOO_SMALL` for too few `results`.
/// `batch_out` may be NULL.
///
/// # Safety
///
/// `rx` is NULL or a live handle; `buf` is valid for reads and writes of `len` bytes,
/// `results` for writes of `results_len` elements; `batch_out` is NULL or valid for writes.
/// The buffers do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_open_gro(
    rx: *mut quicseal_rx,
    buf: *mut u8,
    len: usize,
    segment_size: usize,
    results: *mut quicseal_result,
    results_len: usize,
    batch_out: *mut quicseal_batch,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_rx(rx, |rx| {
            let results = out_array(results, results_len)?;
            let batch_out = optional_out(batch_out)?;
            disjoint(&[
                Span::written(buf, len)?,
                Span::written_array(results, results_len),
                Span::written_array(batch_out, 1),
            ])?;
            let buf = bytes_mut(buf, len)?;
            // The core's count of datagrams (an empty buffer is one); more than the flow takes
            // is refused by the core before it looks at the results.
            let room = gro_datagrams(len, segment_size).map_or(0, |count| count.min(results_len));
            run_batch(&mut rx.outcomes, room, results, batch_out, |outcomes| {
                rx.flow.open_gro(buf, segment_size, outcomes)
            })
        })
    }
}

/// Reads the flow's key-phase and packet-number state into `*state_out`.
///
/// # Safety
///
/// `rx` is NULL or a live handle; `state_out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_get_state(
    rx: *const quicseal_rx,
    state_out: *mut quicseal_rx_state,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_rx_ref(rx, |rx| {
            let state_out = out(state_out)?;
            let flow = &rx.flow;
            let state = quicseal_rx_state {
                generation: flow.generation(),
                largest_received: flow.largest_received().unwrap_or(0),
                suite: flow.suite().code(),
                key_phase: flow.key_phase(),
                has_previous_keys: flow.has_previous_keys(),
                has_largest_received: flow.largest_received().is_some(),
                integrity_limit_reached: flow.integrity_limit_reached(),
                next_keys_ready: flow.next_keys_ready(),
            };
            put(state_out, state);
            Ok(())
        })
    }
}

/// Reads the flow's counters into `*counters_out`.
///
/// # Safety
///
/// `rx` is NULL or a live handle; `counters_out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_rx_get_counters(
    rx: *const quicseal_rx,
    counters_out: *mut quicseal_counters,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { with_rx_ref(rx, |rx| put_counters(counters_out, rx.flow.counters())) }
}
