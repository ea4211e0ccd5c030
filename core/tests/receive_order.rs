//! A receiver opening a datagram in place guesses its packet's header (the last packet's,
//! with the next number) and decrypts the payload before unmasking the header; a wrong guess
//! is undone. Opening by copy guesses nothing. For packets arriving in any order, lost,
//! repeated or tampered with, with packet numbers of changing lengths and across key
//! updates, the two give the same results.

mod common;

use common::suite;
use proptest::prelude::*;
use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};

const DCID: [u8; 8] = [9, 8, 7, 6, 5, 4, 3, 2];

/// One packet the sender sends: its packet number's length, whether the sender updates its
/// keys first (where it can), and its payload's length.
#[derive(Clone, Debug)]
struct Send {
    pn_len: usize,
    update: bool,
    payload_len: usize,
}

fn sends() -> impl Strategy<Value = Vec<Send>> {
    // At least 4 bytes of payload: the header-protection sample must fit.
    let send = (1usize..=4, prop::bool::weighted(0.15), 4usize..1600).prop_map(
        |(pn_len, update, payload_len)| Send {
            pn_len,
            update,
            payload_len,
        },
    );
    prop::collection::vec(send, 1..10)
}

/// The datagrams the sender seals, packet numbers 1, 2, ... in order.
fn sealed(suite: CipherSuite, sends: &[Send]) -> Vec<Vec<u8>> {
    let mut tx: TxFlow =
        TxFlow::from_secret(suite, &[0x5a; 48][..suite.secret_len()], config()).unwrap();
    let mut key_phase = false;
    sends
        .iter()
        .zip(1u64..)
        .map(|(send, number)| {
            if send.update && tx.next_keys_ready() {
                key_phase = !key_phase;
            }
            let header = ShortHeader {
                fixed_bit: true,
                spin: number % 3 == 0,
                key_phase,
                dcid: ConnectionId::new(&DCID).unwrap(),
                packet_number: TruncatedPacketNumber::new(
                    (number & (u64::MAX >> (64 - 8 * send.pn_len))) as u32,
                    send.pn_len,
                )
                .unwrap(),
            };
            let mut cleartext = vec![0u8; header.len()];
            header.emit(&mut cleartext).unwrap();
            cleartext.extend((0..send.payload_len).map(|i| (i as u8) ^ (number as u8)));
            let mut out = vec![0u8; cleartext.len() + 16];
            let _ = tx.seal(&[&cleartext], &mut [&mut out]).unwrap();
            out
        })
        .collect()
}

fn config() -> FlowConfig {
    FlowConfig::new(DCID.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn opening_in_place_agrees_with_opening_by_copy(
        suite in suite(),
        sends in sends(),
        arrivals in prop::collection::vec((any::<prop::sample::Index>(), prop::option::weighted(0.1, any::<prop::sample::Index>())), 1..16),
    ) {
        let datagrams = sealed(suite, &sends);
        let secret = &[0x5a; 48][..suite.secret_len()];
        let mut in_place: RxFlow = RxFlow::from_secret(suite, secret, config()).unwrap();
        let mut by_copy: RxFlow = RxFlow::from_secret(suite, secret, config()).unwrap();
        // In order first, as most packets arrive; then any order, repeats and tampering.
        let in_order = (0..datagrams.len()).map(|i| (i, None));
        let later = arrivals.iter().map(|(which, tamper)| {
            (which.index(datagrams.len()), tamper.map(|bit| bit.index(8 * datagrams[0].len())))
        });
        for (which, tamper) in in_order.chain(later) {
            let mut datagram = datagrams[which].clone();
            if let Some(bit) = tamper.filter(|&bit| bit / 8 < datagram.len()) {
                datagram[bit / 8] ^= 1 << (bit % 8);
            }
            let mut out = vec![0u8; datagram.len()];
            let copied = by_copy.open(&[&datagram], &mut [&mut out]);
            let opened = in_place.open_in_place(&mut datagram);
            prop_assert_eq!(&opened, &copied, "datagram {}", which);
            if let Ok(opened) = opened {
                prop_assert_eq!(&datagram[..opened.len], &out[..opened.len]);
            }
        }
        prop_assert_eq!(in_place.counters(), by_copy.counters());
        prop_assert_eq!(in_place.largest_received(), by_copy.largest_received());
    }
}
