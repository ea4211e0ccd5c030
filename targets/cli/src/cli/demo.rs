//! `quicseal demo`: sealed QUIC 1-RTT traffic over loopback UDP with GSO and GRO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quicseal::CipherSuite;
use quicseal_userspace::traffic::{self, Endpoints, Placement, TrafficConfig, TrafficReport};

use super::{CliError, Outcome};
use quicseal_userspace::formats::json::parse_suite;

/// Packets the demo sends by default: 675 MB on the wire, well under a second to a few
/// seconds for a release build on a shared 2-core machine, depending on the suite and path.
/// (A debug build is about a hundred times slower: give it `--count`.)
pub const DEFAULT_COUNT: u64 = 500_000;

/// Options of `quicseal demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Cipher suite: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
    /// TLS_CHACHA20_POLY1305_SHA256, or short: aes128gcm, aes256gcm, chacha20poly1305.
    #[arg(long, default_value = "TLS_AES_128_GCM_SHA256", value_parser = parse_suite)]
    pub suite: CipherSuite,
    /// Size of each packet on the wire (UDP payload, tag included): the GSO segment size.
    #[arg(long, default_value_t = 1350, value_name = "BYTES")]
    pub packet_size: usize,
    /// Packets per send: the segments of one GSO batch (1 to 64).
    #[arg(long, default_value_t = 16, value_name = "PACKETS")]
    pub batch: usize,
    /// Packets to send; the key phase flips half way.
    #[arg(long, default_value_t = DEFAULT_COUNT)]
    pub count: u64,
    /// Where the receiver binds (the sender binds the same IP): 127.0.0.1:0, or [::1]:0
    /// with --ipv6.
    #[arg(long, value_name = "IP:PORT")]
    pub address: Option<SocketAddr>,
    /// Use IPv6 loopback ([::1]:0).
    #[arg(short = '6', long, conflicts_with = "address")]
    pub ipv6: bool,
    /// Send one datagram per sendmsg instead of GSO batches.
    #[arg(long)]
    pub no_gso: bool,
    /// Packets in flight at most before the sender waits for the receiver.
    #[arg(long, default_value_t = traffic::DEFAULT_WINDOW, value_name = "PACKETS")]
    pub window: u64,
    /// Give up after this many seconds (at least 1), whatever has happened; a run the
    /// deadline stops exits with status 4.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub deadline: u64,
    /// Allow an address other than loopback (it must be one of this machine's own).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Leave the threads where the scheduler puts them, instead of pinning the sender to
    /// the first CPU this process may use and the receiver to the second.
    #[arg(long)]
    pub no_pin: bool,
}

impl DemoArgs {
    /// The receiver's address.
    pub fn address(&self) -> SocketAddr {
        self.address.unwrap_or(if self.ipv6 {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        })
    }

    fn config(&self) -> TrafficConfig {
        TrafficConfig {
            packet_size: self.packet_size,
            batch: self.batch,
            window: self.window,
            deadline: Duration::from_secs(self.deadline),
            placement: placement(self.no_pin),
            ..TrafficConfig::new(self.suite, self.count)
        }
    }
}

/// Pinned unless `--no-pin` says otherwise.
pub fn placement(no_pin: bool) -> Placement {
    if no_pin {
        Placement::Scheduler
    } else {
        Placement::Pinned
    }
}

/// Refuses addresses off loopback unless asked to allow them.
pub fn check_loopback(address: SocketAddr, allow: bool) -> Result<(), CliError> {
    if address.ip().is_loopback() || allow {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--address {address} is not a loopback address; the demo stays on loopback \
             unless --allow-non-loopback is given"
        )))
    }
}

/// Runs the demo and prints what happened.
pub fn run(args: &DemoArgs) -> Result<Outcome, CliError> {
    let address = args.address();
    check_loopback(address, args.allow_non_loopback)?;
    let config = args.config();
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let endpoints =
        Endpoints::bind(address, !args.no_gso).map_err(|e| CliError::Run(e.to_string()))?;
    let from = endpoints
        .sender
        .local_addr()
        .map_err(|e| CliError::Run(e.to_string()))?;
    let to = endpoints
        .receiver
        .local_addr()
        .map_err(|e| CliError::Run(e.to_string()))?;
    outln!(
        "quicseal demo: {}, {} packets of {} bytes in batches of {}, {from} -> {to}",
        config.suite.name(),
        config.count,
        config.packet_size,
        config.batch
    );
    outln!(
        "  GSO {}, GRO {}, receive buffer {} KiB",
        if endpoints.sender.max_gso_segments() > 1 {
            "on"
        } else if args.no_gso {
            "off (--no-gso)"
        } else {
            "off (not supported here)"
        },
        if endpoints.receiver.gro_enabled() {
            "on"
        } else {
            "off"
        },
        endpoints.receiver.recv_buffer_size().unwrap_or(0) / 1024
    );

    let bar = progress_bar(config.count);
    let report = traffic::run(&endpoints, &config, |progress| {
        bar.set_position(progress.received);
    })
    .map_err(|e| CliError::Run(e.to_string()))?;
    bar.finish_and_clear();
    print_report(&report, config.placement);
    Ok(verdict(&report, config.count))
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(count: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} packets opened, {eta} left",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Prints the report, one aspect per line.
pub fn print_report(report: &TrafficReport, placement: Placement) {
    let reasons: Vec<String> = report
        .failure_reasons
        .iter()
        .map(|(code, count)| format!("{count} {code}"))
        .collect();
    let reasons = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join(", "))
    };
    outln!(
        "packets      {} sent, {} opened, {} failed to open{reasons}, {} corrupt, {} lost in the socket",
        report.sent,
        report.opened,
        report.failed,
        report.corrupt,
        report.lost
    );
    if report.refused > 0 {
        outln!(
            "refused      {} packets the seal refused (not sent)",
            report.refused
        );
    }
    outln!(
        "bytes        {} on the wire, {} of payload",
        report.wire_bytes,
        report.payload_bytes
    );
    outln!(
        "key updates  {} sent, {} followed by the receiver",
        report.key_updates_sent,
        report.key_updates_received
    );
    outln!(
        "syscalls     {} GSO sends, {} single sends, {} GSO refusals; {} messages received (largest GRO batch {})",
        report.sender.gso_sends,
        report.sender.single_sends,
        report.sender.gso_refusals,
        report.receiver.messages_received,
        report.largest_gro_batch
    );
    outln!(
        "ecn          {} packets arrived without the ECT(0) they were sent with",
        report.ecn_mismatches
    );
    if report.deadline_reached {
        outln!(
            "deadline     reached: the sender stopped after {} packets (see --deadline)",
            report.sent + report.refused
        );
    }
    if report.stalls > 0 {
        outln!(
            "stalls       {} (the sender stopped waiting for the receiver)",
            report.stalls
        );
    }
    let cpus = report.pinned.unwrap_or(report.last_cpus);
    outln!(
        "threads      sender on CPU {}, receiver on CPU {} ({})",
        cpus.sender,
        cpus.receiver,
        match (report.pinned, placement) {
            (Some(_), _) => "pinned",
            (None, Placement::Scheduler) => "placed by the scheduler: where they finished",
            (None, Placement::Pinned) => {
                "not pinned, fewer than two CPUs or the kernel refused: where they finished"
            }
        }
    );
    outln!(
        "cpu          sender {:.2} s, receiver {:.2} s; the sender waited {} times for the window, {:.3} s in all",
        report.sender_cpu.as_secs_f64(),
        report.receiver_cpu.as_secs_f64(),
        report.window_waits,
        report.window_wait.as_secs_f64()
    );
    outln!(
        "throughput   {:.2} Gbit/s, {:.0} packets/s in {:.2} s",
        report.bits_per_second() / 1e9,
        report.packets_per_second(),
        report.elapsed.as_secs_f64()
    );
}

/// The exit status a report deserves.
fn verdict(report: &TrafficReport, count: u64) -> Outcome {
    if report.failed > 0 || report.corrupt > 0 || report.refused > 0 {
        outln!("result       FAILED: packets did not open as sent");
        Outcome::Failed
    } else if report.deadline_reached {
        outln!(
            "result       INCOMPLETE: the deadline stopped the sender after {} of {} packets",
            report.sent + report.refused,
            count
        );
        Outcome::Incomplete
    } else if report.lost > 0 {
        outln!("result       LOSSES: every packet received opened, but some never arrived");
        Outcome::Lost
    } else {
        outln!("result       ok: every packet sent arrived and opened as sent");
        Outcome::Ok
    }
}
