//! The `quicseal` command: the userspace datapath demo and benchmark, the test-vector tools
//! (`vectors check`, `seal`, `open`), and QUIC Interop Runner endpoints (`quic-server`,
//! `quic-client`).
//!
//! Exit status: 0 when all went well; 1 when a check failed (a vector, a packet that did not
//! seal or open as it should); 2 for bad input or options, with one line on stderr saying
//! what and where; 3 when the demo's packets all opened but some were lost in the socket; 4
//! when the run failed or did not finish (a socket, a timeout, a file to write, the demo's
//! deadline, a benchmark run that lost packets); 127 for an interop test case the endpoints
//! do not take part in.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::{CliError, Outcome, errln, outln};
use quicseal_userspace::formats::{job, json, vectors};

/// Seal and open QUIC 1-RTT packets: the quicseal userspace datapath and test-vector tools.
#[derive(Debug, Parser)]
#[command(name = "quicseal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seal a stream of QUIC 1-RTT packets in GSO batches and open them with GRO, over
    /// loopback UDP; print what arrived and how fast.
    Demo(cli::demo::DemoArgs),
    /// Test vector files (format: vectors/README.md).
    Vectors {
        #[command(subcommand)]
        command: VectorsCommand,
    },
    /// Seal the packets of a job file (header and payload) and print it with `protected`
    /// filled in (format: docs/formats.md).
    Seal {
        /// The job, in the vectors' JSON format.
        file: PathBuf,
    },
    /// Open the packets of a job file (`protected`) and print it with `header`, `payload`,
    /// `pn` and `generation`, or `error`, filled in (format: docs/formats.md).
    Open {
        /// The job, in the vectors' JSON format.
        file: PathBuf,
    },
    /// Measure the demo's throughput sealed and unsealed, with and without GSO.
    Bench(cli::bench::BenchArgs),
    /// A QUIC server (quinn, 1-RTT protected by quicseal) for the QUIC Interop Runner:
    /// serves files over `hq-interop` until interrupted (docs/interop.md).
    #[cfg(feature = "interop")]
    QuicServer(cli::interop::ServerArgs),
    /// A QUIC client (quinn, 1-RTT protected by quicseal) for the QUIC Interop Runner:
    /// downloads the requested files over `hq-interop` (docs/interop.md).
    #[cfg(feature = "interop")]
    QuicClient(cli::interop::ClientArgs),
}

#[derive(Debug, Subcommand)]
enum VectorsCommand {
    /// Seal and open every packet of each file as the core's tests do; one line per file,
    /// then `N passed, M failed`.
    Check {
        /// Vector files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Vectors {
            command: VectorsCommand::Check { files },
        } => Ok(check_vectors(files)),
        Command::Seal { file } => run_job(job::seal(file)),
        Command::Open { file } => run_job(job::open(file).map(|mut output| {
            // A packet that does not open is a result of `open`, not a failure of it.
            output.refused.clear();
            output
        })),
        Command::Bench(args) => cli::bench::run(args).map(|()| Outcome::Ok),
        #[cfg(feature = "interop")]
        Command::QuicServer(args) => cli::interop::server(args),
        #[cfg(feature = "interop")]
        Command::QuicClient(args) => cli::interop::client(args),
    };
    match outcome {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            errln!("quicseal: {error}");
            error.exit_code()
        }
    }
}

/// Checks each file; one line per file, the totals last.
fn check_vectors(files: &[PathBuf]) -> Outcome {
    let mut failed = 0;
    for file in files {
        match vectors::check_file(file) {
            Ok(passed) => outln!(
                "ok      {} ({} packets, {} negatives, {} key generations, {} masks{})",
                file.display(),
                passed.packets,
                passed.negatives,
                passed.keys,
                passed.masks,
                if passed.gso { ", GSO and GRO" } else { "" }
            ),
            Err(error) => {
                failed += 1;
                outln!("FAILED  {error}");
            }
        }
    }
    outln!("{} passed, {failed} failed", files.len() - failed);
    if failed == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}

/// Prints a job's document; a packet refused is a failure, reported one line each.
fn run_job(output: Result<job::JobOutput, json::InputError>) -> Result<Outcome, CliError> {
    let output = output?;
    let text = serde_json::to_string_pretty(&output.doc)
        .map_err(|e| CliError::Run(format!("cannot write JSON: {e}")))?;
    outln!("{text}");
    for refused in &output.refused {
        errln!("quicseal: {refused}");
    }
    Ok(if output.refused.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
