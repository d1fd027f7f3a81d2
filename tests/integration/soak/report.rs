//! The soak's figures, as printed at the end of a run (and quoted in the README).

use std::time::Duration;

use super::faults::Schedule;
use super::{rss, Soak, Timeline, RSS_BOUND_MIB};
use crate::support::exactly_once::Tally;

/// The figures of a run.
pub struct Report<'a> {
    pub seed: u64,
    pub live: Duration,
    pub timeline: &'a Timeline,
    pub incidents: usize,
    pub took: Duration,
    pub schedule: &'a Schedule,
    pub tally: &'a Tally,
    pub soak: &'a Soak,
    pub rss: &'a [u64],
    pub panics: usize,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (t, soak) = (self.tally, self.soak);
        let requests = soak.receiver.requests();
        let answered = |p: fn(u16) -> bool| requests.iter().filter(|r| p(r.answered)).count();
        let (peak, early, late) = rss::summary(self.rss);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let faults: Vec<String> = self
            .schedule
            .survived
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            f,
            "soak report (seed {}): {} s of faults over {} live bins of 5 s ({} incidents), {:.0} s in all",
            self.seed,
            self.live.as_secs(),
            self.timeline.live.end - self.timeline.live.start,
            self.incidents,
            self.took.as_secs_f64()
        )?;
        writeln!(
            f,
            "  faults survived: {} ({} kinds): {}",
            self.schedule.survived.values().sum::<u32>(),
            self.schedule.survived.len(),
            faults.join(", ")
        )?;
        writeln!(
            f,
            "  notifications: {} expected (backtest), {} delivered; lost {}, duplicates {}, extra {}",
            t.expected,
            t.deliveries,
            t.lost.len(),
            t.duplicates.len(),
            t.extra.len()
        )?;
        writeln!(
            f,
            "  webhook: {} requests, {} answered 5xx, {} left hanging",
            requests.len(),
            answered(|s| s >= 500),
            answered(|s| s == 0)
        )?;
        writeln!(
            f,
            "  daemon: {} SIGKILL + restart ({} with notices in the outbox), {} reloads applied, {} refused",
            soak.kills, soak.kills_owing, soak.reloads.0, soak.reloads.1
        )?;
        writeln!(
            f,
            "  RSS: peak {:.1} MiB (bound {RSS_BOUND_MIB} MiB), median {:.1} MiB in the first quarter, {:.1} MiB in the last; {} samples",
            mib(peak),
            mib(early),
            mib(late),
            self.rss.len()
        )?;
        write!(f, "  panics in the log: {}", self.panics)
    }
}
