//! A LiteX SoC with a VexRiscv core, in RTL simulation (docs/smartnic-fw.md, "LiteX"). The
//! window lies at the start of the SoC's main RAM, where the gateware's initial memory image
//! puts it; its header says how long it is. After serving it the firmware sends the window
//! back over the UART as text, with its stack figure and outcome, and ends the simulation:
//!
//! ```text
//! W <offset> <bytes>     the window, 32 bytes a line, offset and bytes in hex
//! S <bytes>              the stack's high-water mark, in decimal
//! E <code>               the outcome: 0 served, 2 too large, 101 panicked
//! ```
//!
//! Costs are clock cycles of the SoC's `timer0`, counted by the RTL: cycles of this core
//! with these memories.

use quicseal_nic_abi::WindowHeader;
use zerocopy::FromBytes;

use crate::Outcome;

/// The SoC's registers and memory regions, from its `csr.csv` (build.rs).
#[allow(dead_code, reason = "a constant for every register the SoC has, used or not")]
mod csr {
    include!(concat!(env!("OUT_DIR"), "/litex_csr.rs"));
}

fn write_register(address: usize, value: u32) {
    // SAFETY: `address` is a CSR of the SoC (csr.csv): device memory, aligned, which nothing
    // in Rust's model owns.
    unsafe { (address as *mut u32).write_volatile(value) }
}

fn read_register(address: usize) -> u32 {
    // SAFETY: as in `write_register`.
    unsafe { (address as *const u32).read_volatile() }
}

/// Clock cycles since the timer started: it counts down from 2^32 - 1 once a cycle.
pub fn counter() -> u32 {
    write_register(csr::TIMER0_UPDATE_VALUE, 1);
    !read_register(csr::TIMER0_VALUE)
}

/// Serves the window in main RAM and sends it back over the UART.
pub fn serve(service: impl FnOnce(&mut [u8])) -> Outcome {
    write_register(csr::TIMER0_EN, 0);
    write_register(csr::TIMER0_LOAD, u32::MAX);
    write_register(csr::TIMER0_RELOAD, u32::MAX);
    write_register(csr::TIMER0_EN, 1);
    // SAFETY: main RAM is the window's alone: memory.x (build.rs) gives the linker only the
    // ROM and the SRAM, so no code, data or stack lies there, and this runs once.
    let memory = unsafe {
        core::slice::from_raw_parts_mut(csr::MAIN_RAM_BASE as *mut u8, csr::MAIN_RAM_SIZE)
    };
    let len = match WindowHeader::read_from_prefix(memory) {
        Ok((header, _)) => header.window_len.get() as usize,
        Err(_) => 0,
    };
    let Some(window) = memory.get_mut(..len) else {
        return Outcome::TooLarge;
    };
    service(window);
    for (index, line) in window.chunks(32).enumerate() {
        uart::write(b"W ");
        uart::hex(&((index * 32) as u32).to_be_bytes());
        uart::write(b" ");
        uart::hex(line);
        uart::write(b"\n");
    }
    Outcome::Served
}

/// Polls of the UART's `txempty` before ending the simulation: far more than its FIFO takes
/// to drain.
const DRAIN_POLLS: u32 = 100_000;

/// Sends the stack figure and the outcome, then ends the simulation.
pub fn finish(outcome: Outcome, stack_used: usize) -> ! {
    uart::write(b"S ");
    uart::decimal(stack_used);
    uart::write(b"\nE ");
    uart::decimal(outcome as usize);
    uart::write(b"\n");
    // Let the UART drain before the simulation ends, within a bound: a model without the
    // `txempty` register (Renode's) reads 0 there.
    for _ in 0..DRAIN_POLLS {
        if read_register(csr::UART_TXEMPTY) != 0 {
            break;
        }
    }
    // Ends a Verilator simulation; Renode ignores it and its test stops at the `E` line.
    write_register(csr::SIM_FINISH_FINISH, 1);
    loop {
        core::hint::spin_loop();
    }
}

/// Text out through the SoC's UART, which the simulator prints on its standard output.
mod uart {
    use super::{csr, read_register, write_register};

    pub fn write(bytes: &[u8]) {
        for &byte in bytes {
            while read_register(csr::UART_TXFULL) != 0 {}
            write_register(csr::UART_RXTX, byte.into());
        }
    }

    pub fn hex(bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &byte in bytes {
            write(&[
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 15)],
            ]);
        }
    }

    pub fn decimal(n: usize) {
        let mut text = [0u8; 20];
        write(crate::decimal(n, &mut text));
    }
}
