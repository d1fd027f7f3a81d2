//! One open bin of one series in the local binner: its counts, who failed and from
//! where (as 64-bit hashes, for the distinct counts), and the first and last failed
//! attempt's account.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::event::Event;
use crate::series::{Counts, FailedAccounts, OutcomeClass};

/// One open bin of one series.
#[derive(Default)]
pub(super) struct Cell {
    pub(super) counts: Counts,
    /// Per failing `outcome.result` value: who failed, from where.
    failed: Vec<Failed>,
    /// The first and the last failed attempt: when, and the key of its account (as the
    /// query's `earliest` and `latest` of `actor.id`; see [`FailedAccounts`]).
    first_failed: Option<(i64, Option<u32>)>,
    last_failed: Option<(i64, Option<u32>)>,
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
        let account = (e.published_ms, FailedAccounts::key(e.actor_id.as_deref()));
        if self.first_failed.is_none_or(|(ms, _)| e.published_ms < ms) {
            self.first_failed = Some(account);
        }
        if self.last_failed.is_none_or(|(ms, _)| e.published_ms >= ms) {
            self.last_failed = Some(account);
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

    pub(super) fn finish(self) -> Counts {
        let mut c = self.counts;
        c.failed_users = self.failed.iter().map(|f| f.users.len() as u64).sum();
        c.failed_ips = self.failed.iter().map(|f| f.ips.len() as u64).sum();
        for (_, key) in [self.first_failed, self.last_failed].into_iter().flatten() {
            c.failed_accounts.add(key);
        }
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
        let counts = c.finish();
        assert_eq!(counts.failed_users, 3);
        assert_eq!(
            counts.failed_accounts,
            FailedAccounts::of(Some("00ufirst"), Some("00ulast"))
        );
        // An unresolved username names no account; successes name none either.
        let mut c = Cell::default();
        c.add(&failed(10, "unknown"), OutcomeClass::Failure);
        c.add(&failed(20, "00uother"), OutcomeClass::Success);
        assert!(c.finish().failed_accounts.is_empty());
    }
}
