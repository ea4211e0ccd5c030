//! What the fuzz targets share: reading choices off the front of the input, cutting buffers
//! into scatter-gather pieces at input-chosen points, and the receiving flows of the test
//! vectors (so that the seed corpus can hold packets that really open).

use std::sync::OnceLock;

use quicseal::CipherSuite;
use quicseal::packet_number::{MAX_PACKET_NUMBER, TruncatedPacketNumber};
use quicseal::wire::{ConnectionId, ShortHeader};

/// The fuzzer's bytes, consumed front to back. Reads past the end give zeros, so every input
/// is a valid one.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// One byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        bytes.iter_mut().for_each(|b| *b = self.byte());
        u64::from_le_bytes(bytes)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Where to cut a buffer: 0 to 3 raw cut points, to be fitted to its length by
    /// [`Cuts::fit`].
    pub fn cuts(&mut self) -> Cuts {
        let count = usize::from(self.byte() & 3);
        let mut raw = [0u16; 3];
        raw[..count].iter_mut().for_each(|c| *c = self.u16());
        Cuts { raw, count }
    }

    /// True once the input is used up.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Input-chosen cut points, not yet fitted to a length.
#[derive(Clone, Copy, Debug)]
pub struct Cuts {
    raw: [u16; 3],
    count: usize,
}

impl Cuts {
    /// Sorted cut points within `0..=len` (repeats and the ends allowed: empty pieces are
    /// legal scatter-gather segments).
    pub fn fit(&self, len: usize) -> Vec<usize> {
        let mut points: Vec<usize> = self.raw[..self.count]
            .iter()
            .map(|&c| usize::from(c) % (len + 1))
            .collect();
        points.sort_unstable();
        points
    }
}

/// A 1-RTT packet the input chooses, as `seal_open_roundtrip` and `differential` read it:
/// suite byte (`% 3`), 48 secret bytes (the suite's hash length of them are used), flags byte
/// (bits 0-1: packet number length - 1, bit 2: spin, bit 3: key phase), DCID length byte
/// (`% 21`), 20 DCID bytes (that many used), 8 bytes of packet number, source cuts,
/// destination cuts, then the payload.
pub struct ChosenPacket<'a> {
    pub suite: CipherSuite,
    /// The traffic secret, the suite's hash length.
    pub secret: Vec<u8>,
    pub dcid_len: usize,
    /// The full packet number, at most `MAX_PACKET_NUMBER`.
    pub number: u64,
    pub src_cuts: Cuts,
    pub dst_cuts: Cuts,
    /// The header's bytes, cleartext, then the payload.
    pub cleartext: Vec<u8>,
    pub header_len: usize,
    pub pn_len: usize,
    pub key_phase: bool,
    pub payload: &'a [u8],
}

impl<'a> ChosenPacket<'a> {
    /// Reads the packet off the front of `data`; the payload is the rest.
    pub fn read(data: &'a [u8]) -> Self {
        let mut input = Input::new(data);
        let suite = CipherSuite::ALL[usize::from(input.byte()) % 3];
        let mut secret = input.bytes(48).to_vec();
        secret.resize(suite.secret_len(), 0);
        let flags = input.byte();
        let dcid_len = usize::from(input.byte()) % 21;
        let mut dcid = input.bytes(20).to_vec();
        dcid.resize(20, 0);
        let number = input.u64() % (MAX_PACKET_NUMBER + 1);
        let (src_cuts, dst_cuts) = (input.cuts(), input.cuts());
        let payload = input.rest();

        let pn_len = usize::from(flags & 3) + 1;
        let key_phase = flags & 8 != 0;
        let truncated = (number & ((1u64 << (8 * pn_len)) - 1)) as u32;
        let header = ShortHeader {
            fixed_bit: true,
            spin: flags & 4 != 0,
            key_phase,
            dcid: ConnectionId::new(&dcid[..dcid_len]).expect("at most 20 bytes"),
            packet_number: TruncatedPacketNumber::new(truncated, pn_len).expect("fits"),
        };
        let header_len = header.len();
        let mut cleartext = vec![0u8; header_len];
        assert_eq!(header.emit(&mut cleartext), Ok(header_len));
        cleartext.extend_from_slice(payload);
        ChosenPacket {
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
        }
    }
}

/// `bytes` cut at `points` (sorted, within its length).
pub fn pieces<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut rest = bytes;
    let mut at = 0;
    for &p in points {
        let (head, tail) = rest.split_at(p - at);
        out.push(head);
        rest = tail;
        at = p;
    }
    out.push(rest);
    out
}

/// `bytes` cut at `points` (sorted, within its length), mutably.
pub fn pieces_mut<'a>(bytes: &'a mut [u8], points: &[usize]) -> Vec<&'a mut [u8]> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut rest = bytes;
    let mut at = 0;
    for &p in points {
        let (head, tail) = rest.split_at_mut(p - at);
        out.push(head);
        rest = tail;
        at = p;
    }
    out.push(rest);
    out
}

/// A receiving flow of the test vectors: what its packets need to open.
#[derive(Debug)]
pub struct VectorFlow {
    /// The vector file's name, for the seed generator (`cargo xtask fuzz`).
    pub file: &'static str,
    /// The suite.
    pub suite: CipherSuite,
    /// Generation 0's traffic secret.
    pub secret: Vec<u8>,
    /// The DCID length its short headers carry.
    pub dcid_len: usize,
}

/// The vector files whose flows the `open` and `gro` targets receive, in the order a seed's
/// flow byte indexes them. `cargo xtask fuzz` writes seeds by the same names.
pub const VECTOR_FILES: [(&str, &str); 9] = [
    (
        "aes128gcm-dcid0.json",
        include_str!("../../vectors/aes128gcm-dcid0.json"),
    ),
    (
        "aes128gcm-dcid8.json",
        include_str!("../../vectors/aes128gcm-dcid8.json"),
    ),
    (
        "aes128gcm-dcid20.json",
        include_str!("../../vectors/aes128gcm-dcid20.json"),
    ),
    (
        "aes256gcm-dcid0.json",
        include_str!("../../vectors/aes256gcm-dcid0.json"),
    ),
    (
        "aes256gcm-dcid8.json",
        include_str!("../../vectors/aes256gcm-dcid8.json"),
    ),
    (
        "aes256gcm-dcid20.json",
        include_str!("../../vectors/aes256gcm-dcid20.json"),
    ),
    (
        "chacha20poly1305-dcid0.json",
        include_str!("../../vectors/chacha20poly1305-dcid0.json"),
    ),
    (
        "chacha20poly1305-dcid8.json",
        include_str!("../../vectors/chacha20poly1305-dcid8.json"),
    ),
    (
        "chacha20poly1305-dcid20.json",
        include_str!("../../vectors/chacha20poly1305-dcid20.json"),
    ),
];

/// The flows of [`VECTOR_FILES`], read once.
pub fn vector_flows() -> &'static [VectorFlow] {
    static FLOWS: OnceLock<Vec<VectorFlow>> = OnceLock::new();
    FLOWS.get_or_init(|| {
        VECTOR_FILES
            .iter()
            .map(|&(file, text)| VectorFlow {
                file,
                suite: CipherSuite::from_name(field(text, "suite")).expect("vector suite"),
                secret: hex(field(text, "secret")),
                dcid_len: field(text, "dcid_len").parse().expect("vector dcid_len"),
            })
            .collect()
    })
}

/// The first top-level `"name": value` of a vector file, quotes stripped. The files are
/// generated (`cargo xtask vectors`), so their layout is fixed: a string is enough.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let key = format!("\n  \"{name}\": ");
    let at = text.find(&key).expect("vector field") + key.len();
    let value = &text[at..];
    let end = value.find([',', '\n']).expect("vector field end");
    value[..end].trim_matches('"')
}

/// Lowercase hex to bytes.
fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("vector hex"))
        .collect()
}
