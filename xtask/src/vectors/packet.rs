//! Short header packets by hand: the header (RFC 9000 §17.3.1), packet number encoding and
//! decoding (RFC 9000 §17.1, A.2, A.3) and header protection (RFC 9001 §5.4), plus a
//! reference receiver the generator opens its own output with.

use super::crypto::Keys;

/// Set in every QUIC version 1 packet; a receiver discards packets without it.
pub const FIXED_BIT: u8 = 0x40;
const LONG_HEADER_BIT: u8 = 0x80;
const SPIN_BIT: u8 = 0x20;
const KEY_PHASE_BIT: u8 = 0x04;
const PN_LEN_BITS: u8 = 0x03;
/// The first-byte bits header protection covers in a short header.
const PROTECTED_FIRST_BYTE_BITS: u8 = 0x1f;
/// Bytes in a header protection sample (RFC 9001 §5.4.2).
pub const SAMPLE_LEN: usize = 16;
/// The sample starts this far past the packet number's start, as if it were 4 bytes long.
pub const SAMPLE_OFFSET: usize = 4;
/// Bytes in an AEAD tag, for every suite here.
pub const TAG_LEN: usize = 16;
/// The largest packet number (RFC 9000 §12.3).
pub const MAX_PN: u64 = (1 << 62) - 1;

/// A short header in cleartext.
pub struct ShortHeader<'a> {
    pub spin: bool,
    pub key_phase: bool,
    pub dcid: &'a [u8],
    /// The full packet number; the header carries its low `pn_len` bytes.
    pub pn: u64,
    pub pn_len: usize,
}

impl ShortHeader<'_> {
    /// The header's bytes, which are also the AEAD's associated data. The reserved bits
    /// are zero.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            (1..=4).contains(&self.pn_len),
            "packet numbers are 1 to 4 bytes"
        );
        assert!(self.pn <= MAX_PN, "packet numbers are below 2^62");
        let mut first = FIXED_BIT | (self.pn_len as u8 - 1);
        if self.spin {
            first |= SPIN_BIT;
        }
        if self.key_phase {
            first |= KEY_PHASE_BIT;
        }
        let mut header = Vec::with_capacity(1 + self.dcid.len() + self.pn_len);
        header.push(first);
        header.extend_from_slice(self.dcid);
        header.extend_from_slice(&self.pn.to_be_bytes()[8 - self.pn_len..]);
        header
    }
}

/// The packet number length RFC 9000 A.2 asks for: the smallest whose window is at least
/// twice the packets in flight since `largest_acked` (`None`: nothing acknowledged yet).
pub fn min_pn_len(pn: u64, largest_acked: Option<u64>) -> usize {
    let unacked = match largest_acked {
        Some(acked) => pn - acked,
        None => pn + 1,
    };
    (1..=4)
        .find(|len| unacked <= 1 << (8 * len - 1))
        .expect("fewer than 2^31 packets are in flight")
}

/// The full packet number closest to the one after `largest_received` whose low
/// `pn_len` bytes are `truncated` (RFC 9000 A.3).
pub fn decode_pn(largest_received: u64, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest_received + 1;
    let window = 1u64 << (8 * pn_len);
    let half_window = window / 2;
    let candidate = (expected & !(window - 1)) | truncated;
    if candidate + half_window <= expected && candidate < (1 << 62) - window {
        candidate + window
    } else if candidate > expected + half_window && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// Protects packet `pn` (RFC 9001 §5.3, §5.4.1): seals `payload` with the cleartext
/// `header` as associated data, then masks the header's protected bits with a mask made
/// from a sample of the ciphertext.
pub fn protect(keys: &Keys, pn: u64, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let pn_len = pn_len_of(header[0]);
    let pn_offset = header.len() - pn_len;
    let mut packet = header.to_vec();
    packet.extend(keys.seal(pn, header, payload));
    let sample =
        sample(&packet, pn_offset).expect("packets carry at least 4 bytes of PN and payload");
    let mask = keys.hp_mask(sample);
    packet[0] ^= mask[0] & PROTECTED_FIRST_BYTE_BITS;
    xor_pn(&mut packet[pn_offset..pn_offset + pn_len], &mask);
    packet
}

/// Why a receiver drops a packet, as the vector files name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Not a short header packet this receiver can parse: too short for its DCID or for a
    /// header protection sample, or without the fixed bit.
    Malformed,
    /// The AEAD rejected it.
    AuthFailed,
}

impl Failure {
    /// The failure's name in the files' `expect` field.
    pub fn code(self) -> &'static str {
        match self {
            Failure::Malformed => "malformed",
            Failure::AuthFailed => "auth_failed",
        }
    }
}

/// A packet the reference receiver opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The cleartext header, packet number bytes included.
    pub header: Vec<u8>,
    pub pn: u64,
    pub payload: Vec<u8>,
}

/// Removes header and packet protection (RFC 9001 §5.4.1, §5.3) the way a receiver with
/// these keys, this DCID length and this largest received PN does.
pub fn unprotect(
    keys: &Keys,
    dcid_len: usize,
    largest_received: u64,
    packet: &[u8],
) -> Result<Opened, Failure> {
    let first = *packet.first().ok_or(Failure::Malformed)?;
    if first & (LONG_HEADER_BIT | FIXED_BIT) != FIXED_BIT {
        return Err(Failure::Malformed);
    }
    let pn_offset = 1 + dcid_len;
    let mask = keys.hp_mask(sample(packet, pn_offset).ok_or(Failure::Malformed)?);
    let mut clear = packet.to_vec();
    clear[0] ^= mask[0] & PROTECTED_FIRST_BYTE_BITS;
    let header_len = pn_offset + pn_len_of(clear[0]);
    xor_pn(&mut clear[pn_offset..header_len], &mask);
    let truncated = clear[pn_offset..header_len]
        .iter()
        .fold(0, |pn, &byte| pn << 8 | u64::from(byte));
    let pn = decode_pn(largest_received, truncated, header_len - pn_offset);
    let (header, sealed) = clear.split_at(header_len);
    let payload = keys.open(pn, header, sealed).ok_or(Failure::AuthFailed)?;
    Ok(Opened {
        header: header.to_vec(),
        pn,
        payload,
    })
}

/// The header protection sample of a packet whose packet number starts at `pn_offset`, if
/// the packet is long enough to have one.
fn sample(packet: &[u8], pn_offset: usize) -> Option<&[u8]> {
    let start = pn_offset + SAMPLE_OFFSET;
    packet.get(start..start + SAMPLE_LEN)
}

/// The packet number length a (cleartext) first byte announces.
fn pn_len_of(first: u8) -> usize {
    usize::from(first & PN_LEN_BITS) + 1
}

/// XORs the packet number bytes with the mask's bytes after the first.
fn xor_pn(pn_bytes: &mut [u8], mask: &[u8; 5]) {
    for (byte, mask_byte) in pn_bytes.iter_mut().zip(&mask[1..]) {
        *byte ^= mask_byte;
    }
}
