//! What quicseal's load-with-faults tests share: the core's (`core/tests/faults.rs`, threads
//! and channels) and the sockets' (`targets/userspace/tests/faults.rs`, loopback UDP). Both
//! run the same senders with the same keys, packets and key updates, through the same
//! faults from the same seed, so that the two differ only in what carries the datagrams.

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, RxFlow};

/// Sender threads, one flow each.
pub const SENDERS: usize = 4;
/// GSO batches each sender seals, and datagrams in each.
pub const BATCHES: u64 = 200;
pub const BATCH: usize = 8;
/// Datagrams all senders send.
pub const SENT: u64 = SENDERS as u64 * BATCHES * BATCH as u64;
/// A sender flips its key phase every this many packets.
pub const KEY_UPDATE_EVERY: u64 = 50;
/// The receiver's flow table: this many flows, all but the senders' idle.
pub const TABLE: usize = 64;
/// Every connection ID's length.
pub const DCID_LEN: usize = 8;
/// Fault rates, in percent of the datagrams the injector takes.
pub const DROP: u64 = 4;
pub const DUPLICATE: u64 = 4;
pub const REORDER: u64 = 4;
pub const TRUNCATE: u64 = 3;
pub const CORRUPT: u64 = 3;

/// The suite a sender's flow uses: each in turn.
pub fn suite(sender: usize) -> CipherSuite {
    CipherSuite::ALL[sender % CipherSuite::ALL.len()]
}

/// A sender's connection ID.
pub fn dcid(sender: usize) -> [u8; DCID_LEN] {
    let mut id = *b"sender-0";
    id[7] = b'0' + sender as u8;
    id
}

/// The sender a datagram's connection ID names, if it names one.
pub fn sender_of(datagram: &[u8]) -> Option<usize> {
    let id = datagram.get(1..1 + DCID_LEN)?;
    (id[..7] == dcid(0)[..7])
        .then(|| usize::from(id[7].wrapping_sub(b'0')))
        .filter(|&sender| sender < SENDERS)
}

/// A sender's traffic secret.
pub fn secret(sender: usize) -> Vec<u8> {
    vec![0x40 + sender as u8; suite(sender).secret_len()]
}

/// What a sender's packet `number` carries after its header.
pub fn payload_byte(sender: usize, number: u64, i: usize) -> u8 {
    (sender as u8)
        .wrapping_mul(7)
        .wrapping_add((number as u8).wrapping_mul(31))
        .wrapping_add(i as u8)
}

/// xorshift64*: the injector's and the senders' fixed sequences.
pub struct Random(pub u64);

impl Random {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A sender's next GSO batch: a segment size drawn from `random` (60 to 1259 bytes on the
/// wire) and [`BATCH`] cleartext packets laid out at that size less the tag, numbered on
/// from `*number`, the key phase flipping every [`KEY_UPDATE_EVERY`].
pub fn cleartext_batch(sender: usize, random: &mut Random, number: &mut u64) -> (usize, Vec<u8>) {
    let size = 60 + (random.next_u64() % 1200) as usize;
    let mut cleartext = Vec::with_capacity(BATCH * size);
    for _ in 0..BATCH {
        *number += 1;
        let header = ShortHeader {
            fixed_bit: true,
            spin: false,
            key_phase: (*number / KEY_UPDATE_EVERY) % 2 == 1,
            dcid: ConnectionId::new(&dcid(sender)).expect("a connection ID"),
            packet_number: TruncatedPacketNumber::new(*number as u32 & 0xffff, 2)
                .expect("a 2-byte packet number"),
        };
        let mut packet = vec![0u8; size - 16];
        let header_len = header.emit(&mut packet).expect("room for the header");
        for (i, byte) in packet[header_len..].iter_mut().enumerate() {
            *byte = payload_byte(sender, *number, i);
        }
        cleartext.extend(packet);
    }
    (size, cleartext)
}

/// The receiver's flow table, full: idle flows, then the senders'.
pub fn receiver_table() -> FlowTable<RxFlow, TABLE> {
    let flow = |suite, secret: &[u8]| {
        RxFlow::from_secret(suite, secret, FlowConfig::new(DCID_LEN)).expect("a flow")
    };
    let id = |bytes: &[u8]| ConnectionId::new(bytes).expect("a connection ID");
    let mut table = FlowTable::new(DCID_LEN).expect("a table");
    for idle in 0..TABLE - SENDERS {
        let mut name = *b"idle-000";
        name[5..].copy_from_slice(format!("{idle:03}").as_bytes());
        let idle_flow = flow(CipherSuite::Aes128GcmSha256, &[idle as u8; 32]);
        table.insert(id(&name), idle_flow).expect("room");
    }
    for sender in 0..SENDERS {
        table
            .insert(id(&dcid(sender)), flow(suite(sender), &secret(sender)))
            .expect("room");
    }
    let one_more = table.insert(
        id(b"one-more"),
        flow(CipherSuite::Aes128GcmSha256, &[0; 32]),
    );
    assert_eq!(one_more.err(), Some(Error::TableFull), "the table is full");
    table
}

/// What the injector does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Passes it on.
    None,
    Drop,
    /// Passes it on twice.
    Duplicate,
    /// Holds it back until this many more datagrams were taken (1 to 3).
    Reorder {
        after: u64,
    },
    /// Cuts it to `keep` bytes (never to nothing: an empty datagram is other tests' case).
    Truncate {
        keep: usize,
    },
    /// Flips one bit.
    Corrupt {
        at: usize,
        bit: u8,
    },
}

impl Fault {
    /// The fault for a datagram of `len` bytes (at least 2), at the rates above.
    pub fn roll(random: &mut Random, len: usize) -> Fault {
        let roll = random.next_u64() % 100;
        let mut threshold = 0;
        let mut under = |rate| {
            threshold += rate;
            roll < threshold
        };
        if under(DROP) {
            Fault::Drop
        } else if under(DUPLICATE) {
            Fault::Duplicate
        } else if under(REORDER) {
            Fault::Reorder {
                after: 1 + random.next_u64() % 3,
            }
        } else if under(TRUNCATE) {
            Fault::Truncate {
                keep: 1 + (random.next_u64() % (len as u64 - 1)) as usize,
            }
        } else if under(CORRUPT) {
            let at = (random.next_u64() % len as u64) as usize;
            Fault::Corrupt {
                at,
                bit: (random.next_u64() % 8) as u8,
            }
        } else {
            Fault::None
        }
    }

    /// Damages `datagram` as a truncation or corruption does; other faults leave it be.
    pub fn damage(self, datagram: &mut Vec<u8>) {
        match self {
            Fault::Truncate { keep } => datagram.truncate(keep),
            Fault::Corrupt { at, bit } => datagram[at] ^= 1 << bit,
            _ => {}
        }
    }
}

/// What the injector did.
#[derive(Debug, Default)]
pub struct Faults {
    pub taken: u64,
    /// Datagrams handed on, copies and damaged ones included.
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub truncated: u64,
    pub corrupted: u64,
}

impl Faults {
    /// Counts a datagram taken and what befell it.
    pub fn count(&mut self, fault: Fault) {
        self.taken += 1;
        match fault {
            Fault::None => {}
            Fault::Drop => self.dropped += 1,
            Fault::Duplicate => self.duplicated += 1,
            Fault::Reorder { .. } => self.reordered += 1,
            Fault::Truncate { .. } => self.truncated += 1,
            Fault::Corrupt { .. } => self.corrupted += 1,
        }
    }

    /// Damaged datagrams handed on.
    pub fn damaged(&self) -> u64 {
        self.truncated + self.corrupted
    }

    /// What a run's injector must show: every datagram taken, and each fault at least once.
    pub fn check(&self) {
        assert_eq!(self.taken, SENT);
        assert!(self.dropped > 0 && self.duplicated > 0 && self.reordered > 0);
        assert!(self.truncated > 0 && self.corrupted > 0);
    }
}
