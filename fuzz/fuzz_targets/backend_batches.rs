//! `backend_batches`: the fast backend (`Auto`: on x86_64 the widest the CPU has, or the one
//! `QUICSEAL_BACKEND` names, since this crate builds the core with `std`) against the
//! portable one, on batches of packets at the backend seam.
//!
//! Input: suite byte (`% 3`), 32 key bytes (the suite's key length of them used), 32
//! header-protection key bytes (likewise), source cuts, destination cuts, then runs until
//! the input ends: a count byte (`% 6 + 1` packets), a payload length (u16 `% 1500`, or
//! `% 260` when the count byte's bit 7 is set), a header length byte (`% 40`) and a sample
//! offset byte (`% 4`, at most the payload's length), then each packet's 12-byte nonce. A
//! run's packets share their lengths, as a GSO batch's do, which is what a backend may seal
//! side by side. Payload and header bytes are drawn from the rest of the input.
//!
//! Properties: `seal_batch` from a source into a destination cut at input-chosen points,
//! and in place, gives each packet the ciphertext, tag and mask the portable backend's
//! `seal` gives it; `open_batch` in place gives back each cleartext and the tag it was
//! sealed with; the bytes between payloads are untouched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::CipherSuite;
use quicseal::backend::{
    Auto, Backend, BatchBuffers, OpenJob, PacketKey, Payload, Portable, SealJob, Sealed,
};
use quicseal::sg::{SgDestination, SgSource};
use quicseal_fuzz::{Input, pieces, pieces_mut};

/// Most packets in one batch call.
const MAX_JOBS: usize = 40;
/// Bytes left untouched between two payloads.
const GAP: usize = 3;
const FILL: u8 = 0xee;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let suite = CipherSuite::ALL[usize::from(input.byte()) % 3];
    let key_len = match suite {
        CipherSuite::Aes128GcmSha256 => 16,
        _ => 32,
    };
    let mut key = input.bytes(32).to_vec();
    key.resize(32, 0);
    let mut hp = input.bytes(32).to_vec();
    hp.resize(32, 0);
    let (key, hp) = (&key[..key_len], &hp[..key_len]);
    let (src_cuts, dst_cuts) = (input.cuts(), input.cuts());

    // The batch's shape, run by run.
    let mut shapes = Vec::new();
    while shapes.len() < MAX_JOBS {
        let count = input.byte();
        let len = match count & 0x80 {
            0 => usize::from(input.u16()) % 1500,
            _ => usize::from(input.u16()) % 260,
        };
        let aad_len = usize::from(input.byte()) % 40;
        let sample_at = (usize::from(input.byte()) % 4).min(len);
        for _ in 0..usize::from(count & 0x7f) % 6 + 1 {
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&{
                let mut bytes = input.bytes(12).to_vec();
                bytes.resize(12, 0);
                bytes
            });
            shapes.push((nonce, aad_len, len, sample_at));
        }
        if input.is_empty() {
            break;
        }
    }
    shapes.truncate(MAX_JOBS);
    // Header and payload bytes: a pattern keyed by the input's first bytes, cheap to make.
    let seed = data.first().copied().unwrap_or(0);
    let byte_at = |i: usize| (i as u8).wrapping_mul(31).wrapping_add(seed);

    let mut layout = Vec::new();
    let mut at = 0;
    for &(_, _, len, _) in &shapes {
        layout.push(at);
        at += len + GAP;
    }
    let mut source = vec![FILL; at];
    let aads: Vec<Vec<u8>> = shapes
        .iter()
        .enumerate()
        .map(|(k, &(_, aad_len, _, _))| (0..aad_len).map(|i| byte_at(7 * k + i)).collect())
        .collect();
    for (&(_, _, len, _), &at) in shapes.iter().zip(&layout) {
        for i in 0..len {
            source[at + i] = byte_at(at + i);
        }
    }
    let jobs: Vec<SealJob<'_>> = shapes
        .iter()
        .zip(&layout)
        .zip(&aads)
        .map(|((&(nonce, _, len, sample_at), &at), aad)| SealJob {
            nonce,
            aad,
            sample_at,
            src_at: at,
            dst_at: at,
            len,
        })
        .collect();

    // The portable backend, packet by packet.
    let reference_key = Portable::packet_key(suite, key).expect("key length");
    let reference_header_key = Portable::header_key(suite, hp).expect("key length");
    let mut expected = source.clone();
    let expected_sealed: Vec<Sealed> = jobs
        .iter()
        .map(|job| {
            let payload = Payload::InPlace(&mut expected[job.dst_at..job.dst_at + job.len]);
            reference_key.seal(
                &reference_header_key,
                &job.nonce,
                job.aad,
                job.sample_at,
                payload,
            )
        })
        .collect();

    let packet_key = Auto::packet_key(suite, key).expect("key length");
    let header_key = Auto::header_key(suite, hp).expect("key length");
    let blank = Sealed {
        tag: [0; 16],
        mask: [0; 5],
    };

    let src_pieces = pieces(&source, &src_cuts.fit(source.len()));
    let src = SgSource::new(&src_pieces);
    let mut copied_bytes = vec![FILL; source.len()];
    let mut copied = vec![blank; jobs.len()];
    {
        let mut dst_pieces = pieces_mut(&mut copied_bytes, &dst_cuts.fit(source.len()));
        let mut dst = SgDestination::new(&mut dst_pieces);
        let mut buffers = BatchBuffers::Copy {
            src: &src,
            dst: &mut dst,
        };
        packet_key.seal_batch(&header_key, &mut buffers, &jobs, &mut copied);
    }
    assert_eq!(
        copied_bytes, expected,
        "seal_batch copied: ciphertexts or gaps differ"
    );
    assert_eq!(
        copied, expected_sealed,
        "seal_batch copied: tags or masks differ"
    );

    let mut in_place_bytes = source.clone();
    let mut in_place = vec![blank; jobs.len()];
    let mut buffers = BatchBuffers::InPlace(&mut in_place_bytes);
    packet_key.seal_batch(&header_key, &mut buffers, &jobs, &mut in_place);
    assert_eq!(
        in_place_bytes, expected,
        "seal_batch in place: ciphertexts or gaps differ"
    );
    assert_eq!(
        in_place, expected_sealed,
        "seal_batch in place: tags or masks differ"
    );

    let open_jobs: Vec<OpenJob<'_>> = jobs.iter().map(SealJob::opened).collect();
    let mut tags = vec![[0u8; 16]; jobs.len()];
    packet_key.open_batch(&mut in_place_bytes, &open_jobs, &mut tags);
    assert_eq!(
        in_place_bytes, source,
        "open_batch: cleartexts or gaps differ"
    );
    let expected_tags: Vec<[u8; 16]> = expected_sealed.iter().map(|s| s.tag).collect();
    assert_eq!(tags, expected_tags, "open_batch: tags differ");
});
