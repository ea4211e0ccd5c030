//! Runs every file in `vectors/` (made by `cargo xtask vectors` with ring) through the core:
//! key derivation, header-protection masks, sealing, opening (in place and scatter-gather),
//! GSO batches and the negative cases.

use std::path::{Path, PathBuf};

use quicseal::backend::{Backend, HeaderKey, Portable};
use quicseal::{CipherSuite, Error, FlowConfig, Outcome, RxFlow, TrafficSecret, TxFlow};
use serde_json::Value;

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("vectors/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn hex_field(value: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} is a string")),
    )
    .unwrap_or_else(|e| panic!("{field} is hex: {e}"))
}

fn u64_field(value: &Value, field: &str) -> Option<u64> {
    value
        .get(field)
        .map(|v| v.as_u64().unwrap_or_else(|| panic!("{field} is a u64")))
}

/// One vector file, parsed.
struct Flow {
    suite: CipherSuite,
    secret: Vec<u8>,
    config: FlowConfig,
    json: Value,
}

impl Flow {
    fn load(path: &Path) -> Flow {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON");
        let suite =
            CipherSuite::from_name(json["suite"].as_str().expect("suite")).expect("known suite");
        let dcid_len =
            usize::try_from(u64_field(&json, "dcid_len").expect("dcid_len")).expect("small");
        Flow {
            suite,
            secret: hex_field(&json, "secret"),
            config: FlowConfig::new(dcid_len),
            json,
        }
    }

    fn list(&self, field: &str) -> &[Value] {
        self.json
            .get(field)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn rx_at_generation(&self, generation: u64) -> RxFlow {
        let mut rx = RxFlow::from_secret(self.suite, &self.secret, self.config).expect("rx flow");
        for _ in 0..generation {
            rx.advance_generation().expect("next generation derivable");
        }
        rx
    }
}

fn check_keys(flow: &Flow) {
    let hp0 = TrafficSecret::new(flow.suite, &flow.secret)
        .unwrap()
        .key_material()
        .hp()
        .to_vec();
    for entry in flow.list("keys") {
        let generation = u64_field(entry, "generation").unwrap();
        let mut secret = TrafficSecret::new(flow.suite, &flow.secret).unwrap();
        for _ in 0..generation {
            secret = secret.next();
        }
        let material = secret.key_material();
        assert_eq!(
            secret.as_bytes(),
            hex_field(entry, "secret"),
            "secret of generation {generation}"
        );
        assert_eq!(
            material.key(),
            hex_field(entry, "key"),
            "key of generation {generation}"
        );
        assert_eq!(
            material.iv().as_slice(),
            hex_field(entry, "iv"),
            "iv of generation {generation}"
        );
        assert_eq!(hp0, hex_field(entry, "hp"), "hp never changes");
    }
    let header_key = Portable::header_key(flow.suite, &hp0).unwrap();
    for entry in flow.list("hp_masks") {
        let sample: [u8; 16] = hex_field(entry, "sample")
            .try_into()
            .expect("16-byte sample");
        assert_eq!(header_key.mask(&sample).to_vec(), hex_field(entry, "mask"));
    }
}

fn check_seal(flow: &Flow) {
    let mut tx: TxFlow = TxFlow::from_secret(flow.suite, &flow.secret, flow.config).unwrap();
    for (i, packet) in flow.list("packets").iter().enumerate() {
        let (header, payload) = (hex_field(packet, "header"), hex_field(packet, "payload"));
        let mut out = vec![0u8; header.len() + payload.len() + 16];
        let pn = u64_field(packet, "pn").unwrap();
        let sealed = tx
            .seal_numbered(pn, &[&header, &payload], &mut [&mut out])
            .unwrap_or_else(|e| panic!("packet {i}: {e}"));
        assert_eq!(
            hex::encode(&out),
            packet["protected"].as_str().unwrap(),
            "packet {i} sealed"
        );
        assert_eq!(
            sealed.packet.unwrap().generation,
            u64_field(packet, "generation").unwrap(),
            "packet {i}"
        );
    }
}

fn check_gso(flow: &Flow, gso_size: usize) {
    let packets = flow.list("packets");
    let mut cleartext = Vec::new();
    let mut expected = Vec::new();
    for packet in packets {
        cleartext.extend(hex_field(packet, "header"));
        cleartext.extend(hex_field(packet, "payload"));
        expected.extend(hex_field(packet, "protected"));
    }
    let first_pn = u64_field(&packets[0], "pn").unwrap();
    let config = FlowConfig {
        largest_packet_number: first_pn.checked_sub(1),
        ..flow.config
    };
    let mut tx: TxFlow = TxFlow::from_secret(flow.suite, &flow.secret, config).unwrap();
    let mut out = vec![0u8; expected.len()];
    let mut results = vec![Err(Error::Malformed); packets.len()];
    let batch = tx
        .seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results)
        .unwrap();
    assert_eq!(
        (batch.datagrams, batch.ok, batch.len),
        (packets.len(), packets.len(), expected.len())
    );
    assert_eq!(hex::encode(&out), hex::encode(&expected), "GSO batch");

    // And back, as one GRO buffer.
    let mut rx = flow.rx_at_generation(0);
    rx.set_largest_received(first_pn.checked_sub(1));
    let batch = rx.open_gro(&mut out, gso_size, &mut results).unwrap();
    assert_eq!(batch.ok, packets.len(), "{results:?}");
    for ((packet, result), datagram) in packets.iter().zip(&results).zip(out.chunks(gso_size)) {
        let opened = result.unwrap();
        let cleartext = [hex_field(packet, "header"), hex_field(packet, "payload")].concat();
        assert_eq!(&datagram[..opened.len], cleartext.as_slice());
    }
}

fn check_open(flow: &Flow) {
    let mut in_place = flow.rx_at_generation(0);
    let mut gathered = flow.rx_at_generation(0);
    let mut previous: Option<u64> = None;
    for (i, packet) in flow.list("packets").iter().enumerate() {
        let pn = u64_field(packet, "pn").unwrap();
        let largest = u64_field(packet, "largest_received")
            .or(previous)
            .or(pn.checked_sub(1));
        previous = Some(pn);
        let protected = hex_field(packet, "protected");
        let cleartext = [hex_field(packet, "header"), hex_field(packet, "payload")].concat();
        let generation = u64_field(packet, "generation").unwrap();

        in_place.set_largest_received(largest);
        let mut buffer = protected.clone();
        let opened = in_place
            .open_in_place(&mut buffer)
            .unwrap_or_else(|e| panic!("packet {i}: {e}"));
        let info = opened.packet.unwrap();
        assert_eq!(
            (info.number, info.generation),
            (pn, generation),
            "packet {i}"
        );
        assert_eq!(
            &buffer[..opened.len],
            cleartext.as_slice(),
            "packet {i} opened in place"
        );

        // Scatter-gather: the protected packet split in three, the output in two.
        gathered.set_largest_received(largest);
        let (a, rest) = protected.split_at(protected.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut out = vec![0u8; cleartext.len()];
        let (x, y) = out.split_at_mut(cleartext.len() / 2 + 1);
        let opened = gathered
            .open(&[a, b, c], &mut [x, y])
            .unwrap_or_else(|e| panic!("packet {i}: {e}"));
        assert_eq!(opened.len, cleartext.len());
        assert_eq!(out, cleartext, "packet {i} opened scatter-gather");
    }
}

fn check_negative(flow: &Flow) {
    for (i, case) in flow.list("negative").iter().enumerate() {
        let mut rx = flow.rx_at_generation(u64_field(case, "generation").unwrap());
        rx.set_largest_received(u64_field(case, "largest_received"));
        let expect = case["expect"].as_str().unwrap();
        let mut buffer = hex_field(case, "protected");
        let outcome: Outcome = rx.open_in_place(&mut buffer);
        assert_eq!(outcome.err().map(Error::code), Some(expect), "negative {i}");
        assert_eq!(rx.counters().dropped(), 1, "negative {i} counted");
    }
}

#[test]
fn every_vector_file_passes() {
    let files = vector_files();
    assert!(files.len() >= 18, "vectors/ holds {} files", files.len());
    let mut failed = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = std::panic::catch_unwind(|| {
            let flow = Flow::load(path);
            check_keys(&flow);
            check_seal(&flow);
            check_open(&flow);
            check_negative(&flow);
            if let Some(gso_size) = u64_field(&flow.json, "gso_size") {
                check_gso(&flow, usize::try_from(gso_size).unwrap());
            }
        });
        match outcome {
            Ok(()) => println!("ok      {name}"),
            Err(_) => {
                println!("FAILED  {name}");
                failed.push(name);
            }
        }
    }
    println!(
        "vectors: {} passed, {} failed",
        files.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
}
