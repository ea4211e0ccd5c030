//! A bounded table of flows keyed by destination connection ID, for callers that multiplex
//! many connections on one socket. A socket with one connection owns its flow directly and
//! needs no table.

use heapless::index_map::FnvIndexMap;

use crate::backend::Backend;
use crate::flow::{Batch, Outcome};
use crate::gso::{each_datagram, open_segments};
use crate::sg::SgSource;
use crate::wire::{ConnectionId, MAX_CID_LEN};
use crate::{Counters, Error, RxFlow, TxFlow};

/// A flow that keeps counters, so that a table can total them.
pub trait CountedFlow {
    /// The flow's counters.
    fn counters(&self) -> Counters;
}

impl<B: Backend> CountedFlow for TxFlow<B> {
    fn counters(&self) -> Counters {
        TxFlow::counters(self)
    }
}

impl<B: Backend> CountedFlow for RxFlow<B> {
    fn counters(&self) -> Counters {
        RxFlow::counters(self)
    }
}

/// Up to `N` flows (a power of two) keyed by connection IDs of one length, with O(1) lookup
/// and no allocation.
///
/// ```
/// use quicseal::wire::ConnectionId;
/// use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, RxFlow};
///
/// let mut table: FlowTable<RxFlow, 16> = FlowTable::new(4)?;
/// let flow = RxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[1; 32], FlowConfig::new(4))?;
/// table.insert(ConnectionId::new(b"conn")?, flow)?;
/// // A datagram for a connection the table does not know is refused and counted.
/// let mut stray = [0x40, b'n', b'o', b'p', b'e', 0, 0, 0];
/// assert_eq!(table.open_in_place(&mut stray), Err(Error::UnknownConnectionId));
/// assert_eq!(table.unroutable(), 1);
/// # Ok::<(), Error>(())
/// ```
pub struct FlowTable<F, const N: usize> {
    dcid_len: usize,
    flows: FnvIndexMap<ConnectionId, F, N>,
    /// Counters of flows already removed, so totals survive them.
    removed: Counters,
    /// Datagrams whose connection ID matched no flow.
    unroutable: u64,
}

impl<F: CountedFlow, const N: usize> FlowTable<F, N> {
    /// An empty table for connection IDs of `dcid_len` bytes.
    pub fn new(dcid_len: usize) -> Result<Self, Error> {
        if dcid_len > MAX_CID_LEN {
            return Err(Error::InvalidConfig);
        }
        Ok(FlowTable {
            dcid_len,
            flows: FnvIndexMap::new(),
            removed: Counters::default(),
            unroutable: 0,
        })
    }

    /// Adds `flow` under `cid`, returning the flow it replaces, if any.
    pub fn insert(&mut self, cid: ConnectionId, flow: F) -> Result<Option<F>, Error> {
        if cid.len() != self.dcid_len {
            return Err(Error::InvalidConfig);
        }
        let replaced = self.flows.insert(cid, flow).map_err(|_| Error::TableFull)?;
        if let Some(old) = &replaced {
            self.removed += old.counters();
        }
        Ok(replaced)
    }

    /// Removes the flow under `cid`; its counters stay in the totals.
    pub fn remove(&mut self, cid: &ConnectionId) -> Option<F> {
        let flow = self.flows.swap_remove(cid)?;
        self.removed += flow.counters();
        Some(flow)
    }

    /// The flow under `cid`.
    pub fn get(&self, cid: &ConnectionId) -> Option<&F> {
        self.flows.get(cid)
    }

    /// The flow under `cid`, to use.
    pub fn get_mut(&mut self, cid: &ConnectionId) -> Option<&mut F> {
        self.flows.get_mut(cid)
    }

    /// Length of the connection IDs this table is keyed by.
    pub fn dcid_len(&self) -> usize {
        self.dcid_len
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when there are no flows.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Datagrams no flow was found for, including ones too short to name one.
    pub fn unroutable(&self) -> u64 {
        self.unroutable
    }

    /// Counters summed over every flow, present and removed.
    pub fn totals(&self) -> Counters {
        let mut total = self.removed;
        for flow in self.flows.values() {
            total += flow.counters();
        }
        total
    }

    /// The flow a datagram belongs to, by the destination connection ID of its first packet
    /// (RFC 9000 §12.2: coalesced packets share it). Callers prefetch the flow's state
    /// (`prefetch`) before they use it: in a large table it is likely cold, and fetched
    /// piece by piece it would cost several trips to memory.
    fn route(&mut self, byte: impl Fn(usize) -> Option<u8>) -> Result<&mut F, Error> {
        match self.find(byte) {
            Ok(cid) => match self.flows.get_mut(&cid) {
                Some(flow) => Ok(flow),
                None => {
                    self.unroutable += 1;
                    Err(Error::UnknownConnectionId)
                }
            },
            Err(error) => {
                self.unroutable += 1;
                Err(error)
            }
        }
    }

    fn find(&self, byte: impl Fn(usize) -> Option<u8>) -> Result<ConnectionId, Error> {
        crate::wire::first_destination_id(byte, self.dcid_len)
    }
}

impl<B: Backend, const N: usize> FlowTable<TxFlow<B>, N> {
    /// Seals one datagram with the flow its destination connection ID names.
    pub fn seal(&mut self, src: &[&[u8]], dst: &mut [&mut [u8]]) -> Outcome {
        let source = SgSource::new(src);
        let flow = self.route(|i| source.byte(i))?;
        flow.prefetch();
        flow.seal(src, dst)
    }

    /// Seals a GSO batch with the flow its first datagram's destination connection ID names
    /// (one batch goes to one peer); see [`TxFlow::seal_gso`].
    pub fn seal_gso(
        &mut self,
        src: &[&[u8]],
        gso_size: usize,
        dst: &mut [&mut [u8]],
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let source = SgSource::new(src);
        let flow = self.route(|i| source.byte(i))?;
        flow.prefetch();
        flow.seal_gso(src, gso_size, dst, results)
    }

    /// Seals a GSO batch in place with the flow its first datagram names; see
    /// [`TxFlow::seal_gso_in_place`].
    pub fn seal_gso_in_place(
        &mut self,
        buffer: &mut [u8],
        gso_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let flow = self.route(|i| buffer.get(i).copied())?;
        flow.prefetch();
        flow.seal_gso_in_place(buffer, gso_size, results)
    }
}

impl<B: Backend, const N: usize> FlowTable<RxFlow<B>, N> {
    /// Opens one datagram in place with the flow its destination connection ID names.
    pub fn open_in_place(&mut self, datagram: &mut [u8]) -> Outcome {
        let flow = self.route(|i| datagram.get(i).copied())?;
        flow.prefetch();
        flow.open_in_place(datagram)
    }

    /// Opens a GRO batch in place, each datagram with its own flow; see
    /// [`RxFlow::open_gro`]. Fails as a whole only for a zero `segment_size` or too small a
    /// `results` slice; each flow's own segment limit does not apply.
    pub fn open_gro(
        &mut self,
        buffer: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        open_segments(
            buffer,
            segment_size,
            usize::MAX,
            results,
            |group, results| {
                each_datagram(group, segment_size, results, |datagram| {
                    self.open_in_place(datagram)
                })
            },
        )
    }
}
