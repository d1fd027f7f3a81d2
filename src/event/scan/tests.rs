//! The scanner against the serde path: whatever the scan reads, serde reads the same.

use super::*;
use proptest::prelude::*;

/// Real shapes (the fixtures of the input contract) and the simulator's events.
fn samples() -> Vec<String> {
    let fixtures = [
        include_str!("../../../tests/fixtures/okta/eventbridge.ndjson"),
        include_str!("../../../tests/fixtures/okta/quirks.ndjson"),
        include_str!("../../../tests/fixtures/okta/cloudwatch-export.ndjson"),
    ];
    let mut out: Vec<String> = fixtures
        .iter()
        .flat_map(|f| f.lines().map(String::from))
        .collect();
    for page in [
        include_str!("../../../tests/fixtures/okta/api-page.json"),
        include_str!("../../../tests/fixtures/okta/api-page-compact.json"),
    ] {
        let events: Vec<serde_json::Value> = serde_json::from_str(page).unwrap();
        out.extend(events.iter().map(|e| e.to_string()));
        out.extend(
            events
                .iter()
                .map(|e| serde_json::to_string_pretty(e).unwrap()),
        );
    }
    out
}

/// The promise: whatever the scan reads, serde reads the same.
fn agrees(text: &str) -> Result<(), TestCaseError> {
    if let Some(fast) = event(text) {
        prop_assert_eq!(Ok(fast), super::super::raw::parse(text), "{}", text);
    }
    Ok(())
}

#[test]
fn the_common_shapes_take_the_fast_path_and_read_the_same() {
    let mut fast = 0;
    for line in samples() {
        agrees(&line).unwrap();
        fast += usize::from(event(&line).is_some());
    }
    // Everything but the CloudWatch export lines (`@message`) and the one line whose
    // kept field has an escape.
    assert!(fast >= 10, "{fast} of the samples took the fast path");
    let mut events = Vec::new();
    let start = "2026-11-02T00:00:00Z".parse().unwrap();
    let cfg = crate::simulate::SimConfig::with_default_incidents(
        3,
        start,
        2,
        30,
        crate::simulate::Difficulty::Easy,
    );
    crate::simulate::generate(&cfg, &mut events, &mut std::io::sink()).unwrap();
    let text = String::from_utf8(events).unwrap();
    for line in text.lines() {
        assert!(event(line).is_some(), "not on the fast path: {line}");
        agrees(line).unwrap();
    }
}

#[test]
fn doubtful_input_is_left_to_serde() {
    let base = r#"{"eventType":"x","published":"2026-11-25T10:15:03Z""#;
    for tail in [
        r#","client":{"ipAddress":"a\"b"}}"#, // an escape in a kept field
        r#","outcome":{"result":5}}"#,        // a kept field of another type
        r#","ev\u0065ntType":"y"}"#,          // an escaped key
        r#","x":[1,2,]}"#,                    // broken JSON in a skipped value
        r#","x":01}"#,
        r#","x":"tab	in a string"}"#,
        r#","x":"\q"}"#,
        r#"} x"#,
        r#","detail":{"eventType":"y","detail":{}}}"#,
        r#","@message":"{}"}"#,
    ] {
        let text = format!("{base}{tail}");
        assert!(event(&text).is_none(), "{text}");
    }
    assert!(event(r#"{"eventType":"x"}"#).is_none(), "no timestamp");
    assert!(event(r#"{"a":1}"#).is_none(), "not an event");
    assert!(event("[1]").is_none());
}

#[test]
fn last_value_wins_as_with_serde() {
    for text in [
        r#"{"eventType":"a","eventType":"b","published":"2026-11-25T10:15:03Z"}"#,
        r#"{"eventType":"a","published":"2026-11-25T10:15:03Z","client":{"ipAddress":"1.2.3.4"},"client":{"zone":"x"}}"#,
        r#"{"detail":{"eventType":"a"},"detail":null,"eventType":"b","time":"2026-11-25T10:15:03Z"}"#,
        r#"{"time":"2026-11-25T10:15:03Z","detail":{"eventType":"a","debugContext":{"debugData":{"threatSuspected":true}}}}"#,
        r#"{"eventType":"a","published":"2026-11-25T10:15:03Z","@message":null,"outcome":null}"#,
    ] {
        assert!(event(text).is_some(), "{text}");
        agrees(text).unwrap();
    }
}

fn mutated() -> impl Strategy<Value = String> {
    let samples = samples();
    let n = samples.len();
    (
        0..n,
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                prop::sample::select(b"{}[]\",:\\ 0123456789.eE+-ntfaluxr/\x01".to_vec()),
            ),
            1..4,
        ),
    )
        .prop_map(move |(i, edits)| {
            let mut b = samples[i].clone().into_bytes();
            for (at, op, c) in edits {
                let at = at.index(b.len() + 1);
                match op {
                    0 => b.insert(at, c),
                    1 if at < b.len() => {
                        b.remove(at);
                    }
                    _ if at < b.len() => b[at] = c,
                    _ => {}
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        })
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("user.session.start".to_string()),
            Just("2026-11-25T10:15:03Z".to_string()),
            Just("null".to_string()),
            "[a-z .:\"\\\\-]{0,12}".prop_map(String::from),
        ]
        .prop_map(Value::String),
    ];
    let keys = prop::sample::select(vec![
        "eventType",
        "published",
        "detail",
        "time",
        "outcome",
        "result",
        "reason",
        "client",
        "ipAddress",
        "geographicalContext",
        "country",
        "userAgent",
        "browser",
        "actor",
        "alternateId",
        "id",
        "debugContext",
        "debugData",
        "threatSuspected",
        "uuid",
        "@message",
        "x",
    ])
    .prop_map(String::from);
    leaf.prop_recursive(5, 60, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_real_events_read_the_same_or_go_to_serde(text in mutated()) {
        agrees(&text)?;
    }

    #[test]
    fn json_of_any_shape_reads_the_same_or_goes_to_serde(v in arb_json()) {
        agrees(&v.to_string())?;
        agrees(&serde_json::to_string_pretty(&v).unwrap())?;
    }

    #[test]
    fn any_text_reads_the_same_or_goes_to_serde(s in "[{}\\[\\]\",: a-z0-9\\\\.-]{0,120}") {
        agrees(&s)?;
    }
}

/// The word test finds exactly the first quote, backslash or control byte, whatever
/// surrounds it (ASCII, UTF-8 continuation bytes, DEL, the bytes next to `"`).
#[test]
fn specials_find_the_first_quote_backslash_or_control_byte() {
    let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    for fill in [b'a', b' ', b'!', b'#', b']', 0x7f, 0x80, 0xc3, 0xff] {
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut w = [fill; 8];
                w[pos] = b;
                // A second special after the first must not move it.
                if pos < 7 {
                    w[7] = b'"';
                }
                let first = w.iter().position(|&c| special(c));
                let hits = specials(u64::from_le_bytes(w));
                match first {
                    Some(i) => assert_eq!(hits.trailing_zeros() / 8, i as u32, "{w:?}"),
                    None => assert_eq!(hits, 0, "{w:?}"),
                }
            }
        }
    }
}
