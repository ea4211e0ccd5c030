//! Properties over random packets: any scatter-gather split gives the bytes ring gives for the
//! contiguous packet, opening inverts sealing, and no input makes the core panic.

mod common;

use common::{Case, case, cuts, split, split_mut};
use proptest::prelude::*;
use quicseal::{FlowConfig, RxFlow, TxFlow};

fn flows(case: &Case) -> (TxFlow, RxFlow) {
    let config = FlowConfig {
        largest_packet_number: case.packet_number.checked_sub(1),
        ..FlowConfig::new(case.dcid_len)
    };
    (
        TxFlow::from_secret(case.suite, &case.secret, config).unwrap(),
        RxFlow::from_secret(case.suite, &case.secret, config).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_split_seals_to_the_bytes_ring_gives(case in case(), src_cuts in cuts(), dst_cuts in cuts()) {
        let expected = case.protected();
        let cleartext = case.cleartext();
        let (mut tx, _) = flows(&case);
        let mut out = vec![0u8; expected.len()];
        let sealed = tx.seal(&split(&cleartext, &src_cuts), &mut split_mut(&mut out, &dst_cuts)).unwrap();
        prop_assert_eq!(sealed.len, expected.len());
        prop_assert_eq!(sealed.packet.unwrap().number, case.packet_number);
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn sealing_in_place_gives_the_same_bytes(case in case()) {
        let expected = case.protected();
        let (mut tx, _) = flows(&case);
        let mut buffer = case.cleartext();
        let len = buffer.len();
        buffer.resize(len + 16, 0);
        let sealed = tx.seal_in_place(&mut buffer, len).unwrap();
        prop_assert_eq!(sealed.len, expected.len());
        prop_assert_eq!(buffer, expected);
    }

    #[test]
    fn open_inverts_seal_for_any_split(case in case(), src_cuts in cuts(), dst_cuts in cuts()) {
        let protected = case.protected();
        let cleartext = case.cleartext();
        let (_, mut rx) = flows(&case);
        let mut out = vec![0u8; cleartext.len()];
        let opened = rx.open(&split(&protected, &src_cuts), &mut split_mut(&mut out, &dst_cuts)).unwrap();
        prop_assert_eq!(opened.len, cleartext.len());
        prop_assert_eq!(opened.packet.unwrap().number, case.packet_number);
        prop_assert_eq!(&out, &cleartext);

        let (_, mut rx) = flows(&case);
        let mut buffer = protected.clone();
        let opened = rx.open_in_place(&mut buffer).unwrap();
        prop_assert_eq!(&buffer[..opened.len], cleartext.as_slice());
    }

    #[test]
    fn any_flipped_bit_fails_to_open_and_leaves_no_plaintext(
        case in case(),
        bit in any::<prop::sample::Index>(),
        src_cuts in cuts(),
        dst_cuts in cuts(),
    ) {
        let mut protected = case.protected();
        let bit = bit.index(protected.len() * 8);
        protected[bit / 8] ^= 1 << (bit % 8);
        let (_, mut rx) = flows(&case);
        let mut out = vec![0xaa_u8; protected.len()];
        let header_len = case.header.len();
        let cleartext = case.cleartext();
        match rx.open(&split(&protected, &src_cuts), &mut split_mut(&mut out, &dst_cuts)) {
            // Flipping the header-form bit makes it a long header: unparseable ones are refused,
            // others pass through as they came, ciphertext and all. Either way no 1-RTT packet
            // opens and no plaintext comes out.
            Ok(passed) => {
                prop_assert_eq!(passed.packet, None);
                prop_assert_eq!(&out[..passed.len], &protected[..passed.len]);
                prop_assert_eq!(rx.counters().passed_through, 1);
            }
            // Flipping a key-phase or packet-number bit under header protection still fails
            // authentication; a flipped fixed bit is malformed.
            Err(_) => {
                prop_assert!(out[header_len..protected.len() - 16].iter().all(|&b| b == 0 || b == 0xaa));
                prop_assert_ne!(&out[..cleartext.len()], cleartext.as_slice());
                prop_assert_eq!(rx.counters().dropped(), 1);
            }
        }
        prop_assert_eq!(rx.counters().opened, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..160),
        dcid_len in 0usize..=20,
        cuts in cuts(),
        segment in 1usize..64,
    ) {
        let config = FlowConfig::new(dcid_len);
        let secret = [3u8; 32];
        let suite = quicseal::CipherSuite::Aes128GcmSha256;
        let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
        let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).unwrap();
        let mut out = vec![0u8; bytes.len() + 16];
        let _ = rx.open(&split(&bytes, &cuts), &mut split_mut(&mut out, &cuts));
        let _ = rx.open_in_place(&mut bytes.clone());
        let _ = tx.seal(&split(&bytes, &cuts), &mut [&mut out]);
        let mut results = vec![Err(quicseal::Error::Malformed); 160];
        let _ = rx.open_gro(&mut bytes.clone(), segment, &mut results);
        let _ = tx.seal_gso(&[&bytes], segment + 40, &mut [&mut out], &mut results);
    }
}

/// A QUIC varint of `value` (RFC 9000 §16) in the encoding `len_code` (0-3) picks, or the
/// shortest that fits.
fn varint(value: u64, len_code: u8) -> Vec<u8> {
    let value = value & ((1 << 62) - 1);
    let min_code = match value {
        0..=63 => 0,
        64..=16383 => 1,
        16384..=1073741823 => 2,
        _ => 3,
    };
    let code = len_code.max(min_code);
    let len = 1usize << code;
    let mut bytes = value.to_be_bytes()[8 - len..].to_vec();
    bytes[0] |= code << 6;
    bytes
}

/// Datagrams that start with plausible long headers carrying hostile lengths: versions 1, 2, 0
/// and unknown, any type bits, connection IDs up to 255 bytes, token and Length fields from 0
/// to 2^62 - 1 in any encoding, then a tail of arbitrary bytes.
fn hostile_datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::sample::select(vec![1u32, 0x6b33_43cf, 0, 0xff00_001d]),
        0u8..=24,
        0u8..=24,
        (any::<u64>(), 0u8..4),
        (prop_oneof![0u64..64, 0u64..2000, any::<u64>()], 0u8..4),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(
            |(first, version, dcid, scid, (token, tcode), (length, lcode), tail)| {
                let mut d = vec![0x80 | first];
                d.extend(version.to_be_bytes());
                d.push(dcid);
                d.extend(std::iter::repeat_n(0xd1, usize::from(dcid)));
                d.push(scid);
                d.extend(std::iter::repeat_n(0x5c, usize::from(scid)));
                d.extend(varint(token, tcode));
                d.extend(varint(length, lcode));
                d.extend(tail);
                d
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_long_headers_never_panic(datagram in hostile_datagram(), dcid_len in 0usize..=20, largest in any::<Option<u64>>()) {
        let config = FlowConfig { largest_packet_number: largest.map(|l| l >> 2), ..FlowConfig::new(dcid_len) };
        let suite = quicseal::CipherSuite::ChaCha20Poly1305Sha256;
        let mut rx: RxFlow = RxFlow::from_secret(suite, &[9; 32], config).unwrap();
        let mut tx: TxFlow = TxFlow::from_secret(suite, &[9; 32], config).unwrap();
        let mut out = vec![0u8; datagram.len() + 16];
        let _ = rx.open(&[&datagram], &mut [&mut out]);
        let _ = rx.open_in_place(&mut datagram.clone());
        let _ = tx.seal(&[&datagram], &mut [&mut out]);
        let mut table: quicseal::FlowTable<RxFlow, 4> = quicseal::FlowTable::new(dcid_len).unwrap();
        let _ = table.open_in_place(&mut datagram.clone());
        prop_assert!(rx.counters().opened + rx.counters().dropped() + rx.counters().passed_through >= 1);
    }
}
