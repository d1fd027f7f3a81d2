//! Targets for what authpulse reads back from disk or the network: the alert-state file
//! (the ledger), the silences file, outbox records, the Slack threads file, the HA
//! state body in DynamoDB, and the HTTP API's requests (paths, query strings, headers,
//! bodies). Files go through the same `load`/`open` the daemon calls, in a scratch
//! directory; what loads is then used the way the route uses it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use authpulse::alert::Alert;
use authpulse::clock::ManualClock;
use authpulse::notify::ledger::{AlertState, STATE_FILE};
use authpulse::notify::outbox::Outbox;
use authpulse::notify::silence::{Silences, SILENCES_FILE};
use authpulse::state_file::Loaded;
use sha2::{Digest, Sha256};

use crate::inputs::{outcome_of, T0};
use crate::mutate::Rng;
use crate::seeds::Seeds;

/// What the state targets share: a scratch directory and the golden alerts.
pub struct StateCtx {
    pub dir: PathBuf,
    pub alerts: Vec<Alert>,
    pub runtime: tokio::runtime::Runtime,
}

/// The header line of a checksummed state file (`authpulse-<kind> v1 sha256=<hex>`) in
/// front of `body`: a mutated body with a correct checksum reaches the JSON decoder.
pub fn with_checksum(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "authpulse-{kind} v1 sha256={}\n",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The Slack threads file's header (a file without it is read as the older plain JSON).
pub const SLACK_HEADER: &str = "authpulse-slack-threads v1 sha256=";

/// Fix up a mutated state file: most of the time give the body after the first line
/// its correct checksum again (else the decoder behind the check is never reached).
pub fn fix_checksum(kind: &str, rng: &mut Rng, input: Vec<u8>) -> Vec<u8> {
    if rng.one_in(8) {
        return input;
    }
    let body = match input.iter().position(|&b| b == b'\n') {
        Some(i) if input.starts_with(b"authpulse-") => &input[i + 1..],
        _ => &input[..],
    };
    with_checksum(kind, body)
}

fn fresh(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("scratch {}: {e}", dir.display()))
}

/// The ledger's state file through `ledger::state_file(..).load()`, then the route's
/// uses of it.
pub fn alert_state(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    fresh(&ctx.dir)?;
    std::fs::write(ctx.dir.join(STATE_FILE), input).map_err(|e| e.to_string())?;
    let (state, loaded) = authpulse::notify::ledger::state_file(&ctx.dir, ManualClock::at(T0))
        .load()
        .map_err(|e| format!("load failed with an I/O error: {e}"))?;
    use_state(ctx, state);
    Ok(loaded_outcome(&loaded))
}

/// The answer of a state file's load, for the corpus: how it loaded and why not.
fn loaded_outcome(loaded: &Loaded) -> String {
    match loaded {
        Loaded::MovedAside { reason, .. } => format!("aside {}", outcome_of(reason)),
        other => format!("{other:?}"),
    }
}

/// What the JSON decoder says of a state file's body (the loader logs it only): the
/// answer that steers the corpus.
fn body_outcome<T: serde::de::DeserializeOwned>(input: &[u8]) -> String {
    let body = match input.iter().position(|&b| b == b'\n') {
        Some(i) => &input[i + 1..],
        None => input,
    };
    match serde_json::from_slice::<T>(body) {
        Ok(_) => "ok".into(),
        Err(e) => outcome_of(&e.to_string()),
    }
}

/// The HA store's state body (the same JSON as the file's body, without the header),
/// decoded as `ha::store` decodes it, then used as the route uses it.
pub fn ha_state(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok("not utf-8".into());
    };
    match serde_json::from_str::<AlertState>(text) {
        Ok(state) => {
            use_state(ctx, state);
            Ok("ok".into())
        }
        Err(e) => Ok(format!("err {}", outcome_of(&e.to_string()))),
    }
}

/// [`fix_checksum`] for a file that may also have no header (an older format).
pub fn fix_checksum_if_headed(kind: &str, rng: &mut Rng, input: Vec<u8>) -> Vec<u8> {
    if input.starts_with(b"authpulse-") {
        fix_checksum(kind, rng, input)
    } else {
        input
    }
}

fn use_state(ctx: &StateCtx, mut state: AlertState) {
    // As loaded (before anything moves a watermark), then after admitting alerts.
    let mut first = state.clone();
    first.prune();
    let _ = state.orphans(|_| true, |_| false, |_| Some(T0));
    let _ = state.orphans(|_| true, |_| false, |_| Some(i64::MIN));
    let _ = state.orphans(|_| true, |_| false, |_| None);
    for a in &ctx.alerts {
        let _ = state.admit(a, Some(Duration::from_secs(3600)));
        let _ = state.admit(a, None);
        state.advance(&a.rule, a.bin_end.ms());
    }
    state.prune();
    let _ = (state.firing(), serde_json::to_vec(&state));
}

/// The silences file through `Silences::open`, then the route's and the API's uses.
pub fn silences(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    fresh(&ctx.dir)?;
    std::fs::write(ctx.dir.join(SILENCES_FILE), input).map_err(|e| e.to_string())?;
    let clock = ManualClock::at(T0);
    let s = Silences::open(&ctx.dir, clock)
        .map_err(|e| format!("open failed with an I/O error: {e}"))?;
    let listed = s.list();
    let _ = s.active();
    for a in ctx.alerts.iter().take(8) {
        let _ = s.covering(a);
    }
    let _ = s.apply(ctx.alerts.iter().take(8).cloned().collect(), |_| true);
    for one in listed.iter().take(3) {
        let _ = (one.to_json(T0), one.matcher.describe());
        let _ = s.expire(&one.id, "fuzz");
    }
    Ok(format!(
        "listed={} {}",
        listed.len().min(2),
        body_outcome::<authpulse::notify::silence::SilenceSet>(input)
    ))
}

/// One outbox record through `Outbox::open`. The first line of the input is the file
/// name (a bad name is replaced by a good one), the rest the record.
pub fn outbox(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    fresh(&ctx.dir)?;
    let (name, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&input[..i]).into_owned(),
            &input[i + 1..],
        ),
        None => (String::new(), input),
    };
    let ok_name = !name.is_empty()
        && name.len() < 200
        && !name.contains(['/', '\0'])
        && name != "."
        && name != "..";
    let name = if ok_name {
        name
    } else {
        "00000000000000000001-k.json".to_string()
    };
    let queue = ctx.dir.join("outbox").join("q");
    std::fs::create_dir_all(&queue).map_err(|e| e.to_string())?;
    std::fs::write(queue.join(&name), body).map_err(|e| e.to_string())?;
    let (outbox, recovered) = Outbox::open(&ctx.dir, &["q".to_string()])
        .map_err(|e| format!("open failed with an I/O error: {e}"))?;
    let pending: Vec<_> = recovered.queues.values().flatten().cloned().collect();
    for e in &pending {
        let _ = (
            serde_json::to_string(&e.alert),
            e.alert.idempotency_key.len(),
        );
    }
    // Enqueue after what was recovered: the next sequence number must follow.
    if let Some(a) = ctx.alerts.first() {
        let mut a = a.clone();
        a.idempotency_key.push_str("-new");
        outbox
            .enqueue("q", &a, T0)
            .map_err(|e| format!("enqueue after recovery failed: {e}"))?;
    }
    for e in &pending {
        let _ = outbox.remove(e);
    }
    let why = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(_) => "json".into(),
        Err(e) => outcome_of(&e.to_string()),
    };
    Ok(format!(
        "pending={} corrupt={} {why}",
        pending.len().min(1),
        recovered.corrupt.min(1)
    ))
}

/// The Slack sink's threads file (headed, or the plain JSON of earlier versions)
/// through the sink's `threads_file(..).load()`.
pub fn slack_threads(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    fresh(&ctx.dir)?;
    std::fs::write(ctx.dir.join("slack-threads-fuzz.json"), input).map_err(|e| e.to_string())?;
    let file = authpulse::sink::threads_file(&ctx.dir, "fuzz", ManualClock::at(T0));
    match file.load() {
        Ok((t, loaded)) => Ok(format!("{} n={}", loaded_outcome(&loaded), t.len().min(2))),
        Err(e) => Err(format!("load failed with an I/O error: {e}")),
    }
}

/// An HTTP request to the daemon's router (status page, health, metrics and the JSON
/// API), in-process. The input is `METHOD URI`, header lines, a blank line and the body;
/// what the HTTP library itself refuses to build is not a request. A 5xx answer, or an
/// `/api` answer that is not JSON, is a failure.
pub fn http(ctx: &StateCtx, input: &[u8]) -> Result<String, String> {
    use axum::body::Body;
    use tower::ServiceExt;
    let (head, body) = match find(input, b"\n\n") {
        Some(i) => (&input[..i], &input[i + 2..]),
        None => (input, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let (method, uri) = first.split_once(' ').unwrap_or((first, "/"));
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            req = req.header(k.trim(), v.trim());
        }
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return Ok("not a request".into());
    };
    let path = req.uri().path().to_string();
    let head_only = req.method() == axum::http::Method::HEAD;
    let clock = ManualClock::at(T0);
    let board = Arc::new(authpulse::daemon::status::Board::new(clock.clone()));
    board.reset(&authpulse::config::Config::builtin());
    let silences = Silences::in_memory(clock.clone());
    let api = authpulse::daemon::api::Api::new(
        silences,
        authpulse::notify::journal::Journal::new(clock.clone()),
        board.clone(),
        clock,
        TOKEN_ENV,
    );
    let health = authpulse::daemon::http::Health::new(None, board);
    let router = authpulse::daemon::http::router(health)
        .merge(authpulse::daemon::api::router(Arc::new(api)));
    let (status, bytes) = ctx.runtime.block_on(async move {
        let resp = router.oneshot(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((status, bytes))
    })?;
    // The one 5xx by design: not ready (history still loading).
    let not_ready = path == "/readyz" && status == axum::http::StatusCode::SERVICE_UNAVAILABLE;
    if status.is_server_error() && !not_ready {
        return Err(format!(
            "{path}: answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    // Answers of the API's own (not the router's 404 and 405) are JSON.
    let routed = !matches!(status.as_u16(), 404 | 405) && !head_only;
    if path.starts_with("/api/")
        && routed
        && serde_json::from_slice::<serde_json::Value>(&bytes).is_err()
    {
        return Err(format!(
            "{path}: answered {status} with a body that is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(format!("{status}"))
}

/// The variable the fuzz API reads its token from, and the token.
pub const TOKEN_ENV: &str = "AUTHPULSE_FUZZ_API_TOKEN";
pub const TOKEN: &str = "fuzz-token";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- seeds and generators ----

/// State files written by the project's own writers from the golden alerts.
pub fn state_seeds(seeds: &Seeds, dir: &Path) -> Result<StateSeeds, String> {
    fresh(dir)?;
    let alerts = seeds.alerts();
    let mut state = AlertState::default();
    for a in &alerts {
        let _ = state.admit(a, Some(Duration::from_secs(3600)));
        state.advance(&a.rule, a.bin_end.ms());
    }
    let file = authpulse::notify::ledger::state_file(dir, ManualClock::at(T0));
    file.save(&state).map_err(|e| e.to_string())?;
    let alert_state = std::fs::read(file.path()).map_err(|e| e.to_string())?;
    let ha_body = serde_json::to_vec(&state).map_err(|e| e.to_string())?;

    let s = Silences::open(dir, ManualClock::at(T0)).map_err(|e| e.to_string())?;
    for a in alerts.iter().take(4) {
        let new = authpulse::notify::silence::NewSilence {
            matcher: authpulse::notify::silence::Matcher {
                rule: a.rule.clone(),
                detector: Some(a.detector.to_string()),
                series: a.series.clone(),
            },
            duration_ms: 7_200_000,
            created_by: "alice".into(),
            reason: "office NAT".into(),
        };
        s.add(new).map_err(|e| e.to_string())?;
    }
    let _ = s.apply(alerts.iter().take(4).cloned().collect(), |_| true);
    let silences = std::fs::read(dir.join(SILENCES_FILE)).map_err(|e| e.to_string())?;

    let (outbox, _) = Outbox::open(dir, &["q".to_string()]).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for (i, a) in alerts.iter().take(6).enumerate() {
        if let Ok(Some(entry)) = outbox.enqueue("q", a, T0 + i as i64) {
            let name = entry
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let body = std::fs::read(&entry.path).map_err(|e| e.to_string())?;
            let mut rec = name.unwrap_or_default().into_bytes();
            rec.push(b'\n');
            rec.extend(body);
            records.push(rec);
        }
    }
    let messages: serde_json::Map<String, serde_json::Value> = alerts
        .iter()
        .take(6)
        .map(|a| {
            (
                a.fingerprint.clone(),
                serde_json::json!({"channel": "C0FUZZ", "ts": "1795601700.000100", "started_ms": a.started_at.ms()}),
            )
        })
        .collect();
    // The plain JSON of earlier versions, and the headed file of this one.
    let threads = vec![
        serde_json::to_vec_pretty(&serde_json::json!({"version": 1, "messages": messages}))
            .map_err(|e| e.to_string())?,
        authpulse::state_file::encode(SLACK_HEADER, &messages).map_err(|e| e.to_string())?,
    ];
    fresh(dir)?;
    Ok(StateSeeds {
        alert_state,
        ha_body,
        silences,
        records,
        threads,
    })
}

pub struct StateSeeds {
    pub alert_state: Vec<u8>,
    pub ha_body: Vec<u8>,
    pub silences: Vec<u8>,
    pub records: Vec<Vec<u8>>,
    pub threads: Vec<Vec<u8>>,
}

/// Requests the daemon answers, with bodies made from the golden alerts.
pub fn http_seeds(seeds: &Seeds) -> Vec<Vec<u8>> {
    let auth = format!("Authorization: Bearer {TOKEN}");
    let mut out: Vec<Vec<u8>> = [
        "GET /".to_string(),
        "GET /healthz".to_string(),
        "GET /readyz".to_string(),
        "GET /metrics".to_string(),
        "GET /api/silences".to_string(),
        "GET /api/notifications".to_string(),
        format!("DELETE /api/silences/s-1?by=alice\n{auth}"),
        "DELETE /api/silences/s-1?by=alice".to_string(),
        format!("DELETE /api/silences/%ff%00?by=%zz&by=b\n{auth}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for a in seeds.alerts().iter().take(4) {
        let body = serde_json::json!({
            "rule": a.rule, "detector": a.detector.to_string(), "series": a.series,
            "duration": "2h", "reason": "office NAT", "created_by": "alice"
        });
        out.push(
            format!("POST /api/silences\n{auth}\nContent-Type: application/json\n\n{body}")
                .into_bytes(),
        );
    }
    out
}

/// A request: a seed's method and path with a generated query string, headers or body.
pub fn gen_http(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let methods = ["GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH"];
    let paths = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/silences",
        "/api/notifications",
        "/api/silences/x",
        "/api/silences/",
        "/api/silences/%2e%2e",
        "/api//silences",
    ];
    let mut uri = rng.pick(&paths).to_string();
    if rng.one_in(2) {
        let keys = ["by", "id", "", "by[]", "%62y", "by%00"];
        let long = "x".repeat(rng.below(5000));
        let vals = ["alice", "", "%ff", "%", "a%20b", &long, "%E2%82"];
        let n = 1 + rng.below(4);
        let q: Vec<String> = (0..n)
            .map(|_| format!("{}={}", rng.pick(&keys), rng.pick(&vals)))
            .collect();
        uri = format!("{uri}?{}", q.join("&"));
    }
    let mut out = format!("{} {uri}\n", rng.pick(&methods));
    if !rng.one_in(4) {
        out.push_str(&format!("Authorization: Bearer {TOKEN}\n"));
    }
    out.push('\n');
    let mut bytes = out.into_bytes();
    if rng.one_in(2) {
        let seeds_http = http_seeds(seeds);
        let s = rng.pick(&seeds_http);
        if let Some(i) = find(s, b"\n\n") {
            bytes.extend_from_slice(&s[i + 2..]);
        }
    }
    bytes
}
