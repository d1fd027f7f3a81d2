//! The daemon in-process: `authpulse::daemon::run` on a file source, stopped and
//! reloaded through its `Control` channels instead of signals, on a manual clock, with
//! systemd disabled and no metrics recorder (a recorder is process-wide, and every test
//! of this binary shares the process: the daemon's metrics go nowhere here).
//!
//! Time. The replay test runs on tokio's paused clock: the file source reads on
//! `spawn_blocking`, and a current-thread runtime with paused time does not auto-advance
//! while blocking work is in flight, so virtual time jumps only when the daemon is idle
//! (a wait costs no real time, and a slow machine cannot make it expire). That holds for
//! `follow = false`, whose reader ends at end of file; a follower's reader never ends,
//! so paused time would never advance. The reload test follows its file (it appends
//! after the reload) and so runs on real time, on a runtime that does not wait for that
//! reader when an assertion fails.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use authpulse::clock::ManualClock;
use authpulse::config;
use authpulse::daemon::{self, systemd::Notifier, Context, Control, DaemonError};
use authpulse::offline::backtest;
use authpulse::simulate::{generate, Difficulty, SimConfig};
use tokio::sync::{mpsc, watch};

use crate::support::traffic::{self, append, outbox_files, traffic_lines, BIN_SECS, START_MS};
use crate::support::{eventually, free_port, json_lines, wait_until};

/// The operator's side of a daemon running in this process.
struct Operator {
    stop: watch::Sender<Option<&'static str>>,
    reload: mpsc::Sender<()>,
}

impl Operator {
    fn stop(&self) {
        // The daemon may already have returned (an error): its result says why.
        let _ = self.stop.send(Some("test"));
    }
}

/// `daemon::run` on the config at `path`, at wall-clock `now_ms` (a manual clock): the
/// operator's handles and the daemon's future, for the test to drive.
fn in_process(
    path: &Path,
    now_ms: i64,
) -> (Operator, impl Future<Output = Result<(), DaemonError>>) {
    let cfg = config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (stop, stop_rx) = watch::channel(None);
    let (reload, reload_rx) = mpsc::channel(1);
    let control = Control {
        stop: stop_rx,
        reload: reload_rx,
    };
    let cx = Context {
        config_path: path.to_path_buf(),
        clock: ManualClock::at(now_ms),
        metrics: None,
        systemd: Notifier::disabled(),
    };
    (Operator { stop, reload }, daemon::run(cfg, control, cx))
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("test timestamp")
        .timestamp_millis()
}

#[tokio::test(start_paused = true)]
async fn run_in_process_on_a_file_sends_exactly_the_backtests_alerts() {
    // Every incident kind the simulator knows, over 10 days.
    let start = "2026-11-02T00:00:00Z".parse().expect("start");
    let sim = SimConfig::with_default_incidents(7, start, 10, 400, Difficulty::Easy);
    let mut events = Vec::new();
    generate(&sim, &mut events, &mut std::io::sink()).expect("simulate");

    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, &events).expect("write events");
    let out = dir.path().join("alerts.jsonl");
    let path = dir.path().join("authpulse.toml");
    std::fs::write(
        &path,
        format!(
            "[daemon]\nstate_dir = \"{}\"\nhttp_listen = \"127.0.0.1:{}\"\n[source]\nkind = \"file\"\npath = \"{}\"\nfollow = false\n[[sinks]]\nkind = \"file\"\npath = \"{}\"\n",
            dir.path().join("state").display(),
            free_port(),
            input.display(),
            out.display()
        ),
    )
    .expect("write config");

    // The backtest of the same events with the same rules and lateness. Compare the JSON
    // text itself: what a receiver gets, byte for byte.
    let cfg = config::load(&path).expect("config");
    let want = backtest::run(
        &events[..],
        events.len() as u64,
        &cfg.rules,
        cfg.source.settle,
    )
    .expect("backtest")
    .alerts;
    assert!(
        want.iter()
            .any(|a| a.detector == "failure_spike" && a.status == authpulse::alert::Status::Firing),
        "no failure_spike page in {want:#?}"
    );
    let want: Vec<String> = want
        .iter()
        .map(|a| serde_json::to_string(a).expect("alert JSON"))
        .collect();

    let (operator, run) = in_process(&path, ms("2026-11-12T00:00:00Z"));
    tokio::pin!(run);
    // The wait is on the paused clock: it runs out only if the daemon sits idle for 10
    // virtual minutes without having written every alert.
    let delivered = async {
        wait_until(Duration::from_secs(600), || {
            json_lines(&out).len() >= want.len()
        })
        .await
    };
    tokio::select! {
        result = &mut run => panic!("the daemon returned before it was stopped: {result:?}"),
        _ = delivered => {}
    }
    operator.stop();
    run.await.expect("the daemon stops cleanly");

    let got: Vec<String> = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, want, "run and backtest disagree");
}

/// Run `test` on a current-thread runtime like `#[tokio::test]`, but do not wait for
/// blocking work when it is over. A following file source reads on a blocking thread
/// until the daemon tells it to stop; when an assertion fails, the daemon's future is
/// dropped without that, and dropping the runtime would wait for the reader forever.
fn on_runtime(test: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(test)));
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_reload_with_a_bad_config_is_rejected_and_the_daemon_carries_on() {
    on_runtime(reload_with_a_bad_config());
}

async fn reload_with_a_bad_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.ndjson");
    append(&events, &traffic_lines(0..60, 40..42));
    let out = dir.path().join("alerts.jsonl");
    let sink = format!("[[sinks]]\nkind = \"file\"\npath = \"{}\"\n", out.display());
    let (path, port) = traffic::config(dir.path(), &events, true, &sink);
    let state = dir.path().join("state");
    let page = |p: &'static str| async move {
        match reqwest::get(format!("http://127.0.0.1:{port}{p}")).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    };
    let sink = &out;
    let firing_at = |bin: i64| {
        let bin_start = chrono::DateTime::from_timestamp_millis(START_MS + bin * BIN_SECS * 1000)
            .expect("bin start")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        move || {
            json_lines(sink)
                .iter()
                .any(|a| a["status"] == "firing" && a["bin_start"] == bin_start.as_str())
        }
    };

    let (operator, run) = in_process(&path, START_MS + 60 * BIN_SECS * 1000);
    tokio::pin!(run);
    let script = async {
        let ready = eventually(Duration::from_secs(30), || async {
            (page("/readyz").await.0 == 200).then_some(())
        })
        .await;
        assert!(ready.is_some(), "not ready after replaying the file");
        // Ready means the replay's alerts are queued; count them once they are written.
        assert!(
            wait_until(Duration::from_secs(10), || outbox_files(&state).is_empty()).await,
            "the outbox did not drain"
        );
        assert!(
            firing_at(40)(),
            "the attack in the file did not page: {:#?}",
            json_lines(&out)
        );
        let paged = json_lines(&out).len();

        // A config with problems: the reload is rejected and the running config stays.
        std::fs::write(
            &path,
            "[[rules]]\nname = \"a\"\nbin = \"banana\"\n[[sinks]]\nkind = \"webhook\"\n",
        )
        .expect("write the bad config");
        operator
            .reload
            .send(())
            .await
            .expect("the daemon takes reloads");
        let rejected = eventually(Duration::from_secs(10), || async {
            page("/")
                .await
                .1
                .contains("config reload rejected")
                .then_some(())
        })
        .await;
        assert!(rejected.is_some(), "{}", page("/").await.1);
        assert_eq!(page("/healthz").await.0, 200);
        assert_eq!(json_lines(&out).len(), paged, "a rejected reload paged");

        // Still watching with the old rule: a new attack appended to the file pages.
        append(&events, &traffic_lines(60..70, 68..70));
        assert!(
            wait_until(Duration::from_secs(30), firing_at(68)).await,
            "the daemon stopped watching after the rejected reload: {:#?}",
            json_lines(&out)
        );
    };
    tokio::select! {
        result = &mut run => panic!("the daemon returned before it was stopped: {result:?}"),
        () = script => {}
    }
    operator.stop();
    run.await.expect("the daemon stops cleanly");
    let alerts = json_lines(&out);
    assert!(
        alerts.iter().all(|a| a["rule"] == "sign-ins"),
        "{alerts:#?}"
    );
}
