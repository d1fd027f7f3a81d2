//! Rules: the declarative description of what to count and how to judge it.
//!
//! A rule names the Okta event types it counts, the bin width, an optional field to split
//! series by, and its detectors. From that one spec authpulse derives both the Logs
//! Insights query the CloudWatch source runs and the local evaluation the file source
//! does, so a backtest on an export and the live daemon see the same series.

use std::time::Duration;

use serde_json::Value;

use crate::config_reader::{Problems, Table};
use crate::detect::{DetectorKind, DetectorSpec};
use crate::event::{Event, SPLIT_FIELDS};

mod conditions;

pub use conditions::Conditions;

pub const DEFAULT_EVENT_TYPES: &[&str] = &["user.session.start"];

/// The Okta events of an Okta Verify push and of its denial. A Classic tenant logs a
/// denial as `user.mfa.okta_verify.deny_push` (Okta's event catalog marks it Classic
/// only); an Identity Engine tenant logs it as `user.authentication.auth_via_mfa` with
/// outcome FAILURE (reason INVALID_CREDENTIALS, per Okta's support article on whether
/// rejecting a push counts as failed MFA; Okta's suspicious-activity report lists
/// `auth_via_mfa` FAILURE as "Failed factor attempt"), so that one counts only when it
/// failed that way ([`PUSH_DENIAL_WHEN`]): an expired push or a mistyped code fails
/// with another reason and is not a denial.
pub const PUSH_EVENT_TYPES: &[&str] = &[
    "system.push.send_factor_verify_push",
    "user.mfa.okta_verify.deny_push",
    "user.authentication.auth_via_mfa",
];

/// Okta's signal of a username it could not resolve: `actor.id` is `unknown`.
pub const UNKNOWN_USER: (&str, &str) = ("actor.id", "unknown");

/// Okta ThreatInsight's flag on a sign-in from an address it suspects.
pub const THREAT_SUSPECTED: (&str, &str) = ("debugContext.debugData.threatSuspected", "true");

/// A request ThreatInsight blocked (outcome DENY, often no user).
pub const THREAT_DETECTED: &str = "security.threat.detected";

/// The push rule's condition on `user.authentication.auth_via_mfa`: a denied push.
pub const PUSH_DENIAL_WHEN: (&str, &[(&str, &str)]) = (
    "user.authentication.auth_via_mfa",
    &[
        ("outcome.reason", "INVALID_CREDENTIALS"),
        ("outcome.result", "FAILURE"),
    ],
);

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
}

impl EventMatch {
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
    /// An Okta field path (without `detail.`), one of [`SPLIT_FIELDS`].
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
    /// condition holds (the push rule counts `auth_via_mfa` only as denials).
    pub when: Vec<(String, Conditions)>,
    /// `[rules.filter]`: a condition every event counted must hold (e.g. `"actor.id" =
    /// "unknown"`: failures on usernames Okta could not resolve).
    pub filter: Conditions,
    /// `timezone` (IANA): the hour-of-week and weekday/weekend seasons are taken in it;
    /// `None` is UTC. The config's top-level `timezone` is every rule's default.
    pub timezone: Option<chrono_tz::Tz>,
}

/// A split rule's default `baseline_window`.
pub const SPLIT_BASELINE_WINDOW: Duration = Duration::from_secs(4 * 3600);

/// The label value of a split rule's count of addresses that only failed (see
/// `detect::FailingSources`).
pub const SOURCES_SERIES: &str = "(failing-only sources)";

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
            baseline_window: Duration::from_secs(14 * 86_400),
            warmup: Duration::from_secs(2 * 86_400),
            detectors: default_detectors(false),
            query: None,
            when: Vec::new(),
            filter: Conditions::default(),
            timezone: None,
        }
    }

    /// The rules used when the config names none:
    ///
    /// * `okta-sign-ins`: session starts in 15m bins, every totals detector — stuffing,
    ///   outages (failing or unreachable), pipeline gaps;
    /// * `password-spraying`: session starts per source address (the 50 most failing
    ///   addresses of each bin), `distinct_users` over 4 hours, `failing_sources`
    ///   (many addresses failing without a success: stuffing hidden in the totals) and
    ///   `distributed_spraying` (several addresses trying one account after another
    ///   over hours, never succeeding);
    /// * `mfa-push-fatigue`: Okta Verify pushes and denials per user (the 50 busiest
    ///   users of each bin), `push_fatigue` over an hour.
    ///
    /// The split rules keep only as much history as their window needs, so thousands of
    /// sources cost little memory.
    ///
    /// and Okta's own signals, each a series with its own baseline, judged by
    /// `failure_spike` over sliding windows (15 minutes to 4 hours):
    ///
    /// * `okta-unknown-users`: failed sign-ins on usernames Okta could not resolve
    ///   (`actor.id = "unknown"`): combo lists from other breaches;
    /// * `okta-threat-suspected`: failed sign-ins ThreatInsight flagged
    ///   (`debugContext.debugData.threatSuspected = "true"`);
    /// * `okta-threats-blocked`: requests ThreatInsight blocked
    ///   (`security.threat.detected`, outcome DENY, no user);
    /// * `okta-hostile-signals`: the three at once, one series (see
    ///   [`RuleSpec::hostile_signals`]).
    ///
    /// The totals rule comes first: the others' pages are told apart from an outage by
    /// what it saw in the same bin (`pipeline::story`).
    pub fn builtin() -> Vec<RuleSpec> {
        vec![
            RuleSpec::named("okta-sign-ins"),
            RuleSpec::password_spraying(),
            RuleSpec::mfa_push_fatigue(),
            RuleSpec::signal(
                "okta-unknown-users",
                DEFAULT_EVENT_TYPES,
                Conditions::all_of(&[UNKNOWN_USER]),
            ),
            RuleSpec::signal(
                "okta-threat-suspected",
                DEFAULT_EVENT_TYPES,
                Conditions::all_of(&[THREAT_SUSPECTED]),
            ),
            RuleSpec::signal(
                "okta-threats-blocked",
                &[THREAT_DETECTED],
                Conditions::default(),
            ),
            RuleSpec::hostile_signals(),
        ]
    }

    /// The built-in rule over Okta's three signals at once: failed sign-ins on unknown
    /// usernames *or* flagged by ThreatInsight, and requests ThreatInsight blocked, as
    /// one series. An attack ThreatInsight half blocks splits its attempts over the
    /// three (a dozen attempts in half an hour: six blocked, five unknown, three
    /// flagged), each under the floor of its own rule; together they are what the
    /// attack did.
    pub fn hostile_signals() -> RuleSpec {
        let mut r = RuleSpec::signal(
            "okta-hostile-signals",
            &[DEFAULT_EVENT_TYPES[0], THREAT_DETECTED],
            Conditions::default(),
        );
        r.when = vec![(
            DEFAULT_EVENT_TYPES[0].to_string(),
            Conditions::any_of(&[&[UNKNOWN_USER], &[THREAT_SUSPECTED]]),
        )];
        r
    }

    /// A built-in rule over one of Okta's own signals: the failures among `event_types`
    /// that pass `filter`, judged by `failure_spike` over windows. Their normal level is
    /// a few an hour at most, so the floor is 10 events and 3× the baseline, over a
    /// window as in a bin. ThreatInsight's blocked requests carry no user, so they are
    /// not asked to spread over accounts; every signal's failures must spread over
    /// source addresses (stuffing rotates proxies; an office's typos come from one NAT).
    pub fn signal(name: &str, event_types: &[&str], filter: Conditions) -> RuleSpec {
        let mut r = RuleSpec::named(name);
        r.event_types = event_types.iter().map(|s| s.to_string()).collect();
        r.filter = filter;
        let mut problems = Problems::default();
        let table = serde_json::json!({
            "min_count": 10,
            "window_min_ratio": 3.0,
            "spread_over_users": !event_types.contains(&THREAT_DETECTED),
            "spread_over_sources": true,
        });
        let mut t = Table::new("", Some(&table), &mut problems);
        r.detectors = vec![DetectorSpec::read(
            DetectorKind::FailureSpike,
            &mut t,
            &mut problems,
        )];
        r
    }

    /// What this rule counts, for the binner.
    pub fn event_match(&self) -> EventMatch {
        EventMatch {
            event_types: self.event_types.clone(),
            when: self.when.clone(),
            filter: self.filter.clone(),
        }
    }

    /// What a rule over one of Okta's signals counts, for a human ("usernames Okta could
    /// not resolve"), or `None` for a plain rule.
    pub fn signal_note(&self) -> Option<String> {
        // The sign-ins' own condition (a signal rule over sign-ins and blocked requests
        // puts it in `when`), then the one every event holds.
        let signs_in = self
            .when
            .iter()
            .filter(|(t, _)| DEFAULT_EVENT_TYPES.contains(&t.as_str()))
            .map(|(_, c)| c);
        let mut parts: Vec<String> = signs_in
            .chain([&self.filter])
            .flat_map(conditions::describe)
            .collect();
        if self
            .event_types
            .iter()
            .any(|t| t == "security.threat.detected")
        {
            let blocked = "requests Okta ThreatInsight blocked (security.threat.detected)";
            parts.push(if parts.is_empty() {
                blocked.to_string()
            } else {
                format!("or {blocked}")
            });
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The built-in per-source spraying rule.
    pub fn password_spraying() -> RuleSpec {
        let mut r = RuleSpec::named("password-spraying");
        r.split_by = Some("client.ipAddress".to_string());
        r.top_k = Some(50);
        r.baseline_window = SPLIT_BASELINE_WINDOW;
        r.warmup = Duration::from_secs(3600);
        r.detectors = vec![
            DetectorSpec::default_for(DetectorKind::DistinctUsers),
            DetectorSpec::default_for(DetectorKind::FailingSources),
            DetectorSpec::default_for(DetectorKind::DistributedSpraying),
        ];
        r
    }

    /// The built-in per-user push-fatigue rule.
    pub fn mfa_push_fatigue() -> RuleSpec {
        let mut r = RuleSpec::named("mfa-push-fatigue");
        r.event_types = PUSH_EVENT_TYPES.iter().map(|s| s.to_string()).collect();
        let (ty, conds) = PUSH_DENIAL_WHEN;
        r.when = vec![(ty.to_string(), Conditions::all_of(conds))];
        r.split_by = Some("actor.alternateId".to_string());
        r.top_k = Some(50);
        r.baseline_window = Duration::from_secs(2 * 3600);
        r.warmup = Duration::from_secs(3600);
        r.detectors = vec![DetectorSpec::default_for(DetectorKind::PushFatigue)];
        r
    }

    pub fn bin_ms(&self) -> i64 {
        self.bin.as_millis() as i64
    }

    /// Baseline window in bins.
    pub fn window_bins(&self) -> usize {
        (self.baseline_window.as_millis() / self.bin.as_millis().max(1)) as usize
    }

    pub fn warmup_bins(&self) -> usize {
        (self.warmup.as_millis() / self.bin.as_millis().max(1)) as usize
    }

    /// Does this rule count `event`?
    pub fn matches(&self, event: &Event<'_>) -> bool {
        self.event_match().matches(event)
    }

    /// The bin as Logs Insights writes it: `15m`, `1h`, `30s`.
    pub fn bin_literal(&self) -> String {
        let s = self.bin.as_secs();
        if s.is_multiple_of(86_400) {
            format!("{}d", s / 86_400)
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }

    /// The Logs Insights query for this rule: counts per bin and outcome (and split
    /// value), with the distinct users and source addresses behind each count (which
    /// `distinct_users` and the alert's `kind` read from the failure rows). A rule's raw
    /// `query` replaces it; see the CloudWatch source (`source::cloudwatch`) for the output contract.
    pub fn insights_query(&self) -> String {
        if let Some(q) = &self.query {
            return q.clone();
        }
        let list = |types: &mut dyn Iterator<Item = &String>| -> String {
            types.map(|t| json_string(t)).collect::<Vec<_>>().join(", ")
        };
        let conditional = |t: &String| self.when.iter().any(|(w, _)| w == t);
        let all = list(&mut self.event_types.iter().filter(|t| !conditional(t)));
        let mut filter = format!("filter detail.eventType in [{all}]");
        if !self.when.is_empty() {
            let mut parts = vec![format!("detail.eventType in [{all}]")];
            for (t, c) in &self.when {
                if self.event_types.contains(t) {
                    let typed = format!("detail.eventType = {}", json_string(t));
                    parts.push(match c.insights() {
                        Some(c) => format!("({typed} and {c})"),
                        None => typed,
                    });
                }
            }
            filter = format!("filter ({})", parts.join(" or "));
        }
        if let Some(c) = self.filter.insights() {
            filter.push_str(&format!("\n| filter {c}"));
        }
        let mut by = format!("bin({}), detail.outcome.result", self.bin_literal());
        if let Some(field) = &self.split_by {
            by.push_str(", detail.");
            by.push_str(field);
        }
        format!(
            "{filter}\n| stats count(*) as n, count_distinct(detail.actor.alternateId) as users, count_distinct(detail.client.ipAddress) as ips, min(@timestamp) as first, max(@timestamp) as last by {by}\n| limit 10000"
        )
    }

    /// Read one `[[rules]]` table.
    pub fn read(path: &str, value: &Value, problems: &mut Problems) -> Option<RuleSpec> {
        let mut t = Table::new(path, Some(value), problems);
        let name = t.string("name", problems);
        if name.is_none() && t.raw("name").is_none() {
            problems.push(t.key_path("name"), "is required");
        }
        let mut rule = RuleSpec::named(name.as_deref().unwrap_or(""));
        if rule.name.trim().is_empty() && name.is_some() {
            problems.push(t.key_path("name"), "must not be empty");
        }
        rule.read_what(&mut t, problems);
        rule.read_sizes(&mut t, problems);
        rule.read_detectors(&mut t, problems);
        t.finish(problems);
        Some(rule)
    }

    /// What to count: event types, bin, split and a raw query.
    fn read_what(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        if let Some(types) = t.strings("event_types", problems) {
            if types.is_empty() {
                problems.push(
                    t.key_path("event_types"),
                    "must name at least one Okta event type",
                );
            }
            rule.event_types = types;
        }
        if let Some(bin) = t.duration("bin", problems) {
            if let Err(why) = check_bin(bin) {
                problems.push(
                    t.key_path("bin"),
                    format!("{} {why}", humantime::format_duration(bin)),
                );
            } else {
                rule.bin = bin;
            }
        }
        if let Some(field) = t.string("split_by", problems) {
            let field = field.strip_prefix("detail.").unwrap_or(&field).to_string();
            if SPLIT_FIELDS.contains(&field.as_str()) {
                rule.split_by = Some(field);
            } else {
                problems.push(
                    t.key_path("split_by"),
                    format!(
                        "{field:?} is not a field authpulse can split by (one of: {})",
                        SPLIT_FIELDS.join(", ")
                    ),
                );
            }
        }
        let when_base = t.key_path("when");
        let when = t.entries("when", problems);
        if !when.is_empty() {
            rule.when.clear();
        }
        for (ty, conds) in when {
            let path = crate::config_reader::join(&when_base, ty);
            if !rule.event_types.iter().any(|t| t == ty) {
                problems.push(path.clone(), "is not one of the rule's event_types");
            }
            let c = Conditions::read(&path, conds, problems);
            rule.when.push((ty.to_string(), c));
        }
        let base = t.key_path("filter");
        if let Some(v) = t.raw("filter") {
            rule.filter = Conditions::read(&base, v, problems);
        }
        if let Some(tz) = read_timezone(t, problems) {
            rule.timezone = Some(tz);
        }
        if let Some(q) = t.string("query", problems) {
            if !q.contains("bin(") || !q.contains(" n") {
                problems.push(
                    t.key_path("query"),
                    "must produce a bin(...) field and a count named n (e.g. `stats count(*) as n by bin(15m), detail.outcome.result`)",
                );
            }
            rule.query = Some(q);
        }
    }

    /// How much to keep: pages per hour, series, top-K, baseline window, warm-up.
    fn read_sizes(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        if let Some(n) = t.count("max_pages_per_hour", 1, problems) {
            rule.max_pages_per_hour = n.min(10_000) as usize;
        }
        if let Some(n) = t.count("max_series", 1, problems) {
            rule.max_series = n.min(1_000_000) as usize;
        }
        if let Some(n) = t.count("top_k", 1, problems) {
            if rule.split_by.is_none() {
                problems.push(t.key_path("top_k"), "only applies to a rule with split_by");
            }
            rule.top_k = Some(n.min(1_000_000) as usize);
        }
        if let Some(d) = t.duration("baseline_window", problems) {
            rule.baseline_window = d;
        } else if rule.split_by.is_some() {
            // Split series are many (one per address or user) and short-lived: a few
            // hours of history keep each one small (under 2 KiB) and are all the
            // recent-level baseline and the per-source windows need.
            rule.baseline_window = SPLIT_BASELINE_WINDOW.max(rule.bin * 8);
        }
        if let Some(d) = t.duration("warmup", problems) {
            rule.warmup = d;
        }
        if rule.baseline_window < rule.bin * 8 {
            problems.push(t.key_path("baseline_window"), "must cover at least 8 bins");
        }
    }

    /// The detectors (the defaults without a `[rules.detectors.*]` table), each checked
    /// against the baseline window.
    fn read_detectors(&mut self, t: &mut Table<'_>, problems: &mut Problems) {
        let rule = self;
        let detectors = t.entries("detectors", problems);
        if !detectors.is_empty() {
            let base = t.key_path("detectors");
            rule.detectors = detectors
                .into_iter()
                .filter_map(|(name, v)| {
                    crate::detect::read_detector(
                        &crate::config_reader::join(&base, name),
                        name,
                        v,
                        problems,
                    )
                })
                .collect();
        } else {
            rule.detectors = default_detectors(rule.split_by.is_some());
        }
        for d in &rule.detectors {
            let need = d.detector.window_bins() as usize;
            if need > rule.window_bins() {
                problems.push(
                    t.key_path("baseline_window"),
                    format!(
                        "holds {} bins, but {} looks at {need}: make it at least {}",
                        rule.window_bins(),
                        d.detector.kind().name(),
                        humantime::format_duration(rule.bin * need as u32)
                    ),
                );
            }
        }
    }
}

/// Read a `timezone` key: an IANA time zone name.
pub fn read_timezone(t: &mut Table<'_>, problems: &mut Problems) -> Option<chrono_tz::Tz> {
    let name = t.string("timezone", problems)?;
    match name.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.push(
                t.key_path("timezone"),
                format!("{name:?} is not an IANA time zone (e.g. \"America/New_York\", \"UTC\")"),
            );
            None
        }
    }
}

/// A string literal for a Logs Insights query (JSON escaping is a safe subset).
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// The detectors a rule gets when it names none. A split rule's series are sparse
/// (one per IP or user), where drops and silence mean nothing: it watches spikes only.
fn default_detectors(split: bool) -> Vec<DetectorSpec> {
    DetectorKind::TOTALS
        .into_iter()
        .filter(|k| !split || matches!(k, DetectorKind::FailureSpike | DetectorKind::VolumeSpike))
        .map(DetectorSpec::default_for)
        .collect()
}

/// Bins must tile an hour (below an hour) or a day (an hour and above), so that they line
/// up with the clock and with Logs Insights' `bin()`.
fn check_bin(bin: Duration) -> Result<(), &'static str> {
    let s = bin.as_secs();
    if bin.subsec_nanos() != 0 || s == 0 {
        Err("must be a whole number of seconds, at least 1s")
    } else if s < 3600 && 3600 % s != 0 {
        Err("does not divide an hour (use e.g. 1m, 5m, 10m, 15m, 30m)")
    } else if s >= 3600 && 86_400 % s != 0 {
        Err("does not divide a day (use e.g. 1h, 2h, 3h, 6h, 12h, 1d)")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_literals() {
        let mut r = RuleSpec::named("x");
        assert_eq!(r.bin_literal(), "15m");
        r.bin = Duration::from_secs(3600);
        assert_eq!(r.bin_literal(), "1h");
        r.bin = Duration::from_secs(30);
        assert_eq!(r.bin_literal(), "30s");
        r.bin = Duration::from_secs(86_400);
        assert_eq!(r.bin_literal(), "1d");
    }

    #[test]
    fn generated_queries() {
        let mut r = RuleSpec::named("x");
        assert_eq!(
            r.insights_query(),
            "filter detail.eventType in [\"user.session.start\"]\n| stats count(*) as n, count_distinct(detail.actor.alternateId) as users, count_distinct(detail.client.ipAddress) as ips, min(@timestamp) as first, max(@timestamp) as last by bin(15m), detail.outcome.result\n| limit 10000"
        );
        r.split_by = Some("client.ipAddress".into());
        r.event_types.push("user.authentication.sso".into());
        assert!(r
            .insights_query()
            .contains("in [\"user.session.start\", \"user.authentication.sso\"]"));
        assert!(r
            .insights_query()
            .contains("by bin(15m), detail.outcome.result, detail.client.ipAddress"));
    }

    #[test]
    fn split_rules_default_to_spike_detectors() {
        let mut p = Problems::default();
        let v = serde_json::json!({"name": "per-ip", "split_by": "detail.client.ipAddress"});
        let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(r.split_by.as_deref(), Some("client.ipAddress"));
        let kinds: Vec<_> = r.detectors.iter().map(|d| d.detector.kind()).collect();
        assert_eq!(
            kinds,
            vec![DetectorKind::FailureSpike, DetectorKind::VolumeSpike]
        );
    }

    #[test]
    fn unknown_split_field_is_named() {
        let mut p = Problems::default();
        let v = serde_json::json!({"name": "x", "split_by": "detail.debugContext"});
        RuleSpec::read("rules[3]", &v, &mut p);
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "rules[3].split_by");
    }

    #[test]
    fn timezone_filter_and_when_are_read() {
        let mut p = Problems::default();
        let v = serde_json::json!({
            "name": "x",
            "timezone": "America/New_York",
            "event_types": ["user.session.start", "user.authentication.auth_via_mfa"],
            "filter": {"actor.id": "unknown"},
            "when": {"user.authentication.auth_via_mfa": {"outcome.result": "FAILURE"}},
        });
        let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(r.timezone, Some(chrono_tz::America::New_York));
        assert_eq!(r.filter, Conditions::all_of(&[("actor.id", "unknown")]));
        let q = r.insights_query();
        assert!(q.contains("(detail.eventType = \"user.authentication.auth_via_mfa\" and detail.outcome.result = \"FAILURE\")"), "{q}");
        assert!(q.contains("| filter detail.actor.id = \"unknown\""), "{q}");
        let bad = serde_json::json!({"name": "x", "timezone": "Mars/Olympus", "filter": {"debugContext": "x"}});
        RuleSpec::read("rules[1]", &bad, &mut p);
        let paths: Vec<&str> = p.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["rules[1].filter.debugContext", "rules[1].timezone"]
        );
    }

    #[test]
    fn signal_rules_match_what_okta_writes() {
        let unknown = RuleSpec::builtin()
            .into_iter()
            .find(|r| r.name == "okta-unknown-users")
            .unwrap();
        let line = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE"},"actor":{"id":"unknown","alternateId":"x@gmail.com"}}"#;
        assert!(unknown.matches(&Event::parse(line).unwrap()));
        let known = line.replace("\"id\":\"unknown\"", "\"id\":\"00u1\"");
        assert!(!unknown.matches(&Event::parse(&known).unwrap()));
        let push = RuleSpec::mfa_push_fatigue();
        let denial = r#"{"eventType":"user.authentication.auth_via_mfa","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}}"#;
        assert!(push.matches(&Event::parse(denial).unwrap()));
        let expired = denial.replace("INVALID_CREDENTIALS", "VERIFICATION_ERROR");
        assert!(!push.matches(&Event::parse(&expired).unwrap()));
        let approved = r#"{"eventType":"user.authentication.auth_via_mfa","published":"2026-11-25T10:15:03Z","outcome":{"result":"SUCCESS"}}"#;
        assert!(!push.matches(&Event::parse(approved).unwrap()));
    }

    #[test]
    fn the_hostile_signals_rule_is_one_series_of_three_signals() {
        let r = RuleSpec::hostile_signals();
        fn ev(s: &str) -> Event<'_> {
            Event::parse(s).unwrap()
        }
        let blocked = r#"{"eventType":"security.threat.detected","published":"2026-11-25T10:15:03Z","outcome":{"result":"DENY"}}"#;
        let unknown = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE"},"actor":{"id":"unknown"}}"#;
        let flagged = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE"},"actor":{"id":"00u1"},"debugContext":{"debugData":{"threatSuspected":"true"}}}"#;
        let plain = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{"result":"FAILURE"},"actor":{"id":"00u1"},"debugContext":{"debugData":{"threatSuspected":"false"}}}"#;
        assert!(r.matches(&ev(blocked)) && r.matches(&ev(unknown)) && r.matches(&ev(flagged)));
        assert!(!r.matches(&ev(plain)));
        let q = r.insights_query();
        assert!(q.starts_with("filter (detail.eventType in [\"security.threat.detected\"] or (detail.eventType = \"user.session.start\" and (detail.actor.id = \"unknown\" or detail.debugContext.debugData.threatSuspected = \"true\")))"), "{q}");
        let note = r.signal_note().unwrap();
        assert_eq!(note, "on usernames Okta could not resolve (actor.id = unknown) or flagged by Okta ThreatInsight (threatSuspected), or requests Okta ThreatInsight blocked (security.threat.detected)");
    }
}
