//! Seedable simulator of Okta System Log sign-in traffic, as it arrives in
//! CloudWatch Logs through the Okta → EventBridge partner integration.
//!
//! It writes two files: NDJSON events (one EventBridge envelope per line,
//! sorted by `published`) and labels (one [`Incident`] per line), so a
//! detector can be replayed against realistic traffic and scored against
//! ground truth.
//!
//! # How the traffic is built
//! * `world`: a fixed population (offices in a few timezones, office NAT
//!   addresses, home ISPs, browsers, how often each person mistypes) and the
//!   hostile networks attacks come from.
//! * `model`: the background. Each minute, each office draws a number of
//!   sign-ins from a rate that follows the local working day, the week and a
//!   busy-day factor, with over-dispersed noise; each sign-in expands into
//!   its password attempt(s), MFA events and sometimes a sign-out.
//! * `incidents`: labelled attacks, outages, pipeline gaps and benign
//!   look-alikes laid on top, each from its own random stream.
//! * `render`: the JSON writer.
//!
//! # Streaming
//! [`generate`] walks the period minute by minute. Events are queued in a
//! min-heap by time; once a minute has been generated, everything due
//! before its end is rendered and written. Only pending follow-ups (MFA
//! answers seconds away, sign-outs hours away) are held, so memory is bounded
//! by the number of people, not by the length of the run.
//!
//! # Determinism
//! The same [`SimConfig`] gives byte-identical output: every random draw
//! comes from a `SmallRng` seeded from the config's seed, in a fixed order,
//! and nothing depends on wall-clock time or hash iteration order. Like any
//! `SmallRng` output this holds for the locked versions of `rand` and
//! `rand_distr` on 64-bit targets; a dependency upgrade may change the
//! stream (never the model).

mod class;
mod event;
mod generator;
mod incidents;
mod model;
mod render;
mod world;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use class::IncidentClass;
use generator::Generator;
use model::{Model, MINUTE_MS};
use world::World;

/// How far above the background noise attacks stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    /// Attacks well above the noise (stuffing: thousands of attempts/hour).
    Easy,
    /// Attacks close to the noise (stuffing ~2–3× the normal failure rate,
    /// spraying one attempt every few minutes, outages failing ~50 %).
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Hard => "hard",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Difficulty {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "easy" => Ok(Difficulty::Easy),
            "hard" => Ok(Difficulty::Hard),
            _ => Err(format!("unknown difficulty {s:?} (expected easy or hard)")),
        }
    }
}

/// What happened in a labelled window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Many IPs (hundreds, hosting and residential proxies, many countries)
    /// try leaked credentials: mostly unknown users, some real ones, nearly
    /// all failing. Minutes to an hour.
    CredentialStuffing,
    /// One to five IPs try one or two common passwords against many real
    /// accounts, one account at a time, for hours.
    PasswordSpraying,
    /// An attacker with one to three users' passwords floods them with
    /// Okta Verify pushes (tens per hour) until someone taps "Yes".
    MfaPushFatigue,
    /// Sign-ins stop succeeding for 30–120 minutes in business hours.
    Outage,
    /// No events at all for 1–3 hours in business hours (the pipeline broke).
    PipelineGap,
    /// Volume up 1.5–2× with a normal failure share (all-hands, Monday after
    /// a holiday). Must not page.
    BenignSurge,
    /// A weekday with weekend-like volume. Must not page.
    BenignHoliday,
    /// One person fails 10–20 times in 15 minutes. Must not page.
    BenignBlip,
    /// Credential stuffing on a quiet evening or weekend (hard setting): 10–15
    /// failed sign-ins per 15 minutes for about 90 minutes through rotating
    /// proxies, mostly usernames Okta cannot resolve.
    QuietStuffing,
    /// Distributed low-and-slow spraying (hard): 4–8 addresses, 2–5
    /// accounts each, one try per account, over 3–4 hours, never a success.
    DistributedSpraying,
    /// The log stream stops for 35–55 minutes at the weekday peak (hard).
    ShortGapPeak,
    /// The log stream stops for 35–55 minutes in the small hours (hard).
    ShortGapNight,
    /// Push fatigue on an Okta Identity Engine tenant (hard): the denials are
    /// `user.authentication.auth_via_mfa` with outcome FAILURE, not
    /// `user.mfa.okta_verify.deny_push`.
    OiePushFatigue,
    /// Stuffing that ThreatInsight partly blocks (hard): blocked requests are
    /// `security.threat.detected` with outcome DENY and no user.
    BlockedStuffing,
    /// A help-desk password reset wave: many people fail once or twice with
    /// their old password, then get in. Must not page.
    BenignResetWave,
    /// A misconfigured service account failing steadily from one address for
    /// hours. Must not page.
    BenignServiceAccount,
    /// An onboarding class behind one office NAT: many people, many typos
    /// (unknown usernames among them), then success. Must not page.
    BenignNatTypos,
    /// A VPN change moves everyone to new addresses for a day. Must not page.
    BenignVpnChange,
    /// The first business morning after a daylight saving change: the
    /// offices' day starts an hour earlier or later in UTC. Must not page.
    BenignDst,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 19] = [
        IncidentKind::CredentialStuffing,
        IncidentKind::PasswordSpraying,
        IncidentKind::MfaPushFatigue,
        IncidentKind::Outage,
        IncidentKind::PipelineGap,
        IncidentKind::BenignSurge,
        IncidentKind::BenignHoliday,
        IncidentKind::BenignBlip,
        IncidentKind::QuietStuffing,
        IncidentKind::DistributedSpraying,
        IncidentKind::ShortGapPeak,
        IncidentKind::ShortGapNight,
        IncidentKind::OiePushFatigue,
        IncidentKind::BlockedStuffing,
        IncidentKind::BenignResetWave,
        IncidentKind::BenignServiceAccount,
        IncidentKind::BenignNatTypos,
        IncidentKind::BenignVpnChange,
        IncidentKind::BenignDst,
    ];

    /// The alert `kind` a page on this incident should carry (the kind a
    /// responder's playbook is chosen by), or `None` for benign events.
    pub fn alert_kind(self) -> Option<&'static str> {
        match self {
            IncidentKind::CredentialStuffing
            | IncidentKind::QuietStuffing
            | IncidentKind::BlockedStuffing => Some("credential_stuffing"),
            IncidentKind::PasswordSpraying | IncidentKind::DistributedSpraying => {
                Some("password_spraying")
            }
            IncidentKind::MfaPushFatigue | IncidentKind::OiePushFatigue => Some("mfa_push_fatigue"),
            IncidentKind::Outage => Some("outage"),
            IncidentKind::PipelineGap
            | IncidentKind::ShortGapPeak
            | IncidentKind::ShortGapNight => Some("pipeline_gap"),
            _ => None,
        }
    }

    /// The snake_case name, as in the labels file.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::CredentialStuffing => "credential_stuffing",
            IncidentKind::PasswordSpraying => "password_spraying",
            IncidentKind::MfaPushFatigue => "mfa_push_fatigue",
            IncidentKind::Outage => "outage",
            IncidentKind::PipelineGap => "pipeline_gap",
            IncidentKind::BenignSurge => "benign_surge",
            IncidentKind::BenignHoliday => "benign_holiday",
            IncidentKind::BenignBlip => "benign_blip",
            IncidentKind::QuietStuffing => "quiet_stuffing",
            IncidentKind::DistributedSpraying => "distributed_spraying",
            IncidentKind::ShortGapPeak => "short_gap_peak",
            IncidentKind::ShortGapNight => "short_gap_night",
            IncidentKind::OiePushFatigue => "oie_push_fatigue",
            IncidentKind::BlockedStuffing => "blocked_stuffing",
            IncidentKind::BenignResetWave => "benign_reset_wave",
            IncidentKind::BenignServiceAccount => "benign_service_account",
            IncidentKind::BenignNatTypos => "benign_nat_typos",
            IncidentKind::BenignVpnChange => "benign_vpn_change",
            IncidentKind::BenignDst => "benign_dst",
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown incident kind {s:?}"))
    }
}

/// One labelled window, `[start, end)`. Its intensity is not stored: it is
/// drawn from the run's seed, the incident's position in the list and the
/// difficulty, and summarised in `note`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Whether a good detector pages on this (false for benign kinds).
    pub expect_page: bool,
    /// The kind's class in the setting it was simulated in (none for benign kinds);
    /// labels written before classes existed have none: see [`Incident::class`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<IncidentClass>,
    pub note: String,
}

impl Incident {
    /// The labelled class, or for a label without one, the kind's class in the
    /// setting its note names (`"easy: …"`; otherwise the hard setting's).
    pub fn class(&self) -> Option<IncidentClass> {
        let difficulty = if self.note.starts_with("easy:") {
            Difficulty::Easy
        } else {
            Difficulty::Hard
        };
        self.class.or_else(|| self.kind.class(difficulty))
    }
}

/// Everything that determines a simulation's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub days: u32,
    pub users: u32,
    pub difficulty: Difficulty,
    pub incidents: Vec<Incident>,
    /// Okta tenant name in the EventBridge `source`.
    pub tenant: String,
}

impl SimConfig {
    /// A schedule with every incident kind at plausible times in the last
    /// (days - warm-up) days, chosen from the seed; the first 7 days are
    /// clean so baselines can learn.
    ///
    /// Runs of 7 days or fewer get a warm-up of half their length instead.
    /// Incidents never overlap (an hour apart at least). A kind that does
    /// not fit is left out: runs of 12 days or more always fit all eight,
    /// shorter ones may not (a holiday needs a whole free weekday, outages
    /// and gaps want office hours).
    pub fn with_default_incidents(
        seed: u64,
        start: DateTime<Utc>,
        days: u32,
        users: u32,
        difficulty: Difficulty,
    ) -> SimConfig {
        let world = World::build(seed, users);
        let model = Model::new(seed);
        let incidents = incidents::default_schedule(
            seed,
            start.timestamp_millis(),
            days,
            difficulty,
            &world,
            &model,
        );
        SimConfig {
            seed,
            start,
            days,
            users,
            difficulty,
            incidents,
            tenant: "example".to_string(),
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub events: u64,
    /// Bytes written to the events stream.
    pub bytes: u64,
    pub incidents: usize,
}

/// Writes event lines to `events` (NDJSON) and one JSON line per incident to `labels`.
///
/// Streams: memory stays flat however long the run. Fails with
/// `InvalidInput` if `users` is 0 or an incident ends before it starts.
pub fn generate(
    cfg: &SimConfig,
    events: &mut dyn Write,
    labels: &mut dyn Write,
) -> io::Result<SimStats> {
    check(cfg)?;
    for inc in &cfg.incidents {
        serde_json::to_writer(&mut *labels, inc)?;
        labels.write_all(b"\n")?;
    }
    labels.flush()?;
    let mut run = Generator::new(cfg);
    let start = cfg.start.timestamp_millis();
    for minute in 0..i64::from(cfg.days) * 1440 {
        let t0 = start + minute * MINUTE_MS;
        run.minute(t0);
        run.write_due(t0 + MINUTE_MS, events)?;
    }
    run.finish(events)
}

/// A config [`generate`] can run: at least one user, no incident ending before it starts.
fn check(cfg: &SimConfig) -> io::Result<()> {
    if cfg.users == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "simulation needs at least one user",
        ));
    }
    if let Some(bad) = cfg.incidents.iter().find(|i| i.end < i.start) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("incident {} ends before it starts", bad.kind),
        ));
    }
    Ok(())
}

/// SplitMix64's finaliser: a cheap, well-mixing bijection on u64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// An independent random stream for one purpose (`tag`) of a run.
fn stream(seed: u64, tag: u64) -> SmallRng {
    SmallRng::seed_from_u64(mix(seed ^ mix(tag)))
}
