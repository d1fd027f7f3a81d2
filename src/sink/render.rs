//! How an alert reads in each place it lands: an SNS Subject, an e-mail body, an SMS,
//! a Slack message, the payload Alertmanager sends its webhook receivers. The alert JSON itself (the contract)
//! is `serde_json::to_string(alert)`; everything here is derived from it.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::alert::{Alert, Status, TopValue};

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    }
}

/// `client.ipAddress=1.2.3.4, ...`, or empty for an unsplit series.
fn series_text(alert: &Alert) -> String {
    alert
        .series
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `203.0.113.9 (300), 198.51.100.8 (2)`.
fn top_text(values: &[TopValue]) -> String {
    values
        .iter()
        .map(|t| format!("{} ({})", t.value, t.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The enrichment as (label, text) rows, or nothing.
fn enrichment_rows(alert: &Alert) -> Vec<(&'static str, String)> {
    let Some(e) = &alert.enrichment else {
        return Vec::new();
    };
    vec![
        ("Top source IPs", top_text(&e.top_ips)),
        ("Top users", top_text(&e.top_users)),
        ("Top countries", top_text(&e.top_countries)),
        ("Top reasons", top_text(&e.top_reasons)),
    ]
}

/// Cut `s` to at most `max` characters, marking the cut with `...`.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// A number as a person reads it: shares as percentages, counts without decimals.
fn show(alert: &Alert, x: f64) -> String {
    if alert.measure.contains("share") {
        format!("{:.1}%", x * 100.0)
    } else if x.fract() == 0.0 || x.abs() >= 10.0 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// A one-line headline: `[FIRING critical] okta-sign-ins failure_spike: 412 failed
/// sign-ins, expected ~23 (client.ipAddress=1.2.3.4)`.
pub fn headline(alert: &Alert) -> String {
    format!(
        "[{} {}] {}",
        status_word(alert.status),
        alert.severity,
        brief(alert)
    )
}

/// The headline without status and severity (for receivers that show those
/// themselves): `okta-sign-ins failure_spike: 412 failed sign-ins, expected ~23
/// (client.ipAddress=1.2.3.4)`.
pub fn brief(alert: &Alert) -> String {
    let mut s = format!(
        "{} {}: {} {}, expected ~{}",
        alert.rule,
        alert.detector,
        show(alert, alert.observed),
        alert.measure,
        show(alert, alert.expected),
    );
    let series = series_text(alert);
    if !series.is_empty() {
        let _ = write!(s, " ({series})");
    }
    s
}

/// An SNS Subject: at most 100 characters of printable ASCII without line breaks
/// (SNS rejects anything else), starting with a letter, digit or punctuation.
pub fn subject(alert: &Alert) -> String {
    let ascii: String = headline(alert)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    truncate(ascii.trim(), 100)
}

/// A short text for SMS subscribers (one message: 140 characters).
pub fn sms(alert: &Alert) -> String {
    truncate(&format!("authpulse {}", headline(alert)), 140)
}

/// The body for e-mail subscribers: the summary first, then the facts, then where to
/// look.
pub fn email(alert: &Alert) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", alert.summary);
    let series = series_text(alert);
    let rows: [(&str, String); 10] = [
        ("Status", status_word(alert.status).to_ascii_lowercase()),
        ("Severity", alert.severity.to_string()),
        ("Rule", alert.rule.clone()),
        ("Detector", alert.detector.to_string()),
        (
            "Series",
            if series.is_empty() {
                "(all)".into()
            } else {
                series
            },
        ),
        ("Bin", format!("{} to {}", alert.bin_start, alert.bin_end)),
        ("Incident since", alert.started_at.to_string()),
        (
            "Observed",
            format!("{} {}", show(alert, alert.observed), alert.measure),
        ),
        (
            "Expected",
            format!(
                "{} (normal band {} to {}, p-value {:.3e})",
                show(alert, alert.expected),
                show(alert, alert.lower),
                show(alert, alert.upper),
                alert.p_value
            ),
        ),
        ("Fingerprint", alert.fingerprint.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "{k:<15} {v}");
    }
    let _ = writeln!(s, "{:<15} {}", "Idempotency key", alert.idempotency_key);
    let rows = enrichment_rows(alert);
    if !rows.is_empty() {
        let _ = writeln!(s, "\nIn the anomalous bin (failed sign-ins):");
        for (k, v) in rows {
            let _ = writeln!(s, "{k:<15} {v}");
        }
    }
    if let Some(e) = &alert.enrichment {
        let _ = writeln!(s, "\nOpen in the CloudWatch console:\n{}", e.console_url);
    }
    let _ = writeln!(
        s,
        "\nInvestigate (CloudWatch Logs Insights, over the bin above):\n{}",
        alert.investigate
    );
    s
}

/// The alert's kind for a human.
fn likely(alert: &Alert) -> &str {
    alert.kind.as_str()
}

/// A Slack incoming-webhook message: `text` is the notification fallback, `blocks` the
/// formatted message.
pub fn slack(alert: &Alert) -> Value {
    let icon = match alert.status {
        Status::Firing => ":rotating_light:",
        Status::Resolved => ":white_check_mark:",
    };
    let series = series_text(alert);
    let mut fields = vec![
        format!("*Rule*\n{}", alert.rule),
        format!("*Detector*\n{}", alert.detector),
        format!("*Severity*\n{}", alert.severity),
        format!("*Likely*\n{}", likely(alert)),
        format!(
            "*Observed / expected*\n{} / {} {}",
            show(alert, alert.observed),
            show(alert, alert.expected),
            alert.measure
        ),
        format!("*Bin*\n{} to {}", alert.bin_start, alert.bin_end),
        format!("*Since*\n{}", alert.started_at),
    ];
    if !series.is_empty() {
        fields.push(format!("*Series*\n{series}"));
    }
    for (k, v) in enrichment_rows(alert)
        .into_iter()
        .take(10 - fields.len().min(10))
    {
        fields.push(format!("*{k}*\n{}", truncate(&v, 1900)));
    }
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|t| json!({"type": "mrkdwn", "text": t}))
        .collect();
    json!({
        "text": format!("{icon} {}", headline(alert)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&headline(alert), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&alert.summary, 3000)}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*Investigate* (Logs Insights)\n```{}```", alert.investigate), 3000)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("fingerprint `{}` · idempotency key `{}`", alert.fingerprint, alert.idempotency_key)}
            ]}
        ]
    })
}

/// Alertmanager label names match `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// Alertmanager's webhook payload (version 4) with this one alert, so receivers built for
/// Alertmanager (PagerDuty/Opsgenie bridges, custom handlers) accept authpulse directly.
/// `endsAt` is Alertmanager's zero time while firing. (webhook `format =
/// "alertmanager_receiver"`; to feed an Alertmanager, see the `alertmanager` sink.)
pub fn alertmanager_receiver(alert: &Alert) -> Value {
    let mut labels = Map::new();
    labels.insert(
        "alertname".into(),
        json!(format!("authpulse_{}", alert.detector)),
    );
    labels.insert("rule".into(), json!(alert.rule));
    labels.insert("detector".into(), json!(alert.detector));
    labels.insert("severity".into(), json!(alert.severity.to_string()));
    for (k, v) in &alert.series {
        labels.insert(label_name(k), json!(v));
    }
    let mut annotations = json!({
        "summary": headline(alert),
        "description": alert.summary,
        "investigate": alert.investigate,
        "kind": alert.kind,
        "kind_reason": alert.kind_reason,
        "observed": alert.observed.to_string(),
        "expected": alert.expected.to_string(),
        "p_value": alert.p_value.to_string(),
        "bin_start": alert.bin_start,
        "bin_end": alert.bin_end,
        "idempotency_key": alert.idempotency_key,
    });
    let mut generator_url = String::new();
    if let Some(e) = &alert.enrichment {
        for (k, v) in [
            ("top_ips", &e.top_ips),
            ("top_users", &e.top_users),
            ("top_countries", &e.top_countries),
            ("top_reasons", &e.top_reasons),
        ] {
            annotations[k] = json!(top_text(v));
        }
        generator_url = e.console_url.clone();
    }
    let status = match alert.status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    };
    let ends_at = match alert.status {
        Status::Firing => "0001-01-01T00:00:00Z".to_string(),
        Status::Resolved => alert.bin_end.to_string(),
    };
    let group_labels = json!({"alertname": labels["alertname"], "rule": alert.rule});
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"authpulse_{}\", rule=\"{}\"}}", alert.detector, alert.rule),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "authpulse",
        "groupLabels": group_labels,
        "commonLabels": Value::Object(labels.clone()),
        "commonAnnotations": annotations.clone(),
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": Value::Object(labels),
            "annotations": annotations,
            "startsAt": alert.started_at,
            "endsAt": ends_at,
            "generatorURL": generator_url,
            "fingerprint": alert.fingerprint,
        }]
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::Severity;
    use crate::series::Labels;

    /// An alert for tests of the sinks and the delivery path.
    pub fn sample_alert(status: Status, bin_start: &str) -> Alert {
        let mut series = Labels::new();
        series.insert("client.ipAddress".into(), "203.0.113.9".into());
        Alert {
            status,
            rule: "okta-sign-ins".into(),
            detector: "failure_spike".parse().unwrap(),
            series,
            bin_start: bin_start.parse().unwrap(),
            bin_end: bin_start.parse().unwrap(),
            observed: 412.0,
            expected: 23.4,
            lower: 0.0,
            upper: 61.0,
            p_value: 1e-14,
            severity: Severity::Critical,
            fingerprint: "3fa19c0d2b7e4a11".into(),
            summary: "Failed sign-ins spiked: 412 failed sign-ins in the 15m bin at Wed 10:15 UTC, expected about 23.".into(),
            measure: "failed sign-ins".into(),
            window: None,
            window_start: None,
            started_at: bin_start.parse().unwrap(),
            investigate: "fields @timestamp | limit 200".into(),
            idempotency_key: String::new(),
            kind: crate::alert_kind::AlertKind::CredentialStuffing,
            kind_reason: String::new(),
            enrichment: None,
        }
        .with_idempotency_key()
    }

    #[test]
    fn subject_fits_sns_rules() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.rule = "a-very-long-rule-name-é-".repeat(10);
        let s = subject(&a);
        assert!(s.chars().count() <= 100, "{s}");
        assert!(s.is_ascii() && !s.contains('\n'), "{s}");
        assert!(s.starts_with("[FIRING critical]"), "{s}");
        assert!(s.ends_with("..."), "{s}");
        let short = subject(&sample_alert(Status::Resolved, "2026-11-25T10:15:00Z"));
        assert_eq!(
            short,
            "[RESOLVED critical] okta-sign-ins failure_spike: 412 failed sign-ins, expected ~23 (client.ipAddr..."
        );
        assert_eq!(short.len(), 100);
        assert!(sms(&a).chars().count() <= 140);
    }

    #[test]
    fn alertmanager_payload_has_the_receiver_shape() {
        let a = sample_alert(Status::Resolved, "2026-11-25T10:15:00Z");
        let v = alertmanager_receiver(&a);
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "resolved");
        let alert = &v["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "authpulse_failure_spike");
        assert_eq!(alert["labels"]["client_ipAddress"], "203.0.113.9");
        assert_eq!(alert["endsAt"], "2026-11-25T10:15:00Z");
        assert_eq!(alert["fingerprint"], "3fa19c0d2b7e4a11");
        assert_eq!(alert["annotations"]["idempotency_key"], a.idempotency_key);
        let firing = alertmanager_receiver(&sample_alert(Status::Firing, "2026-11-25T10:15:00Z"));
        assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(label_name("9lives.x"), "_9lives_x");
    }

    #[test]
    fn slack_message_has_text_and_blocks() {
        let v = slack(&sample_alert(Status::Firing, "2026-11-25T10:15:00Z"));
        assert!(v["text"].as_str().unwrap().contains("FIRING"));
        assert_eq!(v["blocks"][0]["type"], "header");
        assert!(v["blocks"][2]["fields"].as_array().unwrap().len() <= 10);
    }

    #[test]
    fn email_reads_top_down() {
        let e = email(&sample_alert(Status::Firing, "2026-11-25T10:15:00Z"));
        assert!(e.starts_with("Failed sign-ins spiked"), "{e}");
        assert!(
            e.contains("Idempotency key 3fa19c0d2b7e4a11-firing-20261125T101500Z"),
            "{e}"
        );
    }
}
