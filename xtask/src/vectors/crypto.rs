//! The reference key schedule and primitives, on `ring` and independent of `quicseal`.
//!
//! ring does HKDF, the AEADs and the header protection ciphers; written here is only what
//! QUIC adds on top: the HKDF-Expand-Label info encoding (RFC 8446 §7.1), the packet key
//! derivations and key update (RFC 9001 §5.1, §5.2, §6.1) and the AEAD nonce (§5.3).

use ring::aead::{self, quic};
use ring::hkdf::{self, KeyType};

/// A TLS 1.3 cipher suite QUIC 1-RTT packets can be protected with (RFC 9001 §5.3, §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Suite {
    pub const ALL: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::ChaCha20Poly1305];

    /// The suite's IANA name, as the vector files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "TLS_AES_128_GCM_SHA256",
            Suite::Aes256Gcm => "TLS_AES_256_GCM_SHA384",
            Suite::ChaCha20Poly1305 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }

    /// How the names of this suite's generated files start.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "aes128gcm",
            Suite::Aes256Gcm => "aes256gcm",
            Suite::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }

    /// The length of the suite's traffic secrets: its hash's output length.
    pub fn secret_len(self) -> usize {
        self.hkdf().len()
    }

    fn key_len(self) -> usize {
        self.aead().key_len()
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Suite::Aes128Gcm | Suite::ChaCha20Poly1305 => hkdf::HKDF_SHA256,
            Suite::Aes256Gcm => hkdf::HKDF_SHA384,
        }
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Suite::Aes128Gcm => &aead::AES_128_GCM,
            Suite::Aes256Gcm => &aead::AES_256_GCM,
            Suite::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    fn header_protection(self) -> &'static quic::Algorithm {
        match self {
            Suite::Aes128Gcm => &quic::AES_128,
            Suite::Aes256Gcm => &quic::AES_256,
            Suite::ChaCha20Poly1305 => &quic::CHACHA20,
        }
    }
}

/// Bytes in a packet protection IV, and so in a nonce (RFC 9001 §5.3).
const IV_LEN: usize = 12;

/// The packet protection material of one key generation (RFC 9001 §5.1, §6).
pub struct Keys {
    pub suite: Suite,
    /// The traffic secret of this generation.
    pub secret: Vec<u8>,
    /// The AEAD key: "quic key" from `secret`.
    pub key: Vec<u8>,
    /// The AEAD IV: "quic iv" from `secret`.
    pub iv: [u8; IV_LEN],
    /// The header protection key. Key updates don't change it (RFC 9001 §6.1), so it is
    /// always "quic hp" from generation 0's secret.
    pub hp: Vec<u8>,
}

impl Keys {
    /// Generation 0: the key, IV and header protection key all from `secret`.
    pub fn from_secret(suite: Suite, secret: &[u8]) -> Self {
        let hp = expand_label(suite, secret, "quic hp", suite.key_len());
        Self::with_hp(suite, secret.to_vec(), hp)
    }

    /// The next generation (RFC 9001 §6.1): a secret, key and IV from "quic ku", the same
    /// header protection key.
    pub fn next(&self) -> Self {
        let secret = expand_label(self.suite, &self.secret, "quic ku", self.suite.secret_len());
        Self::with_hp(self.suite, secret, self.hp.clone())
    }

    fn with_hp(suite: Suite, secret: Vec<u8>, hp: Vec<u8>) -> Self {
        let key = expand_label(suite, &secret, "quic key", suite.key_len());
        let iv = expand_label(suite, &secret, "quic iv", IV_LEN)
            .try_into()
            .expect("HKDF-Expand-Label returns the length asked for");
        Self {
            suite,
            secret,
            key,
            iv,
            hp,
        }
    }

    /// The AEAD nonce of packet `pn` (RFC 9001 §5.3): the IV XORed with the packet number
    /// as a big-endian integer, right-aligned.
    pub fn nonce(&self, pn: u64) -> [u8; IV_LEN] {
        let mut nonce = self.iv;
        for (byte, pn_byte) in nonce[IV_LEN - 8..].iter_mut().zip(pn.to_be_bytes()) {
            *byte ^= pn_byte;
        }
        nonce
    }

    /// Encrypts `payload` of packet `pn` with `header` as associated data: ciphertext || tag.
    pub fn seal(&self, pn: u64, header: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut sealed = payload.to_vec();
        let tag = self
            .packet_key()
            .seal_in_place_separate_tag(self.aead_nonce(pn), aead::Aad::from(header), &mut sealed)
            .expect("sealing fails only past the AEAD's length limit, far above a packet");
        sealed.extend_from_slice(tag.as_ref());
        sealed
    }

    /// Decrypts and authenticates `sealed` (ciphertext || tag) of packet `pn` with `header`
    /// as associated data; `None` if authentication fails.
    pub fn open(&self, pn: u64, header: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = sealed.to_vec();
        let payload_len = self
            .packet_key()
            .open_in_place(self.aead_nonce(pn), aead::Aad::from(header), &mut buffer)
            .ok()?
            .len();
        buffer.truncate(payload_len);
        Some(buffer)
    }

    /// The 5-byte header protection mask of a 16-byte ciphertext sample (RFC 9001 §5.4).
    pub fn hp_mask(&self, sample: &[u8]) -> [u8; 5] {
        quic::HeaderProtectionKey::new(self.suite.header_protection(), &self.hp)
            .expect("the header protection key has the suite's key length")
            .new_mask(sample)
            .expect("samples are 16 bytes")
    }

    fn packet_key(&self) -> aead::LessSafeKey {
        let key = aead::UnboundKey::new(self.suite.aead(), &self.key)
            .expect("the packet key has the suite's key length");
        aead::LessSafeKey::new(key)
    }

    fn aead_nonce(&self, pn: u64) -> aead::Nonce {
        aead::Nonce::assume_unique_for_key(self.nonce(pn))
    }
}

/// The keys of generations `0..count`, each generation's secret the "quic ku" of the one
/// before.
pub fn generations(suite: Suite, secret: &[u8], count: usize) -> Vec<Keys> {
    std::iter::successors(Some(Keys::from_secret(suite, secret)), |keys| {
        Some(keys.next())
    })
    .take(count)
    .collect()
}

/// The version 1 Initial salt (RFC 9001 §5.2).
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

/// A version 1 Initial traffic secret (RFC 9001 §5.2): `label` ("client in" or "server in")
/// expanded from HKDF-Extract(initial salt, client's first Destination Connection ID).
pub fn initial_secret(dcid: &[u8], label: &str) -> Vec<u8> {
    let suite = Suite::Aes128Gcm;
    let prk = hkdf::Salt::new(suite.hkdf(), &INITIAL_SALT_V1).extract(dcid);
    expand(&prk, label, suite.secret_len())
}

/// HKDF-Expand-Label(secret, label, "", len) (RFC 8446 §7.1), with the traffic secret
/// used directly as the PRK, as TLS 1.3 and QUIC do.
fn expand_label(suite: Suite, secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    expand(&hkdf::Prk::new_less_safe(suite.hkdf(), secret), label, len)
}

fn expand(prk: &hkdf::Prk, label: &str, len: usize) -> Vec<u8> {
    let info = hkdf_label(label, len);
    let mut output = vec![0; len];
    prk.expand(&[&info], OutputLen(len))
        .expect("QUIC's outputs are far below HKDF's 255-block limit")
        .fill(&mut output)
        .expect("the buffer has the length given to expand");
    output
}

/// The `HkdfLabel` structure with an empty context: the output length as a u16, the label
/// prefixed with "tls13 " as a u8-length-prefixed string, and a zero-length context.
fn hkdf_label(label: &str, len: usize) -> Vec<u8> {
    let full_label = format!("tls13 {label}");
    let mut info = Vec::with_capacity(2 + 1 + full_label.len() + 1);
    info.extend_from_slice(&u16::try_from(len).expect("outputs are short").to_be_bytes());
    info.push(u8::try_from(full_label.len()).expect("labels are short"));
    info.extend_from_slice(full_label.as_bytes());
    info.push(0);
    info
}

/// An HKDF output length, which ring takes as a [`KeyType`].
struct OutputLen(usize);

impl KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}
