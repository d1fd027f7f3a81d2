//! `flatline`: the log stream went silent — so little in the last minutes that the
//! chance of it under the baseline is below `p_value`. The log pipeline (Okta →
//! EventBridge → CloudWatch) is probably broken.
//!
//! # Silence judged by its probability, to the minute
//! A 35-minute break rarely fills whole bins: it starts in the middle of one, empties
//! the next and ends in the middle of a third. Every bin carries how much of it was
//! silent before its first event and after its last (`BinRecord::quiet_before` /
//! `quiet_after`, from the event times the local binner sees and from `min(@timestamp)`
//! / `max(@timestamp)` in the Logs Insights query). So the detector measures the silent
//! span itself — from the last event before it to the end of this bin (the stream is
//! still silent) or to this bin's first event (it came back) — and asks how likely it is
//! to see nothing for that long under the baseline: the chance of zero under a negative
//! binomial whose mean is what the baseline expects over the span (the expectations of
//! the empty bins, and the silent shares of the partial bins at its edges). For a
//! Poisson stream that is exactly the chance that the time since the last event is at
//! least this long at a given moment, so testing it at every bin's end pages at the
//! configured rate. A span that already ended inside this bin is tested once more, at
//! the bin's end; any of the bin's expected events could have ended such a gap, so its
//! chance is multiplied by their number. At the weekday peak 35 minutes of nothing
//! expects hundreds of events and pages in the first bin it empties; at 4 a.m., where
//! an hour expects one event, an empty hour is ordinary and nothing fires.
//!
//! # The rate the silence is judged against: the stream's own, lately
//! The baseline's expectation can be well off for a while: on a holiday at a fifth of
//! the usual volume its level factor lags behind for hours, and at night its learned
//! dispersion is large. So the span's mean is not taken as known: the day's level
//! (what the stream held over what was expected of it) gets a gamma prior whose spread
//! is the series' learned dispersion (`1/φ` pseudo-events) and is updated by the last
//! clean bins before the span (`N` events where `S` were expected). The chance of
//! nothing over a span that expects `m` is then the gamma-Poisson predictive
//! `(1 + m/(1/φ + S))^-(1/φ + N)`: a stream that has been alive at a fifth of its
//! volume is judged at that rate (a holiday's lulls are ordinary), one that was normal
//! until the silence is judged at nearly the baseline's rate whatever φ says (a night
//! gap where a dozen events were due pages). With `φ = 0` the rate is the baseline's.
//!
//! Only zero is silence: a window that holds a few events where many were expected is
//! a drop in volume (`volume_drop`'s to judge, with the hour before), not a broken
//! pipeline. Where a source cannot tell when inside a bin its events happened (a CSV
//! of counts, a hand-written query), no silence is credited inside a bin with events:
//! only its empty bins make the span. Half of `p_value` goes to a span still open at
//! the bin's end and half to one that ended inside it. Unknown bins (a failed query)
//! end the span: not knowing is not silence.

use std::sync::Arc;

use super::{read_p_value, BinContext, Detector, DetectorKind, Finding, Severity};
use crate::config_reader::{Problems, Table};
use crate::series::BinRecord;
use crate::stats::CountModel;

#[derive(Debug, Clone, PartialEq)]
pub struct Flatline {
    pub p_value: f64,
    /// The longest window judged, in bins (4 by default: an hour of 15m bins); a silent
    /// span reaches back this many bins before this one.
    pub bins: u32,
}

impl Flatline {
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> Flatline {
        Flatline {
            p_value: read_p_value(t, 1e-6, problems),
            bins: t.count("bins", 1, problems).unwrap_or(4).min(10_000) as u32,
        }
    }

    /// The silent span that ends at this bin's end (`open`: the stream is still silent)
    /// or at its first event (the stream came back inside this bin): what the baseline
    /// expects over it, its length in bins, and what the bin it began in held before
    /// it. `share` is the part of this bin the span covers.
    fn span(&self, ctx: &BinContext<'_>, e_total: f64, share: f64, open: bool) -> Span {
        let mut span = Span {
            mean: e_total * share,
            length: share,
            open,
            first_bin: ctx.bin,
            lead: if open {
                (
                    ctx.counts.total.saturating_sub(1) as f64,
                    e_total * (1.0 - share),
                )
            } else {
                (0.0, 0.0)
            },
        };
        // A span that stops short of this bin's start does not reach back.
        if share < 1.0 && (open || share <= 0.0) {
            return span;
        }
        for back in 1..=i64::from(self.bins) {
            let Some(r) = ctx.history.get(ctx.bin - back).filter(|r| r.known) else {
                break;
            };
            let share = r.silent_after();
            span.mean += f64::from(r.expected_total) * share;
            span.length += share;
            span.first_bin = ctx.bin - back;
            if r.total > 0 {
                span.lead = (
                    f64::from(r.total),
                    f64::from(r.expected_total) * (1.0 - share),
                );
                break;
            }
        }
        span
    }

    /// The day's level before the span: the gamma posterior's shape and rate, from a
    /// prior of `1/phi` pseudo-events at the baseline's level and the last
    /// [`LEVEL_BINS`] clean bins with an expectation before the span (looking back at
    /// most twice as far), with what the span's first bin held before the silence
    /// began (the latest word on the stream's rate), events beyond the expected ones
    /// not counted. `None` when `phi` is 0: the baseline's rate is taken as known.
    fn level(ctx: &BinContext<'_>, span: &Span, phi: f64) -> Option<(f64, f64)> {
        if phi.is_nan() || phi <= 0.0 {
            return None;
        }
        let prior = 1.0 / phi.max(MIN_PHI);
        let first_bin = span.first_bin;
        let ((mut seen, mut expected), mut found) = (span.lead, 0);
        for back in 1..=2 * LEVEL_BINS {
            if found == LEVEL_BINS {
                break;
            }
            // A bin judged without an expectation (warm-up) says nothing of the level.
            let usable = |r: &&BinRecord| r.is_clean() && r.expected_total > 0.0;
            if let Some(r) = ctx.history.get(first_bin - back).filter(usable) {
                seen += f64::from(r.total);
                expected += f64::from(r.expected_total);
                found += 1;
            }
        }
        // A burst in those bins (a surge, an attack no detector flagged) says nothing of
        // the rate the stream keeps: the level is never taken above the baseline's.
        Some((prior + seen.min(expected), prior + expected))
    }

    /// The chance of a silent span this long: of nothing over it, at the day's level
    /// (see [`Flatline::level`]); for a span that already ended, times the bin's
    /// expected events (any of them could have ended one).
    fn span_chance(span: &Span, level: Option<(f64, f64)>, e_total: f64) -> f64 {
        if span.length <= 0.0 {
            return 1.0;
        }
        let p = match level {
            // The gamma-Poisson predictive chance of zero: (1 + m/b)^-a.
            Some((a, b)) => (-a * (span.mean / b).ln_1p()).exp(),
            None => (-span.mean).exp(),
        };
        if span.open {
            p
        } else {
            (p * e_total.max(1.0)).min(1.0)
        }
    }
}

/// How many clean bins before a silent span measure the day's level.
const LEVEL_BINS: i64 = 8;

/// The smallest dispersion a prior is built from (at most a million pseudo-events).
const MIN_PHI: f64 = 1e-6;

/// A silent span (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Span {
    mean: f64,
    /// In bins, partial bins counted by their silent share.
    length: f64,
    /// The stream is still silent at the end of this bin.
    open: bool,
    /// The earliest bin the span reaches into.
    first_bin: i64,
    /// What that bin held before the silence began, and what was expected of that part
    /// (its last event, the one the silence follows, left out: a part chosen because it
    /// ends with an event would otherwise always look a little busy).
    lead: (f64, f64),
}

/// The shares of this bin silent before its first event and after its last (all of it
/// when it is empty; none when the source did not say when its events happened).
fn silent_shares(ctx: &BinContext<'_>) -> (f64, f64) {
    let c = &ctx.counts;
    if c.total == 0 {
        return (1.0, 1.0);
    }
    let Some(s) = c.span.filter(|_| ctx.bin_ms > 0) else {
        return (0.0, 0.0);
    };
    let start = ctx.bin.saturating_mul(ctx.bin_ms);
    let share = |ms: i64| (ms as f64 / ctx.bin_ms as f64).clamp(0.0, 1.0);
    (
        share(s.first_ms.saturating_sub(start)),
        share(start.saturating_add(ctx.bin_ms).saturating_sub(s.last_ms)),
    )
}

impl Detector for Flatline {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Flatline
    }

    fn window_bins(&self) -> u32 {
        // The span, and the bins before it that measure the day's level.
        self.bins + 1 + 2 * LEVEL_BINS as u32
    }

    fn p_value(&self) -> Option<f64> {
        Some(self.p_value)
    }

    fn with_p_value(&self, p_value: f64) -> Option<Arc<dyn Detector>> {
        Some(Arc::new(Self {
            p_value,
            ..self.clone()
        }))
    }

    fn evaluate(&self, ctx: &BinContext<'_>) -> Option<Finding> {
        let e = ctx.expected?;
        let phi = ctx.dispersion.total;
        // Flatline only judges the low side; report the usual upper bound of the band.
        let upper = CountModel::new(e.total, phi).upper_bound(self.p_value) as f64;
        let (before, after) = silent_shares(ctx);
        let open = self.span(ctx, e.total, after, true);
        let mut span = open;
        let mut p_span = Self::span_chance(&open, Self::level(ctx, &open, phi), e.total);
        if ctx.counts.total > 0 {
            let closed = self.span(ctx, e.total, before, false);
            let level = Self::level(ctx, &closed, phi);
            let p = Self::span_chance(&closed, level, e.total);
            if p < p_span {
                (span, p_span) = (closed, p);
            }
        }
        // `p_value` split between the open and the closed span.
        let anomalous = p_span <= self.p_value / 2.0;
        Some(Finding {
            anomalous,
            // Silence pages on nothing over the span: report it ("0 events in the last
            // 40 min, expected 35").
            observed: if anomalous {
                0.0
            } else {
                ctx.counts.total as f64
            },
            expected: if anomalous { span.mean } else { e.total },
            lower: 1.0,
            upper,
            p_value: p_span,
            severity: Severity::Critical,
            measure: "events",
            window_bins: if anomalous {
                span.length.ceil().max(1.0) as u32
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

    /// A past bin that held `total` events where `expected` were expected.
    fn bin(total: u32, expected: f32) -> BinRecord {
        BinRecord {
            total,
            known: true,
            seasonal_total: expected,
            expected_total: expected,
            ..BinRecord::default()
        }
    }

    fn det() -> Flatline {
        Flatline {
            p_value: 1e-6,
            bins: 4,
        }
    }

    fn judge(h: &History, expected: f64) -> Finding {
        det()
            .evaluate(&ctx(
                h,
                counts(0, 0, 0),
                Some(test_support_expected(expected)),
            ))
            .unwrap()
    }

    fn test_support_expected(total: f64) -> crate::detect::baseline::Expected {
        expected(total, total * 0.9, total * 0.1)
    }

    #[test]
    fn one_empty_bin_at_the_peak_pages_at_once() {
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(300, 300.0));
        }
        // The gap started mid-bin: the bin before held a third of its events.
        h.push(3, bin(100, 300.0));
        let f = judge(&h, 300.0);
        assert!(f.anomalous && f.p_value < 1e-20, "{f:?}");
    }

    #[test]
    fn silence_accumulates_over_a_window() {
        // Six events expected per bin: one empty bin is ordinary (P = e^-6), an hour
        // of nothing is not (e^-24).
        let mut h = History::new(16);
        h.push(0, bin(6, 6.0));
        let f = judge(&h, 6.0);
        assert!(!f.anomalous, "{f:?}");
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(0, 6.0));
        }
        let f = judge(&h, 6.0);
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.window_bins, 4);
        assert!((f.expected - 24.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_night_hour_is_normal() {
        let mut h = History::new(16);
        for i in 0..3 {
            h.push(i, bin(0, 0.3));
        }
        let f = judge(&h, 0.3);
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_bin_with_events_is_not_silence() {
        let h = History::new(16);
        let f = det()
            .evaluate(&ctx(
                &h,
                counts(1, 1, 0),
                Some(test_support_expected(300.0)),
            ))
            .unwrap();
        assert!(!f.anomalous && f.p_value == 1.0);
    }

    #[test]
    fn unknown_bins_end_the_window() {
        let mut h = History::new(16);
        h.push(0, bin(0, 6.0));
        h.push(1, bin(0, 6.0));
        h.push(2, BinRecord::default());
        let f = judge(&h, 6.0);
        assert!(!f.anomalous, "{f:?}");
    }

    const BIN_MS: i64 = 15 * 60_000;
    const MIN: i64 = 60_000;

    /// A past bin `b` whose events happened at these minutes into it, where `expected`
    /// were expected: its record as the pipeline keeps it.
    fn timed(b: i64, minutes: &[f64], expected: f32) -> BinRecord {
        let mut c = crate::series::Counts::default();
        for m in minutes {
            c.add_at(
                crate::series::OutcomeClass::Success,
                1,
                b * BIN_MS + (m * MIN as f64) as i64,
            );
        }
        BinRecord {
            seasonal_total: expected,
            expected_total: expected,
            ..BinRecord::from_counts(c, b, BIN_MS)
        }
    }

    /// Judge bin `b` holding events at these minutes, after `h`.
    fn judge_at(h: &History, b: i64, minutes: &[f64], expected: f64) -> Finding {
        let rec = timed(b, minutes, expected as f32);
        let mut c = ctx(
            h,
            crate::series::Counts {
                span: rec.span(b, BIN_MS),
                ..rec.counts()
            },
            Some(test_support_expected(expected)),
        );
        c.bin = b;
        c.bin_ms = BIN_MS;
        Flatline::read(
            &mut crate::config_reader::Table::new("", None, &mut Problems::default()),
            &mut Problems::default(),
        )
        .evaluate(&c)
        .unwrap()
    }

    /// [`LEVEL_BINS`] bins before `until` that held what was expected of them, spread
    /// over each bin: a stream that was alive at its usual rate.
    fn alive(until: i64, expected: f32) -> History {
        let mut h = History::new(32);
        let n = expected.round() as u32;
        let minutes: Vec<f64> = (0..n)
            .map(|i| (f64::from(i) + 0.5) * 15.0 / f64::from(n))
            .collect();
        for b in (until - LEVEL_BINS)..until {
            h.push(b, timed(b, &minutes, expected));
        }
        h
    }

    #[test]
    fn a_gap_at_the_peak_pages_in_the_bin_it_starts() {
        // 300 events a bin; the stream stops 5 minutes before this bin's end.
        let mut h = alive(10, 300.0);
        h.push(10, timed(10, &[0.5, 7.0, 14.5], 300.0));
        let minutes: Vec<f64> = (0..200).map(|i| f64::from(i) * 0.05).collect();
        let f = judge_at(&h, 11, &minutes, 300.0);
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.observed, 0.0);
        assert!(f.expected > 90.0 && f.expected < 101.0, "{f:?}");
        // The same bin with events to its end is not silence.
        let minutes: Vec<f64> = (0..300).map(|i| f64::from(i) * 0.05).collect();
        assert!(!judge_at(&h, 11, &minutes, 300.0).anomalous);
    }

    #[test]
    fn a_night_gap_between_two_partial_bins_pages() {
        // Six events a bin; the last at 2 minutes into bin 11, bins 12 and 13 empty: at
        // the end of bin 13, 43 silent minutes expect about 17 events (one in 4·10^7).
        let mut h = alive(10, 6.0);
        h.push(10, timed(10, &[1.0, 5.0, 9.0, 14.0], 6.0));
        h.push(11, timed(11, &[1.0, 2.0], 6.0));
        let f = judge_at(&h, 12, &[], 6.0);
        assert!(!f.anomalous, "28 minutes, 11 expected: {f:?}");
        h.push(12, timed(12, &[], 6.0));
        let f = judge_at(&h, 13, &[], 6.0);
        assert!(f.anomalous, "{f:?}");
        assert_eq!(f.window_bins, 3);
        // Without the times (a CSV of counts) the same bins stay below the threshold.
        let mut blind = History::new(16);
        for (b, n) in [(0, 4), (1, 2), (2, 0)] {
            blind.push(b, bin(n, 6.0));
        }
        let f = judge(&blind, 6.0);
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn a_gap_that_ended_inside_the_bin_pages_when_long_enough() {
        // Silent from 5 minutes before the end of bin 10 to 10 minutes into bin 12: 30
        // minutes. At 10 events a bin (20 expected) that is one in 10^8, times the ten
        // events that could have ended it: pages. At 6 a bin (12 expected) it does not.
        for (expected, pages) in [(10.0, true), (6.0, false)] {
            let mut h = alive(10, expected as f32);
            h.push(10, timed(10, &[1.0, 9.0, 10.0], expected as f32));
            h.push(11, timed(11, &[], expected as f32));
            let f = judge_at(&h, 12, &[10.0, 12.0, 14.0], expected);
            assert_eq!(f.anomalous, pages, "{f:?}");
        }
    }

    #[test]
    fn a_stream_alive_at_a_fifth_of_its_volume_has_ordinary_lulls() {
        // A holiday: the baseline still expects 10 events a bin, the stream has held 2 a
        // bin for two hours. A bin without events (10 expected by the baseline, 2 at the
        // stream's rate) is a lull, not a broken pipeline; the same silence after two
        // normal hours is the start of one.
        let mut h = History::new(32);
        for b in 0..LEVEL_BINS {
            h.push(b, timed(b, &[3.0, 11.0], 10.0));
        }
        let lull = judge_at(&h, LEVEL_BINS, &[], 10.0);
        assert!(!lull.anomalous && lull.p_value > 1e-3, "{lull:?}");
        let h = alive(LEVEL_BINS, 10.0);
        let gap = judge_at(&h, LEVEL_BINS, &[], 10.0);
        assert!(gap.p_value * 30.0 < lull.p_value, "{gap:?} {lull:?}");
    }

    #[test]
    fn a_burst_before_the_silence_does_not_raise_the_bar() {
        // Two hours at 20 times the baseline's 2 events a bin (an attack no detector
        // flagged), then 30 silent minutes where 4 were due: ordinary at the baseline's
        // rate, whatever the burst held.
        let mut h = History::new(32);
        let minutes: Vec<f64> = (0..40).map(|i| f64::from(i) * 0.3).collect();
        for b in 0..LEVEL_BINS {
            h.push(b, timed(b, &minutes, 2.0));
        }
        h.push(LEVEL_BINS, timed(LEVEL_BINS, &[], 2.0));
        let f = judge_at(&h, LEVEL_BINS + 1, &[], 2.0);
        assert!(!f.anomalous && f.p_value > 1e-3, "{f:?}");
    }

    #[test]
    fn a_few_events_where_many_were_due_are_no_silence() {
        // An hour that held 3 events where the baseline expected 36, the last 5 minutes
        // before this empty bin: a drop in volume (volume_drop's), not a silent stream.
        let mut h = alive(10, 9.0);
        for (b, m) in [(10, 2.0), (11, 8.0), (12, 10.0)] {
            h.push(b, timed(b, &[m], 9.0));
        }
        let f = judge_at(&h, 13, &[], 9.0);
        assert!(!f.anomalous, "{f:?}");
    }

    #[test]
    fn an_empty_night_hour_expecting_one_event_is_ordinary() {
        let mut h = History::new(16);
        h.push(0, timed(0, &[0.5], 0.25));
        for b in 1..4 {
            h.push(b, timed(b, &[], 0.25));
        }
        let f = judge_at(&h, 4, &[], 0.25);
        assert!(!f.anomalous && f.p_value > 0.1, "{f:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Traffic drawn from the baseline's own (Poisson) distribution: whatever its
        /// level, the chance that a bin pages stays at most about `p_value`. With a
        /// loose threshold (1 %) so the rate is measurable in a test.
        #[test]
        fn quiet_traffic_pages_at_most_at_the_configured_rate(mean in 0.5f64..4.0, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Poisson};
            let d = Flatline { p_value: 0.01, bins: 4 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let poisson = Poisson::new(mean).unwrap();
            let mut h = History::new(16);
            let (mut pages, mut judged) = (0u32, 0u32);
            for b in 0..4000i64 {
                let n = poisson.sample(&mut rng) as u64;
                let mut c = ctx(&h, counts(n, n, 0), Some(expected(mean, mean, 0.0)));
                c.bin = b;
                c.dispersion.total = 0.0;
                let f = d.evaluate(&c).unwrap();
                judged += 1;
                pages += u32::from(f.anomalous);
                h.push(b, bin(n as u32, mean as f32));
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 0.015, "rate {rate}");
        }

        /// The same with the events' times inside their bins (a Poisson stream in
        /// continuous time): the span tests page at about the configured rate, never
        /// much above it.
        #[test]
        fn quiet_timed_traffic_pages_at_about_the_configured_rate(mean in 1.0f64..6.0, seed in 0u64..1000) {
            use rand::{Rng, SeedableRng};
            use rand_distr::{Distribution, Exp};
            let d = Flatline { p_value: 0.01, bins: 8 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let gaps = Exp::new(mean / BIN_MS as f64).unwrap();
            let mut h = History::new(16);
            let (mut pages, mut judged) = (0u32, 0u32);
            let mut next = gaps.sample(&mut rng) as i64;
            let _ = rng.random::<u8>();
            for b in 0..6000i64 {
                let mut c = crate::series::Counts::default();
                while next < (b + 1) * BIN_MS {
                    c.add_at(crate::series::OutcomeClass::Success, 1, next);
                    next += gaps.sample(&mut rng).max(1.0) as i64;
                }
                let mut rec = BinRecord::from_counts(c, b, BIN_MS);
                rec.expected_total = mean as f32;
                let mut cx = ctx(&h, crate::series::Counts { span: rec.span(b, BIN_MS), ..rec.counts() }, Some(expected(mean, mean, 0.0)));
                cx.bin = b;
                cx.bin_ms = BIN_MS;
                cx.dispersion.total = 0.0;
                let f = d.evaluate(&cx).unwrap();
                if b >= 8 {
                    judged += 1;
                    pages += u32::from(f.anomalous);
                }
                h.push(b, rec);
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 0.015, "rate {rate} above 0.01");
            proptest::prop_assert!(rate >= 0.001, "rate {rate} far below 0.01");
        }

        /// A stream whose level moves from day to day as the dispersion says (a gamma
        /// with mean 1 and squared spread `phi`, unknown to the baseline, which expects
        /// the mean): judged at the level the stream showed lately, silence pages at most
        /// at about the configured rate (within a factor of two: the level is measured
        /// from a dozen events at the lowest means; the baseline's fixed rate pages
        /// several times as often).
        #[test]
        fn a_stream_at_an_unknown_level_pages_at_most_at_the_configured_rate(mean in 1.0f64..6.0, phi in 0.05f64..0.5, seed in 0u64..1000) {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Exp, Gamma};
            let d = Flatline { p_value: 0.01, bins: 8 };
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let levels = Gamma::new(1.0 / phi, phi).unwrap();
            let mut h = History::new(64);
            let (mut pages, mut judged) = (0u32, 0u32);
            let mut next = 0i64;
            let mut rate = mean;
            for b in 0..6000i64 {
                if b % 96 == 0 {
                    // A new day at a new level; the stream restarts from its start.
                    rate = mean * levels.sample(&mut rng).max(0.05);
                    next = b * BIN_MS + Exp::new(rate / BIN_MS as f64).unwrap().sample(&mut rng) as i64;
                }
                let gaps = Exp::new(rate / BIN_MS as f64).unwrap();
                let mut c = crate::series::Counts::default();
                while next < (b + 1) * BIN_MS {
                    c.add_at(crate::series::OutcomeClass::Success, 1, next);
                    next += gaps.sample(&mut rng).max(1.0) as i64;
                }
                let mut rec = BinRecord::from_counts(c, b, BIN_MS);
                rec.expected_total = mean as f32;
                let mut cx = ctx(&h, crate::series::Counts { span: rec.span(b, BIN_MS), ..rec.counts() }, Some(expected(mean, mean, 0.0)));
                cx.bin = b;
                cx.bin_ms = BIN_MS;
                cx.dispersion.total = phi;
                let f = d.evaluate(&cx).unwrap();
                // Judged from the third hour of a day on (the bins before it measure the
                // day's level).
                if b % 96 >= 12 {
                    judged += 1;
                    pages += u32::from(f.anomalous);
                }
                h.push(b, rec);
            }
            let rate = f64::from(pages) / f64::from(judged);
            proptest::prop_assert!(rate <= 0.02, "rate {rate} above 0.01");
        }
    }
}
