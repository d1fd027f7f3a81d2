//! The numbers that make one incident, drawn from its own stream, and the note that
//! describes them in the schedule.

use rand::rngs::SmallRng;
use rand::Rng;

use super::{window, LOCKOUT_AFTER};
use crate::simulate::model::{Model, MINUTE_MS};
use crate::simulate::world::World;
use crate::simulate::{Difficulty, Incident, IncidentKind};

/// The numbers that make one incident: drawn from the incident's stream, so
/// the schedule's notes and the generator agree on them.
#[derive(Clone, Debug)]
pub(super) enum Plan {
    Stuffing {
        per_hour: f64,
        ips: usize,
        /// Share of attempts aimed at real accounts (the rest are
        /// addresses from other breaches that never existed here).
        real_share: f64,
        /// Share of attempts ThreatInsight blocks before the username is
        /// read (`security.threat.detected`, DENY) instead of a failed
        /// sign-in.
        blocked: f64,
    },
    Spraying {
        per_hour: f64,
        ips: usize,
        /// Passwords tried per account (one or two: more trips lock-outs).
        passes: usize,
    },
    PushFatigue {
        targets: usize,
        per_hour: f64,
        deny_share: f64,
        approve: bool,
        /// An Okta Identity Engine tenant: a denial is logged as
        /// `user.authentication.auth_via_mfa` FAILURE.
        oie: bool,
    },
    /// Low-and-slow spraying from several addresses: `per_ip` accounts
    /// each, one try per account.
    DistSpray {
        ips: usize,
        per_ip: usize,
    },
    ResetWave {
        people: usize,
    },
    ServiceAccount {
        every_min: f64,
    },
    NatTypos {
        people: usize,
    },
    VpnChange {
        key: u64,
    },
    /// A labelled window with no effect of its own (a DST change: the
    /// background model shifts the offices' clocks itself).
    Label,
    Outage {
        fail_share: f64,
        /// The login page itself is down: sign-ins vanish instead of
        /// failing.
        unreachable: bool,
    },
    Gap,
    Surge {
        factor: f64,
    },
    Holiday {
        keep: f64,
    },
    Blip {
        failures: u32,
    },
}

impl Plan {
    pub(super) fn derive(
        inc: &Incident,
        difficulty: Difficulty,
        world: &World,
        model: &Model,
        rng: &mut SmallRng,
    ) -> Plan {
        let (start, end) = window(inc);
        let minutes = ((end - start) / MINUTE_MS).max(1) as f64;
        let easy = difficulty == Difficulty::Easy;
        let users = world.users.len();
        // Failed password attempts per hour in this window and at a busy
        // weekday peak, as the background would make them.
        let fail = world.mean_fail_prob * 60.0;
        let peak_fail = model.peak_flows(world) * fail;
        let window_fail = mean_expected_flows(world, model, start, end) * fail;
        match inc.kind {
            IncidentKind::CredentialStuffing => {
                stuffing(easy, peak_fail, window_fail, minutes, rng)
            }
            IncidentKind::QuietStuffing => Plan::Stuffing {
                // 10-15 failed sign-ins per 15 minutes.
                per_hour: rng.random_range(40.0..60.0),
                ips: rng.random_range(60..150),
                real_share: rng.random_range(0.1..0.2),
                blocked: 0.0,
            },
            IncidentKind::BlockedStuffing => Plan::Stuffing {
                per_hour: rng.random_range(1.5..3.0) * window_fail.max(15.0),
                ips: rng.random_range(40..120),
                real_share: rng.random_range(0.1..0.2),
                blocked: rng.random_range(0.4..0.7),
            },
            IncidentKind::DistributedSpraying => Plan::DistSpray {
                ips: rng.random_range(4..=8),
                per_ip: rng.random_range(2..=5),
            },
            // Large enough to look like an attack to the counts (15-30 % of the
            // organisation): a wave of 60-150 never paged, so it tested nothing; one of
            // 150-350 raised failures tenfold but stayed under a third of the attempts,
            // which the spike detectors let pass (session 11). Traffic from outside had
            // 190-283 people of 1,500, failing about half of the attempts.
            IncidentKind::BenignResetWave => Plan::ResetWave {
                people: per_org(rng.random_range(300..600), users),
            },
            IncidentKind::BenignServiceAccount => Plan::ServiceAccount {
                every_min: rng.random_range(2.0..6.0),
            },
            IncidentKind::BenignNatTypos => Plan::NatTypos {
                people: per_org(rng.random_range(30..60), users),
            },
            IncidentKind::BenignVpnChange => Plan::VpnChange { key: rng.random() },
            IncidentKind::BenignDst => Plan::Label,
            IncidentKind::ShortGapPeak | IncidentKind::ShortGapNight => Plan::Gap,
            IncidentKind::PasswordSpraying => spraying(easy, users, minutes, rng),
            IncidentKind::MfaPushFatigue | IncidentKind::OiePushFatigue => {
                push_fatigue(easy, inc.kind == IncidentKind::OiePushFatigue, rng)
            }
            IncidentKind::Outage => Plan::Outage {
                fail_share: if easy {
                    rng.random_range(0.7..1.0)
                } else {
                    rng.random_range(0.4..0.6)
                },
                unreachable: rng.random_bool(0.35),
            },
            IncidentKind::PipelineGap => Plan::Gap,
            IncidentKind::BenignSurge => Plan::Surge {
                factor: rng.random_range(1.5..2.0),
            },
            IncidentKind::BenignHoliday => Plan::Holiday {
                keep: rng.random_range(0.12..0.25),
            },
            IncidentKind::BenignBlip => Plan::Blip {
                failures: rng.random_range(10..=20),
            },
        }
    }

    /// Human-readable summary, used as the label's `note`.
    pub(super) fn describe(&self, difficulty: Difficulty) -> String {
        let d = difficulty.as_str();
        match self {
            Plan::Stuffing {
                per_hour,
                ips,
                real_share,
                blocked,
            } => format!(
                "{d}: ~{per_hour:.0} attempts/h from {ips} rotating IPs, {:.0}% against real accounts{}",
                real_share * 100.0,
                if *blocked > 0.0 {
                    format!(", {:.0}% blocked by ThreatInsight (security.threat.detected)", blocked * 100.0)
                } else {
                    String::new()
                }
            ),
            Plan::DistSpray { ips, per_ip } => format!(
                "{d}: {ips} IPs, {per_ip} accounts each, one try per account, spread over the window, never a success"
            ),
            Plan::ResetWave { people } => format!(
                "{people} people fail once or twice with their old password after a help-desk reset, then sign in"
            ),
            Plan::ServiceAccount { every_min } => format!(
                "a service account with a stale password fails every ~{every_min:.1} min from one address"
            ),
            Plan::NatTypos { people } => format!(
                "{people} new starters behind one office NAT mistype usernames and passwords, then sign in"
            ),
            Plan::VpnChange { .. } => {
                "a VPN change moves every employee to new source addresses".to_string()
            }
            Plan::Label => "daylight saving time changed: the offices' day moved an hour in UTC".to_string(),
            Plan::Spraying {
                per_hour,
                ips,
                passes,
            } => format!(
                "{d}: ~{per_hour:.0} attempts/h from {ips} IP(s), {passes} password(s) per account, accounts in alphabetical order"
            ),
            Plan::PushFatigue { .. } => self.describe_push_fatigue(d),
            Plan::Outage {
                fail_share,
                unreachable,
            } => {
                let what = if *unreachable {
                    "never reach Okta"
                } else {
                    "fail with a directory-agent error"
                };
                format!("{d}: {:.0}% of sign-ins {what}", fail_share * 100.0)
            }
            Plan::Gap => "no events reach CloudWatch".to_string(),
            Plan::Surge { factor } => {
                format!("sign-in volume x{factor:.2} with a normal failure share")
            }
            Plan::Holiday { keep } => {
                format!("weekday at {:.0}% of normal volume", keep * 100.0)
            }
            Plan::Blip { failures } => format!(
                "one person fails {failures} times in a row from their usual network (locked out after {LOCKOUT_AFTER})"
            ),
        }
    }

    fn describe_push_fatigue(&self, d: &str) -> String {
        let Plan::PushFatigue {
            targets,
            per_hour,
            deny_share,
            approve,
            oie,
        } = self
        else {
            return String::new();
        };
        format!(
                "{d}: {targets} user(s) get ~{per_hour:.0} pushes/h each from one IP, {:.0}% denied{}{}",
                deny_share * 100.0,
                if *oie {
                    " (Identity Engine: denials logged as auth_via_mfa FAILURE)"
                } else {
                    ""
                },
                if *approve {
                    ", the last one approved"
                } else {
                    ", none approved"
                }
            )
    }
}

/// The organisation the benign incidents' head counts were drawn for: 2,000 people,
/// the size every stored run and every threshold was measured on.
const DRAWN_FOR_USERS: usize = 2000;

/// A head count `drawn` for a 2,000-person organisation, scaled to `users` people
/// (rounded, at least one, at most everyone). A help-desk reset wave or a cohort of new
/// starters is a share of the organisation, not a fixed number of people: 60–150 is
/// 3–7.5 % of 2,000 people but 10–25 % of 600 (where the reset wave of hard seed 5, 138
/// people, paged `okta-availability` as an outage, and 45–59 new starters behind one
/// NAT paged `failure_spike` on seeds 1 and 4). The draw itself is unchanged, so a
/// 2,000-person run is byte-identical and the same seed draws the same share at any size.
fn per_org(drawn: usize, users: usize) -> usize {
    let scaled = (drawn as f64 * users as f64 / DRAWN_FOR_USERS as f64).round() as usize;
    scaled.clamp(1, users.max(1))
}

/// Mean expected background flows per minute over `[start, end)`, sampled
/// every ten minutes.
fn mean_expected_flows(world: &World, model: &Model, start: i64, end: i64) -> f64 {
    let step = (10 * MINUTE_MS).max((end - start) / 1000);
    let mut t = start;
    let (mut sum, mut n) = (0.0, 0.0);
    while t < end {
        sum += model.expected_flows(world, t);
        n += 1.0;
        t += step;
    }
    if n > 0.0 {
        sum / n
    } else {
        model.expected_flows(world, start)
    }
}

/// Credential stuffing. Easy stands far above the noise; hard is close to it.
fn stuffing(
    easy: bool,
    peak_fail: f64,
    window_fail: f64,
    minutes: f64,
    rng: &mut SmallRng,
) -> Plan {
    // Hard: close to the noise. On top of the background, two to
    // three times its failure rate (the window shows three to
    // four times the usual failures), never fewer than eight an
    // hour: a few dozen attempts from about as many addresses,
    // more than half on usernames that do not exist here.
    if easy {
        Plan::Stuffing {
            per_hour: rng.random_range(3000.0..8000.0_f64).max(10.0 * peak_fail),
            ips: rng.random_range(300..900),
            real_share: rng.random_range(0.1..0.2),
            blocked: 0.0,
        }
    } else {
        let per_hour = rng.random_range(2.0..3.0) * window_fail.max(8.0);
        Plan::Stuffing {
            per_hour,
            ips: ((per_hour * minutes / 60.0) as usize).max(10),
            real_share: rng.random_range(0.3..0.45),
            blocked: 0.0,
        }
    }
}

/// Password spraying: a few addresses, one or two passes over the user list, at most
/// as many attempts as the list allows.
fn spraying(easy: bool, users: usize, minutes: f64, rng: &mut SmallRng) -> Plan {
    let ips = rng.random_range(1..=if easy { 5 } else { 3 });
    let passes = rng.random_range(1..=2);
    let budget = (users * passes) as f64;
    let wanted = if easy {
        rng.random_range(800.0..2500.0) / minutes * 60.0
    } else {
        60.0 / rng.random_range(2.0..5.0)
    };
    Plan::Spraying {
        per_hour: wanted.min(budget / minutes * 60.0),
        ips,
        passes,
    }
}

/// MFA push fatigue: pushes at one to three users, some denied, maybe one approved.
fn push_fatigue(easy: bool, oie: bool, rng: &mut SmallRng) -> Plan {
    Plan::PushFatigue {
        targets: rng.random_range(1..=if easy { 3 } else { 2 }),
        per_hour: if easy {
            rng.random_range(30.0..60.0)
        } else {
            rng.random_range(10.0..20.0)
        },
        deny_share: if easy {
            rng.random_range(0.6..0.9)
        } else {
            rng.random_range(0.3..0.6)
        },
        approve: rng.random_bool(0.4),
        oie,
    }
}

#[cfg(test)]
mod tests {
    use super::per_org;

    #[test]
    fn head_counts_scale_with_the_organisation_and_stay_put_at_2000() {
        for drawn in [30, 59, 60, 149] {
            assert_eq!(per_org(drawn, 2000), drawn);
        }
        assert_eq!(per_org(138, 600), 41);
        assert_eq!(per_org(45, 6000), 135);
        assert_eq!(per_org(30, 10), 1);
        assert_eq!(per_org(60, 1), 1);
        assert_eq!(per_org(150, 20_000), 1500);
    }
}
