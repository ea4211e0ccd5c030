//! `long_headers`: arbitrary bytes as the front of a datagram through the long-header walk.
//!
//! Input: a byte of claimed-length shortfall (the datagram length passed may be less than the
//! bytes readable), then the datagram.
//!
//! Properties, for `quicseal::wire::leading_long_packets` with both `UnknownVersions` values
//! and `long_packet_len`: never a panic; a length found is at most the datagram's; every step
//! makes progress (a long header is at least 7 bytes) so the walk ends; walking packet by
//! packet with `long_packet_len` reaches the same end and count; and whatever `Refuse`
//! accepts, `PassThrough` accepts identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::wire::{UnknownVersions, leading_long_packets, long_packet_len};
use quicseal_fuzz::Input;

/// First byte, version, DCID length, SCID length.
const MIN_LONG_HEADER: usize = 7;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let shortfall = usize::from(input.byte() % 8);
    let datagram = input.rest();
    let len = datagram.len().saturating_sub(shortfall);
    let byte = |i: usize| datagram.get(i).copied();

    let mut outcomes = [Err(quicseal::Error::Malformed); 2];
    for (outcome, unknown) in outcomes
        .iter_mut()
        .zip([UnknownVersions::PassThrough, UnknownVersions::Refuse])
    {
        *outcome = leading_long_packets(byte, len, unknown);
        if let Ok((at, count)) = *outcome {
            assert!(
                at <= len,
                "{unknown:?}: {at} bytes of a {len}-byte datagram"
            );
            assert!(
                count as usize * MIN_LONG_HEADER <= at,
                "{count} packets in {at} bytes"
            );
            assert_eq!(walk(byte, len, unknown), Some((at, count)), "{unknown:?}");
        }
    }
    if outcomes[1].is_ok() {
        assert_eq!(
            outcomes[0], outcomes[1],
            "Refuse accepted what PassThrough read otherwise"
        );
    }

    // One packet on its own, where there is a long header to read.
    if datagram.first().is_some_and(|b| b & 0x80 != 0) {
        for unknown in [UnknownVersions::PassThrough, UnknownVersions::Refuse] {
            if let Ok(n) = long_packet_len(byte, len, unknown) {
                assert!((MIN_LONG_HEADER..=len).contains(&n), "{n} of {len}");
            }
        }
    }
});

/// The walk `leading_long_packets` does, one `long_packet_len` at a time; `None` where it
/// fails.
fn walk(
    byte: impl Fn(usize) -> Option<u8> + Copy,
    len: usize,
    unknown: UnknownVersions,
) -> Option<(usize, u64)> {
    let (mut at, mut count) = (0, 0);
    while at < len && byte(at)? & 0x80 != 0 {
        let n = long_packet_len(|i| byte(at + i), len - at, unknown).ok()?;
        assert!(
            n >= MIN_LONG_HEADER && n <= len - at,
            "no progress or overrun: {n} at {at}"
        );
        at += n;
        count += 1;
    }
    Some((at, count))
}
