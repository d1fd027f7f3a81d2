//! `authpulse check-config FILE`: every problem of a config, one line each.

use std::path::PathBuf;

use clap::Args;

use super::{out, Failure};
use authpulse::config;

#[derive(Args)]
pub struct CheckConfigArgs {
    pub file: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> Result<(), Failure> {
    let c = config::load(&args.file).map_err(|e| Failure::config(e.to_string()))?;
    out!(
        "{}: ok ({} rules, {} sinks)",
        args.file.display(),
        c.rules.len(),
        c.sinks.len()
    );
    Ok(())
}
