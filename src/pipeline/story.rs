//! One incident, one story: when an outage explains a bin, attack detectors on the same
//! bins do not page a contradicting kind.
//!
//! When nobody can sign in, every address fails without a success, so the per-source
//! `failing_sources` test sees "credential stuffing" beside the totals rule's correct
//! `outage`: at 3 a.m. that sends the wrong team to the wrong playbook. So the rules
//! over totals (no `split_by`) note which stretches of time their counts show an outage
//! in (successes far below what the baseline expects: see
//! [`super::classify::outage_evidence`]), and a page of any rule whose kind would be an
//! attack on passwords (`credential_stuffing`, `password_spraying`, `brute_force`) in an
//! explained bin, or the bin after it, is folded into the outage: it goes out with
//! `kind = "outage"` and a reason that says why.
//!
//! The totals rule must have closed the bin first. The built-in rules put it first and
//! both the file replay and the CloudWatch source close rules in their order, so it has;
//! a page of a rule that closed earlier keeps its own kind.
//!
//! Stuffing or spraying: several addresses each failing for a few accounts and never
//! succeeding is a spray of this organisation's usernames — or a stuffing run of a combo
//! list from other breaches, most of whose usernames Okta cannot resolve. A rule that
//! counts those failures (`actor.id = "unknown"`, see
//! [`crate::rule::RuleSpec::counts_unknown_users`]) notes each bin it closes, and a
//! `password_spraying` page whose last hour holds unknown usernames beyond chance
//! (beyond one in [`UNKNOWN_BEYOND`] under the baseline, [`UNKNOWN_MIN`] at least) is
//! named `credential_stuffing`, with both counts in its reason. The built-in rules put
//! the signal rules before the per-source one.

use std::collections::{BTreeMap, BTreeSet};

use crate::alert_kind::{AlertKind, Verdict};
use crate::rule::RuleSpec;
use crate::series::History;
use crate::stats::CountModel;

/// How long noted stretches are kept behind the newest one.
const KEEP_MS: i64 = 2 * 86_400_000;

/// How far back a spraying page reads the unknown usernames.
const UNKNOWN_SPAN_MS: i64 = 3_600_000;

/// How unlikely under the baseline the unknown usernames of that span must be.
pub const UNKNOWN_BEYOND: f64 = 100.0;

/// How many unknown usernames that span must hold at least.
pub const UNKNOWN_MIN: u64 = 5;

#[derive(Debug, Default)]
pub struct Story {
    /// Start → end (ms) of the stretches an outage explains.
    outages: BTreeMap<i64, i64>,
    /// The last event of each bin that a rule over totals closed (ms): whether the log
    /// stream as a whole still flowed when one rule's events stopped. Rules of other bin
    /// widths close bins past this one first (a 5-minute rule catches up after a gap
    /// before the 15-minute rule closes the gap's bin), so only times before the judged
    /// bin's end are read.
    stream_last: BTreeSet<i64>,
    /// Bin start (ms) → failures on unresolved usernames and their expectation, as a
    /// rule that counts only those noted them.
    unknown: BTreeMap<i64, (u64, f64)>,
}

impl Story {
    /// A rule closed bin `bin` (of `bin_ms`) of its series over totals, whose history
    /// is `totals`: noted when the rule counts failures on unresolved usernames.
    pub fn note_unknown_users(
        &mut self,
        spec: &RuleSpec,
        bin: i64,
        bin_ms: i64,
        totals: Option<&History>,
    ) {
        let record = totals.and_then(|h| h.get(bin));
        let Some(r) = record.filter(|r| r.known && spec.counts_unknown_users()) else {
            return;
        };
        let expected = f64::from(r.expected_failure.max(0.0));
        self.unknown
            .insert(bin * bin_ms, (u64::from(r.failure), expected));
        if let Some((&newest, _)) = self.unknown.last_key_value() {
            self.unknown = self.unknown.split_off(&(newest - KEEP_MS));
        }
    }

    /// A `password_spraying` verdict judged at `end_ms`, named `credential_stuffing`
    /// when the hour before holds failures on unresolved usernames beyond chance.
    pub fn recast_spraying(&self, verdict: Verdict, end_ms: i64) -> Verdict {
        if verdict.kind != AlertKind::PasswordSpraying {
            return verdict;
        }
        let (seen, expected) = self
            .unknown
            .range(end_ms - UNKNOWN_SPAN_MS..end_ms)
            .fold((0u64, 0f64), |(n, e), (_, &(o, x))| (n + o, e + x));
        let chance = CountModel::new(expected, 0.0).upper_tail(seen);
        if seen < UNKNOWN_MIN || chance > 1.0 / UNKNOWN_BEYOND {
            return verdict;
        }
        Verdict {
            kind: AlertKind::CredentialStuffing,
            reason: format!(
                "{seen} failed sign-ins on usernames Okta could not resolve (actor.id = unknown) in the last hour where about {expected:.0} were expected: the addresses try a combo list of other breaches' usernames, not this organisation's (this alone would read as {}: {})",
                verdict.kind, verdict.reason
            ),
        }
    }

    /// A rule over totals closed a bin whose last event came at `last_ms` (`None`: it
    /// had none, or the source cannot tell when).
    pub fn note_stream(&mut self, last_ms: Option<i64>) {
        let Some(last_ms) = last_ms else { return };
        self.stream_last.insert(last_ms);
        if let Some(&newest) = self.stream_last.last() {
            self.stream_last = self.stream_last.split_off(&(newest - KEEP_MS));
        }
    }

    /// A silence verdict (`pipeline_gap`) of a rule whose own events stopped at
    /// `silent_since_ms` (`None`: a split rule, left alone), judged at `bin_end_ms`: when the log stream kept flowing for at
    /// least half of that silence (another rule counted events that late), delivery is
    /// not what broke — this rule's events stopped while others arrive (successful
    /// sign-ins stop while failures go on: an outage). In a real gap every rule's events
    /// stop within moments of each other, so the stream's silence is about the rule's.
    pub fn recast_silence(
        &self,
        verdict: Verdict,
        silent_since_ms: Option<i64>,
        bin_end_ms: i64,
        bin_ms: i64,
    ) -> Verdict {
        let Some(silent_since_ms) = silent_since_ms else {
            return verdict;
        };
        let own = bin_end_ms - silent_since_ms;
        let flowing = self
            .stream_last
            .range(..bin_end_ms)
            .next_back()
            .is_some_and(|&last| last > silent_since_ms && 2 * (bin_end_ms - last) < own)
            && self.flowed_through(silent_since_ms, bin_end_ms, bin_ms);
        if verdict.kind != AlertKind::PipelineGap || !flowing {
            return verdict;
        }
        Verdict {
            kind: AlertKind::Outage,
            reason: format!(
                "this rule's events stopped {} min ago while other rules still count Okta events: delivery is not what broke, what this rule counts stopped happening (for successful sign-ins: Okta or a directory agent is rejecting them)",
                own / 60_000
            ),
        }
    }

    /// Whether the stream flowed through the second half of a silence: when that half
    /// reaches back before the judged bin (`[bin_end_ms - bin_ms, bin_end_ms)`), some
    /// earlier bin ended with an event in it. Events only in the judged bin may be the
    /// stream coming back after a gap of its own (hard seed 95: the stream resumed two
    /// minutes before the bin's end, sign-outs first, and the gap read as an outage).
    fn flowed_through(&self, silent_since_ms: i64, bin_end_ms: i64, bin_ms: i64) -> bool {
        let bin_start = bin_end_ms - bin_ms;
        let half = silent_since_ms + (bin_end_ms - silent_since_ms) / 2;
        half >= bin_start || self.stream_last.range(half..bin_start).next().is_some()
    }

    /// A totals rule saw an outage in `[start_ms, end_ms)`.
    pub fn note_outage(&mut self, start_ms: i64, end_ms: i64) {
        let e = self.outages.entry(start_ms).or_insert(end_ms);
        *e = (*e).max(end_ms);
        if let Some((&newest, _)) = self.outages.last_key_value() {
            self.outages = self.outages.split_off(&(newest - KEEP_MS));
        }
    }

    /// Whether an outage explains `[start_ms, end_ms)` or the bin before it
    /// (`slack_ms`): a failing-only source's retry lands a bin later.
    pub fn outage_explains(&self, start_ms: i64, end_ms: i64, slack_ms: i64) -> bool {
        self.outages
            .range(..end_ms)
            .next_back()
            .is_some_and(|(_, &end)| end + slack_ms > start_ms)
    }

    /// Fold an attack verdict into the outage that explains its bin.
    pub fn fold(&self, verdict: Verdict, start_ms: i64, end_ms: i64) -> Verdict {
        let attack = matches!(
            verdict.kind,
            AlertKind::CredentialStuffing | AlertKind::PasswordSpraying | AlertKind::BruteForce
        );
        if !attack || !self.outage_explains(start_ms, end_ms, end_ms - start_ms) {
            return verdict;
        }
        Verdict {
            kind: AlertKind::Outage,
            reason: format!(
                "part of an outage: successes collapsed across the tenant in this bin, so people who cannot sign in fail from their usual addresses (this alone would read as {}: {})",
                verdict.kind, verdict.reason
            ),
        }
    }

    /// A `volume_drop` outage of a rule over totals whose own `flatline` is paging a
    /// silence (its verdict still `pipeline_gap` after [`Story::recast_silence`]) is that
    /// silence's edge, not a second incident, when the whole stream was silent too: a
    /// blind spot at the peak empties a bin or two, and the bin where events come back
    /// holds a few minutes of them — a fall in volume to `volume_drop`, which paged it two
    /// bins later as an outage while `flatline`'s pipeline-gap page was still open (6 of 25
    /// hard seeds' peak gaps, issue 10's "one incident, one story"). So it goes out as the
    /// same `pipeline_gap`, its reason saying why. `empty_bins` are the bins (start, end
    /// in ms) of the drop's window in which this rule counted nothing: the drop is the
    /// silence's only when there is one and no other rule over totals counted an event in
    /// any of them. When only this rule's events stopped (the login page unreachable for
    /// everyone: sign-ins vanish while sign-outs go on, easy seeds 1 and 74), `flatline`
    /// may have fired before the other rules closed the bin, and the drop stays an outage.
    pub fn fold_drop_into_silence(
        &self,
        verdict: Verdict,
        silence: Option<&Verdict>,
        empty_bins: &[(i64, i64)],
    ) -> Verdict {
        let Some(gap) = silence.filter(|s| s.kind == AlertKind::PipelineGap) else {
            return verdict;
        };
        let stream_stopped = !empty_bins.is_empty()
            && empty_bins
                .iter()
                .all(|&(start, end)| self.stream_last.range(start..end).next().is_none());
        if verdict.kind != AlertKind::Outage || !stream_stopped {
            return verdict;
        }
        Verdict {
            kind: AlertKind::PipelineGap,
            reason: format!(
                "the volume fell because nothing arrived for part of these bins, the silence this rule's flatline is paging ({}); this alone would read as {}: {}",
                gap.reason, verdict.kind, verdict.reason
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::BinRecord;

    const BIN: i64 = 900_000;

    fn gap() -> Verdict {
        Verdict {
            kind: AlertKind::PipelineGap,
            reason: "no events".to_string(),
        }
    }

    #[test]
    fn silence_of_one_rule_while_the_stream_flows_is_an_outage() {
        let mut story = Story::default();
        // Failures keep arriving until a minute before the bin's end; this rule's
        // successes stopped 16 minutes before it.
        story.note_stream(Some(BIN - 60_000));
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN, BIN);
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(v.reason.contains("16 min"), "{}", v.reason);
    }

    #[test]
    fn silence_of_the_whole_stream_stays_a_pipeline_gap() {
        let mut story = Story::default();
        // Every rule's events stopped within moments of each other.
        story.note_stream(Some(BIN - 15 * 60_000));
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN, BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Events after the judged bin (a rule of finer bins caught up past the gap)
        // say nothing of it.
        story.note_stream(Some(BIN + 30 * 60_000));
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN, BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Nothing noted at all: a gap too.
        let v = Story::default().recast_silence(gap(), Some(BIN - 16 * 60_000), BIN, BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Other kinds are left alone.
        story.note_stream(Some(BIN));
        assert_eq!(
            story
                .recast_silence(stuffing(), Some(BIN - 16 * 60_000), BIN, BIN)
                .kind,
            AlertKind::CredentialStuffing
        );
    }

    #[test]
    fn a_drop_at_the_edge_of_a_paged_silence_is_that_silence() {
        let outage = Verdict {
            kind: AlertKind::Outage,
            reason: "90 attempts where 400 were expected".into(),
        };
        let mut story = Story::default();
        // Other rules counted events before and after the empty bin, none in it.
        story.note_stream(Some(BIN - 1));
        story.note_stream(Some(3 * BIN - 1));
        let empty = [(BIN, 2 * BIN)];
        let v = story.fold_drop_into_silence(outage.clone(), Some(&gap()), &empty);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        assert!(
            v.reason.contains("no events") && v.reason.contains("90 attempts"),
            "{}",
            v.reason
        );
        // No silence paging, or one that was read as an outage: the drop stays one.
        assert_eq!(
            story
                .fold_drop_into_silence(outage.clone(), None, &empty)
                .kind,
            AlertKind::Outage
        );
        let read_as_outage = Verdict {
            kind: AlertKind::Outage,
            reason: "this rule's events stopped".into(),
        };
        let v = story.fold_drop_into_silence(outage.clone(), Some(&read_as_outage), &empty);
        assert_eq!(v.kind, AlertKind::Outage);
        // No bin of the window empty: the drop is not the silence's.
        let v = story.fold_drop_into_silence(outage.clone(), Some(&gap()), &[]);
        assert_eq!(v.kind, AlertKind::Outage);
        // A drop read as something else keeps its kind.
        let v = story.fold_drop_into_silence(stuffing(), Some(&gap()), &empty);
        assert_eq!(v.kind, AlertKind::CredentialStuffing);
        // Another rule counted events in the empty bin (sign-outs while the sign-ins
        // vanished): an outage of the login page, not a gap.
        story.note_stream(Some(BIN + 14 * 60_000));
        let v = story.fold_drop_into_silence(outage, Some(&gap()), &empty);
        assert_eq!(v.kind, AlertKind::Outage);
    }

    #[test]
    fn a_stream_coming_back_at_the_end_of_a_long_silence_did_not_flow() {
        let mut story = Story::default();
        // Everything stopped 45 minutes before the judged bin's end (three bins of
        // silence); other rules' events came back a minute before its end, this
        // rule's not yet.
        story.note_stream(Some(BIN - 46 * 60_000 + 30_000));
        story.note_stream(Some(BIN - 60_000));
        let since = Some(BIN - 46 * 60_000);
        let v = story.recast_silence(gap(), since, BIN, BIN / 3);
        assert_eq!(v.kind, AlertKind::PipelineGap, "{}", v.reason);
        // Had they kept arriving through the silence's second half, it is an outage.
        story.note_stream(Some(BIN - 10 * 60_000 - 1));
        let v = story.recast_silence(gap(), since, BIN, BIN / 3);
        assert_eq!(v.kind, AlertKind::Outage, "{}", v.reason);
    }

    fn stuffing() -> Verdict {
        Verdict {
            kind: AlertKind::CredentialStuffing,
            reason: "82 sources".into(),
        }
    }

    #[test]
    fn an_attack_page_inside_an_outage_is_folded_into_it() {
        let mut s = Story::default();
        s.note_outage(10 * BIN, 11 * BIN);
        let v = s.fold(stuffing(), 10 * BIN, 11 * BIN);
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(v.reason.contains("credential_stuffing"), "{}", v.reason);
        // The bin after still belongs to it; two bins later does not.
        assert_eq!(
            s.fold(stuffing(), 11 * BIN, 12 * BIN).kind,
            AlertKind::Outage
        );
        assert_eq!(
            s.fold(stuffing(), 12 * BIN, 13 * BIN).kind,
            AlertKind::CredentialStuffing
        );
        assert_eq!(
            s.fold(stuffing(), 8 * BIN, 9 * BIN).kind,
            AlertKind::CredentialStuffing
        );
    }

    fn spraying() -> Verdict {
        Verdict {
            kind: AlertKind::PasswordSpraying,
            reason: "3 addresses".into(),
        }
    }

    #[test]
    fn a_spray_of_unknown_usernames_is_stuffing() {
        let unknown = RuleSpec::builtin()
            .into_iter()
            .find(|r| r.counts_unknown_users())
            .expect("a built-in rule counts unknown usernames");
        let record = |failure: u32| BinRecord {
            failure,
            known: true,
            expected_failure: 0.4,
            ..Default::default()
        };
        let mut h = History::new(8);
        for (b, n) in [0u32, 1, 2, 4].into_iter().enumerate() {
            h.push(b as i64, record(n));
        }
        let mut s = Story::default();
        for b in 0..4 {
            s.note_unknown_users(&unknown, b, BIN, Some(&h));
        }
        // Seven unknown usernames in the hour where 1.6 were expected.
        let v = s.recast_spraying(spraying(), 4 * BIN);
        assert_eq!(v.kind, AlertKind::CredentialStuffing);
        assert!(
            v.reason.contains("7 failed sign-ins") && v.reason.contains("3 addresses"),
            "{}",
            v.reason
        );
        // Nothing beyond chance: spraying stays spraying, and other kinds are left alone.
        let mut quiet = Story::default();
        let mut h = History::new(8);
        h.push(0, record(2));
        quiet.note_unknown_users(&unknown, 0, BIN, Some(&h));
        assert_eq!(
            quiet.recast_spraying(spraying(), BIN).kind,
            AlertKind::PasswordSpraying
        );
        assert_eq!(
            s.recast_spraying(stuffing(), 4 * BIN).kind,
            AlertKind::CredentialStuffing
        );
        // A rule that counts something else notes nothing.
        let mut other = Story::default();
        let mut h = History::new(8);
        h.push(0, record(40));
        other.note_unknown_users(&RuleSpec::named("okta-sign-ins"), 0, BIN, Some(&h));
        assert_eq!(
            other.recast_spraying(spraying(), BIN).kind,
            AlertKind::PasswordSpraying
        );
    }

    #[test]
    fn other_kinds_keep_their_story_and_old_stretches_go() {
        let mut s = Story::default();
        s.note_outage(10 * BIN, 11 * BIN);
        let push = Verdict {
            kind: AlertKind::MfaPushFatigue,
            reason: String::new(),
        };
        assert_eq!(
            s.fold(push, 10 * BIN, 11 * BIN).kind,
            AlertKind::MfaPushFatigue
        );
        s.note_outage(10 * BIN + 3 * 86_400_000, 11 * BIN + 3 * 86_400_000);
        assert!(!s.outage_explains(10 * BIN, 11 * BIN, 0));
    }
}
