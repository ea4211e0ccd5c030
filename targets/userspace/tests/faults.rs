//! Load with faults through the sockets: several sender threads seal GSO batches with their
//! own `SealedSocket`s, each flow updating its keys as it goes, and send them over loopback
//! UDP to an injector, a plain socket on the path that drops, duplicates, reorders, truncates
//! and corrupts datagrams (the rates below, from a fixed seed) and forwards the rest to one
//! receiving `SealedSocket`, which opens GRO batches through a full flow table.
//!
//! What must hold: every datagram that opens carries its sender's bytes for its packet
//! number; as many open as arrived intact (a duplicate opens again: catching replays is the
//! QUIC stack's job); every damaged one is refused, or passed through when the damage made it
//! look like a long-header packet; the flow table's counters add up to what was seen.
//!
//! Loopback does not lose datagrams unless a socket's buffer overflows, so each hop is paced:
//! a sender waits until the injector has taken its batch, and the injector keeps at most
//! [`WINDOW`] datagrams ahead of the receiver. Every wait has a deadline. `cargo test -p
//! quicseal-userspace --test faults -- --nocapture` prints the run's numbers.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use quicseal::{Counters, FlowConfig, TxFlow};
use quicseal_test_support::{
    BATCH, BATCHES, DCID_LEN, Fault, Faults, Random, SENDERS, SENT, cleartext_batch, payload_byte,
    receiver_table, secret, sender_of, suite,
};
use quicseal_userspace::{
    DEFAULT_MESSAGE_CAPACITY, Ecn, RecvBatch, RecvError, SealedSocket, SendBuffer, SocketConfig,
    Transmit,
};

/// Most datagrams the injector forwards ahead of what the receiver has seen.
const WINDOW: u64 = 64;
/// Longest the whole run may take.
const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> SocketConfig {
    SocketConfig {
        gso: true,
        timeout: Duration::from_millis(200),
        recv_buffer: Some(1 << 20),
        send_buffer: None,
    }
}

/// Waits until `done` holds, or the run's deadline passes (then fails the test).
fn wait_until(started: Instant, what: &str, done: impl Fn() -> bool) {
    while !done() {
        assert!(started.elapsed() < DEADLINE, "waited too long for {what}");
        thread::sleep(Duration::from_micros(200));
    }
}

/// What the path shares: datagrams the injector has taken from each sender, and datagrams
/// the receiver has seen.
struct Progress {
    started: Instant,
    taken: [AtomicU64; SENDERS],
    seen: AtomicU64,
    senders_done: AtomicBool,
}

/// Seals `BATCHES` GSO batches of one sender, a random datagram size each, and sends them to
/// the injector, one batch at a time.
fn send(sender: usize, injector: SocketAddr, progress: &Progress) {
    let socket = SealedSocket::bind((Ipv4Addr::LOCALHOST, 0).into(), config()).unwrap();
    let config = FlowConfig::new(DCID_LEN);
    let mut tx: TxFlow = TxFlow::from_secret(suite(sender), &secret(sender), config).unwrap();
    let mut random = Random(0x5eed + sender as u64);
    let mut buffer = SendBuffer::new();
    let mut number = 0u64;
    for batch in 1..=BATCHES {
        let (size, cleartext) = cleartext_batch(sender, &mut random, &mut number);
        let transmit = Transmit {
            destination: injector,
            ecn: Ecn::NotEct,
            cleartext: &[&cleartext],
            segment_size: size,
        };
        let sent = socket.send(&mut tx, &transmit, &mut buffer).unwrap();
        assert_eq!(sent.sent, BATCH, "{:?}", buffer.outcomes());
        let taken = &progress.taken[sender];
        let what = format!("the injector to take sender {sender}'s batch {batch}");
        wait_until(progress.started, &what, || {
            taken.load(Ordering::Acquire) >= batch * BATCH as u64
        });
    }
}

/// Takes the senders' datagrams off the path, damages some, and forwards the rest to the
/// receiver, keeping at most `WINDOW` ahead of it.
fn inject(path: &UdpSocket, receiver: SocketAddr, progress: &Progress) -> Faults {
    let mut random = Random(0xfa17_5eed);
    let mut faults = Faults::default();
    let mut held: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let forward = |datagram: &[u8], faults: &mut Faults| {
        wait_until(progress.started, "the receiver to catch up", || {
            faults.forwarded < progress.seen.load(Ordering::Acquire) + WINDOW
        });
        path.send_to(datagram, receiver).unwrap();
        faults.forwarded += 1;
    };
    let mut buffer = vec![0u8; 2048];
    while faults.taken < SENT {
        assert!(progress.started.elapsed() < DEADLINE, "the senders stalled");
        let Ok(len) = path.recv(&mut buffer) else {
            continue; // the read timeout: look at the deadline again
        };
        let mut datagram = buffer[..len].to_vec();
        let index = faults.taken;
        let fault = Fault::roll(&mut random, len);
        faults.count(fault);
        match fault {
            Fault::Drop => {}
            Fault::Duplicate => {
                forward(&datagram, &mut faults);
                forward(&datagram, &mut faults);
            }
            Fault::Reorder { after } => held.push_back((index + after, datagram)),
            Fault::Truncate { .. } | Fault::Corrupt { .. } => {
                fault.damage(&mut datagram);
                forward(&datagram, &mut faults);
            }
            Fault::None => forward(&datagram, &mut faults),
        }
        while held.front().is_some_and(|(due, _)| *due <= index) {
            let (_, late) = held.pop_front().unwrap();
            forward(&late, &mut faults);
        }
        // Credit the sender only now: a held datagram's sender must not wait on it.
        if let Some(sender) = sender_of(&buffer[..len]) {
            progress.taken[sender].fetch_add(1, Ordering::AcqRel);
        }
    }
    for (_, late) in held {
        forward(&late, &mut faults);
    }
    progress.senders_done.store(true, Ordering::Release);
    faults
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    datagrams: u64,
    opened: u64,
    refused: u64,
    passed_through: u64,
}

/// Opens what arrives through a flow table full of flows, the senders' among them, until
/// `expected()` datagrams have been seen, checking every opened one's bytes.
fn receive(
    socket: &SealedSocket,
    progress: &Progress,
    expected: &AtomicU64,
) -> (Seen, Counters, u64) {
    let mut table = receiver_table();

    let mut seen = Seen::default();
    let mut batch = RecvBatch::new(8, DEFAULT_MESSAGE_CAPACITY);
    let all_seen = |seen: &Seen| {
        progress.senders_done.load(Ordering::Acquire)
            && seen.datagrams == expected.load(Ordering::Acquire)
    };
    while !all_seen(&seen) {
        assert!(
            progress.started.elapsed() < DEADLINE,
            "datagrams went missing: {seen:?}"
        );
        match socket.recv_open(&mut table, &mut batch) {
            Ok(_) => {}
            Err(RecvError::Timeout(_)) => continue,
            Err(e) => panic!("receive failed: {e}"),
        }
        for message in batch.messages() {
            for datagram in message.datagrams() {
                seen.datagrams += 1;
                match datagram.outcome {
                    Ok(opened) => match opened.packet {
                        Some(packet) => {
                            seen.opened += 1;
                            let sender = sender_of(packet.header).expect("a sender's packet");
                            let number = packet.number();
                            for (i, &byte) in packet.payload.iter().enumerate() {
                                assert_eq!(
                                    byte,
                                    payload_byte(sender, number, i),
                                    "sender {sender} packet {number} byte {i}"
                                );
                            }
                        }
                        None => seen.passed_through += 1,
                    },
                    Err(_) => seen.refused += 1,
                }
            }
        }
        progress.seen.store(seen.datagrams, Ordering::Release);
    }
    (seen, table.totals(), table.unroutable())
}

#[test]
fn datagrams_survive_a_faulty_path_between_sockets_under_load() {
    let path = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    path.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let injector = path.local_addr().unwrap();
    let receiver = SealedSocket::bind((Ipv4Addr::LOCALHOST, 0).into(), config()).unwrap();
    let receiver_address = receiver.local_addr().unwrap();
    let progress = Progress {
        started: Instant::now(),
        taken: [const { AtomicU64::new(0) }; SENDERS],
        seen: AtomicU64::new(0),
        senders_done: AtomicBool::new(false),
    };
    // What the receiver must see in all: the injector's count once it is done.
    let expected = AtomicU64::new(u64::MAX);
    let (faults, (seen, counters, unroutable)) = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &progress, &expected));
        let injecting = scope.spawn(|| {
            let faults = inject(&path, receiver_address, &progress);
            expected.store(faults.forwarded, Ordering::Release);
            faults
        });
        for sender in 0..SENDERS {
            let progress = &progress;
            scope.spawn(move || send(sender, injector, progress));
        }
        (injecting.join().unwrap(), receiving.join().unwrap())
    });
    eprintln!("{faults:?}\n{seen:?}\n{counters:?}\nunroutable: {unroutable}");

    faults.check();
    let damaged = faults.damaged();
    assert_eq!(seen.datagrams, faults.forwarded);
    assert_eq!(
        seen.opened,
        SENT - faults.dropped + faults.duplicated - damaged
    );
    assert_eq!(seen.refused + seen.passed_through, damaged);
    assert_eq!(counters.opened, seen.opened);
    assert_eq!(counters.passed_through, seen.passed_through);
    // Each refused datagram lands in exactly one counter: a flow's, or the table's own for
    // one whose connection ID it does not know.
    assert_eq!(counters.dropped() + unroutable, seen.refused);
    assert!(
        counters.key_updates >= SENDERS as u64,
        "every flow updated its keys"
    );
}
