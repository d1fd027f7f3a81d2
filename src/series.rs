//! Series and bins: what one rule counts per time bin, and the short history the
//! baseline learns from.
//!
//! A *series* is one rule's counts for one combination of `split_by` labels (a rule
//! without `split_by` has exactly one series, with no labels). A *bin* is identified by
//! its index: `bin_start_ms / bin_ms`, so bins line up with Logs Insights' `bin(15m)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which rule: its place in the running list of rules (the config's `[[rules]]` order),
/// as sources, the pipeline and the daemon pass it to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub usize);

/// Which bin of a rule: its start over the rule's bin width (`bin_start_ms / bin_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinIndex(pub i64);

impl BinIndex {
    /// The bin's start, in ms since the epoch, for bins `bin_ms` wide.
    pub fn start_ms(self, bin_ms: i64) -> i64 {
        self.0 * bin_ms
    }
}

/// The labels that name a series within a rule, e.g. `{"client.ipAddress": "203.0.113.5"}`.
pub type Labels = BTreeMap<String, String>;

/// A map of series by their labels. The labels come from the input (addresses, user
/// names), so the hash is seeded at random per map, as std's is, but it is foldhash:
/// SipHash over every series of every bin was a tenth of the pipeline's work. foldhash
/// defeats collisions crafted in advance, not an attacker who can watch the hashes
/// (its own words); a rule's series are bounded by `max_series` either way. Its order
/// is arbitrary, as std's: whoever needs one sorts.
pub type LabelMap<V> = std::collections::HashMap<Labels, V, foldhash::fast::RandomState>;

/// What one bin of one series holds. Outcomes that are neither success nor failure
/// (SKIPPED, CHALLENGE, UNKNOWN, ...) count in `total` only.
///
/// `failed_users` and `failed_ips` say *who* failed: the number of distinct
/// `actor.alternateId` and `client.ipAddress` values among the failed attempts, counted
/// per failing `outcome.result` value and summed (exactly what Logs Insights'
/// `count_distinct(..) by .., detail.outcome.result` rows add up to; Okta's sign-in
/// failures are all `FAILURE`, so in practice they are plain distinct counts). A thousand
/// failures from one address against a thousand accounts is password spraying; from a
/// thousand addresses it is credential stuffing; from one person it is a typo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub success: u64,
    pub failure: u64,
    #[serde(default)]
    pub failed_users: u64,
    #[serde(default)]
    pub failed_ips: u64,
    /// When the first and the last counted event of the bin happened, if the source can
    /// tell (the local binner always can; the Logs Insights query asks for
    /// `min(@timestamp)` and `max(@timestamp)`; a CSV of counts cannot). `None` with
    /// events counted means "somewhere in the bin": no silence is credited inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// Which of the organisation's own accounts the failures were for, as far as the
    /// source can tell (the first and the last failed attempt's `actor.id`, see
    /// [`FailedAccounts`]; none from a CSV of counts).
    #[serde(default, skip_serializing_if = "FailedAccounts::is_empty")]
    pub failed_accounts: FailedAccounts,
    /// Whether the first or the last failed attempt that says (the query's `earliest`
    /// and `latest` of `debugContext.debugData.threatSuspected`) carried Okta
    /// ThreatInsight's flag: `"true"`. False when the source cannot tell.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_flagged: bool,
}

/// The first and the last event of a bin, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub first_ms: i64,
    pub last_ms: i64,
}

impl Span {
    pub fn at(ms: i64) -> Span {
        Span {
            first_ms: ms,
            last_ms: ms,
        }
    }

    fn join(self, other: Span) -> Span {
        Span {
            first_ms: self.first_ms.min(other.first_ms),
            last_ms: self.last_ms.max(other.last_ms),
        }
    }
}

/// How an Okta `outcome.result` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    Success,
    Failure,
    Other,
}

impl OutcomeClass {
    pub fn of(result: &str) -> OutcomeClass {
        if result.eq_ignore_ascii_case("SUCCESS") || result.eq_ignore_ascii_case("ALLOW") {
            OutcomeClass::Success
        } else if result.eq_ignore_ascii_case("FAILURE") || result.eq_ignore_ascii_case("DENY") {
            OutcomeClass::Failure
        } else {
            OutcomeClass::Other
        }
    }
}

impl Counts {
    /// Saturating: a count comes from a Logs Insights row or a CSV cell, where any
    /// number may be written (found by the fuzz driver: two rows of `n = 1e300`).
    pub fn add(&mut self, class: OutcomeClass, n: u64) {
        self.total = self.total.saturating_add(n);
        match class {
            OutcomeClass::Success => self.success = self.success.saturating_add(n),
            OutcomeClass::Failure => self.failure = self.failure.saturating_add(n),
            OutcomeClass::Other => {}
        }
    }

    /// Count `n` events of `class` that happened at `ms` (the local binner).
    pub fn add_at(&mut self, class: OutcomeClass, n: u64, ms: i64) {
        self.merge(
            &Counts {
                span: Some(Span::at(ms)),
                ..Counts::default()
            }
            .with(class, n),
        );
    }

    fn with(mut self, class: OutcomeClass, n: u64) -> Counts {
        self.add(class, n);
        self
    }

    pub fn other(&self) -> u64 {
        self.total
            .saturating_sub(self.success.saturating_add(self.failure))
    }

    /// Add another series' counts (several split values merged into one series). The
    /// distinct counts add up too: an upper bound of the merged distinct count.
    pub fn merge(&mut self, other: &Counts) {
        // Times are known when both sides know theirs (or hold no event).
        self.span = match (self.span, other.span) {
            _ if other.total == 0 => self.span,
            _ if self.total == 0 => other.span,
            (Some(a), Some(b)) => Some(a.join(b)),
            _ => None,
        };
        self.total = self.total.saturating_add(other.total);
        self.success = self.success.saturating_add(other.success);
        self.failure = self.failure.saturating_add(other.failure);
        self.failed_users = self.failed_users.saturating_add(other.failed_users);
        self.failed_ips = self.failed_ips.saturating_add(other.failed_ips);
        self.failed_accounts.merge(&other.failed_accounts);
        self.failed_flagged |= other.failed_flagged;
    }
}

/// One past bin as the baseline remembers it. Kept small: a series holds weeks of these.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BinRecord {
    pub total: u32,
    pub success: u32,
    pub failure: u32,
    /// Distinct users and source addresses among the failed attempts (see [`Counts`]).
    pub failed_users: u32,
    pub failed_ips: u32,
    /// False when the source could not say what the bin held (a failed query). Unknown
    /// bins neither teach the baseline nor count as silence.
    pub known: bool,
    /// A detector found the bin anomalous: it is kept out of the baseline.
    pub anomalous: bool,
    /// What the baseline expected of `total` before the level adjustment, so that the
    /// recent level can be measured against it later.
    pub seasonal_total: f32,
    /// What the baseline expected of `total`, level adjustment included.
    pub expected_total: f32,
    /// What the baseline expected of `failure`; negative when there was no
    /// expectation (warm-up), so sliding windows over it are not judged.
    pub expected_failure: f32,
    /// How much of the bin was silent before its first event and after its last, in
    /// 256ths of the bin, rounded down (0 when the source could not tell: no silence
    /// is credited). Where inside a bin the stream stopped is what tells a 35-minute
    /// blind spot from a quiet night (see `detect::flatline`). Two bytes that fit in
    /// the record's padding: the record stays 36 bytes.
    pub quiet_before: u8,
    pub quiet_after: u8,
}

impl BinRecord {
    /// The record of bin `bin` (of `bin_ms` milliseconds) that held `c`.
    pub fn from_counts(c: Counts, bin: i64, bin_ms: i64) -> BinRecord {
        let clamp = |x: u64| x.min(u64::from(u32::MAX)) as u32;
        let start = bin.saturating_mul(bin_ms);
        let end = start.saturating_add(bin_ms);
        // In 256ths of the bin, rounded down, so the silence credited is never more
        // than there was.
        let share = |ms: i64| -> u8 {
            if bin_ms <= 0 {
                return 0;
            }
            let x = i128::from(ms.clamp(0, bin_ms)) * 256 / i128::from(bin_ms);
            x.clamp(0, 255) as u8
        };
        let (quiet_before, quiet_after) = match c.span {
            Some(s) if c.total > 0 => (
                share(s.first_ms.saturating_sub(start)),
                share(end.saturating_sub(s.last_ms)),
            ),
            _ => (0, 0),
        };
        BinRecord {
            total: clamp(c.total),
            success: clamp(c.success),
            failure: clamp(c.failure),
            failed_users: clamp(c.failed_users),
            failed_ips: clamp(c.failed_ips),
            known: true,
            anomalous: false,
            seasonal_total: 0.0,
            expected_total: 0.0,
            expected_failure: -1.0,
            quiet_before,
            quiet_after,
        }
    }

    /// The share of the bin known to be silent before its first event (all of it when
    /// the bin held none).
    pub fn silent_before(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            f64::from(self.quiet_before) / 256.0
        }
    }

    /// The share of the bin known to be silent after its last event (all of it when
    /// the bin held none).
    pub fn silent_after(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            f64::from(self.quiet_after) / 256.0
        }
    }

    /// Where in bin `bin` (of `bin_ms`) the record's events lie, as far as it knows:
    /// the silent shares at its edges turned back into times, rounded inwards, so
    /// `from_counts` of the result gives the same shares. `None` for an empty bin.
    pub fn span(&self, bin: i64, bin_ms: i64) -> Option<Span> {
        if self.total == 0 || bin_ms <= 0 {
            return None;
        }
        let start = bin.saturating_mul(bin_ms);
        let end = start.saturating_add(bin_ms);
        let back = |q: u8| ((i128::from(q) * i128::from(bin_ms) + 255) / 256) as i64;
        let first_ms = start + back(self.quiet_before);
        let last_ms = (end - back(self.quiet_after)).max(first_ms);
        Some(Span { first_ms, last_ms })
    }

    /// The counts this record holds (without the times of its events: a record knows
    /// only the silent shares at its edges; see [`BinRecord::span`]).
    pub fn counts(&self) -> Counts {
        Counts {
            total: u64::from(self.total),
            success: u64::from(self.success),
            failure: u64::from(self.failure),
            failed_users: u64::from(self.failed_users),
            failed_ips: u64::from(self.failed_ips),
            span: None,
            failed_accounts: FailedAccounts::default(),
            failed_flagged: false,
        }
    }

    /// Usable as a baseline sample.
    pub fn is_clean(&self) -> bool {
        self.known && !self.anomalous
    }
}

mod accounts;
mod history;
pub use accounts::FailedAccounts;
pub use history::History;

/// What a source tells the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The absolute counts of one series in one bin.
    Observe {
        rule: RuleId,
        bin: BinIndex,
        labels: Labels,
        counts: Counts,
    },
    /// The source could not read this bin.
    Unknown { rule: RuleId, bin: BinIndex },
    /// Every bin before `end_bin` is final: evaluate them.
    Close { rule: RuleId, end_bin: BinIndex },
    /// The bins before `end_bin` that hold no observation are a hole in the input (a
    /// replayed file that jumps ahead in time): they are unknown, like
    /// [`Update::Unknown`], and skipped in one step however many there are.
    Skip { rule: RuleId, end_bin: BinIndex },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz driver: two Logs Insights rows of `n = 1e300` for one bin.
    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut c = Counts::default();
        c.add(OutcomeClass::Failure, u64::MAX);
        c.add(OutcomeClass::Failure, u64::MAX);
        c.add(OutcomeClass::Success, u64::MAX);
        assert_eq!(
            (c.total, c.failure, c.success),
            (u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(c.other(), 0);
        let big = Counts {
            failed_users: u64::MAX,
            ..c
        };
        c.merge(&big);
        assert_eq!(c.failed_users, u64::MAX);
    }

    #[test]
    fn outcome_classes() {
        assert_eq!(OutcomeClass::of("SUCCESS"), OutcomeClass::Success);
        assert_eq!(OutcomeClass::of("DENY"), OutcomeClass::Failure);
        assert_eq!(OutcomeClass::of("CHALLENGE"), OutcomeClass::Other);
        let mut c = Counts::default();
        c.add(OutcomeClass::Success, 3);
        c.add(OutcomeClass::Failure, 2);
        c.add(OutcomeClass::Other, 1);
        assert_eq!((c.total, c.success, c.failure, c.other()), (6, 3, 2, 1));
    }

    #[test]
    fn spans_merge_only_when_both_sides_know_their_times() {
        let mut a = Counts::default();
        a.add_at(OutcomeClass::Success, 1, 5_000);
        a.add_at(OutcomeClass::Failure, 1, 2_000);
        assert_eq!(
            a.span,
            Some(Span {
                first_ms: 2_000,
                last_ms: 5_000
            })
        );
        // An empty side changes nothing; a side that cannot tell makes the whole unknown.
        let mut b = a;
        b.merge(&Counts::default());
        assert_eq!(b.span, a.span);
        let mut c = Counts::default();
        c.merge(&a);
        assert_eq!(c.span, a.span);
        let mut d = a;
        d.merge(&Counts {
            total: 3,
            ..Counts::default()
        });
        assert_eq!((d.total, d.span), (5, None));
    }

    #[test]
    fn records_keep_the_silent_edges_of_their_bin() {
        const B: i64 = 900_000;
        assert_eq!(
            std::mem::size_of::<BinRecord>(),
            36,
            "the record must stay small"
        );
        let mut c = Counts::default();
        c.add_at(OutcomeClass::Success, 1, 10 * B + 300_000);
        c.add_at(OutcomeClass::Success, 1, 10 * B + 450_000);
        let r = BinRecord::from_counts(c, 10, B);
        // A third of the bin silent before, half of it after (rounded down).
        assert_eq!((r.quiet_before, r.quiet_after), (85, 128));
        assert!((r.silent_before() - 85.0 / 256.0).abs() < 1e-12);
        assert!(r.silent_before() <= 1.0 / 3.0 && r.silent_after() <= 0.5);
        // Back to times and again to shares: the same record.
        let back = BinRecord::from_counts(
            Counts {
                span: r.span(10, B),
                ..r.counts()
            },
            10,
            B,
        );
        assert_eq!(back, r);
        // Without times no silence is credited; an empty bin is silent throughout.
        let blind = BinRecord::from_counts(
            Counts {
                total: 2,
                ..Counts::default()
            },
            10,
            B,
        );
        assert_eq!((blind.silent_before(), blind.silent_after()), (0.0, 0.0));
        let empty = BinRecord::from_counts(Counts::default(), 10, B);
        assert_eq!((empty.silent_before(), empty.silent_after()), (1.0, 1.0));
        assert_eq!(empty.span(10, B), None);
    }

    proptest::proptest! {
        /// Whatever the times, the silence credited never exceeds the silence there was.
        #[test]
        fn silent_shares_never_overstate(first in 0i64..900_000, len in 0i64..900_000) {
            const B: i64 = 900_000;
            let last = (first + len).min(B - 1);
            let mut c = Counts::default();
            c.add_at(OutcomeClass::Success, 1, 7 * B + first);
            c.add_at(OutcomeClass::Success, 1, 7 * B + last);
            let r = BinRecord::from_counts(c, 7, B);
            proptest::prop_assert!(r.silent_before() * B as f64 <= first as f64);
            proptest::prop_assert!(r.silent_after() * B as f64 <= (B - last) as f64);
            proptest::prop_assert!(r.silent_before() * B as f64 > first as f64 - B as f64 / 256.0);
        }
    }
}
