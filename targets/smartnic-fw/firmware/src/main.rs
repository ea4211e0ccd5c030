//! quicseal's SmartNIC firmware for a RISC-V soft core (`riscv32imac`): the core, unchanged,
//! serving a shared window of descriptor rings (`quicseal_nic_abi`, docs/smartnic-abi.md).
//!
//! On a NIC the window is SRAM that the host reaches through a PCIe BAR and the doorbells are
//! writes the firmware waits for. In the simulator (QEMU's `virt` machine) the window is a
//! file: the firmware reads `window.bin` through semihosting, serves every descriptor waiting
//! in it once, writes the window back to `window.out` and exits with status 0 (1 when the
//! files cannot be read or written, 2 when the window is larger than its memory, 101 on a
//! panic). The work itself is `quicseal_nic::Nic::service`, which host tests run too.

#![no_std]
#![no_main]

use quicseal_nic::Nic;
use semihosting::fs::File;
use semihosting::io::{self, Read, Write};
use static_cell::ConstStaticCell;

/// The most window this firmware holds: what a small NIC's SRAM would offer.
const WINDOW_CAPACITY: usize = 4 << 20;

/// The shared window. Zero-initialised, so it costs no image space (`.bss`).
static WINDOW: ConstStaticCell<[u8; WINDOW_CAPACITY]> =
    ConstStaticCell::new([0; WINDOW_CAPACITY]);

/// The firmware's flows, kept in place rather than built on the stack.
static NIC: ConstStaticCell<Nic> = ConstStaticCell::new(Nic::new());

#[riscv_rt::entry]
fn main() -> ! {
    let window = WINDOW.take();
    let nic = NIC.take();
    let code = match serve(window, nic) {
        Ok(true) => 0,
        Ok(false) => 2,
        Err(_) => 1,
    };
    semihosting::process::exit(code)
}

/// Reads the window, serves it, writes it back; `Ok(false)` if it does not fit.
fn serve(memory: &mut [u8], nic: &mut Nic) -> io::Result<bool> {
    let mut file = File::open(c"window.bin")?;
    let mut len = 0;
    loop {
        let Some(free) = memory.get_mut(len..).filter(|free| !free.is_empty()) else {
            // Full: fine only if the file has nothing more.
            let mut probe = [0u8; 1];
            if file.read(&mut probe)? != 0 {
                return Ok(false);
            }
            break;
        };
        match file.read(free)? {
            0 => break,
            n => len += n,
        }
    }
    let window = memory.get_mut(..len).unwrap_or_default();
    nic.service(window, || riscv::register::minstret::read() as u32);
    File::create(c"window.out")?.write_all(window)?;
    Ok(true)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::process::exit(101)
}
