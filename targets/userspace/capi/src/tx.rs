//! The sending direction: `quicseal_tx`.

use std::ptr::NonNull;

use quicseal_core::{KeyMaterial, Outcome, TxFlow};

use crate::boundary::{
    Handle, Span, Status, bytes, bytes_mut, disjoint, new_handle, optional_out, out, out_array,
    put, report, run_batch,
};
use crate::config::suite;
use crate::quicseal_status::{self, *};
use crate::{
    quicseal_batch, quicseal_config, quicseal_counters, quicseal_result, quicseal_tx_state,
};

/// A sending flow: one connection's 1-RTT keys, key-phase state, packet numbers, limits and
/// counters. Opaque; create it with `quicseal_tx_new_from_secret` or
/// `quicseal_tx_new_from_keys`, free it with `quicseal_tx_free`. Not thread-safe: use one
/// handle from one thread at a time (it may move between threads).
pub struct quicseal_tx {
    handle: Handle<Tx>,
}

struct Tx {
    flow: TxFlow,
    /// Room for a batch's outcomes, kept so that batches allocate nothing once it has grown.
    outcomes: Vec<Outcome>,
}

impl quicseal_tx {
    fn new(flow: TxFlow) -> quicseal_tx {
        quicseal_tx {
            handle: Handle::new(Tx {
                flow,
                outcomes: Vec::new(),
            }),
        }
    }
}

/// Runs `body` on the flow behind `tx`.
///
/// # Safety
///
/// `tx` is NULL or a live handle that no other thread is using.
unsafe fn with_tx(tx: *mut quicseal_tx, body: impl FnOnce(&mut Tx) -> Status) -> quicseal_status {
    // SAFETY: the caller passes NULL or a live, unshared handle.
    match unsafe { tx.as_mut() } {
        Some(tx) => tx.handle.run(body),
        None => QUICSEAL_NULL_POINTER,
    }
}

/// Like [`with_tx`], reading only.
///
/// # Safety
///
/// As for [`with_tx`].
unsafe fn with_tx_ref(tx: *const quicseal_tx, body: impl FnOnce(&Tx) -> Status) -> quicseal_status {
    // SAFETY: the caller passes NULL or a live handle no other thread is using.
    match unsafe { tx.as_ref() } {
        Some(tx) => tx.handle.run_ref(body),
        None => QUICSEAL_NULL_POINTER,
    }
}

/// Reads the caller's configuration.
///
/// # Safety
///
/// `config` is NULL (refused) or valid for reads of a `quicseal_config`.
pub(crate) unsafe fn read_config(
    config: *const quicseal_config,
) -> Status<quicseal_core::FlowConfig> {
    let config = out(config.cast_mut())?;
    // SAFETY: non-null and aligned (checked by `out`), readable (the caller's guarantee);
    // every field is an integer, so any bytes are a valid value.
    unsafe { config.as_ptr().read() }.to_flow_config()
}

/// Explicit keys from C buffers. Without `hp` (next-generation keys, whose header-protection
/// key never changes and is ignored by the core) a zero key of the right length stands in.
///
/// # Safety
///
/// Each pointer is NULL or valid for reads of its length.
pub(crate) unsafe fn key_material(
    suite: quicseal_core::CipherSuite,
    key: (*const u8, usize),
    iv: (*const u8, usize),
    hp: Option<(*const u8, usize)>,
) -> Status<KeyMaterial> {
    // SAFETY: the caller's guarantee, for each buffer.
    let (key, iv) = unsafe { (bytes(key.0, key.1)?, bytes(iv.0, iv.1)?) };
    let unused_hp = [0u8; 32];
    let hp = match hp {
        // SAFETY: as above.
        Some((hp, hp_len)) => unsafe { bytes(hp, hp_len)? },
        None => unused_hp
            .get(..suite.key_len())
            .ok_or(QUICSEAL_INTERNAL_ERROR)?,
    };
    Ok(KeyMaterial::new(suite, key, iv, hp)?)
}

/// Creates a sending flow at key generation 0 of a TLS traffic secret; later generations
/// derive from it ("quic ku"), so key updates need no further calls.
///
/// `suite` is a `QUICSEAL_TLS_*` code point; `secret` holds `secret_len` bytes, the suite's
/// hash length (`quicseal_suite_secret_len`). The flow copies the secret; the caller may wipe
/// its own copy when the call returns.
///
/// On success `*tx_out` is the new handle; on failure it is NULL.
///
/// # Safety
///
/// `secret` is valid for reads of `secret_len` bytes, `config` for reads of a
/// `quicseal_config`, `tx_out` for writes of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_new_from_secret(
    suite: u16,
    secret: *const u8,
    secret_len: usize,
    config: *const quicseal_config,
    tx_out: *mut *mut quicseal_tx,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        new_handle(tx_out, || {
            let suite = self::suite(suite)?;
            let config = read_config(config)?;
            let flow = TxFlow::from_secret(suite, bytes(secret, secret_len)?, config)?;
            Ok(quicseal_tx::new(flow))
        })
    }
}

/// Creates a sending flow at key generation 0 of explicit keys, for TLS stacks that hand out
/// keys rather than secrets: the AEAD `key` and header-protection `hp` key of the suite's key
/// length (`quicseal_suite_key_len`), and the 12-byte `iv`. Before the sender flips the key
/// phase, install the next generation's keys with `quicseal_tx_install_next_keys`.
///
/// On success `*tx_out` is the new handle; on failure it is NULL.
///
/// # Safety
///
/// Each buffer is valid for reads of its length, `config` for reads of a `quicseal_config`,
/// `tx_out` for writes of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_new_from_keys(
    suite: u16,
    key: *const u8,
    key_len: usize,
    iv: *const u8,
    iv_len: usize,
    hp: *const u8,
    hp_len: usize,
    config: *const quicseal_config,
    tx_out: *mut *mut quicseal_tx,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        new_handle(tx_out, || {
            let suite = self::suite(suite)?;
            let config = read_config(config)?;
            let keys = key_material(suite, (key, key_len), (iv, iv_len), Some((hp, hp_len)))?;
            Ok(quicseal_tx::new(TxFlow::from_keys(&keys, config)?))
        })
    }
}

/// Frees a sending flow and wipes its keys. NULL is ignored.
///
/// # Safety
///
/// `tx` is NULL or a handle from `quicseal_tx_new_*` not freed yet; it is invalid afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_free(tx: *mut quicseal_tx) {
    if tx.is_null() {
        return;
    }
    // SAFETY: a live handle made by `Box::into_raw` in `new_handle`, freed once.
    let tx = unsafe { Box::from_raw(tx) };
    // Dropping only wipes and frees memory; a panic there is still not let into C.
    let _ = crate::boundary::guard(move || {
        drop(tx);
        Ok(())
    });
}

/// Installs the next key generation's AEAD `key` (the suite's key length) and 12-byte `iv`,
/// for flows created from explicit keys; replaces, and wipes, any next keys already there.
/// (The header-protection key never changes with a key update.)
///
/// # Safety
///
/// `tx` is NULL or a live handle; each buffer is valid for reads of its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_install_next_keys(
    tx: *mut quicseal_tx,
    key: *const u8,
    key_len: usize,
    iv: *const u8,
    iv_len: usize,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx(tx, |tx| {
            let keys = key_material(tx.flow.suite(), (key, key_len), (iv, iv_len), None)?;
            Ok(tx.flow.install_next_keys(&keys)?)
        })
    }
}

/// Seals one datagram from `src` into `dst`: long-header packets at its front are copied
/// untouched, the trailing 1-RTT packet (if any) is sealed, growing by `QUICSEAL_TAG_LEN`.
/// `src` holds the cleartext short header (key phase bit set as the sender wants it: flipping
/// it starts a key update) and payload; the full packet number is recovered from the
/// header's truncated one against the largest sealed so far, and must be larger.
///
/// `dst` needs `src_len + QUICSEAL_TAG_LEN` bytes and must not overlap `src` (to seal where
/// the datagram lies, use `quicseal_tx_seal_in_place`). Nothing is written to `dst` unless it
/// succeeds. `result_out` (may be NULL) receives the outcome; the
/// return value is its status.
///
/// # Safety
///
/// `tx` is NULL or a live handle; `src` is valid for reads of `src_len` bytes, `dst` for
/// writes of `dst_len` bytes; `result_out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_seal(
    tx: *mut quicseal_tx,
    src: *const u8,
    src_len: usize,
    dst: *mut u8,
    dst_len: usize,
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { seal_one(tx, None, (src, src_len), (dst, dst_len), result_out) }
}

/// Like `quicseal_tx_seal`, with the full packet number given: it must end in the header's
/// truncated bits (`QUICSEAL_PACKET_NUMBER_MISMATCH`) and be above the largest sealed so far.
///
/// # Safety
///
/// As for `quicseal_tx_seal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_seal_numbered(
    tx: *mut quicseal_tx,
    packet_number: u64,
    src: *const u8,
    src_len: usize,
    dst: *mut u8,
    dst_len: usize,
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        seal_one(
            tx,
            Some(packet_number),
            (src, src_len),
            (dst, dst_len),
            result_out,
        )
    }
}

/// # Safety
///
/// As for `quicseal_tx_seal`.
unsafe fn seal_one(
    tx: *mut quicseal_tx,
    packet_number: Option<u64>,
    src: (*const u8, usize),
    dst: (*mut u8, usize),
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx(tx, |tx| {
            let result_out = optional_out(result_out)?;
            disjoint(&[
                Span::read(src.0, src.1)?,
                Span::written(dst.0, dst.1)?,
                Span::written_array(result_out, 1),
            ])?;
            let src = [bytes(src.0, src.1)?];
            let mut dst = [bytes_mut(dst.0, dst.1)?];
            let outcome = match packet_number {
                Some(number) => tx.flow.seal_numbered(number, &src, &mut dst),
                None => tx.flow.seal(&src, &mut dst),
            };
            report(result_out, &outcome)
        })
    }
}

/// Seals one datagram where it lies, for stacks that build packets in their send buffer:
/// `buf[0..len)` holds the cleartext datagram as for `quicseal_tx_seal` (long-header packets
/// at its front stay as they are), and `buf[len..len + QUICSEAL_TAG_LEN)` is room for the
/// tag, so `buf_len` must be at least `len + QUICSEAL_TAG_LEN` when the datagram ends in a
/// 1-RTT packet (`QUICSEAL_BUFFER_TOO_SMALL` otherwise). On success the sealed datagram is the
/// first `result_out->len` bytes of `buf`; nothing in `buf` is changed unless it succeeds.
/// `result_out` (may be NULL) receives the outcome, and must not lie inside `buf`; the return
/// value is its status.
///
/// # Safety
///
/// `tx` is NULL or a live handle; `buf` is valid for reads and writes of `buf_len` bytes;
/// `result_out` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_seal_in_place(
    tx: *mut quicseal_tx,
    buf: *mut u8,
    buf_len: usize,
    len: usize,
    result_out: *mut quicseal_result,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx(tx, |tx| {
            let result_out = optional_out(result_out)?;
            disjoint(&[
                Span::written(buf, buf_len)?,
                Span::written_array(result_out, 1),
            ])?;
            let outcome = tx.flow.seal_in_place(bytes_mut(buf, buf_len)?, len);
            report(result_out, &outcome)
        })
    }
}

/// Seals a GSO batch. `src` holds cleartext datagrams at a stride of
/// `gso_size - QUICSEAL_TAG_LEN` bytes (the last may be shorter); each is sealed as by
/// `quicseal_tx_seal` into `dst` at a stride of `gso_size`, so that every sealed datagram but
/// the last is exactly `gso_size` bytes: `dst` is ready for one `UDP_SEGMENT` send of
/// `batch_out->len` bytes with segment size `gso_size`.
///
/// Datagram `i`'s outcome goes to `results[i]`; `results_len` must cover every datagram.
/// A datagram that fails leaves nothing sealed in its stretch of `dst` (at most its copied
/// long-header packets), so a batch with `batch_out->failed > 0` must not be sent as it is.
///
/// Returns `QUICSEAL_OK` when the batch was processed (check `results` or `batch_out`), or
/// refuses it whole, writing nothing: `QUICSEAL_GSO_SIZE_TOO_SMALL` (below
/// `quicseal_tx_state.min_gso_size`), `QUICSEAL_TOO_MANY_SEGMENTS`,
/// `QUICSEAL_BUFFER_TOO_SMALL` (`dst` short of `src_len` plus a tag per datagram, or
/// `results_len` short of the datagrams). `batch_out` may be NULL.
///
/// # Safety
///
/// `tx` is NULL or a live handle; `src` is valid for reads of `src_len` bytes, `dst` for
/// writes of `dst_len` bytes, `results` for writes of `results_len` elements; `batch_out` is
/// NULL or valid for writes. The buffers do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_seal_gso(
    tx: *mut quicseal_tx,
    src: *const u8,
    src_len: usize,
    gso_size: usize,
    dst: *mut u8,
    dst_len: usize,
    results: *mut quicseal_result,
    results_len: usize,
    batch_out: *mut quicseal_batch,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx(tx, |tx| {
            let results = out_array(results, results_len)?;
            let batch_out = optional_out(batch_out)?;
            disjoint(&[
                Span::read(src, src_len)?,
                Span::written(dst, dst_len)?,
                Span::written_array(results, results_len),
                Span::written_array(batch_out, 1),
            ])?;
            let src = [bytes(src, src_len)?];
            let mut dst = [bytes_mut(dst, dst_len)?];
            // Room for the core's count of datagrams, or none where the core refuses the
            // batch's shape whole (it says why before it looks at the results).
            let room = tx
                .flow
                .gso_layout(src_len, gso_size)
                .map_or(0, |layout| layout.segments.min(results_len));
            run_batch(&mut tx.outcomes, room, results, batch_out, |outcomes| {
                tx.flow.seal_gso(&src, gso_size, &mut dst, outcomes)
            })
        })
    }
}

/// Seals a GSO batch in place, for stacks that build packets in their send buffer:
/// `buf[0..len)` is laid out as it will be sent, datagrams at a stride of `gso_size` (the
/// last may be shorter), each holding its cleartext followed by `QUICSEAL_TAG_LEN` spare
/// bytes for its tag. Each datagram is sealed where it lies, as by
/// `quicseal_tx_seal_in_place`; when every one succeeds, `buf` is ready for one
/// `UDP_SEGMENT` send of `len` bytes (`batch_out->len`) with segment size `gso_size`.
///
/// Datagram `i` starts at `buf + i * gso_size` and its outcome goes to `results[i]`;
/// `results_len` must cover every datagram. A datagram that does not come out filling its
/// stretch exactly, such as one of long-header packets only (it gains no tag), fails with
/// `QUICSEAL_GSO_LAYOUT`; a datagram that fails is left unsealed in `buf`, so a batch with
/// `batch_out->failed > 0` must not be sent as it is.
///
/// Returns `QUICSEAL_OK` when the batch was processed (check `results` or `batch_out`), or
/// refuses it whole, touching nothing: `QUICSEAL_GSO_SIZE_TOO_SMALL` (below
/// `quicseal_tx_state.min_gso_size`), `QUICSEAL_TOO_MANY_SEGMENTS`,
/// `QUICSEAL_BUFFER_TOO_SMALL` (`results_len` short of the datagrams), `QUICSEAL_GSO_LAYOUT`
/// (a last datagram of `QUICSEAL_TAG_LEN` bytes or fewer, with no room for a packet and its
/// tag). `batch_out` may be NULL.
///
/// # Safety
///
/// `tx` is NULL or a live handle; `buf` is valid for reads and writes of `len` bytes,
/// `results` for writes of `results_len` elements; `batch_out` is NULL or valid for writes.
/// The buffers do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_seal_gso_in_place(
    tx: *mut quicseal_tx,
    buf: *mut u8,
    len: usize,
    gso_size: usize,
    results: *mut quicseal_result,
    results_len: usize,
    batch_out: *mut quicseal_batch,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx(tx, |tx| {
            let results = out_array(results, results_len)?;
            let batch_out = optional_out(batch_out)?;
            disjoint(&[
                Span::written(buf, len)?,
                Span::written_array(results, results_len),
                Span::written_array(batch_out, 1),
            ])?;
            let buf = bytes_mut(buf, len)?;
            let room = tx
                .flow
                .gso_layout_in_place(len, gso_size)
                .map_or(0, |layout| layout.segments.min(results_len));
            run_batch(&mut tx.outcomes, room, results, batch_out, |outcomes| {
                tx.flow.seal_gso_in_place(buf, gso_size, outcomes)
            })
        })
    }
}

/// Reads the flow's key-phase and packet-number state into `*state_out`.
///
/// # Safety
///
/// `tx` is NULL or a live handle; `state_out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_get_state(
    tx: *const quicseal_tx,
    state_out: *mut quicseal_tx_state,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe {
        with_tx_ref(tx, |tx| {
            let state_out = out(state_out)?;
            let flow = &tx.flow;
            let state = quicseal_tx_state {
                generation: flow.generation(),
                sealed_in_generation: flow.sealed_in_generation(),
                largest_sealed: flow.largest_sealed().unwrap_or(0),
                min_gso_size: flow.min_gso_size(),
                suite: flow.suite().code(),
                key_phase: flow.key_phase(),
                next_keys_ready: flow.next_keys_ready(),
                key_update_due: flow.key_update_due(),
                has_largest_sealed: flow.largest_sealed().is_some(),
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
/// `tx` is NULL or a live handle; `counters_out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_tx_get_counters(
    tx: *const quicseal_tx,
    counters_out: *mut quicseal_counters,
) -> quicseal_status {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { with_tx_ref(tx, |tx| put_counters(counters_out, tx.flow.counters())) }
}

/// Writes `counters` to the caller's pointer.
///
/// # Safety
///
/// `counters_out` is NULL (refused) or valid for writes.
pub(crate) unsafe fn put_counters(
    counters_out: *mut quicseal_counters,
    counters: quicseal_core::Counters,
) -> Status {
    let counters_out: NonNull<quicseal_counters> = out(counters_out)?;
    // SAFETY: checked by `out`; writable by the caller's guarantee.
    unsafe { put(counters_out, quicseal_counters::from(counters)) };
    Ok(())
}
