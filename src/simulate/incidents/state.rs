//! What an incident needs while it runs: its attackers' addresses and tools, its
//! targets and the attempts drawn up front.

use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;
use rand_distr::Gamma;

use super::plan::Plan;
use crate::simulate::event::{Actor, Flow};
use crate::simulate::model::MINUTE_MS;
use crate::simulate::world::{hostile_net, Agent, Net, World, TOOLS};

/// Run-time state of injecting incidents.
pub(super) enum State {
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

impl State {
    pub(super) fn new(
        plan: &Plan,
        world: &World,
        start: i64,
        end: i64,
        rng: &mut SmallRng,
    ) -> State {
        let users = world.users.len() as u32;
        match *plan {
            Plan::Stuffing { ips, .. } => State::Stuffing {
                ips: (0..ips)
                    .map(|_| (hostile_net(rng), &TOOLS[rng.random_range(0..TOOLS.len())]))
                    .collect(),
                burst: Gamma::new(4.0, 0.25).ok(),
            },
            Plan::Spraying { ips, passes, .. } => spraying(world, ips, passes, rng),
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
                dist_spray(users, ips, per_ip, (start, end), rng)
            }
            Plan::ServiceAccount { every_min } if users > 0 => {
                service_account(world, every_min, (start, end), rng)
            }
            Plan::ResetWave { people } | Plan::NatTypos { people } if users > 0 && end > start => {
                let nat = matches!(plan, Plan::NatTypos { .. });
                slips(world, nat, people, (start, end), rng)
            }
            Plan::Blip { failures } if users > 0 => blip(world, failures, (start, end), rng),
            _ => State::Quiet,
        }
    }
}

/// Password spraying: the user list the sprayer walks (usually sorted, `passes` times),
/// its few addresses and its tool.
fn spraying(world: &World, ips: usize, passes: usize, rng: &mut SmallRng) -> State {
    let users = world.users.len() as u32;
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

/// Low-and-slow spraying: `per_ip` accounts for each of `ips` addresses, one try each at
/// a time drawn in `span`.
fn dist_spray(
    users: u32,
    ips: usize,
    per_ip: usize,
    span: (i64, i64),
    rng: &mut SmallRng,
) -> State {
    let (start, end) = span;
    let nets: Vec<Net> = (0..ips).map(|_| hostile_net(rng)).collect();
    let accounts = index::sample(rng, users as usize, (ips * per_ip).min(users as usize));
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

/// A service account with a stale password, failing about every `every_min` minutes.
fn service_account(world: &World, every_min: f64, span: (i64, i64), rng: &mut SmallRng) -> State {
    let users = world.users.len() as u32;
    let (start, end) = span;
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

/// People who get in after a mistake or three: a password-reset wave (company-wide) or,
/// with `nat`, new starters behind one office's address.
fn slips(world: &World, nat: bool, people: usize, span: (i64, i64), rng: &mut SmallRng) -> State {
    let users = world.users.len() as u32;
    let (start, end) = span;
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

/// The benign failure blip: one person failing `failures` times in `span`.
fn blip(world: &World, failures: u32, span: (i64, i64), rng: &mut SmallRng) -> State {
    let users = world.users.len() as u32;
    let (start, end) = span;
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
