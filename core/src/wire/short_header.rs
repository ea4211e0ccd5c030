//! The 1-RTT short header (RFC 9000 §17.3.1):
//!
//! ```text
//! 0 1 S R R K P P | Destination Connection ID (0..20) | Packet Number (1..4)
//! ```
//!
//! The first byte holds the header form (0), the fixed bit (1), spin, two reserved bits, key
//! phase and the packet-number length minus one. The DCID's length is not on the wire: the
//! receiver chose it, so every flow is configured with it.

use crate::Error;
use crate::packet_number::TruncatedPacketNumber;

/// The fixed bit: always 1 unless the peer allows greasing it (RFC 9287).
pub const FIXED_BIT: u8 = 0x40;
/// The latency spin bit (RFC 9000 §17.4).
pub const SPIN_BIT: u8 = 0x20;
/// Two reserved bits, protected by header protection; zero after removing it.
pub const RESERVED_BITS: u8 = 0x18;
/// The key phase bit (RFC 9001 §6).
pub const KEY_PHASE_BIT: u8 = 0x04;
/// The packet-number length minus one.
pub const PN_LEN_BITS: u8 = 0x03;
/// Longest connection ID QUIC v1 allows.
pub const MAX_CID_LEN: usize = 20;
/// Longest short header: first byte, 20-byte DCID, 4-byte packet number.
pub const MAX_SHORT_HEADER_LEN: usize = 1 + MAX_CID_LEN + 4;

/// A connection ID of 0 to 20 bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectionId {
    len: u8,
    bytes: [u8; MAX_CID_LEN],
}

impl ConnectionId {
    /// Copies `bytes`, which must be at most 20 long.
    pub fn new(bytes: &[u8]) -> Result<ConnectionId, Error> {
        if bytes.len() > MAX_CID_LEN {
            return Err(Error::InvalidConfig);
        }
        let mut cid = ConnectionId {
            len: bytes.len() as u8,
            bytes: [0; MAX_CID_LEN],
        };
        cid.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(cid)
    }

    /// The ID of the first `len` bytes of `bytes`, whose others are zero: built where it
    /// is kept, with no copy (a copy's wide loads would wait on the narrow stores that
    /// just filled `bytes`). `None` for a `len` over 20.
    pub(crate) fn from_padded(bytes: [u8; MAX_CID_LEN], len: usize) -> Option<ConnectionId> {
        debug_assert!(bytes.get(len..).unwrap_or_default().iter().all(|&b| b == 0));
        (len <= MAX_CID_LEN).then_some(ConnectionId {
            len: len as u8,
            bytes,
        })
    }

    /// The ID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // `get`: `len <= MAX_CID_LEN` holds by construction, but the kernel object keeps no
        // panic path the compiler cannot see past.
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The ID's bytes and the zeros after them, as kept: a flow table hashes these as
    /// whole words.
    pub(crate) fn padded(&self) -> &[u8; MAX_CID_LEN] {
        &self.bytes
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the zero-length ID.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The length and the ID's own bytes, not the unused rest of the array (zeros, so equal IDs
/// still hash alike): with a byte-at-a-time hasher such as FNV, an 8-byte ID takes 9 steps
/// rather than the 29 of the whole array and its length prefix. ([`FlowTable`](crate::FlowTable)
/// hashes IDs its own way, a word at a time.)
impl core::hash::Hash for ConnectionId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u8(self.len);
        state.write(self.as_bytes());
    }
}

impl core::fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The meaning of a cleartext short header.
///
/// ```
/// use quicseal::packet_number::TruncatedPacketNumber;
/// use quicseal::wire::{ConnectionId, ShortHeader};
///
/// let header = ShortHeader {
///     fixed_bit: true,
///     spin: false,
///     key_phase: true,
///     dcid: ConnectionId::new(&[0xc1, 0xd2])?,
///     packet_number: TruncatedPacketNumber::new(0x42, 1)?,
/// };
/// let mut bytes = [0u8; 4];
/// assert_eq!(header.emit(&mut bytes)?, 4);
/// assert_eq!(bytes, [0x44, 0xc1, 0xd2, 0x42]);
/// assert_eq!(ShortHeader::parse(&bytes, 2)?, header);
/// # Ok::<(), quicseal::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShortHeader {
    /// The fixed bit; `false` only where the peer allows greasing it.
    pub fixed_bit: bool,
    /// The latency spin bit.
    pub spin: bool,
    /// The key phase: the key generation's number modulo 2.
    pub key_phase: bool,
    /// The destination connection ID.
    pub dcid: ConnectionId,
    /// The truncated packet number.
    pub packet_number: TruncatedPacketNumber,
}

impl ShortHeader {
    /// Parses a cleartext (unprotected) header whose DCID is `dcid_len` bytes long. The
    /// reserved bits must be zero.
    pub fn parse(bytes: &[u8], dcid_len: usize) -> Result<ShortHeader, Error> {
        let first = *bytes.first().ok_or(Error::Malformed)?;
        if first & 0x80 != 0 || dcid_len > MAX_CID_LEN {
            return Err(Error::Malformed);
        }
        if first & RESERVED_BITS != 0 {
            return Err(Error::ReservedBits);
        }
        let pn_len = pn_len(first);
        let pn_at = 1 + dcid_len;
        let pn_bytes = bytes.get(pn_at..pn_at + pn_len).ok_or(Error::Malformed)?;
        Ok(ShortHeader {
            fixed_bit: first & FIXED_BIT != 0,
            spin: first & SPIN_BIT != 0,
            key_phase: first & KEY_PHASE_BIT != 0,
            dcid: ConnectionId::new(&bytes[1..pn_at])?,
            packet_number: TruncatedPacketNumber::from_bytes(pn_bytes),
        })
    }

    /// Header length in bytes.
    pub fn len(&self) -> usize {
        1 + self.dcid.len() + self.packet_number.encoded_len()
    }

    /// A header is never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header into the front of `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut first = (self.packet_number.encoded_len() - 1) as u8;
        for (flag, bit) in [
            (self.fixed_bit, FIXED_BIT),
            (self.spin, SPIN_BIT),
            (self.key_phase, KEY_PHASE_BIT),
        ] {
            if flag {
                first |= bit;
            }
        }
        out[0] = first;
        out[1..1 + self.dcid.len()].copy_from_slice(self.dcid.as_bytes());
        self.packet_number.write(&mut out[1 + self.dcid.len()..]);
        Ok(len)
    }
}

/// The packet-number length a first byte announces (meaningful once unprotected).
pub(crate) const fn pn_len(first: u8) -> usize {
    (first & PN_LEN_BITS) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    /// What a connection ID feeds a hasher: its length and its own bytes, nothing of the
    /// unused rest of its array.
    #[test]
    fn connection_id_hashes_its_length_and_bytes() {
        use core::hash::{Hash, Hasher};
        #[derive(Default)]
        struct Recorder(std::vec::Vec<u8>);
        impl Hasher for Recorder {
            fn write(&mut self, bytes: &[u8]) {
                self.0.extend_from_slice(bytes);
            }
            fn finish(&self) -> u64 {
                0
            }
        }
        let written = |cid: &ConnectionId| {
            let mut recorder = Recorder::default();
            cid.hash(&mut recorder);
            recorder.0
        };
        let id = ConnectionId::new(b"\x01\x02\x03").unwrap();
        assert_eq!(written(&id), [3, 1, 2, 3]);
        assert_eq!(written(&ConnectionId::new(&[]).unwrap()), [0]);
        let longest = ConnectionId::new(&[7; MAX_CID_LEN]).unwrap();
        assert_eq!(written(&longest).len(), 1 + MAX_CID_LEN);
        assert_eq!(
            written(&id),
            written(&ConnectionId::new(&[1, 2, 3]).unwrap())
        );
    }

    #[test]
    fn test_deconstruct() {
        let header = ShortHeader::parse(&hex!("65 0102030405060708 a1b2"), 8).unwrap();
        assert!(header.fixed_bit && header.spin && header.key_phase);
        assert_eq!(header.dcid.as_bytes(), hex!("0102030405060708"));
        assert_eq!(
            (
                header.packet_number.value(),
                header.packet_number.encoded_len()
            ),
            (0xa1b2, 2)
        );
        assert_eq!(header.len(), 11);
    }

    #[test]
    fn test_construct() {
        let header = ShortHeader {
            fixed_bit: true,
            spin: false,
            key_phase: true,
            dcid: ConnectionId::new(&[]).unwrap(),
            packet_number: TruncatedPacketNumber::new(0xbff4, 3).unwrap(),
        };
        let mut out = [0u8; 8];
        assert_eq!(header.emit(&mut out), Ok(4));
        assert_eq!(&out[..4], hex!("4600bff4"));
        assert_eq!(ShortHeader::parse(&out[..4], 0), Ok(header));
        assert_eq!(header.emit(&mut out[..3]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn test_impossible_len() {
        assert_eq!(ShortHeader::parse(&[], 0), Err(Error::Malformed));
        assert_eq!(
            ShortHeader::parse(&hex!("43 0102"), 2),
            Err(Error::Malformed)
        );
        assert_eq!(
            ShortHeader::parse(&hex!("c3 0102"), 0),
            Err(Error::Malformed)
        );
        assert_eq!(
            ShortHeader::parse(&hex!("58 00"), 0),
            Err(Error::ReservedBits)
        );
        assert_eq!(ConnectionId::new(&[0; 21]), Err(Error::InvalidConfig));
    }
}
