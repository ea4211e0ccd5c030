//! quicseal's SmartNIC firmware for a RISC-V soft core (`riscv32imac`): the core, unchanged,
//! serving a shared window of descriptor rings (`quicseal_nic_abi`, docs/smartnic-abi.md).
//!
//! On a NIC the window is SRAM that the host reaches through a PCIe BAR and the doorbells are
//! writes the firmware waits for. In the simulator (QEMU's `virt` machine) the window is a
//! file: the firmware reads `window.bin` through semihosting, serves every descriptor waiting
//! in it once, writes the window back to `window.out` and exits with status 0 (1 when the
//! files cannot be read or written, 2 when the window is larger than its memory, 101 on a
//! panic). The work itself is `quicseal_nic::Nic::service`, which host tests run too.
//!
//! With the `defmt` feature (on by default) it logs through defmt into `defmt.bin`: a line
//! per window served and one per refused descriptor. It also measures its stack: before serving it paints the stack below its frame, after it
//! finds how deep the paint was overwritten, and writes that many bytes to `stack.txt`.

#![no_std]
#![no_main]

#[cfg(feature = "defmt")]
mod log;

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
    let painted = stack::paint();
    let code = match serve(window, nic) {
        Ok(true) => 0,
        Ok(false) => 2,
        Err(_) => 1,
    };
    let used = stack::used(painted);
    let report = File::create(c"stack.txt").and_then(|mut file| {
        let mut text = [0u8; 20];
        file.write_all(decimal(used, &mut text))
    });
    semihosting::process::exit(if report.is_err() && code == 0 { 1 } else { code })
}

/// `n` in decimal, in `buffer`.
fn decimal(mut n: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buffer[at..];
        }
    }
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
    let status = nic.service(window, || riscv::register::minstret::read() as u32);
    #[cfg(feature = "defmt")]
    if let Ok((header, _)) =
        <quicseal_nic_abi::WindowHeader as zerocopy::FromBytes>::read_from_prefix(window)
    {
        let counters = header.counters;
        defmt::info!(
            "window of {=usize} bytes served: status {=u8:#x}, {=u64} descriptors, {=u64} sealed, {=u64} opened, {=u64} refused, {=u64} bad",
            len,
            status,
            counters.descriptors.get(),
            counters.sealed.get(),
            counters.opened.get(),
            counters.refused.get(),
            counters.bad_descriptors.get()
        );
    }
    #[cfg(not(feature = "defmt"))]
    let _ = status;
    File::create(c"window.out")?.write_all(window)?;
    Ok(true)
}

/// The stack's high-water mark, by painting: the free stack below the current frame is filled
/// with a pattern before the work and scanned after it.
mod stack {
    /// Bytes painted: far more than serving a window takes (the scan says if all were used).
    const DEPTH: usize = 256 << 10;
    /// Left unpainted below the painting function's own locals, for its frame.
    const MARGIN: usize = 1 << 10;
    const PAINT: u32 = 0x5a5a_5a5a;

    unsafe extern "C" {
        /// The stack region's low end (riscv-rt's link.x).
        static __estack: u8;
    }

    /// The painted range: `(low, high)` addresses.
    pub struct Painted(usize, usize);

    /// Paints the `DEPTH` bytes below the caller's frame, within the stack region.
    #[inline(never)]
    pub fn paint() -> Painted {
        let here = 0u8;
        let high = (core::ptr::addr_of!(here) as usize - MARGIN) & !3;
        let low = high.saturating_sub(DEPTH).max(core::ptr::addr_of!(__estack) as usize);
        for address in (low..high).step_by(4) {
            // SAFETY: between the stack region's low end and below this frame: stack that no
            // live frame uses yet, aligned, ours alone (one hart, no interrupts).
            unsafe { (address as *mut u32).write_volatile(PAINT) };
        }
        Painted(low, high)
    }

    /// Bytes of the painted range the work overwrote: how far below the painting frame the
    /// stack reached.
    pub fn used(Painted(low, high): Painted) -> usize {
        let untouched = (low..high)
            .step_by(4)
            // SAFETY: the painted words, aligned; reading stack below the current frame.
            .take_while(|&address| unsafe { (address as *const u32).read_volatile() } == PAINT)
            .count();
        high - low - 4 * untouched
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::process::exit(101)
}
