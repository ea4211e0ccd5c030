//! quinn connections whose 1-RTT protection is quicseal's, against stock quinn (rustls on
//! ring) and against each other, over loopback UDP: transfers each way on several streams,
//! byte-exact, with key updates forced on both sides during them, each cipher suite; key
//! updates driven by a low confidentiality limit; and a forged datagram on the path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quicseal::{CipherSuite, Counters};
use quicseal_quinn::{Registry, SealClientConfig, SealServerConfig, SealedSocket};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, EndpointConfig, ServerConfig, TokioRuntime};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ALPN: &[u8] = b"hq-interop";
/// Streams per transfer, each carrying its share both ways.
const STREAMS: usize = 4;

fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 11) as u8 ^ seed as u8)
        .collect()
}

struct Certificate {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn certificate() -> Certificate {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    Certificate {
        cert: CertificateDer::from(certified.cert.der().to_vec()),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der())),
    }
}

/// The offloaded endpoints' sockets by address, for their GSO and GRO counters.
static SOCKETS: Mutex<Option<HashMap<SocketAddr, Arc<SealedSocket>>>> = Mutex::new(None);

/// An endpoint on loopback whose socket is quicseal's.
fn sealed_endpoint(registry: &Arc<Registry>, server: Option<ServerConfig>) -> Endpoint {
    let address = "127.0.0.1:0".parse().unwrap();
    let socket = Arc::new(SealedSocket::bind(address, Arc::clone(registry)).unwrap());
    let bound = socket.socket().local_addr().unwrap();
    SOCKETS
        .lock()
        .unwrap()
        .get_or_insert_default()
        .insert(bound, Arc::clone(&socket));
    Endpoint::new_with_abstract_socket(
        EndpointConfig::default(),
        server,
        socket,
        Arc::new(TokioRuntime),
    )
    .unwrap()
}

/// The server side: offloaded to `registry`, or stock.
fn server(
    suite: CipherSuite,
    certificate: &Certificate,
    offload: Option<(&Arc<Registry>, Option<u64>)>,
) -> Endpoint {
    let chain = vec![certificate.cert.clone()];
    let key = certificate.key.clone_key();
    match offload {
        Some((registry, limit)) => {
            let mut tls = SealServerConfig::rustls_builder(&[suite])
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            tls.alpn_protocols = vec![ALPN.to_vec()];
            let mut crypto = SealServerConfig::new(tls, Arc::clone(registry));
            if let Some(limit) = limit {
                crypto.set_confidentiality_limit(limit);
            }
            sealed_endpoint(registry, Some(ServerConfig::with_crypto(Arc::new(crypto))))
        }
        None => {
            let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(ring_only(suite)))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            tls.alpn_protocols = vec![ALPN.to_vec()];
            let crypto = QuicServerConfig::try_from(tls).unwrap();
            let config = ServerConfig::with_crypto(Arc::new(crypto));
            Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap()
        }
    }
}

/// ring's provider offering `suite`, and AES-128-GCM for Initial packets.
fn ring_only(suite: CipherSuite) -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| u16::from(s.suite()) != suite.code());
    provider
}

/// The client side: offloaded to `registry`, or stock; trusting `certificate`.
fn client(
    suite: CipherSuite,
    certificate: &Certificate,
    offload: Option<(&Arc<Registry>, Option<u64>)>,
) -> Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.cert.clone()).unwrap();
    let (config, mut endpoint) = match offload {
        Some((registry, limit)) => {
            let mut tls = SealClientConfig::rustls_builder(&[suite])
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = vec![ALPN.to_vec()];
            let mut crypto = SealClientConfig::new(tls, Arc::clone(registry));
            if let Some(limit) = limit {
                crypto.set_confidentiality_limit(limit);
            }
            (
                quinn::ClientConfig::new(Arc::new(crypto)),
                sealed_endpoint(registry, None),
            )
        }
        None => {
            let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(ring_only(suite)))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = vec![ALPN.to_vec()];
            let crypto = QuicClientConfig::try_from(tls).unwrap();
            (
                quinn::ClientConfig::new(Arc::new(crypto)),
                Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap(),
            )
        }
    };
    endpoint.set_default_client_config(config);
    endpoint
}

/// Writes `data` in pieces; stream 0 forces a key update half way.
async fn send(
    connection: quinn::Connection,
    mut send: quinn::SendStream,
    data: Vec<u8>,
    update: bool,
) {
    let pieces = data.chunks(64 << 10).count();
    for (index, piece) in data.chunks(64 << 10).enumerate() {
        if update && index == pieces / 2 {
            connection.force_key_update();
        }
        send.write_all(piece).await.unwrap();
    }
    send.finish().unwrap();
}

/// Longest a transfer lingers for its condition before it gives up and closes.
const LINGER_LIMIT: Duration = Duration::from_secs(20);

/// `bytes` each way over [`STREAMS`] streams from `client` to the server at `to`, every byte
/// checked; then, with `linger`, a few bytes from the client every 20 ms on a stream the
/// server leaves unread, until `linger` says enough (it is asked after each write) or
/// [`LINGER_LIMIT`] has passed. Returns the offloaded side's flow counters (sending,
/// receiving), read while the connection is up.
async fn transfer(
    client: &Endpoint,
    server: Endpoint,
    bytes: usize,
    registry: &Registry,
    force_updates: bool,
    linger: Option<&mut (dyn FnMut() -> bool + Send)>,
) -> (Counters, Counters) {
    let to: SocketAddr = server.local_addr().unwrap();
    let share = bytes / STREAMS;
    let served = tokio::spawn(async move {
        let connection = server.accept().await.unwrap().await.unwrap();
        let mut streams = tokio::task::JoinSet::new();
        for _ in 0..STREAMS {
            let (send_half, mut recv) = connection.accept_bi().await.unwrap();
            let connection = connection.clone();
            streams.spawn(async move {
                let index = usize::try_from(recv.id().index()).unwrap();
                let received = recv.read_to_end(2 * share).await.unwrap();
                assert!(
                    received == payload(share, 2 * index),
                    "upload {index} intact"
                );
                send(
                    connection,
                    send_half,
                    payload(share, 2 * index + 1),
                    force_updates && index == 0,
                )
                .await;
            });
        }
        while let Some(done) = streams.join_next().await {
            done.unwrap();
        }
        connection.closed().await;
    });

    let connection = client.connect(to, "localhost").unwrap().await.unwrap();
    let mut streams = tokio::task::JoinSet::new();
    for index in 0..STREAMS {
        let (send_half, mut recv) = connection.open_bi().await.unwrap();
        let connection = connection.clone();
        streams.spawn(async move {
            send(
                connection,
                send_half,
                payload(share, 2 * index),
                force_updates && index == 0,
            )
            .await;
            let received = recv.read_to_end(2 * share).await.unwrap();
            assert!(
                received == payload(share, 2 * index + 1),
                "download {index} intact"
            );
        });
    }
    while let Some(done) = streams.join_next().await {
        done.unwrap();
    }
    if let Some(enough) = linger {
        // One stream, not one a write: the server never accepts them, and quinn lets a peer
        // open 100 at a time. Its bytes stay well inside the stream's flow-control window.
        let mut send = connection.open_uni().await.unwrap();
        let lingering = Instant::now();
        while lingering.elapsed() < LINGER_LIMIT {
            send.write_all(b"still here").await.unwrap();
            if enough() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        send.finish().unwrap();
    }
    let totals = registry.totals();
    // Loopback neither duplicates nor replays: every packet number opened once.
    assert_eq!(registry.duplicates(), 0);
    connection.close(0u32.into(), b"done");
    served.await.unwrap();
    client.wait_idle().await;
    totals
}

/// What every offloaded transfer must show: the packets went through quicseal both ways,
/// it took part in key updates both ways, and nothing failed to open.
fn check(what: &str, bytes: usize, (sent, received): (Counters, Counters)) {
    eprintln!(
        "{what}: sealed {} packets, opened {}, key updates {} sending, {} receiving",
        sent.sealed, received.opened, sent.key_updates, received.key_updates
    );
    assert!(sent.sealed as usize > bytes / 1500, "{what}: {sent:?}");
    assert!(
        received.opened as usize > bytes / 1500,
        "{what}: {received:?}"
    );
    assert!(
        sent.key_updates >= 1 && received.key_updates >= 1,
        "{what}: {sent:?} {received:?}"
    );
    assert_eq!(received.auth_failures, 0, "{what}: {received:?}");
    // Nothing handed to a flow twice: no packet number sealed again.
    assert_eq!(sent.rejected, 0, "{what}: {sent:?}");
}

/// What the offloaded endpoint at `address` shows of its socket: quinn's packets went out
/// in GSO batches and came in as GRO messages of several datagrams.
fn check_batched(what: &str, address: SocketAddr) {
    let sockets = SOCKETS.lock().unwrap();
    let stats = sockets.as_ref().unwrap()[&address].socket().stats();
    eprintln!("{what}: {stats:?}");
    assert!(stats.gso_sends > 0, "{what}: {stats:?}");
    assert!(
        stats.datagrams_received > stats.messages_received,
        "{what}: {stats:?}"
    );
}

/// Bytes each way: in an optimised build (`cargo xtask test` runs one) the 50 MB the issue
/// asks for and a bit more; unoptimised, still thousands of packets.
const BYTES: usize = if cfg!(debug_assertions) {
    8 << 20
} else {
    52 << 20
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_client_and_an_offloaded_server_transfer_both_ways_across_key_updates() {
    for suite in CipherSuite::ALL {
        let registry = Arc::new(Registry::new());
        let certificate = certificate();
        let server = server(suite, &certificate, Some((&registry, None)));
        let address = server.local_addr().unwrap();
        let client = client(suite, &certificate, None);
        let totals = transfer(&client, server, BYTES, &registry, true, None).await;
        let what = format!("{} offloaded server", suite.name());
        check(&what, BYTES, totals);
        check_batched(&what, address);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offloaded_client_and_a_stock_server_transfer_both_ways_across_key_updates() {
    for suite in CipherSuite::ALL {
        let registry = Arc::new(Registry::new());
        let certificate = certificate();
        let server = server(suite, &certificate, None);
        let client = client(suite, &certificate, Some((&registry, None)));
        let totals = transfer(&client, server, BYTES, &registry, true, None).await;
        let what = format!("{} offloaded client", suite.name());
        check(&what, BYTES, totals);
        check_batched(&what, client.local_addr().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_confidentiality_limit_makes_quinn_update_keys_again_and_again() {
    // quinn updates 10 000 packets before the limit it is told: every 500 packets here, on
    // both offloaded ends of the connection.
    let limit = Some(10_000 + 500);
    let suite = CipherSuite::Aes128GcmSha256;
    let (server_side, client_side) = (Arc::new(Registry::new()), Arc::new(Registry::new()));
    let certificate = certificate();
    let server = server(suite, &certificate, Some((&server_side, limit)));
    let client = client(suite, &certificate, Some((&client_side, limit)));
    let (sent, received) = transfer(&client, server, BYTES, &client_side, false, None).await;
    check("both offloaded, limit 10 500", BYTES, (sent, received));
    // Nothing forces an update here, and quinn's own first one comes once: every further
    // update is the limit's. How many depends on timing (quinn starts one only once the last
    // is acknowledged): 3 to 7 each way in these runs.
    assert!(
        sent.key_updates >= 2 && received.key_updates >= 2,
        "{sent:?} {received:?}"
    );
}

/// A UDP relay between a client and `server` that flips a bit in the `forged`th 1-RTT
/// datagram from the client and sends the `replayed`th twice. Returns its address.
async fn relay(server: SocketAddr, forged: usize, replayed: usize) -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, mut short) = (None, 0);
        let mut buf = vec![0u8; 65536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let datagram = &mut buf[..len];
            if from == server {
                if let Some(client) = client {
                    let _ = socket.send_to(datagram, client).await;
                }
                continue;
            }
            client = Some(from);
            let mut copies = 1;
            if datagram[0] & 0x80 == 0 {
                short += 1;
                if short == forged {
                    datagram[len / 2] ^= 0x04;
                }
                if short == replayed {
                    copies = 2;
                }
            }
            for _ in 0..copies {
                let _ = socket.send_to(datagram, server).await;
            }
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_and_a_replayed_datagram_on_the_path_are_dropped_and_the_transfer_survives() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let registry = Arc::new(Registry::new());
    let certificate = certificate();
    let server = server(suite, &certificate, Some((&registry, None)));
    let relay = relay(server.local_addr().unwrap(), 50, 60).await;
    let client = client(suite, &certificate, None);
    let bytes = 2 << 20;
    let share = bytes / STREAMS;
    let served = tokio::spawn(async move {
        let connection = server.accept().await.unwrap().await.unwrap();
        for _ in 0..STREAMS {
            let (mut send, mut recv) = connection.accept_bi().await.unwrap();
            let received = recv.read_to_end(2 * share).await.unwrap();
            send.write_all(&received).await.unwrap();
            send.finish().unwrap();
        }
        connection.closed().await;
    });
    let connection = client.connect(relay, "localhost").unwrap().await.unwrap();
    for index in 0..STREAMS {
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        send.write_all(&payload(share, index)).await.unwrap();
        send.finish().unwrap();
        let echoed = recv.read_to_end(2 * share).await.unwrap();
        assert!(
            echoed == payload(share, index),
            "stream {index} echoed intact"
        );
    }
    let (_, received) = registry.totals();
    connection.close(0u32.into(), b"done");
    served.await.unwrap();
    // The forged one failed to open in quicseal and was handed to quinn as it came, which
    // refused it too; the replayed one opened (quicseal keeps no replay window: the stack
    // does), the socket counted it as a duplicate, and quinn dropped it.
    assert_eq!(received.auth_failures, 1, "{received:?}");
    assert!(received.opened > 1000, "{received:?}");
    assert_eq!(registry.duplicates(), 1, "the replay, counted once");
}

// Release builds only (`cargo xtask test` runs this file in release too, and CI with it).
// In debug builds on a Zen 3 VM, quinn-proto's server stopped issuing new connection IDs
// part way through in 4 of 13 runs of this file (one of them a CI run): the client's count
// of NEW_CONNECTION_ID frames stayed put for the whole 20 s linger, on a connection that
// was otherwise up (its RTT measured every 20 ms, no losses). quicseal takes no part in
// issuing them. In release builds all 14 runs of the file passed on the same machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    debug_assertions,
    ignore = "quinn-proto's connection ID rotation stalls in some debug runs; run with --release"
)]
async fn a_server_that_keeps_changing_its_connection_ids_is_followed() {
    // The server retires its connection IDs every 200 ms, so the client moves to new ones
    // during the transfer: each reaches the connection's flow, and few are remembered. Not
    // faster: quinn-proto 0.11 writes a lost NEW_CONNECTION_ID frame again with the Retire
    // Prior To of the moment, which can exceed the frame's own sequence number, and the
    // peer then closes the connection with FRAME_ENCODING_ERROR. At 50 ms that happened in
    // most runs, with stock quinn at both ends as well.
    let suite = CipherSuite::Aes256GcmSha384;
    let registry = Arc::new(Registry::new());
    let certificate = certificate();
    let mut config = EndpointConfig::default();
    config.cid_generator(|| {
        let mut generator = quinn_proto::HashedConnectionIdGenerator::new();
        generator.set_lifetime(std::time::Duration::from_millis(200));
        Box::new(generator)
    });
    let server = {
        let mut tls = SealServerConfig::rustls_builder(&[suite])
            .with_no_client_auth()
            .with_single_cert(vec![certificate.cert.clone()], certificate.key.clone_key())
            .unwrap();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = SealServerConfig::new(tls, Arc::clone(&registry));
        let address = "127.0.0.1:0".parse().unwrap();
        let socket = Arc::new(SealedSocket::bind(address, Arc::clone(&registry)).unwrap());
        let server_config = ServerConfig::with_crypto(Arc::new(crypto));
        Endpoint::new_with_abstract_socket(
            config,
            Some(server_config),
            socket,
            Arc::new(TokioRuntime),
        )
        .unwrap()
    };
    let client = client(suite, &certificate, None);
    // Light traffic after the bulk transfer goes on until the server has had more IDs than
    // a flow is remembered by: about 200 ms a rotation, two seconds or so. Not more bytes:
    // every rotation under load is another chance for the quinn-proto bug above, which a
    // transfer of four times the bytes met (the machine loaded, losing packets). Not a fixed
    // time either: how many rotations fit in one depends on how loaded the machine is.
    let wanted = quicseal_quinn::ROUTES_PER_FLOW as u64 + 2;
    let mut seen = (0, 0);
    let mut rotated_enough = || {
        seen = registry.connection_ids();
        seen.1 >= wanted
    };
    let totals = transfer(
        &client,
        server,
        BYTES,
        &registry,
        true,
        Some(&mut rotated_enough),
    )
    .await;
    // Read while the connection was up: its routes go with it.
    let (remembered, learned) = seen;
    eprintln!("connection IDs: {learned} learned, {remembered} remembered");
    check("rotating connection IDs", BYTES, totals);
    assert!(learned >= wanted, "{learned} learned in {LINGER_LIMIT:?}");
    // The oldest are forgotten: no more than a flow's share stays.
    assert!(
        remembered <= quicseal_quinn::ROUTES_PER_FLOW,
        "{remembered}"
    );
    assert!(remembered > 0);
}
