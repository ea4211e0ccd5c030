//! Key update (RFC 9001 §6) and AEAD limits (§6.6) across a sending and a receiving flow.

mod common;

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{
    CipherSuite, Error, FlowConfig, KeyMaterial, Limits, RxFlow, TrafficSecret, TxFlow, Usage,
};

const SUITE: CipherSuite = CipherSuite::Aes128GcmSha256;
const SECRET: [u8; 32] = [0x42; 32];
const DCID: [u8; 4] = [1, 2, 3, 4];

fn config() -> FlowConfig {
    FlowConfig::new(DCID.len())
}

/// A cleartext packet with a 2-byte packet number, the given key phase and a payload.
fn packet(number: u64, key_phase: bool, payload: &[u8]) -> Vec<u8> {
    let header = ShortHeader {
        fixed_bit: true,
        spin: false,
        key_phase,
        dcid: ConnectionId::new(&DCID).unwrap(),
        packet_number: TruncatedPacketNumber::new((number & 0xffff) as u32, 2).unwrap(),
    };
    let mut bytes = vec![0u8; header.len()];
    header.emit(&mut bytes).unwrap();
    bytes.extend_from_slice(payload);
    bytes
}

fn seal(tx: &mut TxFlow, cleartext: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; cleartext.len() + 16];
    let _ = tx.seal(&[cleartext], &mut [&mut out])?;
    Ok(out)
}

/// Opens a copy of `protected`; returns the generation that opened it.
fn open(rx: &mut RxFlow, protected: &[u8]) -> Result<u64, Error> {
    let mut buffer = protected.to_vec();
    Ok(rx.open_in_place(&mut buffer)?.packet.unwrap().generation)
}

#[test]
fn sender_flip_and_receiver_follow() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();

    let p1 = seal(&mut tx, &packet(1, false, b"generation zero")).unwrap();
    let p2 = seal(&mut tx, &packet(2, false, b"late generation zero")).unwrap();
    assert!(tx.next_keys_ready());
    let p3 = seal(&mut tx, &packet(3, true, b"generation one")).unwrap();
    assert_eq!((tx.generation(), tx.counters().key_updates), (1, 1));
    let p4 = seal(&mut tx, &packet(4, true, b"still one")).unwrap();

    assert_eq!(open(&mut rx, &p1), Ok(0));
    assert_eq!(
        open(&mut rx, &p3),
        Ok(1),
        "the new phase promotes the next keys"
    );
    assert!(rx.has_previous_keys());
    assert_eq!(
        open(&mut rx, &p2),
        Ok(0),
        "a late packet opens with the previous keys"
    );
    assert_eq!(open(&mut rx, &p4), Ok(1));
    assert_eq!(
        (
            rx.generation(),
            rx.counters().key_updates,
            rx.counters().opened
        ),
        (1, 1, 4)
    );

    rx.retire_previous_keys();
    let late = seal(
        &mut TxFlow::from_secret(SUITE, &SECRET, config()).unwrap(),
        &packet(2, false, b"x.."),
    )
    .unwrap();
    assert_eq!(
        open(&mut rx, &late),
        Err(Error::AuthFailed),
        "retired keys are gone"
    );
    assert_eq!(
        rx.generation(),
        1,
        "a failed open with next keys promotes nothing"
    );

    // Second update: generation 2 has key phase 0 again.
    let p5 = seal(&mut tx, &packet(5, false, b"generation two")).unwrap();
    assert_eq!(tx.generation(), 2);
    assert_eq!(open(&mut rx, &p5), Ok(2));
}

#[test]
fn the_next_generation_is_derived_off_the_packet_that_updates() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    assert!(
        rx.next_keys_ready(),
        "generation 1 is derived with the flow"
    );
    let p1 = seal(&mut tx, &packet(1, true, b"generation one")).unwrap();
    assert_eq!(open(&mut rx, &p1), Ok(1));
    assert!(
        !rx.next_keys_ready(),
        "the updating packet promoted generation 1 and derived nothing"
    );
    rx.prepare_next_keys().unwrap();
    assert!(rx.next_keys_ready());
    let p2 = seal(&mut tx, &packet(2, false, b"generation two")).unwrap();
    assert_eq!(open(&mut rx, &p2), Ok(2));

    // An owner that never prepares still follows: the keys are derived when the next phase
    // first shows up, before its packet is tried.
    assert!(!rx.next_keys_ready());
    let p3 = seal(&mut tx, &packet(3, true, b"generation three")).unwrap();
    assert_eq!(open(&mut rx, &p3), Ok(3));
    assert_eq!(rx.counters().key_updates, 3);
}

#[test]
fn a_gro_batch_prepares_the_next_generation_once_it_is_opened() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let packets = [
        seal(&mut tx, &packet(1, false, b"zero")).unwrap(),
        seal(&mut tx, &packet(2, true, b"one!")).unwrap(),
    ];
    assert_eq!(packets[0].len(), packets[1].len());
    let mut buffer = packets.concat();
    let mut results = [Err(Error::Malformed); 2];
    let batch = rx
        .open_gro(&mut buffer, packets[0].len(), &mut results)
        .unwrap();
    assert_eq!((batch.ok, rx.generation()), (2, 1));
    assert!(rx.next_keys_ready(), "generation 2 derived after the batch");
}

#[test]
fn forged_packet_in_the_next_phase_promotes_nothing() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    open(
        &mut rx,
        &seal(&mut tx, &packet(1, false, b"hello")).unwrap(),
    )
    .unwrap();
    let mut forged = seal(&mut tx, &packet(2, true, b"update")).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(open(&mut rx, &forged), Err(Error::AuthFailed));
    assert_eq!((rx.generation(), rx.has_previous_keys()), (0, false));
    forged[last] ^= 1;
    assert_eq!(
        open(&mut rx, &forged),
        Ok(1),
        "the genuine packet still updates"
    );
}

#[test]
fn explicit_keys_need_the_next_generation_installed() {
    let secret = TrafficSecret::new(SUITE, &SECRET).unwrap();
    let next = secret.next().key_material();
    let mut tx: TxFlow = TxFlow::from_keys(&secret.key_material(), config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_keys(&secret.key_material(), config()).unwrap();
    assert!(!tx.next_keys_ready());
    assert_eq!(
        seal(&mut tx, &packet(1, true, b"too early")),
        Err(Error::KeyUnavailable)
    );
    assert_eq!(tx.counters().key_unavailable, 1);

    tx.install_next_keys(&next).unwrap();
    let p = seal(&mut tx, &packet(1, true, b"generation one")).unwrap();
    assert_eq!(open(&mut rx, &p), Err(Error::KeyUnavailable));
    rx.install_next_keys(&next).unwrap();
    assert_eq!(open(&mut rx, &p), Ok(1));

    // Same bytes as a flow that derives its keys from the secret.
    let mut derived: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    assert_eq!(
        seal(&mut derived, &packet(1, true, b"generation one")).unwrap(),
        p
    );

    let wrong_suite = KeyMaterial::new(
        CipherSuite::ChaCha20Poly1305Sha256,
        &[0; 32],
        &[0; 12],
        &[0; 32],
    )
    .unwrap();
    assert_eq!(tx.install_next_keys(&wrong_suite), Err(Error::UnknownSuite));
}

#[test]
fn confidentiality_limit_reports_then_refuses() {
    let limits = Limits {
        confidentiality: 4,
        integrity: 100,
        key_update_margin: 2,
    };
    let mut tx: TxFlow = TxFlow::from_secret(
        SUITE,
        &SECRET,
        FlowConfig {
            limits: Some(limits),
            ..config()
        },
    )
    .unwrap();
    seal(&mut tx, &packet(1, false, b"one")).unwrap();
    assert!(!tx.key_update_due());
    seal(&mut tx, &packet(2, false, b"two")).unwrap();
    assert!(tx.key_update_due(), "due 2 packets before the limit");
    seal(&mut tx, &packet(3, false, b"three")).unwrap();
    seal(&mut tx, &packet(4, false, b"four")).unwrap();
    assert_eq!(
        seal(&mut tx, &packet(5, false, b"five")),
        Err(Error::ConfidentialityLimit)
    );
    assert_eq!(tx.counters().dropped_for_limits, 1);
    // A key update resets the count.
    seal(&mut tx, &packet(5, true, b"five")).unwrap();
    assert!(!tx.key_update_due());
    assert_eq!(tx.sealed_in_generation(), 1);
}

#[test]
fn integrity_limit_closes_the_flow() {
    let limits = Limits {
        confidentiality: 100,
        integrity: 3,
        key_update_margin: 0,
    };
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(
        SUITE,
        &SECRET,
        FlowConfig {
            limits: Some(limits),
            ..config()
        },
    )
    .unwrap();
    let good = seal(&mut tx, &packet(1, false, b"genuine")).unwrap();
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 0x80;
    for _ in 0..3 {
        assert_eq!(open(&mut rx, &forged), Err(Error::AuthFailed));
    }
    assert!(rx.integrity_limit_reached());
    assert_eq!(open(&mut rx, &good), Err(Error::IntegrityLimit));
    let counters = rx.counters();
    assert_eq!(
        (
            counters.auth_failures,
            counters.dropped_for_limits,
            counters.opened
        ),
        (3, 1, 0)
    );
}

#[test]
fn limits_used_before_a_hand_over_still_count() {
    let limits = Limits {
        confidentiality: 4,
        integrity: 3,
        key_update_margin: 0,
    };
    // A sender that had sealed 3 packets with its current keys has one left ...
    let used = |sealed_in_generation, auth_failures| FlowConfig {
        limits: Some(limits),
        used: Usage {
            sealed_in_generation,
            auth_failures,
        },
        ..config()
    };
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, used(3, 0)).unwrap();
    let good = seal(&mut tx, &packet(1, false, b"fourth")).unwrap();
    assert_eq!(
        seal(&mut tx, &packet(2, false, b"fifth")),
        Err(Error::ConfidentialityLimit)
    );
    // ... and the next generation starts from nothing.
    seal(&mut tx, &packet(2, true, b"first")).unwrap();
    assert_eq!(tx.sealed_in_generation(), 1);
    // A receiver that had seen 2 forgeries closes at the next one.
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, used(0, 2)).unwrap();
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 0x80;
    assert!(!rx.integrity_limit_reached());
    assert_eq!(open(&mut rx, &forged), Err(Error::AuthFailed));
    assert!(rx.integrity_limit_reached());
    assert_eq!(open(&mut rx, &good), Err(Error::IntegrityLimit));
    // Its counters are its own: one forgery since it took over.
    assert_eq!(rx.counters().auth_failures, 1);
}

#[test]
fn packet_numbers_never_repeat() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    seal(&mut tx, &packet(7, false, b"seven")).unwrap();
    assert_eq!(
        seal(&mut tx, &packet(7, false, b"again")),
        Err(Error::PacketNumberReused)
    );
    let cleartext = packet(9, false, b"nine");
    let mut out = vec![0u8; cleartext.len() + 16];
    assert_eq!(
        tx.seal_numbered(0x1_0009, &[&cleartext], &mut [&mut out])
            .unwrap()
            .packet
            .unwrap()
            .number,
        0x1_0009
    );
    assert_eq!(
        tx.seal_numbered(0x1_000a, &[&cleartext], &mut [&mut out]),
        Err(Error::PacketNumberMismatch)
    );
    assert_eq!(
        tx.seal_numbered(9, &[&cleartext], &mut [&mut out]),
        Err(Error::PacketNumberReused)
    );
    assert_eq!(tx.largest_sealed(), Some(0x1_0009));
}

#[test]
fn reserved_bits_are_refused_both_ways() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut cleartext = packet(1, false, b"reserved");
    cleartext[0] |= 0x08;
    assert_eq!(seal(&mut tx, &cleartext), Err(Error::ReservedBits));
    assert_eq!(tx.counters().malformed, 1);

    // A peer that sets them anyway: ring seals what the core refuses to.
    let keys = TrafficSecret::new(SUITE, &SECRET).unwrap().key_material();
    let protected = common::ring_seal(&keys, 1, &cleartext[..7], DCID.len(), &cleartext[7..]);
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    assert_eq!(open(&mut rx, &protected), Err(Error::ReservedBits));
    assert_eq!((rx.counters().malformed, rx.largest_received()), (1, None));

    // Authentic, but not to be released: no plaintext is left behind, either way.
    let mut out = vec![0xaa_u8; protected.len() - 16];
    assert_eq!(
        rx.open(&[&protected], &mut [&mut out]).err(),
        Some(Error::ReservedBits)
    );
    assert!(out[7..].iter().all(|&b| b == 0), "payload wiped");
    assert!(out[..7].iter().all(|&b| b == 0xaa), "header not written");
    let mut buffer = protected.clone();
    assert_eq!(
        rx.open_in_place(&mut buffer).err(),
        Some(Error::ReservedBits)
    );
    assert!(buffer[7..protected.len() - 16].iter().all(|&b| b == 0));
}

#[test]
fn greased_fixed_bit_only_where_allowed() {
    let grease = FlowConfig {
        grease_quic_bit: true,
        ..config()
    };
    let mut cleartext = packet(1, false, b"greased");
    cleartext[0] &= !0x40;
    let mut strict: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    assert_eq!(seal(&mut strict, &cleartext), Err(Error::Malformed));
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, grease).unwrap();
    let protected = seal(&mut tx, &cleartext).unwrap();
    let mut strict_rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    assert_eq!(open(&mut strict_rx, &protected), Err(Error::Malformed));
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, grease).unwrap();
    assert_eq!(open(&mut rx, &protected), Ok(0));
}

#[test]
fn reordering_around_two_updates() {
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    // Packets 1-2 in generation 0, 3-4 in 1, 5-6 in 2.
    let sealed: Vec<Vec<u8>> = [
        (1, false),
        (2, false),
        (3, true),
        (4, true),
        (5, false),
        (6, false),
    ]
    .into_iter()
    .map(|(n, phase)| seal(&mut tx, &packet(n, phase, b"reordered")).unwrap())
    .collect();
    assert_eq!(open(&mut rx, &sealed[0]), Ok(0));
    assert_eq!(
        open(&mut rx, &sealed[3]),
        Ok(1),
        "packet 4 starts generation 1"
    );
    assert_eq!(
        open(&mut rx, &sealed[2]),
        Ok(1),
        "packet 3 lowers its first packet number"
    );
    assert_eq!(
        open(&mut rx, &sealed[1]),
        Ok(0),
        "packet 2, older than 3, uses the previous keys"
    );
    assert_eq!(
        open(&mut rx, &sealed[5]),
        Ok(2),
        "a second update while previous keys are kept"
    );
    assert_eq!(open(&mut rx, &sealed[4]), Ok(2));
    assert_eq!(
        open(&mut rx, &sealed[2]),
        Ok(1),
        "generation 1 is now the previous one"
    );
    assert_eq!(
        open(&mut rx, &sealed[1]),
        Err(Error::AuthFailed),
        "generation 0 is gone"
    );
    assert_eq!((rx.generation(), rx.counters().key_updates), (2, 2));

    // Moving on without a packet drops the previous keys.
    rx.advance_generation().unwrap();
    assert!(!rx.has_previous_keys());
    assert_eq!(
        open(&mut rx, &sealed[5]),
        Err(Error::AuthFailed),
        "generation 2 was dropped"
    );
}

#[test]
fn out_of_range_values_are_refused() {
    let past_the_end = FlowConfig {
        largest_packet_number: Some(1 << 62),
        ..config()
    };
    assert_eq!(
        TxFlow::<quicseal::backend::Portable>::from_secret(SUITE, &SECRET, past_the_end).err(),
        Some(Error::InvalidConfig)
    );
    let secret = TrafficSecret::new(SUITE, &SECRET).unwrap();
    let hp = secret.key_material().hp().to_vec();
    let last: TxFlow = TxFlow::resume(SUITE, &SECRET, &hp, u64::MAX, config()).unwrap();
    assert!(!last.next_keys_ready(), "no generation after the last");
    let mut rx: RxFlow = RxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    rx.set_largest_received(Some(u64::MAX));
    assert_eq!(rx.largest_received(), Some((1 << 62) - 1));
    let mut tx: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    // Packet number 1, far behind the largest received: its truncated bits decode to a
    // number near the largest, the nonce is wrong and the tag does not verify.
    let late = seal(&mut tx, &packet(1, false, b"late")).unwrap();
    assert_eq!(open(&mut rx, &late).err(), Some(Error::AuthFailed));
    assert_eq!(
        rx.counters().auth_failures,
        1,
        "a late packet is a counted drop"
    );
    assert_eq!(
        rx.largest_received(),
        Some((1 << 62) - 1),
        "and moves nothing"
    );
}

#[test]
fn keys_are_checked_at_construction() {
    assert_eq!(
        TxFlow::<quicseal::backend::Portable>::from_secret(SUITE, &[0; 48], config()).err(),
        Some(Error::InvalidKeyLength)
    );
    assert_eq!(
        RxFlow::<quicseal::backend::Portable>::from_secret(SUITE, &SECRET, FlowConfig::new(21))
            .err(),
        Some(Error::InvalidConfig)
    );
}

#[test]
fn resuming_at_a_generation_matches_following_the_updates() {
    let secret0 = TrafficSecret::new(SUITE, &SECRET).unwrap();
    let secret3 = secret0.next().next().next();
    let hp = secret0.key_material().hp().to_vec();

    let mut followed: TxFlow = TxFlow::from_secret(SUITE, &SECRET, config()).unwrap();
    for (n, phase) in [(1, true), (2, false), (3, true)] {
        seal(&mut followed, &packet(n, phase, b"update")).unwrap();
    }
    let expected = seal(&mut followed, &packet(4, true, b"generation three")).unwrap();

    let resumed_config = FlowConfig {
        largest_packet_number: Some(3),
        ..config()
    };
    let mut tx: TxFlow = TxFlow::resume(SUITE, secret3.as_bytes(), &hp, 3, resumed_config).unwrap();
    assert_eq!((tx.generation(), tx.key_phase()), (3, true));
    assert_eq!(
        seal(&mut tx, &packet(4, true, b"generation three")).unwrap(),
        expected
    );

    let mut rx: RxFlow = RxFlow::resume(SUITE, secret3.as_bytes(), &hp, 3, resumed_config).unwrap();
    assert_eq!(open(&mut rx, &expected), Ok(3));
    let next = seal(&mut tx, &packet(5, false, b"generation four")).unwrap();
    assert_eq!(
        open(&mut rx, &next),
        Ok(4),
        "later generations derive from the resumed secret"
    );
    assert_eq!(
        RxFlow::<quicseal::backend::Portable>::resume(
            SUITE,
            secret3.as_bytes(),
            &hp[..8],
            3,
            config()
        )
        .err(),
        Some(Error::InvalidKeyLength)
    );
}
