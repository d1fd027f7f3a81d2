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
//! The messages' `ts` are persisted in `state_dir/slack-threads-<hash>.json` (a
//! [`crate::state_file`]: checksummed, written atomically), so a resolve after a restart
//! still updates its message; a corrupt file is moved aside. At most
//! [`threads::MAX_THREADS`] incidents are remembered.
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

mod api;
mod spec;
mod threads;

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use self::api::{message, message_gone, reply, CallError, WebApi};
use self::threads::Threads;
use super::{SecretSource, Sink};
use crate::alert::{Alert, Status};
use crate::clock::SharedClock;
use crate::retry::{BoxFuture, RemoteError};
use crate::state_file::StateFile;

pub use self::spec::SlackSpec;
/// The threads file, for the fuzz driver (`fuzz/`) to read as the sink does.
pub use self::threads::threads_file;
use self::threads::Posted;

pub struct SlackSink {
    name: String,
    channel: String,
    api: WebApi,
    threads_file: StateFile<Threads>,
    threads: Mutex<Threads>,
}

impl SlackSink {
    /// Reads the token from the environment and the threads file from `state_dir`;
    /// `key_path` (`sinks[2]`) names the config entry in errors; `file_id` names the file.
    pub fn new(
        name: String,
        key_path: &str,
        spec: &SlackSpec,
        file_id: &str,
        clock: SharedClock,
    ) -> Result<Self, RemoteError> {
        let token =
            SecretSource::Env(spec.token_env.clone()).resolve(&format!("{key_path}.token_env"))?;
        Self::with_token(name, key_path, spec, token, file_id, clock)
    }

    /// [`SlackSink::new`] with the token given.
    fn with_token(
        name: String,
        key_path: &str,
        spec: &SlackSpec,
        token: String,
        file_id: &str,
        clock: SharedClock,
    ) -> Result<Self, RemoteError> {
        let api = WebApi::new(&spec.url, &token, spec.timeout, spec.rate_limit_wait)?;
        let threads_file = threads_file(&spec.state_dir, file_id, clock);
        let (threads, _) = std::fs::create_dir_all(&spec.state_dir)
            .and_then(|()| threads_file.load())
            .map_err(|e| {
                RemoteError::Permanent(format!(
                    "{key_path}: cannot read {}: {e}",
                    threads_file.path().display()
                ))
            })?;
        Ok(SlackSink {
            name,
            channel: spec.channel.clone(),
            api,
            threads_file,
            threads: Mutex::new(threads),
        })
    }

    fn posted(&self, fingerprint: &str) -> Option<Posted> {
        self.threads
            .lock()
            .ok()
            .and_then(|t| t.get(fingerprint).cloned())
    }

    /// Remember (`Some`) or forget (`None`) an incident's message, and save.
    fn remember(&self, fingerprint: &str, posted: Option<Posted>) {
        let snapshot = {
            let Ok(mut t) = self.threads.lock() else {
                return;
            };
            threads::remember(&mut t, fingerprint, posted);
            t.clone()
        };
        // Small and rare (one write per firing and resolve): written in place of the
        // async caller rather than on the blocking pool.
        if let Err(error) = self.threads_file.save(&snapshot) {
            tracing::error!(sink = %self.name, file = %self.threads_file.path().display(), %error, "cannot save the Slack messages' ts; a resolve after a restart will be a new message");
        }
    }

    /// A new message for `alert`; remembered while it fires.
    async fn post(&self, alert: &Alert) -> Result<(), RemoteError> {
        let answer = self
            .api
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
        match self.api.call("chat.update", &update).await {
            Ok(_) => {}
            Err(CallError::Slack(code)) if message_gone(&code) => {
                tracing::info!(sink = %self.name, fingerprint = %alert.fingerprint, code = %code, "the incident's Slack message cannot be updated; posting a new one");
                self.remember(&alert.fingerprint, None);
                return self.post(alert).await;
            }
            Err(e) => return Err(e.into_remote()),
        }
        self.api
            .call(
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
        self.api.take_retry_after()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryPolicy;
    use crate::sink::render::tests::sample_alert;
    use crate::sink::SinkRoute;
    use serde_json::Value;
    use std::path::Path;
    use std::sync::Arc;

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
            crate::clock::system(),
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

    /// A threads file an earlier version wrote as plain JSON still loads, so a resolve
    /// after the upgrade still updates its message.
    #[tokio::test]
    async fn a_plain_json_threads_file_of_an_earlier_version_loads() {
        let (url, fake) = fake_slack().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("slack-threads-x.json"),
            include_bytes!("../../../tests/fixtures/state/slack-threads-v1-plain.json"),
        )
        .unwrap();
        let s = sink(&url, dir.path());
        let fire = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        assert_eq!(
            s.posted(&fire.fingerprint),
            Some(Posted {
                channel: "C0SECURITY".into(),
                ts: "1795600000.000100".into(),
                started_ms: 1_795_600_000_000,
            })
        );
        s.send(&sample_alert(Status::Resolved, "2026-11-25T11:15:00Z"))
            .await
            .unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls[0].0, "chat.update");
        assert_eq!(calls[0].1["ts"], "1795600000.000100");
    }
}
