//! The same firmware on Renode, which the firmware's users verify with: a platform
//! description of the SoC (targets/smartnic-fw/renode/quicseal-nic.repl, on the VexRiscv,
//! LiteX UART and LiteX timer models Renode ships), a `.resc` script that loads the firmware
//! and a window, and a Robot Framework test that serves it. Renode cannot be installed here
//! (../shared/TOOLCHAIN.md), so the jobs run on it only where `renode-test` is on PATH;
//! the platform description is checked against the generated SoC everywhere.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Soc, number, parse_uart};
use crate::nic_jobs::{self, Job};

/// The platform description, from the repository's root.
pub const PLATFORM: &str = "targets/smartnic-fw/renode/quicseal-nic.repl";
const ROBOT: &str = "targets/smartnic-fw/renode/quicseal-nic.robot";

/// Longest one job may take under Renode, startup included.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Problems with the platform description: every memory's address and size and every
/// peripheral's address must be the generated SoC's.
pub fn check_platform(root: &Path, soc: &Soc) -> crate::Result<Vec<String>> {
    let path = root.join(PLATFORM);
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    compare_platform(&text, soc)
}

fn compare_platform(text: &str, soc: &Soc) -> crate::Result<Vec<String>> {
    let described = parse_platform(text);
    let mut problems = Vec::new();
    let mut expect = |name: &str, address: u64, size: Option<u64>| match described
        .iter()
        .find(|(n, ..)| n == name)
    {
        Some(&(_, a, s)) if a == address && (size.is_none() || s == size) => {}
        Some(&(_, a, s)) => problems.push(format!(
            "{PLATFORM}: {name} at {a:#x} size {s:x?}, the SoC has it at {address:#x} \
                 size {size:x?}"
        )),
        None => problems.push(format!("{PLATFORM}: no {name}")),
    };
    for memory in ["rom", "sram", "main_ram"] {
        let (origin, size) = soc.region(memory)?;
        expect(memory, origin, Some(size));
    }
    for peripheral in ["uart", "timer0"] {
        expect(peripheral, soc.csr_base(peripheral)?, None);
    }
    Ok(problems)
}

/// `(name, address, size)` of each `name: Type @ sysbus address` entry, with the `size:`
/// among its properties.
fn parse_platform(text: &str) -> Vec<(String, u64, Option<u64>)> {
    let mut entries: Vec<(String, u64, Option<u64>)> = Vec::new();
    for line in text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
    {
        if let Some((name, rest)) = line.split_once(':')
            && !line.starts_with(char::is_whitespace)
            && let Some((_, at)) = rest.split_once("@ sysbus")
            && let Some(address) = number(at.trim())
        {
            entries.push((name.trim().to_string(), address, None));
        } else if let Some(size) = line.trim().strip_prefix("size:")
            && let Some(last) = entries.last_mut()
        {
            last.2 = number(size.trim());
        }
    }
    entries
}

/// Whether Renode's test runner is on PATH.
pub fn available() -> bool {
    Command::new("renode-test")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Serves `job` on Renode with the Robot test, in `dir`, and judges the report.
pub fn run(
    root: &Path,
    firmware: &Path,
    dir: &Path,
    job: &Job,
) -> crate::Result<nic_jobs::Verdict> {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let window = dir.join("window.bin");
    fs::write(&window, &job.window).map_err(|e| e.to_string())?;
    let report = dir.join("renode-uart.txt");
    let _ = fs::remove_file(&report);
    let variable = |name: &str, path: &Path| format!("{name}:{}", path.display());
    let mut child = Command::new("renode-test")
        .arg(root.join(ROBOT))
        .arg("--variable")
        .arg(variable("ELF", firmware))
        .arg("--variable")
        .arg(variable("WINDOW", &window))
        .arg("--variable")
        .arg(variable("UART_LOG", &report))
        .arg("--results-dir")
        .arg(dir.join("renode-results"))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // renode-test is a wrapper that starts Renode: a timeout must end both.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("renode-test: {e}"))?;
    let Some(status) = crate::wait_at_most(&mut child, RUN_TIMEOUT)? else {
        return Err(format!(
            "{}: Renode ran longer than {RUN_TIMEOUT:?}",
            job.name
        ));
    };
    if !status.success() {
        return Err(format!(
            "{}: renode-test failed ({status}); its results are in {}",
            job.name,
            dir.join("renode-results").display()
        ));
    }
    let text = fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let run = parse_uart(&text, job.window.len()).map_err(|e| format!("{}: {e}", job.name))?;
    Ok(nic_jobs::judge(job, &run.window))
}

#[cfg(test)]
mod tests {
    use super::{Soc, compare_platform, parse_platform};

    #[test]
    fn the_platform_description_names_addresses_and_sizes() {
        let text = "cpu: CPU.VexRiscv @ sysbus\n\
                    rom: Memory.MappedMemory @ sysbus 0x0 // code\n    size: 0x80000\n\
                    uart: UART.LiteX_UART @ sysbus 0xf0003000\n";
        assert_eq!(
            parse_platform(text),
            [
                ("rom".to_string(), 0, Some(0x80000)),
                ("uart".to_string(), 0xf000_3000, None)
            ]
        );
    }

    #[test]
    fn the_committed_platform_description_parses() {
        let root = crate::workspace_root();
        let text = std::fs::read_to_string(root.join(super::PLATFORM)).expect("committed");
        let names: Vec<String> = parse_platform(&text).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["rom", "sram", "main_ram", "uart", "timer0"]);
    }

    /// A csr.csv like LiteX's for the SoC the committed description describes.
    const CSR_CSV: &str = "csr_base,timer0,0xf0003000,,\ncsr_base,uart,0xf0003800,,\n\
        memory_region,rom,0x00000000,524288,cached\n\
        memory_region,sram,0x10000000,262144,cached\n\
        memory_region,main_ram,0x40000000,1048576,cached\n";

    #[test]
    fn a_platform_description_that_disagrees_with_the_soc_is_refused() {
        let dir = std::env::temp_dir().join(format!("quicseal-repl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let soc = Soc {
            dir: dir.clone(),
            csr_csv: dir.join("csr.csv"),
        };
        std::fs::write(&soc.csr_csv, CSR_CSV).expect("written");
        let root = crate::workspace_root();
        let text = std::fs::read_to_string(root.join(super::PLATFORM)).expect("committed");
        assert_eq!(
            compare_platform(&text, &soc).expect("compared"),
            Vec::<String>::new()
        );
        let moved = text.replace("0xf0003800", "0xf0004000");
        assert_eq!(compare_platform(&moved, &soc).expect("compared").len(), 1);
        let shrunk = text.replace("size: 0x100000", "size: 0x10000");
        assert_eq!(compare_platform(&shrunk, &soc).expect("compared").len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
