//! Shared by the integration tests: ring as an independent reference, and packet builders.
#![allow(dead_code)] // each test binary uses its own subset

use proptest::prelude::*;
use quicseal::{CipherSuite, KeyMaterial, TrafficSecret};
use ring::aead::{self, quic};

/// Seals a 1-RTT packet with ring: AEAD over `payload` with `header` as AAD, then header
/// protection. Independent of the core except for the keys, which the vectors check.
pub fn ring_seal(
    keys: &KeyMaterial,
    packet_number: u64,
    header: &[u8],
    dcid_len: usize,
    payload: &[u8],
) -> Vec<u8> {
    let (aead_alg, hp_alg) = match keys.suite() {
        CipherSuite::Aes128GcmSha256 => (&aead::AES_128_GCM, &quic::AES_128),
        CipherSuite::Aes256GcmSha384 => (&aead::AES_256_GCM, &quic::AES_256),
        CipherSuite::ChaCha20Poly1305Sha256 => (&aead::CHACHA20_POLY1305, &quic::CHACHA20),
    };
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(aead_alg, keys.key()).unwrap());
    let mut nonce = *keys.iv();
    for (n, p) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
        *n ^= p;
    }
    let mut body = payload.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            &mut body,
        )
        .unwrap();
    let mut packet = [header, &body, tag.as_ref()].concat();
    let pn_offset = 1 + dcid_len;
    let pn_len = usize::from(header[0] & 3) + 1;
    let hp = quic::HeaderProtectionKey::new(hp_alg, keys.hp()).unwrap();
    let mask = hp.new_mask(&packet[pn_offset + 4..pn_offset + 20]).unwrap();
    packet[0] ^= mask[0] & 0x1f;
    for (b, m) in packet[pn_offset..pn_offset + pn_len]
        .iter_mut()
        .zip(&mask[1..])
    {
        *b ^= m;
    }
    packet
}

/// A cleartext 1-RTT packet and what is needed to protect it.
#[derive(Clone, Debug)]
pub struct Case {
    pub suite: CipherSuite,
    pub secret: Vec<u8>,
    pub dcid_len: usize,
    pub packet_number: u64,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Case {
    pub fn keys(&self) -> KeyMaterial {
        TrafficSecret::new(self.suite, &self.secret)
            .unwrap()
            .key_material()
    }

    pub fn cleartext(&self) -> Vec<u8> {
        [self.header.as_slice(), &self.payload].concat()
    }

    pub fn protected(&self) -> Vec<u8> {
        ring_seal(
            &self.keys(),
            self.packet_number,
            &self.header,
            self.dcid_len,
            &self.payload,
        )
    }
}

pub fn suite() -> impl Strategy<Value = CipherSuite> {
    prop::sample::select(CipherSuite::ALL.to_vec())
}

/// Payloads from the shortest that can be sampled (after a `pn_len`-byte packet number) to
/// 1500 bytes, and a quarter of them longer, to 4000: past the buffer a segmented payload
/// is gathered into up to 1536 bytes.
fn payload(pn_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let shortest = (4 - pn_len.min(4)).max(1);
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), shortest..1500),
        1 => prop::collection::vec(any::<u8>(), 1500..4000),
    ]
}

/// Generation-0 packets of every suite, DCID length, packet-number length and spin bit, with
/// [`payload`]s.
pub fn case() -> impl Strategy<Value = Case> {
    (
        suite(),
        prop::sample::select(vec![0usize, 1, 8, 20]),
        1usize..=4,
        any::<bool>(),
        0u64..(1 << 62),
    )
        .prop_flat_map(|(suite, dcid_len, pn_len, spin, packet_number)| {
            (
                Just(suite),
                prop::collection::vec(any::<u8>(), suite.secret_len()),
                Just(dcid_len),
                prop::collection::vec(any::<u8>(), dcid_len),
                Just(pn_len),
                Just(spin),
                Just(packet_number),
                payload(pn_len),
            )
        })
        .prop_map(
            |(suite, secret, dcid_len, dcid, pn_len, spin, packet_number, payload)| {
                let mut header = vec![0x40 | (u8::from(spin) << 5) | (pn_len as u8 - 1)];
                header.extend(&dcid);
                header.extend(&packet_number.to_be_bytes()[8 - pn_len..]);
                Case {
                    suite,
                    secret,
                    dcid_len,
                    packet_number,
                    header,
                    payload,
                }
            },
        )
}

/// Cuts `bytes` at the given fractions of its length (sorted, duplicates give empty pieces).
pub fn split<'a>(bytes: &'a [u8], cuts: &[f64]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| (c * bytes.len() as f64) as usize)
        .collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&bytes[start..point]);
        start = point;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Cuts a mutable buffer the same way.
pub fn split_mut<'a>(mut bytes: &'a mut [u8], cuts: &[f64]) -> Vec<&'a mut [u8]> {
    let len = bytes.len();
    let mut points: Vec<usize> = cuts.iter().map(|c| (c * len as f64) as usize).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut consumed = 0;
    for point in points {
        let (head, tail) = bytes.split_at_mut(point - consumed);
        pieces.push(head);
        bytes = tail;
        consumed = point;
    }
    pieces.push(bytes);
    pieces
}

pub fn cuts() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0f64..1.0, 0..6)
}

/// `len` bytes that end where a page no access is allowed to begins: a read or a write past
/// their end faults (the test dies of SIGSEGV) rather than passing unnoticed.
pub struct GuardedBuffer {
    map: *mut u8,
    map_len: usize,
    start: usize,
    len: usize,
}

impl GuardedBuffer {
    /// The bytes, zero.
    pub fn new(len: usize) -> GuardedBuffer {
        // SAFETY: sysconf, mmap and mprotect with valid arguments; the results are checked.
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap();
            let data = len.div_ceil(page).max(1) * page;
            let map_len = data + page;
            let map = libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let map = map.cast::<u8>();
            assert_eq!(
                libc::mprotect(map.add(data).cast(), page, libc::PROT_NONE),
                0
            );
            GuardedBuffer {
                map,
                map_len,
                start: data - len,
                len,
            }
        }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes from `start` lie inside the readable and writable pages, which
        // this buffer owns until it drops.
        unsafe { core::slice::from_raw_parts_mut(self.map.add(self.start), self.len) }
    }
}

impl Drop for GuardedBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}
