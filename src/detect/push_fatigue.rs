//! `push_fatigue`: one user is flooded with Okta Verify pushes — MFA push fatigue (an
//! attacker who has the password keeps triggering pushes until the tired user taps
//! "Yes").
//!
//! The rule counts `system.push.send_factor_verify_push` (outcome SUCCESS: a push was
//! sent) and the denials (`user.mfa.okta_verify.deny_push`, or on an Identity Engine
//! tenant `user.authentication.auth_via_mfa` FAILURE) per user, so `success` is pushes
//! and `failure` is denials; the approvals (`auth_via_mfa` SUCCESS) count in the total
//! only (the rule's `approvals`), so `total - success - failure` is pushes approved.
//!
//! What tells a person from an attacker is the answer. A person approves the pushes
//! they asked for — re-prompted after a VPN change or a lost session, they approve
//! within a try or two — and denies one by mistake perhaps once a month; an attacker's
//! pushes are left unanswered or denied. So the detector judges the pushes *left
//! unapproved* over a trailing window of `window` bins (pushes minus approvals), and
//! flags a user with
//!
//! * at least `min_pushes` of them (a flood, whatever was approved beside it), or
//! * at least `min_unapproved` of them while fewer pushes were approved than left
//!   unapproved, or
//! * at least `min_denied_unapproved` of them, `min_denies` of them denied, while fewer
//!   were approved than left unapproved.
//!
//! Two mistaken denials in an hour of a heavy user who approved the rest (seen on spent
//! seeds 64, 71 and 74: a third push approved, or one expired among four approved) do
//! not page; an attacker's pushes, never approved, page where counting pushes alone
//! did. A rule without `approvals` sees none, and the detector judges its pushes as
//! before.
//!
//! Session 9 (issue 10's one-bin target for spikes): the attacker's third unapproved
//! push comes sooner than the second denial (10–20 pushes an hour, 30–60 % denied on the
//! simulator's hard setting), and people do not leave pushes like that: over every
//! user of 50 simulated four-week runs (hard and easy, seeds 1–10, 61–65, 71–75,
//! 81–85; 1,400 days) outside an attack, pushes left unapproved reached three with
//! none denied three times, never three with one denied, never four, in any 55
//! minutes. So one denial among three unapproved pushes, or four unapproved, pages (it
//! was two denials among three, or twelve): on hard 81–85 the median latency went from
//! 1.2 and 1.3 bins (classic, Identity Engine) to 0.8 and 0.7, on 61–65 from 1.5 and
//! 1.6 to 1.0 and 0.9, with no false page more (docs/detection-history.md, session 9).
//!
//! An approval logged in the bin after its push (seconds later, across a bin edge)
//! counts there: the push's own bin sees it unapproved for one bin.
//!
//! A window without pushes is judged normal (not skipped), so an alert resolves once
//! the pushes stop, however sparse the user's series is.
//!
//! The p-value reported is the Poisson chance of that many unapproved pushes from a
//! person who gets `null_pushes_per_window` per window — a reading aid; the thresholds
//! decide, because they are what an operator can reason about.

use super::{
    read_bins, read_positive, BinContext, Detector, DetectorKind, Finding, SeriesKind, Severity,
};
use crate::config_reader::{Problems, Table};
use crate::stats::CountModel;

/// Denials in the window that make a page critical: the user says no again and again.
const CRITICAL_DENIES: u64 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct PushFatigue {
    /// Trailing window, in bins.
    pub window: u32,
    /// Unapproved pushes that page whatever was approved (a flood).
    pub min_pushes: u64,
    /// Unapproved pushes that page while fewer were approved.
    pub min_unapproved: u64,
    /// Denials that, among `min_denied_unapproved` unapproved pushes (more than were
    /// approved), page.
    pub min_denies: u64,
    pub min_denied_unapproved: u64,
    /// Pushes a normal user gets per window (for the reported p-value).
    pub null_pushes_per_window: f64,
}

impl PushFatigue {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> PushFatigue {
        PushFatigue {
            window: read_bins(t, "window", 4, problems),
            min_pushes: t.count("min_pushes", 2, problems).unwrap_or(12),
            min_unapproved: t.count("min_unapproved", 2, problems).unwrap_or(4),
            min_denies: t.count("min_denies", 1, problems).unwrap_or(1),
            min_denied_unapproved: t.count("min_denied_unapproved", 2, problems).unwrap_or(3),
            null_pushes_per_window: read_positive(t, "null_pushes_per_window", 1.0, problems),
        }
    }
}

impl Detector for PushFatigue {
    fn kind(&self) -> DetectorKind {
        DetectorKind::PushFatigue
    }

    fn window_bins(&self) -> u32 {
        self.window
    }

    /// Flags only a bin with pushes or denials in it.
    fn quiet_on_empty_bin(&self, _kind: SeriesKind) -> bool {
        true
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        ctx.expected?;
        if ctx.aggregate {
            return None;
        }
        let w = ctx.window_sum(self.window);
        let (denies, approved) = (w.failure, w.other());
        let unapproved = w.success.saturating_sub(approved);
        let p_value = CountModel::new(self.null_pushes_per_window, 0.0).upper_tail(unapproved);
        let flooded = unapproved >= self.min_pushes;
        let unanswered = unapproved >= self.min_unapproved && unapproved > approved;
        let refused = denies >= self.min_denies
            && unapproved >= self.min_denied_unapproved
            && unapproved > approved;
        Some(Finding {
            anomalous: ctx.counts.total > 0 && (flooded || unanswered || refused),
            observed: unapproved as f64,
            expected: self.null_pushes_per_window,
            lower: 0.0,
            upper: self.min_pushes as f64,
            p_value,
            severity: if unapproved >= 2 * self.min_pushes
                || denies >= CRITICAL_DENIES.max(2 * self.min_denies)
            {
                Severity::Critical
            } else {
                Severity::Warning
            },
            measure: "MFA pushes to one user left unapproved",
            window_bins: 1,
            evidence_bins: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::History;
    use proptest::prelude::*;

    fn det() -> PushFatigue {
        let mut p = Problems::default();
        let mut t = Table::new("", None, &mut p);
        PushFatigue::read(&mut t, &mut p)
    }

    fn pushes(h: &History, sent: u64, denied: u64) -> Option<Finding> {
        det().evaluate(&ctx(
            h,
            counts(sent + denied, sent, denied),
            Some(expected(0.0, 0.0, 0.0)),
        ))
    }

    /// One bin of `sent` pushes, `approved` of them approved and `denied` denied.
    fn answered(h: &History, sent: u64, approved: u64, denied: u64) -> Option<Finding> {
        det().evaluate(&ctx(
            h,
            counts(sent + approved + denied, sent, denied),
            Some(expected(0.0, 0.0, 0.0)),
        ))
    }

    #[test]
    fn a_person_who_approves_the_rest_is_not_flagged_for_two_mistaken_denials() {
        let h = History::new(4);
        // Spent seeds 64, 71 and 74: one push approved, two denied by mistake.
        assert!(!answered(&h, 3, 1, 2).unwrap().anomalous);
        // Seed 74: seven pushes, four approved, two denied, one expired.
        assert!(!answered(&h, 7, 4, 2).unwrap().anomalous);
        // Re-prompted again and again (a broken session), every push approved.
        assert!(!answered(&h, 14, 14, 0).unwrap().anomalous);
    }

    #[test]
    fn an_attack_on_a_user_who_also_signs_in_is_flagged() {
        let h = History::new(4);
        // Seed 74's victim: five pushes, one of them the user's own, approved; two of
        // the attacker's denied.
        let f = answered(&h, 5, 1, 2).unwrap();
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.observed, 4.0);
        // Twelve pushes left unapproved flood, whatever was approved beside them.
        assert!(answered(&h, 15, 3, 0).unwrap().anomalous);
        // As many approved as left unapproved: a person's bad hour, not an attack.
        assert!(!answered(&h, 6, 3, 2).unwrap().anomalous);
    }

    #[test]
    fn approvals_count_over_the_whole_window() {
        use crate::series::BinRecord;
        // Three pushes approved 45 minutes before three more, two of them denied.
        let mut h = History::new(8);
        h.push(96, BinRecord::from_counts(counts(6, 3, 0), 96, 900_000));
        let mut cx = ctx(&h, counts(5, 3, 2), Some(expected(0.0, 0.0, 0.0)));
        cx.bin = 99;
        assert!(!det().evaluate(&cx).unwrap().anomalous);
        // Without it, the same bin pages.
        let h = History::new(8);
        let mut cx = ctx(&h, counts(5, 3, 2), Some(expected(0.0, 0.0, 0.0)));
        cx.bin = 99;
        assert!(det().evaluate(&cx).unwrap().anomalous);
    }

    #[test]
    fn a_flood_of_pushes_is_flagged() {
        let h = History::new(4);
        let f = pushes(&h, 12, 8).unwrap();
        assert!(f.anomalous && f.severity == Severity::Critical, "{f:?}");
    }

    #[test]
    fn three_unapproved_pushes_page_with_a_denial_four_without() {
        let h = History::new(4);
        // Three pushes left unapproved: a person's worst hour on the simulator, unless
        // one of them was denied.
        assert!(!pushes(&h, 3, 0).unwrap().anomalous);
        assert!(pushes(&h, 3, 1).unwrap().anomalous);
        // Four left unapproved page, while fewer were approved.
        assert!(pushes(&h, 4, 0).unwrap().anomalous);
        assert!(answered(&h, 8, 3, 0).unwrap().anomalous);
        assert!(!answered(&h, 8, 4, 0).unwrap().anomalous);
        assert!(!answered(&h, 7, 4, 1).unwrap().anomalous);
    }

    #[test]
    fn the_thresholds_are_read_and_the_old_rule_can_be_had_back() {
        let mut p = Problems::default();
        let table = serde_json::json!({
            "min_unapproved": 12, "min_denies": 2, "min_denied_unapproved": 3,
        });
        let mut t = Table::new("", Some(&table), &mut p);
        let old = PushFatigue::read(&mut t, &mut p);
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!((old.min_unapproved, old.min_denies), (12, 2));
        let judge = |sent, denied| {
            let h = History::new(4);
            let c = ctx(
                &h,
                counts(sent + denied, sent, denied),
                Some(expected(0.0, 0.0, 0.0)),
            );
            old.evaluate(&c).unwrap().anomalous
        };
        assert!(!judge(3, 1) && !judge(4, 0) && judge(3, 2));
    }

    #[test]
    fn a_few_pushes_with_repeated_denials_are_flagged() {
        let h = History::new(4);
        assert!(pushes(&h, 3, 2).unwrap().anomalous);
    }

    #[test]
    fn a_busy_user_and_a_fat_fingered_no_are_normal() {
        let h = History::new(4);
        assert!(!pushes(&h, 2, 1).unwrap().anomalous);
        assert!(!pushes(&h, 2, 2).unwrap().anomalous);
        // A busy user's pushes, approved.
        assert!(!answered(&h, 10, 10, 0).unwrap().anomalous);
        // A quiet window is judged normal, so a firing alert can resolve.
        assert!(!pushes(&h, 0, 0).unwrap().anomalous);
    }

    proptest! {
        /// Below both thresholds nothing pages.
        #[test]
        fn below_thresholds_is_quiet(sent in 0u64..4, denied in 0u64..3) {
            prop_assume!(sent < 3 || denied == 0);
            let h = History::new(4);
            if let Some(f) = pushes(&h, sent, denied) {
                prop_assert!(!f.anomalous);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// A normal user's pushes — Poisson, each approved with probability `approve`,
        /// the rest left unanswered, `unapproved` of them per window on average — page at
        /// about the rate the threshold implies: with `min_pushes` the smallest count
        /// whose Poisson tail at `unapproved` is at most 1 %, the share of bins flagged is
        /// about that tail (at most it: a flag needs the window's count), however many
        /// pushes were approved beside them.
        #[test]
        fn quiet_pushes_page_at_about_the_rate_the_threshold_implies(
            unapproved in 0.5f64..4.0,
            approve in prop_oneof![Just(0.0f64), 0.0f64..0.9],
            seed in 0u64..1000,
        ) {
            use rand::{Rng, SeedableRng};
            use rand_distr::{Distribution, Poisson};
            let null = unapproved / (1.0 - approve);
            let model = CountModel::new(unapproved, 0.0);
            let min_pushes = (1..100).find(|&k| model.upper_tail(k) <= 0.01).unwrap();
            let tail = model.upper_tail(min_pushes);
            // No denial, and approvals beside: the flood's threshold is the one judged.
            let d = PushFatigue {
                window: 4,
                min_pushes,
                min_unapproved: min_pushes,
                min_denies: 1,
                min_denied_unapproved: 3,
                null_pushes_per_window: null,
            };
            let per_bin = Poisson::new(null / 4.0).unwrap();
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(8);
            let bins = 40_000i64;
            let mut pages = 0u32;
            for b in 0..bins {
                let sent = per_bin.sample(&mut rng) as u64;
                let approved = (0..sent).filter(|_| rng.random_bool(approve)).count() as u64;
                let c = counts(sent + approved, sent, 0);
                let mut cx = ctx(&h, c, Some(expected(0.0, 0.0, 0.0)));
                cx.bin = b;
                pages += u32::from(d.evaluate(&cx).unwrap().anomalous);
                h.push(b, crate::series::BinRecord::from_counts(c, b, 900_000));
            }
            let rate = f64::from(pages) / bins as f64;
            // Within four standard errors of the tail: a window of four bins overlaps
            // its neighbours, so a flagged bin comes with up to three more and the
            // count's variance is up to four times a binomial's (a bound of 1.3 times
            // the tail failed at seed 753: 258 pages where 190 were due).
            let margin = 4.0 * (4.0 * tail / bins as f64).sqrt();
            prop_assert!(rate <= tail + margin, "rate {rate} above the threshold's tail {tail}");
            prop_assert!(rate >= tail - margin, "rate {rate} far below the threshold's tail {tail}");
        }
    }
}
