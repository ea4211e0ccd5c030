//! Key derivation (RFC 9001 §5.1, §6): a traffic secret gives a generation's packet key and
//! IV, the header-protection key, and with "quic ku" the next generation's secret.

use hmac::digest::OutputSizeUser;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::suite::Hash;
use crate::{CipherSuite, Error};

/// Longest secret any suite uses (SHA-384).
const MAX_SECRET_LEN: usize = 48;
/// Longest AEAD or header-protection key any suite uses.
const MAX_KEY_LEN: usize = 32;
/// Length of the AEAD IV and nonce.
pub(crate) const IV_LEN: usize = 12;

/// A TLS 1.3 traffic secret for one key generation. Wiped when dropped.
///
/// ```
/// use quicseal::{CipherSuite, TrafficSecret};
///
/// let secret = TrafficSecret::new(CipherSuite::ChaCha20Poly1305Sha256, &[9; 32])?;
/// let keys = secret.key_material();          // "quic key", "quic iv", "quic hp"
/// let next = secret.next().key_material();   // generation 1, via "quic ku"
/// assert_ne!(keys.key(), next.key());
/// assert_eq!(keys.hp().len(), 32);
/// # Ok::<(), quicseal::Error>(())
/// ```
#[derive(Clone, ZeroizeOnDrop)]
pub struct TrafficSecret {
    #[zeroize(skip)]
    suite: CipherSuite,
    bytes: [u8; MAX_SECRET_LEN],
}

impl TrafficSecret {
    /// Wraps `secret`, which must be as long as the suite's hash output (32 or 48 bytes).
    pub fn new(suite: CipherSuite, secret: &[u8]) -> Result<TrafficSecret, Error> {
        if secret.len() != suite.secret_len() {
            return Err(Error::InvalidKeyLength);
        }
        let mut bytes = [0; MAX_SECRET_LEN];
        bytes[..secret.len()].copy_from_slice(secret);
        Ok(TrafficSecret { suite, bytes })
    }

    /// The suite this secret belongs to.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.suite.secret_len()]
    }

    /// The next generation's secret: HKDF-Expand-Label(secret, "quic ku", "", Hash.length).
    pub fn next(&self) -> TrafficSecret {
        let mut next = TrafficSecret {
            suite: self.suite,
            bytes: [0; MAX_SECRET_LEN],
        };
        let len = self.suite.secret_len();
        self.expand_label(b"quic ku", &mut next.bytes[..len]);
        next
    }

    /// The packet key, IV and header-protection key this secret gives.
    pub fn key_material(&self) -> KeyMaterial {
        let mut material = KeyMaterial {
            suite: self.suite,
            key: [0; MAX_KEY_LEN],
            iv: [0; IV_LEN],
            hp: [0; MAX_KEY_LEN],
        };
        let key_len = self.suite.key_len();
        self.expand_label(b"quic key", &mut material.key[..key_len]);
        self.expand_label(b"quic iv", &mut material.iv);
        self.expand_label(b"quic hp", &mut material.hp[..key_len]);
        material
    }

    /// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 §7.1), with the secret as the
    /// PRK. `out` is at most 48 bytes, so the expansion cannot fail.
    fn expand_label(&self, label: &[u8], out: &mut [u8]) {
        let [len_hi, len_lo] = (out.len() as u16).to_be_bytes();
        let label_len = [(b"tls13 ".len() + label.len()) as u8];
        let info: [&[u8]; 6] = [&[len_hi, len_lo], &label_len, b"tls13 ", label, &[0], &[]];
        let expanded = match self.suite.hash() {
            Hash::Sha256 => hkdf_expand::<Hmac<Sha256>>(self.as_bytes(), &info, out),
            Hash::Sha384 => hkdf_expand::<Hmac<Sha384>>(self.as_bytes(), &info, out),
        };
        // HMAC takes a key of any length, and `out` is at most 48 bytes, far below HKDF's
        // 255 * Hash.length.
        debug_assert!(expanded, "HKDF-Expand-Label within its bounds");
    }
}

/// HKDF-Expand (RFC 5869 §2.3): `out` filled with T(1) | T(2) | ..., T(i) = HMAC(`prk`,
/// T(i - 1) | `info` | i); false, `out` untouched, if `prk` is refused or `out` is longer than
/// 255 blocks. Written over `hmac` rather than taken from the `hkdf` crate, whose expansion
/// keeps `expect`s that would be panic paths in the kernel object; the tests check it gives
/// `hkdf`'s bytes.
fn hkdf_expand<M: Mac + KeyInit + Clone>(prk: &[u8], info: &[&[u8]], out: &mut [u8]) -> bool {
    let block_len = <M as OutputSizeUser>::output_size();
    let Ok(keyed) = <M as KeyInit>::new_from_slice(prk) else {
        return false;
    };
    if out.len().div_ceil(block_len) > 255 {
        return false;
    }
    // T(i - 1), key material: kept in a buffer of our own, wiped at the end.
    let mut previous = Zeroizing::new([0u8; 64]);
    let mut previous_len = 0;
    let mut counter = 0u8;
    for chunk in out.chunks_mut(block_len) {
        counter = counter.wrapping_add(1);
        let mut mac = keyed.clone();
        Mac::update(&mut mac, previous.get(..previous_len).unwrap_or_default());
        for piece in info {
            Mac::update(&mut mac, piece);
        }
        Mac::update(&mut mac, &[counter]);
        let mut block = mac.finalize().into_bytes();
        for (to, from) in chunk.iter_mut().zip(block.iter()) {
            *to = *from;
        }
        for (to, from) in previous.iter_mut().zip(block.iter()) {
            *to = *from;
        }
        previous_len = block.len().min(previous.len());
        block.as_mut_slice().zeroize();
    }
    true
}

impl core::fmt::Debug for TrafficSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrafficSecret")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// One generation's packet key and IV, plus the header-protection key, as raw bytes.
///
/// What a TLS library that hands out keys rather than secrets provides (rustls's
/// `quic::Algorithm` does). Wiped when dropped.
#[derive(Clone, ZeroizeOnDrop)]
pub struct KeyMaterial {
    #[zeroize(skip)]
    suite: CipherSuite,
    key: [u8; MAX_KEY_LEN],
    iv: [u8; IV_LEN],
    hp: [u8; MAX_KEY_LEN],
}

impl KeyMaterial {
    /// Wraps explicit keys; `key` and `hp` must be the suite's key length, `iv` 12 bytes.
    pub fn new(suite: CipherSuite, key: &[u8], iv: &[u8], hp: &[u8]) -> Result<KeyMaterial, Error> {
        let key_len = suite.key_len();
        if key.len() != key_len || hp.len() != key_len || iv.len() != IV_LEN {
            return Err(Error::InvalidKeyLength);
        }
        let mut material = KeyMaterial {
            suite,
            key: [0; MAX_KEY_LEN],
            iv: [0; IV_LEN],
            hp: [0; MAX_KEY_LEN],
        };
        material.key[..key_len].copy_from_slice(key);
        material.iv.copy_from_slice(iv);
        material.hp[..key_len].copy_from_slice(hp);
        Ok(material)
    }

    /// The suite these keys are for.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The AEAD key.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.suite.key_len()]
    }

    /// The AEAD IV, XORed with the packet number to form each nonce.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The header-protection key.
    pub fn hp(&self) -> &[u8] {
        &self.hp[..self.suite.key_len()]
    }
}

impl core::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The nonce for `packet_number`: the IV XOR the packet number, big-endian, right-aligned
/// (RFC 9001 §5.3). One 64-bit XOR, inlined, so that the nonce goes straight where it is
/// used: written a byte at a time into a returned array, it made the wider loads that
/// copied it out wait for the bytes' stores (a store-forwarding stall on every packet).
#[inline]
pub(crate) fn nonce(iv: &[u8; IV_LEN], packet_number: u64) -> [u8; IV_LEN] {
    let (head, tail) = iv.split_at(IV_LEN - 8);
    let tail = u64::from_be_bytes(tail.try_into().unwrap_or_default()) ^ packet_number;
    let mut nonce = [0; IV_LEN];
    let (nonce_head, nonce_tail) = nonce.split_at_mut(IV_LEN - 8);
    nonce_head.copy_from_slice(head);
    nonce_tail.copy_from_slice(&tail.to_be_bytes());
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn rfc9001_a1_client_initial_keys() {
        let secret = TrafficSecret::new(
            CipherSuite::Aes128GcmSha256,
            &hex!("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"),
        )
        .unwrap();
        let keys = secret.key_material();
        assert_eq!(keys.key(), hex!("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(keys.iv(), &hex!("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(keys.hp(), hex!("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9001_a5_chacha20_keys_and_key_update() {
        let secret = TrafficSecret::new(
            CipherSuite::ChaCha20Poly1305Sha256,
            &hex!("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b"),
        )
        .unwrap();
        let keys = secret.key_material();
        assert_eq!(
            keys.key(),
            hex!("c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8")
        );
        assert_eq!(keys.iv(), &hex!("e0459b3474bdd0e44a41c144"));
        assert_eq!(
            keys.hp(),
            hex!("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")
        );
        assert_eq!(
            secret.next().as_bytes(),
            hex!("1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9")
        );
    }

    /// The hand-written expansion against the `hkdf` crate's, for both hashes, every output
    /// length up to three blocks and a few infos.
    #[test]
    fn hkdf_expand_matches_the_crate() {
        let prk: [u8; 48] = core::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3));
        let infos: [&[&[u8]]; 3] = [&[], &[b"tls13 ", b"quic key"], &[&[0, 16], b"x", &[]]];
        for info in infos {
            for len in 0..=96 {
                let (mut ours, mut theirs) = ([0u8; 96], [0u8; 96]);
                assert!(hkdf_expand::<Hmac<Sha256>>(
                    &prk[..32],
                    info,
                    &mut ours[..len]
                ));
                hkdf::Hkdf::<Sha256>::from_prk(&prk[..32])
                    .unwrap()
                    .expand_multi_info(info, &mut theirs[..len])
                    .unwrap();
                assert_eq!(ours, theirs, "SHA-256, {len} bytes");
                assert!(hkdf_expand::<Hmac<Sha384>>(&prk, info, &mut ours[..len]));
                hkdf::Hkdf::<Sha384>::from_prk(&prk)
                    .unwrap()
                    .expand_multi_info(info, &mut theirs[..len])
                    .unwrap();
                assert_eq!(ours, theirs, "SHA-384, {len} bytes");
            }
        }
        let mut too_long = [0u8; 256 * 32];
        assert!(!hkdf_expand::<Hmac<Sha256>>(&prk[..32], &[], &mut too_long));
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(
            TrafficSecret::new(CipherSuite::Aes256GcmSha384, &[0; 32]).err(),
            Some(Error::InvalidKeyLength)
        );
        assert!(TrafficSecret::new(CipherSuite::Aes256GcmSha384, &[0; 48]).is_ok());
        assert_eq!(
            KeyMaterial::new(CipherSuite::Aes128GcmSha256, &[0; 16], &[0; 11], &[0; 16]).err(),
            Some(Error::InvalidKeyLength)
        );
    }

    #[test]
    fn nonce_xors_packet_number_right_aligned() {
        let iv = hex!("e0459b3474bdd0e44a41c144");
        assert_eq!(nonce(&iv, 654360564), hex!("e0459b3474bdd0e46d417eb0"));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let keys = KeyMaterial::new(
            CipherSuite::Aes128GcmSha256,
            &[0xab; 16],
            &[0xcd; 12],
            &[0xef; 16],
        )
        .unwrap();
        let mut out = heapless::String::<128>::new();
        core::fmt::write(&mut out, format_args!("{keys:?}")).unwrap();
        assert!(!out.contains("ab") && !out.contains("171"));
    }
}
