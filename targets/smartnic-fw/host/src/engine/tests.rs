use std::fmt::Debug;

use quicseal::backend::{Auto, Portable};
use quicseal::engine::Inline;
use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};

use super::*;
use crate::HostEngine;
use crate::tests::ResetEachTime;

const DCID: [u8; 8] = [0xd5; 8];
const GSO_SIZE: usize = 200;
const DATAGRAMS: usize = 5;

/// A Handshake packet (version 1) of 37 bytes, to travel in front of a 1-RTT packet.
fn handshake_packet() -> Vec<u8> {
    let mut bytes = vec![0xe1, 0, 0, 0, 1, DCID.len() as u8];
    bytes.extend(DCID);
    // No source connection ID; a Length of 20 (a two-byte varint), then those 20 bytes.
    bytes.extend([0, 0x40, 20]);
    bytes.extend([0x77; 20]);
    bytes
}

/// Batch `batch`'s cleartext: `DATAGRAMS` datagrams of `GSO_SIZE` bytes on the wire (the
/// last shorter), short headers with a 2-byte packet number and `key_phase`, the second
/// datagram with a Handshake packet in front of its 1-RTT packet.
fn cleartext(batch: u64, key_phase: bool) -> Vec<u8> {
    let stride = GSO_SIZE - TAG_LEN;
    let mut bytes = Vec::new();
    for i in 0..DATAGRAMS as u64 {
        let number = batch * DATAGRAMS as u64 + i;
        let mut datagram = if i == 1 {
            handshake_packet()
        } else {
            Vec::new()
        };
        // Packet numbers of 1 to 4 bytes, datagram by datagram.
        let pn_len = (i % 4) as usize + 1;
        datagram.push(0x40 | (u8::from(key_phase) << 2) | (pn_len as u8 - 1));
        datagram.extend(DCID);
        datagram.extend(&number.to_be_bytes()[8 - pn_len..]);
        let len = if i + 1 == DATAGRAMS as u64 {
            stride - 60
        } else {
            stride
        };
        datagram.resize(len, number as u8 ^ 0x3c);
        bytes.extend(datagram);
    }
    bytes
}

/// What a job left: each datagram's outcome, and the bytes of those that succeeded.
type Record = Vec<(Outcome, Vec<u8>)>;

fn record(bytes: &[u8], stride: usize, outcomes: &[Outcome]) -> Record {
    outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| {
            let kept = outcome.map_or(Vec::new(), |datagram| {
                bytes[i * stride..i * stride + datagram.len].to_vec()
            });
            (*outcome, kept)
        })
        .collect()
}

/// What a stack does with an engine: three GSO batches sealed, the last after a key update,
/// each opened as a GRO batch with the next batch's seal (the second with a datagram
/// forged); then a batch whose `gso_size` leaves no room and one with too few outcome slots.
fn traffic<E: Engine>(engine: &mut E, tx: &mut E::Tx, rx: &mut E::Rx) -> Vec<Record>
where
    E::Error: Debug,
{
    let mut records = Vec::new();
    // First a datagram of a Handshake packet alone: sealed and opened untouched, it has no
    // packet number, and the flows' first 1-RTT packet after it is still number 0.
    let mut lone = handshake_packet();
    // Room for a tag it will not get: the layout of a batch of one.
    let mut wire = vec![0; lone.len() + TAG_LEN];
    let mut outcomes = [Err(Error::InvalidConfig); 2];
    let [seal_outcome, open_outcome] = &mut outcomes;
    let mut jobs = engine.batch();
    let job = Seal {
        cleartext: &lone,
        gso_size: GSO_SIZE,
        wire: &mut wire,
        outcomes: core::slice::from_mut(seal_outcome),
    };
    jobs.seal(tx, job).expect("posted");
    jobs.complete().expect("completed");
    assert_eq!(wire[..lone.len()], lone);
    let mut jobs = engine.batch();
    let job = Open {
        datagrams: &mut lone,
        segment_size: GSO_SIZE,
        outcomes: core::slice::from_mut(open_outcome),
    };
    jobs.open(rx, job).expect("posted");
    jobs.complete().expect("completed");
    records.push(outcomes.map(|outcome| (outcome, Vec::new())).to_vec());
    let mut sealed: Option<Vec<u8>> = None;
    for batch in 0..4 {
        let cleartext = cleartext(batch, batch == 2);
        let mut wire = vec![0; cleartext.len() + DATAGRAMS * TAG_LEN];
        let mut seal_outcomes = [Err(Error::Malformed); DATAGRAMS];
        let mut open_outcomes = [Err(Error::Malformed); DATAGRAMS];
        let mut jobs = engine.batch();
        if let Some(datagrams) = sealed.as_mut() {
            if batch == 2 {
                datagrams[GSO_SIZE + 100] ^= 1;
            }
            let job = Open {
                datagrams,
                segment_size: GSO_SIZE,
                outcomes: &mut open_outcomes,
            };
            jobs.open(rx, job).expect("posted");
        }
        if batch < 3 {
            let job = Seal {
                cleartext: &cleartext,
                gso_size: GSO_SIZE,
                wire: &mut wire,
                outcomes: &mut seal_outcomes,
            };
            jobs.seal(tx, job).expect("posted");
        }
        jobs.complete().expect("completed");
        if let Some(datagrams) = sealed.take() {
            records.push(record(&datagrams, GSO_SIZE, &open_outcomes));
        }
        if batch < 3 {
            records.push(record(&wire, GSO_SIZE, &seal_outcomes));
            sealed = Some(wire);
        }
    }
    // Jobs refused whole when posted (their buffers stay lent to the batch all the same).
    let cleartext = cleartext(5, true);
    for (gso_size, slots) in [(40, DATAGRAMS), (GSO_SIZE, DATAGRAMS - 1)] {
        let mut wire = vec![0; 2 * cleartext.len()];
        let mut outcomes = [Err(Error::Malformed); DATAGRAMS];
        let mut jobs = engine.batch();
        let job = Seal {
            cleartext: &cleartext,
            gso_size,
            wire: &mut wire,
            outcomes: &mut outcomes[..slots],
        };
        let refused = jobs.seal(tx, job).expect_err("refused");
        jobs.complete().expect("completed");
        assert!(
            outcomes.iter().all(|o| *o == Err(Error::Malformed)),
            "untouched"
        );
        records.push(vec![(Err(refused), Vec::new())]);
    }
    // Nothing to seal, and an empty datagram to open (malformed, as from the network).
    let mut outcomes = [Err(Error::InvalidConfig); 2];
    let (seal_outcome, open_outcome) = outcomes.split_at_mut(1);
    let mut jobs = engine.batch();
    let job = Seal {
        cleartext: &[],
        gso_size: GSO_SIZE,
        wire: &mut [],
        outcomes: seal_outcome,
    };
    jobs.seal(tx, job).expect("posted");
    let job = Open {
        datagrams: &mut [],
        segment_size: GSO_SIZE,
        outcomes: open_outcome,
    };
    jobs.open(rx, job).expect("posted");
    jobs.complete().expect("completed");
    records.push(outcomes.map(|outcome| (outcome, Vec::new())).to_vec());
    records
}

fn on_the_cpu<B: quicseal::backend::Backend>(suite: CipherSuite, secret: &[u8]) -> Vec<Record> {
    let config = FlowConfig::new(DCID.len());
    let mut tx: TxFlow<B> = TxFlow::from_secret(suite, secret, config).expect("keys");
    let mut rx: RxFlow<B> = RxFlow::from_secret(suite, secret, config).expect("keys");
    traffic(&mut Inline::<B>::default(), &mut tx, &mut rx)
}

fn on_the_nic<D: Doorbell>(doorbell: D, suite: CipherSuite, secret: &[u8]) -> Vec<Record> {
    let mut nic = Offload::new(doorbell);
    let dcid_len = DCID.len() as u8;
    let mut tx = nic.connection(suite, secret, dcid_len, false).expect("tx");
    let mut rx = nic.connection(suite, secret, dcid_len, true).expect("rx");
    traffic(&mut nic, &mut tx, &mut rx)
}

#[test]
fn a_stack_on_the_engine_seam_gets_the_same_from_the_nic_as_from_the_cpu() {
    for suite in CipherSuite::ALL {
        let secret = vec![0x29; suite.secret_len()];
        let cpu = on_the_cpu::<Auto>(suite, &secret);
        // The traffic did what it says, so that agreeing means something. A Handshake
        // datagram; seal, open, seal, open (forged), seal (key update), open; two refusals;
        // empties.
        assert_eq!(cpu.len(), 10);
        let lone = [cpu[0][0].0, cpu[0][1].0].map(|o| o.expect("passed through"));
        assert!(
            lone.iter()
                .all(|d| d.packet.is_none() && d.passthrough_len == d.len)
        );
        let jobs = &cpu[1..];
        let done = [&jobs[0], &jobs[1], &jobs[2], &jobs[4], &jobs[5]];
        assert!(done.iter().all(|job| job.iter().all(|(o, _)| o.is_ok())));
        let first = jobs[0][0].0.expect("sealed").packet.expect("1-RTT");
        assert_eq!(first.number, 0);
        let handshake = jobs[0][1].0.expect("sealed");
        assert_eq!(handshake.passthrough_len, handshake_packet().len());
        for updated in [jobs[4][0].0, jobs[5][0].0] {
            let packet = updated.expect("protected").packet.expect("1-RTT");
            assert!(packet.key_update && packet.generation == 1);
        }
        let forged: Vec<_> = jobs[3].iter().map(|(o, _)| o.err()).collect();
        assert_eq!(forged[1], Some(Error::AuthFailed), "{forged:?}");
        assert_eq!(forged.iter().flatten().count(), 1);
        let refused = [jobs[6][0].0, jobs[7][0].0];
        assert_eq!(
            refused,
            [Err(Error::GsoSizeTooSmall), Err(Error::BufferTooSmall)]
        );
        let empties = [jobs[8][0].0, jobs[8][1].0];
        assert_eq!(empties, [Err(Error::InvalidConfig), Err(Error::Malformed)]);

        assert_eq!(on_the_cpu::<Portable>(suite, &secret), cpu, "{suite:?}");
        let nic = on_the_nic(HostEngine::default(), suite, &secret);
        assert_eq!(nic, cpu, "{suite:?}");
        assert_eq!(on_the_nic(ResetEachTime, suite, &secret), cpu, "{suite:?}");
    }
}

#[test]
fn flows_of_the_wrong_direction_or_of_another_nic_are_refused() {
    let suite = CipherSuite::Aes128GcmSha256;
    let mut nic = Offload::new(HostEngine::default());
    let mut rx = nic.connection(suite, &[1; 32], 8, true).expect("rx");
    let mut unknown = Connection(7);
    let cleartext = cleartext(0, false);
    let mut buffers = [(); 3].map(|()| {
        let wire = vec![0; cleartext.len() + DATAGRAMS * TAG_LEN];
        (wire, [Err(Error::Malformed); DATAGRAMS])
    });
    let [first, second, third] = &mut buffers;
    let mut jobs = nic.batch();
    for (flow, (wire, outcomes)) in [(&mut rx, first), (&mut unknown, second)] {
        let job = Seal {
            cleartext: &cleartext,
            gso_size: GSO_SIZE,
            wire,
            outcomes,
        };
        assert_eq!(jobs.seal(flow, job), Err(Error::InvalidConfig));
    }
    let job = Open {
        datagrams: &mut third.0,
        segment_size: GSO_SIZE,
        outcomes: &mut third.1,
    };
    assert_eq!(jobs.open(&mut unknown, job), Err(Error::InvalidConfig));
    jobs.complete().expect("nothing to complete");
}
