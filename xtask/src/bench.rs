//! `cargo xtask bench [--quick]`: the benchmarks, with release builds.
//!
//! 1. Packet protection (`cargo bench -p quicseal --features std --bench protect`): quicseal
//!    against ring, aws-lc-rs and RustCrypto, which rewrites its section of
//!    `docs/performance.md` and `docs/protect.svg`.
//! 2. Many connections (`cargo bench -p quicseal --features std --bench flows`): opening
//!    through a flow table of 1, 1 000 and 65 536 connections, one datagram at a time and in
//!    bursts, which rewrites its section.
//! 3. The userspace datapath (`quicseal bench`): sealed against unsealed traffic over
//!    loopback, which rewrites its section and the CSV beside the figure; then a matplotlib
//!    script draws the figure from the CSV.
//!
//! `--quick` runs the first with fewer samples and writes nothing; like the full run, it ends
//! with the packet-protection summary lines (one per suite, sealing).

use std::process::Command;

use crate::{Result, cargo, workspace_root};

const CSV: &str = "docs/figures/userspace-datapath.csv";
const FIGURE: &str = "docs/figures/userspace-datapath.png";

/// Runs one of the core's benchmarks with `flag`. `std` lets `QUICSEAL_BACKEND` pick the
/// implementation, as everywhere else.
fn core_bench(name: &str, flag: &str) -> Result {
    cargo(&[
        "bench",
        "--package",
        "quicseal",
        "--features",
        "std",
        "--bench",
        name,
        "--",
        flag,
    ])
}

/// Runs `python3` with `args` in the workspace; what it runs here draws the figure, with
/// matplotlib.
fn python(args: &[&str]) -> Result {
    crate::run(
        Command::new("python3")
            .args(args)
            .current_dir(workspace_root()),
    )
    .map_err(|e| {
        format!("{e}: drawing the figure needs python3 and matplotlib (pip install matplotlib)")
    })
}

pub fn run(args: &[String]) -> Result {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err("usage: cargo xtask bench [--quick]".into()),
    };
    if quick {
        return core_bench("protect", "--quick");
    }
    // The figure comes last, after about ten minutes of runs: its tools are checked first.
    python(&["-c", "import matplotlib"])?;
    core_bench("protect", "--write-docs")?;
    core_bench("flows", "--write-docs")?;
    cargo(&[
        "run",
        "--release",
        "--quiet",
        "--package",
        "quicseal-cli",
        "--",
        "bench",
        "--markdown",
        "docs/performance.md",
        "--csv",
        CSV,
    ])?;
    python(&["targets/cli/bench/plot.py", CSV, FIGURE])?;
    // The summary lines last, as with --quick, from the section just written (the rest of
    // the report quotes other machines' runs in the same form).
    let report = std::fs::read_to_string(workspace_root().join("docs/performance.md"))
        .map_err(|e| format!("reading docs/performance.md: {e}"))?;
    for line in report
        .lines()
        .skip_while(|l| !l.starts_with("<!-- BEGIN packet-protection"))
        .take_while(|l| !l.starts_with("<!-- END packet-protection"))
        .filter(|l| l.contains(" B seal+HP: "))
    {
        println!("{line}");
    }
    Ok(())
}
