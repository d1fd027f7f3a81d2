//! Several `authpulse run` replicas sharing one DynamoDB table (`[ha]`) in the AWS
//! emulator, each with its own state directory and port, over one source (a shared
//! events file or one CloudWatch log group), paging one webhook; and the checks the
//! replica tests make of them. Only with the `aws-emulator` feature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{aws, free_port, Daemon, Receiver};

/// A webhook sink with quick retries.
pub fn webhook(receiver: &Receiver) -> String {
    format!(
        r#"
[[sinks]]
kind = "webhook"
url = "{}"
retry_initial = "50ms"
retry_max = "300ms"
"#,
        receiver.url("/hook")
    )
}

/// A `[source]` table for one CloudWatch log group in the emulator, with the rest of
/// the source's keys in `extra`.
pub fn cloudwatch_source(group: &str, extra: &str) -> String {
    format!(
        r#"
[source]
kind = "cloudwatch"
log_groups = ["{group}"]
region = "us-east-1"
endpoint_url = "{endpoint}"
{extra}
"#,
        endpoint = aws::endpoint(),
    )
}

/// The replicas of one test: what they share (source, rules, sinks, table, lease).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    /// The `[source]` table.
    pub source: String,
    /// The `[[rules]]` and `[[sinks]]` tables.
    pub rules: String,
    pub sinks: String,
    pub table: String,
    pub lease_s: u64,
}

impl Cluster {
    pub fn new(source: &str, rules: &str, sinks: &str, lease_s: u64) -> Cluster {
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            source: source.to_string(),
            rules: rules.to_string(),
            sinks: sinks.to_string(),
            table: aws::unique("authpulse-ha"),
            lease_s,
        }
    }

    /// A config without `[ha]` (one instance) or with it (`table`: the cluster's).
    pub fn config(&self, name: &str, ha: bool) -> (PathBuf, u16) {
        let port = free_port();
        let home = self.dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let ha = if ha {
            format!(
                "[ha]\ntable = \"{}\"\nlease = \"{}s\"\nreplica_id = \"{name}\"\n",
                self.table, self.lease_s
            )
        } else {
            String::new()
        };
        let text = format!(
            r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"
log_level = "info,authpulse=debug"
{source}
{ha}
{rules}
{sinks}
"#,
            state = home.join("state").display(),
            source = self.source,
            rules = self.rules,
            sinks = self.sinks,
        );
        let path = home.join("authpulse.toml");
        std::fs::write(&path, text).unwrap();
        (path, port)
    }

    /// Start replica `name` (the emulator through the SDK's own `AWS_ENDPOINT_URL`: no
    /// endpoint in `[ha]`).
    pub fn start(&self, name: &str) -> Daemon {
        let (config, port) = self.config(name, true);
        let endpoint = aws::endpoint();
        Daemon::start(
            &config,
            port,
            &self.dir.path().join(format!("{name}.log")),
            &[("AWS_ENDPOINT_URL", endpoint.as_str())],
        )
    }
}

/// A metric's value in `/metrics` text (the line `name{labels} value`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// The sum of a counter over all its labels.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Does `d` lead `rule` (`authpulse_ha_leader{rule}` is 1)?
pub async fn leads(d: &Daemon, rule: &str) -> bool {
    let text = d.text("/metrics").await;
    metric(&text, &format!("authpulse_ha_leader{{rule=\"{rule}\"}}")) == Some(1.0)
}

/// Wait (async) until `check` holds.
pub async fn until(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (fingerprint, status, bin) of a notification.
pub fn id(v: &Value) -> (String, String, String) {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (text("fingerprint"), text("status"), text("bin_start"))
}

/// Accepted deliveries counted by (fingerprint, status, bin): nothing deduplicated.
pub fn delivered(receiver: &Receiver) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for r in receiver.accepted() {
        *m.entry(id(&r.json())).or_insert(0) += 1;
    }
    m
}

/// The logs of the daemons, for a failure message.
pub fn logs(ds: &[&Daemon]) -> String {
    ds.iter()
        .map(|d| format!("---- {}\n{}", d.log.display(), d.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every notification of `expected` delivered exactly once, nothing else.
pub fn assert_exactly_once(receiver: &Receiver, expected: &[Value], ds: &[&Daemon]) {
    let got = delivered(receiver);
    let want: BTreeSet<_> = expected.iter().map(id).collect();
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:#?}");
    let got_ids: BTreeSet<_> = got.keys().cloned().collect();
    let lost: Vec<_> = want.difference(&got_ids).collect();
    let extra: Vec<_> = got_ids.difference(&want).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "lost {lost:#?}\nextra {extra:#?}\n{}",
        logs(ds)
    );
}
