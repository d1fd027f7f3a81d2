//! Reading one `[[rules]]` table: every key checked, every problem named by its path.

use std::time::Duration;

use serde_json::Value;

use super::{default_detectors, Conditions, RuleSpec, SPLIT_BASELINE_WINDOW};
use crate::config_reader::{Problems, Table};
use crate::event::SPLIT_FIELDS;

impl RuleSpec {
    /// Read one `[[rules]]` table.
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<RuleSpec> {
        let mut t = Table::new(path, Some(value), problems);
        let name = t.string("name", problems);
        if name.is_none() && t.raw("name").is_none() {
            problems.push(t.key_path("name"), "is required");
        }
        let mut rule = RuleSpec::named(name.as_deref().unwrap_or(""));
        if rule.name.trim().is_empty() && name.is_some() {
            problems.push(t.key_path("name"), "must not be empty");
        }
        rule.read_what(&mut t, problems);
        rule.read_sizes(&mut t, problems);
        rule.read_detectors(&mut t, problems);
        t.finish(problems);
        Some(rule)
    }

    /// What to count: event types, bin, split and a raw query.
    fn read_what(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        if let Some(types) = t.strings("event_types", problems) {
            if types.is_empty() {
                problems.push(
                    t.key_path("event_types"),
                    "must name at least one Okta event type",
                );
            }
            rule.event_types = types;
        }
        if let Some(bin) = t.duration("bin", problems) {
            if let Err(why) = check_bin(bin) {
                problems.push(
                    t.key_path("bin"),
                    format!("{} {why}", humantime::format_duration(bin)),
                );
            } else {
                rule.bin = bin;
            }
        }
        if let Some(field) = t.string("split_by", problems) {
            let field = field.strip_prefix("detail.").unwrap_or(&field).to_string();
            if SPLIT_FIELDS.contains(&field.as_str()) {
                rule.split_by = Some(field);
            } else {
                problems.push(
                    t.key_path("split_by"),
                    format!(
                        "{field:?} is not a field authpulse can split by (one of: {})",
                        SPLIT_FIELDS.join(", ")
                    ),
                );
            }
        }
        let when_base = t.key_path("when");
        let when = t.entries("when", problems);
        if !when.is_empty() {
            rule.when.clear();
        }
        for (ty, conds) in when {
            let path = crate::config_reader::join(&when_base, ty);
            if !rule.event_types.iter().any(|t| t == ty) {
                problems.push(path.clone(), "is not one of the rule's event_types");
            }
            let c = Conditions::read(&path, conds, problems);
            rule.when.push((ty.to_string(), c));
        }
        if let Some(ty) = t.string("approvals", problems) {
            if !rule.event_types.contains(&ty) {
                problems.push(
                    t.key_path("approvals"),
                    "is not one of the rule's event_types",
                );
            }
            rule.approvals = Some(ty);
        }
        let base = t.key_path("filter");
        if let Some(v) = t.raw("filter") {
            rule.filter = Conditions::read(&base, v, problems);
        }
        if let Some(tz) = read_timezone(t, problems) {
            rule.timezone = Some(tz);
        }
        if let Some(q) = t.string("query", problems) {
            if !q.contains("bin(") || !q.contains(" n") {
                problems.push(
                    t.key_path("query"),
                    "must produce a bin(...) field and a count named n (e.g. `stats count(*) as n by bin(15m), detail.outcome.result`)",
                );
            }
            rule.query = Some(q);
        }
    }

    /// How much to keep: pages per hour, series, top-K, baseline window, warm-up.
    fn read_sizes(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        if let Some(n) = t.count("max_pages_per_hour", 1, problems) {
            rule.max_pages_per_hour = n.min(10_000) as usize;
        }
        if let Some(n) = t.count("max_series", 1, problems) {
            rule.max_series = n.min(1_000_000) as usize;
        }
        if let Some(n) = t.count("top_k", 1, problems) {
            if rule.split_by.is_none() {
                problems.push(t.key_path("top_k"), "only applies to a rule with split_by");
            }
            rule.top_k = Some(n.min(1_000_000) as usize);
        }
        if let Some(d) = t.duration("baseline_window", problems) {
            rule.baseline_window = d;
        } else if rule.split_by.is_some() {
            // Split series are many (one per address or user) and short-lived: a few
            // hours of history keep each one small (under 2 KiB) and are all the
            // recent-level baseline and the per-source windows need.
            rule.baseline_window = SPLIT_BASELINE_WINDOW.max(rule.bin * 8);
        }
        if let Some(d) = t.duration("warmup", problems) {
            rule.warmup = d;
        }
        if rule.baseline_window < rule.bin * 8 {
            problems.push(t.key_path("baseline_window"), "must cover at least 8 bins");
        }
    }

    /// The detectors (the defaults without a `[rules.detectors.*]` table), each checked
    /// against the baseline window.
    fn read_detectors(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        let detectors = t.entries("detectors", problems);
        if !detectors.is_empty() {
            let base = t.key_path("detectors");
            rule.detectors = detectors
                .into_iter()
                .filter_map(|(name, v)| {
                    crate::detect::read_detector(
                        &crate::config_reader::join(&base, name),
                        name,
                        v,
                        problems,
                    )
                })
                .collect();
        } else {
            rule.detectors = default_detectors(rule.split_by.is_some());
        }
        for d in &rule.detectors {
            let need = d.detector.window_bins() as usize;
            if need > rule.window_bins() {
                problems.push(
                    t.key_path("baseline_window"),
                    format!(
                        "holds {} bins, but {} looks at {need}: make it at least {}",
                        rule.window_bins(),
                        d.detector.kind().name(),
                        humantime::format_duration(rule.bin * need as u32)
                    ),
                );
            }
        }
    }
}

/// Read a `timezone` key: an IANA time zone name.
pub fn read_timezone(t: &mut Table<'_>, problems: &mut Problems) -> Option<chrono_tz::Tz> {
    let name = t.string("timezone", problems)?;
    match name.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.push(
                t.key_path("timezone"),
                format!("{name:?} is not an IANA time zone (e.g. \"America/New_York\", \"UTC\")"),
            );
            None
        }
    }
}

/// Bins must tile an hour (below an hour) or a day (an hour and above), so that they line
/// up with the clock and with Logs Insights' `bin()`.
fn check_bin(bin: Duration) -> Result<(), &'static str> {
    let s = bin.as_secs();
    if bin.subsec_nanos() != 0 || s == 0 {
        Err("must be a whole number of seconds, at least 1s")
    } else if s < 3600 && 3600 % s != 0 {
        Err("does not divide an hour (use e.g. 1m, 5m, 10m, 15m, 30m)")
    } else if s >= 3600 && 86_400 % s != 0 {
        Err("does not divide a day (use e.g. 1h, 2h, 3h, 6h, 12h, 1d)")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorKind;

    #[test]
    fn split_rules_default_to_spike_detectors() {
        let mut p = Problems::default();
        let v = serde_json::json!({"name": "per-ip", "split_by": "detail.client.ipAddress"});
        let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(r.split_by.as_deref(), Some("client.ipAddress"));
        let kinds: Vec<_> = r.detectors.iter().map(|d| d.detector.kind()).collect();
        assert_eq!(
            kinds,
            vec![DetectorKind::FailureSpike, DetectorKind::VolumeSpike]
        );
    }

    #[test]
    fn unknown_split_field_is_named() {
        let mut p = Problems::default();
        let v = serde_json::json!({"name": "x", "split_by": "detail.debugContext"});
        RuleSpec::read("rules[3]", &v, &mut p);
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "rules[3].split_by");
    }

    #[test]
    fn timezone_filter_and_when_are_read() {
        let mut p = Problems::default();
        let v = serde_json::json!({
            "name": "x",
            "timezone": "America/New_York",
            "event_types": ["user.session.start", "user.authentication.auth_via_mfa"],
            "filter": {"actor.id": "unknown"},
            "when": {"user.authentication.auth_via_mfa": {"outcome.result": "FAILURE"}},
        });
        let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(r.timezone, Some(chrono_tz::America::New_York));
        assert_eq!(r.filter, Conditions::all_of(&[("actor.id", "unknown")]));
        let q = r.insights_query();
        assert!(q.contains("(detail.eventType = \"user.authentication.auth_via_mfa\" and detail.outcome.result = \"FAILURE\")"), "{q}");
        assert!(q.contains("| filter detail.actor.id = \"unknown\""), "{q}");
        let bad = serde_json::json!({"name": "x", "timezone": "Mars/Olympus", "filter": {"debugContext": "x"}, "approvals": "user.authentication.auth_via_mfa"});
        RuleSpec::read("rules[1]", &bad, &mut p);
        let paths: Vec<&str> = p.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "rules[1].approvals",
                "rules[1].filter.debugContext",
                "rules[1].timezone"
            ]
        );
    }
}
