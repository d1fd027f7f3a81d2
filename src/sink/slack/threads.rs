//! The incidents' messages, remembered across restarts in
//! `state_dir/slack-threads-<id>.json` (a [`crate::state_file`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::state_file::{Format, StateFile};

/// Incidents whose message is remembered, at most.
pub const MAX_THREADS: usize = 5000;

/// The message of one incident in Slack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The channel's id, as `chat.postMessage` answered (`chat.update` needs it).
    pub channel: String,
    pub ts: String,
    /// The incident's start, to forget the oldest first.
    pub started_ms: i64,
}

/// Fingerprint → its message.
pub type Threads = BTreeMap<String, Posted>;

/// The threads file, written by versions before [`crate::state_file`]: plain JSON.
#[derive(Deserialize)]
struct PlainThreads {
    version: u32,
    messages: Threads,
}

/// `state_dir/slack-threads-<file_id>.json`. Files written as plain JSON
/// (`{"version": 1, "messages": …}`) by earlier versions still load.
pub fn threads_file(state_dir: &Path, file_id: &str, clock: SharedClock) -> StateFile<Threads> {
    StateFile::new(
        state_dir.join(format!("slack-threads-{file_id}.json")),
        Format {
            header: "authpulse-slack-threads v1 sha256=",
            what: "Slack threads",
            if_lost: "resolves of incidents posted before are posted as new messages",
            legacy: Some(|bytes| {
                let plain: PlainThreads =
                    serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                match plain.version {
                    1 => Ok(plain.messages),
                    v => Err(format!("unknown version {v}")),
                }
            }),
        },
        clock,
    )
}

/// Remember (`Some`) or forget (`None`) an incident's message; past [`MAX_THREADS`] the
/// incidents that started first are forgotten.
pub(super) fn remember(threads: &mut Threads, fingerprint: &str, posted: Option<Posted>) {
    match posted {
        Some(p) => {
            threads.insert(fingerprint.to_string(), p);
        }
        None => {
            threads.remove(fingerprint);
        }
    }
    while threads.len() > MAX_THREADS {
        let oldest = threads
            .iter()
            .min_by_key(|(_, p)| p.started_ms)
            .map(|(fp, _)| fp.clone());
        match oldest {
            Some(fp) => threads.remove(&fp),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::state_file::Loaded;

    #[test]
    fn an_unreadable_threads_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let file = threads_file(dir.path(), "x", ManualClock::at(1_795_600_000_000));
        std::fs::write(file.path(), b"{\"version\":1,\"mess").unwrap();
        let (threads, how) = file.load().unwrap();
        assert_eq!(threads, Threads::default());
        let Loaded::MovedAside { to, reason } = how else {
            panic!("{how:?}")
        };
        assert_eq!(
            to,
            dir.path()
                .join("slack-threads-x.json.corrupt-1795600000000")
        );
        assert!(reason.contains("EOF"), "{reason}");
        assert!(!file.path().exists());
        let t = Threads::from([(
            "fp".to_string(),
            Posted {
                channel: "C1".into(),
                ts: "1.2".into(),
                started_ms: 5,
            },
        )]);
        file.save(&t).unwrap();
        assert_eq!(file.load().unwrap(), (t, Loaded::Restored));
    }

    #[test]
    fn past_the_cap_the_oldest_incidents_are_forgotten() {
        let mut t = Threads::new();
        let posted = |started_ms| Posted {
            channel: "C1".into(),
            ts: "1.2".into(),
            started_ms,
        };
        for i in 0..MAX_THREADS as i64 {
            remember(&mut t, &format!("fp{i}"), Some(posted(1000 + i)));
        }
        remember(&mut t, "late", Some(posted(1)));
        assert_eq!(t.len(), MAX_THREADS);
        assert!(!t.contains_key("late"), "the earliest start goes first");
        remember(&mut t, "new", Some(posted(1_000_000)));
        assert_eq!(t.len(), MAX_THREADS);
        assert!(t.contains_key("new") && !t.contains_key("fp0"));
        remember(&mut t, "new", None);
        assert_eq!(t.len(), MAX_THREADS - 1);
    }
}
