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

use std::collections::{BTreeMap, BTreeSet};

use crate::alert_kind::{AlertKind, Verdict};

/// How long noted stretches are kept behind the newest one.
const KEEP_MS: i64 = 2 * 86_400_000;

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
}

impl Story {
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
    ) -> Verdict {
        let Some(silent_since_ms) = silent_since_ms else {
            return verdict;
        };
        let own = bin_end_ms - silent_since_ms;
        let flowing = self
            .stream_last
            .range(..bin_end_ms)
            .next_back()
            .is_some_and(|&last| last > silent_since_ms && 2 * (bin_end_ms - last) < own);
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN);
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(v.reason.contains("16 min"), "{}", v.reason);
    }

    #[test]
    fn silence_of_the_whole_stream_stays_a_pipeline_gap() {
        let mut story = Story::default();
        // Every rule's events stopped within moments of each other.
        story.note_stream(Some(BIN - 15 * 60_000));
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Events after the judged bin (a rule of finer bins caught up past the gap)
        // say nothing of it.
        story.note_stream(Some(BIN + 30 * 60_000));
        let v = story.recast_silence(gap(), Some(BIN - 16 * 60_000), BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Nothing noted at all: a gap too.
        let v = Story::default().recast_silence(gap(), Some(BIN - 16 * 60_000), BIN);
        assert_eq!(v.kind, AlertKind::PipelineGap);
        // Other kinds are left alone.
        story.note_stream(Some(BIN));
        assert_eq!(
            story
                .recast_silence(stuffing(), Some(BIN - 16 * 60_000), BIN)
                .kind,
            AlertKind::CredentialStuffing
        );
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
