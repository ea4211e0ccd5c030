//! Where a flow table's connection IDs lie among its entries: open addressing over `2N` slots
//! for `N` entries, linear probing with Robin Hood placement (each slot's entry stays within a few slots of
//! the one its hash names, and a probe for an ID that is not there stops as soon as it meets
//! an entry closer to its own start than the probe has come), deletion by shifting the rest
//! of the probe back rather than leaving tombstones.
//!
//! What it adds to a plain hash map is a lookup in steps, for a burst of datagrams: the slot
//! a probe starts at is known from the hash alone, so a table can fetch the slots of a whole
//! burst before it reads any of them, then the entries they point to before it reads those,
//! and the burst's trips to memory overlap instead of queueing behind each other.

use crate::wire::long_header::LONG_HEADER_FORM;
use crate::wire::{ConnectionId, MAX_CID_LEN};

/// A connection ID as the index hashes and compares it: its bytes as three little-endian
/// words (zero past its length), its length in the third word's upper half. Built from a
/// datagram's bytes with whole-word loads and masks, in registers: a `ConnectionId` copied
/// out of the datagram a byte at a time and then read a word at a time would make every
/// wide load wait for the narrow stores before it (about 10 ns an ID, measured on
/// `ConnectionId::new`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key([u64; 3]);

impl Key {
    /// The key of `cid`.
    pub(super) fn of(cid: &ConnectionId) -> Key {
        Key::from_window(cid.padded(), cid.len())
    }

    /// The key of the destination connection ID of `datagram`'s first packet if that is a
    /// 1-RTT packet (short header) with `dcid_len` bytes of ID, whatever the datagram holds
    /// after the ID, as long as the 20 bytes after the first are there to load; `None`
    /// otherwise (long headers, short datagrams), for the general path to decide.
    pub(super) fn in_datagram(datagram: &[u8], dcid_len: usize) -> Option<Key> {
        let first = datagram.first()?;
        let window = datagram.get(1..1 + MAX_CID_LEN)?;
        (first & LONG_HEADER_FORM == 0 && dcid_len <= MAX_CID_LEN)
            .then(|| Key::from_window(window, dcid_len))
    }

    /// The key of the `len` bytes (at most 20) at the start of `window`, 20 bytes long.
    fn from_window(window: &[u8], len: usize) -> Key {
        let word = |at: usize, bytes: usize| {
            let mut eight = [0u8; 8];
            if let (Some(to), Some(from)) = (eight.get_mut(..bytes), window.get(at..at + bytes)) {
                to.copy_from_slice(from);
            }
            let kept = len.saturating_sub(at).min(bytes);
            u64::from_le_bytes(eight) & u64::MAX.checked_shr(64 - 8 * kept as u32).unwrap_or(0)
        };
        Key([word(0, 8), word(8, 8), word(16, 4) | (len as u64) << 32])
    }

    /// The key's hash: each word multiplied by its own odd constant, then mixed so that the
    /// low bits depend on all of them. Not keyed: the IDs a table holds are the ones its
    /// owner issued, and a datagram with some other ID costs one probe, which Robin Hood
    /// placement keeps short.
    pub(super) fn hash(&self) -> Hash {
        let [a, b, c] = self.0;
        let mixed = a.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ c.wrapping_mul(0x1656_67b1_9e37_79f9);
        let folded = (mixed ^ (mixed >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
        Hash((folded >> 32) as u32)
    }
}

/// A key's hash as the index keeps it: 32 bits, of which the low ones pick the slot a probe
/// starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(PartialOrd, Ord))]
pub(super) struct Hash(u32);

/// One slot: the hash of the ID whose entry it points to, and that entry's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    hash: u32,
    entry: u32,
}

impl Slot {
    /// An empty slot: no entry is at `u32::MAX` (entries lie below `N`, at most 2³¹).
    const EMPTY: Slot = Slot {
        hash: 0,
        entry: u32::MAX,
    };

    fn is_empty(self) -> bool {
        self.entry == u32::MAX
    }
}

/// The slots of a table of up to `N` entries (`N` a power of two, at most 2³¹ on 64-bit
/// targets, 2³⁰ on 32-bit ones, where `2 * N` must fit a `usize`): twice as
/// many slots as entries, as pairs (an array's length cannot be `2 * N`), so that the index
/// is at most half full. Full to the last slot, as a hash map of `N` slots for `N` entries
/// can be, an open-addressing probe is long: with 65 536 random IDs in 65 536 slots, about
/// 180 slots on average (23 cache lines); at half full, under one.
pub(super) struct Index<const N: usize> {
    slots: [[Slot; 2]; N],
}

impl<const N: usize> Index<N> {
    const FITS: () = assert!(
        N.is_power_of_two() && N <= 1 << 31,
        "a flow table holds a power of two of flows, at most 2^31"
    );

    /// An index with every slot empty.
    pub(super) const fn new() -> Self {
        let () = Self::FITS;
        Index {
            slots: [[Slot::EMPTY; 2]; N],
        }
    }

    /// Slots in all: `2N`.
    const SLOTS: usize = 2 * N;

    /// The slot a probe for `hash` starts at.
    fn home(hash: u32) -> usize {
        hash as usize & (Self::SLOTS - 1)
    }

    /// How far the entry in `slot`, found at position `at`, lies from its own start.
    fn distance(slot: Slot, at: usize) -> usize {
        at.wrapping_sub(Self::home(slot.hash)) & (Self::SLOTS - 1)
    }

    /// The slot at `at` (taken modulo `2N`).
    fn slot(&self, at: usize) -> Slot {
        self.place(at).copied().unwrap_or(Slot::EMPTY)
    }

    fn set(&mut self, at: usize, slot: Slot) {
        if let Some(place) = self.place_mut(at) {
            *place = slot;
        }
    }

    fn place(&self, at: usize) -> Option<&Slot> {
        let at = at & (Self::SLOTS - 1);
        self.slots.get(at / 2)?.get(at % 2)
    }

    fn place_mut(&mut self, at: usize) -> Option<&mut Slot> {
        let at = at & (Self::SLOTS - 1);
        self.slots.get_mut(at / 2)?.get_mut(at % 2)
    }

    /// Starts fetching the slot a probe for `hash` reads first (and the rest of its cache
    /// line, where the probe usually goes on), without waiting for it.
    pub(super) fn prefetch(&self, hash: Hash) {
        if let Some(slot) = self.place(Self::home(hash.0)) {
            crate::backend::prefetch(slot);
        }
    }

    /// The positions of the entries whose IDs hash to `hash`, in probe order, each with the
    /// slot that points to it: the ID looked for is one of these if it is in the table.
    pub(super) fn candidates(&self, hash: Hash) -> impl Iterator<Item = (usize, usize)> + '_ {
        let start = Self::home(hash.0);
        (0..Self::SLOTS)
            .map(move |distance| (distance, (start + distance) & (Self::SLOTS - 1)))
            .map_while(move |(distance, at)| {
                let slot = self.slot(at);
                // An empty slot, or an entry closer to its own start than this probe has
                // come: the probe has passed every place its ID could be.
                let ends = slot.is_empty() || Self::distance(slot, at) < distance;
                (!ends).then_some((slot, at))
            })
            .filter(move |(slot, _)| slot.hash == hash.0)
            .map(|(slot, at)| (at, slot.entry as usize))
    }

    /// Points a slot at `entry`, whose ID hashes to `hash` and is not in the index yet. The
    /// caller makes sure a slot is free.
    pub(super) fn insert(&mut self, hash: Hash, entry: usize) {
        let mut carried = Slot {
            hash: hash.0,
            entry: entry as u32,
        };
        let mut at = Self::home(hash.0);
        let mut distance = 0;
        for _ in 0..Self::SLOTS {
            let slot = self.slot(at);
            if slot.is_empty() {
                self.set(at, carried);
                return;
            }
            // Robin Hood: an entry closer to its start gives its slot up to the one carried,
            // and is carried on itself.
            let theirs = Self::distance(slot, at);
            if theirs < distance {
                self.set(at, carried);
                carried = slot;
                distance = theirs;
            }
            at = (at + 1) & (Self::SLOTS - 1);
            distance += 1;
        }
        debug_assert!(false, "no free slot: the table holds at most N of 2N");
    }

    /// Empties the slot at `at`, shifting the entries after it that are not at their own
    /// start back by one, so that no probe stops early at the hole.
    pub(super) fn remove(&mut self, at: usize) {
        let mut hole = at;
        for _ in 0..Self::SLOTS {
            let next = (hole + 1) & (Self::SLOTS - 1);
            let slot = self.slot(next);
            if slot.is_empty() || Self::distance(slot, next) == 0 {
                break;
            }
            self.set(hole, slot);
            hole = next;
        }
        self.set(hole, Slot::EMPTY);
    }

    /// Points the slot of the entry at `from`, whose ID hashes to `hash`, at `to` instead: the
    /// entry moved.
    pub(super) fn moved(&mut self, hash: Hash, from: usize, to: usize) {
        let slot = self
            .candidates(hash)
            .find(|&(_, entry)| entry == from)
            .map(|(at, _)| at);
        debug_assert!(slot.is_some(), "the moved entry has a slot");
        if let Some(at) = slot {
            self.set(
                at,
                Slot {
                    hash: hash.0,
                    entry: to as u32,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn every_byte_of_an_id_and_its_length_make_the_key() {
        for len in 1..=MAX_CID_LEN {
            let bytes: Vec<u8> = (1..=len as u8).collect();
            let key = Key::of(&ConnectionId::new(&bytes).unwrap());
            for i in 0..len {
                let mut other = bytes.clone();
                other[i] ^= 0x80;
                assert_ne!(
                    Key::of(&ConnectionId::new(&other).unwrap()),
                    key,
                    "{len} {i}"
                );
            }
        }
        // An ID and the same bytes with a zero after them: only the length tells them apart.
        let short = Key::of(&ConnectionId::new(&[1, 2]).unwrap());
        assert_ne!(Key::of(&ConnectionId::new(&[1, 2, 0]).unwrap()), short);
        assert_ne!(
            Key::of(&ConnectionId::new(&[]).unwrap()),
            Key::of(&ConnectionId::new(&[0]).unwrap())
        );
    }

    #[test]
    fn a_key_is_the_same_from_an_id_and_from_a_datagram() {
        for len in 0..=MAX_CID_LEN {
            let mut datagram = [0xa5u8; 40];
            datagram[0] = 0x41;
            for (i, b) in datagram[1..1 + len].iter_mut().enumerate() {
                *b = i as u8 + 1;
            }
            let cid = ConnectionId::new(&datagram[1..1 + len]).unwrap();
            assert_eq!(
                Key::in_datagram(&datagram, len),
                Some(Key::of(&cid)),
                "{len}"
            );
            // The bytes after the ID do not count; the length does.
            datagram[1 + len..].fill(0x5a);
            assert_eq!(
                Key::in_datagram(&datagram, len),
                Some(Key::of(&cid)),
                "{len}"
            );
            if len > 0 {
                let shorter = ConnectionId::new(&datagram[1..len]).unwrap();
                assert_ne!(Key::of(&shorter), Key::of(&cid));
            }
        }
        // Long headers and datagrams too short to load from are the general path's.
        assert_eq!(Key::in_datagram(&[0xc0; 40], 8), None);
        assert_eq!(Key::in_datagram(&[0x41; 20], 8), None);
        assert_eq!(Key::in_datagram(&[0x41; 21], 21), None);
    }

    /// An index for eight entries (sixteen slots) where every hash is chosen: entry k hashes
    /// to `hashes[k]`, and a probe for hash h starts at slot h mod 16.
    fn index_of(hashes: &[u32]) -> Index<8> {
        let mut index = Index::<8>::new();
        for (entry, &hash) in hashes.iter().enumerate() {
            index.insert(Hash(hash), entry);
        }
        index
    }

    fn found(index: &Index<8>, hash: u32) -> Vec<usize> {
        index
            .candidates(Hash(hash))
            .map(|(_, entry)| entry)
            .collect()
    }

    #[test]
    fn colliding_entries_are_all_found_and_absent_ones_end_the_probe() {
        // Three entries start at slot 1 (two with the same hash), one at slot 2 (pushed on
        // to slot 4 by them), two at slot 15 (the second wraps around to slot 0).
        let index = index_of(&[1, 17, 2, 17, 15, 31]);
        assert_eq!(found(&index, 1), [0]);
        assert_eq!(found(&index, 17), [1, 3]);
        assert_eq!(found(&index, 2), [2]);
        assert_eq!(found(&index, 15), [4]);
        assert_eq!(found(&index, 31), [5]);
        // Hashes that start where others lie, and one whose start is empty.
        assert_eq!(found(&index, 33), [] as [usize; 0]);
        assert_eq!(found(&index, 47), [] as [usize; 0]);
        assert_eq!(found(&index, 5), [] as [usize; 0]);
    }

    #[test]
    fn a_crowded_index_finds_everything_and_ends_every_probe() {
        let hashes = [15, 15, 15, 15, 14, 31, 0, 15];
        let index = index_of(&hashes);
        for (entry, &hash) in hashes.iter().enumerate() {
            assert!(found(&index, hash).contains(&entry), "{entry}");
        }
        assert_eq!(found(&index, 47), [] as [usize; 0]);
        assert_eq!(found(&index, 1), [] as [usize; 0]);
    }

    #[test]
    fn removal_shifts_back_what_follows_and_moves_repoint() {
        let mut index = index_of(&[1, 17, 33, 2]);
        // Remove entry 1 (hash 17), wherever it sits.
        let (at, _) = index
            .candidates(Hash(17))
            .find(|&(_, entry)| entry == 1)
            .unwrap();
        index.remove(at);
        assert_eq!(found(&index, 17), [] as [usize; 0]);
        assert_eq!(found(&index, 1), [0]);
        assert_eq!(found(&index, 33), [2]);
        assert_eq!(found(&index, 2), [3]);
        // Entry 3 moves to position 1.
        index.moved(Hash(2), 3, 1);
        assert_eq!(found(&index, 2), [1]);
        // Every entry left is where a probe reaches it: no hole between it and its start.
        for at in 0..Index::<8>::SLOTS {
            let slot = index.slot(at);
            if !slot.is_empty() {
                let start = Index::<8>::home(slot.hash);
                for between in 0..Index::<8>::distance(slot, at) {
                    assert!(!index.slot(start + between).is_empty());
                }
            }
        }
    }
}
