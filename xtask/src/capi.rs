//! `cargo xtask capi [--update-header]`: the C ABI (`targets/userspace/capi`) as C sees it.
//!
//! Builds `libquicseal.a` and `libquicseal.so` (debug profile: it builds in a third of the
//! release time and keeps debug assertions and overflow checks on at the boundary), checks
//! that the committed `include/quicseal.h` is what cbindgen generates, checks that the header
//! compiles as C++, converts `vectors/*.json` into a line-based file C can read without a
//! JSON parser, then compiles `tests/vectors.c` as C99 with `-Wall -Wextra -Werror -pedantic`
//! against the static library and against the shared one, runs both, and runs the static
//! build under valgrind's memcheck (when valgrind is installed), where any error or leak fails.
//! The example program of `docs/c-abi.md` is compiled and run too, so that it stays correct.
//!
//! `--update-header` rewrites `include/quicseal.h` instead.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const USAGE: &str = "usage: cargo xtask capi [--update-header]";

/// Libraries the Rust standard library needs when linked statically on Linux (what
/// `rustc --print native-static-libs` lists for the staticlib).
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Warnings the C test program must compile without.
const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-g",
    "-O1",
];

pub fn run(args: &[String]) -> crate::Result {
    match args {
        [] => check(),
        [flag] if flag == "--update-header" => update_header(),
        _ => Err(USAGE.into()),
    }
}

fn capi_dir() -> PathBuf {
    crate::workspace_root().join("targets/userspace/capi")
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `target/` at the workspace root.
fn target_dir() -> PathBuf {
    let root = crate::workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn update_header() -> crate::Result {
    eprintln!("[capi] rewriting include/quicseal.h with cbindgen");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(
        Command::new(cargo)
            .args(["test", "--quiet", "-p", "quicseal-capi", "--test", "header"])
            .env("QUICSEAL_UPDATE_HEADER", "1")
            .current_dir(crate::workspace_root()),
    )
}

fn check() -> crate::Result {
    let capi = capi_dir();
    let lib_dir = target_dir().join("debug");
    let out = target_dir().join("capi");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;

    eprintln!("[capi] building libquicseal.a and libquicseal.so");
    crate::cargo(&["build", "--quiet", "-p", "quicseal-clib"])?;

    eprintln!("[capi] checking that include/quicseal.h is what cbindgen generates");
    crate::cargo(&["test", "--quiet", "-p", "quicseal-capi", "--test", "header"])?;

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let include = capi.join("include");
    match which("c++") {
        Some(cxx) => {
            eprintln!("[capi] compiling include/quicseal.h as C++11");
            crate::run(
                Command::new(cxx)
                    .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
                    .args(["-fsyntax-only", "-x", "c++"])
                    .arg(include.join("quicseal.h")),
            )?;
        }
        None => eprintln!("[capi] no c++ on PATH: not compiling the header as C++"),
    }

    let vectors = out.join("vectors.txt");
    eprintln!(
        "[capi] converting vectors/*.json into {}",
        relative(&vectors)
    );
    let text = convert_vectors(&crate::workspace_root().join("vectors"))?;
    fs::write(&vectors, text).map_err(|e| format!("writing {}: {e}", vectors.display()))?;

    let source = capi.join("tests/vectors.c");
    let static_exe = out.join("vectors-static");
    let dynamic_exe = out.join("vectors-dynamic");
    eprintln!("[capi] compiling tests/vectors.c against libquicseal.a");
    crate::run(
        Command::new(&cc)
            .args(C_FLAGS)
            .arg("-I")
            .arg(&include)
            .arg(&source)
            .arg(lib_dir.join("libquicseal.a"))
            .args(NATIVE_STATIC_LIBS)
            .arg("-o")
            .arg(&static_exe),
    )?;
    eprintln!("[capi] compiling tests/vectors.c against libquicseal.so");
    crate::run(
        Command::new(&cc)
            .args(C_FLAGS)
            .arg("-I")
            .arg(&include)
            .arg(&source)
            .arg(format!("-L{}", lib_dir.display()))
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .arg("-lquicseal")
            .arg("-o")
            .arg(&dynamic_exe),
    )?;

    let example_exe = out.join("example");
    eprintln!("[capi] compiling and running the example of docs/c-abi.md");
    let example = out.join("example.c");
    fs::write(&example, doc_example()?)
        .map_err(|e| format!("writing {}: {e}", example.display()))?;
    crate::run(
        Command::new(&cc)
            .args(C_FLAGS)
            .arg("-I")
            .arg(&include)
            .arg(&example)
            .arg(lib_dir.join("libquicseal.a"))
            .args(NATIVE_STATIC_LIBS)
            .arg("-o")
            .arg(&example_exe),
    )?;
    crate::run(&mut Command::new(&example_exe))?;

    eprintln!("[capi] running the static build");
    crate::run(Command::new(&static_exe).arg(&vectors))?;
    // The same cases again: only failures and the count.
    eprintln!("[capi] running the shared-library build");
    crate::run(Command::new(&dynamic_exe).arg("-q").arg(&vectors))?;

    match which("valgrind") {
        Some(valgrind) => {
            eprintln!("[capi] running the static build under valgrind (memcheck)");
            crate::run(
                Command::new(valgrind)
                    .args([
                        "--tool=memcheck",
                        "--quiet",
                        "--error-exitcode=1",
                        "--leak-check=full",
                        "--show-leak-kinds=all",
                        "--errors-for-leak-kinds=all",
                        "--track-origins=yes",
                    ])
                    .arg(&static_exe)
                    .arg("-q")
                    .arg(&vectors),
            )?;
        }
        None => eprintln!("[capi] no valgrind on PATH: skipping memcheck"),
    }
    Ok(())
}

/// The C program under the `## Example` heading of `docs/c-abi.md`.
fn doc_example() -> crate::Result<String> {
    let path = crate::workspace_root().join("docs/c-abi.md");
    let doc = fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let example = doc
        .split_once("\n## Example\n")
        .and_then(|(_, rest)| rest.split_once("```c\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code.to_string());
    example.ok_or_else(|| format!("{}: no ```c block under `## Example`", path.display()))
}

/// `program`'s path if it is on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn relative(path: &Path) -> String {
    path.strip_prefix(crate::workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The vector files as lines `tests/vectors.c` documents and reads: one `flow` line per file,
/// then its `key`, `packet` and `negative` lines, then `end`.
fn convert_vectors(dir: &Path) -> crate::Result<String> {
    let files = crate::vectors::files(dir)?;
    let mut text = String::from(
        "# Generated by `cargo xtask capi` from vectors/*.json for \
         targets/userspace/capi/tests/vectors.c, which documents the format.\n",
    );
    for file in &files {
        let (name, json, path) = (&file.name, &file.json, &file.path);
        convert_flow(&mut text, name, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(text)
}

fn convert_flow(text: &mut String, name: &str, json: &Value) -> crate::Result {
    let suite = crate::vectors::suite_code(json)?;
    let gso_size = json
        .get("gso_size")
        .map_or(Ok(0), |_| u64_field(json, "gso_size"))?;
    let _ = writeln!(
        text,
        "flow {name} {suite:x} {} {gso_size} {}",
        u64_field(json, "dcid_len")?,
        hex_field(json, "secret")?
    );
    for key in list(json, "keys") {
        let _ = writeln!(
            text,
            "key {} {} {} {} {}",
            u64_field(key, "generation")?,
            hex_field(key, "secret")?,
            hex_field(key, "key")?,
            hex_field(key, "iv")?,
            hex_field(key, "hp")?
        );
    }
    // vectors/README.md: an absent `largest_received` is the previous packet's number, or
    // one below the first packet's.
    let mut previous: Option<u64> = None;
    for packet in list(json, "packets") {
        let pn = u64_field(packet, "pn")?;
        let largest = match packet.get("largest_received") {
            Some(_) => Some(u64_field(packet, "largest_received")?),
            None => previous.or(pn.checked_sub(1)),
        };
        previous = Some(pn);
        let _ = writeln!(
            text,
            "packet {} {pn} {} {} {} {}",
            u64_field(packet, "generation")?,
            optional(largest),
            hex_field(packet, "header")?,
            hex_field(packet, "payload")?,
            hex_field(packet, "protected")?
        );
    }
    for negative in list(json, "negative") {
        let largest = match negative.get("largest_received") {
            Some(_) => Some(u64_field(negative, "largest_received")?),
            None => None,
        };
        let _ = writeln!(
            text,
            "negative {} {} {} {}",
            u64_field(negative, "generation")?,
            optional(largest),
            str_field(negative, "expect")?,
            hex_field(negative, "protected")?
        );
    }
    text.push_str("end\n");
    Ok(())
}

fn list<'a>(json: &'a Value, field: &str) -> &'a [Value] {
    json.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn str_field<'a>(json: &'a Value, field: &str) -> crate::Result<&'a str> {
    json.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{field}` is not a string"))
}

fn u64_field(json: &Value, field: &str) -> crate::Result<u64> {
    json.get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("`{field}` is not an unsigned integer"))
}

/// A hex field as one token: `-` when empty, since the C reader splits on spaces.
fn hex_field(json: &Value, field: &str) -> crate::Result<String> {
    let hex = str_field(json, field)?;
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{field}` is not hex"));
    }
    Ok(match hex.is_empty() {
        true => "-".into(),
        false => hex.into(),
    })
}

fn optional(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}
