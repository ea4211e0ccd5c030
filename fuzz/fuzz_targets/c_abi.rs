//! `c_abi`: the C ABI (`quicseal-capi`, include/quicseal.h) called the way a C stack calls
//! it, with input-chosen arguments: a sender and a receiver built from a cipher-suite code, a
//! secret of any length and a `quicseal_config` of any values, then calls on input-chosen
//! buffers, NULL pointers and short outputs among them.
//!
//! Input: a suite byte (below 0xf0: one of the three suites; else the next two bytes as the
//! code), a secret-length byte (`% 65`), `dcid_len`, `flags` and `max_segments` bytes and an
//! 8-byte largest packet number; then calls until the input ends, each an operation byte and
//! its arguments:
//! - `% 4` = 0: seal one datagram: NULL-pointer bits, a byte of how much the output falls
//!   short (`% 24`, 0 for enough), a length byte and that many bytes of cleartext;
//! - 1: open a datagram in place: NULL-pointer bits, a length byte, the bytes;
//! - 2: seal a GSO batch: a 2-byte GSO size, a result-count byte (`% 70`), a 2-byte length
//!   (`% 4096`) and the cleartext (the input's bytes, repeated);
//! - 3: open a GRO batch: a 2-byte segment size, a result-count byte, a 2-byte length, bytes.
//!
//! Properties: no call returns `QUICSEAL_PANIC` or `QUICSEAL_INTERNAL_ERROR`; a NULL pointer
//! with a non-zero length is `QUICSEAL_NULL_POINTER`; with no limits configured, a datagram
//! the sender seals and the receiver opens at once comes back as its cleartext, as long as
//! the two are in step (no GSO batch has sealed packets the receiver never saw: their key
//! phases may have moved the sender on); a batch's counts add up; every run ends with the
//! handles' counters and state readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::CipherSuite;
use quicseal_capi::quicseal_status::{self, *};
use quicseal_capi::*;
use quicseal_fuzz::Input;

/// Fails the run on statuses the ABI promises never to return.
fn sound(status: quicseal_status) -> quicseal_status {
    assert!(
        !matches!(status, QUICSEAL_PANIC | QUICSEAL_INTERNAL_ERROR),
        "the C ABI returned {status:?}"
    );
    status
}

/// A pointer to `buffer`, or NULL when `null` says so.
fn pointer(buffer: &mut [u8], null: bool) -> *mut u8 {
    if null {
        std::ptr::null_mut()
    } else {
        buffer.as_mut_ptr()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let suite = match input.byte() {
        pick @ 0..0xf0 => CipherSuite::ALL[usize::from(pick) % 3].code(),
        _ => input.u16(),
    };
    let secret_len = usize::from(input.byte()) % 65;
    let secret: Vec<u8> = (0..secret_len).map(|i| i as u8 ^ 0x5a).collect();
    let mut config = quicseal_config_default(usize::from(input.byte()));
    config.flags = u32::from(input.byte());
    config.max_segments = usize::from(input.byte());
    config.largest_packet_number = input.u64();
    config.confidentiality_limit = 3;
    config.integrity_limit = 3;
    config.key_update_margin = 1;
    let limits = config.flags & QUICSEAL_CONFIG_LIMITS != 0;
    let mut in_step = true;

    let mut tx = std::ptr::null_mut();
    let mut rx = std::ptr::null_mut();
    // SAFETY: the secret and config live across the calls; the out-pointers are ours.
    let built = unsafe {
        (
            sound(quicseal_tx_new_from_secret(
                suite,
                secret.as_ptr(),
                secret.len(),
                &config,
                &mut tx,
            )),
            sound(quicseal_rx_new_from_secret(
                suite,
                secret.as_ptr(),
                secret.len(),
                &config,
                &mut rx,
            )),
        )
    };
    assert_eq!(
        built.0, built.1,
        "sender and receiver judge one configuration alike"
    );
    if built.0 != QUICSEAL_OK {
        assert!(tx.is_null() && rx.is_null());
        return;
    }

    while !input.is_empty() {
        match input.byte() % 4 {
            0 => {
                let nulls = input.byte();
                let short = usize::from(input.byte()) % 24;
                let len = usize::from(input.byte());
                let mut cleartext = input.bytes(len).to_vec();
                let mut sealed = vec![0; (cleartext.len() + 16).saturating_sub(short)];
                let mut result = quicseal_result::default();
                let (src_null, dst_null) = (nulls & 1 != 0, nulls & 2 != 0);
                // SAFETY: both buffers are ours and apart, or NULL; lengths are theirs.
                let status = sound(unsafe {
                    quicseal_tx_seal(
                        tx,
                        pointer(&mut cleartext, src_null),
                        cleartext.len(),
                        pointer(&mut sealed, dst_null),
                        sealed.len(),
                        &mut result,
                    )
                });
                if (src_null && !cleartext.is_empty()) || (dst_null && !sealed.is_empty()) {
                    assert_eq!(status, QUICSEAL_NULL_POINTER);
                }
                if status != QUICSEAL_OK || limits || !in_step {
                    continue;
                }
                let mut wire = sealed[..result.len].to_vec();
                let mut opened = quicseal_result::default();
                // SAFETY: as above.
                let status = sound(unsafe {
                    quicseal_rx_open_in_place(rx, wire.as_mut_ptr(), wire.len(), &mut opened)
                });
                assert_eq!(status, QUICSEAL_OK, "a datagram just sealed opens");
                assert_eq!(
                    &wire[..opened.len],
                    cleartext,
                    "and gives its cleartext back"
                );
            }
            1 => {
                let null = input.byte() & 1 != 0;
                let len = usize::from(input.byte());
                let mut datagram = input.bytes(len).to_vec();
                let mut result = quicseal_result::default();
                // SAFETY: the buffer is ours, or NULL.
                let status = sound(unsafe {
                    quicseal_rx_open_in_place(
                        rx,
                        pointer(&mut datagram, null),
                        datagram.len(),
                        &mut result,
                    )
                });
                if null && !datagram.is_empty() {
                    assert_eq!(status, QUICSEAL_NULL_POINTER);
                }
            }
            operation => {
                let size = usize::from(input.u16());
                let mut results = vec![quicseal_result::default(); usize::from(input.byte()) % 70];
                let len = usize::from(input.u16()) % 4096;
                let pattern = input.bytes(64).to_vec();
                let mut bytes: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
                bytes.resize(len, 0);
                let mut batch = quicseal_batch::default();
                // SAFETY: every buffer and array is ours and apart, with its own length.
                sound(unsafe {
                    if operation == 2 {
                        let mut sealed = vec![0; len + 16 * results.len()];
                        quicseal_tx_seal_gso(
                            tx,
                            bytes.as_ptr(),
                            bytes.len(),
                            size,
                            sealed.as_mut_ptr(),
                            sealed.len(),
                            results.as_mut_ptr(),
                            results.len(),
                            &mut batch,
                        )
                    } else {
                        quicseal_rx_open_gro(
                            rx,
                            bytes.as_mut_ptr(),
                            bytes.len(),
                            size,
                            results.as_mut_ptr(),
                            results.len(),
                            &mut batch,
                        )
                    }
                });
                assert_eq!(batch.ok + batch.failed, batch.datagrams);
                in_step &= operation != 2 || batch.ok == 0;
            }
        }
    }

    let mut counters = quicseal_counters::default();
    let mut tx_state = quicseal_tx_state::default();
    let mut rx_state = quicseal_rx_state::default();
    // SAFETY: live handles and our own out-structs; each handle freed once, last.
    unsafe {
        assert_eq!(
            sound(quicseal_tx_get_counters(tx, &mut counters)),
            QUICSEAL_OK
        );
        assert_eq!(
            sound(quicseal_rx_get_counters(rx, &mut counters)),
            QUICSEAL_OK
        );
        assert_eq!(sound(quicseal_tx_get_state(tx, &mut tx_state)), QUICSEAL_OK);
        assert_eq!(sound(quicseal_rx_get_state(rx, &mut rx_state)), QUICSEAL_OK);
        quicseal_tx_free(tx);
        quicseal_rx_free(rx);
    }
});
