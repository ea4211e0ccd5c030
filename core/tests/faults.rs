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

use quicseal::{Error, FlowConfig, Outcome, TxFlow};
use quicseal_test_support::{
    BATCH, BATCHES, DCID_LEN, Fault, Faults, Random, SENDERS, SENT, cleartext_batch, payload_byte,
    receiver_table, secret, suite,
};

/// Most datagrams in one GRO batch the receiver opens.
const GRO_BATCH: usize = 16;

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
    let config = FlowConfig::new(DCID_LEN);
    let mut tx: TxFlow = TxFlow::from_secret(suite(sender), &secret(sender), config).unwrap();
    let mut random = Random(0x5eed + sender as u64);
    let mut number = 0u64;
    for _ in 0..BATCHES {
        let first = number + 1;
        let (size, cleartext) = cleartext_batch(sender, &mut random, &mut number);
        let mut out = vec![0u8; BATCH * size];
        let mut results = [Err(Error::Malformed); BATCH];
        let batch = tx
            .seal_gso(&[&cleartext], size, &mut [&mut out], &mut results)
            .unwrap();
        assert_eq!(batch.ok, BATCH, "{results:?}");
        for (bytes, number) in out.chunks(size).zip(first..) {
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
    let emit = |datagram: Datagram, batch: &mut Vec<Datagram>, faults: &mut Faults| {
        faults.forwarded += 1;
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
        let index = index as u64;
        let fault = Fault::roll(&mut random, datagram.bytes.len());
        faults.count(fault);
        match fault {
            Fault::Drop => {}
            Fault::Duplicate => {
                let copy = Datagram {
                    bytes: datagram.bytes.clone(),
                    fate: datagram.fate,
                };
                emit(copy, &mut batch, &mut faults);
                emit(datagram, &mut batch, &mut faults);
            }
            Fault::Reorder { after } => held.push_back((index + after, datagram)),
            Fault::Truncate { .. } | Fault::Corrupt { .. } => {
                fault.damage(&mut datagram.bytes);
                datagram.fate = Fate::Damaged;
                emit(datagram, &mut batch, &mut faults);
            }
            Fault::None => emit(datagram, &mut batch, &mut faults),
        }
        while held.front().is_some_and(|(due, _)| *due <= index) {
            let (_, late) = held.pop_front().unwrap();
            emit(late, &mut batch, &mut faults);
        }
    }
    for (_, late) in held {
        emit(late, &mut batch, &mut faults);
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
    let mut table = receiver_table();

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

    faults.check();
    assert_eq!(
        seen.intact,
        SENT - faults.dropped + faults.duplicated - faults.damaged()
    );
    assert_eq!(seen.damaged, faults.damaged());
    assert_eq!(counters.opened, seen.opened);
    assert_eq!(counters.passed_through, seen.passed_through);
    // Each refused datagram lands in exactly one counter: a flow's, or the table's own for
    // one whose connection ID it does not know.
    assert_eq!(counters.dropped() + unroutable, seen.refused);
    assert!(
        counters.key_updates >= SENDERS as u64,
        "every flow updated its keys"
    );
}
