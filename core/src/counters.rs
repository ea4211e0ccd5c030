//! What a flow did, for operators to read (RFC 9001 §6.6 asks endpoints to count forgeries).

use core::ops::AddAssign;

use crate::Error;

/// Per-flow event counts. Add flows' counters together for totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// 1-RTT packets sealed.
    pub sealed: u64,
    /// 1-RTT packets opened and authenticated.
    pub opened: u64,
    /// Long-header packets passed through untouched.
    pub passed_through: u64,
    /// Packets whose tag did not verify.
    pub auth_failures: u64,
    /// Packets that did not parse (including reserved bits set after decryption).
    pub malformed: u64,
    /// Packets refused for the confidentiality or integrity limit.
    pub dropped_for_limits: u64,
    /// Packets whose key phase asked for keys not installed.
    pub key_unavailable: u64,
    /// Packets refused for the caller's mistakes: packet-number reuse, buffers too small,
    /// a GSO layout that does not add up.
    pub rejected: u64,
    /// Key generations entered after the first.
    pub key_updates: u64,
}

impl Counters {
    /// Counts a packet refused with `error`.
    pub(crate) fn record(&mut self, error: Error) {
        let counter = match error {
            Error::AuthFailed => &mut self.auth_failures,
            Error::Malformed | Error::ReservedBits => &mut self.malformed,
            Error::ConfidentialityLimit | Error::IntegrityLimit => &mut self.dropped_for_limits,
            Error::KeyUnavailable => &mut self.key_unavailable,
            _ => &mut self.rejected,
        };
        *counter += 1;
    }

    /// Packets refused for any reason.
    pub fn dropped(&self) -> u64 {
        self.auth_failures
            + self.malformed
            + self.dropped_for_limits
            + self.key_unavailable
            + self.rejected
    }
}

impl AddAssign for Counters {
    fn add_assign(&mut self, other: Counters) {
        self.sealed += other.sealed;
        self.opened += other.opened;
        self.passed_through += other.passed_through;
        self.auth_failures += other.auth_failures;
        self.malformed += other.malformed;
        self.dropped_for_limits += other.dropped_for_limits;
        self.key_unavailable += other.key_unavailable;
        self.rejected += other.rejected;
        self.key_updates += other.key_updates;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_lands_in_one_counter() {
        for error in Error::ALL {
            let mut counters = Counters::default();
            counters.record(error);
            assert_eq!(counters.dropped(), 1, "{error:?}");
        }
    }

    #[test]
    fn totals_add_up() {
        let mut total = Counters::default();
        total += Counters {
            sealed: 2,
            key_updates: 1,
            ..Counters::default()
        };
        total += Counters {
            sealed: 3,
            auth_failures: 4,
            ..Counters::default()
        };
        assert_eq!(
            (total.sealed, total.auth_failures, total.key_updates),
            (5, 4, 1)
        );
    }
}
