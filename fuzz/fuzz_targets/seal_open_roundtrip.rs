//! `seal_open_roundtrip`: an input-chosen 1-RTT packet sealed four ways and opened again.
//!
//! Input: suite byte (`% 3`), 48 secret bytes (the suite's hash length of them are used),
//! flags byte (bits 0-1: packet number length - 1, bit 2: spin, bit 3: key phase),
//! DCID length byte (`% 21`), 20 DCID bytes (that many used), 8 bytes of packet number,
//! source cuts, destination cuts, then the payload.
//!
//! Properties: the cleartext short header built with `quicseal::wire::ShortHeader` sealed
//! with `TxFlow::seal` (scatter-gather), `seal_in_place`, `seal_gso` and `seal_gso_in_place`
//! (a one-datagram batch, where `gso_size` is at least the flow's minimum) gives the same
//! `Result` and the same bytes every way; the packet number it reports is the one chosen;
//! and `RxFlow::open_in_place` gives the cleartext back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal::{Error, FlowConfig, RxFlow, TxFlow};
use quicseal_fuzz::{ChosenPacket, pieces, pieces_mut};

const TAG_LEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    let ChosenPacket {
        suite,
        secret,
        dcid_len,
        number,
        src_cuts,
        dst_cuts,
        cleartext,
        ..
    } = ChosenPacket::read(data);
    let secret = &secret[..];
    let len = cleartext.len();

    // One packet below the chosen number has gone before, so the truncated number recovers
    // exactly it, on both sides.
    let mut config = FlowConfig::new(dcid_len);
    config.largest_packet_number = number.checked_sub(1);
    let new_tx = || -> TxFlow { TxFlow::from_secret(suite, secret, config).expect("valid") };

    let mut sg_out = vec![0u8; len + TAG_LEN];
    let sg = {
        let src = pieces(&cleartext, &src_cuts.fit(len));
        let mut dst = pieces_mut(&mut sg_out, &dst_cuts.fit(len + TAG_LEN));
        new_tx().seal(&src, &mut dst)
    };

    let mut in_place = cleartext.clone();
    in_place.resize(len + TAG_LEN, 0);
    let in_place_result = new_tx().seal_in_place(&mut in_place, len);
    assert_eq!(sg, in_place_result, "seal and seal_in_place disagree");

    let gso_size = len + TAG_LEN;
    let min_gso_size = new_tx().min_gso_size();
    let mut gso_out = vec![0u8; gso_size];
    let mut results = [Err(Error::Malformed)];
    let gso = new_tx().seal_gso(&[&cleartext], gso_size, &mut [&mut gso_out], &mut results);
    let mut gso_in_place = cleartext.clone();
    gso_in_place.resize(gso_size, 0);
    let mut in_place_results = [Err(Error::Malformed)];
    let gso_in_place_result =
        new_tx().seal_gso_in_place(&mut gso_in_place, gso_size, &mut in_place_results);
    if gso_size < min_gso_size {
        assert_eq!(gso, Err(Error::GsoSizeTooSmall));
        assert_eq!(gso_in_place_result, Err(Error::GsoSizeTooSmall));
    } else {
        let batch = gso.expect("a one-datagram batch fits");
        let batch_in_place = gso_in_place_result.expect("a one-datagram batch fits");
        assert_eq!(
            batch, batch_in_place,
            "seal_gso and seal_gso_in_place disagree"
        );
        assert_eq!((batch.datagrams, batch.ok + batch.failed), (1, 1));
        assert_eq!(results[0], sg, "seal_gso and seal disagree");
        assert_eq!(
            in_place_results[0], sg,
            "seal_gso_in_place and seal disagree"
        );
    }

    let Ok(sealed) = sg else { return };
    let packet = sealed.packet.expect("a short header was sealed");
    assert_eq!((sealed.len, packet.number), (len + TAG_LEN, number));
    assert_eq!(
        sg_out, in_place,
        "seal and seal_in_place wrote different bytes"
    );
    if gso_size >= min_gso_size {
        assert_eq!(sg_out, gso_out, "seal_gso wrote different bytes");
        assert_eq!(
            sg_out, gso_in_place,
            "seal_gso_in_place wrote different bytes"
        );
    }

    let mut rx: RxFlow = RxFlow::from_secret(suite, secret, config).expect("valid");
    let opened = rx
        .open_in_place(&mut sg_out)
        .expect("a sealed packet opens");
    assert_eq!(opened.len, len);
    assert_eq!(opened.packet.map(|p| p.number), Some(number));
    assert_eq!(
        &sg_out[..len],
        &cleartext[..],
        "opened to different cleartext"
    );
});
