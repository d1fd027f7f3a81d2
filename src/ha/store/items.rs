//! The outbox and ledger items of one rule on the shared table: how an [`Entry`] is
//! keyed and read back, a new item's sequence, a fenced write, a rule's part of the
//! ledger.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::alert::Alert;
use crate::ha::dynamo::{self, get_n, get_s, n, s, DbError, Item, Table};
use crate::ha::replica::{lock, unavailable, Replica};
use crate::notify::ledger::AlertState;
use crate::notify::outbox::Entry;
use crate::notify::store::StoreError;

/// The outbox item's sort key: `<queue>#<idempotency key>`.
pub(super) fn sk_of(entry: &Entry) -> String {
    format!("{}#{}", entry.queue, entry.alert.idempotency_key)
}

/// Dead letters stay this long (TTL).
pub(super) const DEAD_LETTER_TTL_S: i64 = 30 * 86_400;

/// The part of `state` that belongs to `rule`.
pub fn rule_part(state: &AlertState, rule: &str) -> AlertState {
    AlertState {
        watermarks: state
            .watermarks
            .iter()
            .filter(|(r, _)| r.as_str() == rule)
            .map(|(r, w)| (r.clone(), *w))
            .collect(),
        notified: state
            .notified
            .iter()
            .filter(|(_, n)| n.alert.rule == rule)
            .map(|(fp, n)| (fp.clone(), n.clone()))
            .collect(),
    }
}

impl Replica {
    pub(super) fn entry_of(&self, rule: &str, item: &Item) -> Option<Entry> {
        let sk = get_s(item, "sk")?;
        let queue = sk.split_once('#')?.0.to_string();
        let alert: Alert = serde_json::from_str(get_s(item, "alert")?).ok()?;
        if alert.rule != rule {
            return None;
        }
        Some(Entry {
            queue,
            seq: get_n(item, "seq").unwrap_or(0) as u64,
            path: PathBuf::from(sk),
            enqueued_ms: get_n(item, "enqueued_ms").unwrap_or(0),
            alert,
        })
    }

    pub(super) fn forget(&self, entry: &Entry) {
        if let Some(keys) = lock(&self.pending).get_mut(&entry.queue) {
            if keys.remove(&entry.alert.idempotency_key) {
                self.depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn seq(&self) -> u64 {
        let floor = (self.now().max(0) as u64) * 1000;
        let mut cur = self.next_seq.load(Ordering::Relaxed);
        loop {
            let next = cur.max(floor) + 1;
            match self
                .next_seq
                .compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => cur = seen,
            }
        }
    }

    /// The transaction that queues `alert` under `sk`: the lease check, and the outbox
    /// item unless it exists.
    pub(super) fn outbox_write(
        &self,
        sk: &str,
        alert: &Alert,
        seq: u64,
        now_ms: i64,
        token: u64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let rule = &alert.rule;
        let mut item = Table::item(&dynamo::outbox_pk(rule), sk);
        item.insert("seq".into(), n(seq));
        item.insert("enqueued_ms".into(), n(now_ms));
        item.insert(
            "alert".into(),
            s(serde_json::to_string(alert).map_err(|e| StoreError::Io(e.to_string()))?),
        );
        item.insert("token".into(), n(token));
        Ok(vec![
            dynamo::lease_check(&self.table.name, rule, &self.me, token).map_err(unavailable)?,
            self.table
                .put(item, Some("attribute_not_exists(pk)"))
                .map_err(unavailable)?,
        ])
    }

    /// An entry held in memory because its queue write did not answer: that write may
    /// have landed (a timeout says nothing), and a next leader would deliver it again.
    /// So it is written (if absent) before it is claimed like any other. False: fenced.
    pub(super) fn rewrite(&self, entry: &Entry) -> Result<bool, StoreError> {
        let rule = &entry.alert.rule;
        let Some(token) = self.token(rule) else {
            return Err(StoreError::Unavailable(format!(
                "the lease of {rule:?} is not renewed yet"
            )));
        };
        let items = self.outbox_write(
            &sk_of(entry),
            &entry.alert,
            entry.seq,
            entry.enqueued_ms,
            token,
        )?;
        match self.block(self.table.transact("TransactWriteItems(enqueue)", items)) {
            Ok(()) | Err(DbError::Condition(1)) => Ok(true),
            Err(DbError::Condition(_)) => {
                self.fenced(rule, "deliver");
                self.forget(entry);
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub(super) fn write_state(
        &self,
        rule: &str,
        token: u64,
        body: String,
    ) -> Result<(), StoreError> {
        let mut item = Table::item(dynamo::STATE_PK, rule);
        item.insert("body".into(), s(body.clone()));
        item.insert("token".into(), n(token));
        item.insert("saved_ms".into(), n(self.now()));
        item.insert("saved_by".into(), s(self.me.clone()));
        let items = vec![
            dynamo::lease_check(&self.table.name, rule, &self.me, token).map_err(unavailable)?,
            self.table.put(item, None).map_err(unavailable)?,
        ];
        match self.block(self.table.transact("TransactWriteItems(state)", items)) {
            Ok(()) => {
                lock(&self.saved).insert(rule.to_string(), body);
                Ok(())
            }
            Err(DbError::Condition(_)) => Err(self.fenced(rule, "state")),
            Err(e) => Err(unavailable(e)),
        }
    }
}
