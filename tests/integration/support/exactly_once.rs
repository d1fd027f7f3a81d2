//! Exactly once, the way the deploy and soak tests judge it: every notification the
//! backtest of the same events produces is delivered (answered 2xx by the receiver) once
//! by (fingerprint, status, bin), and nothing else is.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Daemon, Receiver};

/// A notification's identity: fingerprint, status, bin start.
pub type NoticeId = (String, String, String);

pub fn notice_id(v: &Value) -> NoticeId {
    let field = |name: &str| v[name].as_str().unwrap_or_default().to_string();
    (field("fingerprint"), field("status"), field("bin_start"))
}

/// Accepted deliveries counted by (fingerprint, status, bin): nothing deduplicated.
pub fn delivered(receiver: &Receiver) -> BTreeMap<NoticeId, usize> {
    let mut m = BTreeMap::new();
    for r in receiver.accepted() {
        *m.entry(notice_id(&r.json())).or_insert(0) += 1;
    }
    m
}

/// Delivered against expected.
#[derive(Debug)]
pub struct Tally {
    pub expected: usize,
    /// Accepted deliveries, repeats included.
    pub deliveries: usize,
    /// Expected and never delivered.
    pub lost: Vec<NoticeId>,
    /// Delivered more than once, with how often.
    pub duplicates: Vec<(NoticeId, usize)>,
    /// Delivered and not expected.
    pub extra: Vec<NoticeId>,
}

impl Tally {
    pub fn of(receiver: &Receiver, expected: &[Value]) -> Tally {
        let got = delivered(receiver);
        let want: BTreeSet<NoticeId> = expected.iter().map(notice_id).collect();
        let got_ids: BTreeSet<NoticeId> = got.keys().cloned().collect();
        Tally {
            expected: want.len(),
            deliveries: got.values().sum(),
            lost: want.difference(&got_ids).cloned().collect(),
            duplicates: got
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(id, n)| (id.clone(), *n))
                .collect(),
            extra: got_ids.difference(&want).cloned().collect(),
        }
    }

    pub fn exact(&self) -> bool {
        self.lost.is_empty() && self.duplicates.is_empty() && self.extra.is_empty()
    }
}

/// The logs of the daemons, each under its path.
pub fn logs(ds: &[&Daemon]) -> String {
    ds.iter()
        .map(|d| format!("---- {}\n{}", d.log.display(), d.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every notification of the backtest delivered exactly once, nothing else.
pub fn assert_exactly_once(receiver: &Receiver, expected: &[Value], ds: &[&Daemon]) {
    let t = Tally::of(receiver, expected);
    assert!(
        t.duplicates.is_empty(),
        "delivered more than once: {:#?}",
        t.duplicates
    );
    assert!(
        t.lost.is_empty() && t.extra.is_empty(),
        "lost {:#?}\nextra {:#?}\n{}",
        t.lost,
        t.extra,
        logs(ds)
    );
}
