//! `backtest --report report.html`: one self-contained page an operator can decide from.
//!
//! Per series (the most eventful first, at most [`MAX_SERIES`]) one chart with a panel per
//! detector: the observed value of every bin, the expected value and the normal band
//! [lower, upper] the detector judged it against, bins it flagged, and where pages fired,
//! repeated and resolved. Bins a detector could not judge (warm-up, too little traffic)
//! are shaded. Below, a table of every alert. Inline SVG and CSS only: no scripts, fonts
//! or anything fetched, so the file can be mailed or attached to a ticket as it is. The
//! markup is also well-formed XML (the tests parse it).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};

use crate::alert::{Alert, Status};

use super::{series_name, Mark, Point, Recorder, SeriesTrace};

/// Charts on one page, at most: a split rule can have thousands of series.
pub const MAX_SERIES: usize = 50;
/// Alert rows in the table, at most.
const MAX_ALERT_ROWS: usize = 2000;
/// Points per line, at most; longer histories are thinned (see [`thin`]).
const MAX_POINTS: usize = 1600;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const PANEL_H: f64 = 120.0;
const PANEL_GAP: f64 = 30.0;
const TOP: f64 = 8.0;
const AXIS_H: f64 = 22.0;

const CSS: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 4px; }
.meta { color: #555; margin: 2px 0; }
.legend span { margin-right: 18px; white-space: nowrap; }
.legend svg { vertical-align: middle; margin-right: 4px; }
svg.chart { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: #444; }
svg text.title { font-weight: 600; fill: #1d1d1f; }
.frame { fill: #fff; stroke: #ccc; }
.grid { stroke: #eee; }
.day { stroke: #ddd; stroke-dasharray: 2 3; }
.unjudged { fill: #f0f0f0; }
.band { fill: #cfe2f7; }
.expected { fill: none; stroke: #3b6fb6; stroke-width: 1.2; stroke-dasharray: 5 3; }
.observed { fill: none; stroke: #1d1d1f; stroke-width: 1; }
.flagged { fill: #f39c12; }
.fire { fill: #d62728; }
.repeat { fill: #f08080; }
.resolve { fill: #2ca02c; }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
td.summary { white-space: normal; min-width: 360px; }
td.series { white-space: normal; overflow-wrap: anywhere; max-width: 260px; }
.scroll { overflow-x: auto; }
svg text.clipped { fill: #d62728; font-weight: 600; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.firing td:first-child { color: #d62728; font-weight: 600; }
tr.resolved td:first-child { color: #2ca02c; }
";

/// Escape text for HTML/XML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%a %d %b %Y %H:%M").to_string())
        .unwrap_or_default()
}

/// A value for a label: shares as percentages, counts as whole numbers.
fn value(x: f64, share: bool) -> String {
    if share {
        format!("{:.1}%", x * 100.0)
    } else if x.abs() >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// How much happened in a series, to put the eventful ones first: firing notices, then
/// the smallest p-value of a flagged bin, then traffic.
fn interest(s: &SeriesTrace) -> (usize, f64, u64) {
    let fires = s
        .points
        .iter()
        .flatten()
        .filter(|p| matches!(p.mark, Mark::Fire | Mark::Repeat))
        .count();
    let min_p = s
        .points
        .iter()
        .flatten()
        .filter(|p| p.anomalous)
        .map(|p| p.p_value)
        .fold(1.0, f64::min);
    (fires, min_p, s.total_events())
}

/// Keep at most [`MAX_POINTS`] points of a run: each kept point stands for a bucket of
/// bins and shows the bucket's most deviating observation (spikes and drops both survive),
/// its mean expectation and its widest band.
fn thin(run: &[(i64, Point)]) -> Vec<(i64, Point)> {
    let per = run.len().div_ceil(MAX_POINTS).max(1);
    if per == 1 {
        return run.to_vec();
    }
    run.chunks(per)
        .filter_map(|chunk| {
            let (bin, first) = *chunk.first()?;
            let mut p = first;
            let n = chunk.len() as f32;
            p.expected = chunk.iter().map(|(_, q)| q.expected).sum::<f32>() / n;
            p.lower = chunk.iter().map(|(_, q)| q.lower).fold(f32::MAX, f32::min);
            p.upper = chunk.iter().map(|(_, q)| q.upper).fold(f32::MIN, f32::max);
            p.observed = chunk
                .iter()
                .map(|(_, q)| q.observed)
                .max_by(|a, b| (a - p.expected).abs().total_cmp(&(b - p.expected).abs()))
                .unwrap_or(first.observed);
            Some((bin, p))
        })
        .collect()
}

/// Maps bins and values to SVG coordinates within one panel.
struct Scale {
    first_bin: i64,
    bins: f64,
    top: f64,
    ymax: f64,
}

impl Scale {
    fn x(&self, bin: i64) -> f64 {
        LEFT + (bin - self.first_bin) as f64 / self.bins * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let v = if v.is_finite() {
            v.clamp(0.0, self.ymax)
        } else {
            self.ymax
        };
        self.top + PANEL_H - v / self.ymax * PANEL_H
    }
}

/// The `q` quantile of some values (0 when there are none).
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// A y-axis maximum that shows normal traffic and its band. One burst a hundred times
/// the usual level would flatten everything else to a line at zero, so the axis follows
/// the bulk of the data (99th percentile of observations, 98th of the upper bound, every
/// expectation) unless the largest observation is not much beyond it; taller bins are
/// drawn clipped at the top with their value written there.
fn y_max(points: &[(i64, Point)]) -> f64 {
    let all = |f: fn(&Point) -> f32| points.iter().map(move |(_, p)| f64::from(f(p)));
    let bulk = quantile(all(|p| p.observed).collect(), 0.99)
        .max(quantile(all(|p| p.upper).collect(), 0.98))
        .max(all(|p| p.expected).fold(0.0, f64::max))
        * 1.15;
    let top = all(|p| p.observed).fold(0.0, f64::max) * 1.08;
    let m = if top <= bulk * 1.5 {
        top.max(bulk)
    } else {
        bulk
    };
    if m > 0.0 {
        m
    } else {
        1.0
    }
}

/// A p-value for a label: `2.0e-16`, and plain `0` and `1` at the ends.
pub fn p_text(p: f64) -> String {
    if p <= 0.0 {
        "0".to_string()
    } else if p >= 1.0 {
        "1".to_string()
    } else if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}")
    }
}

/// Round a tick step to 1, 2 or 5 times a power of ten.
fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// What the panels of one chart share: the bins on the x-axis and the day ticks.
struct Frame {
    first_bin: i64,
    bins: f64,
    days: Vec<(i64, String)>,
}

/// One panel: detector `d` of series `s`, its frame's top edge at `top`; the bottom panel
/// labels the days.
fn panel(
    svg: &mut String,
    rec: &Recorder,
    s: &SeriesTrace,
    d: usize,
    top: f64,
    frame: &Frame,
    bottom: bool,
) {
    let Frame {
        first_bin,
        bins,
        ref days,
    } = *frame;
    let info = &rec.rules[s.rule];
    let detectors = info.spec.detectors.len();
    let kind = info.spec.detectors[d].detector.kind();
    let measure = rec.measure(s.rule, d).unwrap_or("");
    let share = measure.contains("share");
    let points: Vec<(i64, Option<Point>)> = s.detector_points(d, detectors).collect();
    let judged: Vec<(i64, Point)> = points
        .iter()
        .filter_map(|&(b, p)| p.map(|p| (b, p)))
        .collect();
    let scale = Scale {
        first_bin,
        bins,
        top,
        ymax: y_max(&judged),
    };
    let bin_w = (WIDTH - LEFT - RIGHT) / bins;
    let fires = judged
        .iter()
        .filter(|(_, p)| matches!(p.mark, Mark::Fire | Mark::Repeat))
        .count();
    let _ = write!(
        svg,
        r#"<g class="panel" data-detector="{}"><rect class="frame" x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_H}"/>"#,
        kind.name(),
        WIDTH - LEFT - RIGHT
    );
    // Unjudged stretches, as shaded rectangles.
    let mut run_start: Option<i64> = None;
    for (i, &(bin, p)) in points.iter().enumerate() {
        let end_of_run = points.get(i + 1).is_none_or(|n| n.1.is_some());
        if p.is_none() {
            run_start.get_or_insert(bin);
            if end_of_run {
                let from = run_start.take().unwrap_or(bin);
                let _ = write!(
                    svg,
                    r#"<rect class="unjudged" x="{:.1}" y="{top:.1}" width="{:.1}" height="{PANEL_H}"/>"#,
                    scale.x(from),
                    (bin + 1 - from) as f64 * bin_w
                );
            }
        }
    }
    // Horizontal grid with labels.
    let step = nice_step(scale.ymax, 3.0);
    let mut v = 0.0;
    while v <= scale.ymax {
        let y = scale.y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&value(v, share))
        );
        v += step;
    }
    for (bin, label) in days {
        let x = scale.x(*bin);
        let _ = write!(
            svg,
            r#"<line class="day" x1="{x:.1}" x2="{x:.1}" y1="{top:.1}" y2="{:.1}"/>"#,
            top + PANEL_H
        );
        if bottom {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x + 3.0,
                top + PANEL_H + 15.0,
                esc(label)
            );
        }
    }
    // Band, expectation and observations, one path per run of consecutive judged bins.
    let mut band = String::new();
    let mut expected = String::new();
    let mut observed = String::new();
    for run in judged.chunk_by(|a, b| b.0 == a.0 + 1) {
        let run = thin(run);
        let centre = |b: i64| scale.x(b) + bin_w / 2.0;
        for (i, (b, p)) in run.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let x = centre(*b);
            let _ = write!(band, "{cmd}{x:.1} {:.1}", scale.y(f64::from(p.upper)));
            let _ = write!(
                expected,
                "{cmd}{x:.1} {:.1}",
                scale.y(f64::from(p.expected))
            );
            let _ = write!(
                observed,
                "{cmd}{x:.1} {:.1}",
                scale.y(f64::from(p.observed))
            );
        }
        for (b, p) in run.iter().rev() {
            let _ = write!(
                band,
                "L{:.1} {:.1}",
                centre(*b),
                scale.y(f64::from(p.lower))
            );
        }
        band.push('Z');
    }
    let _ = write!(
        svg,
        r#"<path class="band" d="{band}"/><path class="expected" d="{expected}"/><path class="observed" d="{observed}"/>"#
    );
    // Bins above the axis: the value of the tallest of each clipped run, at the top.
    for run in judged
        .iter()
        .filter(|(_, p)| f64::from(p.observed) > scale.ymax)
        .collect::<Vec<_>>()
        .chunk_by(|a, b| b.0 == a.0 + 1)
    {
        if let Some((bin, p)) = run
            .iter()
            .max_by(|a, b| a.1.observed.total_cmp(&b.1.observed))
        {
            let _ = write!(
                svg,
                r#"<text class="clipped" x="{:.1}" y="{:.1}">{}↑</text>"#,
                scale.x(*bin) + bin_w / 2.0 + 7.0,
                top + 11.0,
                esc(&value(f64::from(p.observed), share))
            );
        }
    }
    // Flagged bins and lifecycle markers, at their exact bins.
    for &(bin, p) in &judged {
        let (x, y) = (scale.x(bin) + bin_w / 2.0, scale.y(f64::from(p.observed)));
        let tip = format!(
            "{} {}: observed {}, expected {}, band {} to {}, p {}",
            time(bin * info.spec.bin_ms()),
            kind.name(),
            value(f64::from(p.observed), share),
            value(f64::from(p.expected), share),
            value(f64::from(p.lower), share),
            value(f64::from(p.upper), share),
            p_text(p.p_value)
        );
        let tip = esc(&tip);
        match p.mark {
            Mark::Fire | Mark::Repeat => {
                let class = if p.mark == Mark::Fire {
                    "fire"
                } else {
                    "repeat"
                };
                let _ = write!(
                    svg,
                    r#"<path class="marker {class}" d="M{x:.1} {:.1}l-6 -10h12z"><title>{} {tip}</title></path>"#,
                    y - 2.0,
                    if p.mark == Mark::Fire {
                        "FIRING"
                    } else {
                        "firing again"
                    }
                );
            }
            Mark::Resolve => {
                let _ = write!(
                    svg,
                    r#"<circle class="marker resolve" cx="{x:.1}" cy="{y:.1}" r="4.5"><title>RESOLVED {tip}</title></circle>"#
                );
            }
            Mark::None if p.anomalous => {
                let _ = write!(
                    svg,
                    r#"<circle class="flagged" cx="{x:.1}" cy="{y:.1}" r="2.5"><title>flagged {tip}</title></circle>"#
                );
            }
            Mark::None => {}
        }
    }
    let pages = match fires {
        0 => String::new(),
        1 => " · 1 firing notice".to_string(),
        n => format!(" · {n} firing notices"),
    };
    let _ = write!(
        svg,
        r#"<text class="title" x="{LEFT}" y="{:.1}">{} — {}{}</text></g>"#,
        top - 6.0,
        kind.name(),
        esc(measure),
        pages
    );
}

/// Midnights (UTC) between `first_bin` and `last_bin`, with labels, at most ~16.
fn day_ticks(first_bin: i64, last_bin: i64, bin_ms: i64) -> Vec<(i64, String)> {
    const DAY: i64 = 86_400_000;
    let (from, to) = (first_bin * bin_ms, (last_bin + 1) * bin_ms);
    let days = (to - from) / DAY + 1;
    let every = (days / 16 + 1).max(1);
    let mut out = Vec::new();
    let mut t = from.div_euclid(DAY) * DAY + DAY;
    let mut i = 0;
    let mut year = None;
    while t < to {
        if i % every == 0 {
            // The year is in each chart's heading; a tick where it changes says it
            // instead of the weekday (same width, so labels never collide).
            let label = DateTime::<Utc>::from_timestamp_millis(t)
                .map(|d| {
                    let changed = year.is_some_and(|y| y != d.year());
                    year = Some(d.year());
                    if changed {
                        format!("{:02} {} {}", d.day(), d.format("%b"), d.year())
                    } else {
                        format!("{} {:02} {}", d.weekday(), d.day(), d.format("%b"))
                    }
                })
                .unwrap_or_default();
            out.push((t / bin_ms, label));
        }
        t += DAY;
        i += 1;
    }
    out
}

/// One series' chart. All charts of a rule share its time axis, so series line up.
fn chart(out: &mut String, rec: &Recorder, s: &SeriesTrace, id: usize) {
    let info = &rec.rules[s.rule];
    let bin_ms = info.spec.bin_ms().max(1);
    let Some((first_bin, last_bin)) = rec.span_ms(s.rule).map(|(a, b)| (a / bin_ms, b / bin_ms))
    else {
        return;
    };
    let frame = Frame {
        first_bin,
        bins: (last_bin + 1 - first_bin).max(1) as f64,
        days: day_ticks(first_bin, last_bin, bin_ms),
    };
    let n = info.spec.detectors.len();
    let height = TOP + n as f64 * (PANEL_H + PANEL_GAP) + AXIS_H;
    let name = series_name(&info.spec.name, &s.labels);
    let (fires, _, events) = interest(s);
    let _ = write!(
        out,
        r#"<section class="series" id="series-{id}"><h2>{}</h2><p class="meta">{} bins from {} to {} UTC · {events} events · {fires} firing notices</p>"#,
        esc(&name),
        s.bins.len(),
        esc(&time(s.bins.first().copied().unwrap_or(first_bin) * bin_ms)),
        esc(&time(s.bins.last().copied().unwrap_or(last_bin) * bin_ms)),
    );
    let _ = write!(
        out,
        r#"<svg class="chart" data-series="{}" viewBox="0 0 {WIDTH} {height:.0}" role="img" aria-label="{}">"#,
        esc(&name),
        esc(&format!(
            "{name}: observed, expected and normal band per detector"
        ))
    );
    for d in 0..n {
        let top = TOP + PANEL_GAP - 10.0 + d as f64 * (PANEL_H + PANEL_GAP);
        panel(out, rec, s, d, top, &frame, d + 1 == n);
    }
    out.push_str("</svg></section>\n");
}

fn legend() -> String {
    let swatch =
        |body: &str| format!(r#"<svg width="26" height="14" viewBox="0 0 26 14">{body}</svg>"#);
    [
        (
            swatch(r#"<path class="observed" d="M1 10L8 4L15 9L25 3"/>"#),
            "observed",
        ),
        (
            swatch(r#"<path class="expected" d="M1 7H25"/>"#),
            "expected",
        ),
        (
            swatch(r#"<rect class="band" x="1" y="2" width="24" height="10"/>"#),
            "normal band (lower to upper)",
        ),
        (
            swatch(r#"<circle class="flagged" cx="13" cy="7" r="3"/>"#),
            "flagged bin",
        ),
        (
            swatch(r#"<path class="fire" d="M13 12l-6 -10h12z"/>"#),
            "page fired",
        ),
        (
            swatch(r#"<path class="repeat" d="M13 12l-6 -10h12z"/>"#),
            "fired again (repeat)",
        ),
        (
            swatch(r#"<circle class="resolve" cx="13" cy="7" r="4.5"/>"#),
            "resolved",
        ),
        (
            swatch(r#"<rect class="unjudged" x="1" y="1" width="24" height="12"/>"#),
            "not judged (warm-up, too little traffic)",
        ),
    ]
    .iter()
    .map(|(s, label)| format!("<span>{s}{}</span>", esc(label)))
    .collect()
}

fn alert_table(out: &mut String, alerts: &[Alert], anchors: &[(String, usize)]) {
    let _ = write!(
        out,
        r#"<h2 id="alerts">Alerts ({})</h2><div class="scroll"><table class="alerts"><thead><tr><th>status</th><th>rule</th><th>detector</th><th>series</th><th>bin (UTC)</th><th>observed</th><th>expected</th><th>p-value</th><th>summary</th></tr></thead><tbody>"#,
        alerts.len()
    );
    for a in alerts.iter().take(MAX_ALERT_ROWS) {
        let status = match a.status {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        };
        let name = series_name(&a.rule, &a.series);
        let series = match anchors.iter().find(|(n, _)| *n == name) {
            Some((_, id)) => format!(r##"<a href="#series-{id}">{}</a>"##, esc(&name)),
            None => esc(&name),
        };
        let share = a.measure.contains("share");
        let _ = write!(
            out,
            r#"<tr class="{status}"><td>{status}</td><td>{}</td><td>{}</td><td class="series">{series}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="summary">{}</td></tr>"#,
            esc(&a.rule),
            esc(&a.detector),
            esc(&a.bin_start.to_string()),
            value(a.observed, share),
            value(a.expected, share),
            p_text(a.p_value),
            esc(&a.summary)
        );
    }
    out.push_str("</tbody></table></div>\n");
    if alerts.len() > MAX_ALERT_ROWS {
        let _ = writeln!(
            out,
            r#"<p class="meta">... and {} more alerts (see --alerts-out for all of them).</p>"#,
            alerts.len() - MAX_ALERT_ROWS
        );
    }
}

/// The whole page. `source` names the input, `summary` is the backtest's text summary.
pub fn render(rec: &Recorder, alerts: &[Alert], source: &str, summary: &str) -> String {
    let mut ranked: Vec<((usize, f64, u64), &SeriesTrace)> = rec
        .series
        .iter()
        .filter(|s| !s.bins.is_empty())
        .map(|s| (interest(s), s))
        .collect();
    // Ties go by rule, then by series name: the page is the same from run to run
    // (the pipeline keeps series in hash maps, whose order is not).
    ranked.sort_by(|((fa, pa, ea), sa), ((fb, pb, eb), sb)| {
        fb.cmp(fa)
            .then(pa.total_cmp(pb))
            .then(eb.cmp(ea))
            .then(sa.rule.cmp(&sb.rule))
            .then_with(|| sa.labels.cmp(&sb.labels))
    });
    let order: Vec<&SeriesTrace> = ranked.into_iter().map(|(_, s)| s).collect();
    let shown = order.len().min(MAX_SERIES);
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/><title>authpulse backtest report</title><style>{CSS}</style></head><body>
<h1>authpulse backtest: {}</h1>
"#,
        esc(source)
    );
    let firing = alerts.iter().filter(|a| a.status == Status::Firing).count();
    let _ = write!(
        out,
        r##"<p class="meta">{} series evaluated; {} charted, most eventful first. {firing} firing and {} resolved notices (<a href="#alerts">table</a>).</p>
<pre class="meta">{}</pre>
<p class="legend">{}</p>
"##,
        order.len(),
        if shown < order.len() {
            format!("the {shown} most eventful")
        } else {
            "all".to_string()
        },
        alerts.len() - firing,
        esc(summary.trim()),
        legend()
    );
    let mut anchors = Vec::new();
    for (id, s) in order.iter().take(shown).enumerate() {
        chart(&mut out, rec, s, id);
        anchors.push((series_name(&rec.rules[s.rule].spec.name, &s.labels), id));
    }
    alert_table(&mut out, alerts, &anchors);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn dates_carry_the_year() {
        // In headings and tables; on the time axis where the year changes.
        assert_eq!(time(1_795_601_703_123), "Wed 25 Nov 2026 10:15");
        let bin = 900_000;
        let ticks = day_ticks(
            1_798_588_800_000 / bin,
            (1_798_588_800_000 + 4 * 86_400_000) / bin,
            bin,
        );
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            vec!["Thu 31 Dec", "01 Jan 2027", "Sat 02 Jan", "Sun 03 Jan"]
        );
    }

    #[test]
    fn tied_series_are_drawn_in_the_same_order_whatever_the_recorder_order() {
        let rules = vec![crate::rule::RuleSpec::named("r")];
        let detectors = rules[0].detectors.len();
        let trace = |ip: &str| SeriesTrace {
            rule: 0,
            labels: [("client.ipAddress".to_string(), ip.to_string())].into(),
            bins: vec![0, 1],
            counts: vec![crate::series::Counts::default(); 2],
            points: vec![None; 2 * detectors],
        };
        let mut a = Recorder::new(&rules);
        let mut b = Recorder::new(&rules);
        let ips = ["192.0.2.3", "192.0.2.1", "192.0.2.2"];
        a.series = ips.iter().map(|ip| trace(ip)).collect();
        b.series = ips.iter().rev().map(|ip| trace(ip)).collect();
        a.spans = vec![Some((0, 1))];
        b.spans = vec![Some((0, 1))];
        let (ra, rb) = (render(&a, &[], "x", ""), render(&b, &[], "x", ""));
        assert_eq!(ra, rb);
        let at = |ip: &str| ra.find(ip).unwrap_or(usize::MAX);
        assert!(
            at("192.0.2.1") < at("192.0.2.2") && at("192.0.2.2") < at("192.0.2.3"),
            "by name among ties: {} {} {}",
            at("192.0.2.1"),
            at("192.0.2.2"),
            at("192.0.2.3")
        );
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 3.0), 50.0);
        assert_eq!(nice_step(1.0, 3.0), 0.5);
        assert_eq!(nice_step(7.0, 3.0), 5.0);
    }

    #[test]
    fn thinning_keeps_the_most_deviating_observation() {
        let p = |observed: f32| Point {
            observed,
            expected: 10.0,
            lower: 5.0,
            upper: 15.0,
            p_value: 0.5,
            anomalous: false,
            anomalous_loose: false,
            mark: Mark::None,
        };
        let mut run: Vec<(i64, Point)> =
            (0..(MAX_POINTS as i64 * 3)).map(|b| (b, p(10.0))).collect();
        run[1].1.observed = 0.0; // a drop
        run[4].1.observed = 90.0; // a spike
        let thinned = thin(&run);
        assert!(thinned.len() <= MAX_POINTS);
        assert_eq!(thinned[0].1.observed, 0.0);
        assert_eq!(thinned[1].1.observed, 90.0);
    }
}
