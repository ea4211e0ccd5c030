//! `key_updates`: an input-chosen sequence of sends and deliveries between a sending and a
//! receiving flow, with key updates, gaps in packet numbers, reordering, duplicates, losses,
//! forgeries, key-management calls and both sides' limits.
//!
//! Input: suite byte (`% 3`), confidentiality limit byte and integrity limit byte (0: the
//! suite's own, else that many), then steps of two bytes until the input ends: an operation
//! byte and an argument byte.
//! - `% 8` = 0, 1, 2: seal a packet, its number `argument % 4 + 1` above the last one, its key
//!   phase flipped when `argument & 0x80`, and queue it;
//! - 3: deliver the oldest queued packet; 4: deliver the newest (reordering);
//! - 5: deliver a copy of the packet `argument` places from the oldest (a duplicate), or
//!   drop it when `argument & 0x80`;
//! - 6: deliver a forgery of the oldest (one bit flipped where `argument` says);
//! - 7: on the receiver, `prepare_next_keys` (`argument % 3` = 0), `retire_previous_keys` (1)
//!   or nothing (2).
//!
//! Properties: nothing panics; a seal fails only with the limit or a key not yet derived,
//! and the sender's `sealed` counter counts the ones that did not; a packet the receiver
//! opens opens to the cleartext and number it was sealed with, and a forgery never opens
//! (one whose header-form bit was flipped is passed through untouched, as long-header
//! packets are);
//! while every packet so far was delivered once, in order, unforged, and no limit was set,
//! every one opens; the receiver's counters add up to the deliveries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, Limits, RxFlow, TxFlow};
use quicseal_fuzz::Input;

const DCID: [u8; 4] = *b"keys";
const PAYLOAD: usize = 40;
const TAG_LEN: usize = 16;
/// Most steps taken from one input.
const MAX_STEPS: usize = 400;

/// A sealed packet: its bytes on the wire, its cleartext and its number.
#[derive(Clone)]
struct Sent {
    protected: Vec<u8>,
    cleartext: Vec<u8>,
    number: u64,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let suite = CipherSuite::ALL[usize::from(input.byte()) % 3];
    let (confidentiality, integrity) = (u64::from(input.byte()), u64::from(input.byte()));
    let limited = confidentiality != 0 || integrity != 0;
    let limits = Limits::for_suite(suite);
    let mut config = FlowConfig::new(DCID.len());
    if limited {
        config.limits = Some(Limits {
            confidentiality: if confidentiality == 0 {
                limits.confidentiality
            } else {
                confidentiality
            },
            integrity: if integrity == 0 {
                limits.integrity
            } else {
                integrity
            },
            key_update_margin: 0,
        });
    }
    let secret = vec![0x6b; suite.secret_len()];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).expect("valid");
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).expect("valid");

    let mut queue: std::collections::VecDeque<Sent> = std::collections::VecDeque::new();
    let (mut number, mut key_phase) = (0u64, false);
    let (mut sealed, mut delivered) = (0u64, 0u64);
    // True while every packet was delivered once, in order, unforged.
    let mut orderly = true;
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let (operation, argument) = (input.byte(), input.byte());
        match operation % 8 {
            0..=2 => {
                let next = number + u64::from(argument % 4) + 1;
                let phase = key_phase ^ (argument & 0x80 != 0);
                let header = ShortHeader {
                    fixed_bit: true,
                    spin: false,
                    key_phase: phase,
                    dcid: ConnectionId::new(&DCID).expect("4 bytes"),
                    packet_number: TruncatedPacketNumber::new(next as u32 & 0xffff, 2)
                        .expect("fits"),
                };
                let mut cleartext = vec![0u8; header.len() + PAYLOAD];
                let header_len = header.emit(&mut cleartext).expect("fits");
                for (i, byte) in cleartext[header_len..].iter_mut().enumerate() {
                    *byte = (next as u8).wrapping_add(i as u8);
                }
                let mut protected = vec![0u8; cleartext.len() + TAG_LEN];
                match tx.seal(&[&cleartext], &mut [&mut protected]) {
                    Ok(done) => {
                        assert_eq!(done.packet.map(|p| p.number), Some(next));
                        sealed += 1;
                        number = next;
                        key_phase = phase;
                        queue.push_back(Sent {
                            protected,
                            cleartext,
                            number: next,
                        });
                    }
                    Err(Error::ConfidentialityLimit) => assert!(limited),
                    Err(Error::KeyUnavailable) => assert!(phase != key_phase),
                    Err(error) => panic!("seal refused with {error:?}"),
                }
            }
            3..=5 => {
                let at = match operation % 8 {
                    3 => 0,
                    4 => queue.len().saturating_sub(1),
                    _ => usize::from(argument & 0x7f) % queue.len().max(1),
                };
                let Some(packet) = queue.get(at).cloned() else {
                    continue;
                };
                let duplicate = operation % 8 == 5;
                if duplicate && argument & 0x80 != 0 {
                    // Lost.
                    queue.remove(at);
                    orderly = false;
                    continue;
                }
                if !duplicate {
                    queue.remove(at);
                }
                if at != 0 || duplicate {
                    orderly = false;
                }
                delivered += 1;
                let mut bytes = packet.protected.clone();
                match rx.open_in_place(&mut bytes) {
                    Ok(opened) => {
                        assert_eq!(opened.packet.map(|p| p.number), Some(packet.number));
                        assert_eq!(&bytes[..opened.len], &packet.cleartext[..]);
                    }
                    Err(error) => assert!(
                        !orderly || limited,
                        "packet {} delivered in order refused: {error:?}",
                        packet.number
                    ),
                }
            }
            6 => {
                let Some(packet) = queue.front() else {
                    continue;
                };
                let mut forged = packet.protected.clone();
                let bit = usize::from(argument) % (8 * forged.len());
                forged[bit / 8] ^= 1 << (bit % 8);
                delivered += 1;
                orderly = false;
                // Its first bit flipped, a packet reads as a long-header one, which a
                // receiver passes through untouched; any other forgery is refused.
                if let Ok(opened) = rx.open_in_place(&mut forged) {
                    assert!(opened.packet.is_none(), "a forgery opened: {opened:?}");
                    assert_eq!(bit, 7, "only the header form bit makes a long header");
                }
            }
            _ => match argument % 3 {
                0 => {
                    let _ = rx.prepare_next_keys();
                }
                1 => rx.retire_previous_keys(),
                _ => {}
            },
        }
    }
    let sent = tx.counters();
    assert_eq!(sent.sealed, sealed);
    let received = rx.counters();
    let refused = received.auth_failures
        + received.malformed
        + received.dropped_for_limits
        + received.key_unavailable
        + received.rejected;
    assert_eq!(
        received.opened + refused + received.passed_through,
        delivered,
        "{received:?}"
    );
});
