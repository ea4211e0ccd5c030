use std::io;

use quicseal::{CipherSuite, FlowConfig, TxFlow};

use super::*;

const DCID_LEN: u8 = 8;

/// A NIC reset before every window, as the firmware in QEMU is: whatever state it keeps
/// between windows must come from the host's key contexts.
pub(crate) struct ResetEachTime;

impl Doorbell for ResetEachTime {
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()> {
        Nic::new().service(window, || 0, &mut quicseal_nic::Loopback::new());
        Ok(())
    }
}

/// A short-header cleartext datagram: key phase, a 1-byte truncated packet number, and a
/// payload that says which packet it is.
fn cleartext(packet_number: u64, key_phase: bool, payload_len: usize) -> Vec<u8> {
    let mut bytes = vec![0x40 | (u8::from(key_phase) << 2)];
    bytes.extend([0xd5; DCID_LEN as usize]);
    bytes.push(packet_number as u8);
    bytes.extend((0..payload_len).map(|i| (i as u64 ^ packet_number) as u8));
    bytes
}

/// The datagrams the core seals on the host from the same cleartexts, one by one.
fn sealed_on_the_host(suite: CipherSuite, secret: &[u8], cleartexts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut tx: TxFlow =
        TxFlow::from_secret(suite, secret, FlowConfig::new(DCID_LEN.into())).expect("keys");
    cleartexts
        .iter()
        .map(|cleartext| {
            let mut out = vec![0; cleartext.len() + TAG_LEN];
            let _ = tx.seal(&[cleartext], &mut [&mut out]).expect("sealed");
            out
        })
        .collect()
}

/// One connection handed to the NIC in both directions, sealing and opening, from `secret`.
fn both_directions<D: Doorbell>(
    nic: &mut Offload<D>,
    suite: CipherSuite,
    secret: &[u8],
) -> (Connection, Connection) {
    let tx = nic.connection(suite, secret, DCID_LEN, false).expect("tx");
    let rx = nic.connection(suite, secret, DCID_LEN, true).expect("rx");
    (tx, rx)
}

fn datagrams(results: &[Result<Datagram, Refused>]) -> Vec<Datagram> {
    results
        .iter()
        .map(|result| result.clone().expect("served"))
        .collect()
}

#[test]
fn a_gso_batch_sealed_and_opened_on_the_nic_matches_the_core() {
    for suite in CipherSuite::ALL {
        let secret = vec![0x5c; suite.secret_len()];
        let mut nic = Offload::new(HostEngine::default());
        let (tx, rx) = both_directions(&mut nic, suite, &secret);
        let gso_size = 200;
        let cleartexts: Vec<Vec<u8>> = (0..7)
            .map(|n| {
                cleartext(
                    n,
                    false,
                    gso_size - TAG_LEN - 10 - if n == 6 { 50 } else { 0 },
                )
            })
            .collect();
        let expected = sealed_on_the_host(suite, &secret, &cleartexts);

        let seal = nic.seal(tx, &cleartexts.concat(), Some(gso_size as u16), None);
        let sealed = datagrams(&nic.complete().expect("served")[seal]);
        let bytes: Vec<Vec<u8>> = sealed.iter().map(|d| d.bytes.clone()).collect();
        assert_eq!(bytes, expected, "{suite:?}");
        let numbers: Vec<u64> = sealed.iter().map(|d| d.packet_number).collect();
        assert_eq!(numbers, (0..7).collect::<Vec<_>>());

        let open = nic.open(rx, &expected.concat(), Some(gso_size as u16));
        let opened = datagrams(&nic.complete().expect("served")[open]);
        let bytes: Vec<Vec<u8>> = opened.iter().map(|d| d.bytes.clone()).collect();
        assert_eq!(bytes, cleartexts, "{suite:?}");
    }
}

#[test]
fn a_reset_nic_resumes_from_what_the_host_carried() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = [0x27; 32];
    let mut nic = Offload::new(ResetEachTime);
    let (tx, rx) = both_directions(&mut nic, suite, &secret);
    // Packets 0-419, 1-byte packet numbers: a window starting at 300 decodes them only from
    // the carried largest packet number. The key phase flips at 100 (generation 1), back at
    // 200 (generation 2) and again at 300 (generation 3): only the carried generation tells
    // phase 0 at 200 from generation 0.
    let phase = |n: u64| (n / 100) % 2 == 1;
    let generation = |n: u64| (n / 100) as u32;
    let cleartexts: Vec<Vec<u8>> = (0..420).map(|n| cleartext(n, phase(n), 40)).collect();
    let expected = sealed_on_the_host(suite, &secret, &cleartexts);

    for window in cleartexts.chunks(60).zip((0u64..).step_by(60)) {
        let (chunk, first) = window;
        let tickets: Vec<Ticket> = chunk.iter().map(|c| nic.seal(tx, c, None, None)).collect();
        let results = nic.complete().expect("served");
        for (offset, ticket) in tickets.iter().enumerate() {
            let n = first + offset as u64;
            let sealed = datagrams(&results[*ticket]).remove(0);
            assert_eq!(
                (sealed.packet_number, sealed.generation, sealed.key_phase),
                (n, generation(n), phase(n)),
                "packet {n} sealed"
            );
            assert_eq!(sealed.bytes, expected[n as usize], "packet {n} sealed");
        }
    }
    for window in expected.chunks(60).zip((0u64..).step_by(60)) {
        let (chunk, first) = window;
        let tickets: Vec<Ticket> = chunk.iter().map(|d| nic.open(rx, d, None)).collect();
        let results = nic.complete().expect("served");
        for (offset, ticket) in tickets.iter().enumerate() {
            let n = first + offset as u64;
            let opened = datagrams(&results[*ticket]).remove(0);
            assert_eq!(
                (opened.packet_number, opened.generation),
                (n, generation(n)),
                "packet {n} opened"
            );
            assert_eq!(opened.bytes, cleartexts[n as usize], "packet {n} opened");
        }
    }
}

#[test]
fn refusals_come_back_per_datagram_and_per_job() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let secret = [0x81; 32];
    let mut nic = Offload::new(HostEngine::default());
    let (tx, rx) = both_directions(&mut nic, suite, &secret);
    let mut sealed = sealed_on_the_host(
        suite,
        &secret,
        &[cleartext(0, false, 30), cleartext(1, false, 30)],
    );
    sealed[0][20] ^= 1;
    let batch = nic.open(rx, &sealed.concat(), Some(sealed[0].len() as u16));
    // A GSO size below a header and a tag: the descriptor is refused whole.
    let whole = nic.seal(tx, &cleartext(0, false, 30), Some(8), None);
    let results = nic.complete().expect("served");
    assert_eq!(results[batch].len(), 2);
    assert_eq!(
        results[batch][0],
        Err(Refused(quicseal::Error::AuthFailed.status()))
    );
    assert_eq!(results[batch][1].as_ref().map(|d| d.packet_number), Ok(1));
    assert_eq!(
        results[whole],
        [Err(Refused(quicseal::Error::GsoSizeTooSmall.status()))]
    );
}

#[test]
fn a_secret_of_the_wrong_length_is_refused() {
    let mut nic = Offload::new(HostEngine::default());
    assert!(
        nic.connection(CipherSuite::Aes256GcmSha384, &[0; 32], 0, false)
            .is_err()
    );
}

#[test]
fn tickets_belong_to_their_window_and_an_empty_batch_completes() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = vec![0x42; suite.secret_len()];
    let mut nic = Offload::new(HostEngine::default());
    let tx = nic.connection(suite, &secret, DCID_LEN, false).expect("tx");
    let first = nic.seal(tx, &cleartext(1, false, 50), None, Some(1));
    let empty = nic.seal(tx, &[], Some(200), None);
    let done = nic.complete().expect("served");
    assert_eq!(datagrams(&done[first])[0].packet_number, 1);
    // An empty GSO batch is one empty datagram, done.
    assert_eq!(done.get(empty).map(<[_]>::len), Some(1));
    let second = nic.seal(tx, &cleartext(2, false, 50), None, Some(2));
    let later = nic.complete().expect("served");
    // The next window's first ticket is not the first window's.
    assert_eq!(later.get(first), None);
    assert_eq!(done.get(second), None);
    assert_eq!(datagrams(&later[second])[0].packet_number, 2);
}

#[test]
fn connections_past_the_nics_contexts_are_refused_when_handed_over() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let secret = vec![0x17; suite.secret_len()];
    let mut nic = Offload::new(HostEngine::default());
    for _ in 0..quicseal_nic::MAX_CONTEXTS {
        nic.connection(suite, &secret, DCID_LEN, false)
            .expect("room");
    }
    assert_eq!(
        nic.connection(suite, &secret, DCID_LEN, true),
        Err(quicseal::Error::InvalidConfig)
    );
}

/// A reset NIC that also notes what the first two key contexts of each window say of the
/// limits used: (sealed with the current keys, forgeries seen).
#[derive(Default)]
struct NotingLimits(Vec<[(u64, u64); 2]>);

impl Doorbell for NotingLimits {
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()> {
        use zerocopy::FromBytes;
        let (header, _) = quicseal_nic_abi::WindowHeader::read_from_prefix(window).unwrap();
        let at = header.contexts.offset.get() as usize;
        let used = |index: usize| {
            let bytes = &window[at + index * size_of::<KeyContext>()..];
            let (context, _) = KeyContext::read_from_prefix(bytes).unwrap();
            (
                context.sealed_in_generation.get(),
                context.auth_failures.get(),
            )
        };
        self.0.push([used(0), used(1)]);
        ResetEachTime.ring(window)
    }
}

#[test]
fn a_reset_nic_is_told_what_the_aead_limits_have_used() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = vec![0x33; suite.secret_len()];
    let mut nic = Offload::new(NotingLimits::default());
    let (tx, rx) = both_directions(&mut nic, suite, &secret);
    // Window 1: three sealed; window 2: one forged, one genuine opened; window 3: a key
    // update, one sealed with the new keys.
    let tickets: Vec<Ticket> = (1..=3)
        .map(|n| nic.seal(tx, &cleartext(n, false, 40), None, Some(n)))
        .collect();
    let done = nic.complete().expect("served");
    let sealed: Vec<Vec<u8>> = tickets
        .iter()
        .map(|&ticket| datagrams(&done[ticket])[0].bytes.clone())
        .collect();
    let mut forged = sealed[0].clone();
    *forged.last_mut().unwrap() ^= 1;
    nic.open(rx, &forged, None);
    nic.open(rx, &sealed[1], None);
    nic.complete().expect("served");
    nic.seal(tx, &cleartext(4, true, 40), None, Some(4));
    nic.complete().expect("served");
    nic.complete().expect("served");
    let noted = &nic.doorbell.0;
    assert_eq!(noted[0], [(0, 0), (0, 0)]);
    assert_eq!(noted[1], [(3, 0), (0, 0)]);
    assert_eq!(noted[2], [(3, 0), (0, 1)]);
    // The update started the count again.
    assert_eq!(noted[3], [(1, 0), (0, 1)]);
}

/// The engine, reset before every window, and the length of every window rung.
#[derive(Default)]
struct Measuring(Vec<usize>);

impl Doorbell for Measuring {
    fn ring(&mut self, window: &mut Vec<u8>) -> io::Result<()> {
        self.0.push(window.len());
        ResetEachTime.ring(window)
    }
}

#[test]
fn batches_the_nic_refuses_whole_get_room_for_one_completion() {
    let suite = CipherSuite::Aes128GcmSha256;
    let secret = vec![0x33; suite.secret_len()];
    let mut nic = Offload::new(Measuring::default());
    let (tx, rx) = both_directions(&mut nic, suite, &secret);
    // A segment size below the flow's shortest: counted as datagrams, 60 000 of one byte
    // each, with a completion and a tag's room apiece.
    let tiny = nic.seal(tx, &[0x40; 60_000], Some(17), None);
    // One segment more than a batch takes, sealing and opening.
    let (stride, segments) = (200 - TAG_LEN, MAX_SEGMENTS + 1);
    let many = nic.seal(tx, &vec![0x40; segments * stride], Some(200), None);
    let coalesced = nic.open(rx, &vec![0x40; segments * 200], Some(200));
    let done = nic.complete().expect("served");
    let refused = |error: quicseal::Error| vec![Err(Refused(error.status()))];
    assert_eq!(done[tiny], refused(quicseal::Error::GsoSizeTooSmall));
    assert_eq!(done[many], refused(quicseal::Error::TooManySegments));
    assert_eq!(done[coalesced], refused(quicseal::Error::TooManySegments));
    // The window holds what was posted, room to seal it, and little else.
    let posted = 60_000 + segments * stride + segments * 200;
    let window = nic.doorbell.0[0];
    assert!(
        window < 2 * posted + 4096,
        "{window} bytes for {posted} posted"
    );
}
