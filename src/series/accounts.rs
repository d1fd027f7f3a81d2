//! Which of the organisation's own accounts a bin's failures were for, as far as a
//! source can tell: the Okta user ids (`actor.id`) of the bin's first and last failed
//! attempt, or that it was a username Okta could not resolve (`actor.id` `unknown`).
//!
//! Counts alone cannot tell an address coming back for a *second* account hours later
//! from a person at home failing for their own account twice; the user ids can, and an
//! address that tried two different real accounts, one try each, and never got in is
//! what a low-and-slow sprayer does (`detect::distributed_spraying`). First and last
//! only, because that is what Logs Insights gives cheaply (`earliest` and `latest`):
//! a bin with one or two failures is exact, a busier one names two of its accounts.

use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// Up to two accounts, as 32-bit keys of their Okta user ids (0: none; [`UNRESOLVED`]: a
/// username Okta could not resolve). Eight bytes a bin; two ids that share a key count as
/// one account (about once in 4·10⁹ pairs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAccounts(pub [u32; 2]);

/// The key of an attempt on a username Okta could not resolve (`actor.id` `unknown`):
/// no account, but said, so that a bin's two attempts on one real account are not
/// mistaken for one real and one unresolved.
pub const UNRESOLVED: u32 = u32::MAX;

impl FailedAccounts {
    /// The key of an `actor.id`: [`UNRESOLVED`] for an unresolved username (`unknown`,
    /// or an empty id), `None` for no id at all (Logs Insights' `earliest` and `latest`
    /// skip those).
    pub fn key(actor_id: Option<&str>) -> Option<u32> {
        let id = actor_id.map(str::trim)?;
        if id.is_empty() || id.eq_ignore_ascii_case("unknown") || id.eq_ignore_ascii_case("null") {
            return Some(UNRESOLVED);
        }
        // foldhash with a fixed seed: the same id gets the same key in every run and
        // process (the daemon, a backtest and a standby agree).
        let x = foldhash::fast::FixedState::default().hash_one(id);
        Some(((x ^ (x >> 32)) as u32).clamp(1, UNRESOLVED - 1))
    }

    /// The accounts of the first and the last failed attempt (their `actor.id`s).
    pub fn of(first: Option<&str>, last: Option<&str>) -> FailedAccounts {
        let mut a = FailedAccounts::default();
        a.add(Self::key(first));
        a.add(Self::key(last));
        a
    }

    /// Whether some of a bin's `failures` were on a username Okta could not resolve: the
    /// first or the last failed attempt was. A bin whose attempts in between were the
    /// only unresolved ones says no. A source that gives no accounts at all (a CSV of
    /// counts, a query without them) says yes: the count it feeds is then every
    /// failing-only address.
    pub fn unresolved_among(&self, failures: u64) -> bool {
        failures > 0 && (self.is_empty() || self.0.contains(&UNRESOLVED))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0, 0]
    }

    /// The accounts held (none, one or two distinct keys; an unresolved username is
    /// none).
    pub fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        let [a, b] = self.0;
        [a, b].into_iter().enumerate().filter_map(move |(i, k)| {
            (k != 0 && k != UNRESOLVED && !(i == 1 && k == a)).then_some(k)
        })
    }

    /// Add an account if there is room for it (a third is not kept: undercounting is
    /// the safe side, it only makes a sprayer look like fewer accounts).
    pub fn add(&mut self, key: Option<u32>) {
        let Some(k) = key.filter(|k| *k != 0) else {
            return;
        };
        match self.0 {
            [0, _] => self.0[0] = k,
            [a, 0] if a != k => self.0[1] = k,
            _ => {}
        }
    }

    /// Both sides' accounts and unresolved usernames (as far as two fit).
    pub fn merge(&mut self, other: &FailedAccounts) {
        for k in other.0 {
            self.add(Some(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_usernames_have_no_account_but_are_said() {
        assert_eq!(FailedAccounts::key(Some("unknown")), Some(UNRESOLVED));
        assert_eq!(FailedAccounts::key(Some("")), Some(UNRESOLVED));
        assert_eq!(FailedAccounts::key(None), None);
        assert_eq!(FailedAccounts::of(Some("unknown"), None).keys().count(), 0);
        // One unresolved end says so; two attempts on one real account do not.
        assert!(FailedAccounts::of(Some("00ua"), Some("unknown")).unresolved_among(2));
        assert!(!FailedAccounts::of(Some("00ua"), Some("00ua")).unresolved_among(2));
        assert!(!FailedAccounts::of(Some("00ua"), None).unresolved_among(1));
        assert!(!FailedAccounts::of(Some("unknown"), None).unresolved_among(0));
        // A source that names no accounts at all: every failing address.
        assert!(FailedAccounts::default().unresolved_among(3));
        let k = FailedAccounts::key(Some("00u1abcd"));
        assert!(k.is_some_and(|k| k != 0));
        assert_eq!(
            k,
            FailedAccounts::key(Some("00u1abcd")),
            "fixed across calls"
        );
        assert_ne!(k, FailedAccounts::key(Some("00u1abce")));
    }

    #[test]
    fn holds_two_distinct_accounts_at_most() {
        let one = FailedAccounts::of(Some("00ua"), Some("00ua"));
        assert_eq!(one.keys().count(), 1);
        let typo = FailedAccounts::of(Some("unknown"), Some("00ua"));
        assert_eq!(
            typo.keys().collect::<Vec<_>>(),
            one.keys().collect::<Vec<_>>()
        );
        let mut two = FailedAccounts::of(Some("00ua"), Some("00ub"));
        assert_eq!(two.keys().count(), 2);
        two.merge(&FailedAccounts::of(Some("00uc"), None));
        assert_eq!(two.keys().count(), 2, "a third is not kept");
        let mut none = FailedAccounts::default();
        assert!(none.is_empty());
        none.merge(&two);
        assert_eq!(none, two);
        // An unresolved username survives a merge (a query's rows per outcome).
        let mut merged = FailedAccounts::default();
        merged.merge(&FailedAccounts::of(Some("unknown"), None));
        assert!(merged.unresolved_among(1));
    }
}
