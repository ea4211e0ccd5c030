//! `cargo xtask <command>`: builds and runs what cargo alone cannot.
//!
//! - `cargo xtask test`: every check the project has, in the order CI runs them.
//! - `cargo xtask demo`: the main job on its embedded default.
//! - `cargo xtask vectors [--check]`: regenerate `vectors/*.json` with an independent
//!   implementation (ring), or check that the committed files match what it generates.
//! - `cargo xtask baremetal`: build the core for bare-metal targets with Debian's compiler.
//! - `cargo xtask kernel-test`: build the kernel module and run its selftest in a VM.
//! - `cargo xtask fw-test`: build the SmartNIC firmware and check it against the vectors in
//!   QEMU, beside the same engine on the host.
//! - `cargo xtask capi [--update-header]`: build the C ABI and run the C test program against
//!   the vectors (under valgrind too), or regenerate its header.
//! - `cargo xtask fuzz [--runs N] [target]`: build the cargo-fuzz targets in `fuzz/` and run
//!   each a fixed number of times (20000 by default) from a fixed seed.
//! - `cargo xtask bench [--quick]`: measure packet protection against ring, aws-lc-rs and
//!   RustCrypto, then the userspace datapath (sealed against unsealed traffic over loopback),
//!   rewriting their sections of `docs/performance.md` and their figures; `--quick` measures
//!   packet protection only, with fewer samples, writes nothing, and ends with one summary
//!   line per suite and operation.

mod apt;
mod baremetal;
mod bench;
mod capi;
mod firmware;
mod fpga;
mod fuzz;
mod kernel;
mod nic_jobs;
mod vectors;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use quicseal::backend::Implementation;

type Result<T = ()> = std::result::Result<T, String>;

/// A named check of `cargo xtask test`.
type Step = (&'static str, fn() -> Result);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("vectors") => vectors::run(&args[1..]),
        Some("baremetal") => baremetal::run(),
        Some("capi") => capi::run(&args[1..]),
        Some("kernel-test") => kernel::run(),
        Some("fw-test") => firmware::run(),
        Some("fpga-test") => fpga::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = concat!(
    "usage: cargo xtask <test | demo | vectors [--check] | baremetal | capi [--update-header]",
    " | kernel-test | fw-test | fpga-test | bench [--quick] | fuzz [--runs N] [target]>"
);

/// Runs every check, one step at a time, and says how long each took.
fn test() -> Result {
    let steps: [Step; 13] = [
        ("format", || cargo(&["fmt", "--all", "--", "--check"])),
        ("lint", || {
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])
        }),
        ("unit, property and vector tests", || {
            cargo(&["test", "--workspace", "--all-features"])
        }),
        (
            "core tests under each implementation this CPU has",
            every_implementation,
        ),
        ("vectors match their generator", || {
            vectors::run(&["--check".to_string()])
        }),
        ("fuzz smoke (cargo-fuzz, 20000 runs per target)", || {
            fuzz::smoke(&fuzz::TARGETS, fuzz::DEFAULT_RUNS)
        }),
        ("bare-metal builds", baremetal::run),
        ("C ABI", || capi::run(&[])),
        ("kernel module in a VM", kernel::run),
        ("SmartNIC firmware in QEMU", firmware::run),
        ("SmartNIC firmware on a LiteX SoC in Verilator", fpga::run),
        (
            "quinn connections through quicseal (release: 52 MB each way)",
            || {
                cargo(&[
                    "test",
                    "--release",
                    "--package",
                    "quicseal-quinn",
                    "--test",
                    "connection",
                ])
            },
        ),
        ("userspace demo over loopback (release)", || {
            cargo(&[
                "run",
                "--release",
                "--quiet",
                "--package",
                "quicseal-cli",
                "--",
                "demo",
            ])
        }),
    ];
    let total = Instant::now();
    for (index, (name, step)) in steps.iter().enumerate() {
        eprintln!("==> [{}/{}] {name}", index + 1, steps.len());
        let started = Instant::now();
        step().map_err(|e| format!("step '{name}' failed: {e}"))?;
        eprintln!(
            "==> [{}/{}] {name}: ok in {:.1?}",
            index + 1,
            steps.len(),
            started.elapsed()
        );
    }
    eprintln!(
        "==> all {} steps passed in {:.1?}",
        steps.len(),
        total.elapsed()
    );
    Ok(())
}

/// Runs the core's tests once per implementation the CPU can run besides the detected one
/// (which the workspace step already tested), forced with `QUICSEAL_BACKEND`: every backend
/// is checked against the one-shot crates, the vectors and ring on every run.
fn every_implementation() -> Result {
    let detected = Implementation::detected();
    eprintln!("    detected: {}", detected.name());
    for implementation in Implementation::ALL {
        if implementation == detected || !implementation.available() {
            continue;
        }
        eprintln!("    QUICSEAL_BACKEND={}", implementation.name());
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            .args(["test", "--package", "quicseal", "--all-features", "--quiet"])
            .env("QUICSEAL_BACKEND", implementation.name())
            .current_dir(workspace_root()))?;
    }
    Ok(())
}

/// The main job on its embedded default: a sealed stream over loopback, GSO out and GRO in,
/// with a key update half way (`quicseal demo`, release build).
fn demo() -> Result {
    cargo(&[
        "run",
        "--release",
        "--quiet",
        "--package",
        "quicseal-cli",
        "--",
        "demo",
    ])
}

/// Runs the cargo that runs us, with `args`, from the workspace root.
fn cargo(args: &[&str]) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(args).current_dir(workspace_root()))
}

/// Runs `command` with inherited output; fails on a non-zero exit.
fn run(command: &mut Command) -> Result {
    let status = command
        .status()
        .map_err(|e| format!("could not start {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} exited with {status}", command.get_program()))
    }
}

/// Waits for `child` for at most `limit`, polling; past it, kills it and returns `None`. A
/// child started in a process group of its own (`CommandExt::process_group(0)`) is killed
/// with its whole group, so that what a wrapper script started dies with it.
fn wait_at_most(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Some(status));
        }
        if started.elapsed() > limit {
            // Fails harmlessly for a child that leads no group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Duration;

    #[test]
    fn a_timeout_kills_the_childs_whole_process_group() {
        let pid_file =
            std::env::temp_dir().join(format!("quicseal-xtask-group-{}", std::process::id()));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("sleep 30 & echo $! > {}; wait", pid_file.display()))
            .process_group(0)
            .spawn()
            .expect("sh runs");
        let grandchild = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let outcome = super::wait_at_most(&mut child, Duration::from_millis(200)).expect("waited");
        assert!(outcome.is_none(), "timed out");
        // The sleep the shell started is gone too (a zombie at most, until init reaps it).
        std::thread::sleep(Duration::from_millis(200));
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z "), "{state}");
        let _ = std::fs::remove_file(&pid_file);
    }
}
