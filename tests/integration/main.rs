//! The integration tests: one binary (`autotests = false`, one `[[test]]` in
//! Cargo.toml), so the AWS SDKs and the rest of the crate are linked once, not once per
//! file. One module per area; shared helpers in [`support`].
//!
//! ```text
//! cargo test                                  # everything that needs no emulator
//! cargo test --test integration daemon_file   # one module
//! bash scripts/test.sh                        # all of it, with the AWS emulator
//! ```
//!
//! The modules marked `aws-emulator` run against the AWS emulator (moto with
//! authpulse's Logs Insights engine, `tests/aws_emulator/`), the one marked
//! `alertmanager` against a real Alertmanager. They are compiled only with those cargo
//! features, which `scripts/test.sh` turns on after starting both; with a feature on and
//! its service missing (`AUTHPULSE_TEST_AWS_ENDPOINT`, `AUTHPULSE_TEST_ALERTMANAGER_URL`
//! unset) they fail and say to run `bash scripts/test.sh`.

mod support;

mod backtest_sim;
mod cli;
mod counted_series;
mod daemon_file;
mod daemon_in_process;
mod delivery_pagerduty;
mod delivery_restart;
mod delivery_routing;
mod delivery_slack;
mod delivery_webhook;
mod detection;
mod golden;
mod input_contract;
mod ops_daemon;
mod silence_cli;
mod tuning;

#[cfg(feature = "aws-emulator")]
mod cloudwatch_source;
#[cfg(feature = "aws-emulator")]
mod daemon_cloudwatch;
#[cfg(feature = "aws-emulator")]
mod delivery_cloudwatch;
#[cfg(feature = "aws-emulator")]
mod delivery_sns;
#[cfg(feature = "aws-emulator")]
mod ha_cloudwatch;
#[cfg(feature = "aws-emulator")]
mod ha_replicas;
#[cfg(feature = "aws-emulator")]
mod ops_cloudwatch;
#[cfg(feature = "aws-emulator")]
mod soak;

#[cfg(feature = "alertmanager")]
mod delivery_alertmanager;
