//! The interop endpoint's test cases, its client against its server over loopback, both
//! offloaded to quicseal: every file arrives byte for byte, and each case's promise holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quicseal_quinn::Registry;
use quicseal_quinn::interop::{self, Identity, TestCase, Trust};

/// A directory of its own under the system's temporary one.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quicseal-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Files the test case asks for: `(name, size)`.
fn files(case: TestCase) -> Vec<(String, usize)> {
    match case {
        TestCase::Transfer => vec![
            ("small".into(), 1 << 10),
            ("medium".into(), 100 << 10),
            ("large".into(), 3 << 20),
        ],
        TestCase::Multiplexing => (0..200).map(|i| (format!("file{i}"), 2 << 10)).collect(),
        _ => vec![("one".into(), 100 << 10)],
    }
}

fn content(name: &str, size: usize) -> Vec<u8> {
    let seed = name.bytes().fold(0u8, |a, b| a.wrapping_mul(31) ^ b);
    (0..size)
        .map(|i| (i as u8).wrapping_mul(7) ^ seed)
        .collect()
}

async fn run(case: TestCase) {
    let www = scratch(&format!("{}-www", case.name()));
    let downloads = scratch(&format!("{}-downloads", case.name()));
    let files = files(case);
    for (name, size) in &files {
        std::fs::write(www.join(name), content(name, *size)).unwrap();
    }
    let identity = Identity::self_signed(&["localhost"]).unwrap();
    let trust = Trust::Roots(identity.chain.clone());
    let server = interop::server(
        "127.0.0.1:0".parse().unwrap(),
        www.clone(),
        identity,
        case,
        Arc::new(Registry::new()),
    )
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let requests: Vec<String> = files
        .iter()
        .map(|(name, _)| format!("https://localhost:{port}/{name}"))
        .collect();
    let fetched = interop::client(
        &requests,
        &downloads,
        case,
        trust,
        Arc::new(Registry::new()),
    )
    .await
    .unwrap();
    assert_eq!(fetched.files, files.len(), "{}", case.name());
    for (name, size) in &files {
        let got = std::fs::read(downloads.join(name)).unwrap();
        assert!(got == content(name, *size), "{}: {name}", case.name());
    }
    // Everything after the handshake went through the client's quicseal flows.
    assert!(
        fetched.received.opened > 0 && fetched.sent.sealed > 0,
        "{}",
        case.name()
    );
    if case == TestCase::KeyUpdate {
        assert!(fetched.sent.key_updates >= 1, "{:?}", fetched.sent);
    }
    server.close(0u32.into(), b"done");
    for dir in [&www, &downloads] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_case_passes_client_against_server() {
    for case in TestCase::ALL {
        run(case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outside_the_root_or_for_no_file_gets_nothing() {
    let www = scratch("outside-www");
    let downloads = scratch("outside-downloads");
    std::fs::write(www.join("there"), b"here").unwrap();
    let identity = Identity::self_signed(&["localhost"]).unwrap();
    let trust = || Trust::Roots(identity.chain.clone());
    let server = interop::server(
        "127.0.0.1:0".parse().unwrap(),
        www.clone(),
        Identity::self_signed(&["localhost"]).unwrap(),
        TestCase::Handshake,
        Arc::new(Registry::new()),
    );
    // A certificate the client does not trust: the handshake fails.
    let server = server.unwrap();
    let port = server.local_addr().unwrap().port();
    let url = |path: &str| vec![format!("https://localhost:{port}/{path}")];
    let refused = interop::client(
        &url("there"),
        &downloads,
        TestCase::Handshake,
        trust(),
        Arc::new(Registry::new()),
    )
    .await;
    assert!(refused.is_err());
    // Any certificate accepted: the file comes; a missing one or one outside the root does not.
    let fetched = interop::client(
        &url("there"),
        &downloads,
        TestCase::Handshake,
        Trust::AnyCertificate,
        Arc::new(Registry::new()),
    )
    .await
    .unwrap();
    assert_eq!(fetched.files, 1);
    assert_eq!(std::fs::read(downloads.join("there")).unwrap(), b"here");
    for path in ["missing", "../outside-www/there"] {
        let result = interop::client(
            &url(path),
            Path::new(&downloads),
            TestCase::Handshake,
            Trust::AnyCertificate,
            Arc::new(Registry::new()),
        )
        .await;
        assert!(result.is_err(), "{path}");
    }
    server.close(0u32.into(), b"done");
    let _ = std::fs::remove_dir_all(&www);
    let _ = std::fs::remove_dir_all(&downloads);
}
