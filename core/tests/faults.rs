//! Load with faults: several sender threads seal GSO batches of varying sizes, each flow
//! updating its keys as it goes, and one receiver thread opens them as GRO batches through a
//! full flow table, while an injector thread between them drops, duplicates, reorders,
//! truncates and corrupts datagrams (the fault rates below, from a fixed seed).
//!
//! What must hold: every datagram that arrives intact opens, once per copy, to its sender's
//! bytes under its packet number (a duplicate opens again: catching replays is the QUIC
//! stack's job, docs/architecture.md); every damaged one is refused, or passed through
//! untouched when the damage made it look like a long-header packet (a receiver hands those
//! to the stack as they came); and the flow table's counters add up to what was seen.
//! `cargo test -p quicseal --test faults -- --nocapture` prints the run's numbers.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, Outcome, RxFlow, TxFlow};

const SENDERS: usize = 4;
/// GSO batches each sender seals, and datagrams in each.
const BATCHES: u64 = 200;
const BATCH: usize = 8;
/// A sender flips its key phase every this many packets.
const KEY_UPDATE_EVERY: u64 = 50;
/// The receiver's flow table: this many flows, all but the senders' idle.
const TABLE: usize = 64;
/// Most datagrams in one GRO batch the receiver opens.
const GRO_BATCH: usize = 16;
/// Fault rates, in percent of the datagrams the injector takes.
const DROP: u64 = 4;
const DUPLICATE: u64 = 4;
const REORDER: u64 = 4;
const TRUNCATE: u64 = 3;
const CORRUPT: u64 = 3;

const SUITES: [CipherSuite; 3] = CipherSuite::ALL;

fn dcid(sender: usize) -> [u8; 8] {
    let mut id = *b"sender-0";
    id[7] = b'0' + sender as u8;
    id
}

fn secret(sender: usize) -> Vec<u8> {
    vec![0x40 + sender as u8; SUITES[sender % 3].secret_len()]
}

/// What a sender's packet `number` carries after its header.
fn payload_byte(sender: usize, number: u64, i: usize) -> u8 {
    (sender as u8)
        .wrapping_mul(7)
        .wrapping_add((number as u8).wrapping_mul(31))
        .wrapping_add(i as u8)
}

/// xorshift64*: the injector's fixed sequence.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A datagram on the wire, and what the test knows of it.
struct Datagram {
    bytes: Vec<u8>,
    fate: Fate,
}

#[derive(Clone, Copy, Debug)]
enum Fate {
    Intact { sender: usize, number: u64 },
    Damaged,
}

/// Seals `BATCHES` GSO batches of one sender, a random datagram size each.
fn send(sender: usize, to_injector: mpsc::Sender<Datagram>) {
    let suite = SUITES[sender % 3];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret(sender), FlowConfig::new(8)).unwrap();
    let mut random = Random(0x5eed + sender as u64);
    let mut number = 0u64;
    for _ in 0..BATCHES {
        let size = 60 + (random.next() % 1200) as usize;
        let stride = size - 16;
        let mut cleartext = Vec::new();
        let mut numbers = Vec::new();
        for _ in 0..BATCH {
            number += 1;
            let header = ShortHeader {
                fixed_bit: true,
                spin: false,
                key_phase: (number / KEY_UPDATE_EVERY) % 2 == 1,
                dcid: ConnectionId::new(&dcid(sender)).unwrap(),
                packet_number: TruncatedPacketNumber::new(number as u32 & 0xffff, 2).unwrap(),
            };
            let mut packet = vec![0u8; stride];
            let header_len = header.emit(&mut packet).unwrap();
            for (i, byte) in packet[header_len..].iter_mut().enumerate() {
                *byte = payload_byte(sender, number, i);
            }
            cleartext.extend(packet);
            numbers.push(number);
        }
        let mut out = vec![0u8; BATCH * size];
        let mut results = [Err(Error::Malformed); BATCH];
        let batch = tx
            .seal_gso(&[&cleartext], size, &mut [&mut out], &mut results)
            .unwrap();
        assert_eq!(batch.ok, BATCH, "{results:?}");
        for (bytes, number) in out.chunks(size).zip(numbers) {
            let fate = Fate::Intact { sender, number };
            let datagram = Datagram {
                bytes: bytes.to_vec(),
                fate,
            };
            if to_injector.send(datagram).is_err() {
                return;
            }
        }
    }
}

/// What the injector did.
#[derive(Debug, Default)]
struct Faults {
    taken: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
    truncated: u64,
    corrupted: u64,
}

/// Takes the senders' datagrams, damages some, and hands the rest to the receiver in GRO
/// batches: runs of one size, the last maybe shorter.
fn inject(
    from_senders: mpsc::Receiver<Datagram>,
    to_receiver: mpsc::Sender<Vec<Datagram>>,
) -> Faults {
    let mut random = Random(0xfa17_5eed);
    let mut faults = Faults::default();
    let mut held: VecDeque<(u64, Datagram)> = VecDeque::new();
    let mut batch: Vec<Datagram> = Vec::new();
    let flush = |batch: &mut Vec<Datagram>| {
        if !batch.is_empty() {
            let _ = to_receiver.send(std::mem::take(batch));
        }
    };
    let emit = |datagram: Datagram, batch: &mut Vec<Datagram>| {
        // A GRO batch: datagrams of the first one's size, the last maybe shorter.
        let fits = batch.first().is_some_and(|first| {
            batch.len() < GRO_BATCH
                && batch
                    .last()
                    .is_some_and(|last| last.bytes.len() == first.bytes.len())
                && datagram.bytes.len() <= first.bytes.len()
                && !datagram.bytes.is_empty()
        });
        if !fits {
            flush(batch);
        }
        batch.push(datagram);
    };
    for (index, mut datagram) in from_senders.into_iter().enumerate() {
        faults.taken += 1;
        let index = index as u64;
        let roll = random.next() % 100;
        let mut roll_under = {
            let mut threshold = 0;
            move |rate| {
                threshold += rate;
                roll < threshold
            }
        };
        if roll_under(DROP) {
            faults.dropped += 1;
        } else if roll_under(DUPLICATE) {
            faults.duplicated += 1;
            let copy = Datagram {
                bytes: datagram.bytes.clone(),
                fate: datagram.fate,
            };
            emit(copy, &mut batch);
            emit(datagram, &mut batch);
        } else if roll_under(REORDER) {
            faults.reordered += 1;
            held.push_back((index + 1 + random.next() % 3, datagram));
        } else if roll_under(TRUNCATE) {
            faults.truncated += 1;
            let len = datagram.bytes.len();
            datagram
                .bytes
                .truncate((random.next() % len as u64) as usize);
            datagram.fate = Fate::Damaged;
            emit(datagram, &mut batch);
        } else if roll_under(CORRUPT) {
            faults.corrupted += 1;
            let at = (random.next() % datagram.bytes.len() as u64) as usize;
            datagram.bytes[at] ^= 1 << (random.next() % 8);
            datagram.fate = Fate::Damaged;
            emit(datagram, &mut batch);
        } else {
            emit(datagram, &mut batch);
        }
        while held.front().is_some_and(|(due, _)| *due <= index) {
            let (_, late) = held.pop_front().unwrap();
            emit(late, &mut batch);
        }
    }
    for (_, late) in held {
        emit(late, &mut batch);
    }
    flush(&mut batch);
    faults
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    batches: u64,
    intact: u64,
    opened: u64,
    damaged: u64,
    refused: u64,
    passed_through: u64,
}

/// Opens the injector's GRO batches through a flow table full of flows, the senders' among
/// them, and checks each datagram against what the test knows of it.
fn receive(from_injector: mpsc::Receiver<Vec<Datagram>>) -> (Seen, quicseal::Counters, u64) {
    let mut table: FlowTable<RxFlow, TABLE> = FlowTable::new(8).unwrap();
    for idle in 0..TABLE - SENDERS {
        let mut id = *b"idle-000";
        id[5..].copy_from_slice(format!("{idle:03}").as_bytes());
        let flow = RxFlow::from_secret(SUITES[0], &[idle as u8; 32], FlowConfig::new(8)).unwrap();
        table.insert(ConnectionId::new(&id).unwrap(), flow).unwrap();
    }
    for sender in 0..SENDERS {
        let flow =
            RxFlow::from_secret(SUITES[sender % 3], &secret(sender), FlowConfig::new(8)).unwrap();
        table
            .insert(ConnectionId::new(&dcid(sender)).unwrap(), flow)
            .unwrap();
    }
    assert_eq!(
        table
            .insert(ConnectionId::new(b"one-more").unwrap(), {
                RxFlow::from_secret(SUITES[0], &[0; 32], FlowConfig::new(8)).unwrap()
            })
            .err(),
        Some(Error::TableFull),
        "the table is full"
    );

    let mut seen = Seen::default();
    let mut results: [Outcome; GRO_BATCH] = [Err(Error::Malformed); GRO_BATCH];
    for batch in from_injector {
        seen.batches += 1;
        let segment_size = batch[0].bytes.len();
        let mut buffer: Vec<u8> = batch.iter().flat_map(|d| d.bytes.iter().copied()).collect();
        let opened = table
            .open_gro(&mut buffer, segment_size, &mut results)
            .unwrap();
        assert_eq!(opened.datagrams, batch.len());
        for (i, (datagram, outcome)) in batch.iter().zip(&results).enumerate() {
            let at = i * segment_size;
            match (datagram.fate, outcome) {
                (Fate::Intact { sender, number }, Ok(done)) => {
                    seen.intact += 1;
                    seen.opened += 1;
                    let packet = done.packet.expect("a short-header packet");
                    assert_eq!(packet.number, number, "sender {sender}");
                    let payload = &buffer[at + packet.header_len..][..packet.payload_len];
                    for (j, &byte) in payload.iter().enumerate() {
                        assert_eq!(
                            byte,
                            payload_byte(sender, number, j),
                            "sender {sender} packet {number} byte {j}"
                        );
                    }
                }
                (Fate::Intact { sender, number }, Err(error)) => {
                    panic!(
                        "sender {sender}'s packet {number} arrived intact and was refused: {error:?}"
                    )
                }
                (Fate::Damaged, Err(_)) => {
                    seen.damaged += 1;
                    seen.refused += 1;
                }
                (Fate::Damaged, Ok(done)) => {
                    assert!(done.packet.is_none(), "a damaged datagram opened: {done:?}");
                    assert_eq!(
                        &buffer[at..at + done.len],
                        &datagram.bytes[..],
                        "passed through untouched"
                    );
                    seen.damaged += 1;
                    seen.passed_through += 1;
                }
            }
        }
    }
    (seen, table.totals(), table.unroutable())
}

#[test]
fn datagrams_survive_a_faulty_path_under_load() {
    let (to_injector, from_senders) = mpsc::channel();
    let (to_receiver, from_injector) = mpsc::channel();
    let receiver = thread::spawn(move || receive(from_injector));
    let injector = thread::spawn(move || inject(from_senders, to_receiver));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let to_injector = to_injector.clone();
            thread::spawn(move || send(sender, to_injector))
        })
        .collect();
    drop(to_injector);
    for sender in senders {
        sender.join().unwrap();
    }
    let faults = injector.join().unwrap();
    let (seen, counters, unroutable) = receiver.join().unwrap();
    eprintln!("{faults:?}\n{seen:?}\n{counters:?}\nunroutable: {unroutable}");

    let sent = SENDERS as u64 * BATCHES * BATCH as u64;
    assert_eq!(faults.taken, sent);
    assert_eq!(
        seen.intact,
        sent - faults.dropped + faults.duplicated - faults.truncated - faults.corrupted
    );
    assert_eq!(seen.damaged, faults.truncated + faults.corrupted);
    assert_eq!(counters.opened, seen.opened);
    assert_eq!(counters.passed_through, seen.passed_through);
    // Each refused datagram lands in exactly one counter: a flow's, or the table's own for
    // one whose connection ID it does not know.
    assert_eq!(counters.dropped() + unroutable, seen.refused);
    assert!(faults.dropped > 0 && faults.duplicated > 0 && faults.reordered > 0);
    assert!(faults.truncated > 0 && faults.corrupted > 0);
    assert!(
        counters.key_updates >= SENDERS as u64,
        "every flow updated its keys"
    );
}
