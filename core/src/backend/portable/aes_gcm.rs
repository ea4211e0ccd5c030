//! AES-GCM (NIST SP 800-38D) as a stream: CTR mode from `ctr` over `aes`, GHASH from `ghash`.

use aes::cipher::consts::U16;
use aes::cipher::{
    BlockCipherEncrypt, BlockSizeUser, InnerIvInit, KeyInit, StreamCipherCore,
    StreamCipherCoreWrapper,
};
use ctr::CtrCore;
use ctr::flavors::Ctr32BE;
use zeroize::Zeroize;

use super::cipher_mac::CipherMac;
use super::mac::MacStream;
use super::{Direction, GHash};
use crate::Error;
use crate::backend::TAG_LEN;

type Block = aes::Block;

/// An AES-GCM key: the expanded AES key and the GHASH key H = AES_K(0^128).
#[derive(Clone)]
pub struct AesGcmKey<C> {
    cipher: C,
    ghash: GHash,
}

impl<C: KeyInit + BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> AesGcmKey<C> {
    pub(super) fn new(key: &[u8]) -> Result<Self, Error> {
        let cipher = C::new_from_slice(key).map_err(|_| Error::InvalidKeyLength)?;
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        h.as_mut_slice().zeroize();
        Ok(AesGcmKey { cipher, ghash })
    }

    #[inline(always)]
    pub(super) fn begin(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        direction: Direction,
    ) -> AesGcmStream<'_, C> {
        let mut j0 = Block::default();
        j0[..12].copy_from_slice(nonce);
        j0[15] = 1;
        let mut core = CtrCore::<&C, Ctr32BE>::inner_iv_init(&self.cipher, &j0);
        // E_K(J0) masks the tag; the text's keystream starts at J0 + 1.
        let mut tag_mask = Block::default();
        core.write_keystream_block(&mut tag_mask);
        let mut mac = MacStream::new(self.ghash.clone());
        mac.absorb(aad);
        let aad_len = mac.end_section();
        let ctr = StreamCipherCoreWrapper::from_core(core);
        AesGcmStream {
            text: CipherMac::new(ctr, mac, direction),
            tag_mask: tag_mask.into(),
            aad_len,
        }
    }
}

/// One packet's AES-GCM in progress.
pub(super) struct AesGcmStream<'k, C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> {
    text: CipherMac<StreamCipherCoreWrapper<CtrCore<&'k C, Ctr32BE>>, GHash>,
    tag_mask: [u8; 16],
    aad_len: u64,
}

impl<C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> AesGcmStream<'_, C> {
    #[inline(always)]
    pub(super) fn update(&mut self, input: &[u8], output: &mut [u8]) {
        self.text.update(input, output);
    }

    #[inline(always)]
    pub(super) fn update_in_place(&mut self, data: &mut [u8]) {
        self.text.update_in_place(data);
    }

    #[inline(always)]
    pub(super) fn finish(mut self) -> [u8; TAG_LEN] {
        let (mac, text_len) = self.text.end();
        let mut lengths = [0; 16];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(text_len * 8).to_be_bytes());
        let mut tag = mac.finish(lengths);
        for (t, m) in tag.iter_mut().zip(self.tag_mask) {
            *t ^= m;
        }
        self.tag_mask.zeroize();
        tag
    }
}
