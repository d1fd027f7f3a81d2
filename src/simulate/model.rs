//! Background traffic: how many people sign in each minute, and what one
//! sign-in writes to the System Log.
//!
//! # Volume
//! Sign-in volume is a rate per person per minute that depends on the
//! person's *local* time, multiplied up by the number of people. Its shape:
//!
//! * **Diurnal curve.** Almost nobody signs in at night; people arrive from
//!   07:00, sign in to everything between 09:00 and 11:00 (the peak), eat
//!   lunch (a dip around 12:30, not a collapse: some eat at their desk),
//!   have a lower afternoon plateau as sessions are already open, and fade
//!   out by 19:00 with a small evening bump of people checking mail. It is a
//!   sum of three Gaussian bumps over a small floor.
//! * **Week.** Weekends run at ~15 % of a weekday (on-call staff, keen
//!   people). Monday mornings are busier: sessions expired over the weekend,
//!   so everyone re-authenticates at once.
//! * **Day-to-day variation.** Each calendar day gets a log-normal factor
//!   (about ±8 %): some days are just busier. It is a pure function of the
//!   seed and date, so every office sees the same "busy Tuesday".
//! * **Over-dispersion.** Counts are not plain Poisson. A slowly wandering
//!   factor per office (an AR(1) process in log space with a ~30-minute
//!   memory: meetings, bursts after a train arrives) and a per-minute Gamma
//!   factor make the count per minute negative-binomial-like, with variance
//!   well above the mean. A detector tuned on Poisson noise pages all day on
//!   real traffic; this keeps it honest.
//!
//! # One sign-in
//! A password attempt (`user.session.start`) that usually succeeds; if not,
//! the person retries a few seconds later (up to three tries, less if they
//! get locked out). Success is followed by the second factor: an Okta Verify
//! push (`system.push.send_factor_verify_push`, then
//! `user.authentication.auth_via_mfa`) or a typed code. Some sessions end
//! with an explicit sign-out hours later; most just expire silently.

use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Normal, Poisson};

use super::event::{Actor, Ev, EventType, Flow, Outcome, Reason};
use super::stream;
use super::world::{hostile_net, Factor, Site, World, SITES, TOOLS};

pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(super) const DAY_MS: i64 = 24 * HOUR_MS;

/// Sign-in flows per person (of average weight) on an ordinary weekday.
/// Each flow logs about three events, so a 2,000-person company writes
/// ~20,000 events per weekday.
const FLOWS_PER_WEEKDAY: f64 = 3.0;
/// Weekend volume relative to a weekday.
const WEEKEND: f64 = 0.15;
/// Spread (in log space) of the day-to-day factor.
const DAY_SIGMA: f64 = 0.08;
/// Stationary spread and memory (minutes) of the per-office AR(1) factor.
const WANDER_SIGMA: f64 = 0.12;
const WANDER_MINUTES: f64 = 30.0;
/// Shape of the per-minute Gamma factor: variance adds λ²/k to Poisson's λ.
const GAMMA_K: f64 = 10.0;
/// Password attempts from random internet hosts per minute and per person:
/// bots trying leaked addresses, with no campaign behind them (a bigger
/// company leaks more addresses). About two an hour for 2,000 people. Makes
/// the "distinct failing IPs" signal non-zero on quiet days, as in real
/// tenants.
const STRAY_PER_MIN_PER_PERSON: f64 = 1.0 / 60_000.0;

fn bump(h: f64, centre: f64, width: f64) -> f64 {
    let z = (h - centre) / width;
    (-0.5 * z * z).exp()
}

/// Relative sign-in intensity at local hour `h` (0–24) on a weekday.
fn diurnal(h: f64) -> f64 {
    0.03 + bump(h, 10.0, 1.4) + 0.85 * bump(h, 14.3, 2.0) + 0.12 * bump(h, 21.0, 1.2)
}

/// Extra Monday-morning re-authentication, peaking at 09:00.
fn monday_boost(h: f64) -> f64 {
    1.0 + 0.35 * bump(h, 9.0, 1.3)
}

/// Day of week for a day number counted from 1970-01-01 (a Thursday),
/// Monday = 0.
pub(super) fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Local day number and minute of day at UTC instant `t_ms`.
pub(super) fn local_day_minute(offset_min: i32, t_ms: i64) -> (i64, usize) {
    let local = t_ms + i64::from(offset_min) * MINUTE_MS;
    (
        local.div_euclid(DAY_MS),
        (local.rem_euclid(DAY_MS) / MINUTE_MS) as usize,
    )
}

/// The deterministic part of the volume model: curve, week and day factors.
pub(super) struct Model {
    seed: u64,
    /// Flows per minute per unit of weight on a plain weekday, by local
    /// minute of day.
    weekday: Vec<f64>,
    monday: Vec<f64>,
    day_noise: Option<Normal<f64>>,
}

impl Model {
    pub fn new(seed: u64) -> Model {
        let hours = |m: usize| (m as f64 + 0.5) / 60.0;
        let raw: Vec<f64> = (0..1440).map(|m| diurnal(hours(m))).collect();
        let total: f64 = raw.iter().sum();
        Model {
            seed,
            weekday: raw.iter().map(|r| r * FLOWS_PER_WEEKDAY / total).collect(),
            monday: (0..1440).map(|m| monday_boost(hours(m))).collect(),
            day_noise: Normal::new(0.0, DAY_SIGMA).ok(),
        }
    }

    /// Busy-day factor for a local calendar day: a pure function of seed and
    /// day, so it needs no state and is the same for every office.
    fn day_factor(&self, day: i64) -> f64 {
        let mut rng = stream(self.seed ^ 0x0DA7_FAC7, day as u64);
        self.day_noise.map_or(1.0, |d| {
            (d.sample(&mut rng) - 0.5 * DAY_SIGMA * DAY_SIGMA).exp()
        })
    }

    /// Expected flows per minute for one person of weight 1 in an office at
    /// `offset_min` from UTC, at UTC instant `t_ms`.
    pub fn per_person(&self, site: &Site, t_ms: i64) -> f64 {
        let (day, minute) = local_day_minute(site.offset_at(t_ms), t_ms);
        let base = self.weekday[minute] * self.day_factor(day);
        match weekday(day) {
            0 => base * self.monday[minute],
            5 | 6 => base * WEEKEND,
            _ => base,
        }
    }

    /// Expected flows per minute for the whole company at `t_ms`, without
    /// noise. Incidents size "hard" attacks against this.
    pub fn expected_flows(&self, world: &World, t_ms: i64) -> f64 {
        SITES
            .iter()
            .zip(&world.sites)
            .map(|(s, su)| su.total_weight() * self.per_person(s, t_ms))
            .sum()
    }

    /// Expected flows per minute at the busiest minute of a plain weekday,
    /// as if everyone were in one timezone (an upper bound good enough to
    /// set attack floors).
    pub fn peak_flows(&self, world: &World) -> f64 {
        let weight: f64 = world.sites.iter().map(|s| s.total_weight()).sum();
        weight * self.weekday.iter().copied().fold(0.0, f64::max)
    }
}

/// A Poisson draw that tolerates λ = 0.
pub(super) fn poisson(rng: &mut SmallRng, lambda: f64) -> u64 {
    if lambda > 0.0 {
        Poisson::new(lambda).map_or(0, |d| d.sample(rng) as u64)
    } else {
        0
    }
}

/// The noisy per-minute volume process for every office.
pub(super) struct Background {
    pub model: Model,
    pub rng: SmallRng,
    wander: Vec<f64>,
    normal: Option<Normal<f64>>,
    gamma: Option<Gamma<f64>>,
}

impl Background {
    pub fn new(seed: u64) -> Background {
        Background {
            model: Model::new(seed),
            rng: stream(seed, 2),
            wander: vec![0.0; SITES.len()],
            normal: Normal::new(0.0, 1.0).ok(),
            gamma: Gamma::new(GAMMA_K, 1.0 / GAMMA_K).ok(),
        }
    }

    /// Advances the noise of office `site` by one minute and returns the
    /// expected number of flows there in the minute starting at `t_ms`. The
    /// caller draws the Poisson count, so incidents can scale it first.
    pub fn site_lambda(&mut self, world: &World, site: usize, t_ms: i64) -> f64 {
        let rho = (-1.0 / WANDER_MINUTES).exp();
        let eps = self.normal.map_or(0.0, |d| d.sample(&mut self.rng));
        let w = &mut self.wander[site];
        *w = rho * *w + WANDER_SIGMA * (1.0 - rho * rho).sqrt() * eps;
        let wander = (*w - 0.5 * WANDER_SIGMA * WANDER_SIGMA).exp();
        let gamma = self.gamma.map_or(1.0, |d| d.sample(&mut self.rng));
        let rate = self.model.per_person(&SITES[site], t_ms);
        world.sites[site].total_weight() * rate * wander * gamma
    }
}

/// Failure reason when a known user's password attempt fails. Mostly plain
/// wrong passwords; a few factor-sequence errors and lock-outs.
fn password_failure(rng: &mut SmallRng) -> Reason {
    let x = rng.random::<f64>();
    if x < 0.88 {
        Reason::InvalidCredentials
    } else if x < 0.97 {
        Reason::VerificationError
    } else {
        Reason::LockedOut
    }
}

/// One person signing in at `t_ms`: password attempt(s), second factor,
/// perhaps a sign-out hours later. Appends the events to `out` (not sorted).
pub(super) fn sign_in(world: &World, user: u32, t_ms: i64, rng: &mut SmallRng, out: &mut Vec<Ev>) {
    let Some(u) = world.users.get(user as usize) else {
        return;
    };
    let (_, minute) = local_day_minute(SITES[u.site].offset_at(t_ms), t_ms);
    let (net, agent) = world.pick_net(u, (minute / 60) as u32, rng);
    let flow = Flow::new(rng, Actor::User(user), net, agent, u.factor);
    let mut t = t_ms;
    // Password attempts. A mistake is retried a few seconds later; after a
    // lock-out, or when they give up, the flow ends without a session.
    let mut tries = 0;
    while rng.random_bool(u.fail_prob) {
        // One failure in ten is a typo in the username itself, which Okta
        // logs against the string typed, not the person.
        let (actor, reason) = if rng.random_bool(0.1) {
            let variant = rng.random();
            (Actor::Typo { user, variant }, Reason::InvalidCredentials)
        } else {
            (Actor::User(user), password_failure(rng))
        };
        let failed = Flow {
            actor,
            session: 0,
            ..flow
        };
        out.push(failed.ev(rng, t, EventType::SessionStart, Outcome::Failure(reason)));
        tries += 1;
        if tries == 3 || reason == Reason::LockedOut || rng.random_bool(0.15) {
            return;
        }
        t += rng.random_range(6_000..40_000);
    }
    out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Success));
    // Second factor.
    match u.factor {
        Factor::Push => {
            let sent = t + rng.random_range(300..1_500);
            out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
            let x = rng.random::<f64>();
            if x < 0.985 {
                let t2 = sent + rng.random_range(2_500..20_000);
                out.push(flow.ev(rng, t2, EventType::AuthViaMfa, Outcome::Success));
            } else if x < 0.989 {
                // A fat-fingered "No": rare, and exactly what push-fatigue
                // detection must not page on.
                let t2 = sent + rng.random_range(2_500..15_000);
                let reason = Outcome::Failure(Reason::UserRejectedPush);
                out.push(flow.ev(rng, t2, EventType::DenyPush, reason));
                return;
            } else {
                // Phone in the other room: the push expires.
                let t2 = sent + rng.random_range(60_000..90_000);
                let reason = Outcome::Failure(Reason::VerificationError);
                out.push(flow.ev(rng, t2, EventType::AuthViaMfa, reason));
                return;
            }
        }
        Factor::Totp => {
            let mut t2 = t + rng.random_range(5_000..30_000);
            if rng.random_bool(0.04) {
                let reason = Outcome::Failure(Reason::VerificationError);
                out.push(flow.ev(rng, t2, EventType::AuthViaMfa, reason));
                t2 += rng.random_range(8_000..20_000);
            }
            out.push(flow.ev(rng, t2, EventType::AuthViaMfa, Outcome::Success));
        }
    }
    // Explicit sign-out for about a third of sessions, median three hours
    // later (log-normal: most people leave after a few hours, a few keep a
    // tab open all day).
    if rng.random_bool(0.3) {
        let hours = LogNormal::new(3.0_f64.ln(), 0.7).map_or(3.0, |d| d.sample(rng));
        let end = t + (hours * HOUR_MS as f64) as i64;
        let ended = Flow {
            txn: rng.random(),
            ..flow
        };
        out.push(ended.ev(rng, end, EventType::SessionEnd, Outcome::Success));
    }
}

/// Background internet noise for one minute: a few password attempts per hour from
/// random hosts against random (mostly non-existent) accounts; ThreatInsight blocks
/// about a third of those from addresses it flags (`security.threat.detected`, DENY, no
/// user), so a tenant's blocked requests are never silent either.
pub(super) fn stray_attempts(world: &World, t0: i64, rng: &mut SmallRng, out: &mut Vec<Ev>) {
    let lambda = STRAY_PER_MIN_PER_PERSON * world.users.len() as f64;
    for _ in 0..poisson(rng, lambda) {
        let t = t0 + rng.random_range(0..MINUTE_MS);
        let actor = if !world.users.is_empty() && rng.random_bool(0.3) {
            Actor::User(rng.random_range(0..world.users.len() as u32))
        } else {
            Actor::Unknown(rng.random())
        };
        let agent = &TOOLS[rng.random_range(0..TOOLS.len())];
        let net = hostile_net(rng);
        if net.proxy && rng.random_bool(0.35) {
            let flow = Flow {
                session: 0,
                ..Flow::new(rng, Actor::Unknown(0), net, agent, Factor::Push)
            };
            out.push(flow.ev(rng, t, EventType::ThreatDetected, Outcome::Deny));
            continue;
        }
        let flow = Flow {
            session: 0,
            ..Flow::new(rng, actor, net, agent, Factor::Push)
        };
        let reason = Outcome::Failure(Reason::InvalidCredentials);
        out.push(flow.ev(rng, t, EventType::SessionStart, reason));
    }
}
