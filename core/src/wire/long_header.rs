//! Long-header packets (RFC 9000 §17.2) are not ours to protect: they carry their own keys.
//! The core only finds where each ends, so that the 1-RTT packet coalesced after them can be
//! protected and they themselves pass through untouched.

use super::varint;
use crate::Error;

/// The Header Form bit: set on long headers, clear on short ones.
pub const LONG_HEADER_FORM: u8 = 0x80;

const VERSION_NEGOTIATION: u32 = 0;
const QUIC_V1: u32 = 0x0000_0001;
const QUIC_V2: u32 = 0x6b33_43cf;

/// Long packet types, after mapping the version's type bits (RFC 9000 §17.2, RFC 9369 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LongType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

impl LongType {
    fn from_bits(version: u32, bits: u8) -> Option<LongType> {
        let types = match version {
            QUIC_V1 => [
                LongType::Initial,
                LongType::ZeroRtt,
                LongType::Handshake,
                LongType::Retry,
            ],
            QUIC_V2 => [
                LongType::Retry,
                LongType::Initial,
                LongType::ZeroRtt,
                LongType::Handshake,
            ],
            _ => return None,
        };
        Some(types[usize::from(bits & 0x03)])
    }
}

/// Length of the long-header packet at the front of a datagram of `datagram_len` bytes whose
/// bytes `byte(i)` returns.
///
/// Initial, 0-RTT and Handshake packets end where their Length field says. Retry, Version
/// Negotiation and packets of versions other than 1 and 2 have no Length field: they take the
/// rest of the datagram (RFC 9000 §12.2 allows nothing after them).
pub fn long_packet_len(
    byte: impl Fn(usize) -> Option<u8>,
    datagram_len: usize,
) -> Result<usize, Error> {
    let first = byte(0).ok_or(Error::Malformed)?;
    debug_assert!(first & LONG_HEADER_FORM != 0);
    let mut version = 0u32;
    for i in 1..5 {
        version = (version << 8) | u32::from(byte(i).ok_or(Error::Malformed)?);
    }
    let dcid_len = usize::from(byte(5).ok_or(Error::Malformed)?);
    let scid_len_at = 6 + dcid_len;
    let scid_len = usize::from(byte(scid_len_at).ok_or(Error::Malformed)?);
    let mut at = scid_len_at + 1 + scid_len;
    if at > datagram_len {
        return Err(Error::Malformed);
    }
    if version == VERSION_NEGOTIATION {
        return Ok(datagram_len);
    }
    let Some(kind) = LongType::from_bits(version, first >> 4) else {
        return Ok(datagram_len);
    };
    match kind {
        LongType::Retry => return Ok(datagram_len),
        LongType::Initial => {
            let (token_len, n) = varint::read(&byte, at).ok_or(Error::Malformed)?;
            at = usize::try_from(token_len)
                .ok()
                .and_then(|t| (at + n).checked_add(t))
                .ok_or(Error::Malformed)?;
        }
        LongType::ZeroRtt | LongType::Handshake => {}
    }
    let (length, n) = varint::read(&byte, at).ok_or(Error::Malformed)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| (at + n).checked_add(l))
        .ok_or(Error::Malformed)?;
    if end > datagram_len {
        return Err(Error::Malformed);
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn len_of(bytes: &[u8]) -> Result<usize, Error> {
        long_packet_len(|i| bytes.get(i).copied(), bytes.len())
    }

    /// A v1 Handshake packet (DCID 2 bytes, SCID 1 byte, Length 2) and 2 bytes after it.
    const HANDSHAKE: [u8; 15] = hex!("e0 00000001 02 aaaa 01 bb 02 0011 2233");

    #[test]
    fn handshake_ends_at_its_length() {
        assert_eq!(len_of(&HANDSHAKE), Ok(13));
    }

    #[test]
    fn initial_skips_its_token() {
        // Initial, DCID 0, SCID 0, token 2 bytes, Length 1 (2-byte varint), 1 byte of payload.
        let initial = hex!("c0 00000001 00 00 02 abcd 40 01 99 4100");
        assert_eq!(len_of(&initial), Ok(13));
    }

    #[test]
    fn v2_maps_its_type_bits() {
        // v2 type bits 0b11 are Handshake: same layout as the v1 example above.
        let mut v2 = HANDSHAKE;
        v2[0] = 0xf0;
        v2[1..5].copy_from_slice(&QUIC_V2.to_be_bytes());
        assert_eq!(len_of(&v2), Ok(13));
        // v2 type bits 0b00 are Retry: the rest of the datagram.
        v2[0] = 0xc0;
        assert_eq!(len_of(&v2), Ok(15));
    }

    #[test]
    fn unparseable_kinds_take_the_whole_datagram() {
        let mut retry = HANDSHAKE;
        retry[0] = 0xf0;
        assert_eq!(len_of(&retry), Ok(15));
        let mut negotiation = HANDSHAKE;
        negotiation[1..5].copy_from_slice(&[0; 4]);
        assert_eq!(len_of(&negotiation), Ok(15));
        let mut unknown = HANDSHAKE;
        unknown[1..5].copy_from_slice(&hex!("1a2a3a4a"));
        assert_eq!(len_of(&unknown), Ok(15));
    }

    #[test]
    fn truncated_headers_are_malformed() {
        for cut in 0..HANDSHAKE.len() {
            if cut < 13 {
                assert_eq!(
                    len_of(&HANDSHAKE[..cut]),
                    Err(Error::Malformed),
                    "cut at {cut}"
                );
            }
        }
        let mut too_long = HANDSHAKE;
        too_long[10] = 0x3f;
        assert_eq!(len_of(&too_long), Err(Error::Malformed));
    }
}
