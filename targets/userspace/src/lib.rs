//! quicseal's userspace fallback: QUIC 1-RTT packets sealed and opened by the `quicseal` core
//! on their way through an ordinary Linux UDP socket, with UDP GSO on the way out and GRO on
//! the way in.
//!
//! A QUIC stack hands [`SealedSocket::send`] a [`Transmit`]: cleartext 1-RTT datagrams laid
//! out for GSO at a stride of `segment_size - 16` (the layout the kernel path takes). The
//! socket seals them with [`quicseal::TxFlow::seal_gso`] (a lone datagram with
//! [`quicseal::TxFlow::seal`]), copy-fused from the caller's
//! buffers straight into one send buffer where each datagram is exactly `segment_size` bytes
//! with its tag, and hands that buffer to the kernel in one `sendmsg` carrying a
//! `UDP_SEGMENT` control message. On the way in, [`SealedSocket::recv_open`] receives
//! datagrams the kernel coalesced with GRO (`UDP_GRO`), splits each at its segment size and
//! opens every datagram in place with [`quicseal::RxFlow::open_gro`]; the caller reads the
//! results per datagram from the [`RecvBatch`]: the cleartext header and payload, packet
//! number and key generation, or why it was dropped. Long-header packets (Initial,
//! Handshake) pass through unsealed both ways, as the core does per datagram.
//!
//! Keys stay with the caller: one connection's [`quicseal::TxFlow`] / [`quicseal::RxFlow`],
//! or a [`quicseal::FlowTable`] of them when many connections share one socket (see
//! [`SealGso`] and [`OpenGro`]).
//!
//! ```
//! use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};
//! use quicseal_userspace::{
//!     DEFAULT_MESSAGE_CAPACITY, Ecn, RecvBatch, SealedSocket, SendBuffer, SocketConfig, Transmit,
//! };
//!
//! let (suite, secret) = (CipherSuite::Aes128GcmSha256, [7u8; 32]); // from the handshake
//! let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(0))?;
//! let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(0))?;
//! let sender = SealedSocket::bind("127.0.0.1:0".parse()?, SocketConfig::default())?;
//! let receiver = SealedSocket::bind("127.0.0.1:0".parse()?, SocketConfig::default())?;
//!
//! // Two cleartext 1-RTT packets laid out for GSO: the first fills its segment
//! // (1200 bytes on the wire, so 1184 in the clear), the last may be shorter.
//! let mut cleartext = vec![0u8; 1184 + 100];
//! for (number, start) in [(1u8, 0), (2, 1184)] {
//!     cleartext[start..start + 2].copy_from_slice(&[0x40, number]); // header, packet number
//! }
//! let transmit = Transmit {
//!     destination: receiver.local_addr()?,
//!     ecn: Ecn::Ect0,
//!     cleartext: &[&cleartext],
//!     segment_size: 1200,
//! };
//! let sent = sender.send(&mut tx, &transmit, &mut SendBuffer::new())?;
//! assert_eq!((sent.sent, sent.bytes), (2, 1200 + 116)); // one sendmsg where GSO works
//!
//! let mut batch = RecvBatch::new(8, DEFAULT_MESSAGE_CAPACITY);
//! let mut numbers = Vec::new();
//! while numbers.len() < 2 {
//!     receiver.recv_open(&mut rx, &mut batch)?; // waits at most SocketConfig::timeout
//!     for message in batch.messages() {
//!         assert_eq!(message.ecn, Ecn::Ect0);
//!         for datagram in message.datagrams() {
//!             let packet = datagram.outcome?.packet.expect("a 1-RTT packet");
//!             numbers.push(packet.number());
//!         }
//!     }
//! }
//! assert_eq!(numbers, [1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why quinn-udp
//!
//! The socket plumbing is [quinn-udp](https://docs.rs/quinn-udp), the UDP layer of the quinn
//! QUIC stack, rather than our own `sendmsg`/`recvmmsg` code over `socket2` and `libc`. It
//! does exactly what this datapath needs and nothing it must work around:
//!
//! - its `Transmit` takes a buffer of datagrams and a `segment_size`, which it sends with
//!   one `sendmsg` and a `UDP_SEGMENT` control message: we hand it the sealed buffer as is;
//! - it enables `UDP_GRO` and reports the coalesced segment size as `RecvMeta::stride`,
//!   which is the `segment_size` [`quicseal::RxFlow::open_gro`] takes;
//! - it sets and reads the ECN bits (`IP_TOS` / `IPV6_TCLASS` on send, `IP_RECVTOS` /
//!   `IPV6_RECVTCLASS` on receive), for IPv4, IPv6 and IPv4-mapped addresses;
//! - it probes GSO once per socket (kernel version, then `setsockopt(UDP_SEGMENT)`) and,
//!   when a `sendmsg` with GSO fails with `EIO` or `EINVAL` (drivers and paths that cannot
//!   segment), drops to one segment per send for good in an atomic that every later send
//!   reads. [`SealedSocket`] builds its fallback on that state: it re-sends a refused batch
//!   one datagram per `sendmsg` and sends every later batch that way.
//!
//! It keeps the `unsafe` control-message code in a crate that is maintained, fuzzed by use in
//! quinn, and shared with other QUIC stacks; this crate has none (`forbid(unsafe_code)`).
//! What we add: sealing into the send buffer, splitting a batch where the kernel's limits
//! (64 segments, 64 KiB) or a datagram the seal refused require it, bounded waits (below),
//! and the per-datagram results.
//!
//! Three behaviours of quinn-udp 0.6 to know:
//!
//! - It turns on `SO_TIMESTAMPNS`, and its 96-byte control-message buffer cannot hold a
//!   timestamp next to a GRO segment size, PKTINFO and the TOS / traffic-class byte: the
//!   kernel drops the last, so every GRO batch would arrive without its ECN bits.
//!   [`SealedSocket`] turns the timestamps off again (we do not use them); the loopback
//!   tests check that ECN survives GRO on IPv4 and IPv6.
//! - When the kernel first answers `EINVAL` or `EIO`, it also stops sending the `IP_TOS`
//!   control message on IPv4, in case an old kernel (before 3.13) refused that; after a GSO
//!   refusal, IPv4 datagrams therefore leave without their ECN codepoint.
//! - A `segment_size` larger than the path MTU allows makes the kernel refuse the GSO send
//!   with `EINVAL` too, which quinn-udp cannot tell from a device that cannot segment: it
//!   turns GSO off for good on that socket (and stops sending `IP_TOS`, above). Keep
//!   [`Transmit::segment_size`] within the path MTU.
//!
//! # Bounded waits
//!
//! quinn-udp puts the socket in non-blocking mode, so `SO_RCVTIMEO` would have no effect;
//! on a blocking socket it would be worse, since `recvmmsg` without `MSG_WAITFORONE` waits
//! for its whole batch. Instead every send and receive that would block waits in `poll(2)`
//! for at most [`SocketConfig::timeout`] and then fails with a timeout error, so nothing
//! built on this crate can hang on a silent peer.
//!
//! Callers that wait for readiness themselves, such as an async runtime with the socket's
//! descriptor registered ([`std::os::fd::AsFd`]), use the methods that never wait:
//! [`SealedSocket::try_send`] (sealed datagrams a full socket refused wait in the
//! [`SendBuffer`] for [`SealedSocket::try_flush`], never sealed twice),
//! [`SealedSocket::try_send_wire`] and [`SealedSocket::try_recv_into`] (into the caller's
//! buffers). quicseal-quinn's socket is built on them.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod ecn;
mod flows;
pub mod formats;
mod recv;
mod socket;
pub mod traffic;

pub use ecn::Ecn;
pub use flows::{OpenGro, SealGso};
pub use recv::{
    DEFAULT_MESSAGE_CAPACITY, Datagrams, MAX_RECV_MESSAGES, MessageInfo, Opened, OpenedPacket,
    Received, ReceivedDatagram, RecvBatch, RecvError,
};
pub use socket::{
    MAX_SEGMENTS, MAX_UDP_PAYLOAD, SealedSocket, SendBuffer, SendError, Sent, SocketConfig,
    SocketError, SocketStats, Transmit,
};
