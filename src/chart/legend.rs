//! A chart's legend: a swatch per entry, drawn with the chart's own classes.

use super::{Mark, MarkerStyle};
use crate::html::esc;

/// One entry of a chart legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Observed,
    Expected,
    Band,
    Anomalous,
    Mark(Mark),
    Unjudged,
}

/// A legend: a small swatch drawn with the chart's own classes (so the page's
/// stylesheet colours both alike) and a label, per entry.
pub fn legend(entries: &[(Key, &str)], style: MarkerStyle) -> String {
    let swatch = |key: Key| match (key, style) {
        (Key::Observed, _) => r#"<path class="observed" d="M1 10L8 4L15 9L25 3"/>"#.to_string(),
        (Key::Expected, _) => r#"<path class="expected" d="M1 7H25"/>"#.to_string(),
        (Key::Band, _) => r#"<rect class="band" x="1" y="2" width="24" height="10"/>"#.to_string(),
        (Key::Anomalous, _) => r#"<circle class="anomalous" cx="13" cy="7" r="3"/>"#.to_string(),
        (Key::Unjudged, _) => {
            r#"<rect class="unjudged" x="1" y="1" width="24" height="12"/>"#.to_string()
        }
        (Key::Mark(m), MarkerStyle::Vertical) => format!(
            r#"<g class="{}"><line x1="13" x2="13" y1="1" y2="13" stroke-width="1.5"/><path d="M9 1h8l-4 6z"/></g>"#,
            m.class()
        ),
        (Key::Mark(Mark::Resolve), MarkerStyle::AtPoint) => {
            r#"<circle class="resolve" cx="13" cy="7" r="4.5"/>"#.to_string()
        }
        (Key::Mark(m), MarkerStyle::AtPoint) => {
            format!(r#"<path class="{}" d="M13 12l-6 -10h12z"/>"#, m.class())
        }
    };
    entries
        .iter()
        .map(|&(key, label)| {
            format!(
                r#"<span><svg class="swatch" width="26" height="14" viewBox="0 0 26 14">{}</svg>{}</span>"#,
                swatch(key),
                esc(label)
            )
        })
        .collect()
}
