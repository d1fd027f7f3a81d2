//! `authpulse healthcheck`: probe a running daemon (the image has no shell, no curl).

use clap::Args;

use super::{out, runtime, Failure};

#[derive(Args)]
pub struct HealthcheckArgs {
    #[arg(long, default_value = "http://127.0.0.1:9750/healthz")]
    pub url: String,
    /// Give up (exit 1) when there is no answer within this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

pub fn run(args: HealthcheckArgs) -> Result<(), Failure> {
    let url = &args.url;
    match runtime(false)?.block_on(authpulse::daemon::http::probe(url, args.timeout)) {
        Ok(200) => {
            out!("{url}: 200 OK");
            Ok(())
        }
        Ok(status) => Err(Failure::failed(format!("{url}: HTTP {status}"))),
        Err(e) => Err(Failure::failed(format!("{url}: {e}"))),
    }
}
