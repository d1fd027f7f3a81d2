//! authpulse: watches Okta sign-in outcomes and pages security when they deviate.
//! See ARCHITECTURE.md for the map; this is its short form.

pub mod alert;
pub mod alert_kind;
pub mod aws;
pub mod chart;
pub mod clock;
pub mod config;
pub mod config_reader;
pub mod daemon;
pub mod detect;
pub mod event;
pub mod html;
pub mod notify;
pub mod offline;
pub mod pipeline;
pub mod retry;
pub mod rule;
pub mod series;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod stats;
