//! The keys rustls derives for QUIC, captured as it hands them to the suite's algorithm.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use quicseal::{CipherSuite, Error, KeyMaterial};
use rustls::crypto::CryptoProvider;
use rustls::crypto::cipher::{AeadKey, Iv};
use rustls::crypto::ring::cipher_suite as ring_suites;
use rustls::quic::{Algorithm, HeaderProtectionKey, PacketKey};
use rustls::{CipherSuiteCommon, SupportedCipherSuite, Tls13CipherSuite};
use zeroize::Zeroizing;

/// One key rustls handed the algorithm, in the order it did.
pub enum Captured {
    /// A packet protection key and its IV.
    Packet {
        suite: CipherSuite,
        key: Zeroizing<Vec<u8>>,
        iv: Zeroizing<Vec<u8>>,
    },
    /// A header protection key.
    Header {
        suite: CipherSuite,
        key: Zeroizing<Vec<u8>>,
    },
}

impl core::fmt::Debug for Captured {
    /// The kind and suite only: never key bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Captured::Packet { suite, .. } => write!(f, "Packet({})", suite.name()),
            Captured::Header { suite, .. } => write!(f, "Header({})", suite.name()),
        }
    }
}

thread_local! {
    /// What the algorithm has captured on this thread while [`capture`] runs; `None` when
    /// no capture is armed.
    static CAPTURED: RefCell<Option<Vec<Captured>>> = const { RefCell::new(None) };
}

/// Runs `f` with the capture armed on this thread: every key a [`CaptureAlgorithm`] is given
/// meanwhile is also returned, in order. Disarmed again however `f` returns, panics included;
/// a capture inside another keeps its keys to itself.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Captured>) {
    /// Disarms on drop, restoring what an enclosing capture had.
    struct Armed(Option<Option<Vec<Captured>>>);
    impl Drop for Armed {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                CAPTURED.with(|captured| *captured.borrow_mut() = outer);
            }
        }
    }
    let outer = CAPTURED.with(|captured| captured.borrow_mut().replace(Vec::new()));
    let mut armed = Armed(Some(outer));
    let value = f();
    let outer = armed.0.take().unwrap_or_default();
    let keys = CAPTURED.with(|captured| core::mem::replace(&mut *captured.borrow_mut(), outer));
    (value, keys.unwrap_or_default())
}

fn keep(captured: impl FnOnce() -> Captured) {
    CAPTURED.with(|keys| {
        if let Some(keys) = keys.borrow_mut().as_mut() {
            keys.push(captured());
        }
    });
}

/// A TLS 1.3 suite's QUIC algorithm that is ring's, plus the capture: what rustls gets back
/// is ring's key, so a connection with nothing armed runs exactly as with ring.
pub struct CaptureAlgorithm {
    suite: CipherSuite,
    ring: &'static dyn Algorithm,
}

impl Algorithm for CaptureAlgorithm {
    fn packet_key(&self, key: AeadKey, iv: Iv) -> Box<dyn PacketKey> {
        keep(|| Captured::Packet {
            suite: self.suite,
            key: Zeroizing::new(key.as_ref().to_vec()),
            iv: Zeroizing::new(iv.as_ref().to_vec()),
        });
        self.ring.packet_key(key, iv)
    }

    fn header_protection_key(&self, key: AeadKey) -> Box<dyn HeaderProtectionKey> {
        keep(|| Captured::Header {
            suite: self.suite,
            key: Zeroizing::new(key.as_ref().to_vec()),
        });
        self.ring.header_protection_key(key)
    }

    fn aead_key_len(&self) -> usize {
        self.ring.aead_key_len()
    }

    fn fips(&self) -> bool {
        self.ring.fips()
    }
}

/// ring's TLS 1.3 suite for `suite`, its QUIC algorithm replaced by a [`CaptureAlgorithm`].
fn capturing(suite: CipherSuite) -> &'static Tls13CipherSuite {
    static SUITES: LazyLock<[(CipherSuite, &'static Tls13CipherSuite); 3]> = LazyLock::new(|| {
        [
            (
                CipherSuite::Aes128GcmSha256,
                ring_suites::TLS13_AES_128_GCM_SHA256,
            ),
            (
                CipherSuite::Aes256GcmSha384,
                ring_suites::TLS13_AES_256_GCM_SHA384,
            ),
            (
                CipherSuite::ChaCha20Poly1305Sha256,
                ring_suites::TLS13_CHACHA20_POLY1305_SHA256,
            ),
        ]
        .map(|(suite, ring)| {
            let ring = ring
                .tls13()
                .expect("ring's TLS 1.3 suites are TLS 1.3 suites");
            let algorithm: &'static CaptureAlgorithm = Box::leak(Box::new(CaptureAlgorithm {
                suite,
                ring: ring.quic.expect("ring's TLS 1.3 suites support QUIC"),
            }));
            let captured: &'static Tls13CipherSuite = Box::leak(Box::new(Tls13CipherSuite {
                common: CipherSuiteCommon {
                    suite: ring.common.suite,
                    hash_provider: ring.common.hash_provider,
                    confidentiality_limit: ring.common.confidentiality_limit,
                },
                hkdf_provider: ring.hkdf_provider,
                aead_alg: ring.aead_alg,
                quic: Some(algorithm),
            }));
            (suite, captured)
        })
    });
    SUITES
        .iter()
        .find(|(s, _)| *s == suite)
        .map(|&(_, captured)| captured)
        .expect("every quicseal suite has a ring suite")
}

/// ring's rustls provider offering `suites` (in that order of preference), each with a
/// [`CaptureAlgorithm`]: for a rustls config whose QUIC keys quicseal is to use.
pub fn provider(suites: &[CipherSuite]) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: suites
            .iter()
            .map(|&suite| SupportedCipherSuite::Tls13(capturing(suite)))
            .collect(),
        ..rustls::crypto::ring::default_provider()
    })
}

/// A connection's first 1-RTT keys, both directions, as quicseal takes them.
pub struct OneRttKeys {
    /// For sealing what this side sends.
    pub local: KeyMaterial,
    /// For opening what it receives.
    pub remote: KeyMaterial,
}

impl OneRttKeys {
    /// The keys captured while rustls produced a key change: exactly a header key and a
    /// packet key for the local direction, then the same for the remote one, all of one suite.
    pub fn from_captures(captured: &[Captured]) -> Result<OneRttKeys, Error> {
        match captured {
            [
                Captured::Header {
                    suite,
                    key: local_hp,
                },
                Captured::Packet {
                    suite: s1,
                    key: local_key,
                    iv: local_iv,
                },
                Captured::Header {
                    suite: s2,
                    key: remote_hp,
                },
                Captured::Packet {
                    suite: s3,
                    key: remote_key,
                    iv: remote_iv,
                },
            ] if [s1, s2, s3].iter().all(|s| **s == *suite) => Ok(OneRttKeys {
                local: KeyMaterial::new(*suite, local_key, local_iv, local_hp)?,
                remote: KeyMaterial::new(*suite, remote_key, remote_iv, remote_hp)?,
            }),
            _ => Err(Error::InvalidConfig),
        }
    }
}

/// The next generation's keys, from what was captured while rustls derived them (exactly
/// two packet keys, local then remote, of the suite of `current`) and the header keys of
/// the current ones, which key updates never change.
pub fn next_generation(captured: &[Captured], current: &OneRttKeys) -> Result<OneRttKeys, Error> {
    match captured {
        [
            Captured::Packet {
                suite,
                key: local_key,
                iv: local_iv,
            },
            Captured::Packet {
                suite: s1,
                key: remote_key,
                iv: remote_iv,
            },
        ] if *suite == current.local.suite() && *s1 == *suite => Ok(OneRttKeys {
            local: KeyMaterial::new(*suite, local_key, local_iv, current.local.hp())?,
            remote: KeyMaterial::new(*suite, remote_key, remote_iv, current.remote.hp())?,
        }),
        _ => Err(Error::InvalidConfig),
    }
}
