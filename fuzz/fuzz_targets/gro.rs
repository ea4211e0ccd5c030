//! `gro`: an arbitrary GRO buffer and segment size, opened by one flow and by a flow table.
//!
//! Input: a flow byte (vector flow `% 9`), 8 bytes of largest-received packet number, 2 bytes
//! of segment size, a byte whose bit 0 takes one result slot away, then the buffer.
//!
//! Properties: `RxFlow::open_gro` and `FlowTable::open_gro` never panic; the batch is refused
//! whole exactly when documented (zero segment size, too many segments, too few result
//! slots) and then leaves the buffer untouched; otherwise the batch counts one outcome per
//! segment (`ok + failed`), and `RxFlow::open_gro` and `FlowTable::open_gro` give each
//! datagram the outcome and bytes that `open_in_place` on each segment in turn gives (the
//! table's compared with a twin table's, counters included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::packet_number::MAX_PACKET_NUMBER;
use quicseal::wire::ConnectionId;
use quicseal::{Batch, DEFAULT_MAX_GSO_SEGMENTS, Error, FlowConfig, FlowTable, Outcome, RxFlow};
use quicseal_fuzz::{Input, vector_flows};

/// A batch `open_gro` accepted: its tally, the segments it should have, its outcomes and the
/// bytes it left.
struct Accepted<'a> {
    batch: Batch,
    segments: usize,
    results: &'a [Outcome],
    gro: &'a [u8],
}

impl Accepted<'_> {
    /// Checks the batch against `open` given each segment of `buffer` in turn: one outcome a
    /// segment, each what `open` gives, and the same bytes.
    fn opens_as(&self, buffer: &[u8], segment_size: usize, mut open: impl FnMut(&mut [u8]) -> Outcome) {
        let Accepted { batch, segments, results, gro } = *self;
        assert_eq!(batch.datagrams, segments);
        assert_eq!(batch.ok + batch.failed, segments);
        assert_eq!(results[..segments].iter().filter(|r| r.is_ok()).count(), batch.ok);
        let mut one_by_one = buffer.to_vec();
        let mut chunks: Vec<&mut [u8]> = match one_by_one.is_empty() {
            true => vec![&mut one_by_one[..]],
            false => one_by_one.chunks_mut(segment_size).collect(),
        };
        for (chunk, result) in chunks.iter_mut().zip(results) {
            assert_eq!(&open(chunk), result, "open_gro and open_in_place disagree");
        }
        assert_eq!(gro, &one_by_one[..], "open_gro and open_in_place wrote different bytes");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let choice = input.byte();
    let largest = input.u64() % (MAX_PACKET_NUMBER + 1);
    let segment_size = usize::from(input.u16());
    let short_results = input.byte() & 1 == 1;
    let buffer = input.rest();

    let flows = vector_flows();
    let flow = &flows[usize::from(choice) % flows.len()];
    let mut config = FlowConfig::new(flow.dcid_len);
    config.largest_packet_number = (choice & 0x80 == 0).then_some(largest);
    let new_rx =
        || -> RxFlow { RxFlow::from_secret(flow.suite, &flow.secret, config).expect("valid") };

    let segments = match (buffer.len(), segment_size) {
        (0, _) => Some(1),
        (_, 0) => None,
        (n, size) => Some(n.div_ceil(size)),
    };
    let slots = segments
        .unwrap_or(1)
        .saturating_sub(usize::from(short_results));
    let expected_refusal = match segments {
        None => Some(Error::InvalidConfig),
        Some(s) if s > DEFAULT_MAX_GSO_SEGMENTS => Some(Error::TooManySegments),
        Some(s) if s > slots => Some(Error::BufferTooSmall),
        Some(_) => None,
    };

    // One flow.
    let mut gro = buffer.to_vec();
    let mut results: Vec<Outcome> = vec![Err(Error::Malformed); slots];
    let batch = new_rx().open_gro(&mut gro, segment_size, &mut results);
    match (batch, expected_refusal) {
        (Err(error), Some(expected)) => {
            assert_eq!(error, expected);
            assert_eq!(gro, buffer, "a refused batch was touched");
        }
        (Ok(batch), None) => {
            // The same datagrams opened one by one, in order, by a flow of their own.
            let mut rx = new_rx();
            let accepted = Accepted { batch, segments: segments.expect("accepted"), results: &results, gro: &gro };
            accepted.opens_as(buffer, segment_size, |datagram| rx.open_in_place(datagram));
        }
        (batch, expected) => panic!("batch {batch:?}, expected refusal {expected:?}"),
    }

    // A flow table: the vector flow under the DCID of the first segment's short header (so
    // that it routes), another under a DCID no packet names; and its twin, given the same
    // datagrams one at a time.
    let table_of = || {
        let mut table = FlowTable::<RxFlow, 2>::new(flow.dcid_len).ok()?;
        let cid = buffer
            .get(1..1 + flow.dcid_len)
            .and_then(|b| ConnectionId::new(b).ok())
            .unwrap_or_else(|| ConnectionId::new(&[0xee; 20][..flow.dcid_len]).expect("valid"));
        table.insert(cid, new_rx()).expect("room for two");
        if flow.dcid_len > 0 {
            let other = ConnectionId::new(&[0x5a; 20][..flow.dcid_len]).expect("valid");
            if other != cid {
                table.insert(other, new_rx()).expect("room for two");
            }
        }
        Some(table)
    };
    let (Some(mut table), Some(mut twin)) = (table_of(), table_of()) else {
        return;
    };
    let mut gro = buffer.to_vec();
    let mut results: Vec<Outcome> = vec![Err(Error::Malformed); slots];
    match table.open_gro(&mut gro, segment_size, &mut results) {
        Ok(batch) => {
            let accepted = Accepted { batch, segments: segments.expect("accepted"), results: &results, gro: &gro };
            accepted.opens_as(buffer, segment_size, |datagram| twin.open_in_place(datagram));
            assert_eq!(table.totals(), twin.totals());
            assert_eq!(table.unroutable(), twin.unroutable());
        }
        // The table has no segment limit of its own.
        Err(error) => {
            assert!(
                matches!(error, Error::InvalidConfig | Error::BufferTooSmall),
                "{error:?}"
            );
            assert_eq!(gro, buffer, "a refused batch was touched");
        }
    }
});
