//! Duplicates among the 1-RTT packets a flow opened. quicseal keeps no replay window (the
//! QUIC stack does, RFC 9000 §12.3) and quinn drops a duplicate without counting it, so the
//! socket counts them here, where a replayed datagram shows up.

/// The packet numbers a flow opened lately: the largest, and one bit for each of the
/// [`WINDOW`] numbers below it.
#[derive(Debug, Default)]
pub struct ReplayWindow {
    largest: Option<u64>,
    /// Bit `k` set: `largest - 1 - k` was opened.
    below: u128,
}

/// Packet numbers below the largest that the window remembers.
const WINDOW: u64 = 128;

impl ReplayWindow {
    /// Records that packet `number` opened; true when it had opened before. A number older
    /// than the window cannot be told apart and counts as new.
    pub fn seen(&mut self, number: u64) -> bool {
        let Some(largest) = self.largest else {
            self.largest = Some(number);
            return false;
        };
        if number > largest {
            let shift = number - largest;
            self.below = if shift > WINDOW {
                0
            } else {
                // The old largest becomes bit `shift - 1`.
                (self.below << (shift - 1) << 1) | (1 << (shift - 1))
            };
            self.largest = Some(number);
            return false;
        }
        if number == largest {
            return true;
        }
        let back = largest - 1 - number;
        if back >= WINDOW {
            return false;
        }
        let bit = 1u128 << back;
        let seen = self.below & bit != 0;
        self.below |= bit;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_number_is_new_once_in_any_order_within_the_window() {
        let mut window = ReplayWindow::default();
        let order = [5u64, 3, 9, 4, 5, 200, 9, 180, 199, 180, 75, 72];
        let seen: Vec<bool> = order.iter().map(|&n| window.seen(n)).collect();
        // 5 and 180 again are duplicates; 9 again, 191 below 200, is past the window and
        // counts as new; 75 and 72 are in the window and new.
        assert_eq!(
            seen,
            [
                false, false, false, false, true, false, false, false, false, true, false, false
            ]
        );
        // The window's far edge: 0 is the 128th number below 128, and still remembered.
        let mut window = ReplayWindow::default();
        assert!(!window.seen(0));
        assert!(window.seen(0));
        assert!(!window.seen(128));
        assert!(window.seen(0));
        assert!(!window.seen(129));
        assert!(!window.seen(0), "past the window: new");
    }
}
