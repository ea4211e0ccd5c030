//! A stream of QUIC 1-RTT packets between two sockets of one machine: what `quicseal demo`
//! shows and `quicseal bench` measures.
//!
//! A sender thread writes numbered packets (short header, 8-byte connection ID, payload of
//! the packet number and a fill byte derived from it), seals them in GSO batches with
//! [`SealedSocket::send`] and flips the key phase once, at [`TrafficConfig::key_update_at`].
//! A receiver thread opens them with GRO ([`SealedSocket::recv_open`]) and checks each one:
//! connection ID, packet number, key phase and every payload byte. With
//! [`Protection::Unsealed`] the same packets travel in the same batches and the same number of
//! bytes (16 zero bytes where the tag would be) with no crypto at all: the baseline for the
//! benchmark.
//!
//! # Flow control
//!
//! UDP drops what a full receive buffer cannot take, and on loopback a sender easily outruns
//! a receiver that decrypts. So the sender keeps at most [`TrafficConfig::window`] packets in
//! flight: after each receive the receiver reports, over a channel, one past the largest
//! packet number it has seen (like QUIC's largest acknowledged), and the sender waits for
//! that report before going past the window. A packet lost in the socket does not stall the
//! sender, since later packets move the report on; if no report comes for
//! [`STALL_TIMEOUT`], the sender takes its packets in flight as lost and goes on. The
//! receiver's socket asks for a 4 MiB receive buffer so that a window of 512 packets fits
//! even without GRO (about 2.3 KiB of kernel memory per 1350-byte datagram).
//!
//! Losses are counted, not hidden: a packet the sender sent that never reached the receiver
//! is [`TrafficReport::lost`] (dropped in a socket buffer, or still on its way when the run's
//! deadline struck); one that arrived but did not open is [`TrafficReport::failed`]; one that
//! opened with other bytes than were sent is [`TrafficReport::corrupt`].

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use quicseal::backend::TAG_LEN;
use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, RxFlow, TxFlow};
use rustix::thread::CpuSet;

use crate::{
    DEFAULT_MESSAGE_CAPACITY, Ecn, MAX_SEGMENTS, MAX_UDP_PAYLOAD, Received, RecvBatch, RecvError,
    SealedSocket, SendBuffer, SendError, SocketConfig, SocketError, SocketStats, Transmit,
};

/// The destination connection ID of every packet.
pub const DCID: [u8; 8] = *b"quicseal";

/// The traffic secret both ends derive their keys from (generation 0): a fixed demo value,
/// the first 32 or 48 bytes as the suite needs.
pub const SECRET: [u8; 48] = *b"quicseal demo traffic secret, not for real use!!";

/// How long the sender waits for a report from the receiver before it takes its packets in
/// flight as lost.
pub const STALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long each receive waits before the receiver checks whether the sender is done.
const RECV_POLL: Duration = Duration::from_millis(100);

/// How long the receiver goes on draining after the deadline stopped the sender, so that
/// packets still on their way are counted as arrived, not lost.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Packets in flight at most unless a configuration says otherwise ([`TrafficConfig::window`]).
pub const DEFAULT_WINDOW: u64 = 512;

/// Receive buffer the receiver asks for (the kernel caps it at `net.core.rmem_max`).
pub const RECV_BUFFER: usize = 4 << 20;

/// Where a run's two threads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the scheduler puts them.
    Scheduler,
    /// The sender on the first CPU the calling thread may run on, the receiver on the
    /// second, each on its own for the whole run, as a datapath's threads usually are (and
    /// as `iperf3 -A` or `netperf -T` place theirs). Where the caller may run on only one
    /// CPU, the scheduler places them.
    ///
    /// On the 2-vCPU VM of docs/performance.md, left to the scheduler, a sealed sender
    /// waited for its receiver's reports tens of nanoseconds a packet although neither
    /// thread moved to the other's CPU; pinned, it hardly waits. The unsealed rate is the
    /// same either way.
    Pinned,
}

/// The CPUs a run's threads were on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCpus {
    /// The sender's CPU.
    pub sender: usize,
    /// The receiver's CPU.
    pub receiver: usize,
}

/// Whether packets are sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Sealed with the suite's AEAD and header protection, opened by the receiver.
    Sealed,
    /// The same packets and bytes in the clear: the benchmark's baseline.
    Unsealed,
}

/// One run's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficConfig {
    /// The cipher suite.
    pub suite: CipherSuite,
    /// Sealed, or the unsealed baseline.
    pub protection: Protection,
    /// Size of each packet on the wire (UDP payload), tag included: the GSO segment size.
    pub packet_size: usize,
    /// Packets per send: one GSO batch (1 to 64).
    pub batch: usize,
    /// Packets to send.
    pub count: u64,
    /// The first packet sent with the next key phase, if any (one key update).
    pub key_update_at: Option<u64>,
    /// Most packets in flight (sent, not yet reported seen by the receiver).
    pub window: u64,
    /// ECN codepoint of every packet; the receiver counts any other it sees.
    pub ecn: Ecn,
    /// The sender stops by then, whatever happens, and the receiver a second later; what
    /// has not arrived by then is lost.
    pub deadline: Duration,
    /// Where the two threads run.
    pub placement: Placement,
}

impl TrafficConfig {
    /// 1350-byte packets in GSO batches of 16, sealed with `suite`, a key update half way,
    /// the threads placed by the scheduler.
    pub fn new(suite: CipherSuite, count: u64) -> TrafficConfig {
        TrafficConfig {
            suite,
            protection: Protection::Sealed,
            packet_size: 1350,
            batch: 16,
            count,
            key_update_at: Some(count / 2),
            window: DEFAULT_WINDOW,
            ecn: Ecn::Ect0,
            deadline: Duration::from_secs(60),
            placement: Placement::Scheduler,
        }
    }

    /// Checks that the numbers make a run that can finish.
    pub fn validate(&self) -> Result<(), TrafficError> {
        let fail = |what| Err(TrafficError::Config(what));
        if !(MIN_PACKET_SIZE..=MAX_UDP_PAYLOAD).contains(&self.packet_size) {
            return fail("packet size must be 64 to 65507 bytes");
        }
        if !(1..=MAX_SEGMENTS).contains(&self.batch) {
            return fail("batch must be 1 to 64 packets");
        }
        if self.count == 0 {
            return fail("count must be at least 1");
        }
        if self.window < self.batch as u64 {
            return fail("window must hold at least one batch");
        }
        if self.deadline.is_zero() {
            return fail("deadline must be more than 0");
        }
        if self.stop_times(Instant::now()).is_none() {
            return fail("deadline is too far in the future for this machine's clock");
        }
        Ok(())
    }

    /// When a run starting at `start` stops sending, and when its receiver stops draining;
    /// `None` when those are past what `Instant` can represent.
    fn stop_times(&self, start: Instant) -> Option<(Instant, Instant)> {
        let deadline = start.checked_add(self.deadline)?;
        Some((deadline, deadline.checked_add(DRAIN_GRACE)?))
    }
}

/// Smallest packet the traffic uses: a header with a 4-byte packet number, the 8-byte
/// number in the payload, room for the header-protection sample, and the tag.
pub const MIN_PACKET_SIZE: usize = 64;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The configuration cannot make a run.
    #[error("invalid traffic: {0}")]
    Config(&'static str),
    /// A socket could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The socket's address could not be read.
    #[error("cannot read the socket's address: {0}")]
    Address(#[source] io::Error),
    /// A flow could not be made (a secret of the wrong length for the suite).
    #[error("cannot set up the flow: {0}")]
    Flow(#[source] Error),
    /// Sending failed.
    #[error("send failed: {0}")]
    Send(#[from] SendError),
    /// Receiving failed.
    #[error("receive failed: {0}")]
    Recv(#[source] RecvError),
    /// A thread of the run panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// The two sockets of a run.
#[derive(Debug)]
pub struct Endpoints {
    /// Sends the packets.
    pub sender: SealedSocket,
    /// Receives them; bound where the sender sends.
    pub receiver: SealedSocket,
}

impl Endpoints {
    /// A receiver bound at `address` and a sender on the same IP address (any port), both
    /// with GSO as `gso` says and GRO on.
    pub fn bind(address: SocketAddr, gso: bool) -> Result<Endpoints, SocketError> {
        let receiver = SealedSocket::bind(
            address,
            SocketConfig {
                gso,
                timeout: RECV_POLL,
                recv_buffer: Some(RECV_BUFFER),
                send_buffer: None,
            },
        )?;
        let sender = SealedSocket::bind(
            SocketAddr::new(address.ip(), 0),
            SocketConfig {
                gso,
                timeout: STALL_TIMEOUT,
                recv_buffer: None,
                send_buffer: Some(RECV_BUFFER),
            },
        )?;
        Ok(Endpoints { sender, receiver })
    }
}

/// How far a run has got, for a progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Packets sent.
    pub sent: u64,
    /// Packets received (opened or not).
    pub received: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficReport {
    /// Packets the sender handed to the kernel.
    pub sent: u64,
    /// Packets the seal refused, not sent (0 unless something is wrong).
    pub refused: u64,
    /// Packets received and opened (unsealed: parsed) with exactly the bytes sent.
    pub opened: u64,
    /// Packets received that did not open, by [`Error::code`] in `failure_reasons`.
    pub failed: u64,
    /// Why packets did not open, with counts.
    pub failure_reasons: BTreeMap<&'static str, u64>,
    /// Packets that opened but are not what was sent.
    pub corrupt: u64,
    /// Packets sent and never received: dropped in a socket buffer, or still on their way
    /// at the deadline.
    pub lost: u64,
    /// UDP payload bytes received.
    pub wire_bytes: u64,
    /// Cleartext payload bytes opened.
    pub payload_bytes: u64,
    /// Key updates the sender made.
    pub key_updates_sent: u64,
    /// Key updates the receiver followed.
    pub key_updates_received: u64,
    /// Packets that arrived with another ECN codepoint than they were sent with.
    pub ecn_mismatches: u64,
    /// Times the sender gave up waiting for the receiver's report and went on.
    pub stalls: u64,
    /// Times the sender found the window full and waited for the receiver's report.
    pub window_waits: u64,
    /// Time the sender spent in those waits, off the CPU: where a run's rate is not the
    /// sender's CPU per packet, most of the difference is here.
    pub window_wait: Duration,
    /// The deadline stopped the sender before it sent every packet.
    pub deadline_reached: bool,
    /// From the first send to the last arrival.
    pub elapsed: Duration,
    /// CPU time the sending thread used (from `/proc/thread-self/schedstat`; zero where
    /// that is not available).
    pub sender_cpu: Duration,
    /// CPU time the receiving thread used.
    pub receiver_cpu: Duration,
    /// The CPUs the threads were pinned to ([`Placement::Pinned`]), if they were.
    pub pinned: Option<ThreadCpus>,
    /// The CPUs the threads were on when they finished.
    pub last_cpus: ThreadCpus,
    /// Largest number of datagrams one received message held (above 1 means GRO coalesced).
    pub largest_gro_batch: usize,
    /// The sending socket's counters.
    pub sender: SocketStats,
    /// The receiving socket's counters.
    pub receiver: SocketStats,
}

impl TrafficReport {
    /// True when every packet sent arrived and opened as sent.
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.corrupt == 0 && self.lost == 0 && self.refused == 0
    }

    /// UDP payload received per second, in bits.
    pub fn bits_per_second(&self) -> f64 {
        self.wire_bytes as f64 * 8.0 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Packets opened per second.
    pub fn packets_per_second(&self) -> f64 {
        self.opened as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `config`'s traffic from `endpoints.sender` to `endpoints.receiver`, calling
/// `on_progress` every few milliseconds from the calling thread while it runs.
pub fn run(
    endpoints: &Endpoints,
    config: &TrafficConfig,
    mut on_progress: impl FnMut(Progress),
) -> Result<TrafficReport, TrafficError> {
    config.validate()?;
    let destination = endpoints
        .receiver
        .local_addr()
        .map_err(TrafficError::Address)?;
    let secret = &SECRET[..config.suite.secret_len()];
    let flow_config = FlowConfig::new(DCID.len());
    let mut tx: TxFlow =
        TxFlow::from_secret(config.suite, secret, flow_config).map_err(TrafficError::Flow)?;
    let mut rx: RxFlow =
        RxFlow::from_secret(config.suite, secret, flow_config).map_err(TrafficError::Flow)?;

    let (report_tx, report_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let (sent_count, received_count) = (AtomicU64::new(0), AtomicU64::new(0));
    let (sent, received) = (&sent_count, &received_count);
    let start = Instant::now();
    let (deadline, drain_until) = config
        .stop_times(start)
        .ok_or(TrafficError::Config("deadline too far in the future"))?;

    let cpus = match config.placement {
        Placement::Pinned => rustix::thread::sched_getaffinity(None)
            .ok()
            .as_ref()
            .and_then(first_two),
        Placement::Scheduler => None,
    };
    let (tx, rx) = (&mut tx, &mut rx);
    thread::scope(|scope| {
        let sender = scope.spawn(move || {
            if let Some(cpus) = cpus {
                pin_to(cpus.sender);
            }
            let cpu = ThreadCpu::start();
            let outcome = send_all(
                &endpoints.sender,
                destination,
                config,
                tx,
                &report_rx,
                sent,
                deadline,
            );
            // Tell the receiver how many to wait for, even after a failure.
            let _ = done_tx.send(sent.load(Ordering::Relaxed));
            outcome.map(|tally| (tally, cpu.finish()))
        });
        let receiver = scope.spawn(move || {
            if let Some(cpus) = cpus {
                pin_to(cpus.receiver);
            }
            let cpu = ThreadCpu::start();
            receive_all(
                &endpoints.receiver,
                config,
                rx,
                &report_tx,
                &done_rx,
                received,
                drain_until,
            )
            .map(|tally| (tally, cpu.finish()))
        });
        while !(sender.is_finished() && receiver.is_finished()) {
            on_progress(Progress {
                sent: sent.load(Ordering::Relaxed),
                received: received.load(Ordering::Relaxed),
            });
            thread::sleep(Duration::from_millis(25));
        }
        on_progress(Progress {
            sent: sent.load(Ordering::Relaxed),
            received: received.load(Ordering::Relaxed),
        });
        let (sent, sender_run) = sender
            .join()
            .map_err(|_| TrafficError::Panicked("sender"))??;
        let (tally, receiver_run) = receiver
            .join()
            .map_err(|_| TrafficError::Panicked("receiver"))??;
        let arrived = tally.received();
        Ok(TrafficReport {
            sent: sent.packets,
            refused: sent.refused,
            opened: tally.opened,
            failed: tally.failed,
            failure_reasons: tally.failure_reasons,
            corrupt: tally.corrupt,
            lost: sent.packets.saturating_sub(arrived),
            wire_bytes: tally.wire_bytes,
            payload_bytes: tally.payload_bytes,
            key_updates_sent: sent.key_updates,
            key_updates_received: tally.key_updates,
            ecn_mismatches: tally.ecn_mismatches,
            stalls: sent.stalls,
            window_waits: sent.window_waits,
            window_wait: sent.window_wait,
            deadline_reached: sent.packets + sent.refused < config.count,
            elapsed: tally.last_arrival.unwrap_or(start).duration_since(start),
            sender_cpu: sender_run.cpu_time,
            receiver_cpu: receiver_run.cpu_time,
            // What the kernel says the threads were held to, not what was asked.
            pinned: cpus.filter(|cpus| {
                (sender_run.alone_on, receiver_run.alone_on)
                    == (Some(cpus.sender), Some(cpus.receiver))
            }),
            last_cpus: ThreadCpus {
                sender: sender_run.last_cpu,
                receiver: receiver_run.last_cpu,
            },
            largest_gro_batch: tally.largest_gro_batch,
            sender: endpoints.sender.stats(),
            receiver: endpoints.receiver.stats(),
        })
    })
}

/// The first two CPUs of `set`, for the sender and the receiver.
fn first_two(set: &CpuSet) -> Option<ThreadCpus> {
    let mut cpus = (0..CpuSet::MAX_CPU).filter(|&cpu| set.is_set(cpu));
    Some(ThreadCpus {
        sender: cpus.next()?,
        receiver: cpus.next()?,
    })
}

/// Pins the calling thread to `cpu`. Where the kernel refuses, the thread stays where it
/// may run, and [`ThreadCpu::finish`] says so.
fn pin_to(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// CPU time of the calling thread, from the scheduler's own count (nanoseconds on the CPU,
/// the first field of `/proc/thread-self/schedstat`).
struct ThreadCpu(Option<u64>);

/// How a thread ran: what [`ThreadCpu::finish`] found.
struct ThreadRun {
    cpu_time: Duration,
    /// The one CPU the thread may run on, if its affinity holds only one.
    alone_on: Option<usize>,
    last_cpu: usize,
}

impl ThreadCpu {
    fn start() -> ThreadCpu {
        ThreadCpu(thread_cpu_nanos())
    }

    /// The CPU time since [`ThreadCpu::start`], and where the thread is now and may run.
    fn finish(&self) -> ThreadRun {
        let cpu_time = match (self.0, thread_cpu_nanos()) {
            (Some(start), Some(now)) => Duration::from_nanos(now.saturating_sub(start)),
            _ => Duration::ZERO,
        };
        let alone_on = rustix::thread::sched_getaffinity(None)
            .ok()
            .filter(|set| set.count() == 1)
            .and_then(|set| (0..CpuSet::MAX_CPU).find(|&cpu| set.is_set(cpu)));
        ThreadRun {
            cpu_time,
            alone_on,
            last_cpu: rustix::thread::sched_getcpu(),
        }
    }
}

fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// What the sender did.
struct SenderTally {
    packets: u64,
    refused: u64,
    stalls: u64,
    window_waits: u64,
    window_wait: Duration,
    key_updates: u64,
}

fn send_all(
    socket: &SealedSocket,
    destination: SocketAddr,
    config: &TrafficConfig,
    tx: &mut TxFlow,
    reports: &Receiver<u64>,
    progress: &AtomicU64,
    deadline: Instant,
) -> Result<SenderTally, TrafficError> {
    let stride = config.packet_size - TAG_LEN;
    let mut cleartext = vec![0u8; config.batch * stride];
    let mut wire = match config.protection {
        Protection::Sealed => Vec::new(),
        Protection::Unsealed => vec![0u8; config.batch * config.packet_size],
    };
    let mut buffer = SendBuffer::new();
    let mut tally = SenderTally {
        packets: 0,
        refused: 0,
        stalls: 0,
        window_waits: 0,
        window_wait: Duration::ZERO,
        key_updates: 0,
    };
    let mut window = Window::default();
    let mut next = 0u64;
    while next < config.count && Instant::now() < deadline {
        let batch = (config.count - next).min(config.batch as u64);
        reports.try_iter().for_each(|report| window.report(report));
        while !window.has_room(next, batch, config.window) {
            tally.window_waits += 1;
            let waiting = Instant::now();
            let report = reports.recv_timeout(STALL_TIMEOUT);
            tally.window_wait += waiting.elapsed();
            match report {
                Ok(report) => window.report(report),
                Err(RecvTimeoutError::Timeout) => {
                    tally.stalls += 1;
                    window.stall(next);
                }
                // The receiver stopped (its deadline, or an error it reports itself).
                Err(RecvTimeoutError::Disconnected) => return Ok(tally),
            }
        }
        let largest_acked = window.largest_acked();
        let packets = cleartext.chunks_mut(stride).take(batch as usize);
        for (number, packet) in (next..).zip(packets) {
            write_packet(packet, number, key_phase(config, number), largest_acked)
                .map_err(TrafficError::Flow)?;
        }
        let cleartext = &cleartext[..batch as usize * stride];
        let sent = match config.protection {
            Protection::Sealed => socket.send(
                tx,
                &Transmit {
                    destination,
                    ecn: config.ecn,
                    cleartext: &[cleartext],
                    segment_size: config.packet_size,
                },
                &mut buffer,
            )?,
            Protection::Unsealed => {
                // The same copy the seal makes, without the crypto; the 16 bytes where the
                // tag would be stay zero.
                for (packet, slot) in cleartext
                    .chunks(stride)
                    .zip(wire.chunks_mut(config.packet_size))
                {
                    slot[..stride].copy_from_slice(packet);
                }
                let len = batch as usize * config.packet_size;
                socket.send_wire(destination, config.ecn, &wire[..len], config.packet_size)?
            }
        };
        tally.packets += sent.sent as u64;
        tally.refused += sent.refused as u64;
        next += batch;
        tally.key_updates = tx.counters().key_updates;
        progress.store(tally.packets, Ordering::Relaxed);
    }
    Ok(tally)
}

/// The sender's view of the receiver: what it really reported, and how far the sender may
/// go. The two differ after a stall, when the sender takes its packets in flight as lost to
/// go on: that moves its credit, but not what the receiver acknowledged, which is what packet
/// numbers are truncated against (RFC 9000 §17.1). Truncating against a packet the receiver
/// never got could make it decode the number wrong and fail the packet as a forgery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    /// One past the largest packet number the receiver reported seen.
    acked: u64,
    /// One past the last packet the sender counts as no longer in flight: `acked`, or more
    /// after a stall.
    credit: u64,
}

impl Window {
    /// The receiver reports one past the largest packet number it has seen.
    fn report(&mut self, seen: u64) {
        self.acked = self.acked.max(seen);
        self.credit = self.credit.max(seen);
    }

    /// No report came in time: everything before `next` counts as lost, not in flight.
    fn stall(&mut self, next: u64) {
        self.credit = self.credit.max(next);
    }

    /// True when `batch` more packets from `next` on keep at most `window` in flight.
    fn has_room(&self, next: u64, batch: u64, window: u64) -> bool {
        (next + batch).saturating_sub(self.credit) <= window
    }

    /// The largest packet number the receiver acknowledged, to truncate against.
    fn largest_acked(&self) -> Option<u64> {
        self.acked.checked_sub(1)
    }
}

/// The key phase of packet `number`: flipped from `key_update_at` on.
fn key_phase(config: &TrafficConfig, number: u64) -> bool {
    config.key_update_at.is_some_and(|at| number >= at)
}

/// The fill byte of packet `number`'s payload after its 8-byte number.
fn fill_byte(number: u64) -> u8 {
    number.to_le_bytes()[0] ^ 0xa5
}

/// Writes packet `number` into `packet`: short header, then the number and fill bytes.
pub fn write_packet(
    packet: &mut [u8],
    number: u64,
    key_phase: bool,
    largest_acked: Option<u64>,
) -> Result<(), Error> {
    let header = ShortHeader {
        fixed_bit: true,
        spin: false,
        key_phase,
        dcid: ConnectionId::new(&DCID)?,
        packet_number: TruncatedPacketNumber::encode(number, largest_acked)?,
    };
    let header_len = header.emit(packet)?;
    let payload = packet.get_mut(header_len..).ok_or(Error::BufferTooSmall)?;
    if payload.len() < 8 {
        return Err(Error::BufferTooSmall);
    }
    let (number_bytes, fill) = payload.split_at_mut(8);
    number_bytes.copy_from_slice(&number.to_be_bytes());
    fill.fill(fill_byte(number));
    Ok(())
}

/// True when `header` and `payload` are what [`write_packet`] wrote for `number`.
fn packet_is_intact(config: &TrafficConfig, header: &[u8], payload: &[u8], number: u64) -> bool {
    let Ok(parsed) = ShortHeader::parse(header, DCID.len()) else {
        return false;
    };
    parsed.dcid.as_bytes() == DCID
        && parsed.key_phase == key_phase(config, number)
        && payload.len() >= 8
        && payload[..8] == number.to_be_bytes()
        && is_filled_with(&payload[8..], fill_byte(number))
}

/// True when every byte of `bytes` is `fill`. A fold without an early exit, so the compiler
/// turns it into wide vector compares: a byte-at-a-time loop took about half the receiver's
/// time per 1350-byte packet, more than the opening it is there to check.
fn is_filled_with(bytes: &[u8], fill: u8) -> bool {
    bytes.iter().fold(0u8, |differs, &b| differs | (b ^ fill)) == 0
}

/// What the receiver saw.
#[derive(Default)]
struct ReceiverTally {
    opened: u64,
    failed: u64,
    corrupt: u64,
    failure_reasons: BTreeMap<&'static str, u64>,
    wire_bytes: u64,
    payload_bytes: u64,
    key_updates: u64,
    ecn_mismatches: u64,
    largest_gro_batch: usize,
    /// One past the largest packet number seen.
    seen: u64,
    /// Largest packet number received, to decode unsealed packet numbers against.
    largest: Option<u64>,
    last_arrival: Option<Instant>,
}

impl ReceiverTally {
    fn received(&self) -> u64 {
        self.opened + self.failed + self.corrupt
    }

    fn saw(&mut self, number: u64) {
        self.seen = self.seen.max(number + 1);
        self.largest = Some(self.largest.map_or(number, |l| l.max(number)));
    }

    fn failure(&mut self, error: Error) {
        self.failed += 1;
        *self.failure_reasons.entry(error.code()).or_default() += 1;
    }

    fn count_sealed(&mut self, config: &TrafficConfig, message: &Received<'_>) {
        for datagram in message.datagrams() {
            match datagram.outcome {
                Ok(opened) => match opened.packet {
                    Some(packet) => {
                        let number = packet.number();
                        self.saw(number);
                        self.key_updates += u64::from(packet.info.key_update);
                        if packet_is_intact(config, packet.header, packet.payload, number) {
                            self.opened += 1;
                            self.payload_bytes += packet.payload.len() as u64;
                        } else {
                            self.corrupt += 1;
                        }
                    }
                    // The sender sends no long-header packets.
                    None => self.corrupt += 1,
                },
                Err(error) => self.failure(error),
            }
        }
    }

    fn count_unsealed(&mut self, config: &TrafficConfig, message: &Received<'_>) {
        for segment in message.segments() {
            let parsed = ShortHeader::parse(segment, DCID.len());
            let Ok(header) = parsed else {
                self.failure(parsed.err().unwrap_or(Error::Malformed));
                continue;
            };
            let header_len = header.len();
            if segment.len() < header_len + TAG_LEN {
                self.failure(Error::Malformed);
                continue;
            }
            let number = header.packet_number.decode(self.largest);
            self.saw(number);
            let payload = &segment[header_len..segment.len() - TAG_LEN];
            if packet_is_intact(config, &segment[..header_len], payload, number) {
                self.opened += 1;
                self.payload_bytes += payload.len() as u64;
            } else {
                self.corrupt += 1;
            }
        }
    }
}

fn receive_all(
    socket: &SealedSocket,
    config: &TrafficConfig,
    rx: &mut RxFlow,
    reports: &Sender<u64>,
    done: &Receiver<u64>,
    progress: &AtomicU64,
    drain_until: Instant,
) -> Result<ReceiverTally, TrafficError> {
    let mut batch = RecvBatch::new(quinn_udp::BATCH_SIZE, DEFAULT_MESSAGE_CAPACITY);
    let mut tally = ReceiverTally::default();
    let mut total = None;
    while Instant::now() < drain_until {
        if total.is_none() {
            total = done.try_recv().ok();
        }
        if total.is_some_and(|total| tally.received() >= total) {
            break;
        }
        let outcome = match config.protection {
            Protection::Sealed => socket.recv_open(rx, &mut batch),
            Protection::Unsealed => socket.recv(&mut batch),
        };
        match outcome {
            Ok(_) => {
                tally.last_arrival = Some(Instant::now());
                for message in batch.messages() {
                    let datagrams = message.datagram_count();
                    tally.largest_gro_batch = tally.largest_gro_batch.max(datagrams);
                    tally.wire_bytes += message.len() as u64;
                    if message.ecn != config.ecn {
                        tally.ecn_mismatches += datagrams as u64;
                    }
                    match config.protection {
                        Protection::Sealed => tally.count_sealed(config, &message),
                        Protection::Unsealed => tally.count_unsealed(config, &message),
                    }
                }
                progress.store(tally.received(), Ordering::Relaxed);
                // The sender may have stopped listening; that is its business.
                let _ = reports.send(tally.seen);
            }
            // Nothing for a while: once the sender is done, what has not come is lost.
            Err(RecvError::Timeout(_)) if total.is_some() => break,
            Err(RecvError::Timeout(_)) => {}
            Err(error) => return Err(TrafficError::Recv(error)),
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_gets_the_first_cpu_allowed_and_the_receiver_the_second() {
        let set = |cpus: &[usize]| {
            let mut set = CpuSet::new();
            cpus.iter().for_each(|&cpu| set.set(cpu));
            set
        };
        assert_eq!(
            first_two(&set(&[9, 3, 5])),
            Some(ThreadCpus {
                sender: 3,
                receiver: 5
            })
        );
        assert_eq!(first_two(&set(&[2])), None, "one CPU: nothing to pin to");
        assert_eq!(first_two(&set(&[])), None);
    }

    #[test]
    fn pinned_threads_run_where_they_were_pinned() {
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        // Where the kernel refuses affinities (some sandboxes do), nothing is pinned.
        let may_pin = rustix::thread::sched_setaffinity(None, &allowed).is_ok();
        let expected = first_two(&allowed).filter(|_| may_pin);
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        for placement in [Placement::Pinned, Placement::Scheduler] {
            let endpoints = Endpoints::bind(address, true).unwrap();
            let config = TrafficConfig {
                placement,
                ..TrafficConfig::new(CipherSuite::Aes128GcmSha256, 2_000)
            };
            let report = run(&endpoints, &config, |_| {}).unwrap();
            assert!(report.clean(), "{report:?}");
            if placement == Placement::Scheduler {
                assert_eq!(report.pinned, None);
                continue;
            }
            assert_eq!(report.pinned, expected);
            if let Some(cpus) = expected {
                assert_eq!(report.last_cpus, cpus);
            }
        }
        // The calling thread was not pinned: only the run's threads were.
        let after = rustix::thread::sched_getaffinity(None).unwrap();
        assert_eq!(after.count(), allowed.count());
    }

    #[test]
    fn a_packet_is_intact_only_with_every_byte_as_written() {
        let config = TrafficConfig::new(CipherSuite::Aes128GcmSha256, 100);
        let number = 7;
        let mut packet = [0u8; 1334];
        write_packet(&mut packet, number, key_phase(&config, number), None).unwrap();
        let header_len = ShortHeader::parse(&packet, DCID.len()).unwrap().len();
        let (header, payload) = packet.split_at(header_len);
        assert!(packet_is_intact(&config, header, payload, number));
        for at in [0, 7, 8, 9, payload.len() / 2, payload.len() - 1] {
            for flip in [0x01, 0x80] {
                let mut changed = payload.to_vec();
                changed[at] ^= flip;
                assert!(
                    !packet_is_intact(&config, header, &changed, number),
                    "byte {at}"
                );
            }
        }
        assert!(!packet_is_intact(&config, header, payload, number + 1));
    }

    /// Packet `number` as the sender writes it with `window`'s state, decoded by a receiver
    /// whose largest received packet is `receiver_largest`.
    fn decoded(window: &Window, number: u64, receiver_largest: u64) -> u64 {
        let mut packet = [0u8; 64];
        write_packet(&mut packet, number, false, window.largest_acked()).unwrap();
        let header = ShortHeader::parse(&packet, DCID.len()).unwrap();
        header.packet_number.decode(Some(receiver_largest))
    }

    #[test]
    fn a_stall_moves_the_credit_but_not_what_packet_numbers_truncate_against() {
        let mut window = Window::default();
        assert!(window.has_room(0, 16, 512));
        // The receiver saw 0..=99; then 100..612 left and were all lost.
        window.report(100);
        assert!(!window.has_room(612, 16, 512), "512 in flight");
        window.stall(612);
        assert!(window.has_room(612, 16, 512), "taken as lost: room again");
        assert_eq!(window.largest_acked(), Some(99), "only what was reported");
        // The receiver still knows only 99: the next packets must decode against that.
        for number in [612, 700, 1000] {
            assert_eq!(decoded(&window, number, 99), number);
        }
        // A later report moves both.
        window.report(650);
        assert_eq!(window.largest_acked(), Some(649));
        assert_eq!(window.credit, 650);
        assert_eq!(decoded(&window, 700, 649), 700);
        // A stale report moves neither back.
        window.report(10);
        assert_eq!((window.acked, window.credit), (650, 650));
    }

    #[test]
    fn deadlines_must_be_positive_and_on_the_clock() {
        let config = |deadline| TrafficConfig {
            deadline,
            ..TrafficConfig::new(CipherSuite::Aes128GcmSha256, 10)
        };
        assert!(config(Duration::from_secs(1)).validate().is_ok());
        assert!(config(Duration::ZERO).validate().is_err());
        assert!(config(Duration::MAX).validate().is_err());
        assert!(config(Duration::from_secs(u64::MAX)).validate().is_err());
    }
}
