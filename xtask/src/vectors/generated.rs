//! The pseudo-random flows: for each suite, one per DCID length and two GSO batches. Each
//! file's bytes come from its own fixed PRNG stream (seeded by its name); the structure
//! that matters (PN lengths, payload lengths, key updates, PN jumps) is fixed here.

use super::crypto::{Keys, Suite, generations};
use super::flow::{Flow, HpMask, Negative, Packet};
use super::packet::{
    FIXED_BIT, Failure, MAX_PN, SAMPLE_LEN, SAMPLE_OFFSET, ShortHeader, TAG_LEN, min_pn_len,
    protect,
};
use super::prng::SplitMix64;

/// Every generated flow, in file name order within each suite.
pub fn all() -> Vec<Flow> {
    Suite::ALL
        .into_iter()
        .flat_map(|suite| {
            let by_dcid = DCID_LENS.map(|dcid_len| dcid_flow(suite, dcid_len));
            by_dcid
                .into_iter()
                .chain([gso_flow(suite), gso_key_update_flow(suite)])
        })
        .collect()
}

const DCID_LENS: [usize; 3] = [0, 8, 20];
/// Payload lengths each DCID flow has, around the AEAD block and tag sizes and the minimum
/// for a header protection sample, up to a full 1500-byte datagram.
const PAYLOAD_LENS: [usize; 14] = [1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 255, 256, 1000, 1452];
/// The lengths of the other payloads in a DCID flow.
const OTHER_PAYLOAD_LENS: (u64, u64) = (4, 128);
const FLOW_PACKETS: usize = 26;
/// The DCID flows go through generations 0 to 3, a quarter of their packets each.
const FLOW_GENERATIONS: usize = 4;
/// The packet whose PN jumps to 2^32 - 2, so the following ones cross 2^32.
const JUMP_TO_2_32: usize = 10;
/// The packet that arrives after the next one: its largest received PN is above its own.
const REORDERED: usize = 16;
/// The last three packets of a DCID flow end at the largest PN.
const LAST_THREE: usize = FLOW_PACKETS - 3;

/// A random flow with `dcid_len`-byte DCIDs: every PN length, the payload lengths of
/// [`PAYLOAD_LENS`], random spin bits, three key updates, PN gaps and jumps, a reordered
/// packet, and the negatives of [`negatives`].
fn dcid_flow(suite: Suite, dcid_len: usize) -> Flow {
    let file = format!("{}-dcid{dcid_len}.json", suite.file_prefix());
    let mut rng = SplitMix64::seeded_by(&file);
    let keys = generations(suite, &rng.bytes(suite.secret_len()), FLOW_GENERATIONS);
    let dcid = rng.bytes(dcid_len);
    let pns = plan_pns(&mut rng);
    let largest_received = plan_largest_received(&pns);
    let mut payload_lens = PAYLOAD_LENS.to_vec();
    let (shortest, longest) = OTHER_PAYLOAD_LENS;
    payload_lens.resize_with(FLOW_PACKETS, || rng.range(shortest, longest) as usize);
    rng.shuffle(&mut payload_lens);
    let mut packets = Vec::with_capacity(FLOW_PACKETS);
    for (index, payload_len) in payload_lens.into_iter().enumerate() {
        let (pn, largest_received) = (pns[index], largest_received[index]);
        // The sender's view of what was acknowledged lags the receiver's.
        let largest_acked = largest_received.min(pn - 1).checked_sub(rng.below(4));
        // Cycle through the PN lengths, but no shorter than RFC 9000 A.2 asks for, nor than
        // a header protection sample needs (pn_len + payload_len >= 4).
        let pn_len = (1 + index % 4)
            .max(min_pn_len(pn, largest_acked))
            .max(SAMPLE_OFFSET.saturating_sub(payload_len));
        let spin = rng.coin();
        let plan = Plan {
            generation: index * FLOW_GENERATIONS / FLOW_PACKETS,
            pn,
            pn_len,
            largest_received,
            payload_len,
            spin,
        };
        packets.push(seal(&mut rng, &keys, &dcid, plan));
    }
    for pn_len in 1..=4 {
        assert!(
            packets
                .iter()
                .any(|p| p.header.len() == 1 + dcid_len + pn_len),
            "{file} has no {pn_len}-byte packet number"
        );
    }
    Flow {
        description: format!(
            "Random 1-RTT flow, {suite}, {dcid_len}-byte DCID: {FLOW_PACKETS} packets over key \
             generations 0 to 3 with every packet number length, payloads of 1 to 1452 bytes, \
             random spin bits, PN gaps, one packet reordered after the next, PNs jumping to \
             2^32 - 2 and ending at 2^62 - 1. Negatives: tampered payload and tag, truncated \
             and empty packets, a cleared fixed bit, and a packet sealed with the keys two \
             generations on.",
            suite = suite.name(),
        ),
        hp_masks: hp_masks(&mut rng, &keys[0]),
        negatives: negatives(&keys, dcid_len, &packets),
        file,
        suite,
        dcid_len,
        keys,
        packets,
        gso_size: None,
    }
}

/// A DCID flow's packet numbers in sending order: mostly consecutive with random gaps, a
/// jump to just below 2^32, and the last three ending at the largest PN.
fn plan_pns(rng: &mut SplitMix64) -> Vec<u64> {
    let mut pns: Vec<u64> = vec![rng.range(1, 1000)];
    for index in 1..FLOW_PACKETS {
        let previous = pns[index - 1];
        let pn = match index {
            JUMP_TO_2_32 => (1 << 32) - 2,
            LAST_THREE => MAX_PN - 2,
            _ if index > LAST_THREE => previous + 1,
            _ if rng.below(4) == 0 => previous + rng.range(2, 300),
            _ => previous + 1,
        };
        pns.push(pn);
    }
    pns
}

/// The receiver's largest PN before each packet of a DCID flow arrives. Usually the
/// previous packet's; at a jump, the PN just before (as if the flow resumed a long-lived
/// connection); [`REORDERED`] arrives after the packet that follows it.
fn plan_largest_received(pns: &[u64]) -> Vec<u64> {
    (0..pns.len())
        .map(|index| match index {
            0 | JUMP_TO_2_32 | LAST_THREE => pns[index] - 1,
            REORDERED => pns[index + 1],
            _ if index == REORDERED + 1 => pns[index - 2],
            _ => pns[index - 1],
        })
        .collect()
}

/// The size of the datagrams `<suite>-gso.json` batches.
const GSO_SIZE: usize = 1350;
/// The size of the datagrams `<suite>-gso-key-update.json` batches.
const GSO_KEY_UPDATE_SIZE: usize = 1200;
/// How long the cleartext of a GSO batch's last, short, packet is.
const GSO_LAST_CLEARTEXT_LEN: usize = 500;

/// Five packets, all generation 0, for one GSO batch of 1350-byte segments.
fn gso_flow(suite: Suite) -> Flow {
    let description = format!(
        "One GSO batch, {suite}, 8-byte DCID: five consecutive generation-0 packets, the first \
         four exactly {GSO_SIZE} bytes protected, the last shorter.",
        suite = suite.name(),
    );
    gso_batch(suite, "gso", description, GSO_SIZE, &[0, 0, 0, 0, 0])
}

/// Four packets for one GSO batch of 1200-byte segments, with a key update at the third.
fn gso_key_update_flow(suite: Suite) -> Flow {
    let description = format!(
        "One GSO batch, {suite}, 8-byte DCID: four consecutive packets, the first three \
         exactly {GSO_KEY_UPDATE_SIZE} bytes protected, the last shorter, with the key phase \
         flipping (generation 0 to 1) at the third.",
        suite = suite.name(),
    );
    gso_batch(
        suite,
        "gso-key-update",
        description,
        GSO_KEY_UPDATE_SIZE,
        &[0, 0, 1, 1],
    )
}

/// Consecutive packets of the given generations whose protected lengths are `gso_size`,
/// but the last one's, which is shorter.
fn gso_batch(
    suite: Suite,
    name: &str,
    description: String,
    gso_size: usize,
    packet_generations: &[usize],
) -> Flow {
    const DCID_LEN: usize = 8;
    let file = format!("{}-{name}.json", suite.file_prefix());
    let mut rng = SplitMix64::seeded_by(&file);
    let generation_count = packet_generations
        .iter()
        .max()
        .expect("a batch has packets")
        + 1;
    let keys = generations(suite, &rng.bytes(suite.secret_len()), generation_count);
    let dcid = rng.bytes(DCID_LEN);
    // A batch is sent at once: one spin bit value, acknowledgments from a while ago.
    let spin = rng.coin();
    let first_pn = rng.range(1000, 1 << 20);
    let largest_acked = first_pn - rng.range(1, 300);
    let mut packets = Vec::with_capacity(packet_generations.len());
    for (index, &generation) in packet_generations.iter().enumerate() {
        let pn = first_pn + index as u64;
        let pn_len = min_pn_len(pn, Some(largest_acked));
        let is_last = index + 1 == packet_generations.len();
        let cleartext_len = if is_last {
            GSO_LAST_CLEARTEXT_LEN
        } else {
            gso_size - TAG_LEN
        };
        let plan = Plan {
            generation,
            pn,
            pn_len,
            largest_received: pn - 1,
            payload_len: cleartext_len - (1 + DCID_LEN + pn_len),
            spin,
        };
        packets.push(seal(&mut rng, &keys, &dcid, plan));
    }
    Flow {
        file,
        description,
        suite,
        dcid_len: DCID_LEN,
        hp_masks: hp_masks(&mut rng, &keys[0]),
        keys,
        packets,
        gso_size: Some(gso_size),
        negatives: Vec::new(),
    }
}

/// What the flows choose for each packet; the payload is random.
struct Plan {
    generation: usize,
    pn: u64,
    pn_len: usize,
    largest_received: u64,
    payload_len: usize,
    spin: bool,
}

/// Builds and protects one packet with a random payload, its key phase from its generation.
fn seal(rng: &mut SplitMix64, keys: &[Keys], dcid: &[u8], plan: Plan) -> Packet {
    let header = ShortHeader {
        spin: plan.spin,
        key_phase: plan.generation % 2 == 1,
        dcid,
        pn: plan.pn,
        pn_len: plan.pn_len,
    }
    .encode();
    let payload = rng.bytes(plan.payload_len);
    let protected = protect(&keys[plan.generation], plan.pn, &header, &payload);
    Packet {
        generation: plan.generation,
        pn: plan.pn,
        largest_received: plan.largest_received,
        header,
        payload,
        protected,
    }
}

/// Header protection masks of edge-case and random samples. The all-ones sample makes
/// ChaCha20's block counter 2^32 - 1.
fn hp_masks(rng: &mut SplitMix64, keys: &Keys) -> Vec<HpMask> {
    [
        [0; SAMPLE_LEN],
        [0xff; SAMPLE_LEN],
        rng.array(),
        rng.array(),
    ]
    .into_iter()
    .map(|sample| HpMask {
        sample,
        mask: keys.hp_mask(&sample),
    })
    .collect()
}

/// Packets a receiver must drop, all made from the shortest generation-1 packet whose
/// last payload byte and tag lie past the header protection sample (so tampering with
/// them breaks only the AEAD), in this order: payload byte flipped, tag byte flipped,
/// truncated one byte short of a sample, truncated inside the DCID (unless it is empty),
/// empty, fixed bit cleared, sealed with the keys of generation 3 (same key phase).
fn negatives(keys: &[Keys], dcid_len: usize, packets: &[Packet]) -> Vec<Negative> {
    let pn_offset = 1 + dcid_len;
    let sample_end = pn_offset + SAMPLE_OFFSET + SAMPLE_LEN;
    let source = packets
        .iter()
        .filter(|p| p.generation == 1 && p.protected.len() > sample_end + TAG_LEN)
        .min_by_key(|p| p.protected.len())
        .expect("generation 1 has a packet with a payload of 17 bytes or more");
    let tampered = |at: usize| {
        let mut protected = source.protected.clone();
        protected[at] ^= 0x01;
        protected
    };
    let mut fixed_bit_cleared = source.protected.clone();
    fixed_bit_cleared[0] &= !FIXED_BIT;
    let mut cases = vec![
        (
            tampered(source.protected.len() - TAG_LEN - 1),
            Failure::AuthFailed,
        ),
        (tampered(source.protected.len() - 1), Failure::AuthFailed),
        (
            source.protected[..sample_end - 1].to_vec(),
            Failure::Malformed,
        ),
    ];
    if dcid_len > 0 {
        cases.push((
            source.protected[..1 + dcid_len / 2].to_vec(),
            Failure::Malformed,
        ));
    }
    cases.extend([
        (Vec::new(), Failure::Malformed),
        (fixed_bit_cleared, Failure::Malformed),
        (
            protect(
                &keys[source.generation + 2],
                source.pn,
                &source.header,
                &source.payload,
            ),
            Failure::AuthFailed,
        ),
    ]);
    cases
        .into_iter()
        .map(|(protected, expect)| Negative {
            generation: source.generation,
            largest_received: source.largest_received,
            protected,
            expect,
        })
        .collect()
}
