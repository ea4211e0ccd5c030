//! Received messages and what opening them gave, datagram by datagram.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use quicseal::{Batch, Datagram, Error, Outcome, PacketInfo, gro_datagrams};
use quinn_udp::RecvMeta;

use crate::socket::MAX_SEGMENTS;
use crate::{Ecn, OpenGro};

/// Default room for one received message: 64 KiB, one byte more than the largest UDP
/// datagram and than the most one UDP GSO send (and so loopback GRO, and GRO under the
/// kernel's default `gro_max_size`) can carry. Where an interface's `gro_max_size` was raised
/// (BIG TCP), GRO may coalesce more (up to 64 segments): give [`RecvBatch::new`] more room
/// there.
///
/// A message that fills its buffer to the last byte is taken as cut off: the kernel flags a
/// truncated receive with `MSG_TRUNC`, but quinn-udp's `recvmmsg` does not pass the flag on,
/// so a full buffer is the only sign. [`RecvBatch::open`] refuses such a message whole with
/// [`Error::BufferTooSmall`] instead of opening its datagrams (a cut datagram would fail
/// authentication and count towards the integrity limit as a forgery), and
/// [`Received::is_truncated`] says so. Datagrams of a GRO batch past the cut are gone
/// without a trace: neither counted nor reported.
pub const DEFAULT_MESSAGE_CAPACITY: usize = 64 * 1024;

/// Most messages one receive takes (one `recvmmsg`): the most a [`RecvBatch`] holds, and
/// the most [`crate::SealedSocket::try_recv_into`] fills.
pub const MAX_RECV_MESSAGES: usize = quinn_udp::BATCH_SIZE;

/// Why a receive failed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived within the socket's timeout.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// The kernel refused the receive.
    #[error("recvmmsg failed: {0}")]
    Io(#[from] io::Error),
}

/// What opening did with one received message as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    /// Received with [`crate::SealedSocket::recv`] and not opened (yet).
    Unopened,
    /// Opened; the per-datagram outcomes are in the batch's outcome slice.
    Opened(Batch),
    /// Refused as a whole (a batch of the wrong shape): every datagram failed with this.
    Refused(Error),
}

/// Room for one receive: up to 32 messages (one `recvmmsg`), each a datagram or a GRO batch
/// of up to 64 datagrams, with their metadata and, once opened, each datagram's outcome.
/// Kept by the caller and reused, so a steady receiver allocates nothing.
#[derive(Debug)]
pub struct RecvBatch {
    buffers: Vec<u8>,
    capacity: usize,
    metas: Vec<RecvMeta>,
    outcomes: Vec<Outcome>,
    openings: Vec<Opening>,
    filled: usize,
}

impl RecvBatch {
    /// Room for `messages` messages (1 to 32) of up to `capacity` bytes each. A message as
    /// long as `capacity` is taken as cut off and refused (see [`DEFAULT_MESSAGE_CAPACITY`]),
    /// so `capacity` should exceed the largest message the socket can receive.
    pub fn new(messages: usize, capacity: usize) -> RecvBatch {
        let messages = messages.clamp(1, MAX_RECV_MESSAGES);
        let capacity = capacity.max(1);
        RecvBatch {
            buffers: vec![0; messages * capacity],
            capacity,
            metas: vec![RecvMeta::default(); messages],
            outcomes: vec![Err(Error::Malformed); messages * MAX_SEGMENTS],
            openings: vec![Opening::Unopened; messages],
            filled: 0,
        }
    }

    /// The buffers and metadata slots a receive fills.
    pub(crate) fn receive_into(&mut self) -> (impl Iterator<Item = &mut [u8]>, &mut [RecvMeta]) {
        self.filled = 0;
        (self.buffers.chunks_mut(self.capacity), &mut self.metas)
    }

    /// Records that a receive filled the first `messages` slots.
    pub(crate) fn received(&mut self, messages: usize) {
        self.filled = messages.min(self.metas.len());
        for opening in &mut self.openings[..self.filled] {
            *opening = Opening::Unopened;
        }
    }

    /// Messages of the last receive that filled their buffer and may have been cut off.
    pub(crate) fn truncated_count(&self) -> usize {
        self.metas[..self.filled]
            .iter()
            .filter(|meta| meta.len >= self.capacity)
            .count()
    }

    /// Datagrams in the received messages, GRO batches split.
    pub(crate) fn datagram_count(&self) -> usize {
        self.metas[..self.filled]
            .iter()
            .map(|meta| datagrams_in(meta.len, stride(meta)))
            .sum()
    }

    /// Opens every received datagram in place with `flow`; read the results with
    /// [`messages`](Self::messages). Opening an already opened batch again does nothing.
    ///
    /// A GRO message of more datagrams than the flow takes at once
    /// ([`OpenGro::max_segments`]) is opened in several calls. A message that filled its
    /// buffer, and so may have been cut off, is refused whole with [`Error::BufferTooSmall`]
    /// without being opened.
    pub fn open<O: OpenGro + ?Sized>(&mut self, flow: &mut O) {
        let capacity = self.capacity;
        let messages = self
            .buffers
            .chunks_mut(self.capacity)
            .zip(self.outcomes.chunks_mut(MAX_SEGMENTS))
            .zip(&mut self.openings)
            .zip(&self.metas)
            .take(self.filled);
        for (((buffer, outcomes), opening), meta) in messages {
            if *opening != Opening::Unopened {
                continue;
            }
            let len = meta.len.min(buffer.len());
            let bytes = &mut buffer[..len];
            *opening = if meta.len >= capacity {
                Opening::Refused(Error::BufferTooSmall)
            } else {
                open_message(flow, bytes, stride(meta), outcomes)
            };
        }
    }

    /// The messages of the last receive, in arrival order.
    pub fn messages(&self) -> impl Iterator<Item = Received<'_>> {
        self.buffers
            .chunks(self.capacity)
            .zip(self.outcomes.chunks(MAX_SEGMENTS))
            .zip(&self.openings)
            .zip(&self.metas)
            .take(self.filled)
            .map(|(((buffer, outcomes), opening), meta)| Received {
                source: meta.addr,
                destination_ip: meta.dst_ip,
                ecn: Ecn::from_quinn(meta.ecn),
                segment_size: stride(meta),
                bytes: &buffer[..meta.len.min(buffer.len())],
                truncated: meta.len >= buffer.len(),
                outcomes,
                opening: *opening,
            })
    }
}

/// Opens one message of datagrams at `stride`, in calls of at most the flow's
/// `max_segments` datagrams, so that a flow configured for fewer segments than the kernel
/// coalesces still opens every datagram. An empty message is one empty datagram, which the
/// core refuses (and counts) as malformed.
fn open_message<O: OpenGro + ?Sized>(
    flow: &mut O,
    bytes: &mut [u8],
    stride: usize,
    outcomes: &mut [Outcome],
) -> Opening {
    if gro_datagrams(bytes.len(), stride).is_none_or(|count| count > outcomes.len()) {
        // More datagrams than any GRO message holds: refuse before opening any.
        return Opening::Refused(Error::BufferTooSmall);
    }
    if bytes.is_empty() {
        return match flow.open_gro(bytes, stride, outcomes) {
            Ok(batch) => Opening::Opened(batch),
            Err(error) => Opening::Refused(error),
        };
    }
    let per_call = flow.max_segments().max(1).saturating_mul(stride);
    let mut total = Batch::default();
    for chunk in bytes.chunks_mut(per_call) {
        let results = outcomes.get_mut(total.datagrams..).unwrap_or_default();
        match flow.open_gro(chunk, stride, results) {
            Ok(batch) => {
                total.datagrams += batch.datagrams;
                total.ok += batch.ok;
                total.failed += batch.failed;
                total.len += batch.len;
            }
            // Only from a flow whose shape rules differ from RxFlow's; what it opened
            // before is reported refused with the rest.
            Err(error) => return Opening::Refused(error),
        }
    }
    Opening::Opened(total)
}

/// Datagrams in a message of `len` bytes at `stride`, as the core counts them; `stride` (from
/// [`stride`]) is zero only for an empty message, which is one datagram.
fn datagrams_in(len: usize, stride: usize) -> usize {
    gro_datagrams(len, stride).unwrap_or(1)
}

/// The segment size of a message: GRO's, or its own length for a lone datagram.
fn stride(meta: &RecvMeta) -> usize {
    if meta.stride == 0 || meta.stride > meta.len {
        meta.len
    } else {
        meta.stride
    }
}

/// Where one message [`crate::SealedSocket::try_recv_into`] received came from and how it is
/// cut: a datagram, or a GRO batch of datagrams at `segment_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it was sent to, where the kernel reports it.
    pub destination_ip: Option<IpAddr>,
    /// The ECN codepoint it arrived with (the same for every datagram of a GRO batch).
    pub ecn: Ecn,
    /// Bytes received.
    pub len: usize,
    /// Size of each datagram but the last (GRO's segment size, or the datagram's length).
    pub segment_size: usize,
    /// True when the message filled its buffer and may have been cut off: the kernel's
    /// truncation flag does not reach us (see [`DEFAULT_MESSAGE_CAPACITY`]). Opening such a
    /// message would count its cut datagram as a forgery.
    pub truncated: bool,
}

impl MessageInfo {
    /// The message `meta` describes, received into a buffer of `capacity` bytes.
    pub(crate) fn new(meta: &RecvMeta, capacity: usize) -> MessageInfo {
        MessageInfo {
            source: meta.addr,
            destination_ip: meta.dst_ip,
            ecn: Ecn::from_quinn(meta.ecn),
            len: meta.len.min(capacity),
            segment_size: stride(meta),
            truncated: meta.len >= capacity,
        }
    }

    /// Number of datagrams in the message, as the core's GRO split counts them.
    pub fn datagram_count(&self) -> usize {
        datagrams_in(self.len, self.segment_size)
    }
}

impl Default for MessageInfo {
    fn default() -> MessageInfo {
        MessageInfo {
            source: SocketAddr::from(([0, 0, 0, 0], 0)),
            destination_ip: None,
            ecn: Ecn::NotEct,
            len: 0,
            segment_size: 0,
            truncated: false,
        }
    }
}

/// One received message: a datagram, or a GRO batch of datagrams from one source.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// Who sent it.
    pub source: SocketAddr,
    /// The local address it was sent to, where the kernel reports it.
    pub destination_ip: Option<IpAddr>,
    /// The ECN codepoint it arrived with (the same for every datagram of a GRO batch).
    pub ecn: Ecn,
    /// Size of each datagram but the last (GRO's segment size, or the datagram's length).
    pub segment_size: usize,
    bytes: &'a [u8],
    truncated: bool,
    outcomes: &'a [Outcome],
    opening: Opening,
}

impl<'a> Received<'a> {
    /// True when the message filled its buffer and so may have been cut off (see
    /// [`DEFAULT_MESSAGE_CAPACITY`]); opening refuses it with [`Error::BufferTooSmall`].
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes received.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty datagram.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of datagrams in the message.
    pub fn datagram_count(&self) -> usize {
        datagrams_in(self.bytes.len(), self.segment_size)
    }

    /// The datagrams' bytes as they lie now: as they came before opening; after it, each
    /// opened 1-RTT packet is cleartext followed by its stale tag.
    pub fn segments(&self) -> impl Iterator<Item = &'a [u8]> {
        self.bytes.chunks(self.segment_size.max(1))
    }

    /// What opening did with the message as a whole, if it was opened (`Err` when it was
    /// refused before any datagram was looked at).
    pub fn batch(&self) -> Option<Result<Batch, Error>> {
        match self.opening {
            Opening::Unopened => None,
            Opening::Opened(batch) => Some(Ok(batch)),
            Opening::Refused(error) => Some(Err(error)),
        }
    }

    /// Each datagram's outcome, in order; nothing for a message that was not opened.
    pub fn datagrams(&self) -> Datagrams<'a> {
        let count = match self.opening {
            Opening::Unopened => 0,
            _ => self.datagram_count(),
        };
        Datagrams {
            bytes: self.bytes,
            segment_size: self.segment_size.max(1),
            outcomes: self.outcomes,
            opening: self.opening,
            index: 0,
            count,
        }
    }
}

/// The datagrams of an opened message; see [`Received::datagrams`].
#[derive(Clone, Debug)]
pub struct Datagrams<'a> {
    bytes: &'a [u8],
    segment_size: usize,
    outcomes: &'a [Outcome],
    opening: Opening,
    index: usize,
    count: usize,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = ReceivedDatagram<'a>;

    fn next(&mut self) -> Option<ReceivedDatagram<'a>> {
        if self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index += 1;
        let start = (index * self.segment_size).min(self.bytes.len());
        let end = (start + self.segment_size).min(self.bytes.len());
        let outcome = match self.opening {
            Opening::Refused(error) => Err(error),
            _ => self
                .outcomes
                .get(index)
                .copied()
                .unwrap_or(Err(Error::BufferTooSmall)),
        };
        Some(ReceivedDatagram {
            index,
            outcome: outcome.and_then(|datagram| Opened::new(&self.bytes[start..end], datagram)),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Datagrams<'_> {}

/// One datagram of a received message: opened, or the reason it was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedDatagram<'a> {
    /// Its position in the message.
    pub index: usize,
    /// What opening it gave.
    pub outcome: Result<Opened<'a>, Error>,
}

/// An opened datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Long-header packets at its front, exactly as they arrived: their protection is the
    /// handshake's, not ours.
    pub long_header: &'a [u8],
    /// The 1-RTT packet, if the datagram ended in one.
    pub packet: Option<OpenedPacket<'a>>,
}

impl<'a> Opened<'a> {
    fn new(segment: &'a [u8], datagram: Datagram) -> Result<Opened<'a>, Error> {
        let long_header = segment
            .get(..datagram.passthrough_len)
            .ok_or(Error::BufferTooSmall)?;
        let packet = match datagram.packet {
            None => None,
            Some(info) => {
                let header_at = datagram.passthrough_len;
                let payload_at = header_at + info.header_len;
                Some(OpenedPacket {
                    header: segment
                        .get(header_at..payload_at)
                        .ok_or(Error::BufferTooSmall)?,
                    payload: segment
                        .get(payload_at..payload_at + info.payload_len)
                        .ok_or(Error::BufferTooSmall)?,
                    info,
                })
            }
        };
        Ok(Opened {
            long_header,
            packet,
        })
    }
}

/// An opened 1-RTT packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedPacket<'a> {
    /// Its short header, unprotected.
    pub header: &'a [u8],
    /// Its payload (the frames), decrypted; the tag is not included.
    pub payload: &'a [u8],
    /// Packet number, key generation, key phase, and whether it moved the flow to a new
    /// generation.
    pub info: PacketInfo,
}

impl OpenedPacket<'_> {
    /// The full packet number.
    pub fn number(&self) -> u64 {
        self.info.number
    }

    /// The key generation that opened it.
    pub fn generation(&self) -> u64 {
        self.info.generation
    }

    /// The key phase bit it carried.
    pub fn key_phase(&self) -> bool {
        self.info.key_phase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};

    const SEGMENT: usize = 100;

    /// `count` sealed datagrams of `SEGMENT` bytes, back to back as GRO hands them over.
    fn gro_message(count: usize) -> Vec<u8> {
        let suite = CipherSuite::Aes128GcmSha256;
        let mut tx: TxFlow = TxFlow::from_secret(suite, &[1; 32], FlowConfig::new(0)).unwrap();
        let stride = SEGMENT - 16;
        let mut cleartext = vec![0u8; count * stride];
        for (n, packet) in cleartext.chunks_mut(stride).enumerate() {
            packet[..2].copy_from_slice(&[0x40, n as u8]);
        }
        let mut wire = vec![0u8; count * SEGMENT];
        let mut results = vec![Err(Error::Malformed); count];
        let batch = tx
            .seal_gso(&[&cleartext], SEGMENT, &mut [&mut wire], &mut results)
            .unwrap();
        assert_eq!(batch.ok, count);
        wire
    }

    /// A batch that received `message` (with GRO's `stride`) into a buffer of `capacity`.
    fn received(message: &[u8], stride: usize, capacity: usize) -> RecvBatch {
        let mut batch = RecvBatch::new(1, capacity);
        let len = message.len().min(capacity);
        {
            let (mut buffers, metas) = batch.receive_into();
            buffers.next().unwrap()[..len].copy_from_slice(&message[..len]);
            metas[0].len = len;
            metas[0].stride = stride;
        }
        batch.received(1);
        batch
    }

    fn rx(max_segments: usize) -> RxFlow {
        let mut config = FlowConfig::new(0);
        config.max_segments = max_segments;
        RxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[1; 32], config).unwrap()
    }

    #[test]
    fn a_gro_message_larger_than_the_flows_limit_opens_in_parts() {
        let message = gro_message(10);
        let mut batch = received(&message, SEGMENT, DEFAULT_MESSAGE_CAPACITY);
        let mut flow = rx(4);
        batch.open(&mut flow);
        let message = batch.messages().next().unwrap();
        let numbers: Vec<u64> = message
            .datagrams()
            .map(|d| d.outcome.unwrap().packet.unwrap().number())
            .collect();
        assert_eq!(numbers, (0..10).collect::<Vec<u64>>());
        let opened = message.batch().unwrap().unwrap();
        assert_eq!((opened.datagrams, opened.ok, opened.failed), (10, 10, 0));
        assert_eq!(opened.len, 10 * SEGMENT);
        assert_eq!(flow.counters().opened, 10);
    }

    #[test]
    fn a_message_that_fills_its_buffer_is_refused_unopened() {
        // Two and a half datagrams arrived of three: the kernel cut the message off.
        let message = gro_message(3);
        let mut batch = received(&message, SEGMENT, 250);
        let mut flow = rx(64);
        batch.open(&mut flow);
        let message = batch.messages().next().unwrap();
        assert!(message.is_truncated());
        assert_eq!(message.batch(), Some(Err(Error::BufferTooSmall)));
        assert!(
            message
                .datagrams()
                .all(|d| d.outcome == Err(Error::BufferTooSmall))
        );
        let counters = flow.counters();
        assert_eq!(
            (counters.opened, counters.auth_failures),
            (0, 0),
            "nothing opened, no forgery counted"
        );
        // One byte of room more, and the same bytes are a whole message.
        let mut batch = received(&gro_message(2), SEGMENT, 201);
        batch.open(&mut flow);
        let message = batch.messages().next().unwrap();
        assert!(!message.is_truncated());
        assert!(message.datagrams().all(|d| d.outcome.is_ok()));
    }
}
