//! End to end over real loopback sockets: what the receiver opens is exactly what the sender
//! sealed, across a key update, for each suite, with and without GSO, over IPv4 and IPv6;
//! the GSO fallback when the kernel refuses it; flow tables sharing one socket; long-header
//! pass-through; bad datagrams dropped one by one; bounded waits.
//!
//! Every receive has a timeout and every loop a deadline, so nothing here can hang.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use quicseal::packet_number::TruncatedPacketNumber;
use quicseal::wire::{ConnectionId, ShortHeader};
use quicseal::{CipherSuite, Error, FlowConfig, FlowTable, Limits, Outcome, RxFlow, TxFlow};
use quicseal_userspace::traffic::{self, Endpoints, Protection, TrafficConfig};
use quicseal_userspace::{
    DEFAULT_MESSAGE_CAPACITY, Ecn, OpenGro, RecvBatch, RecvError, SealGso, SealedSocket,
    SendBuffer, SendError, Sent, SocketConfig, Transmit,
};

const SEGMENT: usize = 1200;
const STRIDE: usize = SEGMENT - 16;
const DCID: [u8; 8] = *b"e2e-test";
const PACKETS: u64 = 40;
const BATCH: usize = 8;
const KEY_UPDATE_AT: u64 = 20;
/// Longest any test waits for its packets.
const DEADLINE: Duration = Duration::from_secs(10);

fn socket_config(gso: bool) -> SocketConfig {
    SocketConfig {
        gso,
        timeout: Duration::from_secs(2),
        recv_buffer: Some(1 << 20),
        send_buffer: None,
    }
}

fn ipv4() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

/// `[::1]:0`, or `None` (saying why) where this machine has no IPv6 loopback.
fn ipv6() -> Option<SocketAddr> {
    let address = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0);
    match UdpSocket::bind(address) {
        Ok(_) => Some(address),
        Err(e) => {
            eprintln!("skipping the IPv6 case: cannot bind [::1]:0 here ({e})");
            None
        }
    }
}

/// A receiver at `address` and a sender on the same IP.
fn pair(address: SocketAddr, gso: bool) -> (SealedSocket, SealedSocket) {
    let receiver = SealedSocket::bind(address, socket_config(gso)).unwrap();
    let sender = SealedSocket::bind(SocketAddr::new(address.ip(), 0), socket_config(gso)).unwrap();
    (sender, receiver)
}

/// A cleartext 1-RTT packet of `len` bytes to `dcid`: 2-byte packet number, payload bytes
/// that differ from packet to packet.
fn packet(dcid: &[u8], number: u64, key_phase: bool, len: usize) -> Vec<u8> {
    let header = ShortHeader {
        fixed_bit: true,
        spin: number.is_multiple_of(3),
        key_phase,
        dcid: ConnectionId::new(dcid).unwrap(),
        packet_number: TruncatedPacketNumber::new((number & 0xffff) as u32, 2).unwrap(),
    };
    let mut bytes = vec![0u8; len];
    let header_len = header.emit(&mut bytes).unwrap();
    for (i, b) in bytes[header_len..].iter_mut().enumerate() {
        *b = (number as u8).wrapping_mul(37).wrapping_add(i as u8);
    }
    bytes
}

/// A v1 Handshake packet of `len` bytes (18 to 80), opaque to the seal.
fn handshake(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xe0, 0, 0, 0, 1, 8];
    bytes.extend(DCID);
    bytes.extend([0, 0x40, (len - 17) as u8]); // no SCID, 2-byte Length
    bytes.resize(len, 0xab);
    bytes
}

/// A datagram as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arrived {
    number: u64,
    generation: u64,
    key_phase: bool,
    /// Long-header bytes, then the cleartext short header and payload.
    bytes: Vec<u8>,
    ecn: Ecn,
    source: SocketAddr,
    /// Datagrams in the message it came in.
    message_datagrams: usize,
}

/// Receives until `count` datagrams have arrived (or the deadline passes), opening them with
/// `flow`; a datagram that does not open fails the test.
/// Sends `cleartext` (segments of [`SEGMENT`]) with `tx` over a fresh socket pair while `rx`
/// receives `expected` datagrams; returns the send's report, each datagram's outcome, and
/// what arrived.
fn send_through(
    tx: &mut TxFlow,
    rx: &mut RxFlow,
    cleartext: &[&[u8]],
    expected: usize,
) -> (Sent, Vec<Outcome>, Vec<Arrived>) {
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, rx, expected));
        let mut buffer = SendBuffer::new();
        let transmit = Transmit {
            destination,
            ecn: Ecn::NotEct,
            cleartext,
            segment_size: SEGMENT,
        };
        let sent = sender.send(tx, &transmit, &mut buffer).unwrap();
        (sent, buffer.outcomes().to_vec(), receiving.join().unwrap())
    })
}

/// The outcomes of the first `count` datagrams `receiver` opens with `rx`, in order: the
/// packet number of each that opened, or why it did not.
fn receive_outcomes(
    receiver: &SealedSocket,
    rx: &mut RxFlow,
    count: usize,
) -> Vec<Result<Option<u64>, Error>> {
    let mut batch = RecvBatch::new(4, DEFAULT_MESSAGE_CAPACITY);
    let mut outcomes = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while outcomes.len() < count && Instant::now() < deadline {
        if receiver.recv_open(rx, &mut batch).is_err() {
            continue;
        }
        for message in batch.messages() {
            for datagram in message.datagrams() {
                outcomes.push(datagram.outcome.map(|o| o.packet.map(|p| p.number())));
            }
        }
    }
    outcomes
}

fn receive<O: OpenGro>(receiver: &SealedSocket, flow: &mut O, count: usize) -> Vec<Arrived> {
    let mut batch = RecvBatch::new(8, DEFAULT_MESSAGE_CAPACITY);
    let mut arrived = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while arrived.len() < count && Instant::now() < deadline {
        match receiver.recv_open(flow, &mut batch) {
            Ok(_) => {}
            Err(RecvError::Timeout(_)) => continue,
            Err(e) => panic!("receive failed: {e}"),
        }
        for message in batch.messages() {
            for datagram in message.datagrams() {
                let opened = datagram
                    .outcome
                    .unwrap_or_else(|e| panic!("datagram {} did not open: {e}", datagram.index));
                let mut bytes = opened.long_header.to_vec();
                let (mut number, mut generation, mut key_phase) = (u64::MAX, u64::MAX, false);
                if let Some(packet) = opened.packet {
                    bytes.extend(packet.header);
                    bytes.extend(packet.payload);
                    (number, generation, key_phase) =
                        (packet.number(), packet.generation(), packet.key_phase());
                }
                arrived.push(Arrived {
                    number,
                    generation,
                    key_phase,
                    bytes,
                    ecn: message.ecn,
                    source: message.source,
                    message_datagrams: message.datagram_count(),
                });
            }
        }
    }
    assert_eq!(
        arrived.len(),
        count,
        "datagrams arrived before the deadline"
    );
    arrived
}

/// Sends `packets` in GSO batches of `BATCH` with `flow`, each batch as scatter-gather
/// pieces cut inside the headers; every datagram must go out.
fn send<S: SealGso>(
    sender: &SealedSocket,
    flow: &mut S,
    destination: SocketAddr,
    packets: &[Vec<u8>],
) {
    let mut buffer = SendBuffer::new();
    for batch in packets.chunks(BATCH) {
        let pieces: Vec<&[u8]> = batch
            .iter()
            .flat_map(|p| {
                let (a, b) = p.split_at(5);
                [a, b]
            })
            .collect();
        let transmit = Transmit {
            destination,
            ecn: Ecn::Ect0,
            cleartext: &pieces,
            segment_size: SEGMENT,
        };
        let sent = sender.send(flow, &transmit, &mut buffer).unwrap();
        assert_eq!(
            (sent.datagrams, sent.sent, sent.refused),
            (batch.len(), batch.len(), 0),
            "{:?}",
            buffer.outcomes()
        );
    }
}

/// One suite, one path, one address family: 40 packets in batches of 8 (some batches end
/// in a shorter packet), the key phase flipping at packet 20, inside a batch.
fn exchange(suite: CipherSuite, gso: bool, address: SocketAddr) {
    let what = format!("{} gso={gso} {address}", suite.name());
    let (sender, receiver) = pair(address, gso);
    let destination = receiver.local_addr().unwrap();
    let secret = vec![0x42; suite.secret_len()];
    let packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|n| {
            let short_last = n % 16 == 15; // the last of every other batch
            packet(
                &DCID,
                n,
                n >= KEY_UPDATE_AT,
                if short_last { 300 } else { STRIDE },
            )
        })
        .collect();
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(DCID.len())).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(DCID.len())).unwrap();

    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx, packets.len()));
        send(&sender, &mut tx, destination, &packets);
        receiving.join().unwrap()
    });

    let sender_address = sender.local_addr().unwrap();
    for (i, got) in arrived.iter().enumerate() {
        let i = i as u64;
        assert_eq!(got.number, i, "{what}: packet order");
        assert_eq!(got.bytes, packets[i as usize], "{what}: packet {i} bytes");
        let updated = i >= KEY_UPDATE_AT;
        assert_eq!(
            (got.generation, got.key_phase),
            (u64::from(updated), updated),
            "{what}: packet {i} keys"
        );
        assert_eq!(got.ecn, Ecn::Ect0, "{what}: packet {i} ECN");
        assert_eq!(got.source, sender_address, "{what}: packet {i} source");
    }
    assert_eq!(tx.counters().key_updates, 1, "{what}");
    assert_eq!(rx.counters().key_updates, 1, "{what}");
    assert_eq!(rx.counters().opened, PACKETS, "{what}");

    let stats = sender.stats();
    let largest_message = arrived.iter().map(|a| a.message_datagrams).max();
    if gso && sender.max_gso_segments() > 1 {
        assert_eq!(
            (stats.gso_sends, stats.single_sends),
            (PACKETS / BATCH as u64, 0),
            "{what}: one GSO sendmsg per batch"
        );
        if receiver.gro_enabled() {
            assert_eq!(
                largest_message,
                Some(BATCH),
                "{what}: GRO kept batches whole"
            );
        }
    } else {
        if gso {
            eprintln!("{what}: GSO is not available here; the batches went one by one");
        }
        assert_eq!(
            (stats.gso_sends, stats.single_sends),
            (0, PACKETS),
            "{what}"
        );
        assert_eq!(largest_message, Some(1), "{what}");
    }
    assert_eq!(stats.datagrams_sent, PACKETS, "{what}");
}

#[test]
fn sealed_packets_arrive_as_sent_over_ipv4() {
    for suite in CipherSuite::ALL {
        for gso in [true, false] {
            exchange(suite, gso, ipv4());
        }
    }
}

#[test]
fn sealed_packets_arrive_as_sent_over_ipv6() {
    let Some(address) = ipv6() else { return };
    for suite in CipherSuite::ALL {
        for gso in [true, false] {
            exchange(suite, gso, address);
        }
    }
}

/// SO_NO_CHECK makes Linux refuse every GSO send with EINVAL (udp_send_skb: GSO needs the
/// UDP checksum), while single datagrams still go: a real kernel refusal on loopback.
fn refuse_gso(socket: &UdpSocket) {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a c_int with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_NO_CHECK): {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn kernel_refusing_gso_falls_back_to_one_datagram_per_send() {
    let (sender, receiver) = pair(ipv4(), true);
    if sender.max_gso_segments() == 1 {
        eprintln!("skipping: this kernel offers no UDP GSO to fall back from");
        return;
    }
    refuse_gso(sender.as_std());
    let destination = receiver.local_addr().unwrap();
    let secret = [7u8; 32];
    let suite = CipherSuite::Aes128GcmSha256;
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let packets: Vec<Vec<u8>> = (0..16).map(|n| packet(&DCID, n, false, STRIDE)).collect();

    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx, packets.len()));
        send(&sender, &mut tx, destination, &packets[..8]);
        let stats = sender.stats();
        assert_eq!(
            (stats.gso_refusals, stats.gso_sends, stats.single_sends),
            (1, 0, 8),
            "the refused batch went again one datagram at a time"
        );
        assert_eq!(sender.max_gso_segments(), 1, "GSO stays off");
        send(&sender, &mut tx, destination, &packets[8..]);
        receiving.join().unwrap()
    });

    let stats = sender.stats();
    assert_eq!(
        (stats.gso_refusals, stats.gso_sends, stats.single_sends),
        (1, 0, 16),
        "the next batch did not try GSO again"
    );
    for (i, got) in arrived.iter().enumerate() {
        assert_eq!((got.number, &got.bytes), (i as u64, &packets[i]));
        assert_eq!(got.message_datagrams, 1);
    }
}

#[test]
fn flow_tables_serve_several_connections_on_one_socket() {
    const OTHER: [u8; 8] = *b"e2e-two!";
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let (secret_a, secret_b) = ([1u8; 32], [2u8; 32]);
    let config = FlowConfig::new(8);
    let mut tx_table: FlowTable<TxFlow, 4> = FlowTable::new(8).unwrap();
    let mut rx_table: FlowTable<RxFlow, 4> = FlowTable::new(8).unwrap();
    for (dcid, secret) in [(DCID, secret_a), (OTHER, secret_b)] {
        let cid = ConnectionId::new(&dcid).unwrap();
        tx_table
            .insert(cid, TxFlow::from_secret(suite, &secret, config).unwrap())
            .unwrap();
        rx_table
            .insert(cid, RxFlow::from_secret(suite, &secret, config).unwrap())
            .unwrap();
    }
    // A batch for each connection, then one that mixes them.
    let mut packets = Vec::new();
    for n in 0..4 {
        packets.push(packet(&DCID, n, false, STRIDE));
    }
    for n in 0..4 {
        packets.push(packet(&OTHER, n, false, STRIDE));
    }
    for n in 4..8 {
        packets.push(packet(
            if n % 2 == 0 { &DCID } else { &OTHER },
            n,
            false,
            STRIDE,
        ));
    }
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx_table, packets.len()));
        let mut buffer = SendBuffer::new();
        for batch in packets.chunks(4) {
            let cleartext = batch.concat();
            let transmit = Transmit {
                destination,
                ecn: Ecn::Ect1,
                cleartext: &[&cleartext],
                segment_size: SEGMENT,
            };
            let sent = sender.send(&mut tx_table, &transmit, &mut buffer).unwrap();
            assert_eq!(sent.sent, 4, "{:?}", buffer.outcomes());
        }
        receiving.join().unwrap()
    });
    for (got, sent) in arrived.iter().zip(&packets) {
        assert_eq!(&got.bytes, sent);
        assert_eq!(got.ecn, Ecn::Ect1);
    }
    assert_eq!(tx_table.totals().sealed, 12);
    assert_eq!(rx_table.totals().opened, 12);
}

#[test]
fn long_header_packets_pass_through_unsealed() {
    let suite = CipherSuite::Aes256GcmSha384;
    let secret = [9u8; 48];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    // A 1-RTT datagram, a Handshake packet coalesced with a 1-RTT one, and a lone Handshake
    // packet last (it gains no tag, which only the last datagram of a batch may do).
    let coalesced = [handshake(60), packet(&DCID, 2, false, STRIDE - 60)].concat();
    let datagrams = [packet(&DCID, 1, false, STRIDE), coalesced, handshake(40)];
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx, datagrams.len()));
        let cleartext = datagrams.concat();
        let mut buffer = SendBuffer::new();
        let transmit = Transmit {
            destination,
            ecn: Ecn::NotEct,
            cleartext: &[&cleartext],
            segment_size: SEGMENT,
        };
        let sent = sender.send(&mut tx, &transmit, &mut buffer).unwrap();
        assert_eq!((sent.sent, sent.bytes), (3, 2 * SEGMENT + 40));
        receiving.join().unwrap()
    });
    assert_eq!(arrived[0].bytes, datagrams[0]);
    assert_eq!(
        (arrived[1].number, &arrived[1].bytes),
        (2, &datagrams[1]),
        "the Handshake packet is in front, untouched"
    );
    assert_eq!(arrived[2].bytes, datagrams[2], "a lone Handshake packet");
    assert_eq!(arrived[2].number, u64::MAX, "no 1-RTT packet in it");
    assert_eq!(rx.counters().passed_through, 2);
}

#[test]
fn a_refused_datagram_is_left_out_and_its_neighbours_sent() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = [3u8; 32];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut packets: Vec<Vec<u8>> = (0..4).map(|n| packet(&DCID, n, false, STRIDE)).collect();
    packets[2][0] |= 0x10; // a reserved bit: the seal refuses it
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx, 3));
        let cleartext = packets.concat();
        let mut buffer = SendBuffer::new();
        let transmit = Transmit {
            destination,
            ecn: Ecn::Ect0,
            cleartext: &[&cleartext],
            segment_size: SEGMENT,
        };
        let sent = sender.send(&mut tx, &transmit, &mut buffer).unwrap();
        assert_eq!((sent.datagrams, sent.sent, sent.refused), (4, 3, 1));
        assert_eq!(buffer.outcomes()[2], Err(Error::ReservedBits));
        if sender.max_gso_segments() > 1 {
            assert_eq!(sent.syscalls, 2, "datagrams 0-1 in one GSO send, 3 alone");
        }
        receiving.join().unwrap()
    });
    let numbers: Vec<u64> = arrived.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [0, 1, 3]);
    assert_eq!(arrived[2].bytes, packets[3]);
}

#[test]
fn bad_datagrams_are_dropped_one_by_one() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = [5u8; 32];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let seal = |tx: &mut TxFlow, n: u64| {
        let cleartext = packet(&DCID, n, false, 200);
        let mut out = vec![0u8; 216];
        let _ = tx.seal(&[&cleartext], &mut [&mut out]).unwrap();
        out
    };
    let mut forged = seal(&mut tx, 1);
    *forged.last_mut().unwrap() ^= 1;
    let mut tampered = seal(&mut tx, 2);
    tampered[100] ^= 0x20; // a payload byte
    let good = seal(&mut tx, 3);
    let receiver = SealedSocket::bind(ipv4(), socket_config(true)).unwrap();
    let destination = receiver.local_addr().unwrap();
    let plain = UdpSocket::bind(ipv4()).unwrap();
    for datagram in [&[][..], b"\x41 not a packet", &forged, &tampered, &good] {
        plain.send_to(datagram, destination).unwrap();
    }
    let outcomes = receive_outcomes(&receiver, &mut rx, 5);
    assert_eq!(
        outcomes,
        [
            Err(Error::Malformed),
            Err(Error::Malformed),
            Err(Error::AuthFailed),
            Err(Error::AuthFailed),
            Ok(Some(3))
        ]
    );
    assert_eq!(receiver.stats().datagrams_received, 5);
    // The empty datagram is the core's to refuse, and so to count, like the other.
    assert_eq!(
        (rx.counters().malformed, rx.counters().auth_failures),
        (2, 2)
    );
}

/// Keys and limits hold through the socket as in the core: a packet sealed two key updates
/// ahead carries the receiver's own key phase but not its keys, so it fails to open; once
/// the integrity limit's forgeries have arrived, every datagram after them, a genuine one
/// too, is refused and counted; and a sender past its confidentiality limit leaves the
/// datagrams it refuses out of the send.
#[test]
fn wrong_keys_and_exhausted_limits_hold_through_the_socket() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = [6u8; 32];
    let limits = Limits {
        confidentiality: 2,
        integrity: 3,
        key_update_margin: 0,
    };
    let limited = FlowConfig {
        limits: Some(limits),
        ..FlowConfig::new(8)
    };
    let seal = |tx: &mut TxFlow, n: u64, key_phase: bool| {
        let cleartext = packet(&DCID, n, key_phase, 200);
        let mut out = vec![0u8; 216];
        let _ = tx.seal(&[&cleartext], &mut [&mut out]).unwrap();
        out
    };
    let mut ahead: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let _ = seal(&mut ahead, 1, true); // generation 1
    let two_updates_ahead = seal(&mut ahead, 2, false); // generation 2: phase 0 again
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let forged: Vec<Vec<u8>> = (3..5)
        .map(|n| {
            let mut forged = seal(&mut tx, n, false);
            *forged.last_mut().unwrap() ^= 1;
            forged
        })
        .collect();
    let good = seal(&mut tx, 5, false);
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, limited).unwrap();
    let receiver = SealedSocket::bind(ipv4(), socket_config(true)).unwrap();
    let destination = receiver.local_addr().unwrap();
    let plain = UdpSocket::bind(ipv4()).unwrap();
    for datagram in [&two_updates_ahead, &forged[0], &forged[1], &good] {
        plain.send_to(datagram, destination).unwrap();
    }
    let outcomes = receive_outcomes(&receiver, &mut rx, 4);
    assert_eq!(
        outcomes,
        [
            Err(Error::AuthFailed),
            Err(Error::AuthFailed),
            Err(Error::AuthFailed),
            Err(Error::IntegrityLimit)
        ]
    );
    let counters = rx.counters();
    assert_eq!(
        (
            counters.auth_failures,
            counters.dropped_for_limits,
            counters.opened
        ),
        (3, 1, 0)
    );

    // Sending: two packets under the limit go out, the two after it are refused.
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, limited).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let packets: Vec<Vec<u8>> = (0..4).map(|n| packet(&DCID, n, false, STRIDE)).collect();
    let (sent, outcomes, arrived) = send_through(&mut tx, &mut rx, &[&packets.concat()], 2);
    assert_eq!((sent.datagrams, sent.sent, sent.refused), (4, 2, 2));
    let refusals: Vec<_> = outcomes[2..].iter().map(|o| o.map(|_| ())).collect();
    assert_eq!(refusals, [Err(Error::ConfidentialityLimit); 2]);
    let numbers: Vec<u64> = arrived.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [0, 1]);
    assert_eq!(tx.counters().dropped_for_limits, 2);
}

/// A GSO batch's cleartext handed over in pieces, empty ones among them (before, between,
/// inside a datagram and after): sent as their concatenation, every datagram opening to its
/// bytes.
#[test]
fn empty_cleartext_pieces_are_skipped() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let secret = [8u8; 32];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let packets: Vec<Vec<u8>> = (0..3).map(|n| packet(&DCID, n, false, STRIDE)).collect();
    let cleartext = packets.concat();
    let (a, rest) = cleartext.split_at(STRIDE + 5);
    let (b, c) = rest.split_at(STRIDE);
    let pieces: [&[u8]; 7] = [&[], a, &[], &[], b, c, &[]];
    let (sent, _, arrived) = send_through(&mut tx, &mut rx, &pieces, 3);
    assert_eq!((sent.datagrams, sent.sent, sent.refused), (3, 3, 0));
    let bytes: Vec<&Vec<u8>> = arrived.iter().map(|a| &a.bytes).collect();
    assert_eq!(bytes, packets.iter().collect::<Vec<_>>());
}

/// A genuine packet whose number lies far in the past of the receiver's largest (2^40
/// behind) decodes to another number, so it is opened under the wrong nonce: refused as a
/// forgery and counted, and the receiver's state does not move.
#[test]
fn a_packet_number_far_in_the_past_fails_to_open_through_the_socket() {
    let suite = CipherSuite::Aes256GcmSha384;
    let secret = [4u8; 48];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let cleartext = packet(&DCID, 1, false, 200);
    let mut sealed = vec![0u8; 216];
    let sealed_len = tx.seal(&[&cleartext], &mut [&mut sealed]).unwrap().len;
    assert_eq!(sealed_len, 216);
    let mut config = FlowConfig::new(8);
    config.largest_packet_number = Some(1 + (1 << 40));
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
    let receiver = SealedSocket::bind(ipv4(), socket_config(true)).unwrap();
    let destination = receiver.local_addr().unwrap();
    UdpSocket::bind(ipv4())
        .unwrap()
        .send_to(&sealed, destination)
        .unwrap();
    let outcomes = receive_outcomes(&receiver, &mut rx, 1);
    assert_eq!(outcomes, [Err(Error::AuthFailed)]);
    assert_eq!(rx.counters().auth_failures, 1);
    assert_eq!(rx.largest_received(), Some(1 + (1 << 40)));
}

#[test]
fn waits_are_bounded() {
    let receiver = SealedSocket::bind(
        ipv4(),
        SocketConfig {
            timeout: Duration::from_millis(100),
            ..SocketConfig::default()
        },
    )
    .unwrap();
    let mut batch = RecvBatch::new(1, 2048);
    let started = Instant::now();
    let outcome = receiver.recv(&mut batch);
    let waited = started.elapsed();
    assert!(matches!(outcome, Err(RecvError::Timeout(_))), "{outcome:?}");
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(receiver.stats().timeouts, 1);
}

#[test]
fn transmits_of_the_wrong_shape_are_refused_before_anything_is_sent() {
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let mut tx: TxFlow =
        TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[0; 32], FlowConfig::new(8)).unwrap();
    let mut buffer = SendBuffer::new();
    let cleartext = vec![0x40u8; 65 * 100];
    let (short, long): ([&[u8]; 1], [&[u8]; 1]) = ([&cleartext[..100]], [&cleartext]);
    let transmit = |segment_size, cleartext| Transmit {
        destination,
        ecn: Ecn::NotEct,
        cleartext,
        segment_size,
    };
    // No room for a tag, no segment at all, or more than one UDP datagram carries.
    for size in [16, 0, 65_508] {
        assert!(
            matches!(
                sender.send(&mut tx, &transmit(size, &short), &mut buffer),
                Err(SendError::SegmentSize(s)) if s == size
            ),
            "segment size {size}"
        );
    }
    assert!(matches!(
        sender.send(&mut tx, &transmit(116, &long), &mut buffer),
        Err(SendError::TooManyDatagrams(65))
    ));
    assert!(matches!(
        sender.send(&mut tx, &transmit(40, &short), &mut buffer),
        Err(SendError::Seal(Error::GsoSizeTooSmall))
    ));
    assert_eq!(sender.stats().datagrams_sent, 0);
}

#[test]
fn demo_traffic_arrives_clean_with_a_key_update() {
    for (gso, protection) in [
        (true, Protection::Sealed),
        (false, Protection::Sealed),
        (true, Protection::Unsealed),
    ] {
        let endpoints = Endpoints::bind(ipv4(), gso).unwrap();
        let config = TrafficConfig {
            protection,
            ..TrafficConfig::new(CipherSuite::Aes128GcmSha256, 500)
        };
        let mut updates = 0;
        let report = traffic::run(&endpoints, &config, |_| updates += 1).unwrap();
        assert!(report.clean(), "gso={gso} {protection:?}: {report:?}");
        assert_eq!((report.sent, report.opened), (500, 500));
        assert_eq!(report.ecn_mismatches, 0);
        assert!(updates > 0, "progress was reported");
        if protection == Protection::Sealed {
            assert_eq!(
                (report.key_updates_sent, report.key_updates_received),
                (1, 1)
            );
        }
    }
}

#[test]
fn packets_sealed_in_place_arrive_as_sent() {
    let suite = CipherSuite::Aes256GcmSha384;
    let secret = [11u8; 48];
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(8)).unwrap();
    // Built as a QUIC stack builds them in its send buffer: each packet followed by room for
    // its tag, at the segment size; the last shorter. The key phase flips at packet 3.
    let packets: Vec<Vec<u8>> = (0..5)
        .map(|n| packet(&DCID, n, n >= 3, if n == 4 { 300 } else { STRIDE }))
        .collect();
    let mut buffer: Vec<u8> = packets
        .iter()
        .flat_map(|p| p.iter().copied().chain([0u8; 16]))
        .collect();
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let arrived = thread::scope(|scope| {
        let receiving = scope.spawn(|| receive(&receiver, &mut rx, packets.len()));
        let mut outcomes = [Err(Error::Malformed); 5];
        let sent = sender
            .send_in_place(
                &mut tx,
                destination,
                Ecn::Ect0,
                &mut buffer,
                SEGMENT,
                &mut outcomes,
            )
            .unwrap();
        assert_eq!(
            (sent.sent, sent.bytes),
            (5, 4 * SEGMENT + 316),
            "{outcomes:?}"
        );
        receiving.join().unwrap()
    });
    for (i, (got, sent)) in arrived.iter().zip(&packets).enumerate() {
        assert_eq!((got.number, &got.bytes), (i as u64, sent));
        assert_eq!(got.generation, u64::from(i >= 3));
    }
}

#[test]
fn a_refused_transmit_leaves_no_stale_outcomes() {
    let (sender, receiver) = pair(ipv4(), true);
    let destination = receiver.local_addr().unwrap();
    let secret = [13u8; 32];
    let mut config = FlowConfig::new(8);
    config.max_segments = 2;
    let mut tx: TxFlow =
        TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &secret, config).unwrap();
    let packets: Vec<Vec<u8>> = (0..3).map(|n| packet(&DCID, n, false, STRIDE)).collect();
    let (two, three) = (packets[..2].concat(), packets.concat());
    let mut transmit = |cleartext: &[u8], segment_size| {
        let cleartext = [cleartext];
        let mut buffer = SendBuffer::new();
        // A good transmit first, so that the buffer has outcomes to go stale.
        let mut fresh: TxFlow =
            TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &secret, FlowConfig::new(8)).unwrap();
        let sent = sender
            .send(
                &mut fresh,
                &Transmit {
                    destination,
                    ecn: Ecn::Ect0,
                    cleartext: &[&three],
                    segment_size: SEGMENT,
                },
                &mut buffer,
            )
            .unwrap();
        assert_eq!((sent.sent, buffer.outcomes().len()), (3, 3));
        let outcome = sender.send(
            &mut tx,
            &Transmit {
                destination,
                ecn: Ecn::Ect0,
                cleartext: &cleartext,
                segment_size,
            },
            &mut buffer,
        );
        (outcome, buffer.outcomes().to_vec())
    };
    // Refused by the core (three datagrams, the flow takes two), by the socket (segment
    // size), and by the core again (segment size below the flow's minimum).
    let (outcome, outcomes) = transmit(&three, SEGMENT);
    assert!(
        matches!(outcome, Err(SendError::Seal(Error::TooManySegments))),
        "{outcome:?}"
    );
    assert_eq!(outcomes, [], "the last transmit was refused whole");
    let (outcome, outcomes) = transmit(&two, 16);
    assert!(
        matches!(outcome, Err(SendError::SegmentSize(16))),
        "{outcome:?}"
    );
    assert_eq!(outcomes, []);
    let (outcome, outcomes) = transmit(&two[..100], 40);
    assert!(
        matches!(outcome, Err(SendError::Seal(Error::GsoSizeTooSmall))),
        "{outcome:?}"
    );
    assert_eq!(outcomes, []);
    // And a transmit the flow takes shows its own outcomes.
    let (outcome, outcomes) = transmit(&two, SEGMENT);
    assert_eq!(outcome.unwrap().sent, 2);
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn a_timeout_too_long_for_the_clock_means_no_timeout() {
    let config = SocketConfig {
        timeout: Duration::MAX,
        ..socket_config(true)
    };
    let receiver = SealedSocket::bind(ipv4(), config).unwrap();
    let sender = SealedSocket::bind(ipv4(), config).unwrap();
    let destination = receiver.local_addr().unwrap();
    let mut tx: TxFlow =
        TxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[17; 32], FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow =
        RxFlow::from_secret(CipherSuite::Aes128GcmSha256, &[17; 32], FlowConfig::new(8)).unwrap();
    thread::scope(|scope| {
        // The receive starts waiting (with no deadline) before anything is sent.
        let receiving = scope.spawn(|| {
            let mut batch = RecvBatch::new(1, DEFAULT_MESSAGE_CAPACITY);
            receiver.recv_open(&mut rx, &mut batch).unwrap();
            let message = batch.messages().next().unwrap();
            let datagram = message.datagrams().next().unwrap();
            datagram.outcome.unwrap().packet.unwrap().number()
        });
        thread::sleep(Duration::from_millis(50));
        let cleartext = packet(&DCID, 7, false, 100);
        let sent = sender
            .send(
                &mut tx,
                &Transmit {
                    destination,
                    ecn: Ecn::Ect0,
                    cleartext: &[&cleartext],
                    segment_size: SEGMENT,
                },
                &mut SendBuffer::new(),
            )
            .unwrap();
        assert_eq!(sent.sent, 1);
        assert_eq!(receiving.join().unwrap(), 7);
    });
}

#[test]
fn a_datagram_cut_off_by_a_small_buffer_is_refused_not_counted_as_forged() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let mut tx: TxFlow = TxFlow::from_secret(suite, &[19; 32], FlowConfig::new(8)).unwrap();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &[19; 32], FlowConfig::new(8)).unwrap();
    let mut sealed = vec![0u8; 1016];
    let _ = tx
        .seal(&[&packet(&DCID, 1, false, 1000)], &mut [&mut sealed])
        .unwrap();
    let receiver = SealedSocket::bind(ipv4(), socket_config(true)).unwrap();
    let plain = UdpSocket::bind(ipv4()).unwrap();
    plain
        .send_to(&sealed, receiver.local_addr().unwrap())
        .unwrap();
    let mut batch = RecvBatch::new(1, 500);
    assert_eq!(receiver.recv_open(&mut rx, &mut batch).unwrap(), 1);
    let message = batch.messages().next().unwrap();
    assert!(message.is_truncated());
    let outcomes: Vec<_> = message.datagrams().map(|d| d.outcome).collect();
    assert_eq!(outcomes, [Err(Error::BufferTooSmall)]);
    assert_eq!(rx.counters().auth_failures, 0, "not a forgery");
    assert_eq!(receiver.stats().truncated, 1);
}
