//! The firmware in QEMU as a NIC: each window is one run of the firmware (docs/smartnic-fw.md),
//! handed over as `window.bin` in a directory of its own and read back from `window.out`.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Doorbell;

/// The firmware ELF run by `qemu-system-riscv32 -machine virt`.
pub struct Qemu {
    firmware: PathBuf,
    cpu: String,
    dir: PathBuf,
    timeout: Duration,
}

impl Qemu {
    /// The firmware at `firmware` (the `qemu` platform's ELF) on QEMU's plain `rv32` core,
    /// running in `dir`, each run given at most a minute.
    pub fn new(firmware: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Qemu {
        let firmware = firmware.into();
        Qemu {
            // QEMU runs in `dir`: a relative path would be taken from there.
            firmware: std::path::absolute(&firmware).unwrap_or(firmware),
            cpu: "rv32".into(),
            dir: dir.into(),
            timeout: Duration::from_secs(60),
        }
    }

    /// QEMU's `-cpu`, for a firmware built for more extensions (the scalar-crypto build:
    /// `rv32,zkne=true,zbkc=true,zbkb=true`).
    pub fn cpu(mut self, cpu: impl Into<String>) -> Qemu {
        self.cpu = cpu.into();
        self
    }
}

impl Doorbell for Qemu {
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join("window.bin"), &window)?;
        let _ = std::fs::remove_file(self.dir.join("window.out"));
        let mut child = Command::new("qemu-system-riscv32")
            .args([
                "-machine",
                "virt",
                "-cpu",
                &self.cpu,
                "-bios",
                "none",
                "-nographic",
            ])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0", "-kernel"])
            .arg(&self.firmware)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the firmware ran longer than {:?}", self.timeout),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if !status.success() {
            return Err(io::Error::other(format!(
                "the firmware exited with {status}"
            )));
        }
        *window = std::fs::read(self.dir.join("window.out"))?;
        Ok(())
    }
}
