//! `authpulse query`: each rule's Logs Insights query, ready to paste.

use std::path::PathBuf;

use clap::Args;

use super::{config_or_builtin, out, Failure};

#[derive(Args)]
pub struct QueryArgs {
    /// Config whose rules to use (default: the built-in rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(args: QueryArgs) -> Result<(), Failure> {
    let cfg = config_or_builtin(args.config)?;
    for rule in &cfg.rules {
        out!(
            "# rule {:?}: bin {}\n{}\n",
            rule.name,
            rule.bin_literal(),
            rule.insights_query()
        );
    }
    Ok(())
}
