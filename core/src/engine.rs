//! Engines: batches of whole jobs, each done as it is posted or when its batch completes.
//!
//! A stack that protects its packets with an engine works a batch at a time. It posts jobs,
//! each naming a flow of the engine's and lending the job's buffers and one outcome slot a
//! datagram: a GSO batch of cleartext to seal into the send buffer ([`Seal`]), a GRO batch of
//! datagrams to open where they lie ([`Open`]). Then it completes the batch. What an engine
//! does in between is its own:
//!
//! - [`Inline`], the CPU, seals or opens each job with the flows themselves as it is posted
//!   ([`TxFlow::seal_gso`], [`RxFlow::open_gro`]): completion is in place.
//! - An engine behind a device lays the batch out for it, and fills in the buffers and
//!   outcomes when the device has served the batch: completion comes later. The SmartNIC's
//!   host driver (`quicseal-nic-host`, `targets/smartnic-fw/host`) is one, its NIC serving
//!   descriptor rings with the same flows.
//!
//! Either way the batch borrows the buffers and outcome slots until
//! [`JobBatch::complete`] returns, so the caller cannot read a buffer an engine still has
//! to fill, and every engine refuses the same malformed jobs when they are posted (through
//! [`GsoLayout::for_batch`] and [`gro_batch`], what the flows check), with its own batch
//! limit and whatever else its device cannot carry. A datagram's outcome is the flows'
//! [`Outcome`]; a datagram that fails leaves unspecified bytes in its slot, never
//! unauthenticated plaintext. A batch dropped without completing may have done some of its
//! jobs or none: the CPU does each as it is posted, a device's engine sends none.
//!
//! ```
//! use quicseal::engine::{Engine, Inline, JobBatch, Open, Seal};
//! use quicseal::{CipherSuite, FlowConfig, Outcome, RxFlow, TxFlow};
//!
//! let (suite, secret) = (CipherSuite::Aes128GcmSha256, [7u8; 32]);
//! let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(4))?;
//! let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(4))?;
//! // Two datagrams of 64 bytes on the wire: short header (4-byte DCID, 1-byte packet
//! // number), 42 bytes of payload, the tag.
//! let mut cleartext = [0u8; 2 * 48];
//! for (number, packet) in cleartext.chunks_mut(48).enumerate() {
//!     packet[..6].copy_from_slice(&[0x40, 1, 2, 3, 4, number as u8]);
//! }
//! let mut wire = [0u8; 2 * 64];
//! let mut outcomes = [Err(quicseal::Error::Malformed); 2];
//! let mut engine = Inline::default();
//! let mut batch = engine.batch();
//! batch.seal(&mut tx, Seal { cleartext: &cleartext, gso_size: 64, wire: &mut wire, outcomes: &mut outcomes })?;
//! batch.complete()?;
//! assert!(outcomes.iter().all(Outcome::is_ok));
//!
//! let mut batch = engine.batch();
//! batch.open(&mut rx, Open { datagrams: &mut wire, segment_size: 64, outcomes: &mut outcomes })?;
//! batch.complete()?;
//! assert_eq!(wire[64..64 + 48], cleartext[48..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::convert::Infallible;
use core::marker::PhantomData;

use crate::backend::{Auto, Backend};
use crate::flow::Outcome;
use crate::gso::gro_batch;
use crate::{Error, GsoLayout, RxFlow, TxFlow};

/// Cleartext to seal: a GSO batch of datagrams, or one.
#[derive(Debug)]
pub struct Seal<'b> {
    /// The datagrams' cleartext, laid out at `gso_size - 16` bytes (the last may be shorter):
    /// long-header packets to pass through, then the 1-RTT packet to seal.
    pub cleartext: &'b [u8],
    /// Bytes of each sealed datagram on the wire, tag included (the last may be shorter).
    pub gso_size: usize,
    /// Where the sealed datagrams go, datagram `i` at `i * gso_size`: at least
    /// [`GsoLayout::sealed_len`] bytes.
    pub wire: &'b mut [u8],
    /// Datagram `i`'s outcome, once the batch completes.
    pub outcomes: &'b mut [Outcome],
}

impl Seal<'_> {
    /// The job's layout, if a flow whose connection IDs are `dcid_len` bytes, taking at most
    /// `max_segments` datagrams a batch, seals it: what [`TxFlow::seal_gso`] checks.
    pub fn layout(&self, dcid_len: usize, max_segments: usize) -> Result<GsoLayout, Error> {
        GsoLayout::for_batch(
            self.cleartext.len(),
            self.gso_size,
            dcid_len,
            max_segments,
            self.wire.len(),
            self.outcomes.len(),
        )
    }
}

/// Datagrams to open where they lie: a GRO batch, or one.
#[derive(Debug)]
pub struct Open<'b> {
    /// The datagrams, coalesced at `segment_size` (the last may be shorter). Datagram `i`'s
    /// cleartext (long-header packets as they came, the 1-RTT packet without its tag) ends up
    /// at `i * segment_size`.
    pub datagrams: &'b mut [u8],
    /// Bytes of each datagram but the last.
    pub segment_size: usize,
    /// Datagram `i`'s outcome, once the batch completes.
    pub outcomes: &'b mut [Outcome],
}

impl Open<'_> {
    /// Datagrams in the job, if a flow taking at most `max_segments` datagrams a batch opens
    /// it: what [`RxFlow::open_gro`] checks.
    pub fn datagram_count(&self, max_segments: usize) -> Result<usize, Error> {
        gro_batch(
            self.datagrams.len(),
            self.segment_size,
            max_segments,
            self.outcomes.len(),
        )
    }
}

/// Jobs posted to an engine, done when [`complete`](Self::complete) returns and perhaps
/// before; `'b` is how long their buffers are lent. A job refused when posted writes nothing,
/// but its buffers stay lent to the batch all the same. A job with no datagram (no cleartext
/// to seal) writes no outcome; an empty buffer to open is one empty datagram, malformed.
pub trait JobBatch<'b> {
    /// A sending flow of the engine's.
    type Tx;
    /// A receiving flow of the engine's.
    type Rx;
    /// Why a batch could not be completed: the engine failed, not a datagram (those fail in
    /// their outcomes).
    type Error;

    /// Posts `job` for `flow` to seal. Fails, posting nothing, for a job no flow of the
    /// engine's seals ([`Seal::layout`]'s errors, or a flow the engine does not have).
    fn seal(&mut self, flow: &mut Self::Tx, job: Seal<'b>) -> Result<(), Error>;

    /// Posts `job` for `flow` to open. Fails, posting nothing, for a job no flow of the
    /// engine's opens ([`Open::datagram_count`]'s errors, or a flow the engine does not have).
    fn open(&mut self, flow: &mut Self::Rx, job: Open<'b>) -> Result<(), Error>;

    /// Finishes every job posted: their buffers and outcomes are final, and the caller's
    /// again.
    fn complete(self) -> Result<(), Self::Error>;
}

/// Something that seals and opens jobs, a batch at a time.
pub trait Engine {
    /// A sending flow: the flow itself, or the engine's handle of one it was given.
    type Tx;
    /// A receiving flow.
    type Rx;
    /// Why a batch could not be completed.
    type Error;
    /// A batch of jobs lending buffers for `'b`.
    type Batch<'e, 'b>: JobBatch<'b, Tx = Self::Tx, Rx = Self::Rx, Error = Self::Error>
    where
        Self: 'e;

    /// An empty batch to post jobs to.
    fn batch<'e, 'b>(&'e mut self) -> Self::Batch<'e, 'b>;
}

/// The CPU as an engine: each job is sealed or opened by its flow as it is posted, with the
/// backend `B`.
#[derive(Debug)]
pub struct Inline<B = Auto>(PhantomData<fn() -> B>);

impl<B> Default for Inline<B> {
    fn default() -> Self {
        Inline(PhantomData)
    }
}

/// [`Inline`]'s batches: nothing is left to do at [`complete`](JobBatch::complete).
#[derive(Debug)]
#[must_use = "a batch's outcomes are final only when it completes"]
pub struct InlineBatch<B = Auto>(PhantomData<fn() -> B>);

impl<B: Backend> Engine for Inline<B> {
    type Tx = TxFlow<B>;
    type Rx = RxFlow<B>;
    type Error = Infallible;
    type Batch<'e, 'b>
        = InlineBatch<B>
    where
        Self: 'e;

    fn batch<'e, 'b>(&'e mut self) -> Self::Batch<'e, 'b> {
        InlineBatch(PhantomData)
    }
}

impl<'b, B: Backend> JobBatch<'b> for InlineBatch<B> {
    type Tx = TxFlow<B>;
    type Rx = RxFlow<B>;
    type Error = Infallible;

    fn seal(&mut self, flow: &mut TxFlow<B>, job: Seal<'b>) -> Result<(), Error> {
        flow.seal_gso(
            &[job.cleartext],
            job.gso_size,
            &mut [job.wire],
            job.outcomes,
        )
        .map(|_| ())
    }

    fn open(&mut self, flow: &mut RxFlow<B>, job: Open<'b>) -> Result<(), Error> {
        flow.open_gro(job.datagrams, job.segment_size, job.outcomes)
            .map(|_| ())
    }

    fn complete(self) -> Result<(), Infallible> {
        Ok(())
    }
}
