//! The suggestions as text: the table `backtest --suggest` prints, each detector's rows
//! (what it would page, which incidents it would catch) and a config snippet.

use std::fmt::Write as _;

use super::*;

/// `1e-6`, `3e-7`: how a p-value threshold is written in the config.
fn p_literal(p: f64) -> String {
    let s = format!("{p:e}");
    // `{:e}` gives e.g. "3e-7" or "1.0000000000000001e-5": keep three significant digits.
    match s.split_once('e') {
        Some((mantissa, exp)) if mantissa.len() > 5 => {
            let m: f64 = mantissa.parse().unwrap_or(1.0);
            let m = (m * 100.0).round() / 100.0;
            format!("{m}e{exp}")
        }
        _ => s,
    }
}

/// The labelled incident a page belongs to: its first anomalous bin starts inside the
/// incident's window, widened as [`crate::evaluate`] widens it.
fn incident_of<'a>(p: &Page, bin_ms: i64, incidents: &'a [Incident]) -> Option<&'a Incident> {
    incidents.iter().find(|i| {
        p.started_ms >= i.start.timestamp_millis() - bin_ms
            && p.started_ms <= i.end.timestamp_millis() + GRACE_MS
    })
}

/// `[credential_stuffing]`, `[benign_surge: should not page]` or `[no incident]`, when
/// there are labels.
fn label(p: &Page, bin_ms: i64, incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return String::new();
    }
    match incident_of(p, bin_ms, incidents) {
        Some(i) if i.expect_page => format!("  [{}]", i.kind.as_str()),
        Some(i) => format!("  [{}: should not page]", i.kind.as_str()),
        None => "  [no incident]".to_string(),
    }
}

/// `catches 3 of 5 incidents, 1 false page` for a replay, when there are labels.
fn catch_note(r: &Replay, bin_ms: i64, incidents: &[Incident]) -> String {
    let should: Vec<&Incident> = incidents.iter().filter(|i| i.expect_page).collect();
    if incidents.is_empty() {
        return String::new();
    }
    let caught = should
        .iter()
        .filter(|i| {
            r.pages
                .iter()
                .any(|p| incident_of(p, bin_ms, incidents).is_some_and(|j| std::ptr::eq(j, **i)))
        })
        .count();
    let false_pages = r
        .pages
        .iter()
        .filter(|p| incident_of(p, bin_ms, incidents).is_none_or(|i| !i.expect_page))
        .count();
    format!(
        " · catches {caught} of {} incidents, {false_pages} false",
        should.len()
    )
}

fn page_line(p: &Page) -> String {
    let repeats = match p.repeats {
        0 => String::new(),
        1 => " (+1 repeat)".to_string(),
        n => format!(" (+{n} repeats)"),
    };
    format!(
        "{}  {}  observed {} expected {:.1}  p {}{repeats}",
        rfc3339(p.bin_start_ms),
        p.series,
        show(p.observed),
        p.expected,
        crate::offline::tune::report::p_text(p.p_value)
    )
}

fn show(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// What `r` would page, and which of the current pages it would not (first ten of each).
fn differences(
    current: &Replay,
    r: &Replay,
    prefix: &str,
    bin_ms: i64,
    incidents: &[Incident],
) -> String {
    let same = |p: &Page, q: &Page| p.bin_start_ms == q.bin_start_ms && p.series == q.series;
    let mut t = String::new();
    let dropped: Vec<&Page> = current
        .pages
        .iter()
        .filter(|p| !r.pages.iter().any(|q| same(p, q)))
        .collect();
    for (label, pages) in [
        ("would page", r.pages.iter().collect::<Vec<_>>()),
        ("would not page", dropped),
    ] {
        for p in pages.iter().take(10) {
            let _ = writeln!(
                t,
                "      {prefix}{label:<15}{}{}",
                page_line(p),
                self::label(p, bin_ms, incidents)
            );
        }
        if pages.len() > 10 {
            let _ = writeln!(t, "      {prefix}... {} more", pages.len() - 10);
        }
    }
    t
}

impl Suggestions {
    /// The plain report: a table per rule, what the suggestions catch and drop, and the
    /// config to paste. With labelled `incidents` (the simulator's labels file, or your
    /// own), each page names its incident and each setting counts what it catches.
    pub fn table(&self, incidents: &[Incident]) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\nThreshold suggestions: at most {} pages per week ({} firing notices over these {:.1} weeks)",
            self.target_per_week,
            (self.target_per_week * self.weeks).floor(),
            self.weeks
        );
        let _ = writeln!(
            t,
            "  A page is a firing notice (repeats of a long incident count too). Replayed from the\n  recorded p-values with each detector's own M-of-N, resolve and repeat settings.\n"
        );
        let _ = writeln!(
            t,
            "  {:<20} {:<16} {:<26} {:>6} {:>9}",
            "rule", "detector", "setting", "pages", "per week"
        );
        for item in &self.items {
            t.push_str(&self.rows(item, incidents));
        }
        let _ = writeln!(
            t,
            "\nPaste into the config (a rule that lists [rules.detectors.*] runs only the detectors\nlisted, so every detector of the rule is here; keep your other keys in each table):\n"
        );
        t.push_str(&self.snippet());
        t
    }

    /// The table's rows for one detector: now, the suggestion, what changes.
    fn rows(&self, s: &Suggestion, incidents: &[Incident]) -> String {
        let mut t = String::new();
        let per_week = |r: &Replay| r.notices() as f64 / self.weeks.max(1e-9);
        let now = format!(
            "p_value = {}{}",
            p_literal(s.current.p_value),
            s.current
                .min_count
                .map(|m| format!(", min_count = {m}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            t,
            "  {:<20} {:<16} {:<26} {:>6} {:>9.2}   now{}",
            s.rule,
            s.detector.name(),
            now,
            s.current.notices(),
            per_week(&s.current),
            catch_note(&s.current, s.bin_ms, incidents)
        );
        let line = |label: String, r: &Replay, note: &str| {
            format!(
                "  {:<20} {:<16} {:<26} {:>6} {:>9.2}   {note}{}\n",
                "",
                "",
                label,
                r.notices(),
                per_week(r),
                catch_note(r, s.bin_ms, incidents)
            )
        };
        t.push_str(&p_value_rows(s, &line, incidents));
        if let Some(r) = &s.by_min_count {
            let m = r.min_count.unwrap_or_default();
            t.push_str(&line(
                format!("min_count = {m}"),
                r,
                "or this, p_value unchanged",
            ));
        }
        if s.tighten_only {
            let _ = writeln!(
                t,
                "  {:<20} {:<16} (this detector can only be tuned stricter here)",
                "", ""
            );
        }
        if let Some(r) = &s.by_p_value {
            t.push_str(&differences(&s.current, r, "", s.bin_ms, incidents));
        }
        if let Some(r) = &s.by_min_count {
            t.push_str(&differences(
                &s.current,
                r,
                "with min_count: ",
                s.bin_ms,
                incidents,
            ));
        }
        t
    }

    /// The config snippet to paste: every detector of every rule, with its p-value.
    fn snippet(&self) -> String {
        let mut t = String::new();
        for (rule, kinds) in &self.rules {
            let _ = writeln!(t, "[[rules]]\nname = {rule:?}");
            for kind in kinds {
                let _ = writeln!(t, "[rules.detectors.{}]", kind.name());
                let item = self
                    .items
                    .iter()
                    .find(|s| s.rule == *rule && s.detector == *kind);
                if let Some(s) = item {
                    let p = s
                        .by_p_value
                        .as_ref()
                        .map_or(s.current.p_value, |r| r.p_value);
                    let was = if p == s.current.p_value {
                        String::new()
                    } else {
                        format!("   # was {}", p_literal(s.current.p_value))
                    };
                    let _ = writeln!(t, "p_value = {}{was}", p_literal(p));
                } else {
                    t.push_str("# no p_value to tune here: keep your settings\n");
                }
            }
            t.push('\n');
        }
        t
    }
}

/// The p-value suggestion's row, or what still pages when no p-value meets the budget.
fn p_value_rows(
    s: &Suggestion,
    line: &dyn Fn(String, &Replay, &str) -> String,
    incidents: &[Incident],
) -> String {
    let mut t = String::new();
    match &s.by_p_value {
        Some(r) if r.p_value == s.current.p_value => t.push_str(&line(
            format!("p_value = {}", p_literal(r.p_value)),
            r,
            "keep",
        )),
        Some(r) => t.push_str(&line(
            format!("p_value = {}", p_literal(r.p_value)),
            r,
            if r.p_value > s.current.p_value {
                "suggested: more sensitive, within budget"
            } else {
                "suggested: stricter"
            },
        )),
        None => {
            let _ = writeln!(
                t,
                "  {:<20} {:<16} no p_value down to 1e-20 meets the target: what pages even then",
                "", ""
            );
            for p in s.strictest.pages.iter().take(10) {
                let _ = writeln!(
                    t,
                    "      still pages    {}{}",
                    page_line(p),
                    label(p, s.bin_ms, incidents)
                );
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_literals_are_short() {
        assert_eq!(p_literal(1e-6), "1e-6");
        assert_eq!(p_literal(3.0 * 10f64.powi(-7)), "3e-7");
        assert_eq!(p_literal(10f64.powi(-9)), "1e-9");
    }
}
