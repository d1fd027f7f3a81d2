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

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::sprayers::{forget_oldest_half, stamp, MAX_REMEMBERED};
use crate::series::{Counts, Labels};

/// The bin each address last failed in, by a 64-bit hash of the address keyed at random
/// per rule (the addresses are the input's: see `sprayers::Sprayers::succeeded`).
#[derive(Debug, Clone, Default)]
pub struct FreshSources {
    failed: HashMap<u64, i64, foldhash::fast::FixedState>,
    key_state: foldhash::fast::RandomState,
    pruned_at: Option<i64>,
}

impl FreshSources {
    /// Whether the address `labels` with `counts` in `bin` counts: it only failed, some
    /// of its failures were on an unresolved username or flagged by ThreatInsight
    /// (`Counts::failed_flagged`), and it had not failed in the
    /// `window` bins before. Every failing address is remembered (call once per address
    /// and bin, in bin order).
    pub fn counts(&mut self, labels: &Labels, counts: &Counts, bin: i64, window: i64) -> bool {
        if counts.failure == 0 {
            return false;
        }
        let key = self.key_state.hash_one(labels);
        let fresh = self
            .failed
            .insert(key, bin)
            .is_none_or(|last| last <= bin - window);
        fresh
            && counts.success == 0
            && (counts.failed_flagged || counts.failed_accounts.unresolved_among(counts.failure))
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

    fn ip(v: &str) -> Labels {
        [("client.ipAddress".to_string(), v.to_string())].into()
    }

    /// One failure on an unresolved username (no account key), or on a real account.
    fn failed(resolved: bool) -> Counts {
        Counts {
            total: 1,
            failure: 1,
            failed_users: 1,
            failed_ips: 1,
            failed_accounts: FailedAccounts::of(resolved.then_some("00u1"), None),
            ..Counts::default()
        }
    }

    #[test]
    fn a_proxy_counts_once_a_window_and_a_real_account_never() {
        let mut f = FreshSources::default();
        assert!(f.counts(&ip("a"), &failed(false), 10, 16), "a new proxy");
        assert!(
            !f.counts(&ip("a"), &failed(false), 11, 16),
            "back within the window"
        );
        assert!(
            !f.counts(&ip("a"), &failed(false), 26, 16),
            "still: last failed at 11"
        );
        assert!(f.counts(&ip("a"), &failed(false), 43, 16), "a window later");
        assert!(
            !f.counts(&ip("b"), &failed(true), 10, 16),
            "a person's own account"
        );
        let flagged = Counts {
            failed_flagged: true,
            ..failed(true)
        };
        assert!(
            f.counts(&ip("d"), &flagged, 10, 16),
            "a real account, from an address ThreatInsight flagged"
        );
        let got_in = Counts {
            success: 1,
            ..failed(false)
        };
        assert!(
            !f.counts(&ip("c"), &got_in, 10, 16),
            "mistyped, then got in"
        );
        assert!(
            !f.counts(&ip("c"), &Counts::default(), 10, 16),
            "no failure"
        );
    }

    #[test]
    fn pruning_forgets_only_what_the_window_no_longer_holds() {
        let mut f = FreshSources::default();
        assert!(f.counts(&ip("a"), &failed(false), 0, 4));
        assert!(f.counts(&ip("b"), &failed(false), 3, 4));
        f.prune(5, 4);
        assert_eq!(
            f.failed.len(),
            1,
            "a (bin 0) is out of the window at 5, b is not"
        );
        assert!(!f.counts(&ip("b"), &failed(false), 6, 4));
    }
}
