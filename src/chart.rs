//! One SVG chart panel of a series of bins, shared by the daemon's status page and the
//! backtest report: a time axis, a value axis with round ticks, the observed line, the
//! expected line (dashed), the normal band (shaded), dots on anomalous bins and a marker
//! where an alert fired, fired again or resolved. Long histories are thinned to a
//! maximum number of points per line, keeping spikes and drops.
//!
//! The panel writes SVG elements with class names only (`band`, `expected`, `observed`,
//! `lone` for a run of one bin, `anomalous`, `marker fire|repeat|resolve` with
//! `alert-fired|alert-resolved`, `frame`, `grid`, `time-grid`, `unjudged`, `clipped`,
//! `title`); colours live in each page's stylesheet and sizes in its [`Look`]. The caller
//! writes the `<svg>` element around one or more panels. A leaf: it imports only
//! [`crate::html`].

use std::fmt::Write as _;

use crate::html::esc;

mod axis;
mod grid;
mod legend;

pub use axis::{nice_ceiling, nice_step, thin, ValueAxis};
pub use legend::{legend, Key};

/// What the alert lifecycle did in a bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mark {
    #[default]
    None,
    Fire,
    Repeat,
    Resolve,
}

impl Mark {
    /// A notice that says the alert is firing (a first page or a repeat).
    pub fn is_firing(self) -> bool {
        matches!(self, Mark::Fire | Mark::Repeat)
    }

    /// The class of this mark's colour (`fire`, `repeat`, `resolve`).
    pub fn class(self) -> &'static str {
        match self {
            Mark::None => "",
            Mark::Fire => "fire",
            Mark::Repeat => "repeat",
            Mark::Resolve => "resolve",
        }
    }

    /// All classes of its marker: `marker`, the colour class, and `alert-fired` or
    /// `alert-resolved` for its direction.
    fn marker_classes(self) -> String {
        let direction = if self.is_firing() {
            "alert-fired"
        } else {
            "alert-resolved"
        };
        format!("marker {} {direction}", self.class())
    }
}

/// One judged (or at least observed) bin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub bin: i64,
    pub observed: f64,
    pub expected: Option<f64>,
    /// `[lower, upper]` outside which the detector pages; `upper` may be infinite.
    pub band: Option<(f64, f64)>,
    pub anomalous: bool,
}

/// A lifecycle marker at `bin`; `value` places an [`MarkerStyle::AtPoint`] marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub bin: i64,
    pub value: f64,
    pub mark: Mark,
    /// The marker's tooltip.
    pub tip: String,
}

/// How lifecycle markers are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerStyle {
    /// A line across the panel with a small flag at its top: where an alert fired or
    /// resolved, readable at a glance on a short window.
    Vertical,
    /// A triangle above the observation (fired, fired again) or a ring on it (resolved):
    /// for long histories where full-height lines would crowd the panel.
    AtPoint,
}

/// A page's sizes and choices for its panels, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    /// Width of the whole SVG.
    pub width: f64,
    /// Room for the value labels left of the panel, and the margin right of it.
    pub left: f64,
    pub right: f64,
    /// Height of the plot area of one panel.
    pub height: f64,
    /// Radius of the dot on an anomalous bin.
    pub dot_radius: f64,
    pub markers: MarkerStyle,
    /// Points per line at most: longer runs are thinned (see [`thin`]).
    pub max_points: usize,
    /// Time labels at most along the axis.
    pub max_time_labels: usize,
}

/// The bins on the x-axis: `bins` bins from `first_bin`, each `bin_ms` long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeAxis {
    pub first_bin: i64,
    pub bins: i64,
    pub bin_ms: i64,
}

/// One panel: `points` (bin order, gaps allowed) over `time`, its plot area's top edge
/// at `top`.
pub struct Panel<'a> {
    pub look: &'a Look,
    pub time: &'a TimeAxis,
    pub axis: ValueAxis,
    pub top: f64,
    /// Written above the plot area.
    pub title: &'a str,
    pub points: &'a [Point],
    /// Inclusive bin ranges shaded as not judged (warm-up, too little traffic).
    pub unjudged: &'a [(i64, i64)],
    pub markers: &'a [Marker],
    /// Labels a value (gridlines, clipped bins).
    pub value: &'a dyn Fn(f64) -> String,
    /// The tooltip of the anomalous point at this index of `points`.
    pub tip: &'a dyn Fn(usize) -> String,
    /// Write the time labels under the plot area (the bottom panel of a stack).
    pub time_labels: bool,
}

impl Panel<'_> {
    /// Append the panel's SVG elements to `out`.
    pub fn draw(&self, out: &mut String) {
        self.frame(out);
        self.value_grid(out);
        self.time_grid(out);
        self.lines(out);
        self.clipped(out);
        self.dots(out);
        self.lifecycle(out);
        let _ = write!(
            out,
            r#"<text class="title" x="{}" y="{:.1}">{}</text>"#,
            self.look.left,
            self.top - 6.0,
            esc(self.title)
        );
    }

    fn plot_width(&self) -> f64 {
        self.look.width - self.look.left - self.look.right
    }

    fn bin_width(&self) -> f64 {
        self.plot_width() / self.time.bins.max(1) as f64
    }

    /// The left edge of `bin`.
    fn x_start(&self, bin: i64) -> f64 {
        self.look.left + (bin - self.time.first_bin) as f64 * self.bin_width()
    }

    /// The centre of `bin`, where its point is drawn.
    fn x(&self, bin: i64) -> f64 {
        self.x_start(bin) + self.bin_width() / 2.0
    }

    fn y(&self, v: f64) -> f64 {
        self.top + (1.0 - self.axis.unit(v)) * self.look.height
    }

    /// Band, expectation and observations: one path each, a subpath per run of
    /// consecutive bins (a gap breaks the lines), each run thinned. Lone points (a run of
    /// one bin) go to a path of their own with the class `lone`, drawn as dots.
    fn lines(&self, out: &mut String) {
        let mut paths: [(&str, String, String); 3] = [
            ("band", String::new(), String::new()),
            ("expected", String::new(), String::new()),
            ("observed", String::new(), String::new()),
        ];
        for run in self.points.chunk_by(|a, b| b.bin == a.bin + 1) {
            let run = thin(run, self.look.max_points);
            let [band, expected, observed] = &mut paths;
            self.subpath(observed, run.iter().map(|p| (p.bin, p.observed)));
            for seg in run.chunk_by(|a, b| a.expected.is_some() == b.expected.is_some()) {
                let points = seg.iter().filter_map(|p| Some((p.bin, p.expected?)));
                self.subpath(expected, points);
            }
            for seg in run.chunk_by(|a, b| a.band.is_some() == b.band.is_some()) {
                self.band(&mut band.1, seg);
            }
        }
        for (class, d, lone) in paths {
            if !d.is_empty() {
                let _ = write!(out, r#"<path class="{class}" d="{d}"/>"#);
            }
            if !lone.is_empty() {
                let _ = write!(out, r#"<path class="{class} lone" d="{lone}"/>"#);
            }
        }
    }

    /// The band of a run of points: upper edge left to right, lower edge back.
    fn band(&self, d: &mut String, seg: &[Point]) {
        let edges: Vec<(i64, (f64, f64))> =
            seg.iter().filter_map(|p| Some((p.bin, p.band?))).collect();
        let Some(&(first, (_, hi))) = edges.first() else {
            return;
        };
        let _ = write!(d, "M{:.1} {:.1}", self.x(first), self.y(hi));
        for &(b, (_, hi)) in &edges[1..] {
            let _ = write!(d, "L{:.1} {:.1}", self.x(b), self.y(hi));
        }
        for &(b, (lo, _)) in edges.iter().rev() {
            let _ = write!(d, "L{:.1} {:.1}", self.x(b), self.y(lo));
        }
        d.push('Z');
    }

    /// `M x y L x y …` through `points` onto the path `d`; a lone point goes to `lone` as
    /// a zero-length segment, which a round line cap draws as a dot.
    fn subpath(
        &self,
        (_, d, lone): &mut (&str, String, String),
        points: impl Iterator<Item = (i64, f64)>,
    ) {
        let points: Vec<(f64, f64)> = points.map(|(b, v)| (self.x(b), self.y(v))).collect();
        if let [(x, y)] = points[..] {
            let _ = write!(lone, "M{x:.1} {y:.1}h0");
            return;
        }
        for (i, (x, y)) in points.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{x:.1} {y:.1}");
        }
    }

    /// Bins above the axis: the value of the tallest of each clipped run, at the top.
    /// Where two labels would overlap, the taller value keeps its label.
    fn clipped(&self, out: &mut String) {
        /// About the width of a character of a 12 px bold label, and the room between two.
        const CHAR: f64 = 7.5;
        const GAP: f64 = 4.0;
        let over: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.observed > self.axis.max)
            .collect();
        let mut labels: Vec<(f64, f64, String)> = over
            .chunk_by(|a, b| b.bin == a.bin + 1)
            .filter_map(|run| run.iter().max_by(|a, b| a.observed.total_cmp(&b.observed)))
            .map(|p| (self.x(p.bin) + 7.0, p.observed, (self.value)(p.observed)))
            .collect();
        labels.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut taken: Vec<(f64, f64)> = Vec::new();
        for (x, _, text) in labels {
            let end = x + (text.chars().count() + 1) as f64 * CHAR + GAP;
            if taken.iter().any(|&(from, to)| x < to && from < end) {
                continue;
            }
            taken.push((x, end));
            let _ = write!(
                out,
                r#"<text class="clipped" x="{x:.1}" y="{:.1}">{}↑</text>"#,
                self.top + 11.0,
                esc(&text)
            );
        }
    }

    fn dots(&self, out: &mut String) {
        for (i, p) in self.points.iter().enumerate().filter(|(_, p)| p.anomalous) {
            let _ = write!(
                out,
                r#"<circle class="anomalous" cx="{:.1}" cy="{:.1}" r="{}"><title>{}</title></circle>"#,
                self.x(p.bin),
                self.y(p.observed),
                self.look.dot_radius,
                esc(&(self.tip)(i))
            );
        }
    }

    fn lifecycle(&self, out: &mut String) {
        for m in self.markers.iter().filter(|m| m.mark != Mark::None) {
            let (x, class, tip) = (self.x(m.bin), m.mark.marker_classes(), esc(&m.tip));
            match (self.look.markers, m.mark) {
                (MarkerStyle::Vertical, _) => {
                    let (top, bottom) = (self.top, self.top + self.look.height);
                    let _ = write!(
                        out,
                        r#"<g class="{class}"><line x1="{x:.1}" x2="{x:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke-width="1.5"/><path d="M{:.1} {top:.1}h8l-4 6z"/><title>{tip}</title></g>"#,
                        x - 4.0
                    );
                }
                (MarkerStyle::AtPoint, Mark::Resolve) => {
                    let _ = write!(
                        out,
                        r#"<circle class="{class}" cx="{x:.1}" cy="{:.1}" r="4.5"><title>{tip}</title></circle>"#,
                        self.y(m.value)
                    );
                }
                (MarkerStyle::AtPoint, _) => {
                    let _ = write!(
                        out,
                        r#"<path class="{class}" d="M{x:.1} {:.1}l-6 -10h12z"><title>{tip}</title></path>"#,
                        self.y(m.value) - 2.0
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(bin: i64, observed: f64) -> Point {
        Point {
            bin,
            observed,
            expected: Some(10.0),
            band: Some((5.0, 15.0)),
            anomalous: false,
        }
    }

    #[test]
    fn overlapping_clipped_labels_keep_the_taller_value() {
        let look = Look {
            width: 400.0,
            left: 40.0,
            right: 10.0,
            height: 100.0,
            dot_radius: 3.0,
            markers: MarkerStyle::AtPoint,
            max_points: 1000,
            max_time_labels: 8,
        };
        let time = TimeAxis {
            first_bin: 0,
            bins: 100,
            bin_ms: 900_000,
        };
        let mut points: Vec<Point> = (0..100).map(|b| point(b, 10.0)).collect();
        points[10].observed = 47.0;
        points[12].observed = 1549.0;
        points[60].observed = 74.0;
        let mut svg = String::new();
        Panel {
            look: &look,
            time: &time,
            axis: ValueAxis {
                max: 20.0,
                log: false,
            },
            top: 20.0,
            title: "t",
            points: &points,
            unjudged: &[],
            markers: &[],
            value: &|v| format!("{v}"),
            tip: &|_| String::new(),
            time_labels: false,
        }
        .draw(&mut svg);
        assert!(svg.contains(">1549↑<"), "{svg}");
        assert!(svg.contains(">74↑<"), "{svg}");
        assert!(!svg.contains(">47↑<"), "{svg}");
    }

    #[test]
    fn a_panel_draws_its_parts_with_classes_and_escapes_text() {
        let look = Look {
            width: 400.0,
            left: 40.0,
            right: 10.0,
            height: 100.0,
            dot_radius: 3.0,
            markers: MarkerStyle::Vertical,
            max_points: 1000,
            max_time_labels: 8,
        };
        let time = TimeAxis {
            first_bin: 0,
            bins: 20,
            bin_ms: 900_000,
        };
        let mut points: Vec<Point> = (0..20)
            .filter(|b| *b != 9)
            .map(|b| point(b, 10.0))
            .collect();
        points[12].anomalous = true;
        let markers = [Marker {
            bin: 13,
            value: 10.0,
            mark: Mark::Fire,
            tip: "<fired>".into(),
        }];
        let mut svg = String::new();
        Panel {
            look: &look,
            time: &time,
            axis: ValueAxis::log_when_dwarfed(&points),
            top: 20.0,
            title: "a & b",
            points: &points,
            unjudged: &[(0, 1)],
            markers: &markers,
            value: &|v| format!("{v}"),
            tip: &|i| format!("point {i}"),
            time_labels: true,
        }
        .draw(&mut svg);
        for part in [
            r#"class="band""#,
            r#"class="expected""#,
            r#"class="observed""#,
            r#"class="anomalous""#,
            r#"class="marker fire alert-fired""#,
            r#"class="unjudged""#,
            "<title>&lt;fired&gt;</title>",
            "<title>point 12</title>",
            ">a &amp; b</text>",
        ] {
            assert!(svg.contains(part), "{part} missing in {svg}");
        }
        // The gap at bin 9 breaks the observed line into two subpaths.
        let observed = svg
            .split(r#"class="observed" d=""#)
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            observed
                .split('"')
                .next()
                .unwrap_or_default()
                .matches('M')
                .count(),
            2
        );
    }
}
