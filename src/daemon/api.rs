//! The daemon's JSON API on `daemon.http_listen`, beside the status page:
//!
//! | method and path | answers | token |
//! | --- | --- | --- |
//! | `GET /api/silences` | `{"silences": [...]}`: active, pending and recently expired | no |
//! | `POST /api/silences` | add one: `{"rule", "detector"?, "series"?, "duration", "reason", "created_by"}` → 201 and the silence | yes |
//! | `DELETE /api/silences/{id}[?by=who]` | expire it now → 200 and the silence | yes |
//! | `GET /api/notifications` | the last notices and their delivery per sink (see [`crate::notify::journal`]) | no |
//!
//! Write endpoints take `Authorization: Bearer <token>`, where the token is the value of
//! the environment variable named by `daemon.api_token_env` (default
//! `AUTHPULSE_API_TOKEN`) when the daemon started. Without a token configured they
//! refuse everything (403, saying so); a missing or wrong token is a 401. Tokens are
//! compared in constant time (as SHA-256 digests, so not even the length leaks) and never
//! logged; only the digest is kept in memory. Reads need no token: the status page shows
//! the same. Errors are `{"error": "..."}` naming the problem.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::status::Board;
use crate::clock::SharedClock;
use crate::notify::journal::Journal;
use crate::notify::silence::{Matcher, NewSilence, SilenceError, Silences};
use crate::series::Labels;

/// What the API works on.
pub struct Api {
    pub silences: Silences,
    pub journal: Journal,
    /// For the configured rules' names.
    pub board: Arc<Board>,
    pub clock: SharedClock,
    /// SHA-256 of the token; `None`: write endpoints refuse.
    token: Option<[u8; 32]>,
    /// The variable's name, for the 403's message.
    token_env: String,
}

impl Api {
    /// Read the token from the environment variable `token_env` (an empty value counts
    /// as none).
    pub fn new(
        silences: Silences,
        journal: Journal,
        board: Arc<Board>,
        clock: SharedClock,
        token_env: &str,
    ) -> Api {
        let token = std::env::var(token_env)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if token.is_none() {
            tracing::warn!(
                variable = token_env,
                "no API token: silences cannot be added or expired until the daemon starts with this variable set"
            );
        }
        Api {
            silences,
            journal,
            board,
            clock,
            token: token.map(|t| digest(t.as_bytes())),
            token_env: token_env.to_string(),
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equal digests, in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// An error answer: `{"error": message}` with `status` (a 401 also asks for a bearer
/// token).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": self.message}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// `Ok` when the request carries the configured token.
fn authorize(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(want) = &api.token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "write endpoints are disabled: no API token is configured (start the daemon with the environment variable {} set, as named by daemon.api_token_env)",
                api.token_env
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: send Authorization: Bearer <the daemon's API token>",
        )),
        Some(t) if same(&digest(t.as_bytes()), want) => Ok(()),
        Some(_) => {
            tracing::warn!("API write refused: wrong bearer token");
            Err(error(StatusCode::UNAUTHORIZED, "wrong bearer token"))
        }
    }
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/silences", get(list).post(add))
        .route("/api/silences/{id}", delete(expire))
        .route("/api/notifications", get(notifications))
        .with_state(api)
}

async fn list(State(api): State<Arc<Api>>) -> Json<Value> {
    let now = api.clock.now_ms();
    let all: Vec<Value> = api.silences.list().iter().map(|s| s.to_json(now)).collect();
    Json(json!({ "silences": all }))
}

/// `POST /api/silences`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    rule: String,
    #[serde(default)]
    detector: Option<String>,
    #[serde(default)]
    series: Labels,
    /// `2h`, `30m`, `1d`.
    duration: String,
    reason: String,
    created_by: String,
}

fn status_of(e: &SilenceError) -> StatusCode {
    match e {
        SilenceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SilenceError::NotFound(_) => StatusCode::NOT_FOUND,
        SilenceError::Full => StatusCode::CONFLICT,
        SilenceError::Save(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body as a silence request, or why not.
fn parse_add(api: &Api, body: &[u8]) -> Result<NewSilence, ApiError> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, m);
    let b: AddBody = serde_json::from_slice(body).map_err(|e| bad(format!("request body: {e}")))?;
    let duration = humantime::parse_duration(b.duration.trim()).map_err(|_| {
        bad(format!(
            "duration: {:?} is not a duration (write e.g. \"30m\", \"2h\", \"1d\")",
            b.duration
        ))
    })?;
    let rules = api.board.rule_names();
    if !rules.is_empty() && !rules.contains(&b.rule) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "rule: {:?} is not a configured rule (configured: {})",
                b.rule,
                rules.join(", ")
            ),
        ));
    }
    Ok(NewSilence {
        matcher: Matcher {
            rule: b.rule,
            detector: b.detector.filter(|d| !d.trim().is_empty()),
            series: b.series,
        },
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        created_by: b.created_by,
        reason: b.reason,
    })
}

async fn add(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authorize(&api, &headers) {
        return e.into_response();
    }
    let new = match parse_add(&api, &body) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let silences = api.silences.clone();
    match tokio::task::spawn_blocking(move || silences.add(new)).await {
        Ok(Ok(s)) => (StatusCode::CREATED, Json(s.to_json(api.clock.now_ms()))).into_response(),
        Ok(Err(e)) => error(status_of(&e), e.to_string()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ExpireQuery {
    #[serde(default)]
    by: String,
}

async fn expire(
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ExpireQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&api, &headers) {
        return e.into_response();
    }
    // A path or query string the extractors refuse is answered in JSON like every
    // other error (axum's own answer is plain text).
    let (id, q) = match (id, q) {
        (Ok(Path(id)), Ok(Query(q))) => (id, q),
        (Err(e), _) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("silence id: {}", e.body_text()),
            )
            .into_response()
        }
        (_, Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("query string: {}", e.body_text()),
            )
            .into_response()
        }
    };
    let silences = api.silences.clone();
    match tokio::task::spawn_blocking(move || silences.expire(&id, &q.by)).await {
        Ok(Ok(s)) => Json(s.to_json(api.clock.now_ms())).into_response(),
        Ok(Err(e)) => error(status_of(&e), e.to_string()).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn notifications(State(api): State<Arc<Api>>) -> Json<Value> {
    Json(api.journal.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;

    const T0: i64 = 1_795_600_000_000;

    async fn serve(token: Option<&str>) -> String {
        let clock = ManualClock::at(T0);
        let board = Arc::new(Board::new(clock.clone()));
        board.reset(&Config::builtin());
        let mut api = Api::new(
            Silences::in_memory(clock.clone()),
            Journal::new(clock.clone()),
            board,
            clock,
            "AUTHPULSE_TEST_SURELY_UNSET_TOKEN_VAR",
        );
        api.token = token.map(|t| digest(t.as_bytes()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(Arc::new(api))).await;
        });
        format!("http://{addr}")
    }

    fn body() -> Value {
        json!({
            "rule": "okta-sign-ins", "series": {"client.ipAddress": "203.0.113.9"},
            "duration": "2h", "reason": "office NAT", "created_by": "alice"
        })
    }

    async fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{url}/api/silences"))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn writes_need_the_token_and_bad_bodies_say_why() {
        let url = serve(None).await;
        let (status, v) = post(&url, Some("anything"), &body()).await;
        assert_eq!(status, 403);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("AUTHPULSE_TEST_SURELY_UNSET_TOKEN_VAR"),
            "{v}"
        );

        let url = serve(Some("s3cret")).await;
        assert_eq!(post(&url, None, &body()).await.0, 401);
        assert_eq!(post(&url, Some("s3cret-not"), &body()).await.0, 401);
        let (status, created) = post(&url, Some("s3cret"), &body()).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["state"], "active");
        assert_eq!(created["ends_at"], "2026-11-25T11:46:40Z");

        bad_bodies_say_why(&url).await;
        let id = created["id"].as_str().unwrap();
        listing_and_expiring_need_the_token(&url, id).await;
    }

    /// Each malformed silence is refused with its status and a message naming the problem.
    async fn bad_bodies_say_why(url: &str) {
        let cases = [
            (
                json!({"rule": "okta-sign-ins"}),
                400,
                "request body: missing field",
            ),
            (
                json!({"rule": "nope", "duration": "1h", "reason": "r", "created_by": "a"}),
                422,
                "rule: \"nope\" is not a configured rule",
            ),
            (
                json!({"rule": "okta-sign-ins", "duration": "soon", "reason": "r", "created_by": "a"}),
                400,
                "duration: \"soon\" is not a duration",
            ),
            (
                json!({"rule": "okta-sign-ins", "duration": "1h", "reason": "r", "created_by": "a", "colour": 1}),
                400,
                "request body: unknown field `colour`",
            ),
            (
                json!({"rule": "okta-sign-ins", "detector": "spikes", "duration": "1h", "reason": "r", "created_by": "a"}),
                422,
                "detector: \"spikes\" is not a detector",
            ),
        ];
        for (b, want_status, want) in cases {
            let (status, v) = post(url, Some("s3cret"), &b).await;
            assert_eq!(status, want_status, "{b} → {v}");
            assert!(v["error"].as_str().unwrap().starts_with(want), "{v}");
        }
    }

    /// The silence is listed; expiring it needs the token; an unknown id is a 404.
    async fn listing_and_expiring_need_the_token(url: &str, id: &str) {
        let client = reqwest::Client::new();
        let listed: Value = reqwest::get(format!("{url}/api/silences"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["silences"].as_array().unwrap().len(), 1);
        let r = client
            .delete(format!("{url}/api/silences/{id}?by=bob"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client
            .delete(format!("{url}/api/silences/{id}?by=bob"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["state"], "expired");
        assert_eq!(v["expired_by"], "bob");
        let r = client
            .delete(format!("{url}/api/silences/nope"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let v: Value = reqwest::get(format!("{url}/api/notifications"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["notifications"], json!([]));
    }

    /// Found by the fuzz driver: a path that is not UTF-8 once decoded was refused in
    /// plain text by axum's extractor; the API answers every error in JSON.
    #[tokio::test]
    async fn a_bad_silence_id_is_refused_in_json() {
        let url = serve(Some("s3cret")).await;
        let r = reqwest::Client::new()
            .delete(format!("{url}/api/silences/%ff%00?by=x"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().starts_with("silence id: "),
            "{v}"
        );
    }

    #[test]
    fn tokens_compare_by_digest() {
        assert!(same(&digest(b"a"), &digest(b"a")));
        assert!(!same(&digest(b"a"), &digest(b"ab")));
    }
}
