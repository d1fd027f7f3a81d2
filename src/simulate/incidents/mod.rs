//! Labelled incidents laid over the background, and the default schedule.
//!
//! An incident acts on the traffic in one of four ways:
//!
//! * **adds** events: credential stuffing, password spraying, MFA push
//!   fatigue, the benign failure blip;
//! * **scales** volume: a benign surge adds extra ordinary sign-ins, a
//!   benign holiday thins them out;
//! * **rewrites** outcomes: an outage turns successful sign-ins into failures
//!   (or makes them vanish);
//! * **hides** events: a pipeline gap drops everything in its window.
//!
//! Each incident draws from its own random stream (seeded from the run seed
//! and its position in the list), never from the background's. So adding,
//! removing or editing one incident leaves the rest of the output alone:
//! everything before it is byte-identical, which makes A/B comparisons of a
//! detector with and without an incident meaningful.
//!
//! Intensities come from the difficulty. `Easy` attacks stand far above the
//! noise (a credential-stuffing run makes thousands of attempts an hour).
//! `Hard` ones sit close to it: stuffing only doubles or triples the normal
//! failure rate, spraying makes one attempt every few minutes, an outage
//! fails half of sign-ins. A detector that catches `Hard` without paging on
//! the benign incidents is doing its job.
//!
//! `plan` draws each incident's numbers and describes them, `state` sets up what an
//! incident needs while it runs, this module injects its events minute by minute, and
//! `schedule` places the default incidents.

mod plan;
mod schedule;
mod state;

pub(super) use schedule::default_schedule;

use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::Distribution;

use super::event::{Actor, Ev, EventType, Flow, Outcome, Reason};
use super::model::{poisson, Model, MINUTE_MS};
use super::world::{Factor, World};
use super::{stream, Difficulty, Incident, IncidentKind};
use plan::Plan;
use state::State;

/// Okta's default lock-out threshold: failures after this many report
/// `LOCKED_OUT`.
const LOCKOUT_AFTER: u32 = 10;

/// The random stream of the incident at `index`.
fn incident_rng(seed: u64, index: usize) -> SmallRng {
    stream(seed, 0x100 + index as u64)
}

fn window(inc: &Incident) -> (i64, i64) {
    (inc.start.timestamp_millis(), inc.end.timestamp_millis())
}

/// One incident while the generator runs.
pub(super) struct Active {
    start: i64,
    end: i64,
    rng: SmallRng,
    plan: Plan,
    state: State,
}

impl Active {
    pub fn new(
        seed: u64,
        index: usize,
        inc: &Incident,
        difficulty: Difficulty,
        world: &World,
        model: &Model,
    ) -> Active {
        let mut rng = incident_rng(seed, index);
        let plan = Plan::derive(inc, difficulty, world, model, &mut rng);
        let (start, end) = window(inc);
        let state = State::new(&plan, world, start, end, &mut rng);
        Active {
            start,
            end,
            rng,
            plan,
            state,
        }
    }

    fn contains(&self, t: i64) -> bool {
        (self.start..self.end).contains(&t)
    }

    /// True when this is a pipeline gap covering `t`.
    pub fn hides(&self, t: i64) -> bool {
        matches!(self.plan, Plan::Gap) && self.contains(t)
    }

    /// A surge's random stream and extra-volume factor at `t` (e.g. 0.7 for
    /// 1.7× volume), if this is a surge active then.
    pub fn surge(&mut self, t: i64) -> Option<(&mut SmallRng, f64)> {
        match self.plan {
            Plan::Surge { factor } if self.contains(t) => Some((&mut self.rng, factor - 1.0)),
            _ => None,
        }
    }

    /// Lets a holiday or outage act on one ordinary sign-in flow (events in
    /// generation order, starting with the first password attempt).
    pub fn admit(&mut self, flow: &mut Vec<Ev>) {
        let Some(first) = flow.first() else {
            return;
        };
        if !self.contains(first.t_ms) {
            return;
        }
        match self.plan {
            Plan::Holiday { keep } if !self.rng.random_bool(keep) => flow.clear(),
            Plan::VpnChange { key } => {
                // Everyone now egresses through the new VPN's carrier-grade
                // NAT range (100.64.0.0/10): same people, new addresses.
                for e in flow.iter_mut() {
                    let h = super::mix(u64::from(e.flow.net.ip) ^ key) as u32;
                    e.flow.net.ip = (100 << 24) | (64 << 16) | (h & 0x3F_FFFF);
                }
            }
            Plan::Outage {
                fail_share,
                unreachable,
            } => {
                if !self.rng.random_bool(fail_share) {
                    return;
                }
                if unreachable {
                    flow.clear();
                    return;
                }
                // The directory agent is down: every password check fails
                // and nothing after it happens. Typos in the username fail
                // as before, since Okta rejects them without the agent.
                if let Some(ok) = flow
                    .iter()
                    .position(|e| e.is_session_start() && e.outcome == Outcome::Success)
                {
                    flow.truncate(ok + 1);
                }
                let down = Outcome::Failure(Reason::AgentUnavailable);
                for e in flow.iter_mut() {
                    if e.is_session_start() && !matches!(e.flow.actor, Actor::Typo { .. }) {
                        e.outcome = down;
                        e.flow.session = 0;
                    }
                }
                // People retry once or twice before giving up, so failures
                // rise while successes collapse.
                let Some(&last) = flow.last() else {
                    return;
                };
                let mut t = last.t_ms;
                for _ in 0..self.rng.random_range(1..=2) {
                    t += self.rng.random_range(15_000..90_000);
                    flow.push(
                        last.flow
                            .ev(&mut self.rng, t, EventType::SessionStart, down),
                    );
                }
            }
            _ => {}
        }
    }

    /// Appends this incident's own events for the minute `[t0, t0 + 1 min)`.
    /// Every event is at or after `t0`.
    pub fn inject(&mut self, world: &World, t0: i64, out: &mut Vec<Ev>) {
        let lo = t0.max(self.start);
        let hi = (t0 + MINUTE_MS).min(self.end);
        if lo >= hi {
            return;
        }
        let frac = (hi - lo) as f64 / MINUTE_MS as f64;
        let rng = &mut self.rng;
        match (&self.plan, &mut self.state) {
            (
                Plan::Stuffing {
                    per_hour,
                    real_share,
                    blocked,
                    ..
                },
                State::Stuffing { ips, burst },
            ) => {
                // Stuffing tools run in bursts as proxies rotate.
                let b = burst.map_or(1.0, |g| g.sample(rng));
                for _ in 0..poisson(rng, per_hour / 60.0 * frac * b) {
                    let t = rng.random_range(lo..hi);
                    let (net, agent) = ips[rng.random_range(0..ips.len())];
                    if *blocked > 0.0 && rng.random_bool(*blocked) {
                        // ThreatInsight terminates the request before the
                        // username is read.
                        let flow = Flow::new(rng, Actor::Unknown(0), net, agent, Factor::Push);
                        let flow = Flow { session: 0, ..flow };
                        out.push(flow.ev(rng, t, EventType::ThreatDetected, Outcome::Deny));
                        continue;
                    }
                    if !world.users.is_empty() && rng.random_bool(*real_share) {
                        let user = rng.random_range(0..world.users.len() as u32);
                        let flow = Flow::new(rng, Actor::User(user), net, agent, Factor::Push);
                        let x = rng.random::<f64>();
                        if x < 0.01 {
                            // Reused password: the attacker is through the
                            // first factor, and the real user gets a push
                            // out of nowhere.
                            hijacked(flow, t, rng.random_bool(0.5), rng, out);
                        } else {
                            let reason = if x < 0.04 {
                                Reason::LockedOut
                            } else {
                                Reason::InvalidCredentials
                            };
                            failed_password(flow, t, reason, rng, out);
                        }
                    } else {
                        let actor = Actor::Unknown(rng.random());
                        let flow = Flow::new(rng, actor, net, agent, Factor::Push);
                        failed_password(flow, t, Reason::InvalidCredentials, rng, out);
                    }
                }
            }
            (
                Plan::Spraying { per_hour, .. },
                State::Spraying {
                    ips,
                    agent,
                    order,
                    next,
                },
            ) => {
                let n = poisson(rng, per_hour / 60.0 * frac) as usize;
                let mut times: Vec<i64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
                times.sort_unstable();
                for t in times {
                    let Some(&user) = order.get(*next) else {
                        return;
                    };
                    // The same few addresses take turns.
                    let net = ips[*next % ips.len()];
                    *next += 1;
                    let flow = Flow::new(rng, Actor::User(user), net, agent, Factor::Push);
                    if rng.random_bool(0.003) {
                        // "Winter2026!" worked for someone.
                        hijacked(flow, t, false, rng, out);
                    } else {
                        failed_password(flow, t, Reason::InvalidCredentials, rng, out);
                    }
                }
            }
            (
                Plan::PushFatigue {
                    per_hour,
                    deny_share,
                    approve,
                    oie,
                    ..
                },
                State::PushFatigue {
                    attacker,
                    agent,
                    targets,
                    approved,
                },
            ) => {
                for &user in targets.iter() {
                    for _ in 0..poisson(rng, per_hour / 60.0 * frac) {
                        let t = rng.random_range(lo..hi);
                        let flow =
                            Flow::new(rng, Actor::User(user), *attacker, agent, Factor::Push);
                        // The attacker knows the password: each round is a
                        // successful first factor and a push.
                        out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Success));
                        let sent = t + rng.random_range(500..1_500);
                        out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
                        if rng.random_bool(*deny_share) {
                            let t2 = sent + rng.random_range(3_000..30_000);
                            if *oie {
                                // Identity Engine: a denied push is a failed
                                // factor verification with reason
                                // INVALID_CREDENTIALS (Okta support article
                                // "Clarifying if rejecting an Okta Verify push
                                // notification counts as failed MFA");
                                // `user.mfa.okta_verify.deny_push` is Classic only.
                                let no = Outcome::Failure(Reason::InvalidCredentials);
                                out.push(flow.ev(rng, t2, EventType::AuthViaMfa, no));
                            } else {
                                let no = Outcome::Failure(Reason::UserRejectedPush);
                                out.push(flow.ev(rng, t2, EventType::DenyPush, no));
                            }
                        }
                    }
                }
                // In the last minute, the worn-down user may finally tap
                // "Yes".
                if *approve && !*approved && hi == self.end {
                    *approved = true;
                    if let Some(&user) = targets.first() {
                        let t = (hi - rng.random_range(10_000..50_000)).max(lo);
                        let flow =
                            Flow::new(rng, Actor::User(user), *attacker, agent, Factor::Push);
                        out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Success));
                        let sent = t + rng.random_range(500..1_500);
                        out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
                        let yes = sent + rng.random_range(4_000..12_000);
                        out.push(flow.ev(rng, yes, EventType::AuthViaMfa, Outcome::Success));
                    }
                }
            }
            (
                plan,
                State::Scheduled {
                    nets,
                    agent,
                    items,
                    next,
                },
            ) => {
                while let Some(&(t, user, net)) = items.get(*next) {
                    if t >= hi {
                        break;
                    }
                    *next += 1;
                    let t = t.max(lo);
                    let Some(u) = world.users.get(user as usize) else {
                        continue;
                    };
                    let net =
                        nets.get(net)
                            .copied()
                            .unwrap_or(if u.remote { u.home } else { u.corp });
                    let (agent, factor) = if nets.is_empty() {
                        (u.desktop, u.factor)
                    } else {
                        (*agent, u.factor)
                    };
                    let flow = Flow::new(rng, Actor::User(user), net, agent, factor);
                    match plan {
                        Plan::DistSpray { .. } | Plan::ServiceAccount { .. } => {
                            failed_password(flow, t, Reason::InvalidCredentials, rng, out);
                        }
                        _ => {
                            // A person who gets in after one to three
                            // mistakes: an old password, or (new starters, one
                            // mistake in five) a typo in the username, which
                            // Okta logs with actor.id "unknown".
                            let mut at = t;
                            for _ in 0..rng.random_range(1..=3) {
                                let actor = if matches!(plan, Plan::NatTypos { .. })
                                    && rng.random_bool(0.2)
                                {
                                    Actor::Typo {
                                        user,
                                        variant: rng.random(),
                                    }
                                } else {
                                    Actor::User(user)
                                };
                                failed_password(
                                    Flow { actor, ..flow },
                                    at,
                                    Reason::InvalidCredentials,
                                    rng,
                                    out,
                                );
                                at += rng.random_range(8_000..60_000);
                            }
                            out.push(flow.ev(rng, at, EventType::SessionStart, Outcome::Success));
                            let sent = at + rng.random_range(300..1_500);
                            out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
                            let yes = sent + rng.random_range(2_500..20_000);
                            out.push(flow.ev(rng, yes, EventType::AuthViaMfa, Outcome::Success));
                        }
                    }
                }
            }
            (Plan::Blip { .. }, State::Blip { flow, times, next }) => {
                while let Some(&t) = times.get(*next) {
                    if t >= hi {
                        break;
                    }
                    *next += 1;
                    let reason = if *next as u32 > LOCKOUT_AFTER {
                        Reason::LockedOut
                    } else {
                        Reason::InvalidCredentials
                    };
                    let attempt = Flow {
                        txn: rng.random(),
                        ..*flow
                    };
                    out.push(attempt.ev(
                        rng,
                        t.max(lo),
                        EventType::SessionStart,
                        Outcome::Failure(reason),
                    ));
                }
            }
            _ => {}
        }
    }
}

/// A failed password attempt (no session is created).
fn failed_password(flow: Flow, t: i64, reason: Reason, rng: &mut SmallRng, out: &mut Vec<Ev>) {
    let flow = Flow { session: 0, ..flow };
    out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Failure(reason)));
}

/// An attacker got a password right: first factor succeeds, a push goes to
/// the real user, who may deny it (or ignore it).
fn hijacked(flow: Flow, t: i64, deny: bool, rng: &mut SmallRng, out: &mut Vec<Ev>) {
    out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Success));
    let sent = t + rng.random_range(500..1_500);
    out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
    if deny {
        let t2 = sent + rng.random_range(5_000..30_000);
        let no = Outcome::Failure(Reason::UserRejectedPush);
        out.push(flow.ev(rng, t2, EventType::DenyPush, no));
    }
}

/// Whether a kind should page security. Benign incidents exist precisely
/// to catch detectors that page on them.
pub(super) fn expect_page(kind: IncidentKind) -> bool {
    kind.alert_kind().is_some()
}
