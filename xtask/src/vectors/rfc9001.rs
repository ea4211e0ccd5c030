//! The flows of RFC 9001 Appendix A. Every published value is recomputed with ring and the
//! generator stops if one differs, so neither a typo here nor a ring bug can ship.

use super::crypto::{Keys, Suite, generations, initial_secret};
use super::flow::{Flow, HpMask, Packet, hex};
use super::packet::{SAMPLE_LEN, SAMPLE_OFFSET, ShortHeader, protect};

/// RFC 9001 A.5: a ChaCha20-Poly1305 short header packet with an empty DCID.
mod a5 {
    pub const SECRET: &str = "9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b";
    pub const KEY: &str = "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8";
    pub const IV: &str = "e0459b3474bdd0e44a41c144";
    pub const HP: &str = "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4";
    pub const KU: &str = "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9";
    pub const PN: u64 = 654_360_564;
    pub const PN_LEN: usize = 3;
    pub const NONCE: &str = "e0459b3474bdd0e46d417eb0";
    pub const HEADER: &str = "4200bff4";
    pub const PAYLOAD: &str = "01";
    pub const SAMPLE: &str = "5e5cd55c41f69080575d7999c25a5bfb";
    pub const MASK: &str = "aefefe7d03";
    pub const PACKET: &str = "4cfe4189655e5cd55c41f69080575d7999c25a5bfb";
}

/// The RFC 9001 A.5 packet, with the keys of generations 0 and 1 (whose secret is A.5's
/// "ku") and the A.5 header protection sample.
pub fn a5_chacha20() -> crate::Result<Flow> {
    let suite = Suite::ChaCha20Poly1305;
    let keys = generations(suite, &unhex(a5::SECRET), 2);
    same("A.5 key", &keys[0].key, a5::KEY)?;
    same("A.5 iv", &keys[0].iv, a5::IV)?;
    same("A.5 hp", &keys[0].hp, a5::HP)?;
    same("A.5 ku", &keys[1].secret, a5::KU)?;
    same("A.5 nonce", &keys[0].nonce(a5::PN), a5::NONCE)?;
    let header = ShortHeader {
        spin: false,
        key_phase: false,
        dcid: &[],
        pn: a5::PN,
        pn_len: a5::PN_LEN,
    };
    let header = header.encode();
    same("A.5 unprotected header", &header, a5::HEADER)?;
    let payload = unhex(a5::PAYLOAD);
    let protected = protect(&keys[0], a5::PN, &header, &payload);
    let sample_start = 1 + SAMPLE_OFFSET;
    same(
        "A.5 sample",
        &protected[sample_start..sample_start + SAMPLE_LEN],
        a5::SAMPLE,
    )?;
    let hp_mask = published_hp_mask(&keys[0], "A.5", a5::SAMPLE, a5::MASK)?;
    same("A.5 packet", &protected, a5::PACKET)?;
    Ok(Flow {
        file: "rfc9001-a5-chacha20.json".into(),
        description: "RFC 9001 Appendix A.5: the ChaCha20-Poly1305 short header packet (empty \
            DCID, 3-byte packet number, a PING frame), its keys, the key update secret \
            (generation 1) and the header protection mask of its sample."
            .into(),
        suite,
        dcid_len: 0,
        keys,
        hp_masks: vec![hp_mask],
        packets: vec![Packet {
            generation: 0,
            pn: a5::PN,
            largest_received: a5::PN - 1,
            header,
            payload,
            protected,
        }],
        gso_size: None,
        negatives: Vec::new(),
    })
}

/// The client's first Destination Connection ID in RFC 9001 Appendix A.
const A1_DCID: &str = "8394c8f03e515708";

/// One side's Initial keys (RFC 9001 A.1) and its packet's header protection (A.2, A.3).
struct InitialSide {
    side: &'static str,
    label: &'static str,
    secret: &'static str,
    key: &'static str,
    iv: &'static str,
    hp: &'static str,
    packet_section: &'static str,
    sample: &'static str,
    mask: &'static str,
}

const CLIENT: InitialSide = InitialSide {
    side: "client",
    label: "client in",
    secret: "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
    key: "1f369613dd76d5467730efcbe3b1a22d",
    iv: "fa044b2f42a3fd3b46fb255c",
    hp: "9f50449e04a0e810283a1e9933adedd2",
    packet_section: "A.2",
    sample: "d1b1c98dd7689fb8ec11d242b123dc9b",
    mask: "437b9aec36",
};

const SERVER: InitialSide = InitialSide {
    side: "server",
    label: "server in",
    secret: "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b",
    key: "cf3a5331653c364c88f0f379b6067e37",
    iv: "0ac1493ca1905853b0bba03e",
    hp: "c206b8d9b9f0f37644430b490eeaa314",
    packet_section: "A.3",
    sample: "2cd0991cd25b0aac406a5816b6394100",
    mask: "2ec0d8356a",
};

/// The client's Initial keys of RFC 9001 A.1 and the header protection mask of A.2.
pub fn a1_client_initial_keys() -> crate::Result<Flow> {
    initial_keys(&CLIENT)
}

/// The server's Initial keys of RFC 9001 A.1 and the header protection mask of A.3.
pub fn a1_server_initial_keys() -> crate::Result<Flow> {
    initial_keys(&SERVER)
}

/// A packetless flow of one side's Initial keys. The secret itself is also recomputed, from
/// the Initial salt and A.1's DCID.
fn initial_keys(side: &InitialSide) -> crate::Result<Flow> {
    let what = |value: &str| format!("A.1 {} {value}", side.side);
    let secret = initial_secret(&unhex(A1_DCID), side.label);
    same(&what("initial secret"), &secret, side.secret)?;
    let keys = Keys::from_secret(Suite::Aes128Gcm, &secret);
    same(&what("key"), &keys.key, side.key)?;
    same(&what("iv"), &keys.iv, side.iv)?;
    same(&what("hp"), &keys.hp, side.hp)?;
    let hp_mask = published_hp_mask(&keys, side.packet_section, side.sample, side.mask)?;
    Ok(Flow {
        file: format!("rfc9001-a1-{}-initial-keys.json", side.side),
        description: format!(
            "RFC 9001 Appendix A.1: the {side}'s Initial secret and the key, IV and header \
             protection key derived from it, with the header protection mask of the {section} \
             sample. These check key derivation and AES header protection only: the packets \
             of {section} are long header Initials, which this crate does not protect.",
            side = side.side,
            section = side.packet_section,
        ),
        suite: Suite::Aes128Gcm,
        dcid_len: unhex(A1_DCID).len(),
        keys: vec![keys],
        hp_masks: vec![hp_mask],
        packets: Vec::new(),
        gso_size: None,
        negatives: Vec::new(),
    })
}

/// The mask of a published sample, after checking ring computes the published mask.
fn published_hp_mask(
    keys: &Keys,
    section: &str,
    sample: &str,
    mask: &str,
) -> crate::Result<HpMask> {
    let sample: [u8; SAMPLE_LEN] = unhex(sample).try_into().expect("RFC samples are 16 bytes");
    let computed = keys.hp_mask(&sample);
    same(
        &format!("{section} header protection mask"),
        &computed,
        mask,
    )?;
    Ok(HpMask {
        sample,
        mask: computed,
    })
}

/// Fails unless `computed` is the RFC's `published` value.
fn same(what: &str, computed: &[u8], published: &str) -> crate::Result {
    if hex(computed) == published {
        Ok(())
    } else {
        Err(format!(
            "RFC 9001 {what}: computed {}, published {published}",
            hex(computed)
        ))
    }
}

/// The bytes of a hex constant written in this file.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("constants here are hex"))
        .collect()
}
