//! One open bin of one series in the local binner: its counts, who failed and from
//! where (as 64-bit hashes, for the distinct counts), and the first and last failed
//! attempt's account and ThreatInsight flag.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::event::{threat_flagged, Event};
use crate::rule::Reads;
use crate::series::{Counts, FailedAccounts, OutcomeClass};

/// One open bin of one series.
#[derive(Default)]
pub(super) struct Cell {
    pub(super) counts: Counts,
    /// Per failing `outcome.result` value: who failed, from where.
    failed: Vec<Failed>,
    /// The key of the first and the last failed attempt's account (as the query's
    /// `earliest` and `latest` of `actor.id`; see [`FailedAccounts`]).
    accounts: Ends<Option<u32>>,
    /// Whether the first and the last failed attempt that carries ThreatInsight's
    /// `threatSuspected` was flagged (as the query's `earliest` and `latest`, which skip
    /// attempts without the field).
    threats: Ends<bool>,
}

/// A value of the earliest and of the latest event that had one, as Logs Insights'
/// `earliest` and `latest` take them (ties: the first seen is the earliest, the last
/// seen the latest).
struct Ends<T> {
    first: Option<(i64, T)>,
    last: Option<(i64, T)>,
}

impl<T> Default for Ends<T> {
    fn default() -> Self {
        Ends {
            first: None,
            last: None,
        }
    }
}

impl<T: Copy> Ends<T> {
    fn note(&mut self, ms: i64, value: T) {
        if self.first.is_none_or(|(first, _)| ms < first) {
            self.first = Some((ms, value));
        }
        if self.last.is_none_or(|(last, _)| ms >= last) {
            self.last = Some((ms, value));
        }
    }

    /// The earliest's value and the latest's (none before any was noted).
    fn values(&self) -> impl Iterator<Item = T> {
        [self.first, self.last]
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
    }
}

struct Failed {
    result: Box<str>,
    users: HashSet<u64, Keyed>,
    ips: HashSet<u64, Keyed>,
}

/// The hash of the binner's maps and sets: their keys come from the input (addresses,
/// user names), so it is seeded at random per map as std's is, but cheaper than
/// SipHash, which every event paid for (see [`crate::series::LabelMap`] on what
/// foldhash resists). Their order only orders a bin's updates, which
/// the pipeline keys by labels.
pub(super) type Keyed = foldhash::fast::RandomState;

impl Cell {
    pub(super) fn add(&mut self, e: &Event<'_>, class: OutcomeClass) {
        self.counts.add_at(class, 1, e.published_ms);
        if class != OutcomeClass::Failure {
            return;
        }
        self.accounts
            .note(e.published_ms, FailedAccounts::key(e.actor_id.as_deref()));
        if let Some(flag) = e.threat_suspected.as_deref() {
            self.threats.note(e.published_ms, threat_flagged(flag));
        }
        let i = match self.failed.iter().position(|f| *f.result == *e.result) {
            Some(i) => i,
            None => {
                self.failed.push(Failed {
                    result: e.result.as_ref().into(),
                    users: HashSet::default(),
                    ips: HashSet::default(),
                });
                self.failed.len() - 1
            }
        };
        let f = &mut self.failed[i];
        // Missing values are not counted, as `count_distinct` skips missing fields.
        if let Some(u) = &e.user {
            f.users.insert(hash(u));
        }
        if let Some(ip) = &e.ip {
            f.ips.insert(hash(ip));
        }
    }

    /// The bin's counts, with the failed attempts' accounts and flags where the rule
    /// `reads` them.
    pub(super) fn finish(self, reads: Reads) -> Counts {
        let mut c = self.counts;
        c.failed_users = self.failed.iter().map(|f| f.users.len() as u64).sum();
        c.failed_ips = self.failed.iter().map(|f| f.ips.len() as u64).sum();
        if reads.accounts {
            for key in self.accounts.values() {
                c.failed_accounts.add(key);
            }
        }
        c.failed_flagged = reads.threat_flags && self.threats.values().any(|flagged| flagged);
        c
    }
}

/// A fixed-key hash, so that runs are reproducible (a 64-bit collision among a bin's
/// few hundred values is vanishingly unlikely).
fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    const ALL: Reads = Reads {
        accounts: true,
        threat_flags: true,
    };

    fn failed(ms: i64, actor: &'static str) -> Event<'static> {
        Event {
            published_ms: ms,
            event_type: Cow::Borrowed("user.session.start"),
            result: Cow::Borrowed("FAILURE"),
            user: Some(Cow::Borrowed(actor)),
            actor_id: Some(Cow::Borrowed(actor)),
            ..Event::default()
        }
    }

    #[test]
    fn the_first_and_last_failed_attempts_name_their_accounts() {
        let mut c = Cell::default();
        // In any order: the earliest and the latest by time, as Logs Insights'
        // `earliest` and `latest`; the one in between is not kept.
        for (ms, actor) in [(30, "00ulast"), (10, "00ufirst"), (20, "00umiddle")] {
            c.add(&failed(ms, actor), OutcomeClass::Failure);
        }
        let counts = c.finish(ALL);
        assert_eq!(counts.failed_users, 3);
        assert_eq!(
            counts.failed_accounts,
            FailedAccounts::of(Some("00ufirst"), Some("00ulast"))
        );
        // An unresolved username names no account; successes name none either.
        let mut c = Cell::default();
        c.add(&failed(10, "unknown"), OutcomeClass::Failure);
        c.add(&failed(20, "00uother"), OutcomeClass::Success);
        let counts = c.finish(ALL);
        assert_eq!(counts.failed_accounts.keys().count(), 0);
        assert!(counts.failed_accounts.unresolved_among(counts.failure));
        assert!(!counts.failed_flagged);
    }

    #[test]
    fn a_rule_that_does_not_read_accounts_or_flags_keeps_neither() {
        let mut c = Cell::default();
        let mut e = failed(10, "00ua");
        e.threat_suspected = Some(Cow::Borrowed("true"));
        c.add(&e, OutcomeClass::Failure);
        let none = Reads {
            accounts: false,
            threat_flags: false,
        };
        let counts = c.finish(none);
        // As the query of such a rule asks for neither column.
        assert!(counts.failed_accounts.is_empty());
        assert!(!counts.failed_flagged);
        assert_eq!(counts.failure, 1);
    }

    #[test]
    fn threatinsight_flags_are_read_at_the_first_and_last_attempt_that_carry_one() {
        let flagged = |flags: &[(i64, Option<&'static str>)]| {
            let mut c = Cell::default();
            for &(ms, flag) in flags {
                let mut e = failed(ms, "unknown");
                e.threat_suspected = flag.map(Cow::Borrowed);
                c.add(&e, OutcomeClass::Failure);
            }
            c.finish(ALL).failed_flagged
        };
        assert!(flagged(&[
            (10, Some("false")),
            (20, Some("true")),
            (30, None)
        ]));
        assert!(flagged(&[
            (30, Some("false")),
            (10, Some("TRUE")),
            (20, Some("false"))
        ]));
        // Between the ends, as Logs Insights' `earliest` and `latest` would not see it.
        assert!(!flagged(&[
            (10, Some("false")),
            (20, Some("true")),
            (30, Some("false"))
        ]));
        assert!(!flagged(&[(10, None), (20, None)]));
    }
}
