//! The offloaded connections, shared by the sessions that create them and the socket that
//! seals and opens their packets: a flow per connection, found by the stamp quinn's
//! passthrough key writes on the way out and by destination connection ID on the way in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use quicseal::{Counters, Error, KeyMaterial, RxFlow, TxFlow};
use quinn_proto::{ConnectionId, ConnectionIdGenerator};
use subtle::ConstantTimeEq;

use crate::replay::ReplayWindow;

/// Bytes of the stamp and of the marker: the AEAD tag's room in quinn's packets.
pub const TAG_LEN: usize = quicseal::backend::TAG_LEN;

/// The offloaded connections of one endpoint.
pub struct Registry {
    /// Starts every stamp: random per registry, so a packet's own bytes cannot pass for one.
    magic: [u8; 8],
    flows: Mutex<HashMap<u32, Arc<Flow>>>,
    /// Destination connection IDs seen on packets a flow opened, to find it first next time:
    /// the flow's id, and the IDs in the order each flow learned them (at most
    /// [`ROUTES_PER_FLOW`] a flow: a peer moves on to new IDs, RFC 9000 §5.1.2).
    routes: Mutex<Routes>,
    /// The local connection ID lengths of the flows registered so far (an endpoint's are all
    /// one length): where a received packet's ID ends, to look it up.
    cid_lengths: Mutex<Vec<usize>>,
    next_id: AtomicU32,
    /// Checks the destination connection ID of a packet no route names before any flow
    /// tries it (see [`with_connection_id_validation`](Registry::with_connection_id_validation)).
    validator: Option<Box<dyn ConnectionIdGenerator>>,
}

/// The connection IDs a flow is remembered by, at most: quinn keeps a few alive at a time.
pub const ROUTES_PER_FLOW: usize = 8;

/// Flows a packet to a connection ID no route names is tried on, at most, by a registry
/// without a connection ID validator: the flows whose peer sent from the packet's source
/// address first. Anyone can send packets to made-up IDs, and each trial is a whole AEAD
/// open, so the trials are bounded rather than one per connection.
pub const MAX_TRIALS: usize = 8;

#[derive(Default)]
struct Routes {
    flows: HashMap<Vec<u8>, u32>,
    learned: HashMap<u32, std::collections::VecDeque<Vec<u8>>>,
    /// Connection IDs learned in all, for the counters.
    total: u64,
}

/// One connection's two directions, and what the session handed over for later.
pub struct Flow {
    id: u32,
    /// This side's connection ID length: the destination ID length of what it receives.
    local_cid_len: usize,
    /// XORed with the generation, what an opened packet's tag becomes for quinn to accept:
    /// random, never on the wire.
    marker_base: [u8; TAG_LEN],
    tx: Mutex<Direction<TxFlow>>,
    rx: Mutex<Direction<RxFlow>>,
    /// Packet numbers opened lately, and how many opened a second time (replays: quinn drops
    /// them).
    opened: Mutex<ReplayWindow>,
    duplicates: AtomicU64,
    /// Where the connection's packets last went to or came from.
    peer: Mutex<Option<SocketAddr>>,
}

/// A direction's flow and the next generation's keys it cannot take yet (its next slot is
/// still waiting to be used).
pub struct Direction<F> {
    pub flow: F,
    pending: Option<(u64, KeyMaterial)>,
}

/// What both flow types offer for installing keys in order.
pub trait Generations {
    fn generation(&self) -> u64;
    fn next_keys_ready(&self) -> bool;
    fn install_next_keys(&mut self, material: &KeyMaterial) -> Result<(), Error>;
}

macro_rules! generations {
    ($flow:ty) => {
        impl Generations for $flow {
            fn generation(&self) -> u64 {
                <$flow>::generation(self)
            }
            fn next_keys_ready(&self) -> bool {
                <$flow>::next_keys_ready(self)
            }
            fn install_next_keys(&mut self, material: &KeyMaterial) -> Result<(), Error> {
                <$flow>::install_next_keys(self, material)
            }
        }
    };
}
generations!(TxFlow);
generations!(RxFlow);

impl<F: Generations> Direction<F> {
    /// Takes generation `generation`'s keys: into the flow's next slot when that is the
    /// generation after the current one and the slot is free, else kept until it is.
    pub fn hand_over(&mut self, generation: u64, material: KeyMaterial) {
        self.pending = Some((generation, material));
        self.install_pending();
    }

    /// Installs the kept keys once the flow has moved up to them. Call after every batch.
    pub fn install_pending(&mut self) {
        let ready = self.pending.as_ref().is_some_and(|(generation, _)| {
            self.flow.generation() + 1 == *generation && !self.flow.next_keys_ready()
        });
        if ready && let Some((_, material)) = self.pending.take() {
            // Keys quicseal accepted once (they built the flow's suite) are accepted again.
            let _ = self.flow.install_next_keys(&material);
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            magic: random(),
            flows: Mutex::new(HashMap::new()),
            routes: Mutex::new(Routes::default()),
            cid_lengths: Mutex::new(Vec::new()),
            next_id: AtomicU32::new(1),
            validator: None,
        }
    }

    /// A registry that has its flows try only packets whose destination connection ID
    /// `generator` validates: give it a generator keyed like the endpoint's
    /// (`HashedConnectionIdGenerator::from_key` on both, the endpoint's through
    /// `EndpointConfig::cid_generator`). Made-up IDs then cost no trial at all, and an ID
    /// that validates is tried on every flow, so a connection that moves to a new ID and a
    /// new address at once is found however many connections the endpoint has (without a
    /// validator, [`MAX_TRIALS`] bounds the search).
    pub fn with_connection_id_validation(generator: Box<dyn ConnectionIdGenerator>) -> Registry {
        Registry {
            validator: Some(generator),
            ..Registry::new()
        }
    }

    /// Registers a connection's flows; returns it.
    pub fn insert(&self, local_cid_len: usize, tx: TxFlow, rx: RxFlow) -> Arc<Flow> {
        let flow = Arc::new(Flow {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            local_cid_len,
            marker_base: random(),
            tx: Mutex::new(Direction {
                flow: tx,
                pending: None,
            }),
            rx: Mutex::new(Direction {
                flow: rx,
                pending: None,
            }),
            opened: Mutex::new(ReplayWindow::default()),
            duplicates: AtomicU64::new(0),
            peer: Mutex::new(None),
        });
        let mut lengths = lock(&self.cid_lengths);
        if !lengths.contains(&local_cid_len) {
            lengths.push(local_cid_len);
        }
        drop(lengths);
        lock(&self.flows).insert(flow.id, Arc::clone(&flow));
        flow
    }

    /// Forgets a connection: its packets pass through unsealed and unopened from now on.
    pub fn remove(&self, flow: &Flow) {
        lock(&self.flows).remove(&flow.id);
        let mut routes = lock(&self.routes);
        for id in routes.learned.remove(&flow.id).unwrap_or_default() {
            routes.flows.remove(&id);
        }
    }

    /// The stamp quinn's passthrough key writes where a packet's tag goes.
    pub fn stamp(&self, flow: &Flow, generation: u64) -> [u8; TAG_LEN] {
        let mut stamp = [0; TAG_LEN];
        stamp[..8].copy_from_slice(&self.magic);
        stamp[8..12].copy_from_slice(&flow.id.to_le_bytes());
        stamp[12..].copy_from_slice(&(generation as u32).to_le_bytes());
        stamp
    }

    /// The flow whose stamp ends `datagram`: `None` when it ends in no stamp (a packet whose
    /// tag is real: Initial and Handshake only), `Some(None)` when the stamp names no flow
    /// (a connection gone: the datagram must not leave unsealed).
    pub fn stamped(&self, datagram: &[u8]) -> Option<Option<Arc<Flow>>> {
        let tag = datagram
            .len()
            .checked_sub(TAG_LEN)
            .map(|at| &datagram[at..])?;
        if tag[..8] != self.magic {
            return None;
        }
        let id = u32::from_le_bytes(tag[8..12].try_into().ok()?);
        Some(lock(&self.flows).get(&id).cloned())
    }

    /// The flows to try a received 1-RTT packet on when no route names its destination
    /// connection ID (a new ID, or a connection's first packet), in order: those whose peer
    /// is `source`, then the others. With a validator, none unless the ID validates, else
    /// all; without one, at most [`MAX_TRIALS`].
    pub fn candidates(&self, packet: &[u8], source: SocketAddr) -> Vec<Arc<Flow>> {
        let limit = match &self.validator {
            Some(validator) => {
                let id = packet.get(1..1 + validator.cid_len());
                // `validate` takes IDs of the generator's length only.
                let valid = id.is_some_and(|id| {
                    !id.is_empty() && validator.validate(&ConnectionId::new(id)).is_ok()
                });
                if !valid {
                    return Vec::new();
                }
                usize::MAX
            }
            None => MAX_TRIALS,
        };
        let flows = lock(&self.flows);
        let from_source = |flow: &&Arc<Flow>| flow.peer() == Some(source);
        let mut candidates: Vec<Arc<Flow>> = flows.values().filter(from_source).cloned().collect();
        candidates.extend(flows.values().filter(|f| !from_source(f)).cloned());
        candidates.truncate(limit);
        candidates
    }

    /// The flow a received 1-RTT packet's destination connection ID was last seen with, if it
    /// was seen and is not empty (a zero-length ID names no one connection): one lookup per
    /// connection ID length in use.
    pub fn routed(&self, packet: &[u8]) -> Option<Arc<Flow>> {
        // Locked in the order `insert` takes them: lengths, flows, routes.
        let lengths = lock(&self.cid_lengths);
        let flows = lock(&self.flows);
        let routes = lock(&self.routes);
        lengths.iter().find_map(|&len| {
            let id = packet.get(1..1 + len).filter(|id| !id.is_empty())?;
            let flow = flows.get(routes.flows.get(id)?)?;
            (flow.local_cid_len == len).then(|| Arc::clone(flow))
        })
    }

    /// Remembers that `flow` opened a 1-RTT packet sent to this destination connection ID.
    pub fn learn_route(&self, flow: &Flow, packet: &[u8]) {
        let Some(id) = packet.get(1..1 + flow.local_cid_len) else {
            return;
        };
        let mut routes = lock(&self.routes);
        match routes.flows.insert(id.to_vec(), flow.id) {
            Some(known) if known == flow.id => return,
            // An ID another flow had (a connection gone, its ID reused): it is this one's now.
            Some(other) => {
                if let Some(learned) = routes.learned.get_mut(&other) {
                    learned.retain(|learned| learned != id);
                }
            }
            None => {}
        }
        routes.total += 1;
        let learned = routes.learned.entry(flow.id).or_default();
        learned.push_back(id.to_vec());
        let forgotten = (learned.len() > ROUTES_PER_FLOW)
            .then(|| learned.pop_front())
            .flatten();
        if let Some(forgotten) = forgotten {
            routes.flows.remove(&forgotten);
        }
    }

    /// Connection IDs remembered now, and learned in all.
    pub fn connection_ids(&self) -> (usize, u64) {
        let routes = lock(&self.routes);
        (routes.flows.len(), routes.total)
    }

    /// 1-RTT packets the flows opened a second time (a replay, or the network duplicating a
    /// datagram): passed on to quinn, which drops them.
    pub fn duplicates(&self) -> u64 {
        lock(&self.flows)
            .values()
            .map(|flow| flow.duplicates.load(Ordering::Relaxed))
            .sum()
    }

    /// Counters of every flow, both directions, summed.
    pub fn totals(&self) -> (Counters, Counters) {
        let mut totals = (Counters::default(), Counters::default());
        for flow in lock(&self.flows).values() {
            totals.0 += flow.tx().flow.counters();
            totals.1 += flow.rx().flow.counters();
        }
        totals
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Flow {
    pub fn tx(&self) -> MutexGuard<'_, Direction<TxFlow>> {
        lock(&self.tx)
    }

    pub fn rx(&self) -> MutexGuard<'_, Direction<RxFlow>> {
        lock(&self.rx)
    }

    /// What the tag of a packet this flow opened with `generation`'s keys becomes.
    pub fn marker(&self, generation: u64) -> [u8; TAG_LEN] {
        let mut marker = self.marker_base;
        for (byte, g) in marker.iter_mut().zip(generation.to_le_bytes()) {
            *byte ^= g;
        }
        marker
    }

    /// True when `tag` is `generation`'s marker, compared in constant time.
    pub fn is_marker(&self, tag: &[u8], generation: u64) -> bool {
        tag.ct_eq(&self.marker(generation)).into()
    }

    /// Where the connection's packets last went to or came from, if anywhere yet.
    pub fn peer(&self) -> Option<SocketAddr> {
        *lock(&self.peer)
    }

    /// Notes where the connection's packets go to or came from.
    pub fn set_peer(&self, address: SocketAddr) {
        *lock(&self.peer) = Some(address);
    }

    /// Notes that packet `number` opened, counting it if it had before.
    pub fn opened(&self, number: u64) {
        if lock(&self.opened).seen(number) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes
}
