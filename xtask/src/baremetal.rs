//! `cargo xtask baremetal`: builds the core for the bare-metal targets it ships on, with
//! `-Z build-std=core` only. That proves the core and every dependency need neither `std`
//! nor `alloc` there: a crate that reaches for either fails with "can't find crate".
//!
//! rustup's toolchain here has no `rust-src` and cannot add targets, so this uses Debian's
//! compiler (`rustc-web`, `cargo-web`, `rust-web-src`; installed with apt when we are root)
//! with `RUSTC_BOOTSTRAP=1`, in its own target directory so the two compilers never share
//! artifacts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{apt, run as run_command, workspace_root};

/// Debian's compiler; `/usr/bin` so that the rustup proxies first on PATH never win.
const RUSTC: &str = "/usr/bin/rustc";
const CARGO: &str = "/usr/bin/cargo";
const APT_PACKAGES: [&str; 3] = ["rustc-web", "cargo-web", "rust-web-src"];

struct Build {
    target: &'static str,
    features: &'static [&'static str],
    rustflags: &'static str,
}

/// The SmartNIC firmware's target, with and without `defmt`, and the soft-float x86_64
/// kernel target.
const BUILDS: [Build; 3] = [
    Build {
        target: "riscv32imac-unknown-none-elf",
        features: &[],
        rustflags: "",
    },
    Build {
        target: "riscv32imac-unknown-none-elf",
        features: &["--features", "defmt"],
        rustflags: "",
    },
    Build {
        target: "x86_64-unknown-none",
        features: &[],
        rustflags: X86_SOFT_BACKENDS,
    },
];

/// On x86 these RustCrypto crates also compile SSE/AVX2 backends behind
/// `#[target_feature(enable = ...)]` and pick one at run time with `cpufeatures`. On
/// `x86_64-unknown-none` (soft-float) `cpufeatures` always answers "no", so only the
/// software backends can ever run, and LLVM cannot compile SIMD code for a soft-float
/// target: poly1305's AVX2 backend kills rustc 1.96 with SIGFPE at opt-level 3, and at
/// opt-level 0 polyval and sha2 fail with "Do not know how to split the result of this
/// operator" (rust-lang/rust#117938). Selecting the software backends at compile time
/// changes nothing at run time and drops the dead SIMD code. (The kernel object is built
/// for a target of its own with SSE2, xtask/src/kernel.rs, and carries the x86 backends.)
const X86_SOFT_BACKENDS: &str = concat!(
    r#"--cfg aes_backend="soft" --cfg chacha20_backend="soft" --cfg poly1305_backend="soft" "#,
    r#"--cfg polyval_backend="soft" --cfg sha2_backend="soft""#,
);

pub fn run() -> crate::Result {
    let started = Instant::now();
    let version = debian_toolchain()?;
    eprintln!("baremetal: {version} ({RUSTC}, {CARGO})");

    let root = workspace_root();
    let lock = root.join("Cargo.lock");
    let lock_before = fs::read(&lock).ok();
    let target_dir = root.join("target").join("baremetal");

    for (index, build) in BUILDS.iter().enumerate() {
        let label = format!("[{}/{}] {}", index + 1, BUILDS.len(), build.target);
        let label = format!("{label} {}", build.features.join(" "));
        let label = label.trim_end();
        eprintln!("{label} ...");
        let build_started = Instant::now();
        let mut command = debian_cargo(&root);
        command
            .args(["build", "--release", "--locked", "--package", "quicseal"])
            .args(["--target", build.target, "-Z", "build-std=core"])
            .arg("--target-dir")
            .arg(&target_dir)
            .args(build.features)
            .env("RUSTFLAGS", build.rustflags);
        run_command(&mut command).map_err(|e| {
            format!(
                "bare-metal build {label} failed ({e}); see the compiler output above. A \
                 crate that needs std or alloc fails with \"can't find crate for `std`\" \
                 (or `alloc`); \"lock file needs to be updated\" means Cargo.lock is stale: \
                 update it with rustup's cargo and commit it"
            )
        })?;
        eprintln!("{label}: ok in {:.1?}", build_started.elapsed());
    }

    // `--locked` already forbids rewriting Cargo.lock; check anyway, because a lock file
    // written by Debian's cargo could break rustup's cargo.
    if fs::read(&lock).ok() != lock_before {
        return Err(format!(
            "Debian's cargo changed {}; restore it with `git checkout Cargo.lock`",
            lock.display()
        ));
    }
    eprintln!(
        "baremetal: {} builds ok in {:.1?}",
        BUILDS.len(),
        started.elapsed()
    );
    Ok(())
}

/// Debian's cargo without flags meant for the host compiler (they could be rustup-only
/// or wrong for these targets); each build sets its own RUSTFLAGS.
pub fn debian_cargo(root: &Path) -> Command {
    let mut command = Command::new(CARGO);
    command
        .current_dir(root)
        .env("RUSTC", RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTDOC")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null());
    for build in &BUILDS {
        let target = build.target.to_uppercase().replace('-', "_");
        command.env_remove(format!("CARGO_TARGET_{target}_RUSTFLAGS"));
    }
    command
}

/// Finds Debian's compiler, installing it with apt when missing and we are root.
/// Returns its `rustc -V` line.
pub fn debian_toolchain() -> crate::Result<String> {
    if let Some(version) = find_debian_toolchain() {
        return Ok(version);
    }
    let packages = APT_PACKAGES.join(" ");
    if !apt::is_root() {
        return Err(format!(
            "Debian's Rust compiler is missing: run `sudo apt-get install {packages}`"
        ));
    }
    eprintln!("baremetal: installing {packages} with apt-get");
    // Without `update` a stale package list can offer an older rustc-web (1.85 here).
    apt::apt(&["update"])?;
    let install = ["install", "-y", "--no-install-recommends"];
    apt::apt(&[&install[..], &APT_PACKAGES[..]].concat())?;
    find_debian_toolchain()
        .ok_or_else(|| format!("installed {packages}, but {RUSTC} or {CARGO} still does not work"))
}

/// `Some(rustc -V)` when /usr/bin/rustc and /usr/bin/cargo are Debian's (not rustup
/// proxies: those report a sysroot under ~/.rustup) and its `rust-src` is present.
fn find_debian_toolchain() -> Option<String> {
    let output = |program: &str, args: &[&str]| -> Option<String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let verbose = output(RUSTC, &["-vV"])?;
    output(CARGO, &["-V"])?;
    let sysroot = PathBuf::from(output(RUSTC, &["--print", "sysroot"])?);
    let is_proxy = |path: &str| {
        fs::canonicalize(path).is_ok_and(|p| p.file_name().is_some_and(|n| n == "rustup"))
    };
    if is_proxy(RUSTC)
        || is_proxy(CARGO)
        || sysroot.components().any(|c| c.as_os_str() == ".rustup")
    {
        return None;
    }
    // rust-web-src: the library sources build-std compiles.
    if !sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .is_file()
    {
        return None;
    }
    verbose.lines().next().map(str::to_string)
}
