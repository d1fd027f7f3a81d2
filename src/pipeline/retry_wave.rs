//! A wave of people failing and then getting in is not an attack on their passwords.
//!
//! A help-desk password reset for a few hundred people, a forced change after a breach
//! notice, a new hire cohort behind one office's NAT: for an hour or two, failed
//! sign-ins run at ten to eighty times their usual rate, each from a real account, and
//! the rules over totals page `credential_stuffing` (traffic from outside, issue 10: a
//! reset wave of 190–283 people paged in 5 of 5 seeds). The counts cannot tell it from
//! stuffing; who fails can. A person who fails with the old password gets in minutes
//! later from the same office or home address; a stuffing run's proxies and a sprayer's
//! addresses never do, or get in for one account in a hundred.
//!
//! So the rule split by source address (the built-in `password-spraying`) counts, per
//! bin and before its top-K cut, each address's failures up to [`RETRIES_PER_SUCCESS`]
//! per success there: *retried* failures (a person retries a few times and gets in once;
//! a spraying address with 300 failures and 2 hits retried 6). A page read from the
//! bins' failures — `failure_spike`, `failure_ratio` or `volume_spike` of a rule over
//! every sign-in, or `failing_sources` — as an attack (`credential_stuffing`,
//! `password_spraying`, `brute_force`) or an outage, whose incident's bins hold failures
//! of which at least [`WAVE_SHARE`] were retried, is *held*: not sent, logged with its
//! counts, counted (`authpulse_alerts_held_total`, the backtest summary); its repeats
//! and resolve are dropped with it. Pages about a few addresses (a brute force, a
//! sprayer, `distributed_spraying`) and the signal rules' pages are not judged: a
//! handful of hostile addresses hide among the people who retry, and the bins' share
//! would hold them (it held three distributed sprayings and a blocked stuffing run of
//! the hard simulator until they were left out).
//!
//! Measured on the outside traffic (`scripts/outside-traffic.py`, seeds 1–5): reset
//! waves 0.77–0.81 retried; every stuffing, spraying and blocked-stuffing incident of
//! either generator at most 0.43, most under 0.1. An attack hidden in a real wave adds
//! failures from addresses that do not get in: a wave at 0.8 falls below two thirds
//! once the attack adds a fifth to its failures. A repeat of a held incident is judged
//! again on its last hour, so an attack that follows a wave within the same incident
//! still pages.
//!
//! Outages are judged as attacks are: a wave in which most attempts fail reads as one
//! to `failure_spike`, while a real outage's failures come from people who do not get
//! in, and pass. Pages read from missing successes, volume or silence are not judged.
//!
//! Rules before the source rule close a bin before its counts are known, so their pages
//! of those kinds wait here until the source rule has closed the bins they cover (or
//! given up on them: a bin it could not read holds no evidence and holds nothing back),
//! or the input ends (a backtest). In the daemon every rule's poll closes its bins, so a
//! page waits at most one poll.

use std::collections::{BTreeMap, HashSet};

use crate::alert::{Alert, AlertDetector, Status};
use crate::alert_kind::AlertKind;
use crate::detect::DetectorKind;
use crate::rule::RuleSpec;
use crate::series::{Counts, LabelMap};

/// How many of an address's failures one of its successes accounts for.
pub const RETRIES_PER_SUCCESS: u64 = 3;

/// The share of an incident's failures that must be retried for its page to be held.
pub const WAVE_SHARE: f64 = 2.0 / 3.0;

/// How many notices may wait for the source rule; beyond, the oldest is judged on what
/// is known.
const MAX_WAITING: usize = 1000;

/// How far back a repeat of a held incident is judged again.
const REJUDGE_MS: i64 = 3_600_000;

/// How long noted bins are kept behind the newest.
const KEEP_MS: i64 = 2 * 86_400_000;

/// Retried failures and all failures of one bin of the source rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retries {
    pub retried: u64,
    pub failures: u64,
}

impl Retries {
    /// Of one bin's per-address counts.
    pub fn of(observed: &LabelMap<Counts>) -> Retries {
        observed.values().fold(Retries::default(), |r, c| {
            r.plus(Retries {
                retried: c.failure.min(c.success.saturating_mul(RETRIES_PER_SUCCESS)),
                failures: c.failure,
            })
        })
    }

    fn plus(self, other: Retries) -> Retries {
        Retries {
            retried: self.retried + other.retried,
            failures: self.failures + other.failures,
        }
    }
}

/// How many held pages are kept for the backtest summary (the count goes on).
const HELD_KEPT: usize = 20;

/// A page held as a retry wave, for the backtest summary.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldPage {
    pub rule: String,
    pub detector: &'static str,
    pub kind: AlertKind,
    pub bin_start_ms: i64,
    pub retries: Retries,
}

#[derive(Debug, Default)]
pub struct RetryWaves {
    /// Bin start (ms) → (bin end, its retries), as the source rule closed them.
    bins: BTreeMap<i64, (i64, Retries)>,
    /// The source rule has closed or given up on everything before this (ms).
    through_ms: Option<i64>,
    /// Notices of rules before the source rule, waiting for its bins, in order.
    pending: Vec<Alert>,
    /// Fingerprints of held incidents, and of attack incidents that were sent.
    held: HashSet<String>,
    sent: HashSet<String>,
    /// Incidents held so far, and the first [`HELD_KEPT`] of them.
    pub held_count: u64,
    pub held_pages: Vec<HeldPage>,
}

impl RetryWaves {
    /// The source rule closed `[start_ms, end_ms)` with `retries`.
    pub fn note(&mut self, start_ms: i64, end_ms: i64, retries: Retries) {
        self.bins.insert(start_ms, (end_ms, retries));
        if let Some((&newest, _)) = self.bins.last_key_value() {
            self.bins = self.bins.split_off(&(newest - KEEP_MS));
        }
    }

    /// The source rule has closed (or given up on) everything before `end_ms`: pages
    /// that waited for it are judged, in their order, onto `out`.
    pub fn advance(&mut self, end_ms: i64, out: &mut Vec<Alert>) {
        self.through_ms = Some(self.through_ms.map_or(end_ms, |t| t.max(end_ms)));
        self.release(|a, through| a.bin_end.ms() <= through, out);
    }

    /// Screen the notices one rule just wrote (`fresh`, in order) onto `out`. A rule
    /// over every sign-in closes its bins before the source rule does: its pages wait
    /// for the source rule's counts of their bins.
    pub fn screen(&mut self, fresh: Vec<Alert>, out: &mut Vec<Alert>, scope: Scope) {
        for a in fresh {
            let waits = scope == Scope::Totals
                && (self.pending.iter().any(|p| p.fingerprint == a.fingerprint)
                    || (self.decides(&a, scope)
                        && self.through_ms.is_none_or(|t| t < a.bin_end.ms())));
            if waits {
                self.pending.push(a);
            } else {
                self.pass(a, out, scope);
            }
        }
        // A source rule that stopped closing bins must not hold pages back for ever.
        while self.pending.len() > MAX_WAITING {
            let a = self.pending.remove(0);
            tracing::warn!(rule = %a.rule, fingerprint = %a.fingerprint, "page judged without the source rule's counts: too many pages waiting for them");
            self.pass(a, out, Scope::Totals);
        }
    }

    /// The start (ms) of the earliest bin of `rule` with a notice still waiting.
    pub fn earliest_waiting(&self, rule: &str) -> Option<i64> {
        self.pending
            .iter()
            .filter(|a| a.rule == rule)
            .map(|a| a.bin_start.ms())
            .min()
    }

    /// End of input: whatever still waits is judged on what is known.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        self.release(|_, _| true, out);
    }

    fn release(&mut self, due: impl Fn(&Alert, i64) -> bool, out: &mut Vec<Alert>) {
        let through = self.through_ms.unwrap_or(i64::MIN);
        let waiting = std::mem::take(&mut self.pending);
        let mut blocked = HashSet::new();
        for a in waiting {
            // A notice waits behind an earlier one of its incident that still waits.
            if blocked.contains(&a.fingerprint) || !due(&a, through) {
                blocked.insert(a.fingerprint.clone());
                self.pending.push(a);
            } else {
                self.pass(a, out, Scope::Totals);
            }
        }
    }

    /// Whether this notice is one this stage judges: the firing of a page it judges
    /// not yet sent (a first firing, or a repeat of a held incident).
    fn decides(&self, a: &Alert, scope: Scope) -> bool {
        a.status == Status::Firing && judged(a, scope) && !self.sent.contains(&a.fingerprint)
    }

    /// Judge one notice now: onto `out`, or held.
    fn pass(&mut self, a: Alert, out: &mut Vec<Alert>, scope: Scope) {
        let fp = a.fingerprint.clone();
        if a.status == Status::Resolved {
            self.sent.remove(&fp);
            if self.held.remove(&fp) {
                tracing::info!(rule = %a.rule, fingerprint = %fp, "held incident resolved: its resolve is not sent either");
                return;
            }
            out.push(a);
            return;
        }
        if !self.decides(&a, scope) {
            out.push(a);
            return;
        }
        let repeat = self.held.contains(&fp);
        // A page read from a window is judged on the window's bins: a reset wave whose
        // last people gave up on unknown usernames adds up over two hours to a page in
        // a bin where hardly anyone retries any more (outside seed 27).
        let since = if repeat {
            a.bin_end.ms() - REJUDGE_MS
        } else {
            let started = a.started_at.ms();
            a.window_start.map_or(started, |w| started.min(w.ms()))
        };
        let r = self.retries_in(since, a.bin_end.ms());
        if is_wave(r) {
            if !repeat {
                self.held_count += 1;
                self.held.insert(fp.clone());
                if self.held_pages.len() < HELD_KEPT {
                    self.held_pages.push(HeldPage {
                        rule: a.rule.clone(),
                        detector: a.detector.name(),
                        kind: a.kind,
                        bin_start_ms: a.bin_start.ms(),
                        retries: r,
                    });
                }
                metrics::counter!("authpulse_alerts_held_total", "rule" => a.rule.clone())
                    .increment(1);
                tracing::info!(
                    rule = %a.rule,
                    detector = %a.detector,
                    kind = %a.kind,
                    fingerprint = %fp,
                    retried = r.retried,
                    failures = r.failures,
                    "page held: most of these failures came from addresses that got in within the same bin (a help-desk reset wave or a retry storm, not an attack on passwords)"
                );
            }
            return;
        }
        if repeat {
            self.held.remove(&fp);
            tracing::info!(rule = %a.rule, fingerprint = %fp, retried = r.retried, failures = r.failures, "held incident released: its last hour's failures come from addresses that do not get in");
        }
        self.sent.insert(fp);
        out.push(a);
    }

    /// Retries of the noted bins that overlap `[start_ms, end_ms)`.
    fn retries_in(&self, start_ms: i64, end_ms: i64) -> Retries {
        self.bins
            .range(..end_ms)
            .filter(|(_, (end, _))| *end > start_ms)
            .fold(Retries::default(), |acc, (_, (_, r))| acc.plus(*r))
    }
}

/// Which of a rule's pages the bins' retried share speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A rule over every sign-in (no split, no condition): its failures are the bins'
    /// failures. Its pages read from failures (`failure_spike`, `failure_ratio`,
    /// `volume_spike`) are judged.
    Totals,
    /// The source rule: its `failing_sources` page, whose series is every address that
    /// only failed. A page about one address (a brute force, a sprayer) or a handful
    /// (`distributed_spraying`) is not judged: a few hostile addresses hide among the
    /// people who retry, and the bins' share would hold them.
    Source,
    /// Any other rule (a signal rule, whose failures are the signal's): not judged.
    Other,
}

impl Scope {
    /// The scope of rule `index` (`spec`) when the source rule is `source`: the source
    /// rule's own, a rule over every sign-in that closes its bins before it, or other.
    pub fn of(spec: &RuleSpec, index: usize, source: Option<usize>) -> Scope {
        match source {
            Some(s) if index == s => Scope::Source,
            Some(s) if index < s && spec.counts_every_sign_in() => Scope::Totals,
            _ => Scope::Other,
        }
    }
}

/// Whether a page is this stage's to judge: an attack on passwords, or an outage read
/// from failures (a wave where most attempts fail reads as one; an outage's failures
/// come from people who do not get in), of a detector the scope's share speaks for.
fn judged(a: &Alert, scope: Scope) -> bool {
    let AlertDetector::Pipeline(detector) = a.detector else {
        return false;
    };
    let read = match scope {
        Scope::Totals => matches!(
            detector,
            DetectorKind::FailureSpike | DetectorKind::FailureRatio | DetectorKind::VolumeSpike
        ),
        Scope::Source => detector == DetectorKind::FailingSources,
        Scope::Other => false,
    };
    read && matches!(
        a.kind,
        AlertKind::CredentialStuffing
            | AlertKind::PasswordSpraying
            | AlertKind::BruteForce
            | AlertKind::Outage
    )
}

fn is_wave(r: Retries) -> bool {
    r.failures > 0 && r.retried as f64 >= WAVE_SHARE * r.failures as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Timestamp;
    use crate::series::Labels;
    use crate::sink::render::tests::sample_alert;

    const BIN: i64 = 900_000;

    /// A notice of `fingerprint` about bin `bin` (of 15 minutes), its incident begun in
    /// bin `started`.
    fn notice(status: Status, kind: AlertKind, fingerprint: &str, started: i64, bin: i64) -> Alert {
        let mut a = sample_alert(status, "2026-11-25T10:15:00Z");
        a.kind = kind;
        a.fingerprint = fingerprint.into();
        a.started_at = Timestamp::from_ms(started * BIN);
        a.bin_start = Timestamp::from_ms(bin * BIN);
        a.bin_end = Timestamp::from_ms((bin + 1) * BIN);
        a
    }

    fn firing(fingerprint: &str, started: i64, bin: i64) -> Alert {
        notice(
            Status::Firing,
            AlertKind::CredentialStuffing,
            fingerprint,
            started,
            bin,
        )
    }

    fn note(w: &mut RetryWaves, bin: i64, retried: u64, failures: u64) {
        w.note(bin * BIN, (bin + 1) * BIN, Retries { retried, failures });
    }

    fn fingerprints(out: &[Alert]) -> Vec<(&str, Status)> {
        out.iter()
            .map(|a| (a.fingerprint.as_str(), a.status))
            .collect()
    }

    #[test]
    fn retried_failures_count_up_to_three_per_success() {
        let mut observed = LabelMap::default();
        let mut at = |ip: &str, success: u64, failure: u64| {
            let labels: Labels = [("client.ipAddress".to_string(), ip.to_string())].into();
            let c = Counts {
                total: success + failure,
                success,
                failure,
                ..Counts::default()
            };
            observed.insert(labels, c);
        };
        at("office", 30, 10); // typos behind a NAT: all retried
        at("home", 1, 2); // fails twice, gets in
        at("sprayer", 2, 300); // two hits of 302 tries: six
        at("proxy", 0, 1); // a stuffing proxy never gets in
        assert_eq!(
            Retries::of(&observed),
            Retries {
                retried: 10 + 2 + 6,
                failures: 313
            }
        );
    }

    #[test]
    fn a_wave_is_held_with_its_repeats_and_resolve_and_an_attack_is_sent() {
        let mut w = RetryWaves::default();
        note(&mut w, 1, 64, 77); // a reset wave: 83 % retried
        note(&mut w, 2, 1, 17); // a stuffing run: 6 %
        w.advance(3 * BIN, &mut Vec::new());
        let mut out = Vec::new();
        w.screen(
            vec![firing("wave", 1, 1), firing("attack", 2, 2)],
            &mut out,
            Scope::Totals,
        );
        assert_eq!(fingerprints(&out), [("attack", Status::Firing)]);
        assert_eq!(w.held_count, 1);
        let held = &w.held_pages[0];
        assert_eq!((held.retries.retried, held.retries.failures), (64, 77));
        assert_eq!(held.bin_start_ms, BIN);
        // The held incident's resolve is dropped; the sent one's goes out.
        let resolves = vec![
            notice(
                Status::Resolved,
                AlertKind::CredentialStuffing,
                "wave",
                1,
                3,
            ),
            notice(
                Status::Resolved,
                AlertKind::CredentialStuffing,
                "attack",
                2,
                3,
            ),
        ];
        out.clear();
        w.screen(resolves, &mut out, Scope::Totals);
        assert_eq!(fingerprints(&out), [("attack", Status::Resolved)]);
        // Pages of other kinds are not judged: a push flood, a silence.
        let push = notice(Status::Firing, AlertKind::MfaPushFatigue, "push", 1, 1);
        let gap = notice(Status::Firing, AlertKind::PipelineGap, "gap", 1, 1);
        out.clear();
        w.screen(vec![push, gap], &mut out, Scope::Totals);
        assert_eq!(out.len(), 2);
    }

    /// A page read from a window is judged on the window's bins, not its last one: the
    /// end of a reset wave, where hardly anyone retries any more, is still the wave.
    #[test]
    fn a_window_page_is_judged_on_the_windows_bins() {
        let mut w = RetryWaves::default();
        for bin in 1..8 {
            note(&mut w, bin, 40, 50); // the wave: 80 % retried
        }
        note(&mut w, 8, 0, 3); // its last bin: the ones who gave up
        w.advance(9 * BIN, &mut Vec::new());
        let mut out = Vec::new();
        let bin_alone = firing("bin", 8, 8);
        let mut window = firing("window", 8, 8);
        window.window_start = Some(Timestamp::from_ms(BIN));
        w.screen(vec![bin_alone, window], &mut out, Scope::Totals);
        assert_eq!(fingerprints(&out), [("bin", Status::Firing)]);
        assert_eq!(w.held_count, 1);
    }

    #[test]
    fn an_outage_read_from_failures_is_judged_one_read_from_silence_is_not() {
        let mut w = RetryWaves::default();
        note(&mut w, 1, 70, 80);
        w.advance(2 * BIN, &mut Vec::new());
        let from_failures = notice(Status::Firing, AlertKind::Outage, "spike", 1, 1);
        let mut from_volume = notice(Status::Firing, AlertKind::Outage, "drop", 1, 1);
        from_volume.detector = AlertDetector::Pipeline(DetectorKind::VolumeDrop);
        let mut out = Vec::new();
        w.screen(vec![from_failures, from_volume], &mut out, Scope::Totals);
        assert_eq!(fingerprints(&out), [("drop", Status::Firing)]);
    }

    #[test]
    fn pages_of_earlier_rules_wait_for_the_source_rule_in_order() {
        let mut w = RetryWaves::default();
        let mut out = Vec::new();
        // The totals rule closes bins 1 and 2 before the source rule has read them.
        w.screen(vec![firing("wave", 1, 1)], &mut out, Scope::Totals);
        w.screen(
            vec![
                firing("attack", 2, 2),
                notice(
                    Status::Resolved,
                    AlertKind::CredentialStuffing,
                    "wave",
                    1,
                    2,
                ),
            ],
            &mut out,
            Scope::Totals,
        );
        assert!(out.is_empty());
        // The delivery ledger's watermark must not pass a waiting page.
        assert_eq!(w.earliest_waiting("okta-sign-ins"), Some(BIN));
        assert_eq!(w.earliest_waiting("another rule"), None);
        // The source rule reads bin 1: the wave is judged (held), the rest waits.
        note(&mut w, 1, 50, 60);
        w.advance(2 * BIN, &mut out);
        assert!(out.is_empty());
        assert_eq!(w.held_count, 1);
        // Bin 2: the attack goes out, the wave's resolve is dropped.
        note(&mut w, 2, 0, 40);
        w.advance(3 * BIN, &mut out);
        assert_eq!(fingerprints(&out), [("attack", Status::Firing)]);
        assert_eq!(w.earliest_waiting("okta-sign-ins"), None);
        // A repeat of a sent incident does not wait.
        out.clear();
        w.screen(vec![firing("attack", 2, 5)], &mut out, Scope::Totals);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn without_the_source_rules_counts_nothing_is_held() {
        let mut w = RetryWaves::default();
        let mut out = Vec::new();
        w.screen(vec![firing("a", 1, 1)], &mut out, Scope::Totals);
        // A bin the source rule could not read: no evidence, the page goes out.
        w.advance(2 * BIN, &mut out);
        assert_eq!(out.len(), 1);
        // The input ends with a page still waiting: judged on what is known.
        w.screen(vec![firing("b", 4, 4)], &mut out, Scope::Totals);
        w.finish(&mut out);
        assert_eq!(
            fingerprints(&out),
            [("a", Status::Firing), ("b", Status::Firing)]
        );
    }

    #[test]
    fn an_attack_that_follows_a_wave_in_the_same_incident_pages_at_its_repeat() {
        let mut w = RetryWaves::default();
        for bin in 1..=4 {
            note(&mut w, bin, 60, 70);
        }
        for bin in 5..=8 {
            note(&mut w, bin, 2, 90); // the wave is over; proxies fail
        }
        w.advance(9 * BIN, &mut Vec::new());
        let mut out = Vec::new();
        w.screen(vec![firing("x", 1, 2)], &mut out, Scope::Totals);
        assert!(out.is_empty());
        // Its repeat is judged on the last hour: an attack now.
        w.screen(vec![firing("x", 1, 8)], &mut out, Scope::Totals);
        assert_eq!(fingerprints(&out), [("x", Status::Firing)]);
        // Once sent, it stays sent until it resolves.
        w.screen(
            vec![notice(
                Status::Resolved,
                AlertKind::CredentialStuffing,
                "x",
                1,
                9,
            )],
            &mut out,
            Scope::Totals,
        );
        assert_eq!(out.len(), 2);
    }
}
