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
use super::world::{World, SITES};
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

    /// Lets a holiday or outage act on one ordinary sign-in flow of the office `site`
    /// (events in generation order, starting with the first password attempt).
    pub fn admit(&mut self, site: usize, flow: &mut Vec<Ev>) {
        let Some(first) = flow.first() else {
            return;
        };
        if let Plan::Holiday { keep } = self.plan {
            if self.holiday_drops(site, first.t_ms, first.flow.txn, keep) {
                flow.clear();
            }
            return;
        }
        if !self.contains(first.t_ms) {
            return;
        }
        match self.plan {
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

    /// Whether a holiday drops a flow of the office `site` starting at `t` (`key`: the
    /// flow's own random transaction id). The office keeps the holiday on its own
    /// clock (`holiday_clock`). A flow in the labelled window draws from the incident's
    /// stream whether or not its office is on holiday then, as every flow there always
    /// did, so the draws of the rest of the day are the ones they were; one outside it
    /// (London's small hours before New York's midnight, the West's last hours after
    /// it) is decided by its own id.
    fn holiday_drops(&mut self, site: usize, t: i64, key: u64, keep: f64) -> bool {
        let on_holiday = self.contains(holiday_clock(site, t));
        if self.contains(t) {
            return !self.rng.random_bool(keep) && on_holiday;
        }
        on_holiday && (super::mix(key ^ t as u64) >> 11) as f64 / (1u64 << 53) as f64 >= keep
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

/// The instant `t_ms` read on the first office's (New York's) clock as if it were the
/// office `site`'s local time: a holiday's window is the first office's local day, and
/// every office keeps the same date on its own clock. Labelled with New York's day, it
/// used to start at New York's midnight everywhere, so San Francisco's evening (21:00,
/// its busiest hour of the night, a third of the organisation's sign-ins at that
/// instant) vanished in one step: at 6,000 people `okta-sign-ins`' `volume_drop` paged
/// it as an outage (hard seed 2, 9 sign-ins in half an hour where 59 were due). No
/// organisation's holiday starts on the eve at 21:00.
fn holiday_clock(site: usize, t_ms: i64) -> i64 {
    let (Some(here), Some(first)) = (SITES.get(site), SITES.first()) else {
        return t_ms;
    };
    t_ms + i64::from(here.offset_at(t_ms) - first.offset_at(t_ms)) * MINUTE_MS
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

#[cfg(test)]
mod tests {
    use super::holiday_clock;
    use crate::simulate::world::SITES;

    #[test]
    fn each_office_keeps_the_holiday_on_its_own_clock() {
        let at =
            |s: &str| chrono::DateTime::parse_from_rfc3339(s).map_or(0, |t| t.timestamp_millis());
        let office = |name: &str| {
            SITES
                .iter()
                .position(|s| s.place.city == name)
                .unwrap_or(99)
        };
        // New York's midnight of Wed 11 Nov is 05:00 UTC; San Francisco's is 08:00 UTC,
        // London's 00:00 UTC: each reads as New York's midnight.
        let midnight = at("2026-11-11T05:00:00Z");
        assert_eq!(holiday_clock(office("New York"), midnight), midnight);
        assert_eq!(
            holiday_clock(office("San Francisco"), at("2026-11-11T08:00:00Z")),
            midnight
        );
        assert_eq!(
            holiday_clock(office("London"), at("2026-11-11T00:00:00Z")),
            midnight
        );
        // San Francisco's evening before (21:00 local) is not the holiday yet.
        assert!(holiday_clock(office("San Francisco"), midnight) < midnight);
    }
}
