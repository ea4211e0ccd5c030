//! The host interface of quicseal's SmartNIC firmware: what the host and the NIC share.
//!
//! Everything lives in one **window** of memory both sides can reach (on a NIC, the part of
//! its SRAM mapped through a PCIe BAR; in the simulator, a file the firmware reads and writes
//! back). Offsets are from the window's start, every field little-endian, every struct
//! `#[repr(C)]` without padding, so that the firmware and a host written in any language
//! agree byte for byte. docs/smartnic-abi.md describes the protocol; this crate is its one
//! definition, used by the firmware and by the test harness.
//!
//! At the window's start is a [`WindowHeader`]: where the key-context table, the transmit and
//! receive descriptor rings, the completion ring and the buffer area lie, the rings' indices
//! (the doorbells) and the firmware's counters. The host fills [`KeyContext`]s, writes
//! [`Descriptor`]s and moves a ring's producer index; the firmware processes each descriptor,
//! writes one [`Completion`] per datagram, and moves the consumer and completion indices.
//!
//! The NIC also has a network **port**. A seal descriptor flagged
//! [`DescriptorFlags::TO_PORT`] sends each sealed datagram out of it as an Ethernet frame, the
//! host's frame header ([`FRAME_HEADER_LEN`] bytes) in front with its lengths filled in.
//! Frames arriving on the port land in buffers the host posts on the port ring: the firmware
//! finds the connection by the destination connection ID ([`KeyContext::connection_id`]),
//! opens the datagram in the buffer and completes it like a receive descriptor.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "host")]
extern crate alloc;

#[cfg(feature = "host")]
pub mod host;

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The first four bytes of a window: "QSNW".
pub const MAGIC: [u8; 4] = *b"QSNW";

/// The version of this layout. A firmware refuses a window of another version.
pub const VERSION: u16 = 2;

/// The frame header a [`DescriptorFlags::TO_PORT`] seal descriptor's source starts with:
/// Ethernet II (destination and source MAC, EtherType 0x0800), IPv4 without options (20
/// bytes), UDP (8 bytes).
pub const FRAME_HEADER_LEN: usize = 14 + 20 + 8;

/// The longest frame the port sends or receives: Ethernet's 1514 bytes, header to payload
/// (the frame check sequence is the port's). A datagram sent to the port is at most
/// `MAX_FRAME - FRAME_HEADER_LEN` (1472) bytes.
pub const MAX_FRAME: usize = 1514;

/// A region of the window: `len` bytes from `offset`.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Region {
    pub offset: U32,
    pub len: U32,
}

impl Region {
    /// The region's byte range, if it lies inside a window of `window_len` bytes.
    pub fn range(&self, window_len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(self.offset.get()).ok()?;
        let end = start.checked_add(usize::try_from(self.len.get()).ok()?)?;
        (end <= window_len).then_some(start..end)
    }
}

/// A ring of `entries` fixed-size records from `offset`. The producer writes records and
/// then moves `producer`; the consumer processes them and moves `consumer`. Both indices
/// count up without wrapping at `entries` (they wrap at 2^32); record `i` is at slot
/// `i % entries`, so `producer - consumer` is how many wait, at most `entries`.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Ring {
    pub offset: U32,
    pub entries: U32,
    /// Written by the producer: the doorbell.
    pub producer: U32,
    /// Written by the consumer.
    pub consumer: U32,
}

/// What the firmware counts, for the host to read.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Counters {
    /// Descriptors taken off the transmit, receive and port rings.
    pub descriptors: U64,
    /// Datagrams sealed (a datagram the port could not send, `NOT_SENT`, included).
    pub sealed: U64,
    /// Datagrams opened.
    pub opened: U64,
    /// Datagrams the core refused (a status below [`Status::BAD_DESCRIPTOR`]).
    pub refused: U64,
    /// Descriptors refused before the core saw them (a status from
    /// [`Status::BAD_DESCRIPTOR`] up).
    pub bad_descriptors: U64,
    /// Completions that did not fit in the completion ring and were dropped.
    pub completions_dropped: U64,
    /// Frames sent on the port.
    pub frames_sent: U64,
    /// Frames taken from the port into posted buffers.
    pub frames_received: U64,
    /// Of those, frames handed to the host as they came ([`CompletionFlags::PASSED`]).
    pub frames_passed: U64,
    /// Frames that arrived with no buffer posted for them, and were dropped.
    pub frames_dropped: U64,
}

/// The window's first bytes.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct WindowHeader {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`VERSION`].
    pub version: U16,
    /// `size_of::<WindowHeader>()`, so that a later version can grow it.
    pub header_len: U16,
    /// The whole window's length.
    pub window_len: U32,
    /// Set by the firmware: [`Status::OK`] once it has processed the rings, or why it could
    /// not (a bad header or ring).
    pub status: u8,
    pub reserved: [u8; 3],
    /// [`KeyContext`]s: `len` is the table's size in bytes.
    pub contexts: Region,
    /// [`Descriptor`]s to seal (opcode [`Opcode::SEAL`]).
    pub tx: Ring,
    /// [`Descriptor`]s to open (opcode [`Opcode::OPEN`]).
    pub rx: Ring,
    /// [`Completion`]s, produced by the firmware.
    pub completions: Ring,
    /// Where descriptors' buffers may lie.
    pub buffers: Region,
    /// Buffers for frames from the port: [`Descriptor`]s of opcode [`Opcode::RECEIVE`],
    /// posted by the host. No entries: none posted.
    pub port: Ring,
    pub counters: Counters,
}

/// Flags of a [`KeyContext`].
pub struct ContextFlags;

impl ContextFlags {
    /// The entry is filled in.
    pub const VALID: u8 = 1;
    /// The context receives (opens); without it, it sends (seals).
    pub const RECEIVE: u8 = 2;
    /// `largest_packet_number` holds the largest packet number sent or received before the
    /// NIC took the connection over.
    pub const LARGEST_KNOWN: u8 = 4;
    /// Every flag this version knows; the others must be 0.
    pub const ALL: u8 = Self::VALID | Self::RECEIVE | Self::LARGEST_KNOWN;
}

/// One direction of one connection, as a QUIC stack hands it over mid-connection: what the
/// firmware needs to derive its keys and start its packet-number state. The firmware builds
/// the flow on the context's first descriptor and keeps its state (key generation, largest
/// packet number, counters) itself from then on.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct KeyContext {
    /// [`ContextFlags`].
    pub flags: u8,
    /// Destination connection ID length in this connection's short headers (0 to 20).
    pub dcid_len: u8,
    /// The TLS 1.3 cipher-suite code point: 0x1301 (AES-128-GCM), 0x1302 (AES-256-GCM) or
    /// 0x1303 (ChaCha20-Poly1305), as `quicseal::CipherSuite::code` gives it.
    pub suite: U16,
    /// The key generation `secret` belongs to.
    pub generation: U32,
    /// With [`ContextFlags::LARGEST_KNOWN`].
    pub largest_packet_number: U64,
    /// Bytes of `secret` used: the suite's hash length (32 or 48).
    pub secret_len: u8,
    /// Bytes of `header_key` used: the suite's key length (16 or 32).
    pub header_key_len: u8,
    pub reserved: [u8; 6],
    /// The traffic secret of `generation`; later generations derive from it ("quic ku").
    pub secret: [u8; 48],
    /// The header-protection key ("quic hp" of generation 0's secret, which key updates
    /// never change).
    pub header_key: [u8; 32],
    /// Receiving: the connection ID (its first `dcid_len` bytes) that claims frames from the
    /// port for this context. Transmitting: unused.
    pub connection_id: [u8; 20],
    /// Receiving: the UDP destination port the connection's frames arrive on; 0 for any.
    /// Transmitting: unused. With a zero-length connection ID, the port is all that tells
    /// this connection's frames from the rest.
    pub udp_port: U16,
    pub reserved2: [u8; 2],
    /// Sending: packets the connection sealed with `generation`'s keys before the NIC took
    /// it over, which count towards their confidentiality limit (RFC 9001 §6.6).
    pub sealed_in_generation: U64,
    /// Receiving: packets of the connection that failed authentication before the NIC took
    /// it over, which count towards its integrity limit.
    pub auth_failures: U64,
}

/// What a [`Descriptor`] asks for.
pub struct Opcode;

impl Opcode {
    /// Seal the cleartext at `src` into `dst` (a GSO batch if `gso_size` is not 0).
    pub const SEAL: u8 = 1;
    /// Open the datagram at `src` in place (a GRO batch if `gso_size` is not 0).
    pub const OPEN: u8 = 2;
    /// A buffer, `src`, for the next frame from the port (port ring only; every other field
    /// but `cookie` zero).
    pub const RECEIVE: u8 = 3;
}

/// Flags of a [`Descriptor`].
pub struct DescriptorFlags;

impl DescriptorFlags {
    /// Sealing one datagram: `packet_number` is its full packet number (otherwise the
    /// firmware recovers it from the header's truncated one).
    pub const PACKET_NUMBER: u8 = 1;
    /// Opening: `packet_number` is the largest packet number the connection has received
    /// before this datagram, to decode its truncated packet number against. For a host that
    /// received packets of the connection itself (a resync, as kTLS offload has), or that
    /// hands over datagrams out of order. Without it the firmware's own count holds.
    pub const LARGEST_RECEIVED: u8 = 2;
    /// Sealing: `src` starts with a frame header ([`FRAME_HEADER_LEN`] bytes), the cleartext
    /// after it. Each datagram, sealed into `dst` as always, is also sent on the port behind
    /// a copy of that header whose IPv4 total length, header checksum and UDP length the
    /// firmware fills in (the UDP checksum is sent as 0, "none", which IPv4 allows).
    pub const TO_PORT: u8 = 4;
}

/// One job on a transmit or receive ring.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Descriptor {
    /// [`Opcode`].
    pub opcode: u8,
    /// [`DescriptorFlags`].
    pub flags: u8,
    /// Index into the key-context table.
    pub context: U16,
    /// Not 0: the buffer is a GSO (sealing) or GRO (opening) batch of datagrams this long on
    /// the wire, tag included, the last maybe shorter.
    pub gso_size: U16,
    pub reserved: U16,
    /// Sealing: the cleartext datagram(s). Opening: the datagram(s), opened in place.
    pub src: Region,
    /// Sealing: room for the sealed datagram(s). Opening: unused (zero).
    pub dst: Region,
    /// See [`DescriptorFlags::PACKET_NUMBER`] and [`DescriptorFlags::LARGEST_RECEIVED`];
    /// zero without either.
    pub packet_number: U64,
    /// The host's own tag, echoed in every completion of this descriptor.
    pub cookie: U32,
    pub reserved2: U32,
}

/// Completion statuses: 0 for success, the core's error codes (`quicseal::Error::status`,
/// 1 to 127) for a datagram it refused, and from [`BAD_DESCRIPTOR`](Self::BAD_DESCRIPTOR) up
/// for a descriptor or window the firmware refused before the core saw it.
pub struct Status;

impl Status {
    pub const OK: u8 = 0;
    /// Base of the firmware's own statuses.
    pub const BAD_DESCRIPTOR: u8 = 0x80;
    /// An opcode other than [`Opcode::SEAL`] on the transmit ring, [`Opcode::OPEN`] on the
    /// receive ring or [`Opcode::RECEIVE`] on the port ring.
    pub const BAD_OPCODE: u8 = 0x81;
    /// A context index outside the table, an entry not [`ContextFlags::VALID`], or one of the
    /// other direction.
    pub const BAD_CONTEXT: u8 = 0x82;
    /// A context whose suite, secret or connection ID length the core refused.
    pub const BAD_KEYS: u8 = 0x83;
    /// A buffer outside the buffer area, or source and destination overlapping.
    pub const BAD_BUFFER: u8 = 0x84;
    /// Reserved bits or unused fields not zero.
    pub const BAD_RESERVED: u8 = 0x85;
    /// Sealing to the port: the frame header is not Ethernet II, IPv4 without options with
    /// Don't Fragment set, and UDP, or `gso_size` (or the one datagram) would make a frame
    /// longer than [`MAX_FRAME`]. A frame from the port: longer than the buffer posted for it
    /// (the buffer holds its start).
    pub const BAD_FRAME: u8 = 0x86;
    /// Sealing to the port: the datagram was sealed into `dst`, but the port could not send
    /// it.
    pub const NOT_SENT: u8 = 0x87;
    /// The window's magic, version or header length is not this layout's (header status).
    pub const BAD_WINDOW: u8 = 0x90;
    /// A ring outside the window, or a producer index more than `entries` ahead (header
    /// status; the firmware leaves that ring alone).
    pub const BAD_RING: u8 = 0x91;
}

/// Flags of a [`Completion`].
pub struct CompletionFlags;

impl CompletionFlags {
    /// The packet's key phase bit.
    pub const KEY_PHASE: u8 = 1;
    /// The last completion of its descriptor.
    pub const LAST: u8 = 2;
    /// The packet moved its connection to a new key generation.
    pub const KEY_UPDATE: u8 = 4;
    /// A frame from the port handed over as it came, not opened: not IPv4 and UDP, or no
    /// receive context claims its connection ID. `offset` and `len` give the frame.
    pub const PASSED: u8 = 8;
}

/// One datagram's outcome (a descriptor refused as a whole gets one too).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Completion {
    /// The descriptor's cookie.
    pub cookie: U32,
    /// [`Status`].
    pub status: u8,
    /// [`CompletionFlags`].
    pub flags: u8,
    /// The datagram's index in its GSO or GRO batch (0 for a single datagram).
    pub segment: U16,
    /// Where the datagram's output starts in the window ...
    pub offset: U32,
    /// ... and its length: sealed, tag included; opened, without the tag.
    pub len: U32,
    /// The key generation that protected the packet.
    pub generation: U32,
    /// What the firmware spent on the whole descriptor (in its last completion), in its
    /// platform's counter: instructions retired (RISC-V `minstret`) in QEMU, clock cycles
    /// (the SoC's timer) on the LiteX SoC.
    pub cost: U32,
    /// The packet's full packet number.
    pub packet_number: U64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    /// The sizes docs/smartnic-abi.md gives; a change here is a new version.
    #[test]
    fn layout_sizes() {
        assert_eq!(size_of::<Region>(), 8);
        assert_eq!(size_of::<Ring>(), 16);
        assert_eq!(size_of::<Counters>(), 80);
        assert_eq!(size_of::<WindowHeader>(), 176);
        assert_eq!(size_of::<KeyContext>(), 144);
        assert_eq!(size_of::<Descriptor>(), 40);
        assert_eq!(size_of::<Completion>(), 32);
    }

    #[test]
    fn regions_outside_the_window_have_no_range() {
        let region = |offset: u32, len: u32| Region {
            offset: offset.into(),
            len: len.into(),
        };
        assert_eq!(region(8, 8).range(16), Some(8..16));
        assert_eq!(region(8, 9).range(16), None);
        assert_eq!(
            region(u32::MAX, 2).range(usize::MAX),
            Some(u32::MAX as usize..u32::MAX as usize + 2)
        );
        assert_eq!(region(17, 0).range(16), None);
    }
}
