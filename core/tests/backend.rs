//! The portable backend's streaming AEADs against RustCrypto's one-shot `aes-gcm` and
//! `chacha20poly1305`, fed in pieces of random lengths, both directions.

use aes_gcm::aead::{AeadInOut, KeyInit};
use proptest::prelude::*;
use quicseal::CipherSuite;
use quicseal::backend::{AeadStream, Backend, Direction, PacketKey, Portable};

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

/// Runs `text` through a stream in pieces of the given lengths, alternating between the
/// copying and the in-place entry points.
fn stream(
    key: &impl PacketKey,
    nonce: &[u8; 12],
    aad: &[u8],
    text: &[u8],
    direction: Direction,
    pieces: &[usize],
) -> (Vec<u8>, Vec<u8>) {
    let mut stream = key.begin(nonce, aad, direction);
    let mut out = vec![0u8; text.len()];
    let mut at = 0;
    for (i, piece) in pieces
        .iter()
        .chain(std::iter::repeat(&usize::MAX))
        .enumerate()
    {
        if at == text.len() {
            break;
        }
        let end = at + (*piece).min(text.len() - at);
        if i % 2 == 0 {
            stream.update(&text[at..end], &mut out[at..end]);
        } else {
            out[at..end].copy_from_slice(&text[at..end]);
            stream.update_in_place(&mut out[at..end]);
        }
        at = end;
    }
    (out, stream.finish().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn streams_match_the_one_shot_crates(
        suite in prop::sample::select(CipherSuite::ALL.to_vec()),
        key in prop::collection::vec(any::<u8>(), 32),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        text in prop::collection::vec(any::<u8>(), 0..600),
        pieces in prop::collection::vec(0usize..70, 0..12),
    ) {
        let key = &key[..suite.key_len()];
        let packet_key = Portable::packet_key(suite, key).unwrap();
        let (ciphertext, tag) = reference(suite, key, &nonce, &aad, &text);
        let sealed = stream(&packet_key, &nonce, &aad, &text, Direction::Seal, &pieces);
        prop_assert_eq!(&sealed, &(ciphertext.clone(), tag.clone()));
        let opened = stream(&packet_key, &nonce, &aad, &ciphertext, Direction::Open, &pieces);
        prop_assert_eq!(opened, (text, tag));
    }
}
