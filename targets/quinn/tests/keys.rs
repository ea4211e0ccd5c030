//! The keys quicseal gets through the capture are the keys rustls uses: RFC 9001's Initial
//! vectors through the capturing algorithm, and a real TLS 1.3 QUIC handshake per suite
//! between a capturing server and a stock ring client, whose 1-RTT packets (first
//! generation and after a key update) quicseal seals for ring to open and opens from ring.

use std::sync::Arc;

use hex_literal::hex;
use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};
use quicseal_quinn::{Captured, OneRttKeys, capture, next_generation, provider};
use rustls::Side;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::quic::{self, KeyChange, Keys, PacketKeySet, Secrets, Version};

#[test]
fn initial_keys_are_captured_header_then_packet_local_then_remote() {
    let provider = provider(&[CipherSuite::Aes128GcmSha256]);
    let suite = provider.cipher_suites[0].tls13().unwrap();
    let dcid = hex!("8394c8f03e515708");
    let (_, captured) =
        capture(|| Keys::initial(Version::V1, suite, suite.quic.unwrap(), &dcid, Side::Client));
    let keys = OneRttKeys::from_captures(&captured).expect("[H, P, H, P]");
    // RFC 9001 A.1: the client's Initial keys are the local ones, the server's the remote.
    assert_eq!(keys.local.key(), hex!("1f369613dd76d5467730efcbe3b1a22d"));
    assert_eq!(keys.local.iv(), &hex!("fa044b2f42a3fd3b46fb255c"));
    assert_eq!(keys.local.hp(), hex!("9f50449e04a0e810283a1e9933adedd2"));
    assert_eq!(keys.remote.key(), hex!("cf3a5331653c364c88f0f379b6067e37"));
    assert_eq!(keys.remote.iv(), &hex!("0ac1493ca1905853b0bba03e"));
    assert_eq!(keys.remote.hp(), hex!("c206b8d9b9f0f37644430b490eeaa314"));
    // Keys derived with no capture armed are kept nowhere: not even for the next capture.
    Keys::initial(Version::V1, suite, suite.quic.unwrap(), &dcid, Side::Client);
    let (_, nothing) = capture(|| ());
    assert!(nothing.is_empty());
    // A capture inside another keeps its own keys; the outer one goes on after it.
    let ((_, inner), outer) = capture(|| {
        let inner =
            capture(|| Keys::initial(Version::V1, suite, suite.quic.unwrap(), &dcid, Side::Client));
        Keys::initial(Version::V1, suite, suite.quic.unwrap(), &dcid, Side::Server);
        inner
    });
    assert_eq!((inner.len(), outer.len()), (4, 4));
    let server = OneRttKeys::from_captures(&outer).unwrap();
    assert_eq!(server.local.hp(), hex!("c206b8d9b9f0f37644430b490eeaa314"));
}

#[test]
fn captures_in_another_order_or_of_two_suites_are_refused() {
    let provider = provider(&[CipherSuite::Aes128GcmSha256]);
    let suite = provider.cipher_suites[0].tls13().unwrap();
    let (_, mut captured) = capture(|| {
        Keys::initial(
            Version::V1,
            suite,
            suite.quic.unwrap(),
            b"cid",
            Side::Server,
        )
    });
    captured.swap(0, 1);
    assert!(OneRttKeys::from_captures(&captured).is_err());
    captured.swap(0, 1);
    assert!(OneRttKeys::from_captures(&captured[..3]).is_err());
    let keys = OneRttKeys::from_captures(&captured).unwrap();
    // An update is two packet keys of the connection's suite.
    assert!(next_generation(&captured[..2], &keys).is_err());
    let other = provider_suite(CipherSuite::ChaCha20Poly1305Sha256);
    let (_, chacha) = capture(|| {
        Keys::initial(
            Version::V1,
            other,
            other.quic.unwrap(),
            b"cid",
            Side::Server,
        )
    });
    let mixed: Vec<&Captured> = [&captured[1], &chacha[3]].into();
    let mixed: Vec<Captured> = mixed.into_iter().map(copy).collect();
    assert!(next_generation(&mixed, &keys).is_err());
}

fn provider_suite(suite: CipherSuite) -> &'static rustls::Tls13CipherSuite {
    provider(&[suite]).cipher_suites[0].tls13().unwrap()
}

fn copy(captured: &Captured) -> Captured {
    match captured {
        Captured::Packet { suite, key, iv } => Captured::Packet {
            suite: *suite,
            key: key.clone(),
            iv: iv.clone(),
        },
        Captured::Header { suite, key } => Captured::Header {
            suite: *suite,
            key: key.clone(),
        },
    }
}

/// Both ends of an in-memory QUIC handshake: a server on the capturing provider, offering
/// only `suite`, and a client on ring's own.
fn handshake(suite: CipherSuite) -> (ServerSide, ClientSide) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let alpn = vec![b"hq-interop".to_vec()];
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider(&[suite]))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server_config.alpn_protocols = alpn.clone();
    server_config.max_early_data_size = 0;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client_config.alpn_protocols = alpn;
    let mut client = quic::ClientConnection::new(
        Arc::new(client_config),
        Version::V1,
        "localhost".try_into().unwrap(),
        b"client transport parameters".to_vec(),
    )
    .unwrap();
    let mut server = quic::ServerConnection::new(
        Arc::new(server_config),
        Version::V1,
        b"server transport parameters".to_vec(),
    )
    .unwrap();

    let (mut server_keys, mut client_keys) = (None, None);
    for _ in 0..16 {
        // Client to server: whatever it has, up to its next key change.
        let mut bytes = Vec::new();
        if let Some(KeyChange::OneRtt { keys, next }) = client.write_hs(&mut bytes) {
            client_keys = Some(ClientSide { keys, next });
        }
        if !bytes.is_empty() {
            server.read_hs(&bytes).unwrap();
        }
        // Server to client, with the capture armed.
        let mut bytes = Vec::new();
        let (change, captured) = capture(|| server.write_hs(&mut bytes));
        if let Some(KeyChange::OneRtt { next, .. }) = change {
            let keys = OneRttKeys::from_captures(&captured).expect("[H, P, H, P]");
            server_keys = Some(ServerSide { keys, next });
        }
        if !bytes.is_empty() {
            client.read_hs(&bytes).unwrap();
        }
        if server_keys.is_some() && client_keys.is_some() && !client.is_handshaking() {
            break;
        }
    }
    assert_eq!(
        server.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::from(suite.code()))
    );
    (
        server_keys.expect("server 1-RTT keys"),
        client_keys.expect("client 1-RTT keys"),
    )
}

struct ServerSide {
    keys: OneRttKeys,
    next: Secrets,
}

struct ClientSide {
    keys: Keys,
    next: Secrets,
}

const DCID: [u8; 8] = *b"quinn-id";

/// A short-header packet, key phase `phase`, 2-byte packet number, `len` bytes of payload.
fn cleartext(number: u16, phase: bool, len: usize) -> Vec<u8> {
    let mut packet = vec![0x41 | if phase { 0x04 } else { 0 }];
    packet.extend(DCID);
    packet.extend(number.to_be_bytes());
    packet.extend((0..len).map(|i| (i as u8) ^ (number as u8)));
    packet
}

const PN_OFFSET: usize = 1 + DCID.len();

/// Opens a packet quicseal sealed with ring's keys, as a ring-based stack would.
fn ring_opens(
    header: &dyn quic::HeaderProtectionKey,
    packet: &dyn quic::PacketKey,
    sealed: &[u8],
    number: u64,
) -> Vec<u8> {
    let mut bytes = sealed.to_vec();
    let (head, rest) = bytes.split_at_mut(PN_OFFSET);
    let sample = rest[4..4 + header.sample_len()].to_vec();
    header
        .decrypt_in_place(&sample, &mut head[0], &mut rest[..2])
        .unwrap();
    let (header_bytes, payload) = bytes.split_at_mut(PN_OFFSET + 2);
    let opened = packet
        .decrypt_in_place(number, header_bytes, payload)
        .expect("ring opens what quicseal sealed")
        .len();
    bytes.truncate(PN_OFFSET + 2 + opened);
    bytes
}

/// Seals a packet with ring's keys, as a ring-based stack would.
fn ring_seals(
    header: &dyn quic::HeaderProtectionKey,
    packet: &dyn quic::PacketKey,
    cleartext: &[u8],
    number: u64,
) -> Vec<u8> {
    let mut bytes = cleartext.to_vec();
    let (header_bytes, payload) = bytes.split_at_mut(PN_OFFSET + 2);
    let tag = packet
        .encrypt_in_place(number, header_bytes, payload)
        .unwrap();
    bytes.extend_from_slice(tag.as_ref());
    let (head, rest) = bytes.split_at_mut(PN_OFFSET);
    let sample = rest[4..4 + header.sample_len()].to_vec();
    header
        .encrypt_in_place(&sample, &mut head[0], &mut rest[..2])
        .unwrap();
    bytes
}

#[test]
fn quicseal_and_ring_protect_1rtt_packets_for_each_other_across_a_key_update() {
    for suite in CipherSuite::ALL {
        let (mut server, mut client) = handshake(suite);
        let config = FlowConfig::new(DCID.len());
        let mut tx: TxFlow = TxFlow::from_keys(&server.keys.local, config).unwrap();
        let mut rx: RxFlow = RxFlow::from_keys(&server.keys.remote, config).unwrap();

        // Generation 0: server to client ...
        let packet = cleartext(1, false, 300);
        let mut sealed = vec![0; packet.len() + 16];
        let _ = tx.seal(&[&packet], &mut [&mut sealed]).unwrap();
        let remote = &client.keys.remote;
        assert_eq!(
            ring_opens(&*remote.header, &*remote.packet, &sealed, 1),
            packet,
            "{}",
            suite.name()
        );
        // ... and client to server.
        let packet = cleartext(1, false, 200);
        let local = &client.keys.local;
        let mut datagram = ring_seals(&*local.header, &*local.packet, &packet, 1);
        let opened = rx
            .open_in_place(&mut datagram)
            .expect("quicseal opens ring's");
        assert_eq!(&datagram[..opened.len], &packet[..], "{}", suite.name());

        // A key update: the next packet keys, captured as rustls derives them.
        let (next, captured) = capture(|| server.next.next_packet_keys());
        drop(next);
        let updated = next_generation(&captured, &server.keys).expect("[P, P]");
        tx.install_next_keys(&updated.local).unwrap();
        rx.install_next_keys(&updated.remote).unwrap();
        let PacketKeySet { local, remote } = client.next.next_packet_keys();

        let packet = cleartext(2, true, 400);
        let mut sealed = vec![0; packet.len() + 16];
        let datagram = tx.seal(&[&packet], &mut [&mut sealed]).unwrap();
        assert_eq!(datagram.packet.map(|p| p.generation), Some(1));
        let header = &*client.keys.remote.header;
        assert_eq!(ring_opens(header, &*remote, &sealed, 2), packet);

        let packet = cleartext(2, true, 100);
        let mut datagram = ring_seals(&*client.keys.local.header, &*local, &packet, 2);
        let opened = rx
            .open_in_place(&mut datagram)
            .expect("the next generation opens");
        assert_eq!(&datagram[..opened.len], &packet[..]);
        assert_eq!(
            opened.packet.map(|p| (p.generation, p.key_update)),
            Some((1, true))
        );
    }
}
