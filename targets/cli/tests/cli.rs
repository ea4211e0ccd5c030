//! The `quicseal` command, run as a user would: `vectors check` on the shipped vectors,
//! seal/open jobs that reproduce them, one-line errors for bad input, and a short demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quicseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quicseal"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("quicseal runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join("vectors"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "vectors/ holds {} files", files.len());
    files
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `doc` to a fresh file in this test binary's scratch directory.
fn scratch(name: &str, doc: &Value) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quicseal-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn vectors_check_passes_every_shipped_file() {
    let files = vector_files();
    let args: Vec<&str> = ["vectors", "check"]
        .into_iter()
        .chain(files.iter().map(|f| path_arg(f)))
        .collect();
    let output = quicseal(&args);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), files.len() + 1, "{text}");
    for (line, file) in lines.iter().zip(&files) {
        assert!(line.starts_with("ok      "), "{line}");
        assert!(line.contains(file.file_name().unwrap().to_str().unwrap()));
    }
    assert_eq!(
        lines.last(),
        Some(&format!("{} passed, 0 failed", files.len()).as_str())
    );
}

#[test]
fn vectors_check_says_what_failed_and_where() {
    let good = workspace().join("vectors/aes128gcm-gso.json");
    let mut doc = load(&good);
    let protected = doc["packets"][2]["protected"].as_str().unwrap().to_string();
    let flipped = if protected.ends_with('0') { "1" } else { "0" };
    doc["packets"][2]["protected"] =
        json!(format!("{}{flipped}", &protected[..protected.len() - 1]));
    let tampered = scratch("tampered.json", &doc);
    let output = quicseal(&["vectors", "check", path_arg(&good), path_arg(&tampered)]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ok      "), "{text}");
    assert!(
        lines[1].starts_with("FAILED  ")
            && lines[1].contains(
                "tampered.json: packets[2].protected: sealing header and payload gives other bytes"
            ),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&"1 passed, 1 failed"));
}

/// A vector file's packets without `protected`: a seal job.
fn seal_job(vector: &Value) -> Value {
    let mut job = vector.clone();
    for packet in job["packets"].as_array_mut().unwrap() {
        let fields = packet.as_object_mut().unwrap();
        fields.remove("protected");
        fields.remove("largest_received");
    }
    job
}

/// A vector file's packets with only `protected` (and `largest_received` where the vector
/// has one; the first packet gets `pn - 1` from the job's author, as docs/formats.md says);
/// its negatives without `expect`.
fn open_job(vector: &Value) -> Value {
    let mut job = vector.clone();
    for (i, packet) in job["packets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let pn = packet["pn"].as_u64().unwrap();
        let fields = packet.as_object_mut().unwrap();
        fields.retain(|key, _| key == "protected" || key == "largest_received");
        if i == 0 && !fields.contains_key("largest_received") {
            fields.insert("largest_received".into(), json!(pn - 1));
        }
    }
    if let Some(negatives) = job.get_mut("negative").and_then(Value::as_array_mut) {
        for case in negatives {
            case.as_object_mut().unwrap().remove("expect");
        }
    }
    job
}

#[test]
fn seal_and_open_jobs_reproduce_every_vector() {
    for file in vector_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let vector = load(&file);

        let output = quicseal(&["seal", path_arg(&scratch(&name, &seal_job(&vector)))]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let sealed: Value = serde_json::from_slice(&output.stdout).unwrap();
        let expected = vector["packets"].as_array().unwrap();
        let got = sealed["packets"].as_array().unwrap();
        assert_eq!(got.len(), expected.len(), "{name}");
        for (i, (got, expected)) in got.iter().zip(expected).enumerate() {
            for field in ["protected", "pn", "generation"] {
                assert_eq!(got[field], expected[field], "{name}: packets[{i}].{field}");
            }
        }

        let output = quicseal(&["open", path_arg(&scratch(&name, &open_job(&vector)))]);
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let opened: Value = serde_json::from_slice(&output.stdout).unwrap();
        for (i, (got, expected)) in opened["packets"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected)
            .enumerate()
        {
            for field in ["header", "payload", "pn", "generation"] {
                assert_eq!(got[field], expected[field], "{name}: packets[{i}].{field}");
            }
        }
        let negatives = vector["negative"].as_array().unwrap();
        for (i, (got, expected)) in opened["negative"]
            .as_array()
            .unwrap()
            .iter()
            .zip(negatives)
            .enumerate()
        {
            assert_eq!(got["error"], expected["expect"], "{name}: negative[{i}]");
        }
    }
}

#[test]
fn a_vector_file_opens_as_it_is() {
    let file = workspace().join("vectors/chacha20poly1305-dcid20.json");
    let vector = load(&file);
    let output = quicseal(&["open", path_arg(&file)]);
    assert!(output.status.success(), "{}", stderr(&output));
    let opened: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(opened["packets"], vector["packets"]);
    // Each negative comes back as it was (its `generation` and `expect` too) with the
    // `error` it gave, which is what it expects.
    let negatives = vector["negative"].as_array().unwrap();
    assert!(!negatives.is_empty());
    let mut expected = negatives.clone();
    for case in &mut expected {
        case["error"] = case["expect"].clone();
    }
    assert_eq!(opened["negative"], Value::Array(expected));
}

#[test]
fn open_reads_pn_on_the_first_packet_only() {
    let vector = load(&workspace().join("vectors/aes128gcm-dcid8.json"));
    let mut job = open_job(&vector);
    let pn = vector["packets"][2]["pn"].clone();
    assert!(pn.is_u64());
    job["packets"][2]["pn"] = json!("not a number");
    let output = quicseal(&["open", path_arg(&scratch("later-pn.json", &job))]);
    assert!(output.status.success(), "{}", stderr(&output));
    let opened: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        opened["packets"][2]["pn"], pn,
        "replaced by what opening gave"
    );
}

#[test]
fn open_reports_a_packet_that_does_not_open_in_its_output() {
    let mut job = open_job(&load(&workspace().join("vectors/aes256gcm-dcid8.json")));
    job["packets"][1]["protected"] = json!("4001");
    let output = quicseal(&["open", path_arg(&scratch("short.json", &job))]);
    assert!(output.status.success(), "{}", stderr(&output));
    let opened: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(opened["packets"][1]["error"], "malformed");
    assert!(opened["packets"][1].get("header").is_none());
    assert!(
        opened["packets"][2]["header"].is_string(),
        "the next one still opens"
    );
}

/// A packet opened against a largest received number 2^40 beyond its own decodes to another
/// number and fails to authenticate; the packet after it, decoded against the last packet
/// that opened, still opens.
#[test]
fn open_refuses_a_packet_number_far_in_the_past() {
    let vector = load(&workspace().join("vectors/chacha20poly1305-dcid8.json"));
    let pn = vector["packets"][1]["pn"].as_u64().unwrap();
    let mut job = open_job(&vector);
    job["packets"][1]["largest_received"] = json!(pn + (1u64 << 40));
    let output = quicseal(&["open", path_arg(&scratch("far-past.json", &job))]);
    assert!(output.status.success(), "{}", stderr(&output));
    let opened: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(opened["packets"][1]["error"], "auth_failed");
    assert!(opened["packets"][1].get("payload").is_none());
    assert_eq!(opened["packets"][2]["pn"], vector["packets"][2]["pn"]);
}

/// Runs `args` on `doc` and checks the failure: status `code`, one line on stderr that names
/// the file and contains `says`.
fn fails_in_one_line(args: &[&str], name: &str, doc: &Value, code: i32, says: &str) {
    let path = scratch(name, doc);
    let mut args = args.to_vec();
    args.push(path_arg(&path));
    let output = quicseal(&args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{name}: {err}");
    assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
    let line = err.trim_end();
    assert!(
        line.contains(path_arg(&path)),
        "{name}: names the file: {line}"
    );
    assert!(line.contains(says), "{name}: {line}\nshould say: {says}");
    assert!(!err.contains("panicked"), "{name}: {err}");
}

#[test]
fn bad_input_gives_one_line_saying_what_and_where() {
    let job = seal_job(&load(&workspace().join("vectors/aes128gcm-dcid8.json")));
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut doc = job.clone();
        edit(&mut doc);
        doc
    };
    let cases: [(&str, Value, i32, &str); 9] = [
        (
            "hex.json",
            with(&|d| d["packets"][3]["header"] = json!("40zz")),
            2,
            "packets[3].header: invalid hex: 'z' at position 2 is not a hex digit",
        ),
        (
            "odd.json",
            with(&|d| d["packets"][0]["payload"] = json!("abc")),
            2,
            "packets[0].payload: invalid hex: odd number of digits",
        ),
        (
            "suite.json",
            with(&|d| d["suite"] = json!("TLS_AES_128_CCM_SHA256")),
            2,
            "suite: unknown cipher suite \"TLS_AES_128_CCM_SHA256\"",
        ),
        (
            "secret.json",
            with(&|d| d["secret"] = json!("00".repeat(48))),
            2,
            "secret: 48-byte secret, but TLS_AES_128_GCM_SHA256 takes 32-byte secrets",
        ),
        (
            "missing.json",
            with(&|d| {
                d["packets"][2].as_object_mut().unwrap().remove("payload");
            }),
            2,
            "packets[2]: missing field \"payload\"",
        ),
        (
            "no-packets.json",
            with(&|d| {
                d.as_object_mut().unwrap().remove("packets");
            }),
            2,
            "missing field \"packets\"",
        ),
        (
            "pn.json",
            with(&|d| d["packets"][4]["pn"] = json!(-4)),
            2,
            "packets[4].pn: not a non-negative integer",
        ),
        (
            "truncated.json",
            with(&|d| {
                d["packets"][1]["header"] = json!("4001020304");
                d["packets"][1]["payload"] = json!("");
            }),
            1,
            "packets[1]: cannot seal: malformed packet",
        ),
        (
            "not-json.json",
            json!("just a string"),
            2,
            "the top level is not a JSON object",
        ),
    ];
    for (name, doc, code, says) in &cases {
        fails_in_one_line(&["seal"], name, doc, *code, says);
    }
    let open = open_job(&load(&workspace().join("vectors/aes128gcm-dcid8.json")));
    let mut bad = open.clone();
    bad["packets"][5]["protected"] = json!("xyz");
    fails_in_one_line(
        &["open"],
        "open-hex.json",
        &bad,
        2,
        "packets[5].protected: invalid hex",
    );

    // A file that is not there, or not JSON.
    let output = quicseal(&["seal", "no/such/job.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        "quicseal: no/such/job.json: cannot read: No such file or directory (os error 2)"
    );
    let broken = Path::new(env!("CARGO_TARGET_TMPDIR")).join("broken.json");
    std::fs::write(&broken, "{\"suite\": ").unwrap();
    let output = quicseal(&["vectors", "check", path_arg(&broken)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("broken.json: invalid JSON: EOF while parsing"));
}

#[test]
fn demo_runs_clean_and_quiet_off_a_terminal() {
    let output = quicseal(&["demo", "--count", "400", "--batch", "8"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(
        text.contains(
            "packets      400 sent, 400 opened, 0 failed to open, 0 corrupt, 0 lost in the socket"
        ),
        "{text}"
    );
    assert!(
        text.contains("key updates  1 sent, 1 followed by the receiver"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("result       ok"),
        "{text}"
    );
    assert_eq!(stderr(&output), "", "no progress bar drawn into a pipe");
}

#[test]
fn demo_without_gso_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let output = quicseal(&[
        "demo",
        "--count",
        "100",
        "--no-gso",
        "-6",
        "--suite",
        "chacha20poly1305",
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(
        text.contains("TLS_CHACHA20_POLY1305_SHA256") && text.contains("[::1]"),
        "{text}"
    );
    assert!(text.contains("0 GSO sends, 100 single sends"), "{text}");
}

#[test]
fn demo_stays_on_loopback_and_checks_its_options() {
    let output = quicseal(&["demo", "--address", "0.0.0.0:0", "--count", "10"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("0.0.0.0:0 is not a loopback address"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "nothing ran");
    let output = quicseal(&["demo", "--batch", "65", "--count", "10"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("batch must be 1 to 64 packets"));
    let output = quicseal(&["demo", "--suite", "rot13"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown cipher suite \"rot13\""));
    // Datagrams (and so GSO segments) too small to hold a packet and its tag, or larger
    // than UDP carries.
    for size in ["0", "63", "65508"] {
        let output = quicseal(&["demo", "--packet-size", size, "--count", "10"]);
        assert_eq!(output.status.code(), Some(2), "--packet-size {size}");
        assert!(
            stderr(&output).contains("packet size must be 64 to 65507 bytes"),
            "{}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "nothing ran");
    }
}

#[test]
fn demo_deadline_is_checked_and_a_run_it_stops_is_not_ok() {
    for (deadline, says) in [
        ("0", "deadline must be more than 0"),
        ("18446744073709551615", "deadline is too far in the future"),
    ] {
        let output = quicseal(&["demo", "--count", "1000", "--deadline", deadline]);
        assert_eq!(output.status.code(), Some(2), "--deadline {deadline}");
        assert!(stderr(&output).contains(says), "{}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"));
        assert_eq!(stdout(&output), "", "nothing ran");
    }
    // Far more packets than a debug build sends in a second.
    let output = quicseal(&["demo", "--count", "100000000", "--deadline", "1"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(4), "{text}{}", stderr(&output));
    assert!(text.contains("deadline     reached"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("result       INCOMPLETE: the deadline stopped the sender after"),
        "{text}"
    );
}

#[test]
fn a_run_that_fails_exits_4_not_2() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = quicseal(&["demo", "--count", "10", "--address", &address]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot bind"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn vectors_check_finds_the_header_payload_boundary_moved() {
    // The same bytes, one moved from the payload to the header: sealing gives the same
    // datagram, so only the lengths opening reports can tell.
    let mut doc = load(&workspace().join("vectors/aes128gcm-dcid8.json"));
    let packet = &mut doc["packets"][1];
    let (header, payload) = (
        packet["header"].as_str().unwrap().to_string(),
        packet["payload"].as_str().unwrap().to_string(),
    );
    packet["header"] = json!(format!("{header}{}", &payload[..2]));
    packet["payload"] = json!(payload[2..].to_string());
    let moved = scratch("moved.json", &doc);
    let output = quicseal(&["vectors", "check", path_arg(&moved)]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("moved.json: packets[1]: opening in place gives 0 bytes of long header"),
        "{text}"
    );
}

#[test]
#[cfg(feature = "interop")]
fn quic_client_downloads_from_quic_server_and_unsupported_test_cases_exit_127() {
    let dir = std::env::temp_dir().join(format!("quicseal-cli-interop-{}", std::process::id()));
    let (www, downloads) = (dir.join("www"), dir.join("downloads"));
    for d in [&www, &downloads] {
        std::fs::create_dir_all(d).unwrap();
    }
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(www.join("file"), &body).unwrap();
    // A port free a moment ago.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_quicseal"))
        .args(["quic-server", "--listen", &listen, "--www"])
        .arg(&www)
        .env("TESTCASE", "multiplexing")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It says when it listens.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("serving"), "{line}");
    let url = format!("https://127.0.0.1:{port}/file");
    let client = Command::new(env!("CARGO_BIN_EXE_quicseal"))
        .args(["quic-client", "--downloads"])
        .arg(&downloads)
        .env("TESTCASE", "multiplexing")
        .env("REQUESTS", &url)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert_eq!(std::fs::read(downloads.join("file")).unwrap(), body);
    let unsupported = Command::new(env!("CARGO_BIN_EXE_quicseal"))
        .args(["quic-client", &url])
        .env("TESTCASE", "zerortt")
        .output()
        .unwrap();
    assert_eq!(unsupported.status.code(), Some(127));
    let _ = std::fs::remove_dir_all(&dir);
}
