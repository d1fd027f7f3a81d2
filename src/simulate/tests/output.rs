//! The output is valid JSON lines, sorted, deterministic and escaped; bad configs are
//! refused.

use std::collections::HashSet;
use std::io;

use chrono::Duration;
use proptest::prelude::*;

use super::*;

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = SimConfig::with_default_incidents(42, monday(), 9, 60, Difficulty::Hard);
    let a = run(cfg.clone());
    let b = run(cfg.clone());
    assert!(a.stats.events > 1000);
    assert_eq!(a.events, b.events);
    assert_eq!(a.labels, b.labels);
    let c = run(SimConfig { seed: 43, ..cfg });
    assert_ne!(a.events, c.events);
}

#[test]
fn lines_are_valid_sorted_and_realistically_sized() {
    let (r, rows) = easy();
    assert!(rows.len() > 20_000, "{}", rows.len());
    let mean = r.events.len() / rows.len();
    assert!((900..1600).contains(&mean), "mean line {mean} bytes");
    let kinds: HashSet<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    // Every type, ThreatInsight's blocks too: it blocks some background bots.
    assert_eq!(kinds.len(), EVENT_TYPES.len(), "{kinds:?}");
}

#[test]
fn labels_round_trip() {
    let (r, _) = easy();
    let text = std::str::from_utf8(&r.labels).unwrap();
    let parsed: Vec<Incident> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, r.cfg.incidents);
    assert_eq!(r.stats.incidents, parsed.len());
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(IncidentKind::ALL
        .iter()
        .any(|k| first["kind"] == k.as_str()));
    for k in IncidentKind::ALL {
        assert_eq!(k.to_string().parse::<IncidentKind>(), Ok(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
}

#[test]
fn tenant_is_escaped() {
    let mut cfg = SimConfig::with_default_incidents(1, monday(), 1, 5, Difficulty::Easy);
    cfg.tenant = "we\"ird\\tenant\n".to_string();
    let r = run(cfg);
    let line = std::str::from_utf8(&r.events)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        v["source"],
        "aws.partner/okta.com/we\"ird\\tenant\n/okta-logs"
    );
}

#[test]
fn bad_configs_are_rejected() {
    let cfg = SimConfig::with_default_incidents(1, monday(), 1, 5, Difficulty::Easy);
    let err = |cfg: &SimConfig| {
        generate(cfg, &mut io::sink(), &mut io::sink())
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        err(&SimConfig {
            users: 0,
            ..cfg.clone()
        }),
        io::ErrorKind::InvalidInput
    );
    let backwards = Incident {
        kind: IncidentKind::Outage,
        start: monday() + Duration::hours(2),
        end: monday() + Duration::hours(1),
        expect_page: true,
        class: None,
        note: String::new(),
    };
    let cfg = SimConfig {
        incidents: vec![backwards],
        ..cfg
    };
    assert_eq!(err(&cfg), io::ErrorKind::InvalidInput);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_small_config_gives_valid_sorted_output(
        seed in any::<u64>(),
        days in 0u32..3,
        users in 1u32..30,
        hard in any::<bool>(),
        offset_min in 0i64..1440,
    ) {
        let difficulty = if hard { Difficulty::Hard } else { Difficulty::Easy };
        let start = monday() + Duration::minutes(offset_min) + Duration::milliseconds(seed as i64 % 1000);
        let r = run(SimConfig::with_default_incidents(seed, start, days, users, difficulty));
        let rows = rows(&r);
        let end = start + Duration::days(i64::from(days));
        prop_assert!(rows.iter().all(|row| row.t >= start && row.t < end));
        prop_assert_eq!(std::str::from_utf8(&r.labels).unwrap().lines().count(), r.cfg.incidents.len());
    }
}
