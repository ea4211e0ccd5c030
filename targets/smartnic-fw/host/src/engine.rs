//! The NIC as a [`quicseal::engine::Engine`]: a batch's jobs go to the NIC's rings when the
//! batch completes, and their output and outcomes come back from its completion ring, so a
//! stack written against the engine seam runs on the NIC as it runs on the CPU
//! ([`quicseal::engine::Inline`]).
//!
//! A completion says less than the core's [`Outcome`]: the output, packet number, key
//! generation and whether it moved the connection to a new one. The rest (the long-header
//! packets passed through in front, the short header's length) is read here from the job's
//! own bytes with the core's parsers: the cleartext for a seal, the opened output for an
//! open, both of which hold the 1-RTT packet's header unprotected.

use quicseal::backend::TAG_LEN;
use quicseal::engine::{Engine, JobBatch, Open, Seal};
use quicseal::wire::{ShortHeader, UnknownVersions, leading_long_packets};
use quicseal::{Error, Outcome, PacketInfo};
use quicseal_nic::MAX_SEGMENTS;

use crate::{Connection, Datagram, Doorbell, Offload, OffloadError, Refused, Ticket};

impl<D: Doorbell> Engine for Offload<D> {
    type Tx = Connection;
    type Rx = Connection;
    type Error = OffloadError;
    type Batch<'e, 'b>
        = NicBatch<'e, 'b, D>
    where
        Self: 'e;

    /// A batch whose jobs the NIC serves in one window. Jobs posted through
    /// [`Offload::seal`] and [`Offload::open`] before it go in the same window, and their
    /// tickets' completions are dropped: post through one or the other.
    fn batch<'e, 'b>(&'e mut self) -> Self::Batch<'e, 'b> {
        NicBatch {
            offload: self,
            posted: Vec::new(),
        }
    }
}

/// Jobs for the NIC's next window: posted as they come, served by
/// [`complete`](JobBatch::complete).
pub struct NicBatch<'e, 'b, D> {
    offload: &'e mut Offload<D>,
    posted: Vec<Posted<'b>>,
}

/// A job posted to the NIC, with what its completion is read against.
struct Posted<'b> {
    ticket: Ticket,
    dcid_len: usize,
    /// Datagrams in the job: outcomes to write.
    datagrams: usize,
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

    /// Refuses what [`Seal::layout`] refuses with the NIC's batch limit, a connection of
    /// another NIC's or of the receiving direction (`InvalidConfig`), and a `gso_size` a
    /// descriptor's 16 bits cannot carry (`InvalidConfig`).
    fn seal(&mut self, flow: &mut Connection, job: Seal<'b>) -> Result<(), Error> {
        let dcid_len = self.dcid_len(*flow, false)?;
        let layout = job.layout(dcid_len, MAX_SEGMENTS)?;
        let gso_size = u16::try_from(job.gso_size).map_err(|_| Error::InvalidConfig)?;
        // No datagram, nothing to seal: as a flow, which writes no outcome.
        if layout.segments == 0 {
            return Ok(());
        }
        let ticket = self
            .offload
            .seal(*flow, job.cleartext, Some(gso_size), None);
        self.posted.push(Posted {
            ticket,
            dcid_len,
            datagrams: layout.segments,
            job: Job::Seal(job),
        });
        Ok(())
    }

    /// Refuses what [`Open::datagram_count`] refuses with the NIC's batch limit, a
    /// connection of another NIC's or of the sending direction, and a segment size a
    /// descriptor's 16 bits cannot carry (all three `InvalidConfig`).
    fn open(&mut self, flow: &mut Connection, job: Open<'b>) -> Result<(), Error> {
        let dcid_len = self.dcid_len(*flow, true)?;
        let datagrams = job.datagram_count(MAX_SEGMENTS)?;
        let segment_size = u16::try_from(job.segment_size).map_err(|_| Error::InvalidConfig)?;
        let ticket = self.offload.open(*flow, job.datagrams, Some(segment_size));
        self.posted.push(Posted {
            ticket,
            dcid_len,
            datagrams,
            job: Job::Open(job),
        });
        Ok(())
    }

    /// Rings the NIC with the batch's window and writes each datagram's output to its slot
    /// and its outcome. Fails if the NIC did not serve the window, or refused a job for a
    /// reason of its own rather than the core's ([`OffloadError::Refused`]: the jobs were
    /// checked, so that is a fault).
    fn complete(self) -> Result<(), OffloadError> {
        if self.posted.is_empty() {
            return Ok(());
        }
        let completions = self.offload.complete()?;
        for posted in self.posted {
            let results = completions
                .get(posted.ticket)
                .ok_or(OffloadError::MissingCompletions)?;
            match posted.job {
                Job::Seal(job) => {
                    let stride = job.gso_size - TAG_LEN;
                    let cleartexts = job.cleartext.chunks(stride);
                    fill(
                        results,
                        job.wire,
                        job.gso_size,
                        &mut job.outcomes[..posted.datagrams],
                        |i, datagram| {
                            let cleartext = cleartexts.clone().nth(i).unwrap_or_default();
                            outcome(cleartext, datagram, posted.dcid_len, TAG_LEN)
                        },
                    )?;
                }
                Job::Open(job) => fill(
                    results,
                    job.datagrams,
                    job.segment_size,
                    &mut job.outcomes[..posted.datagrams],
                    |_, datagram| outcome(&datagram.bytes, datagram, posted.dcid_len, 0),
                )?,
            }
        }
        Ok(())
    }
}

/// Writes a job's completed datagrams to `out` (datagram `i` at `i * stride`) and their
/// `outcomes`, one a datagram of the job: `outcome(i, datagram)` for each one the NIC
/// protected, the core's error for each it refused (a single refusal, for a job the NIC
/// refused whole, stands for every datagram).
fn fill(
    results: &[Result<Datagram, Refused>],
    out: &mut [u8],
    stride: usize,
    outcomes: &mut [Outcome],
    mut outcome: impl FnMut(usize, &Datagram) -> Outcome,
) -> Result<(), OffloadError> {
    let whole = match results {
        [Err(refused)] if outcomes.len() > 1 => Some(*refused),
        _ => None,
    };
    for (i, slot) in outcomes.iter_mut().enumerate() {
        let result = match whole {
            Some(refused) => Err(refused),
            None => match results.get(i) {
                Some(result) => result.clone(),
                None => break,
            },
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
    let byte = |i: usize| cleartext.get(i).copied();
    // Sealing refuses what it cannot walk; opening passes it through: as the flows do.
    let unknown = if tag_len > 0 {
        UnknownVersions::Refuse
    } else {
        UnknownVersions::PassThrough
    };
    let (passthrough_len, _) = leading_long_packets(byte, cleartext.len(), unknown)?;
    let packet = match cleartext.get(passthrough_len..) {
        Some(rest) if !rest.is_empty() => {
            let header_len = ShortHeader::parse(rest, dcid_len)?.len();
            let payload_len = datagram
                .bytes
                .len()
                .checked_sub(passthrough_len + header_len + tag_len)
                .ok_or(Error::Malformed)?;
            Some(PacketInfo {
                number: datagram.packet_number,
                generation: u64::from(datagram.generation),
                header_len,
                payload_len,
                key_update: datagram.key_update,
            })
        }
        _ => None,
    };
    Ok(quicseal::Datagram {
        len: datagram.bytes.len(),
        passthrough_len,
        packet,
    })
}

#[cfg(test)]
mod tests;
