//! The socket: seal and send with GSO (or one datagram at a time where GSO is refused),
//! receive with GRO.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quicseal::backend::{Backend, TAG_LEN};
use quicseal::{DEFAULT_MAX_GSO_SEGMENTS, Error, GsoLayout, Outcome, TxFlow};
use quinn_udp::{UdpSockRef, UdpSocketState};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::recv::{MAX_RECV_MESSAGES, MessageInfo, RecvBatch, RecvError};
use crate::{Ecn, OpenGro, SealGso};

/// Most bytes of UDP payload one send may carry: 65535 − 20 (IPv4 header) − 8 (UDP header).
/// A GSO send is one datagram until the kernel splits it, so all its segments together must
/// fit too. (IPv6 allows 20 bytes more; one limit for both keeps batches portable.)
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Most datagrams one [`Transmit`] may hold, and most segments in one GSO send: what every
/// Linux with UDP GSO takes ([`DEFAULT_MAX_GSO_SEGMENTS`]).
pub const MAX_SEGMENTS: usize = DEFAULT_MAX_GSO_SEGMENTS;

/// How a [`SealedSocket`] sends and waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// Send batches with UDP GSO where the kernel supports it. `false` sends one datagram per
    /// `sendmsg`, which is also what happens, whatever this says, once the kernel refused GSO.
    pub gso: bool,
    /// Longest one send or receive waits for room or for data before it fails with a timeout.
    /// A timeout too long to add to the clock (`Duration::MAX`) means no timeout: wait as
    /// long as it takes.
    pub timeout: Duration,
    /// `SO_RCVBUF` to ask for, in bytes; the kernel doubles it and caps it at
    /// `net.core.rmem_max`. `None` keeps the system default.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` to ask for, likewise capped at `net.core.wmem_max`.
    pub send_buffer: Option<usize>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            gso: true,
            timeout: Duration::from_secs(1),
            recv_buffer: None,
            send_buffer: None,
        }
    }
}

/// What a send does while the socket's send buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Waits for room, up to [`SocketConfig::timeout`].
    UpToTimeout,
    /// Fails with [`SendError::WouldBlock`] at once.
    Never,
}

/// Cleartext QUIC datagrams for one destination, laid out for GSO.
///
/// The datagrams lie back to back at a stride of `segment_size - 16` bytes (the last may be
/// shorter), in as many pieces as the caller keeps them: a piece boundary may fall anywhere,
/// even inside a header. Each datagram is optional long-header packets followed by one 1-RTT
/// packet whose short header is in cleartext. Sealing adds each 1-RTT packet's 16-byte tag, so
/// on the wire every datagram but the last is exactly `segment_size` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    /// Where the datagrams go.
    pub destination: SocketAddr,
    /// The ECN codepoint every datagram carries.
    pub ecn: Ecn,
    /// The cleartext datagrams, in scatter-gather pieces.
    pub cleartext: &'a [&'a [u8]],
    /// Size on the wire of every datagram but the last: the GSO segment size. Keep it
    /// within the path MTU: above it the kernel refuses a GSO send with `EINVAL`, and
    /// quinn-udp then turns GSO off for good on the socket (see the crate documentation).
    pub segment_size: usize,
}

/// What a send did.
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the transmit held.
    pub datagrams: usize,
    /// Datagrams handed to the kernel.
    pub sent: usize,
    /// Datagrams the seal refused, not sent; their outcomes in the [`SendBuffer`] say why.
    pub refused: usize,
    /// UDP payload bytes handed to the kernel.
    pub bytes: usize,
    /// `sendmsg` calls that succeeded.
    pub syscalls: usize,
}

/// The send buffer a [`SealedSocket::send`] seals into, and the per-datagram outcomes of the
/// last send. Kept by the caller and reused, so a steady sender allocates nothing.
///
/// After a [`SealedSocket::try_send`] that would have blocked, it also keeps the sealed
/// datagrams that did not go out yet ([`pending`](Self::pending)), for
/// [`SealedSocket::try_flush`]: sealing their cleartext again would reuse packet numbers,
/// which the flow refuses.
#[derive(Debug, Default)]
pub struct SendBuffer {
    wire: Vec<u8>,
    outcomes: Vec<Outcome>,
    datagrams: usize,
    pending: Option<Pending>,
}

/// Where the sealed datagrams of a send that would have blocked go, and the first not sent.
#[derive(Clone, Copy, Debug)]
struct Pending {
    destination: SocketAddr,
    ecn: Ecn,
    segment_size: usize,
    next: usize,
}

impl SendBuffer {
    /// An empty buffer; it grows to the largest batch sent through it.
    pub fn new() -> SendBuffer {
        SendBuffer::default()
    }

    /// The outcome of sealing each datagram of the last transmit, in order; empty when the
    /// last send was refused before any datagram was sealed.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes[..self.datagrams]
    }

    /// Sealed datagrams of the last [`SealedSocket::try_send`] that are still to be sent
    /// (with [`SealedSocket::try_flush`]); 0 when nothing waits.
    pub fn pending(&self) -> usize {
        match self.pending {
            None => 0,
            Some(pending) => self.outcomes()[pending.next.min(self.datagrams)..]
                .iter()
                .filter(|outcome| outcome.is_ok())
                .count(),
        }
    }

    /// `error`, with the datagrams still pending counted in a [`SendError::WouldBlock`].
    fn with_pending(&self, error: SendError) -> SendError {
        match error {
            SendError::WouldBlock { sent, .. } => SendError::WouldBlock {
                sent,
                pending: self.pending(),
            },
            error => error,
        }
    }

    /// Forgets the last transmit's outcomes, and any datagrams of it still pending.
    fn clear(&mut self) {
        self.datagrams = 0;
        self.pending = None;
    }

    /// Makes room for `len` bytes and `datagrams` outcomes.
    fn prepare(&mut self, len: usize, datagrams: usize) -> (&mut [u8], &mut [Outcome]) {
        if self.wire.len() < len {
            self.wire.resize(len, 0);
        }
        if self.outcomes.len() < datagrams {
            self.outcomes.resize(datagrams, Err(Error::BufferTooSmall));
        }
        self.datagrams = datagrams;
        (&mut self.wire[..len], &mut self.outcomes[..datagrams])
    }
}

/// Why a socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Binding the address failed.
    #[error("cannot bind {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// Configuring the socket for GSO, GRO and ECN failed.
    #[error("cannot configure the UDP socket: {0}")]
    Configure(#[source] io::Error),
}

/// Why a send failed. Datagrams sent before the failure stay sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The segment size must exceed the 16-byte tag and fit in one datagram.
    #[error("segment size {0} out of range ({min} to {MAX_UDP_PAYLOAD} bytes)", min = TAG_LEN + 1)]
    SegmentSize(usize),
    /// More datagrams than one GSO send may carry.
    #[error("{0} datagrams in one transmit; at most {MAX_SEGMENTS}")]
    TooManyDatagrams(usize),
    /// The seal refused the batch as a whole (nothing was sent).
    #[error("batch refused: {0}")]
    Seal(#[source] Error),
    /// No room in the socket's send buffer within the configured timeout.
    #[error("no room to send within {timeout:?} ({sent} datagrams sent)")]
    Timeout {
        /// Datagrams sent before the wait.
        sent: usize,
        /// How long it waited.
        timeout: Duration,
    },
    /// The socket's send buffer is full and the send was not to wait ([`SealedSocket::try_send`],
    /// [`SealedSocket::try_flush`], [`SealedSocket::try_send_wire`]).
    #[error("the socket would block ({sent} datagrams sent, {pending} sealed and pending)")]
    WouldBlock {
        /// Datagrams sent before the socket was full.
        sent: usize,
        /// Sealed datagrams kept in the [`SendBuffer`] for [`SealedSocket::try_flush`].
        pending: usize,
    },
    /// [`SealedSocket::try_send`] was given a [`SendBuffer`] whose datagrams from an earlier
    /// send still wait: [`SealedSocket::try_flush`] them first, so that datagrams leave in
    /// the order they were sealed.
    #[error("{0} sealed datagrams still pending")]
    Pending(usize),
    /// The kernel refused the send.
    #[error("sendmsg failed after {sent} datagrams: {source}")]
    Io {
        /// Datagrams sent before the failure.
        sent: usize,
        /// What the kernel said.
        source: io::Error,
    },
}

/// What a socket has done, for operators and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// `sendmsg` calls that carried several datagrams with a `UDP_SEGMENT` control message.
    pub gso_sends: u64,
    /// `sendmsg` calls that carried one datagram.
    pub single_sends: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// GSO sends the kernel refused (`EIO`/`EINVAL`) and that went out again one datagram at a
    /// time; after the first, GSO stays off for this socket.
    pub gso_refusals: u64,
    /// Messages received: one per datagram, or one per GRO batch.
    pub messages_received: u64,
    /// Datagrams received, GRO batches split.
    pub datagrams_received: u64,
    /// Messages that filled their [`RecvBatch`] buffer and may have been cut off; opening
    /// refuses them (see [`crate::DEFAULT_MESSAGE_CAPACITY`]).
    pub truncated: u64,
    /// Sends or receives that gave up after waiting the configured timeout.
    pub timeouts: u64,
}

#[derive(Debug, Default)]
struct AtomicStats {
    gso_sends: AtomicU64,
    single_sends: AtomicU64,
    datagrams_sent: AtomicU64,
    gso_refusals: AtomicU64,
    messages_received: AtomicU64,
    datagrams_received: AtomicU64,
    truncated: AtomicU64,
    timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(by as u64, Ordering::Relaxed);
}

/// A UDP socket that seals QUIC 1-RTT packets on their way out, with GSO, and opens them on
/// their way in, with GRO.
///
/// Every method takes `&self`: one socket may send from one thread and receive in another
/// (share it in an `Arc`). The mutable state of a send or a receive lives in the caller's
/// [`SendBuffer`] or [`RecvBatch`], and the keys in the caller's flows.
#[derive(Debug)]
pub struct SealedSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    config: SocketConfig,
    stats: AtomicStats,
    /// `sendmsg` calls to fail with `WouldBlock` before the kernel sees them (`true`, in
    /// order): see [`SealedSocket::refuse_sends`].
    #[cfg(any(test, feature = "fault-injection"))]
    refusals: std::sync::Mutex<std::collections::VecDeque<bool>>,
}

impl SealedSocket {
    /// Binds `address` and prepares the socket: GRO and ECN reporting on, GSO probed.
    pub fn bind(address: SocketAddr, config: SocketConfig) -> Result<SealedSocket, SocketError> {
        let socket =
            UdpSocket::bind(address).map_err(|source| SocketError::Bind { address, source })?;
        SealedSocket::from_std(socket, config)
    }

    /// Takes over a bound socket. It is switched to non-blocking mode (waits are bounded with
    /// `poll`, see the crate documentation).
    pub fn from_std(socket: UdpSocket, config: SocketConfig) -> Result<SealedSocket, SocketError> {
        let state =
            UdpSocketState::new(UdpSockRef::from(&socket)).map_err(SocketError::Configure)?;
        // quinn-udp 0.6 turns on SO_TIMESTAMPNS, but its 96-byte control-message buffer
        // cannot hold a timestamp, a GRO segment size, PKTINFO and the TOS / traffic class
        // byte at once (32 + 24 + 32/40 + 24 bytes): the kernel drops the last, the ECN
        // bits, from every GRO batch. We use no timestamps, so they go.
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimestampns,
            &false,
        )
        .map_err(|errno| SocketError::Configure(errno.into()))?;
        if let Some(bytes) = config.recv_buffer {
            state
                .set_recv_buffer_size(UdpSockRef::from(&socket), bytes)
                .map_err(SocketError::Configure)?;
        }
        if let Some(bytes) = config.send_buffer {
            state
                .set_send_buffer_size(UdpSockRef::from(&socket), bytes)
                .map_err(SocketError::Configure)?;
        }
        Ok(SealedSocket {
            socket,
            state,
            config,
            stats: AtomicStats::default(),
            #[cfg(any(test, feature = "fault-injection"))]
            refusals: Default::default(),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The underlying socket, for options this type does not cover. Reading or writing
    /// through it bypasses the seal.
    pub fn as_std(&self) -> &UdpSocket {
        &self.socket
    }

    /// The configuration the socket was made with.
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }

    /// Most datagrams one `sendmsg` carries now: 64 with GSO, 1 when it is off by
    /// configuration, unsupported, or was refused by the kernel.
    pub fn max_gso_segments(&self) -> usize {
        if self.config.gso {
            self.state.max_gso_segments().min(MAX_SEGMENTS)
        } else {
            1
        }
    }

    /// True when the kernel accepted `UDP_GRO`: received messages may hold many datagrams.
    pub fn gro_enabled(&self) -> bool {
        self.max_gro_segments() > 1
    }

    /// Most datagrams one received message may hold: 64 with GRO, else 1.
    pub fn max_gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// True when datagrams sent may be fragmented on the way (path MTU discovery's
    /// don't-fragment flag could not be set), as quinn-udp found when it set the socket up.
    pub fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    /// The socket's receive buffer as the kernel reports it (`SO_RCVBUF`, doubled).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.state.recv_buffer_size(UdpSockRef::from(&self.socket))
    }

    /// What the socket has done so far.
    pub fn stats(&self) -> SocketStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let s = &self.stats;
        SocketStats {
            gso_sends: load(&s.gso_sends),
            single_sends: load(&s.single_sends),
            datagrams_sent: load(&s.datagrams_sent),
            gso_refusals: load(&s.gso_refusals),
            messages_received: load(&s.messages_received),
            datagrams_received: load(&s.datagrams_received),
            truncated: load(&s.truncated),
            timeouts: load(&s.timeouts),
        }
    }

    /// Seals `transmit`'s datagrams with `flow` into `buffer` and sends them: with one GSO
    /// `sendmsg` where possible, else one datagram per `sendmsg`, waiting up to the timeout
    /// for room.
    ///
    /// A datagram the seal refuses is not sent (a hole in a GSO batch would shift every
    /// datagram after it); the ones around it are, in as few sends as the holes allow.
    /// `buffer.outcomes()` has each datagram's outcome. Datagrams an earlier
    /// [`try_send`](Self::try_send) left pending in `buffer` are dropped.
    pub fn send<S: SealGso + ?Sized>(
        &self,
        flow: &mut S,
        transmit: &Transmit<'_>,
        buffer: &mut SendBuffer,
    ) -> Result<Sent, SendError> {
        self.seal_and_send(flow, transmit, buffer, Wait::UpToTimeout)
    }

    /// [`send`](Self::send) for callers that must not wait, such as an async runtime that
    /// registered the socket ([`AsFd`]) and waits for it to be writable itself.
    ///
    /// Where the socket's send buffer fills part way, the datagrams sealed but not sent stay
    /// in `buffer` and the send fails with [`SendError::WouldBlock`]: send them with
    /// [`try_flush`](Self::try_flush) once the socket is writable, not by sealing the same
    /// cleartext again (its packet numbers are spent). While any are pending, `try_send`
    /// refuses with [`SendError::Pending`] and seals nothing.
    pub fn try_send<S: SealGso + ?Sized>(
        &self,
        flow: &mut S,
        transmit: &Transmit<'_>,
        buffer: &mut SendBuffer,
    ) -> Result<Sent, SendError> {
        match buffer.pending() {
            0 => self.seal_and_send(flow, transmit, buffer, Wait::Never),
            pending => Err(SendError::Pending(pending)),
        }
    }

    /// Sends the datagrams a [`try_send`](Self::try_send) left pending in `buffer`, without
    /// waiting; [`SendError::WouldBlock`] again if the socket fills before they are all out.
    /// Nothing pending is nothing to do. Any other failure drops what was still pending (to
    /// QUIC, a loss), so that the buffer can be used again.
    pub fn try_flush(&self, buffer: &mut SendBuffer) -> Result<Sent, SendError> {
        let SendBuffer {
            wire,
            outcomes,
            datagrams,
            pending,
        } = buffer;
        let Some(left) = pending else {
            return Ok(Sent::default());
        };
        let outcomes = &outcomes[..*datagrams];
        let result = self.send_runs(
            (left.destination, left.ecn, left.segment_size),
            wire,
            outcomes,
            &mut left.next,
            Wait::Never,
        );
        // Sent, or failed for a reason other than a full socket: nothing waits any more.
        if !matches!(result, Err(SendError::WouldBlock { .. })) {
            *pending = None;
        }
        result.map_err(|error| buffer.with_pending(error))
    }

    fn seal_and_send<S: SealGso + ?Sized>(
        &self,
        flow: &mut S,
        transmit: &Transmit<'_>,
        buffer: &mut SendBuffer,
        wait: Wait,
    ) -> Result<Sent, SendError> {
        // Whatever refuses this transmit below, the outcomes of the one before must not
        // pass for its own.
        buffer.clear();
        let segment_size = transmit.segment_size;
        if segment_size > MAX_UDP_PAYLOAD {
            return Err(SendError::SegmentSize(segment_size));
        }
        let cleartext_len: usize = transmit.cleartext.iter().map(|piece| piece.len()).sum();
        let layout = GsoLayout::new(cleartext_len, segment_size, usize::MAX)
            .map_err(|_| SendError::SegmentSize(segment_size))?;
        let datagrams = layout.segments;
        if datagrams > MAX_SEGMENTS {
            return Err(SendError::TooManyDatagrams(datagrams));
        }
        let (wire, outcomes) = buffer.prepare(layout.sealed_len, datagrams);
        if datagrams == 0 {
            return Ok(Sent::default());
        }
        if datagrams == 1 {
            // No batch shape to check: a packet too short for a GSO segment still seals.
            outcomes[0] = flow.seal_one(transmit.cleartext, wire);
        // The per-datagram outcomes, read below, say more than the batch's totals.
        } else if let Err(error) = flow.seal_gso(transmit.cleartext, segment_size, wire, outcomes) {
            // Refused whole: no datagram was sealed, so there are no outcomes to show.
            buffer.clear();
            return Err(SendError::Seal(error));
        }
        let mut next = 0;
        let result = self.send_runs(
            (transmit.destination, transmit.ecn, segment_size),
            &buffer.wire[..layout.sealed_len],
            &buffer.outcomes[..datagrams],
            &mut next,
            wait,
        );
        if let Err(SendError::WouldBlock { .. }) = result {
            buffer.pending = Some(Pending {
                destination: transmit.destination,
                ecn: transmit.ecn,
                segment_size,
                next,
            });
        }
        result.map_err(|error| buffer.with_pending(error))
    }

    /// Seals datagrams where they lie and sends them: `datagrams` is laid out as it goes on
    /// the wire, at a stride of `segment_size` (the last may be shorter), each datagram its
    /// cleartext followed by 16 spare bytes for its tag. That is how QUIC stacks that build
    /// packets in their send buffer lay them out; there is no copy at all. One outcome per
    /// datagram goes to `outcomes`; refused datagrams are left out as in [`send`](Self::send).
    ///
    /// One connection's flow only: the core seals in place with [`TxFlow::seal_gso_in_place`],
    /// which a flow table does not have.
    pub fn send_in_place<B: Backend>(
        &self,
        flow: &mut TxFlow<B>,
        destination: SocketAddr,
        ecn: Ecn,
        datagrams: &mut [u8],
        segment_size: usize,
        outcomes: &mut [Outcome],
    ) -> Result<Sent, SendError> {
        if segment_size > MAX_UDP_PAYLOAD {
            return Err(SendError::SegmentSize(segment_size));
        }
        let count = GsoLayout::in_place(datagrams.len(), segment_size, usize::MAX)
            .map_err(|_| SendError::SegmentSize(segment_size))?
            .segments;
        if count > MAX_SEGMENTS {
            return Err(SendError::TooManyDatagrams(count));
        }
        if count == 0 {
            return Ok(Sent::default());
        }
        // The per-datagram outcomes, read below, say more than the batch's totals.
        let _ = flow
            .seal_gso_in_place(datagrams, segment_size, outcomes)
            .map_err(SendError::Seal)?;
        self.send_runs(
            (destination, ecn, segment_size),
            datagrams,
            &outcomes[..count],
            &mut 0,
            Wait::UpToTimeout,
        )
    }

    /// Sends each run of consecutive datagrams that sealed (`outcomes[i]` is `Ok`), from
    /// datagram `*next` on: one datagram per outcome in `wire`, at `segment_size` bytes.
    /// `*next` ends at the first datagram not sent, so a send that would block can go on
    /// from there.
    fn send_runs(
        &self,
        (destination, ecn, segment_size): (SocketAddr, Ecn, usize),
        wire: &[u8],
        outcomes: &[Outcome],
        next: &mut usize,
        wait: Wait,
    ) -> Result<Sent, SendError> {
        let mut sent = Sent {
            datagrams: outcomes.len().saturating_sub(*next),
            ..Sent::default()
        };
        while *next < outcomes.len() {
            let Ok(first) = outcomes[*next] else {
                sent.refused += 1;
                *next += 1;
                continue;
            };
            let start = *next * segment_size;
            let mut end = start + first.len;
            let mut index = *next + 1;
            while let Some(Ok(following)) = outcomes.get(index) {
                end = index * segment_size + following.len;
                index += 1;
            }
            let bytes = wire
                .get(start..end)
                .ok_or(SendError::Seal(Error::GsoLayout))?;
            let before = sent.sent;
            let result =
                self.send_wire_from(destination, ecn, bytes, segment_size, &mut sent, wait);
            *next += sent.sent - before;
            result?;
        }
        Ok(sent)
    }

    /// Sends datagrams that are already what goes on the wire (sealed elsewhere, or not
    /// protected at all), back to back at `segment_size` bytes, the last possibly shorter:
    /// with GSO where possible, else one per `sendmsg`.
    pub fn send_wire(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        datagrams: &[u8],
        segment_size: usize,
    ) -> Result<Sent, SendError> {
        self.send_wire_waiting(destination, ecn, datagrams, segment_size, Wait::UpToTimeout)
    }

    /// [`send_wire`](Self::send_wire) without waiting: [`SendError::WouldBlock`] says how many
    /// datagrams went before the socket filled; the rest are the caller's to send again.
    pub fn try_send_wire(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        datagrams: &[u8],
        segment_size: usize,
    ) -> Result<Sent, SendError> {
        self.send_wire_waiting(destination, ecn, datagrams, segment_size, Wait::Never)
    }

    fn send_wire_waiting(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        datagrams: &[u8],
        segment_size: usize,
        wait: Wait,
    ) -> Result<Sent, SendError> {
        if segment_size == 0 || segment_size > MAX_UDP_PAYLOAD {
            return Err(SendError::SegmentSize(segment_size));
        }
        let count = datagrams.len().div_ceil(segment_size);
        if count > MAX_SEGMENTS {
            return Err(SendError::TooManyDatagrams(count));
        }
        let mut sent = Sent {
            datagrams: count,
            ..Sent::default()
        };
        self.send_wire_from(destination, ecn, datagrams, segment_size, &mut sent, wait)?;
        Ok(sent)
    }

    /// Sends `bytes` (datagrams at `segment_size`) in as few `sendmsg` calls as GSO allows,
    /// adding what went to `sent` (also when a later `sendmsg` fails).
    fn send_wire_from(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        bytes: &[u8],
        segment_size: usize,
        sent: &mut Sent,
        wait: Wait,
    ) -> Result<(), SendError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let per_send = self
                .max_gso_segments()
                .min(MAX_UDP_PAYLOAD / segment_size)
                .max(1);
            let (chunk, tail) = rest.split_at(rest.len().min(per_send * segment_size));
            let transmit = quinn_udp::Transmit {
                destination,
                ecn: ecn.to_quinn(),
                contents: chunk,
                segment_size: (chunk.len() > segment_size).then_some(segment_size),
                src_ip: None,
            };
            match self.sendmsg(&transmit, sent.sent, wait) {
                Ok(()) => {
                    let count = chunk.len().div_ceil(segment_size);
                    if count > 1 {
                        bump(&self.stats.gso_sends, 1);
                    } else {
                        bump(&self.stats.single_sends, 1);
                    }
                    bump(&self.stats.datagrams_sent, count);
                    sent.sent += count;
                    sent.bytes += chunk.len();
                    sent.syscalls += 1;
                }
                Err(SendError::Io { source, .. })
                    if transmit.segment_size.is_some()
                        && gso_refused(&source)
                        && self.state.max_gso_segments() == 1 =>
                {
                    // quinn-udp saw the kernel refuse GSO and turned it off for this socket:
                    // this chunk goes again, one datagram at a time, and so will every later
                    // one (max_gso_segments() is 1 from now on).
                    bump(&self.stats.gso_refusals, 1);
                    continue;
                }
                Err(error) => return Err(error),
            }
            rest = tail;
        }
        Ok(())
    }

    /// One `sendmsg`; while the send buffer is full, waits up to the timeout or, with
    /// [`Wait::Never`], fails with [`SendError::WouldBlock`] at once.
    fn sendmsg(
        &self,
        transmit: &quinn_udp::Transmit<'_>,
        sent_before: usize,
        wait: Wait,
    ) -> Result<(), SendError> {
        let deadline = self.deadline();
        loop {
            match self.try_sendmsg(transmit) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if wait == Wait::Never {
                        return Err(SendError::WouldBlock {
                            sent: sent_before,
                            pending: 0,
                        });
                    }
                    if !self
                        .wait(PollFlags::OUT, deadline)
                        .map_err(|source| SendError::Io {
                            sent: sent_before,
                            source,
                        })?
                    {
                        return Err(SendError::Timeout {
                            sent: sent_before,
                            timeout: self.config.timeout,
                        });
                    }
                }
                Err(source) => {
                    return Err(SendError::Io {
                        sent: sent_before,
                        source,
                    });
                }
            }
        }
    }

    /// Makes the coming `sendmsg` calls fail with `WouldBlock` before the kernel sees them,
    /// as a full send buffer would, one per `true` in `pattern` (a `false` lets one through):
    /// for tests of what is built on this socket, since a loopback socket's send buffer does
    /// not reliably fill. Only with the `fault-injection` feature.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn refuse_sends(&self, pattern: &[bool]) {
        if let Ok(mut refusals) = self.refusals.lock() {
            refusals.extend(pattern);
        }
    }

    /// quinn-udp's `sendmsg`, or a refusal [`refuse_sends`](Self::refuse_sends) scripted.
    fn try_sendmsg(&self, transmit: &quinn_udp::Transmit<'_>) -> io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Ok(mut refusals) = self.refusals.lock()
            && refusals.pop_front() == Some(true)
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.state
            .try_send(UdpSockRef::from(&self.socket), transmit)
    }

    /// Receives what has arrived, up to one message per buffer of `batch`, waiting up to the
    /// timeout for the first; the datagrams stay as they came (see [`RecvBatch::open`]).
    /// Returns the number of messages.
    pub fn recv(&self, batch: &mut RecvBatch) -> Result<usize, RecvError> {
        let deadline = self.deadline();
        loop {
            let (buffers, metas) = batch.receive_into();
            let mut slices: [IoSliceMut<'_>; MAX_RECV_MESSAGES] =
                std::array::from_fn(|_| IoSliceMut::new(&mut []));
            let mut count = 0;
            for (slice, buffer) in slices.iter_mut().zip(buffers) {
                *slice = IoSliceMut::new(buffer);
                count += 1;
            }
            let count = count.min(metas.len());
            match self.state.recv(
                UdpSockRef::from(&self.socket),
                &mut slices[..count],
                &mut metas[..count],
            ) {
                Ok(messages) => {
                    batch.received(messages);
                    bump(&self.stats.messages_received, messages);
                    bump(&self.stats.datagrams_received, batch.datagram_count());
                    bump(&self.stats.truncated, batch.truncated_count());
                    return Ok(messages);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait(PollFlags::IN, deadline)? {
                        return Err(RecvError::Timeout(self.config.timeout));
                    }
                }
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
    }

    /// Receives what has arrived without waiting, into the caller's `buffers` (one message
    /// per buffer, at most [`MAX_RECV_MESSAGES`](crate::MAX_RECV_MESSAGES)), with each message's addresses, ECN and GRO segment size in
    /// `messages`. The datagrams are as they came, for callers that open them where they lie
    /// (an async runtime's own buffers, one flow per datagram). Fails with
    /// [`io::ErrorKind::WouldBlock`] when nothing has arrived.
    pub fn try_recv_into(
        &self,
        buffers: &mut [IoSliceMut<'_>],
        messages: &mut [MessageInfo],
    ) -> io::Result<usize> {
        let count = buffers.len().min(messages.len()).min(MAX_RECV_MESSAGES);
        let mut metas = [quinn_udp::RecvMeta::default(); MAX_RECV_MESSAGES];
        let received = self.state.recv(
            UdpSockRef::from(&self.socket),
            &mut buffers[..count],
            &mut metas[..count],
        )?;
        let (mut datagrams, mut truncated) = (0, 0);
        for ((info, meta), buffer) in messages
            .iter_mut()
            .zip(&metas)
            .zip(&*buffers)
            .take(received)
        {
            *info = MessageInfo::new(meta, buffer.len());
            datagrams += info.datagram_count();
            truncated += usize::from(info.truncated);
        }
        bump(&self.stats.messages_received, received);
        bump(&self.stats.datagrams_received, datagrams);
        bump(&self.stats.truncated, truncated);
        Ok(received)
    }

    /// [`recv`](Self::recv), then [`RecvBatch::open`] with `flow`.
    pub fn recv_open<O: OpenGro + ?Sized>(
        &self,
        flow: &mut O,
        batch: &mut RecvBatch,
    ) -> Result<usize, RecvError> {
        let messages = self.recv(batch)?;
        batch.open(flow);
        Ok(messages)
    }

    /// When a send or receive starting now gives up: `None` (never) when the configured
    /// timeout reaches past what `Instant` can represent, such as `Duration::MAX`.
    fn deadline(&self) -> Option<Instant> {
        Instant::now().checked_add(self.config.timeout)
    }

    /// Waits until the socket is ready for `events` or `deadline` passes (`None`: no
    /// deadline); false on timeout.
    fn wait(&self, events: PollFlags, deadline: Option<Instant>) -> io::Result<bool> {
        loop {
            let timeout = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        bump(&self.stats.timeouts, 1);
                        return Ok(false);
                    }
                    // Beyond what a timespec holds is as good as forever.
                    Timespec::try_from(left).ok()
                }
            };
            let mut fds = [PollFd::new(&self.socket, events)];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(0) => continue,
                // Readable, writable, or an error to collect by trying again.
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// For async runtimes, which register the descriptor and wait for readiness themselves, then
/// call the `try_` methods. Reading or writing through it bypasses the seal.
impl AsFd for SealedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for SealedSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The errors with which Linux refuses a GSO send it cannot segment (quinn-udp reacts to the
/// same two).
fn gso_refused(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == rustix::io::Errno::IO.raw_os_error()
            || code == rustix::io::Errno::INVAL.raw_os_error()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_socket_can_send_and_receive_from_different_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<SealedSocket>();
    }

    const SEGMENT: usize = 200;

    fn flows() -> (TxFlow, quicseal::RxFlow) {
        let (suite, secret) = (quicseal::CipherSuite::Aes128GcmSha256, [9; 32]);
        let config = quicseal::FlowConfig::new(0);
        (
            TxFlow::from_secret(suite, &secret, config).unwrap(),
            quicseal::RxFlow::from_secret(suite, &secret, config).unwrap(),
        )
    }

    /// `count` cleartext datagrams at the GSO stride, numbered from `first`; those in
    /// `malformed` have their fixed bit clear, which the seal refuses.
    fn cleartext(first: u8, count: usize, malformed: &[usize]) -> Vec<u8> {
        let stride = SEGMENT - TAG_LEN;
        let mut bytes = vec![0x5a; count * stride];
        for (index, packet) in bytes.chunks_mut(stride).enumerate() {
            let byte = if malformed.contains(&index) {
                0x00
            } else {
                0x40
            };
            packet[..2].copy_from_slice(&[byte, first + index as u8]);
        }
        bytes
    }

    /// A sender (with GSO or without) and a receiver on loopback.
    fn sockets(gso: bool) -> (SealedSocket, SealedSocket) {
        let bind = |gso| {
            let config = SocketConfig {
                gso,
                ..SocketConfig::default()
            };
            SealedSocket::bind("127.0.0.1:0".parse().unwrap(), config).unwrap()
        };
        (bind(gso), bind(true))
    }

    fn pair() -> (SealedSocket, SealedSocket) {
        sockets(true)
    }

    /// `cleartext` for `receiver` at [`SEGMENT`] bytes a datagram, ECT(0).
    fn to<'a>(receiver: &SealedSocket, cleartext: &'a [&'a [u8]]) -> Transmit<'a> {
        Transmit {
            destination: receiver.local_addr().unwrap(),
            ecn: Ecn::Ect0,
            cleartext,
            segment_size: SEGMENT,
        }
    }

    /// The packet numbers `receiver` opens until `count` datagrams arrived.
    fn received_numbers(
        receiver: &SealedSocket,
        rx: &mut quicseal::RxFlow,
        count: usize,
    ) -> Vec<u64> {
        let mut batch = RecvBatch::new(8, crate::DEFAULT_MESSAGE_CAPACITY);
        let mut numbers = Vec::new();
        while numbers.len() < count {
            receiver.recv_open(rx, &mut batch).unwrap();
            for message in batch.messages() {
                for datagram in message.datagrams() {
                    numbers.push(datagram.outcome.unwrap().packet.unwrap().number());
                }
            }
        }
        numbers
    }

    #[test]
    fn datagrams_a_full_socket_refused_wait_sealed_for_try_flush() {
        let (sender, receiver) = pair();
        let (mut tx, mut rx) = flows();
        // Five datagrams, the second refused by the seal: runs [0] and [2, 3, 4]. The
        // socket takes the first run and is full for the second.
        let bytes = cleartext(0, 5, &[1]);
        let pieces = [&bytes[..]];
        let transmit = to(&receiver, &pieces);
        let mut buffer = SendBuffer::new();
        sender.refuse_sends(&[false, true, true]);
        match sender.try_send(&mut tx, &transmit, &mut buffer) {
            Err(SendError::WouldBlock {
                sent: 1,
                pending: 3,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(buffer.pending(), 3);
        assert_eq!(tx.counters().sealed, 4, "sealed once, before the send");
        // Nothing new is sealed while datagrams wait, and nothing is sent out of order.
        let later = cleartext(5, 1, &[]);
        let next = Transmit {
            cleartext: &[&later],
            ..transmit
        };
        assert!(matches!(
            sender.try_send(&mut tx, &next, &mut buffer),
            Err(SendError::Pending(3))
        ));
        // Still full once, then the rest goes in one GSO send.
        assert!(matches!(
            sender.try_flush(&mut buffer),
            Err(SendError::WouldBlock {
                sent: 0,
                pending: 3
            })
        ));
        let flushed = sender.try_flush(&mut buffer).unwrap();
        assert_eq!(
            (flushed.sent, flushed.bytes, flushed.refused),
            (3, 3 * SEGMENT, 0)
        );
        assert_eq!(buffer.pending(), 0);
        assert_eq!(sender.try_flush(&mut buffer).unwrap(), Sent::default());
        let sent = sender.try_send(&mut tx, &next, &mut buffer).unwrap();
        assert_eq!(sent.sent, 1);
        assert_eq!(tx.counters().sealed, 5);
        assert_eq!(received_numbers(&receiver, &mut rx, 5), [0, 2, 3, 4, 5]);
        assert_eq!(rx.counters().opened, 5);
    }

    #[test]
    fn a_flush_goes_on_from_the_datagram_where_one_by_one_sends_stopped() {
        let (sender, receiver) = sockets(false);
        let (mut tx, mut rx) = flows();
        // Four datagrams, the last refused by the seal; one per sendmsg, and the socket
        // fills after the first.
        let bytes = cleartext(0, 4, &[3]);
        let pieces = [&bytes[..]];
        let transmit = to(&receiver, &pieces);
        let mut buffer = SendBuffer::new();
        sender.refuse_sends(&[false, true]);
        match sender.try_send(&mut tx, &transmit, &mut buffer) {
            Err(SendError::WouldBlock {
                sent: 1,
                pending: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
        let flushed = sender.try_flush(&mut buffer).unwrap();
        assert_eq!((flushed.sent, flushed.refused, buffer.pending()), (2, 1, 0));
        assert_eq!(received_numbers(&receiver, &mut rx, 3), [0, 1, 2]);
    }

    #[test]
    fn a_blocking_send_drops_what_an_earlier_try_send_left_pending() {
        let (sender, receiver) = pair();
        let (mut tx, mut rx) = flows();
        let bytes = cleartext(0, 3, &[]);
        let pieces = [&bytes[..]];
        let transmit = to(&receiver, &pieces);
        let mut buffer = SendBuffer::new();
        sender.refuse_sends(&[true]);
        assert!(matches!(
            sender.try_send(&mut tx, &transmit, &mut buffer),
            Err(SendError::WouldBlock {
                sent: 0,
                pending: 3
            })
        ));
        // The blocking send waits out a refusal too, and forgets the pending three.
        sender.refuse_sends(&[true]);
        let later = cleartext(3, 2, &[]);
        let next = Transmit {
            cleartext: &[&later],
            ..transmit
        };
        let sent = sender.send(&mut tx, &next, &mut buffer).unwrap();
        assert_eq!((sent.sent, buffer.pending()), (2, 0));
        assert_eq!(received_numbers(&receiver, &mut rx, 2), [3, 4]);
    }

    #[test]
    fn a_lone_packet_too_short_for_a_gso_segment_is_sealed_and_sent() {
        let (sender, receiver) = pair();
        let (mut tx, mut rx) = flows();
        // An ACK-sized packet: 30 bytes on the wire, below the shortest GSO segment.
        let packet = [0x40, 7, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let segment_size = packet.len() + TAG_LEN;
        assert!(segment_size < GsoLayout::min_gso_size(tx.config().dcid_len));
        let transmit = Transmit {
            destination: receiver.local_addr().unwrap(),
            ecn: Ecn::NotEct,
            cleartext: &[&packet],
            segment_size,
        };
        let mut buffer = SendBuffer::new();
        let sent = sender.send(&mut tx, &transmit, &mut buffer).unwrap();
        assert_eq!((sent.sent, sent.bytes), (1, segment_size));
        assert_eq!(received_numbers(&receiver, &mut rx, 1), [7]);
        // Two of them are a GSO batch, whose segment size is checked.
        let two = [packet, packet].concat();
        let batch = Transmit {
            cleartext: &[&two],
            ..transmit
        };
        assert!(matches!(
            sender.send(&mut tx, &batch, &mut buffer),
            Err(SendError::Seal(Error::GsoSizeTooSmall))
        ));
    }

    #[test]
    fn try_send_wire_says_what_went_before_the_socket_filled() {
        let (sender, receiver) = pair();
        let wire = [7u8; 3 * 100];
        sender.refuse_sends(&[true]);
        let destination = receiver.local_addr().unwrap();
        assert!(matches!(
            sender.try_send_wire(destination, Ecn::NotEct, &wire, 100),
            Err(SendError::WouldBlock {
                sent: 0,
                pending: 0
            })
        ));
        let sent = sender
            .try_send_wire(destination, Ecn::NotEct, &wire, 100)
            .unwrap();
        assert_eq!((sent.datagrams, sent.sent), (3, 3));
    }

    #[test]
    fn try_recv_into_fills_the_callers_buffers_and_never_waits() {
        let (sender, receiver) = pair();
        let mut buffers = vec![vec![0u8; crate::DEFAULT_MESSAGE_CAPACITY]; 4];
        let mut messages = [MessageInfo::default(); 4];
        let mut slices: Vec<IoSliceMut<'_>> =
            buffers.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let nothing = receiver.try_recv_into(&mut slices, &mut messages);
        assert_eq!(nothing.unwrap_err().kind(), io::ErrorKind::WouldBlock);

        let (mut tx, _) = flows();
        let bytes = cleartext(0, 4, &[]);
        let pieces = [&bytes[..]];
        let transmit = to(&receiver, &pieces);
        let sent = sender
            .send(&mut tx, &transmit, &mut SendBuffer::new())
            .unwrap();
        assert_eq!(sent.sent, 4);
        let mut datagrams = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while datagrams < 4 && Instant::now() < deadline {
            match receiver.try_recv_into(&mut slices, &mut messages) {
                Ok(count) => {
                    for message in &messages[..count] {
                        assert_eq!(message.source, sender.local_addr().unwrap());
                        assert_eq!(message.ecn, Ecn::Ect0);
                        assert!(!message.truncated);
                        assert_eq!(message.len % SEGMENT, 0);
                        datagrams += message.datagram_count();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(datagrams, 4);
        assert_eq!(receiver.stats().datagrams_received, 4);
        // The datagrams are as they came: still sealed.
        let (_, mut rx) = flows();
        let mut first = slices[0][..SEGMENT].to_vec();
        assert_eq!(
            rx.open_in_place(&mut first).unwrap().packet.unwrap().number,
            0
        );
    }

    #[test]
    fn gso_refusals_are_eio_and_einval_only() {
        assert!(gso_refused(&io::Error::from_raw_os_error(5)));
        assert!(gso_refused(&io::Error::from_raw_os_error(22)));
        assert!(!gso_refused(&io::Error::from_raw_os_error(90))); // EMSGSIZE
        assert!(!gso_refused(&io::Error::other("not an errno")));
    }
}
