//! A quinn echo server whose 1-RTT packets quicseal protects, and a stock quinn client.
//!
//! ```sh
//! cargo run --release -p quicseal-quinn --example echo -- [megabytes]
//! ```
//!
//! What changes for a quinn server is three things: the rustls config is built on
//! `SealServerConfig::rustls_builder` (ring's suites, their QUIC keys captured), it is wrapped
//! in a `SealServerConfig`, and the endpoint's socket is a `SealedSocket`; the two share a
//! `Registry`. Everything else is quinn as usual.

use std::sync::Arc;
use std::time::Instant;

use quicseal::CipherSuite;
use quicseal_quinn::{Registry, SealServerConfig, SealedSocket};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, EndpointConfig, ServerConfig, TokioRuntime};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let megabytes: usize = std::env::args().nth(1).map_or(Ok(16), |n| n.parse())?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));

    // The server: its rustls config on the capturing provider, its socket quicseal's.
    let registry = Arc::new(Registry::new());
    let mut tls = SealServerConfig::rustls_builder(&CipherSuite::ALL)
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    tls.alpn_protocols = vec![b"echo".to_vec()];
    let crypto = SealServerConfig::new(tls, Arc::clone(&registry));
    let socket = SealedSocket::bind("127.0.0.1:0".parse()?, Arc::clone(&registry))?;
    let server = Endpoint::new_with_abstract_socket(
        EndpointConfig::default(),
        Some(ServerConfig::with_crypto(Arc::new(crypto))),
        Arc::new(socket),
        Arc::new(TokioRuntime),
    )?;
    let address = server.local_addr()?;
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            tokio::spawn(async move {
                let connection = incoming.await?;
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
                        send.write_chunk(chunk.bytes).await?;
                    }
                    send.finish()?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            });
        }
    });

    // A stock quinn client.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    // ring's provider named, not the process default: a build with both of rustls's
    // providers (this crate's examples have aws-lc-rs too, for `bulk`) has no default.
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(ring)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"echo".to_vec()];
    let mut client = Endpoint::client("127.0.0.1:0".parse()?)?;
    client.set_default_client_config(quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(tls)?,
    )));
    let connection = client.connect(address, "localhost")?.await?;

    let started = Instant::now();
    let (mut send, mut recv) = connection.open_bi().await?;
    let message: Vec<u8> = (0..megabytes << 20).map(|i| i as u8).collect();
    let (sent, echoed) = tokio::join!(
        async {
            send.write_all(&message).await?;
            send.finish()?;
            Ok::<_, Box<dyn std::error::Error>>(())
        },
        recv.read_to_end(message.len())
    );
    sent?;
    assert!(echoed? == message, "the echo is the message");
    let elapsed = started.elapsed();
    let (sealed, opened) = registry.totals();
    println!(
        "{megabytes} MB echoed in {elapsed:.2?} ({:.0} Mb/s each way); the server's quicseal \
         flows sealed {} packets and opened {}",
        (megabytes << 23) as f64 / elapsed.as_secs_f64() / 1e6,
        sealed.sealed,
        opened.opened
    );
    connection.close(0u32.into(), b"done");
    client.wait_idle().await;
    Ok(())
}
