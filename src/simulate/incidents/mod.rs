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

use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;
use rand_distr::{Distribution, Gamma};

use super::event::{Actor, Ev, EventType, Flow, Outcome, Reason};
use super::model::{poisson, weekday, Model, DAY_MS, HOUR_MS, MINUTE_MS};
use super::world::{hostile_net, Agent, Factor, Net, World, SITES, TOOLS};
use super::{stream, Difficulty, Incident, IncidentKind};

/// Okta's default lock-out threshold: failures after this many report
/// `LOCKED_OUT`.
const LOCKOUT_AFTER: u32 = 10;

/// The random stream of the incident at `index`.
fn incident_rng(seed: u64, index: usize) -> SmallRng {
    stream(seed, 0x100 + index as u64)
}

/// The numbers that make one incident: drawn from the incident's stream, so
/// the schedule's notes and the generator agree on them.
#[derive(Clone, Debug)]
enum Plan {
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
    fn derive(
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
            IncidentKind::BenignResetWave => Plan::ResetWave {
                people: rng.random_range(60..150).min(users),
            },
            IncidentKind::BenignServiceAccount => Plan::ServiceAccount {
                every_min: rng.random_range(2.0..6.0),
            },
            IncidentKind::BenignNatTypos => Plan::NatTypos {
                people: rng.random_range(30..60).min(users),
            },
            IncidentKind::BenignVpnChange => Plan::VpnChange { key: rng.random() },
            IncidentKind::BenignDst => Plan::Label,
            IncidentKind::ShortGapPeak | IncidentKind::ShortGapNight => Plan::Gap,
            IncidentKind::PasswordSpraying => {
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
            IncidentKind::MfaPushFatigue | IncidentKind::OiePushFatigue => Plan::PushFatigue {
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
                oie: inc.kind == IncidentKind::OiePushFatigue,
            },
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
    fn describe(&self, difficulty: Difficulty) -> String {
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
            Plan::PushFatigue {
                targets,
                per_hour,
                deny_share,
                approve,
                oie,
            } => format!(
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
            ),
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
}

fn window(inc: &Incident) -> (i64, i64) {
    (inc.start.timestamp_millis(), inc.end.timestamp_millis())
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

/// Run-time state of injecting incidents.
enum State {
    Quiet,
    Stuffing {
        ips: Vec<(Net, &'static Agent)>,
        burst: Option<Gamma<f64>>,
    },
    Spraying {
        ips: Vec<Net>,
        agent: &'static Agent,
        order: Vec<u32>,
        next: usize,
    },
    PushFatigue {
        attacker: Net,
        agent: &'static Agent,
        targets: Vec<u32>,
        approved: bool,
    },
    Blip {
        flow: Flow,
        times: Vec<i64>,
        next: usize,
    },
    /// Attempts drawn up front: who, when, from which of `nets` (an index;
    /// `usize::MAX` for the person's own usual network).
    Scheduled {
        nets: Vec<Net>,
        agent: &'static Agent,
        items: Vec<(i64, u32, usize)>,
        next: usize,
    },
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

impl State {
    fn new(plan: &Plan, world: &World, start: i64, end: i64, rng: &mut SmallRng) -> State {
        let users = world.users.len() as u32;
        match *plan {
            Plan::Stuffing { ips, .. } => State::Stuffing {
                ips: (0..ips)
                    .map(|_| (hostile_net(rng), &TOOLS[rng.random_range(0..TOOLS.len())]))
                    .collect(),
                burst: Gamma::new(4.0, 0.25).ok(),
            },
            Plan::Spraying { ips, passes, .. } => {
                // Sprayers walk a harvested user list, usually sorted.
                let mut order: Vec<u32> = (0..users).collect();
                order.sort_by(|&a, &b| {
                    world.users[a as usize]
                        .login
                        .cmp(&world.users[b as usize].login)
                });
                if users > 0 {
                    order.rotate_left(rng.random_range(0..users) as usize);
                }
                let once = order.clone();
                for _ in 1..passes {
                    order.extend_from_slice(&once);
                }
                State::Spraying {
                    ips: (0..ips.max(1)).map(|_| hostile_net(rng)).collect(),
                    agent: &TOOLS[rng.random_range(0..TOOLS.len())],
                    order,
                    next: 0,
                }
            }
            Plan::PushFatigue { targets, .. } => State::PushFatigue {
                attacker: hostile_net(rng),
                // A real browser: the attacker drives the normal login page.
                agent: &TOOLS[1],
                targets: index::sample(rng, users as usize, targets.min(users as usize))
                    .iter()
                    .map(|i| i as u32)
                    .collect(),
                approved: false,
            },
            Plan::DistSpray { ips, per_ip } if users > 0 && end > start => {
                let nets: Vec<Net> = (0..ips).map(|_| hostile_net(rng)).collect();
                let accounts =
                    index::sample(rng, users as usize, (ips * per_ip).min(users as usize));
                let mut items: Vec<(i64, u32, usize)> = accounts
                    .iter()
                    .enumerate()
                    .map(|(i, user)| (rng.random_range(start..end), user as u32, i % ips))
                    .collect();
                items.sort_unstable();
                State::Scheduled {
                    nets,
                    agent: &TOOLS[rng.random_range(0..TOOLS.len())],
                    items,
                    next: 0,
                }
            }
            Plan::ServiceAccount { every_min } if users > 0 => {
                // A server in the data centre: a fixed address that only
                // ever fails, with no ThreatInsight flag.
                let user = rng.random_range(0..users);
                let u = &world.users[user as usize];
                let net = Net {
                    ip: u32::from_be_bytes([192, 0, 2, rng.random_range(10..250)]),
                    proxy: false,
                    ..u.corp
                };
                let mut items = Vec::new();
                let mut t = start + rng.random_range(0..MINUTE_MS);
                while t < end {
                    items.push((t, user, 0));
                    t += (every_min * MINUTE_MS as f64 * rng.random_range(0.8..1.2)) as i64;
                }
                State::Scheduled {
                    nets: vec![net],
                    agent: &TOOLS[0],
                    items,
                    next: 0,
                }
            }
            Plan::ResetWave { people } | Plan::NatTypos { people } if users > 0 && end > start => {
                let nat = matches!(plan, Plan::NatTypos { .. });
                // New starters sit in one office; a reset wave is company-wide.
                let site = rng.random_range(0..world.sites.len().max(1));
                let pool: Vec<u32> = match world.sites.get(site) {
                    Some(s) if nat && !s.users.is_empty() => s.users.clone(),
                    _ => (0..users).collect(),
                };
                let chosen = index::sample(rng, pool.len(), people.min(pool.len()));
                let nets = match (nat, pool.first()) {
                    (true, Some(&u)) => vec![world.users[u as usize].corp],
                    _ => Vec::new(),
                };
                let mut items: Vec<(i64, u32, usize)> = chosen
                    .iter()
                    .map(|i| {
                        (
                            rng.random_range(start..end),
                            pool[i],
                            if nets.is_empty() { usize::MAX } else { 0 },
                        )
                    })
                    .collect();
                items.sort_unstable();
                State::Scheduled {
                    nets,
                    agent: &TOOLS[1],
                    items,
                    next: 0,
                }
            }
            Plan::Blip { failures } if users > 0 => {
                let user = rng.random_range(0..users);
                let u = &world.users[user as usize];
                let net = if u.remote { u.home } else { u.corp };
                let flow = Flow {
                    session: 0,
                    ..Flow::new(rng, Actor::User(user), net, u.desktop, u.factor)
                };
                let mut times: Vec<i64> = if end > start {
                    (0..failures)
                        .map(|_| rng.random_range(start..end))
                        .collect()
                } else {
                    Vec::new()
                };
                times.sort_unstable();
                State::Blip {
                    flow,
                    times,
                    next: 0,
                }
            }
            _ => State::Quiet,
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

/// When an incident of a kind may happen, as local times on the main
/// office's clock.
enum When {
    /// A whole weekday.
    WholeWeekday,
    /// A weekday (a weekend day if no weekday has room), starting between
    /// two local times (minutes from midnight).
    Weekday(i64, i64),
    /// Preferably a Monday (the busiest morning), else any weekday.
    MondayMorning(i64, i64),
    /// Any day, evenings and nights preferred (people asleep or off work).
    Night,
    /// Any day, any time: automated attacks keep no office hours.
    Anytime,
    /// A weekday evening (19:00-23:00) or a weekend day (09:00-21:00):
    /// fewer eyes, less traffic.
    QuietEvening,
    /// Any day, 00:00 to 04:00.
    SmallHours,
}

/// Placement rule and duration range (minutes) of each kind.
fn placement(kind: IncidentKind, difficulty: Difficulty) -> (When, i64, i64) {
    let easy = difficulty == Difficulty::Easy;
    match kind {
        IncidentKind::BenignHoliday => (When::WholeWeekday, 1440, 1440),
        IncidentKind::PasswordSpraying if easy => (When::Anytime, 60, 180),
        IncidentKind::PasswordSpraying => (When::Anytime, 240, 480),
        IncidentKind::PipelineGap => (When::Weekday(9 * 60, 15 * 60), 60, 180),
        IncidentKind::Outage => (When::Weekday(9 * 60, 15 * 60), 30, 120),
        IncidentKind::BenignSurge => (When::MondayMorning(8 * 60 + 30, 10 * 60), 60, 180),
        IncidentKind::CredentialStuffing if easy => (When::Anytime, 15, 60),
        IncidentKind::CredentialStuffing => (When::Anytime, 30, 60),
        IncidentKind::MfaPushFatigue => (When::Night, 20, 90),
        IncidentKind::BenignBlip => (When::Weekday(9 * 60, 16 * 60), 15, 15),
        IncidentKind::QuietStuffing => (When::QuietEvening, 75, 105),
        IncidentKind::DistributedSpraying => (When::Anytime, 180, 240),
        IncidentKind::ShortGapPeak => (When::Weekday(9 * 60 + 30, 10 * 60 + 30), 35, 55),
        IncidentKind::ShortGapNight => (When::SmallHours, 35, 55),
        IncidentKind::OiePushFatigue => (When::Night, 20, 90),
        IncidentKind::BlockedStuffing => (When::Anytime, 30, 60),
        IncidentKind::BenignResetWave => (When::Weekday(9 * 60, 11 * 60), 60, 120),
        IncidentKind::BenignServiceAccount => (When::Anytime, 240, 600),
        IncidentKind::BenignNatTypos => (When::Weekday(8 * 60 + 30, 10 * 60), 60, 120),
        IncidentKind::BenignVpnChange => (When::Weekday(7 * 60, 8 * 60), 600, 600),
        // Placed on the first business morning after the change, not drawn.
        IncidentKind::BenignDst => (When::Weekday(6 * 60, 6 * 60), 360, 360),
    }
}

/// The hard setting's further kinds: the attacks the easy eight miss when
/// they come low and slow or from Okta's other event types, and benign
/// look-alikes of each signal those attacks raise. Placed in this order
/// after the daylight saving label, before the easy eight.
const HARD_EXTRA: [IncidentKind; 10] = [
    IncidentKind::ShortGapPeak,
    IncidentKind::BenignVpnChange,
    IncidentKind::BenignResetWave,
    IncidentKind::BenignNatTypos,
    IncidentKind::ShortGapNight,
    IncidentKind::QuietStuffing,
    IncidentKind::DistributedSpraying,
    IncidentKind::BenignServiceAccount,
    IncidentKind::OiePushFatigue,
    IncidentKind::BlockedStuffing,
];

/// Kinds in the order they are placed: the most constrained first (a whole
/// weekday, then business hours), attacks that may come at any hour last.
const PLACEMENT_ORDER: [IncidentKind; 8] = [
    IncidentKind::BenignHoliday,
    IncidentKind::PipelineGap,
    IncidentKind::BenignSurge,
    IncidentKind::Outage,
    IncidentKind::BenignBlip,
    IncidentKind::PasswordSpraying,
    IncidentKind::MfaPushFatigue,
    IncidentKind::CredentialStuffing,
];

/// Quiet time kept between incidents so one's effects (and a detector's
/// recovery) do not bleed into the next.
const PAD_MS: i64 = HOUR_MS;

/// 06:00 local on the first weekday after the main office's clock changed
/// (daylight saving), when that falls in `[earliest, latest)`.
fn dst_morning(earliest: i64, latest: i64) -> Option<i64> {
    let site = &SITES[0];
    let mut changes = Vec::new();
    for t in [earliest, latest] {
        let (a, b) = site.dst.bounds(site.utc_offset_min, t);
        changes.extend([a, b]);
    }
    let change = changes
        .into_iter()
        .filter(|&c| (earliest..latest).contains(&c))
        .min()?;
    // The local calendar day after the change, then the first weekday.
    let after = change + HOUR_MS;
    let offset = i64::from(site.offset_at(after)) * MINUTE_MS;
    let mut day = (after + offset).div_euclid(DAY_MS) + 1;
    while weekday(day) >= 5 {
        day += 1;
    }
    let start = day * DAY_MS + 6 * HOUR_MS - offset;
    (start < latest).then_some(start)
}

/// The default schedule: one incident of every kind, placed from the seed in
/// the days after the warm-up, without overlaps. See
/// [`super::SimConfig::with_default_incidents`].
pub(super) fn default_schedule(
    seed: u64,
    start_ms: i64,
    days: u32,
    difficulty: Difficulty,
    world: &World,
    model: &Model,
) -> Vec<Incident> {
    let mut rng = stream(seed, 3);
    // Baselines need a clean week; short runs (tests) get half their length.
    let warmup = if days > 7 { 7 } else { days / 2 };
    let earliest = start_ms + i64::from(warmup) * DAY_MS;
    let latest = start_ms + i64::from(days) * DAY_MS;
    // Calendar days on the main office's clock that overlap the incident
    // period; windows are checked against the period exactly below.
    let offset = i64::from(SITES[0].utc_offset_min) * MINUTE_MS;
    let days_all: Vec<i64> =
        ((earliest + offset).div_euclid(DAY_MS)..=(latest + offset).div_euclid(DAY_MS)).collect();
    let weekdays: Vec<i64> = days_all
        .iter()
        .copied()
        .filter(|&d| weekday(d) < 5)
        .collect();
    let mondays: Vec<i64> = weekdays
        .iter()
        .copied()
        .filter(|&d| weekday(d) == 0)
        .collect();
    let any_of = |rng: &mut SmallRng, days: &[i64]| -> Option<i64> {
        (!days.is_empty()).then(|| days[rng.random_range(0..days.len())])
    };

    let mut taken: Vec<(i64, i64)> = Vec::new();
    let mut out = Vec::new();
    let mut order: Vec<IncidentKind> = Vec::new();
    if difficulty == Difficulty::Hard {
        // The first business morning after the main office's clock changed,
        // if a change falls in the incident period.
        if let Some(s) = dst_morning(earliest, latest) {
            let e = s + 6 * HOUR_MS;
            if e <= latest {
                taken.push((s, e));
                out.push((IncidentKind::BenignDst, s, e));
            }
        }
        order.extend_from_slice(&PLACEMENT_ORDER[..1]);
        order.extend_from_slice(&HARD_EXTRA);
        order.extend_from_slice(&PLACEMENT_ORDER[1..]);
    } else {
        order.extend_from_slice(&PLACEMENT_ORDER);
    }
    for kind in order {
        let (when, min_len, max_len) = placement(kind, difficulty);
        for attempt in 0..100 {
            let work_days = if weekdays.is_empty() {
                &days_all
            } else {
                &weekdays
            };
            let (day, from) = match when {
                When::WholeWeekday => (any_of(&mut rng, work_days), 0),
                // Weekend office hours if the weekdays are full (short runs).
                When::Weekday(a, b) => {
                    let pool = if attempt < 60 { work_days } else { &days_all };
                    (any_of(&mut rng, pool), rng.random_range(a..=b))
                }
                When::MondayMorning(a, b) => {
                    // Mondays first; if they are taken, any weekday.
                    let pool = if mondays.is_empty() || attempt >= 30 {
                        work_days
                    } else {
                        &mondays
                    };
                    (any_of(&mut rng, pool), rng.random_range(a..=b))
                }
                When::Night => {
                    // 18:00 to 06:00 on the following morning.
                    (
                        any_of(&mut rng, &days_all),
                        rng.random_range(18 * 60..30 * 60),
                    )
                }
                When::Anytime => (any_of(&mut rng, &days_all), rng.random_range(0..24 * 60)),
                When::QuietEvening => {
                    let day = any_of(&mut rng, &days_all);
                    let from = if day.is_some_and(|d| weekday(d) >= 5) {
                        rng.random_range(9 * 60..21 * 60)
                    } else {
                        rng.random_range(19 * 60..23 * 60)
                    };
                    (day, from)
                }
                When::SmallHours => (any_of(&mut rng, &days_all), rng.random_range(0..4 * 60)),
            };
            let Some(day) = day else {
                break;
            };
            let s = day * DAY_MS + from * MINUTE_MS - offset;
            let e = s + rng.random_range(min_len..=max_len) * MINUTE_MS;
            let clear = taken
                .iter()
                .all(|&(a, b)| e + PAD_MS <= a || s >= b + PAD_MS);
            if s >= earliest && e <= latest && clear {
                taken.push((s, e));
                out.push((kind, s, e));
                break;
            }
        }
    }
    out.sort_by_key(|&(_, s, _)| s);
    let mut incidents = Vec::with_capacity(out.len());
    for (kind, s, e) in out {
        let (Some(start), Some(end)) = (
            chrono::DateTime::from_timestamp_millis(s),
            chrono::DateTime::from_timestamp_millis(e),
        ) else {
            continue;
        };
        let mut inc = Incident {
            kind,
            start,
            end,
            expect_page: expect_page(kind),
            note: String::new(),
        };
        let mut rng = incident_rng(seed, incidents.len());
        inc.note = Plan::derive(&inc, difficulty, world, model, &mut rng).describe(difficulty);
        incidents.push(inc);
    }
    incidents
}
