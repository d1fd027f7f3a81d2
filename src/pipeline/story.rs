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

use std::collections::BTreeMap;

use crate::alert_kind::{AlertKind, Verdict};

/// How long noted stretches are kept behind the newest one.
const KEEP_MS: i64 = 2 * 86_400_000;

#[derive(Debug, Default)]
pub struct Story {
    /// Start → end (ms) of the stretches an outage explains.
    outages: BTreeMap<i64, i64>,
}

impl Story {
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
