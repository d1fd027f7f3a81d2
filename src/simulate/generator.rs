//! The generator's state while it runs, minute by minute: the world, the background's
//! stream, the incidents, the queue of events not yet due and the rendered lines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::Rng;

use super::event::{Ev, Pending};
use super::incidents::Active;
use super::model::{poisson, sign_in, stray_attempts, Background, MINUTE_MS};
use super::render::Renderer;
use super::world::{World, SITES};
use super::{SimConfig, SimStats};

/// Rendered lines are handed to the writer in chunks of about this size.
const FLUSH_AT: usize = 1 << 20;

pub(super) struct Generator {
    world: World,
    bg: Background,
    active: Vec<Active>,
    renderer: Renderer,
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    flow: Vec<Ev>,
    out: Vec<u8>,
    stats: SimStats,
}

impl Generator {
    pub(super) fn new(cfg: &SimConfig) -> Generator {
        let world = World::build(cfg.seed, cfg.users);
        let bg = Background::new(cfg.seed);
        let active: Vec<Active> = cfg
            .incidents
            .iter()
            .enumerate()
            .map(|(i, inc)| Active::new(cfg.seed, i, inc, cfg.difficulty, &world, &bg.model))
            .collect();
        let renderer = Renderer::new(&cfg.tenant, cfg.seed);
        Generator {
            world,
            bg,
            active,
            renderer,
            queue: BinaryHeap::new(),
            seq: 0,
            flow: Vec::new(),
            out: Vec::with_capacity(FLUSH_AT + (4 << 10)),
            stats: SimStats {
                incidents: cfg.incidents.len(),
                ..SimStats::default()
            },
        }
    }

    /// Queues the events of the minute `[t0, t0 + 1 min)`: each site's sign-ins and the
    /// surges on top of them, stray attempts, the incidents' own events.
    pub(super) fn minute(&mut self, t0: i64) {
        for site in 0..SITES.len() {
            let lambda = self.bg.site_lambda(&self.world, site, t0);
            self.sign_ins(site, lambda, t0);
            self.surges(site, lambda, t0);
        }
        self.flow.clear();
        stray_attempts(&self.world, t0, &mut self.bg.rng, &mut self.flow);
        for a in &mut self.active {
            a.inject(&self.world, t0, &mut self.flow);
        }
        enqueue(&mut self.queue, &mut self.seq, &mut self.flow);
    }

    /// One site's ordinary sign-ins in the minute, each shown to every incident.
    fn sign_ins(&mut self, site: usize, lambda: f64, t0: i64) {
        let t1 = t0 + MINUTE_MS;
        for _ in 0..poisson(&mut self.bg.rng, lambda) {
            let t = self.bg.rng.random_range(t0..t1);
            let Some(user) = self.world.sites[site].pick(&mut self.bg.rng) else {
                break;
            };
            self.flow.clear();
            sign_in(&self.world, user, t, &mut self.bg.rng, &mut self.flow);
            admit(&mut self.active, site, &mut self.flow);
            enqueue(&mut self.queue, &mut self.seq, &mut self.flow);
        }
    }

    /// A surge adds ordinary sign-ins on top, from its own stream; holidays and outages
    /// still act on them.
    fn surges(&mut self, site: usize, lambda: f64, t0: i64) {
        let t1 = t0 + MINUTE_MS;
        for i in 0..self.active.len() {
            let (before, rest) = self.active.split_at_mut(i);
            let Some((surge, after)) = rest.split_first_mut() else {
                break;
            };
            let Some((rng, extra)) = surge.surge(t0) else {
                continue;
            };
            for _ in 0..poisson(rng, lambda * extra) {
                let t = rng.random_range(t0..t1);
                let Some(user) = self.world.sites[site].pick(rng) else {
                    break;
                };
                self.flow.clear();
                sign_in(&self.world, user, t, rng, &mut self.flow);
                admit(before, site, &mut self.flow);
                admit(after, site, &mut self.flow);
                enqueue(&mut self.queue, &mut self.seq, &mut self.flow);
            }
        }
    }

    /// Writes everything due before `t1`: it is final, later minutes only add events at
    /// or after their own start. A pipeline gap hides what falls in it.
    pub(super) fn write_due(&mut self, t1: i64, events: &mut dyn Write) -> io::Result<()> {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.ev.t_ms >= t1 {
                break;
            }
            let Some(Reverse(due)) = self.queue.pop() else {
                break;
            };
            if self.active.iter().any(|a| a.hides(due.ev.t_ms)) {
                continue;
            }
            self.renderer.line(&due.ev, &self.world, &mut self.out);
            self.stats.events += 1;
            if self.out.len() >= FLUSH_AT {
                events.write_all(&self.out)?;
                self.stats.bytes += self.out.len() as u64;
                self.out.clear();
            }
        }
        Ok(())
    }

    /// Writes what is left; follow-ups still queued fall after the end of the period
    /// and are dropped.
    pub(super) fn finish(mut self, events: &mut dyn Write) -> io::Result<SimStats> {
        events.write_all(&self.out)?;
        self.stats.bytes += self.out.len() as u64;
        self.out.clear();
        events.flush()?;
        Ok(self.stats)
    }
}

/// Lets every incident act on one ordinary sign-in flow of the office `site`.
fn admit(active: &mut [Active], site: usize, flow: &mut Vec<Ev>) {
    for a in active {
        a.admit(site, flow);
    }
}

fn enqueue(queue: &mut BinaryHeap<Reverse<Pending>>, seq: &mut u64, flow: &mut Vec<Ev>) {
    for ev in flow.drain(..) {
        *seq += 1;
        queue.push(Reverse(Pending { seq: *seq, ev }));
    }
}
