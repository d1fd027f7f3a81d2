//! A Logs Insights result, row by row: counts per bin and series, every bad answer a
//! named error (see the query contract in [`super`]).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::event::threat_flagged;
use crate::rule::RuleSpec;
use crate::series::{Counts, FailedAccounts, Labels, OutcomeClass, Span};
use crate::source::insights::Row;

/// Parse a bin value as the service writes it: `2026-11-25 10:15:00.000` (UTC).
pub fn parse_bin_ms(value: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Turn result rows into counts per (bin, labels), keeping only bins in `[first, end)`.
pub fn parse_rows(
    spec: &RuleSpec,
    rows: &[Row],
    first: i64,
    end: i64,
) -> Result<BTreeMap<(i64, Labels), Counts>, String> {
    let b = spec.bin_ms();
    let split_field = spec.split_by.as_ref().map(|f| format!("detail.{f}"));
    let mut out: BTreeMap<(i64, Labels), Counts> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let get = |name: &str| row.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_str());
        let bin_value = row
            .iter()
            .find(|(f, _)| f.starts_with("bin(") || f == "bin")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                format!(
                    "result row {i} has no bin(...) field (fields: {})",
                    field_names(row)
                )
            })?;
        let bin_ms = parse_bin_ms(bin_value)
            .ok_or_else(|| format!("result row {i}: bin value {bin_value:?} is not a time like 2026-11-25 10:15:00.000"))?;
        if bin_ms.rem_euclid(b) != 0 {
            return Err(format!(
                "result row {i}: bin {bin_value} does not start on a {} boundary: does the query bin match the rule's bin?",
                spec.bin_literal()
            ));
        }
        let bin = bin_ms / b;
        if bin < first || bin >= end {
            continue;
        }
        let n_text = get("n").ok_or_else(|| {
            format!(
                "result row {i} has no count field n (fields: {})",
                field_names(row)
            )
        })?;
        let n = n_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("result row {i}: count n = {n_text:?} is not a number"))?
            .round() as u64;
        let class = spec.class_of(
            get("detail.eventType"),
            get("detail.outcome.result").unwrap_or("UNKNOWN"),
        );
        let mut labels = Labels::new();
        if let (Some(field), Some(path)) = (&spec.split_by, &split_field) {
            // `null`, `"null"` and `""` are an unknown source, as in the local binner.
            let value = get(path)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null"))
                .unwrap_or("(none)");
            labels.insert(field.clone(), value.to_string());
        }
        let mut row_counts = Counts::default();
        row_counts.add(class, n);
        if class == OutcomeClass::Failure {
            read_failed_columns(&get, &mut row_counts);
        }
        row_counts.span = row_span(i, get("first"), get("last"), bin_ms, b)?;
        out.entry((bin, labels)).or_default().merge(&row_counts);
    }
    Ok(out)
}

/// The optional columns of a failure row (a hand-written query may leave them out): the
/// distinct users and addresses, the first and the last failed attempt's `actor.id`
/// (which of the organisation's accounts failed) and ThreatInsight's flag on them.
fn read_failed_columns<'r>(get: &dyn Fn(&str) -> Option<&'r str>, counts: &mut Counts) {
    let distinct = |name: &str| {
        get(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map_or(0, |v| v.round() as u64)
    };
    counts.failed_users = distinct("users");
    counts.failed_ips = distinct("ips");
    counts.failed_accounts = FailedAccounts::of(get("first_actor"), get("last_actor"));
    counts.failed_flagged = [get("first_threat"), get("last_threat")]
        .into_iter()
        .flatten()
        .any(threat_flagged);
}

/// The optional `first` and `last` columns (`min(@timestamp)`, `max(@timestamp)`): when
/// inside its bin a row's first and last event happened. Read as a Logs Insights time
/// (`2026-11-25 10:15:03.250`) or as epoch milliseconds; either missing means the row
/// does not say (no silence is credited inside its bin).
fn row_span(
    i: usize,
    first: Option<&str>,
    last: Option<&str>,
    bin_start: i64,
    bin_ms: i64,
) -> Result<Option<Span>, String> {
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    let read = |name: &str, v: &str| -> Result<i64, String> {
        let ms = parse_bin_ms(v)
            .or_else(|| v.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                format!("result row {i}: {name} = {v:?} is not a time like 2026-11-25 10:15:03.250 or epoch milliseconds")
            })?;
        if ms < bin_start || ms >= bin_start + bin_ms {
            return Err(format!(
                "result row {i}: {name} = {v:?} lies outside its bin: is it min/max(@timestamp)?"
            ));
        }
        Ok(ms)
    };
    let (first_ms, last_ms) = (read("first", first)?, read("last", last)?);
    if first_ms > last_ms {
        return Err(format!(
            "result row {i}: first = {first:?} is after last = {last:?}"
        ));
    }
    Ok(Some(Span { first_ms, last_ms }))
}

fn field_names(row: &Row) -> String {
    row.iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(fields: &[(&str, &str)]) -> Row {
        fields
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_become_counts() {
        let spec = RuleSpec::named("r");
        let base = parse_bin_ms("2026-11-25 10:15:00.000").unwrap() / spec.bin_ms();
        let rows = vec![
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "SUCCESS"),
                ("n", "40"),
            ]),
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "3"),
            ]),
            row(&[("bin(15m)", "2026-11-25 10:30:00.000"), ("n", "2")]),
            // Outside the range asked for: ignored.
            row(&[
                ("bin(15m)", "2026-11-25 11:00:00.000"),
                ("detail.outcome.result", "SUCCESS"),
                ("n", "9"),
            ]),
        ];
        let c = parse_rows(&spec, &rows, base, base + 2).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[&(base, Labels::new())],
            Counts {
                total: 43,
                success: 40,
                failure: 3,
                ..Counts::default()
            }
        );
        assert_eq!(
            c[&(base + 1, Labels::new())],
            Counts {
                total: 2,
                success: 0,
                failure: 0,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn an_approval_row_counts_in_the_total_only() {
        let spec = RuleSpec::mfa_push_fatigue();
        let base = parse_bin_ms("2026-11-25 10:15:00.000").unwrap() / spec.bin_ms();
        let at = |ty: &str, result: &str, n: &str| {
            row(&[
                ("bin(5m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", result),
                ("detail.eventType", ty),
                ("detail.actor.alternateId", "a@example.com"),
                ("n", n),
            ])
        };
        let rows = vec![
            at("system.push.send_factor_verify_push", "SUCCESS", "5"),
            at("user.authentication.auth_via_mfa", "SUCCESS", "2"),
            at("user.authentication.auth_via_mfa", "FAILURE", "1"),
            at("user.mfa.okta_verify.deny_push", "FAILURE", "1"),
        ];
        let c = parse_rows(&spec, &rows, base, base + 1).unwrap();
        let [(_, counts)] = &c.into_iter().collect::<Vec<_>>()[..] else {
            panic!("one series")
        };
        assert_eq!((counts.total, counts.success, counts.failure), (9, 5, 2));
        assert_eq!(counts.other(), 2);
    }

    #[test]
    fn first_and_last_event_times_become_the_span() {
        let spec = RuleSpec::named("r");
        let base = parse_bin_ms("2026-11-25 10:15:00.000").unwrap();
        let rows = vec![
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "SUCCESS"),
                ("n", "40"),
                ("first", "2026-11-25 10:16:00.000"),
                ("last", "2026-11-25 10:21:30.500"),
            ]),
            // Epoch milliseconds are read too.
            row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "3"),
                ("first", &(base + 30_000).to_string()),
                ("last", &(base + 60_000).to_string()),
            ]),
            // A row that does not say: its bin's times are unknown.
            row(&[("bin(15m)", "2026-11-25 10:30:00.000"), ("n", "2")]),
        ];
        let b = base / spec.bin_ms();
        let c = parse_rows(&spec, &rows, b, b + 2).unwrap();
        assert_eq!(
            c[&(b, Labels::new())].span,
            Some(Span {
                first_ms: base + 30_000,
                last_ms: base + 390_500
            })
        );
        assert_eq!(c[&(b + 1, Labels::new())].span, None);
        // Times that are not times, or outside their bin, are named.
        for (first, why) in [
            ("yesterday", "is not a time"),
            ("2026-11-25 10:31:00.000", "outside its bin"),
        ] {
            let bad = vec![row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("n", "1"),
                ("first", first),
                ("last", "2026-11-25 10:16:00.000"),
            ])];
            let err = parse_rows(&spec, &bad, b, b + 2).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn split_values_become_labels() {
        let mut spec = RuleSpec::named("r");
        spec.split_by = Some("client.ipAddress".into());
        let rows = vec![row(&[
            ("bin(15m)", "2026-11-25 10:15:00.000"),
            ("detail.outcome.result", "FAILURE"),
            ("detail.client.ipAddress", "203.0.113.9"),
            ("n", "12"),
            ("users", "11"),
            ("ips", "1"),
            ("first_actor", "unknown"),
            ("last_actor", "00u1b2c3"),
            ("first_threat", "false"),
            ("last_threat", "true"),
        ])];
        let c = parse_rows(&spec, &rows, 0, i64::MAX).unwrap();
        let (key, counts) = c.iter().next().unwrap();
        assert!(counts.failed_flagged);
        assert_eq!(key.1["client.ipAddress"], "203.0.113.9");
        assert_eq!(counts.failure, 12);
        assert_eq!((counts.failed_users, counts.failed_ips), (11, 1));
        // The resolved account is kept, the unresolved username is said without one.
        assert_eq!(
            counts.failed_accounts.keys().collect::<Vec<_>>(),
            FailedAccounts::of(Some("00u1b2c3"), None)
                .keys()
                .collect::<Vec<_>>()
        );
        assert!(counts.failed_accounts.unresolved_among(counts.failure));
        // Neither end flagged, or the columns missing: not flagged.
        for threats in [
            vec![("first_threat", "false"), ("last_threat", "False")],
            vec![],
        ] {
            let mut fields = vec![
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "2"),
            ];
            fields.extend(threats);
            let c = parse_rows(&spec, &[row(&fields)], 0, i64::MAX).unwrap();
            assert!(!c.values().next().unwrap().failed_flagged);
        }
    }

    #[test]
    fn a_null_address_is_the_unknown_source() {
        let mut spec = RuleSpec::named("r");
        spec.split_by = Some("client.ipAddress".into());
        let at = |ip: Option<&str>| {
            let mut fields = vec![
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("detail.outcome.result", "FAILURE"),
                ("n", "1"),
            ];
            if let Some(ip) = ip {
                fields.push(("detail.client.ipAddress", ip));
            }
            row(&fields)
        };
        let rows = vec![at(Some("null")), at(Some("")), at(None), at(Some("NULL"))];
        let c = parse_rows(&spec, &rows, 0, i64::MAX).unwrap();
        let values: Vec<&str> = c
            .keys()
            .map(|(_, l)| l["client.ipAddress"].as_str())
            .collect();
        assert_eq!(values, vec!["(none)"]);
        assert_eq!(c.values().next().map(|c| c.failure), Some(4));
    }

    #[test]
    fn bad_answers_are_named_errors() {
        let spec = RuleSpec::named("r");
        let no_bin = parse_rows(&spec, &[row(&[("n", "1")])], 0, i64::MAX).unwrap_err();
        assert!(no_bin.contains("no bin(...) field"), "{no_bin}");
        let bad_time = parse_rows(
            &spec,
            &[row(&[("bin(15m)", "1764066900000"), ("n", "1")])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(bad_time.contains("is not a time"), "{bad_time}");
        let off = parse_rows(
            &spec,
            &[row(&[("bin(15m)", "2026-11-25 10:05:00.000"), ("n", "1")])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(off.contains("boundary"), "{off}");
        let nan = parse_rows(
            &spec,
            &[row(&[
                ("bin(15m)", "2026-11-25 10:15:00.000"),
                ("n", "lots"),
            ])],
            0,
            i64::MAX,
        )
        .unwrap_err();
        assert!(nan.contains("not a number"), "{nan}");
    }

    proptest! {
        #[test]
        fn bin_values_round_trip(secs in 0i64..4_102_444_800) {
            let ms = secs * 1000;
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            let text = t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            prop_assert_eq!(parse_bin_ms(&text), Some(ms));
        }

        #[test]
        fn any_row_text_is_an_error_or_counts_never_a_panic(a in ".{0,30}", v in ".{0,30}", n in ".{0,10}") {
            let spec = RuleSpec::named("r");
            let _ = parse_rows(&spec, &[row(&[(a.as_str(), v.as_str()), ("n", n.as_str())])], 0, i64::MAX);
        }
    }
}
