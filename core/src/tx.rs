//! The sending direction: seals 1-RTT packets and follows the key phase the sender sets.

use crate::backend::{
    Auto, Backend, BatchBuffers, NONCE_LEN, PacketKey, SAMPLE_LEN, StridedLayout, StridedPackets,
    TAG_LEN, prefetch,
};
use crate::flow::{Batch, Datagram, FlowConfig, Outcome, PacketInfo};
use crate::generation::Generation;
use crate::generation::KeySet;
use crate::keys::nonce;
use crate::packet_number::{MAX_PACKET_NUMBER, MAX_PN_LEN, TruncatedPacketNumber};
use crate::protect::{self, CleartextHeader, PendingSeals, Placement, ReadAt, SEAL_BATCH};
use crate::sg::{SgDestination, SgSource};
use crate::wire::short_header::{KEY_PHASE_BIT, pn_len};
use crate::wire::{UnknownVersions, leading_long_packets};
use crate::{CipherSuite, Counters, Error, KeyMaterial, Limits};

/// Sending-side packet protection for one connection: keys, key-phase state, limits and
/// counters. The caller owns it (a kernel socket keeps its own), so no lookup is needed per
/// send.
///
/// A sender starts a key update by flipping the key phase bit in the cleartext header it
/// hands over; the flow then moves to the next generation, which it keeps derived and ready.
/// Per RFC 9001 §6.1 the sender must not do so again before a packet of the current phase
/// has been acknowledged: that knowledge lives in the QUIC stack, not here.
///
/// ```
/// use quicseal::{CipherSuite, FlowConfig, TxFlow};
///
/// let mut tx: TxFlow = TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[7; 32], FlowConfig::new(0))?;
/// let packet = [0x40, 0x01, b'h', b'e', b'l', b'l', b'o']; // 1-byte packet number 1
/// let mut out = [0u8; 7 + 16];
/// let sealed = tx.seal(&[&packet], &mut [&mut out])?;
/// assert_eq!(sealed.len, 23);
/// assert_eq!(sealed.packet.unwrap().number, 1);
/// # Ok::<(), quicseal::Error>(())
/// ```
pub struct TxFlow<B: Backend = Auto> {
    keys: KeySet<B>,
    /// What the current key's GSO batches build and keep for the next
    /// ([`PacketKey::BatchTables`]); dropped, so wiped, with the key at a key update.
    batch_tables: <B::PacketKey as PacketKey>::BatchTables,
    config: FlowConfig,
    limits: Limits,
    sealed_in_generation: u64,
    largest_sealed: Option<u64>,
    counters: Counters,
}

impl<B: Backend> TxFlow<B> {
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

    /// A flow at generation 0 of explicit keys. Before the sender flips the key phase, the
    /// caller must [`install_next_keys`](Self::install_next_keys).
    pub fn from_keys(material: &KeyMaterial, config: FlowConfig) -> Result<Self, Error> {
        Self::with_keys(KeySet::from_keys(material)?, config)
    }

    fn with_keys(keys: KeySet<B>, config: FlowConfig) -> Result<Self, Error> {
        let config = config.validate()?;
        Ok(TxFlow {
            limits: config.limits.unwrap_or(Limits::for_suite(keys.suite)),
            keys,
            batch_tables: Default::default(),
            config,
            sealed_in_generation: config.used.sealed_in_generation,
            largest_sealed: config.largest_packet_number,
            counters: Counters::default(),
        })
    }

    /// Installs explicit keys for the next generation (flows built with
    /// [`from_keys`](Self::from_keys)); replaces, and wipes, any next keys already there.
    pub fn install_next_keys(&mut self, material: &KeyMaterial) -> Result<(), Error> {
        self.keys.install_next(material)
    }

    /// Starts fetching, without waiting, the state that sealing a packet reads (header key,
    /// current keys, packet-number and limit state), as `RxFlow::prefetch` does for opening.
    pub(crate) fn prefetch(&self) {
        self.keys.prefetch_current();
        prefetch(&self.config);
        prefetch(&self.limits);
        prefetch(&self.sealed_in_generation);
        prefetch(&self.largest_sealed);
        prefetch(&self.counters);
    }

    /// Seals one datagram from `src` into `dst`: long-header packets at its front are copied
    /// untouched, the trailing 1-RTT packet (if any) is sealed in one pass. The full packet
    /// number is recovered from the header's truncated one against the largest sealed so far,
    /// as a receiver would; it must be larger.
    pub fn seal(&mut self, src: &[&[u8]], dst: &mut [&mut [u8]]) -> Result<Datagram, Error> {
        let src = SgSource::new(src);
        let mut dst = SgDestination::new(dst);
        self.seal_datagram(&src, 0, src.len(), &mut dst, 0, None)
    }

    /// Like [`seal`](Self::seal), with the full packet number given; it must end in the
    /// header's truncated bits.
    pub fn seal_numbered(
        &mut self,
        packet_number: u64,
        src: &[&[u8]],
        dst: &mut [&mut [u8]],
    ) -> Result<Datagram, Error> {
        let src = SgSource::new(src);
        let mut dst = SgDestination::new(dst);
        self.seal_datagram(&src, 0, src.len(), &mut dst, 0, Some(packet_number))
    }

    /// Seals a datagram in place: `buffer[..len]` holds it in cleartext and
    /// `buffer[len..len + 16]` is room for the tag. Long-header packets at its front stay as
    /// they are. Like [`seal`](Self::seal) otherwise; nothing is written unless it succeeds.
    ///
    /// ```
    /// use quicseal::{CipherSuite, FlowConfig, TxFlow};
    ///
    /// let mut tx: TxFlow = TxFlow::from_secret(CipherSuite::Aes256GcmSha384, &[7; 48], FlowConfig::new(0))?;
    /// let mut buffer = [0u8; 7 + 16];
    /// buffer[..7].copy_from_slice(&[0x40, 0x01, b'h', b'e', b'l', b'l', b'o']);
    /// let sealed = tx.seal_in_place(&mut buffer, 7)?;
    /// assert_eq!(sealed.len, 23);
    /// # Ok::<(), quicseal::Error>(())
    /// ```
    pub fn seal_in_place(&mut self, buffer: &mut [u8], len: usize) -> Result<Datagram, Error> {
        let outcome = self.try_seal_in_place(buffer, len);
        self.count(&outcome);
        outcome
    }

    /// Seals the datagram of `len` bytes at `src_at` into `dst` at `dst_at`, counting the
    /// outcome. Nothing is written unless it succeeds.
    pub(crate) fn seal_datagram(
        &mut self,
        src: &SgSource<'_>,
        src_at: usize,
        len: usize,
        dst: &mut SgDestination<'_, '_>,
        dst_at: usize,
        packet_number: Option<u64>,
    ) -> Result<Datagram, Error> {
        let outcome = self.try_seal(src, src_at, len, dst, dst_at, packet_number);
        self.count(&outcome);
        outcome
    }

    /// Seals a batch's datagrams, `place(i)` saying where datagram `i` lies, each outcome to
    /// `results[i]`. Where the key seals batches of the first datagram's size (a GSO batch's
    /// largest) faster than packet by packet, the packets are queued and handed over
    /// together; elsewhere each is sealed as it is committed, and the queue (a few KB) never
    /// takes stack space, which a kernel's sending path counts.
    pub(crate) fn seal_segments(
        &mut self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        results: &mut [Outcome],
        place: impl Fn(usize) -> Segment,
    ) -> Batch {
        // The datagram's bytes past the shortest short header bound its payload.
        let shortest_header = self.config.header_format().min_header_len();
        let payload_len = match results.first() {
            Some(_) => place(0).len.saturating_sub(shortest_header),
            None => 0,
        };
        if self.keys.current.key.batches_seals(payload_len) {
            self.seal_segments_queued(buffers, results, place)
        } else {
            self.seal_each_segment(buffers, results, place, None)
        }
    }

    #[inline(never)]
    fn seal_segments_queued(
        &mut self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        results: &mut [Outcome],
        place: impl Fn(usize) -> Segment,
    ) -> Batch {
        let mut pending = PendingSeals::new();
        let batch = self.seal_each_segment(buffers, results, place, Some(&mut pending));
        pending.seal(&self.keys.current, &self.keys.header_key, buffers);
        batch
    }

    /// Seals the datagrams of a GSO batch at a stride of `gso_size` (cleartext at `gso_size`
    /// less the tag), from the first, [`SEAL_BATCH`] at a time, while each is a lone 1-RTT
    /// packet of the current key phase that seals: the source and the destination in one
    /// piece each, the key sealing batches of their size. Their outcomes go to `results`
    /// (one per datagram of the batch); returns what was sealed, from `results[0]` on.
    ///
    /// What a stack's GSO batch almost always is, sealed without the general path's per
    /// datagram work (a plan that allows for long-header packets and key updates, a queue
    /// slot, a copied header, a lookup of each piece of output): each header is read where
    /// it lies and is the packet's AAD there, and the packets go to the backend as runs of
    /// one header and payload length at the batch's strides ([`PacketKey::seal_strided`]),
    /// which writes their protected headers and tags itself. A chunk holding anything else
    /// (long-header packets, a key update, a datagram to refuse) and the rest after it are
    /// left to the general path, untouched, so that every outcome but success has one source.
    #[inline(never)]
    pub(crate) fn seal_lone_packets(
        &mut self,
        src: &SgSource<'_>,
        dst: &mut SgDestination<'_, '_>,
        gso_size: usize,
        results: &mut [Outcome],
    ) -> Batch {
        let mut batch = Batch::default();
        let format = self.config.header_format();
        let stride = gso_size - TAG_LEN;
        let payload_len = stride.saturating_sub(format.min_header_len());
        let Some(cleartext) = src.piece(0, src.len()) else {
            return batch;
        };
        if !self.keys.current.key.batches_seals(payload_len) {
            return batch;
        }
        let Some(out) = dst.piece_mut(0, dst.len()) else {
            return batch;
        };
        let pn_offset = format.pn_offset();
        while batch.datagrams < results.len() {
            let first = batch.datagrams;
            let count = SEAL_BATCH.min(results.len() - first);
            let Some(packets) = self.plan_lone_packets(cleartext, stride, first, count) else {
                break;
            };
            let packets = packets.get(..count).unwrap_or_default();
            let generation = &self.keys.current;
            // Runs of one header and payload length: the whole chunk but where the packet
            // number's length changes or the batch's last datagram is shorter.
            let mut start = 0;
            let mut sealed = true;
            while let (Some(lead), true) = (packets.get(start), sealed) {
                let run = packets
                    .iter()
                    .skip(start)
                    .take_while(|p| (p.len, p.header_len) == (lead.len, lead.header_len))
                    .count();
                let nonces: [[u8; NONCE_LEN]; SEAL_BATCH] = core::array::from_fn(|k| {
                    let number = packets.get(start + k).map_or(0, |p| p.number);
                    nonce(&generation.iv, number)
                });
                let index = first + start;
                let strided = StridedPackets {
                    src: cleartext.get(index * stride..).unwrap_or_default(),
                    dst: out.get_mut(index * gso_size..).unwrap_or_default(),
                    layout: StridedLayout {
                        src_stride: stride,
                        dst_stride: gso_size,
                        header_len: lead.header_len,
                        pn_offset,
                        payload_len: lead.len - lead.header_len,
                    },
                };
                let nonces = nonces.get(..run).unwrap_or_default();
                sealed = generation.key.seal_strided(
                    &self.keys.header_key,
                    strided,
                    nonces,
                    &mut self.batch_tables,
                );
                start += run;
            }
            // The core checked the layout, but a backend may refuse it all the same (its own
            // checks are its own): the chunk and the rest then go the general way, nothing
            // of it committed (sealing a packet again under the same number writes the same
            // bytes).
            if !sealed {
                break;
            }
            let outcomes = results.iter_mut().skip(first);
            for ((k, packet), result) in packets.iter().enumerate().zip(outcomes) {
                let len = packet.len + TAG_LEN;
                *result = Ok(Datagram {
                    len,
                    passthrough_len: 0,
                    packet: Some(PacketInfo {
                        number: packet.number,
                        generation: generation.number,
                        header_len: packet.header_len,
                        payload_len: packet.len - packet.header_len,
                        key_update: false,
                    }),
                });
                batch.len = (first + k) * gso_size + len;
            }
            let last = packets.last().map(|packet| packet.number);
            self.largest_sealed = last.or(self.largest_sealed);
            self.sealed_in_generation += count as u64;
            self.counters.sealed += count as u64;
            batch.datagrams += count;
            batch.ok += count;
        }
        batch
    }

    /// The packet numbers and header lengths of the `count` datagrams from `first` of a
    /// batch laid out at `stride` in `cleartext`, if each is a lone 1-RTT packet of the
    /// current key phase that seals, as [`plan`](Self::plan) would find; `None` if any is not.
    fn plan_lone_packets(
        &self,
        cleartext: &[u8],
        stride: usize,
        first: usize,
        count: usize,
    ) -> Option<[LonePacket; SEAL_BATCH]> {
        let format = self.config.header_format();
        let pn_offset = format.pn_offset();
        let sealed_after = self.sealed_in_generation.checked_add(count as u64)?;
        if sealed_after > self.limits.confidentiality {
            return None;
        }
        let key_phase = self.keys.current.key_phase();
        let mut largest = self.largest_sealed;
        let mut packets = [LonePacket::default(); SEAL_BATCH];
        for (k, packet) in packets.iter_mut().enumerate().take(count) {
            let at = (first + k) * stride;
            let len = stride.min(cleartext.len().checked_sub(at)?);
            // The bytes up to the longest packet number's end: without them a packet is too
            // short to sample once sealed (the sample is as long as the tag), and refused.
            const _: () = assert!(SAMPLE_LEN == TAG_LEN);
            let head = cleartext.get(at..at + len)?.get(..pn_offset + MAX_PN_LEN)?;
            let first_byte = *head.first()?;
            if !format.takes_cleartext(first_byte) || (first_byte & KEY_PHASE_BIT != 0) != key_phase
            {
                return None;
            }
            let pn_len = pn_len(first_byte);
            let word = u32::from_be_bytes(*head.get(pn_offset..)?.first_chunk::<MAX_PN_LEN>()?);
            let number = TruncatedPacketNumber::leading(word, pn_len).decode(largest);
            if !is_fresh(number, largest) {
                return None;
            }
            largest = Some(number);
            *packet = LonePacket {
                number,
                len,
                header_len: pn_offset + pn_len,
            };
        }
        Some(packets)
    }

    #[inline(always)]
    fn seal_each_segment(
        &mut self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        results: &mut [Outcome],
        place: impl Fn(usize) -> Segment,
        mut pending: Option<&mut PendingSeals>,
    ) -> Batch {
        let mut batch = Batch {
            datagrams: results.len(),
            ..Batch::default()
        };
        for (index, result) in results.iter_mut().enumerate() {
            let segment = place(index);
            let outcome = match pending.as_deref_mut() {
                Some(pending) => self.queue_datagram(pending, buffers, segment),
                None => self.seal_segment(buffers, segment),
            }
            .and_then(|datagram| match segment.sealed_len {
                Some(len) if len != datagram.len => Err(self.refuse(Error::GsoLayout)),
                _ => Ok(datagram),
            });
            // Counted from the outcome in hand, not read back from `result`: that load
            // waited on the narrower stores that had just written it (about 6 ns a datagram).
            match &outcome {
                Ok(datagram) => {
                    batch.ok += 1;
                    batch.len = segment.dst_at + datagram.len;
                }
                Err(_) => batch.failed += 1,
            }
            *result = outcome;
        }
        batch
    }

    /// Seals `segment`'s datagram at once, as [`seal`](Self::seal) or
    /// [`seal_in_place`](Self::seal_in_place) would (the same code, so that a caller of both
    /// carries one copy of the cipher's state on its stack).
    fn seal_segment(
        &mut self,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        segment: Segment,
    ) -> Result<Datagram, Error> {
        let Segment {
            src_at,
            len,
            dst_at,
            ..
        } = segment;
        match buffers {
            BatchBuffers::Copy { src, dst } => {
                self.seal_datagram(src, src_at, len, dst, dst_at, None)
            }
            BatchBuffers::InPlace(buffer) => {
                let end = dst_at.saturating_add(len).saturating_add(TAG_LEN);
                match buffer.get_mut(dst_at..end) {
                    Some(datagram) if src_at == dst_at => self.seal_in_place(datagram, len),
                    _ => Err(self.refuse(Error::BufferTooSmall)),
                }
            }
        }
    }

    /// Plans `segment`'s datagram in `buffers`: copies its long-header packets and commits
    /// its 1-RTT packet to `pending`, which it seals first when the packet starts a key
    /// update (the queued packets belong to the generation that update retires) and after
    /// when it is full. Counts the outcome; nothing is written unless it succeeds, and the
    /// packet's bytes once the queue is sealed.
    fn queue_datagram(
        &mut self,
        pending: &mut PendingSeals,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        segment: Segment,
    ) -> Result<Datagram, Error> {
        let outcome = self.try_queue(pending, buffers, segment);
        self.count(&outcome);
        outcome
    }

    fn try_queue(
        &mut self,
        pending: &mut PendingSeals,
        buffers: &mut BatchBuffers<'_, '_, '_, '_>,
        segment: Segment,
    ) -> Result<Datagram, Error> {
        let Segment {
            src_at,
            len,
            dst_at,
            ..
        } = segment;
        let header = pending.staged_header();
        let plan = match buffers {
            BatchBuffers::Copy { src, dst } => {
                let source = Window { src, at: src_at };
                let plan = self.plan(&source, |i| src.byte(src_at + i), len, None, header)?;
                if dst.len() < dst_at + plan.output_len(len) {
                    return Err(Error::BufferTooSmall);
                }
                copy(src, src_at, dst, dst_at, plan.passthrough_len);
                plan
            }
            BatchBuffers::InPlace(buffer) => {
                let datagram = src_at
                    .checked_add(len)
                    .and_then(|end| buffer.get(src_at..end))
                    .ok_or(Error::BufferTooSmall)?;
                let plan = self.plan(datagram, |i| datagram.get(i).copied(), len, None, header)?;
                if src_at != dst_at || buffer.len() < dst_at + plan.output_len(len) {
                    return Err(Error::BufferTooSmall);
                }
                plan
            }
        };
        let header_len = header.len();
        if plan.starts_key_update() {
            pending.seal(&self.keys.current, &self.keys.header_key, buffers);
        }
        let at = Placement {
            src_at: src_at + plan.passthrough_len,
            dst_at: dst_at + plan.passthrough_len,
            len: len - plan.passthrough_len,
        };
        let datagram = self.commit(plan, header_len, len, |generation, _, number| {
            pending.push(generation, number, at);
        });
        if pending.is_full() {
            pending.seal(&self.keys.current, &self.keys.header_key, buffers);
        }
        Ok(datagram)
    }

    /// Counts a datagram refused after the fact (by a batch's layout check) and returns why.
    pub(crate) fn refuse(&mut self, error: Error) -> Error {
        self.counters.record(error);
        error
    }

    /// Counts an outcome, by reference as [`RxFlow`](crate::RxFlow)'s does.
    fn count(&mut self, outcome: &Result<Datagram, Error>) {
        if let Err(error) = outcome {
            self.counters.record(*error);
        }
    }

    fn try_seal(
        &mut self,
        src: &SgSource<'_>,
        src_at: usize,
        len: usize,
        dst: &mut SgDestination<'_, '_>,
        dst_at: usize,
        packet_number: Option<u64>,
    ) -> Result<Datagram, Error> {
        let source = Window { src, at: src_at };
        let mut header = CleartextHeader::EMPTY;
        let plan = self.plan(
            &source,
            |i| src.byte(src_at + i),
            len,
            packet_number,
            &mut header,
        )?;
        if dst.len() < dst_at + plan.output_len(len) {
            return Err(Error::BufferTooSmall);
        }
        copy(src, src_at, dst, dst_at, plan.passthrough_len);
        Ok(
            self.commit(plan, header.len(), len, |generation, header_key, number| {
                let at = Placement {
                    src_at: src_at + plan.passthrough_len,
                    dst_at: dst_at + plan.passthrough_len,
                    len: len - plan.passthrough_len,
                };
                protect::seal(generation, header_key, number, &header, src, dst, at);
            }),
        )
    }

    fn try_seal_in_place(&mut self, buffer: &mut [u8], len: usize) -> Result<Datagram, Error> {
        let datagram = buffer.get(..len).ok_or(Error::BufferTooSmall)?;
        let mut header = CleartextHeader::EMPTY;
        let plan = self.plan(
            datagram,
            |i| datagram.get(i).copied(),
            len,
            None,
            &mut header,
        )?;
        let packet = buffer
            .get_mut(plan.passthrough_len..plan.output_len(len))
            .ok_or(Error::BufferTooSmall)?;
        Ok(
            self.commit(plan, header.len(), len, |generation, header_key, number| {
                protect::seal_in_place(generation, header_key, number, &header, packet);
            }),
        )
    }

    /// Checks everything about sealing the datagram of `len` bytes that `bytes` reads,
    /// changing nothing but `header`, where its 1-RTT packet's cleartext header goes.
    fn plan(
        &self,
        bytes: &(impl ReadAt + ?Sized),
        byte: impl Fn(usize) -> Option<u8>,
        len: usize,
        packet_number: Option<u64>,
        header: &mut CleartextHeader,
    ) -> Result<Plan, Error> {
        let (passthrough_len, long_packets) =
            leading_long_packets(byte, len, UnknownVersions::Refuse)?;
        if passthrough_len == len {
            return Ok(Plan {
                passthrough_len,
                long_packets,
                packet: None,
            });
        }
        let packet_len = len - passthrough_len;
        self.config
            .header_format()
            .read_cleartext(bytes, passthrough_len, packet_len, header)?;
        let key_update = header.key_phase() != self.keys.current.key_phase();
        if key_update && self.keys.next.is_none() {
            return Err(Error::KeyUnavailable);
        }
        let sealed_before = if key_update {
            0
        } else {
            self.sealed_in_generation
        };
        if sealed_before >= self.limits.confidentiality {
            return Err(Error::ConfidentialityLimit);
        }
        let truncated = header.packet_number();
        let number = match packet_number {
            Some(number) if !truncated.matches(number) => return Err(Error::PacketNumberMismatch),
            Some(number) => number,
            None => truncated.decode(self.largest_sealed),
        };
        if !is_fresh(number, self.largest_sealed) {
            return Err(Error::PacketNumberReused);
        }
        Ok(Plan {
            passthrough_len,
            long_packets,
            packet: Some((number, key_update)),
        })
    }

    /// Carries out a plan whose packet has a header of `header_len` bytes: moves to the next
    /// generation if the packet asks for it, lets `seal` protect the packet, and counts.
    fn commit(
        &mut self,
        plan: Plan,
        header_len: usize,
        len: usize,
        seal: impl FnOnce(&Generation<B>, &B::HeaderKey, u64),
    ) -> Datagram {
        self.counters.passed_through += plan.long_packets;
        let Some((number, key_update)) = plan.packet else {
            return Datagram {
                len,
                passthrough_len: plan.passthrough_len,
                packet: None,
            };
        };
        if key_update {
            // `plan` checked that the next generation is there. The retired one is dropped
            // here, which wipes it: a sender never needs old keys again.
            let promoted = self.keys.promote();
            debug_assert!(promoted.is_ok());
            self.batch_tables = Default::default();
            self.sealed_in_generation = 0;
            self.counters.key_updates += 1;
        }
        seal(&self.keys.current, &self.keys.header_key, number);
        self.sealed_in_generation += 1;
        self.largest_sealed = Some(number);
        self.counters.sealed += 1;
        Datagram {
            len: plan.output_len(len),
            passthrough_len: plan.passthrough_len,
            packet: Some(PacketInfo {
                number,
                generation: self.keys.current.number,
                header_len,
                payload_len: len - plan.passthrough_len - header_len,
                key_update,
            }),
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

    /// The current key generation (0 until the first key update).
    pub fn generation(&self) -> u64 {
        self.keys.current.number
    }

    /// The key phase bit of packets sealed with the current generation.
    pub fn key_phase(&self) -> bool {
        self.keys.current.key_phase()
    }

    /// True when the next generation's keys are ready for a key update.
    pub fn next_keys_ready(&self) -> bool {
        self.keys.next.is_some()
    }

    /// Packets sealed with the current generation.
    pub fn sealed_in_generation(&self) -> u64 {
        self.sealed_in_generation
    }

    /// True when the current generation is near its confidentiality limit: the sender should
    /// start a key update now, before sealing is refused.
    pub fn key_update_due(&self) -> bool {
        self.limits.key_update_due(self.sealed_in_generation)
    }

    /// The largest packet number sealed so far.
    pub fn largest_sealed(&self) -> Option<u64> {
        self.largest_sealed
    }

    /// What this flow has done.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// Copies `len` bytes, which both sides were checked to hold.
#[inline]
fn copy(
    src: &SgSource<'_>,
    src_at: usize,
    dst: &mut SgDestination<'_, '_>,
    dst_at: usize,
    len: usize,
) {
    // Most datagrams carry no long header packet before their 1-RTT one.
    if len == 0 {
        return;
    }
    let copied = dst.zip_from(dst_at, src, src_at, len, |i, o| o.copy_from_slice(i));
    debug_assert!(copied, "caller checked both buffers' lengths");
}

/// True when packet number `number` may be sealed after `largest`, the largest sealed so
/// far: numbers only grow, up to the largest QUIC has.
fn is_fresh(number: u64, largest: Option<u64>) -> bool {
    number <= MAX_PACKET_NUMBER && largest.is_none_or(|l| number > l)
}

/// Where one datagram of a batch lies: `len` bytes of cleartext at `src_at`, sealed to
/// `dst_at`, and the sealed length the batch's layout needs of it, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) src_at: usize,
    pub(crate) len: usize,
    pub(crate) dst_at: usize,
    pub(crate) sealed_len: Option<usize>,
}

/// A lone 1-RTT packet of a GSO batch, planned by [`TxFlow::plan_lone_packets`].
#[derive(Clone, Copy, Debug, Default)]
struct LonePacket {
    number: u64,
    /// The datagram's bytes of cleartext.
    len: usize,
    header_len: usize,
}

/// What sealing a datagram will do, decided before anything is written.
#[derive(Clone, Copy)]
struct Plan {
    passthrough_len: usize,
    long_packets: u64,
    /// The 1-RTT packet's full packet number, and whether it starts a key update.
    packet: Option<(u64, bool)>,
}

impl Plan {
    /// True when the datagram's 1-RTT packet moves the flow to the next generation.
    fn starts_key_update(&self) -> bool {
        matches!(self.packet, Some((_, true)))
    }

    /// Bytes of output for a datagram of `len` bytes: a tag more if it has a 1-RTT packet.
    fn output_len(&self, len: usize) -> usize {
        if self.packet.is_some() {
            len + TAG_LEN
        } else {
            len
        }
    }
}

/// A source read from an offset on, as the header reader sees it.
struct Window<'a, 's> {
    src: &'a SgSource<'s>,
    at: usize,
}

impl ReadAt for Window<'_, '_> {
    #[inline]
    fn read_at(&self, at: usize, out: &mut [u8]) -> bool {
        self.src.read(self.at + at, out)
    }
}
