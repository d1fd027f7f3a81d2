//! Behavioural tests: the output is valid, sorted and deterministic, the
//! background has the intended shape, and every incident is visible in its
//! window. Populations are small so the suite stays fast in debug builds.
//!
//! `output` checks the lines and the config, `background` the ordinary traffic,
//! `incidents` each incident in its window; this module holds the runs they share.

mod background;
mod incidents;
mod output;

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::model::Model;
use super::world::World;
use super::*;

const EVENT_TYPES: [&str; 6] = [
    "user.session.start",
    "security.threat.detected",
    "user.authentication.auth_via_mfa",
    "system.push.send_factor_verify_push",
    "user.mfa.okta_verify.deny_push",
    "user.session.end",
];

/// Monday 2026-11-02, midnight UTC.
fn monday() -> DateTime<Utc> {
    DateTime::from_timestamp(1_793_577_600, 0).unwrap()
}

/// The fields the tests look at, from one line.
#[derive(Clone, Debug)]
struct Row {
    t: DateTime<Utc>,
    kind: String,
    success: bool,
    reason: Option<String>,
    ip: String,
    login: String,
    txn: String,
    city: String,
}

impl Row {
    fn is_start(&self) -> bool {
        self.kind == "user.session.start"
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(*p)
            .unwrap_or_else(|| panic!("missing {path:?} in {v}"));
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

/// Parses one line, asserting the envelope and the Okta fields.
fn check_line(line: &str) -> Row {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(str_at(&v, &["version"]), "0");
    assert_eq!(str_at(&v, &["id"]).len(), 36);
    assert_eq!(str_at(&v, &["detail-type"]), "SystemLog");
    assert!(str_at(&v, &["source"]).starts_with("aws.partner/okta.com/"));
    assert_eq!(str_at(&v, &["account"]), "123456789012");
    assert_eq!(str_at(&v, &["region"]), "us-east-1");
    assert!(v["resources"].as_array().unwrap().is_empty());
    let d = &v["detail"];
    let published = str_at(d, &["published"]);
    let t = DateTime::parse_from_rfc3339(published)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(published.len(), 24, "{published}");
    assert_eq!(str_at(&v, &["time"]), format!("{}Z", &published[..19]));
    assert_eq!(str_at(d, &["uuid"]).len(), 36);
    assert_eq!(str_at(d, &["version"]), "0");
    let kind = str_at(d, &["eventType"]).to_string();
    assert!(EVENT_TYPES.contains(&kind.as_str()), "{kind}");
    assert!(!str_at(d, &["displayMessage"]).is_empty());
    for f in ["id", "type", "alternateId", "displayName"] {
        str_at(d, &["actor", f]);
    }
    for f in ["rawUserAgent", "os", "browser"] {
        str_at(d, &["client", "userAgent", f]);
    }
    assert_eq!(str_at(d, &["client", "zone"]), "null");
    str_at(d, &["client", "device"]);
    let ip = str_at(d, &["client", "ipAddress"]).to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    for f in ["city", "state", "country", "postalCode"] {
        str_at(d, &["client", "geographicalContext", f]);
    }
    let geo = &d["client"]["geographicalContext"]["geolocation"];
    assert!(geo["lat"].is_f64() && geo["lon"].is_f64());
    let result = str_at(d, &["outcome", "result"]);
    let success = match result {
        "SUCCESS" => {
            assert!(d["outcome"]["reason"].is_null());
            assert_eq!(str_at(d, &["severity"]), "INFO");
            true
        }
        "FAILURE" | "DENY" => {
            assert_eq!(str_at(d, &["severity"]), "WARN");
            false
        }
        other => panic!("outcome {other}"),
    };
    let reason = d["outcome"]["reason"].as_str().map(str::to_string);
    assert!(success || reason.is_some());
    assert_eq!(str_at(d, &["transaction", "type"]), "WEB");
    str_at(d, &["transaction", "id"]);
    assert!(str_at(d, &["debugContext", "debugData", "requestUri"]).starts_with('/'));
    assert!(d["authenticationContext"]["authenticationStep"].is_u64());
    str_at(d, &["authenticationContext", "externalSessionId"]);
    assert!(d["securityContext"]["asNumber"].is_u64());
    for f in ["asOrg", "isp", "domain"] {
        str_at(d, &["securityContext", f]);
    }
    assert!(d["securityContext"]["isProxy"].is_boolean());
    assert!(d["target"].is_array());
    Row {
        t,
        kind,
        success,
        reason,
        ip,
        login: str_at(d, &["actor", "alternateId"]).to_string(),
        txn: str_at(d, &["transaction", "id"]).to_string(),
        city: str_at(d, &["client", "geographicalContext", "city"]).to_string(),
    }
}

struct Run {
    cfg: SimConfig,
    events: Vec<u8>,
    labels: Vec<u8>,
    stats: SimStats,
}

fn run(cfg: SimConfig) -> Run {
    let (mut events, mut labels) = (Vec::new(), Vec::new());
    let stats = generate(&cfg, &mut events, &mut labels).unwrap();
    Run {
        cfg,
        events,
        labels,
        stats,
    }
}

/// Checks every line and that they are sorted by `published`.
fn rows(run: &Run) -> Vec<Row> {
    let text = std::str::from_utf8(&run.events).unwrap();
    let rows: Vec<Row> = text.lines().map(check_line).collect();
    assert!(rows.windows(2).all(|w| w[0].t <= w[1].t), "not sorted");
    assert_eq!(rows.len() as u64, run.stats.events);
    assert_eq!(run.events.len() as u64, run.stats.bytes);
    rows
}

/// Two weeks of 300 people with every incident kind, easy.
fn easy() -> &'static (Run, Vec<Row>) {
    static CELL: OnceLock<(Run, Vec<Row>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let r = run(SimConfig::with_default_incidents(
            7,
            monday(),
            14,
            300,
            Difficulty::Easy,
        ));
        let rows = rows(&r);
        (r, rows)
    })
}

/// Two weeks of 300 people and no incidents.
fn quiet() -> &'static (Run, Vec<Row>) {
    static CELL: OnceLock<(Run, Vec<Row>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut cfg = SimConfig::with_default_incidents(11, monday(), 14, 300, Difficulty::Easy);
        cfg.incidents.clear();
        let r = run(cfg);
        let rows = rows(&r);
        (r, rows)
    })
}

fn incident(run: &Run, kind: IncidentKind) -> &Incident {
    run.cfg
        .incidents
        .iter()
        .find(|i| i.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in schedule"))
}

fn within(rows: &[Row], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<&Row> {
    rows.iter().filter(|r| r.t >= start && r.t < end).collect()
}

/// Rows in the incident's window, and in the same window `days` earlier.
fn window_and_before<'a>(
    rows: &'a [Row],
    inc: &Incident,
    days: i64,
) -> (Vec<&'a Row>, Vec<&'a Row>) {
    let back = Duration::days(days);
    (
        within(rows, inc.start, inc.end),
        within(rows, inc.start - back, inc.end - back),
    )
}

/// Sign-in flows the background model expects in `[start, end)`, without
/// noise: the yardstick for windows (day-to-day factors included).
fn expected_flows(cfg: &SimConfig, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    let world = World::build(cfg.seed, cfg.users);
    let model = Model::new(cfg.seed);
    let (a, b) = (start.timestamp_millis(), end.timestamp_millis());
    (a..b)
        .step_by(model::MINUTE_MS as usize)
        .map(|t| model.expected_flows(&world, t))
        .sum()
}

/// Distinct sign-in flows (transactions with a password attempt).
fn flows(rows: &[&Row]) -> f64 {
    let txns: HashSet<&str> = rows
        .iter()
        .filter(|r| r.is_start())
        .map(|r| r.txn.as_str())
        .collect();
    txns.len() as f64
}

fn successes(rows: &[&Row]) -> f64 {
    rows.iter().filter(|r| r.is_start() && r.success).count() as f64
}

fn new_york(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::hours(5)
}
