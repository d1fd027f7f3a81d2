//! The built-in rules' tests.
use super::*;
use crate::event::Event;

#[test]
fn the_sessions_rule_watches_sign_ins_refreshes_and_sign_outs_for_silence_and_busy_hour_drops() {
    let r = RuleSpec::builtin()
        .into_iter()
        .find(|r| r.name == "okta-sessions")
        .unwrap();
    assert_eq!(
        r.event_types,
        [
            "user.session.start",
            "app.oauth2.as.token.grant.refresh_token",
            "user.session.end"
        ]
    );
    assert_eq!(
        r.filter,
        Conditions::all_of(&[("outcome.result", "SUCCESS")])
    );
    assert_eq!(r.bin, Duration::from_secs(15 * 60));
    let kinds: Vec<DetectorKind> = r.detectors.iter().map(|d| d.detector.kind()).collect();
    assert_eq!(kinds, [DetectorKind::Flatline, DetectorKind::VolumeDrop]);
    // Its drop judges only the busy half of the day (see SESSIONS_DROP_PEAK_SHARE): a
    // cliff at a third of the week's busiest bin is not judged, one at two thirds pages.
    let drop = &r.detectors[1].detector;
    let cliff_at = |season: f32| {
        use crate::detect::test_support::{counts, ctx, expected};
        use crate::series::{BinRecord, History};
        let mut h = History::new(700);
        for b in (100 - 672)..100 {
            let s = if b == 50 { 1200.0 } else { season };
            let rec = BinRecord {
                total: s as u32,
                success: s as u32,
                known: true,
                seasonal_total: s,
                expected_total: s,
                expected_failure: -1.0,
                ..BinRecord::default()
            };
            h.push(b, rec);
        }
        let s = f64::from(season);
        drop.evaluate(&ctx(&h, counts(60, 60, 0), Some(expected(s, s, 0.0))))
    };
    assert_eq!(cliff_at(400.0), None);
    assert!(cliff_at(800.0).is_some_and(|f| f.anomalous));
    assert!(r.split_by.is_none());
    assert_eq!(r.warmup, Duration::from_secs(7 * 86_400));
}

/// The silence detector of the built-in rule `name`.
fn flatline_of(name: &str) -> std::sync::Arc<dyn crate::detect::Detector> {
    let r = RuleSpec::builtin()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap();
    let d = r
        .detectors
        .iter()
        .find(|d| d.detector.kind() == DetectorKind::Flatline)
        .unwrap();
    d.detector.clone()
}

/// Whether `flatline` pages `silent` empty bins (this one included) after `before`
/// bins that held what was expected of them, `per_bin` events a bin.
fn silence_pages(
    flatline: &dyn crate::detect::Detector,
    before: i64,
    silent: i64,
    per_bin: f64,
) -> bool {
    use crate::detect::test_support::{counts, ctx, expected};
    use crate::series::{BinRecord, History};
    let bin = |total: u32| BinRecord {
        total,
        known: true,
        seasonal_total: per_bin as f32,
        expected_total: per_bin as f32,
        ..BinRecord::default()
    };
    let mut h = History::new(64);
    for b in 0..before {
        h.push(b, bin(per_bin as u32));
    }
    for b in before..before + silent - 1 {
        h.push(b, bin(0));
    }
    let e = expected(per_bin, per_bin * 0.95, per_bin * 0.05);
    let c = ctx(&h, counts(0, 0, 0), Some(e));
    flatline.evaluate(&c).unwrap().anomalous
}

#[test]
fn the_sign_ins_silence_is_a_backstop_for_busy_hours() {
    let generic = DetectorSpec::default_for(DetectorKind::Flatline).detector;
    let sign_ins = flatline_of("okta-sign-ins");
    // A holiday's first 45 minutes from midnight: nothing where the evening before
    // promises 9 sign-ins a bin ("1 in 10^11" at that level; ordinary at a fifth of
    // it, and the sign-outs keep coming). The default threshold pages it.
    assert!(silence_pages(generic.as_ref(), 8, 3, 9.0));
    assert!(!silence_pages(sign_ins.as_ref(), 8, 3, 9.0));
    // A silent bin at the peak still pages at once.
    assert!(silence_pages(sign_ins.as_ref(), 8, 1, 150.0));
}

#[test]
fn the_sessions_rule_judges_silences_of_up_to_two_hours() {
    // Three events a bin (a quiet evening): two hours of nothing page; judged an
    // hour at a time, the empty bins before the last hour lower the level and the
    // same silence never pages.
    let generic = DetectorSpec::default_for(DetectorKind::Flatline).detector;
    let sessions = flatline_of("okta-sessions");
    assert_eq!(sessions.window_bins(), generic.window_bins() + 4);
    assert!(silence_pages(sessions.as_ref(), 16, 8, 3.0));
    assert!(!silence_pages(generic.as_ref(), 16, 8, 3.0));
}

#[test]
fn the_sessions_rule_pages_a_night_gap_where_fifteen_were_due_and_not_an_empty_quiet_hour() {
    let generic = DetectorSpec::default_for(DetectorKind::Flatline).detector;
    let sessions = flatline_of("okta-sessions");
    assert_eq!(sessions.p_value(), Some(SESSIONS_SILENCE_P));
    // 45 minutes of nothing where 5 a bin were due (15 over the span, 9·10⁻⁷ at the
    // stream's level): the sessions' threshold pages it, the default does not.
    assert!(silence_pages(sessions.as_ref(), 16, 3, 5.0));
    assert!(!silence_pages(generic.as_ref(), 16, 3, 5.0));
    // An empty hour where one event was due, and an hour where eight were (hard
    // seed 75's Sunday night, one in 3·10³): ordinary.
    assert!(!silence_pages(sessions.as_ref(), 16, 4, 0.25));
    assert!(!silence_pages(sessions.as_ref(), 16, 4, 2.0));
}

#[test]
fn the_availability_rule_watches_the_sign_ins_in_5m_bins_for_losses_only() {
    let rules = RuleSpec::builtin();
    let (totals, fast) = (&rules[0], &rules[1]);
    assert_eq!(fast.name, "okta-availability");
    assert_eq!(fast.event_match(), totals.event_match());
    assert_eq!(fast.bin_ms() * 3, totals.bin_ms());
    assert_eq!(fast.baseline_window, totals.baseline_window);
    assert!(fast
        .insights_query()
        .contains("by bin(5m), detail.outcome.result"));
    let kinds: Vec<DetectorKind> = fast.detectors.iter().map(|d| d.detector.kind()).collect();
    assert_eq!(
        kinds,
        vec![DetectorKind::FailureRatio, DetectorKind::SuccessDrop]
    );
    // Two bad bins of three: ten minutes of 5-minute bins.
    for d in &fast.detectors {
        assert_eq!((d.fire.bins_to_fire, d.fire.bins_window), (2, 3));
    }
}

#[test]
fn the_push_rule_judges_55_minutes_of_5m_bins() {
    use crate::detect::test_support::{counts, ctx, expected};
    use crate::series::{BinRecord, History};
    let r = RuleSpec::mfa_push_fatigue();
    assert_eq!(r.bin, Duration::from_secs(5 * 60));
    let [d] = &r.detectors[..] else {
        panic!("one detector: {:?}", r.detectors)
    };
    let hour_of_bins = 3_600_000 / r.bin_ms();
    assert_eq!(i64::from(d.detector.window_bins()), hour_of_bins - 1);
    assert_eq!(i64::from(d.fire.bins_to_resolve), hour_of_bins);
    assert!(r.window_bins() as i64 >= hour_of_bins);
    // Two pushes, one denied, 50 minutes ago and again now: two denials within the
    // window page at the end of this 5-minute bin; 60 minutes ago is out of it.
    let judge = |back: i64| {
        let mut h = History::new(r.window_bins());
        let record = BinRecord::from_counts(counts(3, 2, 1), 100 - back, r.bin_ms());
        h.push(100 - back, record);
        for b in 100 - back + 1..100 {
            h.push(b, BinRecord::from_counts(counts(0, 0, 0), b, r.bin_ms()));
        }
        let mut c = ctx(&h, counts(3, 2, 1), Some(expected(0.0, 0.0, 0.0)));
        c.bin = 100;
        c.bin_ms = r.bin_ms();
        d.detector.evaluate(&c).is_some_and(|f| f.anomalous)
    };
    assert!(judge(10));
    assert!(!judge(12));
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
    // An approval counts, in the total only; a push sent counts as a success.
    let approved = Event::parse(approved).unwrap();
    assert!(push.matches(&approved));
    let m = push.event_match();
    assert_eq!(m.class(&approved), crate::series::OutcomeClass::Other);
    assert_eq!(
        m.class(&Event::parse(denial).unwrap()),
        crate::series::OutcomeClass::Failure
    );
    let sent = r#"{"eventType":"system.push.send_factor_verify_push","published":"2026-11-25T10:15:03Z","outcome":{"result":"SUCCESS"}}"#;
    assert_eq!(
        m.class(&Event::parse(sent).unwrap()),
        crate::series::OutcomeClass::Success
    );
    // The Logs Insights rows tell them apart by type.
    assert!(push
        .insights_query()
        .contains("by bin(5m), detail.outcome.result, detail.eventType, detail.actor.alternateId"));
    assert_eq!(
        push.class_of(Some(PUSH_ANSWER), "SUCCESS"),
        crate::series::OutcomeClass::Other
    );
    assert_eq!(
        push.class_of(Some(PUSH_ANSWER), "FAILURE"),
        crate::series::OutcomeClass::Failure
    );
    assert_eq!(
        push.class_of(None, "SUCCESS"),
        crate::series::OutcomeClass::Success
    );
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

/// Whether `okta-hostile-signals`, read with `windows`, pages a half-hour run of 6, 4
/// and 4 hostile events (one address each) in three bins after ten days of a flat
/// background of 0.625 a bin (the last bin before the run empty), judged at the run's third bin: the shape of hard seed 4's blocked
/// stuffing, whose four-bin window came to p 5.9·10⁻⁷ and its three bins to 5.1·10⁻⁸.
fn hostile_run_pages(windows: Option<&[u32]>) -> Option<u32> {
    use crate::detect::test_support::{counts, ctx, expected};
    use crate::series::{BinRecord, History};
    let mut r = RuleSpec::hostile_signals();
    if let Some(w) = windows {
        let mut problems = Problems::default();
        let table = serde_json::json!({
            "windows": w, "min_count": 10, "window_min_ratio": 3.0,
            "spread_over_users": false, "spread_over_sources": true, "pooled_rate": true,
        });
        let mut t = Table::new("", Some(&table), &mut problems);
        r.detectors = vec![DetectorSpec::read(
            DetectorKind::FailureSpike,
            &mut t,
            &mut problems,
        )];
    }
    let record = |b: i64, n: u32| {
        let mut c = counts(n.into(), 0, n.into());
        c.failed_ips = n.into();
        let mut rec = BinRecord::from_counts(c, b, 900_000);
        rec.expected_failure = 0.625;
        rec
    };
    let start = 10 * 96;
    let mut h = History::new(14 * 96);
    for b in 0..start {
        // Three events in one hour and two in the next, every day alike: as flat a
        // rate over the hours as the pooled rate can tell.
        h.push(b, record(b, [1, 1, 0, 1, 0, 1, 1, 0][(b % 8) as usize]));
    }
    h.push(start, record(start, 6));
    h.push(start + 1, record(start + 1, 4));
    let mut c = counts(4, 0, 4);
    c.failed_ips = 4;
    let mut cx = ctx(&h, c, Some(expected(0.625, 0.0, 0.625)));
    cx.bin = start + 2;
    let f = r.detectors[0].detector.evaluate(&cx).unwrap();
    f.anomalous.then_some(f.window_bins)
}

#[test]
fn a_half_hour_run_across_three_bins_pages_the_signal_rules() {
    assert_eq!(SIGNAL_WINDOWS, [1, 2, 3, 4, 8, 16]);
    // The built-in windows catch it over its three bins.
    assert_eq!(hostile_run_pages(None), Some(3));
    // Without the three-bin window, the two bins miss a third of it and the four add a
    // bin of background: no page.
    assert_eq!(hostile_run_pages(Some(&[1, 2, 4, 8, 16])), None);
}

#[test]
fn the_retry_wave_stage_knows_the_rules_over_every_sign_in_and_the_source_rule() {
    let rules = RuleSpec::builtin();
    let every: Vec<&str> = rules
        .iter()
        .filter(|r| r.counts_every_sign_in())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(every, ["okta-sign-ins", "okta-availability"]);
    let source: Vec<&str> = rules
        .iter()
        .filter(|r| r.splits_by_source())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(source, ["password-spraying"]);
    // The rules over every sign-in come first: their pages wait for the source rule.
    let at = |name: &str| rules.iter().position(|r| r.name == name);
    assert!(at("okta-availability") < at("password-spraying"));
}
