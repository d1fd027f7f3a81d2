//! Routing: which alerts one sink gets, from its optional `route` table.
//!
//! ```toml
//! [[sinks]]
//! kind = "pagerduty"
//! routing_key_env = "AUTHPULSE_PAGERDUTY_KEY"
//! [sinks.route]                      # or: route = { min_severity = "critical" }
//! min_severity = "critical"          # info, warning or critical
//! rules = ["okta-sign-ins"]          # any of these rules (all when absent)
//! detectors = ["failure_spike"]      # any of these detectors
//! kinds = ["credential_stuffing"]    # any of these kinds
//! statuses = ["firing", "resolved"]  # firing and/or resolved
//! ```
//!
//! Every key present must match (a list matches when the alert's value is in it); a sink
//! without `route` gets every alert. Routing is decided when a notification is queued,
//! so it never changes what is already in a sink's outbox.
//!
//! `min_severity` judges `firing` notices only: a `resolved` notice carries the severity
//! of the bin that was back to normal, not the incident's, so a "critical only" sink
//! would otherwise never hear that its critical incident ended (a PagerDuty incident
//! would stay open). Rules, detectors and kinds are the same for every notice of an
//! incident, so they route its resolve along with its page. The price: a severity-routed
//! sink also receives resolves of incidents that never reached its severity. PagerDuty
//! drops a resolve for a `dedup_key` it has no open alert for, and Alertmanager does not
//! notify about an alert it never saw firing; a chat webhook shows a stray "resolved"
//! (use `statuses = ["firing"]` there if that bothers).

use serde_json::Value;

use crate::alert::{Alert, Status};
use crate::alert_kind::AlertKind;
use crate::config_reader::{Problems, Table};
use crate::detect::{DetectorKind, Severity};

/// Every kind an alert can have (see [`crate::kind`]).
const KINDS: [AlertKind; 8] = [
    AlertKind::CredentialStuffing,
    AlertKind::PasswordSpraying,
    AlertKind::BruteForce,
    AlertKind::MfaPushFatigue,
    AlertKind::Outage,
    AlertKind::PipelineGap,
    AlertKind::TrafficSurge,
    AlertKind::SourceUnavailable,
];

/// One sink's filter. The default (all fields empty) lets everything through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkRoute {
    pub min_severity: Option<Severity>,
    pub rules: Vec<String>,
    pub detectors: Vec<String>,
    pub kinds: Vec<String>,
    pub statuses: Vec<Status>,
}

fn severity(s: &str) -> Option<Severity> {
    match s {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

impl SinkRoute {
    /// Does this sink get `alert`? Pure: the same alert always routes the same way.
    pub fn matches(&self, alert: &Alert) -> bool {
        let listed =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|x| x == value);
        let severe_enough = match (self.min_severity, alert.status) {
            (None, _) | (Some(_), Status::Resolved) => true,
            (Some(min), Status::Firing) => alert.severity >= min,
        };
        severe_enough
            && listed(&self.rules, &alert.rule)
            && listed(&self.detectors, alert.detector.name())
            && listed(&self.kinds, alert.kind.as_str())
            && (self.statuses.is_empty() || self.statuses.contains(&alert.status))
    }

    pub fn is_everything(&self) -> bool {
        *self == SinkRoute::default()
    }

    /// Read the `route` key of a sink table (absent: everything).
    pub fn read(sink: &mut Table<'_>, problems: &mut Problems) -> SinkRoute {
        let raw = sink.raw("route");
        let mut route = SinkRoute::default();
        if raw.is_none() {
            return route;
        }
        let mut t = Table::new(sink.key_path("route"), raw, problems);
        if let Some(s) = t.string("min_severity", problems) {
            match severity(&s) {
                Some(sev) => route.min_severity = Some(sev),
                None => problems.push(
                    t.key_path("min_severity"),
                    format!("{s:?} is not one of \"info\", \"warning\", \"critical\""),
                ),
            }
        }
        route.rules = t.strings("rules", problems).unwrap_or_default();
        route.detectors = t.strings("detectors", problems).unwrap_or_default();
        for d in &route.detectors {
            if DetectorKind::from_name(d).is_none() && d != crate::alert::SOURCE_UNAVAILABLE {
                let known: Vec<&str> = DetectorKind::ALL.iter().map(|k| k.name()).collect();
                problems.push(
                    t.key_path("detectors"),
                    format!(
                        "{d:?} is not a detector (known: {}, {})",
                        known.join(", "),
                        crate::alert::SOURCE_UNAVAILABLE
                    ),
                );
            }
        }
        route.kinds = t.strings("kinds", problems).unwrap_or_default();
        for k in &route.kinds {
            if !KINDS.iter().any(|x| x.as_str() == k) {
                let known: Vec<&str> = KINDS.iter().map(|x| x.as_str()).collect();
                problems.push(
                    t.key_path("kinds"),
                    format!("{k:?} is not a kind (known: {})", known.join(", ")),
                );
            }
        }
        for s in t.strings("statuses", problems).unwrap_or_default() {
            match s.as_str() {
                "firing" => route.statuses.push(Status::Firing),
                "resolved" => route.statuses.push(Status::Resolved),
                other => problems.push(
                    t.key_path("statuses"),
                    format!("{other:?} is not one of \"firing\", \"resolved\""),
                ),
            }
        }
        if matches!(raw, Some(Value::Object(m)) if m.is_empty()) {
            problems.push(
                t.path.clone(),
                "is empty: remove it to send every alert to this sink",
            );
        }
        t.finish(problems);
        route
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkSpec;

    fn alert(status: Status, severity: Severity, detector: &str, kind: &str) -> Alert {
        let mut a = sample_alert(status, "2026-11-25T10:15:00Z");
        a.severity = severity;
        a.detector = detector.parse().unwrap();
        a.kind = kind.parse().unwrap();
        a
    }

    #[test]
    fn an_empty_route_matches_everything() {
        let r = SinkRoute::default();
        assert!(r.is_everything());
        for s in [Status::Firing, Status::Resolved] {
            for sev in [Severity::Info, Severity::Warning, Severity::Critical] {
                assert!(r.matches(&alert(s, sev, "volume_drop", "outage")));
            }
        }
    }

    #[test]
    fn min_severity_judges_pages_and_lets_their_resolves_through() {
        let r = SinkRoute {
            min_severity: Some(Severity::Critical),
            ..SinkRoute::default()
        };
        let crit = alert(
            Status::Firing,
            Severity::Critical,
            "failure_spike",
            "credential_stuffing",
        );
        let warn = alert(
            Status::Firing,
            Severity::Warning,
            "failure_spike",
            "credential_stuffing",
        );
        assert!(r.matches(&crit));
        assert!(!r.matches(&warn));
        // The resolve of a critical page carries the normal bin's (lower) severity.
        assert!(r.matches(&alert(
            Status::Resolved,
            Severity::Info,
            "failure_spike",
            "credential_stuffing"
        )));
        let r = SinkRoute {
            min_severity: Some(Severity::Warning),
            ..SinkRoute::default()
        };
        assert!(r.matches(&warn));
        assert!(!r.matches(&alert(
            Status::Firing,
            Severity::Info,
            "flatline",
            "pipeline_gap"
        )));
    }

    #[test]
    fn every_listed_key_must_match() {
        let r = SinkRoute {
            min_severity: None,
            rules: vec!["okta-sign-ins".into()],
            detectors: vec!["failure_spike".into(), "distinct_users".into()],
            kinds: vec!["credential_stuffing".into()],
            statuses: vec![Status::Firing],
        };
        let hit = alert(
            Status::Firing,
            Severity::Warning,
            "distinct_users",
            "credential_stuffing",
        );
        assert!(r.matches(&hit));
        let mut other_rule = hit.clone();
        other_rule.rule = "vpn".into();
        assert!(!r.matches(&other_rule));
        assert!(!r.matches(&alert(
            Status::Firing,
            Severity::Warning,
            "volume_drop",
            "credential_stuffing"
        )));
        assert!(!r.matches(&alert(
            Status::Firing,
            Severity::Warning,
            "failure_spike",
            "outage"
        )));
        assert!(!r.matches(&alert(
            Status::Resolved,
            Severity::Warning,
            "failure_spike",
            "credential_stuffing"
        )));
    }

    #[test]
    fn routes_are_read_from_a_sub_table_or_inline() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "stdout"
            [sinks.route]
            min_severity = "critical"
            rules = "okta-sign-ins"
            statuses = ["firing", "resolved"]

            [[sinks]]
            kind = "file"
            path = "/tmp/x.jsonl"
            route = { detectors = ["failure_spike", "source_unavailable"], kinds = ["outage"] }

            [[sinks]]
            kind = "stdout"
            "#,
        )
        .unwrap();
        assert_eq!(
            c.sinks[0].route(),
            &SinkRoute {
                min_severity: Some(Severity::Critical),
                rules: vec!["okta-sign-ins".into()],
                statuses: vec![Status::Firing, Status::Resolved],
                ..SinkRoute::default()
            }
        );
        assert_eq!(
            c.sinks[1].route().detectors,
            vec!["failure_spike", "source_unavailable"]
        );
        assert_eq!(c.sinks[1].route().kinds, vec!["outage"]);
        assert!(c.sinks[2].route().is_everything());
        assert!(matches!(c.sinks[2], SinkSpec::Stdout { .. }));
    }

    #[test]
    fn bad_routes_name_the_key() {
        let problems = |toml: &str| -> Vec<String> {
            match from_toml(toml) {
                Ok(_) => Vec::new(),
                Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
            }
        };
        let p = problems(
            r#"
            [[sinks]]
            kind = "stdout"
            [sinks.route]
            min_severity = "error"
            detectors = ["failure_spike", "spikes"]
            kinds = ["phishing"]
            statuses = ["open"]
            severity = "critical"
            "#,
        );
        let expect = [
            "sinks[0].route.min_severity: \"error\" is not one of \"info\", \"warning\", \"critical\"",
            "sinks[0].route.detectors: \"spikes\" is not a detector",
            "sinks[0].route.kinds: \"phishing\" is not a kind",
            "sinks[0].route.statuses: \"open\" is not one of",
            "sinks[0].route.severity: unknown key",
        ];
        for e in expect {
            assert!(
                p.iter().any(|l| l.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
        let p = problems("[[sinks]]\nkind = \"stdout\"\nroute = \"critical\"\n");
        assert_eq!(p, vec!["sinks[0].route: expected a table, found a string"]);
        let p = problems("[[sinks]]\nkind = \"stdout\"\nroute = {}\n");
        assert_eq!(
            p,
            vec!["sinks[0].route: is empty: remove it to send every alert to this sink"]
        );
    }
}
