//! One vector file: a flow of packets under one traffic secret, what it must decode to,
//! how it is written as JSON, and the self-check every flow passes before it is written.

use serde_json::{Map, Value, json};

use super::crypto::{Keys, Suite};
use super::packet::{Failure, Opened, unprotect};

/// A flow of short header packets protected under one traffic secret and its key updates.
pub struct Flow {
    /// The file's name in `vectors/`.
    pub file: String,
    pub description: String,
    pub suite: Suite,
    pub dcid_len: usize,
    /// Generations `0..keys.len()`; generation 0's secret is the flow's traffic secret.
    pub keys: Vec<Keys>,
    pub hp_masks: Vec<HpMask>,
    /// In sending order.
    pub packets: Vec<Packet>,
    /// Set when the packets form one GSO batch: every one of them this long but the last.
    pub gso_size: Option<usize>,
    pub negatives: Vec<Negative>,
}

/// A packet a sender seals and a receiver opens.
pub struct Packet {
    pub generation: usize,
    pub pn: u64,
    /// The largest packet number the receiver had before this packet.
    pub largest_received: u64,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub protected: Vec<u8>,
}

/// A packet a fresh receiver at `generation` must drop.
pub struct Negative {
    pub generation: usize,
    pub largest_received: u64,
    pub protected: Vec<u8>,
    pub expect: Failure,
}

/// The header protection mask of a sample under the flow's header protection key.
pub struct HpMask {
    pub sample: [u8; 16],
    pub mask: [u8; 5],
}

impl Flow {
    /// Checks the flow is what its file promises, with the reference receiver: packets in
    /// order with key generations that step by at most one, each opening to its header,
    /// packet number and payload, each negative failing as expected, GSO segment sizes.
    pub fn verify(&self) -> crate::Result {
        self.verify_packets()
            .and_then(|()| self.verify_negatives())
            .and_then(|()| self.verify_gso())
            .map_err(|problem| format!("{}: {problem}", self.file))
    }

    fn verify_packets(&self) -> crate::Result {
        let mut previous: Option<&Packet> = None;
        for (index, packet) in self.packets.iter().enumerate() {
            // The first packet is at generation 0 and its pn at least 1, so that its
            // default largest_received (pn - 1) exists.
            let (generations, lowest_pn) = match previous {
                Some(previous) => (
                    previous.generation..=previous.generation + 1,
                    previous.pn + 1,
                ),
                None => (0..=0, 1),
            };
            if packet.pn < lowest_pn || !generations.contains(&packet.generation) {
                return Err(format!(
                    "packet {index} (pn {}, generation {}) doesn't follow the one before",
                    packet.pn, packet.generation
                ));
            }
            let opened = self.open(
                packet.generation,
                packet.largest_received,
                &packet.protected,
            );
            let expected = Opened {
                header: packet.header.clone(),
                pn: packet.pn,
                payload: packet.payload.clone(),
            };
            if opened.as_ref() != Ok(&expected) {
                return Err(format!("packet {index} opens to {opened:?}"));
            }
            previous = Some(packet);
        }
        Ok(())
    }

    fn verify_negatives(&self) -> crate::Result {
        for (index, negative) in self.negatives.iter().enumerate() {
            let opened = self.open(
                negative.generation,
                negative.largest_received,
                &negative.protected,
            );
            if opened.as_ref().err() != Some(&negative.expect) {
                return Err(format!("negative {index} opens to {opened:?}"));
            }
        }
        Ok(())
    }

    fn verify_gso(&self) -> crate::Result {
        let Some(gso_size) = self.gso_size else {
            return Ok(());
        };
        let (last, full) = self.packets.split_last().ok_or("an empty GSO batch")?;
        if full.iter().any(|p| p.protected.len() != gso_size) || last.protected.len() > gso_size {
            return Err(format!("the packets are not segments of {gso_size} bytes"));
        }
        Ok(())
    }

    /// Opens `protected` as the reference receiver at `generation` does.
    fn open(
        &self,
        generation: usize,
        largest_received: u64,
        protected: &[u8],
    ) -> Result<Opened, Failure> {
        unprotect(
            &self.keys[generation],
            self.dcid_len,
            largest_received,
            protected,
        )
    }

    /// The file's text: pretty-printed JSON, keys in a fixed order, a final newline.
    pub fn to_json(&self) -> String {
        let mut root = Map::new();
        root.insert("description".into(), json!(self.description));
        root.insert("suite".into(), json!(self.suite.name()));
        root.insert("secret".into(), json!(hex(&self.keys[0].secret)));
        root.insert("dcid_len".into(), json!(self.dcid_len));
        root.insert(
            "keys".into(),
            self.keys.iter().enumerate().map(keys_json).collect(),
        );
        root.insert(
            "hp_masks".into(),
            self.hp_masks.iter().map(hp_mask_json).collect(),
        );
        root.insert("packets".into(), self.packets_json());
        if let Some(gso_size) = self.gso_size {
            root.insert("gso_size".into(), json!(gso_size));
        }
        root.insert(
            "negative".into(),
            self.negatives.iter().map(negative_json).collect(),
        );
        let mut text = serde_json::to_string_pretty(&root).expect("a JSON map always serializes");
        text.push('\n');
        text
    }

    /// The packets, `largest_received` written only where it isn't the default: the
    /// previous packet's pn, or pn - 1 for the first.
    fn packets_json(&self) -> Value {
        let defaults = std::iter::once(self.packets.first().map_or(0, |p| p.pn - 1))
            .chain(self.packets.iter().map(|p| p.pn));
        self.packets
            .iter()
            .zip(defaults)
            .map(|(packet, default)| packet_json(packet, default))
            .collect()
    }
}

fn keys_json((generation, keys): (usize, &Keys)) -> Value {
    json!({
        "generation": generation,
        "secret": hex(&keys.secret),
        "key": hex(&keys.key),
        "iv": hex(&keys.iv),
        "hp": hex(&keys.hp),
    })
}

fn hp_mask_json(hp_mask: &HpMask) -> Value {
    json!({ "sample": hex(&hp_mask.sample), "mask": hex(&hp_mask.mask) })
}

fn packet_json(packet: &Packet, default_largest_received: u64) -> Value {
    let mut object = Map::new();
    object.insert("generation".into(), json!(packet.generation));
    object.insert("pn".into(), json!(packet.pn));
    if packet.largest_received != default_largest_received {
        object.insert("largest_received".into(), json!(packet.largest_received));
    }
    object.insert("header".into(), json!(hex(&packet.header)));
    object.insert("payload".into(), json!(hex(&packet.payload)));
    object.insert("protected".into(), json!(hex(&packet.protected)));
    Value::Object(object)
}

fn negative_json(negative: &Negative) -> Value {
    json!({
        "generation": negative.generation,
        "largest_received": negative.largest_received,
        "protected": hex(&negative.protected),
        "expect": negative.expect.code(),
    })
}

/// Lowercase hex, as every byte string in the files is written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
