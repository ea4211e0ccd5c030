//! Wire formats: the 1-RTT short header and the long headers that may precede it.

pub mod long_header;
pub mod short_header;
mod varint;

pub use long_header::long_packet_len;
pub use short_header::{ConnectionId, MAX_CID_LEN, ShortHeader};

use crate::Error;
use long_header::LONG_HEADER_FORM;

/// Length and count of the long-header packets at the front of a datagram of `len` bytes
/// whose bytes `byte(i)` returns. Whatever follows them is a 1-RTT packet. An empty datagram
/// is malformed.
pub fn leading_long_packets(
    byte: impl Fn(usize) -> Option<u8>,
    len: usize,
) -> Result<(usize, u64), Error> {
    if len == 0 {
        return Err(Error::Malformed);
    }
    let (mut at, mut count) = (0, 0);
    while at < len && byte(at).ok_or(Error::Malformed)? & LONG_HEADER_FORM != 0 {
        // Each long packet is at least 7 bytes long, so this always moves forward.
        at += long_packet_len(|i| byte(at + i), len - at)?;
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
        assert_eq!(leading_long_packets(byte, datagram.len()), Ok((22, 2)));
        assert_eq!(leading_long_packets(byte, 13), Ok((13, 1)));
        assert_eq!(leading_long_packets(byte, 0), Err(Error::Malformed));
        assert_eq!(
            leading_long_packets(|i| [0x41u8, 0][..].get(i).copied(), 2),
            Ok((0, 0))
        );
    }
}
