//! `alertmanager` sink: authpulse as an alert *source* for a Prometheus Alertmanager, the
//! way Prometheus itself feeds one: `POST <url>/api/v2/alerts` with a JSON list of
//! `{labels, annotations, startsAt, endsAt, generatorURL}`. Alertmanager then groups,
//! routes, silences and inhibits authpulse's alerts like any other. (The webhook format
//! `alertmanager_receiver` is the other direction: the payload Alertmanager *sends*.)
//!
//! - **labels** (an alert's identity in Alertmanager): `alertname`
//!   (`authpulse_<detector>`), `rule`, `detector`, `severity`, `kind`, and the series
//!   labels, with names made valid (`client.ipAddress` → `client_ipAddress`; one that
//!   would clash with the names above gets a `series_` prefix). An incident keeps the
//!   labels of its first notice to this sink: a repeat or resolve whose bin has another
//!   severity must update that alert, not start a second one.
//! - **annotations**: `summary` (a one-line headline), `description` (the alert's
//!   sentence), `investigate` (the Logs Insights query), `kind_reason`, and `console_url`
//!   when the alert is enriched.
//! - **startsAt** is the incident's start (`started_at`). While firing, **endsAt** lies
//!   four `resend_interval`s ahead, and the sink posts every firing alert it knows again
//!   each `resend_interval` (default 1 min), as Prometheus does: Alertmanager resolves an
//!   alert whose `endsAt` passes, so one that nobody refreshes ends by itself. A
//!   `resolved` notice posts **endsAt** = the start of the bin found back to normal,
//!   which resolves it at once; the sink then stops re-sending it.
//! - **generatorURL** is the daemon's status page: `generator_url`, or else
//!   `http://<daemon.http_listen>/` unless the daemon listens on all interfaces
//!   (0.0.0.0 or [::], no address to link to): then it is left out.
//!
//! Re-sending across a restart: the sink keeps no file of its own. When the daemon
//! starts, the delivery hands it the incidents the alert state (`alert-state.json`)
//! records as firing, and it re-posts them at once and then every `resend_interval`. What
//! a restart can lose: if the daemon stays down longer than four `resend_interval`s,
//! Alertmanager resolves those alerts meanwhile (and tells receivers with
//! `send_resolved`); the re-post after the start opens them again, and Alertmanager
//! notifies again. A firing notice still in the outbox at the restart is posted by the
//! re-send first and by the outbox after: the same alert, so Alertmanager merges them.
//!
//! Re-sends go straight to Alertmanager, not through the outbox: a failed one is logged
//! and counted (`authpulse_alertmanager_resend_failures_total{sink}`) and the next one
//! follows an interval later. A re-send and the sink's notices take turns (one lock), so
//! a re-send never lands after the resolve it preceded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Map, Value};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use super::render;
use super::route::SinkRoute;
use super::spec::{read_retry, read_timeout};
use super::webhook::{classify_status, error_text};
use super::Sink;
use crate::alert::{Alert, Status};
use crate::config_reader::{Problems, Table};
use crate::retry::{BoxFuture, RemoteError, RetryPolicy};

/// `endsAt` of a firing alert lies this many `resend_interval`s ahead (Prometheus uses 4).
pub const ENDS_AFTER_RESENDS: u32 = 4;
const API_PATH: &str = "api/v2/alerts";

/// A validated `kind = "alertmanager"` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerSpec {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    /// `generatorURL`; `None` leaves it out.
    pub generator_url: Option<String>,
    /// `generator_url` was not given: derive it from `daemon.http_listen`.
    pub generator_url_from_daemon: bool,
    pub resend_interval: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

fn http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && reqwest::Url::parse(s).is_ok()
}

impl AlertmanagerSpec {
    pub(super) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<AlertmanagerSpec> {
        let (generator_url, generator_url_from_daemon) = match t.string("generator_url", problems) {
            None => (None, true),
            Some(u) if u.is_empty() => (None, false),
            Some(u) if http_url(&u) => (Some(u), false),
            Some(u) => {
                problems.push(
                    t.key_path("generator_url"),
                    format!(
                        "{u:?} is not an http:// or https:// URL (\"\" leaves generatorURL out)"
                    ),
                );
                (None, false)
            }
        };
        let resend_interval = match t.duration("resend_interval", problems) {
            Some(d) if d < Duration::from_secs(1) => {
                problems.push(t.key_path("resend_interval"), "must be at least 1s");
                None
            }
            other => other,
        }
        .unwrap_or(Duration::from_secs(60));
        let timeout = read_timeout(t, problems);
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("url", problems) {
            Some(u) if http_url(&u) && u.trim_end_matches('/').ends_with("/api/v2/alerts") => {
                problems.push(
                    t.key_path("url"),
                    "give Alertmanager's base URL, such as \"http://127.0.0.1:9093\": /api/v2/alerts is added",
                );
                None
            }
            Some(u) if http_url(&u) => Some(AlertmanagerSpec {
                url: u,
                generator_url,
                generator_url_from_daemon,
                resend_interval,
                timeout,
                retry,
                route,
            }),
            Some(u) => {
                problems.push(
                    t.key_path("url"),
                    format!(
                        "{u:?} is not an http:// or https:// URL such as \"http://127.0.0.1:9093\""
                    ),
                );
                None
            }
            None => {
                problems.push(
                    t.key_path("url"),
                    "is required for an alertmanager sink: Alertmanager's base URL, such as \"http://127.0.0.1:9093\"",
                );
                None
            }
        }
    }

    /// Fill in `generator_url` from the daemon's HTTP address when it was not given.
    pub fn derive_generator_url(&mut self, http_listen: std::net::SocketAddr) {
        if self.generator_url_from_daemon {
            self.generator_url =
                (!http_listen.ip().is_unspecified()).then(|| format!("http://{http_listen}/"));
        }
    }

    /// `<url>/api/v2/alerts`, keeping a path prefix (`http://host/alertmanager`).
    fn endpoint(&self) -> Result<reqwest::Url, RemoteError> {
        let mut url = reqwest::Url::parse(&self.url)
            .map_err(|e| RemoteError::Permanent(format!("bad Alertmanager URL: {e}")))?;
        let path = format!("{}/{API_PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Ok(url)
    }
}

fn label_name_taken(name: &str) -> bool {
    ["alertname", "rule", "detector", "severity", "kind"].contains(&name)
}

/// The labels that identify `alert` in Alertmanager.
pub fn labels(alert: &Alert) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert(
        "alertname".into(),
        json!(format!("authpulse_{}", alert.detector)),
    );
    labels.insert("rule".into(), json!(alert.rule));
    labels.insert("detector".into(), json!(alert.detector));
    labels.insert("severity".into(), json!(alert.severity.to_string()));
    labels.insert("kind".into(), json!(alert.kind));
    for (k, v) in &alert.series {
        if v.is_empty() {
            continue;
        }
        let mut name = render::label_name(k);
        if label_name_taken(&name) || name.starts_with("__") {
            name = format!("series_{}", name.trim_start_matches('_'));
        }
        labels.insert(name, json!(v));
    }
    labels
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One postable alert. `ends_at` is used for a firing alert; a resolved one ends at its
/// bin's start.
pub fn postable(
    alert: &Alert,
    labels: &Map<String, Value>,
    firing_ends_at: DateTime<Utc>,
    generator_url: Option<&str>,
) -> Value {
    let mut annotations = Map::new();
    annotations.insert("summary".into(), json!(render::brief(alert)));
    annotations.insert("description".into(), json!(alert.summary));
    annotations.insert("investigate".into(), json!(alert.investigate));
    if !alert.kind_reason.is_empty() {
        annotations.insert("kind_reason".into(), json!(alert.kind_reason));
    }
    if let Some(e) = &alert.enrichment {
        annotations.insert("console_url".into(), json!(e.console_url));
    }
    let starts = DateTime::from_timestamp_millis(alert.started_at.ms());
    let ends_at = match alert.status {
        Status::Firing => firing_ends_at,
        // Never before startsAt: Alertmanager refuses that.
        Status::Resolved => match (
            DateTime::from_timestamp_millis(alert.bin_start.ms()),
            starts,
        ) {
            (Some(end), Some(start)) => end.max(start),
            (Some(end), None) => end,
            (None, _) => Utc::now(),
        },
    };
    let mut v = Map::new();
    v.insert("labels".into(), Value::Object(labels.clone()));
    v.insert("annotations".into(), Value::Object(annotations));
    if let Some(s) = starts {
        v.insert("startsAt".into(), json!(rfc3339(s)));
    }
    v.insert("endsAt".into(), json!(rfc3339(ends_at)));
    if let Some(g) = generator_url {
        v.insert("generatorURL".into(), json!(g));
    }
    Value::Object(v)
}

/// What the sink re-sends for one incident.
struct Firing {
    labels: Map<String, Value>,
    alert: Alert,
}

struct Shared {
    name: String,
    endpoint: reqwest::Url,
    generator_url: Option<String>,
    resend: Duration,
    client: reqwest::Client,
    /// Fingerprint → the incident as last sent. Held across every POST.
    firing: Mutex<BTreeMap<String, Firing>>,
    /// Re-send now (after a restart).
    wake: Notify,
}

impl Shared {
    fn firing_ends_at(&self) -> DateTime<Utc> {
        let ahead = self.resend.saturating_mul(ENDS_AFTER_RESENDS);
        Utc::now() + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::minutes(4))
    }

    async fn post(&self, alerts: &[Value]) -> Result<(), RemoteError> {
        let body = serde_json::to_vec(alerts)
            .map_err(|e| RemoteError::Permanent(format!("cannot encode the alerts: {e}")))?;
        let resp = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RemoteError::Transient(error_text(e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let why: String = resp
            .text()
            .await
            .unwrap_or_default()
            .trim()
            .chars()
            .take(300)
            .collect();
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        match classify_status(status) {
            Ok(()) => Ok(()),
            Err(RemoteError::Transient(s)) => Err(RemoteError::Transient(format!(
                "Alertmanager did not take the alert ({s}){why}"
            ))),
            Err(RemoteError::Permanent(s)) => Err(RemoteError::Permanent(format!(
                "Alertmanager rejected the alert ({s}){why}"
            ))),
        }
    }

    /// Post every firing alert again with a fresh `endsAt`.
    async fn resend(&self) {
        let firing = self.firing.lock().await;
        if firing.is_empty() {
            return;
        }
        let ends_at = self.firing_ends_at();
        let body: Vec<Value> = firing
            .values()
            .map(|f| postable(&f.alert, &f.labels, ends_at, self.generator_url.as_deref()))
            .collect();
        match self.post(&body).await {
            Ok(()) => {
                tracing::debug!(sink = %self.name, alerts = body.len(), "firing alerts re-sent to Alertmanager")
            }
            Err(error) => {
                metrics::counter!("authpulse_alertmanager_resend_failures_total", "sink" => self.name.clone())
                    .increment(1);
                tracing::warn!(sink = %self.name, alerts = body.len(), %error, "cannot re-send firing alerts to Alertmanager; trying again in resend_interval");
            }
        }
    }
}

async fn resend_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.resend);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.wake.notified() => {}
        }
        shared.resend().await;
    }
}

pub struct AlertmanagerSink {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl AlertmanagerSink {
    /// Must run inside the Tokio runtime: it starts the re-send task.
    pub fn new(name: String, spec: &AlertmanagerSpec) -> Result<Self, RemoteError> {
        let client = crate::sink::http_client(spec.timeout)?;
        let shared = Arc::new(Shared {
            name,
            endpoint: spec.endpoint()?,
            generator_url: spec.generator_url.clone(),
            resend: spec.resend_interval,
            client,
            firing: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        });
        let task = tokio::spawn(resend_loop(shared.clone()));
        Ok(AlertmanagerSink { shared, task })
    }
}

impl Drop for AlertmanagerSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink for AlertmanagerSink {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let s = &self.shared;
            let mut firing = s.firing.lock().await;
            let labels = firing
                .get(&alert.fingerprint)
                .map(|f| f.labels.clone())
                .unwrap_or_else(|| labels(alert));
            let one = postable(
                alert,
                &labels,
                s.firing_ends_at(),
                s.generator_url.as_deref(),
            );
            s.post(&[one]).await?;
            match alert.status {
                Status::Firing => {
                    firing.insert(
                        alert.fingerprint.clone(),
                        Firing {
                            labels,
                            alert: alert.clone(),
                        },
                    );
                }
                Status::Resolved => {
                    firing.remove(&alert.fingerprint);
                }
            }
            Ok(())
        })
    }

    fn resume<'a>(&'a self, firing: Vec<Alert>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if firing.is_empty() {
                return;
            }
            let mut known = self.shared.firing.lock().await;
            for alert in firing {
                known
                    .entry(alert.fingerprint.clone())
                    .or_insert_with(|| Firing {
                        labels: labels(&alert),
                        alert,
                    });
            }
            tracing::info!(sink = %self.shared.name, firing = known.len(), "re-sending the incidents still firing to Alertmanager");
            drop(known);
            self.shared.wake.notify_one();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::detect::Severity;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkSpec;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn labels_identify_the_incident_with_valid_names() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.kind = "credential_stuffing".parse().unwrap();
        a.series.insert("severity".into(), "x".into());
        a.series.insert("9.lives".into(), "y".into());
        a.series.insert("__meta".into(), "z".into());
        a.series.insert("empty".into(), String::new());
        let l = labels(&a);
        assert_eq!(l["alertname"], "authpulse_failure_spike");
        assert_eq!(l["rule"], "okta-sign-ins");
        assert_eq!(l["detector"], "failure_spike");
        assert_eq!(l["severity"], "critical");
        assert_eq!(l["kind"], "credential_stuffing");
        assert_eq!(l["client_ipAddress"], "203.0.113.9");
        assert_eq!(l["series_severity"], "x");
        assert_eq!(l["_9_lives"], "y");
        assert_eq!(l["series_meta"], "z");
        assert!(l.get("empty").is_none());
        let valid = |n: &str| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        assert!(l.keys().all(|k| valid(k)), "{l:?}");
    }

    #[test]
    fn firing_ends_ahead_and_resolved_ends_at_its_bin() {
        let mut a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        a.started_at = "2026-11-25T10:00:00Z".parse().unwrap();
        let l = labels(&a);
        let ahead = at("2026-11-25T10:35:00Z");
        let v = postable(&a, &l, ahead, Some("http://127.0.0.1:9750/"));
        assert_eq!(v["startsAt"], "2026-11-25T10:00:00Z");
        assert_eq!(v["endsAt"], "2026-11-25T10:35:00Z");
        assert_eq!(v["generatorURL"], "http://127.0.0.1:9750/");
        assert_eq!(v["labels"], Value::Object(l.clone()));
        assert!(v["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("okta-sign-ins failure_spike: 412 failed sign-ins"));
        assert_eq!(v["annotations"]["description"], a.summary);
        assert_eq!(v["annotations"]["investigate"], a.investigate);

        let mut r = sample_alert(Status::Resolved, "2026-11-25T11:30:00Z");
        r.started_at = a.started_at;
        r.severity = Severity::Warning;
        let v = postable(&r, &l, ahead, None);
        assert_eq!(v["endsAt"], "2026-11-25T11:30:00Z");
        assert_eq!(v["labels"]["severity"], "critical", "the incident's labels");
        assert!(v.get("generatorURL").is_none());
        // A resolve is never dated before its incident's start.
        r.bin_start = "2026-11-25T09:00:00Z".parse().unwrap();
        assert_eq!(
            postable(&r, &l, ahead, None)["endsAt"],
            "2026-11-25T10:00:00Z"
        );
    }

    #[test]
    fn config_is_read_and_the_generator_url_derived() {
        let c = from_toml(
            r#"
            [daemon]
            http_listen = "10.0.0.5:9750"
            [[sinks]]
            kind = "alertmanager"
            url = "http://127.0.0.1:9093/prefix/"
            resend_interval = "30s"
            route = { min_severity = "warning" }
            [[sinks]]
            kind = "alertmanager"
            url = "https://am.example.com"
            generator_url = "https://authpulse.example.com/"
            [[sinks]]
            kind = "alertmanager"
            url = "https://am.example.com"
            generator_url = ""
            "#,
        )
        .unwrap();
        let am = |i: usize| match &c.sinks[i] {
            SinkSpec::Alertmanager(a) => a.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            am(0).generator_url.as_deref(),
            Some("http://10.0.0.5:9750/")
        );
        assert_eq!(am(0).resend_interval, Duration::from_secs(30));
        assert_eq!(
            am(0).endpoint().unwrap().as_str(),
            "http://127.0.0.1:9093/prefix/api/v2/alerts"
        );
        assert_eq!(am(0).route.min_severity, Some(Severity::Warning));
        assert_eq!(
            am(1).generator_url.as_deref(),
            Some("https://authpulse.example.com/")
        );
        assert_eq!(
            am(1).endpoint().unwrap().as_str(),
            "https://am.example.com/api/v2/alerts"
        );
        assert_eq!(am(2).generator_url, None);

        let c = from_toml(
            "[daemon]\nhttp_listen = \"0.0.0.0:9750\"\n[[sinks]]\nkind = \"alertmanager\"\nurl = \"http://am:9093\"\n",
        )
        .unwrap();
        let SinkSpec::Alertmanager(a) = &c.sinks[0] else {
            panic!()
        };
        assert_eq!(a.generator_url, None, "0.0.0.0 is no address to link to");
        assert_eq!(a.resend_interval, Duration::from_secs(60));
    }

    #[test]
    fn bad_config_names_the_key() {
        let problems = |toml: &str| -> Vec<String> {
            match from_toml(toml) {
                Ok(_) => Vec::new(),
                Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
            }
        };
        let p = problems("[[sinks]]\nkind = \"alertmanager\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("sinks[0].url: is required for an alertmanager sink"));
        let p = problems(
            "[[sinks]]\nkind = \"alertmanager\"\nurl = \"http://am:9093/api/v2/alerts\"\nresend_interval = \"10ms\"\ngenerator_url = \"status page\"\n",
        );
        for want in [
            "sinks[0].url: give Alertmanager's base URL",
            "sinks[0].resend_interval: must be at least 1s",
            "sinks[0].generator_url: \"status page\" is not an http:// or https:// URL",
        ] {
            assert!(p.iter().any(|l| l.starts_with(want)), "{want:?} in {p:#?}");
        }
    }
}
