//! Status codes: one per core error, plus the boundary's own.

use std::ffi::{CStr, c_char, c_int};

use quicseal_core::Error;

use crate::boundary::guard_value;

/// What a call did. `QUICSEAL_OK` is zero; every other value is an error.
///
/// Codes 1 to 17 are the core's errors, in the order of its `Error::ALL`; codes from 100 on
/// belong to the C boundary. `quicseal_status_str` describes a code, `quicseal_status_name`
/// gives its stable snake_case name (the core's `Error::code`, as the test vectors'
/// `expect` fields use).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum quicseal_status {
    /// Success.
    #[default]
    QUICSEAL_OK = 0,
    /// The bytes do not form a packet this flow can process: too short for the header or
    /// the header-protection sample, fixed bit cleared where greasing is not allowed, or a
    /// long-header Length that runs past the datagram.
    QUICSEAL_MALFORMED = 1,
    /// The AEAD tag did not verify. Nothing of the packet was released (its payload bytes
    /// are zeroed).
    QUICSEAL_AUTH_FAILED = 2,
    /// The packet decrypted but its reserved header bits are not zero (a PROTOCOL_VIOLATION
    /// by the peer), or a packet to seal has them set.
    QUICSEAL_RESERVED_BITS = 3,
    /// The packet number is not above the largest one already sealed: sealing it would
    /// reuse a nonce.
    QUICSEAL_PACKET_NUMBER_REUSED = 4,
    /// The explicit packet number does not end in the truncated bits the header carries.
    QUICSEAL_PACKET_NUMBER_MISMATCH = 5,
    /// The key phase asks for a generation whose keys are not installed.
    QUICSEAL_KEY_UNAVAILABLE = 6,
    /// The current generation reached the AEAD's confidentiality limit: a key update is
    /// required before sealing more.
    QUICSEAL_CONFIDENTIALITY_LIMIT = 7,
    /// The flow reached the AEAD's integrity limit: the connection must be closed.
    QUICSEAL_INTEGRITY_LIMIT = 8,
    /// The destination (or the result array) is too small for the output.
    QUICSEAL_BUFFER_TOO_SMALL = 9,
    /// A secret or key does not have the length the cipher suite needs.
    QUICSEAL_INVALID_KEY_LENGTH = 10,
    /// A configuration value is out of range (a DCID longer than 20 bytes, zero
    /// `max_segments`, an unknown flag, a zero GRO segment size).
    QUICSEAL_INVALID_CONFIG = 11,
    /// The cipher suite code is not one of 0x1301, 0x1302, 0x1303.
    QUICSEAL_UNKNOWN_SUITE = 12,
    /// A GSO segment size too small for a header, 4 packet-number bytes, a sample and a tag.
    QUICSEAL_GSO_SIZE_TOO_SMALL = 13,
    /// A batch has more segments than the flow's `max_segments`.
    QUICSEAL_TOO_MANY_SEGMENTS = 14,
    /// A GSO segment would not come out at exactly `gso_size` bytes (only the last may be
    /// shorter), for example because it holds no 1-RTT packet to add a tag to.
    QUICSEAL_GSO_LAYOUT = 15,
    /// No flow is registered for the packet's destination connection ID.
    QUICSEAL_UNKNOWN_CONNECTION_ID = 16,
    /// The flow table is full.
    QUICSEAL_TABLE_FULL = 17,
    /// A required pointer was NULL, or a buffer pointer was NULL with a non-zero length.
    QUICSEAL_NULL_POINTER = 100,
    /// An argument no call can accept: buffers that are written overlap another buffer of
    /// the call, a misaligned pointer, or a length that runs past the address space.
    QUICSEAL_INVALID_ARGUMENT = 101,
    /// The library panicked, in this call or an earlier one on the same handle; the handle
    /// refuses every further call and must be freed. Never expected: please report it.
    QUICSEAL_PANIC = 102,
    /// The core returned an error this version of the C ABI has no code for. Never
    /// expected: please report it.
    QUICSEAL_INTERNAL_ERROR = 103,
}

use quicseal_status::*;

/// Every status, in declaration order.
pub(crate) const ALL_STATUSES: [quicseal_status; 22] = [
    QUICSEAL_OK,
    QUICSEAL_MALFORMED,
    QUICSEAL_AUTH_FAILED,
    QUICSEAL_RESERVED_BITS,
    QUICSEAL_PACKET_NUMBER_REUSED,
    QUICSEAL_PACKET_NUMBER_MISMATCH,
    QUICSEAL_KEY_UNAVAILABLE,
    QUICSEAL_CONFIDENTIALITY_LIMIT,
    QUICSEAL_INTEGRITY_LIMIT,
    QUICSEAL_BUFFER_TOO_SMALL,
    QUICSEAL_INVALID_KEY_LENGTH,
    QUICSEAL_INVALID_CONFIG,
    QUICSEAL_UNKNOWN_SUITE,
    QUICSEAL_GSO_SIZE_TOO_SMALL,
    QUICSEAL_TOO_MANY_SEGMENTS,
    QUICSEAL_GSO_LAYOUT,
    QUICSEAL_UNKNOWN_CONNECTION_ID,
    QUICSEAL_TABLE_FULL,
    QUICSEAL_NULL_POINTER,
    QUICSEAL_INVALID_ARGUMENT,
    QUICSEAL_PANIC,
    QUICSEAL_INTERNAL_ERROR,
];

impl From<Error> for quicseal_status {
    /// The core's own status number ([`Error::status`]), which the codes above restate for
    /// C: a unit test checks that every error maps to the variant of its name.
    fn from(error: Error) -> quicseal_status {
        quicseal_status::from_code(c_int::from(error.status())).unwrap_or(QUICSEAL_INTERNAL_ERROR)
    }
}

impl quicseal_status {
    /// The status for the code `code`, if there is one.
    fn from_code(code: c_int) -> Option<quicseal_status> {
        ALL_STATUSES
            .into_iter()
            .find(|&status| status as c_int == code)
    }

    /// The stable snake_case name: the core's `Error::code` for its errors.
    fn name(self) -> &'static CStr {
        match self {
            QUICSEAL_OK => c"ok",
            QUICSEAL_MALFORMED => c"malformed",
            QUICSEAL_AUTH_FAILED => c"auth_failed",
            QUICSEAL_RESERVED_BITS => c"reserved_bits",
            QUICSEAL_PACKET_NUMBER_REUSED => c"packet_number_reused",
            QUICSEAL_PACKET_NUMBER_MISMATCH => c"packet_number_mismatch",
            QUICSEAL_KEY_UNAVAILABLE => c"key_unavailable",
            QUICSEAL_CONFIDENTIALITY_LIMIT => c"confidentiality_limit",
            QUICSEAL_INTEGRITY_LIMIT => c"integrity_limit",
            QUICSEAL_BUFFER_TOO_SMALL => c"buffer_too_small",
            QUICSEAL_INVALID_KEY_LENGTH => c"invalid_key_length",
            QUICSEAL_INVALID_CONFIG => c"invalid_config",
            QUICSEAL_UNKNOWN_SUITE => c"unknown_suite",
            QUICSEAL_GSO_SIZE_TOO_SMALL => c"gso_size_too_small",
            QUICSEAL_TOO_MANY_SEGMENTS => c"too_many_segments",
            QUICSEAL_GSO_LAYOUT => c"gso_layout",
            QUICSEAL_UNKNOWN_CONNECTION_ID => c"unknown_connection_id",
            QUICSEAL_TABLE_FULL => c"table_full",
            QUICSEAL_NULL_POINTER => c"null_pointer",
            QUICSEAL_INVALID_ARGUMENT => c"invalid_argument",
            QUICSEAL_PANIC => c"panic",
            QUICSEAL_INTERNAL_ERROR => c"internal_error",
        }
    }

    /// A short English description: the core's `Display` text for its errors.
    fn description(self) -> &'static CStr {
        match self {
            QUICSEAL_OK => c"success",
            QUICSEAL_MALFORMED => c"malformed packet",
            QUICSEAL_AUTH_FAILED => c"packet authentication failed",
            QUICSEAL_RESERVED_BITS => c"reserved header bits set",
            QUICSEAL_PACKET_NUMBER_REUSED => c"packet number not above the largest sealed",
            QUICSEAL_PACKET_NUMBER_MISMATCH => c"packet number does not match the header",
            QUICSEAL_KEY_UNAVAILABLE => c"keys for the packet's key phase are not installed",
            QUICSEAL_CONFIDENTIALITY_LIMIT => c"confidentiality limit reached: key update required",
            QUICSEAL_INTEGRITY_LIMIT => c"integrity limit reached: connection must close",
            QUICSEAL_BUFFER_TOO_SMALL => c"buffer too small",
            QUICSEAL_INVALID_KEY_LENGTH => c"secret or key has the wrong length for the suite",
            QUICSEAL_INVALID_CONFIG => c"configuration value out of range",
            QUICSEAL_UNKNOWN_SUITE => c"unknown cipher suite",
            QUICSEAL_GSO_SIZE_TOO_SMALL => c"gso_size too small for a protected packet",
            QUICSEAL_TOO_MANY_SEGMENTS => c"too many segments in one batch",
            QUICSEAL_GSO_LAYOUT => c"segment does not fill gso_size",
            QUICSEAL_UNKNOWN_CONNECTION_ID => c"no flow for this connection ID",
            QUICSEAL_TABLE_FULL => c"flow table full",
            QUICSEAL_NULL_POINTER => c"NULL pointer argument",
            QUICSEAL_INVALID_ARGUMENT => {
                c"invalid argument: overlapping, misaligned or oversized buffer"
            }
            QUICSEAL_PANIC => c"internal panic: the handle is unusable and must be freed",
            QUICSEAL_INTERNAL_ERROR => c"internal error: unmapped core error",
        }
    }
}

/// A static, NUL-terminated English description of `status` (any `int`: codes this library
/// does not know give "unknown status"). Never NULL; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_status_str(status: c_int) -> *const c_char {
    guard_value(c"unknown status".as_ptr(), || {
        quicseal_status::from_code(status)
            .map_or(c"unknown status", quicseal_status::description)
            .as_ptr()
    })
}

/// A static, NUL-terminated snake_case name of `status`, stable across versions (for the
/// core's errors, the same names as the test vectors' `expect` fields, e.g. "auth_failed").
/// Codes this library does not know give "unknown". Never NULL; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_status_name(status: c_int) -> *const c_char {
    guard_value(c"unknown".as_ptr(), || {
        quicseal_status::from_code(status)
            .map_or(c"unknown", quicseal_status::name)
            .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_has_its_own_code() {
        for (i, error) in Error::ALL.into_iter().enumerate() {
            let status = quicseal_status::from(error);
            assert_ne!(status, QUICSEAL_INTERNAL_ERROR, "{error:?}");
            assert_eq!(
                status as c_int,
                i as c_int + 1,
                "{error:?} in Error::ALL order"
            );
            assert_eq!(status.name().to_str().unwrap(), error.code());
            assert_eq!(status.description().to_str().unwrap(), error.to_string());
        }
    }

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        for (i, status) in ALL_STATUSES.into_iter().enumerate() {
            assert_eq!(quicseal_status::from_code(status as c_int), Some(status));
            for other in &ALL_STATUSES[i + 1..] {
                assert_ne!(status.name(), other.name());
                assert_ne!(status.description(), other.description());
            }
        }
        assert_eq!(quicseal_status::from_code(18), None);
        assert_eq!(quicseal_status::from_code(-1), None);
    }

    #[test]
    fn strings_are_static_and_never_null() {
        // SAFETY: both functions return pointers to static NUL-terminated strings.
        let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        assert_eq!(text(quicseal_status_name(2)), "auth_failed");
        assert_eq!(text(quicseal_status_str(0)), "success");
        assert_eq!(text(quicseal_status_name(9999)), "unknown");
        assert_eq!(text(quicseal_status_str(c_int::MIN)), "unknown status");
    }
}
