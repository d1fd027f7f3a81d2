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
//! gap where a dozen events were due pages). The level may also be above the
//! baseline's: at night the baseline's season can expect half of what the stream keeps
//! (the same hours of earlier weeks held less), and a night gap judged at half the rate
//! was missed. Each bin counts at most twice its expectation, so a burst before the
//! silence raises the bar by a bounded factor, not by what the burst held, and a level
//! above 1 is taken only as far as the latest bin shows it (an evening winding down is
//! not judged at its busy hours' rate). With `φ = 0` the rate is the baseline's.
//!
//! # A lull that ended inside the bin
//! The bin's expectation is its season's, smoothed over neighbouring bins: before a
//! step (the phones' morning, at the same minute every day) it holds part of the step,
//! and the minutes before the step are expected at a rate they never have. A span that
//! ended inside this bin is judged with the bin's part after it as the latest word on
//! the rate: this bin expects at most [`LEVEL_CAP`] times what its events after the
//! silence make over the whole bin. A gap that ended and left the stream at its usual
//! rate is judged as before. Outside traffic seed 37: nothing from 05:13:47 to
//! 05:20:14 UTC on a Sunday, ten minutes before the phones' morning refreshes; the bin
//! expected about 60 where its events after the lull ran at 17 a bin. It had paged at
//! 2.9·10⁻¹⁴; judged at twice 17 it comes to 1.4·10⁻⁶, just short of `okta-sessions`'
//! threshold (10⁻⁶ for a closed span).
//!
//! Events are taken one by one, as a Poisson stream: a rule over event types that come
//! in clusters (a sign-in's push and factor check within seconds of it) would page on
//! ordinary silent seconds, which is why the built-in `okta-sessions` counts sign-ins
//! and sign-outs only.
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
use crate::detect::baseline::Basis;
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
    /// began (the latest word on the stream's rate), each counted up to [`LEVEL_CAP`]
    /// times what was expected of it. Each bin weighs `1 / (1 + step · expected)`:
    /// where bins scatter from one to the next around the day's level (the step
    /// dispersion `step` of a counted series — mentions, requests), one bin says less
    /// about the level than its count would for a Poisson stream. A level above the
    /// baseline's is read only from bins that know their events' times (a CSV of
    /// counts is never judged above its baseline: quiet negative binomial counts paged
    /// in `counted_series`), and only as far as the latest bin and the lead show it: a
    /// busy evening that is already winding down (or a holiday that began at midnight)
    /// is not judged at the rate of the hours before. `None` when `phi` is 0: the
    /// baseline's rate is taken as known.
    fn level(ctx: &BinContext<'_>, span: &Span, phi: f64, step: f64) -> Option<(f64, f64)> {
        if phi.is_nan() || phi <= 0.0 {
            return None;
        }
        let prior = 1.0 / phi.max(MIN_PHI);
        let first_bin = span.first_bin;
        let (lead_seen, lead_expected) = span.lead;
        let (mut seen, mut expected) = (lead_seen.min(LEVEL_CAP * lead_expected), lead_expected);
        // What the lead and the latest clean bin held, over what they were expected to.
        let mut latest = (seen, expected);
        let (mut found, mut timed) = (0, false);
        // What the bins held uncapped (the lead too), for a stream without event times.
        let mut raw_seen = lead_seen;
        for back in 1..=2 * LEVEL_BINS {
            if found == LEVEL_BINS {
                break;
            }
            // A bin judged without an expectation (warm-up) says nothing of the level.
            let usable = |r: &&BinRecord| r.is_clean() && r.expected_total > 0.0;
            if let Some(r) = ctx.history.get(first_bin - back).filter(usable) {
                let weight = 1.0 / (1.0 + step.max(0.0) * f64::from(r.expected_total));
                let e = f64::from(r.expected_total);
                let n = f64::from(r.total).min(LEVEL_CAP * e);
                seen += weight * n;
                raw_seen += weight * f64::from(r.total);
                expected += weight * e;
                if found == 0 {
                    latest = (latest.0 + n, latest.1 + e);
                }
                timed |= r.quiet_before > 0 || r.quiet_after > 0;
                found += 1;
            }
        }
        if !timed {
            // Counts without event times (a CSV that scatters from bin to bin: its busy
            // bins say little about the next) are never read above the baseline.
            return Some((prior + raw_seen.min(expected), prior + expected));
        }
        let (shape, rate) = (prior + seen, prior + expected);
        let latest_ratio = if latest.1 > 0.0 {
            latest.0 / latest.1
        } else {
            1.0
        };
        Some((shape.min(rate * latest_ratio.max(1.0)), rate))
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

/// The most a bin says about the day's level: at most this many times what it was
/// expected to hold. A stream that kept twice its expectation for two hours (a night
/// when another office's people are awake, a season the baseline learned from a
/// quieter week) is judged at that rate; a burst in one bin (a surge, an attack no
/// detector flagged) raises the level by at most this factor of that bin's share.
const LEVEL_CAP: f64 = 2.0;

/// The dispersion a prior is built from at least when the expectation is not the same
/// hour of an earlier week (see [`Flatline::evaluate`]).
const FALLBACK_PHI: f64 = 0.25;

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

/// What the last [`LEVEL_BINS`] clean bins with an expectation were expected to hold,
/// on average (looking back at most twice as far).
fn recent_expectation(ctx: &BinContext<'_>) -> Option<f64> {
    let expectations: Vec<f64> = (1..=2 * LEVEL_BINS)
        .filter_map(|back| ctx.history.get(ctx.bin - back))
        .filter(|r| r.is_clean() && r.expected_total > 0.0)
        .take(LEVEL_BINS as usize)
        .map(|r| f64::from(r.expected_total))
        .collect();
    (!expectations.is_empty()).then(|| expectations.iter().sum::<f64>() / expectations.len() as f64)
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
        let mut e = ctx.expected?;
        // Flatline only judges the low side; report the usual upper bound of the band.
        let upper = CountModel::new(e.total, ctx.dispersion.total).upper_bound(self.p_value) as f64;
        // Without the same hour of an earlier week (the first week) the expectation is
        // the time of day's or the recent level's, and the first bin of a Sunday can
        // expect the Saturday's 13 where the bins before it expected 5: this bin is
        // taken to expect no more than they did on average, and the level is read from
        // the stream itself, the prior worth at most `1/FALLBACK_PHI` pseudo-events.
        let phi = match e.basis {
            Basis::HourOfWeek => ctx.dispersion.total,
            _ => {
                e.total = e.total.min(recent_expectation(ctx).unwrap_or(e.total));
                ctx.dispersion.total.max(FALLBACK_PHI)
            }
        };
        let (before, after) = silent_shares(ctx);
        let open = self.span(ctx, e.total, after, true);
        let mut span = open;
        let step = ctx.dispersion.step;
        let mut p_span = Self::span_chance(&open, Self::level(ctx, &open, phi, step), e.total);
        if ctx.counts.total > 0 {
            // See "A lull that ended inside the bin".
            let seen_rate = ctx.counts.total as f64 / (1.0 - before).max(f64::EPSILON);
            let closed = self.span(ctx, e.total.min(LEVEL_CAP * seen_rate), before, false);
            let level = Self::level(ctx, &closed, phi, step);
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
            evidence_bins: 1,
        })
    }
}

#[cfg(test)]
mod tests;
