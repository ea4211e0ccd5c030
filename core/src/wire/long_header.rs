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

/// What to do with a long header of a version other than 1 and 2, whose end cannot be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnknownVersions {
    /// Take the rest of the datagram as that packet, untouched: right when receiving, where it
    /// may be a version the QUIC stack above knows.
    PassThrough,
    /// Refuse the datagram as [`Error::Malformed`]: right when sealing, where a 1-RTT packet
    /// behind such a header would otherwise leave unprotected.
    Refuse,
}

/// Length of the long-header packet at the front of a datagram of `datagram_len` bytes whose
/// bytes `byte(i)` returns.
///
/// Initial, 0-RTT and Handshake packets end where their Length field says. Retry and Version
/// Negotiation packets have no Length field and take the rest of the datagram (nothing may
/// follow them, RFC 9000 §12.2); so do packets of unknown versions, unless `unknown` refuses
/// them.
pub fn long_packet_len(
    byte: impl Fn(usize) -> Option<u8>,
    datagram_len: usize,
    unknown: UnknownVersions,
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
        return match unknown {
            UnknownVersions::PassThrough => Ok(datagram_len),
            UnknownVersions::Refuse => Err(Error::Malformed),
        };
    };
    match kind {
        LongType::Retry => return Ok(datagram_len),
        LongType::Initial => {
            let (token_len, n) = varint::read(&byte, at).ok_or(Error::Malformed)?;
            at = usize::try_from(token_len)
                .ok()
                .and_then(|t| (at + n).checked_add(t))
                .filter(|&end| end <= datagram_len)
                .ok_or(Error::Malformed)?;
        }
        LongType::ZeroRtt | LongType::Handshake => {}
    }
    let (length, n) = varint::read(&byte, at).ok_or(Error::Malformed)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| at.checked_add(n)?.checked_add(l))
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
        long_packet_len(
            |i| bytes.get(i).copied(),
            bytes.len(),
            UnknownVersions::PassThrough,
        )
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
        let refuse = long_packet_len(|i| unknown.get(i).copied(), 15, UnknownVersions::Refuse);
        assert_eq!(refuse, Err(Error::Malformed));
    }

    #[test]
    fn a_token_or_length_past_the_datagram_is_malformed() {
        // Initial whose 8-byte token length is 2^62 - 1, then one whose Length is.
        let huge_token = hex!("c0 00000001 00 00 ffffffffffffffff 00");
        assert_eq!(len_of(&huge_token), Err(Error::Malformed));
        let huge_length = hex!("c0 00000001 00 00 00 ffffffffffffffff");
        assert_eq!(len_of(&huge_length), Err(Error::Malformed));
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
