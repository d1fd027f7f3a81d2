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

use crate::alert::{Alert, Status};
use crate::chart::{self, Key, Look, Marker, MarkerStyle, Panel, TimeAxis, ValueAxis};
use crate::detect::DetectorKind;
use crate::html::{esc, plural, time};

use super::{series_name, Mark, Point, Recorder, SeriesTrace};

/// Charts on one page, at most: a split rule can have thousands of series.
pub const MAX_SERIES: usize = 50;
/// Alert rows in the table, at most.
const MAX_ALERT_ROWS: usize = 2000;

/// One panel per detector, stacked in a wide chart; two weeks of 15-minute bins are
/// 1,344 points, so markers sit on the points rather than crossing the panel.
const LOOK: Look = Look {
    width: 1200.0,
    left: 64.0,
    right: 12.0,
    height: 120.0,
    dot_radius: 2.5,
    markers: MarkerStyle::AtPoint,
    max_points: 1600,
    max_time_labels: 16,
};
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
.time-grid { stroke: #ddd; stroke-dasharray: 2 3; }
.unjudged { fill: #f0f0f0; }
.band { fill: #cfe2f7; }
.expected { fill: none; stroke: #3b6fb6; stroke-width: 1.2; stroke-dasharray: 5 3; stroke-linecap: round; }
.observed { fill: none; stroke: #1d1d1f; stroke-width: 1; stroke-linecap: round; }
.anomalous { fill: #f39c12; }
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

/// A bin's start for labels: `Mon 02 Nov 2026 13:45`.
fn when(ms: i64) -> String {
    time(ms, "%a %d %b %Y %H:%M")
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
        .filter(|p| p.mark.is_firing())
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

/// What one panel shows of one detector: its judged bins and how to label them.
struct Judged {
    kind: DetectorKind,
    share: bool,
    bin_ms: i64,
    bins: Vec<(i64, Point)>,
}

impl Judged {
    /// A bin's tooltip: when, what was observed against what, and the p-value.
    fn tip(&self, bin: i64, p: &Point) -> String {
        let v = |x: f32| value(f64::from(x), self.share);
        format!(
            "{} {}: observed {}, expected {}, band {} to {}, p {}",
            when(bin * self.bin_ms),
            self.kind.name(),
            v(p.observed),
            v(p.expected),
            v(p.lower),
            v(p.upper),
            p_text(p.p_value)
        )
    }

    fn points(&self) -> Vec<chart::Point> {
        self.bins
            .iter()
            .map(|&(bin, p)| chart::Point {
                bin,
                observed: f64::from(p.observed),
                expected: Some(f64::from(p.expected)),
                band: Some((f64::from(p.lower), f64::from(p.upper))),
                anomalous: p.anomalous,
            })
            .collect()
    }

    /// Where pages fired, fired again and resolved, at their exact bins.
    fn markers(&self) -> Vec<Marker> {
        self.bins
            .iter()
            .filter(|(_, p)| p.mark != Mark::None)
            .map(|&(bin, p)| {
                let verb = match p.mark {
                    Mark::Fire => "FIRING",
                    Mark::Repeat => "firing again",
                    _ => "RESOLVED",
                };
                Marker {
                    bin,
                    value: f64::from(p.observed),
                    mark: p.mark,
                    tip: format!("{verb} {}", self.tip(bin, &p)),
                }
            })
            .collect()
    }
}

/// Inclusive runs of bins a detector could not judge (warm-up, too little traffic).
fn unjudged(points: &[(i64, Option<Point>)]) -> Vec<(i64, i64)> {
    points
        .chunk_by(|a, b| a.1.is_none() == b.1.is_none())
        .filter(|run| run.iter().all(|(_, p)| p.is_none()))
        .filter_map(|run| Some((run.first()?.0, run.last()?.0)))
        .collect()
}

/// One panel: detector `d` of series `s`, its plot area's top edge at `top`; the bottom
/// panel labels the days.
fn panel(
    svg: &mut String,
    rec: &Recorder,
    s: &SeriesTrace,
    d: usize,
    top: f64,
    time_axis: &TimeAxis,
) {
    let info = &rec.rules[s.rule];
    let detectors = info.spec.detectors.len();
    let measure = rec.measure(s.rule, d).unwrap_or("");
    let all: Vec<(i64, Option<Point>)> = s.detector_points(d, detectors).collect();
    let judged = Judged {
        kind: info.spec.detectors[d].detector.kind(),
        share: measure.contains("share"),
        bin_ms: info.spec.bin_ms(),
        bins: all.iter().filter_map(|&(b, p)| Some((b, p?))).collect(),
    };
    let points = judged.points();
    let markers = judged.markers();
    let fires = markers.iter().filter(|m| m.mark.is_firing()).count();
    let title = match fires {
        0 => format!("{} — {measure}", judged.kind.name()),
        n => format!(
            "{} — {measure} · {}",
            judged.kind.name(),
            plural(n, "firing notice")
        ),
    };
    let _ = write!(
        svg,
        r#"<g class="panel" data-detector="{}">"#,
        judged.kind.name()
    );
    Panel {
        look: &LOOK,
        time: time_axis,
        axis: ValueAxis::bulk(&points),
        top,
        title: &title,
        points: &points,
        unjudged: &unjudged(&all),
        markers: &markers,
        value: &|v| value(v, judged.share),
        tip: &|i| {
            judged
                .bins
                .get(i)
                .map(|(bin, p)| format!("flagged {}", judged.tip(*bin, p)))
                .unwrap_or_default()
        },
        time_labels: d + 1 == detectors,
    }
    .draw(svg);
    svg.push_str("</g>");
}

/// One series' chart. All charts of a rule share its time axis, so series line up.
fn chart(out: &mut String, rec: &Recorder, s: &SeriesTrace, id: usize) {
    let info = &rec.rules[s.rule];
    let bin_ms = info.spec.bin_ms().max(1);
    let Some((first_bin, last_bin)) = rec.span_ms(s.rule).map(|(a, b)| (a / bin_ms, b / bin_ms))
    else {
        return;
    };
    let time_axis = TimeAxis {
        first_bin,
        bins: (last_bin + 1 - first_bin).max(1),
        bin_ms,
    };
    let n = info.spec.detectors.len();
    let height = TOP + n as f64 * (LOOK.height + PANEL_GAP) + AXIS_H;
    let name = series_name(&info.spec.name, &s.labels);
    let (fires, _, events) = interest(s);
    let _ = write!(
        out,
        r#"<section class="series" id="series-{id}"><h2>{}</h2><p class="meta">{} bins from {} to {} UTC · {} · {}</p>"#,
        esc(&name),
        s.bins.len(),
        esc(&when(s.bins.first().copied().unwrap_or(first_bin) * bin_ms)),
        esc(&when(s.bins.last().copied().unwrap_or(last_bin) * bin_ms)),
        plural(events as usize, "event"),
        plural(fires, "firing notice"),
    );
    let _ = write!(
        out,
        r#"<svg class="chart" data-series="{}" viewBox="0 0 {} {height:.0}" role="img" aria-label="{}">"#,
        esc(&name),
        LOOK.width,
        esc(&format!(
            "{name}: observed, expected and normal band per detector"
        ))
    );
    for d in 0..n {
        let top = TOP + PANEL_GAP - 10.0 + d as f64 * (LOOK.height + PANEL_GAP);
        panel(out, rec, s, d, top, &time_axis);
    }
    out.push_str("</svg></section>\n");
}

fn legend() -> String {
    chart::legend(
        &[
            (Key::Observed, "observed"),
            (Key::Expected, "expected"),
            (Key::Band, "normal band (lower to upper)"),
            (Key::Anomalous, "flagged bin"),
            (Key::Mark(Mark::Fire), "page fired"),
            (Key::Mark(Mark::Repeat), "fired again (repeat)"),
            (Key::Mark(Mark::Resolve), "resolved"),
            (Key::Unjudged, "not judged (warm-up, too little traffic)"),
        ],
        LOOK.markers,
    )
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
            esc(a.detector.name()),
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
    fn dates_carry_the_year() {
        assert_eq!(when(1_795_601_703_123), "Wed 25 Nov 2026 10:15");
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
    fn unjudged_runs_are_inclusive_bin_ranges() {
        let p = Point {
            observed: 1.0,
            expected: 1.0,
            lower: 0.0,
            upper: 2.0,
            p_value: 0.5,
            anomalous: false,
            anomalous_loose: false,
            evidence_bins: 1,
            off_band: false,
            mark: Mark::None,
        };
        let points = [(0, None), (1, None), (2, Some(p)), (3, None), (4, Some(p))];
        assert_eq!(unjudged(&points), vec![(0, 1), (3, 3)]);
    }

    #[test]
    fn values_and_p_values_read_well() {
        assert_eq!(value(0.123, true), "12.3%");
        assert_eq!(value(123.4, false), "123");
        assert_eq!(value(2.5, false), "2.5");
        assert_eq!(p_text(2e-16), "2.0e-16");
        assert_eq!(p_text(0.25), "0.25");
        assert_eq!(p_text(1.5), "1");
    }
}
