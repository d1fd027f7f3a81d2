//! The status page at `/`: what the daemon sees, for a human with a browser.
//!
//! Per rule and series, two charts of the recent bins — successful and failed sign-ins,
//! the two lines of the seed tutorial's CloudWatch dashboard — with what the baseline
//! expected (dashed), the band outside which the detector pages (shaded), anomalous bins
//! (dots) and alert markers (a red line where an alert fired, green where it resolved);
//! above them a table of the alerts firing now. The page is one self-contained HTML
//! document: inline CSS and SVG, no scripts, no external assets; every text from
//! outside (rule names, labels, summaries) is escaped.
//!
//! The daemon fills a [`Board`]: the pipeline shows it every evaluated bin through
//! [`Tracer`] (a [`crate::pipeline::Observer`]); alerts and the daemon's phase are set
//! directly. Memory is bounded: [`RECENT_BINS`] bins per series, and for a rule with
//! `split_by` only [`MAX_SERIES`] series (the busiest, see [`RuleBoard::record`]).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use crate::alert::{Alert, Status};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::detect::{BinContext, DetectorKind};
use crate::notify::mute::Mute;
use crate::pipeline::lifecycle::Transition;
use crate::pipeline::{Observer, Verdict};
use crate::series::Labels;
use crate::source::config::SourceKind;

/// Bins kept (and drawn) per series: two days of 15-minute bins.
pub const RECENT_BINS: usize = 192;
/// Series drawn per rule with `split_by`; a rule without it has exactly one.
pub const MAX_SERIES: usize = 6;
/// Seconds between automatic reloads of the page.
const REFRESH_SECS: u32 = 60;

/// One measure of one bin as drawn: what was seen, expected, and the paging band.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measure {
    pub observed: f64,
    pub expected: Option<f64>,
    /// `[lower, upper]` of the detector that judges this measure, when it judged the bin.
    pub band: Option<(f64, f64)>,
    pub anomalous: bool,
}

/// An alert transition in a bin: which detector, and whether it fired or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub detector: DetectorKind,
    pub firing: bool,
}

/// One evaluated bin of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct BinTrace {
    pub bin: i64,
    pub total: u64,
    pub success: Measure,
    pub failure: Measure,
    pub marks: Vec<Mark>,
}

impl BinTrace {
    /// Build from what the detectors of a rule (`detectors`, in the rule's order) saw and
    /// decided. Successes take their band from `success_drop`, failures from
    /// `failure_spike`; a rule without that detector shows the expectation only.
    pub fn new(ctx: &BinContext<'_>, verdicts: &[Verdict], detectors: &[DetectorKind]) -> Self {
        let mut success = Measure {
            observed: ctx.counts.success as f64,
            expected: ctx.expected.map(|e| e.success),
            ..Measure::default()
        };
        let mut failure = Measure {
            observed: ctx.counts.failure as f64,
            expected: ctx.expected.map(|e| e.failure),
            ..Measure::default()
        };
        let mut marks = Vec::new();
        for (kind, v) in detectors.iter().zip(verdicts) {
            let measure = match kind {
                DetectorKind::SuccessDrop => Some(&mut success),
                DetectorKind::FailureSpike => Some(&mut failure),
                _ => None,
            };
            if let (Some(m), Some(f)) = (measure, &v.finding) {
                m.expected = Some(f.expected);
                m.band = Some((f.lower, f.upper));
                m.anomalous = f.anomalous;
            }
            match v.transition {
                Transition::Fire { .. } | Transition::Repeat { .. } => marks.push(Mark {
                    detector: *kind,
                    firing: true,
                }),
                Transition::Resolve { .. } => marks.push(Mark {
                    detector: *kind,
                    firing: false,
                }),
                Transition::Quiet => {}
            }
        }
        BinTrace {
            bin: ctx.bin,
            total: ctx.counts.total,
            success,
            failure,
            marks,
        }
    }
}

/// What the daemon is doing, for the page's header and `systemctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    LoadingHistory,
    Watching,
    /// A file source without `follow` read its file to the end.
    SourceFinished,
}

/// One rule's part of the page.
#[derive(Debug, Clone)]
pub struct RuleBoard {
    pub name: String,
    pub bin_ms: i64,
    pub split_by: Option<String>,
    pub detectors: Vec<DetectorKind>,
    /// The drawn series, each with its last [`RECENT_BINS`] bins, oldest first.
    pub series: Vec<(Labels, VecDeque<BinTrace>)>,
}

impl RuleBoard {
    /// Keep `trace` for `labels`. A rule with `split_by` can have thousands of series (one
    /// per IP); only [`MAX_SERIES`] are drawn. A new series takes the place of the
    /// quietest one (lowest mean attempts per bin) when it is busier than that one, unless
    /// the quietest has alerts in its window: the page shows what matters.
    pub fn record(&mut self, labels: &Labels, trace: BinTrace) {
        if let Some((_, ring)) = self.series.iter_mut().find(|(l, _)| l == labels) {
            if ring.len() >= RECENT_BINS {
                ring.pop_front();
            }
            ring.push_back(trace);
            return;
        }
        if self.series.len() < MAX_SERIES {
            self.series.push((labels.clone(), VecDeque::from([trace])));
            return;
        }
        let mean = |ring: &VecDeque<BinTrace>| {
            ring.iter().map(|t| t.total as f64).sum::<f64>() / ring.len().max(1) as f64
        };
        let quietest = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, (_, ring))| ring.iter().all(|t| t.marks.is_empty()))
            .min_by(|a, b| mean(&a.1 .1).total_cmp(&mean(&b.1 .1)));
        if let Some((i, (_, ring))) = quietest {
            if trace.total as f64 > mean(ring) || !trace.marks.is_empty() {
                self.series[i] = (labels.clone(), VecDeque::from([trace]));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct BoardState {
    version: &'static str,
    started_ms: i64,
    source: String,
    sinks: usize,
    phase: Phase,
    ready: bool,
    last_poll_ms: Option<i64>,
    /// When the config was last reloaded, and whether it was accepted.
    last_reload: Option<(i64, bool)>,
    rules: Vec<RuleBoard>,
    /// Firing alerts by fingerprint (the latest notice of each).
    open: BTreeMap<String, Alert>,
    /// The config's maintenance windows: open alerts they cover are marked muted.
    mutes: Vec<Mute>,
}

/// The status page's data, shared between the daemon loop and the HTTP server.
#[derive(Debug)]
pub struct Board {
    clock: SharedClock,
    state: Mutex<BoardState>,
}

impl Board {
    pub fn new(clock: SharedClock) -> Board {
        Board {
            state: Mutex::new(BoardState {
                version: env!("CARGO_PKG_VERSION"),
                started_ms: clock.now_ms(),
                source: String::new(),
                sinks: 0,
                phase: Phase::LoadingHistory,
                ready: false,
                last_poll_ms: None,
                last_reload: None,
                rules: Vec::new(),
                open: BTreeMap::new(),
                mutes: Vec::new(),
            }),
            clock,
        }
    }
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock cannot leave the board inconsistent in a way
        // that matters for a read-only page: keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start over for a (re)loaded config: its rules, no traces, no alerts. The pipeline
    /// is rebuilt with the config and refills both from history.
    pub fn reset(&self, config: &Config) {
        let mut s = self.lock();
        s.source = match config.source.kind {
            SourceKind::File => format!(
                "file {}",
                config
                    .source
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            SourceKind::Cloudwatch => format!(
                "CloudWatch Logs Insights on {}",
                config.source.log_groups.join(", ")
            ),
        };
        s.sinks = config.sinks.len();
        s.phase = Phase::LoadingHistory;
        s.ready = false;
        s.last_poll_ms = None;
        s.open.clear();
        s.mutes = config.mutes.clone();
        s.rules = config
            .rules
            .iter()
            .map(|r| RuleBoard {
                name: r.name.clone(),
                bin_ms: r.bin_ms(),
                split_by: r.split_by.clone(),
                detectors: r.detectors.iter().map(|d| d.detector.kind()).collect(),
                series: Vec::new(),
            })
            .collect();
    }

    pub fn set_phase(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    pub fn set_ready(&self, ready: bool) {
        self.lock().ready = ready;
    }

    pub fn set_last_poll(&self, ms: i64) {
        self.lock().last_poll_ms = Some(ms);
    }

    pub fn reloaded(&self, at_ms: i64, accepted: bool) {
        self.lock().last_reload = Some((at_ms, accepted));
    }

    /// Follow the alerts the pipeline (or the source's health) raised: firing ones are
    /// open until their `resolved`.
    pub fn alerts(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let mut s = self.lock();
        for a in alerts {
            match a.status {
                Status::Firing => {
                    s.open.insert(a.fingerprint.clone(), a.clone());
                }
                Status::Resolved => {
                    s.open.remove(&a.fingerprint);
                }
            }
        }
    }

    /// An [`Observer`] that records every evaluated bin; holds the board's lock, so keep
    /// it for one batch of updates.
    pub fn tracer(&self) -> Tracer<'_> {
        Tracer { state: self.lock() }
    }

    /// The recorded traces of one rule's series (tests and the page).
    pub fn rule(&self, index: usize) -> Option<RuleBoard> {
        self.lock().rules.get(index).cloned()
    }

    /// The page. Rendered from a copy, so the daemon loop never waits for a slow client.
    pub fn render(&self) -> String {
        let state = self.lock().clone();
        render(&state, self.clock.now_ms())
    }
}

/// Records evaluated bins into the board (see [`Board::tracer`]).
pub struct Tracer<'a> {
    state: MutexGuard<'a, BoardState>,
}

impl Observer for Tracer<'_> {
    fn series_bin(
        &mut self,
        rule: usize,
        labels: &Labels,
        ctx: &BinContext<'_>,
        verdicts: &[Verdict],
    ) {
        if let Some(r) = self.state.rules.get_mut(rule) {
            let trace = BinTrace::new(ctx, verdicts, &r.detectors);
            r.record(labels, trace);
        }
    }
}

/// Escape text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(ms: i64, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn labels_text(labels: &Labels) -> String {
    if labels.is_empty() {
        return "all sign-ins".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const CSS: &str = r#"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 4px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 4px; }
.meta { color: #57606a; margin: 0 0 12px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; }
.ok { background: #dafbe1; color: #116329; }
.warn { background: #fff8c5; color: #7d4e00; }
.bad { background: #ffebe9; color: #a40e26; }
.muted { background: #eaeef2; color: #57606a; }
table { border-collapse: collapse; margin: 8px 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
td.summary { white-space: normal; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg { background: #fff; border: 1px solid #d0d7de; }
svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
svg .title { font-weight: 600; fill: #1f2328; }
.legend span { margin-right: 14px; white-space: nowrap; }
.sw { display: inline-block; width: 18px; height: 10px; vertical-align: middle; margin-right: 4px; }
.empty { color: #57606a; font-style: italic; }
"#;

fn render(s: &BoardState, now_ms: i64) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <title>authpulse status</title><style>{CSS}</style></head><body>\n"
    );
    let (phase_class, phase_text) = match (s.phase, s.ready) {
        (Phase::LoadingHistory, _) => ("warn", "loading history"),
        (Phase::Watching, true) => ("ok", "watching"),
        (Phase::Watching, false) => ("bad", "source failing"),
        (Phase::SourceFinished, _) => ("warn", "source finished"),
    };
    let _ = writeln!(
        h,
        "<header><h1>authpulse <span id=\"phase\" class=\"pill {phase_class}\">{phase_text}</span></h1>\
         <p class=\"meta\">version {} · source: {} · {} · {} · up since {} · last poll {}{} · page generated {} (refreshes every {REFRESH_SECS} s)</p></header>",
        esc(s.version),
        esc(&s.source),
        plural(s.rules.len(), "rule"),
        plural(s.sinks, "sink"),
        time(s.started_ms, "%Y-%m-%d %H:%M:%S UTC"),
        s.last_poll_ms
            .map_or_else(|| "never".to_string(), |t| time(t, "%H:%M:%S UTC")),
        match s.last_reload {
            Some((t, true)) => format!(" · config reloaded {}", time(t, "%H:%M:%S UTC")),
            Some((t, false)) => format!(
                " · <span class=\"pill bad\">config reload rejected {}</span>",
                time(t, "%H:%M:%S UTC")
            ),
            None => String::new(),
        },
        time(now_ms, "%H:%M:%S UTC"),
    );

    let _ = writeln!(
        h,
        "<section id=\"open-alerts\"><h2>Open alerts ({})</h2>",
        s.open.len()
    );
    if s.open.is_empty() {
        h.push_str("<p class=\"empty\">No alert is firing.</p>\n");
    } else {
        h.push_str(
            "<table><thead><tr><th>severity</th><th>rule</th><th>detector</th><th>series</th>\
             <th>since</th><th>last bin</th><th>observed</th><th>expected</th><th>summary</th></tr></thead><tbody>\n",
        );
        let mut open: Vec<&Alert> = s.open.values().collect();
        open.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.started_at.cmp(&b.started_at))
        });
        for a in open {
            let _ = writeln!(
                h,
                "<tr><td><span class=\"pill {}\">{}</span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"summary\">{}</td></tr>",
                if a.severity == crate::detect::Severity::Critical { "bad" } else { "warn" },
                esc(&a.severity.to_string()),
                // Not sent: a maintenance window covers it (see `crate::notify::mute`).
                s.mutes
                    .iter()
                    .find(|m| m.covers(a))
                    .map(|m| format!(
                        " <span class=\"pill muted\" title=\"{}\">muted</span>",
                        esc(&m.reason)
                    ))
                    .unwrap_or_default(),
                esc(&a.rule),
                esc(&a.detector),
                esc(&labels_text(&a.series)),
                esc(&a.started_at.to_string()),
                esc(&a.bin_start.to_string()),
                number(a.observed),
                number(a.expected),
                esc(&a.summary),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");

    h.push_str(
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:#0969da\"></i>observed</span>\
         <span><i class=\"sw\" style=\"border-top:2px dashed #57606a;height:0\"></i>expected</span>\
         <span><i class=\"sw\" style=\"background:#54aeff;opacity:.3\"></i>normal band (pages outside it)</span>\
         <span><i class=\"sw\" style=\"background:#cf222e;border-radius:5px;width:10px\"></i>anomalous bin</span>\
         <span><i class=\"sw\" style=\"background:#cf222e;width:3px\"></i>alert fired</span>\
         <span><i class=\"sw\" style=\"background:#1a7f37;width:3px\"></i>alert resolved</span></p>\n",
    );
    for (ri, r) in s.rules.iter().enumerate() {
        let detectors: Vec<&str> = r.detectors.iter().map(|d| d.name()).collect();
        let _ = writeln!(
            h,
            "<section class=\"rule\" id=\"rule-{ri}\"><h2>Rule {}</h2><p class=\"meta\">bins of {} · detectors: {}{}</p>",
            esc(&r.name),
            humantime::format_duration(std::time::Duration::from_millis(r.bin_ms.max(0) as u64)),
            esc(&detectors.join(", ")),
            r.split_by
                .as_ref()
                .map(|f| format!(
                    " · split by {} (the {MAX_SERIES} busiest series shown)",
                    esc(f)
                ))
                .unwrap_or_default(),
        );
        if r.series.is_empty() {
            h.push_str("<p class=\"empty\">No bin evaluated yet.</p>\n");
        }
        for (labels, ring) in &r.series {
            let _ = write!(
                h,
                "<div class=\"series\"><h3>{}</h3><div class=\"charts\">",
                esc(&labels_text(labels))
            );
            let bins: Vec<&BinTrace> = ring.iter().collect();
            chart(&mut h, "Successful sign-ins", &bins, r.bin_ms, |t| {
                &t.success
            });
            chart(&mut h, "Failed sign-ins", &bins, r.bin_ms, |t| &t.failure);
            h.push_str("</div></div>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else if x.abs() < 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.1}")
    }
}

/// Chart geometry, in SVG user units.
const W: f64 = 640.0;
const H: f64 = 190.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 24.0;

/// One inline SVG chart of one measure over `bins` (oldest first).
fn chart(
    h: &mut String,
    title: &str,
    bins: &[&BinTrace],
    bin_ms: i64,
    measure: impl Fn(&BinTrace) -> &Measure,
) {
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return;
    };
    let (first_bin, last_bin) = (first.bin, last.bin.max(first.bin + 1));
    // The y range covers what was seen and expected; a band edge far off the scale (a
    // drop detector's upper bound) is clipped rather than squashing the lines.
    let seen = bins
        .iter()
        .map(|t| {
            let m = measure(t);
            m.observed.max(m.expected.unwrap_or(0.0))
        })
        .fold(0.0, f64::max);
    let band_top = bins
        .iter()
        .filter_map(|t| measure(t).band.map(|(_, hi)| hi))
        .filter(|hi| hi.is_finite())
        .fold(0.0, f64::max);
    // At least 2, so that a quiet series' axis reads 0, 1, 2 rather than fractions.
    let y_max = nice_ceiling(seen.max(band_top.min(seen * 2.0 + 5.0)).max(2.0));
    // An attack of 2,000 failures next to a normal 5 would flatten the baseline into the
    // axis: when the peak dwarfs what is normal, the scale is logarithmic (log(1 + v)),
    // so both the attack and the band stay readable.
    let normal = bins
        .iter()
        .map(|t| {
            let m = measure(t);
            m.expected.unwrap_or(0.0).max(
                m.band
                    .map_or(0.0, |(_, hi)| if hi.is_finite() { hi } else { 0.0 }),
            )
        })
        .fold(0.0, f64::max);
    let log = seen > 10.0 * normal.max(2.0);
    let scale = |v: f64| {
        if log {
            (1.0 + v.max(0.0)).log10() / (1.0 + y_max).log10()
        } else {
            v / y_max
        }
    };
    let x = |bin: i64| {
        LEFT + (bin - first_bin) as f64 / (last_bin - first_bin) as f64 * (W - LEFT - RIGHT)
    };
    let y = |v: f64| TOP + (1.0 - scale(v).clamp(0.0, 1.0)) * (H - TOP - BOTTOM);

    let shown_title = if log {
        format!("{title} (log scale)")
    } else {
        title.to_string()
    };
    let _ = write!(
        h,
        "<svg class=\"chart\" role=\"img\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\
         <title>{}</title><text class=\"title\" x=\"{LEFT}\" y=\"15\">{}</text>",
        esc(&shown_title),
        esc(&shown_title)
    );
    // Grid lines: 0, half and top of a linear scale; 0 and each power of ten of a log one.
    let ticks: Vec<f64> = if log {
        std::iter::once(0.0)
            .chain(std::iter::successors(Some(1.0), |v| Some(v * 10.0)).take_while(|v| *v < y_max))
            .chain(std::iter::once(y_max))
            .collect()
    } else {
        vec![0.0, y_max / 2.0, y_max]
    };
    for v in ticks {
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y(v) + 4.0,
            number(v),
            y = y(v),
        );
    }
    let span = last_bin - first_bin;
    let step = (span / 6).max(1);
    let mut b = first_bin;
    while b <= last_bin {
        let fmt = if (b * bin_ms).rem_euclid(86_400_000) == 0 || b == first_bin {
            "%a %H:%M"
        } else {
            "%H:%M"
        };
        // A label at the right edge ends there instead of running off the chart.
        let anchor = if x(b) > W - RIGHT - 30.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(b),
            H - 6.0,
            time(b * bin_ms, fmt)
        );
        b += step;
    }

    // Contiguous runs of bins: a gap (a bin the source could not read) breaks the lines.
    let runs = bins.chunk_by(|a, b| b.bin == a.bin + 1);
    for run in runs {
        // The band: upper edge left to right, lower edge back.
        let banded: Vec<(i64, (f64, f64))> = run
            .iter()
            .filter_map(|t| measure(t).band.map(|b| (t.bin, b)))
            .collect();
        for seg in banded.chunk_by(|a, b| b.0 == a.0 + 1) {
            let mut pts = String::new();
            for (bin, (_, hi)) in seg {
                let _ = write!(pts, "{:.1},{:.1} ", x(*bin), y(*hi));
            }
            for (bin, (lo, _)) in seg.iter().rev() {
                let _ = write!(pts, "{:.1},{:.1} ", x(*bin), y(*lo));
            }
            let _ = write!(
                h,
                "<polygon class=\"band\" points=\"{}\" fill=\"#54aeff\" fill-opacity=\"0.25\" stroke=\"none\"/>",
                pts.trim_end()
            );
        }
        let expected: Vec<(i64, f64)> = run
            .iter()
            .filter_map(|t| measure(t).expected.map(|e| (t.bin, e)))
            .collect();
        for seg in expected.chunk_by(|a, b| b.0 == a.0 + 1) {
            h.push_str(&polyline(
                seg.iter().map(|&(b, v)| (x(b), y(v))),
                "expected",
                "#57606a",
                "stroke-dasharray=\"4 3\"",
            ));
        }
        h.push_str(&polyline(
            run.iter().map(|t| (x(t.bin), y(measure(t).observed))),
            "observed",
            "#0969da",
            "",
        ));
    }
    for t in bins {
        let m = measure(t);
        if m.anomalous {
            let _ = write!(
                h,
                "<circle class=\"anomalous\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#cf222e\"><title>{} UTC: {} (expected {})</title></circle>",
                x(t.bin),
                y(m.observed),
                time(t.bin * bin_ms, "%Y-%m-%d %H:%M"),
                number(m.observed),
                m.expected.map_or_else(|| "?".into(), number),
            );
        }
        for mark in &t.marks {
            let (class, colour, verb) = if mark.firing {
                ("alert-fired", "#cf222e", "fired")
            } else {
                ("alert-resolved", "#1a7f37", "resolved")
            };
            let xm = x(t.bin);
            let _ = write!(
                h,
                "<g class=\"{class}\"><line x1=\"{xm:.1}\" x2=\"{xm:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\
                 <polygon points=\"{:.1},{TOP} {:.1},{TOP} {xm:.1},{:.1}\" fill=\"{colour}\"/>\
                 <title>{} {verb} at {} UTC</title></g>",
                H - BOTTOM,
                xm - 4.0,
                xm + 4.0,
                TOP + 6.0,
                esc(mark.detector.name()),
                time(t.bin * bin_ms, "%Y-%m-%d %H:%M"),
            );
        }
    }
    h.push_str("</svg>");
}

fn polyline(
    points: impl Iterator<Item = (f64, f64)>,
    class: &str,
    colour: &str,
    extra: &str,
) -> String {
    let pts: Vec<String> = points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    if pts.len() == 1 {
        // A single bin: a dot, since a one-point line is invisible.
        let (cx, cy) = pts[0].split_once(',').unwrap_or(("0", "0"));
        return format!(
            "<circle class=\"{class}\" cx=\"{cx}\" cy=\"{cy}\" r=\"2\" fill=\"{colour}\"/>"
        );
    }
    format!(
        "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" {extra}/>",
        pts.join(" ")
    )
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v`: round numbers on the y axis.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(bin: i64, total: u64, fired: bool) -> BinTrace {
        BinTrace {
            bin,
            total,
            success: Measure::default(),
            failure: Measure::default(),
            marks: if fired {
                vec![Mark {
                    detector: DetectorKind::FailureSpike,
                    firing: true,
                }]
            } else {
                Vec::new()
            },
        }
    }

    fn ip(n: u32) -> Labels {
        Labels::from([("client.ipAddress".to_string(), format!("203.0.113.{n}"))])
    }

    fn board() -> RuleBoard {
        RuleBoard {
            name: "r".into(),
            bin_ms: 900_000,
            split_by: Some("client.ipAddress".into()),
            detectors: vec![DetectorKind::FailureSpike],
            series: Vec::new(),
        }
    }

    #[test]
    fn a_series_keeps_only_its_recent_bins() {
        let mut r = board();
        for b in 0..(RECENT_BINS as i64 + 50) {
            r.record(&Labels::new(), trace(b, 1, false));
        }
        let ring = &r.series[0].1;
        assert_eq!(ring.len(), RECENT_BINS);
        assert_eq!(ring.front().map(|t| t.bin), Some(50));
    }

    #[test]
    fn split_rules_draw_the_busiest_series_and_keep_those_with_alerts() {
        let mut r = board();
        // Series 0 is quiet but had an alert; 1..6 are busier.
        r.record(&ip(0), trace(0, 1, true));
        for n in 1..MAX_SERIES as u32 {
            r.record(&ip(n), trace(0, 10 + u64::from(n), false));
        }
        assert_eq!(r.series.len(), MAX_SERIES);
        // A quiet newcomer is not drawn; a busy one replaces the quietest without alerts.
        r.record(&ip(100), trace(1, 2, false));
        assert!(r.series.iter().all(|(l, _)| *l != ip(100)));
        r.record(&ip(101), trace(1, 500, false));
        assert_eq!(r.series.len(), MAX_SERIES);
        assert!(r.series.iter().any(|(l, _)| *l == ip(101)));
        assert!(
            r.series.iter().any(|(l, _)| *l == ip(0)),
            "the alerting series stays"
        );
        assert!(
            r.series.iter().all(|(l, _)| *l != ip(1)),
            "the quietest went"
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_board_renders_a_page() {
        let b = Board::new(crate::clock::ManualClock::at(1_795_600_000_000));
        b.reset(&Config::builtin());
        let page = b.render();
        assert!(page.contains("No alert is firing."));
        assert!(page.contains("No bin evaluated yet."));
        assert!(page.contains("loading history"));
    }

    #[test]
    fn open_alerts_in_a_maintenance_window_are_marked_muted() {
        use crate::sink::render::tests::sample_alert;
        let mut config = Config::builtin();
        config.mutes = vec![Mute {
            window: crate::notify::mute::Window::Once {
                start_ms: 0,
                end_ms: i64::MAX,
            },
            rules: Vec::new(),
            detectors: Vec::new(),
            reason: "Okta <upgrade>".into(),
        }];
        let b = Board::new(crate::clock::ManualClock::at(1_795_600_000_000));
        b.reset(&config);
        b.alerts(&[sample_alert(Status::Firing, "2026-11-25T10:00:00Z")]);
        let page = b.render();
        assert!(page.contains("Open alerts (1)"));
        assert!(
            page.contains("<span class=\"pill muted\" title=\"Okta &lt;upgrade&gt;\">muted</span>"),
            "{page}"
        );
        b.reset(&Config::builtin());
        b.alerts(&[sample_alert(Status::Firing, "2026-11-25T10:00:00Z")]);
        assert!(!b.render().contains("pill muted"));
    }

    #[test]
    fn y_axis_ends_on_round_numbers() {
        assert_eq!(nice_ceiling(2.0), 2.0);
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
    }
}
