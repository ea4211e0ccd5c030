//! QEMU's `virt` machine: the window is a file. The firmware reads `window.bin` from QEMU's
//! working directory through semihosting, serves it, writes it back to `window.out`, writes
//! its stack figure to `stack.txt` and exits with the [`Outcome`]'s code. Costs are
//! instructions retired: deterministic counts under QEMU's `-icount shift=0`.

use semihosting::fs::File;
use semihosting::io::{self, Read, Write};
use static_cell::ConstStaticCell;

use crate::{Outcome, decimal};

/// QEMU's `virt` machine offers the firmware no network port: frames loop back in software.
pub use quicseal_nic::Loopback as NetworkPort;

/// The most window this firmware holds: what a small NIC's SRAM would offer.
const WINDOW_CAPACITY: usize = 4 << 20;

/// The shared window. Zero-initialised, so it costs no image space (`.bss`).
static WINDOW: ConstStaticCell<[u8; WINDOW_CAPACITY]> =
    ConstStaticCell::new([0; WINDOW_CAPACITY]);

/// Instructions retired.
pub fn counter() -> u32 {
    riscv::register::minstret::read() as u32
}

/// Reads the window, has `service` serve it, writes it back.
pub fn serve(service: impl FnOnce(&mut [u8])) -> Outcome {
    match transport(WINDOW.take(), service) {
        Ok(outcome) => outcome,
        Err(_) => Outcome::TransportFailed,
    }
}

fn transport(memory: &mut [u8], service: impl FnOnce(&mut [u8])) -> io::Result<Outcome> {
    let mut file = File::open(c"window.bin")?;
    let mut len = 0;
    loop {
        let Some(free) = memory.get_mut(len..).filter(|free| !free.is_empty()) else {
            // Full: fine only if the file has nothing more.
            let mut probe = [0u8; 1];
            if file.read(&mut probe)? != 0 {
                return Ok(Outcome::TooLarge);
            }
            break;
        };
        match file.read(free)? {
            0 => break,
            n => len += n,
        }
    }
    let window = memory.get_mut(..len).unwrap_or_default();
    service(window);
    File::create(c"window.out")?.write_all(window)?;
    Ok(Outcome::Served)
}

/// Writes `stack.txt` and exits with the outcome's code (1 if `stack.txt` failed).
pub fn finish(outcome: Outcome, stack_used: usize) -> ! {
    let report = File::create(c"stack.txt").and_then(|mut file| {
        let mut text = [0u8; 20];
        file.write_all(decimal(stack_used, &mut text))
    });
    let code = match outcome {
        Outcome::Served if report.is_err() => Outcome::TransportFailed,
        outcome => outcome,
    };
    semihosting::process::exit(code as i32)
}
