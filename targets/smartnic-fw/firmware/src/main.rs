//! quicseal's SmartNIC firmware for a RISC-V soft core: the core, unchanged, serving a
//! shared window of descriptor rings (`quicseal_nic_abi`, docs/smartnic-abi.md).
//!
//! On a NIC the window is SRAM that the host reaches through a PCIe BAR and the doorbells are
//! writes the firmware waits for. Here the firmware serves one window and stops; where the
//! window comes from and where the results go is the platform's, picked at build time:
//!
//! - `qemu` (the default): QEMU's `virt` machine (`riscv32imac`). The window is a file read
//!   through semihosting and written back; costs are instructions retired (`minstret`). The
//!   machine has no network port the firmware could use, so its port is a software loop
//!   (`quicseal_nic::Loopback`).
//! - `litex`: a LiteX SoC with a VexRiscv core (`riscv32im`) in RTL simulation. The window
//!   is in the SoC's main RAM, put there with the gateware; the results go out over the UART
//!   as text; costs are clock cycles of the SoC's timer. The port is the SoC's LiteEth MAC,
//!   its transmit side wired to its receive side.
//!
//! The work itself is `quicseal_nic::Nic::service`, which host tests run too. The firmware
//! also measures its stack: before serving it paints the stack below its frame, after it
//! finds how deep the paint was overwritten, and reports that with the results.

#![no_std]
#![no_main]

#[cfg(all(feature = "qemu", feature = "litex"))]
compile_error!("the `qemu` and `litex` features pick a platform: enable one");
#[cfg(not(any(feature = "qemu", feature = "litex")))]
compile_error!("enable a platform: the `qemu` feature (the default) or `litex`");

#[cfg(feature = "defmt")]
mod log;
#[cfg_attr(feature = "litex", path = "platform/litex.rs")]
#[cfg_attr(not(feature = "litex"), path = "platform/qemu.rs")]
mod platform;
mod stack;

use quicseal_nic::Nic;
use static_cell::ConstStaticCell;

/// The firmware's flows, kept in place rather than built on the stack.
static NIC: ConstStaticCell<Nic> = ConstStaticCell::new(Nic::new());

/// The network port.
static PORT: ConstStaticCell<platform::NetworkPort> =
    ConstStaticCell::new(platform::NetworkPort::new());

/// How a run ended, as the platform reports it (QEMU: the exit status).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The window was served.
    Served = 0,
    /// The window could not be read or the results written.
    TransportFailed = 1,
    /// The window is larger than the memory the firmware has for it.
    TooLarge = 2,
    /// The firmware panicked (a bug: nothing the host writes should cause one).
    Panicked = 101,
    /// The CPU trapped: an illegal instruction or a bad memory access (a bug, or a platform
    /// that does not match the build).
    Trapped = 102,
}

#[riscv_rt::entry]
fn main() -> ! {
    let nic = NIC.take();
    let port = PORT.take();
    let painted = stack::paint();
    let outcome = platform::serve(|window| {
        let status = nic.service(window, platform::counter, port);
        #[cfg(feature = "defmt")]
        log::served(window, status);
        #[cfg(not(feature = "defmt"))]
        let _ = status;
    });
    let used = stack::used(painted);
    platform::finish(outcome, used)
}

/// `n` in decimal, in `buffer`: the platforms' reports are text.
pub fn decimal(mut n: usize, buffer: &mut [u8; 20]) -> &[u8] {
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

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    platform::finish(Outcome::Panicked, 0)
}

/// A CPU exception ends the run with its outcome, where riscv-rt's default would spin until
/// the harness's timeout.
#[unsafe(export_name = "ExceptionHandler")]
fn exception(_: &riscv_rt::TrapFrame) -> ! {
    platform::finish(Outcome::Trapped, 0)
}
