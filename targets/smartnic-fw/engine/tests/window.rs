//! The engine on windows built here: round trips through a transmit and a receive context,
//! GSO and GRO batches, and every way a host can get a descriptor or the window wrong, each
//! answered with an error completion while the rest of the window is served.

use quicseal::{CipherSuite, TrafficSecret};
use quicseal_nic::{Loopback, Nic};
use quicseal_nic_abi::host::{Capacity, WindowBuilder, completions};
use quicseal_nic_abi::{
    Completion, CompletionFlags, ContextFlags, Descriptor, DescriptorFlags, KeyContext, Opcode,
    Region, Status,
};

const SUITE: CipherSuite = CipherSuite::ChaCha20Poly1305Sha256;
const SECRET: [u8; 32] = [0x42; 32];
const DCID: [u8; 4] = *b"nic!";

fn context(flags: u8) -> KeyContext {
    let hp = TrafficSecret::new(SUITE, &SECRET).unwrap().key_material();
    let context = KeyContext::new(SUITE.code(), false, DCID.len() as u8, 0, &SECRET, hp.hp());
    KeyContext {
        flags: context.flags | ContextFlags::LARGEST_KNOWN | flags,
        largest_packet_number: 99.into(),
        ..context
    }
}

/// A short-header packet with a 2-byte packet number `pn` and `len` bytes of payload.
fn cleartext(pn: u16, len: usize) -> Vec<u8> {
    let mut packet = vec![0x41];
    packet.extend(DCID);
    packet.extend(pn.to_be_bytes());
    packet.extend((0..len).map(|i| i as u8 ^ pn as u8));
    packet
}

fn capacity() -> Capacity {
    Capacity {
        contexts: 4,
        tx: 8,
        rx: 8,
        completions: 32,
        port: 0,
    }
}

fn seal(context: u16, src: Region, dst: Region, cookie: u32) -> Descriptor {
    Descriptor {
        opcode: Opcode::SEAL,
        context: context.into(),
        src,
        dst,
        cookie: cookie.into(),
        ..Descriptor::default()
    }
}

fn open(context: u16, src: Region, cookie: u32) -> Descriptor {
    Descriptor {
        opcode: Opcode::OPEN,
        context: context.into(),
        src,
        cookie: cookie.into(),
        ..Descriptor::default()
    }
}

fn serve(window: &mut [u8]) -> (u8, Vec<Completion>) {
    let mut nic = Nic::new();
    let status = nic.service(window, || 0, &mut Loopback::new());
    let (_, completions) = completions(window).unwrap();
    (status, completions)
}

fn bytes(window: &[u8], region: Region) -> &[u8] {
    let start = region.offset.get() as usize;
    &window[start..start + region.len.get() as usize]
}

#[test]
fn sealed_datagrams_open_again() {
    let packets = [cleartext(100, 30), cleartext(101, 1200)];
    // Seal both ...
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let mut outputs = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        let src = builder.buffer(packet);
        let dst = builder.room(packet.len() + 16);
        builder.transmit(seal(tx, src, dst, i as u32));
        outputs.push(dst);
    }
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::OK);
    assert_eq!(done.len(), 2);
    for (i, completion) in done.iter().enumerate() {
        assert_eq!(completion.status, Status::OK, "{completion:?}");
        assert_eq!(completion.cookie.get(), i as u32);
        assert_eq!(completion.packet_number.get(), 100 + i as u64);
        assert_eq!(completion.offset, outputs[i].offset);
        assert_eq!(completion.len, outputs[i].len);
        assert_ne!(completion.flags & CompletionFlags::LAST, 0);
    }
    // ... and open them in another window, through a receive context.
    let sealed: Vec<Vec<u8>> = outputs
        .iter()
        .map(|&r| bytes(&window, r).to_vec())
        .collect();
    let mut builder = WindowBuilder::new(capacity());
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let regions: Vec<Region> = sealed.iter().map(|s| builder.buffer(s)).collect();
    for (i, &region) in regions.iter().enumerate() {
        builder.receive(open(rx, region, 10 + i as u32));
    }
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::OK);
    for ((completion, packet), region) in done.iter().zip(&packets).zip(&regions) {
        assert_eq!(completion.status, Status::OK, "{completion:?}");
        assert_eq!(completion.len.get() as usize, packet.len());
        assert_eq!(&bytes(&window, *region)[..packet.len()], packet.as_slice());
    }
}

#[test]
fn gso_batches_complete_per_datagram() {
    let gso_size = 500;
    let stride = gso_size - 16;
    let cleartext: Vec<u8> = (0..3u16)
        .flat_map(|i| cleartext(100 + i, stride - 7 - if i == 2 { 100 } else { 0 }))
        .collect();
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let src = builder.buffer(&cleartext);
    let dst = builder.room(3 * gso_size - 100);
    builder.transmit(Descriptor {
        gso_size: (gso_size as u16).into(),
        ..seal(tx, src, dst, 7)
    });
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    let lens: Vec<u32> = done.iter().map(|c| c.len.get()).collect();
    assert_eq!(lens, [500, 500, 400]);
    assert_eq!(
        done.iter()
            .map(|c| c.flags & CompletionFlags::LAST)
            .collect::<Vec<_>>(),
        [0, 0, CompletionFlags::LAST]
    );

    // The batch back through GRO, in the same flow's receive context.
    let sealed = bytes(&window, dst).to_vec();
    let mut builder = WindowBuilder::new(capacity());
    builder.context(context(0));
    builder.context(context(ContextFlags::RECEIVE));
    let src = builder.buffer(&sealed);
    builder.receive(Descriptor {
        gso_size: (gso_size as u16).into(),
        ..open(rx, src, 8)
    });
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|c| c.status == Status::OK), "{done:?}");
    assert_eq!(
        done.iter()
            .map(|c| c.packet_number.get())
            .collect::<Vec<_>>(),
        [100, 101, 102]
    );
}

#[test]
fn bad_descriptors_get_error_completions_and_the_rest_is_served() {
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(Capacity {
        tx: 16,
        ..capacity()
    });
    let tx = builder.context(context(0));
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let src = builder.buffer(&packet);
    let dst = builder.room(packet.len() + 16);
    let outside = Region {
        offset: 0.into(),
        len: 16.into(),
    };
    let overlapping = Region {
        offset: src.offset,
        len: (packet.len() as u32 + 16).into(),
    };
    let cases = [
        (
            Descriptor {
                opcode: Opcode::OPEN,
                ..seal(tx, src, dst, 1)
            },
            Status::BAD_OPCODE,
        ),
        (seal(9, src, dst, 2), Status::BAD_CONTEXT),
        (seal(rx, src, dst, 3), Status::BAD_CONTEXT),
        (seal(tx, outside, dst, 4), Status::BAD_BUFFER),
        (seal(tx, src, overlapping, 5), Status::BAD_BUFFER),
        (
            Descriptor {
                flags: 0x80,
                ..seal(tx, src, dst, 6)
            },
            Status::BAD_RESERVED,
        ),
        (
            Descriptor {
                reserved2: 1.into(),
                ..seal(tx, src, dst, 7)
            },
            Status::BAD_RESERVED,
        ),
        (
            Descriptor {
                flags: DescriptorFlags::PACKET_NUMBER,
                packet_number: 5.into(),
                ..seal(tx, src, dst, 8)
            },
            quicseal::Error::PacketNumberMismatch.status(),
        ),
    ];
    for (descriptor, _) in cases {
        builder.transmit(descriptor);
    }
    // And one good one after them all.
    builder.transmit(seal(tx, src, dst, 99));
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::OK);
    assert_eq!(done.len(), cases.len() + 1);
    for (completion, (_, expected)) in done.iter().zip(cases) {
        assert_eq!(
            completion.status,
            expected,
            "cookie {}",
            completion.cookie.get()
        );
    }
    assert_eq!(done.last().unwrap().status, Status::OK);
    let (header, _) = completions(&window).unwrap();
    assert_eq!(header.counters.bad_descriptors.get(), 7);
    assert_eq!(header.counters.refused.get(), 1);
    assert_eq!(header.counters.sealed.get(), 1);
    assert_eq!(header.counters.descriptors.get(), 9);
}

/// A GSO or GRO batch of one datagram more than the core takes (129) is refused whole with
/// the core's status, counted, and nothing of it written; the next descriptor is served.
#[test]
fn too_many_segments_are_refused_whole() {
    const TOO_MANY: usize = quicseal::DEFAULT_MAX_GSO_SEGMENTS + 1;
    let datagram = 64;
    let batch = vec![0x41u8; TOO_MANY * (datagram - 16)];
    let protected = vec![0x41u8; TOO_MANY * datagram];
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let src = builder.buffer(&batch);
    let dst = builder.room(protected.len());
    let gro = builder.buffer(&protected);
    builder.transmit(Descriptor {
        gso_size: (datagram as u16).into(),
        ..seal(tx, src, dst, 1)
    });
    let good_src = builder.buffer(&packet);
    let good_dst = builder.room(packet.len() + 16);
    builder.transmit(seal(tx, good_src, good_dst, 2));
    builder.receive(Descriptor {
        gso_size: (datagram as u16).into(),
        ..open(rx, gro, 3)
    });
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::OK);
    let statuses: Vec<(u32, u8)> = done.iter().map(|c| (c.cookie.get(), c.status)).collect();
    let too_many = quicseal::Error::TooManySegments.status();
    assert_eq!(statuses, [(1, too_many), (2, Status::OK), (3, too_many)]);
    assert!(
        bytes(&window, dst).iter().all(|&b| b == 0),
        "nothing sealed"
    );
    assert_eq!(bytes(&window, gro), &protected[..], "nothing opened");
    let (header, _) = completions(&window).unwrap();
    assert_eq!(header.counters.refused.get(), 2);
    assert_eq!(header.counters.sealed.get(), 1);
}

#[test]
fn a_bad_window_or_ring_is_refused_without_touching_the_rest() {
    let mut builder = WindowBuilder::new(capacity());
    builder.header_mut().version = (quicseal_nic_abi::VERSION - 1).into();
    let mut window = builder.build();
    assert_eq!(serve(&mut window).0, Status::BAD_WINDOW);

    // A producer more than a ring's length ahead: that ring is left alone, the other served.
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let src = builder.buffer(&packet);
    let dst = builder.room(packet.len() + 16);
    builder.transmit(seal(tx, src, dst, 1));
    builder.header_mut().rx.producer = 100.into();
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::BAD_RING);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status, Status::OK);

    // Garbage shorter than a header.
    assert_eq!(
        Nic::new().service(&mut [0u8; 10], || 0, &mut Loopback::new()),
        Status::BAD_WINDOW
    );
}

#[test]
fn a_full_completion_ring_drops_and_counts() {
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(Capacity {
        completions: 2,
        ..capacity()
    });
    let tx = builder.context(context(0));
    for i in 0..3u16 {
        let src = builder.buffer(&cleartext(100 + i, 64));
        let dst = builder.room(packet.len() + 16);
        builder.transmit(seal(tx, src, dst, i.into()));
    }
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    assert_eq!(done.len(), 2);
    let (header, _) = completions(&window).unwrap();
    assert_eq!(header.counters.completions_dropped.get(), 1);
    assert_eq!(header.counters.sealed.get(), 3);
}

#[test]
fn a_resync_decodes_a_packet_number_beyond_the_window() {
    // Packet 100000 sealed with a 2-byte packet number: 0x86a0.
    let packet = cleartext(0x86a0, 40);
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let src = builder.buffer(&packet);
    let dst = builder.room(packet.len() + 16);
    builder.transmit(Descriptor {
        flags: DescriptorFlags::PACKET_NUMBER,
        packet_number: 100_000.into(),
        ..seal(tx, src, dst, 1)
    });
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    assert_eq!(
        (done[0].status, done[0].packet_number.get()),
        (Status::OK, 100_000)
    );
    let sealed = bytes(&window, dst).to_vec();

    // A receiver at 99 decodes it as 34464 and fails; told it has seen 99999, it opens it.
    let mut builder = WindowBuilder::new(capacity());
    builder.context(context(0));
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let plain = builder.buffer(&sealed);
    let told = builder.buffer(&sealed);
    builder.receive(open(rx, plain, 2));
    builder.receive(Descriptor {
        flags: DescriptorFlags::LARGEST_RECEIVED,
        packet_number: 99_999.into(),
        ..open(rx, told, 3)
    });
    builder.receive(Descriptor {
        packet_number: 99_999.into(),
        ..open(rx, told, 4)
    });
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    assert_eq!(done[0].status, quicseal::Error::AuthFailed.status());
    assert_eq!(
        (done[1].status, done[1].packet_number.get()),
        (Status::OK, 100_000)
    );
    assert_eq!(&bytes(&window, told)[..packet.len()], packet.as_slice());
    // A packet number without its flag is a reserved field set.
    assert_eq!(done[2].status, Status::BAD_RESERVED);
}

#[test]
fn bad_key_contexts_get_bad_keys_completions_and_the_rest_is_served() {
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(Capacity {
        contexts: 5,
        ..capacity()
    });
    let unknown_suite = builder.context(KeyContext {
        suite: 0x1304.into(),
        ..context(0)
    });
    let short_secret = builder.context(KeyContext {
        secret_len: 31,
        ..context(0)
    });
    let long_dcid = builder.context(KeyContext {
        dcid_len: 21,
        ..context(0)
    });
    let reserved = builder.context(KeyContext {
        reserved2: [0, 1],
        ..context(0)
    });
    let good = builder.context(context(0));
    let src = builder.buffer(&packet);
    let dst = builder.room(packet.len() + 16);
    for (cookie, context) in [unknown_suite, short_secret, long_dcid, reserved, good]
        .into_iter()
        .enumerate()
    {
        builder.transmit(seal(context, src, dst, cookie as u32));
    }
    let mut window = builder.build();
    let (status, done) = serve(&mut window);
    assert_eq!(status, Status::OK);
    let statuses: Vec<u8> = done.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            Status::BAD_KEYS,
            Status::BAD_KEYS,
            Status::BAD_KEYS,
            Status::BAD_KEYS,
            Status::OK
        ]
    );
    let (header, _) = completions(&window).unwrap();
    assert_eq!(header.counters.sealed.get(), 1);
    assert_eq!(header.counters.descriptors.get(), 5);
}

#[test]
fn an_empty_batch_still_gets_its_last_completion() {
    let mut builder = WindowBuilder::new(capacity());
    let tx = builder.context(context(0));
    let rx = builder.context(context(ContextFlags::RECEIVE));
    let empty = builder.buffer(&[]);
    let dst = builder.room(64);
    builder.transmit(Descriptor {
        gso_size: 500.into(),
        ..seal(tx, empty, dst, 1)
    });
    builder.receive(Descriptor {
        gso_size: 500.into(),
        ..open(rx, empty, 2)
    });
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    let answers: Vec<(u32, u8, u8)> = done
        .iter()
        .map(|c| (c.cookie.get(), c.status, c.flags))
        .collect();
    let last = CompletionFlags::LAST;
    // However the core takes an empty batch, each descriptor is answered once, and last.
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers.iter().all(|a| a.2 == last), "{answers:?}");
    assert_eq!([answers[0].0, answers[1].0], [1, 2]);
    // Sealing nothing is done, not refused.
    assert_eq!(answers[0].1, Status::OK);
}

#[test]
fn limits_used_before_the_hand_over_are_honoured() {
    let limits = quicseal::Limits::for_suite(SUITE);
    let packet = cleartext(100, 64);
    let mut builder = WindowBuilder::new(capacity());
    let spent_tx = builder.context(KeyContext {
        sealed_in_generation: limits.confidentiality.into(),
        ..context(0)
    });
    let spent_rx = builder.context(KeyContext {
        auth_failures: limits.integrity.into(),
        ..context(ContextFlags::RECEIVE)
    });
    let fresh_tx = builder.context(context(0));
    let src = builder.buffer(&packet);
    let spent_dst = builder.room(packet.len() + 16);
    let dst = builder.room(packet.len() + 16);
    builder.transmit(seal(spent_tx, src, spent_dst, 1));
    builder.transmit(seal(fresh_tx, src, dst, 2));
    builder.receive(open(spent_rx, dst, 3));
    let mut window = builder.build();
    let (_, done) = serve(&mut window);
    let statuses: Vec<u8> = done.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            quicseal::Error::ConfidentialityLimit.status(),
            Status::OK,
            quicseal::Error::IntegrityLimit.status()
        ]
    );
}
