//! The frames the port carries: Ethernet II, IPv4 and UDP around one QUIC datagram. Sending,
//! the host gives the header ([`FRAME_HEADER_LEN`] bytes) and the firmware fills in the
//! lengths and the IPv4 checksum for each datagram, as a NIC's UDP segmentation offload
//! does; receiving, the firmware finds the UDP payload and leaves everything else to the
//! host.

use core::ops::Range;

use quicseal_nic_abi::FRAME_HEADER_LEN;

const ETHERNET_LEN: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
const PROTOCOL_UDP: u8 = 17;
/// IPv4's flags and fragment offset with only Don't Fragment set.
const DONT_FRAGMENT: u16 = 0x4000;

/// A host's frame header for datagrams sent to the port, checked once per descriptor.
#[derive(Clone, Copy)]
pub struct FrameHeader([u8; FRAME_HEADER_LEN]);

impl FrameHeader {
    /// The header at the start of `bytes`, if it is Ethernet II with EtherType IPv4, an
    /// IPv4 header without options (version 4, IHL 5) carrying UDP, with Don't Fragment set
    /// and not a fragment. Every datagram's frame carries the header's IPv4 identification:
    /// RFC 6864 allows that only for datagrams that are never fragmented.
    pub fn new(bytes: &[u8]) -> Option<FrameHeader> {
        let header: [u8; FRAME_HEADER_LEN] = bytes.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        let ip = &header[ETHERNET_LEN..];
        let flags_and_offset = u16::from_be_bytes([ip[6], ip[7]]);
        (header[12..ETHERNET_LEN] == ETHERTYPE_IPV4
            && ip[0] == 0x45
            && ip[9] == PROTOCOL_UDP
            && flags_and_offset == DONT_FRAGMENT)
            .then_some(FrameHeader(header))
    }

    /// The header for a datagram of `len` bytes: IPv4 total length and checksum, UDP length,
    /// UDP checksum 0 (none).
    pub fn for_datagram(&self, len: usize) -> [u8; FRAME_HEADER_LEN] {
        let mut header = self.0;
        let udp_len = u16::try_from(UDP_LEN + len).unwrap_or(u16::MAX);
        let ip_len = udp_len.saturating_add(IPV4_LEN as u16);
        let ip = &mut header[ETHERNET_LEN..ETHERNET_LEN + IPV4_LEN];
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let checksum = !ones_complement_sum(ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        let udp = &mut header[ETHERNET_LEN + IPV4_LEN..];
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
        header
    }
}

/// A received frame's UDP datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Udp {
    /// Where its payload lies in the frame.
    pub payload: Range<usize>,
    /// Its destination port.
    pub port: u16,
}

/// The UDP datagram of a received frame, if the frame is IPv4 (options allowed) with a
/// correct header checksum, not a fragment, carrying UDP whose length fits the packet.
/// Ethernet pads short frames, so the lengths come from the headers, not the frame.
pub fn udp(frame: &[u8]) -> Option<Udp> {
    if frame.get(12..ETHERNET_LEN)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETHERNET_LEN..)?;
    let version = ip.first()? >> 4;
    let header_len = usize::from(ip.first()? & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff;
    if version != 4
        || header_len < IPV4_LEN
        || total_len > ip.len()
        || total_len < header_len + UDP_LEN
        || fragment != 0
        || *ip.get(9)? != PROTOCOL_UDP
        || ones_complement_sum(ip.get(..header_len)?) != 0xffff
    {
        return None;
    }
    let udp = ip.get(header_len..total_len)?;
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if udp_len < UDP_LEN || udp_len > udp.len() {
        return None;
    }
    let start = ETHERNET_LEN + header_len + UDP_LEN;
    Some(Udp {
        payload: start..ETHERNET_LEN + header_len + udp_len,
        port: u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]),
    })
}

/// The 16-bit ones' complement sum of `bytes` (RFC 1071), an even number of them.
fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 02:00:00:00:00:01 to 02:00:00:00:00:02, 10.0.0.1:4433 to 10.0.0.2:443.
    fn template() -> [u8; FRAME_HEADER_LEN] {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[..14].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        header[14..34].copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        header[34..].copy_from_slice(&[0x11, 0x51, 0x01, 0xbb, 0, 0, 0, 0]);
        header
    }

    #[test]
    fn a_datagram_goes_out_with_its_lengths_and_checksum_and_comes_back() {
        let header = FrameHeader::new(&template()).unwrap().for_datagram(1200);
        // Total length 1228, UDP length 1208, and the checksum any IPv4 stack computes
        // (worked by hand: 0x4500 + 0x04cc + 0x4000 + 0x4011 + 0x0a00 * 2 + 0x0001 + 0x0002).
        assert_eq!(&header[16..18], &1228u16.to_be_bytes());
        assert_eq!(&header[38..40], &1208u16.to_be_bytes());
        assert_eq!(&header[24..26], &[0x22, 0x1f]);
        let mut frame = header.to_vec();
        frame.extend_from_slice(&[0xab; 1200]);
        assert_eq!(udp(&frame).map(|udp| udp.payload), Some(42..1242));
        // Ethernet padding after the packet is not payload.
        frame.extend_from_slice(&[0; 20]);
        assert_eq!(udp(&frame).map(|udp| udp.payload), Some(42..1242));
    }

    #[test]
    fn anything_but_ipv4_and_udp_is_refused() {
        assert!(FrameHeader::new(&template()[..41]).is_none());
        let frame = {
            let mut frame = FrameHeader::new(&template())
                .unwrap()
                .for_datagram(64)
                .to_vec();
            frame.extend_from_slice(&[0; 64]);
            frame
        };
        for (at, value) in [
            (12, 0x86), // IPv6's EtherType
            (14, 0x46), // IPv4 options (and so a wrong checksum)
            (20, 0x20), // more fragments
            (23, 6),    // TCP
            (24, 0),    // checksum
            (16, 0x7f), // total length past the frame
            (38, 0x7f), // UDP length past the packet
        ] {
            let mut bad = frame.clone();
            bad[at] = value;
            assert_eq!(
                udp(&bad).map(|udp| udp.payload),
                None,
                "byte {at} = {value:#x}"
            );
            if at < 34 && at != 16 && at != 24 {
                assert!(FrameHeader::new(&bad).is_none(), "byte {at} = {value:#x}");
            }
        }
        assert_eq!(udp(&frame[..41]), None);
        // Don't Fragment cleared: the firmware would repeat the identification in fragmentable
        // datagrams.
        let mut fragmentable = template();
        fragmentable[20] = 0;
        assert!(FrameHeader::new(&fragmentable).is_none());
    }

    #[test]
    fn received_ipv4_options_move_the_payload_and_the_port_is_read() {
        // The template's frame with a 4-byte option (NOP x4) in its IPv4 header.
        let plain = FrameHeader::new(&template()).unwrap().for_datagram(100);
        let mut frame = plain[..34].to_vec();
        frame[14] = 0x46;
        frame[16..18].copy_from_slice(&(24u16 + 8 + 100).to_be_bytes());
        frame.extend([1, 1, 1, 1]);
        frame[24..26].copy_from_slice(&[0, 0]);
        let checksum = !ones_complement_sum(&frame[14..38]);
        frame[24..26].copy_from_slice(&checksum.to_be_bytes());
        frame.extend_from_slice(&plain[34..]);
        frame.extend_from_slice(&[0x5a; 100]);
        assert_eq!(
            udp(&frame),
            Some(Udp {
                payload: 46..146,
                port: 443
            })
        );
    }
}
