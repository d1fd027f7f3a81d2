//! `[[sinks]]`: each sink's validated table ([`SinkSpec`]), read with every problem
//! named by its key path, and built into a [`Sink`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    AlertmanagerSink, AlertmanagerSpec, FileSink, PagerDutySink, PagerDutySpec, Sink, SinkRoute,
    SlackSink, SlackSpec, SnsSink, SnsSpec, StdoutSink, WebhookSink, WebhookSpec,
};
use crate::clock::SharedClock;
use crate::config_reader::{Problems, Table};
use crate::retry::{RemoteError, RetryPolicy};

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

/// A secret written into the config file under `key` is a problem (its value never
/// echoed): `what` is the secret's name, read instead from the variable `{key}_env`.
pub(super) fn refuse_secret(
    t: &mut Table<'_>,
    problems: &mut Problems,
    key: &'static str,
    what: &str,
) {
    if t.raw(key).is_some() {
        problems.push(
            t.key_path(key),
            format!("{what} does not belong in the config file: put it in an environment variable and name that variable in {key}_env"),
        );
    }
}

/// `url`: an http:// or https:// URL, `default` when not given (or not one).
pub(super) fn read_api_url(t: &mut Table<'_>, problems: &mut Problems, default: &str) -> String {
    match t.string("url", problems) {
        None => default.to_string(),
        Some(u)
            if (u.starts_with("http://") || u.starts_with("https://"))
                && reqwest::Url::parse(&u).is_ok() =>
        {
            u
        }
        Some(_) => {
            problems.push(t.key_path("url"), "must be an http:// or https:// URL");
            default.to_string()
        }
    }
}

/// `timeout`: more than zero, 10 s when not given.
pub(super) fn read_timeout(t: &mut Table<'_>, problems: &mut Problems) -> Duration {
    match t.duration("timeout", problems) {
        Some(d) if d.is_zero() => {
            problems.push(t.key_path("timeout"), "must be greater than 0");
            None
        }
        other => other,
    }
    .unwrap_or(Duration::from_secs(10))
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
            Some("webhook") => WebhookSpec::read(&mut t, problems).map(SinkSpec::Webhook),
            Some("sns") => SnsSpec::read(&mut t, problems).map(SinkSpec::Sns),
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
