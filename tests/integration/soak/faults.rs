//! The soak's faults and their seeded order: every kind comes up once per round, in a
//! shuffled order, with seeded parameters, so a short run still meets each kind and a
//! seed replays the same schedule.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// StartQuery answers ThrottlingException N times (the SDK retries 3 times a call).
    Throttle(u32),
    /// StartQuery answers LimitExceededException N times.
    LimitExceeded(u32),
    /// The next N queries end `Failed`.
    FailedQueries(u32),
    /// The next query ends `Timeout`.
    TimedOutQuery,
    /// The next query never finishes (the daemon stops it at `query_timeout`).
    HungQuery,
    /// GetQueryResults answers 500 N times.
    ResultsUnavailable(u32),
    /// Every Logs request of the group answers this many ms late, for a while.
    SlowAnswers { delay_ms: u32, secs: u64 },
    /// Queries stay `Running` for this many polls, for a while.
    SlowQueries { running_polls: u32, secs: u64 },
    /// The webhook answers this 5xx status, for a while.
    SinkError { status: u16, secs: u64 },
    /// The webhook takes requests and never answers, for a while.
    SinkHang { secs: u64 },
    /// SIGKILL, then a restart after this many ms; `owing`: with the webhook down, once
    /// a notification waits in the outbox (the restart must deliver it, once).
    Kill { down_ms: u64, owing: bool },
    /// SIGHUP with a good config (the poll interval changed): applied.
    ReloadGood,
    /// SIGHUP with a config with a problem: rejected, the daemon runs on.
    ReloadBad,
}

const KINDS: usize = 13;

impl Fault {
    /// The kind's name, for the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle(_) => "throttled StartQuery",
            Fault::LimitExceeded(_) => "StartQuery limit exceeded",
            Fault::FailedQueries(_) => "failed queries",
            Fault::TimedOutQuery => "timed-out query",
            Fault::HungQuery => "hung query",
            Fault::ResultsUnavailable(_) => "GetQueryResults 500",
            Fault::SlowAnswers { .. } => "slow Logs answers",
            Fault::SlowQueries { .. } => "slow queries",
            Fault::SinkError { .. } => "sink 5xx",
            Fault::SinkHang { .. } => "sink hanging",
            Fault::Kill { .. } => "SIGKILL + restart",
            Fault::ReloadGood => "SIGHUP, good config",
            Fault::ReloadBad => "SIGHUP, bad config (refused)",
        }
    }

    fn random(kind: usize, rng: &mut SmallRng) -> Fault {
        let secs = rng.random_range(3..=8);
        match kind {
            0 => Fault::Throttle(rng.random_range(1..=7)),
            1 => Fault::LimitExceeded(rng.random_range(1..=5)),
            2 => Fault::FailedQueries(rng.random_range(1..=3)),
            3 => Fault::TimedOutQuery,
            4 => Fault::HungQuery,
            5 => Fault::ResultsUnavailable(rng.random_range(1..=5)),
            6 => Fault::SlowAnswers {
                delay_ms: rng.random_range(200..=1500),
                secs,
            },
            7 => Fault::SlowQueries {
                running_polls: rng.random_range(3..=10),
                secs,
            },
            8 => Fault::SinkError {
                status: [500, 502, 503, 504][rng.random_range(0..4)],
                secs,
            },
            9 => Fault::SinkHang { secs },
            10 => Fault::Kill {
                down_ms: rng.random_range(0..=2500),
                owing: rng.random_bool(0.5),
            },
            11 => Fault::ReloadGood,
            _ => Fault::ReloadBad,
        }
    }
}

/// The seeded schedule: faults in shuffled rounds of every kind, and the pauses.
pub struct Schedule {
    rng: SmallRng,
    round: Vec<usize>,
    /// Faults injected so far, per kind.
    pub survived: BTreeMap<&'static str, u32>,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            // Apart from the traffic's generator, from the same seed.
            rng: SmallRng::seed_from_u64(seed ^ 0x5eed_fa17),
            round: Vec::new(),
            survived: BTreeMap::new(),
        }
    }

    pub fn next(&mut self) -> Fault {
        if self.round.is_empty() {
            self.round = (0..KINDS).collect();
            self.round.shuffle(&mut self.rng);
        }
        let kind = self.round.pop().unwrap_or(0);
        let fault = Fault::random(kind, &mut self.rng);
        *self.survived.entry(fault.name()).or_insert(0) += 1;
        fault
    }

    /// The quiet time after a fault.
    pub fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(1500..=5000))
    }

    /// A random moment within `ms` (where in a fault window a kill lands, ...).
    pub fn jitter(&mut self, ms: u64) -> Duration {
        Duration::from_millis(self.rng.random_range(0..=ms))
    }
}

#[test]
fn a_round_has_every_kind_and_a_seed_replays_the_schedule() {
    let mut a = Schedule::new(3);
    let first: Vec<Fault> = (0..KINDS).map(|_| a.next()).collect();
    assert_eq!(a.survived.len(), KINDS, "{:?}", a.survived);
    let mut b = Schedule::new(3);
    let again: Vec<Fault> = (0..KINDS).map(|_| b.next()).collect();
    assert_eq!(first, again);
}
