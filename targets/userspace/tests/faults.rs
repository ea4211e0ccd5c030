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

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Counters, Error, FlowConfig, FlowTable, RxFlow, TxFlow};
use quicseal_userspace::{
    DEFAULT_MESSAGE_CAPACITY, Ecn, RecvBatch, RecvError, SealedSocket, SendBuffer, SocketConfig,
    Transmit,
};

const SENDERS: usize = 4;
/// GSO batches each sender seals, and datagrams in each.
const BATCHES: u64 = 200;
const BATCH: usize = 8;
/// A sender flips its key phase every this many packets.
const KEY_UPDATE_EVERY: u64 = 50;
/// The receiver's flow table: this many flows, all but the senders' idle.
const TABLE: usize = 64;
/// Most datagrams the injector forwards ahead of what the receiver has seen.
const WINDOW: u64 = 64;
/// Fault rates, in percent of the datagrams the injector takes.
const DROP: u64 = 4;
const DUPLICATE: u64 = 4;
const REORDER: u64 = 4;
const TRUNCATE: u64 = 3;
const CORRUPT: u64 = 3;
/// Longest the whole run may take.
const DEADLINE: Duration = Duration::from_secs(60);

const SUITES: [CipherSuite; 3] = CipherSuite::ALL;
const SENT: u64 = SENDERS as u64 * BATCHES * BATCH as u64;

fn dcid(sender: usize) -> [u8; 8] {
    let mut id = *b"sender-0";
    id[7] = b'0' + sender as u8;
    id
}

/// The sender a datagram's connection ID names, if it names one.
fn sender_of(datagram: &[u8]) -> Option<usize> {
    let id = datagram.get(1..9)?;
    (id[..7] == dcid(0)[..7])
        .then(|| usize::from(id[7].wrapping_sub(b'0')))
        .filter(|&sender| sender < SENDERS)
}

fn secret(sender: usize) -> Vec<u8> {
    vec![0x40 + sender as u8; SUITES[sender % 3].secret_len()]
}

/// What a sender's packet `number` carries after its header.
fn payload_byte(sender: usize, number: u64, i: usize) -> u8 {
    (sender as u8)
        .wrapping_mul(7)
        .wrapping_add((number as u8).wrapping_mul(31))
        .wrapping_add(i as u8)
}

fn config() -> SocketConfig {
    SocketConfig {
        gso: true,
        timeout: Duration::from_millis(200),
        recv_buffer: Some(1 << 20),
        send_buffer: None,
    }
}

/// xorshift64*: the injector's and the senders' fixed sequences.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
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
    let suite = SUITES[sender % 3];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret(sender), FlowConfig::new(8)).unwrap();
    let mut random = Random(0x5eed + sender as u64);
    let mut buffer = SendBuffer::new();
    let mut number = 0u64;
    for batch in 1..=BATCHES {
        let size = 60 + (random.next() % 1200) as usize;
        let mut cleartext = Vec::new();
        for _ in 0..BATCH {
            number += 1;
            let header = ShortHeader {
                fixed_bit: true,
                spin: false,
                key_phase: (number / KEY_UPDATE_EVERY) % 2 == 1,
                dcid: ConnectionId::new(&dcid(sender)).unwrap(),
                packet_number: TruncatedPacketNumber::new(number as u32 & 0xffff, 2).unwrap(),
            };
            let mut packet = vec![0u8; size - 16];
            let header_len = header.emit(&mut packet).unwrap();
            for (i, byte) in packet[header_len..].iter_mut().enumerate() {
                *byte = payload_byte(sender, number, i);
            }
            cleartext.extend(packet);
        }
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

/// What the injector did.
#[derive(Debug, Default)]
struct Faults {
    taken: u64,
    forwarded: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
    truncated: u64,
    corrupted: u64,
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
        faults.taken += 1;
        let roll = random.next() % 100;
        let mut roll_under = {
            let mut threshold = 0;
            move |rate| {
                threshold += rate;
                roll < threshold
            }
        };
        if roll_under(DROP) {
            faults.dropped += 1;
        } else if roll_under(DUPLICATE) {
            faults.duplicated += 1;
            forward(&datagram, &mut faults);
            forward(&datagram, &mut faults);
        } else if roll_under(REORDER) {
            faults.reordered += 1;
            held.push_back((index + 1 + random.next() % 3, datagram.clone()));
        } else if roll_under(TRUNCATE) {
            faults.truncated += 1;
            // Not to nothing: an empty datagram is another test's (`bad_datagrams_…`).
            datagram.truncate(1 + (random.next() % (len as u64 - 1)) as usize);
            forward(&datagram, &mut faults);
        } else if roll_under(CORRUPT) {
            faults.corrupted += 1;
            let at = (random.next() % len as u64) as usize;
            datagram[at] ^= 1 << (random.next() % 8);
            forward(&datagram, &mut faults);
        } else {
            forward(&datagram, &mut faults);
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
    let mut table: FlowTable<RxFlow, TABLE> = FlowTable::new(8).unwrap();
    for idle in 0..TABLE - SENDERS {
        let mut id = *b"idle-000";
        id[5..].copy_from_slice(format!("{idle:03}").as_bytes());
        let flow = RxFlow::from_secret(SUITES[0], &[idle as u8; 32], FlowConfig::new(8)).unwrap();
        table.insert(ConnectionId::new(&id).unwrap(), flow).unwrap();
    }
    for sender in 0..SENDERS {
        let flow =
            RxFlow::from_secret(SUITES[sender % 3], &secret(sender), FlowConfig::new(8)).unwrap();
        table
            .insert(ConnectionId::new(&dcid(sender)).unwrap(), flow)
            .unwrap();
    }
    let full = RxFlow::from_secret(SUITES[0], &[0; 32], FlowConfig::new(8)).unwrap();
    let one_more = table.insert(ConnectionId::new(b"one-more").unwrap(), full);
    assert_eq!(one_more.err(), Some(Error::TableFull), "the table is full");

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

    assert_eq!(faults.taken, SENT);
    let damaged = faults.truncated + faults.corrupted;
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
    assert!(faults.dropped > 0 && faults.duplicated > 0 && faults.reordered > 0);
    assert!(faults.truncated > 0 && faults.corrupted > 0);
    assert!(
        counters.key_updates >= SENDERS as u64,
        "every flow updated its keys"
    );
}
