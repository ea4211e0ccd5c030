//! QUIC variable-length integers (RFC 9000 §16), read only: the core skips long headers.

/// Reads the varint at `at` through `byte`, returning its value and encoded length, or `None`
/// when the bytes run out.
pub(crate) fn read(byte: impl Fn(usize) -> Option<u8>, at: usize) -> Option<(u64, usize)> {
    let first = byte(at)?;
    let len = 1usize << (first >> 6);
    let mut value = u64::from(first & 0x3f);
    for i in 1..len {
        value = (value << 8) | u64::from(byte(at.checked_add(i)?)?);
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_slice(bytes: &[u8]) -> Option<(u64, usize)> {
        read(|i| bytes.get(i).copied(), 0)
    }

    #[test]
    fn rfc9000_a1_examples() {
        assert_eq!(
            read_slice(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]),
            Some((151_288_809_941_952_652, 8))
        );
        assert_eq!(
            read_slice(&[0x9d, 0x7f, 0x3e, 0x7d]),
            Some((494_878_333, 4))
        );
        assert_eq!(read_slice(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(read_slice(&[0x25]), Some((37, 1)));
        assert_eq!(read_slice(&[0x40, 0x25]), Some((37, 2)));
        assert_eq!(read_slice(&[0x7b]), None);
        assert_eq!(read_slice(&[]), None);
    }
}
