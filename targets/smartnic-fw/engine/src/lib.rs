//! What quicseal's SmartNIC firmware does, without the hardware: serve a shared window
//! (`quicseal_nic_abi`) with the core. [`Nic::service`] takes the descriptors waiting on the
//! transmit and receive rings, seals or opens their datagrams (GSO and GRO batches included)
//! through the core's flows, writes a completion per datagram, and moves the rings' indices.
//! Datagrams sealed for the port leave through a [`Port`] as frames, and frames arriving on
//! it are opened into the buffers the host posted for them (the port ring).
//!
//! Sans-IO: the firmware binary reads the window from wherever the NIC keeps it and calls
//! [`Nic::service`]; host tests call it on a byte array. Nothing the host writes can make it
//! panic, allocate or touch memory outside the window: every offset, length, index and
//! reserved field is checked, and a bad descriptor gets an error completion.

#![no_std]
#![forbid(unsafe_code)]

mod frame;
mod port;

pub use port::{Loopback, Port};

use core::ops::Range;

use frame::FrameHeader;
use quicseal::backend::TAG_LEN;
use quicseal::{CipherSuite, Datagram, Error, FlowConfig, Outcome, RxFlow, TxFlow, Usage};
use quicseal_nic_abi::{
    Completion, CompletionFlags, ContextFlags, Counters, Descriptor, DescriptorFlags,
    FRAME_HEADER_LEN, KeyContext, MAGIC, MAX_FRAME, Opcode, Region, Ring, Status, VERSION,
    WindowHeader,
};
use zerocopy::{FromBytes, IntoBytes};

/// Key contexts the firmware keeps flows for: the table may be longer, but only its first
/// `MAX_CONTEXTS` entries can be used.
pub const MAX_CONTEXTS: usize = 16;

/// Most datagrams in one GSO or GRO batch (the core's default, which the flows built from
/// key contexts keep); a larger batch is refused whole.
pub const MAX_SEGMENTS: usize = quicseal::DEFAULT_MAX_GSO_SEGMENTS;

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
    /// ring, then takes the frames waiting on `port`, writing completions, indices, counters
    /// and the header's status back into the window. `counter` reads what a descriptor's
    /// cost is counted in (instructions retired, clock cycles: any counter that only counts
    /// up, wrapping at 2^32). Returns the header's status.
    pub fn service(
        &mut self,
        window: &mut [u8],
        counter: impl Fn() -> u32,
        port: &mut impl Port,
    ) -> u8 {
        let Ok((mut header, _)) = WindowHeader::read_from_prefix(window) else {
            return Status::BAD_WINDOW;
        };
        let status = self.service_header(&mut header, window, &counter, port);
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
        port: &mut impl Port,
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
        // No entries: no buffers posted.
        let port_ring = header.port;
        let posted = if port_ring.entries.get() == 0 && port_ring.producer == port_ring.consumer {
            None
        } else if ring_fits::<Descriptor>(&header.port, window.len()) {
            Some(header.port)
        } else {
            status = Status::BAD_RING;
            None
        };
        let mut port = PortSide {
            port,
            posted,
            job: Job {
                contexts: header.contexts,
                buffers: header.buffers,
                opcode: Opcode::RECEIVE,
            },
        };
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
                let descriptor = next_descriptor(ring, window);
                let before = counter();
                self.process(
                    &job,
                    &descriptor,
                    window,
                    &mut Served {
                        completions: &mut completions,
                        counters: &mut header.counters,
                        port: &mut port,
                    },
                    &|| counter().wrapping_sub(before),
                    counter,
                );
                add(&mut header.counters.descriptors, 1);
                ring.consumer = ring.consumer.get().wrapping_add(1).into();
            }
        }
        self.take_frames(
            window,
            &mut Served {
                completions: &mut completions,
                counters: &mut header.counters,
                port: &mut port,
            },
            0..0,
            counter,
        );
        if let Some(posted) = port.posted {
            header.port = posted;
        }
        header.completions = completions.ring;
        add(
            &mut header.counters.completions_dropped,
            completions.dropped,
        );
        status
    }

    /// One descriptor: its completions, one per datagram, the last flagged. A datagram sealed
    /// for the port is sent as soon as it is sealed, and what comes back taken at once.
    fn process<P: Port>(
        &mut self,
        job: &Job,
        descriptor: &Descriptor,
        window: &mut [u8],
        served: &mut Served<'_, '_, P>,
        spent: &impl Fn() -> u32,
        counter: &impl Fn() -> u32,
    ) {
        let cookie = descriptor.cookie;
        let refuse = |served: &mut Served<'_, '_, P>, window: &mut [u8], status: u8| {
            #[cfg(feature = "defmt")]
            defmt::warn!(
                "descriptor {=u32:#x} refused: status {=u8:#x}",
                cookie.get(),
                status
            );
            served.completions.push(
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
                add(&mut served.counters.bad_descriptors, 1);
                return refuse(served, window, status);
            }
        };
        let gso_size = usize::from(descriptor.gso_size.get());
        let mut frame_header = None;
        // A single datagram's outcome, or a batch's: the batch array (a few KB) is filled
        // only for batches.
        let mut single = [Err(Error::Malformed)];
        let mut results;
        let (outcomes, output_at, stride) = match flow {
            Flow::Transmit(tx) => {
                // `check` made the two ranges disjoint.
                let Some((mut src_bytes, dst_bytes)) = split(window, src.clone(), dst.clone())
                else {
                    add(&mut served.counters.bad_descriptors, 1);
                    return refuse(served, window, Status::BAD_BUFFER);
                };
                if descriptor.flags & DescriptorFlags::TO_PORT != 0 {
                    let longest = match gso_size {
                        0 => src_bytes.len().saturating_sub(FRAME_HEADER_LEN) + TAG_LEN,
                        _ => gso_size,
                    };
                    match FrameHeader::new(src_bytes) {
                        Some(header) if FRAME_HEADER_LEN + longest <= MAX_FRAME => {
                            frame_header = Some(header);
                            src_bytes = &src_bytes[FRAME_HEADER_LEN..];
                        }
                        _ => {
                            add(&mut served.counters.bad_descriptors, 1);
                            return refuse(served, window, Status::BAD_FRAME);
                        }
                    }
                }
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
                            add(&mut served.counters.refused, 1);
                            return refuse(served, window, error.status());
                        }
                    }
                };
                (outcomes, dst.start, gso_size)
            }
            Flow::Receive(rx) => {
                let Some(bytes) = window.get_mut(src.clone()) else {
                    add(&mut served.counters.bad_descriptors, 1);
                    return refuse(served, window, Status::BAD_BUFFER);
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
                            add(&mut served.counters.refused, 1);
                            return refuse(served, window, error.status());
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
        // An empty batch still answers, so that the host sees the descriptor done.
        if outcomes.is_empty() {
            return refuse(served, window, Status::OK);
        }
        let sealing = descriptor.opcode == Opcode::SEAL;
        let last = outcomes.len() - 1;
        for (index, outcome) in outcomes.iter().enumerate() {
            let offset = output_at.saturating_add(index.saturating_mul(stride));
            let mut completion = completion(cookie, index, offset, outcome);
            match outcome {
                Ok(_) if sealing => add(&mut served.counters.sealed, 1),
                Ok(_) => add(&mut served.counters.opened, 1),
                Err(_) => add(&mut served.counters.refused, 1),
            }
            let mut sent = false;
            if let (Some(header), Ok(datagram)) = (frame_header, outcome) {
                let end = offset.saturating_add(datagram.len);
                let bytes = window.get(offset..end).unwrap_or_default();
                sent = served
                    .port
                    .port
                    .transmit(&header.for_datagram(datagram.len), bytes);
                if sent {
                    add(&mut served.counters.frames_sent, 1);
                } else {
                    completion.status = Status::NOT_SENT;
                }
            }
            if index == last {
                completion.flags |= CompletionFlags::LAST;
                completion.cost = spent().into();
            }
            served.completions.push(window, completion);
            if sent {
                // The batch's later datagrams are still to be read from `dst`.
                self.take_frames(window, served, dst.clone(), counter);
            }
        }
    }

    /// Takes every frame waiting on the port into the next buffer posted for it, and
    /// completes the buffer: the datagram opened by the receive context its connection ID
    /// (and UDP port) names, or the frame as it came when no context does. With no buffer
    /// posted the frame is dropped and counted, as a NIC drops what it has no room for.
    /// `sending` is the output of a descriptor whose datagrams are still being sent: a buffer
    /// posted over it is refused, lest a frame opened there be sent next in the clear.
    fn take_frames<P: Port>(
        &mut self,
        window: &mut [u8],
        served: &mut Served<'_, '_, P>,
        sending: Range<usize>,
        counter: &impl Fn() -> u32,
    ) {
        while served.port.port.waiting() {
            let before = counter();
            let spent = || counter().wrapping_sub(before);
            let Some(ring) = served
                .port
                .posted
                .as_mut()
                .filter(|ring| ring.consumer != ring.producer)
            else {
                let _ = served.port.port.receive(&mut []);
                add(&mut served.counters.frames_dropped, 1);
                continue;
            };
            let descriptor = next_descriptor(ring, window);
            let mut answer = Completion {
                cookie: descriptor.cookie,
                flags: CompletionFlags::LAST,
                ..Completion::default()
            };
            let room = posted_buffer(&served.port.job, &descriptor, window).and_then(|room| {
                let overlaps = room.start < sending.end && sending.start < room.end;
                if overlaps {
                    Err(Status::BAD_BUFFER)
                } else {
                    Ok(room)
                }
            });
            let room = match room {
                Ok(room) => room,
                Err(status) => {
                    ring.consumer = ring.consumer.get().wrapping_add(1).into();
                    add(&mut served.counters.descriptors, 1);
                    add(&mut served.counters.bad_descriptors, 1);
                    answer.status = status;
                    answer.cost = spent().into();
                    served.completions.push(window, answer);
                    continue;
                }
            };
            // A port that said a frame waits and then has none keeps the buffer posted.
            let Some(len) = served.port.port.receive(&mut window[room.clone()]) else {
                break;
            };
            ring.consumer = ring.consumer.get().wrapping_add(1).into();
            add(&mut served.counters.descriptors, 1);
            add(&mut served.counters.frames_received, 1);
            let frame = room.start..room.start + len.min(room.len());
            answer.offset = u32::try_from(frame.start).unwrap_or(u32::MAX).into();
            answer.len = u32::try_from(frame.len()).unwrap_or(u32::MAX).into();
            let claimed = frame::udp(&window[frame.clone()]).and_then(|udp| {
                let payload = frame.start + udp.payload.start..frame.start + udp.payload.end;
                let index = claimant(&served.port.job, &window[payload.clone()], udp.port, window)?;
                Some((payload, index))
            });
            if len > room.len() {
                add(&mut served.counters.bad_descriptors, 1);
                answer.status = Status::BAD_FRAME;
            } else if let Some((payload, index)) = claimed {
                answer.offset = u32::try_from(payload.start).unwrap_or(u32::MAX).into();
                answer.len = u32::try_from(payload.len()).unwrap_or(u32::MAX).into();
                match self.flow(&served.port.job, index, true, window) {
                    Ok(Flow::Receive(rx)) => {
                        let outcome = rx.open_in_place(&mut window[payload.clone()]);
                        let _ = rx.prepare_next_keys();
                        match outcome {
                            Ok(_) => add(&mut served.counters.opened, 1),
                            Err(_) => add(&mut served.counters.refused, 1),
                        }
                        let opened = completion(answer.cookie, 0, payload.start, &outcome);
                        answer = Completion {
                            flags: answer.flags | opened.flags,
                            // A refused datagram keeps its length, for the host to find it.
                            len: if outcome.is_ok() {
                                opened.len
                            } else {
                                answer.len
                            },
                            ..opened
                        };
                    }
                    // A receive context whose keys the core refused (`BAD_KEYS`).
                    Err(status) => {
                        add(&mut served.counters.bad_descriptors, 1);
                        answer.status = status;
                    }
                    // `flow` gives a receive context a receiving flow.
                    Ok(Flow::Transmit(_)) => {
                        add(&mut served.counters.bad_descriptors, 1);
                        answer.status = Status::BAD_CONTEXT;
                    }
                }
            } else {
                add(&mut served.counters.frames_passed, 1);
                answer.flags |= CompletionFlags::PASSED;
            }
            answer.cost = spent().into();
            served.completions.push(window, answer);
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
        let (flags, number_flag) = if job.opcode == Opcode::SEAL {
            let number = DescriptorFlags::PACKET_NUMBER;
            (number | DescriptorFlags::TO_PORT, number)
        } else {
            let number = DescriptorFlags::LARGEST_RECEIVED;
            (number, number)
        };
        if descriptor.flags & !flags != 0
            || (descriptor.flags & number_flag == 0 && descriptor.packet_number.get() != 0)
            || descriptor.reserved.get() != 0
            || descriptor.reserved2.get() != 0
        {
            return Err(Status::BAD_RESERVED);
        }
        let src = in_buffers(job, &descriptor.src, window).ok_or(Status::BAD_BUFFER)?;
        let dst = if job.opcode == Opcode::SEAL {
            let dst = in_buffers(job, &descriptor.dst, window).ok_or(Status::BAD_BUFFER)?;
            if src.start < dst.end && dst.start < src.end {
                return Err(Status::BAD_BUFFER);
            }
            dst
        } else {
            if descriptor.dst != Region::default() {
                return Err(Status::BAD_RESERVED);
            }
            0..0
        };
        let receive = job.opcode == Opcode::OPEN;
        let flow = self.flow(job, usize::from(descriptor.context.get()), receive, window)?;
        Ok((flow, src, dst))
    }

    /// The flow of context `index`, built on its first use; `receive` says which direction
    /// the caller needs.
    fn flow(
        &mut self,
        job: &Job,
        index: usize,
        receive: bool,
        window: &[u8],
    ) -> Result<&mut Flow, u8> {
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
            Some(flow) if matches!(flow, Flow::Receive(_)) == receive => Ok(flow),
            _ => Err(Status::BAD_CONTEXT),
        }
    }
}

/// What one ring's descriptors share.
struct Job {
    contexts: Region,
    buffers: Region,
    /// The opcode this ring carries.
    opcode: u8,
}

/// The port, and the ring of buffers posted for its frames (`None`: none, or a bad ring).
struct PortSide<'p, P> {
    port: &'p mut P,
    posted: Option<Ring>,
    /// The port ring's: opcode [`Opcode::RECEIVE`].
    job: Job,
}

/// Where a descriptor's results go.
struct Served<'a, 'p, P> {
    completions: &'a mut CompletionRing,
    counters: &'a mut Counters,
    port: &'a mut PortSide<'p, P>,
}

/// `region`'s range, if it lies in the window's buffer area.
fn in_buffers(job: &Job, region: &Region, window: &[u8]) -> Option<Range<usize>> {
    let buffers = job.buffers.range(window.len())?;
    region
        .range(window.len())
        .filter(|range| buffers.start <= range.start && range.end <= buffers.end)
}

/// The room a buffer posted on the port ring gives, or why it is refused.
fn posted_buffer(job: &Job, descriptor: &Descriptor, window: &[u8]) -> Result<Range<usize>, u8> {
    if descriptor.opcode != Opcode::RECEIVE {
        return Err(Status::BAD_OPCODE);
    }
    let unused = Descriptor {
        opcode: descriptor.opcode,
        src: descriptor.src,
        cookie: descriptor.cookie,
        ..Descriptor::default()
    };
    if *descriptor != unused {
        return Err(Status::BAD_RESERVED);
    }
    in_buffers(job, &descriptor.src, window).ok_or(Status::BAD_BUFFER)
}

/// The first receive context (of those the firmware serves) on whose UDP port (or any) the
/// datagram arrived and whose connection ID its first packet is addressed to.
fn claimant(job: &Job, datagram: &[u8], port: u16, window: &[u8]) -> Option<usize> {
    (0..MAX_CONTEXTS).find(|&index| {
        context(job, index, window).is_some_and(|context| {
            let receive = ContextFlags::VALID | ContextFlags::RECEIVE;
            let len = usize::from(context.dcid_len);
            context.flags & receive == receive
                && [0, port].contains(&context.udp_port.get())
                && context.connection_id.get(..len).is_some_and(|id| {
                    quicseal::wire::first_destination_id(|i| datagram.get(i).copied(), len)
                        .is_ok_and(|found| found.as_bytes() == id)
                })
        })
    })
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

/// The descriptor at a ring's consumer index (all zeros, which no check passes, if the
/// window cannot hold it: [`ring_fits`] makes that impossible).
fn next_descriptor(ring: &Ring, window: &[u8]) -> Descriptor {
    let slot = slot_offset::<Descriptor>(ring, ring.consumer.get());
    window
        .get(slot..)
        .and_then(|bytes| Descriptor::read_from_prefix(bytes).ok())
        .map(|(descriptor, _)| descriptor)
        .unwrap_or_default()
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
    if context.reserved != [0; 6]
        || context.reserved2 != [0; 2]
        || context.flags & !ContextFlags::ALL != 0
    {
        return Err(Error::InvalidConfig);
    }
    let config = FlowConfig {
        largest_packet_number: (context.flags & ContextFlags::LARGEST_KNOWN != 0)
            .then(|| context.largest_packet_number.get()),
        used: Usage {
            sealed_in_generation: context.sealed_in_generation.get(),
            auth_failures: context.auth_failures.get(),
        },
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
