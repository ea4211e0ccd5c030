//! Where the cipher work happens, behind small traits so that other implementations plug in:
//! fused SIMD AES-GCM, a kernel's crypto API, a NIC's crypto engine.
//!
//! The seam is a *whole packet*: a backend gets the nonce, the header (the AAD) and the
//! payload as one job, a scatter-gather source and destination or a buffer to transform in
//! place, and returns the tag; when sealing, also the header-protection mask, whose sample
//! it takes from the ciphertext while it has it. Or a batch of them
//! ([`PacketKey::seal_batch`], [`HeaderKey::masks`]), so that a backend can run several
//! packets' dependent chains side by side; or a GSO batch's packets laid out at fixed
//! strides ([`PacketKey::seal_strided`]), sealed with header protection applied, the backend
//! writing each protected header and tag itself. How it walks the bytes is its own business: the portable
//! backend streams them through RustCrypto's CTR and MAC, a fused backend runs many blocks of
//! AES and GHASH per iteration and handles a block that straddles two segments itself. Per-key
//! work (round keys, powers of the GHASH key) is done when a key is made, never per packet.
//!
//! - [`Portable`]: RustCrypto's `aes`, `ctr`, `ghash`, `chacha20` and `poly1305`, which pick
//!   AES-NI/CLMUL or constant-time software at run time. The reference the others are checked
//!   against.
//! - [`Auto`]: the fastest [`Implementation`] this CPU has (x86_64: fused AES-GCM on VAES and
//!   VPCLMULQDQ over 512-bit or 256-bit registers, or AES-NI and PCLMULQDQ; ChaCha20-Poly1305
//!   on AVX-512 or AVX2), [`Portable`] elsewhere and for what the fused code does not cover.
//!   The flows' default.

#[forbid(unsafe_code)]
mod auto;
#[forbid(unsafe_code)]
mod portable;
#[forbid(unsafe_code)]
mod strided;
// AES and GHASH on RISC-V's scalar-crypto extensions, for the portable AES suites; compiled
// for tests everywhere, with the instructions in software.
#[cfg(all(
    feature = "portable-aes",
    any(
        test,
        all(
            target_arch = "riscv32",
            target_feature = "zkne",
            target_feature = "zbkc",
            target_feature = "zbkb"
        )
    )
))]
mod riscv;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86;

pub use auto::{Auto, AutoBatchTables, AutoHeaderKey, AutoPacketKey, Implementation};
pub use portable::{Portable, PortableHeaderKey, PortablePacketKey};
pub use strided::{StridedLayout, StridedPackets, seal_strided_batches};

use crate::sg::{SgDestination, SgSource};
use crate::{CipherSuite, Error};
use core::ops::RangeInclusive;

/// Length of the AEAD tag of every QUIC v1 suite.
pub const TAG_LEN: usize = 16;
/// Length of the header-protection sample (RFC 9001 §5.4.2).
pub const SAMPLE_LEN: usize = 16;
/// Length of a header-protection mask the core uses: one byte for the first byte, four for the
/// packet number.
pub const MASK_LEN: usize = 5;
/// Length of an AEAD nonce (RFC 9001 §5.3).
pub const NONCE_LEN: usize = 12;

/// Asks the CPU to start bringing `value`'s cache lines in, and goes on without waiting for
/// them: on x86_64 with SSE2; a no-op on other targets. A flow found in a large table
/// is cold, and its pieces (header key, packet key, packet-number state) would otherwise
/// arrive from memory one after another, as each step of opening or sealing reaches them.
#[inline]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    x86::prefetch(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let _ = value;
}

/// A family of cipher implementations.
pub trait Backend {
    /// One key generation's AEAD key.
    type PacketKey: PacketKey;
    /// The header-protection key.
    type HeaderKey: HeaderKey;

    /// Prepares an AEAD key of `suite` from its raw bytes.
    fn packet_key(suite: CipherSuite, key: &[u8]) -> Result<Self::PacketKey, Error>;

    /// Prepares a header-protection key of `suite` from its raw bytes.
    fn header_key(suite: CipherSuite, key: &[u8]) -> Result<Self::HeaderKey, Error>;
}

/// A packet's payload as the AEAD sees it: where to read it and where to write the result.
#[derive(Debug)]
pub enum Payload<'p, 's, 'd, 'b> {
    /// `len` bytes read from `src` at `src_at`, written to `dst` at `dst_at`. Both ranges are
    /// in bounds: the core checked them.
    Copy {
        /// Where the payload comes from.
        src: &'p SgSource<'s>,
        /// Its first byte in `src`.
        src_at: usize,
        /// Where the result goes.
        dst: &'p mut SgDestination<'d, 'b>,
        /// Its first byte in `dst`.
        dst_at: usize,
        /// Bytes of payload.
        len: usize,
    },
    /// The payload, transformed where it lies.
    InPlace(&'p mut [u8]),
}

impl Payload<'_, '_, '_, '_> {
    /// The 16 bytes of the protected packet from payload offset `at`, once the payload has
    /// been sealed: ciphertext, then `tag` where the payload ends first. `at` is at most the
    /// payload's length (the core refuses packets too short to sample); past it, or where
    /// the destination runs out, the sample is zero-filled rather than panicking.
    pub fn sample(&mut self, at: usize, tag: &[u8; TAG_LEN]) -> [u8; SAMPLE_LEN] {
        let mut sample = [0; SAMPLE_LEN];
        let from_payload = self.len().saturating_sub(at).min(SAMPLE_LEN);
        // `get`, not indexing: the kernel object keeps no panic path it can avoid.
        if let Some(text) = sample.get_mut(..from_payload) {
            match self {
                Payload::Copy { dst, dst_at, .. } => {
                    dst.read(dst_at.saturating_add(at), text);
                }
                Payload::InPlace(data) => {
                    if let Some(bytes) = data.get(at..).and_then(|d| d.get(..from_payload)) {
                        text.copy_from_slice(bytes);
                    }
                }
            }
        }
        for (byte, tag_byte) in sample.iter_mut().skip(from_payload).zip(tag) {
            *byte = *tag_byte;
        }
        sample
    }

    /// Bytes of payload.
    pub fn len(&self) -> usize {
        match self {
            Payload::Copy { len, .. } => *len,
            Payload::InPlace(data) => data.len(),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The buffers a batch of packets is sealed between: one source and one destination for the
/// whole batch (a GSO batch's cleartext and its send buffer), or one buffer sealed in place.
/// Each [`SealJob`] says where its packet lies in them.
#[derive(Debug)]
pub enum BatchBuffers<'p, 's, 'd, 'b> {
    /// Payloads read from `src` and written to `dst`.
    Copy {
        /// Where the payloads come from.
        src: &'p SgSource<'s>,
        /// Where the results go.
        dst: &'p mut SgDestination<'d, 'b>,
    },
    /// Payloads transformed where they lie.
    InPlace(&'p mut [u8]),
}

impl<'s, 'd, 'b> BatchBuffers<'_, 's, 'd, 'b> {
    /// The bytes `job`'s payload was sealed into, if they lie in one piece: to read back
    /// several at once (shared borrows, which do not end each other's).
    pub fn output(&self, job: &SealJob<'_>) -> Option<&[u8]> {
        match self {
            BatchBuffers::Copy { dst, .. } => dst.piece(job.dst_at, job.len),
            BatchBuffers::InPlace(buffer) => {
                buffer.get(job.dst_at..job.dst_at.checked_add(job.len)?)
            }
        }
    }

    /// `job`'s payload. Its ranges are in bounds (the core checked them); were they not, an
    /// in-place payload would come out empty rather than panic.
    pub fn payload(&mut self, job: &SealJob<'_>) -> Payload<'_, 's, 'd, 'b> {
        match self {
            BatchBuffers::Copy { src, dst } => Payload::Copy {
                src,
                src_at: job.src_at,
                dst,
                dst_at: job.dst_at,
                len: job.len,
            },
            BatchBuffers::InPlace(buffer) => Payload::InPlace(
                job.dst_at
                    .checked_add(job.len)
                    .and_then(|end| buffer.get_mut(job.dst_at..end))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// One packet of a batch to seal: its nonce, its cleartext header (the AAD), where its
/// header-protection sample starts, and where its payload lies in the [`BatchBuffers`].
#[derive(Clone, Copy, Debug)]
pub struct SealJob<'h> {
    /// The AEAD nonce (RFC 9001 §5.3).
    pub nonce: [u8; NONCE_LEN],
    /// The cleartext header.
    pub aad: &'h [u8],
    /// Where the sample starts, from the payload's first byte (see [`Payload::sample`]).
    pub sample_at: usize,
    /// The payload's first byte in the source (in place: the same as `dst_at`).
    pub src_at: usize,
    /// The payload's first byte in the destination.
    pub dst_at: usize,
    /// Bytes of payload.
    pub len: usize,
}

/// One packet of a batch to open in place: its nonce, its cleartext header (the AAD), and
/// where its payload (the tag not included) lies in the batch's buffer.
#[derive(Clone, Copy, Debug)]
pub struct OpenJob<'h> {
    /// The AEAD nonce (RFC 9001 §5.3).
    pub nonce: [u8; NONCE_LEN],
    /// The cleartext header.
    pub aad: &'h [u8],
    /// The payload's first byte in the buffer.
    pub at: usize,
    /// Bytes of payload.
    pub len: usize,
}

impl<'h> SealJob<'h> {
    /// The open that undoes this seal, where its ciphertext was written (in place, in a
    /// buffer laid out as the seal's destination).
    pub fn opened(&self) -> OpenJob<'h> {
        OpenJob {
            nonce: self.nonce,
            aad: self.aad,
            at: self.dst_at,
            len: self.len,
        }
    }
}

/// What sealing a packet gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The AEAD tag, to append to the payload.
    pub tag: [u8; TAG_LEN],
    /// The header-protection mask from the sealed packet's sample (RFC 9001 §5.4.2).
    pub mask: [u8; MASK_LEN],
}

/// An AEAD key that protects whole packets.
///
/// Implementations wipe their key schedule when dropped.
pub trait PacketKey {
    /// What [`seal_strided`](Self::seal_strided) builds from the key for a batch and can
    /// keep for the next: a sending flow keeps one, so that it is built once a key rather
    /// than once a batch. `()` where there is nothing to keep. Built from key material, so
    /// wiped when dropped; tables last used with another key are built again (the old ones
    /// wiped), never used as they are.
    type BatchTables: Default;

    /// Encrypts `payload` under `nonce`, authenticating `aad` (the packet's cleartext
    /// header). Returns the tag and `header_key`'s mask of the sample: the 16 bytes of the
    /// protected packet from payload offset `sample_at` (ciphertext, then the tag if the
    /// payload ends first; see [`Payload::sample`]).
    fn seal(
        &self,
        header_key: &impl HeaderKey,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sample_at: usize,
        payload: Payload<'_, '_, '_, '_>,
    ) -> Sealed;

    /// True when [`seal_batch`](Self::seal_batch) costs less than [`seal`](Self::seal) for
    /// each packet of payloads up to `payload_len` bytes, so that a caller gains from
    /// queueing a batch's packets first (queueing has a cost of its own); false by default.
    fn batches_seals(&self, payload_len: usize) -> bool {
        let _ = payload_len;
        false
    }

    /// Seals a batch: `jobs[i]`'s packet, as [`seal`](Self::seal) would, its result in
    /// `sealed[i]` (`sealed` is at least as long as `jobs`). The jobs' payloads do not
    /// overlap. A backend that gains from seeing several packets at once (interleaving their
    /// dependent chains, sharing a key schedule's loads) does its own; this one seals them one
    /// after the other.
    fn seal_batch(
        &self,
        header_key: &impl HeaderKey,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        jobs: &[SealJob<'_>],
        sealed: &mut [Sealed],
    ) {
        seal_each(self, header_key, buffers, jobs, sealed);
    }

    /// Seals the first `nonces.len()` of `packets`, packet k under `nonces[k]`, with header
    /// protection applied: each one's protected header, ciphertext and tag are written to
    /// the destination. Writes nothing and returns false unless the buffers hold them all
    /// ([`StridedPackets::holds`]). By default through [`seal_batch`](Self::seal_batch),
    /// [`seal_strided_batches`]; a backend that writes the headers and tags itself saves the
    /// jobs and the results in between. `tables` are the caller's ([`BatchTables`](
    /// Self::BatchTables)), from its last batch or new.
    fn seal_strided(
        &self,
        header_key: &impl HeaderKey,
        packets: StridedPackets<'_, '_>,
        nonces: &[[u8; NONCE_LEN]],
        tables: &mut Self::BatchTables,
    ) -> bool {
        let _ = tables;
        seal_strided_batches(self, header_key, packets, nonces)
    }

    /// Decrypts `payload` under `nonce` and returns the tag its ciphertext and `aad` should
    /// carry. The caller compares it with the received tag in constant time and wipes the
    /// plaintext if they differ: nothing is released before that. Decrypting is XORing a
    /// keystream: opening the result again under the same nonce gives the ciphertext back.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: Payload<'_, '_, '_, '_>,
    ) -> [u8; TAG_LEN];

    /// [`open`](Self::open), also returning `header_key`'s mask of `sample`: for a receiver
    /// that guessed the packet's header and number before unmasking them, so that the mask
    /// can be computed beside the payload's work rather than before it all. By default after
    /// it, where an out-of-order core may overlap the two.
    fn open_masking(
        &self,
        header_key: &impl HeaderKey,
        sample: &[u8; SAMPLE_LEN],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        payload: Payload<'_, '_, '_, '_>,
    ) -> ([u8; TAG_LEN], [u8; MASK_LEN]) {
        let tag = self.open(nonce, aad, payload);
        (tag, header_key.mask(sample))
    }

    /// The payload lengths for which [`open_masking`](Self::open_masking) computes the mask
    /// beside the work on the payload, hiding its cost: for those a receiver gains from
    /// guessing a packet's header to start on the payload before the mask is known. None by
    /// default (a mask computed after the payload gains nothing over one computed before it,
    /// and the guess costs a little). Fixed for the key's kind: a receiver asks once.
    fn masks_beside_open(&self) -> RangeInclusive<usize> {
        RangeInclusive::new(1, 0)
    }

    /// True when [`open_batch`](Self::open_batch) costs less than [`open`](Self::open) for
    /// each packet of payloads up to `payload_len` bytes, so that a receiver gains from
    /// working out a batch's nonces ahead; false by default.
    fn batches_opens(&self, payload_len: usize) -> bool {
        let _ = payload_len;
        false
    }

    /// Opens a batch in place: `jobs[i]`'s payload in `buffer` as [`open`](Self::open)
    /// would, the tag its ciphertext should carry in `tags[i]` (`tags` is at least as long as
    /// `jobs`). The jobs' payloads do not overlap. This one opens them one after the other.
    fn open_batch(&self, buffer: &mut [u8], jobs: &[OpenJob<'_>], tags: &mut [[u8; TAG_LEN]]) {
        open_each(self, buffer, jobs, tags);
    }

    /// Starts bringing the key's bytes into the cache without waiting for them (see
    /// [`FlowTable`](crate::FlowTable), which does it for a flow it has just found): all
    /// of the value by default; a key that is one of several layouts fetches its own.
    fn prefetch(&self)
    where
        Self: Sized,
    {
        prefetch(self);
    }
}

/// [`PacketKey::open_batch`] one packet after the other: its default, and what a backend
/// that overrides it does for the packets it does not group.
pub fn open_each(
    key: &(impl PacketKey + ?Sized),
    buffer: &mut [u8],
    jobs: &[OpenJob<'_>],
    tags: &mut [[u8; TAG_LEN]],
) {
    for (job, tag) in jobs.iter().zip(tags) {
        *tag = key.open(&job.nonce, job.aad, Payload::InPlace(job.payload(buffer)));
    }
}

impl OpenJob<'_> {
    /// The job's payload in `buffer`. Its range is in bounds (the core checked it); were it
    /// not, the payload would come out empty rather than panic.
    pub fn payload<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        self.at
            .checked_add(self.len)
            .and_then(|end| buffer.get_mut(self.at..end))
            .unwrap_or_default()
    }
}

/// A header-protection key (RFC 9001 §5.4).
///
/// Keys own their material, hence `'static`: a packet key handed a header key may recognise
/// one of its own backend's and fuse the mask into its own work ([`Auto`]'s ChaCha20 does).
pub trait HeaderKey: 'static {
    /// The mask for `sample`; only its first [`MASK_LEN`] bytes are used.
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN];

    /// True when [`masks`](Self::masks) costs less than a [`mask`](Self::mask) for each
    /// sample, so that a caller gains from collecting samples first (a receiver looks ahead
    /// over the datagrams of a GRO batch); false by default.
    fn batches_masks(&self) -> bool {
        false
    }

    /// The masks for several samples: `masks[i]` for `samples[i]` (`masks` is at least as
    /// long). A key whose mask is one long dependent chain computes several side by side;
    /// this one computes them one after the other.
    fn masks(&self, samples: &[[u8; SAMPLE_LEN]], masks: &mut [[u8; MASK_LEN]]) {
        for (sample, mask) in samples.iter().zip(masks) {
            *mask = self.mask(sample);
        }
    }

    /// Starts bringing the key's bytes into the cache without waiting for them, as
    /// [`PacketKey::prefetch`] does.
    fn prefetch(&self)
    where
        Self: Sized,
    {
        prefetch(self);
    }
}

/// [`PacketKey::seal_batch`] one packet after the other: its default, and what a backend
/// that overrides it for some keys does for the others.
pub fn seal_each(
    key: &(impl PacketKey + ?Sized),
    header_key: &impl HeaderKey,
    buffers: &mut BatchBuffers<'_, '_, '_, '_>,
    jobs: &[SealJob<'_>],
    sealed: &mut [Sealed],
) {
    for (job, sealed) in jobs.iter().zip(sealed) {
        let payload = buffers.payload(job);
        *sealed = key.seal(header_key, &job.nonce, job.aad, job.sample_at, payload);
    }
}
