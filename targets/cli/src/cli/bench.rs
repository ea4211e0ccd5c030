//! `quicseal bench`: the demo's sealed GSO send + GRO receive throughput next to the same
//! traffic unsealed (same sockets, same batching, same copies, no crypto), as a ratio, and the
//! same without GSO; writes the "Userspace datapath" section of docs/performance.md.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use quicseal::CipherSuite;
use quicseal::backend::Implementation;
use quicseal_userspace::traffic::{
    self, Endpoints, Protection, ThreadCpus, TrafficConfig, TrafficReport,
};

use super::CliError;
use super::demo::{check_loopback, placement};

/// Marks the start of the section this command owns in docs/performance.md.
pub const SECTION_BEGIN: &str =
    "<!-- BEGIN userspace-datapath (written by `cargo xtask bench`) -->";
/// Marks its end.
pub const SECTION_END: &str = "<!-- END userspace-datapath -->";

/// Options of `quicseal bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Packets per run.
    #[arg(long, default_value_t = 200_000)]
    pub count: u64,
    /// Runs of each configuration (interleaved); the tables give medians. Fifteen by
    /// default: on a shared machine the ratio of medians of five runs moved by 0.1 from one
    /// invocation to the next.
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
    /// Size of each packet on the wire.
    #[arg(long, default_value_t = 1350, value_name = "BYTES")]
    pub packet_size: usize,
    /// Packets per send.
    #[arg(long, default_value_t = 16, value_name = "PACKETS")]
    pub batch: usize,
    /// Where the receiver binds.
    #[arg(long, default_value_t = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))]
    pub address: SocketAddr,
    /// Replace the "Userspace datapath" section of this Markdown file (created if missing).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the figures as CSV here (what the plot script reads).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Leave the threads where the scheduler puts them, instead of pinning the sender to
    /// the first CPU this process may use and the receiver to the second.
    #[arg(long)]
    pub no_pin: bool,
    /// The figure's path relative to the Markdown file, to link from the section.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "figures/userspace-datapath.png"
    )]
    pub figure: String,
}

/// One measured configuration.
#[derive(Debug, Clone)]
struct Row {
    gso: bool,
    protection: Protection,
    suite: CipherSuite,
    reports: Vec<TrafficReport>,
}

impl Row {
    fn label(&self) -> &'static str {
        match (self.protection, self.suite) {
            (Protection::Unsealed, _) => "unsealed",
            (Protection::Sealed, CipherSuite::Aes128GcmSha256) => "AES-128-GCM",
            (Protection::Sealed, CipherSuite::Aes256GcmSha384) => "AES-256-GCM",
            (Protection::Sealed, CipherSuite::ChaCha20Poly1305Sha256) => "ChaCha20-Poly1305",
        }
    }

    fn path(&self) -> &'static str {
        if self.gso { "GSO + GRO" } else { "no GSO" }
    }

    fn gbps(&self) -> Vec<f64> {
        self.reports
            .iter()
            .map(|r| r.bits_per_second() / 1e9)
            .collect()
    }

    fn median_gbps(&self) -> f64 {
        median(self.gbps())
    }

    /// The slowest and fastest run, in Gbit/s.
    fn gbps_range(&self) -> (f64, f64) {
        let gbps = self.gbps();
        let min = gbps.iter().copied().fold(f64::INFINITY, f64::min);
        (min, gbps.iter().copied().fold(0.0, f64::max))
    }

    /// The median over the unsealed median of the same path, among `rows`.
    fn ratio_to_unsealed(&self, rows: &[Row]) -> f64 {
        let baseline = rows
            .iter()
            .find(|r| r.gso == self.gso && r.protection == Protection::Unsealed)
            .map_or(1.0, Row::median_gbps);
        self.median_gbps() / baseline.max(1e-9)
    }

    fn median_pps(&self) -> f64 {
        median(
            self.reports
                .iter()
                .map(TrafficReport::packets_per_second)
                .collect(),
        )
    }

    fn cpu_ns_per_packet(&self, cpu: fn(&TrafficReport) -> Duration) -> f64 {
        median(
            self.reports
                .iter()
                .map(|r| cpu(r).as_nanos() as f64 / r.opened.max(1) as f64)
                .collect(),
        )
    }

    /// The median share of its run the sender spent on the CPU.
    fn sender_on_cpu(&self) -> f64 {
        median(
            self.reports
                .iter()
                .map(|r| r.sender_cpu.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9))
                .collect(),
        )
    }

    /// The median time the sender waited for the receiver's window, per packet sent.
    fn window_wait_ns_per_packet(&self) -> f64 {
        median(
            self.reports
                .iter()
                .map(|r| r.window_wait.as_nanos() as f64 / r.sent.max(1) as f64)
                .collect(),
        )
    }

    fn clean(&self) -> bool {
        self.reports.iter().all(TrafficReport::clean)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Runs every configuration `args.runs` times, prints the table, and writes the files asked
/// for.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    check_loopback(args.address, false)?;
    if args.runs == 0 {
        return Err(CliError::Usage("--runs must be at least 1".into()));
    }
    let load_before = load_average();
    let mut rows = Vec::new();
    for gso in [true, false] {
        rows.push(Row {
            gso,
            protection: Protection::Unsealed,
            suite: CipherSuite::Aes128GcmSha256,
            reports: Vec::new(),
        });
        for suite in CipherSuite::ALL {
            rows.push(Row {
                gso,
                protection: Protection::Sealed,
                suite,
                reports: Vec::new(),
            });
        }
    }
    for run in 0..args.runs {
        errln!("run {}/{}", run + 1, args.runs);
        for row in &mut rows {
            let config = TrafficConfig {
                protection: row.protection,
                packet_size: args.packet_size,
                batch: args.batch,
                placement: placement(args.no_pin),
                ..TrafficConfig::new(row.suite, args.count)
            };
            config
                .validate()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            // Fresh sockets, configured alike, for every run: nothing left over from the last.
            let endpoints =
                Endpoints::bind(args.address, row.gso).map_err(|e| CliError::Run(e.to_string()))?;
            let report = traffic::run(&endpoints, &config, |_| {})
                .map_err(|e| CliError::Run(e.to_string()))?;
            errln!(
                "  {:<10} {:<18} {:6.2} Gbit/s{}",
                row.path(),
                row.label(),
                report.bits_per_second() / 1e9,
                if report.clean() {
                    ""
                } else {
                    "  (NOT CLEAN: see the table)"
                }
            );
            row.reports.push(report);
        }
    }

    let load = Load {
        before: load_before,
        after: load_average(),
    };
    let table = table(&rows, args.runs);
    outln!("{table}");
    if let Some(path) = &args.csv {
        write_file(path, &csv(&rows))?;
        errln!("wrote {}", path.display());
    }
    if let Some(path) = &args.markdown {
        let section = section(args, &rows, &table, &load);
        let old = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("# Performance\n"),
            Err(e) => {
                return Err(CliError::Run(format!(
                    "{}: cannot read: {e}",
                    path.display()
                )));
            }
        };
        write_file(path, &replace_section(&old, &section))?;
        errln!("wrote the Userspace datapath section of {}", path.display());
    }
    if rows.iter().all(Row::clean) {
        Ok(())
    } else {
        Err(CliError::Run(
            "some runs lost or failed packets: their figures are in the table, marked".into(),
        ))
    }
}

fn write_file(path: &PathBuf, text: &str) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Run(format!("{}: cannot create: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| CliError::Run(format!("{}: cannot write: {e}", path.display())))
}

/// The Markdown table of medians.
fn table(rows: &[Row], runs: usize) -> String {
    let mut out = format!(
        "| path | protection | Gbit/s (median of {runs}) | min – max | packets/s | vs unsealed | \
         sender CPU ns/packet | receiver CPU ns/packet | sender on CPU | sender waiting on the \
         window ns/packet |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for row in rows {
        let (min, max) = row.gbps_range();
        let _ = writeln!(
            out,
            "| {} | {}{} | {:.2} | {:.2} – {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0}% | {:.1} |",
            row.path(),
            row.label(),
            if row.clean() {
                ""
            } else {
                " (lost or failed packets)"
            },
            row.median_gbps(),
            min,
            max,
            row.median_pps(),
            row.ratio_to_unsealed(rows),
            row.cpu_ns_per_packet(|r| r.sender_cpu),
            row.cpu_ns_per_packet(|r| r.receiver_cpu),
            100.0 * row.sender_on_cpu(),
            row.window_wait_ns_per_packet(),
        );
    }
    out
}

/// The figures as CSV, one row per configuration.
fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "path,protection,gbps_median,gbps_min,gbps_max,packets_per_second,ratio_to_unsealed,\
         sender_cpu_ns_per_packet,receiver_cpu_ns_per_packet,sender_on_cpu,\
         window_wait_ns_per_packet,runs,clean\n",
    );
    for row in rows {
        let (min, max) = row.gbps_range();
        let _ = writeln!(
            out,
            "{},{},{:.4},{:.4},{:.4},{:.0},{:.4},{:.1},{:.1},{:.3},{:.1},{},{}",
            row.path(),
            row.label(),
            row.median_gbps(),
            min,
            max,
            row.median_pps(),
            row.ratio_to_unsealed(rows),
            row.cpu_ns_per_packet(|r| r.sender_cpu),
            row.cpu_ns_per_packet(|r| r.receiver_cpu),
            row.sender_on_cpu(),
            row.window_wait_ns_per_packet(),
            row.reports.len(),
            row.clean(),
        );
    }
    out
}

/// The whole section, markers included.
fn section(args: &BenchArgs, rows: &[Row], table: &str, load: &Load) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = cpu_model().unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let date = today();
    format!(
        "{SECTION_BEGIN}\n\
## Userspace datapath\n\
\n\
The `quicseal demo` traffic: {count} QUIC 1-RTT packets of {size} bytes on the wire, {batch} per \
send, one key update half way, from a sender thread to a receiver thread over loopback UDP \
(`quicseal-userspace`, `targets/userspace/`). *Sealed*: the sender seals each batch copy-fused \
from its cleartext into the send buffer (`TxFlow::seal_gso`) and sends it with one `sendmsg` \
and a `UDP_SEGMENT` cmsg; the receiver gets each batch as one GRO message and opens it in place \
(`RxFlow::open_gro`). *Unsealed*: the same packets, the same number of bytes (16 zero bytes \
where the tag would be), the same copy into the send buffer, the same sockets and batching, \
no crypto. *no GSO*: the same batches sent one datagram per `sendmsg` and received with \
`recvmmsg` (loopback does not coalesce separate sends). Both ends check every packet's bytes. \
The ratio is the sealed median over the unsealed median of the same path; CPU is each \
thread's own time on the CPU (`/proc/thread-self/schedstat`) per packet; *sender on CPU* is \
the sender's share of the run's wall time on the CPU, and *waiting on the window* the time it \
spent waiting for the receiver's report with {window} packets in flight, per packet. \
{placement}\n\
\n\
{table}\n\
![Userspace datapath throughput]({figure})\n\
\n\
Command: `cargo xtask bench` (a release build of `quicseal bench --count {count} --runs {runs} \
--packet-size {size} --batch {batch}{no_pin}`, then `targets/cli/bench/plot.py` for the figure; \
figures as CSV in `docs/figures/userspace-datapath.csv`). Machine: {cpus} × {model} (`nproc` \
{cpus}), Linux {kernel}, {date}; 1-minute load average {before} before the runs and {after} \
after (other work on the machine takes cores from the two threads).\n\
\n\
{reading}\n\
\n\
How far to trust it: this is loopback on a shared 2-core VM. Sender and receiver are two \
threads on those two cores, alongside whatever else the machine runs, so runs vary (min – max \
above) and absolute numbers say little about a NIC. Loopback does none of the work a NIC path \
adds (checksums, segmentation in the driver, interrupts, a wire that is usually the \
bottleneck) and hands each GSO batch to the receiver whole, so the unsealed path here is about \
two copies and a few syscalls: sealing shows at its most expensive relative to the rest, and on \
a real path the ratio moves towards 1. The crypto is the core's default backend: `{aes}` for \
AES-GCM, `{chacha}` for ChaCha20-Poly1305.\n\
{SECTION_END}\n",
        count = args.count,
        size = args.packet_size,
        batch = args.batch,
        runs = args.runs,
        figure = args.figure,
        window = traffic::DEFAULT_WINDOW,
        before = load.before,
        after = load.after,
        reading = reading(args.batch, rows),
        placement = placement_text(rows),
        no_pin = if args.no_pin { " --no-pin" } else { "" },
        aes = Implementation::selected()
            .for_suite(CipherSuite::Aes128GcmSha256)
            .name(),
        chacha = Implementation::selected()
            .for_suite(CipherSuite::ChaCha20Poly1305Sha256)
            .name(),
    )
}

/// Where the runs' threads ran, in a sentence.
fn placement_text(rows: &[Row]) -> String {
    let reports = || rows.iter().flat_map(|row| &row.reports);
    let runs = reports().count();
    let pinned: Vec<ThreadCpus> = reports().filter_map(|report| report.pinned).collect();
    match pinned.first() {
        None => "The scheduler placed the two threads (`--no-pin`, or fewer than two CPUs to \
                 pin them to, or a kernel that refused)."
            .into(),
        Some(cpus) if pinned.len() == runs && pinned.iter().all(|p| p == cpus) => format!(
            "Each run pins its sender to CPU {} and its receiver to CPU {} (`--no-pin` leaves \
             them to the scheduler).",
            cpus.sender, cpus.receiver
        ),
        Some(_) if pinned.len() == runs => "Each run pins its sender and its receiver each to \
             a CPU of its own, not the same two in every run (`--no-pin` leaves them to the \
             scheduler)."
            .into(),
        Some(_) => format!(
            "The threads were pinned, each to a CPU of its own, in {} of {runs} runs; the \
             scheduler placed them in the others (fewer than two CPUs, or the kernel refused).",
            pinned.len()
        ),
    }
}

/// What the figures say, in sentences built from them.
fn reading(batch: usize, rows: &[Row]) -> String {
    let find = |gso: bool, label: &str| rows.iter().find(|r| r.gso == gso && r.label() == label);
    let ratio = |gso: bool, label: &str| {
        let sealed = find(gso, label).map_or(0.0, Row::median_gbps);
        let unsealed = find(gso, "unsealed").map_or(1.0, Row::median_gbps);
        sealed / unsealed.max(1e-9)
    };
    let sender_ns = |gso: bool, label: &str| {
        find(gso, label).map_or(0.0, |r| r.cpu_ns_per_packet(|r| r.sender_cpu))
    };
    let receiver_ns = |gso: bool, label: &str| {
        find(gso, label).map_or(0.0, |r| r.cpu_ns_per_packet(|r| r.receiver_cpu))
    };
    // The thread with more CPU per sealed packet is the one that bounds the rate.
    let (aes_tx, aes_rx) = (
        sender_ns(true, "AES-128-GCM"),
        receiver_ns(true, "AES-128-GCM"),
    );
    let (plain_tx, plain_rx) = (sender_ns(true, "unsealed"), receiver_ns(true, "unsealed"));
    let bound = if aes_tx >= aes_rx {
        format!(
            "its sender, the slower thread, spends {aes_tx:.0} ns of CPU per packet against \
             {plain_tx:.0} unsealed (its receiver {aes_rx:.0} against {plain_rx:.0}), the \
             core's `seal` being most of the difference"
        )
    } else {
        format!(
            "its receiver, the slower thread, spends {aes_rx:.0} ns of CPU per packet against \
             {plain_rx:.0} unsealed (its sender {aes_tx:.0} against {plain_tx:.0}), the \
             core's `open` being most of the difference"
        )
    };
    let on_cpu = |label: &str| find(true, label).map_or(0.0, |r| 100.0 * r.sender_on_cpu());
    let waiting = |label: &str| find(true, label).map_or(0.0, Row::window_wait_ns_per_packet);
    format!(
        "How to read it: with GSO and GRO the syscalls are shared by {batch} packets and the \
         crypto is most of the work: sealed AES-128-GCM runs at {aes:.2}× the unsealed rate; \
         {bound}, within this VM's run-to-run spread (compare the packet-protection section). \
         Its sender was on the CPU for {aes_on:.0}% of the run and waited on the window \
         {aes_wait:.0} ns a packet (unsealed: {plain_on:.0}%, {plain_wait:.0} ns): where a \
         sender is on the CPU nearly all the time, the rate is its CPU per packet; the rest \
         of its time goes to waiting for the receiver. \
         ChaCha20-Poly1305 ({chacha:.2}×) is slower, as it is there. Without GSO \
         one `sendmsg` per datagram dominates (on loopback the sender's time includes the \
         delivery the kernel does in its context), and sealing with AES-128-GCM keeps \
         {aes_nogso:.2}× of that rate. GSO itself is worth {gso_gain:.1}× to sealed AES-128-GCM \
         traffic.",
        aes = ratio(true, "AES-128-GCM"),
        aes_on = on_cpu("AES-128-GCM"),
        aes_wait = waiting("AES-128-GCM"),
        plain_on = on_cpu("unsealed"),
        plain_wait = waiting("unsealed"),
        chacha = ratio(true, "ChaCha20-Poly1305"),
        aes_nogso = ratio(false, "AES-128-GCM"),
        gso_gain = find(true, "AES-128-GCM").map_or(0.0, Row::median_gbps)
            / find(false, "AES-128-GCM")
                .map_or(1.0, Row::median_gbps)
                .max(1e-9),
    )
}

/// `old` with the section between the markers replaced by `section`, or `section`
/// appended when there is none.
pub fn replace_section(old: &str, section: &str) -> String {
    match (old.find(SECTION_BEGIN), old.find(SECTION_END)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = &old[end + SECTION_END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..begin])
        }
        _ => {
            let separator = if old.is_empty() || old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{separator}{section}")
        }
    }
}

/// The machine's 1-minute load average before and after the runs.
struct Load {
    before: String,
    after: String,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_replaces_only_its_own_text() {
        let section = format!("{SECTION_BEGIN}\nnew\n{SECTION_END}\n");
        let old =
            format!("# Performance\n\nothers\n\n{SECTION_BEGIN}\nold\n{SECTION_END}\n\n## Later\n");
        assert_eq!(
            replace_section(&old, &section),
            format!("# Performance\n\nothers\n\n{section}\n## Later\n")
        );
        assert_eq!(
            replace_section("# Performance\n", &section),
            format!("# Performance\n\n{section}")
        );
    }

    /// A row of one run: `opened` packets, the threads' CPU in microseconds.
    fn row(protection: Protection, suite: CipherSuite, sender_us: u64, receiver_us: u64) -> Row {
        let report = TrafficReport {
            opened: 1000,
            wire_bytes: 1_350_000,
            elapsed: Duration::from_millis(1),
            sender_cpu: Duration::from_micros(sender_us),
            receiver_cpu: Duration::from_micros(receiver_us),
            ..TrafficReport::default()
        };
        Row {
            gso: true,
            protection,
            suite,
            reports: vec![report],
        }
    }

    #[test]
    fn the_reading_names_the_thread_that_bounds_the_rate() {
        let unsealed = row(Protection::Unsealed, CipherSuite::Aes128GcmSha256, 540, 300);
        let sender_bound = [
            unsealed.clone(),
            row(Protection::Sealed, CipherSuite::Aes128GcmSha256, 730, 480),
        ];
        let text = reading(16, &sender_bound);
        assert!(
            text.contains("its sender, the slower thread, spends 730 ns"),
            "{text}"
        );
        assert!(text.contains("(its receiver 480 against 300)"), "{text}");
        assert!(text.contains("`seal`"), "{text}");
        let receiver_bound = [
            unsealed,
            row(Protection::Sealed, CipherSuite::Aes128GcmSha256, 600, 900),
        ];
        let text = reading(16, &receiver_bound);
        assert!(
            text.contains("its receiver, the slower thread, spends 900 ns"),
            "{text}"
        );
        assert!(text.contains("`open`"), "{text}");
    }

    #[test]
    fn the_reading_says_how_long_the_sender_ran_and_waited() {
        let unsealed = row(Protection::Unsealed, CipherSuite::Aes128GcmSha256, 900, 300);
        let mut sealed = row(Protection::Sealed, CipherSuite::Aes128GcmSha256, 800, 480);
        sealed.reports[0].sent = 1000;
        sealed.reports[0].window_wait = Duration::from_micros(150);
        let rows = [unsealed, sealed];
        let text = reading(16, &rows);
        assert!(
            text.contains(
                "on the CPU for 80% of the run and waited on the window 150 ns a packet \
                 (unsealed: 90%, 0 ns)"
            ),
            "{text}"
        );
        let table = table(&rows, 1);
        assert!(table.contains("| 80% | 150.0 |"), "{table}");
    }

    #[test]
    fn the_section_says_where_the_threads_ran() {
        let mut rows = [
            row(Protection::Unsealed, CipherSuite::Aes128GcmSha256, 540, 300),
            row(Protection::Sealed, CipherSuite::Aes128GcmSha256, 730, 480),
        ];
        let text = placement_text(&rows);
        assert!(
            text.contains("The scheduler placed the two threads"),
            "{text}"
        );
        let cpus = ThreadCpus {
            sender: 2,
            receiver: 5,
        };
        rows[0].reports[0].pinned = Some(cpus);
        let text = placement_text(&rows);
        assert!(text.contains("in 1 of 2 runs"), "{text}");
        rows[1].reports[0].pinned = Some(cpus);
        let text = placement_text(&rows);
        assert!(
            text.contains("pins its sender to CPU 2 and its receiver to CPU 5"),
            "{text}"
        );
        rows[1].reports[0].pinned = Some(ThreadCpus {
            sender: 5,
            receiver: 2,
        });
        let text = placement_text(&rows);
        assert!(text.contains("not the same two in every run"), "{text}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn dates() {
        assert!(today().starts_with("20"));
        assert_eq!(today().len(), 10);
    }
}
