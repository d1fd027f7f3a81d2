//! The default schedule: one incident of every kind, placed from the seed in the days
//! after the warm-up, without overlaps.

use rand::rngs::SmallRng;
use rand::Rng;

use super::plan::Plan;
use super::{expect_page, incident_rng};
use crate::simulate::model::{weekday, Model, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::simulate::world::{World, SITES};
use crate::simulate::{stream, Difficulty, Incident, IncidentKind};

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
    /// Any day, weekends too, starting between two local times.
    AnyDay(i64, i64),
}

/// Placement rule and duration range (minutes) of each kind.
fn placement(kind: IncidentKind, difficulty: Difficulty) -> (When, i64, i64) {
    let easy = difficulty == Difficulty::Easy;
    match kind {
        IncidentKind::BenignHoliday => (When::WholeWeekday, 1440, 1440),
        IncidentKind::PasswordSpraying if easy => (When::Anytime, 60, 180),
        IncidentKind::PasswordSpraying => (When::Anytime, 240, 480),
        IncidentKind::PipelineGap if easy => (When::Weekday(9 * 60, 15 * 60), 60, 180),
        // Hard: the pipeline breaks on any day, from the morning to the evening.
        IncidentKind::PipelineGap => (When::AnyDay(8 * 60, 20 * 60), 60, 180),
        IncidentKind::Outage if easy => (When::Weekday(9 * 60, 15 * 60), 30, 120),
        // Hard: also in the shoulders of the day, when fewer people are signing in.
        IncidentKind::Outage => (When::Weekday(7 * 60, 18 * 60), 30, 120),
        IncidentKind::BenignSurge => (When::MondayMorning(8 * 60 + 30, 10 * 60), 60, 180),
        IncidentKind::CredentialStuffing if easy => (When::Anytime, 15, 60),
        IncidentKind::CredentialStuffing => (When::Anytime, 30, 60),
        IncidentKind::MfaPushFatigue if easy => (When::Night, 20, 90),
        // Hard: attackers also push in the day, when a push is what the user expects.
        IncidentKind::MfaPushFatigue => (When::Anytime, 20, 90),
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
pub(in crate::simulate) fn default_schedule(
    seed: u64,
    start_ms: i64,
    days: u32,
    difficulty: Difficulty,
    world: &World,
    model: &Model,
) -> Vec<Incident> {
    let mut rng = stream(seed, 3);
    let cal = Calendar::new(start_ms, days);
    let (earliest, latest) = (cal.earliest, cal.latest);
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
            let (day, from) = cal.pick(&when, attempt, &mut rng);
            let Some(day) = day else {
                break;
            };
            let s = day * DAY_MS + from * MINUTE_MS - cal.offset;
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
    labelled(out, seed, difficulty, world, model)
}

/// The days incidents may fall on: calendar days on the main office's clock that
/// overlap `[earliest, latest)`, the period after the warm-up.
struct Calendar {
    earliest: i64,
    latest: i64,
    /// The main office's standard offset from UTC, in ms.
    offset: i64,
    days_all: Vec<i64>,
    weekdays: Vec<i64>,
    mondays: Vec<i64>,
}

impl Calendar {
    fn new(start_ms: i64, days: u32) -> Calendar {
        // Baselines need a clean week; short runs (tests) get half their length.
        let warmup = if days > 7 { 7 } else { days / 2 };
        let earliest = start_ms + i64::from(warmup) * DAY_MS;
        let latest = start_ms + i64::from(days) * DAY_MS;
        // Calendar days on the main office's clock that overlap the incident
        // period; windows are checked against the period exactly by the caller.
        let offset = i64::from(SITES[0].utc_offset_min) * MINUTE_MS;
        let days_all: Vec<i64> = ((earliest + offset).div_euclid(DAY_MS)
            ..=(latest + offset).div_euclid(DAY_MS))
            .collect();
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
        Calendar {
            earliest,
            latest,
            offset,
            days_all,
            weekdays,
            mondays,
        }
    }

    /// A day and a local start (minutes after midnight) for an incident placed `when`,
    /// at the `attempt`-th try (later tries widen the pool); `None` when no day fits.
    fn pick(&self, when: &When, attempt: u32, rng: &mut SmallRng) -> (Option<i64>, i64) {
        let work_days = if self.weekdays.is_empty() {
            &self.days_all
        } else {
            &self.weekdays
        };
        match *when {
            When::WholeWeekday => (any_of(rng, work_days), 0),
            // Weekend office hours if the weekdays are full (short runs).
            When::Weekday(a, b) => {
                let pool = if attempt < 60 {
                    work_days
                } else {
                    &self.days_all
                };
                (any_of(rng, pool), rng.random_range(a..=b))
            }
            When::MondayMorning(a, b) => {
                // Mondays first; if they are taken, any weekday.
                let pool = if self.mondays.is_empty() || attempt >= 30 {
                    work_days
                } else {
                    &self.mondays
                };
                (any_of(rng, pool), rng.random_range(a..=b))
            }
            When::Night => {
                // 18:00 to 06:00 on the following morning.
                (
                    any_of(rng, &self.days_all),
                    rng.random_range(18 * 60..30 * 60),
                )
            }
            When::Anytime => (any_of(rng, &self.days_all), rng.random_range(0..24 * 60)),
            When::QuietEvening => {
                let day = any_of(rng, &self.days_all);
                let from = if day.is_some_and(|d| weekday(d) >= 5) {
                    rng.random_range(9 * 60..21 * 60)
                } else {
                    rng.random_range(19 * 60..23 * 60)
                };
                (day, from)
            }
            When::SmallHours => (any_of(rng, &self.days_all), rng.random_range(0..4 * 60)),
            When::AnyDay(a, b) => (any_of(rng, &self.days_all), rng.random_range(a..=b)),
        }
    }
}

/// A random day of `days`, if there is one.
fn any_of(rng: &mut SmallRng, days: &[i64]) -> Option<i64> {
    (!days.is_empty()).then(|| days[rng.random_range(0..days.len())])
}

/// The placed incidents, in time order, each with the note its plan describes.
fn labelled(
    placed: Vec<(IncidentKind, i64, i64)>,
    seed: u64,
    difficulty: Difficulty,
    world: &World,
    model: &Model,
) -> Vec<Incident> {
    let mut incidents = Vec::with_capacity(placed.len());
    for (kind, s, e) in placed {
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
            class: kind.class(difficulty),
            note: String::new(),
        };
        let mut rng = incident_rng(seed, incidents.len());
        inc.note = Plan::derive(&inc, difficulty, world, model, &mut rng).describe(difficulty);
        incidents.push(inc);
    }
    incidents
}
