//! The quicseal core as a kernel-safe object: a small C ABI that the kernel module's shim
//! (`targets/kernel/module/quicseal_main.c`) calls.
//!
//! - One entry point, [`quicseal_call`]: an operation number and its arguments
//!   (`enum qs_op` in `quicseal_rust.h`). The object is built with SSE2 in its baseline and
//!   carries the core's AES-NI/VAES/AVX2/AVX-512 backends, chosen at run time by CPUID, so
//!   the shim makes every call inside a kernel FPU section, on a stack of the object's own
//!   (64 KiB a CPU, 16-byte aligned as this code assumes; the fast paths go some 20 KiB
//!   deep, more than a kernel stack can spare).
//! - The shim allocates each direction's state blob (`QS_OP_{TX,RX}_STATE_SIZE/ALIGN`)
//!   inside its per-socket structure and guards it with its own lock; nothing here
//!   allocates, sleeps or takes locks, and every call handles at most one datagram or one
//!   GSO batch of at most [`MAX_SEGMENTS`] datagrams (64 KiB), so its running time is bounded.
//! - Buffers cross the boundary as arrays of `(pointer, length)` segments ([`Seg`]): the shim
//!   hands over the user's pinned, mapped pages and the kernel memory it transmits, and the
//!   core seals from one into the other in a single pass.
//! - Statuses are small integers (`QS_*` in `quicseal_rust.h`, [`status`]); the shim maps
//!   them to errnos. Structures mirror `include/uapi/linux/quicseal.h` field for field.
//! - A panic calls the shim's `quicseal_rust_panic`, which reports it loudly (WARN, taint)
//!   and never returns. The build checks whether any panic path survived optimisation.
//!
//! This crate is the only place with `unsafe`: turning the shim's raw pointers into slices.
//! Each `unsafe fn`'s contract is the shim's side of `quicseal_rust.h`.
#![no_std]

use core::fmt::Write;
use core::mem::{align_of, size_of};
use core::panic::PanicInfo;
use core::ptr::addr_of_mut;
use core::slice;

use quicseal::{
    CipherSuite, Counters, Error, FlowConfig, GsoLayout, Limits, Outcome, RxFlow, TxFlow,
};

/// Most datagrams in one GSO batch: Linux's `UDP_MAX_SEGMENTS`.
pub const MAX_SEGMENTS: usize = 128;
/// Most source or destination segments one call takes.
pub const MAX_SG: usize = 48;
/// The uapi's "none" for optional 64-bit fields.
const NONE: u64 = u64::MAX;
/// The AEAD tag every 1-RTT packet carries.
const TAG_LEN: usize = quicseal::backend::TAG_LEN;
/// The uapi's `QUICSEAL_MAX_SECRET_LEN` and `QUICSEAL_MAX_HP_KEY_LEN`. The header writes
/// these, `QUICSEAL_TAG_LEN` (16) and `QUICSEAL_MAX_DCID_LEN` (20) as literals, since C cannot
/// read the core: the assertions below stop the build when the core no longer agrees.
const MAX_SECRET_LEN: usize = 48;
const MAX_HP_KEY_LEN: usize = 32;
const _: () = {
    let mut i = 0;
    while i < CipherSuite::ALL.len() {
        assert!(CipherSuite::ALL[i].secret_len() <= MAX_SECRET_LEN);
        assert!(CipherSuite::ALL[i].key_len() <= MAX_HP_KEY_LEN);
        i += 1;
    }
    assert!(TAG_LEN == 16 && quicseal::wire::MAX_CID_LEN == 20);
};
const KEYS_GREASE_QUIC_BIT: u32 = 1;
/// `sizeof(struct quicseal_keys)` of the first layout, which always starts at generation 0.
pub const KEYS_SIZE_V1: u32 = 88;
/// `sizeof(struct quicseal_keys)` with the generation and header-protection key fields.
pub const KEYS_SIZE_V2: u32 = 136;

/// `struct quicseal_keys` (the shim always hands over the whole current layout, zero past the
/// caller's `size`).
#[repr(C)]
pub struct Keys {
    size: u32,
    suite: u16,
    dcid_len: u8,
    key_phase: u8,
    secret_len: u32,
    flags: u32,
    largest_pn: u64,
    confidentiality_limit: u64,
    integrity_limit: u64,
    secret: [u8; MAX_SECRET_LEN],
    // Since KEYS_SIZE_V2.
    generation: u64,
    hp_key_len: u32,
    reserved: u32,
    hp_key: [u8; MAX_HP_KEY_LEN],
}

const _: () = assert!(size_of::<Keys>() == KEYS_SIZE_V2 as usize);

/// `struct quicseal_counters`.
#[repr(C)]
#[derive(Default)]
pub struct CCounters {
    sealed: u64,
    opened: u64,
    passed_through: u64,
    auth_failures: u64,
    malformed: u64,
    limit_drops: u64,
    key_unavailable: u64,
    rejected: u64,
    key_updates: u64,
}

const _: () = assert!(size_of::<CCounters>() == 9 * size_of::<u64>());

impl From<Counters> for CCounters {
    fn from(counters: Counters) -> CCounters {
        // Destructured whole: a counter added to the core fails to compile here until the
        // uapi struct has it, rather than being dropped without a word.
        let Counters {
            sealed,
            opened,
            passed_through,
            auth_failures,
            malformed,
            dropped_for_limits,
            key_unavailable,
            rejected,
            key_updates,
        } = counters;
        CCounters {
            sealed,
            opened,
            passed_through,
            auth_failures,
            malformed,
            limit_drops: dropped_for_limits,
            key_unavailable,
            rejected,
            key_updates,
        }
    }
}

/// `struct quicseal_info`.
#[repr(C)]
pub struct Info {
    size: u32,
    flags: u32,
    suite: u16,
    dcid_len: u8,
    key_phase: u8,
    reserved: u32,
    generation: u64,
    largest_pn: u64,
    sealed_in_generation: u64,
    counters: CCounters,
}

const INFO_KEYS: u32 = 0x1;
const INFO_KEY_UPDATE_DUE: u32 = 0x2;
const INFO_PREVIOUS_KEYS: u32 = 0x4;
const INFO_INTEGRITY_LIMIT: u32 = 0x8;
const INFO_NEXT_KEYS: u32 = 0x20;

/// `struct quicseal_rx_info`.
#[repr(C)]
pub struct RxInfo {
    size: u32,
    status: u32,
    pn: u64,
    generation: u64,
    passthrough_len: u32,
    flags: u32,
    header_len: u32,
    payload_len: u32,
}

const RX_OPENED: u32 = 0;
const RX_PASSTHROUGH: u32 = 1;
const RX_F_KEY_UPDATE: u32 = 1;

/// One buffer segment: `len` bytes at `base` (`base` may be null when `len` is 0).
#[repr(C)]
pub struct Seg {
    base: *mut u8,
    len: usize,
}

/// What one seal call did.
#[repr(C)]
pub struct SealResult {
    /// Bytes of output (for a GSO batch: up to the end of its last datagram).
    len: usize,
    /// Datagrams in the call.
    datagrams: u32,
    /// Datagrams refused.
    failed: u32,
    /// Index of the first refused datagram.
    first_failed: u32,
    reserved: u32,
}

/// A sending direction: the flow and a scratch array for a GSO batch's outcomes, so that no
/// call needs kilobytes of kernel stack.
pub struct TxState {
    flow: TxFlow,
    results: [Outcome; MAX_SEGMENTS],
}

/// A receiving direction.
pub struct RxState {
    flow: RxFlow,
}

/// Success.
pub const QS_OK: i32 = 0;
/// The caller broke the ABI's contract (null pointer, too many segments, bad struct size).
pub const QS_EINVAL_ARGS: i32 = 100;

/// The status the shim maps to an errno: the core's own `Error::status()`, which
/// `quicseal_rust.h` lists (and `cargo xtask kernel-test` checks it does).
pub fn status(error: Error) -> i32 {
    i32::from(error.status())
}

fn quicseal_tx_state_size() -> usize {
    size_of::<TxState>()
}

fn quicseal_tx_state_align() -> usize {
    align_of::<TxState>()
}

fn quicseal_rx_state_size() -> usize {
    size_of::<RxState>()
}

fn quicseal_rx_state_align() -> usize {
    align_of::<RxState>()
}

/// One call into the object: `struct qs_call` of `quicseal_rust.h`. The shim makes every
/// call through [`quicseal_call`], on a stack of the object's own (the core's fast paths
/// keep keystream and batch state in frames of kilobytes, more than a kernel stack has to
/// spare, and the object assumes the 16-byte stack alignment of the x86_64 ABI, which
/// kernel stacks do not keep), inside a kernel FPU section.
#[repr(C)]
pub struct Call {
    op: u32,
    reserved: u32,
    ret: i64,
    args: [u64; 9],
}

// The operations, `enum qs_op` of quicseal_rust.h (`cargo xtask kernel-test` checks the two
// agree). Each takes the arguments and returns what the function of the same name says.
const OP_TX_STATE_SIZE: u32 = 0;
const OP_TX_STATE_ALIGN: u32 = 1;
const OP_RX_STATE_SIZE: u32 = 2;
const OP_RX_STATE_ALIGN: u32 = 3;
const OP_GSO_LAYOUT: u32 = 4;
const OP_TX_INIT: u32 = 5;
const OP_TX_DROP: u32 = 6;
const OP_TX_SEAL: u32 = 7;
const OP_TX_INFO: u32 = 8;
const OP_RX_INIT: u32 = 9;
const OP_RX_DROP: u32 = 10;
const OP_RX_OPEN: u32 = 11;
const OP_RX_SET_LARGEST: u32 = 12;
const OP_RX_RETIRE: u32 = 13;
const OP_RX_ADVANCE: u32 = 14;
const OP_RX_INFO: u32 = 15;
const OP_IMPLEMENTATION: u32 = 16;
const OP_RX_PREPARE_NEXT: u32 = 17;

/// Runs `call.op` with `call.args` (pointers and sizes as 64-bit integers, in the order of
/// the function of that name) and stores its result in `call.ret` (0 for functions without
/// one); an unknown operation returns `QS_EINVAL_ARGS`.
///
/// # Safety
/// `call` is valid; its arguments meet the contract of the function it names.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn quicseal_call(call: *mut Call) {
    let Some(call) = (unsafe { call.as_mut() }) else {
        return;
    };
    let [a0, a1, a2, a3, a4, a5, a6, a7, a8] = call.args;
    let (p0, p1, p2, p3) = (a0 as usize, a1 as usize, a2 as usize, a3 as usize);
    // SAFETY: the caller's contract, argument by argument.
    call.ret = unsafe {
        match call.op {
            OP_TX_STATE_SIZE => quicseal_tx_state_size() as i64,
            OP_TX_STATE_ALIGN => quicseal_tx_state_align() as i64,
            OP_RX_STATE_SIZE => quicseal_rx_state_size() as i64,
            OP_RX_STATE_ALIGN => quicseal_rx_state_align() as i64,
            OP_GSO_LAYOUT => i64::from(quicseal_gso_layout(
                p0,
                p1,
                p2 as *mut usize,
                p3 as *mut usize,
            )),
            OP_TX_INIT => i64::from(quicseal_tx_init(p0 as *mut TxState, p1 as *const Keys)),
            OP_TX_DROP => {
                quicseal_tx_drop(p0 as *mut TxState);
                0
            }
            OP_TX_SEAL => i64::from(quicseal_tx_seal(
                p0 as *mut TxState,
                p1 as *const Seg,
                p2,
                p3 as *const Seg,
                a4 as usize,
                a5 as usize,
                a6,
                a7 as usize as *mut SealResult,
                a8 as usize as *mut CCounters,
            )),
            OP_TX_INFO => {
                quicseal_tx_info(p0 as *const TxState, p1 as *mut Info);
                0
            }
            OP_RX_INIT => i64::from(quicseal_rx_init(p0 as *mut RxState, p1 as *const Keys)),
            OP_RX_DROP => {
                quicseal_rx_drop(p0 as *mut RxState);
                0
            }
            OP_RX_OPEN => i64::from(quicseal_rx_open(
                p0 as *mut RxState,
                p1 as *mut u8,
                p2,
                p3 as *mut RxInfo,
                a4 as usize as *mut usize,
                a5 as usize as *mut CCounters,
            )),
            OP_RX_SET_LARGEST => {
                quicseal_rx_set_largest(p0 as *mut RxState, a1);
                0
            }
            OP_RX_RETIRE => {
                quicseal_rx_retire(p0 as *mut RxState);
                0
            }
            OP_RX_ADVANCE => i64::from(quicseal_rx_advance(p0 as *mut RxState)),
            OP_RX_INFO => {
                quicseal_rx_info(p0 as *const RxState, p1 as *mut Info);
                0
            }
            OP_IMPLEMENTATION => quicseal_implementation(a0 as u16, p1 as *mut u8, p2) as i64,
            OP_RX_PREPARE_NEXT => i64::from(quicseal_rx_prepare_next(p0 as *mut RxState)),
            _ => i64::from(QS_EINVAL_ARGS),
        }
    };
}

/// How a direction starts: at generation 0 of its secret, or mid-connection.
struct Setup<'a> {
    suite: CipherSuite,
    secret: &'a [u8],
    /// `Some((header-protection key, generation))` to resume at a later generation.
    resume: Option<(&'a [u8], u64)>,
    config: FlowConfig,
}

impl Setup<'_> {
    fn tx(&self) -> Result<TxFlow, Error> {
        match self.resume {
            None => TxFlow::from_secret(self.suite, self.secret, self.config),
            Some((hp, generation)) => {
                TxFlow::resume(self.suite, self.secret, hp, generation, self.config)
            }
        }
    }

    fn rx(&self) -> Result<RxFlow, Error> {
        match self.resume {
            None => RxFlow::from_secret(self.suite, self.secret, self.config),
            Some((hp, generation)) => {
                RxFlow::resume(self.suite, self.secret, hp, generation, self.config)
            }
        }
    }
}

/// The flow's suite, secret, starting generation and configuration from the uapi struct.
fn flow_setup(keys: &Keys) -> Result<Setup<'_>, Error> {
    let suite = CipherSuite::from_code(keys.suite)?;
    let secret = keys
        .secret
        .get(..keys.secret_len as usize)
        .ok_or(Error::InvalidKeyLength)?;
    // The first layout has no generation: it starts at 0. With the second, a nonzero
    // hp_key_len resumes at `generation` (the header-protection key cannot be derived from a
    // later generation's secret), and the key phase must be the generation's low bit.
    let resume = match keys.size {
        KEYS_SIZE_V1 => None,
        KEYS_SIZE_V2 if keys.reserved != 0 => return Err(Error::InvalidConfig),
        KEYS_SIZE_V2 if keys.hp_key_len == 0 && keys.generation != 0 => {
            return Err(Error::InvalidKeyLength);
        }
        KEYS_SIZE_V2 if keys.hp_key_len == 0 => None,
        KEYS_SIZE_V2 => Some((
            keys.hp_key
                .get(..keys.hp_key_len as usize)
                .ok_or(Error::InvalidKeyLength)?,
            keys.generation,
        )),
        _ => return Err(Error::InvalidConfig),
    };
    let generation = resume.map_or(0, |(_, generation)| generation);
    if u64::from(keys.key_phase) != generation & 1 {
        return Err(Error::InvalidConfig);
    }
    let mut config = FlowConfig::new(usize::from(keys.dcid_len));
    config.grease_quic_bit = keys.flags & KEYS_GREASE_QUIC_BIT != 0;
    config.max_segments = MAX_SEGMENTS;
    config.largest_packet_number = (keys.largest_pn != NONE).then_some(keys.largest_pn);
    if keys.confidentiality_limit != 0 || keys.integrity_limit != 0 {
        let mut limits = Limits::for_suite(suite);
        if keys.confidentiality_limit != 0 {
            limits.confidentiality = keys.confidentiality_limit;
            limits.key_update_margin = keys.confidentiality_limit / 8;
        }
        if keys.integrity_limit != 0 {
            limits.integrity = keys.integrity_limit;
        }
        config.limits = Some(limits);
    }
    Ok(Setup {
        suite,
        secret,
        resume,
        config,
    })
}

/// Initialises a sending state in `state` (uninitialised memory of
/// `quicseal_tx_state_size()` bytes at `quicseal_tx_state_align()`).
///
/// # Safety
/// `state` points to such memory, not initialised (or already dropped); `keys` is valid.
unsafe fn quicseal_tx_init(state: *mut TxState, keys: *const Keys) -> i32 {
    let Some(keys) = (unsafe { keys.as_ref() }) else {
        return QS_EINVAL_ARGS;
    };
    if state.is_null() {
        return QS_EINVAL_ARGS;
    }
    let flow = match flow_setup(keys).and_then(|setup| setup.tx()) {
        Ok(flow) => flow,
        Err(error) => return status(error),
    };
    // Field by field: the results array is kilobytes, too large to build on the stack.
    unsafe {
        addr_of_mut!((*state).flow).write(flow);
        let results = addr_of_mut!((*state).results).cast::<Outcome>();
        for i in 0..MAX_SEGMENTS {
            results.add(i).write(Err(Error::Malformed));
        }
    }
    QS_OK
}

/// Drops (and so wipes the keys of) a sending state.
///
/// # Safety
/// `state` was initialised by `quicseal_tx_init` and is not used again.
unsafe fn quicseal_tx_drop(state: *mut TxState) {
    if !state.is_null() {
        unsafe { core::ptr::drop_in_place(state) }
    }
}

/// Initialises a receiving state; see [`quicseal_tx_init`].
///
/// # Safety
/// As for [`quicseal_tx_init`], with the rx size and alignment.
unsafe fn quicseal_rx_init(state: *mut RxState, keys: *const Keys) -> i32 {
    let Some(keys) = (unsafe { keys.as_ref() }) else {
        return QS_EINVAL_ARGS;
    };
    if state.is_null() {
        return QS_EINVAL_ARGS;
    }
    match flow_setup(keys).and_then(|setup| setup.rx()) {
        Ok(flow) => {
            unsafe { addr_of_mut!((*state).flow).write(flow) };
            QS_OK
        }
        Err(error) => status(error),
    }
}

/// Drops (and wipes) a receiving state.
///
/// # Safety
/// `state` was initialised by `quicseal_rx_init` and is not used again.
unsafe fn quicseal_rx_drop(state: *mut RxState) {
    if !state.is_null() {
        unsafe { core::ptr::drop_in_place(state) }
    }
}

/// Slices over the shim's read-only segments.
///
/// # Safety
/// `segs[..n]` are valid segments, readable for the call.
unsafe fn sources(segs: *const Seg, n: usize, out: &mut [&[u8]; MAX_SG]) -> Option<usize> {
    if n > MAX_SG || (n > 0 && segs.is_null()) {
        return None;
    }
    for (i, slot) in out.iter_mut().enumerate().take(n) {
        let seg = unsafe { &*segs.add(i) };
        *slot = match seg.len {
            0 => &[],
            _ if seg.base.is_null() => return None,
            len => unsafe { slice::from_raw_parts(seg.base, len) },
        };
    }
    Some(n)
}

/// Seals cleartext from `src` into `dst`: one datagram when `gso_size` is 0 (its full packet
/// number given in `pn`, or recovered from the header when `pn` is `u64::MAX`), otherwise a
/// GSO batch whose cleartext datagrams lie at a stride of `gso_size - 16` and come out at a
/// stride of `gso_size`. Returns `QS_OK` when every datagram was sealed; otherwise the status
/// of the first refused one (`out.first_failed`), or of the batch as a whole.
///
/// # Safety
/// `state` is initialised; `src[..nsrc]` are readable and `dst[..ndst]` writable segments
/// that do not overlap; `out` is writable.
unsafe fn quicseal_tx_seal(
    state: *mut TxState,
    src: *const Seg,
    nsrc: usize,
    dst: *const Seg,
    ndst: usize,
    gso_size: usize,
    pn: u64,
    out: *mut SealResult,
    delta: *mut CCounters,
) -> i32 {
    let (Some(state), Some(out)) = (unsafe { state.as_mut() }, unsafe { out.as_mut() }) else {
        return QS_EINVAL_ARGS;
    };
    let before = state.flow.counters();
    let status = unsafe { seal(state, src, nsrc, dst, ndst, gso_size, pn, out) };
    if let Some(delta) = unsafe { delta.as_mut() } {
        *delta = difference(state.flow.counters(), before);
    }
    status
}

/// The counters that changed between `before` and `after`, for the shim's totals.
fn difference(after: Counters, before: Counters) -> CCounters {
    let (a, b) = (CCounters::from(after), CCounters::from(before));
    CCounters {
        sealed: a.sealed - b.sealed,
        opened: a.opened - b.opened,
        passed_through: a.passed_through - b.passed_through,
        auth_failures: a.auth_failures - b.auth_failures,
        malformed: a.malformed - b.malformed,
        limit_drops: a.limit_drops - b.limit_drops,
        key_unavailable: a.key_unavailable - b.key_unavailable,
        rejected: a.rejected - b.rejected,
        key_updates: a.key_updates - b.key_updates,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn seal(
    state: &mut TxState,
    src: *const Seg,
    nsrc: usize,
    dst: *const Seg,
    ndst: usize,
    gso_size: usize,
    pn: u64,
    out: &mut SealResult,
) -> i32 {
    *out = SealResult {
        len: 0,
        datagrams: 0,
        failed: 0,
        first_failed: 0,
        reserved: 0,
    };
    let mut src_slices: [&[u8]; MAX_SG] = [&[]; MAX_SG];
    let Some(nsrc) = (unsafe { sources(src, nsrc, &mut src_slices) }) else {
        return QS_EINVAL_ARGS;
    };
    if ndst > MAX_SG || (ndst > 0 && dst.is_null()) {
        return QS_EINVAL_ARGS;
    }
    let mut dst_slices: [&mut [u8]; MAX_SG] = core::array::from_fn(|_| &mut [][..]);
    for (i, slot) in dst_slices.iter_mut().enumerate().take(ndst) {
        let seg = unsafe { &*dst.add(i) };
        if seg.len > 0 {
            if seg.base.is_null() {
                return QS_EINVAL_ARGS;
            }
            *slot = unsafe { slice::from_raw_parts_mut(seg.base, seg.len) };
        }
    }
    // `get`, not indexing: this crate's own code keeps no panic path (kernel-test lists the
    // functions that still have one).
    let (Some(src), Some(dst)) = (src_slices.get(..nsrc), dst_slices.get_mut(..ndst)) else {
        return QS_EINVAL_ARGS;
    };

    if gso_size == 0 {
        out.datagrams = 1;
        let sealed = match pn {
            NONE => state.flow.seal(src, dst),
            pn => state.flow.seal_numbered(pn, src, dst),
        };
        return match sealed {
            Ok(datagram) => {
                out.len = datagram.len;
                QS_OK
            }
            Err(error) => {
                out.failed = 1;
                status(error)
            }
        };
    }
    if pn != NONE {
        return QS_EINVAL_ARGS;
    }
    // The core refuses these too; said here, it lets the compiler drop the division check
    // of the core's segment count from this call.
    if gso_size <= TAG_LEN {
        return status(Error::GsoSizeTooSmall);
    }
    match state.flow.seal_gso(src, gso_size, dst, &mut state.results) {
        Ok(batch) => {
            out.len = batch.len;
            out.datagrams = batch.datagrams as u32;
            out.failed = batch.failed as u32;
            let first = state
                .results
                .iter()
                .take(batch.datagrams)
                .enumerate()
                .find_map(|(i, r)| r.err().map(|e| (i, e)));
            match first {
                None => QS_OK,
                Some((i, error)) => {
                    out.first_failed = i as u32;
                    status(error)
                }
            }
        }
        Err(error) => status(error),
    }
}

/// The shape of a send of `len` bytes of cleartext: `*segments` datagrams and at most
/// `*sealed_len` bytes once sealed, from the core's `GsoLayout` (`gso_size` 0: one datagram,
/// one tag). A status other than `QS_OK` says why the send cannot be sealed as asked; the
/// flow may still refuse a `gso_size` below its own minimum when it seals.
///
/// # Safety
/// `segments` and `sealed_len` are writable.
unsafe fn quicseal_gso_layout(
    len: usize,
    gso_size: usize,
    segments: *mut usize,
    sealed_len: *mut usize,
) -> i32 {
    if segments.is_null() || sealed_len.is_null() {
        return QS_EINVAL_ARGS;
    }
    let (count, sealed) = match gso_size {
        0 => (1, len.saturating_add(TAG_LEN)),
        _ => match GsoLayout::new(len, gso_size, MAX_SEGMENTS) {
            Ok(layout) => (layout.segments, layout.sealed_len),
            Err(error) => return status(error),
        },
    };
    // SAFETY: checked non-null; the caller guarantees they are writable.
    unsafe {
        segments.write(count);
        sealed_len.write(sealed);
    }
    QS_OK
}

/// Opens one datagram of `len` bytes at `data` in place. On success `out` says what it held
/// and `out_len` how long the opened datagram is: the caller trims it there (the tag's 16
/// bytes after it are left as they were). On failure no plaintext is left.
///
/// # Safety
/// `state` is initialised; `data[..len]` is writable; `out` is writable.
unsafe fn quicseal_rx_open(
    state: *mut RxState,
    data: *mut u8,
    len: usize,
    out: *mut RxInfo,
    out_len: *mut usize,
    delta: *mut CCounters,
) -> i32 {
    let (Some(state), Some(out), Some(out_len)) =
        (unsafe { state.as_mut() }, unsafe { out.as_mut() }, unsafe {
            out_len.as_mut()
        })
    else {
        return QS_EINVAL_ARGS;
    };
    let before = state.flow.counters();
    let status = unsafe { open(state, data, len, out, out_len) };
    if let Some(delta) = unsafe { delta.as_mut() } {
        *delta = difference(state.flow.counters(), before);
    }
    status
}

unsafe fn open(
    state: &mut RxState,
    data: *mut u8,
    len: usize,
    out: &mut RxInfo,
    out_len: &mut usize,
) -> i32 {
    let datagram: &mut [u8] = match (len, data.is_null()) {
        (0, _) => &mut [],
        (_, true) => return QS_EINVAL_ARGS,
        (len, false) => unsafe { slice::from_raw_parts_mut(data, len) },
    };
    match state.flow.open_in_place(datagram) {
        Ok(opened) => {
            *out_len = opened.len;
            *out = RxInfo {
                size: size_of::<RxInfo>() as u32,
                status: RX_PASSTHROUGH,
                pn: 0,
                generation: state.flow.generation(),
                passthrough_len: opened.passthrough_len as u32,
                flags: 0,
                header_len: 0,
                payload_len: 0,
            };
            if let Some(packet) = opened.packet {
                out.status = RX_OPENED;
                out.pn = packet.number;
                out.generation = packet.generation;
                out.header_len = packet.header_len as u32;
                out.payload_len = packet.payload_len as u32;
                if packet.key_update {
                    out.flags |= RX_F_KEY_UPDATE;
                }
            }
            QS_OK
        }
        Err(error) => status(error),
    }
}

/// Sets the largest packet number received (state handover, or tests).
///
/// # Safety
/// `state` is initialised.
unsafe fn quicseal_rx_set_largest(state: *mut RxState, largest: u64) {
    if let Some(state) = unsafe { state.as_mut() } {
        state
            .flow
            .set_largest_received((largest != NONE).then_some(largest));
    }
}

/// Drops the previous receive generation's keys.
///
/// # Safety
/// `state` is initialised.
unsafe fn quicseal_rx_retire(state: *mut RxState) {
    if let Some(state) = unsafe { state.as_mut() } {
        state.flow.retire_previous_keys();
    }
}

/// Moves the receiver to the next generation without a packet (restoring state).
///
/// # Safety
/// `state` is initialised.
/// Derives the next generation's receive keys if a key update has used them up, as the
/// shim does from process context after each key update, so that softirq never has to.
///
/// # Safety
/// `state` is initialised.
unsafe fn quicseal_rx_prepare_next(state: *mut RxState) -> i32 {
    match unsafe { state.as_mut() } {
        Some(state) => match state.flow.prepare_next_keys() {
            Ok(()) => QS_OK,
            Err(error) => status(error),
        },
        None => QS_EINVAL_ARGS,
    }
}

unsafe fn quicseal_rx_advance(state: *mut RxState) -> i32 {
    match unsafe { state.as_mut() } {
        Some(state) => match state.flow.advance_generation() {
            Ok(()) => QS_OK,
            Err(error) => status(error),
        },
        None => QS_EINVAL_ARGS,
    }
}

fn info_header(suite: CipherSuite, config: &FlowConfig, key_phase: bool) -> Info {
    Info {
        size: size_of::<Info>() as u32,
        flags: INFO_KEYS,
        suite: suite.code(),
        dcid_len: config.dcid_len as u8,
        key_phase: u8::from(key_phase),
        reserved: 0,
        generation: 0,
        largest_pn: NONE,
        sealed_in_generation: 0,
        counters: CCounters::default(),
    }
}

/// Fills `out` with the sending state's generation, counters and flags (no key material).
///
/// # Safety
/// `state` is initialised; `out` is writable.
unsafe fn quicseal_tx_info(state: *const TxState, out: *mut Info) {
    let (Some(state), Some(out)) = (unsafe { state.as_ref() }, unsafe { out.as_mut() }) else {
        return;
    };
    let flow = &state.flow;
    *out = info_header(flow.suite(), flow.config(), flow.key_phase());
    out.generation = flow.generation();
    out.largest_pn = flow.largest_sealed().unwrap_or(NONE);
    out.sealed_in_generation = flow.sealed_in_generation();
    out.counters = flow.counters().into();
    if flow.key_update_due() {
        out.flags |= INFO_KEY_UPDATE_DUE;
    }
    if flow.next_keys_ready() {
        out.flags |= INFO_NEXT_KEYS;
    }
}

/// Fills `out` with the receiving state's generation, counters and flags.
///
/// # Safety
/// `state` is initialised; `out` is writable.
unsafe fn quicseal_rx_info(state: *const RxState, out: *mut Info) {
    let (Some(state), Some(out)) = (unsafe { state.as_ref() }, unsafe { out.as_mut() }) else {
        return;
    };
    let flow = &state.flow;
    *out = info_header(flow.suite(), flow.config(), flow.key_phase());
    out.generation = flow.generation();
    out.largest_pn = flow.largest_received().unwrap_or(NONE);
    out.counters = flow.counters().into();
    if flow.has_previous_keys() {
        out.flags |= INFO_PREVIOUS_KEYS;
    }
    if flow.integrity_limit_reached() {
        out.flags |= INFO_INTEGRITY_LIMIT;
    }
    if flow.next_keys_ready() {
        out.flags |= INFO_NEXT_KEYS;
    }
}

/// Writes the name of the implementation that protects `suite` (the TLS code point) in keys
/// installed now, NUL-terminated, into `out` (`cap` bytes): the core's own name for it
/// (`avx512`, `avx2`, `aesni` or `portable`, [`quicseal::backend::Implementation`]).
/// Returns the name's length, or 0 (nothing written) for an unknown suite or too small a
/// buffer.
///
/// # Safety
/// `out` is writable for `cap` bytes.
unsafe fn quicseal_implementation(suite: u16, out: *mut u8, cap: usize) -> usize {
    let Ok(suite) = CipherSuite::from_code(suite) else {
        return 0;
    };
    let name = quicseal::backend::Auto::implementation(suite)
        .name()
        .as_bytes();
    if out.is_null() || cap <= name.len() {
        return 0;
    }
    // SAFETY: the caller's contract: `cap` writable bytes.
    let out = unsafe { slice::from_raw_parts_mut(out, cap) };
    for (to, from) in out.iter_mut().zip(name.iter().chain(&[0])) {
        *to = *from;
    }
    name.len()
}

unsafe extern "C" {
    /// The shim's panic report: WARNs with the message and never returns (declared returning
    /// so that the `ud2` after the call stays in the object).
    fn quicseal_rust_panic(message: *const u8, len: usize);
}

/// Formats into a fixed buffer, truncating.
struct Truncating {
    buf: [u8; 160],
    len: usize,
}

impl Write for Truncating {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // No indexing: a bounds check here would panic inside the panic handler.
        let room = self.buf.get_mut(self.len..).unwrap_or_default();
        for (to, from) in room.iter_mut().zip(s.as_bytes()) {
            *to = *from;
            self.len += 1;
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut message = Truncating {
        buf: [0; 160],
        len: 0,
    };
    let _ = write!(message, "{info}");
    // The shim's function never returns (it BUG()s); ud2 tells objtool so, since it cannot
    // see across objects.
    unsafe {
        quicseal_rust_panic(message.buf.as_ptr(), message.len);
        core::arch::asm!("ud2", options(noreturn));
    }
}
