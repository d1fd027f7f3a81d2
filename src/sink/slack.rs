//! `slack` sink: a Slack bot that keeps one message per incident current (Slack's Web
//! API, beside the `webhook` sink's `format = "slack"` incoming webhooks).
//!
//! - **firing**: `chat.postMessage` to `channel`; the answer's `channel` (an id) and `ts`
//!   are kept per fingerprint. A reminder of an incident already posted updates that
//!   message (`chat.update`) and adds a thread reply, rather than posting a new one.
//! - **resolved**: `chat.update` of the incident's message, so it reads resolved in the
//!   channel, plus a reply in its thread. With no message known (the firing went
//!   elsewhere, or the state was lost), a new message says it resolved. A message deleted
//!   in Slack (`message_not_found`, `cant_update_message`, `edit_window_closed`) is posted
//!   anew.
//!
//! The messages' `ts` are persisted in `state_dir/slack-threads-<hash>.json` (temporary
//! file, `fsync`, rename), so a resolve after a restart still updates its message; a
//! corrupt file is moved aside. At most [`MAX_THREADS`] incidents are remembered.
//!
//! Requests: `POST <url>/chat.postMessage` and `<url>/chat.update` (`url` default
//! `https://slack.com/api`) with `Authorization: Bearer <token>` and a JSON body
//! (`application/json; charset=utf-8`). The token (a bot token with `chat:write`) is read
//! from the environment variable `token_env` at start; it is never logged.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": "..."}` for most failures:
//! `ratelimited`/`rate_limited` (or HTTP 429) are transient and wait at least the
//! `Retry-After` header (else `rate_limit_wait`); `internal_error`, `fatal_error`,
//! `service_unavailable`, `request_timeout` and 5xx are transient; `invalid_auth`,
//! `not_authed`, `token_revoked`, `channel_not_found`, `not_in_channel`, `is_archived`
//! and every other error are permanent (dead-lettered with Slack's code and a hint).

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::route::SinkRoute;
use super::spec::read_retry;
use super::webhook::error_text;
use super::{render, Redacted, SecretSource, Sink};
use crate::alert::{Alert, Status};
use crate::config_reader::{Problems, Table};
use crate::retry::{BoxFuture, RemoteError, RetryPolicy};

pub const DEFAULT_URL: &str = "https://slack.com/api";
/// Incidents whose message is remembered, at most.
pub const MAX_THREADS: usize = 5000;
/// A `Retry-After` longer than this is not trusted.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(15 * 60);

/// A validated `kind = "slack"` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackSpec {
    /// The Web API's base URL (`chat.postMessage` is appended).
    pub url: String,
    /// The environment variable holding the bot token.
    pub token_env: String,
    /// A channel id (`C0123456789`) or name (`#security-alerts`).
    pub channel: String,
    pub timeout: Duration,
    /// The least pause after `ratelimited` without a `Retry-After`.
    pub rate_limit_wait: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
    /// Where the messages' `ts` are kept (`daemon.state_dir`).
    pub state_dir: PathBuf,
}

impl SlackSpec {
    pub(super) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<SlackSpec> {
        if t.raw("token").is_some() {
            // Never echo the value.
            problems.push(
                t.key_path("token"),
                "the bot token does not belong in the config file: put it in an environment variable and name that variable in token_env",
            );
        }
        let url = match t.string("url", problems) {
            None => DEFAULT_URL.to_string(),
            Some(u)
                if (u.starts_with("http://") || u.starts_with("https://"))
                    && reqwest::Url::parse(&u).is_ok() =>
            {
                u.trim_end_matches('/').to_string()
            }
            Some(_) => {
                problems.push(t.key_path("url"), "must be an http:// or https:// URL");
                DEFAULT_URL.to_string()
            }
        };
        let timeout = match t.duration("timeout", problems) {
            Some(d) if d.is_zero() => {
                problems.push(t.key_path("timeout"), "must be greater than 0");
                None
            }
            other => other,
        }
        .unwrap_or(Duration::from_secs(10));
        let rate_limit_wait = t
            .duration("rate_limit_wait", problems)
            .unwrap_or(Duration::from_secs(30));
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        let channel = match t.string("channel", problems) {
            Some(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
            Some(_) => {
                problems.push(t.key_path("channel"), "must name a channel");
                None
            }
            None => {
                problems.push(
                    t.key_path("channel"),
                    "is required for a slack sink: a channel id such as \"C0123456789\" or a name such as \"#security-alerts\"",
                );
                None
            }
        };
        let token_env = match t.string("token_env", problems) {
            Some(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Some(_) => {
                problems.push(t.key_path("token_env"), "must name an environment variable");
                None
            }
            None => {
                problems.push(
                    t.key_path("token_env"),
                    "is required for a slack sink: the environment variable that holds the bot token (xoxb-…, with chat:write)",
                );
                None
            }
        };
        Some(SlackSpec {
            url,
            token_env: token_env?,
            channel: channel?,
            timeout,
            rate_limit_wait,
            retry,
            route,
            state_dir: PathBuf::from("state"),
        })
    }
}

/// The message of one incident in Slack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The channel's id, as `chat.postMessage` answered (`chat.update` needs it).
    pub channel: String,
    pub ts: String,
    /// The incident's start, to forget the oldest first.
    pub started_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threads {
    version: u32,
    /// Fingerprint → its message.
    messages: BTreeMap<String, Posted>,
}

const THREADS_VERSION: u32 = 1;

/// The threads file: missing → empty; unreadable → moved aside, empty.
pub fn load_threads(path: &Path) -> io::Result<Threads> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Threads::default()),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice::<Threads>(&bytes) {
        Ok(t) if t.version == THREADS_VERSION => Ok(t),
        other => {
            let why = match other {
                Ok(t) => format!("unknown version {}", t.version),
                Err(e) => e.to_string(),
            };
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".corrupt-{stamp}"));
            let aside = PathBuf::from(aside);
            std::fs::rename(path, &aside)?;
            tracing::error!(file = %path.display(), moved_to = %aside.display(), reason = %why, "Slack threads file is unreadable; moved it aside (resolves of incidents posted before are posted as new messages)");
            Ok(Threads::default())
        }
    }
}

fn save_threads(path: &Path, threads: &Threads) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(threads)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

/// What Slack's `error` code means for a retry, with a hint for a human.
pub fn classify(code: &str) -> RemoteError {
    match code {
        "ratelimited"
        | "rate_limited"
        | "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout" => RemoteError::Transient(format!("Slack answered {code}")),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive"
        | "missing_scope" => RemoteError::Permanent(format!(
            "Slack answered {code}: the bot token (token_env) is not valid or lacks chat:write"
        )),
        "channel_not_found" | "not_in_channel" | "is_archived" => RemoteError::Permanent(format!(
            "Slack answered {code}: check channel and invite the bot to it"
        )),
        other => RemoteError::Permanent(format!("Slack answered {other}")),
    }
}

/// `chat.update` failed because the message is gone or frozen: post anew instead.
fn message_gone(code: &str) -> bool {
    matches!(
        code,
        "message_not_found" | "cant_update_message" | "edit_window_closed"
    )
}

/// A failed Web API call.
enum CallError {
    /// Slack's `error` code (HTTP 200, `ok: false`).
    Slack(String),
    Other(RemoteError),
}

impl CallError {
    fn into_remote(self) -> RemoteError {
        match self {
            CallError::Slack(code) => classify(&code),
            CallError::Other(e) => e,
        }
    }
}

pub struct SlackSink {
    name: String,
    url: String,
    token: Redacted,
    channel: String,
    rate_limit_wait: Duration,
    client: reqwest::Client,
    threads_path: PathBuf,
    threads: Mutex<Threads>,
    /// Set by a rate limit, read once by the delivery worker.
    retry_after: Mutex<Option<Duration>>,
}

/// A message's body: `channel`, `text` (the notification fallback) and `blocks`.
pub fn message(alert: &Alert, channel: &str) -> Value {
    let mut m = render::slack(alert);
    m["channel"] = json!(channel);
    m["unfurl_links"] = json!(false);
    m
}

/// The thread reply of a later notice.
pub fn reply(alert: &Alert, channel: &str, thread_ts: &str) -> Value {
    let text = match alert.status {
        Status::Resolved => format!(
            ":white_check_mark: Resolved (bin {}): {}",
            alert.bin_start, alert.summary
        ),
        Status::Firing => format!(
            ":rotating_light: Still firing (bin {}): {}",
            alert.bin_start, alert.summary
        ),
    };
    json!({"channel": channel, "thread_ts": thread_ts, "text": text, "unfurl_links": false})
}

impl SlackSink {
    /// Reads the token from the environment and the threads file from `state_dir`;
    /// `key_path` (`sinks[2]`) names the config entry in errors; `file_id` names the file.
    pub fn new(
        name: String,
        key_path: &str,
        spec: &SlackSpec,
        file_id: &str,
    ) -> Result<Self, RemoteError> {
        let token =
            SecretSource::Env(spec.token_env.clone()).resolve(&format!("{key_path}.token_env"))?;
        Self::with_token(name, key_path, spec, token, file_id)
    }

    /// [`SlackSink::new`] with the token given.
    fn with_token(
        name: String,
        key_path: &str,
        spec: &SlackSpec,
        token: String,
        file_id: &str,
    ) -> Result<Self, RemoteError> {
        let client = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("authpulse/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteError::Permanent(format!("cannot build HTTP client: {e}")))?;
        let threads_path = spec.state_dir.join(format!("slack-threads-{file_id}.json"));
        let threads = std::fs::create_dir_all(&spec.state_dir)
            .and_then(|()| load_threads(&threads_path))
            .map_err(|e| {
                RemoteError::Permanent(format!(
                    "{key_path}: cannot read {}: {e}",
                    threads_path.display()
                ))
            })?;
        Ok(SlackSink {
            name,
            url: spec.url.trim_end_matches('/').to_string(),
            token: Redacted(token.trim().to_string()),
            channel: spec.channel.clone(),
            rate_limit_wait: spec.rate_limit_wait,
            client,
            threads_path,
            threads: Mutex::new(threads),
            retry_after: Mutex::new(None),
        })
    }

    fn throttled(&self, headers: &reqwest::header::HeaderMap) {
        let asked = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
        if let Ok(mut slot) = self.retry_after.lock() {
            *slot = Some(asked.unwrap_or(self.rate_limit_wait));
        }
    }

    /// POST one Web API method; its answer when `ok`.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, CallError> {
        let resp = self
            .client
            .post(format!("{}/{method}", self.url))
            .header(AUTHORIZATION, format!("Bearer {}", self.token.0))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| CallError::Other(RemoteError::Transient(error_text(e))))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            self.throttled(resp.headers());
            return Err(CallError::Other(RemoteError::Transient(format!(
                "{method}: Slack rate limit (HTTP 429)"
            ))));
        }
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let e = super::webhook::classify_status(status)
                .err()
                .unwrap_or_else(|| RemoteError::Transient(format!("HTTP {status}")));
            return Err(CallError::Other(match e {
                RemoteError::Transient(s) => RemoteError::Transient(format!("{method}: {s}")),
                RemoteError::Permanent(s) => RemoteError::Permanent(format!("{method}: {s}")),
            }));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            CallError::Other(RemoteError::Transient(format!(
                "{method}: the answer is not JSON"
            )))
        })?;
        if v["ok"] == json!(true) {
            return Ok(v);
        }
        let code = v["error"].as_str().unwrap_or("unknown_error").to_string();
        if code == "ratelimited" || code == "rate_limited" {
            self.throttled(&headers);
        }
        Err(CallError::Slack(code))
    }

    fn posted(&self, fingerprint: &str) -> Option<Posted> {
        self.threads
            .lock()
            .ok()
            .and_then(|t| t.messages.get(fingerprint).cloned())
    }

    /// Remember (`Some`) or forget (`None`) an incident's message, and save.
    fn remember(&self, fingerprint: &str, posted: Option<Posted>) {
        let snapshot = {
            let Ok(mut t) = self.threads.lock() else {
                return;
            };
            t.version = THREADS_VERSION;
            match posted {
                Some(p) => {
                    t.messages.insert(fingerprint.to_string(), p);
                }
                None => {
                    t.messages.remove(fingerprint);
                }
            }
            while t.messages.len() > MAX_THREADS {
                let oldest = t
                    .messages
                    .iter()
                    .min_by_key(|(_, p)| p.started_ms)
                    .map(|(fp, _)| fp.clone());
                match oldest {
                    Some(fp) => t.messages.remove(&fp),
                    None => break,
                };
            }
            t.clone()
        };
        // Small and rare (one write per firing and resolve): written in place of the
        // async caller rather than on the blocking pool.
        if let Err(error) = save_threads(&self.threads_path, &snapshot) {
            tracing::error!(sink = %self.name, file = %self.threads_path.display(), %error, "cannot save the Slack messages' ts; a resolve after a restart will be a new message");
        }
    }

    /// A new message for `alert`; remembered while it fires.
    async fn post(&self, alert: &Alert) -> Result<(), RemoteError> {
        let answer = self
            .call("chat.postMessage", &message(alert, &self.channel))
            .await
            .map_err(CallError::into_remote)?;
        if alert.status == Status::Firing {
            match (answer["channel"].as_str(), answer["ts"].as_str()) {
                (Some(channel), Some(ts)) => self.remember(
                    &alert.fingerprint,
                    Some(Posted {
                        channel: channel.to_string(),
                        ts: ts.to_string(),
                        started_ms: alert.started_at.ms(),
                    }),
                ),
                _ => {
                    tracing::warn!(sink = %self.name, "chat.postMessage answered without channel and ts; this incident's message cannot be updated")
                }
            }
        } else {
            self.remember(&alert.fingerprint, None);
        }
        Ok(())
    }

    /// Update the incident's message and reply in its thread.
    async fn follow_up(&self, alert: &Alert, posted: &Posted) -> Result<(), RemoteError> {
        let mut update = message(alert, &posted.channel);
        update["ts"] = json!(posted.ts);
        match self.call("chat.update", &update).await {
            Ok(_) => {}
            Err(CallError::Slack(code)) if message_gone(&code) => {
                tracing::info!(sink = %self.name, fingerprint = %alert.fingerprint, code = %code, "the incident's Slack message cannot be updated; posting a new one");
                self.remember(&alert.fingerprint, None);
                return self.post(alert).await;
            }
            Err(e) => return Err(e.into_remote()),
        }
        self.call(
            "chat.postMessage",
            &reply(alert, &posted.channel, &posted.ts),
        )
        .await
        .map_err(CallError::into_remote)?;
        if alert.status == Status::Resolved {
            self.remember(&alert.fingerprint, None);
        }
        Ok(())
    }
}

impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            match self.posted(&alert.fingerprint) {
                Some(posted) => self.follow_up(alert, &posted).await,
                None => self.post(alert).await,
            }
        })
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after.lock().ok().and_then(|mut s| s.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkSpec;
    use std::sync::Arc;

    #[test]
    fn config_is_read_and_the_token_stays_out_of_it() {
        let c = from_toml(
            r##"
            [daemon]
            state_dir = "/var/lib/authpulse"
            [[sinks]]
            kind = "slack"
            token_env = "AUTHPULSE_SLACK_TOKEN"
            channel = "#security-alerts"
            url = "http://127.0.0.1:9/api/"
            route = { statuses = ["firing", "resolved"] }
            "##,
        )
        .unwrap();
        let SinkSpec::Slack(s) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(s.url, "http://127.0.0.1:9/api");
        assert_eq!(s.channel, "#security-alerts");
        assert_eq!(s.token_env, "AUTHPULSE_SLACK_TOKEN");
        assert_eq!(s.state_dir, PathBuf::from("/var/lib/authpulse"));
        assert_eq!(s.rate_limit_wait, Duration::from_secs(30));
        let problems: Vec<String> = match from_toml(
            "[[sinks]]\nkind = \"slack\"\ntoken = \"xoxb-SECRET-in-file\"\nurl = \"slack.com\"\n",
        ) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        };
        for want in [
            "sinks[0].token: the bot token does not belong in the config file",
            "sinks[0].url: must be an http:// or https:// URL",
            "sinks[0].channel: is required for a slack sink",
            "sinks[0].token_env: is required for a slack sink",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want:?} in {problems:#?}"
            );
        }
        assert!(
            problems.iter().all(|p| !p.contains("SECRET")),
            "{problems:#?}"
        );
    }

    #[test]
    fn slack_error_codes_are_classified() {
        for code in [
            "ratelimited",
            "rate_limited",
            "internal_error",
            "service_unavailable",
        ] {
            assert!(
                matches!(classify(code), RemoteError::Transient(_)),
                "{code}"
            );
        }
        for code in [
            "invalid_auth",
            "channel_not_found",
            "not_in_channel",
            "msg_too_long",
        ] {
            let e = classify(code);
            assert!(matches!(e, RemoteError::Permanent(_)), "{code}");
            assert!(e.to_string().contains(code));
        }
        assert!(classify("channel_not_found")
            .to_string()
            .contains("invite the bot"));
    }

    /// A fake Slack Web API: checks each call's shape, answers as scripted.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<(String, Value)>>>,
        /// Answers to give, first to last, before answering ok.
        script: Arc<Mutex<Vec<(u16, Value)>>>,
    }

    async fn fake_slack() -> (String, Fake) {
        use axum::extract::{Path as AxPath, State};
        use axum::http::HeaderMap;
        let fake = Fake::default();
        let app = axum::Router::new()
            .route(
                "/api/{method}",
                axum::routing::post(
                    |State(f): State<Fake>,
                     AxPath(method): AxPath<String>,
                     headers: HeaderMap,
                     body: String| async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        assert_eq!(auth, "Bearer xoxb-test");
                        let v: Value = serde_json::from_str(&body).unwrap();
                        assert!(v["channel"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
                        assert!(v["text"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
                        if method == "chat.update" {
                            assert!(v["ts"].as_str().is_some(), "{v}");
                        }
                        f.calls.lock().unwrap().push((method.clone(), v.clone()));
                        let scripted = {
                            let mut s = f.script.lock().unwrap();
                            (!s.is_empty()).then(|| s.remove(0))
                        };
                        let (status, answer) = scripted.unwrap_or_else(|| {
                            (200, json!({"ok": true, "channel": "C0SECURITY", "ts": "1795600000.000100"}))
                        });
                        let mut r = axum::response::IntoResponse::into_response(axum::Json(answer));
                        *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                        if status == 429 {
                            r.headers_mut().insert("retry-after", "7".parse().unwrap());
                        }
                        r
                    },
                ),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/api"), fake)
    }

    fn sink(url: &str, dir: &Path) -> SlackSink {
        let spec = SlackSpec {
            url: url.to_string(),
            token_env: "AUTHPULSE_TEST_SLACK_UNIT_TOKEN".into(),
            channel: "#security".into(),
            timeout: Duration::from_secs(5),
            rate_limit_wait: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            route: SinkRoute::default(),
            state_dir: dir.to_path_buf(),
        };
        SlackSink::with_token(
            "slack[0]".into(),
            "sinks[0]",
            &spec,
            "xoxb-test".into(),
            "x",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn firing_posts_and_resolve_updates_and_replies_even_after_a_restart() {
        let (url, fake) = fake_slack().await;
        let dir = tempfile::tempdir().unwrap();
        let fire = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        sink(&url, dir.path()).send(&fire).await.unwrap();
        // A new sink on the same state directory: a restart.
        let s = sink(&url, dir.path());
        assert_eq!(
            s.posted(&fire.fingerprint).map(|p| p.ts),
            Some("1795600000.000100".into())
        );
        let resolve = sample_alert(Status::Resolved, "2026-11-25T11:15:00Z");
        s.send(&resolve).await.unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            methods,
            ["chat.postMessage", "chat.update", "chat.postMessage"]
        );
        assert_eq!(calls[0].1["channel"], "#security");
        assert!(calls[0].1["blocks"].is_array());
        assert_eq!(
            calls[1].1["channel"], "C0SECURITY",
            "chat.update takes the id"
        );
        assert_eq!(calls[1].1["ts"], "1795600000.000100");
        assert!(calls[1].1["text"]
            .as_str()
            .unwrap()
            .contains(":white_check_mark:"));
        assert_eq!(calls[2].1["thread_ts"], "1795600000.000100");
        assert!(calls[2].1["text"].as_str().unwrap().contains("Resolved"));
        assert!(s.posted(&fire.fingerprint).is_none());
        assert!(sink(&url, dir.path()).posted(&fire.fingerprint).is_none());
    }

    #[tokio::test]
    async fn slack_errors_retry_or_give_up_and_a_deleted_message_is_posted_anew() {
        let (url, fake) = fake_slack().await;
        let dir = tempfile::tempdir().unwrap();
        let s = sink(&url, dir.path());
        let fire = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        fake.script.lock().unwrap().extend([
            (200, json!({"ok": false, "error": "ratelimited"})),
            (429, json!({"ok": false, "error": "ratelimited"})),
            (200, json!({"ok": false, "error": "channel_not_found"})),
            (200, json!({"ok": false, "error": "invalid_auth"})),
            (503, json!({})),
        ]);
        let e = s.send(&fire).await.unwrap_err();
        assert!(matches!(e, RemoteError::Transient(_)), "{e}");
        assert_eq!(s.retry_after(), Some(Duration::from_secs(30)));
        let e = s.send(&fire).await.unwrap_err();
        assert!(matches!(e, RemoteError::Transient(_)), "{e}");
        assert_eq!(s.retry_after(), Some(Duration::from_secs(7)));
        let e = s.send(&fire).await.unwrap_err();
        assert!(
            matches!(e, RemoteError::Permanent(ref m) if m.contains("channel_not_found")),
            "{e}"
        );
        let e = s.send(&fire).await.unwrap_err();
        assert!(
            matches!(e, RemoteError::Permanent(ref m) if m.contains("invalid_auth")),
            "{e}"
        );
        assert!(!e.to_string().contains("xoxb-test"));
        let e = s.send(&fire).await.unwrap_err();
        assert!(matches!(e, RemoteError::Transient(_)), "{e}");
        s.send(&fire).await.unwrap();

        // The message was deleted in Slack: the resolve is posted as a new message.
        fake.calls.lock().unwrap().clear();
        fake.script
            .lock()
            .unwrap()
            .push((200, json!({"ok": false, "error": "message_not_found"})));
        s.send(&sample_alert(Status::Resolved, "2026-11-25T11:15:00Z"))
            .await
            .unwrap();
        let methods: Vec<String> = fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect();
        assert_eq!(methods, ["chat.update", "chat.postMessage"]);
        assert!(s.posted(&fire.fingerprint).is_none());
    }

    #[test]
    fn an_unreadable_threads_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slack-threads-x.json");
        std::fs::write(&path, b"{\"version\":1,\"mess").unwrap();
        assert_eq!(load_threads(&path).unwrap(), Threads::default());
        assert!(!path.exists());
        let t = Threads {
            version: THREADS_VERSION,
            messages: BTreeMap::from([(
                "fp".to_string(),
                Posted {
                    channel: "C1".into(),
                    ts: "1.2".into(),
                    started_ms: 5,
                },
            )]),
        };
        save_threads(&path, &t).unwrap();
        assert_eq!(load_threads(&path).unwrap(), t);
    }
}
