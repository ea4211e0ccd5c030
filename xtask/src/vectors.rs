//! `cargo xtask vectors [--check]`: the test vectors in `vectors/*.json`.
//!
//! The vectors come from an implementation independent of the `quicseal` crate: ring for
//! HKDF, the AEADs and header protection, and this module for the rest (HKDF-Expand-Label,
//! key updates, short headers, packet numbers). Every value RFC 9001 Appendix A publishes
//! is recomputed and checked, and every flow is opened again by a reference receiver before
//! it is written. Randomness comes from a fixed-seed PRNG, so the output is reproducible
//! byte for byte and `--check` can tell whether the committed files are current.
//! `vectors/README.md` describes the files.

mod crypto;
mod flow;
mod generated;
mod packet;
mod prng;
mod rfc9001;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use flow::Flow;
use serde_json::Value;

const USAGE: &str = "usage: cargo xtask vectors [--check]";

/// A committed vector file, read for a target's test: its name (the file stem), where it
/// is, and its JSON.
pub struct VectorFile {
    pub name: String,
    pub path: PathBuf,
    pub json: Value,
}

/// Every `*.json` in `dir`, sorted by name, parsed; at least one.
pub fn files(dir: &Path) -> crate::Result<Vec<VectorFile>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no vector files in {}", dir.display()));
    }
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?
                .to_string();
            let json = fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(VectorFile { name, path, json })
        })
        .collect()
}

/// The TLS code point of a vector file's `suite`.
pub fn suite_code(json: &Value) -> crate::Result<u16> {
    match json["suite"].as_str() {
        Some("TLS_AES_128_GCM_SHA256") => Ok(0x1301),
        Some("TLS_AES_256_GCM_SHA384") => Ok(0x1302),
        Some("TLS_CHACHA20_POLY1305_SHA256") => Ok(0x1303),
        other => Err(format!("unknown suite {other:?}")),
    }
}

/// Writes the vector files, or with `--check` fails unless the committed ones are exactly
/// what would be written.
pub fn run(args: &[String]) -> crate::Result {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err(USAGE.into()),
    };
    let files = generate()?;
    let dir = crate::workspace_root().join("vectors");
    if check {
        check_files(&dir, &files)
    } else {
        write_files(&dir, &files)
    }
}

/// A vector file's name and text.
struct File {
    name: String,
    text: String,
    summary: String,
}

/// Every vector file, each flow verified before it is rendered.
fn generate() -> crate::Result<Vec<File>> {
    let mut flows = vec![
        rfc9001::a5_chacha20()?,
        rfc9001::a1_client_initial_keys()?,
        rfc9001::a1_server_initial_keys()?,
    ];
    flows.extend(generated::all());
    flows
        .into_iter()
        .map(|flow| {
            flow.verify()?;
            Ok(File {
                summary: summary(&flow),
                text: flow.to_json(),
                name: flow.file,
            })
        })
        .collect()
}

/// What a progress line says about a flow.
fn summary(flow: &Flow) -> String {
    let plural = |count: usize, noun: &str| match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    };
    format!(
        "{}, {}",
        plural(flow.packets.len(), "packet"),
        plural(flow.negatives.len(), "negative")
    )
}

/// Writes every file and removes `.json` files the generator no longer makes.
fn write_files(dir: &Path, files: &[File]) -> crate::Result {
    fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    for file in files {
        let path = dir.join(&file.name);
        fs::write(&path, &file.text)
            .map_err(|e| format!("could not write {}: {e}", path.display()))?;
        eprintln!("wrote vectors/{} ({})", file.name, file.summary);
    }
    for name in stale(dir, files)? {
        let path = dir.join(&name);
        fs::remove_file(&path).map_err(|e| format!("could not remove {}: {e}", path.display()))?;
        eprintln!("removed stale vectors/{name}");
    }
    Ok(())
}

/// Fails, naming the files, unless every file on disk is byte-identical to its generated
/// text and no other `.json` file is there.
fn check_files(dir: &Path, files: &[File]) -> crate::Result {
    let mut problems = Vec::new();
    for file in files {
        match fs::read(dir.join(&file.name)) {
            Ok(committed) if committed == file.text.as_bytes() => {}
            Ok(_) => problems.push(format!("vectors/{} differs", file.name)),
            Err(_) => problems.push(format!("vectors/{} is missing", file.name)),
        }
    }
    for name in stale(dir, files)? {
        problems.push(format!("vectors/{name} is stale (no longer generated)"));
    }
    if problems.is_empty() {
        eprintln!(
            "all {} files in vectors/ match their generator",
            files.len()
        );
        Ok(())
    } else {
        Err(format!(
            "vectors/ does not match its generator (run `cargo xtask vectors`): {}",
            problems.join(", ")
        ))
    }
}

/// The `.json` files in `dir` the generator doesn't make, by name, sorted.
fn stale(dir: &Path, files: &[File]) -> crate::Result<BTreeSet<String>> {
    let generated: BTreeSet<&str> = files.iter().map(|file| file.name.as_str()).collect();
    let entries =
        fs::read_dir(dir).map_err(|e| format!("could not list {}: {e}", dir.display()))?;
    let mut stale = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("could not list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !generated.contains(name.as_str()) {
            stale.insert(name);
        }
    }
    Ok(stale)
}
