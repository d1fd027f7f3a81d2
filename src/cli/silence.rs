//! `authpulse silence add|list|expire`: silences on a running daemon, through its HTTP
//! API (`daemon::api`), without editing the config.
//!
//! The daemon's URL is `--url`, else `http://<daemon.http_listen>` of `--config`, else
//! `http://127.0.0.1:9750`. Writes send the bearer token from the environment variable
//! named by `daemon.api_token_env` of `--config` (default `AUTHPULSE_API_TOKEN`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{out, runtime, Failure};
use authpulse::config;

const DEFAULT_URL: &str = "http://127.0.0.1:9750";
const DEFAULT_TOKEN_ENV: &str = "AUTHPULSE_API_TOKEN";

#[derive(Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub action: Action,
}

/// Where the daemon is and how to authenticate.
#[derive(Args)]
pub struct Target {
    /// The daemon's base URL (default: daemon.http_listen of --config, else
    /// http://127.0.0.1:9750).
    #[arg(long)]
    pub url: Option<String>,
    /// The daemon's config: its http_listen and api_token_env.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Give up when the daemon does not answer within this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Subcommand)]
pub enum Action {
    /// Hold back a rule's notifications (optionally one detector's, one series') for a
    /// while; prints the new silence's id.
    #[command(
        after_help = "Examples:\n  authpulse silence add --rule okta-sign-ins --series client.ipAddress=203.0.113.9 --for 2h --reason \"office NAT rebooting\"\n  authpulse silence add --rule okta-sign-ins --detector volume_drop --for 30m --reason \"Okta maintenance\" --by alice --config /etc/authpulse/authpulse.toml\n\nThe bearer token is read from AUTHPULSE_API_TOKEN (or the variable daemon.api_token_env names)."
    )]
    Add(AddArgs),
    /// List silences: active, pending and those that ended in the last day.
    #[command(
        after_help = "Examples:\n  authpulse silence list\n  authpulse silence list --url http://127.0.0.1:9750 --json"
    )]
    List(ListArgs),
    /// End a silence now.
    #[command(
        after_help = "Example:\n  authpulse silence expire 3f2a9c0d1b7e4a11\n\nThe bearer token is read from AUTHPULSE_API_TOKEN (or the variable daemon.api_token_env names)."
    )]
    Expire(ExpireArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The rule to silence.
    #[arg(long)]
    pub rule: String,
    /// Only this detector's notifications (e.g. failure_spike).
    #[arg(long)]
    pub detector: Option<String>,
    /// Only series with this label (repeatable; all must match), e.g.
    /// client.ipAddress=203.0.113.9.
    #[arg(long = "series", value_name = "KEY=VALUE", value_parser = key_value)]
    pub series: Vec<(String, String)>,
    /// How long, from now: 30m, 2h, 1d.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Why (shown on the status page).
    #[arg(long)]
    pub reason: String,
    /// Who silences (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args)]
pub struct ListArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Args)]
pub struct ExpireArgs {
    /// The silence's id (from `silence add` or `silence list`).
    pub id: String,
    /// Who ends it (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.is_empty() => {
            Ok((k.trim().to_string(), v.to_string()))
        }
        _ => Err(format!(
            "{s:?} is not KEY=VALUE, e.g. client.ipAddress=203.0.113.9"
        )),
    }
}

pub fn run(args: SilenceArgs) -> Result<(), Failure> {
    match args.action {
        Action::Add(a) => add(a),
        Action::List(a) => list(a),
        Action::Expire(a) => expire(a),
    }
}

/// The daemon's base URL and the name of the token's variable.
fn resolve(target: &Target) -> Result<(String, String), Failure> {
    let cfg = match &target.config {
        Some(path) => Some(config::load(path).map_err(|e| Failure::config(e.to_string()))?),
        None => None,
    };
    let url = match (&target.url, &cfg) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(c)) => {
            let mut addr = c.daemon.http_listen;
            if addr.ip().is_unspecified() {
                // Listening everywhere: talk to it on loopback.
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        (None, None) => DEFAULT_URL.to_string(),
    };
    let token_env = cfg
        .map(|c| c.daemon.api_token_env)
        .unwrap_or_else(|| DEFAULT_TOKEN_ENV.to_string());
    Ok((url, token_env))
}

fn who(by: Option<String>) -> Result<String, Failure> {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| Failure::usage("say who is silencing with --by (USER is not set)"))
}

fn token(var: &str) -> Result<String, Failure> {
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(Failure::usage(format!(
            "the API token is missing: set {var} to the daemon's token (daemon.api_token_env names the variable)"
        ))),
    }
}

/// Send one request; the JSON answer of a 2xx, or the daemon's error.
fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    token_var: Option<&str>,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let (base, var) = resolve(target)?;
    let token = match token_var.map(|_| token(&var)) {
        Some(t) => Some(t?),
        None => None,
    };
    let url = reqwest::Url::parse_with_params(&format!("{base}{path}"), query).map_err(|e| {
        Failure::usage(format!(
            "{base}: not a URL ({e}); write e.g. http://127.0.0.1:9750"
        ))
    })?;
    runtime(false)?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .build()
            .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
        let mut req = client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "no answer in time".to_string()
            } else if e.is_connect() {
                "cannot connect (is the daemon running? --url or --config says where)".to_string()
            } else {
                e.without_url().to_string()
            };
            Failure::failed(format!("{base}: {why}"))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let why = value["error"]
            .as_str()
            .map_or_else(|| text.trim().to_string(), str::to_string);
        let hint = if status.as_u16() == 401 {
            format!(" (check {var})")
        } else {
            String::new()
        };
        Err(Failure::failed(format!(
            "the daemon refused: HTTP {}: {why}{hint}",
            status.as_u16()
        )))
    })
}

fn add(a: AddArgs) -> Result<(), Failure> {
    let by = who(a.by)?;
    let series: serde_json::Map<String, Value> = a
        .series
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let body = json!({
        "rule": a.rule,
        "detector": a.detector,
        "series": series,
        "duration": humantime::format_duration(a.duration).to_string(),
        "reason": a.reason,
        "created_by": by,
    });
    let s = call(
        &a.target,
        reqwest::Method::POST,
        "/api/silences",
        &[],
        Some("token"),
        Some(body),
    )?;
    out!("{}", s["id"].as_str().unwrap_or_default());
    eprintln!(
        "silenced {} until {} ({})",
        matches(&s),
        s["ends_at"].as_str().unwrap_or("?"),
        s["reason"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `rule=… detector=… key=value` of a silence's JSON.
fn matches(s: &Value) -> String {
    let mut parts = vec![format!("rule={}", s["rule"].as_str().unwrap_or(""))];
    if let Some(d) = s["detector"].as_str() {
        parts.push(format!("detector={d}"));
    }
    if let Some(series) = s["series"].as_object() {
        for (k, v) in series {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    parts.join(" ")
}

fn list(a: ListArgs) -> Result<(), Failure> {
    let v = call(
        &a.target,
        reqwest::Method::GET,
        "/api/silences",
        &[],
        None,
        None,
    )?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let all = v["silences"].as_array().cloned().unwrap_or_default();
    if all.is_empty() {
        out!("no silences");
        return Ok(());
    }
    out!(
        "{:<16}  {:<8}  {:<20}  {:<12}  {:<40}  REASON",
        "ID",
        "STATE",
        "ENDS",
        "BY",
        "MATCHES"
    );
    for s in &all {
        out!(
            "{:<16}  {:<8}  {:<20}  {:<12}  {:<40}  {}",
            s["id"].as_str().unwrap_or(""),
            s["state"].as_str().unwrap_or(""),
            s["ends_at"].as_str().unwrap_or(""),
            s["created_by"].as_str().unwrap_or(""),
            matches(s),
            s["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn expire(a: ExpireArgs) -> Result<(), Failure> {
    let by = who(a.by)?;
    let id = a.id.trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Failure::usage(format!(
            "{id:?} is not a silence id (see `authpulse silence list`)"
        )));
    }
    let s = call(
        &a.target,
        reqwest::Method::DELETE,
        &format!("/api/silences/{id}"),
        &[("by", by.as_str())],
        Some("token"),
        None,
    )?;
    out!(
        "expired {} ({}), ended {}",
        s["id"].as_str().unwrap_or(id),
        matches(&s),
        s["ends_at"].as_str().unwrap_or("?")
    );
    Ok(())
}
