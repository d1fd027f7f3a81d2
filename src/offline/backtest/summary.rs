//! The plain summary a backtest prints: what was read and how fast, the alerts per rule
//! and detector, and each rule's warm-up.

use std::collections::BTreeMap;

use super::Outcome;
use crate::alert::Status;
use crate::rule::RuleSpec;

/// A plain summary: throughput, what was read, and alerts per rule and detector.
pub fn summary(o: &Outcome, rules: &[RuleSpec]) -> String {
    let mut t = what_was_read(o);
    t.push_str(&alerts_per_rule(o, rules));
    if o.held_waves > 0 {
        t.push_str(&format!(
            "  {} pages held (not written): most of their failures came from addresses that got in within the same bin, a wave of people retrying (a help-desk password reset), not an attack or an outage\n",
            o.held_waves
        ));
        for h in &o.held {
            t.push_str(&format!(
                "    {} {} ({}) at {}: {} of {} failures from addresses that got in\n",
                h.rule,
                h.detector,
                h.kind,
                crate::alert::rfc3339(h.bin_start_ms),
                h.retries.retried,
                h.retries.failures
            ));
        }
        if o.held_waves > o.held.len() as u64 {
            t.push_str(&format!(
                "    ... and {} more\n",
                o.held_waves - o.held.len() as u64
            ));
        }
    }
    // Warm-up said out loud: bins learned but never judged are not "quiet".
    let warm_up = warm_up(o);
    t.push_str(&warm_up);
    if o.alerts.is_empty() {
        if warm_up.is_empty() {
            t.push_str("  no alerts: nothing in this history would have paged.\n");
        } else {
            t.push_str("  no alerts: nothing judged after the warm-up above would have paged.\n");
        }
    }
    t
}

/// The summary's head: what was read, how fast, and what was skipped or dropped.
fn what_was_read(o: &Outcome) -> String {
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let s = &o.stats;
    let mut t = String::new();
    match &o.csv {
        None => {
            t.push_str(&format!(
                "\nauthpulse backtest summary\n  read {} lines ({:.1} MB uncompressed) in {:.2} s: {:.0} MB/s, {:.0} events/s\n",
                s.lines,
                o.bytes as f64 / 1e6,
                secs,
                o.bytes as f64 / 1e6 / secs,
                s.bins.events as f64 / secs
            ));
            t.push_str(&format!(
                "  events counted by rules: {}   duplicates removed: {}   malformed input skipped: {}   blank: {}\n",
                s.bins.matched, s.bins.duplicates, s.malformed, s.blank
            ));
            if s.sorted {
                t.push_str(&format!(
                    "  the input was not in time order: replayed sorted ({:.1} MB sorted on disk)\n",
                    s.spilled_bytes as f64 / 1e6
                ));
            }
            t.push_str(&format!(
                "  events dropped: {} (late: {}, outside the time window: {})\n",
                s.dropped(),
                s.bins.late,
                s.outside_window
            ));
            if !s.examples.is_empty() {
                t.push_str("  first problems:\n");
                for e in &s.examples {
                    t.push_str(&format!("    {e}\n"));
                }
            }
        }
        Some(csv) => {
            t.push_str(&format!(
                "\nauthpulse backtest summary (CSV of binned counts)\n  read {} lines in {:.2} s: {} rows of counts, {} bad rows skipped, {} blank\n",
                s.lines, secs, csv.rows, csv.bad_count, s.blank
            ));
            for bad in &csv.bad {
                t.push_str(&format!("    bad row, {bad}\n"));
            }
            if csv.bad_count > csv.bad.len() as u64 {
                t.push_str(&format!(
                    "    ... and {} more bad rows\n",
                    csv.bad_count - csv.bad.len() as u64
                ));
            }
            for skip in &csv.skipped {
                t.push_str(&format!(
                    "  rule {:?} not fed: {}\n",
                    skip.rule, skip.reason
                ));
            }
        }
    }
    t
}

/// Firing notices per rule, and firing and resolved per detector.
fn alerts_per_rule(o: &Outcome, rules: &[RuleSpec]) -> String {
    let mut t = String::new();
    let mut per: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for a in &o.alerts {
        let e = per.entry((a.rule.as_str(), a.detector.name())).or_default();
        match a.status {
            Status::Firing => e.0 += 1,
            Status::Resolved => e.1 += 1,
        }
    }
    t.push_str("  alerts per rule:\n");
    for r in rules {
        let fired: usize = per
            .iter()
            .filter(|((rule, _), _)| *rule == r.name)
            .map(|(_, v)| v.0)
            .sum();
        t.push_str(&format!("    {:<24} {} firing notices\n", r.name, fired));
        for ((_, det), (f, res)) in per.iter().filter(|((rule, _), _)| *rule == r.name) {
            t.push_str(&format!(
                "      {det:<16} firing {f:>3}   resolved {res:>3}\n"
            ));
        }
    }
    t
}

/// The rules' warm-up (bins learned, not judged); empty when every rule judged from its
/// first bin.
fn warm_up(o: &Outcome) -> String {
    let mut t = String::new();
    for w in &o.warmup {
        let line = match (w.first_ms, w.warm_from_ms) {
            (Some(first), Some(from)) if from > first => format!(
                "    {:<24} from {} until {}\n",
                w.rule,
                crate::alert::rfc3339(first),
                crate::alert::rfc3339(from)
            ),
            (None, _) => format!("    {:<24} saw no events: judged nothing\n", w.rule),
            _ => continue,
        };
        if t.is_empty() {
            t.push_str("  warm-up (bins learned, not judged):\n");
        }
        t.push_str(&line);
    }
    t
}
