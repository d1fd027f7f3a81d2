//! [`Replica`]: one replica's view of the shared table, which the lease keeper
//! ([`super::keeper`]), the route's store ([`super::store`]) and the bin exchange
//! ([`super::bins`]) all work on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::dynamo::{DbError, Table};
use super::lease::Leases;
use crate::clock::SharedClock;
use crate::notify::store::StoreError;

/// One replica's view of the shared table.
pub struct Replica {
    pub(super) table: Table,
    pub(super) me: String,
    pub(super) lease_ms: i64,
    pub(super) clock: SharedClock,
    pub(super) rules: Mutex<Vec<String>>,
    pub(super) leases: Mutex<Leases>,
    pub(super) changed: watch::Sender<u64>,
    pub(super) handle: tokio::runtime::Handle,
    /// Outbox keys pending per queue (the ones this replica knows of).
    pub(super) pending: Mutex<HashMap<String, HashSet<String>>>,
    pub(super) depth: AtomicUsize,
    pub(super) next_seq: AtomicU64,
    /// Rule → the state body last written or read: unchanged state is not written.
    pub(super) saved: Mutex<BTreeMap<String, String>>,
    pub(super) coordinating: AtomicBool,
    /// The route says the pipeline has loaded its history (see [`super::lease::decide`]).
    pub(super) warm: AtomicBool,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("table", &self.table.name)
            .field("me", &self.me)
            .finish()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn unavailable(e: DbError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(super) fn fenced(op: &'static str) {
    metrics::counter!("authpulse_ha_fenced_writes_total", "op" => op).increment(1);
}

/// Who leads a rule, for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub rule: String,
    /// Empty: nobody (released, or never taken).
    pub owner: String,
    pub me: bool,
}

impl Replica {
    pub fn new(table: Table, me: String, lease: Duration, clock: SharedClock) -> Arc<Replica> {
        Arc::new(Replica {
            table,
            me,
            lease_ms: lease.as_millis() as i64,
            clock,
            rules: Mutex::new(Vec::new()),
            leases: Mutex::new(Leases::default()),
            changed: watch::channel(0).0,
            handle: tokio::runtime::Handle::current(),
            pending: Mutex::new(HashMap::new()),
            depth: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            saved: Mutex::new(BTreeMap::new()),
            coordinating: AtomicBool::new(false),
            warm: AtomicBool::new(false),
        })
    }

    pub fn id(&self) -> &str {
        &self.me
    }

    /// The rules to lead (all configured rules; a reload changes them). A rule no longer
    /// configured is released.
    pub fn set_rules(&self, rules: Vec<String>) {
        *lock(&self.rules) = rules;
    }

    pub(super) fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(super) fn token(&self, rule: &str) -> Option<u64> {
        lock(&self.leases).valid(rule, self.now()).map(|h| h.token)
    }

    /// A fenced write failed its lease check: the rule is gone.
    pub(super) fn fenced(&self, rule: &str, op: &'static str) -> StoreError {
        fenced(op);
        tracing::warn!(%rule, op, replica = %self.me, "fenced: another replica holds this rule's lease now; stepping down");
        lock(&self.leases).lose(rule);
        self.set_leader_gauge(rule, false);
        self.bump();
        StoreError::Fenced(format!("rule {rule:?} is led by another replica"))
    }

    pub(super) fn set_leader_gauge(&self, rule: &str, leader: bool) {
        metrics::gauge!("authpulse_ha_leader", "rule" => rule.to_string()).set(if leader {
            1.0
        } else {
            0.0
        });
    }

    /// Who leads each configured rule, as of the last look at the table.
    pub fn leaders(&self) -> Vec<Leader> {
        let rules = lock(&self.rules).clone();
        let leases = lock(&self.leases);
        let now = self.now();
        rules
            .into_iter()
            .map(|rule| {
                let me = leases.leads(&rule, now);
                let owner = leases.owners.get(&rule).cloned().unwrap_or_default();
                Leader { rule, owner, me }
            })
            .collect()
    }

    /// Run a future to completion from the route's blocking threads.
    pub(super) fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.handle.block_on(f)
    }
}

/// What the emulator tests of `ha/` share (the AWS emulator's DynamoDB).
#[cfg(test)]
#[cfg(feature = "aws-emulator")] // needs the emulator scripts/test.sh starts
pub(super) mod testing {
    use super::*;
    use crate::alert::{Alert, Status};
    use crate::sink::render::tests::sample_alert;

    pub const LEASE: Duration = Duration::from_secs(15);

    pub async fn table() -> Table {
        let endpoint = std::env::var("AUTHPULSE_TEST_AWS_ENDPOINT")
            .expect("AUTHPULSE_TEST_AWS_ENDPOINT: run through scripts/test.sh");
        let sdk = crate::aws::sdk_config(Some("us-east-1".into()), Some(endpoint)).await;
        let name = format!("ha-unit-{}-{}", std::process::id(), rand::random::<u32>());
        let t = Table::new(&sdk, &name, Duration::from_secs(5));
        t.ensure(true).await.unwrap();
        // A second replica finds it there.
        t.ensure(false).await.unwrap();
        t
    }

    /// Run a blocking store call the way the route does.
    pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }

    pub fn alert(rule: &str, status: Status, bin: &str) -> Alert {
        let mut a = sample_alert(status, bin);
        a.rule = rule.to_string();
        a.fingerprint = format!("{}-{rule}", a.fingerprint);
        a.idempotency_key = format!("{}-{rule}", a.idempotency_key);
        a
    }
}
