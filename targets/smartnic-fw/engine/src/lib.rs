//! What quicseal's SmartNIC firmware does, without the hardware: serve a shared window
//! (`quicseal_nic_abi`) with the core. [`Nic::service`] takes the descriptors waiting on the
//! transmit and receive rings, seals or opens their datagrams (GSO and GRO batches included)
//! through the core's flows, writes a completion per datagram, and moves the rings' indices.
//!
//! Sans-IO: the firmware binary reads the window from wherever the NIC keeps it and calls
//! [`Nic::service`]; host tests call it on a byte array. Nothing the host writes can make it
//! panic, allocate or touch memory outside the window: every offset, length, index and
//! reserved field is checked, and a bad descriptor gets an error completion.

#![no_std]
#![forbid(unsafe_code)]

use core::ops::Range;

use quicseal::{CipherSuite, Datagram, Error, FlowConfig, Outcome, RxFlow, TxFlow};
use quicseal_nic_abi::{
    Completion, CompletionFlags, ContextFlags, Counters, Descriptor, DescriptorFlags, KeyContext,
    MAGIC, Opcode, Ring, Status, VERSION, WindowHeader,
};
use zerocopy::{FromBytes, IntoBytes};

/// Key contexts the firmware keeps flows for: the table may be longer, but only its first
/// `MAX_CONTEXTS` entries can be used.
pub const MAX_CONTEXTS: usize = 16;

/// Most datagrams in one GSO or GRO batch: the core's default.
const MAX_SEGMENTS: usize = quicseal::DEFAULT_MAX_GSO_SEGMENTS;

/// One direction of one connection, built from its key context.
#[allow(
    clippy::large_enum_variant,
    reason = "firmware has no allocator: a slot holds either flow in place (2.1 and 2.9 KB)"
)]
enum Flow {
    Transmit(TxFlow),
    Receive(RxFlow),
}

/// The firmware's state: a flow per key context once used.
pub struct Nic {
    flows: [Option<Flow>; MAX_CONTEXTS],
}

impl Default for Nic {
    fn default() -> Self {
        Nic::new()
    }
}

impl Nic {
    /// No flows yet. `const`, so that firmware can keep it in a static.
    pub const fn new() -> Nic {
        Nic {
            flows: [const { None }; MAX_CONTEXTS],
        }
    }

    /// Processes every descriptor waiting on the window's transmit ring, then on its receive
    /// ring, writing completions, indices, counters and the header's status back into the
    /// window. `counter` reads what a descriptor's cost is counted in (instructions
    /// retired, clock cycles: any counter that only counts up, wrapping at 2^32). Returns the header's status.
    pub fn service(&mut self, window: &mut [u8], counter: impl Fn() -> u32) -> u8 {
        let Ok((mut header, _)) = WindowHeader::read_from_prefix(window) else {
            return Status::BAD_WINDOW;
        };
        let status = self.service_header(&mut header, window, &counter);
        header.status = status;
        // The header was read from this window's prefix, so it fits back.
        let _ = header.write_to_prefix(window);
        status
    }

    fn service_header(
        &mut self,
        header: &mut WindowHeader,
        window: &mut [u8],
        counter: &impl Fn() -> u32,
    ) -> u8 {
        if header.magic != MAGIC
            || header.version.get() != VERSION
            || usize::from(header.header_len.get()) != size_of::<WindowHeader>()
            || usize::try_from(header.window_len.get()) != Ok(window.len())
        {
            return Status::BAD_WINDOW;
        }
        let mut completions = CompletionRing {
            ring: header.completions,
            dropped: 0,
        };
        if !ring_fits::<Completion>(&header.completions, window.len()) {
            return Status::BAD_RING;
        }
        let mut status = Status::OK;
        for (ring, opcode) in [
            (&mut header.tx, Opcode::SEAL),
            (&mut header.rx, Opcode::OPEN),
        ] {
            if !ring_fits::<Descriptor>(ring, window.len()) {
                status = Status::BAD_RING;
                continue;
            }
            let job = Job {
                contexts: header.contexts,
                buffers: header.buffers,
                opcode,
            };
            while ring.consumer != ring.producer {
                let slot = slot_offset::<Descriptor>(ring, ring.consumer.get());
                let descriptor = window
                    .get(slot..)
                    .and_then(|bytes| Descriptor::read_from_prefix(bytes).ok())
                    .map(|(descriptor, _)| descriptor)
                    .unwrap_or_default();
                let before = counter();
                self.process(
                    &job,
                    &descriptor,
                    window,
                    &mut completions,
                    &mut header.counters,
                    &|| counter().wrapping_sub(before),
                );
                add(&mut header.counters.descriptors, 1);
                ring.consumer = ring.consumer.get().wrapping_add(1).into();
            }
        }
        header.completions = completions.ring;
        add(
            &mut header.counters.completions_dropped,
            completions.dropped,
        );
        status
    }

    /// One descriptor: its completions, one per datagram, the last flagged.
    fn process(
        &mut self,
        job: &Job,
        descriptor: &Descriptor,
        window: &mut [u8],
        completions: &mut CompletionRing,
        counters: &mut Counters,
        spent: &impl Fn() -> u32,
    ) {
        let cookie = descriptor.cookie;
        let refuse = |completions: &mut CompletionRing, window: &mut [u8], status: u8| {
            #[cfg(feature = "defmt")]
            defmt::warn!(
                "descriptor {=u32:#x} refused: status {=u8:#x}",
                cookie.get(),
                status
            );
            completions.push(
                window,
                Completion {
                    cookie,
                    status,
                    flags: CompletionFlags::LAST,
                    cost: spent().into(),
                    ..Completion::default()
                },
            );
        };
        let checked = self.check(job, descriptor, window);
        let (flow, src, dst) = match checked {
            Ok(checked) => checked,
            Err(status) => {
                add(&mut counters.bad_descriptors, 1);
                return refuse(completions, window, status);
            }
        };
        let gso_size = usize::from(descriptor.gso_size.get());
        // A single datagram's outcome, or a batch's: the batch array (a few KB) is filled
        // only for batches.
        let mut single = [Err(Error::Malformed)];
        let mut results;
        let (outcomes, output_at, stride) = match flow {
            Flow::Transmit(tx) => {
                // `check` made the two ranges disjoint.
                let Some((src_bytes, dst_bytes)) = split(window, src.clone(), dst.clone()) else {
                    add(&mut counters.bad_descriptors, 1);
                    return refuse(completions, window, Status::BAD_BUFFER);
                };
                let outcomes: &[Outcome] = if gso_size == 0 {
                    single[0] = if descriptor.flags & DescriptorFlags::PACKET_NUMBER != 0 {
                        let number = descriptor.packet_number.get();
                        tx.seal_numbered(number, &[src_bytes], &mut [dst_bytes])
                    } else {
                        tx.seal(&[src_bytes], &mut [dst_bytes])
                    };
                    &single
                } else {
                    results = [Err(Error::Malformed); MAX_SEGMENTS];
                    match tx.seal_gso(&[src_bytes], gso_size, &mut [dst_bytes], &mut results) {
                        Ok(batch) => results.get(..batch.datagrams).unwrap_or_default(),
                        Err(error) => {
                            add(&mut counters.refused, 1);
                            return refuse(completions, window, error.status());
                        }
                    }
                };
                (outcomes, dst.start, gso_size)
            }
            Flow::Receive(rx) => {
                let Some(bytes) = window.get_mut(src.clone()) else {
                    add(&mut counters.bad_descriptors, 1);
                    return refuse(completions, window, Status::BAD_BUFFER);
                };
                if descriptor.flags & DescriptorFlags::LARGEST_RECEIVED != 0 {
                    rx.set_largest_received(Some(descriptor.packet_number.get()));
                }
                let outcomes: &[Outcome] = if gso_size == 0 {
                    single[0] = rx.open_in_place(bytes);
                    &single
                } else {
                    results = [Err(Error::Malformed); MAX_SEGMENTS];
                    match rx.open_gro(bytes, gso_size, &mut results) {
                        Ok(batch) => results.get(..batch.datagrams).unwrap_or_default(),
                        Err(error) => {
                            add(&mut counters.refused, 1);
                            return refuse(completions, window, error.status());
                        }
                    }
                };
                // The next generation's keys, if a key update used them: between
                // descriptors, where a NIC would do it between doorbells, so that no packet
                // waits for the derivation. Failing, it leaves the next update's packets
                // refused, which their completions will say.
                let _ = rx.prepare_next_keys();
                (outcomes, src.start, gso_size)
            }
        };
        let sealing = descriptor.opcode == Opcode::SEAL;
        let last = outcomes.len().saturating_sub(1);
        for (index, outcome) in outcomes.iter().enumerate() {
            let offset = output_at.saturating_add(index.saturating_mul(stride));
            let mut completion = completion(cookie, index, offset, outcome);
            match outcome {
                Ok(_) if sealing => add(&mut counters.sealed, 1),
                Ok(_) => add(&mut counters.opened, 1),
                Err(_) => add(&mut counters.refused, 1),
            }
            if index == last {
                completion.flags |= CompletionFlags::LAST;
                completion.cost = spent().into();
            }
            completions.push(window, completion);
        }
    }

    /// Everything about `descriptor` that does not need the core: its opcode and reserved
    /// fields, its context (building the flow on first use) and its buffers. Returns the
    /// flow, the source range and the destination range (empty when opening).
    fn check(
        &mut self,
        job: &Job,
        descriptor: &Descriptor,
        window: &[u8],
    ) -> Result<(&mut Flow, Range<usize>, Range<usize>), u8> {
        if descriptor.opcode != job.opcode {
            return Err(Status::BAD_OPCODE);
        }
        let number_flag = if job.opcode == Opcode::SEAL {
            DescriptorFlags::PACKET_NUMBER
        } else {
            DescriptorFlags::LARGEST_RECEIVED
        };
        if descriptor.flags & !number_flag != 0
            || (descriptor.flags == 0 && descriptor.packet_number.get() != 0)
            || descriptor.reserved.get() != 0
            || descriptor.reserved2.get() != 0
        {
            return Err(Status::BAD_RESERVED);
        }
        let buffers = job.buffers.range(window.len()).ok_or(Status::BAD_BUFFER)?;
        let inside = |region: &quicseal_nic_abi::Region| {
            region
                .range(window.len())
                .filter(|range| buffers.start <= range.start && range.end <= buffers.end)
        };
        let src = inside(&descriptor.src).ok_or(Status::BAD_BUFFER)?;
        let dst = if job.opcode == Opcode::SEAL {
            let dst = inside(&descriptor.dst).ok_or(Status::BAD_BUFFER)?;
            if src.start < dst.end && dst.start < src.end {
                return Err(Status::BAD_BUFFER);
            }
            dst
        } else {
            if descriptor.dst != quicseal_nic_abi::Region::default() {
                return Err(Status::BAD_RESERVED);
            }
            0..0
        };
        let index = usize::from(descriptor.context.get());
        let receive = job.opcode == Opcode::OPEN;
        let slot = self.flows.get_mut(index).ok_or(Status::BAD_CONTEXT)?;
        if slot.is_none() {
            let context = context(job, index, window).ok_or(Status::BAD_CONTEXT)?;
            let wanted = ContextFlags::VALID | if receive { ContextFlags::RECEIVE } else { 0 };
            if context.flags & (ContextFlags::VALID | ContextFlags::RECEIVE) != wanted {
                return Err(Status::BAD_CONTEXT);
            }
            *slot = Some(build(&context, receive).map_err(|_| Status::BAD_KEYS)?);
        }
        match slot {
            Some(flow) if matches!(flow, Flow::Receive(_)) == receive => Ok((flow, src, dst)),
            _ => Err(Status::BAD_CONTEXT),
        }
    }
}

/// What one ring's descriptors share.
struct Job {
    contexts: quicseal_nic_abi::Region,
    buffers: quicseal_nic_abi::Region,
    /// The opcode this ring carries.
    opcode: u8,
}

/// The completion ring as the firmware fills it.
struct CompletionRing {
    ring: Ring,
    /// Completions that found the ring full.
    dropped: u64,
}

impl CompletionRing {
    fn push(&mut self, window: &mut [u8], completion: Completion) {
        let (producer, consumer) = (self.ring.producer.get(), self.ring.consumer.get());
        if producer.wrapping_sub(consumer) >= self.ring.entries.get() {
            self.dropped += 1;
            return;
        }
        let slot = slot_offset::<Completion>(&self.ring, producer);
        if let Some(bytes) = window.get_mut(slot..) {
            let _ = completion.write_to_prefix(bytes);
        }
        self.ring.producer = producer.wrapping_add(1).into();
    }
}

/// True when `ring` has at least one entry, lies inside the window, and its producer is at
/// most `entries` ahead of its consumer.
fn ring_fits<T>(ring: &Ring, window_len: usize) -> bool {
    let entries = ring.entries.get();
    let bytes = usize::try_from(entries)
        .ok()
        .and_then(|entries| entries.checked_mul(size_of::<T>()));
    let end = usize::try_from(ring.offset.get())
        .ok()
        .zip(bytes)
        .and_then(|(offset, bytes)| offset.checked_add(bytes));
    entries > 0
        && end.is_some_and(|end| end <= window_len)
        && ring.producer.get().wrapping_sub(ring.consumer.get()) <= entries
}

/// Where record `index` of a ring that [`ring_fits`] lies.
fn slot_offset<T>(ring: &Ring, index: u32) -> usize {
    let slot = index.checked_rem(ring.entries.get()).unwrap_or(0) as usize;
    (ring.offset.get() as usize).saturating_add(slot.saturating_mul(size_of::<T>()))
}

/// Context `index` of the table, if the table holds it.
fn context(job: &Job, index: usize, window: &[u8]) -> Option<KeyContext> {
    let table = window.get(job.contexts.range(window.len())?)?;
    let at = index.checked_mul(size_of::<KeyContext>())?;
    let (context, _) = KeyContext::read_from_prefix(table.get(at..)?).ok()?;
    Some(context)
}

/// The flow a context describes.
fn build(context: &KeyContext, receive: bool) -> Result<Flow, Error> {
    let suite = CipherSuite::from_code(context.suite.get())?;
    let secret = context
        .secret
        .get(..usize::from(context.secret_len))
        .ok_or(Error::InvalidKeyLength)?;
    let header_key = context
        .header_key
        .get(..usize::from(context.header_key_len))
        .ok_or(Error::InvalidKeyLength)?;
    if context.reserved != [0; 6] || context.flags & !ContextFlags::ALL != 0 {
        return Err(Error::InvalidConfig);
    }
    let config = FlowConfig {
        largest_packet_number: (context.flags & ContextFlags::LARGEST_KNOWN != 0)
            .then(|| context.largest_packet_number.get()),
        ..FlowConfig::new(usize::from(context.dcid_len))
    };
    let generation = u64::from(context.generation.get());
    Ok(if receive {
        Flow::Receive(RxFlow::resume(
            suite, secret, header_key, generation, config,
        )?)
    } else {
        Flow::Transmit(TxFlow::resume(
            suite, secret, header_key, generation, config,
        )?)
    })
}

/// Disjoint `src` (read) and `dst` (written) ranges of the window.
fn split(window: &mut [u8], src: Range<usize>, dst: Range<usize>) -> Option<(&[u8], &mut [u8])> {
    if src.end <= dst.start {
        let (low, high) = window.split_at_mut_checked(dst.start)?;
        Some((low.get(src)?, high.get_mut(..dst.end - dst.start)?))
    } else if dst.end <= src.start {
        let (low, high) = window.split_at_mut_checked(src.start)?;
        Some((high.get(..src.end - src.start)?, low.get_mut(dst)?))
    } else {
        None
    }
}

/// The completion of one datagram's outcome.
fn completion(
    cookie: zerocopy::little_endian::U32,
    index: usize,
    offset: usize,
    outcome: &Outcome,
) -> Completion {
    let segment = u16::try_from(index).unwrap_or(u16::MAX).into();
    let offset = u32::try_from(offset).unwrap_or(u32::MAX).into();
    match outcome {
        Ok(Datagram { len, packet, .. }) => {
            let mut flags = 0;
            if let Some(packet) = packet {
                if packet.key_phase() {
                    flags |= CompletionFlags::KEY_PHASE;
                }
                if packet.key_update {
                    flags |= CompletionFlags::KEY_UPDATE;
                }
            }
            Completion {
                cookie,
                status: Status::OK,
                flags,
                segment,
                offset,
                len: u32::try_from(*len).unwrap_or(u32::MAX).into(),
                generation: packet
                    .map_or(0, |p| u32::try_from(p.generation).unwrap_or(u32::MAX))
                    .into(),
                cost: 0.into(),
                packet_number: packet.map_or(0, |p| p.number).into(),
            }
        }
        Err(error) => Completion {
            cookie,
            status: error.status(),
            segment,
            offset,
            ..Completion::default()
        },
    }
}

fn add(counter: &mut zerocopy::little_endian::U64, n: u64) {
    *counter = counter.get().wrapping_add(n).into();
}
