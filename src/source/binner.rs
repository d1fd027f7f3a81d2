//! Local binning: events in, per-rule bin counts out — what the Logs Insights query
//! `stats count(*), count_distinct(actor), count_distinct(ip) by bin(15m),
//! detail.outcome.result[, split field]` computes, done on this machine for the file
//! source and the backtest. The distinct users and addresses are kept for failed
//! attempts only (see [`Counts`]), per failing `outcome.result` value like the query's
//! rows, as 64-bit hashes: a bin of a busy tenant holds a few hundred of them. A rule's
//! `approvals` successes count in the total only, as its query's rows by type do.
//!
//! Events may arrive slightly out of order. A bin is handed to the pipeline once the
//! newest event seen is `lateness` past the bin's end; an event for a bin already
//! handed over is counted as late and dropped (the same trade-off `settle` makes for
//! CloudWatch). A replay that must not drop anything sorts its input first (see
//! [`crate::source::reorder`]) or starts over sorted at the first late event.
//!
//! Okta delivers at least once: an event whose `uuid` was already counted is a duplicate
//! and is counted once. The uuids are kept per open bin only, so memory stays bounded
//! while the removal is exact for any input in time order.
//!
//! Silence is data, but a file that jumps ahead by months has a hole, not an outage: the
//! first day of a gap between events is closed bin by bin (an outage pages as it would
//! live), the rest is handed over as one [`Update::Skip`] — unknown bins, in one step.

mod cell;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::event::Event;
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Labels, RuleId, Update};
use cell::{Cell, Keyed};

/// What one rule needs to bin events.
struct RuleBins {
    matcher: crate::rule::EventMatch,
    bin_ms: i64,
    split_by: Option<String>,
    /// Which failed attempts' details the rule's query asks for (the binner keeps the
    /// same, so that both sources give a rule the same counts).
    reads: crate::rule::Reads,
    /// Open bins: bin index → split value ("" without split) → counts.
    open: BTreeMap<i64, HashMap<Box<str>, Cell, Keyed>>,
    /// Bins before this were handed to the pipeline.
    flushed_before: Option<i64>,
    /// The newest bin handed over with counts.
    last_observed: Option<i64>,
    /// Silent bins closed one by one before the rest of a gap is skipped.
    max_silent_bins: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BinnerStats {
    /// Events taken in, duplicates included.
    pub events: u64,
    /// Events that at least one rule counted (each once, however many rules).
    pub matched: u64,
    /// Events (each once) dropped because a bin they belong to was already handed over.
    pub late: u64,
    /// Events whose `uuid` was already counted (removed: Okta delivers at least once).
    pub duplicates: u64,
}

/// What [`Binner::add`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Counted by the rules that match it (possibly none).
    Counted,
    /// Already counted under the same `uuid`.
    Duplicate,
    /// A rule that matches it had already handed its bin over.
    Late,
}

/// A `uuid` as kept for duplicate removal: Okta's canonical form as 128 bits, anything
/// else as the string itself (never a hash: the removal is exact).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Uuid {
    Canonical(u128),
    Other(Box<str>),
}

impl Uuid {
    fn of(s: &str) -> Uuid {
        let b = s.as_bytes();
        if b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-') {
            let mut v = 0u128;
            let mut ok = true;
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    continue;
                }
                // Lower-case hex only: the canonical form.
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    _ => {
                        ok = false;
                        0
                    }
                };
                v = (v << 4) | u128::from(d);
            }
            if ok {
                return Uuid::Canonical(v);
            }
        }
        Uuid::Other(s.into())
    }
}

/// One day: the silence closed bin by bin before the rest of a gap is skipped.
pub const MAX_SILENCE: std::time::Duration = std::time::Duration::from_secs(86_400);

pub struct Binner {
    rules: Vec<RuleBins>,
    lateness_ms: i64,
    /// The oldest event time seen (`i64::MAX` before any).
    oldest_ms: i64,
    newest_ms: i64,
    stats: BinnerStats,
    /// The width of the uuid buckets: the narrowest rule bin.
    seen_ms: i64,
    /// uuids of the events in open bins, by `published` bucket.
    seen: BTreeMap<i64, HashSet<Uuid, BuildHasherDefault<UuidHasher>>>,
    /// Scratch: the rules matching the event being added.
    matching: Vec<usize>,
}

/// uuids are random: a multiply-rotate hash of their bits spreads them as well as SipHash
/// does, for a fraction of the cost (the set is per bin and never exposed to a peer).
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
}

impl Binner {
    pub fn new<'a>(
        rules: impl IntoIterator<Item = &'a RuleSpec>,
        lateness: std::time::Duration,
    ) -> Binner {
        let rules: Vec<RuleBins> = rules
            .into_iter()
            .map(|r| {
                let bin_ms = r.bin_ms().max(1);
                RuleBins {
                    matcher: r.event_match(),
                    bin_ms,
                    split_by: r.split_by.clone(),
                    reads: r.reads(),
                    open: BTreeMap::new(),
                    flushed_before: None,
                    last_observed: None,
                    max_silent_bins: (MAX_SILENCE.as_millis() as i64 / bin_ms).max(1),
                }
            })
            .collect();
        Binner {
            seen_ms: rules.iter().map(|r| r.bin_ms).min().unwrap_or(1),
            rules,
            lateness_ms: lateness.as_millis() as i64,
            newest_ms: i64::MIN,
            oldest_ms: i64::MAX,
            stats: BinnerStats::default(),
            seen: BTreeMap::new(),
            matching: Vec::new(),
        }
    }

    /// Close at most `silence` of a gap between events bin by bin (default
    /// [`MAX_SILENCE`]); the rest is skipped as unknown.
    pub fn with_max_silence(mut self, silence: std::time::Duration) -> Binner {
        for r in &mut self.rules {
            r.max_silent_bins = (silence.as_millis() as i64 / r.bin_ms).max(1);
        }
        self
    }

    pub fn stats(&self) -> BinnerStats {
        self.stats
    }

    /// Count one event into every rule that matches it.
    pub fn add(&mut self, e: &Event<'_>) -> Added {
        self.stats.events += 1;
        // The rules that count this event, found once.
        let mut matching = std::mem::take(&mut self.matching);
        matching.clear();
        matching.extend(
            self.rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.matcher.matches(e))
                .map(|(i, _)| i),
        );
        let added = self.add_to(e, &matching);
        self.matching = matching;
        added
    }

    fn add_to(&mut self, e: &Event<'_>, matching: &[usize]) -> Added {
        // A bin already handed over cannot take the event: drop it whole (counting it in
        // the rules whose bins are still open would make the rules disagree).
        if matching.iter().any(|&i| {
            let r = &self.rules[i];
            r.flushed_before
                .is_some_and(|f| e.published_ms.div_euclid(r.bin_ms) < f)
        }) {
            self.stats.late += 1;
            return Added::Late;
        }
        if let (Some(uuid), false) = (e.uuid.as_deref(), matching.is_empty()) {
            let bucket = e.published_ms.div_euclid(self.seen_ms);
            if !self.seen.entry(bucket).or_default().insert(Uuid::of(uuid)) {
                self.stats.duplicates += 1;
                return Added::Duplicate;
            }
        }
        self.newest_ms = self.newest_ms.max(e.published_ms);
        self.oldest_ms = self.oldest_ms.min(e.published_ms);
        if matching.is_empty() {
            return Added::Counted;
        }
        for &i in matching {
            let r = &mut self.rules[i];
            let class = r.matcher.class(e);
            let bin = e.published_ms.div_euclid(r.bin_ms);
            let key = match &r.split_by {
                None => "",
                Some(field) => e.field(field).unwrap_or("(none)"),
            };
            let bins = r.open.entry(bin).or_default();
            match bins.get_mut(key) {
                Some(c) => c.add(e, class),
                None => {
                    let mut c = Cell::default();
                    c.add(e, class);
                    bins.insert(key.into(), c);
                }
            }
        }
        self.stats.matched += 1;
        Added::Counted
    }

    /// Forget the uuids of events older than `before_ms` (the flush horizon: in time
    /// order no copy of them can come any more).
    fn prune_seen(&mut self, before_ms: i64) {
        let keep = self.seen.split_off(&before_ms.div_euclid(self.seen_ms));
        self.seen = keep;
    }

    /// Emit the counts of every bin that is final (newest event past its end +
    /// lateness), followed by a close of those bins.
    pub fn flush_ready(&mut self, out: &mut Vec<Update>) {
        if self.newest_ms == i64::MIN {
            return;
        }
        let horizon = self.newest_ms - self.lateness_ms;
        for i in 0..self.rules.len() {
            // Bins whose end is at or before the horizon: index < horizon / bin_ms.
            let end_bin = horizon.div_euclid(self.rules[i].bin_ms);
            self.flush_rule(i, end_bin, out);
        }
        self.prune_seen(horizon);
    }

    /// Emit and close everything (end of input).
    pub fn flush_all(&mut self, out: &mut Vec<Update>) {
        for i in 0..self.rules.len() {
            let end = self.rules[i].open.keys().next_back().map(|b| b + 1);
            if let Some(end) = end {
                self.flush_rule(i, end, out);
            }
        }
        self.seen.clear();
    }

    fn flush_rule(&mut self, rule: usize, end_bin: i64, out: &mut Vec<Update>) {
        let oldest_bin = self.oldest_ms.div_euclid(self.rules[rule].bin_ms);
        let r = &mut self.rules[rule];
        if r.flushed_before.is_some_and(|f| end_bin <= f) {
            return;
        }
        let keep = r.open.split_off(&end_bin);
        let ready = std::mem::replace(&mut r.open, keep);
        // A rule over totals closes from the start of the input even before it matched
        // anything: silence is data (a rule over a rare signal learns that it is rare).
        if ready.is_empty()
            && r.flushed_before.is_none()
            && (r.split_by.is_some() || end_bin <= oldest_bin)
        {
            return;
        }
        for (bin, values) in ready {
            r.skip_gap(rule, bin, out);
            r.last_observed = Some(bin);
            for (value, cell) in values {
                let counts = cell.finish(r.reads);
                let mut labels = Labels::new();
                if let Some(field) = &r.split_by {
                    labels.insert(field.clone(), value.into_string());
                }
                out.push(Update::Observe {
                    rule: RuleId(rule),
                    bin: BinIndex(bin),
                    labels,
                    counts,
                });
            }
        }
        r.skip_gap(rule, end_bin, out);
        r.flushed_before = Some(end_bin);
        out.push(Update::Close {
            rule: RuleId(rule),
            end_bin: BinIndex(end_bin),
        });
    }
}

impl RuleBins {
    /// Before handing over `next` (an observed bin, or the end of a flush): when the
    /// silence since the last observed bin is longer than `max_silent_bins`, close its
    /// first `max_silent_bins` bins and skip the rest in one step.
    fn skip_gap(&self, rule: usize, next: i64, out: &mut Vec<Update>) {
        let Some(last) = self.last_observed else {
            return;
        };
        let silent_from = last + 1;
        if next - silent_from <= self.max_silent_bins {
            return;
        }
        let close = silent_from + self.max_silent_bins;
        if self.flushed_before.is_none_or(|f| f < close) {
            out.push(Update::Close {
                rule: RuleId(rule),
                end_bin: BinIndex(close),
            });
        }
        out.push(Update::Skip {
            rule: RuleId(rule),
            end_bin: BinIndex(next),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::Duration;

    fn ev(ms: i64, result: &'static str, ip: &'static str) -> Event<'static> {
        Event {
            published_ms: ms,
            event_type: Cow::Borrowed("user.session.start"),
            result: Cow::Borrowed(result),
            ip: Some(Cow::Borrowed(ip)),
            ..Event::default()
        }
    }

    #[test]
    fn bins_wait_for_lateness_then_close() {
        let rule = RuleSpec::named("r");
        let mut b = Binner::new([&rule], Duration::from_secs(60));
        let mut out = Vec::new();
        let closes = |out: &[Update]| -> Vec<i64> {
            out.iter()
                .filter_map(|u| match u {
                    Update::Close {
                        end_bin: BinIndex(end_bin),
                        ..
                    } => Some(*end_bin),
                    _ => None,
                })
                .collect()
        };
        b.add(&ev(0, "SUCCESS", "a"));
        b.add(&ev(1000, "FAILURE", "a"));
        b.add(&ev(900_000 + 30_000, "SUCCESS", "a"));
        b.flush_ready(&mut out);
        assert!(out.is_empty(), "bin 0 is not final yet");
        b.add(&ev(900_000 + 61_000, "SUCCESS", "a"));
        b.flush_ready(&mut out);
        assert_eq!(closes(&out), vec![1]);
        assert!(
            matches!(&out[0], Update::Observe { bin: BinIndex(0), counts, .. } if counts.total == 2 && counts.failure == 1)
        );
        // An event for bin 0 now is late.
        b.add(&ev(2000, "FAILURE", "a"));
        assert_eq!(b.stats().late, 1);
        b.flush_all(&mut out);
        assert_eq!(closes(&out), vec![1, 2]);
        assert_eq!(b.stats().matched, 4);
    }

    #[test]
    fn failed_attempts_count_distinct_users_and_addresses() {
        let mut rule = RuleSpec::named("r");
        rule.split_by = Some("client.ipAddress".into());
        let mut b = Binner::new([&rule], Duration::ZERO);
        for (user, result) in [
            ("a", "FAILURE"),
            ("b", "FAILURE"),
            ("b", "FAILURE"),
            ("c", "SUCCESS"),
            ("d", "DENY"),
        ] {
            let mut e = ev(0, result, "203.0.113.5");
            e.user = Some(Cow::Borrowed(user));
            b.add(&e);
        }
        let mut e = ev(0, "FAILURE", "203.0.113.5");
        e.user = None;
        b.add(&e);
        let mut out = Vec::new();
        b.flush_all(&mut out);
        let Some(Update::Observe { counts, .. }) = out.first() else {
            panic!("no counts: {out:?}");
        };
        // a, b under FAILURE and d under DENY; the attempt without a user counts, but
        // not as a user. One address per failing result value.
        assert_eq!(
            (counts.failure, counts.failed_users, counts.failed_ips),
            (5, 3, 2)
        );
    }

    #[test]
    fn events_counted_by_several_rules_count_once() {
        let (a, b) = (RuleSpec::named("a"), RuleSpec::named("b"));
        let mut binner = Binner::new([&a, &b], Duration::ZERO);
        for ms in [0, 1000, 2000] {
            binner.add(&ev(ms, "SUCCESS", "x"));
        }
        assert_eq!((binner.stats().events, binner.stats().matched), (3, 3));
    }

    #[test]
    fn a_repeated_uuid_counts_once() {
        let rule = RuleSpec::named("r");
        let mut b = Binner::new([&rule], Duration::ZERO);
        let with = |uuid: &'static str| {
            let mut e = ev(0, "FAILURE", "a");
            e.uuid = Some(Cow::Borrowed(uuid));
            e
        };
        assert_eq!(
            b.add(&with("5B1F0B1E-6C1E-11EE-8C99-0242AC120002")),
            Added::Counted
        );
        assert_eq!(
            b.add(&with("5b1f0b1e-6c1e-11ee-8c99-0242ac120002")),
            Added::Counted
        );
        assert_eq!(
            b.add(&with("5b1f0b1e-6c1e-11ee-8c99-0242ac120002")),
            Added::Duplicate
        );
        assert_eq!(b.add(&with("not-a-uuid")), Added::Counted);
        assert_eq!(b.add(&with("not-a-uuid")), Added::Duplicate);
        assert_eq!(b.stats().duplicates, 2);
        let mut out = Vec::new();
        b.flush_all(&mut out);
        assert!(matches!(&out[0], Update::Observe { counts, .. } if counts.failure == 3));
    }

    #[test]
    fn a_long_gap_closes_one_day_then_skips() {
        let rule = RuleSpec::named("r");
        let mut b = Binner::new([&rule], Duration::ZERO);
        let day_bins = 96;
        b.add(&ev(0, "SUCCESS", "a"));
        b.add(&ev(10 * 86_400_000, "SUCCESS", "a"));
        let mut out = Vec::new();
        b.flush_all(&mut out);
        let kinds: Vec<String> = out
            .iter()
            .map(|u| match u {
                Update::Observe {
                    bin: BinIndex(bin), ..
                } => format!("observe {bin}"),
                Update::Close {
                    end_bin: BinIndex(end_bin),
                    ..
                } => format!("close {end_bin}"),
                Update::Skip {
                    end_bin: BinIndex(end_bin),
                    ..
                } => format!("skip {end_bin}"),
                Update::Unknown {
                    bin: BinIndex(bin), ..
                } => format!("unknown {bin}"),
            })
            .collect();
        let last = 10 * day_bins;
        assert_eq!(
            kinds,
            vec![
                "observe 0".to_string(),
                format!("close {}", 1 + day_bins),
                format!("skip {last}"),
                format!("observe {last}"),
                format!("close {}", last + 1),
            ]
        );
    }

    #[test]
    fn other_event_types_are_ignored() {
        let rule = RuleSpec::named("r");
        let mut b = Binner::new([&rule], Duration::ZERO);
        let mut e = ev(0, "SUCCESS", "a");
        e.event_type = Cow::Borrowed("user.session.end");
        b.add(&e);
        assert_eq!(b.stats().matched, 0);
        assert_eq!(b.stats().events, 1);
    }
}
