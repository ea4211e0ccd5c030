//! Wire formats: the 1-RTT short header and the long headers that may precede it.

pub mod long_header;
pub mod short_header;
mod varint;

pub use long_header::{UnknownVersions, long_packet_len};
pub use short_header::{ConnectionId, MAX_CID_LEN, ShortHeader};

use crate::Error;
use long_header::LONG_HEADER_FORM;

/// Length and count of the long-header packets at the front of a datagram of `len` bytes
/// whose bytes `byte(i)` returns. Whatever follows them is a 1-RTT packet. An empty datagram
/// is malformed; `unknown` says what a long header of an unknown version does.
pub fn leading_long_packets(
    byte: impl Fn(usize) -> Option<u8>,
    len: usize,
    unknown: UnknownVersions,
) -> Result<(usize, u64), Error> {
    if len == 0 {
        return Err(Error::Malformed);
    }
    let (mut at, mut count) = (0, 0);
    while at < len && byte(at).ok_or(Error::Malformed)? & LONG_HEADER_FORM != 0 {
        let packet_len = long_packet_len(|i| at.checked_add(i).and_then(&byte), len - at, unknown)?;
        // A long header is at least 7 bytes; refusing a zero step keeps the loop finite even
        // if that ever stopped being true.
        if packet_len == 0 {
            return Err(Error::Malformed);
        }
        at += packet_len;
        count += 1;
    }
    Ok((at, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn coalesced_datagram_splits_before_the_short_header() {
        // A Handshake packet (13 bytes), a second one, then a short header.
        let datagram = hex!("e0 00000001 02 aaaa 01 bb 02 0011 e0 00000001 00 00 01 ff 41 00");
        let byte = |i: usize| datagram.get(i).copied();
        assert_eq!(
            leading_long_packets(byte, datagram.len(), UnknownVersions::PassThrough),
            Ok((22, 2))
        );
        assert_eq!(
            leading_long_packets(byte, 13, UnknownVersions::PassThrough),
            Ok((13, 1))
        );
        assert_eq!(
            leading_long_packets(byte, 0, UnknownVersions::PassThrough),
            Err(Error::Malformed)
        );
        assert_eq!(
            leading_long_packets(
                |i| [0x41u8, 0][..].get(i).copied(),
                2,
                UnknownVersions::PassThrough
            ),
            Ok((0, 0))
        );
    }
}
