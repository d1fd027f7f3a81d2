//! Soak under faults (issue 12): `authpulse run`, the real binary, against the AWS
//! emulator's Logs Insights for a configurable time, while a seeded random schedule
//! throws every fault at it — throttled, failed, timed-out and hung queries, unavailable
//! results, slow answers, slow queries, a webhook answering 5xx or hanging, SIGKILL and
//! restart, SIGHUP with a good and with a bad config — and events with incidents keep
//! arriving in its log group. Then: every notification `authpulse backtest` derives from
//! the same events was delivered exactly once (by fingerprint, status and bin) and
//! nothing else, the daemon's RSS stayed under [`RSS_BOUND_MIB`], and its log has no
//! panic.
//!
//! ```sh
//! bash scripts/soak.sh --minutes 30 [--seed N]    # starts the emulator itself
//! ```
//!
//! The suite runs it for `AUTHPULSE_SOAK_SECONDS` of faults (default 120; about 3.5
//! minutes of wall time with the set-up and the end), seed `AUTHPULSE_SOAK_SEED`
//! (default: from the clock; printed either way, so a failure can be replayed).
//!
//! How the comparison stays fair: the events are written ahead of the wall clock (a
//! minute), so a bin is complete before the daemon may read it, whatever faults slow the
//! writer; the rule's warm-up equals its baseline window and every (re)start loads the
//! whole live part plus a warm-up of history (`backfill`), so the daemon judges each bin
//! on the same history as the backtest; `unavailable_after` is high, so short faults
//! delay bins and never give them up (a blind daemon's `source_unavailable` pages are
//! tested in `daemon_cloudwatch.rs`); `page_history` covers the whole run, so a restart
//! hands its backfill to the ledger, which must drop what was sent.

mod faults;
mod plan;
mod report;
mod rss;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::exactly_once::Tally;
use crate::support::replicas::logs;
use crate::support::traffic::{expected_alerts, outbox_files};
use crate::support::{aws, eventually, free_port, Daemon, Receiver};
use faults::{Fault, Schedule};
use plan::BIN_MS;

/// The rule's baseline window and warm-up (equal: a judged bin always has a full window).
const WARMUP_S: i64 = 180;
/// Quiet bins after the faults, so every incident resolves before the data ends.
const TAIL_BINS: i64 = 12;
/// How far ahead of the wall clock events are written.
const LEAD_MS: i64 = 60_000;
/// The bound on the daemon's resident memory (a debug build; the measured peaks are in
/// the README).
const RSS_BOUND_MIB: u64 = 160;
const RULE: &str = "sign-ins";

struct Settings {
    /// How long faults are thrown.
    live: Duration,
    seed: u64,
}

fn settings() -> Settings {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("AUTHPULSE_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    Settings {
        live: Duration::from_secs(env("AUTHPULSE_SOAK_SECONDS").unwrap_or(120)),
        seed,
    }
}

/// The daemon's config. `bin` is "5s" in a good config.
fn config_text(soak: &Soak, poll_ms: u64, bin: &str) -> String {
    format!(
        r#"
[daemon]
state_dir = "{state}"
http_listen = "127.0.0.1:{port}"
log_level = "info"
page_history = "1d"

[source]
kind = "cloudwatch"
log_groups = ["{group}"]
region = "us-east-1"
endpoint_url = "{endpoint}"
settle = "1s"
revise_after = "10s"
poll_interval = "{poll_ms}ms"
query_timeout = "3s"
backfill = "{backfill}s"
unavailable_after = 1000

[enrichment]
timeout = "5s"

[[rules]]
name = "{RULE}"
bin = "{bin}"
baseline_window = "{WARMUP_S}s"
warmup = "{WARMUP_S}s"
[rules.detectors.failure_spike]
[rules.detectors.volume_spike]

[[sinks]]
kind = "webhook"
url = "{hook}"
timeout = "2s"
retry_initial = "100ms"
retry_max = "1s"
"#,
        state = soak.dir.path().join("state").display(),
        port = soak.port,
        group = soak.group,
        endpoint = aws::endpoint(),
        backfill = soak.backfill_s,
        hook = soak.receiver.url("/hook"),
    )
}

/// A metric's value in `/metrics` text (the line `name{labels} value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

struct Soak {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    group: String,
    backfill_s: i64,
    poll_ms: u64,
    receiver: Receiver,
    daemon: Option<Daemon>,
    rss: rss::RssMonitor,
    /// Writes the live part's events as the clock moves.
    writer: tokio::task::JoinHandle<()>,
    kills: u32,
    /// Kills that found notifications in the outbox, not yet delivered.
    kills_owing: u32,
    reloads: (u32, u32),
    /// When the backtest's notices are due (their bins' ends, ms), in order: sink faults
    /// and kills are timed to meet a delivery when one comes soon.
    due: Vec<i64>,
}

impl Soak {
    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the daemon runs")
    }

    fn write_config(&self, bin: &str) {
        std::fs::write(&self.config, config_text(self, self.poll_ms, bin)).unwrap();
    }

    fn start(&mut self) {
        let d = Daemon::start(
            &self.config,
            self.port,
            &self.dir.path().join("daemon.log"),
            &[("RUST_BACKTRACE", "1")],
        );
        self.rss.pid.store(d.child.id(), Ordering::SeqCst);
        self.daemon = Some(d);
    }

    /// The daemon must never exit by itself.
    fn assert_alive(&mut self) {
        let d = self.daemon();
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("the daemon exited with {status}:\n{}", d.log_text());
        }
    }

    async fn metric(&mut self, series: &str) -> f64 {
        let text = self.daemon().text("/metrics").await;
        metric(&text, series).unwrap_or(0.0)
    }

    /// HTTP up (signals are installed before it): a SIGHUP will not kill the process.
    async fn wait_http(&self) {
        let d = self.daemon.as_ref().expect("the daemon runs");
        let up = eventually(Duration::from_secs(60), || async {
            (d.get("/healthz").await == Some(200)).then_some(())
        })
        .await;
        assert!(up.is_some(), "no /healthz:\n{}", d.log_text());
    }

    /// SIGHUP with the config file as it is; wait until the reload counted `result`.
    async fn reload(&mut self, result: &str) {
        self.wait_http().await;
        let series = format!("authpulse_config_reloads_total{{result=\"{result}\"}}");
        let before = self.metric(&series).await;
        self.daemon().signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.metric(&series).await <= before {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "reload not {result} in 60 s:\n{}",
                self.daemon().log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until just before the next notice is due, when one is due within 40 s.
    async fn meet_next_notice(&self, offset_ms: i64) {
        let now = aws::now_ms();
        if let Some(due) = self
            .due
            .iter()
            .find(|&&t| t > now + 500 && t < now + 40_000)
        {
            let wait = (due + offset_ms - now).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    async fn emulator(&self, faults: serde_json::Value) {
        aws::faults(&self.group, faults).await;
    }

    async fn inject(&mut self, fault: Fault, schedule: &mut Schedule) {
        let hold = |secs: u64| tokio::time::sleep(Duration::from_secs(secs));
        match fault {
            Fault::Throttle(n) => self.emulator(json!({"throttle_start_query": n})).await,
            Fault::LimitExceeded(n) => {
                self.emulator(json!({"limit_exceeded_start_query": n}))
                    .await
            }
            Fault::FailedQueries(n) => self.emulator(json!({"fail_queries": n})).await,
            Fault::TimedOutQuery => self.emulator(json!({"timeout_queries": 1})).await,
            Fault::HungQuery => self.emulator(json!({"hang_queries": 1})).await,
            Fault::ResultsUnavailable(n) => self.emulator(json!({"error_get_results": n})).await,
            Fault::SlowAnswers { delay_ms, secs } => {
                self.emulator(json!({ "delay_ms": delay_ms })).await;
                hold(secs).await;
                self.emulator(json!({"delay_ms": 0})).await;
            }
            Fault::SlowQueries {
                running_polls,
                secs,
            } => {
                self.emulator(json!({ "running_polls": running_polls }))
                    .await;
                hold(secs).await;
                self.emulator(json!({"running_polls": 1})).await;
            }
            Fault::SinkError { status, secs } => {
                self.meet_next_notice(-500).await;
                self.receiver.set_status(status);
                hold(secs).await;
                self.receiver.set_status(200);
            }
            Fault::SinkHang { secs } => {
                self.meet_next_notice(-500).await;
                self.receiver.set_hang(true);
                hold(secs).await;
                self.receiver.set_hang(false);
            }
            Fault::Kill { down_ms, owing } => {
                let state = self.dir.path().join("state");
                if owing {
                    self.meet_next_notice(-500).await;
                    self.receiver.set_status(503);
                    let queued = eventually(Duration::from_secs(15), || async {
                        (!outbox_files(&state).is_empty()).then_some(())
                    })
                    .await;
                    if queued.is_some() {
                        tokio::time::sleep(schedule.jitter(1000)).await;
                    }
                } else {
                    // Around a notice: before it is read, queued, sent or after.
                    self.meet_next_notice(-1000).await;
                    tokio::time::sleep(schedule.jitter(3500)).await;
                }
                if !outbox_files(&state).is_empty() {
                    self.kills_owing += 1;
                }
                self.daemon().kill();
                self.receiver.set_status(200);
                self.kills += 1;
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                self.start();
            }
            Fault::ReloadGood => {
                self.poll_ms = if self.poll_ms == 500 { 400 } else { 500 };
                self.write_config("5s");
                self.reload("applied").await;
                self.reloads.0 += 1;
            }
            Fault::ReloadBad => {
                self.write_config("banana");
                self.reload("rejected").await;
                self.assert_alive();
                self.reloads.1 += 1;
                self.write_config("5s");
            }
        }
    }
}

/// Write the lines (in time order) up to `LEAD_MS` ahead of the wall clock, from `next`
/// on, until all are written.
fn spawn_writer(
    logs: aws_sdk_cloudwatchlogs::Client,
    group: String,
    lines: Vec<(i64, String)>,
    mut next: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while next < lines.len() {
            let horizon = aws::now_ms() + LEAD_MS;
            let upto = next + lines[next..].partition_point(|(t, _)| *t < horizon);
            if upto > next {
                aws::put_lines(&logs, &group, lines[next..upto].to_vec()).await;
                next = upto;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The soak's bins (absolute, `ms / BIN_MS`): quiet history (a warm-up and the
/// backfill's margin), the live part (faults, incidents), a quiet tail.
struct Timeline {
    history: std::ops::Range<i64>,
    live: std::ops::Range<i64>,
    end_bin: i64,
    /// What every (re)start loads: the whole run from a warm-up before the live part.
    backfill_s: i64,
}

impl Timeline {
    fn new(live: Duration) -> Timeline {
        let live_bins = (live.as_millis() as i64 / BIN_MS).max(8);
        let backfill_s = WARMUP_S + (live_bins + TAIL_BINS) * BIN_MS / 1000 + 120;
        let t0 = (aws::now_ms() + 10_000) / BIN_MS + 1;
        Timeline {
            history: t0 - (backfill_s + 60) * 1000 / BIN_MS..t0,
            live: t0..t0 + live_bins,
            end_bin: t0 + live_bins + TAIL_BINS,
            backfill_s,
        }
    }
}

/// The log group with its history, the events file, the config, and the backtest's
/// notifications: what the daemon must deliver.
async fn prepare(seed: u64, timeline: &Timeline) -> (Soak, plan::Plan, Vec<serde_json::Value>) {
    let sdk = aws::sdk_config().await;
    let logs_client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = aws::unique("/authpulse/soak");
    aws::create_log_group(&logs_client, &group).await;
    let plan = plan::plan(
        seed,
        timeline.history.clone(),
        timeline.live.clone(),
        TAIL_BINS,
    );
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    let text: String = plan.lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&events, text).unwrap();
    // History and the first minute now, the rest as the clock moves.
    let first = plan
        .lines
        .partition_point(|(t, _)| *t < aws::now_ms() + LEAD_MS);
    aws::put_lines(&logs_client, &group, plan.lines[..first].to_vec()).await;
    let writer = spawn_writer(logs_client, group.clone(), plan.lines.clone(), first);
    let mut soak = Soak {
        config: dir.path().join("authpulse.toml"),
        dir,
        port: free_port(),
        group,
        backfill_s: timeline.backfill_s,
        poll_ms: 500,
        receiver: Receiver::start(200).await,
        daemon: None,
        rss: rss::RssMonitor::start(Duration::from_millis(250)),
        writer,
        kills: 0,
        kills_owing: 0,
        reloads: (0, 0),
        due: Vec::new(),
    };
    soak.write_config("5s");
    let expected = expected_alerts(&soak.config, &events);
    soak.due = expected
        .iter()
        .filter_map(|a| chrono::DateTime::parse_from_rfc3339(a["bin_end"].as_str()?).ok())
        .map(|t| t.timestamp_millis())
        .collect();
    soak.due.sort_unstable();
    (soak, plan, expected)
}

impl Soak {
    /// Faults until `until_ms`, each kind in turn as the schedule says.
    async fn faults(&mut self, schedule: &mut Schedule, until_ms: i64) {
        let started = Instant::now();
        while aws::now_ms() < until_ms {
            self.assert_alive();
            let fault = schedule.next();
            eprintln!(
                "soak: {:>6.1} s  {fault:?}",
                started.elapsed().as_secs_f64()
            );
            self.inject(fault, schedule).await;
            tokio::time::sleep(schedule.pause()).await;
        }
    }

    /// Quiet again: wait until the daemon read the last bin and delivered what it owes,
    /// then SIGTERM it. Its exit status and its log.
    async fn finish(
        &mut self,
        end_bin: i64,
        expected: &[serde_json::Value],
    ) -> (ExitStatus, String) {
        aws::admin(
            reqwest::Method::DELETE,
            &format!("/_authpulse/faults?log_group={}", self.group),
            None,
        )
        .await;
        self.receiver.set_status(200);
        self.receiver.set_hang(false);
        self.assert_alive();
        let read_through = (end_bin * BIN_MS + 1000) as f64 / 1000.0;
        let last_poll =
            format!("authpulse_last_successful_poll_timestamp_seconds{{rule=\"{RULE}\"}}");
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.metric(&last_poll).await < read_through {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "the daemon did not read the last bin:\n{}",
                self.daemon().log_text()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let state = self.dir.path().join("state");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !(Tally::of(&self.receiver, expected).lost.is_empty()
            && outbox_files(&state).is_empty())
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Time for a wrongly repeated notification to show up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.writer.abort();
        let d = self.daemon();
        let exit = d.terminate();
        (exit, logs(&[d]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_under_faults_every_notice_of_the_backtest_exactly_once() {
    let Settings { live, seed } = settings();
    eprintln!(
        "soak: seed {seed}, {} s of faults (AUTHPULSE_SOAK_SEED={seed} replays it)",
        live.as_secs()
    );
    let timeline = Timeline::new(live);
    let (mut soak, plan, expected) = prepare(seed, &timeline).await;
    let firing = expected.iter().filter(|a| a["status"] == "firing").count();
    assert!(
        plan.incidents.is_empty() || firing >= 1,
        "the backtest pages none of {:?}",
        plan.incidents
    );
    let started = Instant::now();
    soak.start();
    soak.daemon().wait_ready(Duration::from_secs(120)).await;
    let mut schedule = Schedule::new(seed);
    soak.faults(&mut schedule, timeline.live.end * BIN_MS).await;
    let (exit, log) = soak.finish(timeline.end_bin, &expected).await;
    let rss = soak.rss.stop();
    let tally = Tally::of(&soak.receiver, &expected);
    let panics = log.matches("panicked at").count();
    let report = report::Report {
        seed,
        live,
        timeline: &timeline,
        incidents: plan.incidents.len(),
        took: started.elapsed(),
        schedule: &schedule,
        tally: &tally,
        soak: &soak,
        rss: &rss,
        panics,
    };
    eprintln!("{report}");
    assert_eq!(panics, 0, "the daemon panicked:\n{log}");
    assert!(exit.success(), "exit {exit}:\n{log}");
    assert!(
        tally.exact(),
        "seed {seed}: lost {:#?}\nduplicates {:#?}\nextra {:#?}\n{log}",
        tally.lost,
        tally.duplicates,
        tally.extra,
    );
    let peak = rss.iter().copied().max().expect("RSS samples");
    assert!(
        peak <= RSS_BOUND_MIB * 1024,
        "peak RSS {:.1} MiB over the bound {RSS_BOUND_MIB} MiB",
        peak as f64 / 1024.0
    );
}
