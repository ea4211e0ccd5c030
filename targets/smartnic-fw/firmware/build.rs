//! Puts the platform's memory map where the linker looks (riscv-rt's link.x includes
//! `memory.x`); with defmt, links defmt.x too.
//!
//! QEMU's map is `memory-qemu.x`. The LiteX SoC's comes from the SoC itself: `LITEX_CSR_CSV`
//! names the `csr.csv` LiteX generated with the gateware, and from it this writes `memory.x`
//! (ROM for code, SRAM for data and stack) and `litex_csr.rs`, a constant per register and
//! memory region, which the firmware includes. Nothing is copied by hand from a build of the
//! SoC, so a regenerated SoC cannot disagree with its firmware.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if env::var_os("CARGO_FEATURE_LITEX").is_some() {
        println!("cargo:rerun-if-env-changed=LITEX_CSR_CSV");
        let csv = env::var_os("LITEX_CSR_CSV").map(PathBuf::from).expect(
            "the litex platform needs LITEX_CSR_CSV: the csr.csv of the SoC the firmware runs \
             on (cargo xtask fpga-test sets it)",
        );
        println!("cargo:rerun-if-changed={}", csv.display());
        let text = fs::read_to_string(&csv)
            .unwrap_or_else(|e| panic!("LITEX_CSR_CSV={}: {e}", csv.display()));
        let soc = Soc::parse(&text);
        fs::write(out.join("memory.x"), soc.memory_x()).expect("OUT_DIR is writable");
        fs::write(out.join("litex_csr.rs"), soc.constants()).expect("OUT_DIR is writable");
    } else {
        fs::copy("memory-qemu.x", out.join("memory.x")).expect("memory-qemu.x is readable");
        println!("cargo:rerun-if-changed=memory-qemu.x");
    }
    println!("cargo:rustc-link-search={}", out.display());
    // defmt's linker script keeps its interned strings in the ELF, for the decoder.
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}

/// What the firmware needs of a LiteX `csr.csv`: its registers and memory regions.
struct Soc {
    /// `(name, address)` of every `csr_register` line.
    registers: Vec<(String, u64)>,
    /// `(name, origin, size)` of every `memory_region` line.
    regions: Vec<(String, u64, u64)>,
    /// `(name, value)` of every `constant` line with a number for its value.
    constants: Vec<(String, u64)>,
}

impl Soc {
    fn parse(text: &str) -> Soc {
        let number = |field: &str| {
            let parsed = match field.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => field.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("csr.csv: {field:?} is not a number"))
        };
        let mut soc = Soc {
            registers: Vec::new(),
            regions: Vec::new(),
            constants: Vec::new(),
        };
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let fields: Vec<&str> = line.split(',').collect();
            match fields.as_slice() {
                ["csr_register", name, address, ..] => {
                    soc.registers.push((name.to_string(), number(address)));
                }
                ["memory_region", name, origin, size, ..] => {
                    soc.regions
                        .push((name.to_string(), number(origin), number(size)));
                }
                ["constant", name, value, ..] => {
                    if let Ok(value) = value.parse() {
                        soc.constants.push((name.to_string(), value));
                    }
                }
                _ => {}
            }
        }
        soc
    }

    fn region(&self, name: &str) -> (u64, u64) {
        self.regions
            .iter()
            .find(|(region, ..)| region == name)
            .map(|&(_, origin, size)| (origin, size))
            .unwrap_or_else(|| panic!("csr.csv has no memory region {name:?}"))
    }

    /// Code and constants in the ROM, data and stack in the SRAM; main RAM is left to the
    /// window.
    fn memory_x(&self) -> String {
        let (rom, rom_size) = self.region("rom");
        let (sram, sram_size) = self.region("sram");
        format!(
            "/* Written by build.rs from the SoC's csr.csv. */\n\
             MEMORY\n{{\n  ROM : ORIGIN = {rom:#x}, LENGTH = {rom_size:#x}\n  \
             SRAM : ORIGIN = {sram:#x}, LENGTH = {sram_size:#x}\n}}\n\n\
             REGION_ALIAS(\"REGION_TEXT\", ROM);\nREGION_ALIAS(\"REGION_RODATA\", ROM);\n\
             REGION_ALIAS(\"REGION_DATA\", SRAM);\nREGION_ALIAS(\"REGION_BSS\", SRAM);\n\
             REGION_ALIAS(\"REGION_HEAP\", SRAM);\nREGION_ALIAS(\"REGION_STACK\", SRAM);\n"
        )
    }

    /// A constant per register (its address), per memory region (origin and size) and per
    /// numeric constant (sizes and counts, such as the MAC's slots).
    fn constants(&self) -> String {
        let mut rust = String::from("// Written by build.rs from the SoC's csr.csv.\n");
        for (name, address) in &self.registers {
            let name = name.to_uppercase();
            let _ = writeln!(rust, "pub const {name}: usize = {address:#x};");
        }
        for (name, origin, size) in &self.regions {
            let name = name.to_uppercase();
            let _ = writeln!(rust, "pub const {name}_BASE: usize = {origin:#x};");
            let _ = writeln!(rust, "pub const {name}_SIZE: usize = {size:#x};");
        }
        for (name, value) in &self.constants {
            let name = name.to_uppercase();
            let _ = writeln!(rust, "pub const {name}: u64 = {value};");
        }
        rust
    }
}
