//! A LiteX SoC with a VexRiscv core, in RTL simulation (docs/smartnic-fw.md, "LiteX"). The
//! window lies at the start of the SoC's main RAM, where the gateware's initial memory image
//! puts it; its header says how long it is. After serving it the firmware sends the window
//! back over the UART as text, with its stack figure and outcome, and ends the simulation:
//!
//! ```text
//! W <offset> <bytes>     the window, 32 bytes a line, offset and bytes in hex
//! S <bytes>              the stack's high-water mark, in decimal
//! E <code>               the outcome: 0 served, 2 too large, 101 panicked, 102 a CPU trap
//! ```
//!
//! Costs are clock cycles of the SoC's `timer0`, counted by the RTL: cycles of this core
//! with these memories.
//!
//! The network port is the SoC's LiteEth MAC ([`NetworkPort`]), its transmit side wired to
//! its receive side (targets/smartnic-fw/litex/quicseal_nic_soc.py).

use quicseal_nic::Port;
use quicseal_nic_abi::{MAX_FRAME, WindowHeader};
use zerocopy::FromBytes;

use crate::Outcome;

/// The SoC's registers and memory regions, from its `csr.csv` (build.rs).
#[allow(dead_code, reason = "a constant for every register the SoC has, used or not")]
mod csr {
    include!(concat!(env!("OUT_DIR"), "/litex_csr.rs"));
}

/// A word of the SoC's device memory: a CSR, or a word of the MAC's slot memory. Only
/// [`Register::at`], whose caller vouches for the address, makes one, so reading and
/// writing one is sound.
#[derive(Clone, Copy)]
struct Register(usize);

impl Register {
    /// # Safety
    /// `address` is a CSR of the SoC (from csr.csv) or a word-aligned address inside the
    /// MAC's slot memory: device memory, which nothing in Rust's model owns.
    const unsafe fn at(address: usize) -> Register {
        Register(address)
    }

    fn write(self, value: u32) {
        // SAFETY: device memory, by `at`'s contract.
        unsafe { (self.0 as *mut u32).write_volatile(value) }
    }

    fn read(self) -> u32 {
        // SAFETY: as in `write`.
        unsafe { (self.0 as *const u32).read_volatile() }
    }
}

/// The CSRs this firmware uses, by their csr.csv names.
mod reg {
    use super::{Register, csr};

    macro_rules! registers {
        ($($name:ident),* $(,)?) => {
            $(
                // SAFETY: the address of the csr.csv CSR of the same name.
                pub const $name: Register = unsafe { Register::at(csr::$name) };
            )*
        };
    }

    registers!(
        ETHMAC_SRAM_READER_LENGTH,
        ETHMAC_SRAM_READER_READY,
        ETHMAC_SRAM_READER_SLOT,
        ETHMAC_SRAM_READER_START,
        ETHMAC_SRAM_WRITER_EV_PENDING,
        ETHMAC_SRAM_WRITER_LENGTH,
        ETHMAC_SRAM_WRITER_SLOT,
        SIM_FINISH_FINISH,
        TIMER0_EN,
        TIMER0_LOAD,
        TIMER0_RELOAD,
        TIMER0_UPDATE_VALUE,
        TIMER0_VALUE,
        UART_RXTX,
        UART_TXEMPTY,
        UART_TXFULL,
    );
}

/// Word `word` of the MAC's receive (`rx`) or transmit slot `slot`: `None` past a slot's
/// [`MAC_MTU`] bytes.
fn mac_word(rx: bool, slot: usize, word: usize) -> Option<Register> {
    let (base, slots) = if rx {
        (csr::ETHMAC_RX_BASE, csr::ETHMAC_RX_SLOTS as usize)
    } else {
        (csr::ETHMAC_TX_BASE, TX_SLOTS)
    };
    (word * 4 < MAC_MTU).then(|| {
        // SAFETY: inside the slot memory: a slot below the count, and one of the slot's
        // ceil(MAC_MTU / 4) words, which lie within SLOT_SIZE.
        unsafe { Register::at(base + (slot % slots) * SLOT_SIZE + word * 4) }
    })
}

/// Clock cycles since the timer started: it counts down from 2^32 - 1 once a cycle.
pub fn counter() -> u32 {
    reg::TIMER0_UPDATE_VALUE.write(1);
    !reg::TIMER0_VALUE.read()
}

/// Serves the window in main RAM and sends it back over the UART.
pub fn serve(service: impl FnOnce(&mut [u8])) -> Outcome {
    reg::TIMER0_EN.write(0);
    reg::TIMER0_LOAD.write(u32::MAX);
    reg::TIMER0_RELOAD.write(u32::MAX);
    reg::TIMER0_EN.write(1);
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
        if reg::UART_TXEMPTY.read() != 0 {
            break;
        }
    }
    // Ends a Verilator simulation; Renode ignores it and its test stops at the `E` line.
    reg::SIM_FINISH_FINISH.write(1);
    loop {
        core::hint::spin_loop();
    }
}

/// Text out through the SoC's UART, which the simulator prints on its standard output.
mod uart {
    use super::reg;

    pub fn write(bytes: &[u8]) {
        for &byte in bytes {
            while reg::UART_TXFULL.read() != 0 {}
            reg::UART_RXTX.write(byte.into());
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

/// Polls of a MAC register before giving up on it: a slot frees, and a frame comes back,
/// within a few thousand cycles.
const MAC_POLLS: u32 = 100_000;

/// The SoC's LiteEth MAC in its Wishbone mode: frames are written into a transmit slot of
/// its memory and started by its SRAM reader; its SRAM writer puts each frame it receives
/// into a receive slot and raises an event until the firmware has read it. The preamble,
/// the padding of short frames and the frame check sequence are the gateware's.
pub struct NetworkPort {
    /// The transmit slot the next frame goes into.
    slot: usize,
}

/// How far apart the MAC's slots lie.
const SLOT_SIZE: usize = csr::ETHMAC_SLOT_SIZE as usize;
const TX_SLOTS: usize = csr::ETHMAC_TX_SLOTS as usize;
/// The bytes a slot holds: LiteEth's `eth_mtu`, which is not in csr.csv (its slots are
/// `ceil(eth_mtu / 4)` words; the receive side drops longer frames).
const MAC_MTU: usize = 1530;
const _: () = assert!(MAX_FRAME <= MAC_MTU && MAC_MTU <= SLOT_SIZE);

impl NetworkPort {
    pub const fn new() -> NetworkPort {
        NetworkPort { slot: 0 }
    }
}

/// Polls `done` until it holds, at most [`MAC_POLLS`] times.
fn within_polls(mut done: impl FnMut() -> bool) -> bool {
    (0..MAC_POLLS).any(|_| done())
}

impl Port for NetworkPort {
    fn transmit(&mut self, header: &[u8], payload: &[u8]) -> bool {
        let len = header.len() + payload.len();
        if len > MAX_FRAME
            || !within_polls(|| reg::ETHMAC_SRAM_READER_READY.read() != 0)
        {
            return false;
        }
        // The slot memory takes whole words; the CPU is little-endian, as the MAC was built.
        let byte = |i: usize| match i.checked_sub(header.len()) {
            None => header[i],
            Some(at) => payload.get(at).copied().unwrap_or(0),
        };
        for word in 0..len.div_ceil(4) {
            let at = word * 4;
            let bytes = [byte(at), byte(at + 1), byte(at + 2), byte(at + 3)];
            if let Some(register) = mac_word(false, self.slot, word) {
                register.write(u32::from_le_bytes(bytes));
            }
        }
        reg::ETHMAC_SRAM_READER_SLOT.write(self.slot as u32);
        reg::ETHMAC_SRAM_READER_LENGTH.write(len as u32);
        reg::ETHMAC_SRAM_READER_START.write(1);
        self.slot = (self.slot + 1) % TX_SLOTS;
        // The wire loops back: wait until the frame is in a receive slot, so that the engine,
        // which takes what arrived right after each frame it sends, finds it there. A frame
        // that never comes (the MAC refused it) leaves nothing to take.
        within_polls(|| self.waiting());
        true
    }

    fn waiting(&mut self) -> bool {
        reg::ETHMAC_SRAM_WRITER_EV_PENDING.read() & 1 != 0
    }

    fn receive(&mut self, into: &mut [u8]) -> Option<usize> {
        if !self.waiting() {
            return None;
        }
        let slot = reg::ETHMAC_SRAM_WRITER_SLOT.read() as usize;
        let len = reg::ETHMAC_SRAM_WRITER_LENGTH.read() as usize;
        let copied = len.min(into.len()).min(MAC_MTU);
        for (word, chunk) in into[..copied].chunks_mut(4).enumerate() {
            let bytes = mac_word(true, slot, word).map_or(0, Register::read).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        // Acknowledging the event frees the slot for the next frame.
        reg::ETHMAC_SRAM_WRITER_EV_PENDING.write(1);
        Some(len)
    }
}
