//! The panel's frame and grid: the plot area with its unjudged stretches, the value
//! axis's gridlines and labels, and the time axis's gridlines and labels.

use std::fmt::Write as _;

use super::axis::time_step_ms;
use super::Panel;
use crate::html::{esc, time};

impl Panel<'_> {
    /// The plot area and its unjudged stretches.
    pub(super) fn frame(&self, out: &mut String) {
        let (top, h) = (self.top, self.look.height);
        let _ = write!(
            out,
            r#"<rect class="frame" x="{}" y="{top:.1}" width="{:.1}" height="{h}"/>"#,
            self.look.left,
            self.plot_width()
        );
        for &(from, to) in self.unjudged {
            let _ = write!(
                out,
                r#"<rect class="unjudged" x="{:.1}" y="{top:.1}" width="{:.1}" height="{h}"/>"#,
                self.x_start(from),
                (to + 1 - from) as f64 * self.bin_width()
            );
        }
    }

    pub(super) fn value_grid(&self, out: &mut String) {
        for v in self.axis.ticks() {
            let y = self.y(v);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                self.look.left,
                self.look.width - self.look.right,
                self.look.left - 6.0,
                y + 4.0,
                esc(&(self.value)(v))
            );
        }
    }

    /// Vertical lines at round times, labelled under the bottom panel: days on a long
    /// axis (the label starts at its midnight), hours on a short one (centred, with the
    /// weekday at midnight).
    pub(super) fn time_grid(&self, out: &mut String) {
        let bin_ms = self.time.bin_ms.max(1);
        let from = self.time.first_bin * bin_ms;
        let to = (self.time.first_bin + self.time.bins.max(1)) * bin_ms;
        let step = time_step_ms(to - from, self.look.max_time_labels);
        let x_of =
            |t: i64| self.look.left + (t - from) as f64 / (to - from) as f64 * self.plot_width();
        let (top, bottom) = (self.top, self.top + self.look.height);
        let mut t = from.div_euclid(step) * step + step;
        while t < to {
            let x = x_of(t);
            let _ = write!(
                out,
                r#"<line class="time-grid" x1="{x:.1}" x2="{x:.1}" y1="{top:.1}" y2="{bottom:.1}"/>"#
            );
            if self.time_labels {
                self.time_label(out, t, x, step);
            }
            t += step;
        }
    }

    /// The label of the time gridline at `x`, unless it would run off the chart.
    fn time_label(&self, out: &mut String, t: i64, x: f64, step: i64) {
        const DAY: i64 = 86_400_000;
        /// About the width of a character of an 11–12 px label.
        const CHAR: f64 = 6.5;
        // Labels name the year where it changes (1 January), in the weekday's place.
        let new_year = time(t, "%m-%d") == "01-01";
        let (format, anchor, lx) = match (step % DAY == 0, t % DAY == 0) {
            (true, _) if new_year => ("%d %b %Y", "start", x + 3.0),
            (true, _) => ("%a %d %b", "start", x + 3.0),
            (false, true) if new_year => ("%d %b %Y", "middle", x),
            (false, true) => ("%a %H:%M", "middle", x),
            (false, false) => ("%H:%M", "middle", x),
        };
        let label = time(t, format);
        let width = label.chars().count() as f64 * CHAR;
        let left = if anchor == "start" {
            lx
        } else {
            lx - width / 2.0
        };
        // Not under the value labels, not past the chart's right edge.
        if left < self.look.left - 16.0 || left + width > self.look.width {
            return;
        }
        let _ = write!(
            out,
            r#"<text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{label}</text>"#,
            self.top + self.look.height + 15.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn day_labels_name_the_year_where_it_changes() {
        let look = Look {
            width: 800.0,
            left: 40.0,
            right: 10.0,
            height: 100.0,
            dot_radius: 3.0,
            markers: MarkerStyle::Vertical,
            max_points: 1000,
            max_time_labels: 8,
        };
        // 30 December 2026 to 3 January 2027.
        let time = TimeAxis {
            first_bin: 1_798_588_800_000 / 900_000,
            bins: 4 * 96,
            bin_ms: 900_000,
        };
        let points: Vec<Point> = (0..4 * 96)
            .map(|b| Point {
                bin: time.first_bin + b,
                observed: 10.0,
                expected: Some(10.0),
                band: Some((5.0, 15.0)),
                anomalous: false,
            })
            .collect();
        let mut svg = String::new();
        Panel {
            look: &look,
            time: &time,
            axis: ValueAxis::log_when_dwarfed(&points),
            top: 20.0,
            title: "t",
            points: &points,
            unjudged: &[],
            markers: &[],
            value: &|v| format!("{v}"),
            tip: &|i| format!("point {i}"),
            time_labels: true,
        }
        .draw(&mut svg);
        // Midnights are labelled by weekday, but 1 January by its date and year.
        assert!(svg.contains(">Thu 00:00<"), "{svg}");
        assert!(svg.contains(">01 Jan 2027<"), "{svg}");
        assert!(!svg.contains(">Fri 00:00<"), "{svg}");
    }
}
