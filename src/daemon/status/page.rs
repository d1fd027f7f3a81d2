//! The status page's HTML: a header with the daemon's phase, the open alerts, the active
//! silences, per rule and series two charts (successful and failed sign-ins) drawn with
//! [`crate::chart`], and the last notifications with their delivery per sink. Rendered
//! from a copy of the board's state.

use std::fmt::Write as _;

use super::{
    BinTrace, BoardState, Leading, Measure, Phase, RouteView, RuleBoard, MAX_SERIES, RECENT_BINS,
};
use crate::alert::Alert;
use crate::chart::{self, Key, Look, Mark, Marker, MarkerStyle, Panel, TimeAxis, ValueAxis};
use crate::html::{esc, plural, time};
use crate::notify::journal::{Delivery, Notice};
use crate::series::Labels;

/// Seconds between automatic reloads of the page.
const REFRESH_SECS: u32 = 60;

/// One chart per measure, two side by side; two days of bins, so an alert is a line
/// across the chart.
const LOOK: Look = Look {
    width: 640.0,
    left: 48.0,
    right: 12.0,
    height: 142.0,
    dot_radius: 3.5,
    markers: MarkerStyle::Vertical,
    max_points: RECENT_BINS,
    max_time_labels: 8,
};
/// The chart's height, and the top of its plot area (room for the title).
const HEIGHT: f64 = 190.0;
const TOP: f64 = 24.0;

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
td.summary { white-space: normal; min-width: 240px; }
td.labels { white-space: normal; overflow-wrap: anywhere; min-width: 160px; max-width: 260px; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { background: #fff; border: 1px solid #d0d7de; }
svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
svg text.title { font-weight: 600; fill: #1f2328; }
svg text.clipped { fill: #cf222e; font-weight: 600; }
.frame { fill: none; }
.grid, .time-grid { stroke: #eaeef2; }
.unjudged { fill: #f6f8fa; }
.band { fill: #54aeff; fill-opacity: 0.25; }
.expected { fill: none; stroke: #57606a; stroke-width: 1.5; stroke-dasharray: 4 3; stroke-linecap: round; }
.observed { fill: none; stroke: #0969da; stroke-width: 1.5; stroke-linecap: round; }
.lone { stroke-width: 4; }
.anomalous { fill: #cf222e; }
.fire, .repeat { fill: #cf222e; stroke: #cf222e; }
.resolve { fill: #1a7f37; stroke: #1a7f37; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend svg { vertical-align: middle; margin-right: 4px; }
.empty { color: #57606a; font-style: italic; }
"#;

/// The whole page.
pub(super) fn render(s: &BoardState, view: &RouteView, now_ms: i64) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
         <title>authpulse status</title><style>{CSS}</style></head><body>\n"
    );
    header(&mut h, s, now_ms);
    if let Some((me, leaders)) = &s.leaders {
        replicas(&mut h, me, leaders);
    }
    open_alerts(&mut h, s, view);
    silences(&mut h, view);
    let _ = writeln!(h, "<p class=\"legend\">{}</p>", legend());
    for (i, r) in s.rules.iter().enumerate() {
        rule(&mut h, i, r);
    }
    notifications(&mut h, view);
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, s: &BoardState, now_ms: i64) {
    let (phase_class, phase_text) = match (s.phase, s.ready) {
        (Phase::LoadingHistory, _) => ("warn", "loading history"),
        (Phase::Watching, true) => ("ok", "watching"),
        (Phase::Watching, false) => ("bad", "source failing"),
        (Phase::SourceFinished, _) => ("warn", "source finished"),
    };
    let clock = |t: i64| time(t, "%H:%M:%S UTC");
    let _ = writeln!(
        h,
        "<header><h1>authpulse <span id=\"phase\" class=\"pill {phase_class}\">{phase_text}</span></h1>\
         <p class=\"meta\">version {} · source: {} · {} · {} · up since {} · last poll {}{} · page generated {} (refreshes every {REFRESH_SECS} s)</p></header>",
        esc(s.version),
        esc(&s.source),
        plural(s.rules.len(), "rule"),
        plural(s.sinks, "sink"),
        time(s.started_ms, "%Y-%m-%d %H:%M:%S UTC"),
        s.last_poll_ms.map_or_else(|| "never".to_string(), clock),
        match s.last_reload {
            Some((t, true)) => format!(" · config reloaded {}", clock(t)),
            Some((t, false)) => format!(
                " · <span class=\"pill bad\">config reload rejected {}</span>",
                clock(t)
            ),
            None => String::new(),
        },
        clock(now_ms),
    );
}

/// `[ha]`: which replica leads (evaluates and pages) each rule.
fn replicas(h: &mut String, me: &str, leaders: &[Leading]) {
    let _ = writeln!(
        h,
        "<section id=\"replicas\"><h2>Replicas</h2><p class=\"meta\">this replica: {}</p>\
         <table><thead><tr><th>rule</th><th>led by</th></tr></thead><tbody>",
        esc(me)
    );
    for (rule, owner, mine) in leaders {
        let who = match (owner.is_empty(), mine) {
            (_, true) => format!("<span class=\"pill ok\">this replica</span> {}", esc(owner)),
            (true, false) => "<span class=\"pill warn\">nobody</span>".to_string(),
            (false, false) => format!("<span class=\"pill muted\">standby</span> {}", esc(owner)),
        };
        let _ = writeln!(h, "<tr><td>{}</td><td>{who}</td></tr>", esc(rule));
    }
    h.push_str("</tbody></table></section>\n");
}

/// The alerts firing now, the most severe and oldest first.
fn open_alerts(h: &mut String, s: &BoardState, view: &RouteView) {
    let _ = writeln!(
        h,
        "<section id=\"open-alerts\"><h2>Open alerts ({})</h2>",
        s.open.len()
    );
    if s.open.is_empty() {
        h.push_str("<p class=\"empty\">No alert is firing.</p>\n</section>\n");
        return;
    }
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
            "<tr><td><span class=\"pill {}\">{}</span>{}{}</td><td>{}</td><td>{}</td><td class=\"labels\">{}</td><td>{}</td><td>{}</td>\
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
            // Not sent: an operator's silence holds it back (see `crate::notify::silence`).
            view.silences
                .iter()
                .find(|x| x.matcher.matches(a))
                .map(|x| format!(
                    " <span class=\"pill muted\" title=\"{}\">silenced</span>",
                    esc(&format!("silence {} by {} until {}: {}", x.id, x.created_by, time(x.ends_ms, "%Y-%m-%d %H:%M UTC"), x.reason))
                ))
                .unwrap_or_default(),
            esc(&a.rule),
            esc(a.detector.name()),
            esc(&labels_text(&a.series)),
            esc(&a.started_at.to_string()),
            esc(&a.bin_start.to_string()),
            number(a.observed),
            number(a.expected),
            esc(&a.summary),
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

/// The silences in force: what they match, who, why, until when.
fn silences(h: &mut String, view: &RouteView) {
    let _ = writeln!(
        h,
        "<section id=\"silences\"><h2>Silences ({})</h2>",
        view.silences.len()
    );
    if view.silences.is_empty() {
        h.push_str("<p class=\"empty\">No silence is in force (<code>authpulse silence add</code> adds one).</p>\n</section>\n");
        return;
    }
    h.push_str("<table><thead><tr><th>id</th><th>matches</th><th>until</th><th>by</th><th>why</th></tr></thead><tbody>\n");
    for x in &view.silences {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"labels\">{}</td><td>{}</td><td>{}</td><td class=\"summary\">{}</td></tr>",
            esc(&x.id),
            esc(&x.matcher.describe()),
            time(x.ends_ms, "%Y-%m-%d %H:%M:%S UTC"),
            esc(&x.created_by),
            esc(&x.reason),
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

/// One sink's state of a notice, for a table cell.
fn delivery_text(d: &Delivery) -> (&'static str, String) {
    match d {
        Delivery::Queued => ("warn", "queued".into()),
        Delivery::Delivered { attempts: 1 } => ("ok", "delivered".into()),
        Delivery::Delivered { attempts } => ("ok", format!("delivered after {attempts} attempts")),
        Delivery::Retrying {
            attempts,
            last_error,
            ..
        } => (
            "warn",
            format!("retrying ({attempts} failed: {last_error})"),
        ),
        Delivery::DeadLettered { reason, .. } => ("bad", format!("dead-lettered: {reason}")),
        Delivery::NotRouted => ("muted", "not routed".into()),
    }
}

/// The last notices, newest first, and what became of each.
fn notifications(h: &mut String, view: &RouteView) {
    let _ = writeln!(
        h,
        "<section id=\"notifications\"><h2>Notifications (last {})</h2>",
        view.notices.len()
    );
    if view.notices.is_empty() {
        h.push_str("<p class=\"empty\">No notification since the start.</p>\n</section>\n");
        return;
    }
    h.push_str("<table><thead><tr><th>at</th><th>status</th><th>rule</th><th>detector</th><th>series</th><th>bin</th><th>delivery</th></tr></thead><tbody>\n");
    for n in &view.notices {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"labels\">{}</td><td>{}</td><td class=\"summary\">{}</td></tr>",
            time(n.at, "%m-%d %H:%M:%S"),
            esc(&format!("{:?}", n.status).to_lowercase()),
            esc(&n.rule),
            esc(&n.detector),
            esc(&labels_text(&n.series)),
            esc(&n.bin_start),
            notice_outcome(n),
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

fn notice_outcome(n: &Notice) -> String {
    if let Some(held) = &n.held {
        let stage = serde_json::to_value(held.stage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        return format!(
            "<span class=\"pill muted\">{}</span> {}",
            esc(&stage),
            esc(&held.by)
        );
    }
    n.sinks
        .iter()
        .map(|s| {
            let (class, text) = delivery_text(&s.delivery);
            format!(
                "{}: <span class=\"pill {class}\">{}</span>",
                esc(&s.sink),
                esc(&text)
            )
        })
        .collect::<Vec<_>>()
        .join("<br/>")
}

fn legend() -> String {
    chart::legend(
        &[
            (Key::Observed, "observed"),
            (Key::Expected, "expected"),
            (Key::Band, "normal band (pages outside it)"),
            (Key::Anomalous, "anomalous bin"),
            (Key::Mark(Mark::Fire), "alert fired"),
            (Key::Mark(Mark::Resolve), "alert resolved"),
        ],
        LOOK.markers,
    )
}

/// One rule's section: per drawn series, its successes and failures.
fn rule(h: &mut String, index: usize, r: &RuleBoard) {
    let detectors: Vec<&str> = r.detectors.iter().map(|d| d.name()).collect();
    let _ = writeln!(
        h,
        "<section class=\"rule\" id=\"rule-{index}\"><h2>Rule {}</h2><p class=\"meta\">bins of {} · detectors: {}{}</p>",
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
        chart(h, "Successful sign-ins", &bins, r.bin_ms, |t| &t.success);
        chart(h, "Failed sign-ins", &bins, r.bin_ms, |t| &t.failure);
        h.push_str("</div></div>\n");
    }
    h.push_str("</section>\n");
}

/// A bin's start for tooltips.
fn when(bin: i64, bin_ms: i64) -> String {
    time(bin * bin_ms, "%Y-%m-%d %H:%M")
}

/// One inline SVG chart of one measure over `bins` (oldest first): a gap (a bin the
/// source could not read) breaks the lines; every detector's alerts are marked.
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
    let points: Vec<chart::Point> = bins
        .iter()
        .map(|t| {
            let m = measure(t);
            chart::Point {
                bin: t.bin,
                observed: m.observed,
                expected: m.expected,
                band: m.band,
                anomalous: m.anomalous,
            }
        })
        .collect();
    let axis = ValueAxis::log_when_dwarfed(&points);
    let title = if axis.log {
        format!("{title} (log scale)")
    } else {
        title.to_string()
    };
    let tip = |i: usize| {
        points.get(i).map_or_else(String::new, |p| {
            format!(
                "{} UTC: {} (expected {})",
                when(p.bin, bin_ms),
                number(p.observed),
                p.expected.map_or_else(|| "?".into(), number)
            )
        })
    };
    let _ = write!(
        h,
        "<svg class=\"chart\" role=\"img\" width=\"{w}\" height=\"{HEIGHT}\" viewBox=\"0 0 {w} {HEIGHT}\"><title>{}</title>",
        esc(&title),
        w = LOOK.width,
    );
    Panel {
        look: &LOOK,
        time: &TimeAxis {
            first_bin: first.bin,
            bins: last.bin + 1 - first.bin,
            bin_ms,
        },
        axis,
        top: TOP,
        title: &title,
        points: &points,
        unjudged: &[],
        markers: &markers(bins, bin_ms),
        value: &number,
        tip: &tip,
        time_labels: true,
    }
    .draw(h);
    h.push_str("</svg>");
}

/// Every detector's alert transitions, as lines across the chart.
fn markers(bins: &[&BinTrace], bin_ms: i64) -> Vec<Marker> {
    bins.iter()
        .flat_map(|t| {
            t.marks.iter().map(|&(detector, mark)| {
                let verb = if mark.is_firing() {
                    "fired"
                } else {
                    "resolved"
                };
                Marker {
                    bin: t.bin,
                    value: 0.0,
                    mark,
                    tip: format!("{} {verb} at {} UTC", detector.name(), when(t.bin, bin_ms)),
                }
            })
        })
        .collect()
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

/// A count or rate for the page: whole numbers plain, small ones to three places.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else if x.abs() < 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.1}")
    }
}
