//! Every incident kind is scheduled and visible in its window, and leaves the rest of
//! the traffic alone.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use super::*;

#[test]
fn default_schedule_has_every_kind_after_the_warm_up() {
    let cfg = &easy().0.cfg;
    let kinds: HashSet<IncidentKind> = cfg.incidents.iter().map(|i| i.kind).collect();
    // The easy setting has the first eight kinds; the hard one adds the rest.
    assert_eq!(kinds.len(), 8);
    assert!(kinds.iter().all(|k| IncidentKind::ALL[..8].contains(k)));
    let clean_until = cfg.start + Duration::days(7);
    let end = cfg.start + Duration::days(14);
    for (i, inc) in cfg.incidents.iter().enumerate() {
        assert!(inc.start >= clean_until && inc.end <= end && inc.start < inc.end);
        assert_eq!(inc.expect_page, !inc.kind.as_str().starts_with("benign"));
        assert!(!inc.note.is_empty());
        if let Some(next) = cfg.incidents.get(i + 1) {
            assert!(inc.end <= next.start, "{inc:?} overlaps {next:?}");
        }
        if matches!(
            inc.kind,
            IncidentKind::Outage | IncidentKind::PipelineGap | IncidentKind::BenignBlip
        ) {
            let local = new_york(inc.start);
            assert!(local.weekday().number_from_monday() <= 5, "{inc:?}");
            assert!((9..17).contains(&local.hour()), "{inc:?}");
        }
    }
}

#[test]
fn credential_stuffing_comes_from_many_ips() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::CredentialStuffing);
    let (now, before) = window_and_before(rows, inc, 7);
    let failing_ips = |rows: &[&Row]| -> usize {
        rows.iter()
            .filter(|r| r.is_start() && !r.success)
            .map(|r| &r.ip)
            .collect::<HashSet<_>>()
            .len()
    };
    let (ips_now, ips_before) = (failing_ips(&now), failing_ips(&before));
    assert!(
        ips_now > 100 && ips_now > 10 * ips_before,
        "{ips_now} vs {ips_before}"
    );
    let unknown = now
        .iter()
        .filter(|r| r.is_start() && !r.login.ends_with("@example.com"))
        .count();
    assert!(unknown > 100, "{unknown} unknown-user attempts");
}

#[test]
fn password_spraying_hits_many_users_from_few_ips() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::PasswordSpraying);
    let (now, _) = window_and_before(rows, inc, 7);
    let mut users_by_ip: HashMap<&str, HashSet<&str>> = HashMap::new();
    for row in now.iter().filter(|r| r.is_start() && !r.success) {
        users_by_ip.entry(&row.ip).or_default().insert(&row.login);
    }
    let mut sizes: Vec<usize> = users_by_ip.values().map(HashSet::len).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let top5: usize = sizes.iter().take(5).sum();
    assert!(top5 >= 150, "top five IPs reach {top5} users: {sizes:?}");
    let failures = now.iter().filter(|r| r.is_start() && !r.success).count();
    assert!(failures < 3 * top5, "one or two attempts per user");
}

#[test]
fn push_fatigue_floods_pushes_and_denies() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::MfaPushFatigue);
    let (now, before) = window_and_before(rows, inc, 7);
    let count = |rows: &[&Row], kind: &str| rows.iter().filter(|r| r.kind == kind).count();
    let deny = "user.mfa.okta_verify.deny_push";
    assert!(count(&now, deny) >= 10, "{} denies", count(&now, deny));
    assert!(count(&before, deny) <= 1);
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for row in now
        .iter()
        .filter(|r| r.kind == "system.push.send_factor_verify_push")
    {
        *per_user.entry(&row.login).or_default() += 1;
    }
    assert!(per_user.values().any(|&n| n >= 10), "{per_user:?}");
}

#[test]
fn outage_collapses_successes() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::Outage);
    let (now, before) = window_and_before(rows, inc, 7);
    let expected = expected_flows(&r.cfg, inc.start, inc.end);
    assert!(expected > 40.0, "{expected}");
    assert!(successes(&before) > 0.6 * expected);
    assert!(
        successes(&now) < 0.35 * expected,
        "{} vs {expected}",
        successes(&now)
    );
}

#[test]
fn pipeline_gap_has_no_events() {
    let (r, rows) = easy();
    let inc = incident(r, IncidentKind::PipelineGap);
    let (now, before) = window_and_before(rows, inc, 7);
    assert!(now.is_empty());
    assert!(before.len() > 50);
}

#[test]
fn benign_incidents_look_benign() {
    let (r, rows) = easy();
    let share = |rows: &[&Row]| {
        let starts = rows.iter().filter(|r| r.is_start()).count() as f64;
        rows.iter().filter(|r| r.is_start() && !r.success).count() as f64 / starts
    };

    let surge = incident(r, IncidentKind::BenignSurge);
    let (now, _) = window_and_before(rows, surge, 7);
    let ratio = flows(&now) / expected_flows(&r.cfg, surge.start, surge.end);
    assert!((1.3..2.4).contains(&ratio), "surge volume x{ratio:.2}");
    assert!(share(&now) < 0.1, "surge failure share {}", share(&now));

    let holiday = incident(r, IncidentKind::BenignHoliday);
    let (now, _) = window_and_before(rows, holiday, 7);
    let ratio = flows(&now) / expected_flows(&r.cfg, holiday.start, holiday.end);
    assert!((0.08..0.35).contains(&ratio), "holiday volume x{ratio:.2}");

    let blip = incident(r, IncidentKind::BenignBlip);
    let (now, _) = window_and_before(rows, blip, 7);
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for row in now.iter().filter(|r| r.is_start() && !r.success) {
        *per_user.entry(&row.login).or_default() += 1;
    }
    let (worst, _) = per_user.iter().max_by_key(|(_, n)| **n).unwrap();
    let theirs: Vec<&&Row> = now
        .iter()
        .filter(|r| r.login == *worst && !r.success)
        .collect();
    assert!((10..=20).contains(&theirs.len()), "{}", theirs.len());
    assert!(theirs.iter().map(|r| &r.ip).collect::<HashSet<_>>().len() == 1);
    // Okta locks the account after ten failures.
    let locked = theirs
        .iter()
        .filter(|r| r.reason.as_deref() == Some("LOCKED_OUT"))
        .count();
    assert!(
        locked <= 10 && (theirs.len() <= 11 || locked > 0),
        "{locked} of {}",
        theirs.len()
    );
}

#[test]
fn hard_attacks_stay_close_to_the_noise() {
    let r = run(SimConfig::with_default_incidents(
        7,
        monday(),
        14,
        300,
        Difficulty::Hard,
    ));
    let rows = rows(&r);
    let failures = |rows: &[&Row]| rows.iter().filter(|r| r.is_start() && !r.success).count();
    let stuffing = incident(&r, IncidentKind::CredentialStuffing);
    let (now, _) = window_and_before(&rows, stuffing, 7);
    let easy_stuffing = incident(&easy().0, IncidentKind::CredentialStuffing);
    let (easy_now, _) = window_and_before(&easy().1, easy_stuffing, 7);
    assert!(failures(&now) > 0);
    assert!(
        failures(&now) * 20 < failures(&easy_now),
        "{}",
        failures(&now)
    );

    let outage = incident(&r, IncidentKind::Outage);
    let (now, _) = window_and_before(&rows, outage, 7);
    let kept = successes(&now) / expected_flows(&r.cfg, outage.start, outage.end);
    assert!(
        (0.25..0.75).contains(&kept),
        "hard outage keeps {kept:.2} of successes"
    );

    let spraying = incident(&r, IncidentKind::PasswordSpraying);
    let hours = (spraying.end - spraying.start).num_minutes() as f64 / 60.0;
    assert!(hours >= 4.0);
    let (now, _) = window_and_before(&rows, spraying, 7);
    assert!((failures(&now) as f64 / hours) < 40.0, "{}", failures(&now));
}

#[test]
fn incidents_leave_the_background_alone() {
    // Adding an attack changes nothing outside its window.
    let mut cfg = SimConfig::with_default_incidents(5, monday(), 3, 40, Difficulty::Easy);
    let start = cfg.start + Duration::hours(36);
    cfg.incidents = vec![Incident {
        kind: IncidentKind::CredentialStuffing,
        start,
        end: start + Duration::minutes(30),
        expect_page: true,
        class: None,
        note: String::new(),
    }];
    let with = run(cfg.clone());
    cfg.incidents.clear();
    let without = run(cfg);
    let outside = |r: &Run| -> Vec<String> {
        std::str::from_utf8(&r.events)
            .unwrap()
            .lines()
            .filter(|l| {
                let t = check_line(l).t;
                t < start || t >= start + Duration::minutes(35)
            })
            .map(str::to_string)
            .collect()
    };
    assert!(with.stats.events > without.stats.events + 100);
    assert_eq!(outside(&with), outside(&without));
}

#[test]
fn hard_schedule_has_every_kind_and_labels_the_dst_morning() {
    // Four weeks from Monday 2026-10-19: the US clocks change on Sunday 1 November.
    let start = DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let cfg = SimConfig::with_default_incidents(3, start, 28, 300, Difficulty::Hard);
    let kinds: HashSet<IncidentKind> = cfg.incidents.iter().map(|i| i.kind).collect();
    assert_eq!(kinds.len(), IncidentKind::ALL.len(), "{kinds:?}");
    let dst = incident_of(&cfg, IncidentKind::BenignDst);
    // Monday 2 November, 06:00 in New York, now on standard time (UTC-5).
    assert_eq!(dst.start.to_rfc3339(), "2026-11-02T11:00:00+00:00");
    assert!(!dst.expect_page);
    for (i, inc) in cfg.incidents.iter().enumerate() {
        assert_eq!(inc.expect_page, inc.kind.alert_kind().is_some());
        if let Some(next) = cfg.incidents.get(i + 1) {
            assert!(inc.end <= next.start, "{inc:?} overlaps {next:?}");
        }
    }
    for (kind, lo, hi) in [
        (IncidentKind::ShortGapPeak, 35, 55),
        (IncidentKind::ShortGapNight, 35, 55),
        (IncidentKind::DistributedSpraying, 180, 240),
        (IncidentKind::QuietStuffing, 75, 105),
    ] {
        let inc = incident_of(&cfg, kind);
        let minutes = (inc.end - inc.start).num_minutes();
        assert!((lo..=hi).contains(&minutes), "{inc:?}");
    }
}

fn incident_of(cfg: &SimConfig, kind: IncidentKind) -> Incident {
    cfg.incidents
        .iter()
        .find(|i| i.kind == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn hard_traffic_speaks_okta_signals() {
    // Unknown usernames, ThreatInsight flags and blocks, OIE push denials, as Okta
    // writes them.
    let start = DateTime::parse_from_rfc3339("2026-10-19T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut cfg = SimConfig::with_default_incidents(3, start, 28, 300, Difficulty::Hard);
    cfg.incidents.retain(|i| {
        matches!(
            i.kind,
            IncidentKind::BlockedStuffing | IncidentKind::OiePushFatigue
        )
    });
    let first = cfg.incidents.iter().map(|i| i.start).min().unwrap();
    let last = cfg.incidents.iter().map(|i| i.end).max().unwrap();
    cfg.start = first - Duration::hours(1);
    cfg.days = 1 + ((last - cfg.start).num_hours() / 24) as u32;
    let r = run(cfg);
    let text = String::from_utf8(r.events.clone()).unwrap();
    let mut blocked = 0;
    let mut oie_denials = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let d = &v["detail"];
        if d["eventType"] == "security.threat.detected" {
            blocked += 1;
            assert_eq!(d["outcome"]["result"], "DENY");
            assert_eq!(d["actor"]["id"], "unknown");
            assert_eq!(d["debugContext"]["debugData"]["threatSuspected"], "true");
        }
        if d["eventType"] == "user.authentication.auth_via_mfa"
            && d["outcome"]["reason"] == "INVALID_CREDENTIALS"
        {
            oie_denials += 1;
        }
    }
    assert!(blocked > 0 && oie_denials > 0, "{blocked} {oie_denials}");
}
