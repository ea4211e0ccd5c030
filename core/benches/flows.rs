//! Opening packets of 1, 1 000 and 65 536 connections through one `FlowTable`, in random
//! order: what a server (or a NIC) pays per packet when the packets' key state is no longer
//! in the caches, against the same work for one connection.
//!
//! `cargo bench -p quicseal --features std --bench flows` prints the table; `-- --quick` opens
//! fewer packets; `-- --write-docs` also rewrites its section of docs/performance.md. Each
//! connection has its own secret; each round opens one packet of every connection, the
//! connections in a fresh random order, so a packet's flow was last touched a whole round
//! earlier. The packets (1350 bytes) are sealed beforehand and copied into the receive buffer
//! first, as a receiver's socket would fill it: one at a time, opened each with
//! `FlowTable::open_in_place`, and in bursts of `ROUTE_AHEAD` copied into as many buffers and
//! opened with one `FlowTable::open_each_in_place`, each with a fresh table. Each row is
//! measured twice: the table kept off transparent huge pages (`madvise(MADV_NOHUGEPAGE)`),
//! in 4 KiB pages, and advised onto them (`MADV_HUGEPAGE`), as a server with a large table
//! would allocate it: with 4 KiB pages nearly every flow's first access also misses the TLB.
//! Each row says how much of the process's memory the kernel put on huge pages.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Instant;

use quicseal::backend::Implementation;
use quicseal::wire::ConnectionId;
use quicseal::{CipherSuite, FlowConfig, FlowTable, ROUTE_AHEAD, RxFlow, TxFlow};

/// Table capacity: a power of two, as `FlowTable` requires; the same for every row.
const CAPACITY: usize = 65_536;
const FLOWS: [usize; 3] = [1, 1_000, 65_536];
const PACKET_LEN: usize = 1350;
const DCID_LEN: usize = 8;
const SUITE: CipherSuite = CipherSuite::Aes128GcmSha256;

type Table = FlowTable<RxFlow, CAPACITY>;

/// xorshift64*: deterministic shuffles without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

fn dcid(flow: usize) -> [u8; DCID_LEN] {
    (flow as u64).to_be_bytes()
}

fn secret(flow: usize) -> [u8; 32] {
    let mut secret = [0x5a; 32];
    secret[..8].copy_from_slice(&(flow as u64).to_le_bytes());
    secret
}

/// One row: opening `packets` packets spread over `flows` connections, one at a time and in
/// bursts, the table in `pages`.
struct Row {
    flows: usize,
    pages: Pages,
    packets: usize,
    one_at_a_time: Opened,
    in_bursts: Opened,
}

/// The pages the table lies in, asked for with `madvise` before anything is written to it
/// (what the kernel granted: [`Opened::huge_kib`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pages {
    /// 4 KiB pages: `MADV_NOHUGEPAGE`, whatever the kernel's default.
    Base,
    /// Transparent huge pages: `MADV_HUGEPAGE`, where the kernel allows them.
    Huge,
}

impl Pages {
    /// What the table asked for.
    fn name(self) -> &'static str {
        match self {
            Pages::Base => "4 KiB",
            Pages::Huge => "2 MiB asked",
        }
    }

    fn advice(self) -> libc::c_int {
        match self {
            Pages::Base => libc::MADV_NOHUGEPAGE,
            Pages::Huge => libc::MADV_HUGEPAGE,
        }
    }
}

/// What opening a row's packets took.
struct Opened {
    /// Nanoseconds a packet.
    ns: f64,
    /// Anonymous memory of the process on huge pages, KiB, with the table built (the table's
    /// and anything else's: the rest of the process is a few MiB).
    huge_kib: u64,
}

/// How a row's packets reach the table.
#[derive(Clone, Copy)]
enum Delivery {
    /// Each copied into the receive buffer and opened (`FlowTable::open_in_place`).
    OneAtATime,
    /// [`ROUTE_AHEAD`] at a time copied into as many receive buffers, then opened with one
    /// call (`FlowTable::open_each_in_place`), as after a `recvmmsg`.
    InBursts,
}

fn measure(flows: usize, total_packets: usize, rng: &mut Rng) -> [Row; 2] {
    let config = FlowConfig::new(DCID_LEN);
    let rounds = total_packets.div_ceil(flows);
    // The sealed packets, round by round, each round's connections shuffled.
    let mut order: Vec<usize> = (0..flows).collect();
    let mut senders: Vec<TxFlow> = (0..flows)
        .map(|f| TxFlow::from_secret(SUITE, &secret(f), config).unwrap())
        .collect();
    let mut sealed = Vec::with_capacity(rounds * flows);
    for round in 0..rounds {
        rng.shuffle(&mut order);
        for &flow in &order {
            let mut cleartext: Vec<u8> = (0..PACKET_LEN - 16).map(|i| i as u8).collect();
            cleartext[0] = 0x41;
            cleartext[1..1 + DCID_LEN].copy_from_slice(&dcid(flow));
            cleartext[1 + DCID_LEN..3 + DCID_LEN]
                .copy_from_slice(&(round as u16 + 1).to_be_bytes());
            let mut packet = vec![0u8; PACKET_LEN];
            let _ = senders[flow]
                .seal(&[&cleartext], &mut [&mut packet])
                .unwrap();
            sealed.push(packet);
        }
    }
    drop(senders);
    [Pages::Base, Pages::Huge].map(|pages| Row {
        flows,
        pages,
        packets: sealed.len(),
        one_at_a_time: open_all(flows, &sealed, Delivery::OneAtATime, pages),
        in_bursts: open_all(flows, &sealed, Delivery::InBursts, pages),
    })
}

/// Opens every packet of `sealed` through a fresh table of `flows` flows in `pages`,
/// delivered as `delivery` says.
fn open_all(flows: usize, sealed: &[Vec<u8>], delivery: Delivery, pages: Pages) -> Opened {
    let config = FlowConfig::new(DCID_LEN);
    // The table lives on the heap: 65 536 flows of key state are far too large for a stack.
    // Its memory is advised before anything is written to it.
    let mut memory = Box::<Table>::new_uninit();
    advise(&memory, pages);
    memory.write(Table::new(DCID_LEN).unwrap());
    // SAFETY: written just above.
    let mut table = unsafe { memory.assume_init() };
    for flow in 0..flows {
        let receiver = RxFlow::from_secret(SUITE, &secret(flow), config).unwrap();
        let _ = table
            .insert(ConnectionId::new(&dcid(flow)).unwrap(), receiver)
            .unwrap();
    }
    let huge_kib = anon_huge_kib();
    let mut buffers = vec![vec![0u8; PACKET_LEN]; ROUTE_AHEAD];
    let mut results = [Err(quicseal::Error::Malformed); ROUTE_AHEAD];
    let start = Instant::now();
    match delivery {
        Delivery::OneAtATime => {
            for packet in sealed {
                buffers[0].copy_from_slice(packet);
                let _ = black_box(table.open_in_place(&mut buffers[0]));
            }
        }
        Delivery::InBursts => {
            for burst in sealed.chunks(ROUTE_AHEAD) {
                let mut datagrams: Vec<&mut [u8]> = Vec::with_capacity(ROUTE_AHEAD);
                for (packet, buffer) in burst.iter().zip(&mut buffers) {
                    buffer.copy_from_slice(packet);
                    datagrams.push(buffer);
                }
                let _ = black_box(table.open_each_in_place(&mut datagrams, &mut results));
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(
        table.totals().opened,
        sealed.len() as u64,
        "every packet opened"
    );
    Opened {
        ns: elapsed.as_secs_f64() * 1e9 / sealed.len() as f64,
        huge_kib,
    }
}

/// Tells the kernel which pages to back `memory` with, from its first whole page to the
/// last (the allocation need not start or end on one).
fn advise(memory: &MaybeUninit<Table>, pages: Pages) {
    // SAFETY: sysconf reads a constant of the system.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    };
    let start = (memory.as_ptr() as usize).next_multiple_of(page);
    let end = (memory.as_ptr() as usize + size_of::<Table>()) / page * page;
    // SAFETY: the whole pages lie inside the table's allocation, which outlives the call;
    // the advice changes how they are backed, not what they hold.
    let result = unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            end.saturating_sub(start),
            pages.advice(),
        )
    };
    if result != 0 {
        eprintln!("madvise failed: {}", std::io::Error::last_os_error());
    }
}

/// The process's anonymous memory on huge pages, KiB (`/proc/self/smaps_rollup`; 0 where it
/// cannot be read).
fn anon_huge_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("AnonHugePages:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let write_docs = args.iter().any(|a| a == "--write-docs");
    let packets = if args.iter().any(|a| a == "--quick") {
        65_536
    } else {
        262_144
    };
    let table_bytes = size_of::<Table>();
    let flow_bytes = size_of::<RxFlow>();
    // Building a 65 536-flow table moves a value of this size: give it a stack that holds it.
    let rows = std::thread::Builder::new()
        .stack_size(4 * table_bytes + (64 << 20))
        .spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            FLOWS
                .iter()
                .enumerate()
                .flat_map(|(i, &flows)| {
                    eprint!("\r[{}/{}] {flows} flows   ", i + 1, FLOWS.len());
                    measure(flows, packets, &mut rng)
                })
                .collect::<Vec<Row>>()
        })
        .unwrap()
        .join()
        .unwrap();
    eprintln!();
    let mut table = format!(
        "| flows | table's pages | on huge pages MiB | packets opened | one at a time ns/packet \
         | vs one flow | in bursts of {ROUTE_AHEAD} ns/packet | vs one flow \
         |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for pages in [Pages::Base, Pages::Huge] {
        let rows: Vec<&Row> = rows.iter().filter(|row| row.pages == pages).collect();
        let (one, one_in_bursts) = (rows[0].one_at_a_time.ns, rows[0].in_bursts.ns);
        for row in rows {
            let granted = row.one_at_a_time.huge_kib.min(row.in_bursts.huge_kib);
            table += &format!(
                "| {} | {} | {} | {} | {:.0} | {:.2}x | {:.0} | {:.2}x |\n",
                row.flows,
                pages.name(),
                granted / 1024,
                row.packets,
                row.one_at_a_time.ns,
                row.one_at_a_time.ns / one,
                row.in_bursts.ns,
                row.in_bursts.ns / one_in_bursts,
            );
        }
    }
    let state = format!(
        "State per flow: {flow_bytes} bytes of `RxFlow` (current, next and previous key generations \
         and the header-protection key, as `Auto` lays them out), {} bytes per slot of a \
         {CAPACITY}-slot table with its index.",
        table_bytes / CAPACITY,
    );
    println!("{table}\n{state}");
    if write_docs {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/performance.md");
        update_docs(&path, &table, &state);
        eprintln!("wrote docs/performance.md");
    }
}

const BEGIN: &str = "<!-- BEGIN flows (written by `cargo bench -p quicseal --features std --bench flows -- --write-docs`) -->";
const END: &str = "<!-- END flows -->";

fn update_docs(path: &std::path::Path, table: &str, state: &str) {
    let section = format!(
        "{BEGIN}\n## Many connections (core)\n\n\
         Command: `cargo bench -p quicseal --features std --bench flows -- --write-docs`. \
         {SUITE_NAME}, {PACKET_LEN}-byte packets, quicseal's implementation `{}`. Each round \
         opens one packet of every connection through one `FlowTable`, the connections in a \
         fresh random order, so the larger tables' key state comes from memory rather than the \
         caches. Each row includes copying the packets into the receive buffers. *One at a \
         time*: each packet copied and opened (`FlowTable::open_in_place`); *in bursts*: \
         {ROUTE_AHEAD} packets copied into as many buffers, then opened with one call \
         (`FlowTable::open_each_in_place`), as after a `recvmmsg`, the table routing all of \
         them before it opens any. *Table's pages*: the table's memory advised, before \
         anything is written to it, off transparent huge pages (`madvise(MADV_NOHUGEPAGE)`, \
         4 KiB pages) or onto them (`MADV_HUGEPAGE`, 2 MiB where the kernel grants them: the \
         next column, the process's `AnonHugePages` with the table built); *vs one flow* \
         compares with the one-flow row of the same pages.\n\n\
         {table}\n{state}\n{END}",
        Implementation::selected().for_suite(SUITE).name()
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance\n".into());
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) => format!("{}{section}{}", &old[..b], &old[e + END.len()..]),
        _ => match old.find("<!-- BEGIN kernel -->") {
            Some(at) => format!("{}{section}\n\n{}", &old[..at], &old[at..]),
            None => format!("{}\n{section}\n", old.trim_end()),
        },
    };
    std::fs::write(path, new).unwrap();
}

const SUITE_NAME: &str = "AES-128-GCM";
