//! The status page at `/`: what the daemon sees, for a human with a browser.
//!
//! Per rule and series, two charts of the recent bins — successful and failed sign-ins,
//! the two lines of the seed tutorial's CloudWatch dashboard — with what the baseline
//! expected (dashed), the band outside which the detector pages (shaded), anomalous bins
//! (dots) and alert markers (a red line where an alert fired, green where it resolved);
//! above them a table of the alerts firing now, the operator's silences and the last
//! notifications with their delivery per sink. The page is one self-contained HTML
//! document: inline CSS and SVG, no scripts, no external assets; every text from
//! outside (rule names, labels, summaries) is escaped.
//!
//! This module holds the page's state; `page.rs` writes the HTML from a copy of it,
//! drawing the charts with [`crate::chart`].
//!
//! The daemon fills a [`Board`]: the pipeline shows it every evaluated bin through
//! [`Tracer`] (a [`crate::pipeline::Observer`]); alerts and the daemon's phase are set
//! directly. Memory is bounded: [`RECENT_BINS`] bins per series, and for a rule with
//! `split_by` only [`MAX_SERIES`] series (the busiest, see [`RuleBoard::record`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};

mod page;

use crate::alert::{Alert, Status};
use crate::chart::Mark;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::detect::{BinContext, DetectorKind};
use crate::notify::journal::{Journal, Notice};
use crate::notify::mute::Mute;
use crate::notify::silence::{Silence, Silences};
use crate::pipeline::lifecycle::Transition;
use crate::pipeline::{Observer, Verdict};
use crate::series::{Labels, RuleId};
use crate::source::config::SourceKind;

/// Bins kept (and drawn) per series: two days of 15-minute bins.
pub const RECENT_BINS: usize = 192;
/// Series drawn per rule with `split_by`; a rule without it has exactly one.
pub const MAX_SERIES: usize = 6;

/// One measure of one bin as drawn: what was seen, expected, and the paging band.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measure {
    pub observed: f64,
    pub expected: Option<f64>,
    /// `[lower, upper]` of the detector that judges this measure, when it judged the bin.
    pub band: Option<(f64, f64)>,
    pub anomalous: bool,
}

/// One evaluated bin of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct BinTrace {
    pub bin: i64,
    pub total: u64,
    pub success: Measure,
    pub failure: Measure,
    /// Alert transitions in this bin, by detector.
    pub marks: Vec<(DetectorKind, Mark)>,
}

impl BinTrace {
    /// Build from what the detectors of a rule (`detectors`, in the rule's order) saw and
    /// decided. Successes take their band from `success_drop`, failures from
    /// `failure_spike`; a rule without that detector shows the expectation only.
    pub fn new(ctx: &BinContext<'_>, verdicts: &[Verdict], detectors: &[DetectorKind]) -> Self {
        let mut success = Measure {
            observed: ctx.counts.success as f64,
            expected: ctx.expected.map(|e| e.success),
            ..Measure::default()
        };
        let mut failure = Measure {
            observed: ctx.counts.failure as f64,
            expected: ctx.expected.map(|e| e.failure),
            ..Measure::default()
        };
        let mut marks = Vec::new();
        for (kind, v) in detectors.iter().zip(verdicts) {
            let measure = match kind {
                DetectorKind::SuccessDrop => Some(&mut success),
                DetectorKind::FailureSpike => Some(&mut failure),
                _ => None,
            };
            if let (Some(m), Some(f)) = (measure, &v.finding) {
                m.expected = Some(f.expected);
                m.band = Some((f.lower, f.upper));
                m.anomalous = f.anomalous;
            }
            if !matches!(v.transition, Transition::Quiet | Transition::Held) {
                marks.push((*kind, v.transition.mark()));
            }
        }
        BinTrace {
            bin: ctx.bin,
            total: ctx.counts.total,
            success,
            failure,
            marks,
        }
    }
}

/// What the daemon is doing, for the page's header and `systemctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    LoadingHistory,
    Watching,
    /// A file source without `follow` read its file to the end.
    SourceFinished,
}

/// One rule's part of the page.
#[derive(Debug, Clone)]
pub struct RuleBoard {
    pub name: String,
    pub bin_ms: i64,
    pub split_by: Option<String>,
    pub detectors: Vec<DetectorKind>,
    /// The drawn series, each with its last [`RECENT_BINS`] bins, oldest first.
    pub series: Vec<(Labels, VecDeque<BinTrace>)>,
}

impl RuleBoard {
    /// Keep `trace` for `labels`. A rule with `split_by` can have thousands of series (one
    /// per IP); only [`MAX_SERIES`] are drawn. A new series takes the place of the
    /// quietest one (lowest mean attempts per bin) when it is busier than that one, unless
    /// the quietest has alerts in its window: the page shows what matters.
    pub fn record(&mut self, labels: &Labels, trace: BinTrace) {
        if let Some((_, ring)) = self.series.iter_mut().find(|(l, _)| l == labels) {
            if ring.len() >= RECENT_BINS {
                ring.pop_front();
            }
            ring.push_back(trace);
            return;
        }
        if self.series.len() < MAX_SERIES {
            self.series.push((labels.clone(), VecDeque::from([trace])));
            return;
        }
        let mean = |ring: &VecDeque<BinTrace>| {
            ring.iter().map(|t| t.total as f64).sum::<f64>() / ring.len().max(1) as f64
        };
        let quietest = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, (_, ring))| ring.iter().all(|t| t.marks.is_empty()))
            .min_by(|a, b| mean(&a.1 .1).total_cmp(&mean(&b.1 .1)));
        if let Some((i, (_, ring))) = quietest {
            if trace.total as f64 > mean(ring) || !trace.marks.is_empty() {
                self.series[i] = (labels.clone(), VecDeque::from([trace]));
            }
        }
    }
}

/// `[ha]`: a rule, the replica leading it (empty: none), and whether that is this one.
pub type Leading = (String, String, bool);

#[derive(Debug, Clone)]
struct BoardState {
    version: &'static str,
    started_ms: i64,
    source: String,
    sinks: usize,
    phase: Phase,
    ready: bool,
    last_poll_ms: Option<i64>,
    /// When the config was last reloaded, and whether it was accepted.
    last_reload: Option<(i64, bool)>,
    rules: Vec<RuleBoard>,
    /// Firing alerts by fingerprint (the latest notice of each).
    open: BTreeMap<String, Alert>,
    /// The config's maintenance windows: open alerts they cover are marked muted.
    mutes: Vec<Mute>,
    /// With `[ha]`: this replica's id and who leads each rule (see [`Board::set_leaders`]).
    leaders: Option<(String, Vec<Leading>)>,
}

/// The status page's data, shared between the daemon loop and the HTTP server.
#[derive(Debug)]
pub struct Board {
    clock: SharedClock,
    state: Mutex<BoardState>,
    /// The route's silences and notification history, once the daemon shows them.
    route: OnceLock<(Journal, Silences)>,
}

/// What the page shows of the route, read when it is rendered.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteView {
    /// Active silences.
    pub silences: Vec<Silence>,
    /// Newest first.
    pub notices: Vec<Notice>,
}

impl Board {
    pub fn new(clock: SharedClock) -> Board {
        Board {
            state: Mutex::new(BoardState {
                version: env!("CARGO_PKG_VERSION"),
                started_ms: clock.now_ms(),
                source: String::new(),
                sinks: 0,
                phase: Phase::LoadingHistory,
                ready: false,
                last_poll_ms: None,
                last_reload: None,
                rules: Vec::new(),
                open: BTreeMap::new(),
                mutes: Vec::new(),
                leaders: None,
            }),
            clock,
            route: OnceLock::new(),
        }
    }
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // A panic while holding the lock cannot leave the board inconsistent in a way
        // that matters for a read-only page: keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start over for a (re)loaded config: its rules, no traces, no alerts. The pipeline
    /// is rebuilt with the config and refills both from history.
    pub fn reset(&self, config: &Config) {
        let mut s = self.lock();
        s.source = match config.source.kind {
            SourceKind::File => format!(
                "file {}",
                config
                    .source
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            SourceKind::Cloudwatch => format!(
                "CloudWatch Logs Insights on {}",
                config.source.log_groups.join(", ")
            ),
        };
        s.sinks = config.sinks.len();
        s.phase = Phase::LoadingHistory;
        s.ready = false;
        s.last_poll_ms = None;
        s.open.clear();
        s.mutes = config.mutes.clone();
        s.rules = config
            .rules
            .iter()
            .map(|r| RuleBoard {
                name: r.name.clone(),
                bin_ms: r.bin_ms(),
                split_by: r.split_by.clone(),
                detectors: r.detectors.iter().map(|d| d.detector.kind()).collect(),
                series: Vec::new(),
            })
            .collect();
    }

    /// Show these silences and this notification history on the page (once; the daemon
    /// keeps both for its whole life).
    pub fn show_route(&self, journal: Journal, silences: Silences) {
        let _ = self.route.set((journal, silences));
    }

    /// The configured rules' names.
    pub fn rule_names(&self) -> Vec<String> {
        self.lock().rules.iter().map(|r| r.name.clone()).collect()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    pub fn set_ready(&self, ready: bool) {
        self.lock().ready = ready;
    }

    /// With `[ha]`: this replica's id, and per rule the replica leading it (empty:
    /// none) and whether it is this one.
    pub fn set_leaders(&self, me: &str, leaders: Vec<Leading>) {
        self.lock().leaders = Some((me.to_string(), leaders));
    }

    pub fn set_last_poll(&self, ms: i64) {
        self.lock().last_poll_ms = Some(ms);
    }

    pub fn reloaded(&self, at_ms: i64, accepted: bool) {
        self.lock().last_reload = Some((at_ms, accepted));
    }

    /// Follow the alerts the pipeline (or the source's health) raised: firing ones are
    /// open until their `resolved`.
    pub fn alerts(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let mut s = self.lock();
        for a in alerts {
            match a.status {
                Status::Firing => {
                    s.open.insert(a.fingerprint.clone(), a.clone());
                }
                Status::Resolved => {
                    s.open.remove(&a.fingerprint);
                }
            }
        }
    }

    /// An [`Observer`] that records every evaluated bin; holds the board's lock, so keep
    /// it for one batch of updates.
    pub fn tracer(&self) -> Tracer<'_> {
        Tracer { state: self.lock() }
    }

    /// The recorded traces of one rule's series (tests and the page).
    pub fn rule(&self, index: usize) -> Option<RuleBoard> {
        self.lock().rules.get(index).cloned()
    }

    /// The page. Rendered from a copy, so the daemon loop never waits for a slow client.
    pub fn render(&self) -> String {
        let state = self.lock().clone();
        let view = self
            .route
            .get()
            .map(|(journal, silences)| RouteView {
                silences: silences.active(),
                notices: journal.snapshot(),
            })
            .unwrap_or_default();
        page::render(&state, &view, self.clock.now_ms())
    }
}

/// Records evaluated bins into the board (see [`Board::tracer`]).
pub struct Tracer<'a> {
    state: MutexGuard<'a, BoardState>,
}

impl Observer for Tracer<'_> {
    fn series_bin(
        &mut self,
        RuleId(rule): RuleId,
        labels: &Labels,
        ctx: &BinContext<'_>,
        verdicts: &[Verdict],
    ) {
        if let Some(r) = self.state.rules.get_mut(rule) {
            let trace = BinTrace::new(ctx, verdicts, &r.detectors);
            r.record(labels, trace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(bin: i64, total: u64, fired: bool) -> BinTrace {
        BinTrace {
            bin,
            total,
            success: Measure::default(),
            failure: Measure::default(),
            marks: if fired {
                vec![(DetectorKind::FailureSpike, Mark::Fire)]
            } else {
                Vec::new()
            },
        }
    }

    fn ip(n: u32) -> Labels {
        Labels::from([("client.ipAddress".to_string(), format!("203.0.113.{n}"))])
    }

    fn board() -> RuleBoard {
        RuleBoard {
            name: "r".into(),
            bin_ms: 900_000,
            split_by: Some("client.ipAddress".into()),
            detectors: vec![DetectorKind::FailureSpike],
            series: Vec::new(),
        }
    }

    #[test]
    fn a_series_keeps_only_its_recent_bins() {
        let mut r = board();
        for b in 0..(RECENT_BINS as i64 + 50) {
            r.record(&Labels::new(), trace(b, 1, false));
        }
        let ring = &r.series[0].1;
        assert_eq!(ring.len(), RECENT_BINS);
        assert_eq!(ring.front().map(|t| t.bin), Some(50));
    }

    #[test]
    fn split_rules_draw_the_busiest_series_and_keep_those_with_alerts() {
        let mut r = board();
        // Series 0 is quiet but had an alert; 1..6 are busier.
        r.record(&ip(0), trace(0, 1, true));
        for n in 1..MAX_SERIES as u32 {
            r.record(&ip(n), trace(0, 10 + u64::from(n), false));
        }
        assert_eq!(r.series.len(), MAX_SERIES);
        // A quiet newcomer is not drawn; a busy one replaces the quietest without alerts.
        r.record(&ip(100), trace(1, 2, false));
        assert!(r.series.iter().all(|(l, _)| *l != ip(100)));
        r.record(&ip(101), trace(1, 500, false));
        assert_eq!(r.series.len(), MAX_SERIES);
        assert!(r.series.iter().any(|(l, _)| *l == ip(101)));
        assert!(
            r.series.iter().any(|(l, _)| *l == ip(0)),
            "the alerting series stays"
        );
        assert!(
            r.series.iter().all(|(l, _)| *l != ip(1)),
            "the quietest went"
        );
    }

    #[test]
    fn an_empty_board_renders_a_page() {
        let b = Board::new(crate::clock::ManualClock::at(1_795_600_000_000));
        b.reset(&Config::builtin());
        let page = b.render();
        assert!(page.contains("No alert is firing."));
        assert!(page.contains("No bin evaluated yet."));
        assert!(page.contains("loading history"));
    }

    #[test]
    fn silences_and_the_notification_history_are_shown() {
        use crate::notify::journal::{Delivery, Journal};
        use crate::notify::silence::{Matcher, NewSilence, Silences};
        use crate::sink::render::tests::sample_alert;
        let clock = crate::clock::ManualClock::at(1_795_600_000_000);
        let b = Board::new(clock.clone());
        b.reset(&Config::builtin());
        let (journal, silences) = (Journal::new(clock.clone()), Silences::in_memory(clock));
        b.show_route(journal.clone(), silences.clone());
        let page = b.render();
        assert!(page.contains("Silences (0)"), "{page}");
        assert!(page.contains("No notification since the start."));
        silences
            .add(NewSilence {
                matcher: Matcher {
                    rule: "okta-sign-ins".into(),
                    detector: None,
                    series: Default::default(),
                },
                duration_ms: 3_600_000,
                created_by: "alice <sec>".into(),
                reason: "pen test".into(),
            })
            .unwrap();
        let a = sample_alert(Status::Firing, "2026-11-25T10:00:00Z");
        b.alerts(std::slice::from_ref(&a));
        journal.sink(
            &a,
            "webhook[1]",
            Delivery::DeadLettered {
                attempts: 1,
                reason: "HTTP 400 <bad>".into(),
            },
        );
        let page = b.render();
        assert!(page.contains("Silences (1)"), "{page}");
        assert!(page.contains("alice &lt;sec&gt;"), "{page}");
        assert!(page.contains("rule=okta-sign-ins"), "{page}");
        assert!(page.contains(">silenced</span>"), "{page}");
        assert!(page.contains("Notifications (last 1)"), "{page}");
        assert!(
            page.contains(
                "webhook[1]: <span class=\"pill bad\">dead-lettered: HTTP 400 &lt;bad&gt;</span>"
            ),
            "{page}"
        );
    }

    #[test]
    fn open_alerts_in_a_maintenance_window_are_marked_muted() {
        use crate::sink::render::tests::sample_alert;
        let mut config = Config::builtin();
        config.mutes = vec![Mute {
            window: crate::notify::mute::Window::Once {
                start_ms: 0,
                end_ms: i64::MAX,
            },
            rules: Vec::new(),
            detectors: Vec::new(),
            reason: "Okta <upgrade>".into(),
        }];
        let b = Board::new(crate::clock::ManualClock::at(1_795_600_000_000));
        b.reset(&config);
        b.alerts(&[sample_alert(Status::Firing, "2026-11-25T10:00:00Z")]);
        let page = b.render();
        assert!(page.contains("Open alerts (1)"));
        assert!(
            page.contains("<span class=\"pill muted\" title=\"Okta &lt;upgrade&gt;\">muted</span>"),
            "{page}"
        );
        b.reset(&Config::builtin());
        b.alerts(&[sample_alert(Status::Firing, "2026-11-25T10:00:00Z")]);
        assert!(!b.render().contains("pill muted"));
    }
}
