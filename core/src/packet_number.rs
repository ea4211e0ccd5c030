//! Packet-number truncation and recovery (RFC 9000 §17.1, Appendix A.2 and A.3).

use crate::Error;

/// Largest packet number QUIC allows (2^62 - 1).
pub const MAX_PACKET_NUMBER: u64 = (1 << 62) - 1;

/// Longest packet-number field on the wire, in bytes; header protection samples as if every
/// packet number were this long (RFC 9001 §5.4.2).
pub const MAX_PN_LEN: usize = 4;

/// A packet number as it travels in a short header: its low 1 to 4 bytes.
///
/// ```
/// use quicseal::packet_number::TruncatedPacketNumber;
///
/// // RFC 9000 A.2: 0xac5c02 with 0xabe8b3 acknowledged fits in two bytes...
/// let truncated = TruncatedPacketNumber::encode(0xac5c02, Some(0xabe8b3))?;
/// assert_eq!((truncated.value(), truncated.encoded_len()), (0x5c02, 2));
/// // ...and a receiver that has seen 0xabe8b3 recovers it.
/// assert_eq!(truncated.decode(Some(0xabe8b3)), 0xac5c02);
/// # Ok::<(), quicseal::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TruncatedPacketNumber {
    value: u32,
    len: u8,
}

impl TruncatedPacketNumber {
    /// No packet number: a placeholder until one is read.
    pub(crate) const NONE: TruncatedPacketNumber = TruncatedPacketNumber { value: 0, len: 0 };

    /// Wraps `value` sent in `len` bytes. Fails unless `len` is 1 to 4 and `value` fits.
    pub fn new(value: u32, len: usize) -> Result<Self, Error> {
        if !(1..=4).contains(&len) || (len < 4 && value >> (8 * len) != 0) {
            return Err(Error::InvalidConfig);
        }
        Ok(TruncatedPacketNumber {
            value,
            len: len as u8,
        })
    }

    /// Truncates `full` to the fewest bytes that let a peer that has acknowledged up to
    /// `largest_acked` recover it (RFC 9000 Appendix A.2): twice the number of packets in
    /// flight must fit in the encoding window.
    pub fn encode(full: u64, largest_acked: Option<u64>) -> Result<Self, Error> {
        if full > MAX_PACKET_NUMBER {
            return Err(Error::InvalidConfig);
        }
        let in_flight = match largest_acked {
            Some(acked) if acked < full => full - acked,
            Some(_) => return Err(Error::PacketNumberReused),
            None => full + 1,
        };
        // Bits needed for 2 * in_flight values; a 4-byte number covers 2^31 in flight.
        let bits = u64::BITS - (2 * in_flight - 1).leading_zeros();
        let len = bits.div_ceil(8).max(1);
        if len > 4 {
            return Err(Error::InvalidConfig);
        }
        let mask = (1u64 << (8 * len)) - 1;
        Ok(TruncatedPacketNumber {
            value: (full & mask) as u32,
            len: len as u8,
        })
    }

    /// Reads `len` big-endian bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let value = bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        TruncatedPacketNumber {
            value,
            len: bytes.len() as u8,
        }
    }

    /// The first `len` bytes (1 to 4) of the big-endian `word`: a shift, where
    /// [`from_bytes`](Self::from_bytes) takes a byte at a time.
    pub(crate) fn leading(word: u32, len: usize) -> Self {
        let shift = 8 * MAX_PN_LEN.wrapping_sub(len) as u32;
        TruncatedPacketNumber {
            value: word.checked_shr(shift).unwrap_or(0),
            len: len as u8,
        }
    }

    /// The truncated value.
    pub fn value(self) -> u32 {
        self.value
    }

    /// How many bytes it takes on the wire (1 to 4).
    pub fn encoded_len(self) -> usize {
        usize::from(self.len)
    }

    /// Writes the `len()` big-endian bytes into the front of `out`.
    pub(crate) fn write(self, out: &mut [u8]) {
        let bytes = self.value.to_be_bytes();
        out[..self.encoded_len()].copy_from_slice(&bytes[4 - self.encoded_len()..]);
    }

    /// Recovers the full packet number closest to `largest + 1` that ends in these bits
    /// (RFC 9000 Appendix A.3). `largest` is the largest number received so far, if any.
    #[inline]
    pub fn decode(self, largest: Option<u64>) -> u64 {
        // Saturating: a `largest` beyond the packet-number space (2^62 - 1) cannot come from
        // a valid flow, but must not overflow either.
        let expected = largest.map_or(0, |l| l.saturating_add(1));
        let win = 1u64 << (8 * self.encoded_len());
        let half = win / 2;
        let mask = win - 1;
        // The next number, as almost every packet has: taken before the rest, so that a run
        // of packets decoded in turn waits on an addition each, not on the whole rule.
        if expected & mask == u64::from(self.value) {
            return expected;
        }
        let candidate = (expected & !mask) | u64::from(self.value);
        if expected >= half && candidate <= expected - half && candidate < (1 << 62) - win {
            candidate + win
        } else if candidate > expected.saturating_add(half) && candidate >= win {
            candidate - win
        } else {
            candidate
        }
    }

    /// True when `full` ends in these bits.
    pub(crate) fn matches(self, full: u64) -> bool {
        let mask = (1u64 << (8 * self.encoded_len())) - 1;
        full & mask == u64::from(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9000_a2_example() {
        // 0xac5c02 with 0xabe8b3 acknowledged needs 2 bytes; with 0xabe8b3 - 0x4000, 3 bytes.
        let tn = TruncatedPacketNumber::encode(0xac5c02, Some(0xabe8b3)).unwrap();
        assert_eq!((tn.value(), tn.encoded_len()), (0x5c02, 2));
        let tn = TruncatedPacketNumber::encode(0xace8fe, Some(0xabe8b3)).unwrap();
        assert_eq!((tn.value(), tn.encoded_len()), (0xace8fe, 3));
    }

    #[test]
    fn leading_bytes_of_a_word() {
        let word = 0xaabb_ccdd;
        let leading = |len| {
            let tn = TruncatedPacketNumber::leading(word, len);
            (tn.value(), tn.encoded_len())
        };
        assert_eq!(leading(1), (0xaa, 1));
        assert_eq!(leading(2), (0xaabb, 2));
        assert_eq!(leading(3), (0xaabbcc, 3));
        assert_eq!(leading(4), (0xaabb_ccdd, 4));
        assert_eq!(leading(0), (0, 0));
    }

    #[test]
    fn rfc9000_a3_example() {
        let tn = TruncatedPacketNumber::new(0x9b32, 2).unwrap();
        assert_eq!(tn.decode(Some(0xa82f30ea)), 0xa82f9b32);
    }

    #[test]
    fn encode_refuses_reuse_and_overflow() {
        assert_eq!(
            TruncatedPacketNumber::encode(5, Some(5)),
            Err(Error::PacketNumberReused)
        );
        assert_eq!(
            TruncatedPacketNumber::encode(1 << 40, Some(0)),
            Err(Error::InvalidConfig)
        );
        assert_eq!(
            TruncatedPacketNumber::encode(0, None)
                .unwrap()
                .encoded_len(),
            1
        );
        assert!(TruncatedPacketNumber::new(0x100, 1).is_err());
        assert!(TruncatedPacketNumber::new(0, 5).is_err());
    }

    #[test]
    fn decode_near_the_ends_of_the_space() {
        let tn = TruncatedPacketNumber::new(0xff, 1).unwrap();
        assert_eq!(tn.decode(None), 0xff);
        let top = TruncatedPacketNumber::new((MAX_PACKET_NUMBER & 0xffff_ffff) as u32, 4).unwrap();
        assert_eq!(top.decode(Some(MAX_PACKET_NUMBER - 1)), MAX_PACKET_NUMBER);
        // Out-of-range inputs are refused or saturate, never overflow.
        assert_eq!(
            TruncatedPacketNumber::encode(u64::MAX, None),
            Err(Error::InvalidConfig)
        );
        let _ = tn.decode(Some(u64::MAX));
    }

    /// `decode` is RFC 9000 Appendix A.3's pseudocode, transcribed here in wide integers, for
    /// every 1-byte truncated number and a spread of 2-byte ones, against largest numbers near
    /// the bottom and the top of the space: the shortcut for the next number changes nothing.
    #[test]
    fn decode_is_the_rfc_pseudocode() {
        fn rfc(largest: Option<u64>, truncated: u32, len: u32) -> i128 {
            let expected = largest.map_or(0, |l| i128::from(l) + 1);
            let win = 1i128 << (8 * len);
            let (hwin, mask) = (win / 2, win - 1);
            let candidate = (expected & !mask) | i128::from(truncated);
            if candidate <= expected - hwin && candidate < (1 << 62) - win {
                candidate + win
            } else if candidate > expected + hwin && candidate >= win {
                candidate - win
            } else {
                candidate
            }
        }
        let top = MAX_PACKET_NUMBER;
        let largest = [None]
            .into_iter()
            .chain((0..700).map(Some))
            .chain((0x1_0000 - 300..0x1_0000 + 300).map(Some))
            .chain((top - 700..=top).map(Some));
        for largest in largest {
            for (len, step) in [(1u32, 1usize), (2, 251)] {
                for truncated in (0..1u32 << (8 * len)).step_by(step) {
                    let tn = TruncatedPacketNumber::new(truncated, len as usize).unwrap();
                    assert_eq!(
                        i128::from(tn.decode(largest)),
                        rfc(largest, truncated, len),
                        "largest {largest:?}, {len}-byte {truncated:#x}"
                    );
                }
            }
        }
    }

    /// Every (largest_acked, in-flight distance) pair round-trips through the shortest encoding.
    #[test]
    fn encode_decode_round_trip_exhaustive_small() {
        for largest in 0u64..600 {
            for full in largest + 1..largest + 600 {
                let tn = TruncatedPacketNumber::encode(full, Some(largest)).unwrap();
                assert!(tn.matches(full));
                assert_eq!(
                    tn.decode(Some(largest)),
                    full,
                    "largest {largest} full {full}"
                );
            }
        }
    }
}
