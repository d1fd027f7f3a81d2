//! The Logs Insights query a rule runs (the CloudWatch source's side of a rule).

use super::RuleSpec;
use crate::detect::DetectorKind;

/// Which details of a bin's first and last failed attempt a rule reads (its query asks
/// for them, and the local binner keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// Okta's user ids (`series::FailedAccounts`).
    pub accounts: bool,
    /// ThreatInsight's flag (`Counts::failed_flagged`).
    pub threat_flags: bool,
}

impl RuleSpec {
    /// What this rule reads of its failed attempts: `distributed_spraying` tells a
    /// sprayer's accounts apart by Okta's user ids; the failing-only count
    /// (`failing_sources`) takes an address whose attempts were on unresolved usernames
    /// or flagged by ThreatInsight, so it reads both.
    pub fn reads(&self) -> Reads {
        let sources = self.counts_failing_sources();
        Reads {
            accounts: sources || self.has_detector(DetectorKind::DistributedSpraying),
            threat_flags: sources,
        }
    }

    /// The bin as Logs Insights writes it: `15m`, `1h`, `30s`.
    pub fn bin_literal(&self) -> String {
        let s = self.bin.as_secs();
        if s.is_multiple_of(86_400) {
            format!("{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }

    /// The Logs Insights query for this rule: counts per bin and outcome (and split
    /// value), with the distinct users and source addresses behind each count (which
    /// `distinct_users` and the alert's `kind` read from the failure rows). A rule's raw
    /// `query` replaces it; see the CloudWatch source (`source::cloudwatch`) for the output contract.
    pub fn insights_query(&self) -> String {
        if let Some(q) = &self.query {
            return q.clone();
        }
        let list = |types: &mut dyn Iterator<Item = &String>| -> String {
            types.map(|t| json_string(t)).collect::<Vec<_>>().join(", ")
        };
        let conditional = |t: &String| self.when.iter().any(|(w, _)| w == t);
        let all = list(&mut self.event_types.iter().filter(|t| !conditional(t)));
        let mut filter = format!("filter detail.eventType in [{all}]");
        if !self.when.is_empty() {
            let mut parts = vec![format!("detail.eventType in [{all}]")];
            for (t, c) in &self.when {
                if self.event_types.contains(t) {
                    let typed = format!("detail.eventType = {}", json_string(t));
                    parts.push(match c.insights() {
                        Some(c) => format!("({typed} and {c})"),
                        None => typed,
                    });
                }
            }
            filter = format!("filter ({})", parts.join(" or "));
        }
        if let Some(c) = self.filter.insights() {
            filter.push_str(&format!("\n| filter {c}"));
        }
        let mut by = format!("bin({}), detail.outcome.result", self.bin_literal());
        if self.approvals.is_some() {
            // Approvals are successes too: their rows are told apart by type.
            by.push_str(", detail.eventType");
        }
        if let Some(field) = &self.split_by {
            by.push_str(", detail.");
            by.push_str(field);
        }
        let reads = self.reads();
        let mut accounts = String::new();
        if reads.accounts {
            accounts.push_str(
                ", earliest(detail.actor.id) as first_actor, latest(detail.actor.id) as last_actor",
            );
        }
        if reads.threat_flags {
            accounts.push_str(&format!(
                ", earliest({THREAT}) as first_threat, latest({THREAT}) as last_threat"
            ));
        }
        format!(
            "{filter}\n| stats count(*) as n, count_distinct(detail.actor.alternateId) as users, count_distinct(detail.client.ipAddress) as ips, min(@timestamp) as first, max(@timestamp) as last{accounts} by {by}\n| limit 10000"
        )
    }
}

/// Okta ThreatInsight's flag on an attempt (`"true"` when it suspected a threat).
const THREAT: &str = "detail.debugContext.debugData.threatSuspected";

/// A string literal for a Logs Insights query (JSON escaping is a safe subset).
pub(super) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bin_literals() {
        let mut r = RuleSpec::named("x");
        assert_eq!(r.bin_literal(), "15m");
        r.bin = Duration::from_secs(3600);
        assert_eq!(r.bin_literal(), "1h");
        r.bin = Duration::from_secs(30);
        assert_eq!(r.bin_literal(), "30s");
        r.bin = Duration::from_secs(86_400);
        assert_eq!(r.bin_literal(), "1d");
    }

    #[test]
    fn generated_queries() {
        let mut r = RuleSpec::named("x");
        assert_eq!(
            r.insights_query(),
            "filter detail.eventType in [\"user.session.start\"]\n| stats count(*) as n, count_distinct(detail.actor.alternateId) as users, count_distinct(detail.client.ipAddress) as ips, min(@timestamp) as first, max(@timestamp) as last by bin(15m), detail.outcome.result\n| limit 10000"
        );
        r.split_by = Some("client.ipAddress".into());
        r.event_types.push("user.authentication.sso".into());
        assert!(r
            .insights_query()
            .contains("in [\"user.session.start\", \"user.authentication.sso\"]"));
        assert!(r
            .insights_query()
            .contains("by bin(15m), detail.outcome.result, detail.client.ipAddress"));
        assert!(!r.insights_query().contains("earliest"));
        // The spraying rule asks which accounts failed first and last.
        assert!(RuleSpec::password_spraying().insights_query().contains(
            "max(@timestamp) as last, earliest(detail.actor.id) as first_actor, latest(detail.actor.id) as last_actor, earliest(detail.debugContext.debugData.threatSuspected) as first_threat, latest(detail.debugContext.debugData.threatSuspected) as last_threat by bin(15m)"
        ));
        // A split rule with only `failing_sources` asks for both too.
        r.detectors = vec![crate::detect::DetectorSpec::default_for(
            DetectorKind::FailingSources,
        )];
        assert!(r.insights_query().contains("as first_actor"));
        assert!(r.insights_query().contains("as last_threat"));
    }
}
