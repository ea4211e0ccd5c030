//! Header-protection masks (RFC 9001 §5.4.3 and §5.4.4).

#[cfg(feature = "portable-aes")]
use super::{Aes128, Aes256};
#[cfg(feature = "portable-aes")]
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use chacha20::cipher::{KeyIvInit, StreamCipherCore};
use chacha20::variants::Ietf;
use chacha20::{ChaChaCore, R20};
use zeroize::{Zeroize, Zeroizing};

use crate::backend::{HeaderKey, MASK_LEN, SAMPLE_LEN};
use crate::{CipherSuite, Error};

/// A header-protection key of one of the three suites.
#[derive(Clone)]
pub enum PortableHeaderKey {
    /// AES-128 in ECB mode over the sample.
    #[cfg(feature = "portable-aes")]
    Aes128(Aes128),
    /// AES-256 in ECB mode over the sample.
    #[cfg(feature = "portable-aes")]
    Aes256(Aes256),
    /// ChaCha20 keyed with the sample's counter and nonce.
    ChaCha20(Zeroizing<[u8; 32]>),
}

impl PortableHeaderKey {
    pub(super) fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, Error> {
        #[cfg(feature = "portable-aes")]
        let invalid = |_| Error::InvalidKeyLength;
        Ok(match suite {
            #[cfg(feature = "portable-aes")]
            CipherSuite::Aes128GcmSha256 => {
                PortableHeaderKey::Aes128(Aes128::new_from_slice(key).map_err(invalid)?)
            }
            #[cfg(feature = "portable-aes")]
            CipherSuite::Aes256GcmSha384 => {
                PortableHeaderKey::Aes256(Aes256::new_from_slice(key).map_err(invalid)?)
            }
            #[cfg(not(feature = "portable-aes"))]
            CipherSuite::Aes128GcmSha256 | CipherSuite::Aes256GcmSha384 => {
                return Err(Error::UnknownSuite);
            }
            CipherSuite::ChaCha20Poly1305Sha256 => PortableHeaderKey::ChaCha20(Zeroizing::new(
                key.try_into().map_err(|_| Error::InvalidKeyLength)?,
            )),
        })
    }
}

impl core::fmt::Debug for PortableHeaderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PortableHeaderKey")
    }
}

/// AES-ECB of one block: the AES suites' mask is its first five bytes.
#[cfg(feature = "portable-aes")]
fn encrypt(
    aes: &impl BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>,
    sample: &[u8; SAMPLE_LEN],
) -> [u8; 16] {
    let mut block = aes::Block::from(*sample);
    aes.encrypt_block(&mut block);
    let out = block.into();
    block.as_mut_slice().zeroize();
    out
}

impl HeaderKey for PortableHeaderKey {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        let mut block = [0u8; 16];
        match self {
            #[cfg(feature = "portable-aes")]
            PortableHeaderKey::Aes128(aes) => block = encrypt(aes, sample),
            #[cfg(feature = "portable-aes")]
            PortableHeaderKey::Aes256(aes) => block = encrypt(aes, sample),
            PortableHeaderKey::ChaCha20(key) => {
                // counter = sample[0..4] little-endian, nonce = sample[4..16]; mask = the
                // keystream at that block, i.e. ChaCha20 over five zero bytes.
                // The block function is called directly: the sample picks any counter, up to
                // 2^32 - 1, where a stream cipher's end-of-keystream check would refuse.
                let counter = u32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]);
                let nonce: [u8; 12] = core::array::from_fn(|i| sample[4 + i]);
                let mut chacha = ChaChaCore::<R20, Ietf>::new(&(**key).into(), &nonce.into());
                chacha.set_block_pos(counter);
                let mut keystream = Default::default();
                chacha.write_keystream_block(&mut keystream);
                block.copy_from_slice(&keystream[..16]);
                keystream.as_mut_slice().zeroize();
            }
        }
        let mask = core::array::from_fn(|i| block[i]);
        block.zeroize();
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn rfc9001_a2_and_a3_aes_masks() {
        let client = PortableHeaderKey::new(
            CipherSuite::Aes128GcmSha256,
            &hex!("9f50449e04a0e810283a1e9933adedd2"),
        )
        .unwrap();
        assert_eq!(
            client.mask(&hex!("d1b1c98dd7689fb8ec11d242b123dc9b")),
            hex!("437b9aec36")
        );
        let server = PortableHeaderKey::new(
            CipherSuite::Aes128GcmSha256,
            &hex!("c206b8d9b9f0f37644430b490eeaa314"),
        )
        .unwrap();
        assert_eq!(
            server.mask(&hex!("2cd0991cd25b0aac406a5816b6394100")),
            hex!("2ec0d8356a")
        );
    }

    #[test]
    fn rfc9001_a5_chacha20_mask() {
        let key = PortableHeaderKey::new(
            CipherSuite::ChaCha20Poly1305Sha256,
            &hex!("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"),
        )
        .unwrap();
        assert_eq!(
            key.mask(&hex!("5e5cd55c41f69080575d7999c25a5bfb")),
            hex!("aefefe7d03")
        );
    }

    #[test]
    fn key_lengths_are_checked() {
        for suite in CipherSuite::ALL {
            assert_eq!(
                PortableHeaderKey::new(suite, &[0; 17]).err(),
                Some(Error::InvalidKeyLength)
            );
        }
    }
}
