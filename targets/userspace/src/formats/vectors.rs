//! `quicseal vectors check`: runs vector files through the core, as `core/tests/vectors.rs`
//! does (keys, masks, seal, open in place and scatter-gather, negatives, GSO and GRO), but
//! reports what failed and where instead of panicking.

use std::path::Path;

use quicseal::backend::{Backend, HeaderKey, Portable, TAG_LEN};
use quicseal::{Error, FlowConfig, Outcome, PacketInfo, RxFlow, TrafficSecret, TxFlow};
use serde_json::Value;

use super::json::{
    self, FlowSpec, InputError, Location, hex_bytes, optional_list, optional_u64, string, u64_field,
};

/// Most key generations a file may ask a receiver to step through: far more than any vector
/// needs, few enough that a bad number cannot keep the checker busy.
pub const MAX_GENERATION: u64 = 10_000;

/// What a file that passed held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    /// Packets sealed and opened.
    pub packets: usize,
    /// Negatives refused as expected.
    pub negatives: usize,
    /// Key generations compared.
    pub keys: usize,
    /// Header-protection masks compared.
    pub masks: usize,
    /// The packets were also checked as one GSO batch.
    pub gso: bool,
}

/// Checks one vector file.
pub fn check_file(path: &Path) -> Result<Passed, InputError> {
    check_document(&json::load(path)?, &Location::file(path))
}

/// [`check_file`] on a document already parsed, read from `at`.
pub fn check_document(doc: &Value, at: &Location) -> Result<Passed, InputError> {
    let spec = FlowSpec::read(doc, at)?;
    let packets = read_packets(doc, at)?;
    let mut passed = Passed {
        keys: check_keys(doc, at, &spec)?,
        masks: check_masks(doc, at, &spec)?,
        packets: packets.len(),
        ..Passed::default()
    };
    check_seal(&spec, &packets)?;
    check_open(&spec, &packets)?;
    passed.negatives = check_negatives(doc, at, &spec)?;
    if let Some(gso_size) = optional_u64(doc, at, "gso_size")? {
        check_gso(&spec, &packets, gso_size, &at.field("gso_size"))?;
        passed.gso = true;
    }
    Ok(passed)
}

/// One entry of `packets`.
struct VectorPacket {
    at: Location,
    generation: u64,
    pn: u64,
    largest_received: Option<u64>,
    header: Vec<u8>,
    payload: Vec<u8>,
    protected: Vec<u8>,
}

impl VectorPacket {
    fn cleartext(&self) -> Vec<u8> {
        [self.header.as_slice(), &self.payload].concat()
    }
}

fn read_packets(doc: &Value, at: &Location) -> Result<Vec<VectorPacket>, InputError> {
    let list_at = at.field("packets");
    json::list(doc, at, "packets")?
        .iter()
        .enumerate()
        .map(|(i, packet)| {
            let at = list_at.index(i);
            object(packet, &at)?;
            Ok(VectorPacket {
                generation: generation(packet, &at)?,
                pn: u64_field(packet, &at, "pn")?,
                largest_received: optional_u64(packet, &at, "largest_received")?,
                header: hex_bytes(packet, &at, "header")?,
                payload: hex_bytes(packet, &at, "payload")?,
                protected: hex_bytes(packet, &at, "protected")?,
                at,
            })
        })
        .collect()
}

/// Fails unless `value` is a JSON object.
pub fn object(value: &Value, at: &Location) -> Result<(), InputError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(at.error("not a JSON object"))
    }
}

/// The `generation` member, bounded by [`MAX_GENERATION`].
fn generation(value: &Value, at: &Location) -> Result<u64, InputError> {
    let generation = u64_field(value, at, "generation")?;
    if generation > MAX_GENERATION {
        return Err(at
            .field("generation")
            .error(format!("{generation} is more than {MAX_GENERATION}")));
    }
    Ok(generation)
}

/// A receiver whose current keys are those of `generation`.
pub fn rx_at_generation(spec: &FlowSpec, generation: u64) -> Result<RxFlow, Error> {
    let mut rx = RxFlow::from_secret(spec.suite, &spec.secret, spec.config)?;
    for _ in 0..generation.min(MAX_GENERATION) {
        rx.advance_generation()?;
    }
    Ok(rx)
}

/// Where two byte strings first differ, for a one-line report.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => format!("first difference at byte {at}"),
        None => format!("{} bytes against {}", a.len(), b.len()),
    }
}

fn check_keys(doc: &Value, at: &Location, spec: &FlowSpec) -> Result<usize, InputError> {
    let secret0 =
        TrafficSecret::new(spec.suite, &spec.secret).map_err(|e| at.field("secret").error(e))?;
    let hp0 = secret0.key_material().hp().to_vec();
    let entries = optional_list(doc, at, "keys")?;
    for (i, entry) in entries.iter().enumerate() {
        let at = at.field("keys").index(i);
        object(entry, &at)?;
        let generation = generation(entry, &at)?;
        let mut secret = secret0.clone();
        for _ in 0..generation {
            secret = secret.next();
        }
        let material = secret.key_material();
        let derived: [(&str, &[u8]); 4] = [
            ("secret", secret.as_bytes()),
            ("key", material.key()),
            ("iv", material.iv()),
            ("hp", &hp0),
        ];
        for (field, value) in derived {
            if hex_bytes(entry, &at, field)? != value {
                return Err(at.field(field).error(format!(
                    "differs from what generation {generation} derives from the secret"
                )));
            }
        }
    }
    Ok(entries.len())
}

fn check_masks(doc: &Value, at: &Location, spec: &FlowSpec) -> Result<usize, InputError> {
    let hp = TrafficSecret::new(spec.suite, &spec.secret)
        .map_err(|e| at.field("secret").error(e))?
        .key_material();
    let key = Portable::header_key(spec.suite, hp.hp()).map_err(|e| at.field("secret").error(e))?;
    let entries = optional_list(doc, at, "hp_masks")?;
    for (i, entry) in entries.iter().enumerate() {
        let at = at.field("hp_masks").index(i);
        object(entry, &at)?;
        let sample = hex_bytes(entry, &at, "sample")?;
        let sample: [u8; 16] = sample.as_slice().try_into().map_err(|_| {
            at.field("sample")
                .error(format!("{} bytes; a sample is 16", sample.len()))
        })?;
        if hex_bytes(entry, &at, "mask")? != key.mask(&sample) {
            return Err(at
                .field("mask")
                .error("differs from the header-protection mask of the sample"));
        }
    }
    Ok(entries.len())
}

fn check_seal(spec: &FlowSpec, packets: &[VectorPacket]) -> Result<(), InputError> {
    let mut tx: TxFlow = TxFlow::from_secret(spec.suite, &spec.secret, spec.config)
        .map_err(|e| packets_error(packets, e))?;
    for packet in packets {
        let mut out = vec![0u8; packet.header.len() + packet.payload.len() + TAG_LEN];
        let sealed = tx
            .seal_numbered(
                packet.pn,
                &[&packet.header, &packet.payload],
                &mut [&mut out],
            )
            .map_err(|e| packet.at.error(format!("cannot seal: {e}")))?;
        if out != packet.protected {
            return Err(packet.at.field("protected").error(format!(
                "sealing header and payload gives other bytes ({})",
                first_difference(&out, &packet.protected)
            )));
        }
        let generation = sealed.packet.map(|p| p.generation);
        if generation != Some(packet.generation) {
            return Err(packet.at.field("generation").error(format!(
                "sealed with generation {generation:?}, the file says {}",
                packet.generation
            )));
        }
    }
    Ok(())
}

fn packets_error(packets: &[VectorPacket], error: Error) -> InputError {
    match packets.first() {
        Some(packet) => packet.at.error(error),
        None => InputError {
            location: String::from("flow"),
            message: error.to_string(),
        },
    }
}

fn check_open(spec: &FlowSpec, packets: &[VectorPacket]) -> Result<(), InputError> {
    let setup = |e| packets_error(packets, e);
    let mut in_place = rx_at_generation(spec, 0).map_err(setup)?;
    let mut gathered = rx_at_generation(spec, 0).map_err(setup)?;
    let mut previous: Option<u64> = None;
    for packet in packets {
        let largest = packet
            .largest_received
            .or(previous)
            .or(packet.pn.checked_sub(1));
        previous = Some(packet.pn);
        let cleartext = packet.cleartext();
        let at = &packet.at;

        in_place.set_largest_received(largest);
        let mut buffer = packet.protected.clone();
        let opened = in_place
            .open_in_place(&mut buffer)
            .map_err(|e| at.field("protected").error(format!("cannot open: {e}")))?;
        let info = opened
            .packet
            .ok_or_else(|| at.field("protected").error("holds no 1-RTT packet"))?;
        if (info.number, info.generation) != (packet.pn, packet.generation) {
            return Err(at.error(format!(
                "opened as packet {} of generation {}, the file says {} of {}",
                info.number, info.generation, packet.pn, packet.generation
            )));
        }
        check_lengths(
            at,
            "opening in place",
            opened.passthrough_len,
            &info,
            packet,
        )?;
        if buffer.get(..opened.len) != Some(cleartext.as_slice()) {
            return Err(at.error("opening in place does not give header and payload"));
        }

        // Scatter-gather: the protected packet cut in three, the output in two.
        gathered.set_largest_received(largest);
        let (a, rest) = packet.protected.split_at(packet.protected.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut out = vec![0u8; cleartext.len()];
        let (x, y) = out.split_at_mut((cleartext.len() / 2 + 1).min(cleartext.len()));
        let opened = gathered.open(&[a, b, c], &mut [x, y]).map_err(|e| {
            at.field("protected")
                .error(format!("cannot open scatter-gather: {e}"))
        })?;
        let info = opened
            .packet
            .ok_or_else(|| at.field("protected").error("holds no 1-RTT packet"))?;
        check_lengths(
            at,
            "opening scatter-gather",
            opened.passthrough_len,
            &info,
            packet,
        )?;
        if opened.len != cleartext.len() || out != cleartext {
            return Err(at.error("opening scatter-gather does not give header and payload"));
        }
    }
    Ok(())
}

/// Checks where opening says the header ends and the payload ends against the file's
/// `header` and `payload`: equal bytes with the boundary in the wrong place would pass a
/// comparison of the two together.
fn check_lengths(
    at: &Location,
    what: &str,
    passthrough_len: usize,
    info: &PacketInfo,
    packet: &VectorPacket,
) -> Result<(), InputError> {
    let got = (passthrough_len, info.header_len, info.payload_len);
    let want = (0, packet.header.len(), packet.payload.len());
    if got == want {
        return Ok(());
    }
    Err(at.error(format!(
        "{what} gives {} bytes of long header, a {}-byte header and a {}-byte payload; \
         the file says {}, {} and {}",
        got.0, got.1, got.2, want.0, want.1, want.2
    )))
}

fn check_negatives(doc: &Value, at: &Location, spec: &FlowSpec) -> Result<usize, InputError> {
    let entries = optional_list(doc, at, "negative")?;
    for (i, case) in entries.iter().enumerate() {
        let at = at.field("negative").index(i);
        object(case, &at)?;
        let mut rx = rx_at_generation(spec, generation(case, &at)?).map_err(|e| at.error(e))?;
        rx.set_largest_received(optional_u64(case, &at, "largest_received")?);
        let expect = string(case, &at, "expect")?;
        let expected = Error::from_code(expect).ok_or_else(|| {
            at.field("expect")
                .error(format!("\"{expect}\" is not an error code"))
        })?;
        let mut buffer = hex_bytes(case, &at, "protected")?;
        match rx.open_in_place(&mut buffer) {
            Err(error) if error == expected => {}
            Err(error) => {
                return Err(at.error(format!("refused with {}, expected {expect}", error.code())));
            }
            Ok(_) => return Err(at.error(format!("opened, but should fail with {expect}"))),
        }
    }
    Ok(entries.len())
}

fn check_gso(
    spec: &FlowSpec,
    packets: &[VectorPacket],
    gso_size: u64,
    at: &Location,
) -> Result<(), InputError> {
    let gso_size = usize::try_from(gso_size).map_err(|_| at.error("too large"))?;
    let first = packets
        .first()
        .ok_or_else(|| at.error("given, but there are no packets"))?;
    let cleartext: Vec<u8> = packets.iter().flat_map(VectorPacket::cleartext).collect();
    let expected: Vec<u8> = packets.iter().flat_map(|p| p.protected.clone()).collect();
    let config = FlowConfig {
        largest_packet_number: first.pn.checked_sub(1),
        ..spec.config
    };
    let mut tx: TxFlow =
        TxFlow::from_secret(spec.suite, &spec.secret, config).map_err(|e| at.error(e))?;
    let mut out = vec![0u8; cleartext.len() + packets.len() * TAG_LEN];
    let mut results: Vec<Outcome> = vec![Err(Error::Malformed); packets.len()];
    let batch = tx
        .seal_gso(&[&cleartext], gso_size, &mut [&mut out], &mut results)
        .map_err(|e| at.error(format!("the packets do not seal as a GSO batch: {e}")))?;
    if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
        return Err(packets[i]
            .at
            .error(format!("cannot seal in the GSO batch: {e}")));
    }
    if batch.datagrams != packets.len() || out.get(..batch.len) != Some(expected.as_slice()) {
        return Err(at.error(format!(
            "the GSO batch seals to other bytes than the packets' protected ({})",
            first_difference(&out, &expected)
        )));
    }

    // And back, as one GRO buffer.
    let mut rx = rx_at_generation(spec, 0).map_err(|e| at.error(e))?;
    rx.set_largest_received(first.pn.checked_sub(1));
    let mut buffer = expected;
    let batch = rx
        .open_gro(&mut buffer, gso_size, &mut results)
        .map_err(|e| at.error(format!("the packets do not open as a GRO batch: {e}")))?;
    if batch.datagrams != packets.len() {
        return Err(at.error(format!(
            "the GRO buffer splits into {} datagrams, not {}",
            batch.datagrams,
            packets.len()
        )));
    }
    for ((packet, result), datagram) in packets.iter().zip(&results).zip(buffer.chunks(gso_size)) {
        let opened = result.map_err(|e| {
            packet
                .at
                .error(format!("cannot open in the GRO batch: {e}"))
        })?;
        if datagram.get(..opened.len) != Some(packet.cleartext().as_slice()) {
            return Err(packet
                .at
                .error("opening in the GRO batch does not give header and payload"));
        }
    }
    Ok(())
}
