//! Debian packages the checks need: found, or installed with apt-get when we are root (as
//! CI is), or named for the user to install.

use std::process::{Command, Stdio};

use crate::run;

/// Runs `apt-get` with `args`, non-interactively.
pub fn apt(args: &[&str]) -> crate::Result {
    run(Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Makes sure `packages` are installed; `who` names the check that needs them.
pub fn ensure(who: &str, packages: &[&str]) -> crate::Result {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing packages: run `sudo apt-get install {}`",
            missing.join(" ")
        ));
    }
    eprintln!("{who}: installing {}", missing.join(" "));
    // Without `update` a stale list offers old packages (an old rustc-web among them).
    apt(&["update", "-q"])?;
    apt(&[
        &["install", "-y", "-q", "--no-install-recommends"][..],
        &missing[..],
    ]
    .concat())
}
