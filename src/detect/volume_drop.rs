//! `volume_drop`: sign-in attempts fall off a cliff while the hour before was normal —
//! people cannot reach Okta at all (a DNS, network or login-page outage), so their
//! attempts never show up in the System Log.
//!
//! `success_drop` cannot see this kind of outage: the attempts that do arrive succeed as
//! often as ever. A quiet holiday looks similar in a single bin (few attempts, normal
//! share), so this detector adds the one thing that tells them apart: *how* the volume
//! fell. A holiday is quiet from the first bin of the day, so its recent bins are already
//! far below their seasonal expectation; an outage drops in one step from a normal level.
//!
//! The test conditions on the hour before. Within a day, bin-to-bin noise of sign-ins is
//! close to Poisson; what varies is the level of the day (a busy Monday, a quiet Friday).
//! So given
//! the `R` attempts of the last `lookback` clean bins and the seasonal expectations `s`
//! of this bin and `S` of those, this bin's share of the `x + R` attempts is binomial
//! with probability `s / (s + S)` under "nothing changed but the time of day". The bin
//! is flagged when
//!
//! 1. that binomial lower tail is at most `p_value`, and so is the lower tail of a
//!    negative binomial around the level of the hour before with the series' learned
//!    step dispersion (a counted series from elsewhere — mentions, requests —
//!    scatters more than Poisson from bin to bin, and a bin at half the level is then
//!    no cliff);
//! 2. `x` is at most `max_fraction` of both the seasonal expectation and the
//!    recent-level one (so the end of a surge, a fall back to normal, is not a drop);
//! 3. the hour before held at least `min_recent_ratio` of its seasonal expectation (a
//!    holiday never had a normal hour to fall from), with at least `min_expected`
//!    attempts expected in this bin and over the lookback (early mornings are not
//!    judged).
//!
//! # A drop that takes hours to be sure of
//! An outage that keeps half the people from reaching Okta leaves each bin at about half
//! its level: at the shoulders of the day that is one in a thousand per bin, short of
//! `p_value`, and once such a bin passes unflagged it becomes part of "the hour before",
//! so the next bin is judged against the lowered level and the drop is never seen. So
//! the test is also made on the sums of the last `windows` bins (this one and up to
//! `windows - 1` before it, each with events) against the clean hour before *them*:
//! the same binomial and step tests on the window's total, at `p_value / windows` each
//! (Bonferroni over the window lengths), with the same floors on the window's sums
//! (`windows = [1, 2, 3, 4]` by default: up to an hour). The bins of a window scatter
//! each on their own, so its sum is tested with the step dispersion its shape implies
//! (about `φ / k` for `k` equal bins), not `φ` itself.
//! The alert then says which window paged ("310 attempts in the last 45 min, expected
//! 640").
//!
//! # A season that disagrees with itself
//! The seasonal shape (how this window compares with its hour before) is a trimmed mean
//! over the past weeks' bins and their neighbours. With two weeks of history, one odd
//! week moves it: a benign surge that began at 14:45 last Monday made this Monday's
//! 15:15–16:00 look as if it should be 75 % busier than 14:15–15:00, a shape that
//! neither past week had, and an ordinary Monday then "fell" to 57 % of it (issue 10).
//! So each past week the history still holds whose copies of the window and of its
//! hour before are all clean is also asked what it says: the hour before times that
//! week's own ratio of the window to its hour before. Condition 2 then takes the lowest
//! of those too: the window must hold at most `max_fraction` of what every such week
//! says. This only removes pages (the size stays at most `p_value`). A past outage does
//! not excuse a new one: bins that paged are not clean, so that week is not asked.
//! It is a floor, not a third p-value: a single week's ratio carries that week's
//! counting noise, and testing against it (at `p_value`) cost two half outages of the
//! tuned seeds their page. (The weeks are taken at the same UTC bins, while the
//! baseline takes the same local time: in the week after a daylight-saving change a
//! week's shape is that of an hour earlier or later, and the floor follows it.)
//!
//! # One window, several bins of proof
//! Like the other drops, `volume_drop` pages on two anomalous bins of three. An
//! anomalous window of several bins already pooled them: a partial outage at the
//! evening's thin traffic (55 % of sign-ins lost, 22, 29 and 17 attempts where 62, 50
//! and 48 were due, hard seed 71) is proof over three bins together (about 1 in 10⁶),
//! never in one alone, and the next window is judged against an hour before that
//! already holds the outage. So such a window counts for all its bins
//! (`Finding::evidence_bins`) — when the attempts themselves fell in one step, each
//! bin of the window holding on average at most `max_fraction` of the hour before's.
//! A window that is low only against the season while the attempts go on as in the
//! hour before (a season that a past week's attack pushed up, easy seed 5: 31, 33, 27
//! attempts a bin after 34 a bin, "expected" 61–69) still needs a second anomalous
//! bin.
//!
//! A bin with no events at all is `flatline`'s (a broken log pipeline, not an outage).
//! The seasonal shape must come from the same hour of previous weeks: the time-of-day
//! fallback of the first week mixes up Friday evenings and Saturday evenings across
//! the weekend boundary, and a drop against it is not one.

use super::spike::read_windows;
use super::{
    read_bins, read_p_value, read_positive, read_share, BinContext, Detector, DetectorKind,
    Finding, Severity,
};
use std::sync::Arc;

use crate::config_reader::{Problems, Table};
use crate::detect::baseline::Basis;
use crate::stats::{binomial_upper_tail, CountModel};

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeDrop {
    pub p_value: f64,
    /// Flag only when attempts are at most this fraction of the expectation.
    pub max_fraction: f64,
    /// Judge only bins where at least this many attempts are expected (per bin, and over
    /// the lookback bins together).
    pub min_expected: f64,
    /// How many clean bins before this one must have looked normal.
    pub lookback: u32,
    /// "Normal": at least this share of their seasonal expectation.
    pub min_recent_ratio: f64,
    /// The trailing windows (in bins, this one included) whose sums are judged; 1 is
    /// always among them.
    pub windows: Vec<u32>,
}

impl VolumeDrop {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> VolumeDrop {
        VolumeDrop {
            p_value: read_p_value(t, 1e-6, problems),
            max_fraction: read_share(t, "max_fraction", 0.65, problems),
            min_expected: read_positive(t, "min_expected", 30.0, problems),
            lookback: read_bins(t, "lookback", 4, problems),
            min_recent_ratio: read_share(t, "min_recent_ratio", 0.5, problems),
            windows: read_windows(t, vec![1, 2, 3, 4], problems),
        }
    }

    /// Observed and seasonal totals of the last `lookback` clean bins before the window
    /// that starts `skip` bins back (looking back at most twice as far, past anomalous
    /// or unknown bins), the sum of the squares of their seasonal expectations, and how
    /// many bins back each of them lies.
    fn recent(&self, ctx: &BinContext<'_>, skip: i64) -> (f64, f64, f64, Vec<i64>) {
        let (mut observed, mut seasonal, mut squares) = (0.0, 0.0, 0.0);
        let mut backs = Vec::with_capacity(self.lookback as usize);
        for back in skip..skip + i64::from(self.lookback) * 2 {
            if backs.len() >= self.lookback as usize {
                break;
            }
            match ctx.history.get(ctx.bin - back) {
                Some(r) if r.is_clean() && r.seasonal_total > 0.0 => {
                    observed += f64::from(r.total);
                    seasonal += f64::from(r.seasonal_total);
                    squares += f64::from(r.seasonal_total).powi(2);
                    backs.push(back);
                }
                _ => {}
            }
        }
        (observed, seasonal, squares, backs)
    }
}

/// The attempts each past week held at the same bins as a window of `bins` bins (this
/// one and those before it) and as its hour before (the bins `backs` back), for every
/// week the series' history holds whose copies of those bins are all clean and expect
/// at least `min_expected` over the hour before.
fn past_weeks(
    ctx: &BinContext<'_>,
    bins: u32,
    backs: &[i64],
    min_expected: f64,
) -> Vec<(f64, f64)> {
    let week = (7 * 86_400_000 / ctx.bin_ms.max(1)).max(1);
    // The attempts of the bins `offsets` back from `at`; `None` if one is not clean.
    let sum = |at: i64, offsets: &[i64]| -> Option<f64> {
        offsets
            .iter()
            .try_fold(0.0, |acc, back| match ctx.history.get(at - back) {
                Some(r) if r.is_clean() => Some(acc + f64::from(r.total)),
                _ => None,
            })
    };
    let window: Vec<i64> = (0..i64::from(bins)).collect();
    let mut weeks = Vec::new();
    let mut k = 1;
    while k * week <= ctx.history.len() as i64 {
        let at = ctx.bin - k * week;
        if let (Some(w), Some(h)) = (sum(at, &window), sum(at, backs)) {
            if h >= min_expected {
                weeks.push((w, h));
            }
        }
        k += 1;
    }
    weeks
}

impl Detector for VolumeDrop {
    fn kind(&self) -> DetectorKind {
        DetectorKind::VolumeDrop
    }

    fn p_value(&self) -> Option<f64> {
        Some(self.p_value)
    }

    /// The longest window and, before it, up to twice `lookback` bins for the hour
    /// before (past anomalous or unknown ones).
    fn window_bins(&self) -> u32 {
        let longest = self.windows.last().copied().unwrap_or(1);
        longest.saturating_add(self.lookback.saturating_mul(2))
    }

    fn with_p_value(&self, p_value: f64) -> Option<Arc<dyn Detector>> {
        Some(Arc::new(Self {
            p_value,
            ..self.clone()
        }))
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        let e = ctx.expected?;
        if ctx.counts.total == 0
            || e.basis != Basis::HourOfWeek
            || e.seasonal_total < self.min_expected
        {
            return None;
        }
        let tests = self.windows.len().max(1) as f64;
        let longest = self.windows.last().copied().unwrap_or(1);
        let mut best: Option<Finding> = None;
        let (mut total, mut season) = (ctx.counts.total, e.seasonal_total);
        let mut squares = season * season;
        for bins in 1..=longest {
            if bins > 1 {
                // The window grows by the bin before it; a bin with no events, or one
                // not known, ends it (silence is `flatline`'s, not knowing is nothing).
                match ctx.history.get(ctx.bin - i64::from(bins) + 1) {
                    Some(r) if r.known && r.total > 0 && r.seasonal_total > 0.0 => {
                        total += u64::from(r.total);
                        season += f64::from(r.seasonal_total);
                        squares += f64::from(r.seasonal_total).powi(2);
                    }
                    _ => break,
                }
            }
            if !self.windows.contains(&bins) {
                continue;
            }
            let Some(mut f) = self.judge(ctx, (total, season, squares), bins) else {
                continue;
            };
            // Bonferroni over the window lengths: each is tested at p_value / windows.
            f.anomalous &= f.p_value * tests <= self.p_value;
            f.p_value = (f.p_value * tests).min(1.0);
            best = match best {
                Some(b) if b.anomalous || (!f.anomalous && b.p_value <= f.p_value) => Some(b),
                _ => Some(f),
            };
        }
        best
    }
}

impl VolumeDrop {
    /// The two tests on a window of `bins` bins that held `total` attempts where the
    /// season expects `season` (`squares`: the sum of its bins' squared seasonal
    /// expectations), against the clean hour before the window.
    fn judge(
        &self,
        ctx: &BinContext<'_>,
        (total, season, squares): (u64, f64, f64),
        bins: u32,
    ) -> Option<Finding> {
        let floor = self.min_expected * f64::from(bins);
        if season < floor {
            return None;
        }
        let (recent_observed, recent_seasonal, recent_squares, backs) =
            self.recent(ctx, i64::from(bins));
        if recent_seasonal < self.min_expected {
            return None;
        }
        let recent_ratio = recent_observed / recent_seasonal;
        // What this window would hold at the level of the hour before.
        let expected = season * recent_ratio;
        let share = season / (season + recent_seasonal);
        let n = total + recent_observed.round() as u64;
        // P(X ≤ total) = 1 - P(X ≥ total + 1).
        let binomial = (1.0 - binomial_upper_tail(total + 1, n, share)).clamp(0.0, 1.0);
        // The binomial knows only Poisson noise between bins; a series whose bins
        // scatter more from one to the next (the learned step dispersion) must also be
        // this low against a negative binomial at the level of the hour before. Both
        // must reject (an intersection-union test, so the size stays at most
        // `p_value`). That level is itself read from a few scattered bins: with bin
        // means m_i = r s_i and the prediction μ = s R / S, the estimate scatters by
        // μ s / S (Poisson) plus φ μ² Σ s_i² / S², so the prediction's variance is
        // μ (1 + s / S) + φ μ² (1 + Σ s_i² / S²): its dispersion is what the model
        // takes. (Leaving either part out makes both tests too ready to page on a
        // series that scatters a little more than Poisson.) A window of several bins
        // scatters as the sum of its bins, which scatter each on their own: φ μ² times
        // Σ w_j² / s² for the window's seasonal expectations w_j (1 for one bin).
        let step = if expected > 0.0 {
            ctx.dispersion.step
                * (squares / season.powi(2) + recent_squares / recent_seasonal.powi(2))
                + season / (recent_seasonal * expected)
        } else {
            ctx.dispersion.step
        };
        let scatter = CountModel::new(expected, step).lower_tail(total);
        let p_value = binomial.max(scatter);
        // What the window would hold at the level of the hour before in the proportion
        // of each past week on its own (see "A season that disagrees with itself"):
        // the drop must be one against the lowest of them too.
        let weekly = past_weeks(ctx, bins, &backs, self.min_expected)
            .into_iter()
            .map(|(w, h)| recent_observed * w / h)
            .fold(f64::INFINITY, f64::min);
        let lower = (self.max_fraction * expected.min(season).min(weekly)).floor();
        let x = total as f64;
        Some(Finding {
            anomalous: p_value <= self.p_value
                && x <= lower
                && recent_ratio >= self.min_recent_ratio,
            observed: x,
            expected,
            lower,
            // The band's top: five Poisson deviations above (this detector only pages low).
            upper: (expected + 5.0 * expected.sqrt()).ceil(),
            p_value,
            severity: if x <= 0.3 * expected {
                Severity::Critical
            } else {
                Severity::Warning
            },
            measure: "sign-in attempts",
            window_bins: bins,
            // See "One window, several bins of proof".
            evidence_bins: if x / f64::from(bins)
                <= self.max_fraction * recent_observed / backs.len().max(1) as f64
            {
                bins
            } else {
                1
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::series::{BinRecord, History};
    use proptest::prelude::*;

    fn det() -> VolumeDrop {
        let mut p = Problems::default();
        let mut t = Table::new("", None, &mut p);
        VolumeDrop::read(&mut t, &mut p)
    }

    /// A past bin that held `total` attempts (nine in ten successes) where the season
    /// expected `season`.
    fn record(total: u32, season: f32) -> BinRecord {
        BinRecord {
            total,
            success: total * 9 / 10,
            known: true,
            seasonal_total: season,
            expected_total: season,
            expected_failure: -1.0,
            ..BinRecord::default()
        }
    }

    /// Four bins before `at` that held `ratio` of a seasonal 400.
    fn history(at: i64, ratio: f64) -> History {
        let mut h = History::new(16);
        for b in (at - 4)..at {
            let total = (400.0 * ratio) as u32;
            h.push(b, record(total, 400.0));
        }
        h
    }

    #[test]
    fn a_cliff_after_a_normal_hour_is_flagged() {
        let h = history(100, 1.0);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(90, 85, 5),
                Some(expected(400.0, 370.0, 30.0)),
            ))
            .unwrap();
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.severity, Severity::Critical);
    }

    #[test]
    fn a_holiday_is_quiet_all_along_and_is_not() {
        // The hour before was already at a fifth of the season.
        let h = history(100, 0.2);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(70, 65, 5),
                Some(expected(400.0, 370.0, 30.0)),
            ))
            .unwrap();
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn the_end_of_a_surge_is_not_a_drop() {
        // The level factor expects 1.8x the season; the season itself is met.
        let h = history(100, 1.8);
        let mut e = expected(720.0, 670.0, 50.0);
        e.seasonal_total = 400.0;
        // Poisson noise between bins: the p-value alone would call it a drop.
        let mut cx = ctx(&h, counts(390, 360, 30), Some(e));
        cx.dispersion.step = 0.0;
        let f = det().evaluate(&cx).unwrap();
        assert!(f.p_value < 1e-6, "a drop from the surge level: {f:?}");
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_scattered_series_at_half_its_level_is_no_cliff() {
        // Half the level of a normal hour: a cliff for Poisson noise, not for a series
        // whose bins scatter like social-media mentions (step dispersion 0.3).
        let h = history(100, 1.0);
        let e = Some(expected(400.0, 370.0, 30.0));
        let judge = |phi: f64| {
            let mut cx = ctx(&h, counts(200, 185, 15), e);
            cx.dispersion.step = phi;
            det().evaluate(&cx).unwrap()
        };
        let poisson = judge(0.0);
        assert!(poisson.anomalous, "{poisson:?}");
        let scattered = judge(0.3);
        assert!(
            !scattered.anomalous && scattered.p_value > 0.01,
            "{scattered:?}"
        );
    }

    /// A normal hour at the season's 120, then bins at 70 (an outage that keeps four in
    /// ten from reaching Okta): `before` normal bins then `after` dropped ones.
    fn half_outage(before: i64, after: i64) -> History {
        let mut h = History::new(16);
        for b in 0..before + after {
            let total = if b < before { 120 } else { 70 };
            h.push(100 + b, record(total, 120.0));
        }
        h
    }

    #[test]
    fn a_drop_no_single_bin_proves_pages_over_a_window() {
        let e = Some(expected(120.0, 108.0, 12.0));
        let cx = |h: &History| {
            let mut c = ctx(h, counts(70, 63, 7), e);
            c.dispersion.step = 0.0;
            det().evaluate(&c).unwrap()
        };
        // The first dropped bin alone: one in about 10^5, short of 1e-6.
        let first = cx(&half_outage(6, 0));
        assert!(!first.anomalous && first.p_value > 1e-6, "{first:?}");
        // Three such bins in a row (the two before taken as clean: unflagged): the
        // window's 210 where the hour before says 360 pages, and says so.
        let third = cx(&half_outage(6, 2));
        assert!(third.anomalous, "{third:?}");
        assert!(third.window_bins >= 2, "{third:?}");
        assert_eq!(third.observed, 70.0 * f64::from(third.window_bins));
        // The attempts fell from 120 to 70 a bin (58 %, under `max_fraction`): the
        // window stands for all its bins in the lifecycle.
        assert_eq!(third.evidence_bins, third.window_bins, "{third:?}");
        assert_eq!(first.evidence_bins, 1, "{first:?}");
        // Without the longer windows, the same bins never page.
        let mut one = det();
        one.windows = vec![1];
        let h = half_outage(6, 2);
        let mut c = ctx(&h, counts(70, 63, 7), e);
        c.dispersion.step = 0.0;
        assert!(!one.evaluate(&c).unwrap().anomalous);
    }

    /// A window low only against the season: the attempts go on at the hour before's
    /// 120 a bin while the season says the window should hold 220 a bin (a past week's
    /// attack in it): it may be anomalous, but it stands for one bin only, since the
    /// attempts themselves did not fall.
    #[test]
    fn a_window_low_only_against_the_season_is_one_bin_of_proof() {
        let mut h = History::new(16);
        for b in 0..7 {
            let (total, season) = if b < 4 { (120, 120.0) } else { (110, 220.0) };
            h.push(100 + b, record(total, season));
        }
        let mut c = ctx(&h, counts(110, 99, 11), Some(expected(220.0, 198.0, 22.0)));
        c.dispersion.step = 0.0;
        let f = det().evaluate(&c).unwrap();
        assert!(f.anomalous && f.window_bins >= 2, "{f:?}");
        assert_eq!(f.evidence_bins, 1, "{f:?}");
    }

    #[test]
    fn silence_and_quiet_hours_are_left_alone() {
        let h = history(100, 1.0);
        let e = Some(expected(400.0, 370.0, 30.0));
        assert_eq!(det().evaluate(&ctx(&h, counts(0, 0, 0), e)), None);
        let night = Some(expected(8.0, 7.0, 1.0));
        assert_eq!(det().evaluate(&ctx(&h, counts(1, 1, 0), night)), None);
    }

    /// Two weeks and a bit of 15-minute bins at 200 (season 200) before bin 2000; in
    /// each past week the bin at the time of bin 2000 held 340 when `surged` says so
    /// (a surge that week, or a rise that is truly the season's).
    fn past_weeks_history(surged: [bool; 2]) -> History {
        let week = 672;
        let mut h = History::new(1400);
        for b in (2000 - 2 * week - 8)..2000 {
            let k = (2000 - b) / week;
            let at_window = (2000 - b) % week == 0;
            let surge = at_window && (k == 1 && surged[0] || k == 2 && surged[1]);
            h.push(b, record(if surge { 340 } else { 200 }, 200.0));
        }
        h
    }

    #[test]
    fn a_drop_against_a_season_one_odd_week_made_must_be_one_against_each_week() {
        // The season averaged last week's surge in: 340 where the hour before says 200
        // a bin. 150 is a cliff against that, and against every week that rose too.
        let judge = |h: &History, x: u64| {
            let mut e = expected(340.0, 310.0, 30.0);
            e.seasonal_total = 340.0;
            let mut cx = ctx(h, counts(x, x * 9 / 10, x / 10), Some(e));
            cx.dispersion.step = 0.0;
            det().evaluate(&cx).unwrap()
        };
        let risen = judge(&past_weeks_history([true, true]), 150);
        assert!(risen.anomalous, "{risen:?}");
        // Last week did not rise: in its proportion the bin should hold 200, and 150
        // is more than `max_fraction` of that. The season's p-value is unchanged (it
        // would page), the floor says no.
        let flat = judge(&past_weeks_history([false, true]), 150);
        assert!(flat.p_value < 1e-6, "{flat:?}");
        assert_eq!(flat.lower, (0.65f64 * 200.0).floor(), "{flat:?}");
        assert!(!flat.anomalous, "{flat:?}");
        // A real cliff is one against that week too.
        assert!(judge(&past_weeks_history([false, true]), 60).anomalous);
        // Without any past week in the history the season alone decides (and pages).
        let mut h = History::new(16);
        for b in 1996..2000 {
            h.push(b, record(200, 200.0));
        }
        assert!(judge(&h, 150).anomalous);
    }

    proptest! {
        /// Whatever the counts, a bin at or above its expectation is never a drop, and a
        /// finding's band is ordered.
        #[test]
        fn never_flags_normal_or_high_volume(total in 400u64..5000, ratio in 0.0f64..3.0) {
            // (Expected 400 per bin at the season's level.)
            let h = history(100, ratio);
            if let Some(f) = det().evaluate(&ctx(&h, counts(total, total, 0), Some(expected(400.0, 380.0, 20.0)))) {
                prop_assert!(!f.anomalous);
                prop_assert!(f.lower <= f.upper);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Quiet traffic drawn from the baseline's own distribution — a daily curve
        /// scaled by the level of the day (busy and quiet days, one drifting into the
        /// next over the day, not in a step at midnight), each bin negative
        /// binomial around it with the learned step dispersion — pages at about the
        /// configured `p_value` once the floors are off: at most it (both tests must
        /// reject), and not orders of magnitude below (the step test does not make the
        /// detector blind on scattered series).
        #[test]
        fn quiet_traffic_pages_at_about_the_configured_rate(level in 30.0f64..400.0, phi in 0.0f64..0.15, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Gamma, Poisson};
            let p_value = 0.01;
            let d = VolumeDrop { p_value, max_fraction: 1.0, min_expected: 5.0, lookback: 4, min_recent_ratio: 0.0, windows: vec![1, 2, 3, 4] };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut h = History::new(64);
            let (mut pages, mut judged) = (0u32, 0u32);
            let days = Gamma::new(25.0, 1.0 / 25.0).unwrap();
            let (mut today, mut tomorrow) = (1.0, days.sample(&mut rng));
            for b in 0..8000i64 {
                if b % 96 == 0 {
                    (today, tomorrow) = (tomorrow, days.sample(&mut rng));
                }
                let hour = (b % 96) as f64 / 4.0;
                let season = level * (0.3 + (-(hour - 13.0).powi(2) / 20.0).exp());
                let mu = season * (today + (tomorrow - today) * hour / 24.0);
                let lambda = if phi > 0.0 { Gamma::new(1.0 / phi, mu * phi).unwrap().sample(&mut rng) } else { mu };
                let n = Poisson::new(lambda).unwrap().sample(&mut rng) as u64;
                let mut e = expected(season, season, 0.0);
                e.seasonal_total = season;
                let mut cx = ctx(&h, counts(n, n, 0), Some(e));
                cx.bin = b;
                cx.dispersion.step = phi;
                let f = d.evaluate(&cx);
                let anomalous = f.as_ref().is_some_and(|f| f.anomalous);
                if b >= 8 && f.is_some() {
                    judged += 1;
                    pages += u32::from(anomalous);
                }
                h.push(b, BinRecord {
                    total: n as u32,
                    success: n as u32,
                    known: true,
                    anomalous,
                    seasonal_total: season as f32,
                    expected_total: season as f32,
                    expected_failure: -1.0,
                    ..BinRecord::default()
                });
            }
            let rate = f64::from(pages) / f64::from(judged);
            prop_assert!(rate <= 1.5 * p_value, "rate {rate} above {p_value}");
            prop_assert!(rate >= p_value / 20.0, "rate {rate} far below {p_value}");
        }
    }
}
