//! Sources: where binned counts come from. A source runs as its own task and sends
//! [`SourceEvent`]s; the daemon applies them to the pipeline.
//!
//! - [`file::FileSource`] replays an NDJSON export and follows appended lines, binning
//!   locally (the same code as `backtest`).
//! - [`cloudwatch::CloudWatchSource`] reads binned counts from Logs Insights.

pub mod binner;
pub mod cloudwatch;
pub mod config;
pub mod csv;
pub mod exchange;
pub mod file;
pub mod insights;
pub mod reorder;
pub mod replay;

use tokio::sync::{mpsc, watch};

use crate::retry::BoxFuture;
use crate::series::{RuleId, Update};

/// What a source tells the daemon.
#[derive(Debug)]
pub enum SourceEvent {
    Updates(Vec<Update>),
    /// History is loaded (the file replayed, the backfill done): the daemon is ready.
    CaughtUp,
    /// How the last poll of a rule went: `failures` in a row (0 = healthy).
    Health {
        rule: RuleId,
        failures: u32,
        error: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("the daemon stopped listening")]
    Closed,
}

pub trait Source: Send {
    /// Run until `shutdown` turns true, the daemon goes away, or (for finite sources) the
    /// input ends.
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>>;
}
