//! Packet protection throughput: quicseal's copy-fused seal and open next to ring and
//! RustCrypto's one-shot AEADs (`aes-gcm`, `chacha20poly1305`) doing the same job (copy the cleartext into the send buffer,
//! encrypt it there, apply header protection), in one run, as ratios.
//!
//! `cargo bench -p quicseal --bench protect` prints the table; with `-- --write-docs` it also
//! rewrites its section of docs/performance.md and docs/protect.svg. Timings are wall-clock
//! medians of repeated runs on whatever machine runs it: compare the ratios, not the numbers
//! across machines.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::cipher::{BlockCipherEncrypt, KeyInit as _};
use aes_gcm::aead::AeadInOut;
use chacha20::cipher::{KeyIvInit as _, StreamCipher as _, StreamCipherSeek as _};
use quicseal::{CipherSuite, FlowConfig, KeyMaterial, RxFlow, TrafficSecret, TxFlow};
use ring::aead::{self, quic};

/// Bytes on the wire per packet: the QUIC default-sized datagram.
const PACKET_LEN: usize = 1350;
const DCID_LEN: usize = 8;
const HEADER_LEN: usize = 1 + DCID_LEN + 2;
const PAYLOAD_LEN: usize = PACKET_LEN - HEADER_LEN - 16;
/// Packets per timed run.
const BATCH: u64 = 2000;
/// Timed runs per case; the median is reported.
const RUNS: usize = 15;

fn header(pn: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = 0x41;
    h[1..1 + DCID_LEN].copy_from_slice(b"bench-id");
    h[HEADER_LEN - 2..].copy_from_slice(&(pn as u16).to_be_bytes());
    h
}

fn cleartext(pn: u64) -> Vec<u8> {
    let mut packet = header(pn).to_vec();
    packet.extend((0..PAYLOAD_LEN).map(|i| i as u8));
    packet
}

/// Median seconds per packet of `f(pn)` over `RUNS` runs of `BATCH` packets.
fn time(mut f: impl FnMut(u64)) -> f64 {
    let mut pn = 1u64;
    for _ in 0..BATCH / 4 {
        f(pn);
        pn += 1;
    }
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                f(pn);
                pn += 1;
            }
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[RUNS / 2].as_secs_f64() / BATCH as f64
}

/// Header protection by hand from the RustCrypto block ciphers, as a user of the one-shot
/// AEAD crates would write it.
fn rustcrypto_mask(suite: CipherSuite, hp: &[u8], sample: &[u8]) -> [u8; 5] {
    let mut out = [0u8; 5];
    match suite {
        CipherSuite::Aes128GcmSha256 | CipherSuite::Aes256GcmSha384 => {
            let mut block = aes::Block::try_from(sample).unwrap();
            if hp.len() == 16 {
                aes::Aes128::new_from_slice(hp)
                    .unwrap()
                    .encrypt_block(&mut block);
            } else {
                aes::Aes256::new_from_slice(hp)
                    .unwrap()
                    .encrypt_block(&mut block);
            }
            out.copy_from_slice(&block[..5]);
        }
        CipherSuite::ChaCha20Poly1305Sha256 => {
            let counter = u32::from_le_bytes(sample[..4].try_into().unwrap());
            let mut chacha =
                chacha20::ChaCha20::new(hp.try_into().unwrap(), sample[4..].try_into().unwrap());
            chacha.seek(u64::from(counter) * 64);
            chacha.apply_keystream(&mut out);
        }
    }
    out
}

fn apply_mask(packet: &mut [u8], mask: [u8; 5]) {
    packet[0] ^= mask[0] & 0x1f;
    for (b, m) in packet[HEADER_LEN - 2..HEADER_LEN]
        .iter_mut()
        .zip(&mask[1..])
    {
        *b ^= m;
    }
}

fn nonce(iv: &[u8; 12], pn: u64) -> [u8; 12] {
    let mut n = *iv;
    for (a, b) in n[4..].iter_mut().zip(pn.to_be_bytes()) {
        *a ^= b;
    }
    n
}

/// One row of the report.
struct Row {
    suite: CipherSuite,
    operation: &'static str,
    implementation: &'static str,
    seconds_per_packet: f64,
}

fn bench_suite(suite: CipherSuite, rows: &mut Vec<Row>) {
    let secret = vec![0x5a; suite.secret_len()];
    let keys: KeyMaterial = TrafficSecret::new(suite, &secret).unwrap().key_material();
    let config = FlowConfig::new(DCID_LEN);
    let source = cleartext(0);
    let mut out = vec![0u8; PACKET_LEN];
    let mut row = |operation, implementation, seconds_per_packet| {
        rows.push(Row {
            suite,
            operation,
            implementation,
            seconds_per_packet,
        })
    };

    // quicseal: one pass from the caller's buffer into the send buffer.
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).unwrap();
    row(
        "seal",
        "quicseal",
        time(|pn| {
            let mut src = source.clone();
            src[HEADER_LEN - 2..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
            let _ = black_box(tx.seal(&[&src], &mut [&mut out]));
        }),
    );
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).unwrap();
    let mut src = source.clone();
    row(
        "seal",
        "quicseal, 4+2 segments",
        time(|pn| {
            src[HEADER_LEN - 2..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
            let (a, rest) = src.split_at(7);
            let (b, rest) = rest.split_at(400);
            let (c, d) = rest.split_at(500);
            let (x, y) = out.split_at_mut(700);
            let _ = black_box(tx.seal(&[a, b, c, d], &mut [x, y]));
        }),
    );

    // ring and RustCrypto: copy, encrypt in place, protect the header.
    let ring_key = aead::LessSafeKey::new(
        aead::UnboundKey::new(
            match suite {
                CipherSuite::Aes128GcmSha256 => &aead::AES_128_GCM,
                CipherSuite::Aes256GcmSha384 => &aead::AES_256_GCM,
                CipherSuite::ChaCha20Poly1305Sha256 => &aead::CHACHA20_POLY1305,
            },
            keys.key(),
        )
        .unwrap(),
    );
    let ring_hp = quic::HeaderProtectionKey::new(
        match suite {
            CipherSuite::Aes128GcmSha256 => &quic::AES_128,
            CipherSuite::Aes256GcmSha384 => &quic::AES_256,
            CipherSuite::ChaCha20Poly1305Sha256 => &quic::CHACHA20,
        },
        keys.hp(),
    )
    .unwrap();
    let ring_seal = |pn: u64, out: &mut [u8]| {
        out[..PACKET_LEN - 16].copy_from_slice(&source);
        out[HEADER_LEN - 2..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let (payload, tag_out) = body.split_at_mut(PAYLOAD_LEN);
        let tag = ring_key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce(keys.iv(), pn)),
                aead::Aad::from(&*head),
                payload,
            )
            .unwrap();
        tag_out.copy_from_slice(tag.as_ref());
        let mask = ring_hp.new_mask(&out[DCID_LEN + 5..DCID_LEN + 21]).unwrap();
        apply_mask(out, mask);
    };
    row(
        "seal",
        "ring",
        time(|pn| ring_seal(pn, black_box(&mut out))),
    );

    let aes128 = aes_gcm::Aes128Gcm::new_from_slice(&keys.key()[..16]).unwrap();
    let aes256 =
        aes_gcm::Aes256Gcm::new_from_slice(&[keys.key(), keys.key()].concat()[..32]).unwrap();
    let chacha = chacha20poly1305::ChaCha20Poly1305::new_from_slice(
        &[keys.key(), keys.key()].concat()[..32],
    )
    .unwrap();
    let rustcrypto_seal = |pn: u64, out: &mut [u8]| {
        out[..PACKET_LEN - 16].copy_from_slice(&source);
        out[HEADER_LEN - 2..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
        let n = nonce(keys.iv(), pn);
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let (payload, tag_out) = body.split_at_mut(PAYLOAD_LEN);
        let tag = match suite {
            CipherSuite::Aes128GcmSha256 => {
                aes128.encrypt_inout_detached(&n.into(), head, payload.into())
            }
            CipherSuite::Aes256GcmSha384 => {
                aes256.encrypt_inout_detached(&n.into(), head, payload.into())
            }
            CipherSuite::ChaCha20Poly1305Sha256 => {
                chacha.encrypt_inout_detached(&n.into(), head, payload.into())
            }
        }
        .unwrap();
        tag_out.copy_from_slice(&tag);
        let mask = rustcrypto_mask(suite, keys.hp(), &out[DCID_LEN + 5..DCID_LEN + 21]);
        apply_mask(out, mask);
    };
    // The AEAD keys are expanded once (the other suites' ciphers are unused filler); the
    // header-protection key per packet: the one-shot crates offer no cached form of it.
    row(
        "seal",
        "RustCrypto one-shot",
        time(|pn| rustcrypto_seal(pn, black_box(&mut out))),
    );

    // Open: quicseal in place vs ring in place, each removing header protection too.
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).unwrap();
    let sealed: Vec<Vec<u8>> = (0..BATCH * (RUNS as u64 + 1) + BATCH / 4 + 1)
        .map(|pn| {
            let mut o = vec![0u8; PACKET_LEN];
            let _ = tx.seal(&[&cleartext(pn)], &mut [&mut o]).unwrap();
            o
        })
        .collect();
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
    let mut buffer = vec![0u8; PACKET_LEN];
    row(
        "open",
        "quicseal",
        time(|pn| {
            buffer.copy_from_slice(&sealed[pn as usize]);
            let _ = black_box(rx.open_in_place(&mut buffer));
        }),
    );
    row(
        "open",
        "ring",
        time(|pn| {
            buffer.copy_from_slice(&sealed[pn as usize]);
            let mask = ring_hp
                .new_mask(&buffer[DCID_LEN + 5..DCID_LEN + 21])
                .unwrap();
            apply_mask(&mut buffer, mask);
            let (head, body) = buffer.split_at_mut(HEADER_LEN);
            let _ = black_box(ring_key.open_in_place(
                aead::Nonce::assume_unique_for_key(nonce(keys.iv(), pn)),
                aead::Aad::from(&*head),
                body,
            ));
        }),
    );
}

fn main() {
    let write_docs = std::env::args().any(|a| a == "--write-docs");
    let mut rows = Vec::new();
    for (i, suite) in CipherSuite::ALL.into_iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, CipherSuite::ALL.len(), suite.name());
        bench_suite(suite, &mut rows);
    }
    let table = render_table(&rows);
    println!("{table}");
    if write_docs {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::write(root.join("docs/protect.svg"), render_svg(&rows)).unwrap();
        update_docs(&root.join("docs/performance.md"), &table);
        eprintln!("wrote docs/performance.md and docs/protect.svg");
    }
}

fn mbps(seconds_per_packet: f64) -> f64 {
    PACKET_LEN as f64 / seconds_per_packet / 1e6
}

/// The ring row for the same suite and operation, the baseline of every ratio.
fn baseline<'a>(rows: &'a [Row], row: &Row) -> &'a Row {
    rows.iter()
        .find(|r| {
            r.suite == row.suite && r.operation == row.operation && r.implementation == "ring"
        })
        .unwrap()
}

fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| suite | operation | implementation | ns/packet | MB/s | vs ring |\n|---|---|---|---:|---:|---:|\n",
    );
    for row in rows {
        let ratio = baseline(rows, row).seconds_per_packet / row.seconds_per_packet;
        out += &format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2}x |\n",
            row.suite.name(),
            row.operation,
            row.implementation,
            row.seconds_per_packet * 1e9,
            mbps(row.seconds_per_packet),
            ratio
        );
    }
    out
}

/// A horizontal bar chart of MB/s, one bar per row, grouped by suite.
fn render_svg(rows: &[Row]) -> String {
    let (width, bar, gap, left) = (960.0, 18.0, 6.0, 440.0);
    let max = rows
        .iter()
        .map(|r| mbps(r.seconds_per_packet))
        .fold(0.0, f64::max);
    let height = 40.0 + rows.len() as f64 * (bar + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">1-RTT packet protection, {PACKET_LEN}-byte packets: MB/s (higher is better)</text>\n"
    );
    for (i, row) in rows.iter().enumerate() {
        let y = 35.0 + i as f64 * (bar + gap);
        let value = mbps(row.seconds_per_packet);
        let w = (width - left - 80.0) * value / max;
        let color = match row.implementation {
            "ring" => "#888888",
            i if i.starts_with("quicseal") => "#2b6cb0",
            _ => "#c05621",
        };
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {} — {}</text>\n<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{}\">{value:.0}</text>\n",
            left - 6.0,
            y + 13.0,
            row.suite.name().trim_start_matches("TLS_"),
            row.operation,
            row.implementation,
            left + w + 4.0,
            y + 13.0,
        );
    }
    svg + "</svg>\n"
}

const BEGIN: &str = "<!-- BEGIN packet-protection (written by `cargo bench -p quicseal --bench protect -- --write-docs`) -->";
const END: &str = "<!-- END packet-protection -->";

fn update_docs(path: &std::path::Path, table: &str) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let section = format!(
        "{BEGIN}\n## Packet protection (core)\n\n\
         Command: `cargo bench -p quicseal --bench protect -- --write-docs` (release, one thread).\n\
         Machine: {cpu}, {cores} cores, shared VM: wall-clock medians of {RUNS} runs of {BATCH} packets; read the ratios.\n\n\
         Each row protects {PACKET_LEN}-byte packets (8-byte DCID, 2-byte packet number, {PAYLOAD_LEN}-byte payload) from a\n\
         cleartext buffer into a send buffer, header protection included. quicseal does it in one pass;\n\
         ring and RustCrypto copy first and then encrypt in place, as a stack using them would.\n\n\
         {table}\n![packet protection throughput](protect.svg)\n{END}"
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance\n".into());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(path, new).unwrap();
}
