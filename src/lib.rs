//! authpulse: watches Okta sign-in outcomes and pages security when they deviate.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//!   source (input, binner)  →  series  →  baseline  →  detect  →  lifecycle  →  sink
//!         events or Logs          bins      expected     verdict     firing /      SNS,
//!         Insights results                  per bin      per bin     resolved      webhooks
//! ```
//!
//! [`pipeline::Pipeline`] ties the middle stages together and is shared by the backtest
//! and the daemon. Alongside: [`kind`] names what an alert most likely is (stuffing,
//! spraying, push fatigue, outage, pipeline gap) from who failed; [`mute`] holds back
//! alerts in maintenance windows before the sinks; [`simulate`] and [`evaluate`] make
//! labelled traffic and score the alerts against it.

pub mod alert;
pub mod aws;
pub mod backtest;
pub mod baseline;
pub mod binned_csv;
pub mod binner;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod evaluate;
pub mod event;
pub mod http;
pub mod input;
pub mod kind;
pub mod lifecycle;
pub mod mute;
pub mod notify;
pub mod outbox;
pub mod pipeline;
pub mod reorder;
pub mod rule;
pub mod series;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod state;
pub mod stats;
pub mod status;
pub mod tune;
