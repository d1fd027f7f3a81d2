//! Rules: the declarative description of what to count and how to judge it.
//!
//! A rule names the Okta event types it counts, the bin width, an optional field to split
//! series by, and its detectors. From that one spec authpulse derives both the Logs
//! Insights query the CloudWatch source runs and the local evaluation the file source
//! does, so a backtest on an export and the live daemon see the same series.
//!
//! `builtin` holds the rules used when the config names none, `query` the Logs Insights
//! query a rule derives, `read` the `[[rules]]` table, `conditions` the field conditions
//! of its `filter` and `when` tables.

mod builtin;
mod conditions;
mod query;
mod read;

pub use builtin::{
    PUSH_ANSWER, PUSH_ANSWER_WHEN, PUSH_EVENT_TYPES, THREAT_DETECTED, THREAT_SUSPECTED,
    UNKNOWN_USER,
};
pub use conditions::Conditions;
pub use query::Reads;
pub use read::read_timezone;

use std::time::Duration;

use builtin::default_detectors;

use crate::detect::baseline::LocalTime;
use crate::detect::{DetectorKind, DetectorSpec};
use crate::event::Event;
use crate::series::OutcomeClass;

pub const DEFAULT_EVENT_TYPES: &[&str] = &["user.session.start"];

/// Which events a rule counts: its event types (some of them only when they hold a
/// condition) and an optional condition on every event. The file source's binner and
/// the generated Logs Insights query apply the same test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventMatch {
    pub event_types: Vec<String>,
    /// Of `event_types`, those counted only when their condition holds.
    pub when: Vec<(String, Conditions)>,
    /// Must hold for every event counted.
    pub filter: Conditions,
    /// Of `event_types`, the one whose successes count in the total only (see
    /// [`RuleSpec::approvals`]).
    pub approvals: Option<String>,
}

impl EventMatch {
    /// How an event this rule counts adds up: by its `outcome.result`, except that a
    /// success of the rule's `approvals` type counts in the total only.
    pub fn class(&self, e: &Event<'_>) -> OutcomeClass {
        class_of(self.approvals.as_deref(), &e.event_type, &e.result)
    }

    pub fn matches(&self, e: &Event<'_>) -> bool {
        if !self.event_types.iter().any(|t| *t == *e.event_type) {
            return false;
        }
        let value_of = |field: &str| e.field(field);
        if let Some((_, conds)) = self.when.iter().find(|(t, _)| *t == *e.event_type) {
            if !conds.holds(value_of) {
                return false;
            }
        }
        self.filter.holds(value_of)
    }
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub event_types: Vec<String>,
    pub bin: Duration,
    /// An Okta field path (without `detail.`), one of [`SPLIT_FIELDS`](crate::event::SPLIT_FIELDS).
    pub split_by: Option<String>,
    /// With `split_by`: at most this many series; further values count under `(other)`.
    pub max_series: usize,
    /// With `split_by`: at most this many series of one detector page within an hour;
    /// the rest of a storm (hundreds of rotating IPs) are counted in the pages that go
    /// out, not paged one by one.
    pub max_pages_per_hour: usize,
    /// With `split_by`: only the `top_k` values with the most failures in a bin get
    /// their own series for that bin; the rest count under `(other)`.
    pub top_k: Option<usize>,
    /// How much history the baseline keeps.
    pub baseline_window: Duration,
    /// How much history a series needs before anything fires.
    pub warmup: Duration,
    pub detectors: Vec<DetectorSpec>,
    /// A hand-written Logs Insights query replacing the generated one (CloudWatch source).
    pub query: Option<String>,
    /// `[rules.when."<event type>"]`: of `event_types`, those counted only when their
    /// condition holds (the push rule counts `auth_via_mfa` only as a denial or an
    /// approval).
    pub when: Vec<(String, Conditions)>,
    /// `[rules.filter]`: a condition every event counted must hold (e.g. `"actor.id" =
    /// "unknown"`: failures on usernames Okta could not resolve).
    pub filter: Conditions,
    /// `approvals`: of `event_types`, the one whose successes answer what the rule counts
    /// as success, counted in the total only (neither success nor failure), so that
    /// `total - success - failure` is how many were answered. The push rule counts
    /// pushes sent as success, denials as failure and `user.authentication.auth_via_mfa`
    /// SUCCESS — the push approved — here: a person approves the pushes they asked for,
    /// an attacker's are left unanswered or denied. The Logs Insights query then also
    /// groups by `detail.eventType` to tell the two kinds of success apart.
    pub approvals: Option<String>,
    /// `timezone` (IANA): the hour-of-week and weekday/weekend seasons are taken in it;
    /// `None` is UTC. The config's top-level `timezone` is every rule's default.
    pub timezone: Option<chrono_tz::Tz>,
}

/// A rule's default `baseline_window` (see [`SPLIT_BASELINE_WINDOW`] for split rules).
pub const DEFAULT_BASELINE_WINDOW: Duration = Duration::from_secs(14 * 86_400);

/// A split rule's default `baseline_window`.
pub const SPLIT_BASELINE_WINDOW: Duration = Duration::from_secs(4 * 3600);

/// The label value of a split rule's count of addresses that only failed (see
/// `detect::FailingSources`).
pub const SOURCES_SERIES: &str = "(failing-only sources)";

/// The label value of a split rule's count of addresses that failed on their own
/// accounts and had not got in by the end of the next bin (see `detect::FailingSources`:
/// an outage, when it is many).
pub const LOCKED_OUT_SERIES: &str = "(locked-out sources)";

/// The label value of a split rule's count of addresses that look like a slow sprayer
/// (see `detect::DistributedSpraying`).
pub const SPRAYERS_SERIES: &str = "(slow sprayers)";

/// The label value that collects split values beyond `max_series`.
pub const OTHER_SERIES: &str = "(other)";

impl RuleSpec {
    /// A rule with every default: session starts in 15-minute bins, all detectors.
    pub fn named(name: &str) -> RuleSpec {
        RuleSpec {
            name: name.to_string(),
            event_types: DEFAULT_EVENT_TYPES.iter().map(|s| s.to_string()).collect(),
            bin: Duration::from_secs(15 * 60),
            split_by: None,
            max_series: 1000,
            max_pages_per_hour: 3,
            top_k: None,
            baseline_window: DEFAULT_BASELINE_WINDOW,
            warmup: Duration::from_secs(2 * 86_400),
            detectors: default_detectors(false),
            query: None,
            when: Vec::new(),
            filter: Conditions::default(),
            approvals: None,
            timezone: None,
        }
    }

    /// What this rule counts, for the binner.
    pub fn event_match(&self) -> EventMatch {
        EventMatch {
            event_types: self.event_types.clone(),
            when: self.when.clone(),
            filter: self.filter.clone(),
            approvals: self.approvals.clone(),
        }
    }

    /// How a counted event of `event_type` with `outcome.result` `result` adds up in
    /// this rule (the Logs Insights rows' side of [`EventMatch::class`]).
    pub fn class_of(&self, event_type: Option<&str>, result: &str) -> OutcomeClass {
        match event_type {
            Some(t) => class_of(self.approvals.as_deref(), t, result),
            None => OutcomeClass::of(result),
        }
    }

    pub fn bin_ms(&self) -> i64 {
        self.bin.as_millis() as i64
    }

    /// The rule's bins in the organisation's time zone.
    pub fn local_time(&self) -> LocalTime {
        LocalTime::new(self.bin_ms(), self.timezone)
    }

    /// Baseline window in bins.
    pub fn window_bins(&self) -> usize {
        (self.baseline_window.as_millis() / self.bin.as_millis().max(1)) as usize
    }

    /// How many bins the history of a series of this rule holds: its baseline window,
    /// and for a window of a day or more a margin past it. A detector may read the
    /// copies of the bins its verdict looks at `window / week` weeks back at the same
    /// local time, and in the week after the clocks went back that time lies an hour
    /// before the window's first bin (`volume_drop`'s past weeks: see "Two continents,
    /// two clock changes" there). The season itself reads the window only.
    pub fn history_bins(&self) -> usize {
        self.history_bins_of(self.window_bins())
    }

    /// The baseline window, in bins, of a split rule's `(failing-only sources)` count:
    /// one series per rule, so it keeps the season a rule over totals keeps (at least
    /// [`DEFAULT_BASELINE_WINDOW`]) while the rule's sources keep hours (see
    /// `detect::failing_sources`).
    pub fn sources_window_bins(&self) -> usize {
        let default = (DEFAULT_BASELINE_WINDOW.as_millis() / self.bin.as_millis().max(1)) as usize;
        self.window_bins().max(default)
    }

    /// How many bins the history of the `(failing-only sources)` count holds (see
    /// [`RuleSpec::sources_window_bins`] and [`RuleSpec::history_bins`]).
    pub fn sources_history_bins(&self) -> usize {
        self.history_bins_of(self.sources_window_bins())
    }

    fn history_bins_of(&self, window: usize) -> usize {
        let window = window.max(8);
        let bin_ms = self.bin_ms().max(1) as usize;
        if window < 86_400_000 / bin_ms {
            return window;
        }
        let reach = self
            .detectors
            .iter()
            .map(|d| d.detector.window_bins() as usize)
            .max();
        window + 3_600_000usize.div_ceil(bin_ms) + 1 + reach.unwrap_or(1)
    }

    /// Whether this rule keeps the `(failing-only sources)` count: split, with a
    /// `failing_sources` detector (which judges only that series).
    pub fn counts_failing_sources(&self) -> bool {
        self.split_by.is_some() && self.has_detector(DetectorKind::FailingSources)
    }

    /// Whether one of this rule's detectors is of `kind`.
    pub fn has_detector(&self, kind: DetectorKind) -> bool {
        self.detectors.iter().any(|d| d.detector.kind() == kind)
    }

    /// The longest history a series of this rule keeps: [`RuleSpec::history_bins`], or
    /// for a split rule with `failing_sources` its count's
    /// ([`RuleSpec::sources_history_bins`]). What a restart loads by default and how long
    /// a bin shared between replicas is kept, so that a replaced task or a new replica
    /// judges that count against its season at once.
    pub fn history_window(&self) -> Duration {
        let bins = if self.counts_failing_sources() {
            self.sources_history_bins()
        } else {
            self.history_bins()
        };
        self.bin
            .saturating_mul(u32::try_from(bins).unwrap_or(u32::MAX))
    }

    pub fn warmup_bins(&self) -> usize {
        (self.warmup.as_millis() / self.bin.as_millis().max(1)) as usize
    }

    /// Does this rule count `event`?
    pub fn matches(&self, event: &Event<'_>) -> bool {
        self.event_match().matches(event)
    }
}

fn class_of(approvals: Option<&str>, event_type: &str, result: &str) -> OutcomeClass {
    match OutcomeClass::of(result) {
        OutcomeClass::Success if approvals == Some(event_type) => OutcomeClass::Other,
        class => class,
    }
}
