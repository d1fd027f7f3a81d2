//! Calls to services that may fail for a while: the shape of such a call
//! ([`BoxFuture`]), how its failure is classified ([`RemoteError`]: worth retrying or
//! not), and how to wait between tries ([`RetryPolicy`], [`backoff`]).
//!
//! Sinks, Logs Insights queries and the AWS error classifier all speak this language, so
//! it lives below all of them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::Rng;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failed call: transient (worth retrying: connect errors, timeouts, 5xx, 429,
/// throttling) or permanent (retrying cannot help: other 4xx, a missing topic).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

/// How a sink retries: exponential backoff with jitter from `initial` up to `max`; an
/// item still failing `give_up_after` after it was queued is given up (dead-lettered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Exponential backoff with "equal jitter": attempt `n` (1-based) waits between half and
/// all of `initial · 2^(n-1)`, capped at `max`. The random half spreads retries of many
/// items (and many daemons) so a recovering receiver is not hit in lockstep; the fixed
/// half keeps a minimum pause.
pub fn backoff(policy: &RetryPolicy, attempt: u32, rng: &mut impl Rng) -> Duration {
    let exp = policy
        .initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let full = exp.min(policy.max);
    let half = full / 2;
    half + half.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            give_up_after: Duration::from_secs(60),
        };
        let mut rng = SmallRng::seed_from_u64(7);
        for (attempt, full_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (40, 2000),
        ] {
            let mut seen = HashSet::new();
            for _ in 0..50 {
                let d = backoff(&p, attempt, &mut rng).as_millis() as u64;
                assert!(d >= full_ms / 2 && d <= full_ms, "attempt {attempt}: {d}");
                seen.insert(d);
            }
            assert!(seen.len() > 5, "no jitter at attempt {attempt}");
        }
    }
}
