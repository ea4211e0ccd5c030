//! defmt's global logger: each frame, encoded (rzCOBS), is written to `defmt.bin` through
//! semihosting, which the simulator carries to the host's file; `defmt-print -e <elf>`
//! decodes it there. No crates.io transport carries defmt over semihosting on RISC-V
//! (`defmt-semihosting` is Cortex-M only), hence these few lines.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};

use critical_section::Mutex;
use quicseal_nic_abi::WindowHeader;
use semihosting::fs::File;
use semihosting::io::Write;
use zerocopy::FromBytes;

/// Longest frame kept whole; a longer one is cut (the decoder then skips it).
const FRAME: usize = 256;

struct Sink {
    encoder: defmt::Encoder,
    file: Option<File>,
    frame: [u8; FRAME],
    len: usize,
}

static SINK: Mutex<RefCell<Sink>> = Mutex::new(RefCell::new(Sink {
    encoder: defmt::Encoder::new(),
    file: None,
    frame: [0; FRAME],
    len: 0,
}));

/// Set while a frame is being written: defmt's frames do not nest.
static TAKEN: AtomicBool = AtomicBool::new(false);

#[defmt::global_logger]
struct Logger;

/// Runs `f` on the sink with its encoder and its frame buffer apart.
fn with_sink(f: impl FnOnce(&mut defmt::Encoder, &mut dyn FnMut(&[u8]))) {
    critical_section::with(|cs| {
        let mut sink = SINK.borrow_ref_mut(cs);
        let Sink {
            encoder, frame, len, ..
        } = &mut *sink;
        f(encoder, &mut |bytes: &[u8]| {
            let free = frame.len() - *len;
            let take = bytes.len().min(free);
            frame[*len..*len + take].copy_from_slice(&bytes[..take]);
            *len += take;
        });
    });
}

// SAFETY: `acquire` refuses to nest, and the firmware runs on one hart without interrupts;
// the sink is only touched inside critical sections.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt frames nested");
        }
        with_sink(|encoder, write| encoder.start_frame(write));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        with_sink(|encoder, write| encoder.end_frame(write));
        critical_section::with(|cs| {
            let mut sink = SINK.borrow_ref_mut(cs);
            if sink.file.is_none() {
                sink.file = File::create(c"defmt.bin").ok();
            }
            let Sink {
                file, frame, len, ..
            } = &mut *sink;
            if let Some(file) = file {
                // Best effort, as defmt asks: a lost frame must not stop the firmware.
                let _ = file.write_all(&frame[..*len]);
            }
            *len = 0;
        });
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        with_sink(|encoder, write| encoder.write(bytes, write));
    }
}

/// The line for a window served: its status and the counters its header holds.
pub fn served(window: &[u8], status: u8) {
    let Ok((header, _)) = WindowHeader::read_from_prefix(window) else {
        return;
    };
    let counters = header.counters;
    defmt::info!(
        "window of {=usize} bytes served: status {=u8:#x}, {=u64} descriptors, {=u64} sealed, {=u64} opened, {=u64} refused, {=u64} bad",
        window.len(),
        status,
        counters.descriptors.get(),
        counters.sealed.get(),
        counters.opened.get(),
        counters.refused.get(),
        counters.bad_descriptors.get()
    );
}
