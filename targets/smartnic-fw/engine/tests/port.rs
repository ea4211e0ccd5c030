//! The engine's port: datagrams sealed for it leave as frames, and frames that arrive are
//! opened into the buffers the host posted, by the receive context their connection ID
//! names. Here through a looped-back port, as the LiteX SoC's MAC is wired, and through one
//! that damages a frame on the way.

use quicseal::{CipherSuite, TrafficSecret};
use quicseal_nic::{Loopback, Nic, Port};
use quicseal_nic_abi::host::{
    Address, Capacity, WindowBuilder, completions, frame_header as frame_header_between,
};
use quicseal_nic_abi::{
    Completion, CompletionFlags, ContextFlags, Counters, Descriptor, DescriptorFlags,
    FRAME_HEADER_LEN, KeyContext, MAX_FRAME, Opcode, Region, Status,
};

const SUITE: CipherSuite = CipherSuite::Aes128GcmSha256;
const SECRET: [u8; 32] = [0x17; 32];
const DCID: [u8; 8] = *b"port-cid";
const TAG: usize = 16;

fn context(receive: bool, connection_id: &[u8]) -> KeyContext {
    keyed(receive, connection_id, &SECRET)
}

/// A context of `secret` (the others' or not).
fn keyed(receive: bool, connection_id: &[u8], secret: &[u8; 32]) -> KeyContext {
    let keys = TrafficSecret::new(SUITE, secret).unwrap().key_material();
    let context = KeyContext::new(
        SUITE.code(),
        receive,
        DCID.len() as u8,
        0,
        secret,
        keys.hp(),
    );
    let mut context = KeyContext {
        flags: context.flags | ContextFlags::LARGEST_KNOWN,
        largest_packet_number: 9.into(),
        ..context
    };
    context.connection_id[..connection_id.len()].copy_from_slice(connection_id);
    context
}

/// 02:00:00:00:00:01 to 02:00:00:00:00:02, 192.0.2.1:4433 to 192.0.2.2:443.
fn frame_header() -> Vec<u8> {
    frame_header_between(Address::example(1, 4433), Address::example(2, 443)).to_vec()
}

/// A short-header packet (key phase `phase`) with a 2-byte packet number and `len` bytes.
fn cleartext(pn: u16, len: usize, phase: bool) -> Vec<u8> {
    let mut packet = vec![0x41 | if phase { 0x04 } else { 0 }];
    packet.extend(DCID);
    packet.extend(pn.to_be_bytes());
    packet.extend((0..len).map(|i| (i as u8).wrapping_mul(7) ^ pn as u8));
    packet
}

fn capacity(port: u32) -> Capacity {
    Capacity {
        contexts: 2,
        tx: 4,
        rx: 1,
        completions: 32,
        port,
    }
}

/// A seal descriptor for the port: `src` holds the frame header, then the cleartext.
fn seal_to_port(src: Region, dst: Region, gso_size: u16, cookie: u32) -> Descriptor {
    Descriptor {
        opcode: Opcode::SEAL,
        flags: DescriptorFlags::TO_PORT,
        context: 0.into(),
        gso_size: gso_size.into(),
        src,
        dst,
        cookie: cookie.into(),
        ..Descriptor::default()
    }
}

/// Posts `cleartext` (one datagram) to be sealed to the port, with room for its output.
fn seal_one_to_port(builder: &mut WindowBuilder, cleartext: &[u8], cookie: u32) {
    let src = framed(builder, cleartext);
    let dst = builder.room(cleartext.len() + TAG);
    builder.transmit(seal_to_port(src, dst, 0, cookie));
}

/// The frame header and `cleartext` as one source buffer.
fn framed(builder: &mut WindowBuilder, cleartext: &[u8]) -> Region {
    let mut bytes = frame_header();
    bytes.extend_from_slice(cleartext);
    builder.buffer(&bytes)
}

fn bytes(window: &[u8], offset: u32, len: u32) -> &[u8] {
    &window[offset as usize..(offset + len) as usize]
}

fn served(window: &mut [u8], port: &mut impl Port) -> (Counters, Vec<Completion>) {
    assert_eq!(Nic::new().service(window, || 0, port), Status::OK);
    let (header, done) = completions(window).unwrap();
    (header.counters, done)
}

#[test]
fn sealed_datagrams_leave_by_the_port_and_open_into_posted_buffers() {
    // A GSO batch of three (the last shorter), then one datagram that updates the keys.
    let gso_size = 600;
    let sized = |pn: u16, len: usize| cleartext(pn, len - (1 + DCID.len() + 2), false);
    let batch = [
        sized(10, gso_size - TAG),
        sized(11, gso_size - TAG),
        sized(12, 111),
    ];
    let update = cleartext(13, 1400, true);
    let mut builder = WindowBuilder::new(capacity(4));
    assert_eq!(builder.context(context(false, &[])), 0);
    assert_eq!(builder.context(context(true, &DCID)), 1);
    let src = framed(&mut builder, &batch.concat());
    let dst = builder.room(batch.iter().map(|p| p.len() + TAG).sum());
    builder.transmit(seal_to_port(src, dst, gso_size as u16, 1));
    let src = framed(&mut builder, &update);
    let dst_update = builder.room(update.len() + TAG);
    builder.transmit(seal_to_port(src, dst_update, 0, 2));
    let rooms: Vec<Region> = (0..4).map(|_| builder.room(MAX_FRAME)).collect();
    for (i, &room) in rooms.iter().enumerate() {
        builder.post(room, 100 + i as u32);
    }
    let mut window = builder.build();
    let (counters, done) = served(&mut window, &mut Loopback::new());

    let sent: Vec<&Completion> = done.iter().filter(|c| c.cookie.get() < 100).collect();
    let received: Vec<&Completion> = done.iter().filter(|c| c.cookie.get() >= 100).collect();
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|c| c.status == Status::OK), "{sent:?}");
    assert_ne!(sent[3].flags & CompletionFlags::KEY_UPDATE, 0);
    assert_eq!(received.len(), 4);
    let packets: Vec<&Vec<u8>> = batch.iter().chain([&update]).collect();
    for ((completion, packet), (seal, room)) in
        received.iter().zip(&packets).zip(sent.iter().zip(&rooms))
    {
        assert_eq!(completion.status, Status::OK, "{completion:?}");
        assert_eq!(
            completion.flags & CompletionFlags::LAST,
            CompletionFlags::LAST
        );
        assert_eq!(completion.flags & CompletionFlags::PASSED, 0);
        assert_eq!(completion.packet_number, seal.packet_number);
        assert_eq!(completion.generation, seal.generation);
        // The datagram opened where the frame put it, behind the frame's headers ...
        let payload_at = room.offset.get() + FRAME_HEADER_LEN as u32;
        assert_eq!(completion.offset.get(), payload_at);
        assert_eq!(
            bytes(&window, payload_at, completion.len.get()),
            &packet[..]
        );
        // ... and those headers say how long it was: IPv4 total length, UDP length.
        let frame = bytes(&window, room.offset.get(), FRAME_HEADER_LEN as u32);
        let sealed_len = (packet.len() + TAG) as u16;
        assert_eq!(frame[16..18], (sealed_len + 28).to_be_bytes());
        assert_eq!(frame[38..40], (sealed_len + 8).to_be_bytes());
        assert_eq!(frame[..14], frame_header()[..14]);
    }
    assert_ne!(received[3].flags & CompletionFlags::KEY_UPDATE, 0);
    assert_eq!(received[3].generation.get(), 1);
    assert_eq!(counters.sealed.get(), 4);
    assert_eq!(counters.frames_sent.get(), 4);
    assert_eq!(counters.frames_received.get(), 4);
    assert_eq!(counters.opened.get(), 4);
    assert_eq!(
        counters.frames_passed.get() + counters.frames_dropped.get(),
        0
    );
}

#[test]
fn frames_no_context_claims_are_passed_as_they_came_and_those_without_a_buffer_dropped() {
    let packet = cleartext(10, 300, false);
    let mut builder = WindowBuilder::new(capacity(1));
    builder.context(context(false, &[]));
    builder.context(context(true, b"other-id"));
    for cookie in [1, 2] {
        let packet = cleartext(10 + cookie as u16, 300, false);
        seal_one_to_port(&mut builder, &packet, cookie);
    }
    let room = builder.room(MAX_FRAME);
    builder.post(room, 100);
    let mut window = builder.build();
    let (counters, done) = served(&mut window, &mut Loopback::new());
    let passed = done.iter().find(|c| c.cookie.get() == 100).unwrap();
    assert_eq!(passed.status, Status::OK);
    assert_eq!(
        passed.flags,
        CompletionFlags::PASSED | CompletionFlags::LAST
    );
    assert_eq!(passed.offset, room.offset);
    assert_eq!(
        passed.len.get() as usize,
        FRAME_HEADER_LEN + packet.len() + TAG
    );
    let sealed = bytes(&window, done[0].offset.get(), done[0].len.get()).to_vec();
    assert_eq!(
        bytes(
            &window,
            room.offset.get() + FRAME_HEADER_LEN as u32,
            sealed.len() as u32
        ),
        &sealed[..],
        "the frame as it came"
    );
    assert_eq!(counters.frames_sent.get(), 2);
    assert_eq!(counters.frames_received.get(), 1);
    assert_eq!(counters.frames_passed.get(), 1);
    assert_eq!(counters.frames_dropped.get(), 1);
    assert_eq!(counters.opened.get(), 0);
}

#[test]
fn bad_frame_headers_and_frames_too_long_are_refused_before_sealing() {
    let short = cleartext(10, 100, false);
    let mut builder = WindowBuilder::new(capacity(0));
    builder.context(context(false, &[]));
    // Not IPv4: an IPv6 EtherType.
    let mut bytes = frame_header();
    bytes[12] = 0x86;
    bytes.extend_from_slice(&short);
    let src = builder.buffer(&bytes);
    let dst = builder.room(short.len() + TAG);
    builder.transmit(seal_to_port(src, dst, 0, 1));
    // One datagram a byte too long for a frame, then a GSO size a byte too large.
    let long = cleartext(11, MAX_FRAME - FRAME_HEADER_LEN - TAG - 11 + 1, false);
    seal_one_to_port(&mut builder, &long, 2);
    let src = framed(&mut builder, &short);
    let dst = builder.room(short.len() + TAG);
    let gso_size = (MAX_FRAME - FRAME_HEADER_LEN + 1) as u16;
    builder.transmit(seal_to_port(src, dst, gso_size, 3));
    // The same datagram at the longest a frame takes goes out.
    let longest = &long[..long.len() - 1];
    seal_one_to_port(&mut builder, longest, 4);
    let mut window = builder.build();
    let (counters, done) = served(&mut window, &mut Loopback::new());
    let statuses: Vec<(u32, u8)> = done.iter().map(|c| (c.cookie.get(), c.status)).collect();
    assert_eq!(
        statuses,
        [
            (1, Status::BAD_FRAME),
            (2, Status::BAD_FRAME),
            (3, Status::BAD_FRAME),
            (4, Status::OK)
        ]
    );
    // Nothing was sealed for the refused ones: the packet number is the first refused one's.
    assert_eq!(done[3].packet_number.get(), 11);
    assert_eq!(counters.bad_descriptors.get(), 3);
    assert_eq!(counters.sealed.get(), 1);
    // No buffer was posted: the one frame sent was dropped.
    assert_eq!(counters.frames_sent.get(), 1);
    assert_eq!(counters.frames_dropped.get(), 1);
}

#[test]
fn bad_or_short_posted_buffers_are_refused_and_the_next_one_takes_the_frame() {
    let mut builder = WindowBuilder::new(capacity(4));
    builder.context(context(false, &[]));
    builder.context(context(true, &DCID));
    for cookie in [1, 2] {
        let packet = cleartext(10 + cookie as u16, 300, false);
        seal_one_to_port(&mut builder, &packet, cookie);
    }
    let small = builder.room(100);
    let good = builder.room(MAX_FRAME);
    // A posted buffer with a context set, one too small for the frame, then a good one.
    builder.post(good, 100);
    let mut window = builder.build();
    {
        let (mut header, _) =
            <quicseal_nic_abi::WindowHeader as zerocopy::FromBytes>::read_from_prefix(&window)
                .unwrap();
        let ring = header.port;
        let at = |i: u32| ring.offset.get() as usize + (i as usize) * size_of::<Descriptor>();
        let posted = |src: Region, cookie: u32, context: u16| Descriptor {
            opcode: Opcode::RECEIVE,
            context: context.into(),
            src,
            cookie: cookie.into(),
            ..Descriptor::default()
        };
        for (i, descriptor) in [
            posted(good, 101, 1),
            posted(small, 102, 0),
            posted(good, 103, 0),
        ]
        .iter()
        .enumerate()
        {
            let bytes = zerocopy::IntoBytes::as_bytes(descriptor);
            window[at(1 + i as u32)..][..bytes.len()].copy_from_slice(bytes);
        }
        header.port.producer = 4.into();
        zerocopy::IntoBytes::write_to_prefix(&header, &mut window[..]).unwrap();
    }
    let (counters, done) = served(&mut window, &mut Loopback::new());
    let statuses: Vec<(u32, u8)> = done.iter().map(|c| (c.cookie.get(), c.status)).collect();
    assert_eq!(
        statuses,
        [
            (1, Status::OK),
            (100, Status::OK),
            (2, Status::OK),
            (101, Status::BAD_RESERVED),
            (102, Status::BAD_FRAME),
        ]
    );
    assert_eq!(done[4].len.get(), 100, "the start of the frame, what fits");
    assert_eq!(counters.frames_received.get(), 2);
    assert_eq!(counters.opened.get(), 1);
    // The posted descriptor with a context, and the frame longer than its buffer.
    assert_eq!(counters.bad_descriptors.get(), 2);
    assert_eq!(counters.refused.get(), 0);
}

/// A looped-back port that flips a bit in the `damaged`th frame it carries.
struct Damaging {
    inner: Loopback,
    frames: usize,
    damaged: usize,
    at: usize,
}

impl Port for Damaging {
    fn transmit(&mut self, header: &[u8], payload: &[u8]) -> bool {
        let mut payload = payload.to_vec();
        if self.frames == self.damaged {
            payload[self.at] ^= 0x10;
        }
        self.frames += 1;
        self.inner.transmit(header, &payload)
    }

    fn waiting(&mut self) -> bool {
        self.inner.waiting()
    }

    fn receive(&mut self, into: &mut [u8]) -> Option<usize> {
        self.inner.receive(into)
    }
}

#[test]
fn a_damaged_frame_is_refused_and_its_neighbours_open() {
    let gso_size = 400;
    let batch: Vec<u8> = (0..3u16)
        .flat_map(|i| {
            let mut packet = cleartext(10 + i, 0, false);
            packet.resize(gso_size - TAG, i as u8);
            packet
        })
        .collect();
    for at in [30, gso_size - 1] {
        let mut builder = WindowBuilder::new(capacity(3));
        builder.context(context(false, &[]));
        builder.context(context(true, &DCID));
        let src = framed(&mut builder, &batch);
        let dst = builder.room(3 * gso_size);
        builder.transmit(seal_to_port(src, dst, gso_size as u16, 1));
        let rooms: Vec<Region> = (0..3).map(|_| builder.room(MAX_FRAME)).collect();
        for (i, &room) in rooms.iter().enumerate() {
            builder.post(room, 100 + i as u32);
        }
        let mut window = builder.build();
        let mut port = Damaging {
            inner: Loopback::new(),
            frames: 0,
            damaged: 1,
            at,
        };
        let (counters, done) = served(&mut window, &mut port);
        let received: Vec<&Completion> = done.iter().filter(|c| c.cookie.get() >= 100).collect();
        let statuses: Vec<u8> = received.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [Status::OK, quicseal::Error::AuthFailed.status(), Status::OK],
            "bit flipped at {at}"
        );
        for (i, completion) in received.iter().enumerate().filter(|(i, _)| *i != 1) {
            let datagram = &batch[i * (gso_size - TAG)..(i + 1) * (gso_size - TAG)];
            assert_eq!(
                bytes(&window, completion.offset.get(), completion.len.get()),
                datagram
            );
        }
        // No plaintext is left behind the damaged frame's header.
        let damaged = rooms[1].offset.get() + FRAME_HEADER_LEN as u32;
        assert!(
            bytes(&window, damaged + 16, (gso_size - 2 * TAG) as u32)
                .iter()
                .all(|&b| b == 0),
            "bit flipped at {at}"
        );
        assert_eq!(counters.opened.get(), 2);
        assert_eq!(counters.refused.get(), 1);
    }
}

/// Serves `window` and returns its header too.
fn served_header(
    window: &mut [u8],
    port: &mut impl Port,
) -> (quicseal_nic_abi::WindowHeader, Vec<Completion>) {
    Nic::new().service(window, || 0, port);
    completions(window).unwrap()
}

#[test]
fn a_buffer_posted_over_a_batch_still_being_sent_is_refused() {
    // Two datagrams in a GSO batch; the first buffer posted lies over the batch's `dst`, where
    // the second datagram waits to be sent: a frame opened there would go out in the clear.
    let gso_size = 300;
    let batch: Vec<u8> = (0..2u16)
        .flat_map(|i| {
            let mut packet = cleartext(10 + i, 0, false);
            packet.resize(gso_size - TAG, 0x30 + i as u8);
            packet
        })
        .collect();
    let mut builder = WindowBuilder::new(capacity(3));
    builder.context(context(false, &[]));
    builder.context(context(true, &DCID));
    let src = framed(&mut builder, &batch);
    let dst = builder.room(2 * gso_size);
    builder.transmit(seal_to_port(src, dst, gso_size as u16, 1));
    let over_dst = Region {
        offset: dst.offset,
        len: (MAX_FRAME as u32).min(dst.len.get()).into(),
    };
    builder.post(over_dst, 100);
    let rooms: Vec<Region> = (0..2).map(|_| builder.room(MAX_FRAME)).collect();
    builder.post(rooms[0], 101);
    builder.post(rooms[1], 102);
    let mut window = builder.build();
    let (_, done) = served(&mut window, &mut Loopback::new());
    let answers: Vec<(u32, u8)> = done.iter().map(|c| (c.cookie.get(), c.status)).collect();
    assert_eq!(
        answers,
        [
            (1, Status::OK),
            (100, Status::BAD_BUFFER),
            (101, Status::OK),
            (1, Status::OK),
            (102, Status::OK)
        ]
    );
    // Both came back sealed and opened: the second was not sent as plaintext.
    for (i, completion) in done.iter().filter(|c| c.cookie.get() > 100).enumerate() {
        let datagram = &batch[i * (gso_size - TAG)..(i + 1) * (gso_size - TAG)];
        assert_eq!(
            bytes(&window, completion.offset.get(), completion.len.get()),
            datagram
        );
    }
}

#[test]
fn the_port_ring_is_consumed_counted_and_checked() {
    let packet = cleartext(10, 100, false);
    let mut builder = WindowBuilder::new(capacity(4));
    builder.context(context(false, &[]));
    builder.context(context(true, &DCID));
    seal_one_to_port(&mut builder, &packet, 1);
    let room = builder.room(MAX_FRAME);
    builder.post(room, 100);
    let unused = builder.room(MAX_FRAME);
    builder.post(unused, 101);
    let mut window = builder.build();
    // The first posted buffer carries the transmit opcode.
    let (header, _) =
        <quicseal_nic_abi::WindowHeader as zerocopy::FromBytes>::read_from_prefix(&window).unwrap();
    let at = header.port.offset.get() as usize;
    window[at] = Opcode::SEAL;
    let (header, done) = served_header(&mut window, &mut Loopback::new());
    let answers: Vec<(u32, u8)> = done.iter().map(|c| (c.cookie.get(), c.status)).collect();
    assert_eq!(
        answers,
        [
            (1, Status::OK),
            (100, Status::BAD_OPCODE),
            (101, Status::OK)
        ]
    );
    // Both posted descriptors were taken off the ring, and counted with the seal's.
    assert_eq!(header.port.consumer.get(), 2);
    assert_eq!(header.counters.descriptors.get(), 3);
    assert_eq!(header.status, Status::OK);

    // A port ring whose producer is past its entries: the header says so, and with no
    // buffer to take it the frame is dropped.
    let mut builder = WindowBuilder::new(capacity(2));
    builder.context(context(false, &[]));
    builder.context(context(true, &DCID));
    seal_one_to_port(&mut builder, &packet, 1);
    builder.header_mut().port.producer = 3.into();
    let mut window = builder.build();
    let (header, done) = served_header(&mut window, &mut Loopback::new());
    assert_eq!(header.status, Status::BAD_RING);
    assert_eq!(done.len(), 1);
    assert_eq!(header.counters.frames_dropped.get(), 1);
    assert_eq!(header.port.consumer.get(), 0);
}

/// A port that refuses to send anything.
struct Unplugged;

impl Port for Unplugged {
    fn transmit(&mut self, _header: &[u8], _payload: &[u8]) -> bool {
        false
    }

    fn waiting(&mut self) -> bool {
        false
    }

    fn receive(&mut self, _into: &mut [u8]) -> Option<usize> {
        None
    }
}

#[test]
fn datagrams_the_port_cannot_send_are_sealed_but_not_sent() {
    let gso_size = 200;
    let batch: Vec<u8> = (0..2u16)
        .flat_map(|i| {
            let mut packet = cleartext(10 + i, 0, false);
            packet.resize(gso_size - TAG, 7);
            packet
        })
        .collect();
    let mut builder = WindowBuilder::new(capacity(1));
    builder.context(context(false, &[]));
    let src = framed(&mut builder, &batch);
    let dst = builder.room(2 * gso_size);
    builder.transmit(seal_to_port(src, dst, gso_size as u16, 1));
    let room = builder.room(MAX_FRAME);
    builder.post(room, 100);
    let mut window = builder.build();
    let (header, done) = served_header(&mut window, &mut Unplugged);
    let statuses: Vec<u8> = done.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Status::NOT_SENT, Status::NOT_SENT]);
    assert_eq!(
        done[1].len.get() as usize,
        gso_size,
        "sealed into dst all the same"
    );
    assert_eq!(header.counters.sealed.get(), 2);
    assert_eq!(header.counters.frames_sent.get(), 0);
    assert_eq!(header.port.consumer.get(), 0, "the buffer stays posted");
}

#[test]
fn the_first_valid_receive_context_on_the_frames_port_claims_it() {
    let other = [0x99; 32];
    let on_port = |mut context: KeyContext, port: u16| {
        context.udp_port = port.into();
        context
    };
    let mut not_valid = context(true, &DCID);
    not_valid.flags &= !ContextFlags::VALID;
    let packet = cleartext(10, 100, false);
    let mut builder = WindowBuilder::new(Capacity {
        contexts: 6,
        ..capacity(1)
    });
    // The sealing context (same ID), one not valid, one on another port with other keys,
    // the one that must claim it, and a later one with other keys.
    builder.context(context(false, &DCID));
    builder.context(not_valid);
    builder.context(on_port(keyed(true, &DCID, &other), 999));
    builder.context(on_port(context(true, &DCID), 443));
    builder.context(keyed(true, &DCID, &other));
    seal_one_to_port(&mut builder, &packet, 1);
    let room = builder.room(MAX_FRAME);
    builder.post(room, 100);
    let mut window = builder.build();
    let (_, done) = served(&mut window, &mut Loopback::new());
    let received = done.iter().find(|c| c.cookie.get() == 100).unwrap();
    assert_eq!(received.status, Status::OK, "{received:?}");
    assert_eq!(received.flags & CompletionFlags::PASSED, 0);

    // To a port no context listens on, a zero-length-ID context's frames pass unopened.
    let mut builder = WindowBuilder::new(capacity(1));
    builder.context(context(false, &[]));
    let mut any_id = on_port(context(true, &[]), 4433);
    any_id.dcid_len = 0;
    builder.context(any_id);
    seal_one_to_port(&mut builder, &packet, 1);
    let room = builder.room(MAX_FRAME);
    builder.post(room, 100);
    let mut window = builder.build();
    let (counters, done) = served(&mut window, &mut Loopback::new());
    assert_eq!(
        done[1].flags & CompletionFlags::PASSED,
        CompletionFlags::PASSED,
        "{done:?}"
    );
    assert_eq!(counters.refused.get(), 0);
}

#[test]
fn key_updates_through_the_port_follow_one_another() {
    // Generations 0, 1, 2: the third needs keys derived after the second opened.
    let mut builder = WindowBuilder::new(capacity(3));
    builder.context(context(false, &[]));
    builder.context(context(true, &DCID));
    for (cookie, phase) in [(1u32, false), (2, true), (3, false)] {
        let packet = cleartext(10 + cookie as u16, 200, phase);
        seal_one_to_port(&mut builder, &packet, cookie);
    }
    for cookie in 100..103 {
        let room = builder.room(MAX_FRAME);
        builder.post(room, cookie);
    }
    let mut window = builder.build();
    let (_, done) = served(&mut window, &mut Loopback::new());
    let received: Vec<(u8, u32)> = done
        .iter()
        .filter(|c| c.cookie.get() >= 100)
        .map(|c| (c.status, c.generation.get()))
        .collect();
    assert_eq!(
        received,
        [(Status::OK, 0), (Status::OK, 1), (Status::OK, 2)]
    );
}
