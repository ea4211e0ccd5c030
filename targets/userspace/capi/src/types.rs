//! The structs calls fill in for C: per-datagram results, batch totals, counters and flow
//! state.

use quicseal_core::{Batch, Counters, Datagram, Outcome};

use crate::quicseal_status::{self, *};

/// What sealing or opening one datagram did.
///
/// On success `status` is `QUICSEAL_OK` and `len` bytes of output were written: long-header
/// packets at the front (`passthrough_len` bytes, copied untouched), then the 1-RTT packet
/// (if `has_packet`), sealed with its tag or opened without it. On failure `status` says why
/// and every other field is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quicseal_result {
    /// `QUICSEAL_OK`, or why this datagram was refused.
    pub status: quicseal_status,
    /// The datagram ended in a 1-RTT packet; the fields from `packet_number` on describe it.
    pub has_packet: bool,
    /// The packet moved the flow to a new key generation.
    pub key_update: bool,
    /// Bytes of output.
    pub len: usize,
    /// Bytes of long-header packets at the front, passed through untouched.
    pub passthrough_len: usize,
    /// Length of the 1-RTT packet's short header (cleartext after opening).
    pub header_len: usize,
    /// Length of the 1-RTT packet's payload, without the tag.
    pub payload_len: usize,
    /// The full packet number.
    pub packet_number: u64,
    /// The key generation that protected it; its key phase bit is `generation & 1`.
    pub generation: u64,
}

impl From<&Outcome> for quicseal_result {
    fn from(outcome: &Outcome) -> quicseal_result {
        match outcome {
            Ok(datagram) => quicseal_result::from(datagram),
            Err(error) => quicseal_result {
                status: quicseal_status::from(*error),
                ..quicseal_result::default()
            },
        }
    }
}

impl From<&Datagram> for quicseal_result {
    fn from(datagram: &Datagram) -> quicseal_result {
        let mut result = quicseal_result {
            status: QUICSEAL_OK,
            len: datagram.len,
            passthrough_len: datagram.passthrough_len,
            ..quicseal_result::default()
        };
        if let Some(packet) = datagram.packet {
            result.has_packet = true;
            result.key_update = packet.key_update;
            result.header_len = packet.header_len;
            result.payload_len = packet.payload_len;
            result.packet_number = packet.number;
            result.generation = packet.generation;
        }
        result
    }
}

/// What a GSO or GRO batch did as a whole; each datagram's outcome is in the result array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quicseal_batch {
    /// Datagrams in the batch: results written.
    pub datagrams: usize,
    /// Datagrams that succeeded.
    pub ok: usize,
    /// Datagrams refused; their results say why.
    pub failed: usize,
    /// Bytes of output the batch spans (for GSO, what to hand to one `UDP_SEGMENT` send once
    /// every datagram succeeded).
    pub len: usize,
}

impl From<Batch> for quicseal_batch {
    fn from(batch: Batch) -> quicseal_batch {
        quicseal_batch {
            datagrams: batch.datagrams,
            ok: batch.ok,
            failed: batch.failed,
            len: batch.len,
        }
    }
}

/// What a flow has done since it was created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quicseal_counters {
    /// 1-RTT packets sealed.
    pub sealed: u64,
    /// 1-RTT packets opened and authenticated.
    pub opened: u64,
    /// Long-header packets passed through untouched.
    pub passed_through: u64,
    /// Packets whose tag did not verify (RFC 9001 §6.6 asks endpoints to count them).
    pub auth_failures: u64,
    /// Packets that did not parse, including reserved bits set after decryption.
    pub malformed: u64,
    /// Packets refused for the confidentiality or integrity limit.
    pub dropped_for_limits: u64,
    /// Packets whose key phase asked for keys not installed.
    pub key_unavailable: u64,
    /// Packets refused for the caller's mistakes: packet-number reuse, buffers too small, a
    /// GSO layout that does not add up.
    pub rejected: u64,
    /// Key generations entered after the first.
    pub key_updates: u64,
    /// Packets refused for any reason: the sum of the five counters before `key_updates`.
    pub dropped: u64,
}

impl From<Counters> for quicseal_counters {
    fn from(counters: Counters) -> quicseal_counters {
        // Destructured whole: a counter added to the core fails to compile here until this
        // struct (and so the header) has it, rather than being dropped without a word.
        let Counters {
            sealed,
            opened,
            passed_through,
            auth_failures,
            malformed,
            dropped_for_limits,
            key_unavailable,
            rejected,
            key_updates,
        } = counters;
        quicseal_counters {
            sealed,
            opened,
            passed_through,
            auth_failures,
            malformed,
            dropped_for_limits,
            key_unavailable,
            rejected,
            key_updates,
            dropped: counters.dropped(),
        }
    }
}

/// A sending flow's key-phase and packet-number state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quicseal_tx_state {
    /// The current key generation (0 until the first key update).
    pub generation: u64,
    /// Packets sealed with the current generation.
    pub sealed_in_generation: u64,
    /// The largest packet number sealed so far, if `has_largest_sealed`.
    pub largest_sealed: u64,
    /// Smallest `gso_size` `quicseal_tx_seal_gso` and `quicseal_tx_seal_gso_in_place` accept
    /// for this flow.
    pub min_gso_size: usize,
    /// The suite's TLS code point.
    pub suite: u16,
    /// The key phase bit of packets sealed with the current generation.
    pub key_phase: bool,
    /// The next generation's keys are ready: the sender may flip the key phase.
    pub next_keys_ready: bool,
    /// The current generation is near its confidentiality limit: start a key update now.
    pub key_update_due: bool,
    /// A packet has been sealed (or the configuration named a largest packet number).
    pub has_largest_sealed: bool,
}

/// A receiving flow's key-phase and packet-number state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct quicseal_rx_state {
    /// The current key generation.
    pub generation: u64,
    /// The largest packet number received so far, if `has_largest_received`.
    pub largest_received: u64,
    /// The suite's TLS code point.
    pub suite: u16,
    /// The key phase bit of the current generation.
    pub key_phase: bool,
    /// The previous generation's keys are kept for late packets.
    pub has_previous_keys: bool,
    /// A largest received packet number is known.
    pub has_largest_received: bool,
    /// The flow has seen as many forged packets as the integrity limit allows: the
    /// connection must be closed, and every further open fails.
    pub integrity_limit_reached: bool,
    /// The next generation's keys are ready for the peer's key update (see
    /// `quicseal_rx_prepare_next_keys`).
    pub next_keys_ready: bool,
}
