//! The receiving direction: opens 1-RTT packets and follows the peer's key updates.

use crate::backend::{
    Auto, Backend, HeaderKey, MASK_LEN, OpenJob, PacketKey, SAMPLE_LEN, TAG_LEN, prefetch,
};
use crate::flow::{Datagram, FlowConfig, Outcome, PacketInfo};
use crate::generation::{Generation, KeySet};
use crate::gso::{OPEN_GROUP, each_datagram};
use crate::keys::nonce;
use crate::packet_number::MAX_PACKET_NUMBER;
use crate::protect::{self, CleartextHeader, HeaderFormat, Placement};
use crate::sg::{SgDestination, SgSource, copy_bytes};
use crate::wire::short_header::{KEY_PHASE_BIT, MAX_SHORT_HEADER_LEN, pn_len};
use crate::wire::{UnknownVersions, leading_long_packets};
use crate::{CipherSuite, Counters, Error, KeyMaterial, Limits};
use core::ops::RangeInclusive;

/// The header-protection sample of `datagram`'s 1-RTT packet, if it has one long enough.
/// Inlined: returned from a call, the sample's bytes came back in narrower stores than the
/// caller's load of them, which then waited for them (about 6 ns a datagram).
#[inline(always)]
fn packet_sample(format: HeaderFormat, datagram: &[u8]) -> Option<[u8; SAMPLE_LEN]> {
    let len = datagram.len();
    let (passthrough_len, _) = leading_long_packets(
        |i| datagram.get(i).copied(),
        len,
        UnknownVersions::PassThrough,
    )
    .ok()?;
    let packet = datagram.get(passthrough_len..).filter(|p| !p.is_empty())?;
    format.sample(packet, 0, packet.len()).ok()
}

/// A datagram of a group opened ahead, in a batch: the packet number it was opened under
/// (the number it decodes to if the datagrams before it authenticate) and the tag its
/// ciphertext should carry.
#[derive(Clone, Copy)]
struct Guess {
    number: u64,
    tag: [u8; TAG_LEN],
}

/// A group's datagrams opened ahead by [`RxFlow::open_ahead`].
struct Ahead {
    /// Per datagram, the number and the tag its packet was opened under, if it was.
    guesses: [Option<Guess>; OPEN_GROUP],
    /// The packets' cleartext headers, one per datagram while they are `lone`.
    headers: [CleartextHeader; OPEN_GROUP],
    /// How many datagrams from the first were opened ahead, each one 1-RTT packet alone.
    lone: usize,
}

impl Ahead {
    /// Nothing opened ahead.
    const NONE: Ahead = Ahead {
        guesses: [None; OPEN_GROUP],
        headers: [CleartextHeader::EMPTY; OPEN_GROUP],
        lone: 0,
    };
}

/// Which generation's keys a packet needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeySlot {
    Previous,
    Current,
    Next,
}

/// Receiving-side packet protection for one connection.
///
/// Key update (RFC 9001 §6.3-6.5): a packet whose key phase differs from the current one is
/// opened with the previous generation's keys if it is older than the first packet of the
/// current generation and those keys are still kept, and otherwise with the next generation's
/// keys. Only a packet that authenticates moves the flow forward; the generation it replaces
/// is kept for late packets until [`retire_previous_keys`](Self::retire_previous_keys).
///
/// The next generation's keys are derived ahead of the packets that need them, and not by
/// the packet that moves the flow forward: that one only promotes keys already there.
/// [`prepare_next_keys`](Self::prepare_next_keys) derives the following generation, off the
/// receive path; [`open_gro`](Self::open_gro) does it once its batch is done. A flow whose
/// owner never calls it derives them when a packet of the next phase first arrives, before
/// trying to open it, so that a forged packet costs the same time as a real one.
///
/// ```
/// use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};
///
/// let secret = [7; 32];
/// let mut tx: TxFlow = TxFlow::from_secret(CipherSuite::ChaCha20Poly1305Sha256, &secret, FlowConfig::new(0))?;
/// let mut rx: RxFlow = RxFlow::from_secret(CipherSuite::ChaCha20Poly1305Sha256, &secret, FlowConfig::new(0))?;
/// let mut datagram = [0u8; 7 + 16];
/// tx.seal(&[&[0x40, 0x01, b'h', b'e', b'l', b'l', b'o']], &mut [&mut datagram])?;
/// let opened = rx.open_in_place(&mut datagram)?;
/// assert_eq!(&datagram[2..opened.len], b"hello");
/// # Ok::<(), quicseal::Error>(())
/// ```
pub struct RxFlow<B: Backend = Auto> {
    keys: KeySet<B>,
    previous: Option<Generation<B>>,
    config: FlowConfig,
    limits: Limits,
    /// Lowest packet number opened with the current generation.
    current_first: Option<u64>,
    largest_received: Option<u64>,
    /// The masked bits of the last packet opened's first byte (its packet number's length
    /// above all), for guessing the next packet's header before its mask is known.
    last_protected_bits: Option<u8>,
    /// Payload lengths whose headers are guessed ([`PacketKey::masks_beside_open`]).
    guessed_lengths: RangeInclusive<usize>,
    counters: Counters,
}

impl<B: Backend> RxFlow<B> {
    /// A flow at generation 0 of `secret`; later generations derive from it with "quic ku".
    pub fn from_secret(
        suite: CipherSuite,
        secret: &[u8],
        config: FlowConfig,
    ) -> Result<Self, Error> {
        Self::with_keys(KeySet::from_secret(suite, secret)?, config)
    }

    /// A flow that takes over mid-connection at key generation `generation`: `secret` is that
    /// generation's traffic secret and `header_key` the header-protection key ("quic hp" of
    /// generation 0's secret; it never changes). What a QUIC stack that has done key updates
    /// still holds. Later generations derive from `secret`.
    pub fn resume(
        suite: CipherSuite,
        secret: &[u8],
        header_key: &[u8],
        generation: u64,
        config: FlowConfig,
    ) -> Result<Self, Error> {
        Self::with_keys(
            KeySet::resume(suite, secret, header_key, generation)?,
            config,
        )
    }

    /// A flow at generation 0 of explicit keys; the caller installs each next generation with
    /// [`install_next_keys`](Self::install_next_keys), or packets of the next key phase are
    /// refused with [`Error::KeyUnavailable`].
    pub fn from_keys(material: &KeyMaterial, config: FlowConfig) -> Result<Self, Error> {
        Self::with_keys(KeySet::from_keys(material)?, config)
    }

    fn with_keys(keys: KeySet<B>, config: FlowConfig) -> Result<Self, Error> {
        let config = config.validate()?;
        Ok(RxFlow {
            guessed_lengths: keys.current.key.masks_beside_open(),
            limits: config.limits.unwrap_or(Limits::for_suite(keys.suite)),
            keys,
            previous: None,
            config,
            current_first: None,
            largest_received: config.largest_packet_number,
            last_protected_bits: None,
            counters: Counters::default(),
        })
    }

    /// Installs explicit keys for the next generation; replaces, and wipes, any already there.
    pub fn install_next_keys(&mut self, material: &KeyMaterial) -> Result<(), Error> {
        self.keys.install_next(material)
    }

    /// Derives the next key generation's keys if a key update has used them up: work to do
    /// off the receive path (after a batch, from a timer), so that no packet waits for it.
    /// Nothing to do, and `Ok`, when they are there or cannot be derived (explicit keys:
    /// [`install_next_keys`](Self::install_next_keys)).
    pub fn prepare_next_keys(&mut self) -> Result<(), Error> {
        self.keys.prepare_next()
    }

    /// True when the next generation's keys are ready for the peer's key update.
    pub fn next_keys_ready(&self) -> bool {
        self.keys.next.is_some()
    }

    /// Drops (and wipes) the previous generation's keys: late packets of the old key phase
    /// will no longer open. RFC 9001 §6.5 suggests doing so about three PTOs after a key
    /// update.
    pub fn retire_previous_keys(&mut self) {
        self.previous = None;
    }

    /// Moves to the next generation without a packet, as when state is restored; the
    /// previous generation's keys are dropped.
    pub fn advance_generation(&mut self) -> Result<(), Error> {
        self.keys.prepare_next()?;
        self.keys.promote()?;
        self.previous = None;
        self.current_first = None;
        Ok(())
    }

    /// Starts fetching, without waiting, the state that opening a packet reads (header key,
    /// current keys, packet-number and limit state), so that a flow that has gone cold in a
    /// large table arrives from memory in about one round trip rather than several.
    pub(crate) fn prefetch(&self) {
        self.keys.prefetch_current();
        prefetch(&self.config);
        prefetch(&self.limits);
        prefetch(&self.current_first);
        prefetch(&self.largest_received);
        prefetch(&self.counters);
    }

    /// Opens one datagram from `src` into `dst`: long-header packets at its front are copied
    /// untouched, then the 1-RTT packet's cleartext header and payload (no tag). On failure
    /// no plaintext is left in `dst`.
    pub fn open(&mut self, src: &[&[u8]], dst: &mut [&mut [u8]]) -> Result<Datagram, Error> {
        let src = SgSource::new(src);
        let mut dst = SgDestination::new(dst);
        let outcome = self.try_open(&src, &mut dst);
        self.count(&outcome);
        outcome
    }

    /// Opens one datagram where it lies. On success the 1-RTT packet's header and payload are
    /// cleartext at the same place (the tag's 16 bytes after them are left as they were); on
    /// an authentication failure the payload is zeroed.
    pub fn open_in_place(&mut self, datagram: &mut [u8]) -> Result<Datagram, Error> {
        let outcome = self.try_open_in_place(datagram, None, None);
        self.count(&outcome);
        outcome
    }

    /// Counts an outcome. By reference, the outcome staying where it was built: returned
    /// through here by value, the 56-byte result was copied in 16-byte loads of fields just
    /// stored 8 bytes at a time, each load waiting for the stores to reach the cache (opens
    /// through `RxFlow` with a backend that does nothing, 18.9 -> 15.1 ns; 64-byte
    /// AES-128-GCM datagrams 0.94x the time, 1350-byte 0.98x, on an Intel Xeon).
    fn count(&mut self, outcome: &Result<Datagram, Error>) {
        match outcome {
            Ok(Datagram {
                packet: Some(packet),
                ..
            }) => {
                self.counters.opened += 1;
                self.counters.key_updates += u64::from(packet.key_update);
            }
            Ok(_) => {}
            Err(error) => self.counters.record(*error),
        }
    }

    fn try_open(
        &mut self,
        src: &SgSource<'_>,
        dst: &mut SgDestination<'_, '_>,
    ) -> Result<Datagram, Error> {
        let len = src.len();
        let (passthrough_len, long_packets) =
            leading_long_packets(|i| src.byte(i), len, UnknownVersions::PassThrough)?;
        let packet_len = len - passthrough_len;
        let mut header = CleartextHeader::EMPTY;
        if packet_len > 0 {
            self.config.header_format().unprotect(
                &self.keys.header_key,
                src,
                passthrough_len,
                packet_len,
                &mut header,
            )?;
        }
        // `unprotect` checked that the packet holds at least a tag.
        let out_len = if packet_len > 0 { len - TAG_LEN } else { len };
        if dst.len() < out_len {
            return Err(Error::BufferTooSmall);
        }
        let copied = dst.zip_from(0, src, 0, passthrough_len, |i, o| o.copy_from_slice(i));
        debug_assert!(copied, "both lengths checked");
        self.counters.passed_through += long_packets;
        if packet_len == 0 {
            return Ok(Datagram {
                len,
                passthrough_len,
                packet: None,
            });
        }
        let packet = self.open_packet(&header, packet_len, |generation, number, header| {
            let at = Placement {
                src_at: passthrough_len,
                dst_at: passthrough_len,
                len: packet_len,
            };
            protect::open(generation, number, header, src, dst, at)
        })?;
        Ok(Datagram {
            len: out_len,
            passthrough_len,
            packet: Some(packet),
        })
    }

    /// Opens a group of at most [`OPEN_GROUP`] datagrams of a GRO batch, each `segment_size`
    /// bytes (the last may be shorter), their outcomes to `results`. A header key that
    /// batches its masks (ChaCha20's, whose mask is a long dependent chain; AES's where the
    /// packet key opens side by side) takes the group's samples together first and computes
    /// them side by side; a packet key that batches its opens then decrypts the group's
    /// packets together too ([`open_ahead`]), and where they are all lone packets that
    /// authenticate, they are released together ([`release_lone_packets`]).
    ///
    /// [`open_ahead`]: Self::open_ahead
    /// [`release_lone_packets`]: Self::release_lone_packets
    pub(crate) fn open_group(
        &mut self,
        group: &mut [u8],
        segment_size: usize,
        results: &mut [Outcome],
    ) {
        if !self.keys.header_key.batches_masks() {
            each_datagram(group, segment_size, results, |datagram| {
                self.open_in_place(datagram)
            });
            return;
        }
        let format = self.config.header_format();
        let mut samples = [[0; SAMPLE_LEN]; OPEN_GROUP];
        let mut sampled = [false; OPEN_GROUP];
        let mut count = 0;
        for (datagram, sampled) in group.chunks(segment_size.max(1)).zip(&mut sampled) {
            if let (Some(sample), Some(slot)) =
                (packet_sample(format, datagram), samples.get_mut(count))
            {
                *slot = sample;
                *sampled = true;
                count += 1;
            }
        }
        let mut masks = [[0; MASK_LEN]; OPEN_GROUP];
        self.keys.header_key.masks(&samples[..count], &mut masks);
        // Each datagram's mask, where it had a sample.
        let mut datagram_masks = [None; OPEN_GROUP];
        let mut masks = masks.into_iter();
        for (mask, sampled) in datagram_masks.iter_mut().zip(sampled) {
            if sampled {
                *mask = masks.next();
            }
        }
        // No payload is longer than a segment less its tag.
        let ahead = if self
            .keys
            .current
            .key
            .batches_opens(segment_size.saturating_sub(TAG_LEN))
        {
            self.open_ahead(group, segment_size, &datagram_masks, results.len())
        } else {
            Ahead::NONE
        };
        if self.release_lone_packets(group, segment_size, &ahead, results) {
            return;
        }
        let mut index = 0;
        each_datagram(group, segment_size, results, |datagram| {
            let mask = datagram_masks.get(index).copied().flatten();
            let guess = ahead.guesses.get(index).copied().flatten();
            index += 1;
            let outcome = self.try_open_in_place(datagram, mask, guess);
            self.count(&outcome);
            outcome
        });
    }

    /// Decrypts a group's packets ahead, in one batch, under the current keys and the packet
    /// numbers they decode to if every datagram before them authenticates: which number a
    /// datagram decodes to, and so its nonce, depends on the largest number received so far.
    /// Stops at the first datagram it cannot read or whose packet would not use the current
    /// keys (a key update, a late packet of the previous generation): those after it open one
    /// by one. Changes no state of the flow; the datagrams' payloads are decrypted, their
    /// headers still protected. Each datagram then opens in order as usual and takes its
    /// guess where the number it really decodes to is the guessed one; where not (a datagram
    /// before it failed, and the failure moved where the numbers wrap), its payload is
    /// decrypted again under the guess, which restores the ciphertext, and opened afresh.
    /// Only the first `opened` datagrams, those the caller goes on to open, are decrypted.
    fn open_ahead(
        &self,
        group: &mut [u8],
        segment_size: usize,
        masks: &[Option<[u8; MASK_LEN]>; OPEN_GROUP],
        opened: usize,
    ) -> Ahead {
        let mut ahead = Ahead::NONE;
        if self.forged() >= self.limits.integrity {
            return ahead;
        }
        let format = self.config.header_format();
        let generation = &self.keys.current;
        let headers = &mut ahead.headers;
        // Per packet opened ahead: its datagram's index, its number, its payload's range.
        let mut packets = [(0, 0, 0, 0); OPEN_GROUP];
        let mut count = 0;
        // Datagrams from the first, each one packet alone, opened ahead one after the other.
        let mut lone = 0;
        let (mut largest, mut first) = (self.largest_received, self.current_first);
        let datagrams = group.chunks(segment_size.max(1)).zip(masks).take(opened);
        for (index, (datagram, mask)) in datagrams.enumerate() {
            let Ok((passthrough_len, _)) = leading_long_packets(
                |i| datagram.get(i).copied(),
                datagram.len(),
                UnknownVersions::PassThrough,
            ) else {
                break;
            };
            let Some(packet) = datagram.get(passthrough_len..).filter(|p| !p.is_empty()) else {
                continue;
            };
            let (Some(mask), Some(header), Some(entry)) =
                (mask, headers.get_mut(count), packets.get_mut(count))
            else {
                break;
            };
            if format
                .unprotect_with(mask, packet, 0, packet.len(), header)
                .is_err()
            {
                break;
            }
            let number = header.packet_number().decode(largest);
            if self.key_slot_after(first, header.key_phase(), number) != KeySlot::Current {
                break;
            }
            largest = Some(largest.map_or(number, |l| l.max(number)));
            first = Some(first.map_or(number, |f| f.min(number)));
            let at = index * segment_size + passthrough_len + header.len();
            let len = packet.len().saturating_sub(header.len() + TAG_LEN);
            *entry = (index, number, at, len);
            count += 1;
            if passthrough_len == 0 && lone == index {
                lone += 1;
            }
        }
        // One packet gains nothing from a batch.
        if count < 2 {
            return Ahead::NONE;
        }
        let jobs: [OpenJob<'_>; OPEN_GROUP] = core::array::from_fn(|k| {
            let (_, number, at, len) = packets[k];
            OpenJob {
                nonce: nonce(&generation.iv, number),
                aad: headers[k].as_bytes(),
                at,
                len,
            }
        });
        let mut tags = [[0; TAG_LEN]; OPEN_GROUP];
        generation.key.open_batch(group, &jobs[..count], &mut tags);
        for (&(index, number, _, _), tag) in packets[..count].iter().zip(tags) {
            if let Some(guess) = ahead.guesses.get_mut(index) {
                *guess = Some(Guess { number, tag });
            }
        }
        ahead.lone = lone;
        ahead
    }

    /// Releases a group's datagrams opened ahead in one go where each is a 1-RTT packet
    /// alone, all of them were opened ahead, and every one authenticates: what opening them
    /// one by one under their guesses would do (each guess's number is the one its packet
    /// decodes to when all before it authenticate), without reading each header again and
    /// deciding each packet's keys, numbers and counters on its own. False, with nothing
    /// changed, where any of that fails: the datagrams then open one by one.
    fn release_lone_packets(
        &mut self,
        group: &mut [u8],
        segment_size: usize,
        ahead: &Ahead,
        results: &mut [Outcome],
    ) -> bool {
        let count = results.len();
        if ahead.lone != count || group.is_empty() {
            return false;
        }
        let datagrams = || group.chunks(segment_size.max(1)).zip(&ahead.headers);
        let authentic = datagrams()
            .zip(&ahead.guesses)
            .all(|((packet, header), guess)| {
                guess.is_some_and(|guess| protect::releases(header, packet, &guess.tag))
            });
        if !authentic {
            return false;
        }
        let generation = self.keys.current.number;
        let (mut largest, mut first) = (self.largest_received, self.current_first);
        let datagrams = group.chunks_mut(segment_size.max(1)).zip(&ahead.headers);
        for (((packet, header), guess), result) in
            datagrams.zip(&ahead.guesses).zip(results.iter_mut())
        {
            let number = guess.map_or(0, |guess| guess.number);
            protect::write_cleartext_header(header, packet);
            largest = Some(largest.map_or(number, |l| l.max(number)));
            first = Some(first.map_or(number, |f| f.min(number)));
            // `releases` checked that the header and the tag fit in the packet.
            let len = packet.len().saturating_sub(TAG_LEN);
            *result = Ok(Datagram {
                len,
                passthrough_len: 0,
                packet: Some(PacketInfo {
                    number,
                    generation,
                    header_len: header.len(),
                    payload_len: len.saturating_sub(header.len()),
                    key_update: false,
                }),
            });
            self.last_protected_bits = Some(header.protected_bits());
        }
        self.largest_received = largest;
        self.current_first = first;
        self.counters.opened += count as u64;
        true
    }

    /// Opens `datagram` in place, its 1-RTT packet's header-protection mask given when the
    /// caller has computed it already, and its payload already decrypted under the current
    /// keys and a guessed packet number when [`open_ahead`](Self::open_ahead) did that.
    fn try_open_in_place(
        &mut self,
        datagram: &mut [u8],
        mask: Option<[u8; MASK_LEN]>,
        guess: Option<Guess>,
    ) -> Result<Datagram, Error> {
        let len = datagram.len();
        let (passthrough_len, long_packets) = leading_long_packets(
            |i| datagram.get(i).copied(),
            len,
            UnknownVersions::PassThrough,
        )?;
        self.counters.passed_through += long_packets;
        if passthrough_len == len {
            return Ok(Datagram {
                len,
                passthrough_len,
                packet: None,
            });
        }
        let packet = datagram
            .get_mut(passthrough_len..)
            .ok_or(Error::Malformed)?;
        let packet_len = packet.len();
        let format = self.config.header_format();
        let mut header = CleartextHeader::EMPTY;
        match mask {
            Some(mask) => format.unprotect_with(&mask, &*packet, 0, packet_len, &mut header)?,
            None if guess.is_none() && self.guesses(packet_len) => {
                return self.try_open_in_place_guessing(packet, (len, passthrough_len));
            }
            None => {
                format.unprotect(&self.keys.header_key, &*packet, 0, packet_len, &mut header)?
            }
        }
        self.open_unprotected(packet, &header, guess, (len, passthrough_len))
    }

    /// Opens a datagram's 1-RTT `packet` in place under the header
    /// [`open_guessing`](Self::open_guessing) guesses for it, or, where it makes no guess,
    /// as [`try_open_in_place`](Self::try_open_in_place) does. Not inlined: the packets
    /// that are not guessed keep `try_open_in_place` as small as it was.
    #[inline(never)]
    fn try_open_in_place_guessing(
        &mut self,
        packet: &mut [u8],
        lengths: (usize, usize),
    ) -> Result<Datagram, Error> {
        let mut header = CleartextHeader::EMPTY;
        let guess = match self.open_guessing(packet, &mut header) {
            Some(guessed) => guessed?,
            None => {
                let (format, len) = (self.config.header_format(), packet.len());
                format.unprotect(&self.keys.header_key, &*packet, 0, len, &mut header)?;
                None
            }
        };
        self.open_unprotected(packet, &header, guess, lengths)
    }

    /// True when a 1-RTT packet of `packet_len` bytes is opened under a guessed header:
    /// after a packet has been opened, where the current key opens a payload as long as the
    /// packet's would be with the last header's length with the mask's work beside its own
    /// ([`PacketKey::masks_beside_open`], asked once, when the flow is made).
    #[inline(always)]
    fn guesses(&self, packet_len: usize) -> bool {
        let Some(bits) = self.last_protected_bits else {
            return false;
        };
        let header_len = 1 + self.config.dcid_len + pn_len(bits);
        packet_len
            .checked_sub(header_len + TAG_LEN)
            .is_some_and(|payload| self.guessed_lengths.contains(&payload))
    }

    /// Opens the 1-RTT `packet` of a datagram `len` bytes long, `passthrough_len` of them
    /// long-header packets before it, its cleartext header `header`, in place: its payload
    /// decrypted ahead under `guess` where there is one.
    #[inline(always)]
    fn open_unprotected(
        &mut self,
        packet: &mut [u8],
        header: &CleartextHeader,
        guess: Option<Guess>,
        (len, passthrough_len): (usize, usize),
    ) -> Result<Datagram, Error> {
        let packet_len = packet.len();
        let mut guess_used = false;
        let info = self.open_packet(header, packet_len, |generation, number, header| {
            guess_used = true;
            match guess {
                // The guessed generation is the current one, and so is this packet's: the
                // guess stopped before any packet that could move the keys on.
                Some(guess) if guess.number == number => {
                    protect::release_in_place(header, packet, &guess.tag)
                }
                Some(guess) => {
                    protect::decrypt_in_place(generation, guess.number, header, packet);
                    protect::open_in_place(generation, number, header, packet)
                }
                None => protect::open_in_place(generation, number, header, packet),
            }
        });
        if let (Err(_), Some(guess), false) = (&info, guess, guess_used) {
            // Refused before decrypting (the integrity limit): the ciphertext back.
            protect::decrypt_in_place(&self.keys.current, guess.number, header, packet);
        }
        let info = info?;
        Ok(Datagram {
            len: len - TAG_LEN,
            passthrough_len,
            packet: Some(info),
        })
    }

    /// Decrypts the payload of `packet` (a datagram's 1-RTT packet, in place) under the
    /// current keys and the header it most likely has, the last packet's with the next packet
    /// number, before its header-protection mask is known: the payload's keystream starts at
    /// once instead of after the mask's block (for ChaCha20, a block's chain of rounds, as
    /// long as a third of a 1350-byte packet's keystream), and the backend runs the mask's
    /// block beside the payload's work ([`PacketKey::open_masking`]). With the mask,
    /// `header` gets the packet's real cleartext header; where it is the guessed one, so is
    /// the packet number, and the guess is returned for
    /// [`try_open_in_place`](Self::try_open_in_place) to take; where not (a packet lost or
    /// reordered, a new packet-number length, a key update) the payload is decrypted again
    /// under the guess, which restores its ciphertext, and `None` returned. `None` in place
    /// of a result: no guess made, nothing done (no packet opened yet, or the integrity limit
    /// reached). [`guesses`](Self::guesses) says where to call it.
    fn open_guessing(
        &self,
        packet: &mut [u8],
        header: &mut CleartextHeader,
    ) -> Option<Result<Option<Guess>, Error>> {
        if self.forged() >= self.limits.integrity {
            return None;
        }
        let current = &self.keys.current;
        let phase = if current.key_phase() {
            KEY_PHASE_BIT
        } else {
            0
        };
        let bits = (self.last_protected_bits? & !KEY_PHASE_BIT) | phase;
        let number = self.largest_received?.checked_add(1)?;
        let format = self.config.header_format();
        // The header and the sample, kept before the payload, where the sample lies, is
        // decrypted.
        let mut head = [0; MAX_SHORT_HEADER_LEN + SAMPLE_LEN];
        let head = head.get_mut(..format.min_protected_len())?;
        copy_bytes(head, packet.get(..head.len())?);
        let mut guessed = CleartextHeader::EMPTY;
        let packet_len = packet.len();
        format
            .predict(&*head, 0, packet_len, (bits, number), &mut guessed)
            .ok()?;
        let sample = format.sample(&*head, 0, packet_len).ok()?;
        let masking = (&self.keys.header_key, &sample);
        let (tag, mask) =
            protect::decrypt_in_place_masking(current, number, &guessed, packet, masking);
        let unprotected = format.unprotect_with(&mask, &*head, 0, packet_len, header);
        // Both headers come from the same bytes but for the masked ones: the same where those
        // are (which fix the length), compared without a call to `memcmp`.
        let confirmed = unprotected.is_ok()
            && header.protected_bits() == guessed.protected_bits()
            && header.packet_number() == guessed.packet_number();
        if !confirmed {
            protect::decrypt_in_place(current, number, &guessed, packet);
        }
        Some(unprotected.map(|()| confirmed.then_some(Guess { number, tag })))
    }

    /// Picks the keys for `header`'s packet, lets `decrypt` open it, and on success updates
    /// the key-phase state. Always inlined: with two callers that open in place (guessing
    /// and not), it became a call, and opens that do not guess took 7-12 ns longer.
    #[inline(always)]
    fn open_packet(
        &mut self,
        header: &CleartextHeader,
        packet_len: usize,
        decrypt: impl FnOnce(&Generation<B>, u64, &CleartextHeader) -> Result<(), Error>,
    ) -> Result<PacketInfo, Error> {
        if self.forged() >= self.limits.integrity {
            return Err(Error::IntegrityLimit);
        }
        let number = header.packet_number().decode(self.largest_received);
        let slot = self.key_slot(header.key_phase(), number);
        if slot == KeySlot::Next {
            // Only when the owner has not prepared them since the last key update.
            self.keys.prepare_next()?;
        }
        let generation = match slot {
            KeySlot::Current => Some(&self.keys.current),
            KeySlot::Previous => self.previous.as_ref(),
            KeySlot::Next => self.keys.next.as_ref(),
        }
        .ok_or(Error::KeyUnavailable)?;
        let generation_number = generation.number;
        decrypt(generation, number, header)?;

        match slot {
            KeySlot::Next => {
                self.previous = Some(self.keys.promote_deferring_next()?);
                self.current_first = Some(number);
            }
            KeySlot::Current => {
                self.current_first = Some(self.current_first.map_or(number, |f| f.min(number)));
            }
            KeySlot::Previous => {}
        }
        self.largest_received = Some(self.largest_received.map_or(number, |l| l.max(number)));
        self.last_protected_bits = Some(header.protected_bits());
        Ok(PacketInfo {
            number,
            generation: generation_number,
            header_len: header.len(),
            payload_len: packet_len - header.len() - TAG_LEN,
            key_update: slot == KeySlot::Next,
        })
    }

    /// RFC 9001 §6.5: a different key phase on a packet older than the current generation's
    /// first means the previous keys (while kept); otherwise it is the peer's key update.
    fn key_slot(&self, key_phase: bool, number: u64) -> KeySlot {
        self.key_slot_after(self.current_first, key_phase, number)
    }

    /// [`key_slot`](Self::key_slot) with `current_first` as the current generation's first
    /// packet number.
    fn key_slot_after(&self, current_first: Option<u64>, key_phase: bool, number: u64) -> KeySlot {
        if key_phase == self.keys.current.key_phase() {
            KeySlot::Current
        } else if self.previous.is_some() && current_first.is_some_and(|first| number < first) {
            KeySlot::Previous
        } else {
            KeySlot::Next
        }
    }

    /// The suite this flow protects with.
    pub fn suite(&self) -> CipherSuite {
        self.keys.suite
    }

    /// The flow's configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The current key generation.
    pub fn generation(&self) -> u64 {
        self.keys.current.number
    }

    /// The key phase bit of the current generation.
    pub fn key_phase(&self) -> bool {
        self.keys.current.key_phase()
    }

    /// True while the previous generation's keys are kept for late packets.
    pub fn has_previous_keys(&self) -> bool {
        self.previous.is_some()
    }

    /// The largest packet number received so far.
    pub fn largest_received(&self) -> Option<u64> {
        self.largest_received
    }

    /// Sets the largest packet number received, against which truncated packet numbers are
    /// decoded (as when state moves from one owner to another). Values past the packet-number
    /// space are taken as its end, 2^62 - 1.
    pub fn set_largest_received(&mut self, largest: Option<u64>) {
        self.largest_received = largest.map(|l| l.min(MAX_PACKET_NUMBER));
    }

    /// True once the flow has seen as many forged packets as the integrity limit allows: the
    /// connection must be closed (RFC 9001 §6.6), and every further open fails.
    pub fn integrity_limit_reached(&self) -> bool {
        self.forged() >= self.limits.integrity
    }

    /// Packets that failed authentication on the connection: before this flow took over
    /// ([`FlowConfig::used`]) and since.
    fn forged(&self) -> u64 {
        self.config
            .used
            .auth_failures
            .saturating_add(self.counters.auth_failures)
    }

    /// What this flow has done.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}
