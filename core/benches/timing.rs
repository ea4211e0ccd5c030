//! Constant-time checks in the manner of dudect (Reparaz, Balasch, Verbauwhede, "Dude, is my
//! code constant time?", 2017), with the `dudect-bencher` crate: each check times one
//! operation on inputs of two classes, interleaved at random, and reports Welch's t between
//! the two classes' timings (over several cropped percentiles, the largest |t| shown). A |t|
//! that stays below about 5 as samples grow is what a constant-time operation gives; one
//! that grows with the samples is a leak.
//!
//! `cargo bench -p quicseal --features std --bench timing [-- FILTER]` runs, for each suite,
//! on `Auto` (its implementation named in the check) and on `Portable`:
//! - `forged_tag_position`: opening packets whose tag is wrong in its first byte against
//!   packets whose tag is wrong in its last byte. Both are refused; a comparison that stops
//!   at the first differing byte would tell them apart. This is the tag check's test.
//! - `valid_or_forged`: opening a valid packet against one with a wrong tag. The two do
//!   different work after the check (a valid packet's plaintext is kept, a forged one's
//!   is not, and only a valid one moves the replay window), so a large t here is expected
//!   and says only that the outcome shows, which the caller learns anyway.
//! - `header_mask`: header-protection masks of a fixed sample against random samples.
//!
//! `QUICSEAL_BACKEND=avx2|aesni|portable` picks `Auto`'s implementation, as everywhere;
//! `QUICSEAL_TIMING_SAMPLES` sets the samples per check (200 000 by default).
//! `docs/reliability.md` holds a run's results.

use std::cell::RefCell;
use std::hint::black_box;

use dudect_bencher::ctbench::{BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner};
use quicseal::backend::TAG_LEN;
use quicseal::backend::{Auto, Backend, HeaderKey, Portable};
use quicseal::{CipherSuite, FlowConfig, RxFlow, TrafficSecret, TxFlow};

/// Samples per check (two classes of about half each) unless `QUICSEAL_TIMING_SAMPLES` says.
fn samples() -> usize {
    std::env::var("QUICSEAL_TIMING_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000)
}
/// Bytes of each packet on the wire, tag included: a short packet, where the AEAD's own
/// time is smallest against any difference.
const PACKET: usize = 64;
const DCID_LEN: usize = 8;

const SUITES: [CipherSuite; 3] = [
    CipherSuite::Aes128GcmSha256,
    CipherSuite::Aes256GcmSha384,
    CipherSuite::ChaCha20Poly1305Sha256,
];

/// `count` packets sealed with `suite`'s key under consecutive packet numbers from 1.
fn sealed_packets(suite: CipherSuite, count: usize) -> Vec<Vec<u8>> {
    let secret = secret(suite);
    let mut tx: TxFlow<Portable> =
        TxFlow::from_secret(suite, &secret, FlowConfig::new(DCID_LEN)).unwrap();
    (1..=count as u64)
        .map(|pn| {
            let mut cleartext: Vec<u8> = (0..PACKET - TAG_LEN).map(|i| i as u8).collect();
            cleartext[0] = 0x43; // short header, 4-byte packet number
            cleartext[1 + DCID_LEN..1 + DCID_LEN + 4].copy_from_slice(&(pn as u32).to_be_bytes());
            let mut packet = vec![0; PACKET];
            let sealed = tx.seal(&[&cleartext], &mut [&mut packet]).unwrap();
            assert_eq!(sealed.len, PACKET);
            packet
        })
        .collect()
}

fn secret(suite: CipherSuite) -> Vec<u8> {
    vec![0x5a; suite.secret_len()]
}

fn rx<B: Backend>(suite: CipherSuite) -> RxFlow<B> {
    RxFlow::from_secret(suite, &secret(suite), FlowConfig::new(DCID_LEN)).unwrap()
}

/// Opens packets whose tags are wrong in their first byte (left) or their last (right).
fn forged_tag_position<B: Backend>(suite: CipherSuite, runner: &mut CtRunner, rng: &mut BenchRng) {
    // In cells: the runner takes a `Fn`; borrowing costs both classes alike.
    let rx = RefCell::new(rx::<B>(suite));
    let packet = sealed_packets(suite, 1).remove(0);
    let forged = |at: usize| {
        let mut forged = packet.clone();
        forged[at] ^= 0x01;
        forged
    };
    let (first, last) = (forged(PACKET - TAG_LEN), forged(PACKET - 1));
    let buffer = RefCell::new(vec![0u8; PACKET]);
    for (class, ()) in classes(rng, |_, _| ()) {
        buffer.borrow_mut().copy_from_slice(match class {
            Class::Left => &first,
            Class::Right => &last,
        });
        runner.run_one(class, || {
            let opened = rx.borrow_mut().open_in_place(&mut buffer.borrow_mut());
            assert!(black_box(opened).is_err());
        });
    }
}

/// Opens valid packets (left, each once) or packets with a wrong last tag byte (right).
fn valid_or_forged<B: Backend>(suite: CipherSuite, runner: &mut CtRunner, rng: &mut BenchRng) {
    let rx = RefCell::new(rx::<B>(suite));
    let valid = sealed_packets(suite, samples());
    let mut forged = valid[0].clone();
    forged[PACKET - 1] ^= 0x01;
    let buffer = RefCell::new(vec![0u8; PACKET]);
    for ((class, ()), packet) in classes(rng, |_, _| ()).into_iter().zip(&valid) {
        buffer.borrow_mut().copy_from_slice(match class {
            Class::Left => packet,
            Class::Right => &forged,
        });
        runner.run_one(class, || {
            let opened = rx.borrow_mut().open_in_place(&mut buffer.borrow_mut());
            black_box(opened).ok();
        });
    }
}

/// Masks of one fixed sample (left) or of random samples (right).
fn header_mask<B: Backend>(suite: CipherSuite, runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = TrafficSecret::new(suite, &secret(suite))
        .unwrap()
        .key_material();
    let key = B::header_key(suite, keys.hp()).unwrap();
    let inputs = classes(rng, |class, rng| match class {
        Class::Left => [0u8; 16],
        Class::Right => rng.random::<[u8; 16]>(),
    });
    for (class, sample) in inputs {
        runner.run_one(class, || black_box(key.mask(black_box(&sample))));
    }
}

/// [`samples`] inputs of random classes, all drawn before any is timed (as dudect does), so
/// that making one class's input never runs just before its timing.
fn classes<T>(
    rng: &mut BenchRng,
    mut input: impl FnMut(Class, &mut BenchRng) -> T,
) -> Vec<(Class, T)> {
    (0..samples())
        .map(|_| {
            let class = if rng.random::<bool>() {
                Class::Left
            } else {
                Class::Right
            };
            (class, input(class, rng))
        })
        .collect()
}

/// One check for each suite and backend: `$check::<Auto>` and `$check::<Portable>`, named
/// after the check, the suite and the backend.
macro_rules! checks {
    ($($check:ident),*) => {
        vec![$(
            check(stringify!($check), 0, "Auto", |r, g| $check::<Auto>(SUITES[0], r, g)),
            check(stringify!($check), 1, "Auto", |r, g| $check::<Auto>(SUITES[1], r, g)),
            check(stringify!($check), 2, "Auto", |r, g| $check::<Auto>(SUITES[2], r, g)),
            check(stringify!($check), 0, "Portable", |r, g| $check::<Portable>(SUITES[0], r, g)),
            check(stringify!($check), 1, "Portable", |r, g| $check::<Portable>(SUITES[1], r, g)),
            check(stringify!($check), 2, "Portable", |r, g| $check::<Portable>(SUITES[2], r, g)),
        )*]
    };
}

/// A check's metadata; its name says what, on which suite and which implementation.
fn check(
    what: &str,
    suite: usize,
    backend: &str,
    run: fn(&mut CtRunner, &mut BenchRng),
) -> BenchMetadata {
    let implementation = match backend {
        "Auto" => Auto::implementation(SUITES[suite]).name(),
        _ => "portable",
    };
    let name = format!(
        "{what} {} {backend} ({implementation})",
        suite_name(SUITES[suite])
    );
    BenchMetadata {
        // The runner wants a `&'static str`; a few names for the life of the process.
        name: BenchName(Box::leak(name.into_boxed_str())),
        // A fixed seed: the classes' order is the same from run to run.
        seed: Some(0x5eed),
        benchfn: run,
    }
}

fn suite_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::Aes128GcmSha256 => "AES-128-GCM",
        CipherSuite::Aes256GcmSha384 => "AES-256-GCM",
        CipherSuite::ChaCha20Poly1305Sha256 => "ChaCha20-Poly1305",
    }
}

fn main() -> std::io::Result<()> {
    // `cargo bench` passes `--bench`; any other argument filters the checks by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let opts = BenchOpts {
        filter,
        ..BenchOpts::default()
    };
    run_benches_console(
        opts,
        checks!(forged_tag_position, valid_or_forged, header_mask),
    )
}
