//! What an alert most likely is, and why: the first question a responder asks.
//!
//! A detector says *that* a bin is odd; the kind says what to do about it. It is read
//! from the signals each bin carries — which detector fired, successes against their
//! expectation, and who failed: the distinct users (`failed_users`) and source
//! addresses (`failed_ips`) among the failed attempts:
//!
//! | signal | likely kind |
//! | --- | --- |
//! | no events at all | `pipeline_gap` |
//! | attempts vanish in one step, the rest succeed | `outage` (users cannot reach Okta) |
//! | successes collapse while attempts still arrive | `outage` |
//! | failures from many addresses against many accounts | `credential_stuffing` |
//! | failures against many accounts from few addresses | `password_spraying` |
//! | failures against one to three accounts | `brute_force` |
//! | many pushes or denials for one user | `mfa_push_fatigue` |
//! | more attempts, normal failure share | `traffic_surge` |
//!
//! The names of the attack kinds are the simulator's incident kinds, so evaluation can
//! check the label as well as the page.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::detect::DetectorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    CredentialStuffing,
    PasswordSpraying,
    BruteForce,
    MfaPushFatigue,
    Outage,
    PipelineGap,
    TrafficSurge,
    SourceUnavailable,
}

impl AlertKind {
    pub const ALL: [AlertKind; 8] = [
        AlertKind::CredentialStuffing,
        AlertKind::PasswordSpraying,
        AlertKind::BruteForce,
        AlertKind::MfaPushFatigue,
        AlertKind::Outage,
        AlertKind::PipelineGap,
        AlertKind::TrafficSurge,
        AlertKind::SourceUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CredentialStuffing => "credential_stuffing",
            AlertKind::PasswordSpraying => "password_spraying",
            AlertKind::BruteForce => "brute_force",
            AlertKind::MfaPushFatigue => "mfa_push_fatigue",
            AlertKind::Outage => "outage",
            AlertKind::PipelineGap => "pipeline_gap",
            AlertKind::TrafficSurge => "traffic_surge",
            AlertKind::SourceUnavailable => "source_unavailable",
        }
    }

    /// The kind a detector's alerts have when nothing more is known (a resolve notice
    /// after a restart).
    pub fn default_for(detector: DetectorKind) -> AlertKind {
        match detector {
            DetectorKind::FailureSpike | DetectorKind::FailureRatio => {
                AlertKind::CredentialStuffing
            }
            DetectorKind::SuccessDrop | DetectorKind::VolumeDrop => AlertKind::Outage,
            DetectorKind::VolumeSpike => AlertKind::TrafficSurge,
            DetectorKind::Flatline => AlertKind::PipelineGap,
            DetectorKind::DistinctUsers => AlertKind::PasswordSpraying,
            DetectorKind::FailingSources => AlertKind::CredentialStuffing,
            DetectorKind::PushFatigue => AlertKind::MfaPushFatigue,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AlertKind {
    type Err = String;

    fn from_str(s: &str) -> Result<AlertKind, String> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind {s:?}"))
    }
}

impl PartialEq<str> for AlertKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for AlertKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A kind and the evidence for it, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: AlertKind,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_simulators_incident_kinds() {
        use crate::simulate::IncidentKind;
        for (a, i) in [
            (
                AlertKind::CredentialStuffing,
                IncidentKind::CredentialStuffing,
            ),
            (AlertKind::PasswordSpraying, IncidentKind::PasswordSpraying),
            (AlertKind::MfaPushFatigue, IncidentKind::MfaPushFatigue),
            (AlertKind::Outage, IncidentKind::Outage),
            (AlertKind::PipelineGap, IncidentKind::PipelineGap),
        ] {
            assert_eq!(a.as_str(), i.as_str());
        }
    }
}
