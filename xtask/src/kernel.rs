//! `cargo xtask kernel-test`: builds the kernel module (the core as a Rust object plus the C
//! shim in `targets/kernel/`) and a static selftest, boots Debian's kernel under QEMU (TCG)
//! with an initramfs, and runs the selftest inside: load the module, seal and open every
//! vector file through the socket, GSO, key updates, bad input, unload.
//!
//! Prints `N passed, M failed` and fails on a failed check or on any kernel warning, BUG,
//! oops or call trace in the serial log (`target/kernel/serial.log`).
//!
//! Needs Debian's kernel headers, QEMU, busybox-static, gcc and Debian's Rust compiler;
//! installs them with apt when run as root. The kernel image matching the headers is
//! downloaded once (`apt-get download`) and cached under `target/kernel/`, with the kernel's
//! crypto modules the module's cross-check and benchmark compare against. This machine's
//! running kernel is not the one the module is built for: the headers' ABI is used throughout.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{apt, run as run_command, vectors, workspace_root};

const RUSTC: &str = "/usr/bin/rustc";
const CARGO: &str = "/usr/bin/cargo";
/// The kernel target the object's own target is made from (see [`target_spec`]).
const BASE_TARGET: &str = "x86_64-unknown-none";
/// The object's target: `BASE_TARGET` with SSE on (file and directory name).
const TARGET: &str = "x86_64-quicseal-kernel";
const APT_PACKAGES: [&str; 10] = [
    "linux-headers-amd64",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "gcc",
    "make",
    "libc6-dev",
];

/// The recipe of /work/shared/TOOLCHAIN.md: kernel code model comes with the target; static
/// relocations, PLT calls (otherwise memcpy becomes GOTPCREL, which insmod refuses), the
/// kernel's retpoline and return thunks (objtool-clean), no unwind tables.
///
/// And RustCrypto's AES, POLYVAL (GHASH), Poly1305 and SHA-2 on their software backends:
/// in this object they serve only HKDF at key installation and the `Portable` fallback on
/// CPUs that the core's own x86 backends do not cover (no AES-NI and PCLMULQDQ, no AVX2),
/// where their AES-NI, CLMUL, VAES and AVX2 paths could not run anyway; kept out, they take
/// their panic paths with them. ChaCha20 keeps its SSE2 backend, which such CPUs have.
const RUSTFLAGS: &str = concat!(
    "-C relocation-model=static -C force-unwind-tables=no -Z plt=yes ",
    "-Z direct-access-external-data=yes -Z retpoline-external-thunk ",
    "-Z function-return=thunk-extern ",
    r#"--cfg aes_backend="soft" --cfg polyval_backend="soft" --cfg poly1305_backend="soft" "#,
    r#"--cfg sha2_backend="soft""#,
);

/// The kernel's own AEADs the module's microbenchmark compares against (`gcm(aes)`,
/// `rfc7539(chacha20,poly1305)`), generic and x86, in an order `insmod` can load them
/// (each after what it depends on); Debian builds them as modules. Paths under
/// `lib/modules/<abi>/kernel/`.
const CRYPTO_MODULES: [&str; 15] = [
    "crypto/gf128mul.ko",
    "crypto/ghash-generic.ko",
    "crypto/ctr.ko",
    "crypto/gcm.ko",
    "lib/crypto/libchacha.ko",
    "crypto/chacha_generic.ko",
    "lib/crypto/libpoly1305.ko",
    "crypto/poly1305_generic.ko",
    "crypto/chacha20poly1305.ko",
    "crypto/cryptd.ko",
    "crypto/crypto_simd.ko",
    "arch/x86/crypto/aesni-intel.ko",
    "arch/x86/crypto/ghash-clmulni-intel.ko",
    "arch/x86/crypto/chacha-x86_64.ko",
    "arch/x86/crypto/poly1305-x86_64.ko",
];

/// How long the VM may take: boot + tests + power-off is a few seconds under TCG.
const VM_TIMEOUT: Duration = Duration::from_secs(240);

pub fn run() -> crate::Result {
    let started = Instant::now();
    let root = workspace_root();
    let out = root.join("target").join("kernel");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;

    let step = |name: &str| eprintln!("kernel-test: {name} ...");
    step("checking quicseal_rust.h's statuses against the core");
    check_status_table(&root.join("targets/kernel/module/quicseal_rust.h"))?;
    check_op_table(
        &root.join("targets/kernel/module/quicseal_rust.h"),
        &root.join("targets/kernel/rust/src/lib.rs"),
    )?;
    step("checking packages");
    apt::ensure("kernel-test", &APT_PACKAGES)?;
    let abi = headers_abi()?;
    eprintln!("kernel-test: Debian kernel headers {abi}");

    step("fetching the kernel image");
    let vmlinuz = kernel_image(&abi, &out)?;

    step("building the Rust object");
    let timer = Instant::now();
    let staticlib = build_rust_object(&root, &out)?;
    eprintln!("kernel-test: Rust object ok in {:.1?}", timer.elapsed());

    step("building the module");
    let timer = Instant::now();
    let module = build_module(&root, &out, &abi, &staticlib)?;
    eprintln!("kernel-test: module ok in {:.1?}", timer.elapsed());

    step("building the selftest");
    let selftest = out.join("quicseal_selftest");
    run_command(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&selftest)
            .arg("-I")
            .arg(root.join("targets/kernel/include/uapi"))
            .arg(root.join("targets/kernel/selftest/quicseal_selftest.c")),
    )
    .map_err(|e| format!("selftest build failed: {e}"))?;

    step("writing vectors.txt and the initramfs");
    let vectors = vectors_text(&root.join("vectors"))?;
    let crypto = crypto_modules_dir(&abi, &out);
    let initramfs = build_initramfs(&out, &module, &selftest, &vectors, &crypto)?;

    step("booting the kernel under QEMU (TCG)");
    let timer = Instant::now();
    let log = boot(&out, &vmlinuz, &initramfs)?;
    eprintln!("kernel-test: VM ran in {:.1?}", timer.elapsed());
    let verdict = judge(&log);
    eprintln!(
        "kernel-test: {} ({:.1?} in all)",
        match &verdict {
            Ok(summary) => summary.clone(),
            Err(e) => e.clone(),
        },
        started.elapsed()
    );
    verdict.map(|_| ())
}

/// `enum qs_status` in the module's header must list every core `Error` under its
/// SCREAMING_SNAKE_CASE name with the value `Error::status()` gives, and nothing else but
/// `QS_OK` and the ABI's own `QS_EINVAL_ARGS`: the C side cannot read the core's table, so
/// this is what keeps the two from drifting apart.
fn check_status_table(header: &Path) -> crate::Result {
    let text = fs::read_to_string(header).map_err(|e| format!("{}: {e}", header.display()))?;
    let body = text
        .split_once("enum qs_status {")
        .and_then(|(_, rest)| rest.split_once("};"))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("{}: no `enum qs_status`", header.display()))?;
    let listed: Vec<(String, u32)> = body
        .split(',')
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect();
    let mut expected: Vec<(String, u32)> = vec![("QS_OK".into(), 0)];
    expected.extend(quicseal::Error::ALL.iter().map(|error| {
        (
            format!("QS_{}", screaming_snake(&format!("{error:?}"))),
            u32::from(error.status()),
        )
    }));
    expected.push(("QS_EINVAL_ARGS".into(), 100));
    if listed != expected {
        return Err(format!(
            "{}: enum qs_status is {listed:?}, the core says {expected:?}",
            header.display()
        ));
    }
    Ok(())
}

/// `UnknownConnectionId` as `UNKNOWN_CONNECTION_ID`.
/// `enum qs_op` in the module's header must list the Rust object's `OP_*` constants (the
/// operations `quicseal_call` dispatches on) under the same names with `QS_` in front and the
/// same values, in the same order.
fn check_op_table(header: &Path, object_source: &Path) -> crate::Result {
    let read =
        |path: &Path| fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let (header_text, source) = (read(header)?, read(object_source)?);
    let body = header_text
        .split_once("enum qs_op {")
        .and_then(|(_, rest)| rest.split_once("};"))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("{}: no `enum qs_op`", header.display()))?;
    let listed: Vec<(String, u32)> = body
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once('=')?;
            let value = rest.split(',').next()?.trim().parse().ok()?;
            Some((name.trim().to_string(), value))
        })
        .collect();
    let expected: Vec<(String, u32)> = source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("const OP_")?;
            let (name, value) = rest.split_once(": u32 =")?;
            Some((
                format!("QS_OP_{name}"),
                value.trim().trim_end_matches(';').parse().ok()?,
            ))
        })
        .collect();
    if listed.is_empty() || listed != expected {
        return Err(format!(
            "{}: enum qs_op is {listed:?}, {} says {expected:?}",
            header.display(),
            object_source.display()
        ));
    }
    Ok(())
}

fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The ABI of the installed Debian headers (e.g. `6.1.0-56-amd64`): the newest one with a
/// build directory.
fn headers_abi() -> crate::Result<String> {
    let mut abis: Vec<String> = fs::read_dir("/usr/src")
        .map_err(|e| format!("/usr/src: {e}"))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let abi = name.strip_prefix("linux-headers-")?.to_string();
            (abi.ends_with("-amd64") && Path::new(&format!("/lib/modules/{abi}/build")).exists())
                .then_some(abi)
        })
        .collect();
    abis.sort_by_key(|abi| {
        abi.split(['.', '-'])
            .map(|part| part.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    abis.pop()
        .ok_or_else(|| "no Debian kernel headers (linux-headers-amd64) found".to_string())
}

/// `target/kernel/vmlinuz-<abi>` and the [`CRYPTO_MODULES`] under
/// `target/kernel/modules-<abi>/`, taken from the `linux-image` package downloaded with
/// `apt-get download` the first time.
fn kernel_image(abi: &str, out: &Path) -> crate::Result<PathBuf> {
    let vmlinuz = out.join(format!("vmlinuz-{abi}"));
    let modules = crypto_modules_dir(abi, out);
    if vmlinuz.is_file() && CRYPTO_MODULES.iter().all(|m| modules.join(m).is_file()) {
        return Ok(vmlinuz);
    }
    // apt drops privileges to `_apt` for downloads: use a directory it can write.
    let dir = std::env::temp_dir().join(format!("quicseal-kernel-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = Command::new("chmod").arg("777").arg(&dir).status();
    let package = format!("linux-image-{abi}");
    let downloaded = run_command(
        Command::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(&dir)
            .stdin(Stdio::null()),
    );
    if downloaded.is_err() && apt::is_root() {
        apt::apt(&["update", "-q"])?;
        run_command(
            Command::new("apt-get")
                .args(["download", "-q", &package])
                .current_dir(&dir)
                .stdin(Stdio::null()),
        )?;
    } else {
        downloaded?;
    }
    let deb = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {package} produced no .deb"))?;
    let member = format!("./boot/vmlinuz-{abi}");
    let module_members: Vec<String> = CRYPTO_MODULES
        .iter()
        .map(|m| format!("'./lib/modules/{abi}/kernel/{m}'"))
        .collect();
    run_command(Command::new("sh").current_dir(&dir).arg("-c").arg(format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x '{member}' {}",
        deb.display(),
        module_members.join(" ")
    )))?;
    fs::copy(dir.join(&member), &vmlinuz).map_err(|e| format!("copying {member}: {e}"))?;
    for module in CRYPTO_MODULES {
        let to = modules.join(module);
        fs::create_dir_all(to.parent().unwrap_or(&modules)).map_err(|e| e.to_string())?;
        let from = dir.join(format!("lib/modules/{abi}/kernel/{module}"));
        fs::copy(&from, &to).map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    let _ = fs::remove_dir_all(&dir);
    Ok(vmlinuz)
}

fn crypto_modules_dir(abi: &str, out: &Path) -> PathBuf {
    out.join(format!("modules-{abi}"))
}

/// Builds `targets/kernel/rust` for x86_64-unknown-none with Debian's compiler and checks
/// the crate's object: no GOT-relative relocations (insmod refuses them).
fn build_rust_object(root: &Path, out: &Path) -> crate::Result<PathBuf> {
    let crate_dir = root.join("targets/kernel/rust");
    let target_dir = out.join("rust");
    let spec = target_spec(out)?;
    let mut command = Command::new(CARGO);
    command
        .current_dir(&crate_dir)
        .env("RUSTC", RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("RUSTDOC")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-Z",
            "json-target-spec",
            "--target",
        ])
        .arg(&spec)
        .args(["-Z", "build-std=core,compiler_builtins"])
        .arg("--target-dir")
        .arg(&target_dir);
    run_command(&mut command).map_err(|e| format!("Rust object build failed: {e}"))?;
    let staticlib = target_dir.join(TARGET).join("release/libquicseal_kmod.a");

    // Take the crate's own object out of the archive to look at it.
    let scratch = out.join("rust-object");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    run_command(
        Command::new("ar")
            .arg("x")
            .arg(&staticlib)
            .current_dir(&scratch),
    )?;
    let object = fs::read_dir(&scratch)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("quicseal_kmod"))
        })
        .ok_or("no quicseal_kmod object in the staticlib")?;
    let relocations = capture(Command::new("readelf").arg("-rW").arg(&object))?;
    if relocations.contains("GOTPC") {
        return Err(
            "the Rust object has GOTPC relocations: insmod would refuse it \
                    (check RUSTFLAGS: -Z plt=yes, relocation-model=static)"
                .into(),
        );
    }
    let undefined = capture(Command::new("nm").arg("-u").arg(&object))?;
    let undefined: Vec<&str> = undefined
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    eprintln!("kernel-test: Rust object needs {}", undefined.join(", "));
    // The object's datapath must not be able to panic: the shim's panic report BUG()s,
    // which in softirq is a kernel panic. Bounds and unwrap checks the compiler cannot prove
    // away are written as `get`s (docs/kernel-uapi.md, Robustness).
    let panicking = panicking_functions(&object)?;
    if !panicking.is_empty() {
        return Err(format!(
            "{} functions of the Rust object keep a panic path (bounds, division or unwrap \
             checks): {}",
            panicking.len(),
            panicking.join(", ")
        ));
    }
    eprintln!("kernel-test: no panic path in the Rust object");
    Ok(staticlib)
}

/// Writes the object's target spec, `BASE_TARGET`'s own (as this rustc prints it) with SSE
/// and SSE2 on and its soft-float ABI taken out, and returns its path.
///
/// Why: on the soft-float kernel target LLVM cannot compile `#[target_feature]` SIMD code
/// (the core's x86 backends, RustCrypto's), and `cpufeatures` says "no". With SSE2 in the
/// baseline the core compiles its fused AES-NI/VAES/AVX2/AVX-512 backends in and picks one
/// at run time by CPUID, as in user space (`"os": "linux"`, or cpufeatures would not look);
/// AVX and wider stay per-function (`#[target_feature]`). The price: the compiler may now
/// use XMM registers in any function of the object, so the module calls into it only inside
/// a kernel FPU section (`qs_rust()` in quicseal_main.c). A spec of its own rather than
/// `-C target-feature=-soft-float`, which rustc warns is going away (issue 116344).
fn target_spec(out: &Path) -> crate::Result<PathBuf> {
    let printed = capture(
        Command::new(RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["-Z", "unstable-options", "--print", "target-spec-json"])
            .args(["--target", BASE_TARGET]),
    )?;
    let mut spec: Value =
        serde_json::from_str(&printed).map_err(|e| format!("{BASE_TARGET}'s target spec: {e}"))?;
    let fields = spec
        .as_object_mut()
        .ok_or("the target spec is not a JSON object")?;
    let features = fields
        .get("features")
        .and_then(Value::as_str)
        .ok_or("the target spec has no features")?;
    if !features.contains("+soft-float") {
        return Err(format!(
            "{BASE_TARGET} is no longer soft-float ({features}): revisit"
        ));
    }
    fields.insert("features".into(), "-mmx,+sse,+sse2".into());
    fields.remove("rustc-abi");
    // cpufeatures answers "no" for every feature on `target_os = "none"` (a freestanding
    // program may run where no one enabled the vector registers' state); Linux enables
    // them, and cpufeatures still checks XCR0 for the AVX and AVX-512 state.
    fields.insert("os".into(), "linux".into());
    if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "description".into(),
            "x86_64 kernel object with SSE2 (quicseal, built by cargo xtask kernel-test)".into(),
        );
    }
    let path = out.join(format!("{TARGET}.json"));
    let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
    if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

/// The functions of `object` that call into core's panic entry points (any relocation to a
/// `core` symbol with "panic", "_fail" or "failed" in its name: `panic_fmt`,
/// `panic_bounds_check`, `slice_index_fail`, `copy_from_slice`'s `len_mismatch_fail`,
/// `unwrap_failed` and their kin), other than those entry points themselves and the panic
/// handler's own formatting: where a panic could still start.
fn panicking_functions(object: &Path) -> crate::Result<Vec<String>> {
    const OWN: [&str; 3] = [" as core::fmt::", "PanicInfo", "quicseal_kmod::Truncating"];
    let listing = capture(
        Command::new("objdump")
            .args(["-dr", "-C", "--no-show-raw-insn"])
            .arg(object),
    )?;
    let mut current = "";
    let mut found: Vec<String> = Vec::new();
    for line in listing.lines() {
        if let Some(name) = line
            .split_once(" <")
            .filter(|_| line.ends_with(">:"))
            .map(|(_, rest)| rest.trim_end_matches(">:"))
        {
            current = name;
            continue;
        }
        let Some(target) = line
            .split_once("R_X86_64")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        else {
            continue;
        };
        let panics = target.contains("4core")
            && ["panic", "_fail", "failed"]
                .iter()
                .any(|k| target.contains(k));
        let own = current.starts_with("core::")
            || current.starts_with("<core::")
            || OWN.iter().any(|own| current.contains(own));
        if panics && !own && !found.iter().any(|f| f == current) {
            found.push(current.to_string());
        }
    }
    Ok(found)
}

/// Copies the module sources next to the build output and runs Kbuild against the Debian
/// headers (never the running kernel's).
fn build_module(root: &Path, out: &Path, abi: &str, staticlib: &Path) -> crate::Result<PathBuf> {
    let build = out.join("module");
    fs::create_dir_all(build.join("include/uapi/linux")).map_err(|e| e.to_string())?;
    let src = root.join("targets/kernel/module");
    for name in [
        "Kbuild",
        "Makefile",
        "quicseal_main.c",
        "quicseal_bench.c",
        "quicseal_shim.h",
        "quicseal_rust.h",
    ] {
        copy_if_changed(&src.join(name), &build.join(name))?;
    }
    copy_if_changed(
        &root.join("targets/kernel/include/uapi/linux/quicseal.h"),
        &build.join("include/uapi/linux/quicseal.h"),
    )?;
    let output = Command::new("make")
        .arg("-C")
        .arg(format!("/lib/modules/{abi}/build"))
        .arg(format!("M={}", build.display()))
        .arg(format!("QS_RUST_LIB={}", staticlib.display()))
        .arg("-j2")
        .arg("modules")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("make: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        return Err(format!("module build failed:\n{text}"));
    }
    // The shim must compile without warnings, and objtool must be content.
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("warning:") && !l.contains("Skipping BTF"))
        .collect();
    if !warnings.is_empty() {
        return Err(format!("module build warnings:\n{}", warnings.join("\n")));
    }
    Ok(build.join("quicseal.ko"))
}

fn copy_if_changed(from: &Path, to: &Path) -> crate::Result {
    let data = fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if fs::read(to).ok().as_deref() != Some(&data[..]) {
        fs::write(to, data).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(())
}

fn capture(command: &mut Command) -> crate::Result<String> {
    let output = command
        .output()
        .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
    if !output.status.success() {
        return Err(format!("{:?} failed", command.get_program()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// vectors/*.json as the selftest's line format (see quicseal_selftest.c).
fn vectors_text(dir: &Path) -> crate::Result<String> {
    let mut text = String::new();
    for file in vectors::files(dir)? {
        let json = &file.json;
        let str_of = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_string();
        let num = |v: &Value, key: &str| v[key].as_u64();
        let suite =
            vectors::suite_code(json).map_err(|e| format!("{}: {e}", file.path.display()))?;
        let name = &file.name;
        let secret = str_of(json, "secret");
        let _ = writeln!(
            text,
            "flow {name} {suite:#x} {} {} {secret}",
            num(json, "dcid_len").unwrap_or(0),
            num(json, "gso_size").unwrap_or(0),
        );
        // The secret of the flow's last generation and the header-protection key, for
        // installing mid-connection (struct quicseal_keys V2): derived here with ring, apart
        // from the core the module runs.
        let last_generation = json["packets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| num(p, "generation"))
            .max()
            .unwrap_or(0);
        if last_generation > 0 {
            let (secret_n, hp) = resume_keys(suite, &unhex(&secret)?, last_generation);
            let _ = writeln!(
                text,
                "resume {last_generation} {} {}",
                hex(&secret_n),
                hex(&hp)
            );
        }
        let mut previous: Option<u64> = None;
        for packet in json["packets"].as_array().into_iter().flatten() {
            let pn = num(packet, "pn").ok_or("packet without pn")?;
            let largest = num(packet, "largest_received")
                .or(previous)
                .unwrap_or(pn.wrapping_sub(1));
            let _ = writeln!(
                text,
                "packet {} {pn} {largest} {} {} {}",
                num(packet, "generation").unwrap_or(0),
                hex_or_dash(&str_of(packet, "header")),
                hex_or_dash(&str_of(packet, "payload")),
                hex_or_dash(&str_of(packet, "protected")),
            );
            previous = Some(pn);
        }
        for negative in json["negative"].as_array().into_iter().flatten() {
            let _ = writeln!(
                text,
                "negative {} {} {} {}",
                num(negative, "generation").unwrap_or(0),
                num(negative, "largest_received").unwrap_or(0),
                str_of(negative, "expect"),
                hex_or_dash(&str_of(negative, "protected")),
            );
        }
        text.push_str("end\n");
    }
    Ok(text)
}

pub fn unhex(text: &str) -> crate::Result<Vec<u8>> {
    (0..text.len() / 2)
        .map(|i| {
            text.get(2 * i..2 * i + 2)
                .and_then(|byte| u8::from_str_radix(byte, 16).ok())
                .ok_or_else(|| format!("bad hex: {text}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// Generation `generation`'s traffic secret ("quic ku" applied that many times, RFC 9001
/// §6.1) and the header-protection key ("quic hp" of generation 0's secret, §5.4) of a
/// TLS suite code point.
pub fn resume_keys(suite: u16, secret: &[u8], generation: u64) -> (Vec<u8>, Vec<u8>) {
    use ring::hkdf;

    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let (algorithm, key_len) = match suite {
        0x1302 => (hkdf::HKDF_SHA384, 32),
        0x1303 => (hkdf::HKDF_SHA256, 32),
        _ => (hkdf::HKDF_SHA256, 16),
    };
    // HKDF-Expand-Label(secret, label, "", len), RFC 8446 §7.1.
    let expand_label = |secret: &[u8], label: &str, len: usize| {
        let label = format!("tls13 {label}");
        let info = [
            &(len as u16).to_be_bytes()[..],
            &[label.len() as u8],
            label.as_bytes(),
            &[0],
        ];
        let mut out = vec![0; len];
        hkdf::Prk::new_less_safe(algorithm, secret)
            .expand(&info, Len(len))
            .and_then(|okm| okm.fill(&mut out))
            .expect("QUIC's HKDF outputs are short");
        out
    };
    let hp = expand_label(secret, "quic hp", key_len);
    let mut current = secret.to_vec();
    for _ in 0..generation {
        current = expand_label(&current, "quic ku", secret.len());
    }
    (current, hp)
}

fn hex_or_dash(hex: &str) -> &str {
    if hex.is_empty() { "-" } else { hex }
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up
# IPv6 loopback for the AF_INET6 checks: the kernel adds ::1 when lo comes up; make sure.
ip -6 addr show dev lo | grep -q '::1/128' || ip -6 addr add ::1/128 dev lo
echo "quicseal-vm: lo $(ip addr show dev lo | grep -o 'inet6\? [^ ]*' | tr '\n' ' ')"
# The kernel's own AEADs (generic and x86), for the module's cross-check and benchmark.
loaded=0
for m in $(cat /crypto/order); do insmod "$m" && loaded=$((loaded + 1)); done
echo "quicseal-vm: kernel crypto modules loaded: $loaded of $(wc -l < /crypto/order)"
echo "quicseal-vm: insmod"
if insmod /quicseal.ko; then
  echo "quicseal-vm: module loaded"
  /quicseal_selftest /vectors.txt
  echo "quicseal-vm: selftest exit $?"
  # Closed UDP sockets are freed after an RCU grace period, and each holds a module
  # reference until then: retry for up to 5 s.
  unloaded=no
  for i in $(seq 50); do
    if rmmod quicseal 2>/dev/null; then unloaded=yes; break; fi
    sleep 0.1
  done
  if [ $unloaded = yes ]; then echo "quicseal-vm: module unloaded"; else rmmod quicseal; echo "quicseal-vm: rmmod FAILED"; fi
  # Attaching to plain UDP sockets, in a second load: the first attach pins the module.
  if [ $unloaded = yes ] && insmod /quicseal.ko; then
    /quicseal_selftest --attach /vectors.txt
    echo "quicseal-vm: attach selftest exit $?"
    # Once every socket is freed, the pin is the one reference left, and rmmod must fail.
    for i in $(seq 50); do
      [ "$(cat /sys/module/quicseal/refcnt)" = 1 ] && break
      sleep 0.1
    done
    if [ "$(cat /sys/module/quicseal/refcnt)" = 1 ] && ! rmmod quicseal 2>/dev/null; then
      echo "quicseal-vm: module pinned after attach"
    else
      echo "quicseal-vm: module NOT pinned after attach (refcnt $(cat /sys/module/quicseal/refcnt 2>/dev/null))"
    fi
  fi
else
  echo "quicseal-vm: insmod FAILED"
fi
# The whole kernel log (warnings are below `quiet`'s console level) and the taint flags.
dmesg | sed 's/^/quicseal-vm: dmesg: /'
echo "quicseal-vm: tainted $(cat /proc/sys/kernel/tainted)"
echo "quicseal-vm: done"
poweroff -f
"#;

fn build_initramfs(
    out: &Path,
    module: &Path,
    selftest: &Path,
    vectors: &str,
    crypto_modules: &Path,
) -> crate::Result<PathBuf> {
    let dir = out.join("initramfs");
    let _ = fs::remove_dir_all(&dir);
    for sub in ["bin", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let copy = |from: &Path, to: &str| {
        fs::copy(from, dir.join(to))
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", from.display()))
    };
    copy(Path::new("/bin/busybox"), "bin/busybox")?;
    copy(module, "quicseal.ko")?;
    // The kernel's AEADs, loaded in this order by `init` before the module.
    fs::create_dir_all(dir.join("crypto")).map_err(|e| e.to_string())?;
    let mut order = String::new();
    for module in CRYPTO_MODULES {
        let name = module.rsplit('/').next().unwrap_or(module);
        copy(&crypto_modules.join(module), &format!("crypto/{name}"))?;
        order.push_str(&format!("/crypto/{name}\n"));
    }
    fs::write(dir.join("crypto/order"), order).map_err(|e| e.to_string())?;
    copy(selftest, "quicseal_selftest")?;
    fs::write(dir.join("vectors.txt"), vectors).map_err(|e| e.to_string())?;
    fs::write(dir.join("init"), INIT).map_err(|e| e.to_string())?;
    run_command(Command::new("chmod").arg("755").arg(dir.join("init")))?;
    let image = out.join("initramfs.cpio.gz");
    run_command(Command::new("sh").current_dir(&dir).arg("-c").arg(format!(
        "find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
        image.display()
    )))?;
    Ok(image)
}

/// Boots the VM and returns its serial log (also written to target/kernel/serial.log).
fn boot(out: &Path, vmlinuz: &Path, initramfs: &Path) -> crate::Result<String> {
    let log_path = out.join("serial.log");
    let log_file = fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
        ])
        .args(["-cpu", "max"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        // slub_debug: red zones, poisoning and sanity checks on every slab object, so that an
        // overrun or a use after free in the module is reported (Debian's kernel builds
        // neither KASAN nor kmemleak; the module's own live counts stand in for the latter).
        .args([
            "-append",
            "console=ttyS0 panic=-1 oops=panic quiet slub_debug=FZPU",
        ])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    let status = crate::wait_at_most(&mut child, VM_TIMEOUT)?;
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("ok") || line.starts_with("FAIL") || line.starts_with("     ") {
            continue; // the summary below says how many; the full log is on disk
        }
        if line.starts_with("quicseal-vm: dmesg:") && !is_kernel_alarm(line) {
            if line.contains("quicseal:") {
                eprintln!("  vm| {line}");
            }
            continue;
        }
        if line.contains("quicseal") || line.contains("selftest") || is_kernel_alarm(line) {
            eprintln!("  vm| {line}");
        }
    }
    for line in log.lines().filter(|l| l.starts_with("FAIL")) {
        eprintln!("  vm| {line}");
    }
    match status {
        None => Err(format!(
            "the VM did not finish within {VM_TIMEOUT:?}; see {}",
            log_path.display()
        )),
        Some(_) => Ok(log),
    }
}

fn is_kernel_alarm(line: &str) -> bool {
    [
        "WARNING:",
        "BUG:",
        // slub_debug's reports: "BUG kmalloc-512 (Tainted: ...): Redzone overwritten".
        "] BUG ",
        "Oops",
        "Call Trace",
        "Kernel panic",
        "general protection",
    ]
    .iter()
    .any(|alarm| line.contains(alarm))
}

/// `Ok("N passed, M failed")` when the selftest ran to the end without failures and the
/// kernel said nothing alarming.
fn judge(log: &str) -> crate::Result<String> {
    // One summary per selftest run (the main one, then `--attach`): added up.
    let counts: Vec<(u64, u64)> = log
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("selftest: "))
        .filter_map(|s| {
            let (passed, failed) = s.split_once(" passed, ")?;
            Some((
                passed.parse().ok()?,
                failed.strip_suffix(" failed")?.parse().ok()?,
            ))
        })
        .collect();
    let summary = (counts.len() == 2).then(|| {
        let (passed, failed) = counts
            .iter()
            .fold((0, 0), |(p, f), (p2, f2)| (p + p2, f + f2));
        format!("{passed} passed, {failed} failed")
    });
    let alarms: Vec<&str> = log.lines().filter(|l| is_kernel_alarm(l)).collect();
    let mut problems = Vec::new();
    if !alarms.is_empty() {
        problems.push(format!("kernel reported: {}", alarms.join(" | ")));
    }
    for (marker, problem) in [
        ("quicseal-vm: module loaded", "the module did not load"),
        ("quicseal-vm: module unloaded", "the module did not unload"),
        (
            "quicseal-vm: module pinned after attach",
            "the module was not pinned by the attach run",
        ),
        ("quicseal-vm: done", "the VM did not finish its script"),
    ] {
        if !log.contains(marker) {
            problems.push(problem.to_string());
        }
    }
    // Taint flags: W (512) a warning, D (128) an oops, L (16384) a soft lockup. The module
    // itself adds only O (out of tree) and E (unsigned).
    let taint = log
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("quicseal-vm: tainted "))
        .and_then(|t| t.trim().parse::<u64>().ok());
    match taint {
        None => problems.push("no taint flags reported".into()),
        Some(t) if t & (512 | 128 | 16384) != 0 => {
            problems.push(format!("kernel tainted {t} (warning, oops or lockup)"))
        }
        Some(_) => {}
    }
    match &summary {
        None => problems.push("the two selftest runs did not both print a summary".into()),
        Some(s) if !s.ends_with(" 0 failed") => problems.push(format!("selftest: {s}")),
        Some(_) => {}
    }
    let summary = summary.unwrap_or_else(|| "0 passed, 1 failed".into());
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}; {}", problems.join("; ")))
    }
}
