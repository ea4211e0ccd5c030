//! The NIC's network port, as the engine sees it: frames out, frames in. The firmware's
//! platform drives the real one (a LiteEth MAC on the LiteX SoC); [`Loopback`] is a port
//! whose frames come straight back, for host tests, the harness's reference runs and QEMU.

use quicseal_nic_abi::MAX_FRAME;

/// A network port.
pub trait Port {
    /// Sends one frame, `header` then `payload` ([`MAX_FRAME`] bytes at most, which the
    /// engine checks first). False when the port could not send it.
    fn transmit(&mut self, header: &[u8], payload: &[u8]) -> bool;

    /// True when a frame has arrived that [`receive`](Self::receive) would return.
    fn waiting(&mut self) -> bool;

    /// Takes the next frame that arrived: copies what fits of it into `into` and returns its
    /// whole length, or `None` when none is waiting.
    fn receive(&mut self, into: &mut [u8]) -> Option<usize>;
}

/// A port looped back on itself, holding one frame: what it sends it receives next, padded
/// to Ethernet's minimum as a MAC pads it. The engine takes every frame back right after
/// sending it, so one is all it ever holds.
pub struct Loopback {
    frame: [u8; MAX_FRAME],
    len: Option<usize>,
}

impl Loopback {
    /// Empty. `const`, so that firmware can keep it in a static.
    pub const fn new() -> Loopback {
        Loopback {
            frame: [0; MAX_FRAME],
            len: None,
        }
    }
}

impl Default for Loopback {
    fn default() -> Self {
        Loopback::new()
    }
}

/// The shortest frame Ethernet carries, without its check sequence: a MAC pads shorter ones
/// with zeros, so the loop does too.
const MIN_FRAME: usize = 60;

impl Port for Loopback {
    fn transmit(&mut self, header: &[u8], payload: &[u8]) -> bool {
        let len = header.len() + payload.len();
        if self.len.is_some() || len > MAX_FRAME {
            return false;
        }
        self.frame[..header.len()].copy_from_slice(header);
        self.frame[header.len()..len].copy_from_slice(payload);
        let padded = len.max(MIN_FRAME);
        self.frame[len..padded].fill(0);
        self.len = Some(padded);
        true
    }

    fn waiting(&mut self) -> bool {
        self.len.is_some()
    }

    fn receive(&mut self, into: &mut [u8]) -> Option<usize> {
        let len = self.len.take()?;
        let copied = len.min(into.len());
        into[..copied].copy_from_slice(&self.frame[..copied]);
        Some(len)
    }
}
