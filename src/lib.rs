//! authpulse: watches Okta sign-in outcomes and pages security when they deviate.
//!
//! The directory map is the architecture (ARCHITECTURE.md has the long form): a module
//! imports only from its own folder and the layers below it.
//!
//! ```text
//!   cli/ (binary)   daemon/  offline/        the loop and HTTP │ backtest, evaluate, tune
//!                   config   ha/             the file, in slices │ leases + shared state (DynamoDB)
//!                   notify/                  THE alert route (ledger + outbox behind a store)
//!                   source/  sink/           bin updates in    │ adapters out
//!                   pipeline/                bins in, alerts out (bin time)
//!                   alert  alert_kind  rule/  detect/ (detectors + baseline)
//!                   series  event  stats  aws                    domain
//!                   clock  retry  config_reader  html  chart     leaves
//!                   state_file                                    (checksummed JSON files)
//! ```
//!
//! One bin's path: [`source`] (a query, or lines binned locally) → [`series::Update`]
//! → [`pipeline::Pipeline`] ([`detect`], lifecycle, classification) → [`alert::Alert`]
//! → [`notify::Route::submit`] (history gate, mute, ledger, enrichment, outbox) →
//! [`sink`] adapters. [`daemon::run`] drives it live; [`offline::backtest`] replays an
//! export through the same pipeline.

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
pub mod ha;
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
pub mod state_file;
pub mod stats;
