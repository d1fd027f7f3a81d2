//! `stdout` and `file` sinks: one alert JSON per line.

use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::Sink;
use crate::alert::Alert;
use crate::retry::{BoxFuture, RemoteError};

fn line(alert: &Alert) -> Result<String, RemoteError> {
    let mut s = serde_json::to_string(alert).map_err(|e| RemoteError::Permanent(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

pub struct StdoutSink {
    name: String,
}

impl StdoutSink {
    pub fn new(name: String) -> Self {
        StdoutSink { name }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let mut out = tokio::io::stdout();
            out.write_all(line(alert)?.as_bytes())
                .await
                .map_err(|e| RemoteError::Transient(e.to_string()))?;
            out.flush()
                .await
                .map_err(|e| RemoteError::Transient(e.to_string()))
        })
    }
}

/// Appends to a file, flushing each alert to disk before reporting success.
pub struct FileSink {
    name: String,
    file: Mutex<tokio::fs::File>,
}

impl FileSink {
    pub async fn open(name: String, path: &Path) -> Result<Self, RemoteError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| RemoteError::Permanent(format!("cannot open {}: {e}", path.display())))?;
        Ok(FileSink {
            name,
            file: Mutex::new(file),
        })
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            let text = line(alert)?;
            let mut f = self.file.lock().await;
            f.write_all(text.as_bytes())
                .await
                .map_err(|e| RemoteError::Transient(e.to_string()))?;
            f.sync_data()
                .await
                .map_err(|e| RemoteError::Transient(e.to_string()))
        })
    }
}
