//! The backend flows use by default: the fastest implementation this CPU has, chosen once.

use super::portable::{Portable, PortableHeaderKey, PortablePacketKey};
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use super::x86::{
    AesGcmKey, AesHeaderKey, BatchTables, ChaCha20Avx2HeaderKey, ChaCha20HeaderKey,
    ChaCha20Poly1305Avx2Key, ChaCha20Poly1305Key, Width,
};
use super::{
    Backend, BatchBuffers, HeaderKey, MASK_LEN, NONCE_LEN, OpenJob, PacketKey, Payload, SAMPLE_LEN,
    SealJob, Sealed, StridedPackets, TAG_LEN, open_each, prefetch, seal_each, seal_strided_batches,
};
use crate::{CipherSuite, Error};
use core::ops::RangeInclusive;

/// An implementation that [`Auto`] can pick: fused AES-GCM at each width, and
/// ChaCha20-Poly1305 on AVX-512 or AVX2 (see [`for_suite`](Implementation::for_suite)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Implementation {
    /// Fused AES-GCM on VAES and VPCLMULQDQ over 512-bit registers (x86_64 with AVX-512).
    Avx512,
    /// Fused AES-GCM on VAES and VPCLMULQDQ over 256-bit registers (x86_64 with AVX2).
    Avx2,
    /// Fused AES-GCM on AES-NI and PCLMULQDQ over 128-bit registers (x86_64).
    AesNi,
    /// RustCrypto's `aes`, `ctr` and `ghash` ([`Portable`]): every CPU.
    Portable,
}

impl Implementation {
    /// Every implementation, fastest first.
    pub const ALL: [Implementation; 4] = [
        Implementation::Avx512,
        Implementation::Avx2,
        Implementation::AesNi,
        Implementation::Portable,
    ];

    /// The name `QUICSEAL_BACKEND` takes: `avx512`, `avx2`, `aesni` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Avx512 => "avx512",
            Implementation::Avx2 => "avx2",
            Implementation::AesNi => "aesni",
            Implementation::Portable => "portable",
        }
    }

    /// The implementation called `name`.
    pub fn from_name(name: &str) -> Option<Implementation> {
        Implementation::ALL.into_iter().find(|i| i.name() == name)
    }

    /// True when this CPU (and this build) can run it: CPUID, read once and cached. Builds
    /// without SSE2 (soft-float kernel targets) compile the x86 code out.
    pub fn available(self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Implementation::Avx512 => Width::Avx512.available(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Implementation::Avx2 => Width::Avx2.available(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Implementation::AesNi => Width::AesNi.available(),
            Implementation::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest implementation available.
    pub fn detected() -> Implementation {
        Implementation::ALL
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Implementation::Portable)
    }

    /// What protects `suite` when this implementation is selected: itself for the AES-GCM
    /// suites and for ChaCha20-Poly1305 under `Avx512` and `Portable`. ChaCha20-Poly1305's
    /// 256-bit code needs AVX2 and BMI2 and no AES instructions, so under `Avx2` and `AesNi`
    /// (a CPU without VAES, or a forced choice) it runs there where the CPU has both, as
    /// every AVX2 CPU and most AES-NI CPUs since 2013 do, and on
    /// [`Portable`](Implementation::Portable) elsewhere.
    pub fn for_suite(self, suite: CipherSuite) -> Implementation {
        match (self, suite) {
            (Implementation::Avx2 | Implementation::AesNi, CipherSuite::ChaCha20Poly1305Sha256) => {
                if chacha20_avx2_available() {
                    Implementation::Avx2
                } else {
                    Implementation::Portable
                }
            }
            _ => self,
        }
    }

    /// What [`Auto`] uses: [`detected`](Self::detected), unless (in std builds) the
    /// environment variable `QUICSEAL_BACKEND` names another available implementation, as
    /// tests and benchmarks do to run each one. Read once per process.
    pub fn selected() -> Implementation {
        #[cfg(any(test, feature = "std"))]
        {
            static SELECTED: std::sync::OnceLock<Implementation> = std::sync::OnceLock::new();
            *SELECTED.get_or_init(|| {
                std::env::var("QUICSEAL_BACKEND")
                    .ok()
                    .and_then(|name| Implementation::from_name(&name))
                    .filter(|i| i.available())
                    .unwrap_or_else(Implementation::detected)
            })
        }
        #[cfg(not(any(test, feature = "std")))]
        Implementation::detected()
    }
}

/// The fastest backend this CPU has, per [`Implementation::selected`]; [`Portable`] for what
/// the fused code does not cover.
#[derive(Clone, Copy, Debug, Default)]
pub struct Auto;

impl Auto {
    /// The implementation that protects `suite` in the keys [`Auto`] makes: what a program
    /// (or the kernel module's `/proc` file and getsockopt) reports as in use.
    pub fn implementation(suite: CipherSuite) -> Implementation {
        Implementation::selected().for_suite(suite)
    }
}

impl Backend for Auto {
    type PacketKey = AutoPacketKey;
    type HeaderKey = AutoHeaderKey;

    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<AutoPacketKey, Error> {
        // The fused AES-GCM key takes either AES key length: the suite decides which is right.
        if key.len() != suite.key_len() {
            return Err(Error::InvalidKeyLength);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if let Some(width) = width(Auto::implementation(suite)) {
            let inner = match suite {
                CipherSuite::ChaCha20Poly1305Sha256 if width == Width::Avx512 => {
                    PacketKeyInner::ChaCha20Poly1305(ChaCha20Poly1305Key::new(key)?)
                }
                CipherSuite::ChaCha20Poly1305Sha256 => {
                    PacketKeyInner::ChaCha20Poly1305Avx2(ChaCha20Poly1305Avx2Key::new(key)?)
                }
                CipherSuite::Aes128GcmSha256 | CipherSuite::Aes256GcmSha384 => {
                    PacketKeyInner::AesGcm(AesGcmKey::new(width, key)?)
                }
            };
            return Ok(AutoPacketKey(inner));
        }
        Ok(AutoPacketKey(PacketKeyInner::Portable(
            Portable::packet_key(suite, key)?,
        )))
    }

    fn header_key(suite: CipherSuite, key: &[u8]) -> Result<AutoHeaderKey, Error> {
        if key.len() != suite.key_len() {
            return Err(Error::InvalidKeyLength);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if let Some(width) = width(Auto::implementation(suite)) {
            let inner = match suite {
                CipherSuite::ChaCha20Poly1305Sha256 if width == Width::Avx512 => {
                    HeaderKeyInner::ChaCha20(ChaCha20HeaderKey::new(key)?)
                }
                CipherSuite::ChaCha20Poly1305Sha256 => {
                    HeaderKeyInner::ChaCha20Avx2(ChaCha20Avx2HeaderKey::new(key)?)
                }
                CipherSuite::Aes128GcmSha256 | CipherSuite::Aes256GcmSha384 => {
                    HeaderKeyInner::Aes(AesHeaderKey::new(width, key)?)
                }
            };
            return Ok(AutoHeaderKey(inner));
        }
        Ok(AutoHeaderKey(HeaderKeyInner::Portable(
            Portable::header_key(suite, key)?,
        )))
    }
}

/// True when this CPU (and this build) has the AVX2 and BMI2 that ChaCha20-Poly1305's
/// 256-bit code needs (see [`Implementation::for_suite`]).
fn chacha20_avx2_available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return super::x86::chacha20_avx2_available();
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    false
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn width(implementation: Implementation) -> Option<Width> {
    match implementation {
        Implementation::Avx512 => Some(Width::Avx512),
        Implementation::Avx2 => Some(Width::Avx2),
        Implementation::AesNi => Some(Width::AesNi),
        Implementation::Portable => None,
    }
}

/// An AEAD key of the implementation [`Auto`] picked.
#[derive(Clone)]
pub struct AutoPacketKey(PacketKeyInner);

#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum PacketKeyInner {
    Portable(PortablePacketKey),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    AesGcm(AesGcmKey),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    ChaCha20Poly1305(ChaCha20Poly1305Key),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    ChaCha20Poly1305Avx2(ChaCha20Poly1305Avx2Key),
}

impl core::fmt::Debug for AutoPacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match &self.0 {
            PacketKeyInner::Portable(_) => "AutoPacketKey::Portable",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(_) => "AutoPacketKey::AesGcm",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(_) => "AutoPacketKey::ChaCha20Poly1305",
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(_) => "AutoPacketKey::ChaCha20Poly1305Avx2",
        })
    }
}

/// What [`AutoPacketKey`]'s strided batches keep from one batch to the next
/// ([`PacketKey::BatchTables`]): on x86_64, the powers of the hash key past the key's own and
/// round 1 of each step's counters, which AES-GCM's groups of four packets read on the
/// 512-bit width (about 3 KiB, built as far as the packets' length needs); nothing elsewhere.
#[derive(Default)]
pub struct AutoBatchTables {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    tables: BatchTables,
}

impl core::fmt::Debug for AutoBatchTables {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AutoBatchTables")
    }
}

impl PacketKey for AutoPacketKey {
    type BatchTables = AutoBatchTables;

    #[inline(always)]
    fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed {
        match &self.0 {
            PacketKeyInner::Portable(key) => key.seal(header_key, nonce, aad, sample_at, payload),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => match aes_header_key(header_key) {
                Some(own) => key.seal_with_aes_mask(own, nonce, aad, sample_at, payload),
                None => key.seal(header_key, nonce, aad, sample_at, payload),
            },
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => match chacha20_header_key(header_key) {
                Some(own) => key.seal_with_chacha20_mask(own, nonce, aad, sample_at, payload),
                None => key.seal(header_key, nonce, aad, sample_at, payload),
            },
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => match chacha20_avx2_header_key(header_key)
            {
                Some(own) => key.seal_with_chacha20_mask(own, nonce, aad, sample_at, payload),
                None => key.seal(header_key, nonce, aad, sample_at, payload),
            },
        }
    }

    #[inline]
    fn batches_seals(&self, payload_len: usize) -> bool {
        // Only the AVX-512 ChaCha20-Poly1305 key looks at the length.
        let _ = payload_len;
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => key.batches_seals(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => key.batches_seals(payload_len),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            // Its masks, one ChaCha20 block each, are computed side by side at any length.
            PacketKeyInner::ChaCha20Poly1305Avx2(_) => true,
            _ => false,
        }
    }

    #[inline]
    fn seal_batch(
        &self,
        header_key: &impl HeaderKey,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => {
                let own = aes_header_key(header_key);
                key.seal_batch(header_key, own, buffers, jobs, sealed)
            }
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => {
                key.seal_batch(header_key, buffers, jobs, sealed)
            }
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => {
                let own = chacha20_avx2_header_key(header_key);
                key.seal_batch(header_key, own, buffers, jobs, sealed)
            }
            _ => seal_each(self, header_key, buffers, jobs, sealed),
        }
    }

    #[inline]
    fn seal_strided(
        &self,
        header_key: &impl HeaderKey,
        packets: StridedPackets<'_, '_>,
        nonces: &[[u8; NONCE_LEN]],
        tables: &mut AutoBatchTables,
    ) -> bool {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key)
                if key.groups_strided(packets.layout.payload_len, packets.layout.header_len) =>
            {
                let own = aes_header_key(header_key);
                key.seal_strided(header_key, own, packets, nonces, &mut tables.tables)
            }
            _ => {
                // Only the x86 groups use tables; elsewhere `AutoBatchTables` is empty.
                let _ = tables;
                seal_strided_batches(self, header_key, packets, nonces)
            }
        }
    }

    #[inline]
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN] {
        match &self.0 {
            PacketKeyInner::Portable(key) => key.open(nonce, aad, payload),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => key.open(nonce, aad, payload),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => key.open(nonce, aad, payload),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => key.open(nonce, aad, payload),
        }
    }

    #[inline]
    fn batches_opens(&self, payload_len: usize) -> bool {
        // Only the x86 ChaCha20-Poly1305 keys look at the length.
        let _ = payload_len;
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => key.batches_opens(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => key.batches_opens(payload_len),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => key.batches_opens(payload_len),
            _ => false,
        }
    }

    fn masks_beside_open(&self) -> RangeInclusive<usize> {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => key.masks_beside_open(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => key.masks_beside_open(),
            _ => RangeInclusive::new(1, 0),
        }
    }

    #[inline]
    fn open_masking(
        &self,
        header_key: &impl HeaderKey,
        sample: &[u8; SAMPLE_LEN],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: Payload<'_, '_, '_, '_>,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => match chacha20_header_key(header_key) {
                Some(own) => key.open_with_chacha20_mask(own, sample, nonce, aad, payload),
                None => (key.open(nonce, aad, payload), header_key.mask(sample)),
            },
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => {
                match chacha20_avx2_header_key(header_key) {
                    Some(own) => key.open_with_chacha20_mask(own, sample, nonce, aad, payload),
                    None => (key.open(nonce, aad, payload), header_key.mask(sample)),
                }
            }
            _ => (self.open(nonce, aad, payload), header_key.mask(sample)),
        }
    }

    fn open_batch(&self, buffer: &mut [u8], jobs: &[OpenJob<'_>], tags: &mut [[u8; TAG_LEN]]) {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => key.open_batch(buffer, jobs, tags),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => key.open_batch(buffer, jobs, tags),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => key.open_batch(buffer, jobs, tags),
            _ => open_each(self, buffer, jobs, tags),
        }
    }

    /// The variant in use only: the enum is sized for the largest.
    #[inline]
    fn prefetch(&self) {
        match &self.0 {
            PacketKeyInner::Portable(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::AesGcm(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            PacketKeyInner::ChaCha20Poly1305Avx2(key) => prefetch(key),
        }
    }
}

/// `header_key` as [`Auto`]'s own fused ChaCha20 header key, if it is one: the packet key
/// then runs the mask's block beside its own keystream instead of after the tag. The type
/// test is decided at compile time; only the variant is checked at run time.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn chacha20_header_key(header_key: &impl HeaderKey) -> Option<&ChaCha20HeaderKey> {
    let header_key: &dyn core::any::Any = header_key;
    match &header_key.downcast_ref::<AutoHeaderKey>()?.0 {
        HeaderKeyInner::ChaCha20(key) => Some(key),
        _ => None,
    }
}

/// `header_key` as [`Auto`]'s own AVX2 ChaCha20 header key, if it is one: the AVX2 packet
/// key then runs the mask's rounds inside its keystream calls. Decided like
/// [`chacha20_header_key`].
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn chacha20_avx2_header_key(header_key: &impl HeaderKey) -> Option<&ChaCha20Avx2HeaderKey> {
    let header_key: &dyn core::any::Any = header_key;
    match &header_key.downcast_ref::<AutoHeaderKey>()?.0 {
        HeaderKeyInner::ChaCha20Avx2(key) => Some(key),
        _ => None,
    }
}

/// `header_key` as [`Auto`]'s own AES header key, if it is one: the packet key then runs
/// the mask's rounds inside its bulk loop, as soon as it has the sample. Decided like
/// [`chacha20_header_key`].
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn aes_header_key(header_key: &impl HeaderKey) -> Option<&AesHeaderKey> {
    let header_key: &dyn core::any::Any = header_key;
    match &header_key.downcast_ref::<AutoHeaderKey>()?.0 {
        HeaderKeyInner::Aes(key) => Some(key),
        _ => None,
    }
}

/// A header-protection key of the implementation [`Auto`] picked.
#[derive(Clone)]
pub struct AutoHeaderKey(HeaderKeyInner);

// A flow holds one for its lifetime; boxing the larger variant would need a heap.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum HeaderKeyInner {
    Portable(PortableHeaderKey),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    Aes(AesHeaderKey),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    ChaCha20(ChaCha20HeaderKey),
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    ChaCha20Avx2(ChaCha20Avx2HeaderKey),
}

impl core::fmt::Debug for AutoHeaderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AutoHeaderKey")
    }
}

impl HeaderKey for AutoHeaderKey {
    #[inline]
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        match &self.0 {
            HeaderKeyInner::Portable(key) => key.mask(sample),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::Aes(key) => key.mask(sample),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20(key) => key.mask(sample),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20Avx2(key) => key.mask(sample),
        }
    }

    #[inline]
    fn batches_masks(&self) -> bool {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::Aes(key) => key.batches_masks(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20(key) => key.batches_masks(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20Avx2(key) => key.batches_masks(),
            _ => false,
        }
    }

    #[inline]
    fn masks(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::Aes(key) => key.masks(samples, masks),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20(key) => key.masks(samples, masks),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20Avx2(key) => key.masks(samples, masks),
            _ => {
                for (sample, mask) in samples.iter().zip(masks) {
                    *mask = self.mask(sample);
                }
            }
        }
    }

    /// The variant in use only: the enum is sized for the largest.
    #[inline]
    fn prefetch(&self) {
        match &self.0 {
            HeaderKeyInner::Portable(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::Aes(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20(key) => prefetch(key),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            HeaderKeyInner::ChaCha20Avx2(key) => prefetch(key),
        }
    }
}
