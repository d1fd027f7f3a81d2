//! `[source]`: where the counts come from, and how patiently they are read.

use std::path::PathBuf;
use std::time::Duration;

use crate::config_reader::{Problems, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    File,
    Cloudwatch,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// `file`: the NDJSON (or .gz) file to replay and follow.
    pub path: Option<PathBuf>,
    /// `file`: keep reading lines appended to the file after replaying it.
    pub follow: bool,
    /// `cloudwatch`: the log groups the EventBridge rule writes to.
    pub log_groups: Vec<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// How long after a bin closes before it is read as final (late-arriving logs).
    pub settle: Duration,
    /// `cloudwatch`: each bin is read once more this long after its first read, to pick
    /// up events that arrived later than `settle` (0 turns revision off).
    pub revise_after: Duration,
    /// `cloudwatch`: how often the scheduler wakes to look for bins that are due.
    pub poll_interval: Duration,
    /// `cloudwatch`: how much history to load on start (default: each rule's
    /// baseline window).
    pub backfill: Option<Duration>,
    /// `cloudwatch`: a query still running after this long is stopped and counts as
    /// failed.
    pub query_timeout: Duration,
    /// `cloudwatch`: at most this many Logs Insights queries at once (the account limit
    /// is 30 for all users of the account together).
    pub max_concurrent_queries: usize,
    /// `cloudwatch`: raise `source_unavailable` after this many failed polls in a row.
    pub unavailable_after: u32,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::File,
            path: None,
            follow: true,
            log_groups: Vec::new(),
            region: None,
            endpoint_url: None,
            settle: Duration::from_secs(120),
            revise_after: Duration::from_secs(600),
            poll_interval: Duration::from_secs(15),
            backfill: None,
            query_timeout: Duration::from_secs(120),
            max_concurrent_queries: 4,
            unavailable_after: 3,
        }
    }
}

impl SourceConfig {
    /// Read the `[source]` table.
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> SourceConfig {
        let mut s = SourceConfig::default();
        match t.string("kind", problems).as_deref() {
            None | Some("file") => s.kind = SourceKind::File,
            Some("cloudwatch") => s.kind = SourceKind::Cloudwatch,
            Some(other) => problems.push(
                t.key_path("kind"),
                format!("{other:?} is not one of \"file\", \"cloudwatch\""),
            ),
        }
        s.path = t.string("path", problems).map(PathBuf::from);
        if let Some(f) = t.bool("follow", problems) {
            s.follow = f;
        }
        if let Some(groups) = t.strings("log_groups", problems) {
            if groups.iter().any(|g| g.trim().is_empty()) {
                problems.push(t.key_path("log_groups"), "contains an empty log group name");
            }
            s.log_groups = groups;
        }
        s.region = t.string("region", problems);
        s.endpoint_url = t.string("endpoint_url", problems);
        if let Some(settle) = t.duration("settle", problems) {
            s.settle = settle;
        }
        if let Some(d) = t.duration("revise_after", problems) {
            s.revise_after = d;
        }
        if let Some(d) = t.duration("poll_interval", problems) {
            if d < Duration::from_millis(100) {
                problems.push(t.key_path("poll_interval"), "must be at least 100ms");
            } else {
                s.poll_interval = d;
            }
        }
        s.backfill = t.duration("backfill", problems);
        if let Some(d) = t.duration("query_timeout", problems) {
            if d < Duration::from_secs(1) {
                problems.push(t.key_path("query_timeout"), "must be at least 1s");
            } else {
                s.query_timeout = d;
            }
        }
        if let Some(n) = t.count("max_concurrent_queries", 1, problems) {
            if n > 25 {
                problems.push(
                    t.key_path("max_concurrent_queries"),
                    format!(
                    "{n} is too close to the account's limit of 30 concurrent queries (use 1-25)"
                ),
                );
            } else {
                s.max_concurrent_queries = n as usize;
            }
        }
        if let Some(n) = t.count("unavailable_after", 1, problems) {
            s.unavailable_after = n.min(10_000) as u32;
        }
        if t.is_present() && s.kind == SourceKind::File && s.path.is_none() {
            problems.push(
                t.key_path("path"),
                "is required when source.kind = \"file\"",
            );
        }
        s
    }
}
