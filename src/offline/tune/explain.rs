//! `backtest --explain FROM..TO`: why a stretch of time paged or did not, in text. For
//! every bin that starts inside the span, each rule's unsplit series and summary counts
//! (and any source a detector flagged) are printed with their counts and every detector's
//! judgement: observed against expected, the p-value, how many bins it added up, and
//! whether it was flagged. An operator asking "why was this outage not paged?" reads the
//! answer off these lines instead of hovering over a chart.

use std::fmt::Write as _;

use crate::detect::BinContext;
use crate::event::parse_rfc3339_ms;
use crate::html::time;
use crate::pipeline::{Observer, Verdict};
use crate::rule::RuleSpec;
use crate::series::{Labels, RuleId};

use super::series_name;

/// A span of time `[from_ms, to_ms)`, read from `FROM..TO` (RFC 3339 on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Span, String> {
        let (from, to) = s
            .split_once("..")
            .ok_or_else(|| format!("expected FROM..TO (two RFC 3339 times), found {s:?}"))?;
        let read = |t: &str| {
            parse_rfc3339_ms(t.trim())
                .ok_or_else(|| format!("{t:?} is not an RFC 3339 time (2026-10-29T13:00:00Z)"))
        };
        let (from_ms, to_ms) = (read(from)?, read(to)?);
        if to_ms <= from_ms {
            return Err(format!("{s:?}: the span ends before it starts"));
        }
        Ok(Span { from_ms, to_ms })
    }
}

/// The observer behind `--explain`: collects the lines, in the order the pipeline judged
/// the bins (rule by rule as each closes).
pub struct Explainer {
    span: Span,
    rules: Vec<RuleSpec>,
    lines: Vec<(i64, usize, String)>,
}

impl Explainer {
    pub fn new(rules: &[RuleSpec], span: Span) -> Explainer {
        Explainer {
            span,
            rules: rules.to_vec(),
            lines: Vec::new(),
        }
    }

    /// The lines, bin by bin (rules in config order within a bin).
    pub fn text(&self) -> String {
        let mut lines: Vec<&(i64, usize, String)> = self.lines.iter().collect();
        lines.sort_by_key(|(ms, rule, _)| (*ms, *rule));
        let mut out = String::new();
        if lines.is_empty() {
            out.push_str("  no bin of any rule was judged in that span (warm-up, or no traffic read there)\n");
        }
        for (_, _, line) in lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

impl Observer for Explainer {
    fn series_bin(
        &mut self,
        RuleId(rule): RuleId,
        labels: &Labels,
        ctx: &BinContext<'_>,
        verdicts: &[Verdict],
    ) {
        let Some(spec) = self.rules.get(rule) else {
            return;
        };
        let start = ctx.bin * ctx.bin_ms;
        if start < self.span.from_ms || start >= self.span.to_ms {
            return;
        }
        let flagged = verdicts
            .iter()
            .any(|v| v.finding.as_ref().is_some_and(|f| f.anomalous));
        let summary = labels.is_empty() || ctx.aggregate || ctx.sources || ctx.sprayers;
        if !(summary || flagged) {
            return;
        }
        let c = ctx.counts;
        let mut line = format!(
            "{} {}: {} events, {} failed, {} succeeded",
            time(start, "%a %d %b %H:%M"),
            series_name(&spec.name, labels),
            c.total,
            c.failure,
            c.success
        );
        if summary {
            let d = ctx.dispersion;
            let _ = write!(
                line,
                "\n    (dispersion learned: total {:.3}, failed {:.3}, succeeded {:.3}, step {:.3}, busy step {:.3})",
                d.total, d.failure, d.success, d.step, d.busy_step
            );
        }
        for (d, v) in spec.detectors.iter().zip(verdicts) {
            let name = d.detector.kind().name();
            match &v.finding {
                None => {
                    let _ = write!(line, "\n    {name:<22} not judged");
                }
                Some(f) => {
                    let _ = write!(
                        line,
                        "\n    {name:<22} {} {:.1} (expected {:.1}, band {:.1}..{:.1}) over {} bin{}, p {:.1e}{}",
                        f.measure,
                        f.observed,
                        f.expected,
                        f.lower,
                        f.upper,
                        f.window_bins,
                        if f.window_bins == 1 { "" } else { "s" },
                        f.p_value,
                        if f.anomalous { "  FLAGGED" } else { "" }
                    );
                }
            }
        }
        self.lines.push((start, rule, line));
    }

    fn reset(&mut self) {
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_both_ends_and_refuse_nonsense() {
        let s: Span = "2026-10-29T13:00:00Z..2026-10-29T15:00:00Z"
            .parse()
            .unwrap();
        assert_eq!(s.to_ms - s.from_ms, 2 * 3_600_000);
        assert!("2026-10-29T13:00:00Z".parse::<Span>().is_err());
        assert!("2026-10-29T15:00:00Z..2026-10-29T13:00:00Z"
            .parse::<Span>()
            .unwrap_err()
            .contains("ends before"));
        assert!("yesterday..today".parse::<Span>().is_err());
    }
}
