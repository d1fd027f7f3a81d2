//! `[[sinks]]`: each sink's validated table ([`SinkSpec`]), read with every problem
//! named by its key path, and built into a [`Sink`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    AlertmanagerSink, AlertmanagerSpec, FileSink, PagerDutySink, PagerDutySpec, Redacted,
    SecretSource, Sink, SinkRoute, SlackSink, SlackSpec, SnsSink, StdoutSink, WebhookSink,
};
use crate::clock::SharedClock;
use crate::config_reader::{Problems, Table};
use crate::retry::{RemoteError, RetryPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The alert JSON itself.
    Json,
    /// A Slack incoming-webhook message (`text` plus Block Kit `blocks`).
    Slack,
    /// The payload Alertmanager *sends* to its webhook receivers (version 4), so
    /// receivers built for Alertmanager accept authpulse directly. (To feed an
    /// Alertmanager, use the `alertmanager` sink kind.)
    AlertmanagerReceiver,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub url: Redacted,
    pub timeout: Duration,
    pub format: WebhookFormat,
    /// HMAC-SHA256 key (`secret` or `secret_env`).
    pub secret: Option<SecretSource>,
    /// Extra headers: `headers` (inline values) and `headers_env` (values from the
    /// environment), in config order.
    pub headers: Vec<(String, SecretSource)>,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnsSpec {
    pub topic_arn: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Per attempt, including the SDK's own retries.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
}

/// A validated `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSpec {
    Stdout {
        route: SinkRoute,
    },
    File {
        path: PathBuf,
        retry: RetryPolicy,
        route: SinkRoute,
    },
    Webhook(WebhookSpec),
    Sns(SnsSpec),
    PagerDuty(PagerDutySpec),
    Alertmanager(AlertmanagerSpec),
    /// A Slack bot (Web API) that keeps one message per incident current.
    Slack(SlackSpec),
}

/// A webhook's `format` (the old name `alertmanager` is refused with a pointer).
fn read_format(t: &mut Table<'_>, problems: &mut Problems) -> WebhookFormat {
    match t.string("format", problems).as_deref() {
        None | Some("json") => WebhookFormat::Json,
        Some("slack") => WebhookFormat::Slack,
        Some("alertmanager_receiver") => WebhookFormat::AlertmanagerReceiver,
        Some("alertmanager") => {
            problems.push(
                t.key_path("format"),
                "\"alertmanager\" was renamed: write format = \"alertmanager_receiver\" for the payload Alertmanager sends to its webhook receivers (what this format always was), or use a sink with kind = \"alertmanager\" to post alerts to an Alertmanager",
            );
            WebhookFormat::AlertmanagerReceiver
        }
        Some(other) => {
            problems.push(
                t.key_path("format"),
                format!("{other:?} is not one of \"json\", \"slack\", \"alertmanager_receiver\""),
            );
            WebhookFormat::Json
        }
    }
}

/// A webhook's HMAC key: `secret` or `secret_env`, not both.
fn read_secret(t: &mut Table<'_>, problems: &mut Problems) -> Option<SecretSource> {
    match (
        t.string("secret", problems),
        t.string("secret_env", problems),
    ) {
        (Some(_), Some(_)) => {
            problems.push(
                t.key_path("secret"),
                "give either secret or secret_env, not both",
            );
            None
        }
        (Some(s), None) if s.is_empty() => {
            problems.push(t.key_path("secret"), "must not be empty");
            None
        }
        (Some(s), None) => Some(SecretSource::Inline(Redacted(s))),
        (None, Some(var)) if var.trim().is_empty() => {
            problems.push(
                t.key_path("secret_env"),
                "must name an environment variable",
            );
            None
        }
        (None, Some(var)) => Some(SecretSource::Env(var)),
        (None, None) => None,
    }
}

pub(super) fn read_retry(t: &mut Table<'_>, problems: &mut Problems) -> RetryPolicy {
    let mut r = RetryPolicy::default();
    if let Some(d) = t.duration("retry_initial", problems) {
        if d.is_zero() {
            problems.push(t.key_path("retry_initial"), "must be greater than 0");
        } else {
            r.initial = d;
        }
    }
    if let Some(d) = t.duration("retry_max", problems) {
        r.max = d;
    }
    if r.max < r.initial {
        problems.push(
            t.key_path("retry_max"),
            format!(
                "must be at least retry_initial ({})",
                humantime::format_duration(r.initial)
            ),
        );
        r.max = r.initial;
    }
    if let Some(d) = t.duration("give_up_after", problems) {
        r.give_up_after = d;
    }
    r
}

/// `headers = { Name = "value" }` or `headers_env = { Name = "ENV_VAR" }`.
fn read_headers(
    t: &mut Table<'_>,
    key: &'static str,
    from_env: bool,
    problems: &mut Problems,
    out: &mut Vec<(String, SecretSource)>,
) {
    let base = t.key_path(key);
    for (name, value) in t.entries(key, problems) {
        let path = crate::config_reader::join(&base, name);
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(&path, "is not a valid HTTP header name");
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if ["content-type", "idempotency-key", "content-length", "host"].contains(&lower.as_str())
            || lower.starts_with("x-authpulse-")
        {
            problems.push(&path, "is set by authpulse itself and cannot be overridden");
            continue;
        }
        match value {
            Value::String(v) if from_env => {
                if v.trim().is_empty() {
                    problems.push(&path, "must name an environment variable");
                } else {
                    out.push((name.to_string(), SecretSource::Env(v.clone())));
                }
            }
            Value::String(v) => {
                if reqwest::header::HeaderValue::from_str(v).is_err() {
                    // Never echo the value: it may be a token.
                    problems.push(&path, "is not a valid HTTP header value");
                } else {
                    out.push((name.to_string(), SecretSource::Inline(Redacted(v.clone()))));
                }
            }
            _ => problems.push(&path, "expected a string"),
        }
    }
}

impl SinkSpec {
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<SinkSpec> {
        let mut t = Table::new(path, Some(value), problems);
        let kind = t.string("kind", problems);
        let spec = match kind.as_deref() {
            Some("stdout") => Some(SinkSpec::Stdout {
                route: SinkRoute::read(&mut t, problems),
            }),
            Some("file") => {
                let retry = read_retry(&mut t, problems);
                let route = SinkRoute::read(&mut t, problems);
                match t.string("path", problems) {
                    Some(p) if !p.trim().is_empty() => Some(SinkSpec::File {
                        path: p.into(),
                        retry,
                        route,
                    }),
                    _ => {
                        problems.push(t.key_path("path"), "is required for a file sink");
                        None
                    }
                }
            }
            Some("webhook") => Self::read_webhook(&mut t, problems),
            Some("sns") => Self::read_sns(&mut t, problems),
            Some("pagerduty") => PagerDutySpec::read(&mut t, problems).map(SinkSpec::PagerDuty),
            Some("alertmanager") => {
                AlertmanagerSpec::read(&mut t, problems).map(SinkSpec::Alertmanager)
            }
            Some("slack") => SlackSpec::read(&mut t, problems).map(SinkSpec::Slack),
            Some(other) => {
                problems.push(
                    t.key_path("kind"),
                    format!("{other:?} is not one of \"stdout\", \"file\", \"webhook\", \"sns\", \"pagerduty\", \"alertmanager\", \"slack\""),
                );
                None
            }
            None => {
                problems.push(
                    t.key_path("kind"),
                    "is required (stdout, file, webhook, sns, pagerduty, alertmanager or slack)",
                );
                None
            }
        };
        if spec.is_some() {
            t.finish(problems);
        }
        spec
    }

    fn read_webhook(t: &mut Table<'_>, problems: &mut Problems) -> Option<SinkSpec> {
        let timeout = match t.duration("timeout", problems) {
            Some(d) if d.is_zero() => {
                problems.push(t.key_path("timeout"), "must be greater than 0");
                None
            }
            other => other,
        }
        .unwrap_or(Duration::from_secs(10));
        let format = read_format(t, problems);
        let secret = read_secret(t, problems);
        let mut headers = Vec::new();
        read_headers(t, "headers", false, problems, &mut headers);
        read_headers(t, "headers_env", true, problems, &mut headers);
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("url", problems) {
            Some(url)
                if (url.starts_with("http://") || url.starts_with("https://"))
                    && reqwest::Url::parse(&url).is_ok() =>
            {
                Some(SinkSpec::Webhook(WebhookSpec {
                    url: Redacted(url),
                    timeout,
                    format,
                    secret,
                    headers,
                    retry,
                    route,
                }))
            }
            // Never echo the URL: it may carry a token.
            Some(_) => {
                problems.push(
                    t.key_path("url"),
                    "must be an http:// or https:// URL (value not shown: it may hold a token)",
                );
                None
            }
            None => {
                problems.push(t.key_path("url"), "is required for a webhook sink");
                None
            }
        }
    }

    fn read_sns(t: &mut Table<'_>, problems: &mut Problems) -> Option<SinkSpec> {
        let region = t.string("region", problems);
        let endpoint_url = t.string("endpoint_url", problems);
        if let Some(u) = &endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                problems.push(
                    t.key_path("endpoint_url"),
                    "must start with http:// or https://",
                );
            }
        }
        let timeout = t
            .duration("timeout", problems)
            .unwrap_or(Duration::from_secs(20));
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        match t.string("topic_arn", problems) {
            Some(arn) if arn.starts_with("arn:") && arn.split(':').count() >= 6 => {
                Some(SinkSpec::Sns(SnsSpec {
                    topic_arn: arn,
                    region,
                    endpoint_url,
                    timeout,
                    retry,
                    route,
                }))
            }
            Some(arn) => {
                problems.push(
                    t.key_path("topic_arn"),
                    format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                );
                None
            }
            None => {
                problems.push(t.key_path("topic_arn"), "is required for an sns sink");
                None
            }
        }
    }

    /// A stdout sink that gets every alert (the default when no sink is configured).
    pub fn stdout() -> SinkSpec {
        SinkSpec::Stdout {
            route: SinkRoute::default(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SinkSpec::Stdout { .. } => "stdout",
            SinkSpec::File { .. } => "file",
            SinkSpec::Webhook(_) => "webhook",
            SinkSpec::Sns(_) => "sns",
            SinkSpec::PagerDuty(_) => "pagerduty",
            SinkSpec::Alertmanager(_) => "alertmanager",
            SinkSpec::Slack(_) => "slack",
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        match self {
            SinkSpec::Stdout { .. } => RetryPolicy::default(),
            SinkSpec::File { retry, .. } => *retry,
            SinkSpec::Webhook(w) => w.retry,
            SinkSpec::Sns(s) => s.retry,
            SinkSpec::PagerDuty(p) => p.retry,
            SinkSpec::Alertmanager(a) => a.retry,
            SinkSpec::Slack(s) => s.retry,
        }
    }

    /// Which alerts this sink gets.
    pub fn route(&self) -> &SinkRoute {
        match self {
            SinkSpec::Stdout { route } | SinkSpec::File { route, .. } => route,
            SinkSpec::Webhook(w) => &w.route,
            SinkSpec::Sns(s) => &s.route,
            SinkSpec::PagerDuty(p) => &p.route,
            SinkSpec::Alertmanager(a) => &a.route,
            SinkSpec::Slack(s) => &s.route,
        }
    }

    /// Defaults that depend on the daemon's `http_listen` (the status page's address).
    pub fn with_http_listen(&mut self, http_listen: std::net::SocketAddr) {
        if let SinkSpec::Alertmanager(a) = self {
            a.derive_generator_url(http_listen);
        }
    }

    /// Where a sink keeps state of its own (`daemon.state_dir`): the Slack messages' ts.
    pub fn with_state_dir(&mut self, state_dir: &std::path::Path) {
        if let SinkSpec::Slack(s) = self {
            s.state_dir = state_dir.to_path_buf();
        }
    }

    /// A stable name for this sink's outbox queue: the kind plus a hash of where it
    /// delivers (so a URL is never written in clear, and reordering `[[sinks]]` keeps
    /// each queue with its destination across restarts), e.g. `webhook-1f0c9a2e`.
    pub fn queue_id(&self) -> String {
        let destination = match self {
            SinkSpec::Stdout { .. } => "stdout".to_string(),
            SinkSpec::File { path, .. } => path.display().to_string(),
            SinkSpec::Webhook(w) => w.url.0.clone(),
            SinkSpec::Sns(s) => s.topic_arn.clone(),
            // The variable's name, not the key: the queue is for this integration.
            SinkSpec::PagerDuty(p) => format!("{}\0{}", p.url, p.routing_key_env),
            SinkSpec::Alertmanager(a) => a.url.clone(),
            // The variable's name, not the token: the queue is for this bot and channel.
            SinkSpec::Slack(s) => format!("{}\0{}\0{}", s.url, s.token_env, s.channel),
        };
        let digest = Sha256::digest(destination.as_bytes());
        format!("{}-{}", self.kind(), hex::encode(&digest[..4]))
    }

    /// Build the sink. `index` names it in logs (`webhook[2]`) and errors (`sinks[2]`).
    /// `clock` stamps a corrupt state file a sink moves aside.
    pub async fn build(
        &self,
        index: usize,
        clock: SharedClock,
    ) -> Result<Arc<dyn Sink>, RemoteError> {
        Ok(match self {
            SinkSpec::Stdout { .. } => Arc::new(StdoutSink::new(format!("stdout[{index}]"))),
            SinkSpec::File { path, .. } => {
                Arc::new(FileSink::open(format!("file[{index}]"), path).await?)
            }
            SinkSpec::Webhook(spec) => Arc::new(WebhookSink::new(
                format!("webhook[{index}]"),
                &format!("sinks[{index}]"),
                spec,
            )?),
            SinkSpec::Sns(spec) => Arc::new(SnsSink::new(format!("sns[{index}]"), spec).await),
            SinkSpec::PagerDuty(spec) => Arc::new(PagerDutySink::new(
                format!("pagerduty[{index}]"),
                &format!("sinks[{index}]"),
                spec,
            )?),
            SinkSpec::Alertmanager(spec) => Arc::new(AlertmanagerSink::new(
                format!("alertmanager[{index}]"),
                spec,
            )?),
            SinkSpec::Slack(spec) => {
                let id = self.queue_id();
                let file_id = id.strip_prefix("slack-").unwrap_or(&id);
                Arc::new(SlackSink::new(
                    format!("slack[{index}]"),
                    &format!("sinks[{index}]"),
                    spec,
                    file_id,
                    clock,
                )?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::sink::*;

    fn problems(toml: &str) -> Vec<String> {
        match from_toml(toml) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn webhook_keys_are_read() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "webhook"
            url = "https://hooks.example.com/T000/secret-token"
            format = "alertmanager_receiver"
            secret_env = "MY_SECRET"
            timeout = "3s"
            retry_initial = "100ms"
            retry_max = "2s"
            give_up_after = "1h"
            headers = { "X-Team" = "security" }
            headers_env = { Authorization = "AUTHPULSE_WEBHOOK_AUTH" }
            "#,
        )
        .unwrap();
        let SinkSpec::Webhook(w) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(w.format, WebhookFormat::AlertmanagerReceiver);
        assert_eq!(w.secret, Some(SecretSource::Env("MY_SECRET".into())));
        assert_eq!(w.timeout, Duration::from_secs(3));
        assert_eq!(w.retry.initial, Duration::from_millis(100));
        assert_eq!(w.retry.max, Duration::from_secs(2));
        assert_eq!(w.headers.len(), 2);
        assert_eq!(
            w.headers[1],
            (
                "Authorization".to_string(),
                SecretSource::Env("AUTHPULSE_WEBHOOK_AUTH".into())
            )
        );
        // Nothing secret in Debug output, which may end up in a log.
        let debug = format!("{:?}", c.sinks);
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(!debug.contains("security"), "{debug}");
    }

    #[test]
    fn webhook_problems_name_their_key_and_hide_values() {
        let p = problems(
            r#"
            [[sinks]]
            kind = "webhook"
            url = "ftp://user:hunter2@example.com"
            format = "teams"
            secret = "a"
            secret_env = "B"
            retry_initial = "10s"
            retry_max = "1s"
            headers = { "Bad Header" = "x", "Content-Type" = "text/plain" }
            colour = "red"
            "#,
        );
        let expect = [
            "sinks[0].format: \"teams\" is not one of",
            "sinks[0].secret: give either secret or secret_env",
            "sinks[0].headers.Bad Header: is not a valid HTTP header name",
            "sinks[0].headers.Content-Type: is set by authpulse itself",
            "sinks[0].retry_max: must be at least retry_initial",
            "sinks[0].url: must be an http:// or https:// URL",
        ];
        for e in expect {
            assert!(
                p.iter().any(|l| l.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert!(p.iter().all(|l| !l.contains("hunter2")), "{p:#?}");
        // `colour` is not reported because the sink itself failed to read; fix the url
        // and it is.
        let p = problems(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\ncolour = \"red\"\n",
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("sinks[0].colour: unknown key")),
            "{p:#?}"
        );
    }

    #[test]
    fn the_old_alertmanager_format_name_points_at_both_new_ones() {
        let p = problems(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\nformat = \"alertmanager\"\n",
        );
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("sinks[0].format: \"alertmanager\" was renamed"),
            "{p:#?}"
        );
        assert!(
            p[0].contains("format = \"alertmanager_receiver\""),
            "{p:#?}"
        );
        assert!(p[0].contains("kind = \"alertmanager\""), "{p:#?}");
        let c = from_toml(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"https://x.example\"\nformat = \"alertmanager_receiver\"\n",
        )
        .unwrap();
        assert!(matches!(
            &c.sinks[0],
            SinkSpec::Webhook(w) if w.format == WebhookFormat::AlertmanagerReceiver
        ));
    }

    /// The commented `[[sinks]]` and `[[mute]]` examples in the example config, as
    /// TOML (each block: from its `# [[...]]` line to the next line not commented).
    fn commented_examples(text: &str) -> (String, usize) {
        let (mut out, mut blocks, mut inside) = (String::new(), 0, false);
        for line in text.lines() {
            if line == "# [[sinks]]" || line == "# [[mute]]" {
                inside = true;
                blocks += 1;
            } else if !line.starts_with('#') {
                inside = false;
            }
            if inside {
                let uncommented = line.strip_prefix("# ").unwrap_or("");
                out.push_str(uncommented);
                out.push('\n');
            }
        }
        (out, blocks)
    }

    #[test]
    fn the_example_configs_commented_sinks_and_mutes_are_valid() {
        let text = include_str!("../../config/authpulse.example.toml");
        let (toml, blocks) = commented_examples(text);
        assert!(blocks >= 7, "{toml}");
        let c = from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let kinds: Vec<&str> = c.sinks.iter().map(SinkSpec::kind).collect();
        assert_eq!(
            kinds,
            [
                "file",
                "webhook",
                "sns",
                "pagerduty",
                "alertmanager",
                "slack"
            ],
            "{toml}"
        );
        assert_eq!(c.sinks.len() + c.mutes.len(), blocks);
        assert!(!c.sinks[3].route().is_everything());
    }

    #[test]
    fn the_readmes_sink_configs_are_valid() {
        let readme = include_str!("../../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .filter(|b| b.contains("[[sinks]]"))
            .collect();
        assert!(blocks.len() >= 2, "{blocks:?}");
        for b in blocks {
            let c = from_toml(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
            assert!(!c.sinks.is_empty());
        }
    }

    #[test]
    fn sns_keys_are_read() {
        let c = from_toml(
            r#"
            [[sinks]]
            kind = "sns"
            topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"
            endpoint_url = "http://127.0.0.1:5055"
            region = "us-east-1"
            "#,
        )
        .unwrap();
        let SinkSpec::Sns(s) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5055"));
        assert_eq!(s.timeout, Duration::from_secs(20));
        let p = problems("[[sinks]]\nkind = \"sns\"\ntopic_arn = \"alerts\"\n");
        assert!(p[0].starts_with("sinks[0].topic_arn: \"alerts\" is not an SNS topic ARN"));
    }

    #[test]
    fn queue_ids_are_stable_and_hide_the_destination() {
        let a = SinkSpec::Webhook(WebhookSpec {
            url: Redacted("https://hooks.example.com/token".into()),
            timeout: Duration::from_secs(1),
            format: WebhookFormat::Json,
            secret: None,
            headers: Vec::new(),
            retry: RetryPolicy::default(),
            route: SinkRoute::default(),
        });
        let id = a.queue_id();
        assert!(
            id.starts_with("webhook-") && id.len() == "webhook-".len() + 8,
            "{id}"
        );
        assert_eq!(id, a.clone().queue_id());
        assert!(!id.contains("token"));
        assert_ne!(id, SinkSpec::stdout().queue_id());
    }

    #[test]
    fn missing_secret_env_names_the_key_not_the_value() {
        let s = SecretSource::Env("AUTHPULSE_TEST_SURELY_UNSET_VAR".into());
        let e = s.resolve("sinks[3].secret_env").unwrap_err();
        assert_eq!(
            e.to_string(),
            "permanent: sinks[3].secret_env: environment variable AUTHPULSE_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
