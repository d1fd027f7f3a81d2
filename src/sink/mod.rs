//! Sinks: where alerts go. Each sink is a small struct behind the [`Sink`] trait;
//! [`SinkSpec`] is its validated `[[sinks]]` table.
//!
//! A sink reports failure as transient (worth retrying: timeouts, 5xx, 429, throttling)
//! or permanent (retrying cannot help: 4xx, a missing topic). Sink names and errors never
//! contain webhook URLs or secrets: they are safe to log.

mod lines;
mod sns;
mod webhook;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::alert::Alert;
use crate::config::{Problems, Table};

pub use lines::{FileSink, StdoutSink};
pub use sns::SnsSink;
pub use webhook::WebhookSink;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SinkError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

pub trait Sink: Send + Sync {
    /// A name for logs and metrics, e.g. `webhook[1]` — never the URL.
    fn name(&self) -> &str;
    fn send<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// A validated `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSpec {
    Stdout,
    File {
        path: PathBuf,
    },
    Webhook {
        url: String,
        timeout: Duration,
    },
    Sns {
        topic_arn: String,
        region: Option<String>,
        endpoint_url: Option<String>,
    },
}

impl SinkSpec {
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<SinkSpec> {
        let mut t = Table::new(path, Some(value), problems);
        let kind = t.string("kind", problems);
        let spec = match kind.as_deref() {
            Some("stdout") => Some(SinkSpec::Stdout),
            Some("file") => match t.string("path", problems) {
                Some(p) if !p.trim().is_empty() => Some(SinkSpec::File { path: p.into() }),
                _ => {
                    problems.push(t.key_path("path"), "is required for a file sink");
                    None
                }
            },
            Some("webhook") => {
                let timeout = t
                    .duration("timeout", problems)
                    .unwrap_or(Duration::from_secs(10));
                match t.string("url", problems) {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        Some(SinkSpec::Webhook { url, timeout })
                    }
                    // Never echo the URL: it may carry a token.
                    Some(_) => {
                        problems.push(t.key_path("url"), "must start with http:// or https://");
                        None
                    }
                    None => {
                        problems.push(t.key_path("url"), "is required for a webhook sink");
                        None
                    }
                }
            }
            Some("sns") => {
                let region = t.string("region", problems);
                let endpoint_url = t.string("endpoint_url", problems);
                match t.string("topic_arn", problems) {
                    Some(arn) if arn.starts_with("arn:") && arn.split(':').count() >= 6 => {
                        Some(SinkSpec::Sns {
                            topic_arn: arn,
                            region,
                            endpoint_url,
                        })
                    }
                    Some(arn) => {
                        problems.push(
                            t.key_path("topic_arn"),
                            format!(
                                "{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                            ),
                        );
                        None
                    }
                    None => {
                        problems.push(t.key_path("topic_arn"), "is required for an sns sink");
                        None
                    }
                }
            }
            Some(other) => {
                problems.push(
                    t.key_path("kind"),
                    format!("{other:?} is not one of \"stdout\", \"file\", \"webhook\", \"sns\""),
                );
                None
            }
            None => {
                problems.push(
                    t.key_path("kind"),
                    "is required (stdout, file, webhook or sns)",
                );
                None
            }
        };
        if spec.is_some() {
            t.finish(problems);
        }
        spec
    }

    /// Build the sink. `index` names it in logs (`webhook[2]`).
    pub async fn build(&self, index: usize) -> Result<Arc<dyn Sink>, SinkError> {
        Ok(match self {
            SinkSpec::Stdout => Arc::new(StdoutSink::new(format!("stdout[{index}]"))),
            SinkSpec::File { path } => {
                Arc::new(FileSink::open(format!("file[{index}]"), path).await?)
            }
            SinkSpec::Webhook { url, timeout } => Arc::new(WebhookSink::new(
                format!("webhook[{index}]"),
                url.clone(),
                *timeout,
            )?),
            SinkSpec::Sns {
                topic_arn,
                region,
                endpoint_url,
            } => Arc::new(
                SnsSink::new(
                    format!("sns[{index}]"),
                    topic_arn.clone(),
                    region.clone(),
                    endpoint_url.clone(),
                )
                .await,
            ),
        })
    }
}

/// Build every configured sink.
pub async fn build_all(specs: &[SinkSpec]) -> Result<Vec<Arc<dyn Sink>>, SinkError> {
    let mut sinks = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        sinks.push(s.build(i).await?);
    }
    Ok(sinks)
}
