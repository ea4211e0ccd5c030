//! Bulk transfer through quinn, stock and offloaded, side by side in one run: a client
//! downloads the same bytes from a server over loopback, each end on its own thread with its
//! own single-threaded runtime, so that each end's CPU time is its thread's.
//!
//! ```sh
//! cargo run --release -p quicseal-quinn --example bulk -- [megabytes (256)] [runs (9)] [CSV]
//! python3 targets/quinn/bench/plot.py CSV FIGURE.png
//! ```
//!
//! Setups, each for AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305: stock quinn on rustls's
//! ring provider at both ends; stock on aws-lc-rs at both ends; the server offloaded to
//! quicseal against a stock ring client; both ends offloaded. Prints a Markdown table (the
//! median of the runs) with each setup's throughput and CPU time per byte and the ratios to
//! stock ring, for docs/performance.md, and with a CSV path writes the same figures there for
//! the plot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quicseal::CipherSuite;
use quicseal_quinn::{Registry, SealClientConfig, SealServerConfig, SealedSocket};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, EndpointConfig, ServerConfig, TokioRuntime};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Ring,
    AwsLc,
    OffloadedServer,
    OffloadedBoth,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup::Ring,
        Setup::AwsLc,
        Setup::OffloadedServer,
        Setup::OffloadedBoth,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::Ring => "stock quinn, ring",
            Setup::AwsLc => "stock quinn, aws-lc-rs",
            Setup::OffloadedServer => "server offloaded to quicseal, ring client",
            Setup::OffloadedBoth => "both ends offloaded to quicseal",
        }
    }
}

/// One transfer's figures.
#[derive(Clone, Copy)]
struct Measured {
    elapsed: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
}

/// The CSV's columns, one row per suite and setup.
const CSV_HEADER: &str = "suite,setup,gbps_median,gbps_min,gbps_max,ratio_to_stock_ring,\
                          server_cpu_ns_per_byte,client_cpu_ns_per_byte,runs\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let megabytes: usize = args.next().map_or(Ok(256), |n| n.parse())?;
    let runs: usize = args.next().map_or(Ok(9), |n| n.parse())?;
    let mut csv = args.next().map(|path| (path, String::from(CSV_HEADER)));
    let bytes = megabytes << 20;
    println!(
        "Bulk download of {megabytes} MiB through quinn 0.11 on loopback, median of {runs} runs; \
         CPU is each end's thread (`/proc/thread-self/schedstat`) per byte.\n"
    );
    println!(
        "| suite | setup | Gb/s (min - max) | vs stock ring | server CPU ns/byte | \
         vs stock ring | client CPU ns/byte | vs stock ring |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let gbps = |elapsed: Duration| (bytes * 8) as f64 / elapsed.as_secs_f64() / 1e9;
    let per_byte = |cpu: Duration| cpu.as_nanos() as f64 / bytes as f64;
    for suite in CipherSuite::ALL {
        // Round-robin over the setups, so that drift in the machine spreads over all of them.
        let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); Setup::ALL.len()];
        for run in 0..runs {
            eprintln!("{}: run {} of {runs}", suite.name(), run + 1);
            for (setup, results) in Setup::ALL.iter().zip(&mut measured) {
                results.push(transfer(suite, *setup, bytes)?);
            }
        }
        let median = |values: &mut Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let mut baseline = None;
        for (setup, results) in Setup::ALL.iter().zip(&measured) {
            let mut rates: Vec<f64> = results.iter().map(|m| gbps(m.elapsed)).collect();
            let mut servers: Vec<f64> = results.iter().map(|m| per_byte(m.server_cpu)).collect();
            let mut clients: Vec<f64> = results.iter().map(|m| per_byte(m.client_cpu)).collect();
            let (slowest, fastest) = (
                rates.iter().copied().fold(f64::INFINITY, f64::min),
                rates.iter().copied().fold(0.0, f64::max),
            );
            let (rate, server, client) = (
                median(&mut rates),
                median(&mut servers),
                median(&mut clients),
            );
            let (base_rate, base_server, base_client) =
                *baseline.get_or_insert((rate, server, client));
            println!(
                "| {} | {} | {rate:.2} ({slowest:.2} - {fastest:.2}) | {:.2}x | {server:.2} | \
                 {:.2}x | {client:.2} | {:.2}x |",
                suite.name(),
                setup.name(),
                rate / base_rate,
                server / base_server,
                client / base_client,
            );
            if let Some((_, text)) = &mut csv {
                text.push_str(&format!(
                    "{},\"{}\",{rate:.4},{slowest:.4},{fastest:.4},{:.4},{server:.4},\
                     {client:.4},{runs}\n",
                    suite.name(),
                    setup.name(),
                    rate / base_rate,
                ));
            }
        }
    }
    println!(
        "\nRatios: throughput over stock ring's (higher is better); CPU per byte over stock \
         ring's (lower is better)."
    );
    if let Some((path, text)) = csv {
        std::fs::write(&path, text)?;
    }
    Ok(())
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// ring's or aws-lc-rs's provider, `suite` first (AES-128-GCM stays for Initial packets).
fn stock(setup: Setup, suite: CipherSuite) -> Arc<CryptoProvider> {
    let mut provider = match setup {
        Setup::AwsLc => rustls::crypto::aws_lc_rs::default_provider(),
        _ => rustls::crypto::ring::default_provider(),
    };
    provider
        .cipher_suites
        .sort_by_key(|s| u16::from(s.suite()) != suite.code());
    Arc::new(provider)
}

fn transfer(suite: CipherSuite, setup: Setup, bytes: usize) -> Result<Measured, String> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).map_err(|e| e.to_string())?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let alpn = vec![b"bulk".to_vec()];

    // The server's endpoint is made on its own thread, where its runtime lives.
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let server_alpn = alpn.clone();
    let server_cert = cert.clone();
    let server = std::thread::spawn(move || -> Duration {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let chain = vec![server_cert];
            let endpoint = if matches!(setup, Setup::OffloadedServer | Setup::OffloadedBoth) {
                let registry = Arc::new(Registry::new());
                let mut tls = SealServerConfig::rustls_builder(&[suite])
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .expect("a certificate");
                tls.alpn_protocols = server_alpn;
                let crypto = SealServerConfig::new(tls, Arc::clone(&registry));
                let socket =
                    SealedSocket::bind("127.0.0.1:0".parse().expect("an address"), registry)
                        .expect("a socket");
                Endpoint::new_with_abstract_socket(
                    EndpointConfig::default(),
                    Some(ServerConfig::with_crypto(Arc::new(crypto))),
                    Arc::new(socket),
                    Arc::new(TokioRuntime),
                )
                .expect("an endpoint")
            } else {
                let mut tls = rustls::ServerConfig::builder_with_provider(stock(setup, suite))
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .expect("TLS 1.3")
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .expect("a certificate");
                tls.alpn_protocols = server_alpn;
                let crypto = QuicServerConfig::try_from(tls).expect("QUIC suites");
                Endpoint::server(
                    ServerConfig::with_crypto(Arc::new(crypto)),
                    "127.0.0.1:0".parse().expect("an address"),
                )
                .expect("an endpoint")
            };
            address_tx
                .send(endpoint.local_addr().expect("bound"))
                .expect("the client waits");
            let connection = endpoint
                .accept()
                .await
                .expect("a client")
                .await
                .expect("a handshake");
            let mut send = connection.open_uni().await.expect("a stream");
            let started = thread_cpu();
            let chunk = vec![0x5a; 1 << 20];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                send.write_all(&chunk[..n]).await.expect("the client reads");
                left -= n;
            }
            send.finish().expect("open");
            let _ = send.stopped().await;
            let spent = thread_cpu() - started;
            connection.closed().await;
            spent
        })
    });

    let address = address_rx.recv().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (elapsed, client_cpu) = runtime.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("a certificate");
        let (config, endpoint) = if setup == Setup::OffloadedBoth {
            let registry = Arc::new(Registry::new());
            let mut tls = SealClientConfig::rustls_builder(&[suite])
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = alpn;
            let crypto = SealClientConfig::new(tls, Arc::clone(&registry));
            let socket = SealedSocket::bind("127.0.0.1:0".parse().expect("an address"), registry)
                .expect("a socket");
            let endpoint = Endpoint::new_with_abstract_socket(
                EndpointConfig::default(),
                None,
                Arc::new(socket),
                Arc::new(TokioRuntime),
            )
            .expect("an endpoint");
            (quinn::ClientConfig::new(Arc::new(crypto)), endpoint)
        } else {
            let client_setup = if setup == Setup::AwsLc {
                Setup::AwsLc
            } else {
                Setup::Ring
            };
            let mut tls = rustls::ClientConfig::builder_with_provider(stock(client_setup, suite))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3")
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = alpn;
            let crypto = QuicClientConfig::try_from(tls).expect("QUIC suites");
            let endpoint =
                Endpoint::client("127.0.0.1:0".parse().expect("an address")).expect("an endpoint");
            (quinn::ClientConfig::new(Arc::new(crypto)), endpoint)
        };
        let connection = endpoint
            .connect_with(config, address, "localhost")
            .expect("a connection")
            .await
            .expect("a handshake");
        let mut recv = connection.accept_uni().await.expect("a stream");
        let (started, cpu) = (Instant::now(), thread_cpu());
        let mut received = 0;
        while let Some(chunk) = recv
            .read_chunk(usize::MAX, false)
            .await
            .expect("the stream")
        {
            received += chunk.bytes.len();
        }
        let measured = (started.elapsed(), thread_cpu() - cpu);
        assert_eq!(received, bytes, "every byte arrived");
        connection.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
        measured
    });
    let server_cpu = server.join().map_err(|_| "the server thread panicked")?;
    Ok(Measured {
        elapsed,
        server_cpu,
        client_cpu,
    })
}
