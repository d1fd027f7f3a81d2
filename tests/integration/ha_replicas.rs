//! Several replicas, one pager (`[ha]`): real `authpulse run` processes with separate
//! state directories, following one shared events file, coordinating through moto's
//! DynamoDB in the AWS emulator that `scripts/test.sh` starts, paging a local webhook.
//!
//! Bounds on time here ("takes over within lease + one poll") are correctness
//! properties, asserted with generous slack for a loaded 2-core machine; the measured
//! times are in the README, not here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::replicas::{self, assert_exactly_once, delivered, logs, metric, until};
use crate::support::traffic::*;
use crate::support::{aws, wait_until, Daemon, Received, Receiver};

const LEASE_S: u64 = 3;
/// The standbys look at the leases every lease/3.
const POLL: Duration = Duration::from_secs(1);
/// Slack on top of lease + poll for a loaded machine (the property, not a speed figure).
const SLACK: Duration = Duration::from_secs(10);
const RULE_NAME: &str = "sign-ins";

/// Replicas following one shared events file.
struct Cluster {
    inner: replicas::Cluster,
    events: PathBuf,
}

impl Cluster {
    fn new(receiver: &Receiver, lines: &str) -> Cluster {
        let sinks = replicas::webhook(receiver);
        let mut inner = replicas::Cluster::new("", RULE, &sinks, LEASE_S);
        let events = inner.dir.path().join("events.ndjson");
        append(&events, lines);
        inner.source = format!(
            "[source]\nkind = \"file\"\npath = \"{}\"\nfollow = true\nsettle = \"0s\"\n",
            events.display()
        );
        Cluster { inner, events }
    }

    fn start(&self, name: &str) -> Daemon {
        self.inner.start(name)
    }

    /// What `authpulse backtest` derives from the whole file: what must be delivered.
    fn expected(&self) -> Vec<Value> {
        let (config, _) = config(
            self.inner.dir.path(),
            &self.events,
            false,
            &self.inner.sinks,
        );
        expected_alerts(&config, &self.events)
    }
}

async fn leads(d: &Daemon) -> bool {
    replicas::leads(d, RULE_NAME).await
}

async fn metrics_of(d: &Daemon) -> String {
    d.text("/metrics").await
}

async fn readyz(d: &Daemon) -> Option<u16> {
    d.get("/readyz").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_while_firing_is_taken_over_without_paging_again() {
    let receiver = Receiver::start(200).await;
    // The file ends in the middle of the attack (bins 40..44).
    let cluster = Cluster::new(&receiver, &traffic_lines(0..42, 40..44));
    let mut a = cluster.start("a");
    a.wait_ready(Duration::from_secs(60)).await;
    let mut b = cluster.start("b");
    b.wait_ready(Duration::from_secs(60)).await;
    assert!(leads(&a).await && !leads(&b).await, "{}", logs(&[&a, &b]));
    // A standby is ready (warm) too, and says who leads on its status page.
    assert_eq!(readyz(&b).await, Some(200));
    let page = reqwest::get(format!("http://127.0.0.1:{}/", b.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("standby</span> a"), "{page}");

    assert!(
        wait_until(Duration::from_secs(30), || !receiver.accepted().is_empty()).await,
        "{}",
        logs(&[&a, &b])
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let paged = delivered(&receiver);
    assert!(paged.keys().all(|(_, s, _)| s == "firing"), "{paged:#?}");
    assert!(paged.values().all(|&n| n == 1), "{paged:#?}");

    // SIGKILL the leader while the incident fires.
    a.kill();
    let killed = Instant::now();
    let took = until(Duration::from_secs(LEASE_S) + POLL + SLACK, async || {
        leads(&b).await
    })
    .await;
    assert!(took, "no takeover\n{}", logs(&[&a, &b]));
    eprintln!("takeover after SIGKILL: {:?}", killed.elapsed());
    let m = metrics_of(&b).await;
    assert_eq!(
        metric(
            &m,
            &format!("authpulse_ha_lease_takeovers_total{{rule=\"{RULE_NAME}\"}}")
        ),
        Some(1.0),
        "{m}"
    );

    // The attack ends; B resolves the incident A paged, once, and never pages it again.
    append(&cluster.events, &traffic_lines(42..60, 40..44));
    let expected = cluster.expected();
    let resolved = expected
        .iter()
        .filter(|v| v["status"] == "resolved")
        .count();
    assert!(resolved >= 1, "{expected:#?}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            receiver
                .accepted()
                .iter()
                .filter(|r| r.json()["status"] == "resolved")
                .count()
                >= resolved
        })
        .await,
        "{}",
        logs(&[&a, &b])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&receiver, &expected, &[&a, &b]);
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_killed_leader_queued_but_could_not_deliver_is_delivered_once() {
    let receiver = Receiver::start(503).await;
    let cluster = Cluster::new(&receiver, &traffic_lines(0..60, 40..44));
    let expected = cluster.expected();
    assert!(expected.len() >= 2, "{expected:#?}");
    let mut a = cluster.start("a");
    a.wait_ready(Duration::from_secs(60)).await;
    let mut b = cluster.start("b");
    b.wait_ready(Duration::from_secs(60)).await;
    assert!(leads(&a).await, "{}", logs(&[&a, &b]));
    // Everything is queued in the table and the webhook refused it: kill the leader.
    assert!(
        wait_until(Duration::from_secs(30), || {
            a.log_text().matches("notification queued").count() >= expected.len()
                && !receiver.requests().is_empty()
        })
        .await,
        "{}",
        logs(&[&a, &b])
    );
    a.kill();
    assert!(receiver.accepted().is_empty());
    receiver.set_status(200);
    assert!(
        wait_until(Duration::from_secs(30), || delivered(&receiver).len()
            >= expected.len())
        .await,
        "{}",
        logs(&[&a, &b])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&receiver, &expected, &[&a, &b]);
    assert!(b.log_text().contains("leading this rule now"));
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_delivers_every_notification_exactly_once() {
    let receiver = Receiver::start(200).await;
    // Traffic with three incidents, appended while replicas come and go.
    let attacks = [30..33, 60..63, 90..94];
    let lines = |bins: std::ops::Range<i64>| {
        let mut out = String::new();
        for b in bins {
            let attack = attacks
                .iter()
                .find(|r| r.contains(&b))
                .cloned()
                .unwrap_or(0..0);
            out.push_str(&traffic_lines(b..b + 1, attack));
        }
        out
    };
    let cluster = Cluster::new(&receiver, &lines(0..25));
    let mut running = std::collections::VecDeque::new();
    for name in ["r0", "r1"] {
        let mut d = cluster.start(name);
        d.wait_ready(Duration::from_secs(60)).await;
        running.push_back(d);
    }
    let mut next_bin = 25;
    for step in 0..4 {
        // Start a new replica, then stop the oldest with SIGTERM, while traffic flows.
        append(&cluster.events, &lines(next_bin..next_bin + 10));
        next_bin += 10;
        let mut d = cluster.start(&format!("r{}", step + 2));
        d.wait_ready(Duration::from_secs(60)).await;
        running.push_back(d);
        append(&cluster.events, &lines(next_bin..next_bin + 8));
        next_bin += 8;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut old = running.pop_front().unwrap();
        assert!(old.terminate().success(), "{}", old.log_text());
        append(&cluster.events, &lines(next_bin..next_bin + 5));
        next_bin += 5;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    append(&cluster.events, &lines(next_bin..120));
    let expected = cluster.expected();
    assert!(expected.len() >= 6, "{expected:#?}");
    let all: Vec<&Daemon> = running.iter().collect();
    assert!(
        wait_until(Duration::from_secs(60), || delivered(&receiver).len()
            >= expected.len())
        .await,
        "got {:#?}\n{}",
        delivered(&receiver),
        logs(&all)
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_exactly_once(&receiver, &expected, &all);
    let got = delivered(&receiver);
    eprintln!(
        "rolling deploy: {} notifications expected, {} delivered, {} duplicates, {} lost",
        expected.len(),
        got.values().sum::<usize>(),
        got.values().map(|n| n - 1).sum::<usize>(),
        expected.len() - got.len().min(expected.len())
    );
    for mut d in running {
        assert!(d.terminate().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_after_the_takeover_and_steps_down() {
    let receiver = Receiver::start(503).await;
    let cluster = Cluster::new(&receiver, &traffic_lines(0..42, 40..44));
    let mut a = cluster.start("a");
    a.wait_ready(Duration::from_secs(60)).await;
    let mut b = cluster.start("b");
    b.wait_ready(Duration::from_secs(60)).await;
    assert!(leads(&a).await, "{}", logs(&[&a, &b]));
    // A queued the firing and keeps retrying it against the down webhook.
    assert!(
        wait_until(Duration::from_secs(30), || receiver.requests().len() >= 2).await,
        "{}",
        logs(&[&a, &b])
    );
    a.signal("STOP");
    let stopped = Instant::now();
    receiver.set_status(200);
    assert!(
        until(Duration::from_secs(LEASE_S) + POLL + SLACK, async || leads(
            &b
        )
        .await)
        .await,
        "{}",
        logs(&[&a, &b])
    );
    eprintln!("takeover after SIGSTOP: {:?}", stopped.elapsed());
    // B delivers what A had queued.
    assert!(
        wait_until(Duration::from_secs(20), || !receiver.accepted().is_empty()).await,
        "{}",
        logs(&[&a, &b])
    );
    let before = receiver.requests().len();
    // A wakes up believing it leads, with its retry due: it must not deliver.
    a.signal("CONT");
    assert!(
        until(Duration::from_secs(20), async || {
            a.log_text().contains("stepping down")
        })
        .await,
        "{}",
        logs(&[&a, &b])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: Vec<Value> = receiver.requests()[before..]
        .iter()
        .map(Received::json)
        .collect();
    assert!(after.is_empty(), "delivered after the takeover: {after:#?}");
    let m = metrics_of(&a).await;
    assert!(!leads(&a).await && leads(&b).await);
    let fenced = replicas::metric_sum(&m, "authpulse_ha_fenced_writes_total");
    assert!(fenced >= 1.0, "{m}");
    // Each notification once; the rest of the incident is B's.
    append(&cluster.events, &traffic_lines(42..60, 40..44));
    let expected = cluster.expected();
    assert!(
        wait_until(Duration::from_secs(30), || delivered(&receiver).len()
            >= expected.len())
        .await,
        "{}",
        logs(&[&a, &b])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&receiver, &expected, &[&a, &b]);
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dynamodb_stops_paging_loudly_and_no_page_is_lost_or_doubled() {
    let receiver = Receiver::start(200).await;
    let cluster = Cluster::new(&receiver, &traffic_lines(0..30, 0..0));
    let mut a = cluster.start("a");
    a.wait_ready(Duration::from_secs(60)).await;
    let mut b = cluster.start("b");
    b.wait_ready(Duration::from_secs(60)).await;
    assert!(leads(&a).await);

    // DynamoDB fails every request (then throttles): neither replica can coordinate.
    aws::faults(
        &cluster.inner.table,
        serde_json::json!({"fail_dynamodb": 100000}),
    )
    .await;
    assert!(
        until(Duration::from_secs(LEASE_S) * 2 + SLACK, async || {
            readyz(&a).await == Some(503) && readyz(&b).await == Some(503)
        })
        .await,
        "{}",
        logs(&[&a, &b])
    );
    aws::faults(
        &cluster.inner.table,
        serde_json::json!({"fail_dynamodb": 0, "throttle_dynamodb": 100000}),
    )
    .await;
    for d in [&a, &b] {
        let m = metrics_of(d).await;
        assert_eq!(metric(&m, "authpulse_ha_coordinating"), Some(0.0), "{m}");
        assert!(!leads(d).await);
        assert!(d
            .log_text()
            .contains("cannot coordinate with the other replicas"));
    }
    // An attack while nobody can coordinate: nobody pages it now...
    append(&cluster.events, &traffic_lines(30..36, 30..33));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.requests().is_empty(), "{}", logs(&[&a, &b]));
    for d in [&mut a, &mut b] {
        assert!(d.child.try_wait().unwrap().is_none(), "no crash");
    }
    // ... and once DynamoDB answers again, exactly one replica pages it, once.
    aws::admin(
        reqwest::Method::DELETE,
        &format!("/_authpulse/faults?log_group={}", cluster.inner.table),
        None,
    )
    .await;
    append(&cluster.events, &traffic_lines(36..50, 30..33));
    let expected = cluster.expected();
    assert!(!expected.is_empty());
    assert!(
        wait_until(Duration::from_secs(40), || delivered(&receiver).len()
            >= expected.len())
        .await,
        "{}",
        logs(&[&a, &b])
    );
    assert!(
        until(Duration::from_secs(20), async || {
            readyz(&a).await == Some(200) && readyz(&b).await == Some(200)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_exactly_once(&receiver, &expected, &[&a, &b]);
    assert!(leads(&a).await != leads(&b).await, "exactly one leader");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// All DynamoDB requests a replica made so far.
async fn requests(d: &Daemon) -> f64 {
    replicas::metric_sum(&metrics_of(d).await, "authpulse_ha_requests_total")
}

/// The figures in the README, measured by hand (not part of the suite: they take
/// minutes with a production lease, and speed is not asserted):
///
/// ```sh
/// AUTHPULSE_HA_BENCH_LEASE=15 cargo test --features aws-emulator --test integration \
///     -- --ignored --nocapture ha_replicas::figures
/// ```
///
/// Takeover time after SIGKILL over 10 runs (each asserted to happen within lease + one
/// look + slack), and DynamoDB requests per hour of a leader and of a standby of one rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement for the README; see the doc comment"]
async fn figures_takeover_after_sigkill_and_requests_per_hour() {
    let lease_s: u64 = std::env::var("AUTHPULSE_HA_BENCH_LEASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LEASE_S);
    let receiver = Receiver::start(200).await;
    let mut cluster = Cluster::new(&receiver, &traffic_lines(0..30, 0..0));
    cluster.inner.lease_s = lease_s;
    let lease = Duration::from_secs(lease_s);
    let mut leader = cluster.start("r0");
    leader.wait_ready(Duration::from_secs(60)).await;
    let mut standby = cluster.start("r1");
    standby.wait_ready(Duration::from_secs(60)).await;
    assert!(leads(&leader).await);

    // Requests while nothing happens but the leases (no bin closes, nothing is paged).
    let window = lease * 4;
    let (l0, s0) = (requests(&leader).await, requests(&standby).await);
    tokio::time::sleep(window).await;
    let (l1, s1) = (requests(&leader).await, requests(&standby).await);
    let per_hour = |a: f64, b: f64| (b - a) * 3600.0 / window.as_secs_f64();
    eprintln!(
        "lease {lease_s}s: DynamoDB requests per hour, leader of 1 rule {:.0}, standby {:.0}",
        per_hour(l0, l1),
        per_hour(s0, s1)
    );

    let mut took = Vec::new();
    for i in 0..10 {
        assert!(leads(&leader).await, "{}", logs(&[&leader, &standby]));
        leader.kill();
        let killed = Instant::now();
        assert!(
            until(lease + lease / 3 + SLACK, async || leads(&standby).await).await,
            "{}",
            logs(&[&leader, &standby])
        );
        took.push(killed.elapsed());
        leader = standby;
        standby = cluster.start(&format!("r{}", i + 2));
        standby.wait_ready(Duration::from_secs(60)).await;
    }
    took.sort();
    eprintln!(
        "lease {lease_s}s: takeover after SIGKILL over {} runs: median {:.2}s, worst {:.2}s, all {:?}",
        took.len(),
        (took[4] + took[5]).as_secs_f64() / 2.0,
        took[took.len() - 1].as_secs_f64(),
        took.iter().map(|d| (d.as_secs_f64() * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    assert!(leader.terminate().success());
    assert!(standby.terminate().success());
}
