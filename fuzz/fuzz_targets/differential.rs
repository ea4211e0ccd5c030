//! `differential`: an input-chosen 1-RTT packet sealed by quicseal and by ring, which must
//! agree to the byte, and each opening what the other sealed.
//!
//! Input: suite byte (`% 3`), 48 secret bytes (the suite's hash length of them are used),
//! flags byte (bits 0-1: packet number length - 1, bit 2: spin, bit 3: key phase),
//! DCID length byte (`% 21`), 20 DCID bytes (that many used), 8 bytes of packet number,
//! source cuts, destination cuts, then the payload.
//!
//! ring's side is written here from RFC 9001 alone: the keys come from the secret through
//! ring's HKDF with this file's own HKDF-Expand-Label (RFC 8446 §7.1), a key-phase-1 packet
//! uses the next generation's secret ("quic ku", RFC 9001 §6.1) with generation 0's header
//! key, the nonce is the IV XOR the packet number (§5.3), and header protection masks the
//! first byte's low five bits and the packet number from the sample 4 bytes past the packet
//! number's start (§5.4). quicseal seals from a source and into a destination cut into
//! scatter-gather pieces at input-chosen points.
//!
//! Properties: quicseal refuses a packet too short to sample (`Malformed`) and seals every
//! other; its bytes are ring's; ring opens them (header protection removed, tag checked) to
//! the cleartext; quicseal's `RxFlow` opens ring's bytes to the cleartext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::{CipherSuite, Error, FlowConfig, RxFlow, TxFlow};
use quicseal_fuzz::{ChosenPacket, pieces, pieces_mut};
use ring::aead::quic::{self, HeaderProtectionKey};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

const TAG_LEN: usize = 16;
const SAMPLE_LEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    let ChosenPacket {
        suite,
        secret,
        dcid_len,
        number,
        src_cuts,
        dst_cuts,
        cleartext,
        header_len,
        pn_len,
        key_phase,
        payload,
        ..
    } = ChosenPacket::read(data);
    let ring_suite = RingSuite::of(suite);
    let secret = &secret[..];
    let len = cleartext.len();

    // quicseal: the packet number one above the largest sealed, so that it recovers exactly
    // the chosen one; a key-phase-1 packet is its first key update.
    let mut config = FlowConfig::new(dcid_len);
    config.largest_packet_number = number.checked_sub(1);
    let mut tx: TxFlow = TxFlow::from_secret(suite, secret, config).expect("valid");
    let mut sealed = vec![0u8; len + TAG_LEN];
    let outcome = {
        let src = pieces(&cleartext, &src_cuts.fit(len));
        let mut dst = pieces_mut(&mut sealed, &dst_cuts.fit(len + TAG_LEN));
        tx.seal(&src, &mut dst)
    };
    if pn_len + payload.len() + TAG_LEN < 4 + SAMPLE_LEN {
        assert_eq!(outcome, Err(Error::Malformed), "too short to sample");
        return;
    }
    let outcome = outcome.expect("a packet long enough to sample seals");
    assert_eq!(outcome.len, len + TAG_LEN);
    assert_eq!(outcome.packet.map(|p| p.number), Some(number));

    // ring, from the same secret.
    let generation_secret = match key_phase {
        true => expand_label(ring_suite.hkdf, secret, b"quic ku", ring_suite.hash_len),
        false => secret.to_vec(),
    };
    let key = expand_label(
        ring_suite.hkdf,
        &generation_secret,
        b"quic key",
        ring_suite.key_len,
    );
    let iv = expand_label(ring_suite.hkdf, &generation_secret, b"quic iv", 12);
    let hp = expand_label(ring_suite.hkdf, secret, b"quic hp", ring_suite.key_len);
    let aead_key = LessSafeKey::new(UnboundKey::new(ring_suite.aead, &key).expect("key length"));
    let hp_key = HeaderProtectionKey::new(ring_suite.hp, &hp).expect("key length");
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&iv);
    for (n, p) in nonce[4..].iter_mut().zip(number.to_be_bytes()) {
        *n ^= p;
    }
    let mut expected = cleartext.clone();
    let (aad, body) = expected.split_at_mut(header_len);
    let tag = aead_key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
        .expect("sealed");
    expected.extend_from_slice(tag.as_ref());
    let pn_offset = 1 + dcid_len;
    toggle_header_protection(&hp_key, &mut expected, pn_offset, pn_len);
    assert_eq!(sealed, expected, "quicseal's bytes are not ring's");

    // ring opens quicseal's packet.
    let mut opened = sealed.clone();
    toggle_header_protection(&hp_key, &mut opened, pn_offset, pn_len);
    let (aad, body) = opened.split_at_mut(header_len);
    let plain = aead_key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
        .expect("ring opens quicseal's packet");
    assert_eq!(plain, payload);
    assert_eq!(&opened[..header_len], &cleartext[..header_len]);

    // quicseal opens ring's packet.
    let mut rx: RxFlow = RxFlow::from_secret(suite, secret, config).expect("valid");
    let mut received = expected;
    let opened = rx
        .open_in_place(&mut received)
        .expect("quicseal opens ring's packet");
    assert_eq!(opened.len, len);
    assert_eq!(opened.packet.map(|p| p.number), Some(number));
    assert_eq!(&received[..len], &cleartext[..]);
});

/// Applies or removes header protection (RFC 9001 §5.4.1: the same XOR either way, its mask
/// from the sample 4 bytes past the packet number's start, which it does not change): the
/// first byte's low five bits and the `pn_len`-byte packet number at `pn_offset`.
fn toggle_header_protection(
    hp_key: &HeaderProtectionKey,
    packet: &mut [u8],
    pn_offset: usize,
    pn_len: usize,
) {
    let sample_at = pn_offset + 4;
    let mask = hp_key
        .new_mask(&packet[sample_at..sample_at + SAMPLE_LEN])
        .expect("mask");
    packet[0] ^= mask[0] & 0x1f;
    for (byte, m) in packet[pn_offset..pn_offset + pn_len]
        .iter_mut()
        .zip(&mask[1..])
    {
        *byte ^= m;
    }
}

/// ring's algorithms and lengths for a suite.
struct RingSuite {
    hkdf: hkdf::Algorithm,
    hash_len: usize,
    aead: &'static aead::Algorithm,
    hp: &'static quic::Algorithm,
    key_len: usize,
}

impl RingSuite {
    fn of(suite: CipherSuite) -> RingSuite {
        match suite {
            CipherSuite::Aes128GcmSha256 => RingSuite {
                hkdf: hkdf::HKDF_SHA256,
                hash_len: 32,
                aead: &aead::AES_128_GCM,
                hp: &quic::AES_128,
                key_len: 16,
            },
            CipherSuite::Aes256GcmSha384 => RingSuite {
                hkdf: hkdf::HKDF_SHA384,
                hash_len: 48,
                aead: &aead::AES_256_GCM,
                hp: &quic::AES_256,
                key_len: 32,
            },
            CipherSuite::ChaCha20Poly1305Sha256 => RingSuite {
                hkdf: hkdf::HKDF_SHA256,
                hash_len: 32,
                aead: &aead::CHACHA20_POLY1305,
                hp: &quic::CHACHA20,
                key_len: 32,
            },
        }
    }
}

/// An output length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) (RFC 8446 §7.1), with ring's HKDF-Expand.
fn expand_label(algorithm: hkdf::Algorithm, secret: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let prk = hkdf::Prk::new_less_safe(algorithm, secret);
    let length = (len as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info = [&length[..], &label_len, b"tls13 ", label, &[0]];
    let mut out = vec![0u8; len];
    prk.expand(&info, Len(len))
        .expect("a valid length")
        .fill(&mut out)
        .expect("a valid length");
    out
}
