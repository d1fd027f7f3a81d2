//! Whether the source can be read, per rule: after `source.unavailable_after` failed
//! polls in a row authpulse is blind and pages `source_unavailable`; the first good poll
//! resolves it.

use crate::alert::{Alert, Status};
use crate::rule::RuleSpec;

/// Tracks per rule whether the source can be read, and pages when it cannot.
pub struct SourceHealth {
    /// Per rule: failed polls in a row, and since when.
    failing: Vec<(u32, i64)>,
    /// Rules with a firing `source_unavailable` alert.
    firing: Vec<bool>,
    unavailable_after: u32,
}

impl SourceHealth {
    /// `firing` per rule comes from the persisted alert state, so a `resolved` owed from
    /// before a restart is still sent.
    pub fn new(firing: Vec<bool>, unavailable_after: u32) -> SourceHealth {
        SourceHealth {
            failing: vec![(0, 0); firing.len()],
            firing,
            unavailable_after,
        }
    }

    /// Record a poll outcome; returns the alert to send, if any.
    pub fn record(
        &mut self,
        rule: &RuleSpec,
        index: usize,
        failures: u32,
        error: Option<&str>,
        now: i64,
    ) -> Option<Alert> {
        let (Some(state), Some(firing)) = (self.failing.get_mut(index), self.firing.get_mut(index))
        else {
            return None;
        };
        if failures > 0 && state.0 == 0 {
            state.1 = now;
        }
        state.0 = failures;
        if failures >= self.unavailable_after && !*firing {
            *firing = true;
            return Some(Alert::source_unavailable(
                Status::Firing,
                rule,
                failures,
                state.1,
                now,
                error.unwrap_or("unknown"),
            ));
        }
        if failures == 0 && *firing {
            *firing = false;
            return Some(Alert::source_unavailable(
                Status::Resolved,
                rule,
                0,
                state.1,
                now,
                "",
            ));
        }
        None
    }

    pub fn all_healthy(&self) -> bool {
        self.failing.iter().all(|(f, _)| *f == 0)
    }

    pub fn firing_count(&self) -> usize {
        self.firing.iter().filter(|f| **f).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_after_n_failed_polls_and_resolves_on_the_first_good_one() {
        let rule = RuleSpec::named("r");
        let mut h = SourceHealth::new(vec![false], 3);
        assert!(h.record(&rule, 0, 1, Some("boom"), 1_000).is_none());
        assert!(h.record(&rule, 0, 2, Some("boom"), 2_000).is_none());
        let fired = h.record(&rule, 0, 3, Some("boom"), 3_000).expect("fires");
        assert_eq!(fired.status, Status::Firing);
        assert_eq!(h.firing_count(), 1);
        assert!(!h.all_healthy());
        assert!(
            h.record(&rule, 0, 4, Some("boom"), 4_000).is_none(),
            "fires once"
        );
        let resolved = h.record(&rule, 0, 0, None, 5_000).expect("resolves");
        assert_eq!(resolved.status, Status::Resolved);
        assert!(h.all_healthy());
    }

    #[test]
    fn a_resolve_owed_from_before_a_restart_is_sent() {
        let rule = RuleSpec::named("r");
        let mut h = SourceHealth::new(vec![true], 3);
        let resolved = h.record(&rule, 0, 0, None, 1_000).expect("owed resolve");
        assert_eq!(resolved.status, Status::Resolved);
    }
}
