//! Each width against RustCrypto's one-shot `aes-gcm` and the `aes` block cipher: every length
//! from empty to past several bulk iterations, payloads cut into scatter-gather pieces at
//! random points, in place and copied, both directions.

use aes_gcm::aead::{AeadInOut, KeyInit};
use proptest::prelude::*;
use std::vec::Vec;

use super::*;
use crate::sg::{SgDestination, SgSource};

fn widths() -> Vec<Width> {
    [Width::Avx512, Width::Avx2, Width::AesNi]
        .into_iter()
        .filter(|w| w.available())
        .collect()
}

/// Each width is available exactly where std's own CPUID reading (which knows that VAES and
/// VPCLMULQDQ on 256-bit registers need no AVX-512 state) says its instructions are.
#[test]
fn widths_follow_std_feature_detection() {
    use std::is_x86_feature_detected as has;
    let aesni = has!("aes") && has!("pclmulqdq") && has!("sse4.1") && has!("ssse3");
    let avx2 = aesni && has!("avx2") && has!("vaes") && has!("vpclmulqdq");
    let avx512 = avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
    assert_eq!(Width::AesNi.available(), aesni);
    assert_eq!(Width::Avx2.available(), avx2);
    assert_eq!(Width::Avx512.available(), avx512);
}

/// Partial blocks in and out through scalar loads and stores: exactly the first `n` bytes,
/// zeros above them on the way in, nothing past them on the way out.
#[test]
fn partial_blocks_load_and_store_exactly_their_bytes() {
    let bytes: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
    for n in 0..=16 {
        let mut expected = [0u8; 16];
        expected[..n].copy_from_slice(&bytes[..n]);
        let mut loaded = [0u8; 16];
        // SAFETY: the tests run where the x86 backends do: SSE4.1 is there.
        unsafe { aes::store(&mut loaded, aes::load_partial(&bytes[..n])) };
        assert_eq!(loaded, expected, "load of {n} bytes");
        if n < 16 {
            let mut out = [0x55u8; 17];
            // SAFETY: 17 writable bytes, more than `n`.
            unsafe { aes::store_partial(out.as_mut_ptr(), n, aes::load(&bytes)) };
            assert_eq!(&out[..n], &bytes[..n], "store of {n} bytes");
            assert!(
                out[n..].iter().all(|&b| b == 0x55),
                "store of {n} bytes went past them"
            );
        }
    }
}

/// A keystream buffer starts uninitialised, so it shows only the halves written so far (the
/// most any fill reached, a shorter fill later leaving the older halves past it), and its
/// one-time key is the first half.
#[test]
fn keystream_buffers_show_only_what_was_written() {
    if !std::is_x86_feature_detected!("avx") {
        return;
    }
    let halves = |bytes: &[u8]| -> Vec<__m256i> {
        // SAFETY: the CPU has AVX (checked above).
        bytes
            .iter()
            .map(|&b| unsafe { _mm256_set1_epi8(b as i8) })
            .collect()
    };
    let mut stream = super::chacha20_poly1305::Keystream::new();
    assert!(stream.bytes().is_empty());
    assert_eq!(stream.fill_halves(&halves(&[1, 2, 3, 4])), 2);
    let expected: Vec<u8> = [1u8, 2, 3, 4].iter().flat_map(|&b| [b; 32]).collect();
    assert_eq!(stream.bytes(), &expected[..]);
    assert_eq!(stream.one_time_key(), &[1; 32]);
    assert_eq!(stream.fill_halves(&halves(&[5, 6])), 1);
    let expected: Vec<u8> = [5u8, 6, 3, 4].iter().flat_map(|&b| [b; 32]).collect();
    assert_eq!(stream.bytes(), &expected[..]);
}

fn reference(key: &[u8], nonce: &[u8; 12], aad: &[u8], text: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let mut buffer = text.to_vec();
    let tag = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into()),
        _ => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt_inout_detached(nonce.into(), aad, buffer.as_mut_slice().into()),
    }
    .unwrap();
    (buffer, tag.into())
}

/// Cuts `len` bytes into pieces at the given points.
fn cut(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort();
    let mut pieces = Vec::new();
    let mut at = 0;
    for p in points.into_iter().chain([data.len()]) {
        pieces.push(data[at..p].to_vec());
        at = p;
    }
    pieces
}

/// Runs the AEAD over `text` as a scatter-gather copy, the source cut at `src_cuts` and the
/// destination at `dst_cuts`.
fn copied(
    key: &AesGcmKey,
    nonce: &[u8; 12],
    aad: &[u8],
    text: &[u8],
    seal: bool,
    src_cuts: &[usize],
    dst_cuts: &[usize],
) -> (Vec<u8>, [u8; 16]) {
    let src_pieces = cut(text, src_cuts);
    let src_refs: Vec<&[u8]> = src_pieces.iter().map(|p| p.as_slice()).collect();
    let src = SgSource::new(&src_refs);
    let mut dst_pieces = cut(&std::vec![0u8; text.len()], dst_cuts);
    let mut dst_refs: Vec<&mut [u8]> = dst_pieces.iter_mut().map(|p| p.as_mut_slice()).collect();
    let mut dst = SgDestination::new(&mut dst_refs);
    let payload = Payload::Copy {
        src: &src,
        src_at: 0,
        dst: &mut dst,
        dst_at: 0,
        len: text.len(),
    };
    let tag = if seal {
        key.seal(&NoMask, nonce, aad, 0, payload).tag
    } else {
        key.open(nonce, aad, payload)
    };
    (dst_pieces.concat(), tag)
}

/// A header key for tests that look only at the AEAD.
struct NoMask;

impl HeaderKey for NoMask {
    fn mask(&self, _: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        [0; MASK_LEN]
    }
}

/// A header key that returns the sample's first five bytes, to see which sample it got.
struct SampleEcho;

impl HeaderKey for SampleEcho {
    fn mask(&self, sample: &[u8; SAMPLE_LEN]) -> [u8; MASK_LEN] {
        core::array::from_fn(|i| sample[i])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_width_matches_aes_gcm(
        long_key in any::<bool>(),
        key in prop::collection::vec(any::<u8>(), 32),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..300),
        text in prop::collection::vec(any::<u8>(), 0..1600),
        src_cuts in prop::collection::vec(any::<usize>(), 0..6),
        dst_cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let key = &key[..if long_key { 32 } else { 16 }];
        let (ciphertext, tag) = reference(key, &nonce, &aad, &text);
        for width in widths() {
            let fused = AesGcmKey::new(width, key).unwrap();
            let mut in_place = text.clone();
            let sealed = fused.seal(&NoMask, &nonce, &aad, 0, Payload::InPlace(&mut in_place)).tag;
            prop_assert_eq!((&in_place, sealed), (&ciphertext, tag), "{:?} seal in place", width);
            let opened = fused.open(&nonce, &aad, Payload::InPlace(&mut in_place));
            prop_assert_eq!((&in_place, opened), (&text, tag), "{:?} open in place", width);
            let sealed = copied(&fused, &nonce, &aad, &text, true, &src_cuts, &dst_cuts);
            prop_assert_eq!(&sealed, &(ciphertext.clone(), tag), "{:?} seal copied", width);
            let opened = copied(&fused, &nonce, &aad, &ciphertext, false, &src_cuts, &dst_cuts);
            prop_assert_eq!(&opened, &(text.clone(), tag), "{:?} open copied", width);
        }
    }

    #[test]
    fn header_masks_match_aes(long_key in any::<bool>(), key in any::<[u8; 32]>(), sample in any::<[u8; 16]>()) {
        use ::aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key = &key[..if long_key { 32 } else { 16 }];
        let mut block = ::aes::Block::from(sample);
        match key.len() {
            16 => ::aes::Aes128::new_from_slice(key).unwrap().encrypt_block(&mut block),
            _ => ::aes::Aes256::new_from_slice(key).unwrap().encrypt_block(&mut block),
        }
        prop_assert_eq!(&AesHeaderKey::new(Width::AesNi, key).unwrap().mask(&sample)[..], &block[..MASK_LEN]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// The sample comes from registers in the bulk loops and from memory elsewhere; either
    /// way it is the protected packet's 16 bytes from `sample_at`, into the tag if need be.
    #[test]
    fn the_sample_is_the_one_in_the_packet(
        text in prop::collection::vec(any::<u8>(), 0..700),
        sample_at in 0usize..16,
        first_piece in 0usize..40,
    ) {
        let (key, nonce) = ([3u8; 16], [5u8; 12]);
        let sample_at = sample_at.min(text.len());
        let (ciphertext, tag) = reference(&key, &nonce, b"header", &text);
        let protected = [ciphertext.as_slice(), &tag].concat();
        let expected = &protected[sample_at..sample_at + MASK_LEN];
        for width in widths() {
            let fused = AesGcmKey::new(width, &key).unwrap();
            let mut in_place = text.clone();
            let sealed = fused.seal(&SampleEcho, &nonce, b"header", sample_at, Payload::InPlace(&mut in_place));
            prop_assert_eq!(&sealed.mask[..], expected, "{:?} in place", width);
            // A first source segment shorter than the sample: no register has it whole.
            let cut = first_piece.min(text.len());
            let (_, sealed) = through_copy(&text, &[cut], |payload| {
                fused.seal(&SampleEcho, &nonce, b"header", sample_at, payload)
            });
            prop_assert_eq!(&sealed.mask[..], expected, "{:?} copied, cut at {}", width, cut);
        }
    }
}

/// Payloads longer than the property tests' (up to 12 KB, as a jumbo datagram could carry):
/// the 32-bit block counter's low byte wraps from block 254 on (blocks count from 2), so a
/// counter kept in big-endian form would have to carry; whole and in pieces that end
/// around the wrap. AES-256 too: its 512-bit loop makes E_K(J0) in a spare lane of the tail
/// (lane 3 at 4065 and 4200 bytes, lane 1 at 8200), in the counters' reversed form here.
#[test]
fn long_payloads_carry_the_counter_past_its_low_byte() {
    for key in [&[0x42u8; 16][..], &[0x42u8; 32][..]] {
        long_payloads_with(key);
    }
}

fn long_payloads_with(key: &[u8]) {
    let nonce = [0xffu8; 12];
    for len in [
        4063, 4064, 4065, 4080, 4096, 4111, 4200, 8160, 8192, 8200, 12345,
    ] {
        let text: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let (ciphertext, tag) = reference(key, &nonce, b"aad", &text);
        for width in widths() {
            let fused = AesGcmKey::new(width, key).unwrap();
            for cuts in [&[][..], &[4032, 4048][..], &[16 * 253, 16 * 255 + 3][..]] {
                let sealed = copied(&fused, &nonce, b"aad", &text, true, cuts, &[]);
                assert_eq!(
                    sealed,
                    (ciphertext.clone(), tag),
                    "{width:?}, {}-byte key, seals {len} cut at {cuts:?}",
                    key.len()
                );
                let opened = copied(&fused, &nonce, b"aad", &ciphertext, false, &[], cuts);
                assert_eq!(
                    opened,
                    (text.clone(), tag),
                    "{width:?}, {}-byte key, opens {len} cut at {cuts:?}",
                    key.len()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// With the packet key's own AES header key the bulk loops encrypt the sample where they
    /// take it; the mask is still the header key's mask of the sealed packet's sample, and
    /// the ciphertext and tag those of the generic path, however the payload is cut.
    #[test]
    fn own_aes_header_key_masks_the_packets_sample(
        long_key in any::<bool>(),
        header_key in any::<[u8; 32]>(),
        text in prop::collection::vec(any::<u8>(), 0..700),
        sample_at in 0usize..16,
        first_piece in 0usize..40,
    ) {
        let (key, nonce) = ([3u8; 32], [5u8; 12]);
        let key = &key[..if long_key { 32 } else { 16 }];
        let header_key = AesHeaderKey::new(Width::AesNi, &header_key[..key.len()]).unwrap();
        let sample_at = sample_at.min(text.len());
        let (ciphertext, tag) = reference(key, &nonce, b"header", &text);
        let protected = [ciphertext.as_slice(), &tag].concat();
        let sample: [u8; 16] = protected[sample_at..sample_at + 16].try_into().unwrap();
        let expected = header_key.mask(&sample);
        for width in widths() {
            let fused = AesGcmKey::new(width, key).unwrap();
            let mut in_place = text.clone();
            let sealed = fused.seal_with_aes_mask(&header_key, &nonce, b"header", sample_at, Payload::InPlace(&mut in_place));
            prop_assert_eq!((sealed.mask, sealed.tag), (expected, tag), "{:?} in place", width);
            prop_assert_eq!(&in_place, &ciphertext, "{:?} in place", width);
            let cut = first_piece.min(text.len());
            let (out, sealed) = through_copy(&text, &[cut], |payload| {
                fused.seal_with_aes_mask(&header_key, &nonce, b"header", sample_at, payload)
            });
            prop_assert_eq!((sealed.mask, sealed.tag), (expected, tag), "{:?} copied, cut at {}", width, cut);
            prop_assert_eq!(&out, &ciphertext, "{:?} copied, cut at {}", width, cut);
        }
    }
}

#[test]
fn this_cpu_has_a_width() {
    // Every x86_64 CPU this project runs on has AES-NI; without it the fused code is never
    // tested, so say so loudly.
    assert!(
        Width::AesNi.available(),
        "no AES-NI: the fused AES-GCM is untested here"
    );
}

#[test]
fn key_lengths_are_checked() {
    for width in widths() {
        assert_eq!(
            AesGcmKey::new(width, &[0; 24]).err(),
            Some(Error::InvalidKeyLength)
        );
    }
    assert_eq!(
        AesHeaderKey::new(Width::AesNi, &[0; 17]).err(),
        Some(Error::InvalidKeyLength)
    );
}

mod chacha20_poly1305 {
    use super::super::chacha20::{self, ChaChaState};
    use super::super::poly1305::{Engine, Poly1305};
    use super::*;
    use ::chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    use ::poly1305::universal_hash::{KeyInit, UniversalHash};

    fn poly(key: &[u8; 32], data: &[u8], cuts: &[usize], engine: Engine) -> [u8; 16] {
        let mut mac = Poly1305::new(key, engine);
        for piece in cut(data, cuts) {
            mac.absorb(&piece);
        }
        mac.pad();
        // Any last block stands in for the AEAD's lengths block.
        mac.finish(&[7; 16])
    }

    fn reference_poly(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
        let mut mac = ::poly1305::Poly1305::new(key.into());
        mac.update_padded(data);
        mac.update_padded(&[7; 16]);
        mac.finalize().into()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn poly1305_matches_the_crate(
            key in any::<[u8; 32]>(),
            data in prop::collection::vec(any::<u8>(), 0..1600),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
            saturate in any::<bool>(),
        ) {
            // All-ones keys and data drive h close to 2^130 - 5, where the final reduction's
            // conditional subtraction matters.
            let (key, data) = if saturate {
                let mut key = [0xff; 32];
                key[16..].copy_from_slice(&[0xff; 16]);
                (key, std::vec![0xff; data.len()])
            } else {
                (key, data)
            };
            let expected = reference_poly(&key, &data);
            for engine in poly1305_engines() {
                prop_assert_eq!(poly(&key, &data, &cuts, engine), expected, "{:?}", engine);
            }
        }

        #[test]
        fn poly1305_side_by_side_matches_the_crate(
            keys in prop::collection::vec(any::<[u8; 32]>(), 1..=8),
            aad_len in 0usize..40,
            text_len in 0usize..300,
            seed in any::<u8>(),
        ) {
            if !ifma_cpuid::get() {
                return Ok(());
            }
            let n = keys.len();
            let aads: Vec<Vec<u8>> = (0..n).map(|j| (0..aad_len).map(|i| (i * 7 + j) as u8 ^ seed).collect()).collect();
            let texts: Vec<Vec<u8>> = (0..n).map(|j| (0..text_len).map(|i| (i * 13 + j * 3) as u8 ^ seed).collect()).collect();
            let lengths = [9u8; 16];
            let key_refs: Vec<&[u8; 32]> = keys.iter().collect();
            let aad_refs: Vec<&[u8]> = aads.iter().map(Vec::as_slice).collect();
            let text_refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
            let mut tags = std::vec![[0u8; 16]; n];
            // SAFETY: IFMA checked above.
            unsafe {
                super::super::poly1305::tags_side_by_side(&key_refs, &aad_refs, &text_refs, &lengths, &mut tags);
            }
            for j in 0..n {
                let mut mac = ::poly1305::Poly1305::new((&keys[j]).into());
                mac.update_padded(&aads[j]);
                mac.update_padded(&texts[j]);
                mac.update_padded(&lengths);
                let expected: [u8; 16] = mac.finalize().into();
                prop_assert_eq!(tags[j], expected, "message {}", j);
            }
        }

        #[test]
        fn chacha20_matches_the_crate(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            counter in prop_oneof![0u32..4, (u32::MAX - 40)..u32::MAX],
            text in prop::collection::vec(any::<u8>(), 0..2200),
        ) {
            if !Width::Avx512.available() {
                return Ok(());
            }
            // Stay inside the 32-bit block counter, as packets do (the crate refuses to wrap).
            let blocks = text.len().div_ceil(64) as u64;
            prop_assume!(u64::from(counter) + blocks < (1 << 32) - 1);
            let mut expected = text.clone();
            let mut cipher = ::chacha20::ChaCha20::new(&key.into(), &nonce.into());
            cipher.seek(u64::from(counter) * 64);
            cipher.apply_keystream(&mut expected);
            let mut ours = text.clone();
            // SAFETY: AVX-512 checked above; `ours` is valid for reads and writes.
            unsafe {
                let state = ChaChaState::new(&key, &nonce);
                let at = ours.as_mut_ptr();
                chacha20::xor(&state, counter, at, at, ours.len());
            }
            prop_assert_eq!(ours, expected);
        }
    }
}

/// Hands `operation` `data` as a payload copied from a source cut at `cuts` into one
/// destination: the destination after it, and what it returned.
fn through_copy<T>(
    data: &[u8],
    cuts: &[usize],
    operation: impl FnOnce(Payload<'_, '_, '_, '_>) -> T,
) -> (Vec<u8>, T) {
    let pieces = cut(data, cuts);
    let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
    let src = SgSource::new(&refs);
    let mut out = std::vec![0u8; data.len()];
    let mut outs = [out.as_mut_slice()];
    let mut dst = SgDestination::new(&mut outs);
    let result = operation(Payload::Copy {
        src: &src,
        src_at: 0,
        dst: &mut dst,
        dst_at: 0,
        len: data.len(),
    });
    (out, result)
}

/// The ChaCha20-Poly1305 keys under test, behind one interface: sealing returns the tag.
trait ChaChaAead {
    fn seal_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16];
    fn open_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16];
}

impl ChaChaAead for ChaCha20Poly1305Key {
    fn seal_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16] {
        self.seal(&NoMask, nonce, aad, 0, payload).tag
    }

    fn open_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16] {
        self.open(nonce, aad, payload)
    }
}

impl ChaChaAead for ChaCha20Poly1305Avx2Key {
    fn seal_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16] {
        self.seal(&NoMask, nonce, aad, 0, payload).tag
    }

    fn open_tag(&self, nonce: &[u8; 12], aad: &[u8], payload: Payload<'_, '_, '_, '_>) -> [u8; 16] {
        self.open(nonce, aad, payload)
    }
}

/// Every Poly1305 engine this CPU can run.
fn poly1305_engines() -> Vec<self::poly1305::Engine> {
    use self::poly1305::Engine;
    let mut engines = std::vec![Engine::Integer];
    if avx2_cpuid::get() {
        engines.push(Engine::Avx2);
    }
    if ifma_cpuid::get() {
        engines.push(Engine::Ifma);
    }
    engines
}

/// Every ChaCha20-Poly1305 key this CPU can run for `key`: on AVX-512 with each Poly1305
/// engine, and on AVX2.
fn chacha_keys(key: &[u8; 32]) -> Vec<(std::string::String, std::boxed::Box<dyn ChaChaAead>)> {
    let mut keys: Vec<(std::string::String, std::boxed::Box<dyn ChaChaAead>)> = Vec::new();
    if let Ok(avx512) = ChaCha20Poly1305Key::new(key) {
        for engine in poly1305_engines() {
            let name = std::format!("avx512, Poly1305 {engine:?}");
            keys.push((
                name,
                std::boxed::Box::new(avx512.clone().with_poly1305(engine)),
            ));
        }
    }
    if let Ok(avx2) = ChaCha20Poly1305Avx2Key::new(key) {
        keys.push(("avx2".into(), std::boxed::Box::new(avx2)));
    }
    keys
}

/// Runs `data` through `key` copied, from a source cut at `cuts` into one destination:
/// the output and the tag.
fn chacha_copied(
    key: &dyn ChaChaAead,
    nonce: &[u8; 12],
    data: &[u8],
    cuts: &[usize],
    seal: bool,
) -> (Vec<u8>, [u8; 16]) {
    through_copy(data, cuts, |payload| match seal {
        true => key.seal_tag(nonce, b"aad", payload),
        false => key.open_tag(nonce, b"aad", payload),
    })
}

/// Every seventh length to 2.6 KB (single and several 1 KiB chunks, tails of every size), and
/// each side of the lengths where the interleaved code starts and where its opening stops
/// (one and two keystream calls) and where the AVX2 code switches from rows to eight-block
/// calls and where those end (the first call's 448 bytes, then 512 a call, each later call
/// hashing the one before it in its rounds),
/// sealed and opened in place, copied, and copied from segments cut inside blocks, by every
/// key of [`chacha_keys`]: output and tag must be the crate's each time.
#[test]
fn fused_chacha20_poly1305_matches_the_crate_at_many_lengths_and_cuts() {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let (key, nonce) = ([3u8; 32], [5u8; 12]);
    let keys = chacha_keys(&key);
    for len in (0..2600usize).step_by(7).chain([
        64, 65, 192, 193, 447, 448, 449, 959, 960, 961, 1023, 1024, 1025, 1471, 1472, 1473, 1983,
        1984, 1985, 2048,
    ]) {
        let text: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut ciphertext = text.clone();
        let tag: [u8; 16] = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key)
            .unwrap()
            .encrypt_inout_detached(&nonce.into(), b"aad", ciphertext.as_mut_slice().into())
            .unwrap()
            .into();
        for (name, fused) in &keys {
            let fused = fused.as_ref();
            let mut in_place = text.clone();
            let sealed = fused.seal_tag(&nonce, b"aad", Payload::InPlace(&mut in_place));
            assert_eq!(
                (&in_place, sealed),
                (&ciphertext, tag),
                "{name}: seal in place, {len} B"
            );
            let opened = fused.open_tag(&nonce, b"aad", Payload::InPlace(&mut in_place));
            assert_eq!(
                (&in_place, opened),
                (&text, tag),
                "{name}: open in place, {len} B"
            );
            for cuts in [&[][..], &[5, 70], &[64, 128], &[100, 1100], &[1, 2]] {
                let sealed = chacha_copied(fused, &nonce, &text, cuts, true);
                assert_eq!(
                    sealed,
                    (ciphertext.clone(), tag),
                    "{name}: seal {len} B cut at {cuts:?}"
                );
                let opened = chacha_copied(fused, &nonce, &ciphertext, cuts, false);
                assert_eq!(
                    opened,
                    (text.clone(), tag),
                    "{name}: open {len} B cut at {cuts:?}"
                );
            }
        }
    }
}

/// Sealing with this module's ChaCha20 header key, whose mask's block runs beside the last
/// keystream call or beside Poly1305 when the payload is in one piece, gives the
/// ciphertext, tag and mask that sealing with the portable (RustCrypto) header key gives:
/// at lengths each side of the interleaved code's thresholds and of the second call's
/// lengths that take the mask in a free lane (1217 to 1408 bytes), at every sample offset a
/// packet number's length makes and at one past the first call's blocks, in place and
/// copied, whole and cut into pieces, with each Poly1305 engine the CPU has, with a short
/// header and a long one.
#[test]
fn chacha20_mask_beside_the_keystream_matches_the_portable_key() {
    use crate::backend::{Backend, Portable};
    if !Width::Avx512.available() {
        return;
    }
    let key = ChaCha20Poly1305Key::new(&[3; 32]).unwrap();
    let keys: Vec<ChaCha20Poly1305Key> = poly1305_engines()
        .into_iter()
        .map(|engine| key.clone().with_poly1305(engine))
        .collect();
    let own = ChaCha20HeaderKey::new(&[9; 32]).unwrap();
    let portable = Portable::header_key(crate::CipherSuite::ChaCha20Poly1305Sha256, &[9; 32]);
    let portable = portable.unwrap();
    let nonce = [5; 12];
    let lengths = [
        16, 19, 20, 37, 64, 229, 448, 520, 576, 959, 960, 961, 1000, 1216, 1217, 1323, 1408, 1409,
        1425, 1984, 3000,
    ];
    for (key, aad) in keys.iter().flat_map(|key| HEADERS.map(|aad| (key, aad))) {
        check_fused_masks(
            &lengths,
            &[0, 1, 2, 3, 945, 946],
            |at, payload| key.seal(&portable, &nonce, aad, at, payload),
            |at, payload| key.seal_with_chacha20_mask(&own, &nonce, aad, at, payload),
        );
    }
}

/// Headers (AAD) of one Poly1305 block and of two, partly filled (a 20-byte connection ID's).
const HEADERS: [&[u8]; 2] = [b"hdr", &[0x41; 25]];

/// Checks that `fused` seals a text of each of `lengths` bytes as `plain` does (the
/// ciphertext, the tag and the mask), with the sample at each of `offsets` the text
/// reaches: in place, and copied whole and cut into pieces.
fn check_fused_masks(
    lengths: &[usize],
    offsets: &[usize],
    plain: impl Fn(usize, Payload<'_, '_, '_, '_>) -> Sealed,
    fused: impl Fn(usize, Payload<'_, '_, '_, '_>) -> Sealed,
) {
    for &len in lengths {
        let text: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        for &sample_at in offsets.iter().filter(|&&at| at <= len) {
            let mut expected = text.clone();
            let want = plain(sample_at, Payload::InPlace(&mut expected));
            let mut in_place = text.clone();
            let got = fused(sample_at, Payload::InPlace(&mut in_place));
            assert_eq!(
                (&in_place, got),
                (&expected, want),
                "in place, {len} B at {sample_at}"
            );
            for cuts in [&[][..], &[5, 70]] {
                let got = through_copy(&text, cuts, |payload| fused(sample_at, payload));
                assert_eq!(
                    got,
                    (expected.clone(), want),
                    "copied {len} B at {sample_at}, cut at {cuts:?}"
                );
            }
        }
    }
}

/// The AVX2 key's seal with the AVX2 header key, whose mask's block runs for a payload in
/// one piece beside Poly1305 (the first call's 448 bytes or fewer) or, longer, in the last
/// keystream call's free lane (such as 961 and 1323 bytes) or beside the last call's hashing
/// (such as 960 and 1425, whose blocks fill the last call), gives the ciphertext, tag and
/// mask of a seal with the portable
/// (RustCrypto) header key: each side of the first call's 448 bytes, for the sample and for
/// the payload, and of the first call's layouts (one, two and three pairs of blocks by
/// rows, eight vertical), at every sample offset a packet number's length makes, with a
/// short header and a long one, in place and copied, whole and cut into pieces.
#[test]
fn chacha20_avx2_mask_beside_the_keystream_matches_the_portable_key() {
    use crate::backend::{Backend, Portable};
    let (Ok(key), Ok(own)) = (
        ChaCha20Poly1305Avx2Key::new(&[3; 32]),
        ChaCha20Avx2HeaderKey::new(&[9; 32]),
    ) else {
        return;
    };
    let portable = Portable::header_key(crate::CipherSuite::ChaCha20Poly1305Sha256, &[9; 32]);
    let portable = portable.unwrap();
    let nonce = [5; 12];
    for aad in HEADERS {
        check_fused_masks(
            &[
                16, 20, 37, 64, 65, 192, 193, 320, 321, 447, 448, 449, 464, 960, 961, 1000, 1323,
                1425, 1985, 3000,
            ],
            &[0, 1, 2, 3, 431, 432, 433, 945],
            |at, payload| key.seal(&portable, &nonce, aad, at, payload),
            |at, payload| key.seal_with_chacha20_mask(&own, &nonce, aad, at, payload),
        );
    }
}

/// Opening with the mask computed beside the payload (for a receiver that guessed the
/// header) gives the tag and the plaintext `open` gives and the portable key's mask, at
/// lengths on both sides of where the mask runs in the second keystream call, by rows or
/// in its free lane (1217 to 1408 bytes).
#[test]
fn chacha20_mask_beside_an_open_matches_the_portable_key() {
    use crate::backend::{Backend, Portable};
    if !Width::Avx512.available() {
        return;
    }
    let key = ChaCha20Poly1305Key::new(&[3; 32]).unwrap();
    let own = ChaCha20HeaderKey::new(&[9; 32]).unwrap();
    let portable = Portable::header_key(crate::CipherSuite::ChaCha20Poly1305Sha256, &[9; 32]);
    let portable = portable.unwrap();
    let nonce = [5; 12];
    for engine in poly1305_engines() {
        let key = key.clone().with_poly1305(engine);
        check_open_masks(
            &[
                16, 229, 960, 961, 1000, 1216, 1217, 1323, 1408, 1409, 1425, 1984, 1985, 3000,
            ],
            |payload| key.open(&nonce, b"hdr", payload),
            |sample, payload| key.open_with_chacha20_mask(&own, sample, &nonce, b"hdr", payload),
            |sample| portable.mask(sample),
        );
    }
}

/// The same for the AVX2 key and header key, whose mask's block runs beside the payload's
/// keystream: stitched, for a payload longer than the first call (448 bytes) in one piece,
/// in the last call's free lane (such as 1473 bytes) or beside the last call's hashing (such
/// as 1472 and 3000, whose blocks fill the last call); else among the rounds of its rows or of its
/// vertical call (each of those shapes' lengths here); and the lengths they report as
/// computed beside the payload are all.
#[test]
fn chacha20_avx2_mask_beside_an_open_matches_the_portable_key() {
    use crate::backend::{Backend, Portable};
    let (Ok(key), Ok(own)) = (
        ChaCha20Poly1305Avx2Key::new(&[3; 32]),
        ChaCha20Avx2HeaderKey::new(&[9; 32]),
    ) else {
        return;
    };
    assert_eq!(key.masks_beside_open(), 0..=usize::MAX);
    let portable = Portable::header_key(crate::CipherSuite::ChaCha20Poly1305Sha256, &[9; 32]);
    let portable = portable.unwrap();
    let nonce = [5; 12];
    check_open_masks(
        &[
            0, 16, 64, 65, 100, 192, 193, 229, 320, 321, 330, 448, 449, 960, 961, 1323, 1472, 1473,
            3000,
        ],
        |payload| key.open(&nonce, b"hdr", payload),
        |sample, payload| key.open_with_chacha20_mask(&own, sample, &nonce, b"hdr", payload),
        |sample| portable.mask(sample),
    );
}

/// Checks that `open_masking` opens a text of each of `lengths` bytes as `open` does in
/// place (the plaintext and the tag), in place and copied from a source whole and cut into
/// pieces, and gives `mask`'s mask of a sample.
fn check_open_masks(
    lengths: &[usize],
    open: impl Fn(Payload<'_, '_, '_, '_>) -> [u8; 16],
    open_masking: impl Fn(&[u8; SAMPLE_LEN], Payload<'_, '_, '_, '_>) -> ([u8; 16], [u8; 5]),
    mask: impl Fn(&[u8; SAMPLE_LEN]) -> [u8; 5],
) {
    for &len in lengths {
        let text: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let sample: [u8; SAMPLE_LEN] = core::array::from_fn(|i| (len + i) as u8);
        let mut expected = text.clone();
        let want_tag = open(Payload::InPlace(&mut expected));
        let want_mask = mask(&sample);
        let mut got = text.clone();
        let (tag, got_mask) = open_masking(&sample, Payload::InPlace(&mut got));
        assert_eq!(
            (&got, tag, got_mask),
            (&expected, want_tag, want_mask),
            "{len} B"
        );
        for cuts in [&[][..], &[5, 70, 449]] {
            let (got, (tag, got_mask)) =
                through_copy(&text, cuts, |payload| open_masking(&sample, payload));
            let want = (&expected, want_tag, want_mask);
            assert_eq!(
                (&got, tag, got_mask),
                want,
                "copied {len} B, cut at {cuts:?}"
            );
        }
    }
}

/// The AVX2 header key's masks, one at a time and in batches of every size around its row
/// groups (two and four samples) and its eight lanes, are the portable (RustCrypto) key's.
#[test]
fn chacha20_avx2_masks_match_the_portable_key() {
    use crate::backend::{Backend, Portable};
    let Ok(avx2) = ChaCha20Avx2HeaderKey::new(&[9; 32]) else {
        return;
    };
    let portable = Portable::header_key(crate::CipherSuite::ChaCha20Poly1305Sha256, &[9; 32]);
    let portable = portable.unwrap();
    // Counters near zero and near the top, nonces of every byte.
    let samples: Vec<[u8; 16]> = (0..20u8)
        .map(|i| core::array::from_fn(|b| i.wrapping_mul(37).wrapping_add(b as u8 * 11) ^ 0xf0))
        .collect();
    for sample in &samples {
        assert_eq!(avx2.mask(sample), portable.mask(sample), "{sample:?}");
    }
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 20] {
        let mut got = std::vec![[0u8; 5]; n];
        avx2.masks(&samples[..n], &mut got);
        let want: Vec<[u8; 5]> = samples[..n].iter().map(|s| portable.mask(s)).collect();
        assert_eq!(got, want, "batch of {n}");
    }
}

/// A prefetch covers the line of a value's first byte through the line of its last.
#[test]
fn prefetch_covers_every_line_of_a_value() {
    assert_eq!(cache_lines(0x1000, 1), (0, 1));
    assert_eq!(cache_lines(0x1000, 64), (0, 1));
    assert_eq!(cache_lines(0x1000, 65), (0, 2));
    assert_eq!(cache_lines(0x103f, 1), (63, 1));
    assert_eq!(cache_lines(0x103f, 2), (63, 2));
    assert_eq!(cache_lines(0x1010, 2896), (16, 46));
    assert_eq!(cache_lines(0x1010, 0), (16, 0));
    assert_eq!(cache_lines(0x1000, 0), (0, 0));
    // Whatever the value, prefetching it is harmless.
    let values = [0u8; 200];
    for start in 0..values.len() {
        prefetch(&values[start..]);
    }
    prefetch(&());
}
