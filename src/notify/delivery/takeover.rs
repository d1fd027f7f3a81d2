//! With several replicas: alerts of rules another replica leads are kept for a takeover,
//! and when this replica gains a rule its shared state is loaded and the kept alerts are
//! admitted against it (see `ha/`).

use super::{firing_routed, Delivery};
use crate::alert::Alert;
use crate::notify::store::StoreError;

/// A standby keeps at most this many alerts per rule for a takeover ...
const STANDBY_KEEP: usize = 5_000;
/// ... of the newest day of bins.
const STANDBY_KEEP_MS: i64 = 86_400_000;

impl Delivery {
    /// Keep an alert of a rule another replica leads, for a takeover: the newest day
    /// of bins, at most [`STANDBY_KEEP`] alerts per rule.
    pub(super) fn keep_for_takeover(&mut self, alert: Alert) {
        let kept = self.standby.entry(alert.rule.clone()).or_default();
        let newest = alert.bin_start.ms();
        kept.push_back(alert);
        while kept.len() > STANDBY_KEEP
            || kept
                .front()
                .is_some_and(|a| a.bin_start.ms() < newest - STANDBY_KEEP_MS)
        {
            kept.pop_front();
        }
    }

    /// Apply what the store says changed: a rule gained is loaded (its ledger, its
    /// undelivered notifications, which go to the workers) and the alerts kept while
    /// another replica led it are admitted against that ledger (what the old leader
    /// handled is suppressed, the rest returned to be sent); a rule lost is forgotten.
    pub(super) async fn follow_leadership(&mut self) -> Vec<Alert> {
        let mut admitted = Vec::new();
        for (rule, gained) in self.store.take_changes() {
            self.state.watermarks.remove(&rule);
            self.state.notified.retain(|_, n| n.alert.rule != rule);
            if !gained {
                tracing::info!(%rule, "no longer leading this rule: another replica pages it");
                continue;
            }
            let ids: Vec<String> = self.queues.iter().map(|q| q.id.clone()).collect();
            let (store, r) = (self.store.clone(), rule.clone());
            let taken = tokio::task::spawn_blocking(move || store.take_over(&r, &ids))
                .await
                .unwrap_or_else(|e| Err(StoreError::Io(e.to_string())));
            let taken = match taken {
                Ok(t) => t,
                Err(error) => {
                    tracing::error!(%rule, %error, "cannot load the rule's shared state; not paging it until it loads");
                    continue;
                }
            };
            self.state.watermarks.extend(taken.state.watermarks);
            self.state.notified.extend(taken.state.notified);
            let owed = taken.pending.len();
            for entry in taken.pending {
                if let Some(q) = self.queues.iter().find(|q| q.id == entry.queue) {
                    let _ = q.tx.send(entry);
                }
            }
            for q in &self.queues {
                q.sink
                    .resume(firing_routed(&self.state, &q.route, Some(&rule)))
                    .await;
            }
            self.reconcile_pending |= self.caught_up;
            self.dirty = true;
            tracing::info!(
                %rule,
                watermark = ?self.state.watermark(&rule),
                firing = self.state.notified.values().filter(|n| n.alert.rule == rule && n.status == crate::alert::Status::Firing).count(),
                undelivered = owed,
                "leading this rule now: its shared state is loaded"
            );
        }
        // Alerts kept while another replica led a rule (or while this one could not
        // coordinate) are admitted once it leads again: its ledger drops what was
        // handled, the rest is new.
        let led: Vec<String> = self
            .standby
            .keys()
            .filter(|r| self.store.leads(r))
            .cloned()
            .collect();
        for rule in led {
            let kept = self.standby.remove(&rule).unwrap_or_default();
            let mut new = 0;
            for alert in kept {
                let repeat = self.repeat_interval(&alert);
                match self.state.admit(&alert, repeat) {
                    Ok(()) => {
                        new += 1;
                        admitted.push(alert);
                    }
                    Err(why) => self.count_suppressed(&alert, why),
                }
            }
            if new > 0 {
                tracing::info!(%rule, count = new, "alerts seen while not leading this rule were not handled by another replica: sending them");
            }
        }
        admitted
    }
}
