//! The two ECN bits of the IP header (RFC 3168), as QUIC reads and writes them (RFC 9000 §13.4).

use quinn_udp::EcnCodepoint;

/// The Explicit Congestion Notification codepoint a datagram carries.
///
/// Our own type rather than quinn-udp's, which has no "not ECN-capable" value and would make
/// quinn-udp part of this crate's public API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// Not-ECT (`0b00`): the sender does not use ECN.
    #[default]
    NotEct,
    /// ECT(0) (`0b10`): ECN-capable transport; what QUIC senders mark by default.
    Ect0,
    /// ECT(1) (`0b01`): ECN-capable transport (L4S).
    Ect1,
    /// CE (`0b11`): a router on the path experienced congestion.
    Ce,
}

impl Ecn {
    /// The codepoint in the low two bits of a TOS or traffic-class byte.
    pub const fn from_bits(bits: u8) -> Ecn {
        match bits & 0b11 {
            0b10 => Ecn::Ect0,
            0b01 => Ecn::Ect1,
            0b11 => Ecn::Ce,
            _ => Ecn::NotEct,
        }
    }

    /// The codepoint's two bits.
    pub const fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0b00,
            Ecn::Ect0 => 0b10,
            Ecn::Ect1 => 0b01,
            Ecn::Ce => 0b11,
        }
    }

    pub(crate) fn to_quinn(self) -> Option<EcnCodepoint> {
        EcnCodepoint::from_bits(self.bits())
    }

    pub(crate) fn from_quinn(codepoint: Option<EcnCodepoint>) -> Ecn {
        codepoint.map_or(Ecn::NotEct, |c| Ecn::from_bits(c as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_through_quinn_udp() {
        for ecn in [Ecn::NotEct, Ecn::Ect0, Ecn::Ect1, Ecn::Ce] {
            assert_eq!(Ecn::from_bits(ecn.bits()), ecn);
            assert_eq!(Ecn::from_quinn(ecn.to_quinn()), ecn);
        }
        assert_eq!(
            Ecn::from_bits(0xfe),
            Ecn::Ect0,
            "only the low two bits count"
        );
    }
}
