//! The class of an incident kind, by the shape the simulator gives it — how much of
//! the attack one bin holds and how long it lasts — so a latency target can be set per
//! class (issue 10: "median ≤ 1 bin for spikes, ≤ 4 bins for low-and-slow").
//!
//! * **Spike**: at full rate from its first minute, and concentrated on one actor
//!   per bin beyond anything one person does — easy stuffing (thousands of attempts
//!   an hour), password spraying (one to five addresses, each trying a new account
//!   every few minutes: 12–30 tries an hour from one to three addresses on hard), MFA
//!   push fatigue (10–60 pushes an hour at one to three people).
//! * **Low-and-slow**: spread thin over many addresses at a few times the
//!   background, for an hour or more, so no single bin stands out: stuffing close to
//!   the noise (hard: three to four times the usual failures, one try per proxy),
//!   quiet-evening stuffing (10–15 failures per 15 minutes for 75–105 minutes),
//!   stuffing ThreatInsight half blocks (as close to the noise), distributed
//!   spraying (4–8 addresses, 2–5 accounts each over 3–4 hours).
//! * **Availability**: not an attack — sign-ins fail or vanish (outages) or no event
//!   arrives (pipeline gaps, blind spots); a silence is told from a lull only after
//!   some time has passed.
//!
//! Benign kinds have no class: they must not page at all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Difficulty, IncidentKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentClass {
    Spike,
    LowAndSlow,
    Availability,
}

impl IncidentClass {
    pub const ALL: [IncidentClass; 3] = [
        IncidentClass::Spike,
        IncidentClass::LowAndSlow,
        IncidentClass::Availability,
    ];

    /// The snake_case name, as in the labels file.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentClass::Spike => "spike",
            IncidentClass::LowAndSlow => "low_and_slow",
            IncidentClass::Availability => "availability",
        }
    }
}

impl fmt::Display for IncidentClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown incident class {s:?}"))
    }
}

impl IncidentKind {
    /// The class of this kind in `difficulty`'s setting; `None` for benign kinds.
    /// Only credential stuffing changes class with the setting: thousands of
    /// attempts an hour on easy, three to four times the usual failures on hard.
    pub fn class(self, difficulty: Difficulty) -> Option<IncidentClass> {
        use IncidentClass::{Availability, LowAndSlow, Spike};
        match self {
            IncidentKind::CredentialStuffing => Some(match difficulty {
                Difficulty::Easy => Spike,
                Difficulty::Hard => LowAndSlow,
            }),
            IncidentKind::PasswordSpraying
            | IncidentKind::MfaPushFatigue
            | IncidentKind::OiePushFatigue => Some(Spike),
            IncidentKind::QuietStuffing
            | IncidentKind::BlockedStuffing
            | IncidentKind::DistributedSpraying => Some(LowAndSlow),
            IncidentKind::Outage
            | IncidentKind::PipelineGap
            | IncidentKind::ShortGapPeak
            | IncidentKind::ShortGapNight => Some(Availability),
            IncidentKind::BenignSurge
            | IncidentKind::BenignHoliday
            | IncidentKind::BenignBlip
            | IncidentKind::BenignResetWave
            | IncidentKind::BenignServiceAccount
            | IncidentKind::BenignNatTypos
            | IncidentKind::BenignVpnChange
            | IncidentKind::BenignDst => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attack_has_a_class_and_no_benign_kind_has_one() {
        for kind in IncidentKind::ALL {
            for d in [Difficulty::Easy, Difficulty::Hard] {
                assert_eq!(
                    kind.class(d).is_some(),
                    kind.alert_kind().is_some(),
                    "{kind} on {d}"
                );
            }
        }
    }

    #[test]
    fn the_issues_low_and_slow_classes_are_low_and_slow() {
        // Issue 10's quiet-evening stuffing, stuffing close to the noise and
        // distributed spraying.
        for kind in [
            IncidentKind::QuietStuffing,
            IncidentKind::DistributedSpraying,
        ] {
            assert_eq!(
                kind.class(Difficulty::Hard),
                Some(IncidentClass::LowAndSlow)
            );
        }
        assert_eq!(
            IncidentKind::CredentialStuffing.class(Difficulty::Hard),
            Some(IncidentClass::LowAndSlow)
        );
        assert_eq!(
            IncidentKind::CredentialStuffing.class(Difficulty::Easy),
            Some(IncidentClass::Spike)
        );
        assert_eq!(
            IncidentKind::ShortGapNight.class(Difficulty::Hard),
            Some(IncidentClass::Availability)
        );
    }

    #[test]
    fn names_round_trip() {
        for c in IncidentClass::ALL {
            assert_eq!(c.as_str().parse::<IncidentClass>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!("fast".parse::<IncidentClass>().is_err());
    }
}
