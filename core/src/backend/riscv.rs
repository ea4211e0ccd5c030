//! AES and GHASH on the RISC-V scalar-cryptography extensions (RV32): `aes32esmi`/`aes32esi`
//! (Zkne) for the AES rounds, `clmul`/`clmulh` (Zbkc) for GHASH's multiplication and `brev8`
//! (Zbkb) for its bit order. RustCrypto's `aes` and `ghash` have no backend for them, and
//! their software code costs a soft core about 211 instructions per byte of AES-128-GCM.
//!
//! The types implement RustCrypto's block-cipher and universal-hash traits, so the portable
//! backend's one AES-GCM (`portable::aes_gcm`, CTR from `ctr`, generic over the cipher and
//! the hash) and its AES header protection run on them unchanged: a build whose target
//! features include `zkne`, `zbkc` and `zbkb` picks them (`portable::Aes128` and the rest).
//! Only encryption: GCM and header protection never decrypt a block, so Zknd is not needed.
//!
//! Elsewhere (host tests) the five instructions are computed in software from their
//! definitions in the RISC-V scalar-crypto specification, so the algorithms around them are
//! tested against RustCrypto on every machine; in the simulator the firmware's vectors test
//! the instructions themselves.

#![allow(unsafe_code)]

use aes::cipher::consts::{U1, U16, U32};
use aes::cipher::inout::InOut;
use aes::cipher::{
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, Key, KeyInit,
    KeySizeUser, ParBlocksSizeUser,
};
use ghash::universal_hash::{UhfBackend, UhfClosure, UniversalHash};
use zeroize::Zeroize;

type Block = aes::Block;

/// The instructions: inline assembly where the build has the extensions.
#[cfg(all(
    target_arch = "riscv32",
    target_feature = "zkne",
    target_feature = "zbkc",
    target_feature = "zbkb"
))]
mod instructions {
    use core::arch::asm;

    macro_rules! byte_select {
        ($name:ident, $mnemonic:literal) => {
            #[inline(always)]
            pub(super) fn $name<const BS: u8>(rs1: u32, rs2: u32) -> u32 {
                let rd: u32;
                // SAFETY: a register-only instruction of an extension this build targets.
                unsafe {
                    asm!(
                        concat!($mnemonic, " {rd}, {rs1}, {rs2}, {bs}"),
                        rd = lateout(reg) rd,
                        rs1 = in(reg) rs1,
                        rs2 = in(reg) rs2,
                        bs = const BS,
                        options(pure, nomem, nostack),
                    )
                };
                rd
            }
        };
    }
    byte_select!(aes32esmi, "aes32esmi");
    byte_select!(aes32esi, "aes32esi");

    macro_rules! binary {
        ($name:ident, $mnemonic:literal) => {
            #[inline(always)]
            pub(super) fn $name(rs1: u32, rs2: u32) -> u32 {
                let rd: u32;
                // SAFETY: as above.
                unsafe {
                    asm!(
                        concat!($mnemonic, " {rd}, {rs1}, {rs2}"),
                        rd = lateout(reg) rd,
                        rs1 = in(reg) rs1,
                        rs2 = in(reg) rs2,
                        options(pure, nomem, nostack),
                    )
                };
                rd
            }
        };
    }
    binary!(clmul, "clmul");
    binary!(clmulh, "clmulh");

    #[inline(always)]
    pub(super) fn brev8(rs1: u32) -> u32 {
        let rd: u32;
        // SAFETY: as above.
        unsafe {
            asm!("brev8 {rd}, {rs1}", rd = lateout(reg) rd, rs1 = in(reg) rs1,
                 options(pure, nomem, nostack))
        };
        rd
    }
}

/// The instructions computed as the specification defines them, for tests on other machines.
#[cfg(not(all(
    target_arch = "riscv32",
    target_feature = "zkne",
    target_feature = "zbkc",
    target_feature = "zbkb"
)))]
mod instructions {
    /// AES's S-box, built once from its definition (inversion in GF(2^8), affine map).
    const SBOX: [u8; 256] = {
        let mut sbox = [0u8; 256];
        let mut x = 0usize;
        while x < 256 {
            // x^254 = x^-1 (0 for 0), by square and multiply.
            let mut inverse = 1u8;
            let mut exponent = 254;
            let mut base = x as u8;
            while exponent > 0 {
                if exponent & 1 == 1 {
                    inverse = multiply(inverse, base);
                }
                base = multiply(base, base);
                exponent >>= 1;
            }
            let b = if x == 0 { 0 } else { inverse };
            sbox[x] = b
                ^ b.rotate_left(1)
                ^ b.rotate_left(2)
                ^ b.rotate_left(3)
                ^ b.rotate_left(4)
                ^ 0x63;
            x += 1;
        }
        sbox
    };

    const fn multiply(mut a: u8, mut b: u8) -> u8 {
        let mut product = 0;
        while b != 0 {
            if b & 1 == 1 {
                product ^= a;
            }
            a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
            b >>= 1;
        }
        product
    }

    pub(super) fn aes32esmi<const BS: u8>(rs1: u32, rs2: u32) -> u32 {
        let s = SBOX[(rs2 >> (8 * BS)) as u8 as usize];
        let mixed = u32::from_le_bytes([multiply(s, 2), s, s, multiply(s, 3)]);
        rs1 ^ mixed.rotate_left(8 * u32::from(BS))
    }

    pub(super) fn aes32esi<const BS: u8>(rs1: u32, rs2: u32) -> u32 {
        let s = SBOX[(rs2 >> (8 * BS)) as u8 as usize];
        rs1 ^ u32::from(s).rotate_left(8 * u32::from(BS))
    }

    pub(super) fn clmul(a: u32, b: u32) -> u32 {
        (0..32)
            .filter(|i| b >> i & 1 == 1)
            .fold(0, |product, i| product ^ (a << i))
    }

    pub(super) fn clmulh(a: u32, b: u32) -> u32 {
        (1..32)
            .filter(|i| b >> i & 1 == 1)
            .fold(0, |product, i| product ^ (a >> (32 - i)))
    }

    pub(super) fn brev8(x: u32) -> u32 {
        u32::from_le_bytes(x.to_le_bytes().map(u8::reverse_bits))
    }
}

use instructions::{aes32esi, aes32esmi, brev8, clmul, clmulh};

/// A block's 16 bytes as four little-endian words, the state layout of the RV32 instructions
/// (column i in word i).
#[inline(always)]
fn words(block: &[u8]) -> [u32; 4] {
    let mut words = [0; 4];
    for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    words
}

#[inline(always)]
fn store(words: [u32; 4], block: &mut [u8]) {
    for (bytes, word) in block.chunks_exact_mut(4).zip(words) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
}

/// SubWord: the S-box on each byte.
#[inline(always)]
fn sub_word(w: u32) -> u32 {
    aes32esi::<3>(aes32esi::<2>(aes32esi::<1>(aes32esi::<0>(0, w), w), w), w)
}

/// The key schedule (FIPS 197 §5.2) of a key of `N_K` words into `WORDS` round-key words.
fn expand<const N_K: usize, const WORDS: usize>(key: &[u8]) -> [u32; WORDS] {
    const RCON: [u32; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
    let mut w = [0u32; WORDS];
    for (word, bytes) in w.iter_mut().zip(key.chunks_exact(4)).take(N_K) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for i in N_K..WORDS {
        let mut t = w[i - 1];
        if i % N_K == 0 {
            // RotWord on a little-endian word is a rotation right by a byte.
            t = sub_word(t.rotate_right(8)) ^ RCON[i / N_K - 1];
        } else if N_K > 6 && i % N_K == 4 {
            t = sub_word(t);
        }
        w[i] = w[i - N_K] ^ t;
    }
    w
}

/// One block through `ROUNDS` rounds of AES under the round keys `rk`.
#[inline(always)]
fn encrypt<const ROUNDS: usize>(rk: &[u32], block: &mut [u8]) {
    let s = words(block);
    let mut s = [s[0] ^ rk[0], s[1] ^ rk[1], s[2] ^ rk[2], s[3] ^ rk[3]];
    // Output column i takes row j's byte from column i + j: ShiftRows.
    macro_rules! column {
        ($op:ident, $k:expr, $a:expr, $b:expr, $c:expr, $d:expr) => {
            $op::<3>($op::<2>($op::<1>($op::<0>($k, $a), $b), $c), $d)
        };
    }
    for round in 1..ROUNDS {
        let k = &rk[4 * round..4 * round + 4];
        s = [
            column!(aes32esmi, k[0], s[0], s[1], s[2], s[3]),
            column!(aes32esmi, k[1], s[1], s[2], s[3], s[0]),
            column!(aes32esmi, k[2], s[2], s[3], s[0], s[1]),
            column!(aes32esmi, k[3], s[3], s[0], s[1], s[2]),
        ];
    }
    let k = &rk[4 * ROUNDS..4 * ROUNDS + 4];
    s = [
        column!(aes32esi, k[0], s[0], s[1], s[2], s[3]),
        column!(aes32esi, k[1], s[1], s[2], s[3], s[0]),
        column!(aes32esi, k[2], s[2], s[3], s[0], s[1]),
        column!(aes32esi, k[3], s[3], s[0], s[1], s[2]),
    ];
    store(s, block);
}

macro_rules! aes {
    ($name:ident, $key_size:ty, $key_words:literal, $rounds:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone)]
        #[allow(
            unreachable_pub,
            reason = "public through `PortableHeaderKey` on RISC-V builds"
        )]
        pub struct $name {
            rk: [u32; 4 * ($rounds + 1)],
        }

        impl KeySizeUser for $name {
            type KeySize = $key_size;
        }

        impl KeyInit for $name {
            fn new(key: &Key<Self>) -> Self {
                $name {
                    rk: expand::<$key_words, { 4 * ($rounds + 1) }>(key),
                }
            }
        }

        impl BlockSizeUser for $name {
            type BlockSize = U16;
        }

        impl BlockCipherEncrypt for $name {
            fn encrypt_with_backend(&self, f: impl BlockCipherEncClosure<BlockSize = U16>) {
                struct Backend<'a>(&'a $name);
                impl BlockSizeUser for Backend<'_> {
                    type BlockSize = U16;
                }
                impl ParBlocksSizeUser for Backend<'_> {
                    type ParBlocksSize = U1;
                }
                impl BlockCipherEncBackend for Backend<'_> {
                    #[inline(always)]
                    fn encrypt_block(&self, mut block: InOut<'_, '_, Block>) {
                        let mut bytes = block.clone_in();
                        encrypt::<$rounds>(&self.0.rk, &mut bytes);
                        *block.get_out() = bytes;
                    }
                }
                f.call(&Backend(self))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.rk.zeroize();
            }
        }
    };
}

aes!(Aes128, U16, 4, 10, "AES-128 encryption on Zkne.");
aes!(Aes256, U32, 8, 14, "AES-256 encryption on Zkne.");

/// GHASH (NIST SP 800-38D) on Zbkc and Zbkb. A block's polynomial has x^0 at its first
/// byte's top bit; with each byte's bits reversed (`brev8`), its four little-endian words hold
/// the polynomial in plain order, x^i at bit i, so the product is a plain carry-less product
/// reduced by x^128 + x^7 + x^2 + x + 1. The key and the accumulator stay in that order.
#[derive(Clone)]
pub(in crate::backend) struct GHash {
    h: [u32; 4],
    y: [u32; 4],
}

/// A block as a polynomial in plain bit order.
#[inline(always)]
fn polynomial(block: &[u8]) -> [u32; 4] {
    words(block).map(brev8)
}

/// a * b mod x^128 + x^7 + x^2 + x + 1.
#[inline(always)]
fn multiply(a: [u32; 4], b: [u32; 4]) -> [u32; 4] {
    let mut p = [0u32; 8];
    for (i, &a) in a.iter().enumerate() {
        for (j, &b) in b.iter().enumerate() {
            p[i + j] ^= clmul(a, b);
            p[i + j + 1] ^= clmulh(a, b);
        }
    }
    let join = |w: &[u32]| {
        w.iter()
            .rev()
            .fold(0u128, |value, &word| value << 32 | u128::from(word))
    };
    let (low, high) = (join(&p[..4]), join(&p[4..]));
    // high * x^128 = high * (x^7 + x^2 + x + 1); what that pushes past x^127 folds once more.
    let over = (high >> 127) ^ (high >> 126) ^ (high >> 121);
    let folded = high ^ (high << 1) ^ (high << 2) ^ (high << 7);
    let r = low ^ folded ^ over ^ (over << 1) ^ (over << 2) ^ (over << 7);
    [
        r as u32,
        (r >> 32) as u32,
        (r >> 64) as u32,
        (r >> 96) as u32,
    ]
}

impl KeySizeUser for GHash {
    type KeySize = U16;
}

impl KeyInit for GHash {
    fn new(h: &Key<Self>) -> Self {
        GHash {
            h: polynomial(h),
            y: [0; 4],
        }
    }
}

impl BlockSizeUser for GHash {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for GHash {
    type ParBlocksSize = U1;
}

impl UhfBackend for GHash {
    #[inline(always)]
    fn proc_block(&mut self, block: &Block) {
        let x = polynomial(block);
        let y = [
            self.y[0] ^ x[0],
            self.y[1] ^ x[1],
            self.y[2] ^ x[2],
            self.y[3] ^ x[3],
        ];
        self.y = multiply(y, self.h);
    }
}

impl UniversalHash for GHash {
    fn update_with_backend(&mut self, f: impl UhfClosure<BlockSize = U16>) {
        f.call(self);
    }

    fn finalize(self) -> Block {
        let mut tag = Block::default();
        store(self.y.map(brev8), &mut tag);
        tag
    }
}

impl Drop for GHash {
    fn drop(&mut self) {
        self.h.zeroize();
        self.y.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    use ghash::universal_hash::UniversalHash;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn aes_matches_rustcrypto(key in any::<[u8; 32]>(), block in any::<[u8; 16]>()) {
            let (mut mine, mut theirs) = (aes::Block::from(block), aes::Block::from(block));
            super::Aes128::new_from_slice(&key[..16]).unwrap().encrypt_block(&mut mine);
            aes::Aes128::new_from_slice(&key[..16]).unwrap().encrypt_block(&mut theirs);
            prop_assert_eq!(mine, theirs);
            super::Aes256::new_from_slice(&key).unwrap().encrypt_block(&mut mine);
            aes::Aes256::new_from_slice(&key).unwrap().encrypt_block(&mut theirs);
            prop_assert_eq!(mine, theirs);
        }

        #[test]
        fn ghash_matches_rustcrypto(h in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut mine = super::GHash::new_from_slice(&h).unwrap();
            let mut theirs = ghash::GHash::new_from_slice(&h).unwrap();
            mine.update_padded(&data);
            theirs.update_padded(&data);
            prop_assert_eq!(mine.finalize(), theirs.finalize());
        }
    }

    /// FIPS 197 Appendix C.1 and C.3.
    #[test]
    fn fips197_examples() {
        let block: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut out = aes::Block::from(block);
        super::Aes128::new_from_slice(&key[..16])
            .unwrap()
            .encrypt_block(&mut out);
        assert_eq!(hex::encode(out), "69c4e0d86a7b0430d8cdb78070b4c55a");
        let mut out = aes::Block::from(block);
        super::Aes256::new_from_slice(&key)
            .unwrap()
            .encrypt_block(&mut out);
        assert_eq!(hex::encode(out), "8ea2b7ca516745bfeafc49904b496089");
    }
}
