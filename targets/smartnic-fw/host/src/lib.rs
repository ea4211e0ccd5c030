//! A host's side of quicseal's SmartNIC (docs/smartnic-abi.md): what a QUIC stack's driver
//! does to offload 1-RTT packet protection to the NIC.
//!
//! The host hands the NIC each connection direction once ([`Offload::connection`]: suite,
//! traffic secret, header key, connection-ID length), then posts jobs: cleartext datagrams
//! (or a GSO batch) to seal, sealed datagrams (or a GRO batch) to open. [`Offload::complete`]
//! lays them out in a shared window (key-context table, transmit and receive rings, buffers),
//! rings the NIC's [`Doorbell`], and reads every job's datagrams back from the completion ring:
//! the output bytes, packet number, key generation and key phase, or the status the NIC
//! refused one with.
//!
//! The doorbells here: [`Qemu`], the firmware in QEMU (a window a run, so each run is a NIC
//! just reset: the host carries each connection's largest packet number and key generation
//! from one window to the next in its key contexts, as a driver resuming a reset NIC would),
//! and [`HostEngine`], the firmware's engine run on the host, for tests.

mod engine;
mod qemu;

use std::io;

use quicseal::wire::{UnknownVersions, leading_long_packets};
use quicseal::{CipherSuite, GsoLayout, TrafficSecret, backend::TAG_LEN};
use quicseal_nic::{MAX_SEGMENTS, Nic};
use quicseal_nic_abi::host::{Capacity, WindowBuilder, completions};
use quicseal_nic_abi::{
    CompletionFlags, ContextFlags, Descriptor, DescriptorFlags, KeyContext, Opcode, Status,
};

pub use engine::NicBatch;
pub use qemu::Qemu;

/// How the host hands a window to the NIC and learns it was served.
pub trait Doorbell {
    /// Hands the NIC `window`, rings its doorbells and waits until it has served every
    /// descriptor waiting; the window then holds the NIC's completions and output.
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()>;
}

/// The firmware's engine (`quicseal_nic::Nic`) on the host: the same code the firmware runs,
/// kept between windows like a NIC that is never reset.
#[derive(Default)]
pub struct HostEngine(Nic);

impl Doorbell for HostEngine {
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()> {
        self.0
            .service(window, || 0, &mut quicseal_nic::Loopback::new());
        Ok(())
    }
}

/// A connection direction handed to the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection(usize);

/// A posted job, to find its datagrams in the [`Completions`] of the next
/// [`Offload::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The window the job goes in: [`Offload::complete`]s before it.
    window: u64,
    job: usize,
}

/// Each job's datagrams from one [`Offload::complete`], found by the job's [`Ticket`]: one
/// result a datagram, or a single refusal for a job refused whole.
#[derive(Debug)]
pub struct Completions {
    window: u64,
    jobs: Vec<Vec<Result<Datagram, Refused>>>,
}

impl Completions {
    /// The job's datagrams; `None` for a ticket of another window.
    pub fn get(&self, ticket: Ticket) -> Option<&[Result<Datagram, Refused>]> {
        (ticket.window == self.window)
            .then(|| self.jobs.get(ticket.job).map(Vec::as_slice))
            .flatten()
    }
}

impl std::ops::Index<Ticket> for Completions {
    type Output = [Result<Datagram, Refused>];

    /// Panics for a ticket of another window.
    fn index(&self, ticket: Ticket) -> &Self::Output {
        self.get(ticket)
            .expect("a ticket of the window these completions are of")
    }
}

/// One datagram the NIC sealed or opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Sealed: the datagram on the wire. Opened: header and payload, without the tag.
    pub bytes: Vec<u8>,
    pub packet_number: u64,
    /// The key generation that protected it.
    pub generation: u32,
    pub key_phase: bool,
    /// The packet moved its connection to a new key generation.
    pub key_update: bool,
    /// Where the 1-RTT packet starts in the datagram, after the long-header packets passed
    /// through in front, if the datagram ends in one: `packet_number`, `generation` and the
    /// key bits are its only then (a completion has zeros there for a datagram of
    /// long-header packets only). Read from the job's bytes with the core's parser: the
    /// cleartext of a seal, the output of an open.
    pub packet_at: Option<usize>,
}

/// Why the NIC did not seal or open a datagram: the completion's status (the core's error
/// code, or the firmware's refusal of the descriptor or window, docs/smartnic-abi.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub u8);

/// What a failed [`Offload::complete`] says: the doorbell's error, or a window the NIC did
/// not serve.
#[derive(Debug)]
pub enum OffloadError {
    Doorbell(io::Error),
    /// The window header's status after serving: the NIC refused the window or a ring.
    Window(u8),
    /// A job's datagrams did not all come back (the completion ring overflowed).
    MissingCompletions,
    /// The NIC refused a job posted through the engine seam ([`quicseal::engine`]) with a
    /// status of its own (a descriptor it found bad), not the core's: the seam checks jobs
    /// before posting them, so this is a fault of the driver or the NIC.
    Refused(u8),
}

impl std::fmt::Display for OffloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OffloadError::Doorbell(e) => write!(f, "the NIC could not serve the window: {e}"),
            OffloadError::Window(status) => write!(f, "the NIC refused the window: {status:#x}"),
            OffloadError::MissingCompletions => f.write_str("completions are missing"),
            OffloadError::Refused(status) => {
                write!(f, "the NIC refused a job as a whole: {status:#x}")
            }
        }
    }
}

impl std::error::Error for OffloadError {}

/// What the host keeps of a connection direction: enough to hand it to a NIC again.
struct ConnectionState {
    suite: CipherSuite,
    receive: bool,
    dcid_len: u8,
    /// The traffic secret of `generation`.
    secret: TrafficSecret,
    generation: u32,
    /// Generation 0's header-protection key, which key updates never change.
    header_key: Vec<u8>,
    /// The largest packet number sent or received so far.
    largest: Option<u64>,
    /// What the connection has used of its AEAD limits (sealed with the current keys,
    /// forged packets seen), carried to a NIC that was reset.
    used: quicseal::Usage,
}

impl ConnectionState {
    fn key_context(&self) -> KeyContext {
        let context = KeyContext::new(
            self.suite.code(),
            self.receive,
            self.dcid_len,
            self.generation,
            self.secret.as_bytes(),
            &self.header_key,
        );
        let largest_known = if self.largest.is_some() {
            ContextFlags::LARGEST_KNOWN
        } else {
            0
        };
        KeyContext {
            flags: context.flags | largest_known,
            largest_packet_number: self.largest.unwrap_or(0).into(),
            sealed_in_generation: self.used.sealed_in_generation.into(),
            auth_failures: self.used.auth_failures.into(),
            ..context
        }
    }

    /// Takes in what a datagram's completion says of the connection's state.
    fn learn(&mut self, datagram: &Datagram) {
        self.largest = Some(self.largest.map_or(datagram.packet_number, |largest| {
            largest.max(datagram.packet_number)
        }));
        if self.generation < datagram.generation {
            self.used.sealed_in_generation = 0;
        }
        while self.generation < datagram.generation {
            self.secret = self.secret.next();
            self.generation += 1;
        }
        if !self.receive && !datagram.bytes.is_empty() && datagram.generation == self.generation {
            self.used.sealed_in_generation += 1;
        }
    }

    /// Takes in a datagram the NIC refused: a forgery counts towards the integrity limit.
    fn learn_refusal(&mut self, refused: Refused) {
        if self.receive && refused.0 == quicseal::Error::AuthFailed.status() {
            self.used.auth_failures += 1;
        }
    }
}

/// A job waiting for [`Offload::complete`].
struct Job {
    connection: usize,
    opcode: u8,
    bytes: Vec<u8>,
    /// Not 0: a GSO or GRO batch of datagrams this long on the wire.
    gso_size: u16,
    /// Sealing one datagram: its full packet number. Opening: the largest received before it.
    packet_number: Option<u64>,
    /// The connection's connection ID length, which bounds its GSO segment size.
    dcid_len: usize,
}

/// A host driver for the NIC: connections handed over, jobs posted, windows completed.
pub struct Offload<D> {
    doorbell: D,
    connections: Vec<ConnectionState>,
    jobs: Vec<Job>,
    /// Windows completed so far: the tickets' window.
    windows: u64,
}

impl<D: Doorbell> Offload<D> {
    pub fn new(doorbell: D) -> Self {
        Offload {
            doorbell,
            connections: Vec::new(),
            jobs: Vec::new(),
            windows: 0,
        }
    }

    /// Hands the NIC a connection direction: sealing (`receive` false) or opening, from
    /// generation 0's traffic secret, with short headers carrying `dcid_len`-byte connection
    /// IDs. Fails for a secret of the wrong length for `suite`, and past the NIC's
    /// [`quicseal_nic::MAX_CONTEXTS`] connection directions (`InvalidConfig`): the NIC keeps
    /// a flow per key context for good, so a driver cannot reuse one.
    pub fn connection(
        &mut self,
        suite: CipherSuite,
        secret: &[u8],
        dcid_len: u8,
        receive: bool,
    ) -> Result<Connection, quicseal::Error> {
        if self.connections.len() >= quicseal_nic::MAX_CONTEXTS {
            return Err(quicseal::Error::InvalidConfig);
        }
        let secret = TrafficSecret::new(suite, secret)?;
        let header_key = secret.key_material().hp().to_vec();
        self.connections.push(ConnectionState {
            suite,
            receive,
            dcid_len,
            secret,
            generation: 0,
            header_key,
            largest: None,
            used: quicseal::Usage::default(),
        });
        Ok(Connection(self.connections.len() - 1))
    }

    /// Posts cleartext to seal: one datagram (header and payload; `packet_number` its full
    /// packet number, or `None` for the NIC to recover it from the header), or with a
    /// `gso_size` a GSO batch of datagrams that long on the wire, tag included.
    pub fn seal(
        &mut self,
        connection: Connection,
        cleartext: &[u8],
        gso_size: Option<u16>,
        packet_number: Option<u64>,
    ) -> Ticket {
        self.post(connection, Opcode::SEAL, cleartext, gso_size, packet_number)
    }

    /// Posts sealed datagrams to open: one, or with a `gso_size` a GRO batch coalesced at
    /// that size.
    pub fn open(
        &mut self,
        connection: Connection,
        datagrams: &[u8],
        gso_size: Option<u16>,
    ) -> Ticket {
        self.post(connection, Opcode::OPEN, datagrams, gso_size, None)
    }

    fn post(
        &mut self,
        connection: Connection,
        opcode: u8,
        bytes: &[u8],
        gso_size: Option<u16>,
        packet_number: Option<u64>,
    ) -> Ticket {
        let dcid_len = self
            .connections
            .get(connection.0)
            .map_or(0, |state| usize::from(state.dcid_len));
        self.jobs.push(Job {
            connection: connection.0,
            opcode,
            bytes: bytes.to_vec(),
            gso_size: gso_size.unwrap_or(0),
            packet_number,
            dcid_len,
        });
        Ticket {
            window: self.windows,
            job: self.jobs.len() - 1,
        }
    }

    /// Lays out every job posted since the last call in a window, rings the doorbell and
    /// returns each job's datagrams. The connections' state (largest packet number, key
    /// generation) follows the completions.
    pub fn complete(&mut self) -> Result<Completions, OffloadError> {
        let jobs = std::mem::take(&mut self.jobs);
        let window_number = self.windows;
        self.windows += 1;
        let count = |opcode| jobs.iter().filter(|job| job.opcode == opcode).count() as u32;
        let datagrams: usize = jobs.iter().map(Job::datagrams).sum();
        let mut builder = WindowBuilder::new(Capacity {
            contexts: self.connections.len() as u32,
            tx: count(Opcode::SEAL).max(1),
            rx: count(Opcode::OPEN).max(1),
            completions: datagrams.max(1) as u32,
            port: 0,
        });
        for connection in &self.connections {
            builder.context(connection.key_context());
        }
        for (cookie, job) in jobs.iter().enumerate() {
            let src = builder.buffer(&job.bytes);
            let mut descriptor = Descriptor {
                opcode: job.opcode,
                context: (job.connection as u16).into(),
                gso_size: job.gso_size.into(),
                src,
                cookie: (cookie as u32).into(),
                ..Descriptor::default()
            };
            if job.opcode == Opcode::SEAL {
                descriptor.dst = builder.room(job.sealed_len());
                if let Some(number) = job.packet_number {
                    descriptor.flags = DescriptorFlags::PACKET_NUMBER;
                    descriptor.packet_number = number.into();
                }
                builder.transmit(descriptor);
            } else {
                builder.receive(descriptor);
            }
        }
        let mut window = builder.build();
        self.doorbell
            .ring(&mut window)
            .map_err(OffloadError::Doorbell)?;
        let (header, done) =
            completions(&window).ok_or(OffloadError::Window(Status::BAD_WINDOW))?;
        if header.status != Status::OK {
            return Err(OffloadError::Window(header.status));
        }
        let mut results: Vec<Vec<Result<Datagram, Refused>>> =
            jobs.iter().map(|_| Vec::new()).collect();
        for completion in done {
            let cookie = completion.cookie.get() as usize;
            let (Some(job), Some(results)) = (jobs.get(cookie), results.get_mut(cookie)) else {
                continue;
            };
            if completion.status != Status::OK {
                if let Some(state) = self.connections.get_mut(job.connection) {
                    state.learn_refusal(Refused(completion.status));
                }
                results.push(Err(Refused(completion.status)));
                continue;
            }
            let at = completion.offset.get() as usize;
            let bytes = window
                .get(at..at + completion.len.get() as usize)
                .unwrap_or_default()
                .to_vec();
            let packet_at = match job.opcode {
                Opcode::SEAL => job
                    .cleartext(usize::from(completion.segment.get()))
                    .and_then(|cleartext| packet_at(cleartext, UnknownVersions::Refuse)),
                _ => packet_at(&bytes, UnknownVersions::PassThrough),
            };
            let datagram = Datagram {
                bytes,
                packet_number: completion.packet_number.get(),
                generation: completion.generation.get(),
                key_phase: completion.flags & CompletionFlags::KEY_PHASE != 0,
                key_update: completion.flags & CompletionFlags::KEY_UPDATE != 0,
                packet_at,
            };
            if let (Some(state), Some(_)) =
                (self.connections.get_mut(job.connection), datagram.packet_at)
            {
                state.learn(&datagram);
            }
            results.push(Ok(datagram));
        }
        let whole = |results: &Vec<Result<Datagram, Refused>>, job: &Job| {
            results.len() == job.datagrams() || matches!(results[..], [Err(_)])
        };
        if !results
            .iter()
            .zip(&jobs)
            .all(|(results, job)| whole(results, job))
        {
            return Err(OffloadError::MissingCompletions);
        }
        Ok(Completions {
            window: window_number,
            jobs: results,
        })
    }
}

impl Job {
    /// Completions the NIC writes for the job: one per datagram, or one for a batch its flow
    /// refuses whole (a segment size below the flow's minimum, more segments than a batch
    /// takes, both as the core decides), so that a window is never sized for datagrams that
    /// will not be there.
    fn datagrams(&self) -> usize {
        let (len, gso_size) = (self.bytes.len(), usize::from(self.gso_size));
        match self.opcode {
            _ if gso_size == 0 => 1,
            Opcode::SEAL => GsoLayout::for_flow(len, gso_size, self.dcid_len, MAX_SEGMENTS)
                .map_or(1, |layout| layout.segments.max(1)),
            _ => quicseal::gro_datagrams(len, gso_size)
                .filter(|&datagrams| datagrams <= MAX_SEGMENTS)
                .unwrap_or(1),
        }
    }

    /// Room for the sealed output.
    fn sealed_len(&self) -> usize {
        self.bytes.len() + self.datagrams() * TAG_LEN
    }

    /// Datagram `segment`'s cleartext, of a job to seal.
    fn cleartext(&self, segment: usize) -> Option<&[u8]> {
        match usize::from(self.gso_size) {
            0 => (segment == 0).then_some(&self.bytes[..]),
            gso_size => self
                .bytes
                .chunks(gso_size.checked_sub(TAG_LEN)?)
                .nth(segment),
        }
    }
}

/// Where the 1-RTT packet of a datagram whose long headers are in the clear starts, if it
/// ends in one: what the flows find, `unknown` as they take it (sealing refuses what it
/// cannot walk; opening passes it through whole).
fn packet_at(datagram: &[u8], unknown: UnknownVersions) -> Option<usize> {
    let byte = |i: usize| datagram.get(i).copied();
    let (passthrough_len, _) = leading_long_packets(byte, datagram.len(), unknown).ok()?;
    (passthrough_len < datagram.len()).then_some(passthrough_len)
}

#[cfg(test)]
mod tests;
