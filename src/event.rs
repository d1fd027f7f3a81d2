//! Parsing one Okta event into the few fields authpulse needs.
//!
//! An event arrives in one of three wrappings, and all three are accepted:
//!
//! 1. an EventBridge envelope, whose `detail` is the Okta System Log event
//!    (what the EventBridge rule writes into CloudWatch Logs);
//! 2. a bare Okta System Log event (what Okta's own API returns);
//! 3. a CloudWatch export line that wraps one of the above as a string in `@message`.
//!
//! Only JSON objects are events (never a sequence, as serde's derived structs would also
//! read), and every error names the field it is about and the type that was expected.
//! Whether a line holds one event or an array of them is
//! decided before this (by the file readers in `source/replay/`).
//!
//! Parsing borrows from the line wherever the JSON string needs no unescaping, so a
//! backtest over gigabytes allocates almost nothing per event. Two parsers share the
//! work: [`scan`], a one-pass scanner for the common shape that allocates nothing, and
//! [`raw`], serde's, for every other shape and every error message.

use std::borrow::Cow;

mod raw;
mod scan;
mod time;

pub use time::parse_rfc3339_ms;

/// The Okta fields a rule can count or split by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event<'a> {
    /// `published`, in milliseconds since the Unix epoch (UTC).
    pub published_ms: i64,
    pub event_type: Cow<'a, str>,
    /// `outcome.result`: SUCCESS, FAILURE, SKIPPED, ALLOW, DENY, CHALLENGE, UNKNOWN.
    pub result: Cow<'a, str>,
    pub reason: Option<Cow<'a, str>>,
    /// `client.ipAddress`; `null`, `"null"` and `""` are an unknown source (`None`).
    pub ip: Option<Cow<'a, str>>,
    pub user: Option<Cow<'a, str>>,
    pub country: Option<Cow<'a, str>>,
    pub browser: Option<Cow<'a, str>>,
    /// Okta's event id: the same event delivered twice has the same `uuid`.
    pub uuid: Option<Cow<'a, str>>,
    /// `actor.id`: Okta's user id, or `unknown` when the username typed could not be
    /// resolved to a user (a typo, or a name from another breach's combo list; the
    /// typed string is then in `actor.alternateId`) and on ThreatInsight's
    /// `security.threat.detected`, which is decided before the username is read.
    pub actor_id: Option<Cow<'a, str>>,
    /// `debugContext.debugData.threatSuspected`: `"true"` when Okta ThreatInsight
    /// suspects the request's address (Okta's ThreatInsight System Log help: the field
    /// appears in `user.session.start` and `security.threat.detected`).
    pub threat_suspected: Option<Cow<'a, str>>,
}

/// Whether a `threatSuspected` value is ThreatInsight's flag: `"true"` as Okta writes it
/// (a JSON boolean reads the same; the query's columns hold it as text).
pub fn threat_flagged(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// Why a piece of input was not an event. Counted in summaries, logged at a limited rate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not JSON at all (a syntax error or a truncated value).
    #[error("not valid JSON: {0}")]
    Json(String),
    /// Valid JSON, but a field holds the wrong type; the message names the field.
    #[error("{0}")]
    Field(String),
    #[error("no Okta event found (expected `detail`, `eventType` or `@message`)")]
    NotAnEvent,
    #[error("event has no `eventType`")]
    NoEventType,
    #[error("event has no usable timestamp (`published` or envelope `time`): {0:?}")]
    BadTimestamp(String),
}

/// The fields a rule may name in its `filter` table, as Okta paths (without `detail.`).
pub const FILTER_FIELDS: &[&str] = &[
    "actor.id",
    "debugContext.debugData.threatSuspected",
    "outcome.result",
    "outcome.reason",
    "client.ipAddress",
    "actor.alternateId",
    "client.geographicalContext.country",
    "client.userAgent.browser",
];

/// The fields a rule may name in `split_by`, as Okta paths (without `detail.`).
pub const SPLIT_FIELDS: &[&str] = &[
    "client.ipAddress",
    "actor.alternateId",
    "client.geographicalContext.country",
    "client.userAgent.browser",
    "outcome.reason",
];

impl<'a> Event<'a> {
    /// The value of a `split_by` field (one of [`SPLIT_FIELDS`]).
    pub fn field(&self, path: &str) -> Option<&str> {
        match path {
            "client.ipAddress" => self.ip.as_deref(),
            "actor.alternateId" => self.user.as_deref(),
            "client.geographicalContext.country" => self.country.as_deref(),
            "client.userAgent.browser" => self.browser.as_deref(),
            "outcome.reason" => self.reason.as_deref(),
            "outcome.result" => Some(&self.result),
            "actor.id" => self.actor_id.as_deref(),
            "debugContext.debugData.threatSuspected" => self.threat_suspected.as_deref(),
            _ => None,
        }
    }

    /// Parse one event (a JSON object in any of the three wrappings): the fast scan
    /// ([`scan`]) for the common shape, the serde path ([`raw`]) for anything else and
    /// for every error, so the two agree on what they both read.
    pub fn parse(text: &'a str) -> Result<Event<'a>, ParseError> {
        match scan::event(text) {
            Some(event) => Ok(event),
            None => raw::parse(text),
        }
    }

    pub fn into_owned(self) -> Event<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        Event {
            published_ms: self.published_ms,
            event_type: own(self.event_type),
            result: own(self.result),
            reason: self.reason.map(own),
            ip: self.ip.map(own),
            user: self.user.map(own),
            country: self.country.map(own),
            browser: self.browser.map(own),
            uuid: self.uuid.map(own),
            actor_id: self.actor_id.map(own),
            threat_suspected: self.threat_suspected.map(own),
        }
    }
}

/// Okta writes `null` where a value is unknown, and some exports turn that into the
/// string `"null"` (or leave it empty): all three are "unknown".
fn known(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("null"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OKTA: &str = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03.123Z","outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"},"actor":{"alternateId":"alice@example.com","type":"User"},"client":{"ipAddress":"203.0.113.5","geographicalContext":{"country":"United States"},"userAgent":{"browser":"CHROME"}},"target":[{"id":"x"}]}"#;

    fn expected() -> Event<'static> {
        Event {
            published_ms: 1_795_601_703_123,
            event_type: "user.session.start".into(),
            result: "FAILURE".into(),
            reason: Some("INVALID_CREDENTIALS".into()),
            ip: Some("203.0.113.5".into()),
            user: Some("alice@example.com".into()),
            country: Some("United States".into()),
            browser: Some("CHROME".into()),
            uuid: None,
            actor_id: None,
            threat_suspected: None,
        }
    }

    #[test]
    fn bare_okta_event() {
        assert_eq!(Event::parse(OKTA).unwrap(), expected());
    }

    #[test]
    fn eventbridge_envelope() {
        let line = format!(
            r#"{{"version":"0","id":"1","detail-type":"SystemLog","source":"aws.partner/okta.com/acme/x","time":"2026-11-25T10:15:03Z","detail":{OKTA}}}"#
        );
        assert_eq!(Event::parse(&line).unwrap(), expected());
    }

    #[test]
    fn cloudwatch_export_wraps_envelope_in_message() {
        let envelope = format!(r#"{{"version":"0","detail":{OKTA}}}"#);
        let line =
            serde_json::json!({"@timestamp": "2026-11-25 10:15:03.000", "@message": envelope})
                .to_string();
        assert_eq!(Event::parse(&line).unwrap(), expected());
    }

    #[test]
    fn envelope_time_used_when_published_missing() {
        let line = r#"{"time":"2026-11-25T10:15:03Z","detail":{"eventType":"user.session.start"}}"#;
        let e = Event::parse(line).unwrap();
        assert_eq!(e.published_ms, 1_795_601_703_000);
        assert_eq!(e.result, "UNKNOWN");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert!(matches!(Event::parse("{"), Err(ParseError::Json(_))));
        assert!(matches!(Event::parse("[1,2]"), Err(ParseError::Field(_))));
        assert_eq!(Event::parse(r#"{"a":1}"#), Err(ParseError::NotAnEvent));
        assert_eq!(
            Event::parse(r#"{"detail":{"published":"2026-11-25T10:15:03Z"}}"#),
            Err(ParseError::NoEventType)
        );
        assert!(matches!(
            Event::parse(r#"{"eventType":"x","published":"yesterday"}"#),
            Err(ParseError::BadTimestamp(_))
        ));
        assert!(matches!(
            Event::parse(
                r#"{"eventType":"x","outcome":"weird","published":"2026-11-25T10:15:03Z"}"#
            ),
            Err(ParseError::Field(_))
        ));
    }

    fn field_error(line: &str) -> String {
        match Event::parse(line) {
            Err(ParseError::Field(m)) => m,
            other => panic!("expected a field error for {line}, got {other:?}"),
        }
    }

    #[test]
    fn a_sequence_is_never_read_as_an_event() {
        let m = field_error(r#"[null,null,null,"user.session.start","2020-01-01T00:00:00Z"]"#);
        assert_eq!(
            m,
            "invalid type: sequence, expected an Okta event (a JSON object)"
        );
        let m = field_error(r#"{"detail":[null,"user.session.start"]}"#);
        assert!(m.starts_with("`detail`: invalid type: sequence"), "{m}");
        let m = field_error(
            r#"{"eventType":"x","published":"2026-11-25T10:15:03Z","outcome":["SUCCESS"]}"#,
        );
        assert!(
            m.starts_with("`outcome`: invalid type: sequence, expected an object"),
            "{m}"
        );
    }

    #[test]
    fn wrong_types_name_the_field_and_the_expected_type() {
        let m = field_error(
            r#"{"eventType":"x","published":"2026-11-25T10:15:03Z","client":{"ipAddress":5}}"#,
        );
        assert_eq!(
            m,
            "`client.ipAddress`: invalid type: integer `5`, expected a string or null"
        );
        let m = field_error(r#"{"detail":{"eventType":"x","outcome":{"result":true}}}"#);
        assert_eq!(
            m,
            "`detail.outcome.result`: invalid type: boolean `true`, expected a string or null"
        );
        let m = field_error(r#"{"eventType":"x","outcome":"weird"}"#);
        assert!(!m.contains("Raw"), "no internal type names: {m}");
        assert!(
            m.contains("`outcome`") && m.contains("expected an object"),
            "{m}"
        );
        let line = serde_json::json!({"@message": r#"{"eventType":7}"#}).to_string();
        let m = field_error(&line);
        assert!(
            m.starts_with("in `@message`: `eventType`: invalid type: integer `7`"),
            "{m}"
        );
        // Broken JSON is still called that.
        assert!(matches!(
            Event::parse(r#"{"eventType":"#),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn null_addresses_are_an_unknown_source() {
        for ip in ["null", "\"null\"", "\"\"", "\"NULL\""] {
            let line = format!(
                r#"{{"eventType":"x","published":"2026-11-25T10:15:03Z","client":{{"ipAddress":{ip},"geographicalContext":{{"country":"null"}},"zone":"null"}}}}"#
            );
            let e = Event::parse(&line).unwrap();
            assert_eq!((e.ip, e.country), (None, None), "{line}");
        }
    }

    #[test]
    fn uuid_is_read() {
        let e = Event::parse(r#"{"eventType":"x","published":"2026-11-25T10:15:03Z","uuid":"5b1f0b1e-6c1e-11ee-8c99-0242ac120002"}"#).unwrap();
        assert_eq!(
            e.uuid.as_deref(),
            Some("5b1f0b1e-6c1e-11ee-8c99-0242ac120002")
        );
    }

    #[test]
    fn space_separated_timestamps_without_a_zone_are_utc() {
        assert_eq!(
            parse_rfc3339_ms("2022-03-22 14:21:53.225"),
            Some(1_647_958_913_225)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-03-22T14:21:53.225Z"),
            Some(1_647_958_913_225)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-03-22 14:21:53"),
            Some(1_647_958_913_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-03-22T14:21:53.22Z"),
            Some(1_647_958_913_220)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-03-22T15:21:53.225+0100"),
            Some(1_647_958_913_225)
        );
        assert_eq!(parse_rfc3339_ms("2022-03-22T14:21:53.Z"), None);
        assert_eq!(parse_rfc3339_ms("2022-03-22T14:21:53.225+25:00"), None);
        let line = r#"{"eventType":"x","published":"2022-03-22 14:21:53.225"}"#;
        assert_eq!(Event::parse(line).unwrap().published_ms, 1_647_958_913_225);
    }

    #[test]
    fn offsets_and_precisions_use_the_slow_path() {
        assert_eq!(
            parse_rfc3339_ms("2026-11-25T11:15:03.123+01:00"),
            Some(1_795_601_703_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-25T10:15:03.123456Z"),
            Some(1_795_601_703_123)
        );
        assert_eq!(parse_rfc3339_ms("2026-13-25T10:15:03Z"), None);
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            prop_oneof![
                Just("user.session.start".to_string()),
                Just("2026-11-25T10:15:03Z".to_string()),
                "[a-z .:-]{0,12}".prop_map(String::from),
            ]
            .prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("eventType".to_string()),
            Just("published".to_string()),
            Just("detail".to_string()),
            Just("outcome".to_string()),
            Just("result".to_string()),
            Just("client".to_string()),
            Just("ipAddress".to_string()),
            Just("@message".to_string()),
            Just("uuid".to_string()),
            "[a-z]{1,5}".prop_map(String::from),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(keys.clone(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn fast_path_agrees_with_chrono(secs in 0i64..4_102_444_800, ms in 0i64..1000) {
            let t = chrono::DateTime::from_timestamp_millis(secs * 1000 + ms).unwrap();
            let s = t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            prop_assert_eq!(parse_rfc3339_ms(&s), Some(secs * 1000 + ms));
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,200}") {
            let _ = Event::parse(&s);
        }

        #[test]
        fn any_timestamp_shape_agrees_with_chrono(
            secs in -62_135_500_000i64..253_402_200_000,
            nanos in 0u32..1_000_000_000,
            digits in 0usize..10,
            offset_min in -(23 * 60 + 59)..(23 * 60 + 59),
            sep in prop_oneof![Just('T'), Just(' ')],
        ) {
            let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
            let zone = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let local = utc.with_timezone(&zone);
            let frac = match digits {
                0 => String::new(),
                n => format!(".{}", &format!("{:09}", nanos)[..n]),
            };
            let s = format!("{}{sep}{}{frac}{}", local.format("%Y-%m-%d"), local.format("%H:%M:%S"), local.format("%:z"));
            let want = secs * 1000 + if digits == 0 { 0 } else { i64::from(nanos / 1_000_000) / 10i64.pow(3u32.saturating_sub(digits as u32)) * 10i64.pow(3u32.saturating_sub(digits as u32)) };
            prop_assert_eq!(parse_rfc3339_ms(&s), Some(want), "{}", s);
        }

        #[test]
        fn json_of_any_shape_is_an_error_or_an_event_never_a_panic(v in arb_json()) {
            let text = v.to_string();
            match Event::parse(&text) {
                Ok(_) => prop_assert!(v.is_object()),
                Err(e) => prop_assert!(!e.to_string().contains("Raw"), "{}", e),
            }
        }

        #[test]
        fn escaped_strings_round_trip(user in "[a-z\"\\\\/é]{1,20}") {
            let line = serde_json::json!({"eventType": "user.session.start",
                "published": "2026-11-25T10:15:03Z", "actor": {"alternateId": user}}).to_string();
            let e = Event::parse(&line).unwrap();
            prop_assert_eq!(e.user.as_deref(), Some(user.as_str()));
            let wrapped = serde_json::json!({"@message": line}).to_string();
            let e2 = Event::parse(&wrapped).unwrap();
            prop_assert_eq!(e2.user.as_deref(), Some(user.as_str()));
        }
    }

    #[test]
    fn unresolved_actors_and_threatinsight_flags_are_read() {
        let line = r#"{"eventType":"user.session.start","published":"2026-11-25T10:15:03.123Z","outcome":{"result":"FAILURE"},"actor":{"id":"unknown","alternateId":"bob@gmail.com"},"debugContext":{"debugData":{"threatSuspected":"true","requestUri":"/api/v1/authn"}}}"#;
        let e = Event::parse(line).unwrap();
        assert_eq!(e.field("actor.id"), Some("unknown"));
        assert_eq!(
            e.field("debugContext.debugData.threatSuspected"),
            Some("true")
        );
        assert_eq!(e.field("outcome.result"), Some("FAILURE"));
        let line = r#"{"eventType":"security.threat.detected","published":"2026-11-25T10:15:03Z","outcome":{"result":"DENY"},"debugContext":{"debugData":{"threatSuspected":true}}}"#;
        let e = Event::parse(line).unwrap();
        assert_eq!(
            e.field("debugContext.debugData.threatSuspected"),
            Some("true")
        );
        assert_eq!(e.field("actor.id"), None);
    }

    /// Found by the fuzz driver (`scripts/fuzz.sh`): a time cut short right after the
    /// seconds' colon passed the separator checks and sliced past its end.
    #[test]
    fn a_time_cut_short_after_the_second_colon_is_refused_not_a_panic() {
        for s in [
            "2026-11-02T00:25:",
            "2026-11-02T00:25:0",
            "2026-11-02 00:25:",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
        let line = r#"{"eventType":"user.session.start","published":"2026-11-02T00:25:"}"#;
        assert!(matches!(
            Event::parse(line),
            Err(ParseError::BadTimestamp(_))
        ));
    }
}
