//! The built-in rules: what authpulse watches when the config names no rule, and the
//! rules over Okta's own signals.

use std::time::Duration;

use super::{conditions, Conditions, RuleSpec, DEFAULT_EVENT_TYPES, SPLIT_BASELINE_WINDOW};
use crate::config_reader::{Problems, Table};
use crate::detect::{DetectorKind, DetectorSpec};

/// The Okta events of an Okta Verify push and of its answer. A Classic tenant logs a
/// denial as `user.mfa.okta_verify.deny_push` (Okta's event catalog marks it Classic
/// only); an Identity Engine tenant logs it as `user.authentication.auth_via_mfa` with
/// outcome FAILURE (reason INVALID_CREDENTIALS, per Okta's support article on whether
/// rejecting a push counts as failed MFA; Okta's suspicious-activity report lists
/// `auth_via_mfa` FAILURE as "Failed factor attempt"), so that one counts only when it
/// failed that way, or when it succeeded, the push approved ([`PUSH_ANSWER_WHEN`]): an
/// expired push or a mistyped code fails with another reason and is not a denial.
pub const PUSH_EVENT_TYPES: &[&str] = &[
    "system.push.send_factor_verify_push",
    "user.mfa.okta_verify.deny_push",
    "user.authentication.auth_via_mfa",
];

/// The Okta events of a session beginning, going on and ending (a sign-in, an app
/// trading its refresh token for a new access token, a sign-out or a session that
/// expired): what `okta-sessions` watches for silence. Refresh-token grants come from
/// each signed-in device on its own timer, independently of one another and of new
/// sign-ins, so they are evidence one by one as `flatline` takes them — and at night,
/// when few people sign in, they are most of what a tenant with OIDC apps still logs
/// (a night blind spot of 40 minutes where 10 sign-ins were due is within chance; with
/// the apps' refreshes it is not). A tenant without such apps logs none: the rule is
/// then its sign-ins and sign-outs, as before. Pushes and factor checks come within
/// seconds of a sign-in and are left out: they add events, not evidence.
pub const SESSION_EVENT_TYPES: &[&str] = &[
    "user.session.start",
    "app.oauth2.as.token.grant.refresh_token",
    "user.session.end",
];

/// `okta-sessions` counts only what succeeded: a rule judged by `flatline` alone has
/// no other detector to keep an attack's bins out of its baseline, and a stuffing run's
/// failures learned as a Sunday afternoon's usual volume made an ordinary lull there
/// page (easy seed 45).
pub const SESSION_SUCCEEDED: (&str, &str) = ("outcome.result", "SUCCESS");

/// The field that holds a sign-in's source address.
pub const SOURCE_ADDRESS: &str = "client.ipAddress";

/// Okta's signal of a username it could not resolve: `actor.id` is `unknown`.
pub const UNKNOWN_USER: (&str, &str) = ("actor.id", "unknown");

/// Okta ThreatInsight's flag on a sign-in from an address it suspects.
pub const THREAT_SUSPECTED: (&str, &str) = ("debugContext.debugData.threatSuspected", "true");

/// A request ThreatInsight blocked (outcome DENY, often no user).
pub const THREAT_DETECTED: &str = "security.threat.detected";

/// The windows, in 15-minute bins, over which the signal rules (see [`RuleSpec::signal`])
/// sum their events: `failure_spike`'s default (1, 2, 4, 8, 16) and **3**. A
/// low-and-slow stuffing run near the evidence floor lasts about half an hour, and one
/// that starts a few minutes into a bin spans three bins: judged at two it loses a
/// third of its attempts, at four it adds a bin of background. Hard seed 4's blocked
/// stuffing (Wed 11 Nov 05:47–06:19 UTC) put 6, 4 and 4 hostile events (7 unknown
/// usernames, 7 blocked requests, 12 addresses) in the bins from 05:45, where under one
/// a bin is usual at that hour: `okta-hostile-signals`' four bins to 06:30 came to
/// p 5.9·10⁻⁷ against the 2·10⁻⁷ each of five windows is tested at; the three bins
/// alone to 5.1·10⁻⁸, against 1.7·10⁻⁷ with six windows (the Bonferroni split of
/// `p_value` pays for the extra window, so quiet traffic pages no more often).
///
/// The background it was measured against (50 stored runs, 25 seeds × hard and easy, 28
/// days each, windows overlapping an attack label ±1 h left out): hostile events
/// (unknown username, flagged, blocked) run 0.85 per 30 minutes at the quietest hour
/// (06 UTC) and 1.8–1.9 at the busiest (15 UTC), at most 9 in an aligned half hour
/// outside benign labels, with a variance 1.2 times the mean and about 1 % from an
/// address already seen in the same half hour (spread like a Poisson stream, not in
/// bursts). `okta-hostile-signals`' best three-bin window outside attacks and benign
/// labels that passes its spread over addresses was p 1.3·10⁻⁴; inside a benign label,
/// 1.3·10⁻⁶ (easy seed 61, a surge), a factor of 8 above the bound. An office NAT's
/// typos reach 3.8·10⁻⁹ over three bins but come from a handful of addresses and fail
/// the spread test, as before; the nearest benign window of any length that passes it
/// is still the one it was (hard seed 94's NAT typos over two hours, 4.9·10⁻⁷, three
/// times the bound: `p_value` 10⁻⁵ on these rules paged it).
pub const SIGNAL_WINDOWS: &[u32] = &[1, 2, 3, 4, 8, 16];

/// `okta-sign-ins`' `flatline` threshold: a backstop for a silent stream at busy hours
/// (see [`RuleSpec::sign_ins`]).
pub const SIGN_INS_SILENCE_P: f64 = 1e-12;

/// `okta-sessions`' `flatline` threshold, twice the default: silence is one test of
/// one stream a bin (not one per series, as a spike). On the quiet traffic of 50
/// simulated runs (seeds 1–10 and 61–85, easy and hard, 28 days each) no window of the
/// stream went below 2.5·10⁻⁶ (a span is tested against half of this, 10⁻⁶): about 14
/// sign-ins and sign-outs due over a silence page, and a night gap where 6.5 a bin
/// were due (hard seed 62, 54 minutes; 8.4·10⁻⁷ once it ended) pages. Ten times the default
/// paged that quiet window (seed 6, a Tuesday 06:11 local: five minutes of nothing in
/// the morning ramp, where the simulated stream's arrivals bunch by the minute). For a
/// Poisson stream the open and the closed span each page at most half of this per bin:
/// 672 bins a week, about 0.001 false pages a week.
pub const SESSIONS_SILENCE_P: f64 = 2e-6;

/// The longest silence `okta-sessions` judges, in 15-minute bins (see
/// [`RuleSpec::sessions`]).
pub const SESSIONS_SILENCE_BINS: u64 = 8;

/// `okta-sessions`' `volume_drop` judges the hours whose season expects at least this
/// share of the week's busiest bin (see `volume_drop`'s "The busy hours only"). A
/// third let the mornings of a one-continent holiday page (outside seeds 4 and 5: the
/// other continent's phones go quiet while the absent one's should be arriving); half
/// keeps to the hours both continents are in and pages no holiday of seeds 1–15.
pub const SESSIONS_DROP_PEAK_SHARE: f64 = 0.5;

/// The event that answers an Okta Verify push: `user.authentication.auth_via_mfa`, a
/// factor verified (SUCCESS: the push approved) or not.
pub const PUSH_ANSWER: &str = "user.authentication.auth_via_mfa";

/// The push rule's condition on [`PUSH_ANSWER`]: the push approved (SUCCESS, counted as
/// an approval, see [`RuleSpec::approvals`]) or denied on an Identity Engine tenant
/// (FAILURE, INVALID_CREDENTIALS: a denial).
pub const PUSH_ANSWER_WHEN: &[&[(&str, &str)]] = &[
    &[("outcome.result", "SUCCESS")],
    &[
        ("outcome.reason", "INVALID_CREDENTIALS"),
        ("outcome.result", "FAILURE"),
    ],
];

impl RuleSpec {
    /// The rules used when the config names none:
    ///
    /// * `okta-sign-ins`: session starts in 15m bins, every totals detector — stuffing,
    ///   outages (failing or unreachable), pipeline gaps;
    /// * `okta-availability`: the same session starts in 5m bins, judged only for
    ///   sign-ins that fail or stop succeeding (`failure_ratio`, `success_drop`): an
    ///   outage pages at the end of the second 5-minute bin that shows it instead of
    ///   the second 15-minute one (see [`RuleSpec::availability`]);
    /// * `password-spraying`: session starts per source address (the 50 most failing
    ///   addresses of each bin), `distinct_users` over 4 hours, `failing_sources`
    ///   (many addresses failing without a success: stuffing hidden in the totals) and
    ///   `distributed_spraying` (several addresses trying one account after another
    ///   over hours, never succeeding);
    /// * `okta-sessions`: sign-ins and sign-outs together, judged only by `flatline`
    ///   (see [`RuleSpec::sessions`]): twice the events of the sign-ins alone, so a
    ///   blind spot in the small hours is told from a lull;
    /// * `mfa-push-fatigue`: Okta Verify pushes and denials per user (the 50 busiest
    ///   users of each bin) in 5-minute bins, `push_fatigue` over 55 minutes (see
    ///   [`RuleSpec::mfa_push_fatigue`]).
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
    /// The totals rules come first: the others' pages are told apart from an outage by
    /// what they saw in the same bins (`pipeline::story`); the signal rules come before
    /// the per-source ones, whose spraying pages are told apart from stuffing by the
    /// unknown usernames of the same bins.
    pub fn builtin() -> Vec<RuleSpec> {
        vec![
            RuleSpec::sign_ins(),
            RuleSpec::availability(),
            RuleSpec::sessions(),
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
            RuleSpec::password_spraying(),
            RuleSpec::mfa_push_fatigue(),
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
    /// window as in a bin; the windows are [`SIGNAL_WINDOWS`] (15 minutes to 4 hours,
    /// 45 minutes among them). ThreatInsight's blocked requests carry no user, so they are
    /// not asked to spread over accounts; every signal's failures must spread over
    /// source addresses (stuffing rotates proxies; an office's typos come from one NAT).
    /// Their windows are judged against the rate of their hours pooled over every day
    /// of the history (`pooled_rate`): three past bins of a signal that holds an event
    /// every few bins say next to nothing of its rate.
    pub fn signal(name: &str, event_types: &[&str], filter: Conditions) -> RuleSpec {
        let mut r = RuleSpec::named(name);
        r.event_types = event_types.iter().map(|s| s.to_string()).collect();
        r.filter = filter;
        r.detectors = vec![tuned(
            DetectorKind::FailureSpike,
            serde_json::json!({
                "windows": SIGNAL_WINDOWS,
                "min_count": 10,
                "window_min_ratio": 3.0,
                "spread_over_users": !event_types.contains(&THREAT_DETECTED),
                "spread_over_sources": true,
                "pooled_rate": true,
                "count_sources": true,
            }),
        )];
        r
    }

    /// Whether this rule counts only failures on usernames Okta could not resolve
    /// ([`UNKNOWN_USER`] on every event it counts), over totals: what `pipeline::story`
    /// reads to tell stuffing (a combo list of other breaches' usernames) from spraying.
    pub fn counts_unknown_users(&self) -> bool {
        let (field, value) = UNKNOWN_USER;
        self.split_by.is_none()
            && self
                .filter
                .all
                .iter()
                .any(|(f, v)| f == field && v == value)
    }

    /// Whether this rule splits its series by the source address (the built-in
    /// `password-spraying`): its per-address counts tell a wave of people who fail and
    /// get in from an attack (see `pipeline::retry_wave`).
    pub fn splits_by_source(&self) -> bool {
        self.split_by.as_deref() == Some(SOURCE_ADDRESS)
    }

    /// Whether this rule counts every sign-in over totals (no split, no condition, no
    /// query of its own): its failures are all of a bin's failed sign-ins, which the
    /// rule split by source address can explain (see `pipeline::retry_wave`).
    pub fn counts_every_sign_in(&self) -> bool {
        self.split_by.is_none()
            && self.filter.is_empty()
            && self.when.is_empty()
            && self.query.is_none()
            && self.event_types == super::DEFAULT_EVENT_TYPES
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

    /// The built-in rule over session starts in 15-minute bins, every totals detector.
    /// Its `flatline` is a backstop at `p_value = 1e-12` (about 28 sign-ins expected
    /// over a silence at the day's level before it): `okta-sessions` watches the stream
    /// for silence, with twice the events. A silence of the sign-ins alone, while
    /// sign-outs keep arriving, is ambiguous in its first hour: a holiday at a fifth of
    /// the volume that begins at midnight has 30–45 minutes without a sign-in where the
    /// evening before promises 18–28 (easy and hard seeds 1, 51 and more: "1 in 10⁷"
    /// at the evening's level, ordinary at the holiday's), and an outage that keeps 90 %
    /// of people from reaching Okta looks the same until `volume_drop` has two bins to
    /// judge. The detector stays (not removed): its anomalous bins keep a gap's empty
    /// bins out of the rule's baseline; without it the same hour a week after a gap
    /// expected nothing and `volume_spike` paged there.
    pub fn sign_ins() -> RuleSpec {
        let mut r = RuleSpec::named("okta-sign-ins");
        for d in &mut r.detectors {
            if d.detector.kind() == DetectorKind::Flatline {
                *d = tuned(
                    DetectorKind::Flatline,
                    serde_json::json!({ "p_value": SIGN_INS_SILENCE_P }),
                );
            }
        }
        r
    }

    /// The built-in rule that pages outages sooner: session starts in 5-minute bins,
    /// judged by the totals detectors that see sign-ins fail or stop succeeding
    /// (`failure_ratio`, `success_drop`: two bad bins of three, now ten minutes instead
    /// of thirty). Its pages end at a 5-minute mark, so an outage pages about 12 minutes
    /// after it began (0.8 bins of 15 minutes) instead of 16–20.
    ///
    /// What stays on the 15-minute `okta-sign-ins` only, measured on the simulator's
    /// tuned seeds: the spikes (summed over 5-minute bins, the distinct accounts of
    /// people who retry across a bin edge count twice, and help-desk reset waves, office
    /// NATs and stale service accounts paged as attacks), `volume_drop` (the end of a
    /// benign surge paged) and `flatline` (a holiday at a fifth of the volume paged;
    /// blind spots already page within the bin they begin in, from the event times).
    ///
    /// Logs Insights bills the bytes a query scans, and each event lies in one bin
    /// whatever its width: the rule scans what any rule over the sign-ins scans, in
    /// three times as many (smaller) queries.
    pub fn availability() -> RuleSpec {
        let mut r = RuleSpec::named("okta-availability");
        r.bin = Duration::from_secs(5 * 60);
        r.detectors = vec![
            DetectorSpec::default_for(DetectorKind::FailureRatio),
            DetectorSpec::default_for(DetectorKind::SuccessDrop),
        ];
        r
    }

    /// The built-in rule that watches the log stream for silence: session starts and
    /// ends (`user.session.start`, `user.session.end`) that succeeded, in 15-minute
    /// bins, `flatline` only. At night a 40-minute blind spot expects 10–20 sign-ins, too few for one in
    /// a million; sign-outs about double that. Every other event type of the stream
    /// (the push, the factor check) comes within seconds of a sign-in, so counting them
    /// adds events but no evidence: `flatline` takes events for a Poisson stream, and a
    /// stream of clusters of three or four events leaves silent seconds several times
    /// as often as that (a rule over every event type paged on 12 silent seconds at the
    /// peak, "about 20 expected", for that reason). Sign-ins and sign-outs are single
    /// events, each a person's own.
    ///
    /// `volume_drop` judges the same stream in the busy half of the day
    /// (`SESSIONS_DROP_PEAK_SHARE`): an outage that keeps one continent of a
    /// two-continent organisation from Okta leaves too few sign-ins a bin for
    /// `okta-sign-ins`' drop (`min_expected`), while the apps' refreshes of the people
    /// already in fall by half (outside traffic, seeds 4, 10 and 15: 36–79 minutes).
    pub fn sessions() -> RuleSpec {
        let mut r = RuleSpec::named("okta-sessions");
        r.event_types = SESSION_EVENT_TYPES.iter().map(|s| s.to_string()).collect();
        r.filter = Conditions::all_of(&[SESSION_SUCCEEDED]);
        // Judged once every bin has the same hour of an earlier week to go by: in the
        // first week the time of day's fallback expected a Saturday's evening of a
        // Sunday's first hours and an ordinary lull paged (seed 1). Before that,
        // `okta-sign-ins`' backstop pages a silence at busy hours from its second day.
        r.warmup = Duration::from_secs(7 * 86_400);
        // Spans of up to two hours: a long gap on a quiet evening adds up evidence (a
        // gap of 2.5 hours right after the warm-up, on a Sunday evening, held 15 events
        // an hour and one hour of it was not enough without a level to go by, seed 7).
        r.detectors = vec![
            tuned(
                DetectorKind::Flatline,
                serde_json::json!({
                    "bins": SESSIONS_SILENCE_BINS,
                    "p_value": SESSIONS_SILENCE_P,
                }),
            ),
            tuned(
                DetectorKind::VolumeDrop,
                serde_json::json!({ "min_peak_share": SESSIONS_DROP_PEAK_SHARE }),
            ),
        ];
        r
    }

    /// The built-in per-source spraying rule.
    pub fn password_spraying() -> RuleSpec {
        let mut r = RuleSpec::named("password-spraying");
        r.split_by = Some(SOURCE_ADDRESS.to_string());
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

    /// The built-in per-user push-fatigue rule, in **5-minute bins**: `push_fatigue`
    /// over the last 55 minutes (11 bins), resolved after an hour without pushes.
    ///
    /// What it counts per user — pushes sent (success), denied (failure) and approved
    /// (`auth_via_mfa` SUCCESS, in the total only: [`RuleSpec::approvals`]) — adds up exactly over
    /// bins (unlike distinct accounts or addresses, which the spike rules need and
    /// which is why they stay at 15 minutes), so finer bins judge about the same span
    /// and only page sooner: at the end of the 5-minute bin that holds the second
    /// denial instead of the end of its 15-minute bin (5 minutes sooner on average, a
    /// third of a 15-minute bin). Each event lies in one bin whatever its width: the query
    /// scans the same Logs Insights bytes.
    pub fn mfa_push_fatigue() -> RuleSpec {
        let mut r = RuleSpec::named("mfa-push-fatigue");
        r.bin = Duration::from_secs(5 * 60);
        r.event_types = PUSH_EVENT_TYPES.iter().map(|s| s.to_string()).collect();
        r.when = vec![(
            PUSH_ANSWER.to_string(),
            Conditions::any_of(PUSH_ANSWER_WHEN),
        )];
        r.approvals = Some(PUSH_ANSWER.to_string());
        r.split_by = Some("actor.alternateId".to_string());
        r.top_k = Some(50);
        r.baseline_window = Duration::from_secs(2 * 3600);
        r.warmup = Duration::from_secs(3600);
        // The window the 15-minute rule had: its four bins held two events between 45
        // and 60 minutes apart, 52.5 on average; eleven 5-minute bins hold them 50 to 55
        // minutes apart, so a person's two mistaken denials in an hour page no more
        // often than before (twelve bins paged one more such person on the tuned
        // seeds). An hour without a push resolves, as before.
        r.detectors = vec![tuned(
            DetectorKind::PushFatigue,
            serde_json::json!({
                "window": 11,
                "bins_to_resolve": 12,
            }),
        )];
        r
    }
}

/// A detector of `kind` with the built-in `settings` (as a config's table of it would
/// give them; the settings are the project's own and read without a problem).
fn tuned(kind: DetectorKind, settings: serde_json::Value) -> DetectorSpec {
    let mut problems = Problems::default();
    let mut t = Table::new("", Some(&settings), &mut problems);
    DetectorSpec::read(kind, &mut t, &mut problems)
}

/// The detectors a rule gets when it names none. A split rule's series are sparse
/// (one per IP or user), where drops and silence mean nothing: it watches spikes only.
pub(super) fn default_detectors(split: bool) -> Vec<DetectorSpec> {
    DetectorKind::TOTALS
        .into_iter()
        .filter(|k| !split || matches!(k, DetectorKind::FailureSpike | DetectorKind::VolumeSpike))
        .map(DetectorSpec::default_for)
        .collect()
}

#[cfg(test)]
mod tests;
