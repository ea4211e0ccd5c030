//! `cargo xtask fpga-test`: the SmartNIC firmware on an FPGA system-on-chip, simulated at
//! register-transfer level: a LiteX SoC with a VexRiscv core, its Verilog run by Verilator,
//! so that the cycles counted are those of that soft core and its memories.
//!
//! Installs the pinned LiteX packages (targets/smartnic-fw/litex/requirements.txt) into a
//! venv under target/fpga, generates the SoC and builds its Verilator simulator once (both
//! cached until the pins or the SoC's options change), builds the firmware's `litex`
//! platform (`riscv32im`) from the SoC's own `csr.csv`, and runs every job of `nic_jobs` (the
//! same windows `fw-test` runs in QEMU): the firmware goes into the SoC's ROM image and the
//! job's window into its main RAM image, the simulator runs until the firmware ends it, and
//! the window it sends back over the UART is judged like QEMU's. Prints `N passed, M failed`,
//! then the figures: cycles per 1350-byte datagram sealed and opened, each suite, what one
//! core would sustain at FPGA clocks, and the firmware's ROM and RAM.
//!
//! Then the same jobs on Renode (`renode`, below) where its test runner is on PATH; its
//! platform description is checked against the generated SoC everywhere.
//!
//! Skips, saying so, only where Verilator is missing and cannot be installed (not root).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::nic_jobs::{self, Job};

mod renode;
use crate::{apt, baremetal, run as run_command, workspace_root};

const TARGET: &str = "riscv32im-unknown-none-elf";
const APT_PACKAGES: [&str; 5] = [
    "verilator",
    "libevent-dev",
    "libjson-c-dev",
    "zlib1g-dev",
    "binutils-riscv64-unknown-elf",
];

/// The script that describes the SoC: LiteX's simulation target (`litex_sim`'s options) with
/// a LiteEth MAC whose transmit side is wired to its receive side, the NIC's port.
const SOC_SCRIPT: &str = "targets/smartnic-fw/litex/quicseal_nic_soc.py";

/// The SoC's options: the standard VexRiscv (RV32IM, caches), no BIOS (the firmware is the
/// ROM image, run from the reset address), 512 KB of ROM, 256 KB of SRAM for the firmware's
/// data and stack, and 1 MB of main RAM for the window. `--sim-debug` adds the register that
/// ends the simulation.
const SOC_OPTIONS: [&str; 9] = [
    "--cpu-type=vexriscv",
    "--cpu-variant=standard",
    "--integrated-rom-size=0x80000",
    "--integrated-sram-size=0x40000",
    "--integrated-main-ram-size=0x100000",
    "--sim-debug",
    "--non-interactive",
    "--no-compile-software",
    "--no-compile-gateware",
];

/// Longest one job may take: the slowest takes about 30 seconds at the simulator's ~2 M
/// cycles a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// FPGA clocks a soft core like this one runs at, for the figures.
const CLOCKS_MHZ: [u32; 2] = [100, 200];
/// Port speeds, for the figures: how many such cores each would need.
const PORTS_GBPS: [u32; 3] = [10, 25, 100];

pub fn run() -> crate::Result {
    let started = Instant::now();
    if !verilator_available() && !apt::is_root() {
        eprintln!(
            "fpga-test: SKIPPED: Verilator is not installed and only root can install it here \
             (apt-get install {})",
            APT_PACKAGES.join(" ")
        );
        return Ok(());
    }
    apt::ensure("fpga-test", &APT_PACKAGES)?;
    let version = baremetal::debian_toolchain()?;
    let root = workspace_root();
    let dir = root.join("target/fpga");
    let venv = venv(&root, &dir)?;
    let soc = Soc::build(&root, &dir, &venv)?;
    eprintln!("fpga-test: building the firmware for the SoC ({version})");
    let firmware = compile(&root, &soc)?;
    let rom = rom_image(&firmware, &soc, &dir)?;
    let jobs = nic_jobs::all(&root)?;
    let scratch = dir.join("jobs");
    let _ = fs::remove_dir_all(&scratch);
    // The simulator runs on one core: as many at once as there are cores.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(jobs.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else { break };
                    let job_started = Instant::now();
                    let result =
                        simulate(&soc, &rom.init, &scratch.join(&job.name), job).map(|run| {
                            let verdict = nic_jobs::judge(job, &run.window);
                            (run, verdict)
                        });
                    let said = match &result {
                        Ok((_, verdict)) if verdict.problems.is_empty() => {
                            format!("{} checks ok", verdict.checks)
                        }
                        Ok((_, verdict)) => {
                            format!("FAILED\n    {}", verdict.problems.join("\n    "))
                        }
                        Err(e) => format!("FAILED: {e}"),
                    };
                    eprintln!(
                        "[vexriscv {}/{}] {}: {said} ({:.1?})",
                        index + 1,
                        jobs.len(),
                        job.name,
                        job_started.elapsed()
                    );
                    if let Ok(mut results) = results.lock() {
                        results[index] = Some(result);
                    }
                }
            });
        }
    });
    let (mut passed, mut failed, mut deepest) = (0, 0, 0);
    let mut summary = Vec::new();
    let results = results
        .into_inner()
        .map_err(|_| "a simulation thread panicked")?;
    for (job, result) in jobs.iter().zip(results) {
        let (run, verdict) = result.ok_or("a job was never run")??;
        deepest = deepest.max(run.stack);
        failed += verdict.problems.len();
        passed += verdict.checks.saturating_sub(verdict.problems.len());
        for (suite, operation, cycles) in nic_jobs::measured(job, &verdict.done) {
            summary.push(nic_jobs::figure_line(
                "vexriscv", suite, operation, cycles, "cycles",
            ));
            if operation == "seal" {
                summary.push(sustained(suite, cycles));
            }
        }
    }
    let platform_problems = renode::check_platform(&root, &soc)?;
    passed += usize::from(platform_problems.is_empty());
    failed += platform_problems.len();
    for problem in &platform_problems {
        eprintln!("fpga-test: FAILED: {problem}");
    }
    if renode::available() {
        // Renode's platform has no MAC: the port jobs are the RTL's alone.
        let jobs: Vec<&Job> = jobs
            .iter()
            .filter(|job| !job.name.starts_with(nic_jobs::PORT_JOB))
            .collect();
        for (index, job) in jobs.iter().enumerate() {
            let verdict = renode::run(&root, &firmware, &scratch.join(&job.name), job)?;
            eprintln!(
                "[renode {}/{}] {}: {}",
                index + 1,
                jobs.len(),
                job.name,
                if verdict.problems.is_empty() {
                    format!("{} checks ok", verdict.checks)
                } else {
                    format!("FAILED\n    {}", verdict.problems.join("\n    "))
                }
            );
            failed += verdict.problems.len();
            passed += verdict.checks.saturating_sub(verdict.problems.len());
        }
    } else {
        eprintln!(
            "fpga-test: Renode: SKIPPED, `renode-test` is not on PATH (Renode cannot be \
             installed from the registries here); its platform description was checked \
             against the SoC ({})",
            renode::PLATFORM
        );
    }
    summary.push(format!(
        "vexriscv: firmware {} bytes of ROM ({} KB); RAM {} bytes static and a stack high-water \
         mark of {deepest} bytes (by painting)",
        rom.bytes,
        rom.bytes.div_ceil(1024),
        rom.static_ram
    ));
    for line in summary {
        eprintln!("fpga-test: {line}");
    }
    eprintln!(
        "fpga-test: {passed} passed, {failed} failed ({} jobs on a LiteX VexRiscv SoC in \
         Verilator; {:.1?})",
        jobs.len(),
        started.elapsed()
    );
    if failed > 0 {
        return Err(format!("{failed} checks failed on the LiteX SoC"));
    }
    Ok(())
}

/// What one core at FPGA clocks would sustain sealing datagrams of this cost, and the
/// cores a port would need.
fn sustained(suite: &str, cycles: u32) -> String {
    let bits = (nic_jobs::FIGURE_SIZE * 8) as f64;
    let at = |mhz: u32| f64::from(mhz) * 1e6 / f64::from(cycles);
    let [slow, fast] = CLOCKS_MHZ.map(at);
    let cores = |packets: f64| {
        PORTS_GBPS
            .map(|gbps| format!("{:.0}", (f64::from(gbps) * 1e9 / bits / packets).ceil()))
            .join("/")
    };
    format!(
        "vexriscv: {suite} sealing 1350 B at {}-{} MHz: {slow:.0}-{fast:.0} packets/s a core \
         ({:.1}-{:.1} Mb/s); a {} Gb/s port needs {} cores at {} MHz, {} at {} MHz",
        CLOCKS_MHZ[0],
        CLOCKS_MHZ[1],
        slow * bits / 1e6,
        fast * bits / 1e6,
        PORTS_GBPS.map(|g| g.to_string()).join("/"),
        cores(slow),
        CLOCKS_MHZ[0],
        cores(fast),
        CLOCKS_MHZ[1],
    )
}

fn verilator_available() -> bool {
    Command::new("verilator")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv with the pinned LiteX packages, made or brought up to the pins when they
/// changed. Returns its `bin` directory.
fn venv(root: &Path, dir: &Path) -> crate::Result<PathBuf> {
    let requirements = root.join("targets/smartnic-fw/litex/requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let venv = dir.join("venv");
    let marker = venv.join("quicseal-requirements.txt");
    let bin = venv.join("bin");
    if fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    eprintln!(
        "fpga-test: installing the pinned LiteX packages into {}",
        venv.display()
    );
    let _ = fs::remove_dir_all(&venv);
    run_command(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run_command(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )
    .map_err(|e| format!("pip could not install the LiteX packages: {e}"))?;
    fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(bin)
}

/// The generated SoC and its built simulator.
struct Soc {
    /// LiteX's output directory.
    dir: PathBuf,
    /// Its `csr.csv`: registers and memory regions.
    csr_csv: PathBuf,
}

impl Soc {
    /// Generates the SoC and builds its simulator, unless the cached one was made from the
    /// same script, options and pins.
    fn build(root: &Path, dir: &Path, venv: &Path) -> crate::Result<Soc> {
        let soc = Soc {
            dir: dir.join("soc"),
            csr_csv: dir.join("soc/csr.csv"),
        };
        let pins = fs::read_to_string(venv.join("../quicseal-requirements.txt"))
            .map_err(|e| e.to_string())?;
        let script = root.join(SOC_SCRIPT);
        let description =
            fs::read_to_string(&script).map_err(|e| format!("{}: {e}", script.display()))?;
        let made_from = format!("{description}\n{}\n{pins}", SOC_OPTIONS.join(" "));
        let marker = soc.dir.join("quicseal-made-from.txt");
        if fs::read_to_string(&marker).ok().as_deref() == Some(made_from.as_str())
            && soc.simulator().is_file()
        {
            return Ok(soc);
        }
        let _ = fs::remove_dir_all(&soc.dir);
        fs::create_dir_all(&soc.dir).map_err(|e| e.to_string())?;
        // Placeholders: with an initial image LiteX builds no BIOS for the ROM and gives main
        // RAM an image file. Each run writes its own images over them.
        let placeholder = soc.dir.join("placeholder.bin");
        fs::write(&placeholder, [0; 4]).map_err(|e| e.to_string())?;
        let path = format!(
            "{}:{}",
            venv.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        eprintln!(
            "fpga-test: generating the SoC ({SOC_SCRIPT} {})",
            SOC_OPTIONS.join(" ")
        );
        let generated = Command::new(venv.join("python3"))
            .arg(&script)
            .args(SOC_OPTIONS)
            .arg(format!("--rom-init={}", placeholder.display()))
            .arg(format!("--ram-init={}", placeholder.display()))
            .arg("--output-dir")
            .arg(&soc.dir)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{SOC_SCRIPT}: {e}"))?;
        fs::write(soc.dir.join("generate.log"), &generated.stdout).map_err(|e| e.to_string())?;
        if !generated.status.success() {
            return Err(format!(
                "{SOC_SCRIPT} failed ({}): {}",
                generated.status,
                String::from_utf8_lossy(&generated.stderr)
            ));
        }
        eprintln!("fpga-test: building the simulator with Verilator (about a minute)");
        let built = Command::new("bash")
            .arg("build_sim.sh")
            .current_dir(soc.dir.join("gateware"))
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("build_sim.sh: {e}"))?;
        fs::write(soc.dir.join("build.log"), &built.stdout).map_err(|e| e.to_string())?;
        if !built.status.success() || !soc.simulator().is_file() {
            return Err(format!(
                "Verilator could not build the simulator ({}), see {}: {}",
                built.status,
                soc.dir.join("build.log").display(),
                String::from_utf8_lossy(&built.stderr)
            ));
        }
        fs::write(&marker, made_from).map_err(|e| e.to_string())?;
        Ok(soc)
    }

    fn gateware(&self) -> PathBuf {
        self.dir.join("gateware")
    }

    fn simulator(&self) -> PathBuf {
        self.gateware().join("obj_dir/Vsim")
    }

    /// `(origin, size)` of a memory region in csr.csv.
    fn region(&self, name: &str) -> crate::Result<(u64, u64)> {
        match self.lookup("memory_region", name)?[..] {
            [origin, size, ..] => Ok((origin, size)),
            _ => Err(format!("csr.csv: memory region {name} has no size")),
        }
    }

    /// The base address of a peripheral's registers in csr.csv.
    fn csr_base(&self, name: &str) -> crate::Result<u64> {
        self.lookup("csr_base", name)?
            .first()
            .copied()
            .ok_or_else(|| format!("csr.csv: {name} has no base address"))
    }

    /// The numbers on csr.csv's line of this kind and name.
    fn lookup(&self, kind: &str, name: &str) -> crate::Result<Vec<u64>> {
        let text = fs::read_to_string(&self.csr_csv).map_err(|e| e.to_string())?;
        text.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.len() > 2 && fields[0] == kind && fields[1] == name)
            .map(|fields| fields[2..].iter().map_while(|f| number(f)).collect())
            .ok_or_else(|| format!("{} has no {kind} {name}", self.csr_csv.display()))
    }
}

/// A decimal or `0x` hexadecimal number.
fn number(field: &str) -> Option<u64> {
    match field.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => field.parse().ok(),
    }
}

/// Builds the firmware's `litex` platform for the SoC (its build script reads the SoC's
/// csr.csv).
fn compile(root: &Path, soc: &Soc) -> crate::Result<PathBuf> {
    let crate_dir = root.join("targets/smartnic-fw/firmware");
    let target_dir = root.join("target/smartnic-fw/litex");
    let mut command = baremetal::debian_cargo(&crate_dir);
    command
        .env("LITEX_CSR_CSV", &soc.csr_csv)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            TARGET,
        ])
        .args(["--no-default-features", "--features", "litex"])
        .arg("--target-dir")
        .arg(&target_dir);
    run_command(&mut command).map_err(|e| format!("LiteX firmware build failed: {e}"))?;
    Ok(target_dir.join(TARGET).join("release/quicseal-nic-fw"))
}

/// The firmware as the SoC's ROM image.
struct Rom {
    /// The image in LiteX's format.
    init: PathBuf,
    /// Bytes of ROM the firmware takes: code, constants and the data's initial values.
    bytes: usize,
    /// Bytes of SRAM its statics take (data and bss; the stack comes after).
    static_ram: u64,
}

fn rom_image(firmware: &Path, soc: &Soc, dir: &Path) -> crate::Result<Rom> {
    let binary = dir.join("firmware.bin");
    run_command(
        Command::new("riscv64-unknown-elf-objcopy")
            .args(["-O", "binary"])
            .arg(firmware)
            .arg(&binary),
    )?;
    let image = fs::read(&binary).map_err(|e| e.to_string())?;
    let (_, rom_size) = soc.region("rom")?;
    if image.len() as u64 > rom_size {
        return Err(format!(
            "the firmware takes {} bytes, more than the SoC's {rom_size} of ROM",
            image.len()
        ));
    }
    let init = dir.join("firmware.init");
    fs::write(&init, memory_image(&image)).map_err(|e| e.to_string())?;
    let (sram, _) = soc.region("sram")?;
    let end_of_statics = symbol(firmware, "__ebss")?;
    Ok(Rom {
        init,
        bytes: image.len(),
        static_ram: end_of_statics.saturating_sub(sram),
    })
}

/// A symbol's address in an ELF.
fn symbol(elf: &Path, name: &str) -> crate::Result<u64> {
    let output = Command::new("riscv64-unknown-elf-nm")
        .arg(elf)
        .output()
        .map_err(|e| format!("riscv64-unknown-elf-nm: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [address, _, symbol] if symbol == name => u64::from_str_radix(address, 16).ok(),
                _ => None,
            },
        )
        .ok_or_else(|| format!("{} has no symbol {name}", elf.display()))
}

/// Bytes as the simulator's `$readmemh` wants them: a 32-bit little-endian word a line, in
/// hex.
fn memory_image(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(|chunk| {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            format!("{:08x}\n", u32::from_le_bytes(word))
        })
        .collect()
}

/// A job's run and its verdict, or why it could not run.
type Outcome = crate::Result<(Run, nic_jobs::Verdict)>;

/// What one run of the simulator sent back.
struct Run {
    window: Vec<u8>,
    stack: usize,
}

/// Runs the simulator on `job` in `dir`: the simulator reads its memory images and plugin
/// modules from its working directory, so each job gets one with the SoC's files linked in
/// and its own main RAM image.
fn simulate(soc: &Soc, rom: &Path, dir: &Path, job: &Job) -> crate::Result<Run> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let gateware = soc.gateware();
    for shared in ["modules", "sim_config.js", "sim_mem.init", "sim_sram.init"] {
        symlink(gateware.join(shared), dir.join(shared)).map_err(|e| e.to_string())?;
    }
    symlink(rom, dir.join("sim_rom.init")).map_err(|e| e.to_string())?;
    fs::write(dir.join("sim_main_ram.init"), memory_image(&job.window))
        .map_err(|e| e.to_string())?;
    let uart = fs::File::create(dir.join("uart.txt")).map_err(|e| e.to_string())?;
    let log = fs::File::create(dir.join("simulator.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(soc.simulator())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(uart)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", soc.simulator().display()))?;
    let Some(status) = crate::wait_at_most(&mut child, RUN_TIMEOUT)? else {
        return Err(format!(
            "{}: the firmware ran longer than {RUN_TIMEOUT:?}; its UART output is in {}",
            job.name,
            dir.join("uart.txt").display()
        ));
    };
    let text = fs::read_to_string(dir.join("uart.txt")).map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{}: the simulator exited with {status}", job.name));
    }
    parse_uart(&text, job.window.len()).map_err(|e| {
        format!(
            "{}: {e} (UART output in {})",
            job.name,
            dir.join("uart.txt").display()
        )
    })
}

/// The firmware's report (src/platform/litex.rs): `W` lines rebuild the window, `S` is the
/// stack figure, `E` the outcome, which must be 0 (served).
fn parse_uart(text: &str, len: usize) -> Result<Run, String> {
    let mut window = vec![0; len];
    // Which bytes came back: a line sent twice must not count twice.
    let mut came = vec![false; len];
    let (mut stack, mut outcome) = (None, None);
    for line in text.lines() {
        let mut fields = line.split(' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("W"), Some(offset), Some(hex)) => {
                let at = usize::from_str_radix(offset, 16)
                    .map_err(|_| format!("bad offset in {line:?}"))?;
                let bytes = crate::kernel::unhex(hex).map_err(|_| format!("bad {line:?}"))?;
                let outside = || format!("{line:?} lies outside the {len}-byte window");
                let end = at.checked_add(bytes.len()).ok_or_else(outside)?;
                window
                    .get_mut(at..end)
                    .ok_or_else(outside)?
                    .copy_from_slice(&bytes);
                came[at..end].fill(true);
            }
            (Some("S"), Some(bytes), None) => stack = bytes.parse().ok(),
            (Some("E"), Some(code), None) => outcome = code.parse::<u32>().ok(),
            _ => {}
        }
    }
    match outcome {
        Some(0) => {}
        Some(code) => return Err(format!("the firmware ended with outcome {code}")),
        None => return Err("the firmware never reported an outcome".to_string()),
    }
    let covered = came.iter().filter(|&&came| came).count();
    if covered != len {
        return Err(format!("{covered} of the window's {len} bytes came back"));
    }
    Ok(Run {
        window,
        stack: stack.ok_or("no stack figure")?,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_uart;

    #[test]
    fn the_uart_report_rebuilds_the_window() {
        let text = "[clocker] loaded\nW 00000000 00010203\nW 00000004 0405\nS 1200\nE 0\n";
        let run = parse_uart(text, 6).expect("a whole report");
        assert_eq!(run.window, [0, 1, 2, 3, 4, 5]);
        assert_eq!(run.stack, 1200);
    }

    #[test]
    fn an_incomplete_or_failed_report_is_refused() {
        let whole = "W 00000000 0001\nS 8\nE 0\n";
        assert!(parse_uart(whole, 2).is_ok());
        // Bytes missing, bytes past the window, a bad line, no outcome, a panic.
        assert!(parse_uart(whole, 3).is_err());
        assert!(parse_uart("W 00000001 0001\nS 8\nE 0\n", 2).is_err());
        assert!(parse_uart("W 00000000 0x01\nS 8\nE 0\n", 2).is_err());
        assert!(parse_uart("W 00000000 0001\nS 8\n", 2).is_err());
        assert!(parse_uart("W 00000000 0001\nS 0\nE 101\n", 2).is_err());
        // A line sent twice covers its bytes once; an offset near the top of the range.
        assert!(parse_uart("W 00000000 00\nW 00000000 00\nS 8\nE 0\n", 2).is_err());
        assert!(parse_uart("W ffffffffffffffff 0001\nS 8\nE 0\n", 2).is_err());
    }
}
