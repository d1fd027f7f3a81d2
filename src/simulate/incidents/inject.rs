//! Each incident kind's own events for one minute: the arms of [`super::Active::inject`].

use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::Distribution;

use super::plan::Plan;
use super::state::State;
use super::{failed_password, hijacked, LOCKOUT_AFTER};
use crate::simulate::event::{Actor, Ev, EventType, Flow, Outcome, Reason};
use crate::simulate::model::poisson;
use crate::simulate::world::{Factor, World};

/// The minute `[lo, hi)` an incident injects into (`frac` of a whole minute, `end` the
/// incident's end), its random stream and where its events go.
pub(super) struct Minute<'a> {
    pub(super) world: &'a World,
    pub(super) lo: i64,
    pub(super) hi: i64,
    pub(super) frac: f64,
    pub(super) end: i64,
    pub(super) rng: &'a mut SmallRng,
    pub(super) out: &'a mut Vec<Ev>,
}

/// Credential stuffing: bursts of failed passwords from rotating proxies, a few blocked by
/// ThreatInsight, the odd reused password getting through.
pub(super) fn stuffing(m: &mut Minute<'_>, plan: &Plan, state: &mut State) {
    let (
        Plan::Stuffing {
            per_hour,
            real_share,
            blocked,
            ..
        },
        State::Stuffing { ips, burst },
    ) = (plan, state)
    else {
        return;
    };
    let (world, lo, hi, frac) = (m.world, m.lo, m.hi, m.frac);
    let (rng, out) = (&mut *m.rng, &mut *m.out);
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

/// Password spraying: one password tried on user after user, the same few addresses
/// taking turns.
pub(super) fn spraying(m: &mut Minute<'_>, plan: &Plan, state: &mut State) {
    let (
        Plan::Spraying { per_hour, .. },
        State::Spraying {
            ips,
            agent,
            order,
            next,
        },
    ) = (plan, state)
    else {
        return;
    };
    let (lo, hi, frac) = (m.lo, m.hi, m.frac);
    let (rng, out) = (&mut *m.rng, &mut *m.out);
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

/// MFA push fatigue: rounds of correct passwords and pushes at the same users, some
/// denied; a worn-down user may finally approve in the last minute.
pub(super) fn push_fatigue(m: &mut Minute<'_>, plan: &Plan, state: &mut State) {
    let (
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
    ) = (plan, state)
    else {
        return;
    };
    let (lo, hi, frac, end) = (m.lo, m.hi, m.frac, m.end);
    let (rng, out) = (&mut *m.rng, &mut *m.out);
    for &user in targets.iter() {
        for _ in 0..poisson(rng, per_hour / 60.0 * frac) {
            let t = rng.random_range(lo..hi);
            let flow = Flow::new(rng, Actor::User(user), *attacker, agent, Factor::Push);
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
    if *approve && !*approved && hi == end {
        *approved = true;
        if let Some(&user) = targets.first() {
            let t = (hi - rng.random_range(10_000..50_000)).max(lo);
            let flow = Flow::new(rng, Actor::User(user), *attacker, agent, Factor::Push);
            out.push(flow.ev(rng, t, EventType::SessionStart, Outcome::Success));
            let sent = t + rng.random_range(500..1_500);
            out.push(flow.ev(rng, sent, EventType::PushSend, Outcome::Success));
            let yes = sent + rng.random_range(4_000..12_000);
            out.push(flow.ev(rng, yes, EventType::AuthViaMfa, Outcome::Success));
        }
    }
}

/// Attempts drawn up front (distributed spraying, a service account, typos behind a NAT,
/// new starters): each at its time, from its network.
pub(super) fn scheduled(m: &mut Minute<'_>, plan: &Plan, state: &mut State) {
    let (
        plan,
        State::Scheduled {
            nets,
            agent,
            items,
            next,
        },
    ) = (plan, state)
    else {
        return;
    };
    let (world, lo, hi) = (m.world, m.lo, m.hi);
    let (rng, out) = (&mut *m.rng, &mut *m.out);
    while let Some(&(t, user, net)) = items.get(*next) {
        if t >= hi {
            break;
        }
        *next += 1;
        let t = t.max(lo);
        let Some(u) = world.users.get(user as usize) else {
            continue;
        };
        let net = nets
            .get(net)
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
                    let actor = if matches!(plan, Plan::NatTypos { .. }) && rng.random_bool(0.2) {
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

/// The benign failure blip: one person failing again and again, locked out after
/// `LOCKOUT_AFTER` tries.
pub(super) fn blip(m: &mut Minute<'_>, plan: &Plan, state: &mut State) {
    let (Plan::Blip { .. }, State::Blip { flow, times, next }) = (plan, state) else {
        return;
    };
    let (lo, hi) = (m.lo, m.hi);
    let (rng, out) = (&mut *m.rng, &mut *m.out);
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
