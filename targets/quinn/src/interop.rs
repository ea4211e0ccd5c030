//! A server and a client following the QUIC Interop Runner's conventions, with quicseal
//! protecting their 1-RTT packets: ALPN `hq-interop` (HTTP/0.9: a request `GET /path\r\n` on
//! a bidirectional stream, answered with the file's bytes and the stream's end), a directory
//! of files to serve and one to download into, and the runner's test cases, which decide the
//! cipher suites offered and whether the client updates its keys.

use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use quicseal::{CipherSuite, Counters};
use quinn::{Endpoint, EndpointConfig, ServerConfig, TokioRuntime, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::{Registry, SealClientConfig, SealServerConfig, SealedSocket};

/// The runner's application protocol.
pub const ALPN: &[u8] = b"hq-interop";

/// Longest request line the server reads.
const MAX_REQUEST: usize = 4096;

/// The runner's test cases this endpoint takes part in (its `TESTCASE` variable). For any
/// other the runner expects an endpoint to exit with status 127.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestCase {
    /// One file over one connection.
    Handshake,
    /// Files, some large, over one connection.
    Transfer,
    /// Many files at once, on concurrent streams of one connection.
    Multiplexing,
    /// The handshake may only choose ChaCha20-Poly1305.
    ChaCha20,
    /// The client updates its keys as soon as the handshake is done.
    KeyUpdate,
}

impl TestCase {
    pub const ALL: [TestCase; 5] = [
        TestCase::Handshake,
        TestCase::Transfer,
        TestCase::Multiplexing,
        TestCase::ChaCha20,
        TestCase::KeyUpdate,
    ];

    /// The runner's name for it.
    pub fn name(self) -> &'static str {
        match self {
            TestCase::Handshake => "handshake",
            TestCase::Transfer => "transfer",
            TestCase::Multiplexing => "multiplexing",
            TestCase::ChaCha20 => "chacha20",
            TestCase::KeyUpdate => "keyupdate",
        }
    }

    /// The test case the runner calls `name`, if this endpoint takes part in it.
    pub fn from_name(name: &str) -> Option<TestCase> {
        TestCase::ALL.into_iter().find(|case| case.name() == name)
    }

    /// The cipher suites an endpoint offers in this test case.
    pub fn suites(self) -> &'static [CipherSuite] {
        match self {
            TestCase::ChaCha20 => &[CipherSuite::ChaCha20Poly1305Sha256],
            _ => &CipherSuite::ALL,
        }
    }
}

/// A server's certificate chain and private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The chain and key in PEM files, as the runner mounts them.
    pub fn from_pem_files(certificate: &Path, key: &Path) -> io::Result<Identity> {
        let chain = certificates(certificate)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
        Ok(Identity { chain, key })
    }

    /// A self-signed certificate for `names`, made now.
    pub fn self_signed(names: &[&str]) -> io::Result<Identity> {
        let names = names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>();
        let certified = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
        Ok(Identity {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into()),
        })
    }
}

/// The certificates in a PEM file.
pub fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(io::Error::other(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(chain)
}

/// A server endpoint on `listen` serving the files under `root`, its 1-RTT packets protected
/// by quicseal through `registry`. Serves on the current tokio runtime until the endpoint is
/// closed.
pub fn server(
    listen: SocketAddr,
    root: PathBuf,
    identity: Identity,
    testcase: TestCase,
    registry: Arc<Registry>,
) -> io::Result<Endpoint> {
    let mut tls = SealServerConfig::rustls_builder(testcase.suites())
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(io::Error::other)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config =
        ServerConfig::with_crypto(Arc::new(SealServerConfig::new(tls, Arc::clone(&registry))));
    // The runner's multiplexing test opens far more streams than quinn's default allows.
    let mut transport = TransportConfig::default();
    transport.max_concurrent_bidi_streams(VarInt::from_u32(1000));
    config.transport_config(Arc::new(transport));
    let endpoint = sealed_endpoint(listen, Some(config), registry)?;
    let accepting = endpoint.clone();
    let root = Arc::new(root);
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let root = Arc::clone(&root);
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((send, recv)) = connection.accept_bi().await {
                    tokio::spawn(serve_request(send, recv, Arc::clone(&root)));
                }
            });
        }
    });
    Ok(endpoint)
}

fn sealed_endpoint(
    address: SocketAddr,
    server: Option<ServerConfig>,
    registry: Arc<Registry>,
) -> io::Result<Endpoint> {
    Endpoint::new_with_abstract_socket(
        EndpointConfig::default(),
        server,
        Arc::new(SealedSocket::bind(address, registry)?),
        Arc::new(TokioRuntime),
    )
}

/// Answers one request: the file's bytes, or a reset stream for a request that is not a
/// `GET` of a file under `root`.
async fn serve_request(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    root: Arc<PathBuf>,
) {
    let file = match recv.read_to_end(MAX_REQUEST).await {
        Ok(request) => requested(&root, &request),
        Err(_) => None,
    };
    let bytes = match file {
        Some(path) => tokio::fs::read(path).await.ok(),
        None => None,
    };
    match bytes {
        Some(bytes) if send.write_all(&bytes).await.is_ok() => {
            let _ = send.finish();
        }
        _ => {
            let _ = send.reset(VarInt::from_u32(0));
        }
    }
}

/// The file under `root` that an HTTP/0.9 request names: `GET /path`, the line ended by
/// `\r\n`, `\n` or the stream's end; only plain path components, so that nothing outside
/// `root` can be named.
fn requested(root: &Path, request: &[u8]) -> Option<PathBuf> {
    let line = std::str::from_utf8(request).ok()?.lines().next()?;
    let path = line.strip_prefix("GET /")?.trim_end();
    let relative = Path::new(path);
    let plain = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    (plain && !path.is_empty()).then(|| root.join(relative))
}

/// Whose certificates a client accepts.
pub enum Trust {
    /// Those issued by these roots (or these self-signed certificates).
    Roots(Vec<CertificateDer<'static>>),
    /// Any certificate: the runner's servers present certificates no root signed. The
    /// handshake's signature is still checked against the certificate presented.
    AnyCertificate,
}

/// What a client saw of its connection's protection: its flows' counters, sending and
/// receiving, read before the connection closed.
pub struct Fetched {
    pub files: usize,
    pub sent: Counters,
    pub received: Counters,
}

/// Downloads every URL of `requests` (`https://host:port/path`, all of one server) over one
/// connection into `downloads`, a file each, named as in the URL; its 1-RTT packets
/// protected by quicseal through `registry`.
pub async fn client(
    requests: &[String],
    downloads: &Path,
    testcase: TestCase,
    trust: Trust,
    registry: Arc<Registry>,
) -> io::Result<Fetched> {
    let urls = requests
        .iter()
        .map(|request| Url::parse(request))
        .collect::<io::Result<Vec<_>>>()?;
    let Some(first) = urls.first() else {
        return Ok(Fetched {
            files: 0,
            sent: Counters::default(),
            received: Counters::default(),
        });
    };
    let server = tokio::net::lookup_host((first.host.as_str(), first.port))
        .await?
        .next()
        .ok_or_else(|| io::Error::other(format!("{}: no address", first.host)))?;
    let local: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse()
    } else {
        "0.0.0.0:0".parse()
    }
    .map_err(io::Error::other)?;
    let endpoint = sealed_endpoint(local, None, Arc::clone(&registry))?;
    let builder = SealClientConfig::rustls_builder(testcase.suites());
    let mut tls = match trust {
        Trust::Roots(certificates) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in certificates {
                roots.add(certificate).map_err(io::Error::other)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let config =
        quinn::ClientConfig::new(Arc::new(SealClientConfig::new(tls, Arc::clone(&registry))));
    let connection = endpoint
        .connect_with(config, server, &first.host)
        .map_err(io::Error::other)?
        .await
        .map_err(io::Error::other)?;
    if testcase == TestCase::KeyUpdate {
        connection.force_key_update();
    }
    let mut downloads_left = tokio::task::JoinSet::new();
    for url in urls {
        let connection = connection.clone();
        let file = downloads.join(url.file_name());
        downloads_left.spawn(async move {
            let (mut send, mut recv) = connection.open_bi().await.map_err(io::Error::other)?;
            send.write_all(format!("GET /{}\r\n", url.path).as_bytes())
                .await
                .map_err(io::Error::other)?;
            send.finish().map_err(io::Error::other)?;
            let body = recv
                .read_to_end(usize::MAX)
                .await
                .map_err(io::Error::other)?;
            tokio::fs::write(file, body).await
        });
    }
    let mut files = 0;
    while let Some(done) = downloads_left.join_next().await {
        done.map_err(io::Error::other)??;
        files += 1;
    }
    let (sent, received) = registry.totals();
    connection.close(VarInt::from_u32(0), b"done");
    endpoint.wait_idle().await;
    Ok(Fetched {
        files,
        sent,
        received,
    })
}

/// An `https://host:port/path` URL, as the runner gives them.
struct Url {
    host: String,
    port: u16,
    path: String,
}

impl Url {
    fn parse(text: &str) -> io::Result<Url> {
        let bad = || io::Error::other(format!("{text}: not https://host:port/path"));
        let rest = text.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => (host, port.parse().map_err(|_| bad())?),
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// Where the download goes: the path's last component.
    fn file_name(&self) -> String {
        self.path.rsplit('/').next().unwrap_or_default().to_string()
    }
}

/// Accepts any server certificate, checking only the handshake's signature with it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_only_files_under_the_root() {
        let root = Path::new("/www");
        let file = |request: &str| requested(root, request.as_bytes());
        assert_eq!(file("GET /a.bin\r\n"), Some(root.join("a.bin")));
        assert_eq!(file("GET /dir/b\n"), Some(root.join("dir/b")));
        assert_eq!(file("GET /c"), Some(root.join("c")));
        for bad in [
            "GET /../etc/passwd\r\n",
            "GET /\r\n",
            "PUT /a\r\n",
            "GET a\r\n",
            "GET //abs\r\n",
            "GET /./a\r\n",
        ] {
            assert_eq!(file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn urls_give_host_port_and_path() {
        let url = Url::parse("https://server4:443/dir/file.bin").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("server4", 443, "dir/file.bin")
        );
        assert_eq!(url.file_name(), "file.bin");
        let url = Url::parse("https://[::1]:4433/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 4433));
        assert!(Url::parse("http://a/b").is_err());
        assert!(Url::parse("https://a:port/b").is_err());
    }

    #[test]
    fn test_cases_go_by_the_runners_names() {
        for case in TestCase::ALL {
            assert_eq!(TestCase::from_name(case.name()), Some(case));
        }
        assert_eq!(TestCase::from_name("retry"), None);
        assert_eq!(
            TestCase::ChaCha20.suites(),
            &[CipherSuite::ChaCha20Poly1305Sha256]
        );
    }
}
