//! The lease keeper: every `lease/3` one look at every lease ([`super::lease`] decides,
//! [`super::dynamo`] writes), the coordination health it implies (`/readyz`,
//! `authpulse_ha_coordinating`), and the release of every lease at a clean stop.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::dynamo::{DbError, LeaseItem};
use super::lease::{decide, Action};
use super::replica::{fenced, lock, Replica};

impl Replica {
    /// One round of the lease keeper: look at every lease, renew ours, acquire or take
    /// over what is free or expired. Returns whether the table answered.
    pub async fn round(&self) -> bool {
        let rules = lock(&self.rules).clone();
        let started = self.now();
        let items = match self.table.leases().await {
            Ok(items) => items,
            Err(error) => {
                self.unreachable(&error.to_string());
                self.refresh_gauges(&rules);
                return false;
            }
        };
        let by_rule: HashMap<&str, &LeaseItem> =
            items.iter().map(|i| (i.rule.as_str(), i)).collect();
        let owners_before = lock(&self.leases).owners.clone();
        let mut ok = true;
        for rule in &rules {
            let item = by_rule.get(rule.as_str()).copied();
            ok &= self.keep_one(rule, item, started).await;
        }
        self.release_unconfigured(&rules).await;
        if lock(&self.leases).owners != owners_before {
            // Who leads what changed (for the status page).
            self.bump();
        }
        if ok {
            lock(&self.leases).last_ok_ms = Some(started);
            self.set_coordinating(true, None);
        } else {
            self.unreachable("lease requests failed");
        }
        self.refresh_gauges(&rules);
        ok
    }

    /// Decide about one rule's lease (as seen in the table at `started`) and act on it.
    /// False when a lease request failed (not when another replica won a race).
    async fn keep_one(&self, rule: &str, item: Option<&LeaseItem>, started: i64) -> bool {
        let action = {
            let mut leases = lock(&self.leases);
            if let Some(i) = item {
                leases.observe(i, started);
            }
            decide(
                &self.me,
                item,
                leases.held.get(rule),
                leases.seen.get(rule),
                started,
                self.lease_ms,
                self.warm.load(Ordering::SeqCst),
            )
        };
        let sent = self.now();
        let renewing = matches!(action, Action::Renew { .. });
        let result = match action {
            Action::Wait => return true,
            Action::Lost => {
                let by = item.map_or("", |i| i.owner.as_str());
                self.step_down(
                    rule,
                    &format!("paused or cut off past it, and {by:?} took it over"),
                );
                return true;
            }
            Action::Acquire => self.table.acquire(rule, &self.me, sent).await,
            Action::Renew { token } => self.table.renew(rule, &self.me, token, sent).await,
            Action::TakeOver(seen) => self.take_lease(rule, &seen, sent).await,
        };
        match result {
            Ok(mine) => {
                let gained = !lock(&self.leases).held.contains_key(rule);
                lock(&self.leases).hold(&mine, sent, self.lease_ms);
                if gained {
                    if mine.counter == 1 {
                        tracing::info!(%rule, replica = %self.me, "acquired this rule's lease");
                    }
                    self.bump();
                }
                true
            }
            Err(DbError::Condition(_)) => {
                if renewing {
                    self.step_down(rule, "another replica took it over");
                }
                // Acquire or takeover: another replica was faster. Fine.
                true
            }
            Err(error) => {
                tracing::warn!(%rule, %error, "lease request failed");
                false
            }
        }
    }

    /// Take over an expired or released lease.
    async fn take_lease(
        &self,
        rule: &str,
        seen: &LeaseItem,
        sent: i64,
    ) -> Result<LeaseItem, DbError> {
        let r = self.table.take_over(seen, &self.me, sent).await;
        if r.is_ok() {
            metrics::counter!("authpulse_ha_lease_takeovers_total", "rule" => rule.to_string())
                .increment(1);
            let how = if seen.owner.is_empty() {
                "released"
            } else {
                "expired"
            };
            tracing::info!(%rule, replica = %self.me, from = %seen.owner, "took over this rule's lease ({how})");
        }
        r
    }

    /// Our lease of `rule` is gone: count it as a fenced renewal and stop paging it.
    fn step_down(&self, rule: &str, why: &str) {
        fenced("renew");
        tracing::warn!(%rule, replica = %self.me, why, "lost this rule's lease: stepping down");
        lock(&self.leases).lose(rule);
        self.set_leader_gauge(rule, false);
        self.bump();
    }

    /// Leases of rules no longer configured are given up.
    async fn release_unconfigured(&self, rules: &[String]) {
        let stale: Vec<(String, u64)> = lock(&self.leases)
            .held
            .iter()
            .filter(|(r, _)| !rules.contains(r))
            .map(|(r, h)| (r.clone(), h.token))
            .collect();
        for (rule, token) in stale {
            let _ = self.table.release(&rule, &self.me, token).await;
            lock(&self.leases).lose(&rule);
            self.bump();
        }
    }

    /// `authpulse_ha_leader{rule}`: 1 while the lease is ours by our clock.
    fn refresh_gauges(&self, rules: &[String]) {
        let now = self.now();
        for rule in rules {
            let leads = lock(&self.leases).valid(rule, now).is_some();
            self.set_leader_gauge(rule, leads);
        }
    }

    /// The table did not answer: once the last good round is a lease old, this replica
    /// cannot coordinate (and its own leases have run out by its clock: it pages nothing).
    fn unreachable(&self, error: &str) {
        let last = lock(&self.leases).last_ok_ms;
        let stale = last.is_none_or(|t| self.now() - t >= self.lease_ms);
        if stale {
            self.set_coordinating(false, Some(error));
        } else {
            tracing::warn!(%error, "DynamoDB request failed; retrying");
        }
    }

    fn set_coordinating(&self, ok: bool, error: Option<&str>) {
        let was = self.coordinating.swap(ok, Ordering::SeqCst);
        metrics::gauge!("authpulse_ha_coordinating").set(if ok { 1.0 } else { 0.0 });
        if was != ok {
            if ok {
                tracing::info!(table = %self.table.name, "coordinating with the other replicas through DynamoDB");
            } else {
                tracing::error!(table = %self.table.name, error = error.unwrap_or(""), "cannot coordinate with the other replicas through DynamoDB: paging nothing until it answers (readyz 503)");
            }
            self.bump();
        }
    }

    /// One look: first, while `unsure` holds `Some(create_table)`, make sure the table
    /// exists (it could not be reached at start); then a [`Replica::round`].
    pub async fn look(&self, unsure: &mut Option<bool>) -> bool {
        if let Some(create) = *unsure {
            if let Err(error) = self.table.ensure(create).await {
                self.unreachable(&error);
                self.refresh_gauges(&lock(&self.rules).clone());
                return false;
            }
            *unsure = None;
        }
        self.round().await
    }

    /// Keep the leases until `stop` (`unsure`: see [`Replica::look`]), then release
    /// ours (a clean stop hands the rules over at once instead of after a lease).
    pub async fn keep(
        self: Arc<Self>,
        every: Duration,
        mut unsure: Option<bool>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            self.look(&mut unsure).await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// Give up every lease held (after the route stopped).
    pub async fn release_all(&self) {
        let held: Vec<(String, u64)> = lock(&self.leases)
            .held
            .iter()
            .map(|(r, h)| (r.clone(), h.token))
            .collect();
        for (rule, token) in held {
            match self.table.release(&rule, &self.me, token).await {
                Ok(_) => tracing::info!(%rule, replica = %self.me, "released this rule's lease"),
                Err(error) => {
                    tracing::warn!(%rule, %error, "cannot release the lease; another replica takes it over when it expires")
                }
            }
            lock(&self.leases).lose(&rule);
            self.set_leader_gauge(&rule, false);
        }
    }
}

/// Against the AWS emulator's DynamoDB (moto), started by `scripts/test.sh`.
#[cfg(test)]
#[cfg(feature = "aws-emulator")] // needs the emulator scripts/test.sh starts
mod tests {
    use super::super::dynamo::Table;
    use super::super::replica::testing::LEASE;
    use super::*;
    use crate::clock::ManualClock;
    use crate::notify::store::AlertStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_out_of_reach_at_start_is_retried_without_coordinating_meanwhile() {
        let endpoint = std::env::var("AUTHPULSE_TEST_AWS_ENDPOINT").unwrap();
        let sdk = crate::aws::sdk_config(Some("us-east-1".into()), Some(endpoint.clone())).await;
        let name = format!(
            "ha-unit-late-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let faults = format!("{endpoint}/_authpulse/faults");
        let http = reqwest::Client::new();
        let set = http
            .post(&faults)
            .json(&serde_json::json!({"log_group": name, "fail_dynamodb": 1000}))
            .send()
            .await
            .unwrap();
        assert!(set.status().is_success());
        let t = Table::new(&sdk, &name, Duration::from_secs(5));
        assert!(t.ensure(true).await.is_err());
        let r = Replica::new(t, "a".into(), LEASE, ManualClock::at(1_000));
        r.set_rules(vec!["r1".into()]);
        let mut unsure = Some(true);
        assert!(!r.look(&mut unsure).await);
        assert!(!r.coordinating() && !r.leads("r1"));
        assert_eq!(unsure, Some(true), "still to be made sure of");
        let cleared = http
            .delete(format!("{faults}?log_group={name}"))
            .send()
            .await
            .unwrap();
        assert!(cleared.status().is_success());
        assert!(r.look(&mut unsure).await);
        assert_eq!(unsure, None);
        assert!(r.coordinating());
        assert_eq!(r.take_changes(), vec![("r1".to_string(), true)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_table_is_an_error_when_creating_is_not_allowed() {
        let endpoint = std::env::var("AUTHPULSE_TEST_AWS_ENDPOINT").unwrap();
        let sdk = crate::aws::sdk_config(Some("us-east-1".into()), Some(endpoint)).await;
        let t = Table::new(&sdk, "ha-unit-never-created", Duration::from_secs(5));
        let e = t.ensure(false).await.unwrap_err();
        assert!(
            e.contains("does not exist and ha.create_table = false"),
            "{e}"
        );
    }
}
