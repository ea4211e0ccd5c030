//! Each backend's whole-packet AEAD against RustCrypto's one-shot `aes-gcm` and
//! `chacha20poly1305`: payloads cut into scatter-gather pieces at random points, in place and
//! copied, both directions. `Auto` is whatever `QUICSEAL_BACKEND` (or detection) selects, so
//! `cargo xtask test` runs this once per implementation the CPU has.

use aes_gcm::aead::{AeadInOut, KeyInit};
use proptest::prelude::*;
use quicseal::backend::{
    Auto, AutoBatchTables, AutoHeaderKey, AutoPacketKey, Backend, BatchBuffers, HeaderKey,
    Implementation, OpenJob, PacketKey, Payload, Portable, SAMPLE_LEN, SealJob, Sealed,
    StridedLayout, StridedPackets,
};
use quicseal::sg::{SgDestination, SgSource};
use quicseal::{CipherSuite, Error};

/// Tag and ciphertext from the one-shot crates.
fn reference(
    suite: CipherSuite,
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    text: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut buffer = text.to_vec();
    let tag = match suite {
        CipherSuite::Aes128GcmSha256 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        CipherSuite::Aes256GcmSha384 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        CipherSuite::ChaCha20Poly1305Sha256 => {
            chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
                .unwrap()
                .encrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into())
                .unwrap()
                .to_vec()
        }
    };
    (buffer, tag)
}

/// `data` cut at the given points (taken modulo its length).
fn cut(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort();
    let mut pieces = Vec::new();
    let mut at = 0;
    for point in points.into_iter().chain([data.len()]) {
        pieces.push(data[at..point].to_vec());
        at = point;
    }
    pieces
}

/// Runs `text` through `key`, copied from a source cut at `src_cuts` into a destination cut
/// at `dst_cuts`, and in place; both must agree. Returns the output, the tag and, when
/// sealing, the header-protection mask of the sample at `sample_at`.
#[allow(clippy::too_many_arguments)]
fn run(
    key: &impl PacketKey,
    header_key: &impl HeaderKey,
    nonce: &[u8; 12],
    aad: &[u8],
    text: &[u8],
    sample_at: Option<usize>,
    src_cuts: &[usize],
    dst_cuts: &[usize],
) -> (Vec<u8>, Vec<u8>, Option<[u8; 5]>) {
    let apply = |payload: Payload<'_, '_, '_, '_>| match sample_at {
        Some(at) => {
            let sealed = key.seal(header_key, nonce, aad, at, payload);
            (sealed.tag, Some(sealed.mask))
        }
        None => (key.open(nonce, aad, payload), None),
    };
    let src_pieces = cut(text, src_cuts);
    let src_refs: Vec<&[u8]> = src_pieces.iter().map(Vec::as_slice).collect();
    let src = SgSource::new(&src_refs);
    let mut dst_pieces = cut(&vec![0; text.len()], dst_cuts);
    let mut dst_refs: Vec<&mut [u8]> = dst_pieces.iter_mut().map(Vec::as_mut_slice).collect();
    let mut dst = SgDestination::new(&mut dst_refs);
    let tag = apply(Payload::Copy {
        src: &src,
        src_at: 0,
        dst: &mut dst,
        dst_at: 0,
        len: text.len(),
    });
    let mut in_place = text.to_vec();
    let tag_in_place = apply(Payload::InPlace(&mut in_place));
    let copied = dst_pieces.concat();
    assert_eq!(
        (&copied, tag),
        (&in_place, tag_in_place),
        "copied and in place differ"
    );
    (copied, tag.0.to_vec(), tag.1)
}

#[allow(clippy::too_many_arguments)]
fn check<B: Backend>(
    suite: CipherSuite,
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    text: &[u8],
    sample_at: usize,
    src_cuts: &[usize],
    dst_cuts: &[usize],
) -> Result<(), TestCaseError> {
    let packet_key = B::packet_key(suite, key).unwrap();
    let header_key = B::header_key(suite, key).unwrap();
    let (ciphertext, tag) = reference(suite, key, nonce, aad, text);
    // The sample: the protected packet's 16 bytes from `sample_at`, the tag after the text.
    let protected = [ciphertext.as_slice(), &tag].concat();
    let sample: [u8; SAMPLE_LEN] = protected[sample_at..sample_at + SAMPLE_LEN]
        .try_into()
        .unwrap();
    let mask = Portable::header_key(suite, key).unwrap().mask(&sample);
    let sealed = run(
        &packet_key,
        &header_key,
        nonce,
        aad,
        text,
        Some(sample_at),
        src_cuts,
        dst_cuts,
    );
    prop_assert_eq!(&sealed, &(ciphertext.clone(), tag.clone(), Some(mask)));
    let opened = run(
        &packet_key,
        &header_key,
        nonce,
        aad,
        &ciphertext,
        None,
        src_cuts,
        dst_cuts,
    );
    prop_assert_eq!(opened, (text.to_vec(), tag, None));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn backends_match_the_one_shot_crates(
        suite in prop::sample::select(CipherSuite::ALL.to_vec()),
        key in prop::collection::vec(any::<u8>(), 32),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        text in prop::collection::vec(any::<u8>(), 0..1500),
        src_cuts in prop::collection::vec(any::<usize>(), 0..8),
        dst_cuts in prop::collection::vec(any::<usize>(), 0..8),
        sample_at in 0usize..4,
    ) {
        let key = &key[..suite.key_len()];
        // As in a packet: the payload is at least as long as the sample's offset.
        let sample_at = sample_at.min(text.len());
        check::<Portable>(suite, key, &nonce, &aad, &text, sample_at, &src_cuts, &dst_cuts)?;
        check::<Auto>(suite, key, &nonce, &aad, &text, sample_at, &src_cuts, &dst_cuts)?;
    }
}

/// One packet of a batch: nonce, AAD, payload and sample offset.
type Job = ([u8; 12], Vec<u8>, Vec<u8>, usize);

/// Packets sized like GSO batches' (mostly short, some full): runs of packets whose
/// payloads, headers and sample offsets have one length each, as a batch's do (a backend may
/// seal such packets side by side), each run's last payload maybe shorter.
fn jobs() -> impl Strategy<Value = Vec<Job>> {
    let len = prop_oneof![3 => 0usize..260, 1 => 0usize..1500];
    // Sample offsets past QUIC's 0-3 too: the backends must take a sample from any block.
    let sample_at = prop_oneof![3 => 0usize..4, 1 => 0usize..40, 1 => 40usize..200];
    let run = (1usize..7, 0usize..30, len, sample_at, 0usize..260);
    let run = run.prop_flat_map(|(count, aad_len, len, sample_at, last_len)| {
        let job = move |len: usize| {
            (
                any::<[u8; 12]>(),
                prop::collection::vec(any::<u8>(), aad_len),
                prop::collection::vec(any::<u8>(), len),
                Just(sample_at),
            )
        };
        let last = prop::collection::vec(job(last_len), 0..=1);
        (prop::collection::vec(job(len), count), last)
            .prop_map(|(jobs, last)| [jobs, last].concat())
    });
    prop::collection::vec(run, 1..10).prop_map(|runs| runs.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// `seal_batch` (which a backend may do several packets at a time) gives each packet
    /// what the one-shot crates and RustCrypto's header protection give it, from a source
    /// and into a destination cut anywhere, and in place; `masks` gives what `mask` does;
    /// `open_batch` gives back each packet's cleartext and the tag it was sealed with.
    #[test]
    fn batches_match_the_one_shot_crates(
        suite in prop::sample::select(CipherSuite::ALL.to_vec()),
        key in prop::collection::vec(any::<u8>(), 32),
        jobs in jobs(),
        gap in 0usize..5,
        src_cuts in prop::collection::vec(any::<usize>(), 0..12),
        dst_cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let key = &key[..suite.key_len()];
        let packet_key = Auto::packet_key(suite, key).unwrap();
        let header_key = Auto::header_key(suite, key).unwrap();
        let reference_header_key = Portable::header_key(suite, key).unwrap();
        // The payloads laid out one after the other, `gap` bytes apart.
        let mut layout = Vec::new();
        let mut at = 0;
        for (_, _, text, _) in &jobs {
            layout.push(at);
            at += text.len() + gap;
        }
        let mut source = vec![0xee; at];
        let mut expected = Vec::new();
        let mut samples = Vec::new();
        for ((nonce, aad, text, sample_at), &at) in jobs.iter().zip(&layout) {
            source[at..at + text.len()].copy_from_slice(text);
            let (ciphertext, tag) = reference(suite, key, nonce, aad, text);
            let sample_at = (*sample_at).min(text.len());
            let protected = [ciphertext.as_slice(), &tag].concat();
            let sample: [u8; SAMPLE_LEN] =
                protected[sample_at..sample_at + SAMPLE_LEN].try_into().unwrap();
            samples.push(sample);
            let mask = reference_header_key.mask(&sample);
            expected.push((ciphertext, tag, mask));
        }
        let seal_jobs: Vec<SealJob<'_>> = jobs
            .iter()
            .zip(&layout)
            .map(|((nonce, aad, text, sample_at), &at)| SealJob {
                nonce: *nonce,
                aad,
                sample_at: (*sample_at).min(text.len()),
                src_at: at,
                dst_at: at,
                len: text.len(),
            })
            .collect();
        let blank = Sealed { tag: [0; 16], mask: [0; 5] };

        let src_pieces = cut(&source, &src_cuts);
        let src_refs: Vec<&[u8]> = src_pieces.iter().map(Vec::as_slice).collect();
        let src = SgSource::new(&src_refs);
        let mut dst_pieces = cut(&vec![0xee; source.len()], &dst_cuts);
        let mut dst_refs: Vec<&mut [u8]> = dst_pieces.iter_mut().map(Vec::as_mut_slice).collect();
        let mut dst = SgDestination::new(&mut dst_refs);
        let mut copied = vec![blank; jobs.len()];
        let mut buffers = BatchBuffers::Copy { src: &src, dst: &mut dst };
        packet_key.seal_batch(&header_key, &mut buffers, &seal_jobs, &mut copied);
        let copied_bytes = dst_pieces.concat();

        let mut in_place_bytes = source.clone();
        let mut in_place = vec![blank; jobs.len()];
        let mut buffers = BatchBuffers::InPlace(&mut in_place_bytes);
        packet_key.seal_batch(&header_key, &mut buffers, &seal_jobs, &mut in_place);

        for (i, (job, (ciphertext, tag, mask))) in seal_jobs.iter().zip(&expected).enumerate() {
            let range = job.dst_at..job.dst_at + job.len;
            prop_assert_eq!(&copied_bytes[range.clone()], ciphertext.as_slice(), "packet {} copied", i);
            prop_assert_eq!(&in_place_bytes[range], ciphertext.as_slice(), "packet {} in place", i);
            prop_assert_eq!(copied[i], Sealed { tag: tag.as_slice().try_into().unwrap(), mask: *mask }, "packet {}", i);
            prop_assert_eq!(in_place[i], copied[i], "packet {} in place", i);
        }

        let mut masks = vec![[0u8; 5]; samples.len()];
        header_key.masks(&samples, &mut masks);
        let expected_masks: Vec<[u8; 5]> = expected.iter().map(|(_, _, mask)| *mask).collect();
        prop_assert_eq!(masks, expected_masks);

        let mut sealed_bytes = vec![0xee; source.len()];
        for ((ciphertext, _, _), job) in expected.iter().zip(&seal_jobs) {
            sealed_bytes[job.dst_at..job.dst_at + job.len].copy_from_slice(ciphertext);
        }
        let open_jobs: Vec<OpenJob<'_>> = seal_jobs
            .iter()
            .map(SealJob::opened)
            .collect();
        let mut tags = vec![[0u8; 16]; jobs.len()];
        packet_key.open_batch(&mut sealed_bytes, &open_jobs, &mut tags);
        for (i, ((_, _, text, _), (job, (_, tag, _)))) in
            jobs.iter().zip(open_jobs.iter().zip(&expected)).enumerate()
        {
            prop_assert_eq!(&sealed_bytes[job.at..job.at + job.len], text.as_slice(), "packet {} opened", i);
            prop_assert_eq!(tags[i].as_slice(), tag.as_slice(), "packet {} tag", i);
        }
        prop_assert_eq!(sealed_bytes, source, "the gaps between the payloads untouched");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// `seal_strided` writes each packet as the one-shot crates and RustCrypto's header
    /// protection make it: the header protected, the ciphertext, the tag, and nothing in the
    /// gaps between packets. Payloads short enough that the sample runs into the tag, and
    /// long enough that a side-by-side backend leaves them to the general way; its own header
    /// key and another (the portable one, which a side-by-side backend cannot run beside its
    /// rounds). A layout the buffers do not hold, or one whose packets overlap, writes
    /// nothing.
    #[test]
    fn strided_packets_seal_as_the_one_shot_crates_protect_them(
        suite in prop::sample::select(CipherSuite::ALL.to_vec()),
        key in prop::collection::vec(any::<u8>(), 32),
        count in 0usize..40,
        dcid_len in 0usize..21,
        pn_len in 1usize..5,
        payload_len in prop_oneof![2 => 0usize..64, 2 => 64usize..1600],
        (src_gap, dst_gap) in (0usize..9, 0usize..9),
        portable_header_key in any::<bool>(),
        short_by in prop_oneof![4 => Just(0usize), 1 => 1usize..40],
        src_short_by in prop_oneof![9 => Just(0usize), 1 => 1usize..40],
        overlap in prop::bool::weighted(0.1),
        // A layout no packet has: a packet number of no bytes or of more than four, a
        // payload too short for the sample, or no first byte before the packet number.
        bad_layout in prop_oneof![
            12 => Just(None),
            1 => Just(Some((0usize, 0usize))),
            1 => (5usize..9).prop_map(|pn_len| Some((pn_len, 0))),
            1 => (1usize..5).prop_map(|pn_len| Some((pn_len, 1))),
            1 => (1usize..5).prop_map(|pn_len| Some((pn_len, 2))),
        ],
        seed in any::<u8>(),
    ) {
        let key = &key[..suite.key_len()];
        let packet_key = Auto::packet_key(suite, key).unwrap();
        let reference_header_key = Portable::header_key(suite, key).unwrap();
        let pn_offset = match bad_layout {
            Some((_, 2)) => 0,
            _ => 1 + dcid_len,
        };
        let pn_len = match bad_layout {
            Some((bad_pn_len, 0)) => bad_pn_len,
            _ => pn_len,
        };
        let header_len = pn_offset + pn_len;
        // The sample must lie inside the sealed packet (a shorter one is refused earlier).
        let sample_at = (pn_offset + 4).saturating_sub(header_len);
        let short_payload = matches!(bad_layout, Some((_, 1))) && sample_at > 0;
        let payload_len = if short_payload {
            payload_len % sample_at
        } else {
            payload_len.max(sample_at)
        };
        let bad_layout = short_payload || matches!(bad_layout, Some((_, 0 | 2)));
        let packet_len = header_len + payload_len;
        let layout = StridedLayout {
            src_stride: packet_len + src_gap,
            // Overlapping: each sealed packet would run into the next one's first byte.
            dst_stride: if overlap { packet_len + 15 } else { packet_len + 16 + dst_gap },
            header_len,
            pn_offset,
            payload_len,
        };
        let src_len = (count.saturating_sub(1) * layout.src_stride + packet_len * usize::from(count > 0))
            .saturating_sub(src_short_by);
        let src: Vec<u8> = (0..src_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let dst_len = (count.saturating_sub(1) * layout.dst_stride + (packet_len + 16) * usize::from(count > 0))
            .saturating_sub(short_by);
        let mut dst = vec![0xee_u8; dst_len];
        let nonces: Vec<[u8; 12]> = (0..count).map(|k| [k as u8 ^ seed; 12]).collect();
        let packets = StridedPackets { src: &src, dst: &mut dst, layout };
        let sealed = if portable_header_key {
            packet_key.seal_strided(&reference_header_key, packets, &nonces, &mut Default::default())
        } else {
            let header_key = Auto::header_key(suite, key).unwrap();
            packet_key.seal_strided(&header_key, packets, &nonces, &mut Default::default())
        };
        let refused = (short_by > 0 || src_short_by > 0 || bad_layout) && count > 0;
        if refused || (overlap && count > 1) {
            prop_assert!(!sealed, "buffers too short, packets overlapping or a bad layout are refused");
            prop_assert!(dst.iter().all(|&b| b == 0xee), "and nothing is written");
            return Ok(());
        }
        prop_assert!(sealed);
        prop_assert_eq!(dst, strided_reference(suite, key, &src, layout, &nonces, dst_len));
    }
}

/// What [`PacketKey::seal_strided`] should write into a destination of `dst_len` bytes
/// (0xee where nothing is written): each packet of `src` as `layout` lays them out, sealed by
/// the one-shot crates under its nonce, its header protected with RustCrypto's mask.
fn strided_reference(
    suite: CipherSuite,
    key: &[u8],
    src: &[u8],
    layout: StridedLayout,
    nonces: &[[u8; 12]],
    dst_len: usize,
) -> Vec<u8> {
    let reference_header_key = Portable::header_key(suite, key).unwrap();
    let (header_len, pn_offset) = (layout.header_len, layout.pn_offset);
    let packet_len = header_len + layout.payload_len;
    let mut expected = vec![0xee_u8; dst_len];
    for (k, nonce) in nonces.iter().enumerate() {
        let (src_at, dst_at) = (k * layout.src_stride, k * layout.dst_stride);
        let header = &src[src_at..src_at + header_len];
        let text = &src[src_at + header_len..src_at + packet_len];
        let (ciphertext, tag) = reference(suite, key, nonce, header, text);
        let protected = [ciphertext.as_slice(), &tag].concat();
        let sample_at = pn_offset + 4 - header_len;
        let sample: [u8; SAMPLE_LEN] = protected[sample_at..sample_at + 16].try_into().unwrap();
        let mask = reference_header_key.mask(&sample);
        let out = &mut expected[dst_at..dst_at + packet_len + 16];
        out[..header_len].copy_from_slice(header);
        out[0] ^= mask[0] & 0x1f;
        for (byte, m) in out[pn_offset..header_len].iter_mut().zip(&mask[1..]) {
            *byte ^= m;
        }
        out[header_len..].copy_from_slice(&protected);
    }
    expected
}

/// Seals `count` packets laid out as `layout` in a source whose byte i is `byte(i)`, packet
/// k under nonce `[k ^ 0x5a; 12]`, with `seal_strided` and `tables` under `keys` (packet key,
/// header key, raw key), and checks the destination byte for byte against
/// [`strided_reference`].
fn check_strided(
    suite: CipherSuite,
    (packet_key, header_key, key): (&AutoPacketKey, &AutoHeaderKey, &[u8]),
    layout: StridedLayout,
    count: usize,
    byte: impl Fn(usize) -> u8,
    tables: &mut AutoBatchTables,
    what: &str,
) {
    let src: Vec<u8> = (0..count * layout.src_stride).map(byte).collect();
    let dst_len = count * layout.dst_stride;
    let mut dst = vec![0xee_u8; dst_len];
    let nonces: Vec<[u8; 12]> = (0..count).map(|k| [k as u8 ^ 0x5a; 12]).collect();
    let packets = StridedPackets {
        src: &src,
        dst: &mut dst,
        layout,
    };
    assert!(
        packet_key.seal_strided(header_key, packets, &nonces, tables),
        "{what}"
    );
    assert_eq!(
        dst,
        strided_reference(suite, key, &src, layout, &nonces, dst_len),
        "{what}"
    );
}

/// `seal_strided` over every short-header shape (connection IDs of 0 to 20 bytes, packet
/// numbers of 1 to 4) for AES-GCM batches whose groups of four side by side end full and
/// part full (2 to 8 packets), with the shortest payload whose sample lies inside it and a
/// longer one: the cases the property test above reaches only now and then, each checked
/// byte for byte.
#[test]
fn strided_packets_of_every_short_header_shape_seal_as_the_crates_do() {
    for suite in [CipherSuite::Aes128GcmSha256, CipherSuite::Aes256GcmSha384] {
        let key: Vec<u8> = (0..suite.key_len() as u8)
            .map(|b| b.wrapping_mul(29))
            .collect();
        let packet_key = Auto::packet_key(suite, &key).unwrap();
        let header_key = Auto::header_key(suite, &key).unwrap();
        // One suite's batches keep the tables from one to the next, as a flow does.
        let mut tables = Default::default();
        for (count, dcid_len, pn_len) in (2..=8)
            .flat_map(|count| (0..=20).map(move |dcid_len| (count, dcid_len)))
            .flat_map(|(count, dcid_len)| (1..=4).map(move |pn_len| (count, dcid_len, pn_len)))
        {
            let (pn_offset, header_len) = (1 + dcid_len, 1 + dcid_len + pn_len);
            let sample_at = 4 - pn_len;
            for payload_len in [sample_at + 16, 64] {
                let packet_len = header_len + payload_len;
                let layout = StridedLayout {
                    src_stride: packet_len + 3,
                    dst_stride: packet_len + 16 + 5,
                    header_len,
                    pn_offset,
                    payload_len,
                };
                let byte = |i: usize| (i as u8).wrapping_mul(13).wrapping_add(count as u8);
                let what = format!(
                    "{suite:?}, {count} packets, header {header_len} bytes (pn {pn_len}), payload {payload_len}"
                );
                let keys = (&packet_key, &header_key, key.as_slice());
                check_strided(suite, keys, layout, count, byte, &mut tables, &what);
            }
        }
    }
}

/// Tables that strided batches kept from another key's are built again, never used as they
/// are: a flow keeps its tables from one GSO batch to the next and starts new ones at a key
/// update, and tables handed from key to key must come out the same. Payloads long enough
/// for the tables to hold powers past the key's own, first longer, then shorter, then longer
/// than the tables were built for.
#[test]
fn strided_batches_build_again_the_tables_of_another_key() {
    for suite in [CipherSuite::Aes128GcmSha256, CipherSuite::Aes256GcmSha384] {
        let keys: Vec<Vec<u8>> = [0x11u8, 0x5e]
            .iter()
            .map(|&seed| {
                (0..suite.key_len() as u8)
                    .map(|b| b.wrapping_mul(seed).wrapping_add(seed))
                    .collect()
            })
            .collect();
        let mut tables = Default::default();
        for key in [&keys[0], &keys[1], &keys[0]] {
            let packet_key = Auto::packet_key(suite, key).unwrap();
            let header_key = Auto::header_key(suite, key).unwrap();
            for payload_len in [1300, 600, 1420] {
                let (pn_offset, header_len) = (9, 13);
                let packet_len = header_len + payload_len;
                let layout = StridedLayout {
                    src_stride: packet_len,
                    dst_stride: packet_len + 16,
                    header_len,
                    pn_offset,
                    payload_len,
                };
                let byte = |i: usize| (i as u8).wrapping_mul(7).wrapping_add(key[0]);
                let what = format!("{suite:?}, key {:#x}, payload {payload_len}", key[0]);
                let keys = (&packet_key, &header_key, key.as_slice());
                check_strided(suite, keys, layout, 6, byte, &mut tables, &what);
            }
        }
    }
}

/// Seals a batch of packets with payloads of `lens` bytes (in place, 7 bytes apart), each
/// sample at payload offset `sample_at`, and checks each packet's ciphertext, tag and mask
/// against the one-shot crates' and RustCrypto's and the bytes around the payloads
/// untouched; opens the batch again and checks each cleartext and tag back.
fn check_batch(suite: CipherSuite, lens: &[usize], sample_at: usize) {
    let key: Vec<u8> = (0..suite.key_len() as u8).collect();
    let packet_key = Auto::packet_key(suite, &key).unwrap();
    let header_key = Auto::header_key(suite, &key).unwrap();
    let reference_header_key = Portable::header_key(suite, &key).unwrap();
    let aad = [0x43u8; 13];
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |at, len| {
            let start = *at;
            *at += len + 7;
            Some(start)
        })
        .collect();
    let total: usize = lens.iter().map(|len| len + 7).sum();
    let mut buffer: Vec<u8> = (0..total).map(|i| (i * 7 + 3) as u8).collect();
    let original = buffer.clone();
    let jobs: Vec<SealJob<'_>> = lens
        .iter()
        .zip(&starts)
        .enumerate()
        .map(|(k, (&len, &at))| SealJob {
            nonce: [k as u8 + 1; 12],
            aad: &aad,
            sample_at: sample_at.min(len),
            src_at: at,
            dst_at: at,
            len,
        })
        .collect();
    let blank = Sealed {
        tag: [0; 16],
        mask: [0; 5],
    };
    let mut sealed = vec![blank; jobs.len()];
    packet_key.seal_batch(
        &header_key,
        &mut BatchBuffers::InPlace(&mut buffer),
        &jobs,
        &mut sealed,
    );
    for (k, job) in jobs.iter().enumerate() {
        let range = job.dst_at..job.dst_at + job.len;
        let (ciphertext, tag) = reference(suite, &key, &job.nonce, &aad, &original[range.clone()]);
        let what =
            format!("{suite:?}, payloads of {lens:?} bytes, sample at {sample_at}, packet {k}");
        assert_eq!(&buffer[range.clone()], ciphertext.as_slice(), "{what}");
        let protected = [ciphertext.as_slice(), &tag].concat();
        let at = job.sample_at;
        let sample: [u8; SAMPLE_LEN] = protected[at..at + SAMPLE_LEN].try_into().unwrap();
        let expected = Sealed {
            tag: tag.as_slice().try_into().unwrap(),
            mask: reference_header_key.mask(&sample),
        };
        assert_eq!(sealed[k], expected, "{what}");
        assert_eq!(
            buffer[range.end..range.end + 7],
            original[range.end..range.end + 7],
            "{what}"
        );
    }
    let open_jobs: Vec<OpenJob<'_>> = jobs.iter().map(SealJob::opened).collect();
    let mut tags = vec![[0u8; 16]; jobs.len()];
    packet_key.open_batch(&mut buffer, &open_jobs, &mut tags);
    let what = format!("{suite:?}, payloads of {lens:?} bytes opened");
    assert_eq!(buffer, original, "{what}");
    for (sealed, tag) in sealed.iter().zip(&tags) {
        assert_eq!(&sealed.tag, tag, "{what}");
    }
}

/// Batches of two, three and four packets of one length, as a GSO or GRO batch's are: the
/// lengths where a backend that hashes each block by its own power of the hash key needs
/// more powers than a key keeps (header, payload and lengths block: 17, 32, 33, 64, 65 and
/// 96 blocks), 97 blocks (one too many for those to be built), and long payloads past 255
/// blocks (the counters' low byte wraps, which a backend that adds to it must see) and just
/// under.
#[test]
fn payloads_of_one_length_seal_and_open_in_batches_as_alone() {
    for suite in CipherSuite::ALL {
        for len in [240, 479, 496, 992, 993, 1504, 1505, 4000, 4075, 4081, 8195] {
            for count in 2..=4 {
                check_batch(suite, &vec![len; count], 3);
            }
        }
    }
}

/// Samples anywhere in the payload, as `SealJob::sample_at` allows: in one block, across
/// two blocks of one step of four, and across two steps (a backend that seals packets side
/// by side, four blocks of each a step, takes such a sample's halves from two steps).
#[test]
fn samples_anywhere_mask_batches_as_alone() {
    for suite in CipherSuite::ALL {
        for sample_at in [0, 40, 48, 49, 63, 64, 120, 127, 190, 290] {
            for count in 2..=4 {
                check_batch(suite, &vec![300; count], sample_at);
            }
        }
    }
}

/// One batch of several lengths, runs of each: short packets, then longer ones that need
/// more powers of the hash key than the first built, then shorter again, then the longest a
/// group takes.
#[test]
fn a_batch_of_several_lengths_seals_and_opens_as_alone() {
    for suite in CipherSuite::ALL {
        check_batch(
            suite,
            &[
                300, 300, 1400, 1400, 1400, 700, 700, 1504, 1504, 1504, 1504, 64,
            ],
            3,
        );
    }
}

/// `seal_batch` is a safe call: a job whose range an in-place buffer does not hold (which the
/// core never hands over) is sealed as an empty payload, not through a pointer past the
/// buffer, and the jobs around it are sealed as ever. Four equal jobs, so that a backend that
/// seals them side by side is asked to take the bad one along.
#[test]
fn a_job_out_of_the_buffers_range_writes_nothing_past_them() {
    for suite in CipherSuite::ALL {
        let key = vec![9u8; suite.key_len()];
        let packet_key = Auto::packet_key(suite, &key).unwrap();
        let header_key = Auto::header_key(suite, &key).unwrap();
        let len = 37;
        let aad = [0x41u8; 11];
        let job = |k: usize, at: usize| SealJob {
            nonce: [k as u8; 12],
            aad: &aad,
            sample_at: 2,
            src_at: at,
            dst_at: at,
            len,
        };
        let jobs = [job(0, 0), job(1, len), job(2, 2 * len), job(3, 1 << 40)];
        let mut buffer = vec![0x5au8; 3 * len];
        let blank = Sealed {
            tag: [0; 16],
            mask: [0; 5],
        };
        let mut sealed = [blank; 4];
        packet_key.seal_batch(
            &header_key,
            &mut BatchBuffers::InPlace(&mut buffer),
            &jobs,
            &mut sealed,
        );
        for (k, job) in jobs.iter().take(3).enumerate() {
            let (ciphertext, tag) = reference(suite, &key, &job.nonce, &aad, &[0x5a; 37]);
            assert_eq!(
                &buffer[job.dst_at..job.dst_at + len],
                &ciphertext[..],
                "{suite:?} packet {k}"
            );
            assert_eq!(&sealed[k].tag[..], &tag[..], "{suite:?} packet {k}");
        }
    }
}

/// `open_batch` is a safe call too: a job whose range the buffer does not hold is opened as
/// an empty payload, and the three equal jobs before it open as ever.
#[test]
fn an_open_job_out_of_the_buffers_range_reads_and_writes_nothing_past_it() {
    for suite in CipherSuite::ALL {
        let key = vec![9u8; suite.key_len()];
        let packet_key = Auto::packet_key(suite, &key).unwrap();
        let len = 37;
        let aad = [0x41u8; 11];
        let job = |k: usize, at: usize| OpenJob {
            nonce: [k as u8; 12],
            aad: &aad,
            at,
            len,
        };
        let jobs = [job(0, 0), job(1, len), job(2, 2 * len), job(3, 1 << 40)];
        let mut buffer = Vec::new();
        let mut tags = Vec::new();
        for job in &jobs[..3] {
            let (ciphertext, tag) = reference(suite, &key, &job.nonce, &aad, &[0x5a; 37]);
            buffer.extend_from_slice(&ciphertext);
            tags.push(<[u8; 16]>::try_from(tag.as_slice()).unwrap());
        }
        let (_, empty_tag) = reference(suite, &key, &jobs[3].nonce, &aad, &[]);
        tags.push(empty_tag.as_slice().try_into().unwrap());
        let mut opened = [[0u8; 16]; 4];
        packet_key.open_batch(&mut buffer, &jobs, &mut opened);
        assert_eq!(buffer, vec![0x5a; 3 * len], "{suite:?}");
        assert_eq!(opened.to_vec(), tags, "{suite:?}");
    }
}

/// `QUICSEAL_BACKEND`, when set, must select what it names: a run meant to test one
/// implementation must not quietly test another. Only std builds read it.
/// A key of another suite's length is refused, whichever implementation would take it:
/// the fused AES-GCM and AES header keys accept 16 and 32 bytes alike, and only the suite
/// says which is right (a resumed flow's header key comes from its caller).
#[test]
fn keys_of_the_wrong_length_for_the_suite_are_refused() {
    fn refuses<B: Backend>(suite: CipherSuite, len: usize) {
        let key = vec![7; len];
        let right = len == suite.key_len();
        assert_eq!(
            B::packet_key(suite, &key).err(),
            (!right).then_some(Error::InvalidKeyLength),
            "{suite:?} packet key of {len} bytes"
        );
        assert_eq!(
            B::header_key(suite, &key).err(),
            (!right).then_some(Error::InvalidKeyLength),
            "{suite:?} header key of {len} bytes"
        );
    }
    for suite in CipherSuite::ALL {
        for len in [0, 8, 16, 24, 32, 48] {
            refuses::<Auto>(suite, len);
            refuses::<Portable>(suite, len);
        }
    }
}

#[test]
fn the_selected_implementation_is_the_one_asked_for() {
    match std::env::var("QUICSEAL_BACKEND") {
        Ok(name) if cfg!(feature = "std") => {
            assert_eq!(Implementation::selected().name(), name)
        }
        _ => assert_eq!(Implementation::selected(), Implementation::detected()),
    }
    assert!(Implementation::selected().available());
}

/// ChaCha20-Poly1305 follows the selected implementation where it has code of that width,
/// and needs AVX2 and BMI2 (no AES instructions) for its 256-bit code: under `avx2` and
/// `aesni` it runs there whenever the CPU has both, and on the portable code otherwise.
#[test]
fn chacha20_poly1305_runs_on_the_widest_vectors_the_selection_allows() {
    let chacha = CipherSuite::ChaCha20Poly1305Sha256;
    for implementation in [Implementation::Avx512, Implementation::Portable] {
        assert_eq!(implementation.for_suite(chacha), implementation);
    }
    #[cfg(target_arch = "x86_64")]
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("bmi2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let expected = if avx2 {
        Implementation::Avx2
    } else {
        Implementation::Portable
    };
    assert_eq!(Implementation::Avx2.for_suite(chacha), expected);
    assert_eq!(Implementation::AesNi.for_suite(chacha), expected);
    for suite in [CipherSuite::Aes128GcmSha256, CipherSuite::Aes256GcmSha384] {
        for implementation in Implementation::ALL {
            assert_eq!(implementation.for_suite(suite), implementation);
        }
    }
}
