//! `flow_table`: input-chosen inserts, removals and routed datagrams on a small flow table,
//! held to a model (a map from connection ID to what each flow should have counted).
//!
//! Input: a DCID-length byte (`% 21`), then steps until the input ends: an operation byte, a
//! connection-ID byte (`% 6`: one of six IDs, the fifth one byte short, the sixth arbitrary
//! bytes from the input) and, for datagrams, a length byte.
//! - `% 4` = 0: insert a receiving flow under the ID (a fresh one: replacing drops the old
//!   flow, whose counters stay in the totals); 1: remove the ID;
//! - 2: route a packet sealed for the ID by its own sender (a valid packet, `length` bytes of
//!   payload); 3: route the same packet with its tag broken.
//!
//! Properties: the table never holds more than its capacity, refuses an insert when full
//! (`TableFull`) or of an ID of the wrong length (`InvalidConfig`) and otherwise holds what
//! the model holds; a datagram for an ID not in the table is `UnknownConnectionId` and counted
//! unroutable; one for an ID in it opens when valid and fails authentication when forged, in
//! that flow; the totals, removed flows included, add up to the model's. A second table with
//! the same flows gets the same datagrams in bursts (`open_each_in_place`, up to 40 at a
//! time, each burst before the next insert or removal) and must give each the outcome and
//! the bytes the first gave it one at a time, and end with the same totals.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, Outcome, RxFlow, TxFlow};
use quicseal_fuzz::Input;

const CAPACITY: usize = 4;
const SUITE: CipherSuite = CipherSuite::ChaCha20Poly1305Sha256;
const TAG_LEN: usize = 16;
const MAX_STEPS: usize = 300;
/// Most datagrams the burst table is given at once.
const MAX_BURST: usize = 40;

type Table = FlowTable<RxFlow, CAPACITY>;

/// A datagram as received, with what opening it one at a time gave: the outcome and the bytes.
struct Opened {
    received: Vec<u8>,
    outcome: Outcome,
    bytes: Vec<u8>,
}

/// Opens `datagram` in `table` and queues it, as received, for the burst table.
fn open(table: &mut Table, pending: &mut Vec<Opened>, datagram: &mut [u8]) -> Outcome {
    let received = datagram.to_vec();
    let outcome = table.open_in_place(datagram);
    pending.push(Opened {
        received,
        outcome,
        bytes: datagram.to_vec(),
    });
    outcome
}

/// Opens the queued datagrams in `bursts` with one call: each as it opened one at a time.
fn flush(bursts: &mut Table, pending: &mut Vec<Opened>) {
    let mut datagrams: Vec<Vec<u8>> = pending.iter().map(|p| p.received.clone()).collect();
    let mut burst: Vec<&mut [u8]> = datagrams.iter_mut().map(|d| d.as_mut_slice()).collect();
    let mut results = vec![Err(Error::Malformed); burst.len()];
    let batch = bursts
        .open_each_in_place(&mut burst, &mut results)
        .expect("an outcome for each");
    assert_eq!(batch.datagrams, pending.len());
    for ((opened, result), bytes) in pending.iter().zip(&results).zip(&datagrams) {
        assert_eq!(*result, opened.outcome);
        assert_eq!(*bytes, opened.bytes);
    }
    pending.clear();
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let dcid_len = usize::from(input.byte()) % 21;
    let mut table: Table = FlowTable::new(dcid_len).expect("at most 20");
    let mut bursts: Table = FlowTable::new(dcid_len).expect("at most 20");
    let mut pending = Vec::new();
    // The model: the IDs in the table, each with the last packet number its sender sealed.
    let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut senders: HashMap<Vec<u8>, TxFlow> = HashMap::new();
    let (mut opened, mut auth_failures, mut unroutable) = (0u64, 0u64, 0u64);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let operation = input.byte() % 4;
        let id: Vec<u8> = match input.byte() % 6 {
            n @ 0..=3 => vec![b'a' + n; dcid_len],
            4 => vec![b'z'; dcid_len.saturating_sub(1)],
            _ => {
                let mut id = input.bytes(dcid_len).to_vec();
                id.resize(dcid_len, 0);
                id
            }
        };
        let cid = ConnectionId::new(&id).expect("at most 20 bytes");
        // Each ID has its own secret, so a packet routed to the wrong flow cannot open.
        let secret: Vec<u8> = (0..32)
            .map(|i| id.first().copied().unwrap_or(0) ^ i)
            .collect();
        let config = FlowConfig::new(dcid_len);
        if operation < 2 || pending.len() >= MAX_BURST {
            flush(&mut bursts, &mut pending);
        }
        match operation {
            0 => {
                let flow = RxFlow::from_secret(SUITE, &secret, config).expect("valid");
                let full = table.len() == CAPACITY && !model.contains_key(&id);
                let twin = RxFlow::from_secret(SUITE, &secret, config).expect("valid");
                let inserted = table.insert(cid, flow);
                assert_eq!(
                    bursts.insert(cid, twin).map(|replaced| replaced.is_some()),
                    inserted.as_ref().map(Option::is_some).map_err(|error| *error)
                );
                match inserted {
                    Ok(replaced) => {
                        assert!(!full && id.len() == dcid_len);
                        assert_eq!(replaced.is_some(), model.contains_key(&id));
                        model.insert(id.clone(), 0);
                        senders.insert(
                            id,
                            TxFlow::from_secret(SUITE, &secret, config).expect("valid"),
                        );
                    }
                    Err(Error::InvalidConfig) => assert_ne!(id.len(), dcid_len),
                    Err(Error::TableFull) => assert!(full),
                    Err(error) => panic!("insert refused with {error:?}"),
                }
            }
            1 => {
                let removed = table.remove(&cid);
                assert_eq!(removed.is_some(), model.remove(&id).is_some());
                assert_eq!(bursts.remove(&cid).is_some(), removed.is_some());
                senders.remove(&id);
            }
            _ => {
                let length = usize::from(input.byte()) + 4;
                let Some(sender) = senders.get_mut(&id) else {
                    // No flow under the ID: a datagram naming it is unroutable (unless the
                    // short ID, padded, names one that is there).
                    let mut datagram = vec![0x40u8; 1 + dcid_len + 2 + length + TAG_LEN];
                    datagram[1..1 + id.len()].copy_from_slice(&id);
                    if model.contains_key(&datagram[1..1 + dcid_len]) {
                        continue;
                    }
                    assert_eq!(
                        open(&mut table, &mut pending, &mut datagram),
                        Err(Error::UnknownConnectionId)
                    );
                    unroutable += 1;
                    continue;
                };
                let number = model.get(&id).copied().expect("a sender has a flow") + 1;
                let header = ShortHeader {
                    fixed_bit: true,
                    spin: false,
                    key_phase: false,
                    dcid: cid,
                    packet_number: TruncatedPacketNumber::new(number as u32 & 0xffff, 2)
                        .expect("fits"),
                };
                let mut cleartext = vec![0u8; header.len() + length];
                let _ = header.emit(&mut cleartext).expect("fits");
                let mut datagram = vec![0u8; cleartext.len() + TAG_LEN];
                let sealed = sender
                    .seal(&[&cleartext], &mut [&mut datagram])
                    .expect("a valid packet seals");
                assert_eq!(sealed.packet.map(|p| p.number), Some(number));
                model.insert(id, number);
                if operation == 3 {
                    *datagram.last_mut().expect("a tag") ^= 1;
                    assert_eq!(
                        open(&mut table, &mut pending, &mut datagram),
                        Err(Error::AuthFailed)
                    );
                    auth_failures += 1;
                } else {
                    let done = open(&mut table, &mut pending, &mut datagram)
                        .expect("a valid packet opens");
                    assert_eq!(done.packet.map(|p| p.number), Some(number));
                    assert_eq!(&datagram[..done.len], &cleartext[..]);
                    opened += 1;
                }
            }
        }
        assert!(table.len() <= CAPACITY);
        assert_eq!(table.len(), model.len());
        for id in model.keys() {
            assert!(table.get(&ConnectionId::new(id).expect("valid")).is_some());
        }
    }
    let totals = table.totals();
    assert_eq!(
        (totals.opened, totals.auth_failures, table.unroutable()),
        (opened, auth_failures, unroutable)
    );
    flush(&mut bursts, &mut pending);
    assert_eq!(bursts.totals(), totals);
    assert_eq!(bursts.unroutable(), unroutable);
});
