//! The one error type of the core.

use core::fmt;

/// Why a packet, a batch or a flow operation was refused.
///
/// Small and `Copy`: it goes into per-packet result slices. No variant carries key-dependent
/// detail, so an error can be logged or returned to a peer-facing layer without leaking
/// anything about keys or plaintext.
///
/// The discriminants are stable ([`Error::status`], 1 and up, never reused): C ABIs, uapi
/// headers and descriptor rings can carry them as status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
#[repr(u8)]
pub enum Error {
    /// The bytes do not form a packet this flow can process: too short for the header or the
    /// header-protection sample, fixed bit cleared where greasing is not allowed, or a
    /// long-header Length that runs past the datagram.
    Malformed = 1,
    /// The AEAD tag did not verify. Nothing of the packet was released.
    AuthFailed = 2,
    /// The packet decrypted but its reserved header bits are not zero (RFC 9000 §17.3.1):
    /// a PROTOCOL_VIOLATION by the peer, or a caller bug on the sending side.
    ReservedBits = 3,
    /// The packet number is not above the largest one already sealed: sealing it would reuse a
    /// nonce.
    PacketNumberReused = 4,
    /// The explicit packet number does not end in the truncated bits the header carries.
    PacketNumberMismatch = 5,
    /// The key phase asks for a generation whose keys are not installed (a flow built from
    /// explicit keys whose caller has not supplied the next generation yet).
    KeyUnavailable = 6,
    /// The current generation has sealed as many packets as the AEAD's confidentiality limit
    /// allows (RFC 9001 §6.6): a key update is required before sealing more.
    ConfidentialityLimit = 7,
    /// The flow has seen as many forged packets as the AEAD's integrity limit allows
    /// (RFC 9001 §6.6): the connection must be closed.
    IntegrityLimit = 8,
    /// The destination (or a result slice) is too small for the output.
    BufferTooSmall = 9,
    /// A secret or key does not have the length the cipher suite needs.
    InvalidKeyLength = 10,
    /// A configuration value is out of range (for example a connection ID longer than 20 bytes).
    InvalidConfig = 11,
    /// The cipher suite name or code is not one of the three QUIC 1-RTT suites.
    UnknownSuite = 12,
    /// A GSO segment size too small for a header, 4 packet-number bytes, a sample and a tag.
    GsoSizeTooSmall = 13,
    /// A batch has more segments than the configured limit.
    TooManySegments = 14,
    /// A GSO segment would not come out at exactly `gso_size` bytes (only the last may be
    /// shorter), for example because it carries no 1-RTT packet to add a tag to.
    GsoLayout = 15,
    /// No flow is registered for the packet's destination connection ID.
    UnknownConnectionId = 16,
    /// The flow table is full.
    TableFull,
}

impl Error {
    /// A stable snake_case name, as used by the `expect` field of the test vectors.
    pub const fn code(self) -> &'static str {
        match self {
            Error::Malformed => "malformed",
            Error::AuthFailed => "auth_failed",
            Error::ReservedBits => "reserved_bits",
            Error::PacketNumberReused => "packet_number_reused",
            Error::PacketNumberMismatch => "packet_number_mismatch",
            Error::KeyUnavailable => "key_unavailable",
            Error::ConfidentialityLimit => "confidentiality_limit",
            Error::IntegrityLimit => "integrity_limit",
            Error::BufferTooSmall => "buffer_too_small",
            Error::InvalidKeyLength => "invalid_key_length",
            Error::InvalidConfig => "invalid_config",
            Error::UnknownSuite => "unknown_suite",
            Error::GsoSizeTooSmall => "gso_size_too_small",
            Error::TooManySegments => "too_many_segments",
            Error::GsoLayout => "gso_layout",
            Error::UnknownConnectionId => "unknown_connection_id",
            Error::TableFull => "table_full",
        }
    }

    /// The stable status code: 1 and up, never reused, 0 left free for success.
    pub const fn status(self) -> u8 {
        self as u8
    }

    /// Every variant, for tables and exhaustive tests.
    pub const ALL: [Error; 17] = [
        Error::Malformed,
        Error::AuthFailed,
        Error::ReservedBits,
        Error::PacketNumberReused,
        Error::PacketNumberMismatch,
        Error::KeyUnavailable,
        Error::ConfidentialityLimit,
        Error::IntegrityLimit,
        Error::BufferTooSmall,
        Error::InvalidKeyLength,
        Error::InvalidConfig,
        Error::UnknownSuite,
        Error::GsoSizeTooSmall,
        Error::TooManySegments,
        Error::GsoLayout,
        Error::UnknownConnectionId,
        Error::TableFull,
    ];

    /// Looks a variant up by its [`status`](Error::status), as a device or a C caller
    /// reports it.
    pub fn from_status(status: u8) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.status() == status)
    }

    /// Looks a variant up by its [`code`](Error::code).
    pub fn from_code(code: &str) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.code() == code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Malformed => "malformed packet",
            Error::AuthFailed => "packet authentication failed",
            Error::ReservedBits => "reserved header bits set",
            Error::PacketNumberReused => "packet number not above the largest sealed",
            Error::PacketNumberMismatch => "packet number does not match the header",
            Error::KeyUnavailable => "keys for the packet's key phase are not installed",
            Error::ConfidentialityLimit => "confidentiality limit reached: key update required",
            Error::IntegrityLimit => "integrity limit reached: connection must close",
            Error::BufferTooSmall => "buffer too small",
            Error::InvalidKeyLength => "secret or key has the wrong length for the suite",
            Error::InvalidConfig => "configuration value out of range",
            Error::UnknownSuite => "unknown cipher suite",
            Error::GsoSizeTooSmall => "gso_size too small for a protected packet",
            Error::TooManySegments => "too many segments in one batch",
            Error::GsoLayout => "segment does not fill gso_size",
            Error::UnknownConnectionId => "no flow for this connection ID",
            Error::TableFull => "flow table full",
        };
        f.write_str(text)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminants_follow_the_table() {
        for (i, error) in Error::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(error.status()), i + 1, "{error:?}");
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        for (i, a) in Error::ALL.iter().enumerate() {
            assert_eq!(Error::from_code(a.code()), Some(*a));
            for b in &Error::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
            }
        }
        assert_eq!(Error::from_code("no_such_error"), None);
    }

    #[test]
    fn statuses_round_trip() {
        for error in Error::ALL {
            assert_eq!(Error::from_status(error.status()), Some(error));
        }
        assert_eq!(Error::from_status(0), None, "0 is success");
        assert_eq!(Error::from_status(Error::ALL.len() as u8 + 1), None);
    }
}
