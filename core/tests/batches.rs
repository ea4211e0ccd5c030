//! GSO and GRO batches, coalesced long-header packets, and the flow table: one bad datagram
//! never spoils its neighbours.

mod common;

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, Outcome, RxFlow, TxFlow};

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha384;
const SECRET: [u8; 48] = [0x17; 48];
const GSO_SIZE: usize = 200;
const STRIDE: usize = GSO_SIZE - 16;

fn config() -> FlowConfig {
    FlowConfig::new(8)
}

fn tx() -> TxFlow {
    TxFlow::from_secret(SUITE, &SECRET, config()).unwrap()
}

fn rx() -> RxFlow {
    RxFlow::from_secret(SUITE, &SECRET, config()).unwrap()
}

/// A cleartext 1-RTT packet of exactly `len` bytes to `dcid`, its number in one byte.
fn packet(dcid: [u8; 8], number: u64, len: usize) -> Vec<u8> {
    packet_with(dcid, number, 1, len)
}

/// [`packet`] with the packet number's last `pn_len` bytes on the wire.
fn packet_with(dcid: [u8; 8], number: u64, pn_len: usize, len: usize) -> Vec<u8> {
    let truncated = (number as u32) & (u32::MAX >> (32 - 8 * pn_len as u32));
    let header = ShortHeader {
        fixed_bit: true,
        spin: true,
        key_phase: false,
        dcid: ConnectionId::new(&dcid).unwrap(),
        packet_number: TruncatedPacketNumber::new(truncated, pn_len).unwrap(),
    };
    let mut bytes = vec![0u8; len];
    header.emit(&mut bytes).unwrap();
    for (i, b) in bytes[header.len()..].iter_mut().enumerate() {
        *b = (number as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    bytes
}

const DCID: [u8; 8] = *b"conn-one";

/// A v1 Handshake packet of 24 bytes (already protected by its own keys; opaque to us).
fn handshake() -> Vec<u8> {
    handshake_of(24)
}

/// A v1 Handshake packet of `len` bytes (18 to 80).
fn handshake_of(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xe0, 0, 0, 0, 1, 8];
    bytes.extend(DCID);
    bytes.extend([0, 0x40, (len - 17) as u8]); // no SCID, 2-byte Length
    bytes.resize(len, 0xab);
    bytes
}

fn sealed_one_by_one(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut tx = tx();
    packets
        .iter()
        .map(|p| {
            let mut out = vec![0u8; p.len() + 16];
            let _ = tx.seal(&[p], &mut [&mut out]).unwrap();
            out
        })
        .collect()
}

#[test]
fn gso_batch_comes_out_at_gso_size() {
    let packets: Vec<Vec<u8>> = (1..=5)
        .map(|n| packet(DCID, n, if n == 5 { 50 } else { STRIDE }))
        .collect();
    let cleartext = packets.concat();
    // The caller's buffers may be cut anywhere.
    let (a, b) = cleartext.split_at(333);
    let mut out = vec![0u8; 4 * GSO_SIZE + 66];
    let (x, y) = out.split_at_mut(17);
    let mut results = [Err(Error::Malformed); 8];
    let mut tx = tx();
    // The layout the core promises is the one sealing produces.
    let layout = tx.gso_layout(cleartext.len(), GSO_SIZE).unwrap();
    let batch = tx
        .seal_gso(&[a, b], GSO_SIZE, &mut [x, y], &mut results)
        .unwrap();
    assert_eq!(
        (batch.datagrams, batch.ok, batch.failed, batch.len),
        (5, 5, 0, 4 * GSO_SIZE + 66)
    );
    assert_eq!((layout.segments, layout.sealed_len), (5, batch.len));
    let expected = sealed_one_by_one(&packets);
    for (i, (segment, result)) in out.chunks(GSO_SIZE).zip(&results).enumerate() {
        assert_eq!(result.unwrap().len, segment.len());
        assert_eq!(segment, expected[i].as_slice(), "segment {i}");
    }
}

#[test]
fn gso_in_place_matches_gso_from_a_separate_buffer() {
    let packets: Vec<Vec<u8>> = (1..=3)
        .map(|n| packet(DCID, n, if n == 3 { 70 } else { STRIDE }))
        .collect();
    let mut buffer = Vec::new();
    for p in &packets {
        buffer.extend(p);
        buffer.extend([0u8; 16]);
    }
    let mut results = [Err(Error::Malformed); 3];
    let batch = tx()
        .seal_gso_in_place(&mut buffer, GSO_SIZE, &mut results)
        .unwrap();
    assert_eq!((batch.ok, batch.len), (3, 2 * GSO_SIZE + 86));
    assert_eq!(buffer, sealed_one_by_one(&packets).concat());

    // A last datagram with no room beyond its tag cannot be laid out.
    let mut short = vec![0u8; GSO_SIZE + 16];
    assert_eq!(
        tx().seal_gso_in_place(&mut short, GSO_SIZE, &mut results),
        Err(Error::GsoLayout)
    );
    // A datagram of long-header packets only leaves its 16 spare bytes unused.
    let mut lone = handshake_of(STRIDE);
    lone.extend([0u8; 16]);
    let mut tx = tx();
    let batch = tx
        .seal_gso_in_place(&mut lone, GSO_SIZE, &mut results)
        .unwrap();
    assert_eq!((batch.failed, results[0]), (1, Err(Error::GsoLayout)));
    assert_eq!(tx.counters().rejected, 1);
}

#[test]
fn gso_refuses_bad_shapes_whole() {
    let cleartext = [packet(DCID, 1, STRIDE), packet(DCID, 2, STRIDE)].concat();
    let mut out = vec![0u8; 2 * GSO_SIZE];
    let mut results = [Err(Error::Malformed); 2];
    let mut tx = tx();
    assert_eq!(tx.min_gso_size(), 1 + 8 + 4 + 16 + 16);
    assert_eq!(
        tx.seal_gso(&[&cleartext], 44, &mut [&mut out], &mut results),
        Err(Error::GsoSizeTooSmall)
    );
    assert_eq!(
        tx.gso_layout(cleartext.len(), 44),
        Err(Error::GsoSizeTooSmall),
        "the layout refuses what sealing refuses"
    );
    assert_eq!(
        tx.seal_gso(&[&cleartext], 0, &mut [&mut out], &mut results),
        Err(Error::GsoSizeTooSmall),
        "a gso_size of 0 is too small, not a division by zero"
    );
    assert_eq!(
        tx.gso_layout(cleartext.len(), 0),
        Err(Error::GsoSizeTooSmall)
    );
    assert_eq!(
        tx.seal_gso(
            &[&cleartext],
            GSO_SIZE,
            &mut [&mut out[..399]],
            &mut results
        ),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        tx.seal_gso(&[&cleartext], GSO_SIZE, &mut [&mut out], &mut results[..1]),
        Err(Error::BufferTooSmall)
    );
    let mut limited: TxFlow = TxFlow::from_secret(
        SUITE,
        &SECRET,
        FlowConfig {
            max_segments: 1,
            ..config()
        },
    )
    .unwrap();
    assert_eq!(
        limited.seal_gso(&[&cleartext], GSO_SIZE, &mut [&mut out], &mut results),
        Err(Error::TooManySegments)
    );
    assert_eq!(tx.counters().sealed, 0, "nothing sealed by a refused batch");
}

#[test]
fn one_bad_packet_leaves_its_neighbours_sealed() {
    let mut packets: Vec<Vec<u8>> = (1..=3).map(|n| packet(DCID, n, STRIDE)).collect();
    let mut bad = packet(DCID, 9, STRIDE);
    bad[0] |= 0x10; // reserved bit
    packets.insert(1, bad);
    let mut out = vec![0u8; 4 * GSO_SIZE];
    let mut results = [Err(Error::Malformed); 4];
    let batch = tx()
        .seal_gso(
            &[&packets.concat()],
            GSO_SIZE,
            &mut [&mut out],
            &mut results,
        )
        .unwrap();
    assert_eq!((batch.ok, batch.failed), (3, 1));
    assert_eq!(results[1], Err(Error::ReservedBits));
    let good = sealed_one_by_one(&[packets[0].clone(), packets[2].clone(), packets[3].clone()]);
    assert_eq!(&out[..GSO_SIZE], good[0].as_slice());
    assert_eq!(&out[2 * GSO_SIZE..3 * GSO_SIZE], good[1].as_slice());
    assert_eq!(&out[3 * GSO_SIZE..], good[2].as_slice());
}

#[test]
fn sealing_refuses_what_it_cannot_see_past() {
    // A long header of an unknown version has no Length: a 1-RTT packet behind it would leave
    // in cleartext. Receiving passes such datagrams through; sealing refuses them.
    let mut unknown = handshake();
    unknown[1..5].copy_from_slice(&[0xff, 0, 0, 0x1d]);
    let short = packet(DCID, 1, 60);
    let mut out = vec![0xaa_u8; unknown.len() + short.len() + 16];
    let mut tx = tx();
    assert_eq!(
        tx.seal(&[&unknown, &short], &mut [&mut out]),
        Err(Error::Malformed)
    );
    assert!(out.iter().all(|&b| b == 0xaa), "nothing written");
    let mut rx = rx();
    let mut datagram = [unknown.clone(), short].concat();
    let opened = rx.open_in_place(&mut datagram).unwrap();
    assert_eq!(
        (opened.passthrough_len, opened.packet),
        (datagram.len(), None)
    );
}

#[test]
fn a_flipped_header_form_bit_never_opens() {
    // Set the header-form bit of a sealed short-header packet: it now reads as a long header,
    // of whatever version its DCID bytes spell. Unknown versions pass through as they came
    // (ciphertext), malformed ones are refused; no 1-RTT packet opens.
    let mut sealed = sealed_one_by_one(&[packet(DCID, 1, 120)]).remove(0);
    sealed[0] |= 0x80;
    let mut rx = rx();
    let mut out = vec![0u8; sealed.len()];
    let outcome = rx.open(&[&sealed], &mut [&mut out]);
    assert!(
        matches!(
            outcome,
            Ok(quicseal::Datagram { packet: None, .. }) | Err(_)
        ),
        "{outcome:?}"
    );
    if let Ok(passed) = outcome {
        assert_eq!(&out[..passed.len], &sealed[..passed.len]);
    }
    assert_eq!(rx.counters().opened, 0);
}

#[test]
fn long_header_only_segment_breaks_the_layout_unless_last() {
    let lone = [handshake_of(80), handshake_of(STRIDE - 80)].concat();
    let cleartext = [
        packet(DCID, 1, STRIDE),
        lone,
        packet(DCID, 2, STRIDE),
        handshake(),
    ]
    .concat();
    let mut out = vec![0u8; 4 * GSO_SIZE];
    let mut results = [Err(Error::Malformed); 4];
    let batch = tx()
        .seal_gso(&[&cleartext], GSO_SIZE, &mut [&mut out], &mut results)
        .unwrap();
    assert_eq!(results[1], Err(Error::GsoLayout));
    let last = results[3].unwrap();
    assert_eq!(
        (last.len, last.passthrough_len, last.packet),
        (24, 24, None)
    );
    assert_eq!(
        (batch.ok, batch.failed, batch.len),
        (3, 1, 3 * GSO_SIZE + 24)
    );
}

#[test]
fn coalesced_long_header_passes_through_both_ways() {
    let long = handshake();
    let short = packet(DCID, 1, 60);
    let mut tx = tx();
    let mut out = vec![0u8; long.len() + short.len() + 16];
    let sealed = tx.seal(&[&long, &short], &mut [&mut out]).unwrap();
    assert_eq!(
        (sealed.len, sealed.passthrough_len),
        (out.len(), long.len())
    );
    assert_eq!(&out[..long.len()], long.as_slice(), "long header untouched");
    assert_eq!(
        &out[long.len()..],
        sealed_one_by_one(std::slice::from_ref(&short))[0].as_slice()
    );
    assert_eq!(tx.counters().passed_through, 1);

    let mut rx = rx();
    let mut plain = vec![0u8; long.len() + short.len()];
    let opened = rx.open(&[&out], &mut [&mut plain]).unwrap();
    assert_eq!(
        (opened.len, opened.passthrough_len),
        (plain.len(), long.len())
    );
    assert_eq!(opened.header_range(), Some(24..34));
    assert_eq!(opened.payload_range(), Some(34..84));
    assert_eq!(&plain[opened.payload_range().unwrap()], &short[10..]);
    assert_eq!(plain, [long.clone(), short.clone()].concat());

    let mut rx = rx_with_largest(0);
    let opened = rx.open_in_place(&mut out).unwrap();
    assert_eq!(&out[..opened.len], [long, short].concat().as_slice());
    assert_eq!(rx.counters().passed_through, 1);
}

fn rx_with_largest(largest: u64) -> RxFlow {
    RxFlow::from_secret(
        SUITE,
        &SECRET,
        FlowConfig {
            largest_packet_number: Some(largest),
            ..config()
        },
    )
    .unwrap()
}

#[test]
fn gro_batch_opens_each_datagram_on_its_own() {
    let packets: Vec<Vec<u8>> = (1..=4)
        .map(|n| packet(DCID, n, if n == 4 { 40 } else { STRIDE }))
        .collect();
    let mut buffer = sealed_one_by_one(&packets).concat();
    buffer[GSO_SIZE + 100] ^= 1; // tamper with the second datagram
    let mut results: [Outcome; 4] = [Err(Error::Malformed); 4];
    let mut rx = rx();
    let batch = rx.open_gro(&mut buffer, GSO_SIZE, &mut results).unwrap();
    assert_eq!((batch.datagrams, batch.ok, batch.failed), (4, 3, 1));
    assert_eq!(results[1], Err(Error::AuthFailed));
    assert!(
        buffer[GSO_SIZE + 10..2 * GSO_SIZE - 16]
            .iter()
            .all(|&b| b == 0),
        "no plaintext of the forgery"
    );
    for i in [0, 2, 3] {
        let datagram = &buffer[i * GSO_SIZE..];
        assert_eq!(&datagram[..results[i].unwrap().len], packets[i].as_slice());
    }
    let counters = rx.counters();
    assert_eq!((counters.opened, counters.auth_failures), (3, 1));
    assert_eq!(
        rx.open_gro(&mut buffer, 0, &mut results),
        Err(Error::InvalidConfig)
    );
    let batch = rx.open_gro(&mut [], 0, &mut results).unwrap();
    assert_eq!(
        (batch.datagrams, batch.failed, results[0]),
        (1, 1, Err(Error::Malformed))
    );
    assert_eq!(
        rx.open_gro(&mut buffer, 10, &mut results),
        Err(Error::TooManySegments)
    );
}

#[test]
fn flow_table_routes_by_connection_id() {
    const OTHER: [u8; 8] = *b"conn-two";
    let mut table: FlowTable<RxFlow, 2> = FlowTable::new(8).unwrap();
    table
        .insert(ConnectionId::new(&DCID).unwrap(), rx())
        .unwrap();
    let other_secret = [0x99; 48];
    table
        .insert(
            ConnectionId::new(&OTHER).unwrap(),
            RxFlow::from_secret(SUITE, &other_secret, config()).unwrap(),
        )
        .unwrap();
    assert_eq!(
        table
            .insert(ConnectionId::new(b"conn-3!!").unwrap(), rx())
            .err(),
        Some(Error::TableFull)
    );
    assert_eq!(
        table
            .insert(ConnectionId::new(b"short").unwrap(), rx())
            .err(),
        Some(Error::InvalidConfig)
    );

    let mut other_tx: TxFlow = TxFlow::from_secret(SUITE, &other_secret, config()).unwrap();
    let mut for_other = vec![0u8; STRIDE + 16];
    let _ = other_tx
        .seal(&[&packet(OTHER, 1, STRIDE)], &mut [&mut for_other])
        .unwrap();
    let mut buffer = [
        sealed_one_by_one(&[packet(DCID, 1, STRIDE)])[0].clone(),
        for_other,
        sealed_one_by_one(&[packet(*b"nobody!!", 1, STRIDE)])[0].clone(),
    ]
    .concat();
    let mut results: [Outcome; 3] = [Err(Error::Malformed); 3];
    let batch = table.open_gro(&mut buffer, GSO_SIZE, &mut results).unwrap();
    assert_eq!((batch.ok, batch.failed), (2, 1));
    assert_eq!(results[2], Err(Error::UnknownConnectionId));
    assert_eq!((table.totals().opened, table.unroutable()), (2, 1));
    assert_eq!(table.open_in_place(&mut []), Err(Error::Malformed));
    assert_eq!(
        table.unroutable(),
        2,
        "too short to name a flow counts as unroutable"
    );

    let removed = table.remove(&ConnectionId::new(&OTHER).unwrap()).unwrap();
    assert_eq!(removed.counters().opened, 1);
    assert_eq!(
        (table.len(), table.totals().opened),
        (1, 2),
        "totals outlive removed flows"
    );
}

/// A table of `flows` receiving flows under IDs `conn-0..`, each with its own secret.
fn receivers(flows: usize) -> FlowTable<RxFlow, 8> {
    let mut table = FlowTable::new(8).unwrap();
    for k in 0..flows {
        let secret = [k as u8 + 1; 48];
        let flow = RxFlow::from_secret(SUITE, &secret, config()).unwrap();
        table
            .insert(ConnectionId::new(&conn(k)).unwrap(), flow)
            .unwrap();
    }
    table
}

fn conn(k: usize) -> [u8; 8] {
    *format!("conn-{k:03}").as_bytes().first_chunk().unwrap()
}

#[test]
fn a_burst_opens_as_its_datagrams_do_one_at_a_time() {
    // Five connections' packets, interleaved, with each kind of datagram a burst meets: a
    // flow named twice in a row and again later, a packet received twice, a forged one, an
    // unknown connection, an empty datagram and one too short to name a connection, long
    // headers, and a short one that names a flow but holds no packet; more than
    // `ROUTE_AHEAD` in all, so the burst is routed in two pieces.
    let mut senders: Vec<TxFlow> = (0..5)
        .map(|k| TxFlow::from_secret(SUITE, &[k as u8 + 1; 48], config()).unwrap())
        .collect();
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for (i, k) in [0, 1, 1, 2, 3, 4, 0, 2, 3, 1, 4, 0, 0, 2, 3, 1, 4, 2]
        .into_iter()
        .enumerate()
    {
        let number = i as u64 + 1;
        let cleartext = packet(conn(k), number, 40 + 3 * i);
        let mut sealed = vec![0u8; cleartext.len() + 16];
        let _ = senders[k].seal(&[&cleartext], &mut [&mut sealed]).unwrap();
        datagrams.push(sealed);
    }
    let mut forged = datagrams[4].clone();
    *forged.last_mut().unwrap() ^= 1;
    let replayed = datagrams[1].clone();
    datagrams.insert(7, forged);
    datagrams.insert(9, replayed);
    datagrams.insert(
        3,
        sealed_one_by_one(&[packet(*b"nobody!!", 1, 60)])[0].clone(),
    );
    datagrams.insert(12, Vec::new());
    datagrams.insert(15, vec![0x41, b'c', b'o']);
    // Datagrams the table routes by a long header: a Handshake packet alone, one coalesced
    // before a 1-RTT packet, and one naming a 7-byte ID (the table's are 8 bytes); and one
    // under 21 bytes whose short header still names a flow.
    let handshake_to = |id: &[u8]| {
        let mut bytes = vec![0xe0, 0, 0, 0, 1, id.len() as u8];
        bytes.extend(id);
        bytes.extend([0, 0x40, 7]);
        bytes.resize(bytes.len() + 7, 0xab);
        bytes
    };
    let mut coalesced = handshake_to(&conn(3));
    let cleartext = packet(conn(3), 40, 60);
    let mut sealed = vec![0u8; cleartext.len() + 16];
    let _ = senders[3].seal(&[&cleartext], &mut [&mut sealed]).unwrap();
    coalesced.extend(sealed);
    datagrams.insert(5, handshake_to(&conn(2)));
    datagrams.insert(10, coalesced);
    datagrams.insert(17, handshake_to(&conn(1)[..7]));
    let mut short = vec![0x41];
    short.extend(conn(4));
    short.extend([0; 6]);
    datagrams.insert(19, short);
    assert!(datagrams.len() > quicseal::ROUTE_AHEAD);

    let mut one_by_one = receivers(5);
    let mut expected = Vec::new();
    let mut opened_alone = datagrams.clone();
    for datagram in &mut opened_alone {
        expected.push(one_by_one.open_in_place(datagram));
    }

    let mut burst_table = receivers(5);
    let mut opened = datagrams.clone();
    let mut burst: Vec<&mut [u8]> = opened.iter_mut().map(|d| d.as_mut_slice()).collect();
    let count = burst.len();
    let mut results = vec![Err(Error::Malformed); count];
    assert_eq!(
        burst_table.open_each_in_place(&mut burst, &mut results[..count - 1]),
        Err(Error::BufferTooSmall)
    );
    let batch = burst_table
        .open_each_in_place(&mut burst, &mut results)
        .unwrap();

    assert_eq!(results, expected);
    assert_eq!(opened, opened_alone, "the same bytes opened in place");
    let ok = expected.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        (batch.datagrams, batch.ok, batch.failed, batch.len),
        (
            datagrams.len(),
            ok,
            datagrams.len() - ok,
            datagrams.iter().map(Vec::len).sum()
        )
    );
    // The repeat opens again (telling duplicates apart is the QUIC stack's business), and so
    // do the long-header datagrams of known IDs (passed through, the 1-RTT packet after
    // one opened).
    assert_eq!(ok, datagrams.len() - 6, "all but the six bad ones open");
    assert_eq!(burst_table.totals(), one_by_one.totals());
    assert_eq!(burst_table.totals().passed_through, 2);
    assert_eq!(burst_table.unroutable(), 4);
    assert_eq!(burst_table.unroutable(), one_by_one.unroutable());
    for k in 0..5 {
        let id = ConnectionId::new(&conn(k)).unwrap();
        assert_eq!(
            burst_table.get(&id).unwrap().counters(),
            one_by_one.get(&id).unwrap().counters(),
            "flow {k}"
        );
    }
}

#[test]
fn tx_flow_table_seals_with_the_named_flow() {
    let mut table: FlowTable<TxFlow, 4> = FlowTable::new(8).unwrap();
    table
        .insert(ConnectionId::new(&DCID).unwrap(), tx())
        .unwrap();
    let cleartext = packet(DCID, 1, 80);
    let mut out = vec![0u8; 96];
    let sealed = table.seal(&[&cleartext], &mut [&mut out]).unwrap();
    assert_eq!(sealed.len, 96);
    assert_eq!(out, sealed_one_by_one(&[cleartext])[0]);
    assert_eq!(
        table.seal(&[&packet(*b"nobody!!", 1, 80)], &mut [&mut out]),
        Err(Error::UnknownConnectionId)
    );
    assert_eq!(table.totals().sealed, 1);
    assert_eq!(table.dcid_len(), 8);

    let batch = [packet(DCID, 2, STRIDE), packet(DCID, 3, 50)].concat();
    let mut out = vec![0u8; GSO_SIZE + 66];
    let mut results = [Err(Error::Malformed); 2];
    let sealed = table
        .seal_gso(&[&batch], GSO_SIZE, &mut [&mut out], &mut results)
        .unwrap();
    assert_eq!((sealed.ok, sealed.len), (2, GSO_SIZE + 66));
    let mut in_place = [
        packet(DCID, 4, STRIDE),
        vec![0; 16],
        packet(DCID, 5, 50),
        vec![0; 16],
    ]
    .concat();
    let sealed = table
        .seal_gso_in_place(&mut in_place, GSO_SIZE, &mut results)
        .unwrap();
    assert_eq!((sealed.ok, sealed.len), (2, GSO_SIZE + 66));
    assert_eq!(table.totals().sealed, 5);
}

/// Long GSO batches go through the backend in groups (`seal_batch`); what comes out is what
/// sealing one datagram at a time gives, across groups, a key update in the middle of one,
/// and refused datagrams, for every suite and small and large segments, copied and in place;
/// and opening them as one GRO batch matches opening them one at a time.
#[test]
fn long_gso_batches_match_one_datagram_at_a_time() {
    let suites = CipherSuite::ALL.map(|suite| (suite, &SECRET[..suite.secret_len()]));
    for (suite, secret) in suites {
        for gso_size in [48, 64, 130, 300, 1400] {
            let stride = gso_size - 16;
            let packets: Vec<Vec<u8>> = (1..=40u64)
                .map(|n| {
                    let len = if n == 40 { stride - 5 } else { stride };
                    // Packet 30 reuses 29's number: refused once its header is read.
                    let mut p = packet(DCID, if n == 30 { 29 } else { n }, len);
                    if n >= 21 {
                        p[0] ^= 0x04; // key phase 1 from packet 21 on
                    }
                    if n == 7 {
                        p[0] |= 0x10; // reserved bit: refused
                    }
                    p
                })
                .collect();
            let new_tx = || TxFlow::<quicseal::backend::Auto>::from_secret(suite, secret, config());
            let mut one_by_one = new_tx().unwrap();
            let expected: Vec<Option<Vec<u8>>> = packets
                .iter()
                .map(|p| {
                    let mut out = vec![0u8; p.len() + 16];
                    one_by_one.seal(&[p], &mut [&mut out]).ok().map(|_| out)
                })
                .collect();
            let what = format!("{suite:?} at {gso_size}");

            let cleartext = packets.concat();
            let mut tx = new_tx().unwrap();
            let mut out = vec![0u8; cleartext.len() + 40 * 16];
            let mut results = [Err(Error::Malformed); 40];
            let batch = tx
                .seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results)
                .unwrap();
            assert_eq!((batch.ok, batch.failed), (38, 2), "{what}");
            assert_eq!(results[6], Err(Error::ReservedBits), "{what}");
            assert_eq!(results[29], Err(Error::PacketNumberReused), "{what}");
            assert_eq!(tx.counters(), one_by_one.counters(), "{what}");
            assert_eq!(tx.generation(), 1, "{what}");

            let mut in_place: Vec<u8> = packets
                .iter()
                .flat_map(|p| p.iter().copied().chain([0; 16]))
                .collect();
            let mut tx = new_tx().unwrap();
            let batch = tx
                .seal_gso_in_place(&mut in_place, gso_size, &mut results)
                .unwrap();
            assert_eq!((batch.ok, batch.failed), (38, 2), "{what}");
            assert_eq!(tx.counters(), one_by_one.counters(), "{what}");

            for (i, expected) in expected.iter().enumerate() {
                let Some(expected) = expected else { continue };
                let at = i * gso_size;
                let got = &out[at..at + expected.len()];
                assert_eq!(got, expected.as_slice(), "{what}: datagram {i}");
                let got = &in_place[at..at + expected.len()];
                assert_eq!(got, expected.as_slice(), "{what}: datagram {i} in place");
            }

            // Opened as one GRO batch (in groups, the header masks of each group together),
            // the datagrams open as they do one at a time: the refused one's stretch fails.
            let new_rx = || RxFlow::<quicseal::backend::Auto>::from_secret(suite, secret, config());
            let mut one_by_one = new_rx().unwrap();
            let opened: Vec<(Outcome, Vec<u8>)> = out
                .chunks(gso_size)
                .map(|datagram| {
                    let mut datagram = datagram.to_vec();
                    let outcome = one_by_one.open_in_place(&mut datagram);
                    (outcome, datagram)
                })
                .collect();
            let mut rx = new_rx().unwrap();
            let mut gro = out.clone();
            let batch = rx.open_gro(&mut gro, gso_size, &mut results).unwrap();
            assert_eq!((batch.ok, batch.failed), (38, 2), "{what}");
            assert_eq!(rx.counters(), one_by_one.counters(), "{what}");
            assert_eq!(rx.generation(), 1, "{what}");
            for (i, (datagram, (outcome, expected))) in
                gro.chunks(gso_size).zip(&opened).enumerate()
            {
                assert_eq!(results[i], *outcome, "{what}: datagram {i}");
                assert_eq!(datagram, expected.as_slice(), "{what}: datagram {i}");
            }
            assert_eq!(&opened[5].1[..stride], packets[5].as_slice(), "{what}");
        }
    }
}

/// A flow keeps what its GSO batches build from the key for the next batch: batch after
/// batch of long packets, across a key update, seals what sealing one datagram at a time
/// does (SUITE is AES-256-GCM; the flow starts new tables at the key update).
#[test]
fn consecutive_gso_batches_across_a_key_update_match_one_datagram_at_a_time() {
    let gso_size = 1350;
    let packets: Vec<Vec<u8>> = (1..=48u64)
        .map(|n| {
            let mut p = packet(DCID, n, gso_size - 16);
            if n >= 22 {
                p[0] ^= 0x04; // key phase 1 from packet 22 on, in the second batch
            }
            p
        })
        .collect();
    let expected = sealed_one_by_one(&packets);
    let mut tx = tx();
    for (calls, batch) in packets.chunks(16).zip(expected.chunks(16)).enumerate() {
        let cleartext = batch.0.concat();
        let mut out = vec![0u8; 16 * gso_size];
        let mut results = [Err(Error::Malformed); 16];
        let sealed = tx
            .seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results)
            .unwrap();
        assert_eq!(sealed.ok, 16, "batch {calls}");
        assert_eq!(out, batch.1.concat(), "batch {calls}");
    }
    assert_eq!(tx.generation(), 1);
}

/// A GSO batch sealed and its GRO batch opened read and write nothing past their buffers:
/// each buffer ends where an inaccessible page begins, so a byte touched past the last
/// datagram's payload (a vector load or store not masked to it) faults. Payloads with a last
/// step of 1 to 63 bytes, one shorter than a step, and none, for every suite; batches of 5
/// to 8 datagrams, so that the last one is sealed alone or in each lane of a group of four;
/// what comes out is what one datagram at a time gives.
#[test]
fn gso_and_gro_batches_touch_nothing_past_their_buffers() {
    let suites = CipherSuite::ALL.map(|suite| (suite, &SECRET[..suite.secret_len()]));
    // Header 10 bytes (8-byte DCID, 1-byte packet number), tag 16: payloads of 22, 63, 64,
    // 65, 1324 and 1426 bytes.
    for (suite, secret) in suites {
        for (gso_size, count) in [48, 89, 90, 91, 1350, 1452]
            .into_iter()
            .flat_map(|gso_size| (5..=8).map(move |count| (gso_size, count)))
        {
            let stride = gso_size - 16;
            let packets: Vec<Vec<u8>> = (1..=count as u64)
                .map(|n| packet(DCID, n, stride))
                .collect();
            let what = format!("{suite:?}, {count} at {gso_size}");
            let mut one_by_one: TxFlow = TxFlow::from_secret(suite, secret, config()).unwrap();
            let expected: Vec<u8> = packets
                .iter()
                .flat_map(|p| {
                    let mut out = vec![0u8; p.len() + 16];
                    let _ = one_by_one.seal(&[p], &mut [&mut out]).unwrap();
                    out
                })
                .collect();

            let mut cleartext = common::GuardedBuffer::new(count * stride);
            cleartext.bytes().copy_from_slice(&packets.concat());
            let mut sealed = common::GuardedBuffer::new(count * gso_size);
            let mut tx: TxFlow = TxFlow::from_secret(suite, secret, config()).unwrap();
            let mut results = vec![Err(Error::Malformed); count];
            let batch = tx
                .seal_gso(
                    &[cleartext.bytes()],
                    gso_size,
                    &mut [sealed.bytes()],
                    &mut results,
                )
                .unwrap();
            assert_eq!(batch.ok, count, "{what}");
            assert_eq!(sealed.bytes(), expected.as_slice(), "{what}");

            let mut rx: RxFlow = RxFlow::from_secret(suite, secret, config()).unwrap();
            let batch = rx.open_gro(sealed.bytes(), gso_size, &mut results).unwrap();
            assert_eq!(batch.ok, count, "{what}");
            for (datagram, packet) in sealed.bytes().chunks(gso_size).zip(&packets) {
                assert_eq!(&datagram[..stride], packet.as_slice(), "{what}");
            }
        }
    }
}

/// A datagram refused after its header was read, in a queue slot no packet has used yet, does
/// not disturb the packets queued before it.
#[test]
fn a_refused_last_datagram_leaves_the_queue_intact() {
    let packets = [
        packet(DCID, 1, STRIDE),
        packet(DCID, 2, STRIDE),
        packet(DCID, 2, 50),
    ];
    let mut out = vec![0u8; 2 * GSO_SIZE + 66];
    let mut results = [Err(Error::Malformed); 3];
    let batch = tx()
        .seal_gso(
            &[&packets.concat()],
            GSO_SIZE,
            &mut [&mut out],
            &mut results,
        )
        .unwrap();
    assert_eq!((batch.ok, batch.failed), (2, 1));
    assert_eq!(results[2], Err(Error::PacketNumberReused));
    assert_eq!(
        out[..2 * GSO_SIZE],
        sealed_one_by_one(&packets[..2]).concat()
    );
}

/// A backend that batches seals but refuses every strided batch: what a backend whose own
/// checks are stricter than the core's might do.
#[derive(Clone, Copy, Debug, Default)]
struct RefusesStrided;

struct RefusingKey(quicseal::backend::AutoPacketKey);

impl quicseal::backend::PacketKey for RefusingKey {
    type BatchTables = ();

    fn seal(
        &self,
        header_key: &impl quicseal::backend::HeaderKey,
        nonce: &[u8; 12],
        aad: &[u8],
        sample_at: usize,
        payload: quicseal::backend::Payload<'_, '_, '_, '_>,
    ) -> quicseal::backend::Sealed {
        self.0.seal(header_key, nonce, aad, sample_at, payload)
    }

    fn batches_seals(&self, _: usize) -> bool {
        true
    }

    fn seal_strided(
        &self,
        _: &impl quicseal::backend::HeaderKey,
        _: quicseal::backend::StridedPackets<'_, '_>,
        _: &[[u8; 12]],
        _: &mut (),
    ) -> bool {
        false
    }

    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        payload: quicseal::backend::Payload<'_, '_, '_, '_>,
    ) -> [u8; 16] {
        self.0.open(nonce, aad, payload)
    }
}

impl quicseal::backend::Backend for RefusesStrided {
    type PacketKey = RefusingKey;
    type HeaderKey = quicseal::backend::AutoHeaderKey;

    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<RefusingKey, Error> {
        quicseal::backend::Auto::packet_key(suite, key).map(RefusingKey)
    }

    fn header_key(suite: CipherSuite, key: &[u8]) -> Result<Self::HeaderKey, Error> {
        quicseal::backend::Auto::header_key(suite, key)
    }
}

/// Where the backend refuses a GSO batch's strided packets, the flow seals them the general
/// way, committing nothing twice: the same outcomes, bytes and counters as sealing each
/// datagram alone.
#[test]
fn strided_packets_a_backend_refuses_are_sealed_the_general_way() {
    let packets: Vec<Vec<u8>> = (1..=20).map(|n| packet(DCID, n, STRIDE)).collect();
    let mut tx = TxFlow::<RefusesStrided>::from_secret(SUITE, &SECRET, config()).unwrap();
    let cleartext = packets.concat();
    let mut out = vec![0u8; GSO_SIZE * packets.len()];
    let mut results = vec![Err(Error::Malformed); packets.len()];
    let batch = tx
        .seal_gso(&[&cleartext], GSO_SIZE, &mut [&mut out], &mut results)
        .unwrap();
    assert_eq!((batch.datagrams, batch.ok), (20, 20));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(out, sealed_one_by_one(&packets).concat());
    assert_eq!(tx.counters().sealed, 20);
    assert_eq!(tx.largest_sealed(), Some(20));
}

/// A GRO group released in one go moves where the current generation starts, as opening its
/// datagrams one by one does: after a key update at packet 10, late packets 7 and 9 of the new
/// phase arrive in one GRO batch, so that a packet of the old phase numbered 8 is not older
/// than the new generation's first packet (RFC 9001 §6.5): it would start another key update,
/// and fails, where with the generation still starting at 10 the previous keys would open it.
#[test]
fn a_gro_release_moves_where_the_generation_starts() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = [0x5a; 32];
    let seal = |number: u64, next_phase: bool| {
        let mut cleartext = packet(DCID, number, 200);
        if next_phase {
            cleartext[0] |= 0x04;
        }
        let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config()).unwrap();
        let mut out = vec![0u8; 216];
        let _ = tx
            .seal_numbered(number, &[&cleartext], &mut [&mut out])
            .unwrap();
        out
    };
    for one_by_one in [false, true] {
        let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config()).unwrap();
        let mut open = |packets: &[Vec<u8>]| -> Vec<Outcome> {
            let mut buffer = packets.concat();
            if one_by_one {
                return buffer
                    .chunks_mut(216)
                    .map(|d| rx.open_in_place(d))
                    .collect();
            }
            let mut results = vec![Err(Error::Malformed); packets.len()];
            let _ = rx.open_gro(&mut buffer, 216, &mut results).unwrap();
            results
        };
        let first: Vec<Vec<u8>> = (0..4).map(|n| seal(n, false)).collect();
        assert!(open(&first).iter().all(Result::is_ok));
        assert!(open(&[seal(10, true)])[0].is_ok(), "the key update");
        assert!(
            open(&[seal(7, true), seal(9, true)])
                .iter()
                .all(Result::is_ok)
        );
        assert_eq!(
            open(&[seal(8, false)])[0],
            Err(Error::AuthFailed),
            "one by one: {one_by_one}"
        );
    }
}

/// A packet of a GRO batch for [`gro_opens_what_one_datagram_at_a_time_opens`]: its full
/// number (a 1-byte truncation on the wire, so that which number a datagram decodes to
/// depends on the ones before it), whether it is forged, whether it carries the next key
/// phase (sealed with the next generation's keys: a key update in the middle of a batch),
/// whether a reserved bit is set (sealed by ring, which seals what the core refuses to:
/// authentic, and still refused), and whether a Handshake packet comes before it in its
/// datagram.
#[derive(Clone, Copy, Debug)]
struct GroPacket {
    number: u64,
    forged: bool,
    next_phase: bool,
    reserved: bool,
    coalesced: bool,
}

/// A packet that is forged with probability `rate`, of the next key phase with half that,
/// with a reserved bit or coalesced with a third each.
fn gro_packet(rate: f64) -> impl proptest::strategy::Strategy<Value = GroPacket> {
    use proptest::prelude::*;
    (
        0u64..400,
        prop::bool::weighted(rate),
        prop::bool::weighted(rate / 2.0),
        prop::bool::weighted(rate / 3.0),
        prop::bool::weighted(rate / 3.0),
    )
        .prop_map(
            |(number, forged, next_phase, reserved, coalesced)| GroPacket {
                number,
                forged,
                next_phase,
                reserved,
                coalesced,
            },
        )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, failure_persistence: None, ..Default::default() })]

    /// Opening a GRO batch, which may decrypt its packets ahead in one batch under the
    /// packet numbers they would decode to if the ones before them authenticated, gives
    /// every datagram exactly what opening the datagrams one at a time gives: the outcome,
    /// the bytes left in the buffer, the counters and the largest number received. Forged
    /// packets in the middle move where later numbers decode to (a 1-byte packet number
    /// wraps every 256), a key update in the middle changes the keys, and a low integrity
    /// limit can be reached in the middle, refusing the rest; the last datagram may be
    /// shorter. Groups whose datagrams are all lone packets that authenticate take a path of
    /// their own, which the rest leave.
    #[test]
    fn gro_opens_what_one_datagram_at_a_time_opens(
        suite in proptest::sample::select(CipherSuite::ALL.to_vec()),
        largest in proptest::option::of(0u64..300),
        integrity in proptest::option::of(1u64..5),
        // Batches with nothing out of the ordinary, a little, or much: groups of lone
        // packets that all authenticate are common in the first, rare in the last.
        packets in proptest::strategy::Strategy::prop_flat_map(
            proptest::sample::select(vec![0.0, 0.01, 0.05, 0.2]),
            |rate| proptest::collection::vec(gro_packet(rate), 1..24)
        ),
        len in proptest::sample::select(vec![24usize, 48, 70, 130, 260, 600]),
        in_order in proptest::bool::ANY,
        // The last datagram this many bytes shorter (GRO's last segment may be).
        last_short_by in proptest::option::of(1usize..40),
    ) {
        // In order, each packet numbered one past the one before, from one past the
        // largest received: every packet decodes to its own number.
        let mut packets = packets;
        if in_order {
            let first = largest.map_or(0, |largest| largest + 1);
            for (number, packet) in (first..).zip(&mut packets) {
                packet.number = number;
            }
        }
        let secret = vec![0x5a; suite.secret_len()];
        let limits = integrity.map(|integrity| quicseal::Limits {
            integrity,
            ..quicseal::Limits::for_suite(suite)
        });
        let config = FlowConfig { largest_packet_number: largest, limits, ..config() };
        let mut sealed = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            // A Handshake packet first takes 24 of the datagram's bytes where the 1-RTT
            // packet still has room for its sample.
            let coalesced = p.coalesced && len >= 48;
            let packet_len = if coalesced { len - 24 } else { len };
            // 13 bytes: a 10-byte header and room for the sample once sealed.
            let packet_len = match last_short_by {
                Some(by) if i + 1 == packets.len() => packet_len.saturating_sub(by).max(13),
                _ => packet_len,
            };
            let mut cleartext = packet(DCID, p.number, packet_len);
            if p.next_phase {
                cleartext[0] |= 0x04;
            }
            let mut out = if p.reserved && !p.next_phase {
                cleartext[0] |= 0x08;
                let keys = quicseal::TrafficSecret::new(suite, &secret).unwrap().key_material();
                let header = 1 + DCID.len() + 1;
                common::ring_seal(&keys, p.number, &cleartext[..header], DCID.len(), &cleartext[header..])
            } else {
                let mut out = vec![0u8; packet_len + 16];
                let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, self::config()).unwrap();
                let _ = tx.seal_numbered(p.number, &[&cleartext], &mut [&mut out]).unwrap();
                out
            };
            if p.forged {
                out[packet_len] ^= 1; // the tag's first byte
            }
            if coalesced {
                out.splice(0..0, handshake());
            }
            sealed.push(out);
        }
        let segment = len + 16;
        let mut batch_buffer = sealed.concat();
        let mut results = vec![Err(Error::Malformed); packets.len()];
        let mut batch_rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
        let _ = batch_rx.open_gro(&mut batch_buffer, segment, &mut results).unwrap();

        let mut single_rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
        let mut single_buffer = sealed.concat();
        for (i, datagram) in single_buffer.chunks_mut(segment).enumerate() {
            let outcome = single_rx.open_in_place(datagram);
            proptest::prop_assert_eq!(results[i], outcome, "datagram {}", i);
        }
        proptest::prop_assert_eq!(batch_buffer, single_buffer);
        proptest::prop_assert_eq!(batch_rx.counters(), single_rx.counters());
        proptest::prop_assert_eq!(batch_rx.largest_received(), single_rx.largest_received());
        proptest::prop_assert_eq!(batch_rx.generation(), single_rx.generation());
    }
}

/// A datagram of a GSO batch for [`gso_seals_what_one_datagram_at_a_time_seals`].
#[derive(Clone, Copy, Debug)]
enum GsoDatagram {
    /// A lone 1-RTT packet with the next packet number: the common case.
    Lone,
    /// A 1-RTT packet with a reserved bit set: refused.
    ReservedBit,
    /// A 1-RTT packet that reuses the number before it: refused.
    Reused,
    /// A 1-RTT packet that flips the key phase, as do the packets after it: a key update.
    NextPhase,
    /// A Handshake packet, then a 1-RTT packet: coalesced.
    Coalesced,
}

fn gso_datagram() -> impl proptest::strategy::Strategy<Value = GsoDatagram> {
    use proptest::prelude::*;
    prop_oneof![
        40 => Just(GsoDatagram::Lone),
        1 => Just(GsoDatagram::ReservedBit),
        1 => Just(GsoDatagram::Reused),
        1 => Just(GsoDatagram::NextPhase),
        1 => Just(GsoDatagram::Coalesced),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, failure_persistence: None, ..Default::default() })]

    /// Sealing a GSO batch, whose runs of lone 1-RTT packets of the current key phase a
    /// flow seals on a path of their own (source and destination in one piece), gives every
    /// datagram what sealing the datagrams one at a time gives: the outcome, the bytes, the
    /// counters, the generation and the packet-number state. Datagrams of other kinds, a key
    /// update, a low confidentiality limit, a change of packet-number length and a short
    /// last datagram (too short to seal, even) land anywhere in batches of up to three seal
    /// queues.
    #[test]
    fn gso_seals_what_one_datagram_at_a_time_seals(
        suite in proptest::sample::select(CipherSuite::ALL.to_vec()),
        kinds in proptest::collection::vec(gso_datagram(), 1..40),
        confidentiality in proptest::option::of(1u64..48),
        gso_size in proptest::sample::select(vec![64usize, 130, 300, 1400]),
        last_len in proptest::option::of(1usize..60),
        // The packet number's length on the wire before and from a datagram on: a change of
        // header length in the middle of a run.
        (pn_len, later_pn_len, switch_at) in (1usize..=4, 1usize..=4, 0usize..40),
    ) {
        let secret = vec![0x5a; suite.secret_len()];
        let limits = confidentiality.map(|confidentiality| quicseal::Limits {
            confidentiality,
            ..quicseal::Limits::for_suite(suite)
        });
        let config = FlowConfig { limits, ..config() };
        let stride = gso_size - 16;
        let (mut number, mut phase) = (0u64, false);
        let datagrams: Vec<Vec<u8>> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let last = i + 1 == kinds.len();
                let len = last_len.filter(|_| last).map_or(stride, |len| len.min(stride));
                if !matches!(kind, GsoDatagram::Reused) {
                    number += 1;
                }
                phase ^= matches!(kind, GsoDatagram::NextPhase);
                let kind = match kind {
                    GsoDatagram::Coalesced if len < 24 + 14 => &GsoDatagram::Lone,
                    kind => kind,
                };
                let pn_len = if i < switch_at { pn_len } else { later_pn_len };
                let mut datagram = match kind {
                    GsoDatagram::Coalesced => {
                        [handshake(), packet_with(DCID, number, pn_len, len - 24)].concat()
                    }
                    // Too short for a header: the bytes of a longer packet, cut.
                    _ => packet_with(DCID, number, pn_len, len.max(14))[..len].to_vec(),
                };
                let first = if matches!(kind, GsoDatagram::Coalesced) { 24 } else { 0 };
                if phase {
                    datagram[first] ^= 0x04;
                }
                if matches!(kind, GsoDatagram::ReservedBit) {
                    datagram[first] |= 0x08;
                }
                datagram
            })
            .collect();
        let new_tx = || TxFlow::<quicseal::backend::Auto>::from_secret(suite, &secret, config).unwrap();
        let mut one_by_one = new_tx();
        let expected: Vec<(Outcome, Vec<u8>)> = datagrams
            .iter()
            .map(|datagram| {
                let mut out = vec![0u8; datagram.len() + 16];
                (one_by_one.seal(&[datagram], &mut [&mut out]), out)
            })
            .collect();

        let mut tx = new_tx();
        let cleartext = datagrams.concat();
        let mut out = vec![0u8; cleartext.len() + 16 * datagrams.len()];
        let mut results = vec![Err(Error::Malformed); datagrams.len()];
        let batch = tx.seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results).unwrap();
        for (i, (outcome, bytes)) in expected.iter().enumerate() {
            proptest::prop_assert_eq!(results[i], *outcome, "datagram {}", i);
            if let Ok(datagram) = outcome {
                let at = i * gso_size;
                proptest::prop_assert_eq!(&out[at..at + datagram.len], &bytes[..datagram.len], "datagram {}", i);
            }
        }
        let ok = expected.iter().filter(|(outcome, _)| outcome.is_ok()).count();
        proptest::prop_assert_eq!((batch.datagrams, batch.ok), (datagrams.len(), ok));
        proptest::prop_assert_eq!(tx.counters(), one_by_one.counters());
        proptest::prop_assert_eq!(tx.generation(), one_by_one.generation());
        proptest::prop_assert_eq!(tx.largest_sealed(), one_by_one.largest_sealed());
        proptest::prop_assert_eq!(tx.sealed_in_generation(), one_by_one.sealed_in_generation());
    }
}
