//! `quicseal seal FILE` and `quicseal open FILE`: jobs in the vectors' JSON format, for
//! debugging and for other languages (format in docs/formats.md).

use std::path::Path;

use quicseal::backend::TAG_LEN;
use quicseal::{Datagram, TxFlow};
use serde_json::{Map, Value};

use super::json::{self, FlowSpec, InputError, Location, hex_bytes, optional_list, optional_u64};
use super::vectors::{MAX_GENERATION, object, rx_at_generation};

/// A job's results: the input document with its packets filled in, and the packets that
/// could not be processed (each also carries an `error` field in the document).
#[derive(Debug)]
pub struct JobOutput {
    /// The document to print.
    pub doc: Value,
    /// One located message per packet refused.
    pub refused: Vec<InputError>,
}

/// Seals every packet's `header` ‖ `payload` (with its `pn`, when given) in order with one
/// sender, and fills in `protected`, `pn` and `generation`, or `error`.
pub fn seal(path: &Path) -> Result<JobOutput, InputError> {
    seal_document(json::load(path)?, &Location::file(path))
}

/// [`seal`] on a document already parsed, read from `at`.
pub fn seal_document(mut doc: Value, at: &Location) -> Result<JobOutput, InputError> {
    let spec = FlowSpec::read(&doc, at)?;
    json::list(&doc, at, "packets")?;
    let mut tx: TxFlow = TxFlow::from_secret(spec.suite, &spec.secret, spec.config)
        .map_err(|e| at.field("secret").error(e))?;
    let mut refused = Vec::new();
    for (i, packet) in packets_mut(&mut doc, "packets").iter_mut().enumerate() {
        let at = at.field("packets").index(i);
        object(packet, &at)?;
        let header = hex_bytes(packet, &at, "header")?;
        let payload = hex_bytes(packet, &at, "payload")?;
        let pn = optional_u64(packet, &at, "pn")?;
        let mut out = vec![0u8; header.len() + payload.len() + TAG_LEN];
        let src: [&[u8]; 2] = [&header, &payload];
        let sealed = match pn {
            Some(pn) => tx.seal_numbered(pn, &src, &mut [&mut out]),
            None => tx.seal(&src, &mut [&mut out]),
        };
        let Value::Object(fields) = packet else {
            continue; // checked to be an object above
        };
        match sealed {
            Ok(datagram) => {
                fields.remove("error");
                fields.insert("protected".into(), hex::encode(&out[..datagram.len]).into());
                if let Some(info) = datagram.packet {
                    fields.insert("pn".into(), info.number.into());
                    fields.insert("generation".into(), info.generation.into());
                }
            }
            Err(error) => {
                fields.remove("protected");
                fields.insert("error".into(), error.code().into());
                refused.push(at.error(format!("cannot seal: {error}")));
            }
        }
    }
    Ok(JobOutput { doc, refused })
}

/// Opens every packet's `protected` in order with one receiver and fills in `header`,
/// `payload`, `pn` and `generation`, or `error`; then each `negative`, with a fresh receiver
/// at its `generation` and `largest_received`.
///
/// Packet numbers decode as the vectors say: against the packet's `largest_received` when it
/// has one, else the previous packet's number, else, for the first packet, one below the
/// `pn` it names (a vector file opens as it is); a first packet with neither decodes as if
/// nothing had been received.
pub fn open(path: &Path) -> Result<JobOutput, InputError> {
    open_document(json::load(path)?, &Location::file(path))
}

/// [`open`] on a document already parsed, read from `at`.
pub fn open_document(mut doc: Value, at: &Location) -> Result<JobOutput, InputError> {
    let spec = FlowSpec::read(&doc, at)?;
    json::list(&doc, at, "packets")?;
    optional_list(&doc, at, "negative")?;
    let mut rx = rx_at_generation(&spec, 0).map_err(|e| at.field("secret").error(e))?;
    let mut refused = Vec::new();
    let mut previous = None;
    for (i, packet) in packets_mut(&mut doc, "packets").iter_mut().enumerate() {
        let at = at.field("packets").index(i);
        object(packet, &at)?;
        let mut buffer = hex_bytes(packet, &at, "protected")?;
        // The vectors' rule: the packet's own `largest_received`, else the previous packet's
        // number, else (first packet) one below the `pn` the job expects, if it names one.
        // `pn` is read there only: on any other packet it is output, replaced below.
        let largest = match (optional_u64(packet, &at, "largest_received")?, previous) {
            (Some(largest), _) => Some(largest),
            (None, Some(previous)) => Some(previous),
            (None, None) if i == 0 => {
                optional_u64(packet, &at, "pn")?.and_then(|pn| pn.checked_sub(1))
            }
            (None, None) => None,
        };
        if largest.is_some() {
            rx.set_largest_received(largest);
        }
        let opened = rx.open_in_place(&mut buffer);
        match opened {
            Ok(datagram) => previous = datagram.packet.map(|p| p.number).or(previous),
            Err(error) => refused.push(at.error(format!("cannot open: {error}"))),
        }
        if let Value::Object(fields) = packet {
            fill_opened(fields, &buffer, opened, Filled::Packet);
        }
    }
    for (i, case) in packets_mut(&mut doc, "negative").iter_mut().enumerate() {
        let at = at.field("negative").index(i);
        object(case, &at)?;
        let generation = optional_u64(case, &at, "generation")?.unwrap_or(0);
        if generation > MAX_GENERATION {
            return Err(at
                .field("generation")
                .error(format!("{generation} is more than {MAX_GENERATION}")));
        }
        let mut rx = rx_at_generation(&spec, generation).map_err(|e| at.error(e))?;
        rx.set_largest_received(optional_u64(case, &at, "largest_received")?);
        let mut buffer = hex_bytes(case, &at, "protected")?;
        let opened = rx.open_in_place(&mut buffer);
        if let Value::Object(fields) = case {
            fill_opened(fields, &buffer, opened, Filled::Negative);
        }
    }
    Ok(JobOutput { doc, refused })
}

/// The elements of array `name` of `doc`, to fill in (none when absent; checked before).
fn packets_mut<'d>(doc: &'d mut Value, name: &str) -> &'d mut [Value] {
    match doc.get_mut(name) {
        Some(Value::Array(items)) => items,
        _ => &mut [],
    }
}

/// Which list an entry that [`fill_opened`] fills belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filled {
    /// `packets`: `generation` is output.
    Packet,
    /// `negative`: `generation` is input (the receiver's keys) and passes through untouched.
    Negative,
}

/// Writes what opening gave into a packet's fields.
fn fill_opened(
    fields: &mut Map<String, Value>,
    buffer: &[u8],
    opened: Result<Datagram, quicseal::Error>,
    filled: Filled,
) {
    for stale in ["error", "long_header", "header", "payload", "pn"] {
        fields.remove(stale);
    }
    if filled == Filled::Packet {
        fields.remove("generation");
    }
    match opened {
        Ok(datagram) => {
            // The core's lengths lie within the buffer it opened.
            let long = buffer.get(..datagram.passthrough_len).unwrap_or_default();
            if !long.is_empty() {
                fields.insert("long_header".into(), hex::encode(long).into());
            }
            if let Some(info) = datagram.packet {
                let header_at = datagram.passthrough_len;
                let payload_at = header_at + info.header_len;
                let header = buffer.get(header_at..payload_at).unwrap_or_default();
                let payload = buffer
                    .get(payload_at..payload_at + info.payload_len)
                    .unwrap_or_default();
                fields.insert("header".into(), hex::encode(header).into());
                fields.insert("payload".into(), hex::encode(payload).into());
                fields.insert("pn".into(), info.number.into());
                if filled == Filled::Packet {
                    fields.insert("generation".into(), info.generation.into());
                }
            }
        }
        Err(error) => {
            fields.insert("error".into(), error.code().into());
        }
    }
}
