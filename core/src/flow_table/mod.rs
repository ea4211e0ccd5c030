//! A bounded table of flows keyed by destination connection ID, for callers that multiplex
//! many connections on one socket. A socket with one connection owns its flow directly and
//! needs no table.
//!
//! The flows lie densely in an array, found through an index of their IDs ([`index`]). The
//! index is the table's own rather than a crate's hash map (heapless's `IndexMap` held the
//! flows before) because a receiver with a burst of datagrams for many connections wants
//! their lookups to overlap: routed one after another, each lookup's trips to memory (the
//! index, then the entry) waited on the last one's, and with 65 536 connections a burst of
//! sixteen 1350-byte AES-128-GCM datagrams cost 667 ns a datagram against 386 with the flows
//! addressed by position. [`FlowTable::open_each_in_place`] routes a burst in steps instead:
//! every datagram's index slot is fetched, then every entry, then each datagram is opened.

mod index;

use heapless::Vec;

use crate::backend::{Backend, prefetch};
use crate::flow::{Batch, Outcome};
use crate::gso::open_segments;
use crate::sg::SgSource;
use crate::wire::{ConnectionId, MAX_CID_LEN};
use crate::{Counters, Error, RxFlow, TxFlow};
use index::{Hash, Index, Key};

/// Most datagrams a table routes ahead of opening them: the lookups of this many overlap.
/// Beyond a few the gain levels off (65 536 flows, 1350-byte AES-128-GCM datagrams: 475 ns
/// a datagram in bursts of 8, 478-500 in bursts of 16, 461 in bursts of 32, all within this
/// VM's spread); sixteen is about what a `recvmmsg` call returns under load.
pub const ROUTE_AHEAD: usize = 16;

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

/// A datagram's connection ID as a key and its hash, or why it names no flow: the first pass
/// of routing a burst.
type Routing = Result<(Key, Hash), Error>;

/// A flow and the connection ID it is kept under.
struct Entry<F> {
    cid: ConnectionId,
    flow: F,
}

/// Up to `N` flows (a power of two, at most 2³¹) keyed by connection IDs of one length, with
/// O(1) lookup and no allocation.
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
    /// The flows, in no particular order: removing one moves the last into its place.
    entries: Vec<Entry<F>, N>,
    /// Where each ID's entry is.
    index: Index<N>,
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
            entries: Vec::new(),
            index: Index::new(),
            removed: Counters::default(),
            unroutable: 0,
        })
    }

    /// Adds `flow` under `cid`, returning the flow it replaces, if any.
    pub fn insert(&mut self, cid: ConnectionId, flow: F) -> Result<Option<F>, Error> {
        if cid.len() != self.dcid_len {
            return Err(Error::InvalidConfig);
        }
        let key = Key::of(&cid);
        let hash = key.hash();
        if let Some(entry) = self
            .position(&key, hash)
            .and_then(|e| self.entries.get_mut(e))
        {
            let replaced = core::mem::replace(&mut entry.flow, flow);
            self.removed += replaced.counters();
            return Ok(Some(replaced));
        }
        let at = self.entries.len();
        self.entries
            .push(Entry { cid, flow })
            .map_err(|_| Error::TableFull)?;
        self.index.insert(hash, at);
        Ok(None)
    }

    /// Removes the flow under `cid`; its counters stay in the totals.
    pub fn remove(&mut self, cid: &ConnectionId) -> Option<F> {
        let key = Key::of(cid);
        let (slot, at) = self
            .index
            .candidates(key.hash())
            .find(|&(_, at)| self.holds(at, &key))?;
        // `holds` found the entry at `at`: there is a last one, and `at` is at most it.
        let last = self.entries.len().checked_sub(1)?;
        if at > last {
            return None;
        }
        self.index.remove(slot);
        let entry = self.entries.swap_remove(at);
        // The last entry took the removed one's place: its slot follows it.
        if let Some(moved) = self.entries.get(at) {
            self.index.moved(Key::of(&moved.cid).hash(), last, at);
        }
        self.removed += entry.flow.counters();
        Some(entry.flow)
    }

    /// The flow under `cid`.
    pub fn get(&self, cid: &ConnectionId) -> Option<&F> {
        let key = Key::of(cid);
        let at = self.position(&key, key.hash())?;
        self.entries.get(at).map(|entry| &entry.flow)
    }

    /// The flow under `cid`, to use.
    pub fn get_mut(&mut self, cid: &ConnectionId) -> Option<&mut F> {
        let key = Key::of(cid);
        let at = self.position(&key, key.hash())?;
        self.entries.get_mut(at).map(|entry| &mut entry.flow)
    }

    /// Length of the connection IDs this table is keyed by.
    pub fn dcid_len(&self) -> usize {
        self.dcid_len
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no flows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Datagrams no flow was found for, including ones too short to name one.
    pub fn unroutable(&self) -> u64 {
        self.unroutable
    }

    /// Counters summed over every flow, present and removed.
    pub fn totals(&self) -> Counters {
        let mut total = self.removed;
        for entry in &self.entries {
            total += entry.flow.counters();
        }
        total
    }

    /// Where the entry kept under `key`, whose hash is `hash`, lies.
    fn position(&self, key: &Key, hash: Hash) -> Option<usize> {
        self.index
            .candidates(hash)
            .map(|(_, at)| at)
            .find(|&at| self.holds(at, key))
    }

    /// True when the entry at `at` is kept under `key`.
    fn holds(&self, at: usize, key: &Key) -> bool {
        self.entries
            .get(at)
            .is_some_and(|entry| Key::of(&entry.cid) == *key)
    }

    /// The flow a datagram belongs to, by the destination connection ID of its first packet
    /// (RFC 9000 §12.2: coalesced packets share it). Callers prefetch the flow's state
    /// (`prefetch`) before they use it: in a large table it is likely cold, and fetched
    /// piece by piece it would cost several trips to memory.
    fn route(&mut self, byte: impl Fn(usize) -> Option<u8>) -> Result<&mut F, Error> {
        let key = self.find(byte).map(|cid| Key::of(&cid));
        self.route_key(key)
    }

    /// [`route`](Self::route) for a datagram in one piece.
    fn route_datagram(&mut self, datagram: &[u8]) -> Result<&mut F, Error> {
        let key = self.key(datagram);
        self.route_key(key)
    }

    /// The flow under `key`, or why there is none, counted.
    fn route_key(&mut self, key: Result<Key, Error>) -> Result<&mut F, Error> {
        let found = key.and_then(|key| {
            self.position(&key, key.hash())
                .ok_or(Error::UnknownConnectionId)
        });
        match found.and_then(|at| self.entries.get_mut(at).ok_or(Error::UnknownConnectionId)) {
            Ok(entry) => Ok(&mut entry.flow),
            Err(error) => {
                self.unroutable += 1;
                Err(error)
            }
        }
    }

    fn find(&self, byte: impl Fn(usize) -> Option<u8>) -> Result<ConnectionId, Error> {
        crate::wire::first_destination_id(byte, self.dcid_len)
    }

    /// The key of a datagram's connection ID ([`find`](Self::find)'s), read from its bytes
    /// in place where it is a 1-RTT packet's.
    fn key(&self, datagram: &[u8]) -> Result<Key, Error> {
        match Key::in_datagram(datagram, self.dcid_len) {
            Some(key) => Ok(key),
            None => self
                .find(|i| datagram.get(i).copied())
                .map(|cid| Key::of(&cid)),
        }
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
        let flow = self.route_datagram(buffer)?;
        flow.prefetch();
        flow.seal_gso_in_place(buffer, gso_size, results)
    }
}

impl<B: Backend, const N: usize> FlowTable<RxFlow<B>, N> {
    /// Opens one datagram in place with the flow its destination connection ID names.
    pub fn open_in_place(&mut self, datagram: &mut [u8]) -> Outcome {
        let flow = self.route_datagram(datagram)?;
        flow.prefetch();
        flow.open_in_place(datagram)
    }

    /// Opens each datagram of a burst in place with the flow its destination connection ID
    /// names, the outcome of `datagrams[i]` to `results[i]`: what
    /// [`open_in_place`](Self::open_in_place) does for each, but with the lookups of up to
    /// [`ROUTE_AHEAD`] datagrams done together before any is opened, so that with many
    /// connections their flows come from memory at once rather than one after another.
    /// Fails as a whole only when `results` is shorter than `datagrams`. The batch's `len`
    /// is the datagrams' bytes, added up.
    pub fn open_each_in_place(
        &mut self,
        datagrams: &mut [&mut [u8]],
        results: &mut [Outcome],
    ) -> Result<Batch, Error> {
        let results = results
            .get_mut(..datagrams.len())
            .ok_or(Error::BufferTooSmall)?;
        for (burst, results) in datagrams
            .chunks_mut(ROUTE_AHEAD)
            .zip(results.chunks_mut(ROUTE_AHEAD))
        {
            self.open_routed_ahead(burst.iter_mut().map(|datagram| &mut **datagram), results);
        }
        let ok = results.iter().filter(|result| result.is_ok()).count();
        Ok(Batch {
            datagrams: datagrams.len(),
            ok,
            failed: datagrams.len() - ok,
            len: datagrams.iter().map(|datagram| datagram.len()).sum(),
        })
    }

    /// Opens a GRO batch in place, each datagram with its own flow; see
    /// [`RxFlow::open_gro`]. Fails as a whole only for a zero `segment_size` or too small a
    /// `results` slice; each flow's own segment limit does not apply. Its datagrams are
    /// routed ahead a group at a time, as [`open_each_in_place`](Self::open_each_in_place)
    /// routes a burst.
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
                // An empty group is one empty datagram.
                if group.is_empty() {
                    self.open_routed_ahead(core::iter::once(group), results);
                    return;
                }
                // A group is as many datagrams as a backend opens together, which need not
                // be `ROUTE_AHEAD`: routed ahead at most that many at a time.
                let pieces = group
                    .chunks_mut(segment_size.saturating_mul(ROUTE_AHEAD))
                    .zip(results.chunks_mut(ROUTE_AHEAD));
                for (piece, results) in pieces {
                    self.open_routed_ahead(piece.chunks_mut(segment_size), results);
                }
            },
        )
    }

    /// Opens up to [`ROUTE_AHEAD`] datagrams (any more are left alone), the outcome of the
    /// k-th to `results[k]`, in three passes: each datagram's connection ID is read and
    /// hashed and its index slot fetched; each slot is read and the entry of the first ID
    /// with that hash fetched, with its flow's state; then each datagram is opened by its
    /// flow, once the entry's ID is confirmed to be the datagram's (else, after a collision
    /// of hashes, looked up in full). A flow named twice opens its datagrams in order.
    fn open_routed_ahead<'d>(
        &mut self,
        datagrams: impl Iterator<Item = &'d mut [u8]>,
        results: &mut [Outcome],
    ) {
        let mut burst: Vec<(&mut [u8], Routing), ROUTE_AHEAD> = Vec::new();
        for datagram in datagrams.take(results.len().min(ROUTE_AHEAD)) {
            let id = self.key(datagram).map(|key| (key, key.hash()));
            if let Ok((_, hash)) = id {
                self.index.prefetch(hash);
            }
            // Cannot fail: at most ROUTE_AHEAD are taken.
            let _ = burst.push((datagram, id));
        }
        let mut likely = [None; ROUTE_AHEAD];
        for ((_, id), likely) in burst.iter().zip(&mut likely) {
            if let Ok((_, hash)) = id {
                *likely = self.index.candidates(*hash).next().map(|(_, at)| at);
                if let Some(entry) = likely.and_then(|at| self.entries.get(at)) {
                    prefetch(&entry.cid);
                    entry.flow.prefetch();
                }
            }
        }
        for (((datagram, id), likely), result) in burst.into_iter().zip(likely).zip(results) {
            *result = match id {
                Ok((key, hash)) => {
                    let at = likely
                        .filter(|&at| self.holds(at, &key))
                        .or_else(|| self.position(&key, hash));
                    match at.and_then(|at| self.entries.get_mut(at)) {
                        Some(entry) => entry.flow.open_in_place(datagram),
                        None => {
                            self.unroutable += 1;
                            Err(Error::UnknownConnectionId)
                        }
                    }
                }
                Err(error) => {
                    self.unroutable += 1;
                    Err(error)
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CipherSuite, FlowConfig};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec as StdVec;

    /// A flow that is only its counters: `opened` says which insert it came from.
    struct Marked(u64);

    impl CountedFlow for Marked {
        fn counters(&self) -> Counters {
            Counters {
                opened: self.0,
                ..Counters::default()
            }
        }
    }

    /// Twelve IDs of two bytes for a table of eight: some share where their probes start.
    fn id(k: u8) -> ConnectionId {
        ConnectionId::new(&[k, k.wrapping_mul(7)]).unwrap()
    }

    proptest! {
        #[test]
        fn a_table_holds_what_a_map_holds(
            operations in proptest::collection::vec((0u8..3, 0u8..12), 0..300)
        ) {
            let mut table: FlowTable<Marked, 8> = FlowTable::new(2).unwrap();
            let mut model: BTreeMap<u8, u64> = BTreeMap::new();
            let mut removed = 0;
            for (step, (operation, k)) in operations.into_iter().enumerate() {
                let mark = step as u64 + 1;
                match operation {
                    0 => match table.insert(id(k), Marked(mark)) {
                        Ok(replaced) => {
                            prop_assert_eq!(replaced.map(|flow| flow.0), model.get(&k).copied());
                            if let Some(old) = model.insert(k, mark) {
                                removed += old;
                            }
                        }
                        Err(error) => {
                            prop_assert_eq!(error, Error::TableFull);
                            prop_assert!(model.len() == 8 && !model.contains_key(&k));
                        }
                    },
                    1 => {
                        let flow = table.remove(&id(k)).map(|flow| flow.0);
                        prop_assert_eq!(flow, model.remove(&k));
                        removed += flow.unwrap_or(0);
                    }
                    _ => prop_assert_eq!(table.get(&id(k)).map(|flow| flow.0), model.get(&k).copied()),
                }
                prop_assert_eq!(table.len(), model.len());
                for k in 0..12 {
                    prop_assert_eq!(table.get(&id(k)).map(|flow| flow.0), model.get(&k).copied());
                }
                prop_assert_eq!(table.totals().opened, removed + model.values().sum::<u64>());
            }
        }
    }

    #[test]
    fn a_burst_routes_ids_whose_hashes_collide_to_their_own_flows() {
        // Two 8-byte IDs with the same 32-bit hash, found by trying IDs from a xorshift
        // stream (about 80 000 for even odds): the burst's second pass takes the first entry
        // with that hash for both, and the third must notice the wrong one.
        let mut seen = BTreeMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let (a, b) = (0..1 << 21)
            .find_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let cid = ConnectionId::new(&state.to_be_bytes()).unwrap();
                seen.insert(Key::of(&cid).hash(), cid)
                    .map(|other| (other, cid))
            })
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(Key::of(&a).hash(), Key::of(&b).hash());

        let suite = CipherSuite::Aes128GcmSha256;
        let config = FlowConfig::new(8);
        let secrets = [[1u8; 32], [2; 32]];
        let mut table: FlowTable<RxFlow, 4> = FlowTable::new(8).unwrap();
        let mut datagrams = StdVec::new();
        for (cid, secret) in [a, b].iter().zip(&secrets) {
            let flow = RxFlow::from_secret(suite, secret, config).unwrap();
            table.insert(*cid, flow).unwrap();
            let mut tx: TxFlow = TxFlow::from_secret(suite, secret, config).unwrap();
            let mut cleartext = std::vec![0x41u8; 40];
            cleartext[1..9].copy_from_slice(cid.as_bytes());
            let mut sealed = std::vec![0u8; 56];
            let _ = tx.seal(&[&cleartext], &mut [&mut sealed]).unwrap();
            datagrams.push(sealed);
        }
        // Each ID's datagram, in both orders.
        datagrams.extend(datagrams.clone().into_iter().rev());
        let mut burst: StdVec<&mut [u8]> = datagrams.iter_mut().map(|d| d.as_mut_slice()).collect();
        let mut results = [Err(Error::Malformed); 4];
        let batch = table.open_each_in_place(&mut burst, &mut results).unwrap();
        assert_eq!(batch.ok, 4, "{results:?}");
        for cid in [a, b] {
            assert_eq!(table.get(&cid).unwrap().counters().opened, 2);
        }
    }
}
