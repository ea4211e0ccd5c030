//! `cargo xtask fuzz [--runs N] [target]`: coverage-guided fuzzing of the core (cargo-fuzz,
//! libFuzzer), a fixed number of runs per target from a fixed seed, so that a run is
//! repeatable.
//!
//! Each run first writes the seed corpus (`fuzz/corpus/<target>/seed-*`, a few valid packets
//! from `vectors/*.json`; deterministic, so the committed files do not change), builds the
//! targets with `cargo fuzz build` and runs each as `-runs=N -seed=1`. The rest of each
//! `fuzz/corpus/<target>/` is the minimised corpus of the long runs (docs/reliability.md),
//! which libFuzzer runs through before its own runs: every edge those runs reached is
//! reached again on every smoke run. New inputs libFuzzer
//! finds go to `target/fuzz-corpus/<target>` (emptied first), outside the source tree; a
//! crash's input goes to `fuzz/artifacts/<target>/`. Targets run with address-space
//! randomization off (`setarch -R`), which is what makes a run repeat exactly. libFuzzer needs
//! nightly `-Z` flags: on a stable toolchain `RUSTC_BOOTSTRAP=1` lets rustc accept them.
//! cargo-fuzz is installed if missing.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

const USAGE: &str = "usage: cargo xtask fuzz [--runs N] [open | seal_open_roundtrip | \
                     long_headers | gro | nic_window | differential | backend_batches | \
                     key_updates | flow_table]";

/// The fuzz targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 11] = [
    "open",
    "seal_open_roundtrip",
    "long_headers",
    "gro",
    "nic_window",
    "differential",
    "backend_batches",
    "key_updates",
    "flow_table",
    "cli_formats",
    "c_abi",
];

/// Runs per target unless `--runs` says otherwise: a smoke test of a few seconds each.
pub const DEFAULT_RUNS: u64 = 20_000;

/// The vector flows the `open` and `gro` targets receive, in the order of
/// `quicseal_fuzz::VECTOR_FILES` (a seed's first byte indexes it).
const VECTOR_FILES: [&str; 9] = [
    "aes128gcm-dcid0.json",
    "aes128gcm-dcid8.json",
    "aes128gcm-dcid20.json",
    "aes256gcm-dcid0.json",
    "aes256gcm-dcid8.json",
    "aes256gcm-dcid20.json",
    "chacha20poly1305-dcid0.json",
    "chacha20poly1305-dcid8.json",
    "chacha20poly1305-dcid20.json",
];

pub fn run(args: &[String]) -> crate::Result {
    let mut runs = DEFAULT_RUNS;
    let mut targets: Vec<&str> = TARGETS.to_vec();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| USAGE.to_string())?;
            }
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => targets = vec![target],
                None => return Err(USAGE.into()),
            },
        }
    }
    smoke(&targets, runs)
}

/// Seeds, builds and runs `targets` for `runs` each; fails if any target fails.
pub fn smoke(targets: &[&str], runs: u64) -> crate::Result {
    let root = crate::workspace_root();
    let fuzz_dir = root.join("fuzz");
    write_seeds(&root)?;
    ensure_cargo_fuzz()?;

    eprintln!("fuzz: building {} target(s)", targets.len());
    let started = Instant::now();
    crate::run(cargo_fuzz(&fuzz_dir).args(["build"]))?;
    eprintln!("fuzz: built in {:.1?}", started.elapsed());

    let (mut passed, mut failed) = (0, 0);
    for (index, target) in targets.iter().enumerate() {
        // Emptied first: inputs kept from an earlier run would make this one differ.
        let scratch = root.join("target/fuzz-corpus").join(target);
        if scratch.exists() {
            fs::remove_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        }
        fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        eprintln!(
            "fuzz: [{}/{}] {target}: {runs} runs, seed 1",
            index + 1,
            targets.len()
        );
        let started = Instant::now();
        let outcome = crate::run(fuzz_run(&fuzz_dir).arg(target).args([
            scratch.as_os_str(),
            seeds.as_os_str(),
            "--".as_ref(),
            format!("-runs={runs}").as_ref(),
            "-seed=1".as_ref(),
            "-print_final_stats=0".as_ref(),
        ]));
        match outcome {
            Ok(()) => {
                passed += 1;
                eprintln!(
                    "fuzz: [{}/{}] {target}: ok in {:.1?}",
                    index + 1,
                    targets.len(),
                    started.elapsed()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "fuzz: [{}/{}] {target}: FAILED ({e}); input in fuzz/artifacts/{target}/",
                    index + 1,
                    targets.len()
                );
            }
        }
    }
    eprintln!("fuzz: {passed} passed, {failed} failed");
    match failed {
        0 => Ok(()),
        _ => Err(format!("{failed} fuzz target(s) failed")),
    }
}

/// `cargo fuzz` in `fuzz/`, with `RUSTC_BOOTSTRAP=1` so a stable toolchain takes the `-Z`
/// flags libFuzzer builds need.
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("fuzz")
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1");
    command
}

/// `cargo fuzz run`, under `setarch -R` where there is one: with address-space layout
/// randomization on, heap addresses reach libFuzzer's comparison traces and `-seed=1` runs
/// differ from one another.
fn fuzz_run(fuzz_dir: &Path) -> Command {
    let arch = std::env::consts::ARCH;
    let setarch = Command::new("setarch")
        .args([arch, "-R", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !setarch {
        eprintln!("fuzz: no setarch -R here; runs may differ slightly from one to the next");
        let mut command = cargo_fuzz(fuzz_dir);
        command.arg("run");
        return command;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new("setarch");
    command
        .args([arch, "-R"])
        .arg(cargo)
        .args(["fuzz", "run"])
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1");
    command
}

/// Installs cargo-fuzz (locked, with cargo's progress output) unless `cargo fuzz` runs.
fn ensure_cargo_fuzz() -> crate::Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let present = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("fuzz: cargo-fuzz missing, installing it (cargo install cargo-fuzz --locked)");
    crate::run(Command::new(&cargo).args(["install", "cargo-fuzz", "--locked"]))
}

/// Writes the seed corpus: for each target a few inputs in its own layout (see the target's
/// doc comment) around packets of the vectors. Deterministic.
fn write_seeds(root: &Path) -> crate::Result {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();

    // `open` and `gro`: the vector flows' smallest generation-0 packets.
    for (flow, cuts) in [(1u8, false), (3, true), (8, false)] {
        let packets = smallest_packets(root, VECTOR_FILES[usize::from(flow)])?;
        let (pn, first) = &packets[0];
        let largest = pn.saturating_sub(1).to_le_bytes();
        let mut open = vec![flow];
        open.extend(largest);
        open.push(0); // no destination shortfall
        match cuts {
            // One source cut after the first byte, one destination cut after the fifth.
            true => open.extend([1, 1, 0, 1, 5, 0]),
            false => open.extend([0, 0]),
        }
        open.extend(first);
        seeds.push(("open", format!("seed-{flow}"), open));

        // Two datagrams coalesced at the first one's length; the second is shorter.
        let (_, second) = &packets[1];
        let (big, small) = match first.len() >= second.len() {
            true => (first, second),
            false => (second, first),
        };
        let mut gro = vec![flow];
        gro.extend(largest);
        gro.extend((big.len() as u16).to_le_bytes());
        gro.push(0);
        gro.extend(big.iter().chain(small));
        seeds.push(("gro", format!("seed-{flow}"), gro));
    }

    // `seal_open_roundtrip`: one packet per suite, packet-number lengths 1, 2 and 4.
    for (suite, flags, dcid_len) in [(0u8, 0u8, 8u8), (1, 1 | 4, 0), (2, 3 | 8, 20)] {
        let mut seed = vec![suite];
        seed.extend((0..48).map(|i| i as u8 ^ 0x5c));
        seed.extend([flags, dcid_len]);
        seed.extend((0..20).map(|i| 0xc0 | i as u8));
        seed.extend(0x1234_5678u64.to_le_bytes());
        seed.extend([0, 0]);
        seed.extend(b"PING frames and padding\0\0\0");
        // `differential` reads the same layout.
        seeds.push(("differential", format!("seed-{suite}"), seed.clone()));
        seeds.push(("seal_open_roundtrip", format!("seed-{suite}"), seed));
    }

    // `backend_batches`: per suite, four 37-byte payloads (a 64-byte datagram's) with
    // 11-byte headers, then three 1323-byte ones, the source cut once.
    for suite in 0u8..3 {
        let mut seed = vec![suite];
        seed.extend((0..64).map(|i| i as u8 ^ 0x3a));
        seed.extend([1, 7, 0, 0]); // source cut at 7; destination uncut
        for (count, len, aad_len) in [(0x83u8, 37u16, 11u8), (0x02, 1323, 11)] {
            seed.push(count);
            seed.extend(len.to_le_bytes());
            seed.extend([aad_len, 2]);
            seed.extend((0..12 * (usize::from(count & 0x7f) + 1)).map(|i| i as u8));
        }
        seeds.push(("backend_batches", format!("seed-{suite}"), seed));

        // `key_updates`: no limits; seal three, deliver two in order, update the keys,
        // seal two, deliver the newest first, then the rest, a duplicate, a forgery.
        let mut steps = vec![suite, 0, 0];
        steps.extend([
            0, 0, 0, 1, 1, 2, 3, 0, 3, 0, 0, 0x80, 1, 0, 4, 0, 3, 0, 3, 0,
        ]);
        steps.extend([0, 0, 5, 0, 6, 9, 7, 0, 0, 3, 3, 0]);
        seeds.push(("key_updates", format!("seed-{suite}"), steps));
    }

    // `flow_table`: 8-byte IDs; insert a, b; route valid and forged to a; remove a; route to
    // a (unknown now) and to b; insert c, d, e (full at four: e refused), the short ID.
    seeds.push((
        "flow_table",
        "seed-0".into(),
        vec![
            8, 0, 0, 0, 1, 2, 0, 40, 3, 0, 40, 1, 0, 2, 0, 10, 2, 1, 100, 0, 2, 0, 3, 0, 6, 0, 4,
        ],
    ));

    // `long_headers`: two coalesced v1 Handshake packets before a short header; a Version
    // Negotiation packet; an Initial with a token; an unknown version.
    for (name, hex) in [
        (
            "coalesced",
            "00 e0000000010 2aaaa01bb020011e0000000010000 01ff4100",
        ),
        ("version-negotiation", "00 80000000000000 00000001"),
        (
            "initial-token",
            "00 c000000001 01aa 00 02ffff 4005 0102030405 40",
        ),
        ("unknown-version", "00 c0faceb00c 00 00 0102"),
    ] {
        seeds.push(("long_headers", format!("seed-{name}"), unhex(hex)?));
    }

    // `nic_window`: windows of the firmware's checks: one of bad descriptors, one sealing and
    // opening a vector flow's packets, one sealing to the port and opening what comes back.
    seeds.push((
        "nic_window",
        "seed-bad-descriptors".into(),
        crate::nic_jobs::bad_descriptors().window,
    ));
    let flow = crate::nic_jobs::vector_jobs(&root.join("vectors"))?
        .into_iter()
        .find(|job| job.name == "chacha20poly1305-dcid8")
        .ok_or("no chacha20poly1305-dcid8 vectors")?;
    seeds.push(("nic_window", "seed-flow".into(), flow.window));
    let port = crate::nic_jobs::all(root)?
        .into_iter()
        .find(|job| job.name.starts_with(crate::nic_jobs::PORT_JOB))
        .ok_or("no port job")?;
    seeds.push(("nic_window", "seed-port".into(), port.window));

    // `cli_formats`: RFC 9001's A.5 vector file whole; a GSO vector file with a key update
    // cut to three packets and its negatives; a seal job (a vector file's first two packets
    // without their protected bytes).
    let vector_file = |name: &str| -> crate::Result<Value> {
        let path = root.join("vectors").join(name);
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
    };
    let text = |doc: &Value| serde_json::to_vec_pretty(doc).map_err(|e| e.to_string());
    let a5 = vector_file("rfc9001-a5-chacha20.json")?;
    seeds.push(("cli_formats", "seed-rfc9001-a5".into(), text(&a5)?));
    let mut gso = vector_file("aes128gcm-gso-key-update.json")?;
    if let Some(packets) = gso["packets"].as_array_mut() {
        packets.truncate(3);
    }
    seeds.push(("cli_formats", "seed-gso-key-update".into(), text(&gso)?));
    let mut job = vector_file("aes256gcm-dcid8.json")?;
    if let Some(fields) = job.as_object_mut() {
        fields
            .retain(|name, _| ["suite", "secret", "dcid_len", "packets"].contains(&name.as_str()));
    }
    if let Some(packets) = job["packets"].as_array_mut() {
        packets.truncate(2);
        for packet in packets.iter_mut().filter_map(Value::as_object_mut) {
            packet.retain(|name, _| ["header", "payload", "pn"].contains(&name.as_str()));
        }
    }
    seeds.push(("cli_formats", "seed-seal-job".into(), text(&job)?));

    // `c_abi`: per suite a sender and receiver with 8-byte connection IDs and defaults; a
    // 40-byte datagram sealed and opened, garbage opened, a GSO batch of three 100-byte
    // datagrams' worth, a GRO batch; the last suite seals through a NULL source.
    for (suite, secret_len) in [(0u8, 32u8), (1, 48), (2, 32)] {
        let mut calls = vec![suite, secret_len, 8, 0, 64];
        calls.extend(0u64.to_le_bytes());
        let mut datagram = vec![0x41];
        datagram.extend([0xd5; 8]);
        datagram.extend([0, 1]);
        datagram.extend((0..29).map(|i| i as u8));
        calls.extend([0, u8::from(suite == 2), 0, datagram.len() as u8]);
        calls.extend(&datagram);
        calls.extend([1, 0, 24]);
        calls.extend((0..24).map(|i| 0x40 ^ i as u8));
        // Each batch's pattern is 64 bytes: the datagram and filler.
        let mut pattern = datagram.clone();
        pattern.resize(64, 0x77);
        calls.extend([2, 100, 0, 4, 250, 0]);
        calls.extend(&pattern);
        calls.extend([3, 100, 0, 4, 250, 0]);
        calls.extend(&pattern);
        seeds.push(("c_abi", format!("seed-{suite}"), calls));
    }

    for (target, name, bytes) in seeds {
        let dir = root.join("fuzz/corpus").join(target);
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// A vector file's generation-0 packets, shortest first: (packet number, protected bytes).
fn smallest_packets(root: &Path, file: &str) -> crate::Result<Vec<(u64, Vec<u8>)>> {
    let path = root.join("vectors").join(file);
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let mut packets = Vec::new();
    for packet in json["packets"].as_array().into_iter().flatten() {
        if packet["generation"].as_u64() != Some(0) {
            continue;
        }
        let pn = packet["pn"].as_u64().ok_or(format!("{file}: pn"))?;
        let protected = packet["protected"]
            .as_str()
            .ok_or(format!("{file}: protected"))?;
        packets.push((pn, unhex(protected)?));
    }
    packets.sort_by_key(|(_, bytes)| bytes.len());
    if packets.len() < 2 {
        return Err(format!("{file}: fewer than two generation-0 packets"));
    }
    Ok(packets)
}

/// Hex (spaces ignored) to bytes.
fn unhex(text: &str) -> crate::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("bad hex: {text}"))
        })
        .collect()
}
