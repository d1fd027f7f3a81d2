//! The route's [`AlertStore`] on the shared table ([`Replica`]'s ledger and outbox).
//!
//! Fencing: every write of a rule's shared state (its ledger, a new outbox item) is a
//! transaction whose first item checks the rule's lease item: `owner = me AND token =
//! mine`. Every delivery is preceded by a *claim*, a transaction of the same check and an
//! update of the outbox item that requires it to still exist. A replica that lost the
//! lease (paused past it, partitioned) thus cannot queue, overwrite or send: the check
//! fails, the write is counted in `authpulse_ha_fenced_writes_total{op}`, and the rule is
//! dropped at once. Removing a delivered item is not fenced: it was sent, and deleting
//! it only stops the next leader from sending it again.
//!
//! What cannot be fenced by a store: a replica paused *between* a successful claim and
//! the HTTP request of the send. Each notification carries its idempotency key, and
//! receivers drop repeats by it.
//!
//! `items` writes and reads the outbox and ledger items this trait's methods are made of.

mod items;

pub use items::rule_part;

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::dynamo::{self, get_s, n, s, DbError, Table};
use super::replica::{fenced, lock, unavailable, Replica};
use crate::alert::Alert;
use crate::notify::ledger::AlertState;
use crate::notify::outbox::{Entry, Recovered};
use crate::notify::store::{AlertStore, StoreError, Takeover};
use items::{sk_of, DEAD_LETTER_TTL_S};

impl AlertStore for Replica {
    fn describe(&self) -> String {
        format!("DynamoDB table {} (replica {})", self.table.name, self.me)
    }

    fn leads(&self, rule: &str) -> bool {
        lock(&self.leases).leads(rule, self.now())
    }

    fn coordinating(&self) -> bool {
        self.coordinating.load(Ordering::SeqCst)
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changed.subscribe())
    }

    fn set_warm(&self, warm: bool) {
        self.warm.store(warm, Ordering::SeqCst);
    }

    fn take_changes(&self) -> Vec<(String, bool)> {
        let now = self.now();
        let mut leases = lock(&self.leases);
        let mut out: Vec<(String, bool)> = leases.lost.drain(..).map(|r| (r, false)).collect();
        for (rule, h) in &leases.held {
            if !h.loaded && now < h.valid_until_ms {
                out.push((rule.clone(), true));
            }
        }
        out
    }

    fn open(&self, queues: &[String]) -> io::Result<(AlertState, Recovered)> {
        // A new route (a start or a reload): every rule held is loaded again by it, and
        // its pipeline loads its history again.
        self.warm.store(false, Ordering::SeqCst);
        for h in lock(&self.leases).held.values_mut() {
            h.loaded = false;
        }
        lock(&self.saved).clear();
        *lock(&self.pending) = queues.iter().map(|q| (q.clone(), HashSet::new())).collect();
        self.depth.store(0, Ordering::Relaxed);
        self.bump();
        let recovered = Recovered {
            queues: queues.iter().map(|q| (q.clone(), Vec::new())).collect(),
            ..Recovered::default()
        };
        Ok((AlertState::default(), recovered))
    }

    fn take_over(&self, rule: &str, queues: &[String]) -> Result<Takeover, StoreError> {
        let state_item = self
            .block(self.table.get(dynamo::STATE_PK, rule))
            .map_err(unavailable)?;
        let (state, body) = match state_item.as_ref().and_then(|i| get_s(i, "body")) {
            Some(body) => match serde_json::from_str::<AlertState>(body) {
                Ok(s) => (rule_part(&s, rule), body.to_string()),
                Err(error) => {
                    tracing::error!(%rule, %error, "the rule's shared state is unreadable; starting it empty (alerts sent before may be sent again; receivers drop repeats by idempotency key)");
                    (AlertState::default(), String::new())
                }
            },
            None => (AlertState::default(), String::new()),
        };
        let items = self
            .block(self.table.query(&dynamo::outbox_pk(rule)))
            .map_err(unavailable)?;
        let mut pending: Vec<Entry> = Vec::new();
        let mut orphaned = 0;
        for item in &items {
            match self.entry_of(rule, item) {
                Some(e) if queues.contains(&e.queue) => pending.push(e),
                Some(_) => orphaned += 1,
                None => {
                    tracing::error!(%rule, sk = get_s(item, "sk").unwrap_or(""), "unreadable outbox item; not delivered")
                }
            }
        }
        if orphaned > 0 {
            tracing::warn!(%rule, count = orphaned, "undelivered notifications for sinks no longer configured are left in the table");
        }
        pending.sort_by_key(|e| (e.seq, e.path.clone()));
        {
            let mut keys = lock(&self.pending);
            for e in &pending {
                if keys
                    .entry(e.queue.clone())
                    .or_default()
                    .insert(e.alert.idempotency_key.clone())
                {
                    self.depth.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(max) = pending.iter().map(|e| e.seq).max() {
            self.next_seq.fetch_max(max, Ordering::Relaxed);
        }
        let now = self.now();
        let mut leases = lock(&self.leases);
        match leases.held.get_mut(rule) {
            Some(h) if now < h.valid_until_ms => h.loaded = true,
            _ => {
                return Err(StoreError::Fenced(format!(
                    "lease of {rule:?} ran out while loading"
                )))
            }
        }
        drop(leases);
        lock(&self.saved).insert(rule.to_string(), body);
        self.set_leader_gauge(rule, true);
        Ok(Takeover { state, pending })
    }

    fn save(&self, state: &AlertState) -> Result<(), StoreError> {
        let rules = lock(&self.rules).clone();
        let mut result = Ok(());
        for rule in rules {
            if !self.leads(&rule) {
                continue;
            }
            let Some(token) = self.token(&rule) else {
                continue;
            };
            let part = rule_part(state, &rule);
            let body = serde_json::to_string(&part).map_err(|e| StoreError::Io(e.to_string()))?;
            if lock(&self.saved).get(&rule) == Some(&body) {
                continue;
            }
            if let Err(e) = self.write_state(&rule, token, body) {
                result = Err(e);
            }
        }
        result
    }

    fn enqueue(
        &self,
        queue: &str,
        alert: &Alert,
        now_ms: i64,
    ) -> Result<Option<Entry>, StoreError> {
        let rule = &alert.rule;
        let Some(token) = self.token(rule).filter(|_| self.leads(rule)) else {
            fenced("enqueue");
            return Err(StoreError::Fenced(format!("not leading rule {rule:?}")));
        };
        let key = &alert.idempotency_key;
        if lock(&self.pending)
            .get(queue)
            .is_some_and(|keys| keys.contains(key))
        {
            return Ok(None);
        }
        let seq = self.seq();
        let sk = format!("{queue}#{key}");
        let items = self.outbox_write(&sk, alert, seq, now_ms, token)?;
        match self.block(self.table.transact("TransactWriteItems(enqueue)", items)) {
            Ok(()) => {}
            Err(DbError::Condition(0)) => return Err(self.fenced(rule, "enqueue")),
            Err(DbError::Condition(_)) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        }
        if lock(&self.pending)
            .entry(queue.to_string())
            .or_default()
            .insert(key.clone())
        {
            self.depth.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(Entry {
            queue: queue.to_string(),
            seq,
            path: PathBuf::from(sk),
            enqueued_ms: now_ms,
            alert: alert.clone(),
        }))
    }

    fn claim(&self, entry: &Entry) -> Result<bool, StoreError> {
        if entry.path.as_os_str().is_empty() && !self.rewrite(entry)? {
            return Ok(false);
        }
        let rule = &entry.alert.rule;
        let now = self.now();
        let token = {
            let leases = lock(&self.leases);
            match leases.held.get(rule) {
                None => {
                    fenced("deliver");
                    return Ok(false);
                }
                Some(h) if now >= h.valid_until_ms || !h.loaded => {
                    return Err(StoreError::Unavailable(format!(
                        "the lease of {rule:?} is not renewed yet"
                    )))
                }
                Some(h) => h.token,
            }
        };
        let check =
            dynamo::lease_check(&self.table.name, rule, &self.me, token).map_err(unavailable)?;
        let items = vec![
            check,
            self.table
                .touch(&dynamo::outbox_pk(rule), &sk_of(entry), &self.me)
                .map_err(unavailable)?,
        ];
        match self.block(self.table.transact("TransactWriteItems(claim)", items)) {
            Ok(()) => Ok(true),
            Err(DbError::Condition(0)) => {
                self.fenced(rule, "deliver");
                self.forget(entry);
                Ok(false)
            }
            Err(DbError::Condition(_)) => {
                // Delivered (and removed) by another replica meanwhile.
                self.forget(entry);
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    fn remove(&self, entry: &Entry) -> io::Result<()> {
        // By key, also for an entry held in memory (its write may have landed).
        self.block(
            self.table
                .delete_now(&dynamo::outbox_pk(&entry.alert.rule), &sk_of(entry)),
        )
        .map_err(|e| io::Error::other(e.to_string()))?;
        self.forget(entry);
        Ok(())
    }

    fn dead_letter(&self, entry: &Entry) -> io::Result<String> {
        let rule = &entry.alert.rule;
        let sk = sk_of(entry);
        let mut item = Table::item(&dynamo::dead_pk(rule), &sk);
        item.insert(
            "alert".into(),
            s(serde_json::to_string(&entry.alert).map_err(io::Error::other)?),
        );
        item.insert("dead_ms".into(), n(self.now()));
        item.insert(
            dynamo::TTL_ATTRIBUTE.into(),
            n(self.now() / 1000 + DEAD_LETTER_TTL_S),
        );
        let items = vec![
            self.table
                .put(item, None)
                .map_err(|e| io::Error::other(e.to_string()))?,
            self.table
                .delete(&dynamo::outbox_pk(rule), &sk)
                .map_err(|e| io::Error::other(e.to_string()))?,
        ];
        self.block(self.table.transact("TransactWriteItems(dead)", items))
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.forget(entry);
        Ok(format!(
            "dynamodb://{}/{}/{sk}",
            self.table.name,
            dynamo::dead_pk(rule)
        ))
    }

    fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

/// Against the AWS emulator's DynamoDB (moto), started by `scripts/test.sh`.
#[cfg(test)]
#[cfg(feature = "aws-emulator")] // needs the emulator scripts/test.sh starts
mod tests {
    use super::super::replica::testing::{alert, blocking, table, LEASE};
    use super::*;
    use crate::alert::Status;
    use crate::clock::{Clock, ManualClock};
    use crate::ha::dynamo::get_n;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_is_held_renewed_taken_over_and_the_old_owner_is_fenced() {
        let t = table().await;
        let (ca, cb) = (ManualClock::at(1_000_000), ManualClock::at(5_000_000));
        let a = Replica::new(t.clone(), "a".into(), LEASE, ca.clone());
        let b = Replica::new(t.clone(), "b".into(), LEASE, cb.clone());
        for r in [&a, &b] {
            r.set_rules(vec!["r1".into()]);
        }
        let queues = vec!["webhook-1".to_string()];
        assert!(a.round().await);
        assert!(b.round().await);
        assert!(a.coordinating() && b.coordinating());
        // A holds r1 but pages nothing until its route loaded the rule's state.
        assert!(!a.leads("r1"));
        let (a2, q) = (a.clone(), queues.clone());
        blocking(move || a2.open(&q).unwrap()).await;
        assert_eq!(a.take_changes(), vec![("r1".to_string(), true)]);
        let (a2, q) = (a.clone(), queues.clone());
        let taken = blocking(move || a2.take_over("r1", &q).unwrap()).await;
        assert!(taken.pending.is_empty() && taken.state == AlertState::default());
        assert!(a.leads("r1") && !b.leads("r1"));
        assert!(a.take_changes().is_empty());
        assert_eq!(b.leaders()[0].owner, "a");

        let (fire, state, entry) = a_queues_a_firing(&a).await;

        // A renews: B keeps waiting, however long, while the counter moves.
        for _ in 0..3 {
            ca.advance(5_000);
            cb.advance(10_000);
            assert!(a.round().await);
            assert!(b.round().await);
            assert!(!b.leads("r1"));
        }
        // A stops renewing (paused). B sees the counter stand still for a lease.
        cb.advance(10_000);
        b.round().await;
        assert!(b.take_changes().is_empty());
        cb.advance(15_000);
        b.round().await;
        assert_eq!(b.take_changes(), vec![("r1".to_string(), true)]);
        let (b2, q) = (b.clone(), queues.clone());
        blocking(move || b2.open(&q).unwrap()).await;
        let (b2, q) = (b.clone(), queues.clone());
        let taken = blocking(move || b2.take_over("r1", &q).unwrap()).await;
        assert_eq!(taken.state, state, "B resumes A's ledger");
        assert_eq!(taken.pending.len(), 1, "and what A had queued");
        assert_eq!(taken.pending[0].alert, fire);
        assert!(b.leads("r1"));

        // A wakes up within what it believes is its lease: every write is fenced.
        ca.advance(1_000);
        a_is_fenced_and_steps_down(&a, &entry).await;

        // B delivers A's notification once; a second claim finds it gone.
        b_delivers_once(&b, &t, &taken.pending[0]).await;

        // A clean stop hands the rule back: at once to a warm replica (a cold one, still
        // loading its history, would wait a lease for a warm one first).
        a_warm_replica_takes_the_rule_back(&a, &b, &queues, &state).await;
    }

    /// A (leading r1) queues a firing once, records it in its ledger and saves it.
    async fn a_queues_a_firing(a: &Arc<Replica>) -> (Alert, AlertState, Entry) {
        let fire = alert("r1", Status::Firing, "2026-11-25T10:00:00Z");
        let mut state = AlertState::default();
        state.admit(&fire, None).unwrap();
        state.advance("r1", fire.bin_start.ms() + 900_000);
        let (a2, f) = (a.clone(), fire.clone());
        let entry = blocking(move || a2.enqueue("webhook-1", &f, 7).unwrap())
            .await
            .unwrap();
        let (a2, f) = (a.clone(), fire.clone());
        assert!(blocking(move || a2.enqueue("webhook-1", &f, 7).unwrap())
            .await
            .is_none());
        let (a2, s2) = (a.clone(), state.clone());
        blocking(move || a2.save(&s2).unwrap()).await;
        assert_eq!(a.depth(), 1);
        (fire, state, entry)
    }

    /// A wakes up within what it believes is its lease: its claim and its enqueue are
    /// fenced, it steps down and its next round follows B.
    async fn a_is_fenced_and_steps_down(a: &Arc<Replica>, entry: &Entry) {
        assert!(a.leads("r1"), "A does not know yet");
        let (a2, e) = (a.clone(), entry.clone());
        assert_eq!(blocking(move || a2.claim(&e)).await, Ok(false));
        assert!(!a.leads("r1"), "stepped down");
        assert_eq!(a.take_changes(), vec![("r1".to_string(), false)]);
        let resolve = alert("r1", Status::Resolved, "2026-11-25T11:00:00Z");
        let (a2, r) = (a.clone(), resolve.clone());
        assert!(matches!(
            blocking(move || a2.enqueue("webhook-1", &r, 8)).await,
            Err(StoreError::Fenced(_))
        ));
        // A's next round sees B's lease and waits as a standby.
        assert!(a.round().await);
        assert!(!a.leads("r1"));
        assert_eq!(a.leaders()[0].owner, "b");
    }

    /// B delivers A's notification once; a second claim finds it gone.
    async fn b_delivers_once(b: &Arc<Replica>, t: &Table, pending: &Entry) {
        let (b2, e) = (b.clone(), pending.clone());
        assert_eq!(blocking(move || b2.claim(&e)).await, Ok(true));
        let (b2, e) = (b.clone(), pending.clone());
        blocking(move || b2.remove(&e).unwrap()).await;
        let (b2, e) = (b.clone(), pending.clone());
        assert_eq!(blocking(move || b2.claim(&e)).await, Ok(false));
        assert!(t.query(&dynamo::outbox_pk("r1")).await.unwrap().is_empty());
    }

    /// A clean stop hands the rule back: at once to a warm replica (a cold one, still
    /// loading its history, would wait a lease for a warm one first).
    async fn a_warm_replica_takes_the_rule_back(
        a: &Arc<Replica>,
        b: &Arc<Replica>,
        queues: &[String],
        state: &AlertState,
    ) {
        b.release_all().await;
        assert!(!b.leads("r1"));
        assert!(a.round().await);
        assert!(a.take_changes().is_empty(), "cold: waits");
        a.set_warm(true);
        assert!(a.round().await);
        assert_eq!(a.take_changes(), vec![("r1".to_string(), true)]);
        let (a2, q) = (a.clone(), queues.to_vec());
        let back = blocking(move || a2.take_over("r1", &q).unwrap()).await;
        assert_eq!(&back.state, state);
        assert!(back.pending.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_is_written_per_rule_only_when_it_changed_and_dead_letters_expire() {
        let t = table().await;
        let c = ManualClock::at(1_000_000);
        let a = Replica::new(t.clone(), "a".into(), LEASE, c.clone());
        a.set_rules(vec!["r1".into(), "r2".into()]);
        a.round().await;
        let q = vec!["sns-1".to_string()];
        let (a2, q2) = (a.clone(), q.clone());
        blocking(move || a2.open(&q2).unwrap()).await;
        for rule in ["r1", "r2"] {
            let (a2, q2) = (a.clone(), q.clone());
            blocking(move || a2.take_over(rule, &q2).unwrap()).await;
        }
        let mut state = AlertState::default();
        state
            .admit(&alert("r1", Status::Firing, "2026-11-25T10:00:00Z"), None)
            .unwrap();
        state
            .admit(&alert("r2", Status::Firing, "2026-11-25T10:00:00Z"), None)
            .unwrap();
        let before = t.get(dynamo::STATE_PK, "r1").await.unwrap();
        assert!(before.is_none());
        let (a2, s2) = (a.clone(), state.clone());
        blocking(move || a2.save(&s2).unwrap()).await;
        let r1 = t.get(dynamo::STATE_PK, "r1").await.unwrap().unwrap();
        let body: AlertState = serde_json::from_str(get_s(&r1, "body").unwrap()).unwrap();
        assert_eq!(body, rule_part(&state, "r1"));
        assert_eq!(body.notified.len(), 1);
        // Unchanged: not written again (its saved_ms stays).
        c.advance(60_000);
        let (a2, s2) = (a.clone(), state.clone());
        blocking(move || a2.save(&s2).unwrap()).await;
        let again = t.get(dynamo::STATE_PK, "r1").await.unwrap().unwrap();
        assert_eq!(get_n(&again, "saved_ms"), get_n(&r1, "saved_ms"));

        // A dead letter moves to its own partition with a TTL.
        a.round().await;
        let f = alert("r2", Status::Firing, "2026-11-25T10:00:00Z");
        let (a2, f2) = (a.clone(), f.clone());
        let e = blocking(move || a2.enqueue("sns-1", &f2, 1).unwrap())
            .await
            .unwrap();
        let (a2, e2) = (a.clone(), e.clone());
        let at = blocking(move || a2.dead_letter(&e2).unwrap()).await;
        assert!(at.starts_with("dynamodb://"), "{at}");
        let dead = t.query(&dynamo::dead_pk("r2")).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(get_n(&dead[0], dynamo::TTL_ATTRIBUTE).unwrap() > c.now_ms() / 1000);
        assert!(t.query(&dynamo::outbox_pk("r2")).await.unwrap().is_empty());
        assert_eq!(a.depth(), 0);
    }
}
