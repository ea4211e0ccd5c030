//! Packet protection cost: quicseal next to ring, aws-lc-rs and RustCrypto's one-shot AEADs
//! doing the same job, in one run, as ratios.
//!
//! The job is what a QUIC sender does with a packet it has built: protect it into the buffer
//! it will send, header protection included. quicseal seals copy-fused, from a separate
//! cleartext buffer into the send buffer, in one pass. The peers work as a stack using them
//! would: ring and aws-lc-rs seal in place in the send buffer (the packet already built
//! there), RustCrypto after a memcpy into it. Opening is in place for everyone, header
//! protection removed first. `memcpy` alone is the floor.
//!
//! `cargo bench -p quicseal --features std --bench protect` prints a table and one summary
//! line per suite and operation; `-- --quick` takes fewer samples; `-- --fastest` reports each
//! contender's fastest of many short runs instead of the median (for comparing two builds);
//! other arguments pick cases
//! (`-- AES-128-GCM 1350`); `-- --write-docs` also rewrites its section of docs/performance.md
//! and docs/protect.svg. Timings are wall-clock medians of repeated runs; the table also
//! gives paired ratios, medians of the ratios within a round of turns (see `ratio`): compare
//! the ratios, not the numbers across machines. `QUICSEAL_BACKEND` picks quicseal's
//! implementation as it does everywhere (the default is the fastest the CPU has); the core
//! reads it only with its `std` feature, hence `--features std`.

use std::hint::black_box;
use std::time::Instant;

use aes::cipher::{BlockCipherEncrypt, KeyInit as _};
use aes_gcm::aead::AeadInOut;
use chacha20::cipher::{KeyIvInit as _, StreamCipher as _, StreamCipherSeek as _};
use quicseal::backend::{Auto, Backend, Implementation, Portable};
use quicseal::{CipherSuite, FlowConfig, KeyMaterial, RxFlow, TrafficSecret, TxFlow};

/// Datagram sizes on the wire, tag included.
const SIZES: [usize; 5] = [64, 256, 1200, 1350, 1452];
/// The size the summary lines and the figure report.
const SUMMARY_SIZE: usize = 1350;
const DCID_LEN: usize = 8;
/// Short header: first byte, DCID, 2-byte packet number.
const HEADER_LEN: usize = 1 + DCID_LEN + 2;
const PN_OFFSET: usize = 1 + DCID_LEN;
const TAG_LEN: usize = 16;

/// How many samples to take.
#[derive(Clone, Copy)]
struct Effort {
    /// Packets per timed run.
    batch: u64,
    /// Timed runs per case.
    runs: usize,
    /// Report each contender's fastest run instead of the median: steadier for comparing
    /// two builds on a shared machine, whose slow phases only ever add time.
    fastest: bool,
}

const FULL: Effort = Effort {
    batch: 1000,
    runs: 41,
    fastest: false,
};
const QUICK: Effort = Effort {
    batch: 500,
    runs: 15,
    fastest: false,
};
/// `--fastest`: many short runs, the fastest reported.
const FASTEST: Effort = Effort {
    batch: 100,
    runs: 201,
    fastest: true,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operation {
    Seal,
    Open,
    /// Sealing a GSO batch of `GSO_BATCH` packets in one call (peers: one call a packet).
    SealBatch,
    /// Opening a GRO batch of `GSO_BATCH` packets in one call (peers: one call a packet).
    OpenBatch,
}

/// Packets in one GSO (or GRO) batch.
const GSO_BATCH: usize = 64;

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Seal => "seal+HP",
            Operation::Open => "open+HP",
            Operation::SealBatch => "seal+HP, batch of 64",
            Operation::OpenBatch => "open+HP, batch of 64",
        }
    }
}

const QUICSEAL: &str = "quicseal copy-fused";
const QUICSEAL_SEGMENTED: &str = "quicseal copy-fused, 4+2 segments";
const QUICSEAL_PORTABLE: &str = "quicseal portable";
const RING: &str = "ring in-place";
const AWS_LC: &str = "aws-lc-rs in-place";
const RUSTCRYPTO: &str = "memcpy+RustCrypto";
const MEMCPY: &str = "memcpy";

/// Column order of the table: quicseal first, then the peers.
const IMPLEMENTATIONS: [&str; 7] = [
    QUICSEAL,
    QUICSEAL_SEGMENTED,
    QUICSEAL_PORTABLE,
    RING,
    AWS_LC,
    RUSTCRYPTO,
    MEMCPY,
];

/// One measurement.
struct Sample {
    suite: CipherSuite,
    size: usize,
    operation: Operation,
    implementation: &'static str,
    seconds_per_packet: f64,
    /// Seconds per call in each of the race's rounds (a call seals or opens a packet, or a
    /// batch in the batch rows): only their ratios are read.
    rounds: Vec<f64>,
}

fn short_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::Aes128GcmSha256 => "AES-128-GCM",
        CipherSuite::Aes256GcmSha384 => "AES-256-GCM",
        CipherSuite::ChaCha20Poly1305Sha256 => "ChaCha20-Poly1305",
    }
}

/// A cleartext packet of `size` bytes on the wire (so `size - 16` before sealing).
fn cleartext(size: usize, pn: u64) -> Vec<u8> {
    let mut packet: Vec<u8> = (0..size - TAG_LEN).map(|i| i as u8).collect();
    packet[0] = 0x41;
    packet[1..PN_OFFSET].copy_from_slice(b"bench-id");
    set_pn(&mut packet, pn);
    packet
}

fn set_pn(packet: &mut [u8], pn: u64) {
    packet[PN_OFFSET..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
}

/// A peer's operation on one packet in place: `(pn, packet)`.
type PeerOperation = Box<dyn Fn(u64, &mut [u8])>;

/// A contender: a name and what it does to packet `pn`.
type Contender<'a> = (&'static str, Box<dyn FnMut(u64) + 'a>);

/// What [`race`] measured of one contender.
struct Timing {
    name: &'static str,
    /// Median (or, with `effort.fastest`, least) seconds per call.
    seconds: f64,
    /// Seconds per call in each round, in round order.
    rounds: Vec<f64>,
}

/// Times each contender, packet numbers counting up from 1. The contenders take turns, one
/// batch each per round, so that a machine that speeds up or slows down during the
/// measurement does so for all of them alike, and a round's batches can be compared with
/// each other (see [`ratio`]). Before each batch, untimed, `warm(first, count)` brings what
/// the batch reads into the cache, and each round starts with the next contender: where a
/// batch's packets are more than the caches near the core hold (opens of 500 or 1 000
/// sealed packets, 0.7 to 1.4 MB), whoever went first in a round took longer, warmed or
/// not (a loop of AES-128-GCM opens of 1350-byte packets in turns with aws-lc-rs's, 1 000
/// packets a batch: quicseal 189 ns and aws-lc-rs 212 going first, 146 and 257 going
/// second).
fn race(effort: Effort, contenders: &mut [Contender<'_>], warm: impl Fn(u64, u64)) -> Vec<Timing> {
    let mut samples = vec![Vec::with_capacity(effort.runs); contenders.len()];
    let mut pn = 1u64;
    let count = contenders.len();
    for round in 0..=effort.runs {
        for turn in 0..count {
            let index = (round + turn) % count;
            let (_, f) = &mut contenders[index];
            warm(pn, effort.batch);
            let start = Instant::now();
            for i in 0..effort.batch {
                f(pn + i);
            }
            // Round 0 warms up.
            if round > 0 {
                samples[index].push(start.elapsed().as_secs_f64() / effort.batch as f64);
            }
        }
        pn += effort.batch;
    }
    contenders
        .iter()
        .zip(samples)
        .map(|((name, _), rounds): (&Contender<'_>, Vec<f64>)| {
            let mut sorted = rounds.clone();
            sorted.sort_by(f64::total_cmp);
            let seconds = if effort.fastest {
                sorted[0]
            } else {
                sorted[sorted.len() / 2]
            };
            Timing {
                name,
                seconds,
                rounds,
            }
        })
        .collect()
}

/// What `race` calls before each batch that opens `sealed[first..first + count]`: touches a
/// byte of every cache line of them, untimed, so every contender finds them cached alike.
fn warm(sealed: &[Vec<u8>]) -> impl Fn(u64, u64) + '_ {
    move |first, count| {
        let touched = sealed[first as usize..(first + count) as usize]
            .iter()
            .flat_map(|packet| packet.iter().step_by(64))
            .fold(0u8, |a, b| a ^ b);
        black_box(touched);
    }
}

/// Packets `race` will ask for.
fn packets_needed(effort: Effort) -> u64 {
    effort.batch * (effort.runs as u64 + 1) + 1
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
    for (b, m) in packet[PN_OFFSET..HEADER_LEN].iter_mut().zip(&mask[1..]) {
        *b ^= m;
    }
}

/// The header-protection sample of a packet with a 2-byte packet number.
fn sample(packet: &[u8]) -> &[u8] {
    &packet[PN_OFFSET + 4..PN_OFFSET + 20]
}

fn nonce(iv: &[u8; 12], pn: u64) -> [u8; 12] {
    let mut n = *iv;
    for (a, b) in n[4..].iter_mut().zip(pn.to_be_bytes()) {
        *a ^= b;
    }
    n
}

/// Seal and open closures for ring and aws-lc-rs, whose `aead` and `quic` APIs are the same.
macro_rules! peer {
    ($aead:path, $quic:path, $suite:expr, $keys:expr) => {{
        use $aead as aead;
        use $quic as quic;
        let keys: &KeyMaterial = $keys;
        let key = std::rc::Rc::new(aead::LessSafeKey::new(
            aead::UnboundKey::new(
                match $suite {
                    CipherSuite::Aes128GcmSha256 => &aead::AES_128_GCM,
                    CipherSuite::Aes256GcmSha384 => &aead::AES_256_GCM,
                    CipherSuite::ChaCha20Poly1305Sha256 => &aead::CHACHA20_POLY1305,
                },
                keys.key(),
            )
            .unwrap(),
        ));
        let hp = std::rc::Rc::new(
            quic::HeaderProtectionKey::new(
                match $suite {
                    CipherSuite::Aes128GcmSha256 => &quic::AES_128,
                    CipherSuite::Aes256GcmSha384 => &quic::AES_256,
                    CipherSuite::ChaCha20Poly1305Sha256 => &quic::CHACHA20,
                },
                keys.hp(),
            )
            .unwrap(),
        );
        let iv = *keys.iv();
        let (seal_key, seal_hp) = (key.clone(), hp.clone());
        // `packet` holds the built packet and room for the tag.
        let seal = move |pn: u64, packet: &mut [u8]| {
            set_pn(packet, pn);
            let (head, body) = packet.split_at_mut(HEADER_LEN);
            let (payload, tag_out) = body.split_at_mut(body.len() - TAG_LEN);
            let tag = seal_key
                .seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce(&iv, pn)),
                    aead::Aad::from(&*head),
                    payload,
                )
                .unwrap();
            tag_out.copy_from_slice(tag.as_ref());
            let mask = seal_hp.new_mask(sample(packet)).unwrap();
            apply_mask(packet, mask);
        };
        let open = move |pn: u64, packet: &mut [u8]| {
            let mask = hp.new_mask(sample(packet)).unwrap();
            apply_mask(packet, mask);
            let (head, body) = packet.split_at_mut(HEADER_LEN);
            let _ = black_box(key.open_in_place(
                aead::Nonce::assume_unique_for_key(nonce(&iv, pn)),
                aead::Aad::from(&*head),
                body,
            ));
        };
        (seal, open)
    }};
}

/// quicseal sealing copy-fused from its own cleartext buffer into its own send buffer.
fn quicseal_seal<B: Backend>(mut tx: TxFlow<B>, src: &[u8], size: usize) -> impl FnMut(u64) {
    let (mut src, mut out) = (src.to_vec(), vec![0u8; size]);
    move |pn| {
        set_pn(&mut src, pn);
        let _ = black_box(tx.seal(&[&src], &mut [&mut out]));
    }
}

/// quicseal sealing copy-fused from a cleartext cut into four segments whose boundaries fall
/// inside AES blocks (7 bytes of header, then thirds of the rest) into a send buffer cut in two
/// at an odd offset: what an `iovec` array or a chain of buffers hands over.
fn quicseal_seal_segmented<B: Backend>(
    mut tx: TxFlow<B>,
    src: &[u8],
    size: usize,
) -> impl FnMut(u64) {
    let mut src = src.to_vec();
    let mut out = vec![0u8; size];
    let third = (src.len() - 7) / 3;
    let (a, b, c) = (7, 7 + third, 7 + 2 * third);
    let split = size / 2 + 3;
    move |pn| {
        set_pn(&mut src, pn);
        let (head, rest) = src.split_at(a);
        let (one, rest) = rest.split_at(b - a);
        let (two, three) = rest.split_at(c - b);
        let (x, y) = out.split_at_mut(split);
        let _ = black_box(tx.seal(&[head, one, two, three], &mut [x, y]));
    }
}

/// quicseal opening a copy of sealed packet `pn` in place.
fn quicseal_open<'a, B: Backend + 'a>(
    mut rx: RxFlow<B>,
    sealed: &'a [Vec<u8>],
) -> impl FnMut(u64) + 'a {
    let mut buffer = vec![0u8; sealed[0].len()];
    move |pn| {
        buffer.copy_from_slice(&sealed[pn as usize]);
        let _ = black_box(rx.open_in_place(&mut buffer));
    }
}

/// A peer's in-place operation on its own buffer, which starts as `packet`; with `sealed`,
/// each call first copies sealed packet `pn` into it.
fn in_place<'a>(
    mut operation: impl FnMut(u64, &mut [u8]) + 'a,
    packet: Vec<u8>,
    sealed: Option<&'a [Vec<u8>]>,
) -> Box<dyn FnMut(u64) + 'a> {
    let mut buffer = packet;
    Box::new(move |pn| {
        if let Some(sealed) = sealed {
            buffer.copy_from_slice(&sealed[pn as usize]);
        }
        operation(pn, black_box(&mut buffer));
    })
}

/// RustCrypto as a stack would use it: copy the packet into the send buffer, encrypt there,
/// protect the header. The AEAD key is expanded once; the header-protection key per packet,
/// as the one-shot crates offer no cached form of it.
fn rustcrypto_seal<'a>(
    suite: CipherSuite,
    keys: &'a KeyMaterial,
    src: &'a [u8],
) -> impl FnMut(u64, &mut [u8]) + 'a {
    let key = keys.key();
    let aes128 = (suite == CipherSuite::Aes128GcmSha256)
        .then(|| aes_gcm::Aes128Gcm::new_from_slice(key).unwrap());
    let aes256 = (suite == CipherSuite::Aes256GcmSha384)
        .then(|| aes_gcm::Aes256Gcm::new_from_slice(key).unwrap());
    let chacha = (suite == CipherSuite::ChaCha20Poly1305Sha256)
        .then(|| chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).unwrap());
    move |pn, out: &mut [u8]| {
        out[..src.len()].copy_from_slice(src);
        set_pn(out, pn);
        let n = nonce(keys.iv(), pn);
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let (payload, tag_out) = body.split_at_mut(body.len() - TAG_LEN);
        let tag = match (&aes128, &aes256, &chacha) {
            (Some(k), _, _) => k.encrypt_inout_detached(&n.into(), head, payload.into()),
            (_, Some(k), _) => k.encrypt_inout_detached(&n.into(), head, payload.into()),
            (_, _, Some(k)) => k.encrypt_inout_detached(&n.into(), head, payload.into()),
            _ => unreachable!("one cipher per suite"),
        }
        .unwrap();
        tag_out.copy_from_slice(&tag);
        let mask = rustcrypto_mask(suite, keys.hp(), sample(out));
        apply_mask(out, mask);
    }
}

fn bench_size(suite: CipherSuite, size: usize, effort: Effort, samples: &mut Vec<Sample>) {
    let secret = vec![0x5a; suite.secret_len()];
    let keys: KeyMaterial = TrafficSecret::new(suite, &secret).unwrap().key_material();
    let config = FlowConfig::new(DCID_LEN);
    let src = cleartext(size, 0);
    // The packet built in its send buffer, with room for the tag.
    let mut built = src.clone();
    built.resize(size, 0);
    let (ring_seal, ring_open) = peer!(ring::aead, ring::aead::quic, suite, &keys);
    let (aws_seal, aws_open) = peer!(aws_lc_rs::aead, aws_lc_rs::aead::quic, suite, &keys);

    let mut seal: Vec<Contender<'_>> = vec![
        (
            QUICSEAL,
            Box::new(quicseal_seal(
                TxFlow::<Auto>::from_secret(suite, &secret, config).unwrap(),
                &src,
                size,
            )),
        ),
        (
            QUICSEAL_SEGMENTED,
            Box::new(quicseal_seal_segmented(
                TxFlow::<Auto>::from_secret(suite, &secret, config).unwrap(),
                &src,
                size,
            )),
        ),
        (
            QUICSEAL_PORTABLE,
            Box::new(quicseal_seal(
                TxFlow::<Portable>::from_secret(suite, &secret, config).unwrap(),
                &src,
                size,
            )),
        ),
        (RING, in_place(ring_seal, built.clone(), None)),
        (AWS_LC, in_place(aws_seal, built.clone(), None)),
        (
            RUSTCRYPTO,
            in_place(rustcrypto_seal(suite, &keys, &src), built.clone(), None),
        ),
        (
            MEMCPY,
            in_place(
                |_, out: &mut [u8]| out[..src.len()].copy_from_slice(black_box(&src)),
                built.clone(),
                None,
            ),
        ),
    ];
    for Timing {
        name: implementation,
        seconds,
        rounds,
    } in race(effort, &mut seal, |_, _| {})
    {
        samples.push(Sample {
            suite,
            size,
            operation: Operation::Seal,
            implementation,
            seconds_per_packet: seconds,
            rounds,
        });
    }
    drop(seal);

    // Open: every implementation in place, from a copy of a sealed packet.
    let mut tx: TxFlow<Portable> = TxFlow::from_secret(suite, &secret, config).unwrap();
    let sealed: Vec<Vec<u8>> = (0..packets_needed(effort))
        .map(|pn| {
            let mut packet = vec![0u8; size];
            let _ = tx
                .seal(&[&cleartext(size, pn)], &mut [&mut packet])
                .unwrap();
            packet
        })
        .collect();
    let mut open: Vec<Contender<'_>> = vec![
        (
            QUICSEAL,
            Box::new(quicseal_open(
                RxFlow::<Auto>::from_secret(suite, &secret, config).unwrap(),
                &sealed,
            )),
        ),
        (
            QUICSEAL_PORTABLE,
            Box::new(quicseal_open(
                RxFlow::<Portable>::from_secret(suite, &secret, config).unwrap(),
                &sealed,
            )),
        ),
        (RING, in_place(ring_open, built.clone(), Some(&sealed))),
        (AWS_LC, in_place(aws_open, built.clone(), Some(&sealed))),
    ];
    for Timing {
        name: implementation,
        seconds,
        rounds,
    } in race(effort, &mut open, warm(&sealed))
    {
        samples.push(Sample {
            suite,
            size,
            operation: Operation::Open,
            implementation,
            seconds_per_packet: seconds,
            rounds,
        });
    }
    drop(open);
    bench_batches(suite, size, effort, &keys, samples);
}

/// Batches of `GSO_BATCH` packets: quicseal seals a GSO batch and opens a GRO batch in one
/// call each; the peers take the packets one by one, as they have no batch call.
fn bench_batches(
    suite: CipherSuite,
    size: usize,
    effort: Effort,
    keys: &KeyMaterial,
    samples: &mut Vec<Sample>,
) {
    let secret = vec![0x5a; suite.secret_len()];
    let config = FlowConfig::new(DCID_LEN);
    // Fewer calls per timed run: each call is a whole batch.
    let effort = Effort {
        batch: (effort.batch / 64).max(4),
        ..effort
    };
    let stride = size - TAG_LEN;
    let cleartext = cleartext(size, 0).repeat(GSO_BATCH);
    // Packet `i` of call `call` carries packet number `call * GSO_BATCH + i + 1`.
    let number = |call: u64, i: usize| call * GSO_BATCH as u64 + i as u64 + 1;
    let (ring_seal, ring_open) = peer!(ring::aead, ring::aead::quic, suite, keys);
    let (aws_seal, aws_open) = peer!(aws_lc_rs::aead, aws_lc_rs::aead::quic, suite, keys);
    let one_by_one = |seal: PeerOperation| -> Box<dyn FnMut(u64)> {
        let mut out = cleartext
            .chunks(stride)
            .flat_map(|packet| packet.iter().copied().chain([0; TAG_LEN]))
            .collect::<Vec<u8>>();
        Box::new(move |call| {
            for (i, packet) in out.chunks_mut(size).enumerate() {
                seal(number(call, i), black_box(packet));
            }
        })
    };
    let mut seal: Vec<Contender<'_>> = vec![
        (
            QUICSEAL,
            Box::new({
                let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).unwrap();
                let mut src = cleartext.clone();
                let mut out = vec![0u8; size * GSO_BATCH];
                let mut results = [Err(quicseal::Error::Malformed); GSO_BATCH];
                move |call| {
                    for (i, packet) in src.chunks_mut(stride).enumerate() {
                        set_pn(packet, number(call, i));
                    }
                    let _ = black_box(tx.seal_gso(&[&src], size, &mut [&mut out], &mut results));
                }
            }),
        ),
        (RING, one_by_one(Box::new(ring_seal))),
        (AWS_LC, one_by_one(Box::new(aws_seal))),
    ];
    for Timing {
        name: implementation,
        seconds,
        rounds,
    } in race(effort, &mut seal, |_, _| {})
    {
        samples.push(Sample {
            suite,
            size,
            operation: Operation::SealBatch,
            implementation,
            seconds_per_packet: seconds / GSO_BATCH as f64,
            rounds,
        });
    }
    drop(seal);

    // Sealed batches, one per call.
    let mut tx: TxFlow<Portable> = TxFlow::from_secret(suite, &secret, config).unwrap();
    let batches: Vec<Vec<u8>> = (0..packets_needed(effort))
        .map(|call| {
            let mut src = cleartext.clone();
            for (i, packet) in src.chunks_mut(stride).enumerate() {
                set_pn(packet, number(call, i));
            }
            let mut out = vec![0u8; size * GSO_BATCH];
            let mut results = [Err(quicseal::Error::Malformed); GSO_BATCH];
            let _ = tx
                .seal_gso(&[&src], size, &mut [&mut out], &mut results)
                .unwrap();
            out
        })
        .collect();
    let open_one_by_one = |open: PeerOperation| -> Box<dyn FnMut(u64) + '_> {
        let mut buffer = vec![0u8; size * GSO_BATCH];
        let batches = &batches;
        Box::new(move |call| {
            buffer.copy_from_slice(&batches[call as usize]);
            for (i, packet) in buffer.chunks_mut(size).enumerate() {
                open(number(call, i), black_box(packet));
            }
        })
    };
    let mut open: Vec<Contender<'_>> = vec![
        (
            QUICSEAL,
            Box::new({
                let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).unwrap();
                let mut buffer = vec![0u8; size * GSO_BATCH];
                let mut results = [Err(quicseal::Error::Malformed); GSO_BATCH];
                let batches = &batches;
                move |call| {
                    buffer.copy_from_slice(&batches[call as usize]);
                    let _ = black_box(rx.open_gro(&mut buffer, size, &mut results));
                }
            }),
        ),
        (RING, open_one_by_one(Box::new(ring_open))),
        (AWS_LC, open_one_by_one(Box::new(aws_open))),
    ];
    for Timing {
        name: implementation,
        seconds,
        rounds,
    } in race(effort, &mut open, warm(&batches))
    {
        samples.push(Sample {
            suite,
            size,
            operation: Operation::OpenBatch,
            implementation,
            seconds_per_packet: seconds / GSO_BATCH as f64,
            rounds,
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let write_docs = args.iter().any(|a| a == "--write-docs");
    let effort = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else if args.iter().any(|a| a == "--fastest") {
        FASTEST
    } else {
        FULL
    };
    // Other arguments pick cases: a suite's short name or a size each must match.
    let filters: Vec<&String> = args[1..]
        .iter()
        .filter(|a| !a.starts_with("--") && *a != "--bench")
        .collect();
    let selected = |suite: CipherSuite, size: usize| {
        filters
            .iter()
            .all(|f| short_name(suite).eq_ignore_ascii_case(f) || size.to_string() == **f)
    };
    let implementation = Implementation::selected();
    let mut samples = Vec::new();
    let cases = CipherSuite::ALL
        .into_iter()
        .flat_map(|suite| SIZES.map(|size| (suite, size)))
        .filter(|&(suite, size)| selected(suite, size))
        .count();
    let mut case = 0;
    for suite in CipherSuite::ALL {
        for size in SIZES {
            if !selected(suite, size) {
                continue;
            }
            case += 1;
            eprint!("\r[{case}/{cases}] {} {size} B   ", short_name(suite));
            bench_size(suite, size, effort, &mut samples);
        }
    }
    eprintln!();
    let table = render_table(&samples);
    println!("{table}");
    let summary = summary_lines(&samples, implementation);
    // Printed before the summary lines, which end the output.
    let limit = aes_gcm_limits().unwrap_or_default();
    print!("{limit}");
    if write_docs {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::write(root.join("docs/protect.svg"), render_svg(&samples)).unwrap();
        update_docs(
            &root.join("docs/performance.md"),
            &table,
            &format!("{limit}{summary}"),
            implementation,
            effort,
        );
        eprintln!("wrote docs/performance.md and docs/protect.svg");
    }
    println!("{summary}");
}

/// Rounds in one AES-128 encryption: nine `aesenc` and one `aesenclast`.
const AES128_ROUNDS: u64 = 10;

/// GHASH's 64 x 64-bit carry-less products per eight blocks, as the backends compute it:
/// three a block (Karatsuba), and a reduction's two.
const GHASH_PRODUCTS_PER_EIGHT: u64 = 8 * 3 + 2;

/// The CPU's limits for AES-GCM, from a short probe with the widest AES and carry-less
/// multiply instructions the CPU has and enough independent registers in flight to fill its
/// units: what AES-128-GCM's AES rounds alone would cost per 1350-byte packet (the payload's
/// counter blocks, E(J0) and the header-protection block), and what they cost with GHASH's
/// carry-less products beside them, as many as the packet needs (its payload, AAD and
/// lengths blocks). Where the two kinds of instruction share execution units (AMD Zen 3:
/// a 256-bit VPCLMULQDQ holds the units VAES runs on), the second line is the floor a
/// one-pass AES-GCM reaches for, not the first. Loads, stores and the rest come on top.
#[cfg(target_arch = "x86_64")]
fn aes_gcm_limits() -> Option<String> {
    use std::arch::x86_64::*;
    /// Encryption rounds a probe iteration runs on each of its 8 registers.
    const ROUNDS: u64 = 20;
    /// Carry-less multiplications a probe iteration runs on each of 4 other registers: as
    /// many products a block-round as a packet's GHASH has to its AES-128 rounds (a register
    /// holds as many blocks as one instruction makes products).
    const STEPS: u64 = 8 * ROUNDS * GHASH_PRODUCTS_PER_EIGHT / (8 * AES128_ROUNDS * 4);
    const { assert!(STEPS * 8 * AES128_ROUNDS * 4 == 8 * ROUNDS * GHASH_PRODUCTS_PER_EIGHT) };
    /// `rounds` rounds over 8 registers and `steps` carry-less multiplications on each of 4
    /// others, a step of each in turn, `iterations` times; returns what every register
    /// holds, folded into one, so that no register's chain is optimised away (returning one
    /// register once let the compiler drop the other seven, and the probe timed the latency
    /// of a single chain: twice the true throughput on AMD Zen 4).
    macro_rules! probe {
        ($ty:ty, $zero:expr, $round:ident, $clmul:ident, $xor:ident, $features:literal) => {{
            #[target_feature(enable = $features)]
            fn run(iterations: u64, rounds: u64, steps: u64) -> $ty {
                let key = $zero;
                let mut state = [$zero; 8];
                let mut hash = [$zero; 4];
                for _ in 0..iterations {
                    // Interleaved, as a one-pass loop interleaves them.
                    for step in 0..rounds.max(steps) {
                        if step < rounds {
                            for block in &mut state {
                                *block = $round(*block, key);
                            }
                        }
                        if step < steps {
                            for h in &mut hash {
                                *h = $clmul::<0x01>(*h, key);
                            }
                        }
                    }
                }
                state
                    .into_iter()
                    .chain(hash)
                    .fold($zero, |all, block| $xor(all, block))
            }
            let iterations = 25_000;
            // Seconds an iteration takes.
            let time = |rounds: u64, steps: u64| {
                let start = Instant::now();
                // SAFETY: the caller checked the features.
                let _ = black_box(unsafe { run(iterations, rounds, steps) });
                start.elapsed().as_secs_f64() / iterations as f64
            };
            // The fastest of several turns, the three probes taking turns as the contenders
            // do, so that a slow phase of the machine (a shared VM's) slows all of them.
            let mut fastest = [f64::MAX; 3];
            for _ in 0..20 {
                let turn = [time(ROUNDS, 0), time(0, STEPS), time(ROUNDS, STEPS)];
                for (fastest, seconds) in fastest.iter_mut().zip(turn) {
                    *fastest = fastest.min(seconds);
                }
            }
            let [rounds, products, both] = fastest;
            (rounds, products, both, size_of::<$ty>() / 16, $features)
        }};
    }
    let wide = is_x86_feature_detected!("vaes") && is_x86_feature_detected!("vpclmulqdq");
    let (rounds, products, both, width, features) = if wide && is_x86_feature_detected!("avx512f") {
        probe!(
            __m512i,
            _mm512_setzero_si512(),
            _mm512_aesenc_epi128,
            _mm512_clmulepi64_epi128,
            _mm512_xor_si512,
            "avx512f,vaes,vpclmulqdq"
        )
    } else if wide && is_x86_feature_detected!("avx2") {
        probe!(
            __m256i,
            _mm256_setzero_si256(),
            _mm256_aesenc_epi128,
            _mm256_clmulepi64_epi128,
            _mm256_xor_si256,
            "avx2,vaes,vpclmulqdq"
        )
    } else if is_x86_feature_detected!("aes") && is_x86_feature_detected!("pclmulqdq") {
        probe!(
            __m128i,
            _mm_setzero_si128(),
            _mm_aesenc_si128,
            _mm_clmulepi64_si128,
            _mm_xor_si128,
            "aes,pclmulqdq"
        )
    } else {
        return None;
    };
    let payload = SUMMARY_SIZE - HEADER_LEN - TAG_LEN;
    let blocks = payload.div_ceil(16) as u64 + 2;
    // Probe iterations a packet's AES rounds make.
    let per_packet = (blocks * AES128_ROUNDS) as f64 / (8 * ROUNDS * width as u64) as f64;
    let block_rounds_per_ns = 1e-9 * (8 * ROUNDS * width as u64) as f64 / rounds;
    let ns = |seconds: f64| seconds * per_packet * 1e9;
    let ghash_products = blocks * GHASH_PRODUCTS_PER_EIGHT / 8;
    Some(format!(
        "AES-round limit ({features}): AES-128-GCM {SUMMARY_SIZE} B packet's {blocks} blocks x {AES128_ROUNDS} rounds take {:.0} ns at {block_rounds_per_ns:.2} block-rounds per ns\n\
         AES-GCM limit ({features}): those rounds with GHASH's {ghash_products} carry-less products beside them take {:.0} ns (the products alone {:.0} ns)\n",
        ns(rounds),
        ns(both),
        ns(products),
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn aes_gcm_limits() -> Option<String> {
    None
}

fn find(
    samples: &[Sample],
    suite: CipherSuite,
    size: usize,
    operation: Operation,
    implementation: &str,
) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            (s.suite, s.size, s.operation, s.implementation)
                == (suite, size, operation, implementation)
        })
        .map(|s| s.seconds_per_packet)
}

/// How many times longer `peer` took than quicseal: the median, over the race's rounds, of
/// the two contenders' times in the same round. A slow phase of a shared machine that lasts
/// a round or longer slows both sides of each pair alike, where the ratio of two separately
/// picked times meets it on one side only.
fn ratio(
    samples: &[Sample],
    suite: CipherSuite,
    size: usize,
    operation: Operation,
    peer: &str,
) -> Option<f64> {
    let rounds = |implementation: &str| {
        samples
            .iter()
            .find(|s| {
                (s.suite, s.size, s.operation, s.implementation)
                    == (suite, size, operation, implementation)
            })
            .map(|s| &s.rounds)
    };
    let (ours, theirs) = (rounds(QUICSEAL)?, rounds(peer)?);
    let mut ratios: Vec<f64> = theirs.iter().zip(ours).map(|(t, o)| t / o).collect();
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied()
}

/// What `cargo xtask bench --quick` ends with: the implementation quicseal ran, the opening
/// lines, then per suite exactly the one line the issue asks for, sealing 1350-byte packets
/// with header protection. Ratio = peer ns / quicseal ns, so above 1 means quicseal is
/// faster: two decimals against the in-place peers, one against the copy-then-seal baseline,
/// as the issue writes them.
fn summary_lines(samples: &[Sample], implementation: Implementation) -> String {
    let mut out = format!(
        "quicseal copy-fused: `{}` for AES-GCM, `{}` for ChaCha20-Poly1305\n",
        implementation
            .for_suite(CipherSuite::Aes128GcmSha256)
            .name(),
        implementation
            .for_suite(CipherSuite::ChaCha20Poly1305Sha256)
            .name()
    );
    for operation in [Operation::Open, Operation::Seal] {
        for suite in CipherSuite::ALL {
            let Some(ours) = find(samples, suite, SUMMARY_SIZE, operation, QUICSEAL) else {
                continue;
            };
            out += &format!(
                "{} {SUMMARY_SIZE} B {}: quicseal copy-fused {:.0} ns",
                short_name(suite),
                operation.name(),
                ours * 1e9
            );
            for peer in [RING, AWS_LC, RUSTCRYPTO] {
                if let Some(theirs) = find(samples, suite, SUMMARY_SIZE, operation, peer) {
                    let ratio = theirs / ours;
                    out += &match peer {
                        RUSTCRYPTO => format!(", vs {peer} {ratio:.1}x"),
                        _ => format!(", vs {peer} {ratio:.2}x"),
                    };
                }
            }
            out += "\n";
        }
    }
    out
}

fn render_table(samples: &[Sample]) -> String {
    let mut out = String::from("| suite | bytes | operation |");
    for implementation in IMPLEMENTATIONS {
        out += &format!(" {implementation} ns |");
    }
    out += " vs ring | vs aws-lc-rs | vs ring, paired | vs aws-lc-rs, paired |\n|---|---:|---|";
    out += &"---:|".repeat(IMPLEMENTATIONS.len() + 4);
    out += "\n";
    for suite in CipherSuite::ALL {
        for operation in [
            Operation::Seal,
            Operation::Open,
            Operation::SealBatch,
            Operation::OpenBatch,
        ] {
            for size in SIZES {
                if find(samples, suite, size, operation, QUICSEAL).is_none() {
                    continue;
                }
                out += &format!("| {} | {size} | {} |", short_name(suite), operation.name());
                for implementation in IMPLEMENTATIONS {
                    out += &match find(samples, suite, size, operation, implementation) {
                        Some(s) => format!(" {:.0} |", s * 1e9),
                        None => " |".to_string(),
                    };
                }
                let ours = find(samples, suite, size, operation, QUICSEAL).unwrap_or(f64::NAN);
                for peer in [RING, AWS_LC] {
                    let theirs = find(samples, suite, size, operation, peer).unwrap_or(f64::NAN);
                    out += &format!(" {:.2}x |", theirs / ours);
                }
                for peer in [RING, AWS_LC] {
                    let paired = ratio(samples, suite, size, operation, peer).unwrap_or(f64::NAN);
                    out += &format!(" {paired:.2}x |");
                }
                out += "\n";
            }
        }
    }
    out
}

/// Horizontal bars of ns per packet at the summary size, grouped by suite and operation.
fn render_svg(samples: &[Sample]) -> String {
    let rows: Vec<&Sample> = samples.iter().filter(|s| s.size == SUMMARY_SIZE).collect();
    let (width, bar, gap, left) = (960.0, 16.0, 5.0, 380.0);
    let max = rows
        .iter()
        .map(|s| s.seconds_per_packet * 1e9)
        .fold(0.0, f64::max);
    let height = 40.0 + rows.len() as f64 * (bar + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">1-RTT packet protection, {SUMMARY_SIZE}-byte datagrams: ns per packet (lower is better)</text>\n"
    );
    for (i, row) in rows.iter().enumerate() {
        let y = 35.0 + i as f64 * (bar + gap);
        let value = row.seconds_per_packet * 1e9;
        let w = (width - left - 80.0) * value / max;
        let color = match row.implementation {
            QUICSEAL => "#2b6cb0",
            QUICSEAL_PORTABLE | QUICSEAL_SEGMENTED => "#90cdf4",
            RING | AWS_LC => "#888888",
            MEMCPY => "#cccccc",
            _ => "#c05621",
        };
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {} — {}</text>\n<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{}\">{value:.0}</text>\n",
            left - 6.0,
            y + 12.0,
            short_name(row.suite),
            row.operation.name(),
            row.implementation,
            left + w + 4.0,
            y + 12.0,
        );
    }
    svg + "</svg>\n"
}

const BEGIN: &str = "<!-- BEGIN packet-protection (written by `cargo bench -p quicseal --features std --bench protect -- --write-docs`) -->";
const END: &str = "<!-- END packet-protection -->";

fn update_docs(
    path: &std::path::Path,
    table: &str,
    summary: &str,
    implementation: Implementation,
    effort: Effort,
) {
    // The family and model too: a VM's model name ("AMD EPYC") can hide which
    // generation ran, and with it which backend (Zen 3 has no AVX-512, Zen 4 has).
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    };
    let cpu = match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(family), Some(model)) => {
            format!("{name} (family {family}, model {model})")
        }
        (Some(name), ..) => name,
        _ => "unknown CPU".into(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (runs, batch) = (effort.runs, effort.batch);
    let (statistic, flags) = if effort.fastest {
        ("the fastest", "--write-docs --fastest")
    } else {
        ("medians", "--write-docs")
    };
    let section = format!(
        "{BEGIN}\n## Packet protection (core)\n\n\
         Command: `cargo bench -p quicseal --features std --bench protect -- {flags}` (release, one thread,\n\
         default build: no `target-cpu=native`). quicseal's implementation: `{}` for AES-GCM, `{}` for\n\
         ChaCha20-Poly1305.\n\
         Machine: {cpu}, {cores} cores, shared VM: wall-clock {statistic} of {runs} runs of {batch} packets; read the ratios.\n\n\
         Each row protects datagrams of the given size on the wire (8-byte DCID, 2-byte packet number, tag\n\
         included), header protection included. quicseal seals in one pass from a cleartext buffer into\n\
         the send buffer; ring and aws-lc-rs seal in place in the send buffer; RustCrypto copies into it\n\
         first. Opening is in place for all. Ratios are peer ns / quicseal ns: above 1, quicseal is faster.\n\
         The contenders take turns, a run each per round, each round starting with the next one; the\n\
         *paired* ratios are the median over the rounds of the two contenders' times in the same round, where the others compare {statistic}\n\
         of each. On a shared machine with slow phases, the paired ratios say how the contenders compare\n\
         through the phases the run met; the fastest runs, how they compare at full speed.\n\n\
         ```\n{summary}```\n\n{table}\n![packet protection cost](protect.svg)\n{END}",
        implementation.name(),
        implementation
            .for_suite(CipherSuite::ChaCha20Poly1305Sha256)
            .name()
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance\n".into());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(path, new).unwrap();
}
