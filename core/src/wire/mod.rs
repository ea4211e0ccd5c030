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
#[inline]
pub fn leading_long_packets(
    byte: impl Fn(usize) -> Option<u8>,
    len: usize,
    unknown: UnknownVersions,
) -> Result<(usize, u64), Error> {
    if len == 0 {
        return Err(Error::Malformed);
    }
    match byte(0).ok_or(Error::Malformed)? {
        // Most datagrams: a 1-RTT packet alone, decided by its first byte.
        first if first & LONG_HEADER_FORM == 0 => Ok((0, 0)),
        _ => walk_long_packets(byte, len, unknown),
    }
}

/// [`leading_long_packets`] for a datagram that starts with a long header: out of line, so
/// that the walk's setup stays off the way of the 1-RTT packets that come alone.
#[inline(never)]
fn walk_long_packets(
    byte: impl Fn(usize) -> Option<u8>,
    len: usize,
    unknown: UnknownVersions,
) -> Result<(usize, u64), Error> {
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

/// The destination connection ID of a datagram's first packet, whose bytes `byte(i)` returns:
/// a long header says its length, a short header's is `short_dcid_len`, the receiver's own
/// choice (RFC 9000 §5.1). Coalesced packets share it (§12.2), so it names the datagram's
/// connection.
pub fn first_destination_id(
    byte: impl Fn(usize) -> Option<u8>,
    short_dcid_len: usize,
) -> Result<ConnectionId, Error> {
    let first = byte(0).ok_or(Error::Malformed)?;
    let (at, len) = match first & LONG_HEADER_FORM {
        0 => (1, short_dcid_len),
        _ => (6, usize::from(byte(5).ok_or(Error::Malformed)?)),
    };
    let mut bytes = [0u8; MAX_CID_LEN];
    let id = bytes.get_mut(..len).ok_or(Error::UnknownConnectionId)?;
    for (i, b) in id.iter_mut().enumerate() {
        *b = byte(at + i).ok_or(Error::Malformed)?;
    }
    ConnectionId::from_padded(bytes, len).ok_or(Error::UnknownConnectionId)
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

    #[test]
    fn first_destination_id_reads_either_header_form() {
        let at = |bytes: &'static [u8]| move |i: usize| bytes.get(i).copied();
        let id = |bytes: &[u8]| ConnectionId::new(bytes).unwrap();
        // A short header: the length is the receiver's.
        assert_eq!(
            first_destination_id(at(&[0x41, 7, 8, 9]), 2),
            Ok(id(&[7, 8]))
        );
        assert_eq!(first_destination_id(at(&[0x41]), 0), Ok(id(&[])));
        // A long header says its own, whatever the short headers' is.
        let long = &[0xe0, 0, 0, 0, 1, 3, 0xa, 0xb, 0xc, 0];
        assert_eq!(first_destination_id(at(long), 8), Ok(id(&[0xa, 0xb, 0xc])));
        // Cut short, or longer than any connection ID.
        assert_eq!(
            first_destination_id(at(&[0x41, 7]), 2),
            Err(Error::Malformed)
        );
        assert_eq!(first_destination_id(at(&[]), 0), Err(Error::Malformed));
        assert_eq!(
            first_destination_id(at(&[0xe0, 0, 0, 0, 1, 21]), 0),
            Err(Error::UnknownConnectionId)
        );
    }
}
