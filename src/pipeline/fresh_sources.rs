//! Which of a split rule's failing-only addresses the `(failing-only sources)` count
//! takes (see `detect::failing_sources`): an address that only failed in the bin, on a
//! username Okta could not resolve or flagged by Okta ThreatInsight, and had not failed
//! within the rule's window before.
//!
//! Stuffing near the noise — a few dozen attempts in an hour from as many proxies, more
//! than half on usernames of other breaches — adds one such address per attempt, while
//! the organisation's own people hardly make any: a person who mistypes their username
//! gets in within the bin, and one who gives up fails for their own account. Two
//! look-alikes make one address again and again and count once per window: a service
//! account failing every few minutes under a wrong username, a scanner coming back.
//! A help-desk reset wave fails for real accounts; an outage fails everyone's, known.
//!
//! Measured on the outside generator's seeds 1–45 (the count per hour at the same hour
//! of other days: 1.0–1.7 on average, at most 4; its missed stuffing near the noise:
//! 9–29 in its worst hour).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use super::sprayers::{forget_oldest_half, stamp, MAX_REMEMBERED};
use crate::series::{Counts, Labels};

/// What a failing-only address new in the window failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// Some of its failures were on an unresolved username or flagged by ThreatInsight:
    /// the `(failing-only sources)` count.
    Hostile,
    /// Its own (resolved, unflagged) accounts: a person who could not get in, counted by
    /// `(locked-out sources)` if it has not got in by the end of the next bin.
    Own,
}

/// The bin each address last failed in, by a 64-bit hash of the address keyed at random
/// per rule (the addresses are the input's: see `sprayers::Sprayers::succeeded`), and the
/// addresses of the last bin that failed on their own accounts.
#[derive(Debug, Clone, Default)]
pub struct FreshSources {
    failed: HashMap<u64, i64, foldhash::fast::FixedState>,
    key_state: foldhash::fast::RandomState,
    pruned_at: Option<i64>,
    /// The bin and the keys of its addresses that failed on their own accounts (see
    /// [`Failing::Own`]).
    waiting: (i64, HashSet<u64, foldhash::fast::FixedState>),
}

impl FreshSources {
    /// The key an address is remembered by.
    pub fn key(&self, labels: &Labels) -> u64 {
        self.key_state.hash_one(labels)
    }

    /// What the address `key` with `counts` in `bin` is: `None` unless it only failed
    /// and had not failed in the `window` bins before; then whether some of its failures
    /// were on an unresolved username or flagged by ThreatInsight
    /// (`Counts::failed_flagged`). Every failing address is remembered (call once per
    /// address and bin, in bin order).
    pub fn judge(&mut self, key: u64, counts: &Counts, bin: i64, window: i64) -> Option<Failing> {
        if counts.failure == 0 {
            return None;
        }
        let fresh = self
            .failed
            .insert(key, bin)
            .is_none_or(|last| last <= bin - window);
        if !fresh || counts.success > 0 {
            None
        } else if counts.failed_flagged || counts.failed_accounts.unresolved_among(counts.failure) {
            Some(Failing::Hostile)
        } else {
            Some(Failing::Own)
        }
    }

    /// The addresses of the bin before `bin` that failed on their own accounts (empty if
    /// the last bin noted was another).
    pub fn take_waiting(&mut self, bin: i64) -> HashSet<u64, foldhash::fast::FixedState> {
        let (noted, keys) = std::mem::take(&mut self.waiting);
        if noted == bin - 1 {
            keys
        } else {
            HashSet::default()
        }
    }

    /// Note the addresses of `bin` that failed on their own accounts.
    pub fn wait_for(&mut self, bin: i64, keys: HashSet<u64, foldhash::fast::FixedState>) {
        self.waiting = (bin, keys);
    }

    /// Forget what is older than `window` bins (once a window), and past
    /// [`MAX_REMEMBERED`] addresses the older half (as the sprayers' memory does).
    pub fn prune(&mut self, bin: i64, window: i64) {
        if self.pruned_at.is_none_or(|p| bin - p >= window) {
            self.failed.retain(|_, b| *b > bin - window);
            self.pruned_at = Some(bin);
        }
        forget_oldest_half(&mut self.failed, MAX_REMEMBERED, |b| stamp(*b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::FailedAccounts;
    use Failing::{Hostile, Own};

    fn judge(f: &mut FreshSources, ip: &str, c: &Counts, bin: i64, window: i64) -> Option<Failing> {
        let labels: Labels = [("client.ipAddress".to_string(), ip.to_string())].into();
        let key = f.key(&labels);
        f.judge(key, c, bin, window)
    }

    /// One failure on an unresolved username, or on a real account.
    fn failed(resolved: bool) -> Counts {
        Counts {
            total: 1,
            failure: 1,
            failed_users: 1,
            failed_ips: 1,
            failed_accounts: FailedAccounts::of(
                Some(if resolved { "00u1" } else { "unknown" }),
                None,
            ),
            ..Counts::default()
        }
    }

    #[test]
    fn a_proxy_counts_once_a_window_and_a_real_account_as_its_own() {
        let mut f = FreshSources::default();
        assert_eq!(
            judge(&mut f, "a", &failed(false), 10, 16),
            Some(Hostile),
            "a new proxy"
        );
        assert_eq!(
            judge(&mut f, "a", &failed(false), 11, 16),
            None,
            "back within the window"
        );
        assert_eq!(
            judge(&mut f, "a", &failed(false), 26, 16),
            None,
            "still: last failed at 11"
        );
        assert_eq!(
            judge(&mut f, "a", &failed(false), 43, 16),
            Some(Hostile),
            "a window later"
        );
        assert_eq!(
            judge(&mut f, "b", &failed(true), 10, 16),
            Some(Own),
            "a person's own account"
        );
        let flagged = Counts {
            failed_flagged: true,
            ..failed(true)
        };
        assert_eq!(
            judge(&mut f, "d", &flagged, 10, 16),
            Some(Hostile),
            "a real account, from an address ThreatInsight flagged"
        );
        let got_in = Counts {
            success: 1,
            ..failed(false)
        };
        assert_eq!(
            judge(&mut f, "c", &got_in, 10, 16),
            None,
            "mistyped, then got in"
        );
        assert_eq!(
            judge(&mut f, "e", &Counts::default(), 10, 16),
            None,
            "no failure"
        );
        // Without any accounts from the source, every failing-only address is taken as
        // on an unresolved username.
        let unnamed = Counts {
            failed_accounts: FailedAccounts::default(),
            ..failed(true)
        };
        assert_eq!(judge(&mut f, "g", &unnamed, 10, 16), Some(Hostile));
    }

    #[test]
    fn the_addresses_waiting_are_those_of_the_bin_just_before() {
        let mut f = FreshSources::default();
        f.wait_for(7, [1, 2].into_iter().collect());
        assert_eq!(f.take_waiting(8).len(), 2);
        assert!(f.take_waiting(9).is_empty(), "taken once");
        f.wait_for(7, [1].into_iter().collect());
        assert!(f.take_waiting(9).is_empty(), "a bin was skipped");
    }

    #[test]
    fn pruning_forgets_only_what_the_window_no_longer_holds() {
        let mut f = FreshSources::default();
        assert!(judge(&mut f, "a", &failed(false), 0, 4).is_some());
        assert!(judge(&mut f, "b", &failed(false), 3, 4).is_some());
        f.prune(5, 4);
        assert_eq!(
            f.failed.len(),
            1,
            "a (bin 0) is out of the window at 5, b is not"
        );
        assert!(judge(&mut f, "b", &failed(false), 6, 4).is_none());
    }
}
