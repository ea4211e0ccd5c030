//! `cargo xtask fw-test`: the SmartNIC firmware (targets/smartnic-fw/firmware) in QEMU.
//!
//! Builds the firmware for `riscv32imac-unknown-none-elf` with Debian's compiler, then runs
//! it once per job of `nic_jobs` (a shared window built from a vector file, of bad
//! descriptors, or for the figures), handed to the firmware as `window.bin` through
//! semihosting and read back from `window.out`, and judged there: the same bytes as the host
//! engine's, and every completion as the vectors say. Each run's defmt log is decoded and
//! must have the served line and, for bad descriptors, a warning per refusal.
//! QEMU runs with `-icount shift=0`, so `minstret` counts instructions deterministically: the
//! completions' counts give the instructions per byte this prints at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::nic_jobs::{self, BAD_DESCRIPTORS, Job};
use crate::{apt, baremetal, run as run_command, workspace_root};

const TARGET: &str = "riscv32imac-unknown-none-elf";
const APT_PACKAGES: [&str; 2] = ["qemu-system-misc", "binutils-riscv64-unknown-elf"];
/// Longest a firmware run may take (each takes well under a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A firmware build: the portable one, and one for a core with the scalar-crypto extensions.
struct Build {
    name: &'static str,
    /// Target features added to the crate's own rustflags (cargo appends `--config` arrays).
    target_features: Option<&'static str>,
    /// QEMU's `-cpu`: the extensions the simulated core has.
    cpu: &'static str,
}

const BUILDS: [Build; 2] = [
    Build {
        name: "portable",
        target_features: None,
        cpu: "rv32",
    },
    Build {
        name: "scalar-crypto",
        target_features: Some("+zkne,+zbkc,+zbkb"),
        cpu: "rv32,zkne=true,zbkc=true,zbkb=true",
    },
];

pub fn run() -> crate::Result {
    let started = Instant::now();
    apt::ensure("fw-test", &APT_PACKAGES)?;
    let version = baremetal::debian_toolchain()?;
    let root = workspace_root();
    let decoder = defmt_print()?;
    let jobs = nic_jobs::all(&root)?;
    let (mut passed, mut failed) = (0, 0);
    let mut summary = Vec::new();
    for build in &BUILDS {
        eprintln!("fw-test: building the {} firmware ({version})", build.name);
        let firmware = compile(&root, build)?;
        let scratch = root.join("target/smartnic-fw/jobs").join(build.name);
        let _ = fs::remove_dir_all(&scratch);
        let mut deepest = 0;
        for (index, job) in jobs.iter().enumerate() {
            eprint!(
                "[{} {}/{}] {} ... ",
                build.name,
                index + 1,
                jobs.len(),
                job.name
            );
            let dir = scratch.join(&job.name);
            let (simulated, stack) = simulate(&firmware, build, &dir, &job.window)?;
            deepest = deepest.max(stack);
            let nic_jobs::Verdict {
                checks,
                mut problems,
                done,
            } = nic_jobs::judge(job, &simulated);
            let log = decode_log(&decoder, &firmware, &dir)?;
            let expected = expected_log(job);
            for (what, line) in &expected {
                if !log.lines().any(|l| l.contains(line)) {
                    problems.push(format!(
                        "log: no line with \"{line}\" ({what}); the log:\n{log}"
                    ));
                }
            }
            let checks = checks + expected.len();
            failed += problems.len();
            passed += checks.saturating_sub(problems.len());
            if problems.is_empty() {
                eprintln!("{checks} checks ok");
            } else {
                eprintln!("FAILED");
                for problem in &problems {
                    eprintln!("    {problem}");
                }
            }
            for (suite, operation, spent) in nic_jobs::measured(job, &done) {
                summary.push(nic_jobs::figure_line(
                    build.name,
                    suite,
                    operation,
                    spent,
                    "instructions",
                ));
            }
        }
        summary.push(format!(
            "{}: stack high-water mark {deepest} bytes below main (the deepest job, by painting)",
            build.name
        ));
        let (ok, problems) = host_driver(&firmware, build)?;
        passed += ok;
        failed += problems;
    }
    for line in summary {
        eprintln!("fw-test: {line}");
    }
    eprintln!(
        "fw-test: {passed} passed, {failed} failed ({} jobs, {} builds, in QEMU; {:.1?})",
        jobs.len(),
        BUILDS.len(),
        started.elapsed()
    );
    if failed > 0 {
        return Err(format!("{failed} firmware checks failed"));
    }
    Ok(())
}

/// The host's side end to end: the `offload` example of `quicseal-nic-host` drives the
/// firmware in QEMU through its rings, a window a run, and checks what comes back against
/// the core. Returns the suites that passed and failed.
fn host_driver(firmware: &Path, build: &Build) -> crate::Result<(usize, usize)> {
    eprintln!("[{}] the host driver's offload example ...", build.name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "-p",
            "quicseal-nic-host",
            "--example",
            "offload",
            "--",
        ])
        .arg(firmware)
        .arg(build.cpu)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cargo run --example offload: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let failed = text.lines().filter(|line| line.contains("FAILED")).count();
    let passed = text.lines().count() - failed;
    for line in text.lines() {
        eprintln!("    {line}");
    }
    if !output.status.success() && failed == 0 {
        return Err(format!(
            "the offload example failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok((passed, failed))
}

/// The defmt decoder from crates.io, installed with the host's cargo if missing.
fn defmt_print() -> crate::Result<PathBuf> {
    let installed = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let path = home.join("bin/defmt-print");
    if !installed(&path) {
        eprintln!(
            "fw-test: defmt-print missing, installing it (cargo install defmt-print --locked)"
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run_command(Command::new(cargo).args([
            "install",
            "defmt-print",
            "--version",
            "^1",
            "--locked",
        ]))?;
    }
    Ok(path)
}

/// The firmware's defmt log of a run, decoded.
fn decode_log(decoder: &Path, firmware: &Path, dir: &Path) -> crate::Result<String> {
    let frames = fs::read(dir.join("defmt.bin")).map_err(|e| format!("defmt.bin: {e}"))?;
    let mut child = Command::new(decoder)
        .arg("-e")
        .arg(firmware)
        .arg("stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("defmt-print: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, &frames).map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Lines the job's log must have: that the window was served, and a warning for each
/// descriptor refused as a whole.
fn expected_log(job: &Job) -> Vec<(String, String)> {
    let mut lines = vec![(
        "window served".to_string(),
        format!("window of {} bytes served: status 0x0", job.window.len()),
    )];
    if job.name == BAD_DESCRIPTORS {
        lines.extend(job.refusals().map(|(what, cookie, status)| {
            (
                what.to_string(),
                format!("descriptor {cookie:#x} refused: status {status:#x}"),
            )
        }));
    }
    lines
}

/// Builds the firmware ELF with Debian's cargo from inside its crate (whose
/// .cargo/config.toml names the target, build-std and the linker), each build in a target
/// directory of its own.
fn compile(root: &Path, build: &Build) -> crate::Result<PathBuf> {
    let crate_dir = root.join("targets/smartnic-fw/firmware");
    let target_dir = root.join("target/smartnic-fw").join(build.name);
    let mut command = baremetal::debian_cargo(&crate_dir);
    command
        .env("DEFMT_LOG", "info")
        .args(["build", "--release", "--locked", "--quiet"]);
    if let Some(features) = build.target_features {
        command.arg("--config").arg(format!(
            "target.{TARGET}.rustflags=[\"-C\", \"target-feature={features}\"]"
        ));
    }
    command.arg("--target-dir").arg(&target_dir);
    run_command(&mut command).map_err(|e| format!("{} firmware build failed: {e}", build.name))?;
    Ok(target_dir.join(TARGET).join("release/quicseal-nic-fw"))
}

/// Runs the firmware on `window` in QEMU; returns the window it wrote back and the bytes of
/// stack it used.
fn simulate(
    firmware: &Path,
    build: &Build,
    dir: &Path,
    window: &[u8],
) -> crate::Result<(Vec<u8>, usize)> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::write(dir.join("window.bin"), window).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(dir.join("window.out"));
    let mut child = Command::new("qemu-system-riscv32")
        .args([
            "-machine",
            "virt",
            "-cpu",
            build.cpu,
            "-bios",
            "none",
            "-nographic",
        ])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(["-icount", "shift=0", "-kernel"])
        .arg(firmware)
        .current_dir(dir)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("qemu-system-riscv32: {e}"))?;
    let Some(status) = crate::wait_at_most(&mut child, RUN_TIMEOUT)? else {
        return Err(format!("the firmware ran longer than {RUN_TIMEOUT:?}"));
    };
    if !status.success() {
        return Err(format!("the firmware exited with {status}"));
    }
    let window = fs::read(dir.join("window.out")).map_err(|e| format!("window.out: {e}"))?;
    let stack = fs::read_to_string(dir.join("stack.txt"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or("the firmware wrote no stack.txt")?;
    Ok((window, stack))
}
