//! Cipher suites, flow configuration and the constants C callers size buffers with.

use std::ffi::c_char;

use quicseal_core::{CipherSuite, DEFAULT_MAX_GSO_SEGMENTS, FlowConfig, Limits, Usage};

use crate::boundary::{Status, guard_value};
use crate::quicseal_status::{self, *};

/// TLS_AES_128_GCM_SHA256 (0x1301): 32-byte secrets, 16-byte keys.
pub const QUICSEAL_TLS_AES_128_GCM_SHA256: u16 = 0x1301;
/// TLS_AES_256_GCM_SHA384 (0x1302): 48-byte secrets, 32-byte keys.
pub const QUICSEAL_TLS_AES_256_GCM_SHA384: u16 = 0x1302;
/// TLS_CHACHA20_POLY1305_SHA256 (0x1303): 32-byte secrets, 32-byte keys.
pub const QUICSEAL_TLS_CHACHA20_POLY1305_SHA256: u16 = 0x1303;

/// Bytes sealing adds to a 1-RTT packet (the AEAD tag), and opening removes.
pub const QUICSEAL_TAG_LEN: usize = 16;
/// Length of an AEAD IV.
pub const QUICSEAL_IV_LEN: usize = 12;
/// Longest destination connection ID (QUIC v1).
pub const QUICSEAL_MAX_CID_LEN: usize = 20;
/// Default `max_segments`: the segments in one UDP GSO send every Linux with UDP GSO takes
/// (newer kernels take 128).
pub const QUICSEAL_DEFAULT_MAX_SEGMENTS: usize = 64;

/// `quicseal_config.flags`: accept and send short headers with the fixed bit cleared; only
/// where the peer advertised `grease_quic_bit` (RFC 9287).
pub const QUICSEAL_CONFIG_GREASE_QUIC_BIT: u32 = 1;
/// `quicseal_config.flags`: `largest_packet_number` is set: the largest packet number already
/// sent (sending flow) or received (receiving flow) before this flow took over.
pub const QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER: u32 = 1 << 1;
/// `quicseal_config.flags`: use `confidentiality_limit`, `integrity_limit` and
/// `key_update_margin` instead of RFC 9001 §6.6's limits for the suite.
pub const QUICSEAL_CONFIG_LIMITS: u32 = 1 << 2;

/// Every flag this version knows; others are refused with `QUICSEAL_INVALID_CONFIG`.
const KNOWN_FLAGS: u32 = QUICSEAL_CONFIG_GREASE_QUIC_BIT
    | QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER
    | QUICSEAL_CONFIG_LIMITS;

/// How a flow reads its packets and batches. Start from `quicseal_config_default`, then
/// change fields; the library only reads it (during the `*_new_*` call).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct quicseal_config {
    /// Length of the destination connection IDs in this flow's short headers (0 to 20): the
    /// receiver chose it, it is not on the wire.
    pub dcid_len: usize,
    /// `QUICSEAL_CONFIG_*` bits; unknown bits are refused.
    pub flags: u32,
    /// Most segments one GSO or GRO batch may hold (at least 1).
    pub max_segments: usize,
    /// With `QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER`: the largest packet number already sent
    /// or received.
    pub largest_packet_number: u64,
    /// With `QUICSEAL_CONFIG_LIMITS`: packets one key generation may seal.
    pub confidentiality_limit: u64,
    /// With `QUICSEAL_CONFIG_LIMITS`: failed opens the flow may see across all its keys.
    pub integrity_limit: u64,
    /// With `QUICSEAL_CONFIG_LIMITS`: how many packets before the confidentiality limit a
    /// key update is reported as due.
    pub key_update_margin: u64,
}

impl quicseal_config {
    /// The core's configuration, or `QUICSEAL_INVALID_CONFIG` for unknown flags. The core
    /// checks the values when the flow is built.
    pub(crate) fn to_flow_config(self) -> Status<FlowConfig> {
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(QUICSEAL_INVALID_CONFIG);
        }
        let flag = |bit: u32| self.flags & bit != 0;
        Ok(FlowConfig {
            dcid_len: self.dcid_len,
            grease_quic_bit: flag(QUICSEAL_CONFIG_GREASE_QUIC_BIT),
            limits: flag(QUICSEAL_CONFIG_LIMITS).then_some(Limits {
                confidentiality: self.confidentiality_limit,
                integrity: self.integrity_limit,
                key_update_margin: self.key_update_margin,
            }),
            max_segments: self.max_segments,
            largest_packet_number: flag(QUICSEAL_CONFIG_LARGEST_PACKET_NUMBER)
                .then_some(self.largest_packet_number),
            // The C ABI has no hand-over of limits used yet.
            used: Usage::default(),
        })
    }
}

/// The defaults for destination connection IDs of `dcid_len` bytes: no flags, 64 segments
/// per batch, RFC 9001's limits for the suite.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_config_default(dcid_len: usize) -> quicseal_config {
    let defaults = quicseal_config {
        dcid_len,
        flags: 0,
        max_segments: DEFAULT_MAX_GSO_SEGMENTS,
        largest_packet_number: 0,
        confidentiality_limit: 0,
        integrity_limit: 0,
        key_update_margin: 0,
    };
    guard_value(defaults, || defaults)
}

/// Looks a suite up by its TLS code point.
pub(crate) fn suite(code: u16) -> Status<CipherSuite> {
    CipherSuite::from_code(code).map_err(quicseal_status::from)
}

/// Length of a traffic secret of `suite` (32 or 48 bytes), or 0 for an unknown suite.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_suite_secret_len(suite: u16) -> usize {
    guard_value(0, || {
        CipherSuite::from_code(suite).map_or(0, CipherSuite::secret_len)
    })
}

/// Length of the AEAD key and of the header-protection key of `suite` (16 or 32 bytes), or
/// 0 for an unknown suite.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_suite_key_len(suite: u16) -> usize {
    guard_value(0, || {
        CipherSuite::from_code(suite).map_or(0, CipherSuite::key_len)
    })
}

/// The library's version, e.g. "0.1.0": a static NUL-terminated string. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn quicseal_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(version) => version,
        Err(_) => c"unknown",
    };
    guard_value(VERSION.as_ptr(), || VERSION.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_core() {
        for (code, suite) in [
            QUICSEAL_TLS_AES_128_GCM_SHA256,
            QUICSEAL_TLS_AES_256_GCM_SHA384,
            QUICSEAL_TLS_CHACHA20_POLY1305_SHA256,
        ]
        .into_iter()
        .zip(CipherSuite::ALL)
        {
            assert_eq!(CipherSuite::from_code(code), Ok(suite));
            assert_eq!(quicseal_suite_secret_len(code), suite.secret_len());
            assert_eq!(quicseal_suite_key_len(code), suite.key_len());
        }
        assert_eq!(quicseal_suite_key_len(0x1304), 0);
        assert_eq!(QUICSEAL_TAG_LEN, quicseal_core::backend::TAG_LEN);
        assert_eq!(QUICSEAL_IV_LEN, quicseal_core::backend::NONCE_LEN);
        assert_eq!(QUICSEAL_MAX_CID_LEN, quicseal_core::wire::MAX_CID_LEN);
        assert_eq!(QUICSEAL_DEFAULT_MAX_SEGMENTS, DEFAULT_MAX_GSO_SEGMENTS);
    }

    #[test]
    fn config_maps_onto_the_core() {
        let defaults = quicseal_config_default(8);
        assert_eq!(defaults.to_flow_config(), Ok(FlowConfig::new(8)));
        let all = quicseal_config {
            flags: KNOWN_FLAGS,
            largest_packet_number: 41,
            confidentiality_limit: 1,
            integrity_limit: 2,
            key_update_margin: 3,
            ..defaults
        }
        .to_flow_config()
        .unwrap();
        assert!(all.grease_quic_bit);
        assert_eq!(all.largest_packet_number, Some(41));
        assert_eq!(all.limits.map(|l| l.key_update_margin), Some(3));
        let unknown = quicseal_config {
            flags: 1 << 3,
            ..defaults
        };
        assert_eq!(unknown.to_flow_config(), Err(QUICSEAL_INVALID_CONFIG));
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(quicseal_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
