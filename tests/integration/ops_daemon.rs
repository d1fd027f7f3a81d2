//! Running authpulse for real: the binary as a process with a file source — its HTTP
//! endpoints and status page, metrics that move, SIGHUP reloads (bad and good), SIGTERM
//! within 10 s with the state written, systemd's notify protocol and the `healthcheck`
//! subcommand.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::traffic::{append, outbox_files, traffic_lines, START_MS};
use crate::support::{free_port, wait_until, Daemon, Receiver};

/// 5-minute bins with a 2-hour warm-up, as the delivery tests use.
fn rule(name: &str) -> String {
    format!(
        r#"
[[rules]]
name = "{name}"
bin = "5m"
warmup = "2h"
baseline_window = "1d"
[rules.detectors.failure_spike]
[rules.detectors.volume_spike]
"#
    )
}

/// A daemon config for a file source that follows `events`.
fn config_text(dir: &Path, port: u16, rules: &str, sinks: &str, daemon_extra: &str) -> String {
    format!(
        r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"
{daemon_extra}

[source]
kind = "file"
path = "{events}"
follow = true
settle = "0s"
{rules}
{sinks}
"#,
        state = dir.join("state").display(),
        events = dir.join("events.ndjson").display(),
    )
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Setup {
    /// 60 bins of traffic with an attack in bins 40..42, and a config over them.
    fn new(rules: &str, sinks: &str, daemon_extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        append(
            &dir.path().join("events.ndjson"),
            &traffic_lines(0..60, 40..42),
        );
        let port = free_port();
        let config = dir.path().join("authpulse.toml");
        std::fs::write(
            &config,
            config_text(dir.path(), port, rules, sinks, daemon_extra),
        )
        .unwrap();
        Setup { dir, config, port }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self, env: &[(&str, &str)]) -> Daemon {
        Daemon::start(&self.config, self.port, &self.path("daemon.log"), env)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn file_sink(&self, name: &str) -> String {
        format!(
            "[[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            self.path(name).display()
        )
    }
}

async fn get(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, r.text().await.unwrap())
}

/// The value of an unlabelled metric (or a labelled one, written out: `name{label="x"}`).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn endpoints_answer_metrics_move_and_the_status_page_draws_each_series() {
    // A rule name with HTML in it: the page must escape it.
    let s = Setup::new(&rule("sign-ins <b>&amp;"), "", "");
    let sink = s.file_sink("alerts.jsonl");
    std::fs::write(
        &s.config,
        config_text(s.dir.path(), s.port, &rule("sign-ins <b>&amp;"), &sink, ""),
    )
    .unwrap();
    let mut d = s.start(&[]);
    d.wait_ready(Duration::from_secs(30)).await;

    let (status, _, body) = get(&s.url("/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&s.url("/readyz")).await.0, 200);

    let (status, content_type, before) = get(&s.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    for name in [
        "authpulse_bins_evaluated_total",
        "authpulse_alerts_firing",
        "authpulse_outbox_depth",
        "authpulse_ready",
        "authpulse_start_time_seconds",
    ] {
        assert!(
            before.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{before}"
        );
    }
    assert_eq!(metric(&before, "authpulse_ready"), Some(1.0));
    assert!(
        metric(&before, "authpulse_build_info{version=\"0.1.0\"}").is_some(),
        "{before}"
    );
    let evaluated = metric(&before, "authpulse_bins_evaluated_total").unwrap_or(0.0);
    assert!(evaluated >= 55.0, "{before}");
    let sent = metric(
        &before,
        "authpulse_notifications_sent_total{sink=\"file[0]\"}",
    );
    assert!(
        sent.unwrap_or(0.0) >= 1.0,
        "the attack was delivered:\n{before}"
    );

    // More traffic, ending in an attack that is still under way, and a line that is not
    // an event: the counters move and an alert is open.
    append(
        &s.path("events.ndjson"),
        &format!("{}not json\n", traffic_lines(60..70, 68..70)),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = d.metrics().await;
        if metric(&text, "authpulse_bins_evaluated_total").unwrap_or(0.0) >= evaluated + 9.0
            && metric(&text, "authpulse_malformed_lines_total") == Some(1.0)
            && metric(&text, "authpulse_alerts_firing").unwrap_or(0.0) >= 1.0
        {
            break text;
        }
        assert!(Instant::now() < deadline, "metrics did not move:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let firing = metric(&after, "authpulse_alerts_firing").unwrap_or(0.0) as usize;

    // The status page, parsed as the browser's DOM would be (it is well-formed XML):
    // per series one chart per measure with its band, expected and observed lines, the
    // attack's alert markers, the open-alerts table, and the rule name escaped.
    let (status, content_type, page) = get(&s.url("/")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    // Self-contained: no scripts, no external assets.
    for banned in [
        "<script", "src=", "href=", "@import", "url(", "http:", "https:",
    ] {
        assert!(!page.contains(banned), "{banned} in the page");
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&page, opts)
        .unwrap_or_else(|e| panic!("the page is not well-formed: {e}\n{page}"));
    let has_class = |n: &roxmltree::Node<'_, '_>, class: &str| {
        n.attribute("class")
            .is_some_and(|c| c.split_whitespace().any(|x| x == class))
    };
    let text_of = |n: roxmltree::Node<'_, '_>| -> String {
        n.descendants()
            .filter(|t| t.is_text())
            .filter_map(|t| t.text())
            .collect()
    };
    let rules: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("section") && has_class(n, "rule"))
        .collect();
    assert_eq!(rules.len(), 1);
    let heading = rules[0]
        .descendants()
        .find(|n| n.has_tag_name("h2"))
        .map(text_of)
        .unwrap_or_default();
    assert_eq!(
        heading, "Rule sign-ins <b>&amp;",
        "the name, escaped, round-trips"
    );
    let series: Vec<_> = rules[0]
        .descendants()
        .filter(|n| has_class(n, "series"))
        .collect();
    assert_eq!(series.len(), 1, "one series: the rule has no split_by");
    let charts: Vec<_> = series[0]
        .descendants()
        .filter(|n| n.has_tag_name("svg") && has_class(n, "chart"))
        .collect();
    let titles: Vec<String> = charts
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("title")).map(text_of))
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles[0].starts_with("Successful sign-ins"), "{titles:?}");
    assert!(titles[1].starts_with("Failed sign-ins"), "{titles:?}");
    for chart in &charts {
        assert!(chart.attribute("viewBox").is_some());
        let count = |class: &str| chart.descendants().filter(|n| has_class(n, class)).count();
        assert!(count("observed") >= 1, "no observed line");
        assert!(count("expected") >= 1, "no expected line");
    }
    let failures = charts[1];
    let count = |class: &str| {
        failures
            .descendants()
            .filter(|n| has_class(n, class))
            .count()
    };
    assert!(count("band") >= 1, "no band around the failures");
    assert!(count("anomalous") >= 2, "the attack bins are not flagged");
    assert!(count("alert-fired") >= 2, "no marker for the two attacks");
    assert!(count("alert-resolved") >= 1, "no marker for the resolve");
    let rows = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("open-alerts"))
        .map(|t| t.descendants().filter(|n| n.has_tag_name("tr")).count())
        .unwrap_or(0);
    assert_eq!(rows, firing + 1, "a row per open alert, plus the header");
    let phase = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("phase"))
        .map(text_of);
    assert_eq!(phase.as_deref(), Some("watching"));
    assert_eq!(d.terminate().code(), Some(0));
}

#[tokio::test]
async fn sighup_rejects_a_bad_config_and_applies_a_good_one() {
    let s = Setup::new(&rule("sign-ins"), "", "");
    let first = s.file_sink("first.jsonl");
    std::fs::write(
        &s.config,
        config_text(s.dir.path(), s.port, &rule("sign-ins"), &first, ""),
    )
    .unwrap();
    let mut d = s.start(&[]);
    d.wait_ready(Duration::from_secs(30)).await;
    // Everything the replay paged was queued before ready; count it once it is delivered
    // (the sink writes from its own worker, later on a busy machine).
    let mut delivered = false;
    for _ in 0..100 {
        if metric(&d.metrics().await, "authpulse_outbox_depth") == Some(0.0) {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the outbox did not drain:\n{}", d.log_text());
    let paged = lines(&s.path("first.jsonl")).len();
    assert!(paged >= 1, "the attack paged");

    // A bad config: rejected with check-config's messages, the old one keeps running.
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        "[[rules]]\nname = \"a\"\nbin = \"banana\"\n[[sinks]]\nkind = \"webhook\"\n",
    )
    .unwrap();
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("config reload rejected"))
        .await,
        "{}",
        d.log_text()
    );
    let log = d.log_text();
    assert!(
        log.contains(r#"rules[0].bin: "banana" is not a duration"#),
        "{log}"
    );
    assert!(
        log.contains("sinks[0].url: is required for a webhook sink"),
        "{log}"
    );
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
    assert_eq!(get(&s.url("/healthz")).await.0, 200);
    assert_eq!(get(&s.url("/readyz")).await.0, 200);
    let metrics = d.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "authpulse_config_reloads_total{result=\"rejected\"}"
        ),
        Some(1.0)
    );
    assert!(get(&s.url("/")).await.2.contains("config reload rejected"));

    // A good, changed config: a renamed rule and a second sink. It is applied: the new
    // rule replays the file and pages to both sinks; the old sink got nothing twice.
    let second = s.file_sink("second.jsonl");
    let changed = good.replace("name = \"sign-ins\"", "name = \"sign-ins-v2\"") + &second;
    std::fs::write(&s.config, changed).unwrap();
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || {
            lines(&s.path("second.jsonl"))
                .iter()
                .any(|a| a["rule"] == "sign-ins-v2")
        })
        .await,
        "the new config was not applied:\n{}",
        d.log_text()
    );
    d.wait_ready(Duration::from_secs(30)).await;
    let page = get(&s.url("/")).await.2;
    assert!(page.contains("Rule sign-ins-v2"), "{page}");
    assert!(page.contains("config reloaded"));
    let metrics = d.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "authpulse_config_reloads_total{result=\"applied\"}"
        ),
        Some(1.0)
    );
    let first_alerts = lines(&s.path("first.jsonl"));
    let old_rule: Vec<_> = first_alerts
        .iter()
        .filter(|a| a["rule"] == "sign-ins")
        .collect();
    assert_eq!(
        old_rule.len(),
        paged,
        "the old rule paged again after reload"
    );
    assert_eq!(d.terminate().code(), Some(0));
}

/// A webhook receiver that accepts connections and never answers: a delivery in flight
/// at shutdown.
async fn black_hole() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(600)).await;
            "late"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), hits)
}

fn watermark(state_dir: &Path) -> Option<i64> {
    // A checksum header line, then the JSON.
    let text = std::fs::read_to_string(state_dir.join("alert-state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.split_once('\n')?.1).ok()?;
    v["watermarks"]["sign-ins"].as_i64()
}

#[tokio::test]
async fn sigterm_exits_0_within_10_s_with_a_delivery_in_flight_and_the_state_written() {
    let (hook, hits) = black_hole().await;
    let sinks = format!("[[sinks]]\nkind = \"webhook\"\nurl = \"{hook}\"\ntimeout = \"60s\"\n");
    let s = Setup::new(&rule("sign-ins"), &sinks, "");
    let mut d = s.start(&[]);
    d.wait_ready(Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(10), || hits
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0)
        .await,
        "the webhook was never called"
    );
    // New bins close after the last save: only the shutdown writes their watermark.
    let before = watermark(&s.path("state")).unwrap_or(0);
    append(&s.path("events.ndjson"), &traffic_lines(60..64, 0..0));
    tokio::time::sleep(Duration::from_millis(600)).await;

    let started = Instant::now();
    let status = d.terminate();
    let took = started.elapsed();
    println!("SIGTERM to exit: {took:?}");
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let after = watermark(&s.path("state")).unwrap_or(0);
    assert!(
        after > before,
        "the state was not written at shutdown ({before} -> {after})"
    );
    assert_eq!(
        after,
        START_MS + 63 * 300_000,
        "watermark at the last closed bin"
    );
    // The undelivered notification is still in the outbox for the next start.
    assert!(!outbox_files(&s.path("state")).is_empty());
    assert!(d.log_text().contains("stopped; state saved"));
}

#[tokio::test]
async fn systemd_hears_ready_status_watchdog_reloading_and_stopping() {
    let s = Setup::new(&rule("sign-ins"), "", "");
    let socket_path = s.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut d = s.start(&[
        ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
        // 1 s: the daemon pings every 500 ms.
        ("WATCHDOG_USEC", "1000000"),
    ]);
    let mut seen: Vec<String> = Vec::new();
    let read = |seen: &mut Vec<String>, until: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && !until(seen) {
            if let Ok(n) = socket.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        until(seen)
    };
    let has = |seen: &[String], what: &str| seen.iter().any(|m| m.lines().any(|l| l == what));
    let count =
        |seen: &[String], what: &str| seen.iter().filter(|m| m.lines().any(|l| l == what)).count();

    assert!(
        read(&mut seen, &|m| has(m, "READY=1")),
        "no READY=1: {seen:?}"
    );
    let ready_at = seen.iter().position(|m| m.contains("READY=1")).unwrap_or(0);
    assert!(
        seen[..ready_at]
            .iter()
            .any(|m| m.contains("STATUS=loading history")),
        "no loading status before READY: {seen:?}"
    );
    assert!(
        seen[ready_at].contains("STATUS=watching 1 rule;"),
        "{seen:?}"
    );
    assert_eq!(
        get(&s.url("/readyz")).await.0,
        200,
        "READY=1 before /readyz"
    );
    // The watchdog keeps coming from the main loop.
    let pings = count(&seen, "WATCHDOG=1");
    assert!(
        read(&mut seen, &|m| count(m, "WATCHDOG=1") >= pings + 3),
        "no watchdog pings: {seen:?}"
    );

    d.signal("HUP");
    assert!(
        read(&mut seen, &|m| {
            m.iter()
                .position(|x| x.contains("RELOADING=1"))
                .is_some_and(|i| m[i..].iter().skip(1).any(|x| x.contains("READY=1")))
        }),
        "no RELOADING=1 then READY=1: {seen:?}"
    );
    let reloading = seen.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");

    let status = d.terminate();
    assert_eq!(status.code(), Some(0));
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(has(&seen, "STOPPING=1"), "no STOPPING=1: {seen:?}");
}

fn healthcheck(args: &[&str]) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_authpulse"))
        .arg("healthcheck")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn healthcheck_passes_against_a_running_daemon_and_fails_otherwise() {
    let s = Setup::new(&rule("sign-ins"), "", "");
    let mut d = s.start(&[]);
    d.wait_ready(Duration::from_secs(30)).await;
    let url = s.url("/healthz");
    // Blocking children from an async test: keep them off the runtime's threads.
    let (code, out, err, _) = tokio::task::spawn_blocking(move || healthcheck(&["--url", &url]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("200"), "{out}");
    let missing = s.url("/nope");
    let (code, _, err, _) = tokio::task::spawn_blocking(move || healthcheck(&["--url", &missing]))
        .await
        .unwrap();
    assert_eq!(code, 1, "404 is unhealthy");
    assert!(err.contains("404"), "{err}");
    assert_eq!(d.terminate().code(), Some(0));

    // Nothing listening: fails at once.
    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    let (code, _, err, took) =
        tokio::task::spawn_blocking(move || healthcheck(&["--url", &closed]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("refused"), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A port that accepts and never answers: fails after --timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = format!("http://{}/healthz", listener.local_addr().unwrap());
    let (code, _, err, took) =
        tokio::task::spawn_blocking(move || healthcheck(&["--url", &hung, "--timeout", "1s"]))
            .await
            .unwrap();
    drop(listener);
    assert_eq!(code, 1);
    assert!(err.contains("no answer within 1s"), "{err}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn json_logs_never_show_webhook_urls_secrets_or_header_values() {
    let receiver = Receiver::start(500).await;
    let url = receiver.url("/T000/B000/url-token-XYZZY");
    let sinks = format!(
        r#"
[[sinks]]
kind = "webhook"
url = "{url}"
secret = "hmac-secret-PLUGH"
headers = {{ Authorization = "Bearer header-value-FROBOZZ" }}
retry_initial = "100ms"
retry_max = "200ms"
"#
    );
    let s = Setup::new(&rule("sign-ins"), &sinks, "log_format = \"json\"");
    let mut d = s.start(&[("RUST_LOG", "debug")]);
    d.wait_ready(Duration::from_secs(30)).await;
    // Failing deliveries are retried and logged.
    assert!(
        wait_until(Duration::from_secs(10), || receiver.requests().len() >= 3).await,
        "no delivery attempts"
    );
    // A reload whose TOML does not parse quotes the broken line in check-config's
    // message; the daemon's log keeps the position and the reason only.
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        good.replace(&format!("url = \"{url}\""), &format!("url = \"{url}")),
    )
    .unwrap();
    d.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("config reload rejected"))
        .await
    );
    assert_eq!(d.terminate().code(), Some(0));
    let log = d.log_text();
    assert!(log.contains("TOML parse error at line"), "{log}");
    for secret in [
        "url-token-XYZZY",
        "hmac-secret-PLUGH",
        "header-value-FROBOZZ",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        n += 1;
    }
    assert!(n > 10, "{log}");
}
