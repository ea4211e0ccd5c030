//! `open`: arbitrary bytes as a received datagram, opened both ways.
//!
//! Input: a flow byte (which vector flow receives: `% 9`; bit 7 set means no packet received
//! yet), 8 bytes of largest-received packet number, a destination shortfall byte, the source
//! cuts and the destination cuts (see `Input::cuts`), then the datagram.
//!
//! Properties:
//! - `RxFlow::open_in_place` and `RxFlow::open` (source and destination cut into
//!   scatter-gather pieces) agree: the same `Result`, and on success the same output bytes.
//!   The one allowed difference: `open` into a destination shorter than the datagram may
//!   refuse with `BufferTooSmall` where the output would not have fitted.
//! - A failed open leaves no plaintext past the largest possible header: in place, each such
//!   byte is as received or zero (and the payload is all zeros after an authentication
//!   failure); for `open`, each destination byte there is the pre-fill or zero.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::packet_number::MAX_PACKET_NUMBER;
use quicseal::wire::{UnknownVersions, leading_long_packets};
use quicseal::{Error, FlowConfig, RxFlow};
use quicseal_fuzz::{Input, pieces, pieces_mut, vector_flows};

const TAG_LEN: usize = 16;
const PREFILL: u8 = 0xa5;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let choice = input.byte();
    let largest = input.u64() % (MAX_PACKET_NUMBER + 1);
    let shortfall = usize::from(input.byte() % 32);
    let (src_cuts, dst_cuts) = (input.cuts(), input.cuts());
    let datagram = input.rest();

    let flows = vector_flows();
    let flow = &flows[usize::from(choice) % flows.len()];
    let mut config = FlowConfig::new(flow.dcid_len);
    config.largest_packet_number = (choice & 0x80 == 0).then_some(largest);
    let new_rx = || -> RxFlow {
        RxFlow::from_secret(flow.suite, &flow.secret, config).expect("vector flows are valid")
    };

    let mut in_place = datagram.to_vec();
    let in_place_result = new_rx().open_in_place(&mut in_place);

    let dst_len = datagram.len().saturating_sub(shortfall);
    let mut out = vec![PREFILL; dst_len];
    let src = pieces(datagram, &src_cuts.fit(datagram.len()));
    let open_result = {
        let mut dst = pieces_mut(&mut out, &dst_cuts.fit(dst_len));
        new_rx().open(&src, &mut dst)
    };

    match (in_place_result, open_result) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "open and open_in_place disagree");
            assert!(a.len <= datagram.len());
            assert_eq!(&in_place[..a.len], &out[..a.len], "different plaintext");
        }
        (expected, Err(Error::BufferTooSmall)) if dst_len < datagram.len() => {
            // Allowed only if the output really would not fit.
            if let Ok(d) = expected {
                assert!(
                    d.len > dst_len,
                    "BufferTooSmall though {} bytes fit {dst_len}",
                    d.len
                );
            }
        }
        (a, b) => assert_eq!(a, b, "open and open_in_place disagree"),
    }

    if let Err(error) = in_place_result {
        // Past this bound nothing but payload (or tag) can lie, whatever the header says.
        let passthrough = leading_long_packets(
            |i| datagram.get(i).copied(),
            datagram.len(),
            UnknownVersions::PassThrough,
        )
        .map_or(0, |(at, _)| at);
        let bound = (passthrough + 1 + flow.dcid_len + 4).min(datagram.len());
        for i in bound..datagram.len() {
            assert!(
                in_place[i] == datagram[i] || in_place[i] == 0,
                "failed open_in_place ({error:?}) left byte {i} changed"
            );
        }
        if error == Error::AuthFailed {
            let payload_end = datagram.len().saturating_sub(TAG_LEN).max(bound);
            assert!(
                in_place[bound..payload_end].iter().all(|&b| b == 0),
                "authentication failure left the payload unzeroed"
            );
        }
    }
    if let Err(error) = open_result {
        let passthrough = leading_long_packets(
            |i| datagram.get(i).copied(),
            datagram.len(),
            UnknownVersions::PassThrough,
        )
        .map_or(0, |(at, _)| at);
        let bound = (passthrough + 1 + flow.dcid_len + 4).min(dst_len);
        for (i, &b) in out.iter().enumerate().skip(bound) {
            assert!(
                b == PREFILL || b == 0,
                "failed open ({error:?}) left byte {i} = {b:#04x}"
            );
        }
    }
});
