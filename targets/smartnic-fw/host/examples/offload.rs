//! The offload model end to end, host to NIC and back: a host driver hands the NIC a
//! connection's two directions, posts GSO batches of cleartext to seal and GRO batches of
//! sealed datagrams to open, and checks every datagram that comes back against the core on
//! the host. The NIC is the SmartNIC firmware in QEMU, one run a window.
//!
//! ```sh
//! cargo xtask fw-test   # builds the firmware (and runs this example)
//! cargo run -p quicseal-nic-host --example offload -- \
//!     target/smartnic-fw/portable/riscv32imac-unknown-none-elf/release/quicseal-nic-fw
//! ```

use std::process::ExitCode;

use quicseal::backend::TAG_LEN;
use quicseal::{CipherSuite, FlowConfig, TxFlow};
use quicseal_nic_host::{Datagram, Offload, Qemu, Refused};

const DCID: [u8; 8] = [0x0b; 8];
const DATAGRAM: usize = 1350;
const BATCH: u64 = 20;

fn main() -> ExitCode {
    let Some(firmware) = std::env::args_os().nth(1) else {
        eprintln!("usage: offload FIRMWARE-ELF [QEMU-CPU]");
        return ExitCode::FAILURE;
    };
    let cpu = std::env::args().nth(2).unwrap_or_else(|| "rv32".into());
    let dir = std::env::temp_dir().join(format!("quicseal-offload-{}", std::process::id()));
    let mut failures = 0;
    for suite in CipherSuite::ALL {
        let nic = Qemu::new(&firmware, &dir).cpu(&cpu);
        match run(suite, Offload::new(nic)) {
            Ok(line) => println!("{}: {line}", suite.name()),
            Err(problem) => {
                println!("{}: FAILED: {problem}", suite.name());
                failures += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Two GSO batches sealed on the NIC, the second after a key update the host asks for by
/// flipping the key phase bit; each opened on the NIC as a GRO batch in the next window.
fn run(suite: CipherSuite, mut nic: Offload<Qemu>) -> Result<String, String> {
    let secret = vec![0x42; suite.secret_len()];
    let tx = nic
        .connection(suite, &secret, DCID.len() as u8, false)
        .map_err(|e| e.to_string())?;
    let rx = nic
        .connection(suite, &secret, DCID.len() as u8, true)
        .map_err(|e| e.to_string())?;
    let mut core: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(DCID.len()))
        .map_err(|e| e.to_string())?;
    let gso_size = DATAGRAM as u16;
    let mut waiting_to_open: Option<(Vec<Vec<u8>>, Vec<u8>)> = None;
    let mut sealed_and_opened = 0;
    for batch in 0..3 {
        let open = waiting_to_open
            .take()
            .map(|(cleartexts, sealed)| (cleartexts, nic.open(rx, &sealed, Some(gso_size))));
        let seal = (batch < 2).then(|| {
            let numbers = batch * BATCH..(batch + 1) * BATCH;
            let cleartexts: Vec<Vec<u8>> = numbers.map(|n| cleartext(n, batch == 1)).collect();
            let ticket = nic.seal(tx, &cleartexts.concat(), Some(gso_size), None);
            (cleartexts, ticket)
        });
        let results = nic.complete().map_err(|e| e.to_string())?;
        if let Some((cleartexts, ticket)) = open {
            let opened = served_all(&results[ticket])?;
            for (datagram, cleartext) in opened.iter().zip(&cleartexts) {
                if datagram.bytes != *cleartext {
                    return Err(format!("packet {} opened wrong", datagram.packet_number));
                }
            }
            sealed_and_opened += opened.len();
        }
        if let Some((cleartexts, ticket)) = seal {
            let sealed = served_all(&results[ticket])?;
            for (datagram, cleartext) in sealed.iter().zip(&cleartexts) {
                let mut expected = vec![0; cleartext.len() + TAG_LEN];
                let _ = core
                    .seal(&[cleartext], &mut [&mut expected])
                    .map_err(|e| e.to_string())?;
                if datagram.bytes != expected || datagram.generation != batch as u32 {
                    return Err(format!(
                        "packet {} sealed in generation {}: not the core's bytes",
                        datagram.packet_number, datagram.generation
                    ));
                }
            }
            let wire: Vec<u8> = sealed.iter().flat_map(|d| d.bytes.clone()).collect();
            waiting_to_open = Some((cleartexts, wire));
        }
    }
    Ok(format!(
        "{sealed_and_opened} datagrams of {DATAGRAM} B sealed (GSO batches) and opened again (GRO \
         batches) by the NIC in 3 windows, a key update between the batches: the core's bytes"
    ))
}

fn served_all(results: &[Result<Datagram, Refused>]) -> Result<Vec<Datagram>, String> {
    results
        .iter()
        .map(|result| {
            result
                .clone()
                .map_err(|Refused(status)| format!("refused: {status:#x}"))
        })
        .collect()
}

/// A 1350-byte datagram's cleartext: short header with a 2-byte packet number, payload.
fn cleartext(packet_number: u64, key_phase: bool) -> Vec<u8> {
    let mut bytes = vec![0x41 | (u8::from(key_phase) << 2)];
    bytes.extend(DCID);
    bytes.extend((packet_number as u16).to_be_bytes());
    bytes.resize(DATAGRAM - TAG_LEN, packet_number as u8);
    bytes
}
