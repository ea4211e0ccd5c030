//! The SmartNIC firmware's test jobs, whichever simulator runs them (`fw-test` in QEMU,
//! `fpga-test` on the LiteX SoC): windows (quicseal_nic_abi) built from the vector files, of
//! bad descriptors, and for the figures, each with what its completions must say; and the
//! judging of a window the firmware served: it must equal the host engine's serving of the
//! same window (`quicseal_nic::Nic`, costs aside), and every check must hold.

use std::path::Path;

use quicseal::Error;
use quicseal_nic::{Loopback, Nic};
use quicseal_nic_abi::host::{
    Address, Capacity, WindowBuilder, completions, frame_header as frame_header_between,
};
use quicseal_nic_abi::{
    Completion, CompletionFlags, ContextFlags, Descriptor, DescriptorFlags, FRAME_HEADER_LEN,
    KeyContext, Opcode, Region, Status,
};
use serde_json::Value;

use crate::kernel::{resume_keys, unhex};
use crate::vectors;

/// Every job a firmware run serves: one per vector file with packets, the bad
/// descriptors, and one per suite for the figures.
pub fn all(root: &Path) -> crate::Result<Vec<Job>> {
    let mut jobs = vector_jobs(&root.join("vectors"))?;
    jobs.push(bad_descriptors());
    jobs.extend(figure_jobs()?);
    jobs.extend(port_jobs()?);
    Ok(jobs)
}

/// What a served window came to: how many checks were made and what failed.
pub struct Verdict {
    pub checks: usize,
    pub problems: Vec<String>,
    /// The window's completions.
    pub done: Vec<Completion>,
}

/// Judges the window the firmware served for `job`.
pub fn judge(job: &Job, served: &[u8]) -> Verdict {
    let mut problems = Vec::new();
    let mut host = job.window.clone();
    Nic::new().service(&mut host, || 0, &mut Loopback::new());
    if without_costs(served) != host {
        problems.push("the simulator's window differs from the host engine's".to_string());
    }
    let done = match completions(served) {
        Some((_, done)) => done,
        None => {
            problems.push("no window header came back".to_string());
            Vec::new()
        }
    };
    for check in &job.checks {
        if let Err(problem) = verify(check, &done, served) {
            problems.push(format!("{}: {problem}", check.what));
        }
    }
    Verdict {
        checks: job.checks.len() + 1,
        problems,
        done,
    }
}

/// A window to serve and what its completions must say.
pub struct Job {
    pub name: String,
    pub window: Vec<u8>,
    checks: Vec<Check>,
}

impl Job {
    /// The checks that expect a refusal: `(what, cookie, status)`.
    pub fn refusals(&self) -> impl Iterator<Item = (&str, u32, u8)> {
        self.checks.iter().filter_map(|check| match check.expect {
            Expect::Refused(status) => Some((check.what.as_str(), check.cookie, status)),
            _ => None,
        })
    }
}

/// What the completion(s) with a cookie must show.
struct Check {
    cookie: u32,
    what: String,
    expect: Expect,
}

enum Expect {
    /// Sealed datagrams: each completion's output bytes, packet number and generation.
    Sealed(Vec<Datagram>),
    /// Opened datagrams: likewise, the cleartext in place.
    Opened(Vec<Datagram>),
    /// One completion with this status.
    Refused(u8),
    /// A frame from the port handed over unopened: it ends with these bytes (the datagram
    /// as sealed) behind its frame header.
    Passed(Vec<u8>),
}

/// One datagram's expected output.
struct Datagram {
    bytes: Vec<u8>,
    packet_number: u64,
    generation: u32,
}

/// The window with every completion's cost zeroed: the host engine counts none.
fn without_costs(window: &[u8]) -> Vec<u8> {
    let mut window = window.to_vec();
    let Some((header, done)) = completions(&window) else {
        return window;
    };
    let ring = header.completions;
    for index in 0..done.len() as u32 {
        let slot = (ring.consumer.get().wrapping_add(index) % ring.entries.get()) as usize;
        let at = ring.offset.get() as usize
            + slot * size_of::<Completion>()
            + std::mem::offset_of!(Completion, cost);
        window[at..at + 4].fill(0);
    }
    window
}

fn verify(check: &Check, done: &[Completion], window: &[u8]) -> Result<(), String> {
    let mine: Vec<&Completion> = done
        .iter()
        .filter(|c| c.cookie.get() == check.cookie)
        .collect();
    let datagrams = match &check.expect {
        Expect::Refused(status) => {
            return match mine.as_slice() {
                [only] if only.status == *status => Ok(()),
                _ => Err(format!(
                    "expected one completion with status {status:#x}, got {mine:?}"
                )),
            };
        }
        Expect::Passed(datagram) => {
            return match mine.as_slice() {
                [only]
                    if only.status == Status::OK
                        && only.flags & CompletionFlags::PASSED != 0
                        && only.len.get() as usize == FRAME_HEADER_LEN + datagram.len() =>
                {
                    let at = only.offset.get() as usize + FRAME_HEADER_LEN;
                    if window.get(at..at + datagram.len()) == Some(datagram.as_slice()) {
                        Ok(())
                    } else {
                        Err("the frame handed over is not the one sent".into())
                    }
                }
                _ => Err(format!("expected one passed frame, got {mine:?}")),
            };
        }
        Expect::Sealed(datagrams) | Expect::Opened(datagrams) => datagrams,
    };
    if mine.len() != datagrams.len() {
        return Err(format!(
            "{} completions for {} datagrams",
            mine.len(),
            datagrams.len()
        ));
    }
    for (index, (completion, expected)) in mine.iter().zip(datagrams).enumerate() {
        if completion.status != Status::OK {
            return Err(format!("datagram {index}: status {:#x}", completion.status));
        }
        let at = completion.offset.get() as usize;
        let output = window.get(at..at + completion.len.get() as usize);
        if output != Some(expected.bytes.as_slice()) {
            return Err(format!("datagram {index}: wrong bytes"));
        }
        if (completion.packet_number.get(), completion.generation.get())
            != (expected.packet_number, expected.generation)
        {
            return Err(format!(
                "datagram {index}: packet {} generation {}, expected {} and {}",
                completion.packet_number.get(),
                completion.generation.get(),
                expected.packet_number,
                expected.generation
            ));
        }
    }
    Ok(())
}

/// The size of datagram the figures are for.
pub const FIGURE_SIZE: usize = 1350;

/// A figure or port job's measured costs: `(suite, operation, cost)` of its 1350-byte
/// datagrams, in the platform counter's unit; the operations are "seal" and "open", and
/// through the port "seal and send to the port" and "take from the port and open".
pub fn measured<'a>(job: &'a Job, done: &[Completion]) -> Vec<(&'a str, &'static str, u32)> {
    let (suite, cookies) = if let Some(suite) = job.name.strip_prefix("figures-") {
        (suite, [(MEASURED_SEAL, "seal"), (MEASURED_OPEN, "open")])
    } else if let Some(suite) = job.name.strip_prefix(PORT_JOB) {
        let operations = [
            (PORT_MEASURED_SEAL, "seal and send to the port"),
            (PORT_MEASURED_OPEN, "take from the port and open"),
        ];
        (suite, operations)
    } else {
        return Vec::new();
    };
    cookies
        .into_iter()
        .filter_map(|(cookie, operation)| {
            let completion = done
                .iter()
                .find(|c| c.cookie.get() == cookie && c.status == Status::OK)?;
            Some((suite, operation, completion.cost.get()))
        })
        .collect()
}

/// A figure's line: `build: suite 1350 B seal: cost unit, per byte`.
pub fn figure_line(build: &str, suite: &str, operation: &str, cost: u32, unit: &str) -> String {
    format!(
        "{build}: {suite} {FIGURE_SIZE} B {operation}: {cost} {unit}, {:.1} per byte",
        f64::from(cost) / FIGURE_SIZE as f64
    )
}

/// Cookies of a figure job's measured descriptors.
const MEASURED_SEAL: u32 = 2;
const MEASURED_OPEN: u32 = 4;

/// Name prefix of the port jobs.
pub const PORT_JOB: &str = "port-";

/// Cookies of a port job's measured descriptors: a 1350-byte datagram sealed and sent, and
/// the buffer it came back into, taken from the port and opened.
const PORT_MEASURED_SEAL: u32 = 2;
const PORT_MEASURED_OPEN: u32 = 101;

/// 02:00:00:00:00:01 to 02:00:00:00:00:02, 192.0.2.1:4433 to 192.0.2.2:443.
fn frame_header() -> Vec<u8> {
    frame_header_between(Address::example(1, 4433), Address::example(2, 443)).to_vec()
}

/// A port job's seal descriptor: cookie, packet numbers, key phase, destination connection ID.
type PortSeal = (u32, &'static [u16], bool, [u8; 8]);

/// Per suite, a window whose datagrams are sealed to the port and come back to be opened
/// into posted buffers: two single datagrams (the second measured), a GSO batch of three, one
/// that updates the keys, one to a connection ID no receive context has (handed over
/// unopened), and a frame header that is not IPv4 (refused before sealing). On the LiteX
/// SoC the frames go through its MAC; in QEMU and on the host through a software loop; all
/// must leave the same window.
fn port_jobs() -> crate::Result<Vec<Job>> {
    use quicseal::{CipherSuite, FlowConfig, TxFlow};
    const DCID: [u8; 8] = *b"nic-port";
    let mut jobs = Vec::new();
    for suite in CipherSuite::ALL {
        let secret = vec![0x6e; suite.secret_len()];
        let (secret, header_key) = resume_keys(suite.code(), &secret, 0);
        let mut window = WindowBuilder::new(Capacity {
            contexts: 2,
            tx: 8,
            rx: 1,
            completions: 32,
            port: 8,
        });
        let tx = window.context(key_context(
            suite.code(),
            DCID.len() as u8,
            0,
            0,
            false,
            &secret,
            &header_key,
        ));
        let mut receiving = key_context(
            suite.code(),
            DCID.len() as u8,
            0,
            0,
            true,
            &secret,
            &header_key,
        );
        receiving.connection_id[..DCID.len()].copy_from_slice(&DCID);
        window.context(receiving);
        let mut host: TxFlow =
            TxFlow::resume(suite, &secret, &header_key, 0, FlowConfig::new(DCID.len()))
                .map_err(|e| e.to_string())?;
        // (cookie, packet numbers: several make a GSO batch, key phase, destination
        // connection ID)
        let descriptors: [PortSeal; 5] = [
            (1, &[1], false, DCID),
            (PORT_MEASURED_SEAL, &[2], false, DCID),
            (3, &[3, 4, 5], false, DCID),
            (4, &[6], true, DCID),
            (5, &[7], true, *b"stranger"),
        ];
        let mut checks = Vec::new();
        let mut buffer_cookie = 100;
        for (cookie, numbers, phase, dcid) in descriptors {
            let mut source = frame_header();
            let mut sealed = Vec::new();
            for &number in numbers {
                let mut cleartext = vec![0x41 | if phase { 0x04 } else { 0 }];
                cleartext.extend(dcid);
                cleartext.extend(number.to_be_bytes());
                cleartext.resize(FIGURE_SIZE - 16, number as u8);
                let mut bytes = vec![0; FIGURE_SIZE];
                let datagram = host
                    .seal(&[&cleartext], &mut [&mut bytes])
                    .map_err(|e| e.to_string())?;
                let generation = datagram.packet.map_or(0, |p| p.generation as u32);
                let expect = |bytes: Vec<u8>| Datagram {
                    bytes,
                    packet_number: number.into(),
                    generation,
                };
                source.extend_from_slice(&cleartext);
                let room = window.room(FRAME_HEADER_LEN + FIGURE_SIZE);
                window.post(room, buffer_cookie);
                if dcid == DCID {
                    checks.push(Check {
                        cookie: buffer_cookie,
                        what: format!("packet {number} back from the port, opened"),
                        expect: Expect::Opened(vec![expect(cleartext)]),
                    });
                } else {
                    checks.push(Check {
                        cookie: buffer_cookie,
                        what: format!("packet {number} back from the port, for no context"),
                        expect: Expect::Passed(bytes.clone()),
                    });
                }
                buffer_cookie += 1;
                sealed.push(expect(bytes));
            }
            let src = window.buffer(&source);
            let dst = window.room(FIGURE_SIZE * numbers.len());
            window.transmit(Descriptor {
                flags: DescriptorFlags::TO_PORT,
                gso_size: if numbers.len() > 1 {
                    FIGURE_SIZE as u16
                } else {
                    0
                }
                .into(),
                ..descriptor(Opcode::SEAL, tx, src, dst, cookie)
            });
            checks.push(Check {
                cookie,
                what: format!("packets {numbers:?} sealed and sent"),
                expect: Expect::Sealed(sealed),
            });
        }
        let mut not_ipv4 = frame_header();
        not_ipv4[12] = 0x86;
        not_ipv4.extend_from_slice(&[0x41; 64]);
        let src = window.buffer(&not_ipv4);
        let dst = window.room(128);
        window.transmit(Descriptor {
            flags: DescriptorFlags::TO_PORT,
            ..descriptor(Opcode::SEAL, tx, src, dst, 6)
        });
        checks.push(Check {
            cookie: 6,
            what: "a frame header that is not IPv4".into(),
            expect: Expect::Refused(Status::BAD_FRAME),
        });
        jobs.push(Job {
            name: format!("{PORT_JOB}{}", suite.name()),
            window: window.build(),
            checks,
        });
    }
    Ok(jobs)
}

/// Per suite, a window whose contexts first serve one datagram each (building the flow:
/// key derivation), then the measured one: a 1350-byte datagram sealed, and one opened
/// (sealed here by the core on the host).
fn figure_jobs() -> crate::Result<Vec<Job>> {
    use quicseal::{CipherSuite, FlowConfig, TxFlow};
    let mut jobs = Vec::new();
    for suite in CipherSuite::ALL {
        let secret = vec![0x3c; suite.secret_len()];
        let (secret, header_key) = resume_keys(suite.code(), &secret, 0);
        let dcid_len = 8;
        let mut window = WindowBuilder::new(Capacity {
            contexts: 2,
            tx: 2,
            rx: 2,
            completions: 4,
            port: 0,
        });
        let tx = window.context(key_context(
            suite.code(),
            dcid_len,
            0,
            0,
            false,
            &secret,
            &header_key,
        ));
        let rx = window.context(key_context(
            suite.code(),
            dcid_len,
            0,
            0,
            true,
            &secret,
            &header_key,
        ));
        let mut host: TxFlow = TxFlow::resume(
            suite,
            &secret,
            &header_key,
            0,
            FlowConfig::new(dcid_len.into()),
        )
        .map_err(|e| e.to_string())?;
        let mut checks = Vec::new();
        for (number, cookie) in [(1u16, MEASURED_SEAL - 1), (2, MEASURED_SEAL)] {
            let mut cleartext = vec![0x41];
            cleartext.extend([0xd5; 8]);
            cleartext.extend(number.to_be_bytes());
            cleartext.resize(FIGURE_SIZE - 16, 0x77);
            let mut sealed = vec![0; FIGURE_SIZE];
            let _ = host
                .seal(&[&cleartext], &mut [&mut sealed])
                .map_err(|e| e.to_string())?;
            let src = window.buffer(&cleartext);
            let dst = window.room(FIGURE_SIZE);
            window.transmit(descriptor(Opcode::SEAL, tx, src, dst, cookie));
            let packet = |bytes: Vec<u8>| Datagram {
                bytes,
                packet_number: number.into(),
                generation: 0,
            };
            checks.push(Check {
                cookie,
                what: format!("packet {number} sealed"),
                expect: Expect::Sealed(vec![packet(sealed.clone())]),
            });
            let src = window.buffer(&sealed);
            let cookie = cookie + MEASURED_OPEN - MEASURED_SEAL;
            window.receive(descriptor(Opcode::OPEN, rx, src, Region::default(), cookie));
            checks.push(Check {
                cookie,
                what: format!("packet {number} opened"),
                expect: Expect::Opened(vec![packet(cleartext)]),
            });
        }
        let name = format!("figures-{}", suite.name());
        jobs.push(Job {
            name,
            window: window.build(),
            checks,
        });
    }
    Ok(jobs)
}

/// One job per vector file with packets: a transmit context sealing every packet (one GSO
/// descriptor for a GSO flow, one descriptor a packet with its full packet number
/// otherwise), a receive context opening them (one GRO descriptor, or one a packet), and a
/// fresh receive context per negative.
pub fn vector_jobs(dir: &Path) -> crate::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for file in vectors::files(dir)? {
        let job = vector_job(file.name, &file.json)
            .map_err(|e| format!("{}: {e}", file.path.display()))?;
        jobs.extend(job);
    }
    Ok(jobs)
}

fn vector_job(name: String, json: &Value) -> crate::Result<Option<Job>> {
    let packets = json["packets"].as_array().map_or(&[][..], Vec::as_slice);
    if packets.is_empty() {
        return Ok(None);
    }
    let field = |v: &Value, key: &str| unhex(v[key].as_str().unwrap_or(""));
    let number = |v: &Value, key: &str| v[key].as_u64();
    let suite = vectors::suite_code(json)?;
    let secret = field(json, "secret")?;
    let dcid_len = number(json, "dcid_len").unwrap_or(0) as u8;
    let gso_size = number(json, "gso_size").map(|g| g as u16);
    let negatives = json["negative"].as_array().map_or(&[][..], Vec::as_slice);

    let records = packets.len() as u32 + negatives.len() as u32 + 2;
    let mut window = WindowBuilder::new(Capacity {
        contexts: 2 + negatives.len() as u32,
        tx: records,
        rx: records,
        completions: 2 * records,
        port: 0,
    });
    let first_pn = number(&packets[0], "pn").ok_or("packet without pn")?;
    let first_largest = number(&packets[0], "largest_received").unwrap_or(first_pn - 1);
    let context = |generation: u64, largest: u64, receive: bool| {
        let (generation_secret, header_key) = resume_keys(suite, &secret, generation);
        key_context(
            suite,
            dcid_len,
            generation,
            largest,
            receive,
            &generation_secret,
            &header_key,
        )
    };
    let tx = window.context(context(0, first_pn - 1, false));
    let rx = window.context(context(0, first_largest, true));

    let mut cleartexts = Vec::new();
    let mut sealed = Vec::new();
    let mut opened = Vec::new();
    for packet in packets {
        let cleartext = [field(packet, "header")?, field(packet, "payload")?].concat();
        let protected = field(packet, "protected")?;
        let expected = |bytes: Vec<u8>| -> crate::Result<Datagram> {
            Ok(Datagram {
                bytes,
                packet_number: number(packet, "pn").ok_or("packet without pn")?,
                generation: number(packet, "generation").unwrap_or(0) as u32,
            })
        };
        sealed.push(expected(protected)?);
        opened.push(expected(cleartext.clone())?);
        cleartexts.push(cleartext);
    }

    let mut checks = Vec::new();
    let mut cookie = 0;
    let mut next_cookie = || {
        cookie += 1;
        cookie
    };
    match gso_size {
        Some(gso_size) => {
            let src = window.buffer(&cleartexts.concat());
            let dst = window.room(sealed.iter().map(|d| d.bytes.len()).sum());
            let cookie = next_cookie();
            window.transmit(Descriptor {
                gso_size: gso_size.into(),
                ..descriptor(Opcode::SEAL, tx, src, dst, cookie)
            });
            checks.push(Check {
                cookie,
                what: "GSO batch sealed".into(),
                expect: Expect::Sealed(std::mem::take(&mut sealed)),
            });
            let batch: Vec<u8> = packets
                .iter()
                .map(|p| field(p, "protected"))
                .collect::<crate::Result<Vec<_>>>()?
                .concat();
            let src = window.buffer(&batch);
            let cookie = next_cookie();
            window.receive(Descriptor {
                gso_size: gso_size.into(),
                ..descriptor(Opcode::OPEN, rx, src, Region::default(), cookie)
            });
            checks.push(Check {
                cookie,
                what: "GRO batch opened".into(),
                expect: Expect::Opened(std::mem::take(&mut opened)),
            });
        }
        None => {
            for (index, (cleartext, expected)) in
                cleartexts.iter().zip(sealed.drain(..)).enumerate()
            {
                let src = window.buffer(cleartext);
                let dst = window.room(expected.bytes.len());
                let cookie = next_cookie();
                window.transmit(Descriptor {
                    flags: DescriptorFlags::PACKET_NUMBER,
                    packet_number: expected.packet_number.into(),
                    ..descriptor(Opcode::SEAL, tx, src, dst, cookie)
                });
                checks.push(Check {
                    cookie,
                    what: format!("packet {index} sealed"),
                    expect: Expect::Sealed(vec![expected]),
                });
            }
            for (index, (packet, expected)) in packets.iter().zip(opened.drain(..)).enumerate() {
                let src = window.buffer(&field(packet, "protected")?);
                let cookie = next_cookie();
                // Where the vector says what the receiver had seen (a jump, a reordered
                // packet), the host tells the firmware too.
                let mut open = descriptor(Opcode::OPEN, rx, src, Region::default(), cookie);
                if let Some(largest) = number(packet, "largest_received") {
                    open.flags = DescriptorFlags::LARGEST_RECEIVED;
                    open.packet_number = largest.into();
                }
                window.receive(open);
                checks.push(Check {
                    cookie,
                    what: format!("packet {index} opened"),
                    expect: Expect::Opened(vec![expected]),
                });
            }
        }
    }
    for (index, negative) in negatives.iter().enumerate() {
        let generation = number(negative, "generation").unwrap_or(0);
        let largest = number(negative, "largest_received").unwrap_or(0);
        let expect = negative["expect"].as_str().unwrap_or("");
        let status = Error::ALL
            .into_iter()
            .find(|e| e.code() == expect)
            .ok_or_else(|| format!("negative {index}: unknown failure {expect:?}"))?
            .status();
        let context = window.context(context(generation, largest, true));
        let src = window.buffer(&field(negative, "protected")?);
        let cookie = next_cookie();
        window.receive(descriptor(
            Opcode::OPEN,
            context,
            src,
            Region::default(),
            cookie,
        ));
        checks.push(Check {
            cookie,
            what: format!("negative {index} ({expect})"),
            expect: Expect::Refused(status),
        });
    }
    Ok(Some(Job {
        name,
        window: window.build(),
        checks,
    }))
}

pub const BAD_DESCRIPTORS: &str = "bad-descriptors";

/// A window of descriptors the firmware must refuse, each for one reason, between good
/// ones that must still be served.
pub fn bad_descriptors() -> Job {
    let suite = 0x1303;
    let secret = [0x5a; 32];
    let (secret, header_key) = resume_keys(suite, &secret, 0);
    let mut window = WindowBuilder::new(Capacity {
        contexts: 2,
        tx: 16,
        rx: 16,
        completions: 32,
        port: 0,
    });
    let tx = window.context(key_context(suite, 0, 0, 0, false, &secret, &header_key));
    let rx = window.context(key_context(suite, 0, 0, 0, true, &secret, &header_key));
    let packet = [0x40, 0x01, 1, 2, 3, 4, 5, 6, 7, 8];
    let src = window.buffer(&packet);
    let dst = window.room(packet.len() + 16);
    let outside = Region {
        offset: 4.into(),
        len: 16.into(),
    };
    let overlapping = Region {
        offset: src.offset,
        len: dst.len,
    };
    let seal = |cookie| descriptor(Opcode::SEAL, tx, src, dst, cookie);
    let open = |cookie| descriptor(Opcode::OPEN, rx, dst, Region::default(), cookie);
    let refusals = [
        (
            Descriptor {
                opcode: Opcode::OPEN,
                ..seal(1)
            },
            Status::BAD_OPCODE,
            "opcode of the other ring",
        ),
        (
            Descriptor {
                context: 7.into(),
                ..seal(2)
            },
            Status::BAD_CONTEXT,
            "context outside the table",
        ),
        (
            Descriptor {
                context: rx.into(),
                ..seal(3)
            },
            Status::BAD_CONTEXT,
            "receive context on the transmit ring",
        ),
        (
            Descriptor {
                src: outside,
                ..seal(4)
            },
            Status::BAD_BUFFER,
            "source outside the buffer area",
        ),
        (
            Descriptor {
                dst: overlapping,
                ..seal(5)
            },
            Status::BAD_BUFFER,
            "source and destination overlapping",
        ),
        (
            Descriptor {
                reserved: 1.into(),
                ..seal(6)
            },
            Status::BAD_RESERVED,
            "reserved field set",
        ),
        (
            Descriptor {
                gso_size: 8.into(),
                ..seal(7)
            },
            Error::GsoSizeTooSmall.status(),
            "GSO size below a header and tag",
        ),
    ];
    let mut checks = Vec::new();
    for (descriptor, status, what) in refusals {
        checks.push(Check {
            cookie: descriptor.cookie.get(),
            what: what.into(),
            expect: Expect::Refused(status),
        });
        window.transmit(descriptor);
    }
    // After all of them, a good seal, and opening what it wrote.
    window.transmit(seal(20));
    window.receive(Descriptor { dst, ..open(21) });
    checks.push(Check {
        cookie: 21,
        what: "open with a destination".into(),
        expect: Expect::Refused(Status::BAD_RESERVED),
    });
    window.receive(open(22));
    checks.push(Check {
        cookie: 22,
        what: "the good packet, sealed and opened after the refusals".into(),
        expect: Expect::Opened(vec![Datagram {
            bytes: packet.to_vec(),
            packet_number: 1,
            generation: 0,
        }]),
    });
    Job {
        name: BAD_DESCRIPTORS.into(),
        window: window.build(),
        checks,
    }
}

fn descriptor(opcode: u8, context: u16, src: Region, dst: Region, cookie: u32) -> Descriptor {
    Descriptor {
        opcode,
        context: context.into(),
        src,
        dst,
        cookie: cookie.into(),
        ..Descriptor::default()
    }
}

fn key_context(
    suite: u16,
    dcid_len: u8,
    generation: u64,
    largest: u64,
    receive: bool,
    secret: &[u8],
    header_key: &[u8],
) -> KeyContext {
    let context = KeyContext::new(
        suite,
        receive,
        dcid_len,
        generation as u32,
        secret,
        header_key,
    );
    KeyContext {
        flags: context.flags | ContextFlags::LARGEST_KNOWN,
        largest_packet_number: largest.into(),
        ..context
    }
}
