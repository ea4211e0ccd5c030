//! `nic_window`: an arbitrary shared window served by the SmartNIC engine.
//!
//! Input: the window's bytes, whole (the seeds are windows `cargo xtask fw-test` builds),
//! served over a looped-back port (`Loopback`), so that frames sent come back to be opened.
//!
//! Properties: `Nic::service` never panics, whatever the header, rings, contexts and
//! descriptors say; the status it returns is one the ABI documents and the one it writes
//! into the header; a window it refuses is left as it came but for that status; and a window
//! it serves keeps at most a ring's length of completions waiting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicseal_nic::{Loopback, Nic};
use quicseal_nic_abi::{Status, WindowHeader};
use zerocopy::FromBytes;

fuzz_target!(|data: &[u8]| {
    let mut window = data.to_vec();
    let status = Nic::new().service(&mut window, || 0, &mut Loopback::new());
    assert_eq!(window.len(), data.len());
    assert!(
        [Status::OK, Status::BAD_WINDOW, Status::BAD_RING].contains(&status),
        "status {status:#x}"
    );
    match WindowHeader::read_from_prefix(&window) {
        Ok((header, _)) if status != Status::BAD_WINDOW => {
            assert_eq!(header.status, status);
            if status == Status::OK {
                let ring = header.completions;
                let waiting = ring.producer.get().wrapping_sub(ring.consumer.get());
                assert!(waiting <= ring.entries.get(), "{ring:?}");
            }
        }
        // Refused windows are left as they came, but for the status byte of a header that
        // was long enough to have one.
        _ => {
            let mut expected = data.to_vec();
            if let Some(byte) = expected.get_mut(std::mem::offset_of!(WindowHeader, status)) {
                if data.len() >= size_of::<WindowHeader>() {
                    *byte = Status::BAD_WINDOW;
                }
            }
            assert_eq!(window, expected);
        }
    }
});
