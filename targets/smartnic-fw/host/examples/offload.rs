//! The offload model end to end, host to NIC and back: a host driver hands the NIC a
//! connection's two directions, posts GSO batches of cleartext to seal and GRO batches of
//! sealed datagrams to open through the engine seam (`quicseal::engine`), and checks every
//! datagram that comes back, its bytes and its outcome, against the same traffic through the
//! seam on the host's CPU (`Inline`). The NIC is the SmartNIC firmware in QEMU, one run a
//! window.
//!
//! ```sh
//! cargo xtask fw-test   # builds the firmware (and runs this example)
//! cargo run -p quicseal-nic-host --example offload -- \
//!     target/smartnic-fw/portable/riscv32imac-unknown-none-elf/release/quicseal-nic-fw
//! ```

use std::process::ExitCode;

use quicseal::backend::TAG_LEN;
use quicseal::engine::{Engine, Inline, JobBatch, Open, Seal};
use quicseal::{CipherSuite, FlowConfig, Outcome, RxFlow, TxFlow};
use quicseal_nic_host::{Offload, Qemu};

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

/// The same traffic through the engine seam on the NIC and on the CPU (`Inline`, the core on
/// the host), which must agree to the byte and the outcome.
fn run(suite: CipherSuite, mut nic: Offload<Qemu>) -> Result<String, String> {
    let secret = vec![0x42; suite.secret_len()];
    let dcid_len = DCID.len() as u8;
    let mut nic_tx = nic
        .connection(suite, &secret, dcid_len, false)
        .map_err(|e| e.to_string())?;
    let mut nic_rx = nic
        .connection(suite, &secret, dcid_len, true)
        .map_err(|e| e.to_string())?;
    let on_nic = traffic(&mut nic, &mut nic_tx, &mut nic_rx)?;
    let config = FlowConfig::new(DCID.len());
    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, config).map_err(|e| e.to_string())?;
    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, config).map_err(|e| e.to_string())?;
    let on_cpu = traffic(&mut Inline::default(), &mut tx, &mut rx)?;
    for (job, (nic, cpu)) in on_nic.iter().zip(&on_cpu).enumerate() {
        let datagrams = nic.iter().zip(cpu).enumerate();
        if let Some((i, ((nic, _), (cpu, _)))) = datagrams.clone().find(|(_, (a, b))| a != b) {
            let bytes = if nic == cpu { " (other bytes)" } else { "" };
            return Err(format!(
                "job {job}, datagram {i}: the NIC gave {nic:?}{bytes}, the CPU {cpu:?}"
            ));
        }
        if nic.len() != cpu.len() {
            return Err(format!(
                "job {job}: {} outcomes against {}",
                nic.len(),
                cpu.len()
            ));
        }
    }
    // Each datagram is in two records: sealed, then opened.
    let datagrams = on_nic.iter().map(Vec::len).sum::<usize>() / 2;
    if on_nic.iter().flatten().any(|(outcome, _)| outcome.is_err()) {
        return Err("a datagram failed on both".into());
    }
    Ok(format!(
        "{datagrams} datagrams of {DATAGRAM} B sealed (GSO batches) and opened again (GRO \
         batches) by the NIC in 3 windows through the engine seam, a key update between the \
         batches: the same bytes and outcomes as the core on the host"
    ))
}

/// What one job left: each datagram's outcome, and its bytes where it succeeded.
type Record = Vec<(Outcome, Vec<u8>)>;

/// Two GSO batches sealed, the second after a key update the host asks for by flipping the
/// key phase bit, each opened again as a GRO batch with the next batch's jobs: three batches.
fn traffic<E: Engine>(engine: &mut E, tx: &mut E::Tx, rx: &mut E::Rx) -> Result<Vec<Record>, String>
where
    E::Error: std::fmt::Display,
{
    let mut records = Vec::new();
    let mut waiting_to_open: Option<Vec<u8>> = None;
    for batch in 0..3u64 {
        let numbers = batch * BATCH..(batch + 1) * BATCH;
        let cleartext: Vec<u8> = numbers.flat_map(|n| cleartext(n, batch == 1)).collect();
        let mut wire = vec![0; cleartext.len() + BATCH as usize * TAG_LEN];
        let mut sealed = vec![Err(quicseal::Error::Malformed); BATCH as usize];
        let mut opened = vec![Err(quicseal::Error::Malformed); BATCH as usize];
        let mut datagrams = waiting_to_open.take();
        let mut jobs = engine.batch();
        if let Some(datagrams) = datagrams.as_mut() {
            let job = Open {
                datagrams,
                segment_size: DATAGRAM,
                outcomes: &mut opened,
            };
            jobs.open(rx, job).map_err(|e| e.to_string())?;
        }
        if batch < 2 {
            let job = Seal {
                cleartext: &cleartext,
                gso_size: DATAGRAM,
                wire: &mut wire,
                outcomes: &mut sealed,
            };
            jobs.seal(tx, job).map_err(|e| e.to_string())?;
        }
        jobs.complete().map_err(|e| e.to_string())?;
        if let Some(datagrams) = datagrams {
            records.push(record(&datagrams, &opened));
        }
        if batch < 2 {
            records.push(record(&wire, &sealed));
            waiting_to_open = Some(wire);
        }
    }
    Ok(records)
}

fn record(bytes: &[u8], outcomes: &[Outcome]) -> Record {
    outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| {
            let kept = outcome.map_or(Vec::new(), |datagram| {
                bytes[i * DATAGRAM..i * DATAGRAM + datagram.len].to_vec()
            });
            (*outcome, kept)
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
