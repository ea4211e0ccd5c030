//! The stack's high-water mark, by painting: the free stack below the current frame is filled
//! with a pattern before the work and scanned after it.

/// Bytes painted: far more than serving a window takes (the scan says if all were used),
/// and bounded by the stack region, however small the platform's is.
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
    let low = high
        .saturating_sub(DEPTH)
        .max(core::ptr::addr_of!(__estack) as usize);
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
