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

mod inject;
mod plan;
mod schedule;
mod state;

pub(super) use schedule::default_schedule;

use rand::rngs::SmallRng;
use rand::Rng;

use super::event::{Actor, Ev, EventType, Flow, Outcome, Reason};
use super::model::{Model, MINUTE_MS};
use super::world::World;
use super::{stream, Difficulty, Incident, IncidentKind};
use inject::{blip, push_fatigue, scheduled, spraying, stuffing, Minute};
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
        let mut m = Minute {
            world,
            lo,
            hi,
            frac,
            end: self.end,
            rng: &mut self.rng,
            out,
        };
        let inject = match self.state {
            State::Stuffing { .. } => stuffing,
            State::Spraying { .. } => spraying,
            State::PushFatigue { .. } => push_fatigue,
            State::Scheduled { .. } => scheduled,
            State::Blip { .. } => blip,
            State::Quiet => return,
        };
        inject(&mut m, &self.plan, &mut self.state);
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
