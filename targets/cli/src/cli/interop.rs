//! `quicseal quic-server` and `quicseal quic-client`: quinn endpoints whose 1-RTT packets
//! quicseal protects, following the QUIC Interop Runner's conventions
//! (`quicseal_quinn::interop`, docs/interop.md). Options default to the runner's: its
//! `TESTCASE` and `REQUESTS` variables, `/www`, `/downloads`, port 443.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use quicseal_quinn::Registry;
use quicseal_quinn::interop::{self, Identity, TestCase, Trust};

use super::{CliError, Outcome};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address and port to listen on (IPv4 or IPv6).
    #[arg(long, default_value = "[::]:443")]
    listen: SocketAddr,
    /// Directory whose files are served.
    #[arg(long, default_value = "/www")]
    www: PathBuf,
    /// Certificate chain, PEM (with --key); without them a self-signed certificate for
    /// `localhost` and `server` is made.
    #[arg(long, requires = "key")]
    certificate: Option<PathBuf>,
    /// Private key, PEM (with --certificate).
    #[arg(long, requires = "certificate")]
    key: Option<PathBuf>,
    /// The runner's test case: handshake, transfer, multiplexing, chacha20 or keyupdate.
    #[arg(long, env = "TESTCASE")]
    testcase: String,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// URLs to download, `https://host:port/path`, all of one server (default: the
    /// space-separated `REQUESTS` variable).
    #[arg(env = "REQUESTS", value_delimiter = ' ', required = true)]
    requests: Vec<String>,
    /// Directory the files are written into, each named as its URL's last component.
    #[arg(long, default_value = "/downloads")]
    downloads: PathBuf,
    /// Trust only this certificate (PEM) instead of any: the runner's servers present
    /// certificates no root signed, so by default any is accepted, its handshake signature
    /// still checked.
    #[arg(long)]
    trust: Option<PathBuf>,
    /// The runner's test case: handshake, transfer, multiplexing, chacha20 or keyupdate.
    #[arg(long, env = "TESTCASE")]
    testcase: String,
}

/// The test case, or the runner's "unsupported" outcome.
fn test_case(name: &str) -> Result<TestCase, Outcome> {
    TestCase::from_name(name).ok_or(Outcome::Unsupported)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Run(format!("tokio: {e}")))
}

/// Serves until interrupted.
pub fn server(args: &ServerArgs) -> Result<Outcome, CliError> {
    let testcase = match test_case(&args.testcase) {
        Ok(testcase) => testcase,
        Err(unsupported) => return Ok(unsupported),
    };
    let identity = match (&args.certificate, &args.key) {
        (Some(certificate), Some(key)) => Identity::from_pem_files(certificate, key),
        _ => Identity::self_signed(&["localhost", "server"]),
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    runtime()?.block_on(async {
        let endpoint = interop::server(
            args.listen,
            args.www.clone(),
            identity,
            testcase,
            Arc::new(Registry::new()),
        )
        .map_err(|e| CliError::Run(format!("{}: {e}", args.listen)))?;
        outln!(
            "quicseal quic-server: {} on {}, serving {}",
            testcase.name(),
            args.listen,
            args.www.display()
        );
        let _ = tokio::signal::ctrl_c().await;
        endpoint.close(0u32.into(), b"shutting down");
        endpoint.wait_idle().await;
        Ok(Outcome::Ok)
    })
}

/// Downloads the requests and exits.
pub fn client(args: &ClientArgs) -> Result<Outcome, CliError> {
    let testcase = match test_case(&args.testcase) {
        Ok(testcase) => testcase,
        Err(unsupported) => return Ok(unsupported),
    };
    let trust = match &args.trust {
        Some(path) => {
            Trust::Roots(interop::certificates(path).map_err(|e| CliError::Usage(e.to_string()))?)
        }
        None => Trust::AnyCertificate,
    };
    let fetched = runtime()?.block_on(interop::client(
        &args.requests,
        &args.downloads,
        testcase,
        trust,
        Arc::new(Registry::new()),
    ));
    let fetched = fetched.map_err(|e| CliError::Run(e.to_string()))?;
    outln!(
        "quicseal quic-client: {}: {} files into {}; quicseal sealed {} packets and opened {}, \
         {} key updates sending, {} receiving",
        testcase.name(),
        fetched.files,
        args.downloads.display(),
        fetched.sent.sealed,
        fetched.received.opened,
        fetched.sent.key_updates,
        fetched.received.key_updates
    );
    Ok(Outcome::Ok)
}
