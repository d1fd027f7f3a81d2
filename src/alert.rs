//! The alert: the one JSON document every sink receives.
//!
//! Field names are a contract (documented in the README): later versions add fields but
//! never rename these. Every alert says what was seen (`observed`), what was expected
//! (`expected`, with the normal band `lower`..`upper`), how unlikely it is (`p_value`),
//! and where to look (`investigate`: a Logs Insights query over the anomalous window).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert_kind::{AlertKind, Verdict};
use crate::detect::{DetectorKind, Finding, Severity};
use crate::rule::RuleSpec;
use crate::series::Labels;
use crate::stats::one_in;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub status: Status,
    pub rule: String,
    pub detector: AlertDetector,
    pub series: Labels,
    /// The bin this notification is about (RFC 3339, UTC).
    pub bin_start: Timestamp,
    pub bin_end: Timestamp,
    pub observed: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    pub p_value: f64,
    pub severity: Severity,
    /// Stable per rule + detector + series: the identity of an incident's alert.
    pub fingerprint: String,
    /// One sentence a human reads at 3 a.m.
    pub summary: String,
    /// What `observed` counts: "failed sign-ins", "failure share", ...
    pub measure: String,
    /// When `observed` and `expected` add up a sliding window of bins rather than one
    /// bin: how long it is ("1h 30m"), ending with this alert's bin. Absent for one bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The start of that window (RFC 3339, UTC): where the evidence of this notification
    /// begins. Absent for one bin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Timestamp>,
    /// Start of the first anomalous bin of this incident.
    pub started_at: Timestamp,
    /// A Logs Insights query over the anomalous window: paste it into the console.
    pub investigate: String,
    /// `fingerprint-status-bin_start`: the same notification always carries the same key,
    /// so a receiver can drop repeats (delivery is at-least-once).
    #[serde(default)]
    pub idempotency_key: String,
    /// What this most likely is: `credential_stuffing`, `password_spraying`,
    /// `brute_force`, `mfa_push_fatigue`, `outage`, `pipeline_gap`, `traffic_surge` or
    /// `source_unavailable` (see `kind`).
    pub kind: AlertKind,
    /// Why that kind, from the bin's signals, in one sentence.
    #[serde(default)]
    pub kind_reason: String,
    /// Who is behind a failure-type alert (CloudWatch source only): the top source IPs,
    /// users, countries and failure reasons in the anomalous bin, and a console link.
    /// Absent when not enriched (other sources, other detectors, or the follow-up query
    /// failed or was too slow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<Enrichment>,
}

/// One value and how many failed sign-ins it had in the bin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopValue {
    pub value: String,
    pub count: u64,
}

/// The follow-up Logs Insights query's answer for an alert (see `sink::enrich`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrichment {
    pub top_ips: Vec<TopValue>,
    pub top_users: Vec<TopValue>,
    pub top_countries: Vec<TopValue>,
    pub top_reasons: Vec<TopValue>,
    /// CloudWatch Logs Insights console, the rule's query over the incident's window.
    pub console_url: String,
}

/// The stable identity of an alert: rule, detector and series labels.
pub fn fingerprint(rule: &str, detector: &str, labels: &Labels) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(detector.as_bytes());
    for (k, v) in labels {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Which detector raised an alert: one of the pipeline's, or authpulse's own
/// `source_unavailable` (it cannot read its source). On the wire, its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertDetector {
    Pipeline(DetectorKind),
    SourceUnavailable,
}

impl AlertDetector {
    pub fn name(self) -> &'static str {
        match self {
            AlertDetector::Pipeline(d) => d.name(),
            AlertDetector::SourceUnavailable => SOURCE_UNAVAILABLE,
        }
    }

    pub fn from_name(name: &str) -> Option<AlertDetector> {
        match name {
            SOURCE_UNAVAILABLE => Some(AlertDetector::SourceUnavailable),
            _ => DetectorKind::from_name(name).map(AlertDetector::Pipeline),
        }
    }

    /// The pipeline's detector, if it was one.
    pub fn pipeline(self) -> Option<DetectorKind> {
        match self {
            AlertDetector::Pipeline(d) => Some(d),
            AlertDetector::SourceUnavailable => None,
        }
    }
}

impl std::fmt::Display for AlertDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AlertDetector {
    type Err = String;

    fn from_str(name: &str) -> Result<AlertDetector, String> {
        AlertDetector::from_name(name).ok_or_else(|| format!("unknown detector {name:?}"))
    }
}

impl PartialEq<str> for AlertDetector {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for AlertDetector {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Serialize for AlertDetector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for AlertDetector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AlertDetector, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A moment of an alert: milliseconds in memory (whole seconds), RFC 3339 UTC on the
/// wire (`2026-11-25T10:15:00Z`), as the README documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The second `ms` falls in (the wire has no fractions).
    pub fn from_ms(ms: i64) -> Timestamp {
        Timestamp(ms.div_euclid(1000) * 1000)
    }

    pub fn ms(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Timestamp, String> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| Timestamp::from_ms(t.timestamp_millis()))
            .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Everything needed to write an alert for one bin.
pub struct AlertInput<'a> {
    pub status: Status,
    pub rule: &'a RuleSpec,
    pub detector: DetectorKind,
    pub labels: &'a Labels,
    pub bin_start_ms: i64,
    pub started_ms: i64,
    pub finding: &'a Finding,
    pub verdict: &'a Verdict,
}

impl Alert {
    pub fn new(input: AlertInput<'_>) -> Alert {
        let AlertInput {
            status,
            rule,
            detector,
            labels,
            bin_start_ms,
            started_ms,
            finding: f,
            verdict,
        } = input;
        let bin_end_ms = bin_start_ms + rule.bin_ms();
        Alert {
            status,
            rule: rule.name.clone(),
            detector: AlertDetector::Pipeline(detector),
            series: labels.clone(),
            bin_start: Timestamp::from_ms(bin_start_ms),
            bin_end: Timestamp::from_ms(bin_end_ms),
            observed: round(f.observed),
            expected: round(f.expected),
            lower: round(f.lower),
            upper: round(f.upper),
            p_value: f.p_value,
            severity: f.severity,
            fingerprint: fingerprint(&rule.name, detector.name(), labels),
            summary: summary(status, rule, detector, labels, bin_start_ms, f, verdict),
            measure: f.measure.to_string(),
            window: (f.window_bins > 1).then(|| window_literal(rule, f.window_bins)),
            window_start: (f.window_bins > 1)
                .then(|| Timestamp::from_ms(bin_end_ms - i64::from(f.window_bins) * rule.bin_ms())),
            started_at: Timestamp::from_ms(started_ms),
            investigate: investigate_query(rule, labels),
            idempotency_key: String::new(),
            kind: verdict.kind,
            kind_reason: verdict.reason.clone(),
            enrichment: None,
        }
        .with_idempotency_key()
    }

    /// Fill in `idempotency_key` from the fingerprint, status and bin.
    pub fn with_idempotency_key(mut self) -> Alert {
        self.idempotency_key = idempotency_key(&self.fingerprint, self.status, self.bin_start.ms());
        self
    }
}

/// The idempotency key of a notification: fingerprint, status and bin, e.g.
/// `3fa19c0d2b7e4a11-firing-20261125T101500Z`. Only `[0-9a-zA-Z-]`, so it is safe in
/// HTTP headers, file names and SNS deduplication ids.
pub fn idempotency_key(fingerprint: &str, status: Status, bin_start_ms: i64) -> String {
    let status = match status {
        Status::Firing => "firing",
        Status::Resolved => "resolved",
    };
    let bin = DateTime::<Utc>::from_timestamp_millis(bin_start_ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ");
    format!("{fingerprint}-{status}-{bin}")
}

fn round(x: f64) -> f64 {
    if x.abs() >= 10.0 {
        (x * 10.0).round() / 10.0
    } else {
        (x * 10_000.0).round() / 10_000.0
    }
}

fn show(x: f64, measure: &str) -> String {
    if measure.contains("share") {
        format!("{:.1}%", x * 100.0)
    } else if x >= 10.0 || x.fract() == 0.0 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// A window of `bins` bins of `rule`, as a person reads it: "1h 30m".
fn window_literal(rule: &RuleSpec, bins: u32) -> String {
    humantime::format_duration(rule.bin * bins).to_string()
}

fn summary(
    status: Status,
    rule: &RuleSpec,
    detector: DetectorKind,
    labels: &Labels,
    bin_start_ms: i64,
    f: &Finding,
    verdict: &Verdict,
) -> String {
    let mut s = String::new();
    let series = series_text(labels);
    let when = DateTime::<Utc>::from_timestamp_millis(bin_start_ms)
        .unwrap_or_default()
        .format("%a %H:%M UTC");
    let bin = rule.bin_literal();
    let (observed, expected) = (show(f.observed, f.measure), show(f.expected, f.measure));
    // A sliding window reads "in the last 1h 30m to the 15m bin at ...".
    let span = if f.window_bins > 1 {
        format!("in the last {} to", window_literal(rule, f.window_bins))
    } else {
        "in".to_string()
    };
    match status {
        Status::Resolved => {
            let _ = write!(
                s,
                "Resolved: {} {}{series} back to normal — {observed} {} in the {bin} bin at {when}, expected about {expected}.",
                rule.name,
                detector.name(),
                f.measure
            );
        }
        Status::Firing => {
            let what = headline(detector, verdict.kind);
            let band = band(detector, f, &expected);
            let _ = write!(
                s,
                "{what}{series} [{}]: {observed} {} {span} the {bin} bin at {when}, expected about {expected} ({band}); chance under normal traffic {}.",
                rule.name,
                f.measure,
                one_in(f.p_value)
            );
            let _ = write!(s, " Likely {}: {}.", verdict.kind, verdict.reason);
        }
    }
    s
}

/// The series a summary names: " for client.ipAddress=203.0.113.9", or nothing.
fn series_text(labels: &Labels) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(" for {}", parts.join(", "))
    }
}

/// What a firing detector means, as the first words of its page.
fn headline(detector: DetectorKind, kind: AlertKind) -> &'static str {
    match detector {
        // A silence that the log stream's other events show is not the pipeline's.
        DetectorKind::Flatline if kind == AlertKind::Outage => {
            "This rule's events stopped while other Okta events still arrive (outage?)"
        }
        DetectorKind::FailureSpike => {
            "Failed sign-ins spiked (credential stuffing or password spraying?)"
        }
        DetectorKind::FailureRatio => {
            "The share of failing sign-ins jumped (an attack hiding in normal traffic?)"
        }
        DetectorKind::SuccessDrop => "Successful sign-ins collapsed (IdP or integration outage?)",
        DetectorKind::VolumeSpike => "Sign-in volume spiked (scripted traffic or a flood?)",
        DetectorKind::Flatline => "No Okta events at all (is the log pipeline broken?)",
        DetectorKind::VolumeDrop => "Sign-in attempts stopped arriving (can people reach Okta?)",
        DetectorKind::DistinctUsers => {
            "One source is failing for many accounts (password spraying?)"
        }
        DetectorKind::FailingSources if kind == AlertKind::Outage => {
            "Many addresses fail without ever succeeding (outage?)"
        }
        DetectorKind::FailingSources => {
            "Many addresses fail without ever succeeding (credential stuffing?)"
        }
        DetectorKind::DistributedSpraying => {
            "Addresses that never succeed try one account after another (slow password spraying?)"
        }
        DetectorKind::PushFatigue => "One user is flooded with MFA pushes (push fatigue attack?)",
    }
}

/// Where a firing detector pages from: its band, in the finding's measure.
fn band(detector: DetectorKind, f: &Finding, expected: &str) -> String {
    match detector {
        DetectorKind::SuccessDrop | DetectorKind::VolumeDrop => {
            format!("normally at least {}", show(f.lower, f.measure))
        }
        DetectorKind::DistinctUsers
        | DetectorKind::PushFatigue
        | DetectorKind::DistributedSpraying => {
            format!("paging from {}", show(f.upper, f.measure))
        }
        DetectorKind::Flatline => format!("about {expected} expected over the silent bins"),
        _ => format!("paging above {}", show(f.upper, f.measure)),
    }
}

/// The detector name of the alert that says the source cannot be read.
pub const SOURCE_UNAVAILABLE: &str = "source_unavailable";

impl Alert {
    /// authpulse is blind: `failures` polls of `rule` in a row failed (or, resolved, the
    /// source answers again). `since_ms` is when the failures started.
    pub fn source_unavailable(
        status: Status,
        rule: &RuleSpec,
        failures: u32,
        since_ms: i64,
        now_ms: i64,
        error: &str,
    ) -> Alert {
        let bin_ms = rule.bin_ms().max(1);
        let bin_start = now_ms.div_euclid(bin_ms) * bin_ms;
        let summary = match status {
            Status::Firing => format!(
                "authpulse cannot read Okta events for rule {} — {failures} polls of CloudWatch Logs Insights in a row failed since {}; sign-in attacks are NOT being watched. Last error: {error}",
                rule.name,
                rfc3339(since_ms)
            ),
            Status::Resolved => format!(
                "authpulse reads Okta events for rule {} again (the source was failing since {}).",
                rule.name,
                rfc3339(since_ms)
            ),
        };
        Alert {
            status,
            rule: rule.name.clone(),
            detector: AlertDetector::SourceUnavailable,
            series: Labels::new(),
            bin_start: Timestamp::from_ms(bin_start),
            bin_end: Timestamp::from_ms(bin_start + bin_ms),
            observed: f64::from(failures),
            expected: 0.0,
            lower: 0.0,
            upper: 0.0,
            p_value: 0.0,
            severity: Severity::Critical,
            fingerprint: fingerprint(&rule.name, SOURCE_UNAVAILABLE, &Labels::new()),
            summary,
            measure: "failed polls in a row".to_string(),
            window: None,
            window_start: None,
            started_at: Timestamp::from_ms(since_ms),
            investigate: "Check the daemon's logs, its IAM permissions (logs:StartQuery, logs:GetQueryResults) and the CloudWatch Logs service health.".to_string(),
            idempotency_key: String::new(),
            kind: AlertKind::SourceUnavailable,
            kind_reason: "authpulse's own queries fail: nothing is known about sign-ins until they succeed again".to_string(),
            enrichment: None,
        }
        .with_idempotency_key()
    }
}

/// The Logs Insights query an operator pastes to see the events behind an alert.
pub fn investigate_query(rule: &RuleSpec, labels: &Labels) -> String {
    let types: Vec<String> = rule.event_types.iter().map(|t| format!("{t:?}")).collect();
    let mut q = format!(
        "fields @timestamp, detail.outcome.result, detail.outcome.reason, detail.actor.alternateId, detail.client.ipAddress, detail.client.geographicalContext.country\n| filter detail.eventType in [{}]",
        types.join(", ")
    );
    for (k, v) in labels {
        let _ = write!(q, " and detail.{k} = {v:?}");
    }
    q.push_str("\n| sort @timestamp desc\n| limit 200");
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            anomalous: true,
            observed: 412.0,
            expected: 23.4,
            lower: 0.0,
            upper: 61.0,
            p_value: 1e-14,
            severity: Severity::Critical,
            measure: "failed sign-ins",
            window_bins: 1,
            evidence_bins: 1,
        }
    }

    #[test]
    fn alert_json_has_the_contract_fields() {
        let rule = RuleSpec::named("okta-sign-ins");
        let labels = Labels::new();
        let f = finding();
        let verdict = Verdict {
            kind: AlertKind::CredentialStuffing,
            reason: "412 failures against 390 accounts from 211 sources".into(),
        };
        let a = Alert::new(AlertInput {
            status: Status::Firing,
            rule: &rule,
            detector: DetectorKind::FailureSpike,
            labels: &labels,
            bin_start_ms: 1_795_601_700_000,
            started_ms: 1_795_601_700_000,
            finding: &f,
            verdict: &verdict,
        });
        let v = serde_json::to_value(&a).unwrap();
        for key in [
            "status",
            "rule",
            "detector",
            "series",
            "bin_start",
            "bin_end",
            "observed",
            "expected",
            "lower",
            "upper",
            "p_value",
            "severity",
            "fingerprint",
            "summary",
            "kind",
            "kind_reason",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["status"], "firing");
        assert_eq!(v["bin_start"], "2026-11-25T10:15:00Z");
        assert_eq!(v["bin_end"], "2026-11-25T10:30:00Z");
        assert_eq!(v["severity"], "critical");
        assert!(a.summary.contains("412 failed sign-ins"), "{}", a.summary);
        assert!(a.summary.contains("expected about 23"), "{}", a.summary);
        assert!(a.summary.contains("1 in 10^14"), "{}", a.summary);
        assert!(
            a.summary
                .contains("Likely credential_stuffing: 412 failures"),
            "{}",
            a.summary
        );
        assert_eq!(v["kind"], "credential_stuffing");
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let mut a = Labels::new();
        a.insert("client.ipAddress".into(), "1.2.3.4".into());
        let f1 = fingerprint("r", "failure_spike", &a);
        assert_eq!(f1, fingerprint("r", "failure_spike", &a));
        assert_ne!(f1, fingerprint("r", "volume_spike", &a));
        assert_ne!(f1, fingerprint("r", "failure_spike", &Labels::new()));
        assert_eq!(f1.len(), 16);
    }
}
