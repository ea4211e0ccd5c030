//! Building windows and reading them back, for hosts (and test harnesses) with `alloc`.

use alloc::vec::Vec;

use zerocopy::{FromBytes, IntoBytes};

use crate::{
    Completion, ContextFlags, Descriptor, FRAME_HEADER_LEN, KeyContext, MAGIC, Region, Ring,
    VERSION, WindowHeader,
};

impl KeyContext {
    /// A valid context for one direction of a connection: `secret`, the traffic secret of
    /// key generation `generation`, and the header-protection key, for short headers with
    /// `dcid_len`-byte connection IDs. The rest is zero: no largest packet number known, no
    /// connection ID or UDP port to claim frames by, no AEAD limits used; set them with
    /// struct update syntax. Panics for a secret longer than 48 bytes or a header key longer
    /// than 32.
    pub fn new(
        suite: u16,
        receive: bool,
        dcid_len: u8,
        generation: u32,
        secret: &[u8],
        header_key: &[u8],
    ) -> KeyContext {
        let mut context = KeyContext {
            flags: ContextFlags::VALID | if receive { ContextFlags::RECEIVE } else { 0 },
            dcid_len,
            suite: suite.into(),
            generation: generation.into(),
            largest_packet_number: 0.into(),
            secret_len: secret.len() as u8,
            header_key_len: header_key.len() as u8,
            reserved: [0; 6],
            secret: [0; 48],
            header_key: [0; 32],
            connection_id: [0; 20],
            udp_port: 0.into(),
            reserved2: [0; 2],
            sealed_in_generation: 0.into(),
            auth_failures: 0.into(),
        };
        context.secret[..secret.len()].copy_from_slice(secret);
        context.header_key[..header_key.len()].copy_from_slice(header_key);
        context
    }
}

/// Buffers start on this boundary.
const ALIGN: usize = 16;

/// A window laid out as header, key-context table, transmit ring, receive ring, completion
/// ring, port ring, then buffers, with room for a fixed number of each record.
pub struct WindowBuilder {
    window: Vec<u8>,
    header: WindowHeader,
    contexts: u32,
}

/// Room for records in a [`WindowBuilder`]'s window.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    pub contexts: u32,
    pub tx: u32,
    pub rx: u32,
    pub completions: u32,
    /// Buffers posted for frames from the port (0: the port ring has no entries).
    pub port: u32,
}

impl WindowBuilder {
    pub fn new(capacity: Capacity) -> WindowBuilder {
        let mut at = size_of::<WindowHeader>();
        let mut region = |count: u32, size: usize| {
            let offset = at;
            at += count as usize * size;
            at = at.next_multiple_of(ALIGN);
            offset as u32
        };
        let contexts = region(capacity.contexts, size_of::<KeyContext>());
        let ring = |offset: u32, entries: u32| Ring {
            offset: offset.into(),
            entries: entries.into(),
            ..Ring::default()
        };
        let tx = ring(region(capacity.tx, size_of::<Descriptor>()), capacity.tx);
        let rx = ring(region(capacity.rx, size_of::<Descriptor>()), capacity.rx);
        let completions = ring(
            region(capacity.completions, size_of::<Completion>()),
            capacity.completions,
        );
        let port = ring(
            region(capacity.port, size_of::<Descriptor>()),
            capacity.port,
        );
        let header = WindowHeader {
            magic: MAGIC,
            version: VERSION.into(),
            header_len: (size_of::<WindowHeader>() as u16).into(),
            contexts: Region {
                offset: contexts.into(),
                len: (capacity.contexts * size_of::<KeyContext>() as u32).into(),
            },
            tx,
            rx,
            completions,
            port,
            buffers: Region {
                offset: (at as u32).into(),
                len: 0.into(),
            },
            ..WindowHeader::default()
        };
        WindowBuilder {
            window: alloc::vec![0; at],
            header,
            contexts: 0,
        }
    }

    /// Adds a key context; returns its index. Panics past the capacity.
    pub fn context(&mut self, context: KeyContext) -> u16 {
        assert!(self.contexts * (size_of::<KeyContext>() as u32) < self.header.contexts.len.get());
        let at = self.header.contexts.offset.get() as usize
            + self.contexts as usize * size_of::<KeyContext>();
        context
            .write_to_prefix(&mut self.window[at..])
            .expect("inside the table");
        self.contexts += 1;
        (self.contexts - 1) as u16
    }

    /// Appends `bytes` to the buffer area; returns where they lie.
    pub fn buffer(&mut self, bytes: &[u8]) -> Region {
        let offset = self.window.len();
        self.window.extend_from_slice(bytes);
        self.window
            .resize(self.window.len().next_multiple_of(ALIGN), 0);
        self.header.buffers.len =
            ((self.window.len() - self.header.buffers.offset.get() as usize) as u32).into();
        Region {
            offset: (offset as u32).into(),
            len: (bytes.len() as u32).into(),
        }
    }

    /// Appends `len` zero bytes to the buffer area (room for output).
    pub fn room(&mut self, len: usize) -> Region {
        self.buffer(&alloc::vec![0; len])
    }

    /// Puts `descriptor` on the transmit ring and rings its doorbell. Panics when full.
    pub fn transmit(&mut self, descriptor: Descriptor) {
        let ring = self.header.tx;
        self.header.tx.producer = self.push(ring, descriptor).into();
    }

    /// Puts `descriptor` on the receive ring and rings its doorbell. Panics when full.
    pub fn receive(&mut self, descriptor: Descriptor) {
        let ring = self.header.rx;
        self.header.rx.producer = self.push(ring, descriptor).into();
    }

    /// Posts `room` on the port ring for a frame from the port, with `cookie` for its
    /// completion. Panics when full.
    pub fn post(&mut self, room: Region, cookie: u32) {
        let ring = self.header.port;
        let descriptor = Descriptor {
            opcode: crate::Opcode::RECEIVE,
            src: room,
            cookie: cookie.into(),
            ..Descriptor::default()
        };
        self.header.port.producer = self.push(ring, descriptor).into();
    }

    fn push(&mut self, ring: Ring, descriptor: Descriptor) -> u32 {
        let producer = ring.producer.get();
        assert!(producer < ring.entries.get(), "ring full");
        let at = ring.offset.get() as usize + producer as usize * size_of::<Descriptor>();
        descriptor
            .write_to_prefix(&mut self.window[at..])
            .expect("inside the ring");
        producer + 1
    }

    /// The header as it stands, for tests that break it on purpose.
    pub fn header_mut(&mut self) -> &mut WindowHeader {
        &mut self.header
    }

    /// The window, ready for the firmware.
    pub fn build(mut self) -> Vec<u8> {
        self.header.window_len = (self.window.len() as u32).into();
        self.header
            .write_to_prefix(&mut self.window)
            .expect("the header fits");
        self.window
    }
}

/// The header of a window the firmware has served, and the completions it produced.
pub fn completions(window: &[u8]) -> Option<(WindowHeader, Vec<Completion>)> {
    let (header, _) = WindowHeader::read_from_prefix(window).ok()?;
    let ring = header.completions;
    let mut completions = Vec::new();
    let mut index = ring.consumer.get();
    while index != ring.producer.get() {
        let slot = (index % ring.entries.get()) as usize;
        let at = ring.offset.get() as usize + slot * size_of::<Completion>();
        let (completion, _) = Completion::read_from_prefix(window.get(at..)?).ok()?;
        completions.push(completion);
        index = index.wrapping_add(1);
    }
    Some((header, completions))
}

/// One end of the UDP flow a [`frame_header`] describes.
#[derive(Clone, Copy, Debug)]
pub struct Address {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
    pub port: u16,
}

impl Address {
    /// Host `n` of addresses meant for examples and tests: the locally administered MAC
    /// 02:00:00:00:00:n and 192.0.2.n (TEST-NET-1, RFC 5737), on `port`.
    pub fn example(n: u8, port: u16) -> Address {
        Address {
            mac: [2, 0, 0, 0, 0, n],
            ip: [192, 0, 2, n],
            port,
        }
    }
}

/// The frame header a [`crate::DescriptorFlags::TO_PORT`] seal descriptor's source starts
/// with, for datagrams from `from` to `to`: Ethernet II, IPv4 (no options, Don't Fragment,
/// TTL 64), UDP. Lengths and checksums are zero: the firmware fills them in per datagram.
pub fn frame_header(from: Address, to: Address) -> [u8; FRAME_HEADER_LEN] {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[..6].copy_from_slice(&to.mac);
    header[6..12].copy_from_slice(&from.mac);
    header[12..14].copy_from_slice(&[0x08, 0x00]);
    header[14..24].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17]);
    header[26..30].copy_from_slice(&from.ip);
    header[30..34].copy_from_slice(&to.ip);
    header[34..36].copy_from_slice(&from.port.to_be_bytes());
    header[36..38].copy_from_slice(&to.port.to_be_bytes());
    header
}
