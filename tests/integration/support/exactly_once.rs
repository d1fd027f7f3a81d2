//! Exactly once as figures: the notifications a receiver accepted (answered 2xx) against
//! those the backtest of the same events produces, by fingerprint, status and bin — what
//! [`super::replicas::assert_exactly_once`] checks, counted for the soak's report.

use std::collections::BTreeSet;

use serde_json::Value;

use super::replicas::{delivered, id};
use super::Receiver;

/// A notification's identity: fingerprint, status, bin start.
pub type NoticeId = (String, String, String);

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
        let want: BTreeSet<NoticeId> = expected.iter().map(id).collect();
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
