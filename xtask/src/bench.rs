//! `cargo xtask bench`: the userspace datapath benchmark, with a release build.
//!
//! `quicseal bench` measures sealed against unsealed traffic over loopback and rewrites its
//! section of `docs/performance.md` and the CSV beside the figure; then a matplotlib script
//! draws the figure from the CSV.

use std::process::Command;

use crate::{Result, cargo, workspace_root};

const CSV: &str = "docs/figures/userspace-datapath.csv";
const FIGURE: &str = "docs/figures/userspace-datapath.png";

pub fn run() -> Result {
    cargo(&[
        "run",
        "--release",
        "--quiet",
        "--package",
        "quicseal-userspace",
        "--",
        "bench",
        "--markdown",
        "docs/performance.md",
        "--csv",
        CSV,
    ])?;
    let plot = ["targets/userspace/bench/plot.py", CSV, FIGURE];
    crate::run(
        Command::new("python3")
            .args(plot)
            .current_dir(workspace_root()),
    )
    .map_err(|e| {
        format!("{e}: drawing the figure needs python3 and matplotlib (pip install matplotlib)")
    })
}
