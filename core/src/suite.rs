//! The three cipher suites QUIC v1 protects 1-RTT packets with, and their AEAD limits.

use crate::Error;

/// A TLS 1.3 cipher suite, as negotiated by the handshake (RFC 9001 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CipherSuite {
    /// TLS_AES_128_GCM_SHA256 (0x1301).
    Aes128GcmSha256,
    /// TLS_AES_256_GCM_SHA384 (0x1302).
    Aes256GcmSha384,
    /// TLS_CHACHA20_POLY1305_SHA256 (0x1303).
    ChaCha20Poly1305Sha256,
}

/// The hash function of a suite's HKDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

impl CipherSuite {
    /// All suites, in IANA order.
    pub const ALL: [CipherSuite; 3] = [
        CipherSuite::Aes128GcmSha256,
        CipherSuite::Aes256GcmSha384,
        CipherSuite::ChaCha20Poly1305Sha256,
    ];

    /// The IANA name, e.g. `TLS_AES_128_GCM_SHA256`.
    pub const fn name(self) -> &'static str {
        match self {
            CipherSuite::Aes128GcmSha256 => "TLS_AES_128_GCM_SHA256",
            CipherSuite::Aes256GcmSha384 => "TLS_AES_256_GCM_SHA384",
            CipherSuite::ChaCha20Poly1305Sha256 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }

    /// Looks a suite up by its IANA name.
    pub fn from_name(name: &str) -> Result<CipherSuite, Error> {
        CipherSuite::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or(Error::UnknownSuite)
    }

    /// The TLS cipher-suite code point, e.g. `0x1301`.
    pub const fn code(self) -> u16 {
        match self {
            CipherSuite::Aes128GcmSha256 => 0x1301,
            CipherSuite::Aes256GcmSha384 => 0x1302,
            CipherSuite::ChaCha20Poly1305Sha256 => 0x1303,
        }
    }

    /// Looks a suite up by its TLS code point.
    pub fn from_code(code: u16) -> Result<CipherSuite, Error> {
        CipherSuite::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or(Error::UnknownSuite)
    }

    /// Length of the AEAD key and of the header-protection key, in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            CipherSuite::Aes128GcmSha256 => 16,
            CipherSuite::Aes256GcmSha384 | CipherSuite::ChaCha20Poly1305Sha256 => 32,
        }
    }

    /// Length of a traffic secret: the output length of the suite's hash.
    pub const fn secret_len(self) -> usize {
        match self.hash() {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }

    pub(crate) const fn hash(self) -> Hash {
        match self {
            CipherSuite::Aes256GcmSha384 => Hash::Sha384,
            CipherSuite::Aes128GcmSha256 | CipherSuite::ChaCha20Poly1305Sha256 => Hash::Sha256,
        }
    }
}

/// How many packets one key generation may protect, and how many forgeries a flow may see
/// (RFC 9001 §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// Packets one generation may seal; sealing past it fails with
    /// [`Error::ConfidentialityLimit`].
    pub confidentiality: u64,
    /// Failed opens a flow may see, across all its keys; past it every open fails with
    /// [`Error::IntegrityLimit`].
    pub integrity: u64,
    /// How many packets before the confidentiality limit a key update is reported as due.
    pub key_update_margin: u64,
}

impl Limits {
    /// RFC 9001 §6.6's limits for `suite`, with a key update reported due 1/8 of the way
    /// before the confidentiality limit, early enough for an update to be confirmed.
    pub const fn for_suite(suite: CipherSuite) -> Limits {
        match suite {
            CipherSuite::Aes128GcmSha256 | CipherSuite::Aes256GcmSha384 => Limits {
                confidentiality: 1 << 23,
                integrity: 1 << 52,
                key_update_margin: 1 << 20,
            },
            // The confidentiality limit exceeds the packet-number space (2^62): disregarded.
            CipherSuite::ChaCha20Poly1305Sha256 => Limits {
                confidentiality: u64::MAX,
                integrity: 1 << 36,
                key_update_margin: 0,
            },
        }
    }

    /// True when a generation that has sealed `sealed` packets should be replaced.
    pub(crate) const fn key_update_due(&self, sealed: u64) -> bool {
        sealed >= self.confidentiality.saturating_sub(self.key_update_margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for suite in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_name(suite.name()), Ok(suite));
            assert_eq!(CipherSuite::from_code(suite.code()), Ok(suite));
        }
        assert_eq!(
            CipherSuite::from_name("TLS_AES_128_CCM_SHA256"),
            Err(Error::UnknownSuite)
        );
        assert_eq!(CipherSuite::from_code(0x1304), Err(Error::UnknownSuite));
    }

    #[test]
    fn limits_follow_rfc9001() {
        let gcm = Limits::for_suite(CipherSuite::Aes128GcmSha256);
        assert_eq!((gcm.confidentiality, gcm.integrity), (1 << 23, 1 << 52));
        assert!(!gcm.key_update_due((1 << 23) - (1 << 20) - 1));
        assert!(gcm.key_update_due((1 << 23) - (1 << 20)));
        let chacha = Limits::for_suite(CipherSuite::ChaCha20Poly1305Sha256);
        assert_eq!(chacha.integrity, 1 << 36);
        assert!(!chacha.key_update_due(1 << 62));
    }
}
