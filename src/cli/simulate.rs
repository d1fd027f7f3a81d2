//! `authpulse simulate`: labelled Okta traffic for demos, backtests and evaluation.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{out, Failure};
use authpulse::simulate::{self, Difficulty, SimConfig, SimStats};

#[derive(Args)]
pub struct SimulateArgs {
    /// Events file; `.gz` compresses it.
    #[arg(long)]
    pub out: PathBuf,
    /// Labels file: one JSON line per incident (kind, start, end, expect_page, the class
    /// of an attack: spike, low_and_slow or availability).
    #[arg(long)]
    pub labels: PathBuf,
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    #[arg(long, default_value_t = 2000)]
    pub users: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `easy` (attacks well above the noise) or `hard` (close to it).
    #[arg(long, default_value = "easy")]
    pub difficulty: Difficulty,
    /// First day (UTC, RFC 3339). Fixed by default so output is reproducible.
    #[arg(long, default_value = "2026-11-02T00:00:00Z")]
    pub start: chrono::DateTime<chrono::Utc>,
    /// Background traffic only, no incidents.
    #[arg(long)]
    pub no_incidents: bool,
}

pub fn run(args: SimulateArgs) -> Result<(), Failure> {
    let mut cfg = SimConfig::with_default_incidents(
        args.seed,
        args.start,
        args.days,
        args.users,
        args.difficulty,
    );
    if args.no_incidents {
        cfg.incidents.clear();
    }
    let stats = write(&cfg, &args.out, &args.labels)
        .map_err(|e| Failure::failed(format!("simulate failed: {e}")))?;
    out!(
        "wrote {} events ({:.1} MB) to {} and {} incidents to {}",
        stats.events,
        stats.bytes as f64 / 1e6,
        args.out.display(),
        stats.incidents,
        args.labels.display()
    );
    Ok(())
}

fn write(cfg: &SimConfig, out: &Path, labels: &Path) -> std::io::Result<SimStats> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut labels_out = std::io::BufWriter::new(std::fs::File::create(labels)?);
    let stats = if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let stats = simulate::generate(cfg, &mut gz, &mut labels_out)?;
        gz.finish()?.flush()?;
        stats
    } else {
        let mut plain = file;
        let stats = simulate::generate(cfg, &mut plain, &mut labels_out)?;
        plain.flush()?;
        stats
    };
    labels_out.flush()?;
    Ok(stats)
}
