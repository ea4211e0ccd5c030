//! The socket quinn sends and receives through: quicseal's userspace [`SealedSocket`]
//! (`quicseal_userspace`), its GSO/GRO datapath, driven without waiting from quinn's tokio
//! runtime.
//!
//! On the way out, each run of 1-RTT datagrams quinn hands over in the clear (their tags'
//! room stamped by [`crate::SealServerConfig`]'s passthrough key) is sealed by its
//! connection's flow, copy-fused from quinn's buffer into the socket's send buffer, and sent
//! with one GSO `sendmsg`: [`quicseal_userspace::SealedSocket::try_send`], given the datagrams
//! without their stamps as scatter-gather pieces. Datagrams without a stamp (Initial and
//! Handshake only) go as they are. On the way in, GRO messages land in quinn's own buffers
//! ([`quicseal_userspace::SealedSocket::try_recv_into`]) and each datagram is opened in place
//! by the flow its destination connection ID belongs to, its tag replaced by the marker
//! quinn's passthrough key accepts. Datagrams no flow opens pass as they are, and quinn
//! drops them as forgeries.
//!
//! Readiness comes from tokio: a `tokio::net::UdpSocket` on a duplicate of the socket's
//! descriptor is registered with the reactor and only tracks readiness (`try_io`); every
//! byte goes through quicseal's socket.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use quicseal::wire::{UnknownVersions, leading_long_packets};
use quicseal_userspace::{
    self as userspace, Ecn, MAX_RECV_MESSAGES, MAX_SEGMENTS, MessageInfo, SendBuffer, SendError,
    Sent, SocketConfig,
};
use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;

use crate::registry::{Flow, Registry, TAG_LEN};

/// quicseal's userspace socket, sealing and opening quinn's 1-RTT packets, as quinn's
/// [`AsyncUdpSocket`].
pub struct SealedSocket {
    socket: userspace::SealedSocket,
    readiness: tokio::net::UdpSocket,
    registry: Arc<Registry>,
    send: Mutex<Sending>,
    send_failures: AtomicU64,
}

/// The send side's buffer, and what a full socket left of a transmit quinn handed over.
#[derive(Default)]
struct Sending {
    /// Sealed datagrams not sent yet wait here ([`SendBuffer::pending`]).
    buffer: SendBuffer,
    /// The rest of the transmit, not sealed or sent yet.
    backlog: Option<Backlog>,
}

/// What is left of a transmit that a full socket stopped part way. Once any of a transmit
/// has been sealed or sent, it is the socket's to finish: quinn is told it went (telling it
/// `WouldBlock` would have it offer the whole transmit again, and another connection's may
/// come first), and what is left goes out before any later transmit, in order, so that
/// every flow still seals its packets in the order quinn numbered them.
struct Backlog {
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    /// The transmit's stride, which the rest keeps.
    segment_size: usize,
    contents: Vec<u8>,
}

impl Backlog {
    /// What is left of `transmit` from datagram `first` on, if anything is.
    fn rest(transmit: &Transmit<'_>, first: usize) -> Option<Backlog> {
        let stride = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        let rest = transmit.contents.get(first * stride..)?;
        (!rest.is_empty()).then(|| Backlog {
            destination: transmit.destination,
            ecn: transmit.ecn,
            segment_size: stride,
            contents: rest.to_vec(),
        })
    }

    fn transmit(&self) -> Transmit<'_> {
        Transmit {
            destination: self.destination,
            ecn: self.ecn,
            contents: &self.contents,
            segment_size: Some(self.segment_size),
            src_ip: None,
        }
    }
}

/// Where a send stopped at a full socket: the first datagram not handed to the socket (the
/// ones before it are sent or sealed and pending), and whether anything of the transmit was
/// sealed or sent.
struct Blocked {
    resume_at: usize,
    progressed: bool,
}

/// Who protects a run of a transmit's datagrams.
enum Protection {
    /// Nobody: no stamp, the handshake's own protection.
    None,
    /// A connection that is gone: the run must not leave.
    Gone,
    /// This connection's flow.
    Flow(Arc<Flow>),
}

impl Protection {
    fn of(registry: &Registry, datagram: &[u8]) -> Protection {
        match registry.stamped(datagram) {
            None => Protection::None,
            Some(None) => Protection::Gone,
            Some(Some(flow)) => Protection::Flow(flow),
        }
    }

    fn same(&self, other: &Protection) -> bool {
        match (self, other) {
            (Protection::None, Protection::None) | (Protection::Gone, Protection::Gone) => true,
            (Protection::Flow(a), Protection::Flow(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl SealedSocket {
    /// Binds `address` with quicseal's userspace socket (GSO and GRO where the kernel has
    /// them); the sessions of the [`crate::SealServerConfig`] or [`crate::SealClientConfig`]
    /// with the same `registry` offload to it. Fails outside a tokio runtime.
    pub fn bind(address: SocketAddr, registry: Arc<Registry>) -> io::Result<SealedSocket> {
        let socket = userspace::SealedSocket::bind(address, SocketConfig::default())
            .map_err(io::Error::other)?;
        SealedSocket::new(socket, registry)
    }

    /// Drives `socket` from tokio: its descriptor, duplicated, is registered for readiness.
    /// Fails outside a tokio runtime.
    pub fn new(
        socket: userspace::SealedSocket,
        registry: Arc<Registry>,
    ) -> io::Result<SealedSocket> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let readiness = tokio::net::UdpSocket::from_std(socket.as_std().try_clone()?)?;
        Ok(SealedSocket {
            socket,
            readiness,
            registry,
            send: Mutex::new(Sending::default()),
            send_failures: AtomicU64::new(0),
        })
    }

    /// Datagrams that could not be sent for a reason other than a full socket (the kernel
    /// refused them, or their flow refused to seal them): lost, as far as quinn is
    /// concerned, which recovers them as it recovers any loss.
    pub fn send_failures(&self) -> u64 {
        self.send_failures.load(Ordering::Relaxed)
    }

    /// Counts `datagrams` lost on the way out (see [`send_failures`](Self::send_failures)).
    fn lost(&self, datagrams: usize) {
        self.send_failures
            .fetch_add(datagrams as u64, Ordering::Relaxed);
    }

    /// quicseal's socket underneath, for its counters ([`userspace::SealedSocket::stats`]:
    /// GSO sends, GRO messages and datagrams).
    pub fn socket(&self) -> &userspace::SealedSocket {
        &self.socket
    }

    /// One send attempt on the socket, if tokio has it writable: `None` when it has not (and
    /// `send` was not called), else what `send` gave. A full socket clears the readiness, so
    /// quinn's poller waits for the next edge.
    fn attempt(
        &self,
        send: impl FnOnce(&userspace::SealedSocket) -> Result<Sent, SendError>,
    ) -> Option<Result<Sent, SendError>> {
        let mut outcome = None;
        let _ = self.readiness.try_io(Interest::WRITABLE, || {
            let result = send(&self.socket);
            let full = matches!(result, Err(SendError::WouldBlock { .. }));
            outcome = Some(result);
            if full {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        outcome
    }

    /// Sends `transmit`'s datagrams, run by run: a run is consecutive datagrams of one flow
    /// (sealed and sent together) or without a stamp (sent as they are). A run the socket
    /// or the seal fails for any reason but a full socket is lost (counted in
    /// [`send_failures`](Self::send_failures)), as quinn's own socket loses a datagram the
    /// kernel refuses, and the next run goes on: QUIC recovers lost packets, and an error
    /// returned to quinn would end the connection's driver.
    fn send_runs(&self, transmit: &Transmit<'_>, buffer: &mut SendBuffer) -> Result<(), Blocked> {
        let contents = transmit.contents;
        let stride = transmit.segment_size.unwrap_or(contents.len()).max(1);
        let datagram = |index: usize| {
            let start = index * stride;
            &contents[start..contents.len().min(start + stride)]
        };
        let count = contents.len().div_ceil(stride);
        let ecn = transmit.ecn.map_or(Ecn::NotEct, from_quinn);
        let mut index = 0;
        while index < count {
            let protection = Protection::of(&self.registry, datagram(index));
            // Datagrams too short to be a flow's GSO segments (ACKs) go one by one.
            let longest_run = match &protection {
                Protection::Flow(flow) if stride < flow.tx().flow.min_gso_size() => 1,
                _ => MAX_SEGMENTS,
            };
            let mut end = index + 1;
            while end < count
                && end - index < longest_run
                && protection.same(&Protection::of(&self.registry, datagram(end)))
            {
                end += 1;
            }
            let run = &contents[index * stride..contents.len().min(end * stride)];
            let (outcome, sealed) = match &protection {
                // Never unsealed: to quinn, a loss.
                Protection::Gone => (Some(Ok(Sent::default())), false),
                Protection::None => (
                    self.attempt(|socket| {
                        socket.try_send_wire(transmit.destination, ecn, run, stride)
                    }),
                    false,
                ),
                Protection::Flow(flow) => {
                    flow.set_peer(transmit.destination);
                    let mut pieces: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
                    for (piece, at) in pieces.iter_mut().zip(index..end) {
                        let datagram = datagram(at);
                        *piece = &datagram[..datagram.len() - TAG_LEN];
                    }
                    let cleartext = userspace::Transmit {
                        destination: transmit.destination,
                        ecn,
                        cleartext: &pieces[..end - index],
                        segment_size: stride,
                    };
                    let mut tx = flow.tx();
                    let outcome =
                        self.attempt(|socket| socket.try_send(&mut tx.flow, &cleartext, buffer));
                    tx.install_pending();
                    (outcome, true)
                }
            };
            let resume_at = match outcome {
                Some(Ok(sent)) => {
                    self.lost(sent.refused);
                    None
                }
                // Not writable: nothing of this run was sealed or sent.
                None => Some(index),
                // A sealed run waits whole in the buffer (what did not go); an unsealed one
                // goes on from its first datagram not sent.
                Some(Err(SendError::WouldBlock { sent, .. })) => {
                    Some(if sealed { end } else { index + sent })
                }
                Some(Err(_)) => {
                    self.lost(end - index);
                    None
                }
            };
            if let Some(resume_at) = resume_at {
                // A sealed run resumes past its end, so this counts it too.
                return Err(Blocked {
                    resume_at,
                    progressed: resume_at > 0,
                });
            }
            index = end;
        }
        Ok(())
    }

    /// Sends what a full socket left of an earlier transmit: its sealed datagrams, then the
    /// rest of its runs. False while some of it still waits.
    fn flush(&self, sending: &mut Sending) -> bool {
        let pending = sending.buffer.pending();
        if pending > 0 {
            match self.attempt(|socket| socket.try_flush(&mut sending.buffer)) {
                None | Some(Err(SendError::WouldBlock { .. })) => return false,
                Some(Ok(_)) => {}
                // Dropped: a loss, as in `send_runs`.
                Some(Err(_)) => self.lost(pending),
            }
        }
        let Some(backlog) = sending.backlog.take() else {
            return true;
        };
        match self.send_runs(&backlog.transmit(), &mut sending.buffer) {
            Ok(()) => true,
            Err(blocked) => {
                sending.backlog = Backlog::rest(&backlog.transmit(), blocked.resume_at);
                false
            }
        }
    }

    /// Opens a received datagram in place with the flow it belongs to, if any does;
    /// `source` sent it.
    fn open(&self, datagram: &mut [u8], source: SocketAddr) {
        // Only datagrams that end in a 1-RTT packet (a short header, maybe after coalesced
        // long ones) concern the flows; long-header-only ones are quinn's alone.
        let byte = |i: usize| datagram.get(i).copied();
        let short = match leading_long_packets(byte, datagram.len(), UnknownVersions::PassThrough) {
            Ok((at, _)) if at + TAG_LEN < datagram.len() => at,
            _ => return,
        };
        // Routes go by the 1-RTT packet's connection ID, after any coalesced long packets.
        // One seen before names its flow: the datagram is opened where it lies. Failing
        // there, it is a forgery or damaged, and would fail with any flow.
        if let Some(flow) = self.registry.routed(&datagram[short..]) {
            let mut rx = flow.rx();
            let opened = rx.flow.open_in_place(datagram);
            rx.install_pending();
            if let Ok(opened) = opened
                && let Some(packet) = opened.packet
            {
                datagram[opened.len..opened.len + TAG_LEN]
                    .copy_from_slice(&flow.marker(packet.generation));
                flow.opened(packet.number);
                flow.set_peer(source);
            }
            return;
        }
        // Otherwise the candidate flows in turn, on a copy: a failed open zeroes the payload,
        // and the next flow must see it whole. Each failed trial counts as an authentication
        // failure of that flow's keys (toward its integrity limit): the candidates are
        // bounded (see `Registry::candidates`).
        let mut trial = Vec::new();
        for flow in self.registry.candidates(&datagram[short..], source) {
            let mut rx = flow.rx();
            trial.clear();
            trial.extend_from_slice(datagram);
            let opened = rx.flow.open_in_place(&mut trial);
            rx.install_pending();
            if let Ok(opened) = opened
                && let Some(packet) = opened.packet
            {
                trial[opened.len..opened.len + TAG_LEN]
                    .copy_from_slice(&flow.marker(packet.generation));
                datagram.copy_from_slice(&trial);
                drop(rx);
                flow.opened(packet.number);
                flow.set_peer(source);
                self.registry.learn_route(&flow, &datagram[short..]);
                return;
            }
        }
    }
}

impl SealedSocket {
    /// Sends what a full socket left of earlier transmits, from quinn's endpoint driver,
    /// which polls [`poll_recv`](AsyncUdpSocket::poll_recv) whenever it wakes. Otherwise
    /// only a later transmit would send it (`try_send` flushes first), and a connection
    /// whose last transmit was cut short may have none to make: its datagrams would wait for
    /// a loss timer. While something still waits, the driver is woken at the socket's next
    /// writable edge. A sender holding the lock flushes first anyway.
    fn flush_waiting(&self, cx: &mut Context<'_>) {
        let Ok(mut send) = self.send.try_lock() else {
            return;
        };
        // Twice at most: the socket may have drained between the flush and the poll.
        for _ in 0..2 {
            let waiting = send.buffer.pending() > 0 || send.backlog.is_some();
            if !waiting || self.flush(&mut send) || self.readiness.poll_send_ready(cx).is_pending()
            {
                return;
            }
        }
    }
}

impl fmt::Debug for SealedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSocket")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// Waits for the socket to be writable, for one of quinn's connections: tokio's `writable()`
/// future, kept between polls. Every connection of an endpoint waits with its own, which
/// `poll_send_ready` would not allow (it wakes the last waker it was given only).
struct Writable {
    socket: Arc<SealedSocket>,
    waiting: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>>,
}

impl fmt::Debug for Writable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writable")
            .field("waiting", &self.waiting.is_some())
            .finish_non_exhaustive()
    }
}

impl UdpPoller for Writable {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let waiting = this.waiting.get_or_insert_with(|| {
            let socket = Arc::clone(&this.socket);
            Box::pin(async move { socket.readiness.writable().await })
        });
        let result = waiting.as_mut().poll(cx);
        if result.is_ready() {
            this.waiting = None;
        }
        result
    }
}

impl AsyncUdpSocket for SealedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            socket: self,
            waiting: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let mut send = self.send.lock().unwrap_or_else(|e| e.into_inner());
        let sending = &mut *send;
        // An earlier transmit's rest first; this one waits, untouched, until it is out.
        if !self.flush(sending) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.send_runs(transmit, &mut sending.buffer) {
            Ok(()) => Ok(()),
            // Nothing of it sealed or sent: quinn offers it again once the socket is writable.
            Err(Blocked {
                progressed: false, ..
            }) => Err(io::ErrorKind::WouldBlock.into()),
            // Part of it gone: the rest is ours to send (see `Backlog`).
            Err(Blocked { resume_at, .. }) => {
                sending.backlog = Backlog::rest(transmit, resume_at);
                Ok(())
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.flush_waiting(cx);
        let mut messages = [MessageInfo::default(); MAX_RECV_MESSAGES];
        let count = loop {
            ready!(self.readiness.poll_recv_ready(cx))?;
            let limit = meta.len().min(MAX_RECV_MESSAGES);
            match self.readiness.try_io(Interest::READABLE, || {
                self.socket.try_recv_into(bufs, &mut messages[..limit])
            }) {
                Ok(count) => break count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        };
        for ((buf, meta), message) in bufs
            .iter_mut()
            .zip(meta.iter_mut())
            .zip(&messages)
            .take(count)
        {
            *meta = to_quinn(message);
            // A message that filled its buffer may have been cut off, or be a datagram as
            // long as quinn's buffer (its size when GRO is off): opened all the same, on a
            // copy, so a cut one fails as a forgery would.
            for datagram in buf[..message.len].chunks_mut(message.segment_size.max(1)) {
                self.open(datagram, message.source);
            }
        }
        Poll::Ready(Ok(count))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.socket.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.socket.max_gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.socket.may_fragment()
    }
}

/// quinn's ECN codepoint as quicseal's.
fn from_quinn(ecn: EcnCodepoint) -> Ecn {
    match ecn {
        EcnCodepoint::Ect0 => Ecn::Ect0,
        EcnCodepoint::Ect1 => Ecn::Ect1,
        EcnCodepoint::Ce => Ecn::Ce,
    }
}

/// A received message's metadata as quinn's (quinn-udp 0.5's type; quicseal's socket uses
/// 0.6 underneath).
fn to_quinn(message: &MessageInfo) -> RecvMeta {
    RecvMeta {
        addr: message.source,
        len: message.len,
        stride: message.segment_size,
        ecn: match message.ecn {
            Ecn::NotEct => None,
            Ecn::Ect0 => Some(EcnCodepoint::Ect0),
            Ecn::Ect1 => Some(EcnCodepoint::Ect1),
            Ecn::Ce => Some(EcnCodepoint::Ce),
        },
        dst_ip: message.destination_ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MAX_TRIALS;
    use quicseal::{CipherSuite, FlowConfig, KeyMaterial, RxFlow, TxFlow};
    use quicseal_userspace::{DEFAULT_MESSAGE_CAPACITY, RecvBatch};
    use quinn_proto::ConnectionIdGenerator;

    const SEGMENT: usize = 100;

    fn registry_with_flow() -> (Arc<Registry>, Arc<Flow>) {
        let suite = CipherSuite::Aes128GcmSha256;
        let keys = KeyMaterial::new(suite, &[1; 16], &[2; 12], &[3; 16]).unwrap();
        let registry = Arc::new(Registry::new());
        let flow = registry.insert(
            4,
            TxFlow::from_keys(&keys, FlowConfig::new(4)).unwrap(),
            RxFlow::from_keys(&keys, FlowConfig::new(4)).unwrap(),
        );
        (registry, flow)
    }

    /// A 1-RTT datagram of `SEGMENT` bytes with packet number `number`, its tag's room
    /// stamped for `flow`.
    fn stamped(registry: &Registry, flow: &Flow, number: u8) -> Vec<u8> {
        stamped_of(registry, flow, number, SEGMENT)
    }

    /// The same, `len` bytes long.
    fn stamped_of(registry: &Registry, flow: &Flow, number: u8, len: usize) -> Vec<u8> {
        let mut packet = vec![0x40, b'c', b'i', b'd', b'!', number];
        packet.resize(len - TAG_LEN, 0x77);
        packet.extend(registry.stamp(flow, 0));
        packet
    }

    /// A datagram of `SEGMENT` bytes that is a long-header packet, with no stamp.
    fn handshake(marker: u8) -> Vec<u8> {
        let mut packet = vec![0xe0, 0, 0, 0, 1, marker];
        packet.resize(SEGMENT, marker);
        packet
    }

    fn transmit(destination: SocketAddr, contents: &[u8]) -> Transmit<'_> {
        Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: (contents.len() > SEGMENT).then_some(SEGMENT),
            src_ip: None,
        }
    }

    /// An offloaded socket for `registry` (with GSO or without), a plain quicseal socket to
    /// receive what it sends, and the latter's address.
    fn sockets(
        registry: &Arc<Registry>,
        gso: bool,
    ) -> (Arc<SealedSocket>, userspace::SealedSocket, SocketAddr) {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let config = SocketConfig {
            gso,
            ..SocketConfig::default()
        };
        let inner = userspace::SealedSocket::bind(loopback, config).unwrap();
        let socket = Arc::new(SealedSocket::new(inner, Arc::clone(registry)).unwrap());
        let receiver = userspace::SealedSocket::bind(loopback, SocketConfig::default()).unwrap();
        let to = receiver.local_addr().unwrap();
        (socket, receiver, to)
    }

    /// Waits until tokio has `socket` writable.
    async fn writable(socket: &Arc<SealedSocket>) {
        let mut poller = Arc::clone(socket).create_io_poller();
        std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
            .await
            .unwrap();
    }

    /// A send the kernel completes, so that it reports the socket writable again (the edge
    /// a drained send buffer gives), after a refusal the test scripted.
    async fn drain_edge(socket: &Arc<SealedSocket>) {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sink.local_addr().unwrap();
        socket.socket().as_std().send_to(b"edge", to).unwrap();
        writable(socket).await;
    }

    /// What `receiver` gets until `count` datagrams arrived: long-header ones as they came,
    /// the others opened with `flow` (their cleartext without the tag).
    fn receive(receiver: &userspace::SealedSocket, flow: &Flow, count: usize) -> Vec<Vec<u8>> {
        let mut batch = RecvBatch::new(8, DEFAULT_MESSAGE_CAPACITY);
        let mut datagrams = Vec::new();
        while datagrams.len() < count {
            receiver.recv(&mut batch).unwrap();
            for message in batch.messages() {
                for segment in message.segments() {
                    let mut datagram = segment.to_vec();
                    if datagram[0] & 0x80 == 0 {
                        let opened = flow.rx().flow.open_in_place(&mut datagram).unwrap();
                        datagram.truncate(opened.len);
                    }
                    datagrams.push(datagram);
                }
            }
        }
        datagrams
    }

    /// The flow's counters say every datagram it was handed was sealed once: none refused
    /// for a packet number already used (sealing twice).
    fn sealed_once(flow: &Flow, sealed: u64) {
        let counters = flow.tx().flow.counters();
        assert_eq!(
            (counters.sealed, counters.rejected),
            (sealed, 0),
            "{counters:?}"
        );
    }

    /// Sends a GSO batch of the flow's packets 1 to 3 to `to` into a full socket. They are
    /// sealed, then refused: the socket's to send now, so quinn is told they went (it must
    /// not offer the cleartext again).
    async fn cut_short(
        registry: &Registry,
        flow: &Flow,
        socket: &Arc<SealedSocket>,
        to: SocketAddr,
    ) {
        let batch: Vec<u8> = (1..=3).flat_map(|n| stamped(registry, flow, n)).collect();
        writable(socket).await;
        socket.socket().refuse_sends(&[true]);
        socket.try_send(&transmit(to, &batch)).unwrap();
        sealed_once(flow, 3);
    }

    #[tokio::test]
    async fn a_batch_a_full_socket_refused_goes_sealed_once_before_the_next_transmit() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, true);
        cut_short(&registry, &flow, &socket, to).await;
        // Until the socket is writable again, the next transmit waits, untouched.
        let next = stamped(&registry, &flow, 4);
        let would_block = socket.try_send(&transmit(to, &next)).unwrap_err();
        assert_eq!(would_block.kind(), io::ErrorKind::WouldBlock);
        sealed_once(&flow, 3);
        drain_edge(&socket).await;
        socket.try_send(&transmit(to, &next)).unwrap();
        sealed_once(&flow, 4);
        let received = receive(&receiver, &flow, 4);
        for (datagram, number) in received.iter().zip(1..=4) {
            assert_eq!(
                datagram,
                &stamped(&registry, &flow, number)[..SEGMENT - TAG_LEN]
            );
        }
        assert_eq!(received.len(), 4);
        assert!(
            socket.socket().stats().gso_sends >= 1,
            "the batch went with GSO"
        );
    }

    #[tokio::test]
    async fn what_a_full_socket_left_goes_first_whoever_sends_next() {
        let (registry, flow) = registry_with_flow();
        let gone = registry.insert(
            4,
            TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[5; 32], FlowConfig::new(4))
                .unwrap(),
            RxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[5; 32], FlowConfig::new(4))
                .unwrap(),
        );
        let gone_datagram = stamped(&registry, &gone, 9);
        registry.remove(&gone);
        let (socket, receiver, to) = sockets(&registry, true);
        // A handshake datagram, two of the flow's, the gone connection's, a handshake one.
        let parts = [
            handshake(0xa1),
            stamped(&registry, &flow, 1),
            stamped(&registry, &flow, 2),
            gone_datagram,
            handshake(0xa2),
        ];
        writable(&socket).await;
        // The first run goes; the socket is full for the flow's run.
        socket.socket().refuse_sends(&[false, true]);
        socket.try_send(&transmit(to, &parts.concat())).unwrap();
        drain_edge(&socket).await;
        // Another connection's transmit: the rest of the first goes before it.
        let other = handshake(0xb0);
        socket.try_send(&transmit(to, &other)).unwrap();
        let received = receive(&receiver, &flow, 5);
        assert_eq!(received[0], parts[0]);
        assert_eq!(received[1], parts[1][..SEGMENT - TAG_LEN]);
        assert_eq!(received[2], parts[2][..SEGMENT - TAG_LEN]);
        assert_eq!(received[3], parts[4], "the gone connection's never leaves");
        assert_eq!(received[4], other);
        assert_eq!(received.len(), 5);
        sealed_once(&flow, 2);
    }

    #[tokio::test]
    async fn datagrams_sent_one_by_one_go_on_from_where_the_socket_filled() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, false);
        let parts = [handshake(1), handshake(2), handshake(3)];
        writable(&socket).await;
        // Nothing went: quinn offers the transmit again.
        socket.socket().refuse_sends(&[true]);
        let would_block = socket.try_send(&transmit(to, &parts.concat())).unwrap_err();
        assert_eq!(would_block.kind(), io::ErrorKind::WouldBlock);
        drain_edge(&socket).await;
        // Its first datagram went and the socket filled: the rest is the socket's.
        socket.socket().refuse_sends(&[false, true]);
        socket.try_send(&transmit(to, &parts.concat())).unwrap();
        drain_edge(&socket).await;
        let last = handshake(4);
        socket.try_send(&transmit(to, &last)).unwrap();
        let received = receive(&receiver, &flow, 4);
        assert_eq!(
            received,
            [&parts[..], &[last]].concat(),
            "each once, in order"
        );
    }

    /// A transmit cut short by a full socket, and no transmit after it: what it left goes
    /// out from the receive side once the socket is writable, as quinn's endpoint driver
    /// polls it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_full_socket_left_goes_without_a_later_transmit() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, true);
        cut_short(&registry, &flow, &socket, to).await;
        // The endpoint driver: receives (nothing comes) and is woken when it should be.
        let driver = tokio::spawn({
            let socket = Arc::clone(&socket);
            async move {
                let mut storage = [0u8; 2048];
                std::future::poll_fn(|cx| {
                    let mut bufs = [IoSliceMut::new(&mut storage)];
                    let mut meta = [RecvMeta::default()];
                    let _ = socket.poll_recv(cx, &mut bufs, &mut meta);
                    Poll::<()>::Pending
                })
                .await
            }
        });
        tokio::task::yield_now().await;
        // The kernel drains: a writable edge, and nothing else sends the batch.
        drain_edge(&socket).await;
        let received = tokio::task::spawn_blocking({
            let flow = Arc::clone(&flow);
            move || receive(&receiver, &flow, 3)
        })
        .await
        .unwrap();
        driver.abort();
        for (datagram, number) in received.iter().zip(1..=3) {
            assert_eq!(
                datagram,
                &stamped(&registry, &flow, number)[..SEGMENT - TAG_LEN]
            );
        }
        sealed_once(&flow, 3);
    }

    #[tokio::test]
    async fn a_datagram_its_flow_refuses_is_counted_lost() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, true);
        writable(&socket).await;
        socket
            .try_send(&transmit(to, &stamped(&registry, &flow, 1)))
            .unwrap();
        // Packet number 1 again: the flow refuses to seal it a second time.
        socket
            .try_send(&transmit(to, &stamped(&registry, &flow, 1)))
            .unwrap();
        assert_eq!(socket.send_failures(), 1);
        assert_eq!(receive(&receiver, &flow, 1).len(), 1);
    }

    #[tokio::test]
    async fn a_send_the_kernel_refuses_is_a_loss_and_the_rest_goes() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, true);
        writable(&socket).await;
        // An IPv6 destination from an IPv4 socket: the kernel refuses the send.
        let nowhere = "[::1]:9".parse().unwrap();
        socket.try_send(&transmit(nowhere, &handshake(1))).unwrap();
        assert_eq!(socket.send_failures(), 1);
        let next = stamped(&registry, &flow, 1);
        socket.try_send(&transmit(to, &next)).unwrap();
        assert_eq!(receive(&receiver, &flow, 1).len(), 1);
    }

    #[tokio::test]
    async fn datagrams_too_short_for_gso_segments_are_sealed_one_by_one() {
        let (registry, flow) = registry_with_flow();
        let (socket, receiver, to) = sockets(&registry, true);
        // Two ACK-sized datagrams in one transmit, as quinn may batch them.
        let short = 32;
        assert!(short < flow.tx().flow.min_gso_size());
        let parts = [
            stamped_of(&registry, &flow, 1, short),
            stamped_of(&registry, &flow, 2, short),
        ];
        let contents = parts.concat();
        let transmit = Transmit {
            segment_size: Some(short),
            ..transmit(to, &contents)
        };
        writable(&socket).await;
        socket.try_send(&transmit).unwrap();
        let received = receive(&receiver, &flow, 2);
        assert_eq!(
            received,
            [&parts[0][..short - TAG_LEN], &parts[1][..short - TAG_LEN]]
        );
        assert_eq!(socket.socket().stats().single_sends, 2);
    }

    /// A Handshake packet of 24 bytes to `cid!`, which a datagram can carry before a 1-RTT
    /// packet.
    fn handshake_packet() -> Vec<u8> {
        let mut packet = vec![0xe0, 0, 0, 0, 1, 4, b'c', b'i', b'd', b'!', 0, 12];
        packet.resize(24, 0x33);
        packet
    }

    /// A 1-RTT datagram to `dcid` with packet number `number`, sealed by `flow`.
    fn sealed_to(flow: &Flow, dcid: &[u8], number: u8) -> Vec<u8> {
        let mut cleartext = vec![0x40];
        cleartext.extend_from_slice(dcid);
        cleartext.push(number);
        cleartext.resize(cleartext.len() + 60, 0x55);
        let mut out = vec![0; cleartext.len() + TAG_LEN];
        let _ = flow.tx().flow.seal(&[&cleartext], &mut [&mut out]).unwrap();
        out
    }

    /// `count` flows, each with keys of its own, for local connection IDs of `cid_len` bytes.
    fn many_flows(registry: &Registry, count: usize, cid_len: usize) -> Vec<Arc<Flow>> {
        let suite = CipherSuite::Aes128GcmSha256;
        (0..count)
            .map(|i| {
                let secret = [i as u8; 32];
                registry.insert(
                    cid_len,
                    TxFlow::from_secret(suite, &secret, FlowConfig::new(cid_len)).unwrap(),
                    RxFlow::from_secret(suite, &secret, FlowConfig::new(cid_len)).unwrap(),
                )
            })
            .collect()
    }

    /// Failed opens over every flow: each trial that did not open is one.
    fn failed_trials(registry: &Registry) -> u64 {
        registry.totals().1.auth_failures
    }

    fn opened_by(flow: &Flow, datagram: &[u8]) -> bool {
        flow.is_marker(&datagram[datagram.len() - TAG_LEN..], 0)
    }

    #[tokio::test]
    async fn a_connection_id_no_route_names_is_tried_on_a_bounded_number_of_flows() {
        let registry = Arc::new(Registry::new());
        let flows = many_flows(&registry, MAX_TRIALS + 4, 4);
        let (socket, _, _) = sockets(&registry, false);
        let anywhere: SocketAddr = "192.0.2.1:443".parse().unwrap();
        // A made-up ID: MAX_TRIALS flows try it, not every one.
        let mut junk = sealed_to(&flows[0], b"junk", 1);
        junk[30] ^= 1;
        socket.open(&mut junk, anywhere);
        assert_eq!(failed_trials(&registry), MAX_TRIALS as u64);
        // A flow's packet to a new ID, from the address it talks to: it is tried first.
        let last = flows.last().unwrap();
        let peer: SocketAddr = "192.0.2.2:443".parse().unwrap();
        last.set_peer(peer);
        let mut datagram = sealed_to(last, b"new!", 1);
        socket.open(&mut datagram, peer);
        assert!(opened_by(last, &datagram));
        assert_eq!(
            failed_trials(&registry),
            MAX_TRIALS as u64,
            "no other flow tried"
        );
    }

    #[tokio::test]
    async fn with_a_validator_only_ids_that_validate_are_tried_and_on_every_flow() {
        let mut generator = quinn_proto::HashedConnectionIdGenerator::from_key(7);
        let registry = Arc::new(Registry::with_connection_id_validation(Box::new(
            quinn_proto::HashedConnectionIdGenerator::from_key(7),
        )));
        let flows = many_flows(&registry, MAX_TRIALS + 4, 8);
        let (socket, _, _) = sockets(&registry, false);
        let anywhere: SocketAddr = "192.0.2.1:443".parse().unwrap();
        let mut junk = sealed_to(&flows[0], b"made up!", 1);
        socket.open(&mut junk, anywhere);
        assert_eq!(failed_trials(&registry), 0, "a made-up ID costs no trial");
        // A new ID the endpoint issued, from an address no flow knows: every flow may try it.
        let last = flows.last().unwrap();
        let mut datagram = sealed_to(last, &generator.generate_cid(), 1);
        socket.open(&mut datagram, anywhere);
        assert!(opened_by(last, &datagram));
    }

    #[tokio::test]
    async fn routes_go_by_the_1rtt_packet_and_a_known_one_opens_in_place() {
        let (registry, flow) = registry_with_flow();
        let (socket, _, _) = sockets(&registry, true);
        let sealed = |number: u8| {
            let cleartext = stamped(&registry, &flow, number);
            let mut out = vec![0; cleartext.len()];
            let cleartext = &cleartext[..cleartext.len() - TAG_LEN];
            let _ = flow.tx().flow.seal(&[cleartext], &mut [&mut out]).unwrap();
            out
        };
        for number in 1..=2 {
            let mut datagram = [handshake_packet(), sealed(number)].concat();
            socket.open(&mut datagram, "127.0.0.1:9".parse().unwrap());
            // The long packet as it came; the 1-RTT one opened, its tag now the marker.
            let short = handshake_packet().len();
            assert_eq!(datagram[..short], handshake_packet()[..]);
            assert_eq!(
                datagram[short + 5],
                number,
                "the packet number, unprotected"
            );
            let tag = &datagram[datagram.len() - TAG_LEN..];
            assert!(flow.is_marker(tag, 0), "opened, number {number}");
            // Learned once, from the 1-RTT packet's ID: the second came by that route.
            assert_eq!(registry.connection_ids(), (1, 1));
            assert!(registry.routed(&datagram[short..]).is_some());
        }
        assert_eq!(flow.rx().flow.counters().opened, 2);
    }
}
