//! Where the route keeps what must outlive the process: the ledger ([`super::ledger`])
//! and the outbox ([`super::outbox`]), behind one trait.
//!
//! [`LocalStore`] is the single-instance default: the two files in `daemon.state_dir`,
//! locked so that one daemon uses them, exactly as before. the `ha` layer implements the
//! same trait on a DynamoDB table shared by several replicas, where each rule is led by
//! one replica at a time and every write is fenced by that rule's lease.
//!
//! The methods block (files, or a DynamoDB call on the runtime): async callers run them
//! on the blocking pool, as the route always did for its files.

use std::io;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::ledger::{state_file, AlertState};
use super::outbox::{Entry, Outbox, Recovered};
use crate::alert::Alert;
use crate::clock::SharedClock;
use crate::state_file::{Loaded, StateFile};

/// Why a write of shared state did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// This replica no longer holds the rule's lease: another replica leads it now. The
    /// write must not happen, and the notification must not be delivered from here.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The store cannot be reached or refused for a while (throttling, errors).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Io(String),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// What one rule's shared state holds when a replica takes its lease over.
#[derive(Debug, Default)]
pub struct Takeover {
    pub state: AlertState,
    /// Undelivered notifications of the rule, per queue, oldest first.
    pub pending: Vec<Entry>,
}

/// The ledger and the outbox of the route (see the module docs).
pub trait AlertStore: Send + Sync + std::fmt::Debug {
    /// For log lines: where the state lives.
    fn describe(&self) -> String;

    /// May this replica page for `rule` now? (One instance: always.)
    fn leads(&self, rule: &str) -> bool;

    /// Can this replica coordinate with the others? (One instance: always.) When not,
    /// it pages nothing and says so (`/readyz` 503).
    fn coordinating(&self) -> bool {
        true
    }

    /// Bumped when leadership or coordination changes; `None` when it never does.
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// The pipeline has loaded its history (a warm standby is preferred for takeovers).
    fn set_warm(&self, _warm: bool) {}

    /// Rules gained (`true`) or lost (`false`) since the last call.
    fn take_changes(&self) -> Vec<(String, bool)> {
        Vec::new()
    }

    /// The state held at start, and the outbox's pending entries for `queues`.
    fn open(&self, queues: &[String]) -> io::Result<(AlertState, Recovered)>;

    /// The state and pending notifications of `rule`, just taken over.
    fn take_over(&self, _rule: &str, _queues: &[String]) -> Result<Takeover, StoreError> {
        Ok(Takeover::default())
    }

    /// Save the state (the parts of the rules this replica leads).
    fn save(&self, state: &AlertState) -> Result<(), StoreError>;

    /// Durably queue `alert` for `queue`; `Ok(None)`: already pending there.
    fn enqueue(&self, queue: &str, alert: &Alert, now_ms: i64)
        -> Result<Option<Entry>, StoreError>;

    /// Right before sending `entry`: may it be sent from here? `Ok(false)`: no, never
    /// from here (fenced, or delivered by another replica); drop it.
    fn claim(&self, _entry: &Entry) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// The sink accepted `entry`.
    fn remove(&self, entry: &Entry) -> io::Result<()>;

    /// `entry` will never be delivered: keep it aside; returns where.
    fn dead_letter(&self, entry: &Entry) -> io::Result<String>;

    /// Notifications pending over all queues.
    fn depth(&self) -> usize;
}

/// The single-instance store: `alert-state.json` and `outbox/` in the state directory.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    file: StateFile<AlertState>,
    outbox: std::sync::OnceLock<Outbox>,
    /// Held for the daemon's lifetime: the state directory's lock.
    _lock: std::fs::File,
}

/// The state directory is locked by another daemon.
#[derive(Debug)]
pub struct Locked;

impl LocalStore {
    /// Lock `dir` (one daemon per state directory: the lock goes when the process ends,
    /// however it ends).
    pub fn lock(dir: &Path, clock: SharedClock) -> io::Result<Result<LocalStore, Locked>> {
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        match lock.try_lock() {
            Ok(()) => Ok(Ok(LocalStore {
                dir: dir.to_path_buf(),
                file: state_file(dir, clock),
                outbox: std::sync::OnceLock::new(),
                _lock: lock,
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(Err(Locked)),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn outbox(&self) -> io::Result<&Outbox> {
        self.outbox
            .get()
            .ok_or_else(|| io::Error::other("the outbox is not open yet"))
    }
}

impl AlertStore for LocalStore {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn leads(&self, _rule: &str) -> bool {
        true
    }

    fn open(&self, queues: &[String]) -> io::Result<(AlertState, Recovered)> {
        let (outbox, recovered) = Outbox::open(&self.dir, queues)?;
        if recovered.orphaned > 0 {
            tracing::warn!(
                count = recovered.orphaned,
                dir = %self.dir.join("outbox").display(),
                "undelivered notifications for sinks no longer configured are left on disk"
            );
        }
        if recovered.corrupt > 0 {
            tracing::error!(
                count = recovered.corrupt,
                "unreadable outbox records were moved to corrupt/"
            );
        }
        let _ = self.outbox.set(outbox);
        let (state, loaded) = self.file.load()?;
        match &loaded {
            Loaded::Fresh => {
                tracing::info!(file = %self.file.path().display(), "no alert state yet: first start")
            }
            Loaded::Restored => tracing::info!(
                file = %self.file.path().display(),
                firing = state.firing(),
                rules = state.watermarks.len(),
                "alert state restored"
            ),
            Loaded::MovedAside { .. } => {}
        }
        Ok((state, recovered))
    }

    fn save(&self, state: &AlertState) -> Result<(), StoreError> {
        self.file
            .save(state)
            .map_err(|e| StoreError::Io(format!("cannot save {}: {e}", self.file.path().display())))
    }

    fn enqueue(
        &self,
        queue: &str,
        alert: &Alert,
        now_ms: i64,
    ) -> Result<Option<Entry>, StoreError> {
        Ok(self.outbox()?.enqueue(queue, alert, now_ms)?)
    }

    fn remove(&self, entry: &Entry) -> io::Result<()> {
        self.outbox()?.remove(entry)
    }

    fn dead_letter(&self, entry: &Entry) -> io::Result<String> {
        Ok(self.outbox()?.dead_letter(entry)?.display().to_string())
    }

    fn depth(&self) -> usize {
        self.outbox.get().map_or(0, Outbox::depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use crate::sink::render::tests::sample_alert;

    #[test]
    fn the_local_store_is_the_files_and_locks_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::lock(dir.path(), crate::clock::system())
            .unwrap()
            .unwrap();
        assert!(matches!(
            LocalStore::lock(dir.path(), crate::clock::system()).unwrap(),
            Err(Locked)
        ));
        let q = vec!["webhook-1".to_string()];
        let (state, rec) = store.open(&q).unwrap();
        assert_eq!(state, AlertState::default());
        assert!(rec.queues["webhook-1"].is_empty());
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let e = store.enqueue("webhook-1", &a, 5).unwrap().unwrap();
        assert!(store.enqueue("webhook-1", &a, 5).unwrap().is_none());
        assert_eq!(store.depth(), 1);
        assert!(store.leads("anything") && store.coordinating());
        assert_eq!(store.claim(&e), Ok(true));
        let mut s = AlertState::default();
        s.admit(&a, None).unwrap();
        store.save(&s).unwrap();
        drop(store);
        let store = LocalStore::lock(dir.path(), crate::clock::system())
            .unwrap()
            .unwrap();
        let (state, rec) = store.open(&q).unwrap();
        assert_eq!(state, s);
        assert_eq!(rec.queues["webhook-1"].len(), 1);
        store.remove(&rec.queues["webhook-1"][0]).unwrap();
        assert_eq!(store.depth(), 0);
    }
}
