//! The NIC as a [`quicseal::engine::Engine`]: a batch's jobs go to the NIC's rings when the
//! batch completes, and their output and outcomes come back from its completion ring, so a
//! stack written against the engine seam runs on the NIC as it runs on the CPU
//! ([`quicseal::engine::Inline`]).
//!
//! A completion says less than the core's [`Outcome`]: the output, packet number, key
//! generation and whether it moved the connection to a new one. The rest (where the 1-RTT
//! packet starts after the long-header packets passed through, the short header's length) is
//! read here from the job's own bytes with the core's parsers: the cleartext for a seal, the
//! opened output for an open, both of which hold the 1-RTT packet's header unprotected.

use quicseal::backend::TAG_LEN;
use quicseal::engine::{Engine, JobBatch, Open, Seal};
use quicseal::wire::ShortHeader;
use quicseal::{Error, Outcome, PacketInfo};
use quicseal_nic::MAX_SEGMENTS;

use crate::{Connection, Datagram, Doorbell, Offload, OffloadError, Refused};

impl<D: Doorbell> Engine for Offload<D> {
    type Tx = Connection;
    type Rx = Connection;
    type Error = OffloadError;
    type Batch<'e, 'b>
        = NicBatch<'e, 'b, D>
    where
        Self: 'e;

    /// A batch whose jobs the NIC serves in one window, when it completes. Jobs posted
    /// through [`Offload::seal`] and [`Offload::open`] and not yet completed go in the same
    /// window, and their tickets' completions are dropped: post through one or the other.
    fn batch<'e, 'b>(&'e mut self) -> Self::Batch<'e, 'b> {
        NicBatch {
            offload: self,
            posted: Vec::new(),
        }
    }
}

/// Jobs for the NIC's next window, checked as they are posted and handed to the NIC by
/// [`complete`](JobBatch::complete): a batch dropped without completing sends nothing.
#[must_use = "the NIC sees a batch's jobs only when it completes"]
pub struct NicBatch<'e, 'b, D> {
    offload: &'e mut Offload<D>,
    posted: Vec<Posted<'b>>,
}

/// A job checked and waiting for its window.
struct Posted<'b> {
    flow: Connection,
    dcid_len: usize,
    /// Datagrams in the job: outcomes to write.
    datagrams: usize,
    /// The size its descriptor carries: `gso_size` or `segment_size`.
    size: u16,
    job: Job<'b>,
}

enum Job<'b> {
    Seal(Seal<'b>),
    Open(Open<'b>),
}

impl<D> NicBatch<'_, '_, D> {
    /// The connection-ID length of `flow`, if it is one of this NIC's in the direction asked
    /// for (`receive`).
    fn dcid_len(&self, flow: Connection, receive: bool) -> Result<usize, Error> {
        self.offload
            .connections
            .get(flow.0)
            .filter(|state| state.receive == receive)
            .map(|state| usize::from(state.dcid_len))
            .ok_or(Error::InvalidConfig)
    }
}

impl<'b, D: Doorbell> JobBatch<'b> for NicBatch<'_, 'b, D> {
    type Tx = Connection;
    type Rx = Connection;
    type Error = OffloadError;

    /// Refuses what [`Seal::layout`] refuses with the NIC's batch limit
    /// ([`quicseal_nic::MAX_SEGMENTS`]), a connection of another NIC's or of the receiving
    /// direction, and a batch of datagrams whose size a descriptor's 16 bits cannot carry
    /// (both `InvalidConfig`).
    fn seal(&mut self, flow: &mut Connection, job: Seal<'b>) -> Result<(), Error> {
        let dcid_len = self.dcid_len(*flow, false)?;
        let layout = job.layout(dcid_len, MAX_SEGMENTS)?;
        // No datagram, nothing to seal: as a flow, which writes no outcome.
        if layout.segments == 0 {
            return Ok(());
        }
        // A lone datagram takes any size that holds it: the largest a descriptor carries.
        let gso_size = match layout.segments {
            1 => job.gso_size.min(usize::from(u16::MAX)),
            _ => job.gso_size,
        };
        let size = u16::try_from(gso_size)
            .ok()
            .filter(|&size| layout.segments > 1 || layout.sealed_len <= usize::from(size))
            .ok_or(Error::InvalidConfig)?;
        self.posted.push(Posted {
            flow: *flow,
            dcid_len,
            datagrams: layout.segments,
            size,
            job: Job::Seal(job),
        });
        Ok(())
    }

    /// Refuses what [`Open::datagram_count`] refuses with the NIC's batch limit, a
    /// connection of another NIC's or of the sending direction, and a batch of datagrams
    /// whose size a descriptor's 16 bits cannot carry (both `InvalidConfig`).
    fn open(&mut self, flow: &mut Connection, job: Open<'b>) -> Result<(), Error> {
        let dcid_len = self.dcid_len(*flow, true)?;
        let datagrams = job.datagram_count(MAX_SEGMENTS)?;
        let segment_size = match datagrams {
            1 => job.segment_size.min(usize::from(u16::MAX)),
            _ => job.segment_size,
        };
        let size = u16::try_from(segment_size)
            .ok()
            .filter(|&size| datagrams > 1 || job.datagrams.len() <= usize::from(size))
            .ok_or(Error::InvalidConfig)?;
        self.posted.push(Posted {
            flow: *flow,
            dcid_len,
            datagrams,
            size,
            job: Job::Open(job),
        });
        Ok(())
    }

    /// Hands the NIC the batch in one window and writes each datagram's output to its slot
    /// and its outcome. Fails if the NIC did not serve the window: outcomes are then left as
    /// they were. A job whose completions are missing, or which the NIC refused for a reason
    /// of its own rather than the core's ([`OffloadError::Refused`]: the jobs were checked,
    /// so either is a fault), fails the batch too, after every other job is written; the
    /// failed job's outcomes are unspecified.
    fn complete(self) -> Result<(), OffloadError> {
        let NicBatch { offload, posted } = self;
        if posted.is_empty() {
            return Ok(());
        }
        let tickets: Vec<_> = posted
            .iter()
            .map(|posted| match &posted.job {
                Job::Seal(job) => offload.seal(posted.flow, job.cleartext, Some(posted.size), None),
                Job::Open(job) => offload.open(posted.flow, job.datagrams, Some(posted.size)),
            })
            .collect();
        let completions = offload.complete()?;
        let mut failure = None;
        for (posted, ticket) in posted.into_iter().zip(tickets) {
            let results = completions.get(ticket);
            if let Err(error) = write_back(posted, results) {
                failure.get_or_insert(error);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Writes a job's completed datagrams to its buffer and its outcomes.
fn write_back(
    posted: Posted<'_>,
    results: Option<&[Result<Datagram, Refused>]>,
) -> Result<(), OffloadError> {
    let results = results.ok_or(OffloadError::MissingCompletions)?;
    let dcid_len = posted.dcid_len;
    match posted.job {
        Job::Seal(job) => {
            let stride = job.gso_size - TAG_LEN;
            let cleartext = job.cleartext;
            fill(
                results,
                job.wire,
                job.gso_size,
                &mut job.outcomes[..posted.datagrams],
                |i, datagram| {
                    let at = (i * stride).min(cleartext.len());
                    let end = (at + stride).min(cleartext.len());
                    outcome(&cleartext[at..end], datagram, dcid_len, TAG_LEN)
                },
            )
        }
        Job::Open(job) => fill(
            results,
            job.datagrams,
            job.segment_size,
            &mut job.outcomes[..posted.datagrams],
            |_, datagram| outcome(&datagram.bytes, datagram, dcid_len, 0),
        ),
    }
}

/// Writes a job's completed datagrams to `out` (datagram `i` at `i * stride`) and their
/// `outcomes`, one a datagram of the job: `outcome(i, datagram)` for each one the NIC
/// protected, the core's error for each it refused. A single refusal for a job of more than
/// one datagram is the NIC refusing the job whole ([`Completions`](crate::Completions) holds
/// one completion then, as the NIC writes it), and stands for every datagram.
fn fill(
    results: &[Result<Datagram, Refused>],
    out: &mut [u8],
    stride: usize,
    outcomes: &mut [Outcome],
    mut outcome: impl FnMut(usize, &Datagram) -> Outcome,
) -> Result<(), OffloadError> {
    let whole = match results {
        [Err(refused)] if outcomes.len() > 1 => Some(*refused),
        _ if results.len() == outcomes.len() => None,
        _ => return Err(OffloadError::MissingCompletions),
    };
    for (i, slot) in outcomes.iter_mut().enumerate() {
        let result = match (whole, results.get(i)) {
            (Some(refused), _) => Err(refused),
            (None, Some(result)) => result.clone(),
            (None, None) => return Err(OffloadError::MissingCompletions),
        };
        *slot = match result {
            Ok(datagram) => {
                let at = i * stride;
                match out.get_mut(at..at + datagram.bytes.len()) {
                    Some(room) => {
                        room.copy_from_slice(&datagram.bytes);
                        outcome(i, &datagram)
                    }
                    None => Err(Error::BufferTooSmall),
                }
            }
            Err(Refused(status)) => {
                Err(Error::from_status(status).ok_or(OffloadError::Refused(status))?)
            }
        };
    }
    Ok(())
}

/// The core's outcome of a datagram the NIC protected: `cleartext` is its bytes with the
/// 1-RTT header unprotected (the job's cleartext, or the opened output), `tag_len` what the
/// output holds beyond its payload.
fn outcome(cleartext: &[u8], datagram: &Datagram, dcid_len: usize, tag_len: usize) -> Outcome {
    let len = datagram.bytes.len();
    let Some(at) = datagram.packet_at else {
        return Ok(quicseal::Datagram {
            len,
            passthrough_len: len,
            packet: None,
        });
    };
    let header = cleartext.get(at..).ok_or(Error::Malformed)?;
    let header_len = ShortHeader::parse(header, dcid_len)?.len();
    let payload_len = len
        .checked_sub(at + header_len + tag_len)
        .ok_or(Error::Malformed)?;
    Ok(quicseal::Datagram {
        len,
        passthrough_len: at,
        packet: Some(PacketInfo {
            number: datagram.packet_number,
            generation: u64::from(datagram.generation),
            header_len,
            payload_len,
            key_update: datagram.key_update,
        }),
    })
}

#[cfg(test)]
mod tests;
