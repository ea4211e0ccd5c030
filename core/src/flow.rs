//! What both directions of a flow share: configuration and per-datagram outcomes.

use crate::packet_number::MAX_PACKET_NUMBER;
use crate::protect::HeaderFormat;
use crate::wire::MAX_CID_LEN;
use crate::{Error, Limits};

/// Segments in one UDP GSO send that every Linux with UDP GSO takes: its
/// `UDP_MAX_SEGMENTS` was 64 until it was raised to 128 (as in the 6.18 headers the kernel
/// module builds against, which uses the kernel's own limit).
pub const DEFAULT_MAX_GSO_SEGMENTS: usize = 64;

/// How a flow reads its packets and batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowConfig {
    /// Length of the destination connection IDs in this flow's short headers (0 to 20).
    pub dcid_len: usize,
    /// Accept (and send) short headers with the fixed bit cleared: only where the peer
    /// advertised `grease_quic_bit` (RFC 9287).
    pub grease_quic_bit: bool,
    /// AEAD limits; `None` takes RFC 9001 §6.6's for the suite.
    pub limits: Option<Limits>,
    /// Most segments one GSO or GRO batch may hold.
    pub max_segments: usize,
    /// The largest packet number already sent (for a sending flow) or received (for a
    /// receiving one) before this flow took over, if any.
    pub largest_packet_number: Option<u64>,
    /// What the connection had used of its AEAD limits before this flow took over.
    pub used: Usage,
}

/// What a connection had used of its AEAD limits (RFC 9001 §6.6) before a flow took over
/// mid-connection, so that the limits hold across the hand-over instead of starting again:
/// a SmartNIC reset between two windows, a socket handed to another process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Usage {
    /// Sending: packets sealed with the current generation's keys (the confidentiality
    /// limit is per key).
    pub sealed_in_generation: u64,
    /// Receiving: packets that failed authentication on the connection, with any keys (the
    /// integrity limit is the connection's).
    pub auth_failures: u64,
}

impl FlowConfig {
    /// Defaults for connection IDs of `dcid_len` bytes.
    pub const fn new(dcid_len: usize) -> FlowConfig {
        FlowConfig {
            dcid_len,
            grease_quic_bit: false,
            limits: None,
            max_segments: DEFAULT_MAX_GSO_SEGMENTS,
            largest_packet_number: None,
            used: Usage {
                sealed_in_generation: 0,
                auth_failures: 0,
            },
        }
    }

    pub(crate) fn validate(self) -> Result<FlowConfig, Error> {
        let largest_ok = self
            .largest_packet_number
            .is_none_or(|l| l <= MAX_PACKET_NUMBER);
        if self.dcid_len > MAX_CID_LEN || self.max_segments == 0 || !largest_ok {
            return Err(Error::InvalidConfig);
        }
        Ok(self)
    }

    pub(crate) fn header_format(&self) -> HeaderFormat {
        HeaderFormat {
            dcid_len: self.dcid_len,
            grease_quic_bit: self.grease_quic_bit,
        }
    }
}

/// A 1-RTT packet that was sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketInfo {
    /// The full packet number.
    pub number: u64,
    /// The key generation that protected it (its key phase is `generation % 2`).
    pub generation: u64,
    /// Length of its short header.
    pub header_len: usize,
    /// Length of its payload, without the tag.
    pub payload_len: usize,
    /// This packet moved the flow to a new key generation.
    pub key_update: bool,
}

impl PacketInfo {
    /// The key phase bit the packet carried.
    pub fn key_phase(&self) -> bool {
        self.generation & 1 == 1
    }
}

/// What sealing or opening one datagram produced.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Datagram {
    /// Bytes of output: long-header packets as they came, then the 1-RTT packet sealed (with
    /// its tag) or opened (without it).
    pub len: usize,
    /// Bytes of long-header packets at the front, passed through untouched.
    pub passthrough_len: usize,
    /// The 1-RTT packet, if the datagram ended in one.
    pub packet: Option<PacketInfo>,
}

impl Datagram {
    /// Where the 1-RTT packet's header lies in the output, if there is a packet.
    pub fn header_range(&self) -> Option<core::ops::Range<usize>> {
        let packet = self.packet?;
        Some(self.passthrough_len..self.passthrough_len + packet.header_len)
    }

    /// Where the 1-RTT packet's payload lies in the output: ciphertext after sealing (the tag
    /// follows it), cleartext after opening.
    pub fn payload_range(&self) -> Option<core::ops::Range<usize>> {
        let header = self.header_range()?;
        let payload_len = self.packet?.payload_len;
        Some(header.end..header.end + payload_len)
    }
}

/// Per-datagram outcome of a batch.
pub type Outcome = Result<Datagram, Error>;

/// What a GSO or GRO batch did as a whole; the per-datagram outcomes are in the caller's
/// result slice.
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Batch {
    /// Datagrams in the batch (outcomes written).
    pub datagrams: usize,
    /// Datagrams that succeeded.
    pub ok: usize,
    /// Datagrams refused; their outcomes say why.
    pub failed: usize,
    /// Bytes of output the batch spans.
    pub len: usize,
}

impl Batch {
    /// This batch's datagrams followed by `rest`'s, whose output lies after them.
    pub(crate) fn then(self, rest: Batch) -> Batch {
        Batch {
            datagrams: self.datagrams + rest.datagrams,
            ok: self.ok + rest.ok,
            failed: self.failed + rest.failed,
            len: self.len.max(rest.len),
        }
    }
}
