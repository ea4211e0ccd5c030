//! The socket quinn sends and receives through, with quicseal between: each 1-RTT packet
//! quinn hands over in the clear (its tag's room stamped by [`crate::SealServerConfig`]'s
//! passthrough key) is sealed by its connection's flow on the way out, copy-fused into the
//! send buffer, GSO batches kept whole; each received datagram is opened in place by the flow
//! its destination connection ID belongs to before quinn sees it, and its tag replaced by the
//! marker quinn's passthrough key accepts. Datagrams without a stamp (Initial and Handshake
//! only) and datagrams no flow opens pass as they are: quinn's rustls keys handle the first,
//! and the second fail in quinn as a forgery does.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use quicseal::wire::{UnknownVersions, leading_long_packets};
use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use crate::registry::{Registry, TAG_LEN};

/// quinn's own UDP socket with quicseal's 1-RTT protection around it.
pub struct SealedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    registry: Arc<Registry>,
    send: Mutex<Sending>,
}

/// The send side's buffer, and a sealed transmit the socket could not send yet.
#[derive(Default)]
struct Sending {
    buffer: Vec<u8>,
    parked: Option<Parked>,
}

/// A transmit sealed but refused with `WouldBlock`. quinn sends the same cleartext again when
/// the socket is writable; sealing it twice would reuse packet numbers, so the sealed bytes
/// wait here and go out in its place.
struct Parked {
    /// quinn's transmit: where to and how, and its cleartext's length and first bytes.
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    segment_size: Option<usize>,
    src_ip: Option<IpAddr>,
    len: usize,
    start: Vec<u8>,
    sealed: Vec<u8>,
}

impl Parked {
    fn new(transmit: &Transmit<'_>, sealed: &[u8]) -> Parked {
        let contents = transmit.contents;
        Parked {
            destination: transmit.destination,
            ecn: transmit.ecn,
            segment_size: transmit.segment_size,
            src_ip: transmit.src_ip,
            len: contents.len(),
            start: contents[..contents.len().min(64)].to_vec(),
            sealed: sealed.to_vec(),
        }
    }

    /// True when `transmit` is quinn sending the parked one again.
    fn is(&self, transmit: &Transmit<'_>) -> bool {
        self.destination == transmit.destination
            && self.segment_size == transmit.segment_size
            && self.len == transmit.contents.len()
            && transmit.contents.starts_with(&self.start)
    }

    fn transmit(&self) -> Transmit<'_> {
        Transmit {
            destination: self.destination,
            ecn: self.ecn,
            contents: &self.sealed,
            segment_size: self.segment_size,
            src_ip: self.src_ip,
        }
    }
}

impl SealedSocket {
    /// Wraps `inner` (for instance `quinn::TokioRuntime.wrap_udp_socket(..)`); the sessions of
    /// the [`crate::SealServerConfig`] with the same `registry` offload to it.
    pub fn new(inner: Arc<dyn AsyncUdpSocket>, registry: Arc<Registry>) -> SealedSocket {
        SealedSocket {
            inner,
            registry,
            send: Mutex::new(Sending::default()),
        }
    }

    /// Seals `transmit`'s stamped datagrams into `out`, the others copied as they are. `false`
    /// when one cannot leave: stamped by a connection that is gone, or refused by its flow
    /// (the transmit is then dropped whole, a loss QUIC recovers from, and no cleartext
    /// leaves).
    fn seal(&self, transmit: &Transmit<'_>, out: &mut Vec<u8>) -> bool {
        let stride = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        out.clear();
        out.resize(transmit.contents.len(), 0);
        for (datagram, sealed) in transmit.contents.chunks(stride).zip(out.chunks_mut(stride)) {
            match self.registry.stamped(datagram) {
                None => sealed.copy_from_slice(datagram),
                Some(None) => return false,
                Some(Some(flow)) => {
                    let mut tx = flow.tx();
                    let cleartext = &datagram[..datagram.len() - TAG_LEN];
                    let outcome = tx.flow.seal(&[cleartext], &mut [sealed]);
                    tx.install_pending();
                    if outcome.is_err() {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Opens a received datagram in place with the flow it belongs to, if any does.
    fn open(&self, datagram: &mut [u8]) {
        // Only datagrams that end in a 1-RTT packet (a short header, maybe after coalesced
        // long ones) concern the flows; long-header-only ones are quinn's alone.
        let byte = |i: usize| datagram.get(i).copied();
        match leading_long_packets(byte, datagram.len(), UnknownVersions::PassThrough) {
            Ok((at, _)) if at + TAG_LEN < datagram.len() => {}
            _ => return,
        }
        let mut trial = Vec::new();
        for flow in self.registry.candidates(datagram) {
            let mut rx = flow.rx();
            trial.clear();
            trial.extend_from_slice(datagram);
            // On a copy: a failed open zeroes the payload, and the next flow must see it whole.
            let opened = rx.flow.open_in_place(&mut trial);
            rx.install_pending();
            if let Ok(opened) = opened
                && let Some(packet) = opened.packet
            {
                trial[opened.len..opened.len + TAG_LEN]
                    .copy_from_slice(&flow.marker(packet.generation));
                datagram.copy_from_slice(&trial);
                drop(rx);
                self.registry.learn_route(&flow, datagram);
                return;
            }
        }
    }
}

impl fmt::Debug for SealedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for SealedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Arc::clone(&self.inner).create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let mut send = self.send.lock().unwrap_or_else(|e| e.into_inner());
        let Sending { buffer, parked } = &mut *send;
        if let Some(waiting) = parked.take() {
            let is_retry = waiting.is(transmit);
            match self.inner.try_send(&waiting.transmit()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *parked = Some(waiting);
                    return Err(e);
                }
                // quinn's retry of the parked transmit is done; another transmit goes on.
                _ if is_retry => return Ok(()),
                _ => {}
            }
        }
        if !self.seal(transmit, buffer) {
            return Ok(());
        }
        let sealed = Transmit {
            contents: buffer,
            ..*transmit
        };
        match self.inner.try_send(&sealed) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *parked = Some(Parked::new(transmit, buffer));
                Err(e)
            }
            result => result,
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let messages = ready!(self.inner.poll_recv(cx, bufs, meta))?;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter()).take(messages) {
            let stride = meta.stride.max(1);
            for datagram in buf[..meta.len].chunks_mut(stride) {
                self.open(datagram);
            }
        }
        Poll::Ready(Ok(messages))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quicseal::{CipherSuite, FlowConfig, KeyMaterial, RxFlow, TxFlow};
    use std::collections::VecDeque;

    /// A socket that refuses with `WouldBlock` as told, and keeps what it sent.
    #[derive(Debug, Default)]
    struct Recorder {
        refuse: Mutex<VecDeque<bool>>,
        sent: Mutex<Vec<Vec<u8>>>,
    }

    impl AsyncUdpSocket for Recorder {
        fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
            unreachable!("the tests call try_send only")
        }

        fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
            if self.refuse.lock().unwrap().pop_front().unwrap_or(false) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.sent.lock().unwrap().push(transmit.contents.to_vec());
            Ok(())
        }

        fn poll_recv(
            &self,
            _cx: &mut Context<'_>,
            _bufs: &mut [IoSliceMut<'_>],
            _meta: &mut [RecvMeta],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            Ok("127.0.0.1:1".parse().unwrap())
        }
    }

    fn transmit(contents: &[u8]) -> Transmit<'_> {
        Transmit {
            destination: "127.0.0.1:2".parse().unwrap(),
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        }
    }

    /// A 1-RTT packet with packet number `number`, its tag's room stamped for `flow`.
    fn stamped(registry: &Registry, flow: &crate::registry::Flow, number: u8) -> Vec<u8> {
        let mut packet = vec![0x40, b'c', b'i', b'd', b'!', number];
        packet.extend([0x77; 40]);
        packet.extend(registry.stamp(flow, 0));
        packet
    }

    #[test]
    fn a_transmit_refused_with_would_block_is_sent_once_sealed_when_quinn_retries() {
        let suite = CipherSuite::Aes128GcmSha256;
        let keys = KeyMaterial::new(suite, &[1; 16], &[2; 12], &[3; 16]).unwrap();
        let registry = Arc::new(Registry::new());
        let flow = registry.insert(
            4,
            TxFlow::from_keys(&keys, FlowConfig::new(4)).unwrap(),
            RxFlow::from_keys(&keys, FlowConfig::new(4)).unwrap(),
        );
        let inner = Arc::new(Recorder::default());
        inner.refuse.lock().unwrap().extend([true, false, false]);
        let socket = SealedSocket::new(
            Arc::clone(&inner) as Arc<dyn AsyncUdpSocket>,
            Arc::clone(&registry),
        );
        let first = stamped(&registry, &flow, 1);
        let would_block = socket.try_send(&transmit(&first)).unwrap_err();
        assert_eq!(would_block.kind(), io::ErrorKind::WouldBlock);
        // quinn retries the same cleartext: the parked sealed bytes go, sealed once.
        socket.try_send(&transmit(&first)).unwrap();
        // The next packet is sealed as usual.
        let second = stamped(&registry, &flow, 2);
        socket.try_send(&transmit(&second)).unwrap();
        let sent = inner.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert_eq!(flow.tx().flow.counters().sealed, 2);
        // Both went out sealed: nothing of the stamp or the cleartext payload is left.
        for (datagram, cleartext) in sent.iter().zip([&first, &second]) {
            assert_eq!(datagram.len(), cleartext.len());
            assert_ne!(datagram[6..], cleartext[6..]);
        }
        let mut rx = flow.rx();
        for (datagram, cleartext) in sent.iter().zip([&first, &second]) {
            let mut datagram = datagram.clone();
            let opened = rx.flow.open_in_place(&mut datagram).unwrap();
            assert_eq!(
                datagram[..opened.len],
                cleartext[..cleartext.len() - TAG_LEN]
            );
        }
    }
}
