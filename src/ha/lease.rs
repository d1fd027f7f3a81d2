//! Leases, the Kinesis Client Library's way: each rule is a work unit with a lease item
//! carrying a counter that its owner increments on every renewal. Nobody compares clocks
//! across machines: a replica that sees the same counter for a whole lease period *on
//! its own clock* takes the lease over with a write conditional on that counter, so of
//! two replicas racing for it exactly one wins. A taken-over lease also gets a new
//! fencing token, which every write of shared state checks (see [`super::store`]).
//!
//! The owner stops paging at `renewed before + lease` by its own clock (the time it sent
//! its last successful renewal, plus the lease), which comes before any other replica
//! can have watched the renewed counter for a full lease: a leader cut off from
//! DynamoDB falls silent before anyone else starts.
//!
//! This file holds the decisions, as plain data and no I/O, so they are tested here;
//! [`super::store`] runs them against the table.

use std::collections::BTreeMap;

use super::dynamo::LeaseItem;

/// A lease this replica holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub token: u64,
    pub counter: u64,
    /// By this replica's clock: the lease is ours until then, unless renewed.
    pub valid_until_ms: i64,
    /// The rule's shared state is loaded into the route (until then it does not page).
    pub loaded: bool,
}

/// Another replica's lease, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub owner: String,
    pub counter: u64,
    /// When (our clock) we first saw this counter.
    pub since_ms: i64,
}

/// What to do about one rule's lease this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No lease item yet: create it.
    Acquire,
    /// Ours: renew it.
    Renew { token: u64 },
    /// Ours no more (another owner or token): we were fenced.
    Lost,
    /// Expired or released: take it over.
    TakeOver(LeaseItem),
    /// Another replica holds it and renews it.
    Wait,
}

/// Decide for one rule. `item`: the lease in the table; `held`: ours, if we think we
/// hold it; `seen`: what we saw of it before; `warm`: our pipeline has loaded its
/// history. A cold replica (still backfilling) leaves a released lease to a warm one
/// for a lease period, and takes it after that like an expired one.
pub fn decide(
    me: &str,
    item: Option<&LeaseItem>,
    held: Option<&Held>,
    seen: Option<&Seen>,
    now_ms: i64,
    lease_ms: i64,
    warm: bool,
) -> Action {
    let Some(item) = item else {
        return if held.is_some() {
            // Our item vanished (deleted by hand): start over.
            Action::Lost
        } else {
            Action::Acquire
        };
    };
    if let Some(h) = held {
        return if item.owner == me && item.token == h.token {
            Action::Renew { token: h.token }
        } else {
            Action::Lost
        };
    }
    if item.owner.is_empty() && warm {
        return Action::TakeOver(item.clone());
    }
    match seen {
        Some(s) if s.owner == item.owner && s.counter == item.counter => {
            if now_ms - s.since_ms >= lease_ms {
                Action::TakeOver(item.clone())
            } else {
                Action::Wait
            }
        }
        _ => Action::Wait,
    }
}

/// What this replica knows of every rule's lease.
#[derive(Debug, Default)]
pub struct Leases {
    pub held: BTreeMap<String, Held>,
    pub seen: BTreeMap<String, Seen>,
    /// Rule → the owner in the table at the last look (empty: released).
    pub owners: BTreeMap<String, String>,
    /// Rules lost since the route last asked.
    pub lost: Vec<String>,
    /// The last round that reached the table (our clock).
    pub last_ok_ms: Option<i64>,
}

impl Leases {
    /// Remember the table's view of a lease we do not hold.
    pub fn observe(&mut self, item: &LeaseItem, now_ms: i64) {
        self.owners.insert(item.rule.clone(), item.owner.clone());
        if self.held.contains_key(&item.rule) {
            self.seen.remove(&item.rule);
            return;
        }
        let fresh = self
            .seen
            .get(&item.rule)
            .is_none_or(|s| s.owner != item.owner || s.counter != item.counter);
        if fresh {
            self.seen.insert(
                item.rule.clone(),
                Seen {
                    owner: item.owner.clone(),
                    counter: item.counter,
                    since_ms: now_ms,
                },
            );
        }
    }

    /// We hold `item` now (acquired, taken over or renewed at `sent_ms`).
    pub fn hold(&mut self, item: &LeaseItem, sent_ms: i64, lease_ms: i64) {
        let loaded = self
            .held
            .get(&item.rule)
            .is_some_and(|h| h.loaded && h.token == item.token);
        self.seen.remove(&item.rule);
        self.owners.insert(item.rule.clone(), item.owner.clone());
        self.held.insert(
            item.rule.clone(),
            Held {
                token: item.token,
                counter: item.counter,
                valid_until_ms: sent_ms + lease_ms,
                loaded,
            },
        );
    }

    /// The lease of `rule` is gone (fenced, or given up).
    pub fn lose(&mut self, rule: &str) {
        if self.held.remove(rule).is_some() {
            self.lost.push(rule.to_string());
        }
    }

    /// May this replica page for `rule` at `now_ms`?
    pub fn leads(&self, rule: &str, now_ms: i64) -> bool {
        self.held
            .get(rule)
            .is_some_and(|h| h.loaded && now_ms < h.valid_until_ms)
    }

    /// Held and valid by our clock (loaded or not).
    pub fn valid(&self, rule: &str, now_ms: i64) -> Option<&Held> {
        self.held.get(rule).filter(|h| now_ms < h.valid_until_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: i64 = 15_000;

    fn item(owner: &str, counter: u64, token: u64) -> LeaseItem {
        LeaseItem {
            rule: "r".into(),
            owner: owner.into(),
            counter,
            token,
        }
    }

    #[test]
    fn a_missing_lease_is_acquired_and_ours_is_renewed() {
        assert_eq!(
            decide("a", None, None, None, 0, LEASE, true),
            Action::Acquire
        );
        let mut l = Leases::default();
        l.hold(&item("a", 1, 1), 1_000, LEASE);
        let held = l.held.get("r").cloned();
        assert_eq!(
            decide(
                "a",
                Some(&item("a", 1, 1)),
                held.as_ref(),
                None,
                5_000,
                LEASE,
                true
            ),
            Action::Renew { token: 1 }
        );
        // Not paging until the route loaded the rule's state, and not after the lease.
        assert!(!l.leads("r", 2_000));
        l.held.get_mut("r").unwrap().loaded = true;
        assert!(l.leads("r", 2_000));
        assert!(!l.leads("r", 16_000), "expired by our own clock");
        assert!(l.valid("r", 16_000).is_none());
        // A renewal keeps `loaded` while the token stays.
        l.hold(&item("a", 2, 1), 10_000, LEASE);
        assert!(l.leads("r", 20_000));
    }

    #[test]
    fn another_owner_or_token_means_we_were_fenced() {
        let held = Held {
            token: 1,
            counter: 4,
            valid_until_ms: 0,
            loaded: true,
        };
        assert_eq!(
            decide(
                "a",
                Some(&item("b", 5, 2)),
                Some(&held),
                None,
                0,
                LEASE,
                true
            ),
            Action::Lost
        );
        // Same owner name but a newer token: a takeover by a namesake (restart).
        assert_eq!(
            decide(
                "a",
                Some(&item("a", 5, 2)),
                Some(&held),
                None,
                0,
                LEASE,
                true
            ),
            Action::Lost
        );
        assert_eq!(
            decide("a", None, Some(&held), None, 0, LEASE, true),
            Action::Lost
        );
        let mut l = Leases::default();
        l.hold(&item("a", 1, 1), 0, LEASE);
        l.lose("r");
        l.lose("r");
        assert_eq!(l.lost, vec!["r".to_string()]);
    }

    #[test]
    fn a_lease_is_taken_over_only_after_its_counter_stood_still_for_a_lease() {
        let mut l = Leases::default();
        l.observe(&item("b", 7, 1), 1_000);
        let seen = l.seen.get("r").cloned();
        let it = item("b", 7, 1);
        assert_eq!(
            decide("a", Some(&it), None, seen.as_ref(), 15_999, LEASE, true),
            Action::Wait
        );
        assert_eq!(
            decide("a", Some(&it), None, seen.as_ref(), 16_000, LEASE, true),
            Action::TakeOver(it.clone())
        );
        // The owner renewed: the clock starts again from when we saw the new counter.
        l.observe(&item("b", 8, 1), 10_000);
        let seen = l.seen.get("r").cloned();
        assert_eq!(
            decide(
                "a",
                Some(&item("b", 8, 1)),
                None,
                seen.as_ref(),
                16_000,
                LEASE,
                true
            ),
            Action::Wait
        );
        // Observing the same counter again does not restart the wait.
        l.observe(&item("b", 8, 1), 20_000);
        assert_eq!(l.seen["r"].since_ms, 10_000);
        // Never seen before: wait one lease whatever the counter.
        assert_eq!(
            decide("a", Some(&item("b", 8, 1)), None, None, 99_000, LEASE, true),
            Action::Wait
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once_by_a_warm_replica_and_later_by_a_cold_one() {
        let it = item("", 9, 3);
        assert_eq!(
            decide("a", Some(&it), None, None, 0, LEASE, true),
            Action::TakeOver(it.clone())
        );
        let mut l = Leases::default();
        l.observe(&it, 0);
        let seen = l.seen.get("r").cloned();
        assert_eq!(
            decide("a", Some(&it), None, seen.as_ref(), 1_000, LEASE, false),
            Action::Wait
        );
        assert_eq!(
            decide("a", Some(&it), None, seen.as_ref(), LEASE, LEASE, false),
            Action::TakeOver(it)
        );
    }
}
