//! The socket: seal and send with GSO (or one datagram at a time where GSO is refused),
//! receive with GRO.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quicseal::backend::{Backend, TAG_LEN};
use quicseal::{DEFAULT_MAX_GSO_SEGMENTS, Error, GsoLayout, Outcome, TxFlow};
use quinn_udp::{UdpSockRef, UdpSocketState};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::recv::{RecvBatch, RecvError};
use crate::{Ecn, OpenGro, SealGso};

/// Most bytes of UDP payload one send may carry: 65535 − 20 (IPv4 header) − 8 (UDP header).
/// A GSO send is one datagram until the kernel splits it, so all its segments together must
/// fit too. (IPv6 allows 20 bytes more; one limit for both keeps batches portable.)
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Most datagrams one [`Transmit`] may hold, and most segments in one GSO send: Linux's
/// `UDP_MAX_SEGMENTS`.
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
#[derive(Debug, Default)]
pub struct SendBuffer {
    wire: Vec<u8>,
    outcomes: Vec<Outcome>,
    datagrams: usize,
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

    /// Forgets the last transmit's outcomes.
    fn clear(&mut self) {
        self.datagrams = 0;
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
        self.state.gro_segments() > 1
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
    /// `sendmsg` where possible, else one datagram per `sendmsg`.
    ///
    /// A datagram the seal refuses is not sent (a hole in a GSO batch would shift every
    /// datagram after it); the ones around it are, in as few sends as the holes allow.
    /// `buffer.outcomes()` has each datagram's outcome.
    pub fn send<S: SealGso + ?Sized>(
        &self,
        flow: &mut S,
        transmit: &Transmit<'_>,
        buffer: &mut SendBuffer,
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
        // The per-datagram outcomes, read below, say more than the batch's totals.
        if let Err(error) = flow.seal_gso(transmit.cleartext, segment_size, wire, outcomes) {
            // Refused whole: no datagram was sealed, so there are no outcomes to show.
            buffer.clear();
            return Err(SendError::Seal(error));
        }
        let outcomes = &buffer.outcomes[..datagrams];
        let wire = &buffer.wire[..layout.sealed_len];

        self.send_sealed(
            transmit.destination,
            transmit.ecn,
            wire,
            segment_size,
            outcomes,
        )
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
        self.send_sealed(
            destination,
            ecn,
            datagrams,
            segment_size,
            &outcomes[..count],
        )
    }

    /// Sends each run of consecutive datagrams that sealed (`outcomes[i]` is `Ok`): one
    /// datagram per outcome in `wire`, at `segment_size` bytes.
    fn send_sealed(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        wire: &[u8],
        segment_size: usize,
        outcomes: &[Outcome],
    ) -> Result<Sent, SendError> {
        let datagrams = outcomes.len();
        let mut sent = Sent {
            datagrams,
            ..Sent::default()
        };
        let mut index = 0;
        while index < datagrams {
            let Ok(first) = outcomes[index] else {
                sent.refused += 1;
                index += 1;
                continue;
            };
            let start = index * segment_size;
            let mut end = start + first.len;
            index += 1;
            while let Some(Ok(next)) = outcomes.get(index) {
                end = index * segment_size + next.len;
                index += 1;
            }
            let bytes = wire
                .get(start..end)
                .ok_or(SendError::Seal(Error::GsoLayout))?;
            let run = self.send_wire_from(destination, ecn, bytes, segment_size, sent.sent)?;
            sent.sent += run.sent;
            sent.bytes += run.bytes;
            sent.syscalls += run.syscalls;
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
        if segment_size == 0 || segment_size > MAX_UDP_PAYLOAD {
            return Err(SendError::SegmentSize(segment_size));
        }
        let count = datagrams.len().div_ceil(segment_size);
        if count > MAX_SEGMENTS {
            return Err(SendError::TooManyDatagrams(count));
        }
        let sent = self.send_wire_from(destination, ecn, datagrams, segment_size, 0)?;
        Ok(Sent {
            datagrams: count,
            ..sent
        })
    }

    /// Sends `bytes` (datagrams at `segment_size`) in as few `sendmsg` calls as GSO allows;
    /// `sent_before` only counts datagrams for error reports.
    fn send_wire_from(
        &self,
        destination: SocketAddr,
        ecn: Ecn,
        bytes: &[u8],
        segment_size: usize,
        sent_before: usize,
    ) -> Result<Sent, SendError> {
        let mut sent = Sent::default();
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
            match self.try_send(&transmit, sent_before + sent.sent) {
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
        Ok(sent)
    }

    /// One `sendmsg`, waiting up to the timeout while the send buffer is full.
    fn try_send(
        &self,
        transmit: &quinn_udp::Transmit<'_>,
        sent_before: usize,
    ) -> Result<(), SendError> {
        let deadline = self.deadline();
        loop {
            match self
                .state
                .try_send(UdpSockRef::from(&self.socket), transmit)
            {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
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

    /// Receives what has arrived, up to one message per buffer of `batch`, waiting up to the
    /// timeout for the first; the datagrams stay as they came (see [`RecvBatch::open`]).
    /// Returns the number of messages.
    pub fn recv(&self, batch: &mut RecvBatch) -> Result<usize, RecvError> {
        let deadline = self.deadline();
        loop {
            let (buffers, metas) = batch.receive_into();
            let mut slices: [IoSliceMut<'_>; quinn_udp::BATCH_SIZE] =
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

    #[test]
    fn gso_refusals_are_eio_and_einval_only() {
        assert!(gso_refused(&io::Error::from_raw_os_error(5)));
        assert!(gso_refused(&io::Error::from_raw_os_error(22)));
        assert!(!gso_refused(&io::Error::from_raw_os_error(90))); // EMSGSIZE
        assert!(!gso_refused(&io::Error::other("not an errno")));
    }
}
