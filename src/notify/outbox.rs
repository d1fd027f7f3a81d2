//! The durable outbox: every notification is on disk before the first attempt to send
//! it, and leaves the disk only once its sink accepted it.
//!
//! # Design: one file per notification and sink, published by atomic rename
//!
//! ```text
//!   state_dir/outbox/<queue>/00000000000000000042-<idempotency key>.json   pending
//!   state_dir/outbox/<queue>/.tmp-42                                       being written
//!   state_dir/outbox/<queue>/dead/…                                        given up (kept)
//!   state_dir/outbox/<queue>/corrupt/…                                     unreadable (kept)
//! ```
//!
//! A queue is one sink (its [`crate::sink::SinkSpec::queue_id`]). Enqueueing writes the
//! record to a temporary file, `fsync`s it, renames it to its final name and `fsync`s the
//! directory; delivery `unlink`s it and `fsync`s the directory. Why this and not an
//! append-only journal or an embedded database:
//!
//! - **Crash safety is the file system's, not ours.** `rename` is atomic: after a crash
//!   a record either exists complete or not at all, and a leftover `.tmp-*` is simply a
//!   notification that was never accepted into the outbox (the caller had not been told
//!   it was, so it is regenerated, see [`super::ledger`]). A journal needs torn-write
//!   detection, replay and compaction to get the same guarantee; a database is a
//!   dependency and a file format to own.
//! - **The volume is tiny.** A pager sends a handful of notifications a day; two `fsync`s
//!   per notification and one per delivery cost nothing, and a directory listing at start
//!   is the whole recovery.
//! - **Queues are independent.** Each sink has its own directory and its own worker, so a
//!   dead webhook never delays SNS, and removing one record never rewrites another.
//! - **Operators can see it.** `ls` shows what is stuck; a dead letter is a readable JSON
//!   file next to the queue.
//!
//! File names sort in enqueue order (a zero-padded sequence number), so each queue is
//! delivered first in, first out: a `resolved` never overtakes its `firing`. The name
//! also carries the idempotency key, and a queue refuses a second record with a key it
//! already holds, so a notification regenerated after a crash is not queued twice.
//!
//! All methods do blocking I/O; async callers run them on the blocking pool.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::state_file::{sync_dir, write_atomic};

/// One pending notification for one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub queue: String,
    pub seq: u64,
    pub path: PathBuf,
    /// Wall-clock time it was queued (ms since the epoch), for `give_up_after`.
    pub enqueued_ms: i64,
    pub alert: Alert,
}

/// The file format of one record.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    queue: String,
    enqueued_ms: i64,
    alert: Alert,
}

const RECORD_VERSION: u32 = 1;

#[derive(Debug)]
pub struct Outbox {
    root: PathBuf,
    next_seq: AtomicU64,
    /// Idempotency keys pending per queue.
    pending: Mutex<HashMap<String, HashSet<String>>>,
    depth: AtomicUsize,
}

/// What [`Outbox::open`] found on disk.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Pending entries per configured queue, oldest first.
    pub queues: HashMap<String, Vec<Entry>>,
    /// Records that could not be read, moved to `corrupt/`.
    pub corrupt: usize,
    /// Pending records of queues no sink uses any more (left on disk).
    pub orphaned: usize,
}

/// Sequence numbers this outbox writes stay below this (10^19: the next one after any
/// of them still fits in a `u64`).
const SEQ_LIMIT: u64 = 10_000_000_000_000_000_000;

/// `00000000000000000042-<key>.json` → 42; `None` for a name this outbox never writes
/// (including a number at or past [`SEQ_LIMIT`], after which the next would overflow).
fn seq_of(name: &str) -> Option<u64> {
    let seq: u64 = name
        .strip_suffix(".json")?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    (seq < SEQ_LIMIT).then_some(seq)
}

/// Move a file into `dir/<sub>/`, creating it; returns the new path.
fn move_into(file: &Path, sub: &str) -> io::Result<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(".")).join(sub);
    fs::create_dir_all(&dir)?;
    let to = dir.join(file.file_name().unwrap_or_default());
    fs::rename(file, &to)?;
    sync_dir(&dir)?;
    sync_dir(file.parent().unwrap_or(Path::new(".")))?;
    Ok(to)
}

impl Outbox {
    /// Open (creating) the outbox under `state_dir` for the given queues and load what is
    /// pending. Leftover temporary files are removed; unreadable records are moved to
    /// `corrupt/` and counted; records of unknown queues are left alone and counted.
    pub fn open(state_dir: &Path, queues: &[String]) -> io::Result<(Outbox, Recovered)> {
        let root = state_dir.join("outbox");
        fs::create_dir_all(&root)?;
        let mut recovered = Recovered::default();
        let mut max_seq = 0;
        let mut pending: HashMap<String, HashSet<String>> = HashMap::new();
        for q in queues {
            fs::create_dir_all(root.join(q))?;
        }
        sync_dir(&root)?;
        sync_dir(state_dir)?;
        for dir in fs::read_dir(&root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            let queue = dir.file_name().to_string_lossy().into_owned();
            let configured = queues.contains(&queue);
            let mut entries = Vec::new();
            for file in fs::read_dir(dir.path())? {
                let file = file?;
                let name = file.file_name().to_string_lossy().into_owned();
                let path = file.path();
                if !file.file_type()?.is_file() {
                    continue;
                }
                if name.starts_with(".tmp-") {
                    // Never renamed into place: never accepted. Safe to drop.
                    fs::remove_file(&path)?;
                    continue;
                }
                let Some(seq) = seq_of(&name) else {
                    if name.ends_with(".json") {
                        tracing::warn!(queue = %queue, file = %path.display(), "not an outbox record's name (<sequence number below 10^19>-<key>.json): left alone, not delivered");
                    }
                    continue;
                };
                max_seq = max_seq.max(seq);
                if !configured {
                    recovered.orphaned += 1;
                    continue;
                }
                if let Some(entry) = read_record(&path, &queue, seq, &mut recovered)? {
                    entries.push(entry);
                }
            }
            if configured {
                entries.sort_by_key(|e| e.seq);
                pending.insert(
                    queue.clone(),
                    entries
                        .iter()
                        .map(|e| e.alert.idempotency_key.clone())
                        .collect(),
                );
                recovered.queues.insert(queue, entries);
            }
        }
        let depth = recovered.queues.values().map(Vec::len).sum();
        Ok((
            Outbox {
                root,
                next_seq: AtomicU64::new(max_seq + 1),
                pending: Mutex::new(pending),
                depth: AtomicUsize::new(depth),
            },
            recovered,
        ))
    }

    /// Notifications pending over all queues.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Durably queue `alert` for `queue`. `Ok(None)`: a record with the same idempotency
    /// key is already pending there (a regenerated notification), nothing written.
    pub fn enqueue(&self, queue: &str, alert: &Alert, now_ms: i64) -> io::Result<Option<Entry>> {
        let key = &alert.idempotency_key;
        {
            let pending = self.pending.lock().map_err(|_| poisoned())?;
            if pending.get(queue).is_some_and(|keys| keys.contains(key)) {
                return Ok(None);
            }
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(queue);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{seq:020}-{key}.json"));
        let enqueued_ms = now_ms;
        let record = Record {
            version: RECORD_VERSION,
            queue: queue.to_string(),
            enqueued_ms,
            alert: alert.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&record)?;
        write_atomic(&path, &dir.join(format!(".tmp-{seq}")), &bytes)?;
        self.pending
            .lock()
            .map_err(|_| poisoned())?
            .entry(queue.to_string())
            .or_default()
            .insert(key.clone());
        self.depth.fetch_add(1, Ordering::Relaxed);
        Ok(Some(Entry {
            queue: queue.to_string(),
            seq,
            path,
            enqueued_ms,
            alert: alert.clone(),
        }))
    }

    fn forget(&self, entry: &Entry) -> io::Result<()> {
        let mut pending = self.pending.lock().map_err(|_| poisoned())?;
        if let Some(keys) = pending.get_mut(&entry.queue) {
            if keys.remove(&entry.alert.idempotency_key) {
                self.depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// The sink accepted `entry`: delete it for good.
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        if entry.path.as_os_str().is_empty() {
            // Held in memory only (the outbox could not be written).
            return Ok(());
        }
        match fs::remove_file(&entry.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(entry.path.parent().unwrap_or(Path::new(".")))?;
        self.forget(entry)
    }

    /// `entry` will never be delivered (permanent error, or retried too long): move it to
    /// the queue's `dead/` directory, where an operator can inspect or resend it.
    pub fn dead_letter(&self, entry: &Entry) -> io::Result<PathBuf> {
        let to = move_into(&entry.path, "dead")?;
        self.forget(entry)?;
        Ok(to)
    }
}

/// One record of a queue, or `None` when it is unreadable or of an unknown version (it is
/// then moved to `corrupt/` and counted, never delivered).
fn read_record(
    path: &Path,
    queue: &str,
    seq: u64,
    recovered: &mut Recovered,
) -> io::Result<Option<Entry>> {
    let read = fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
    match read {
        Ok(r) if r.version == RECORD_VERSION => Ok(Some(Entry {
            queue: queue.to_string(),
            seq,
            path: path.to_path_buf(),
            enqueued_ms: r.enqueued_ms,
            alert: r.alert,
        })),
        Ok(r) => {
            recovered.corrupt += 1;
            let to = move_into(path, "corrupt")?;
            tracing::error!(queue = %queue, file = %to.display(), version = r.version, "outbox record has an unknown version; moved aside, not delivered");
            Ok(None)
        }
        Err(error) => {
            recovered.corrupt += 1;
            let to = move_into(path, "corrupt")?;
            tracing::error!(queue = %queue, file = %to.display(), %error, "outbox record is unreadable; moved aside, not delivered");
            Ok(None)
        }
    }
}

fn poisoned() -> io::Error {
    io::Error::other("outbox index lock poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use crate::sink::render::tests::sample_alert;

    fn queues() -> Vec<String> {
        vec!["webhook-00000001".to_string(), "sns-00000002".to_string()]
    }

    #[test]
    fn entries_survive_reopen_in_order_and_leave_when_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (ob, rec) = Outbox::open(dir.path(), &queues()).unwrap();
        assert!(rec.queues.values().all(Vec::is_empty));
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        let b = sample_alert(Status::Resolved, "2026-11-25T11:00:00Z");
        let e1 = ob.enqueue("webhook-00000001", &a, 1_000).unwrap().unwrap();
        let e2 = ob.enqueue("webhook-00000001", &b, 1_000).unwrap().unwrap();
        ob.enqueue("sns-00000002", &a, 1_000).unwrap().unwrap();
        assert!(e2.seq > e1.seq);
        assert_eq!(ob.depth(), 3);
        // A regenerated notification with the same key is not queued twice.
        assert!(ob.enqueue("webhook-00000001", &a, 1_000).unwrap().is_none());
        drop(ob);

        let (ob, rec) = Outbox::open(dir.path(), &queues()).unwrap();
        let w = &rec.queues["webhook-00000001"];
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].alert, a);
        assert_eq!(w[1].alert, b);
        assert_eq!(ob.depth(), 3);
        ob.remove(&w[0]).unwrap();
        let dead = ob.dead_letter(&w[1]).unwrap();
        assert!(dead.exists());
        assert_eq!(ob.depth(), 1);
        // New sequence numbers continue after the ones on disk.
        let e3 = ob.enqueue("webhook-00000001", &a, 1_000).unwrap().unwrap();
        assert!(e3.seq > e2.seq);
        drop(ob);

        let (_, rec) = Outbox::open(dir.path(), &queues()).unwrap();
        assert_eq!(rec.queues["webhook-00000001"].len(), 1);
        assert_eq!(rec.queues["sns-00000002"].len(), 1);
    }

    /// Found by the fuzz driver: a record named with the largest sequence number made
    /// the next one overflow (a panic with overflow checks, a wrap to 0 that breaks the
    /// queue's order without).
    #[test]
    fn a_sequence_number_with_no_room_after_it_is_not_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("outbox").join("webhook-00000001");
        std::fs::create_dir_all(&q).unwrap();
        std::fs::write(q.join(format!("{}-k.json", u64::MAX)), "{}").unwrap();
        std::fs::write(q.join(format!("{SEQ_LIMIT}-k.json")), "{}").unwrap();
        let (ob, rec) = Outbox::open(dir.path(), &queues()).unwrap();
        assert!(rec.queues["webhook-00000001"].is_empty());
        assert_eq!(rec.corrupt, 0);
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        assert_eq!(
            ob.enqueue("webhook-00000001", &a, 1).unwrap().unwrap().seq,
            1
        );
        assert_eq!(
            seq_of(&format!("{}-k.json", SEQ_LIMIT - 1)),
            Some(SEQ_LIMIT - 1)
        );
    }

    #[test]
    fn torn_and_corrupt_records_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let (ob, _) = Outbox::open(dir.path(), &queues()).unwrap();
        let a = sample_alert(Status::Firing, "2026-11-25T10:15:00Z");
        ob.enqueue("webhook-00000001", &a, 1_000).unwrap().unwrap();
        drop(ob);
        let q = dir.path().join("outbox/webhook-00000001");
        fs::write(q.join(".tmp-99"), b"{\"version\":1,\"que").unwrap();
        fs::write(q.join("00000000000000000098-x.json"), b"{\"version\":1,").unwrap();
        fs::create_dir_all(dir.path().join("outbox/webhook-gone")).unwrap();
        fs::write(
            dir.path()
                .join("outbox/webhook-gone/00000000000000000097-y.json"),
            b"{}",
        )
        .unwrap();

        let (ob, rec) = Outbox::open(dir.path(), &queues()).unwrap();
        assert_eq!(rec.queues["webhook-00000001"].len(), 1);
        assert_eq!(rec.corrupt, 1);
        assert_eq!(rec.orphaned, 1);
        assert!(!q.join(".tmp-99").exists());
        assert!(q.join("corrupt/00000000000000000098-x.json").exists());
        // Sequence numbers continue after every name seen, orphans included.
        let e = ob.enqueue("sns-00000002", &a, 1_000).unwrap().unwrap();
        assert_eq!(e.seq, 99);
    }
}
