//! Parsing one log line into the few Okta fields authpulse needs.
//!
//! A line arrives in one of three shapes, and all three are accepted:
//!
//! 1. an EventBridge envelope, whose `detail` is the Okta System Log event
//!    (what the EventBridge rule writes into CloudWatch Logs);
//! 2. a bare Okta System Log event (what Okta's own API returns);
//! 3. a CloudWatch export line that wraps one of the above as a string in `@message`.
//!
//! Parsing borrows from the line wherever the JSON string needs no unescaping, so a
//! backtest over gigabytes allocates almost nothing per event.

use std::borrow::Cow;

use serde::Deserialize;

/// The Okta fields a rule can count or split by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event<'a> {
    /// `published`, in milliseconds since the Unix epoch (UTC).
    pub published_ms: i64,
    pub event_type: Cow<'a, str>,
    /// `outcome.result`: SUCCESS, FAILURE, SKIPPED, ALLOW, DENY, CHALLENGE, UNKNOWN.
    pub result: Cow<'a, str>,
    pub reason: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub user: Option<Cow<'a, str>>,
    pub country: Option<Cow<'a, str>>,
    pub browser: Option<Cow<'a, str>>,
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

/// Why a line was not an event. Counted in summaries, logged at a limited rate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not valid JSON: {0}")]
    Json(String),
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

    /// Parse one line (any of the three shapes).
    pub fn parse(line: &'a str) -> Result<Event<'a>, ParseError> {
        let mut raw: RawOkta<'a> =
            serde_json::from_str(line).map_err(|e| ParseError::Json(e.to_string()))?;
        if let Some(message) = raw.message.take() {
            // A CloudWatch export: the event is a JSON string inside `@message`. When it
            // needed unescaping the inner event is owned, so convert to owned data.
            return match message {
                Cow::Borrowed(inner) => Event::parse(inner),
                Cow::Owned(inner) => Event::parse(&inner).map(Event::into_owned),
            };
        }
        let envelope_time = raw.time.take();
        let okta = match raw.detail.take() {
            Some(detail) => *detail,
            None if raw.event_type.is_some() => raw,
            None => return Err(ParseError::NotAnEvent),
        };
        okta.into_event(envelope_time)
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
            actor_id: self.actor_id.map(own),
            threat_suspected: self.threat_suspected.map(own),
        }
    }
}

/// One JSON object, whichever shape the line has: the envelope fields (`detail`, `time`),
/// the export wrapper (`@message`) and the Okta fields all live in one struct, so a line is
/// read in a single pass with no buffering. Unknown fields are skipped.
#[derive(Deserialize, Default)]
struct RawOkta<'a> {
    #[serde(borrow, default)]
    detail: Option<Box<RawOkta<'a>>>,
    #[serde(borrow, default, rename = "@message")]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "eventType")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    published: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<RawOutcome<'a>>,
    #[serde(borrow, default)]
    actor: Option<RawActor<'a>>,
    #[serde(borrow, default)]
    client: Option<RawClient<'a>>,
    #[serde(borrow, default, rename = "debugContext")]
    debug_context: Option<RawDebugContext<'a>>,
}

#[derive(Deserialize, Default)]
struct RawDebugContext<'a> {
    #[serde(borrow, default, rename = "debugData")]
    debug_data: Option<RawDebugData<'a>>,
}

#[derive(Deserialize, Default)]
struct RawDebugData<'a> {
    #[serde(borrow, default, rename = "threatSuspected")]
    threat_suspected: Option<StrOrBool<'a>>,
}

/// Okta writes `threatSuspected` as a string (`"true"`); a JSON boolean is read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrBool<'a> {
    Str(#[serde(borrow)] Cow<'a, str>),
    Bool(bool),
}

#[derive(Deserialize, Default)]
struct RawOutcome<'a> {
    #[serde(borrow, default)]
    result: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct RawActor<'a> {
    #[serde(borrow, default, rename = "alternateId")]
    alternate_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct RawClient<'a> {
    #[serde(borrow, default, rename = "ipAddress")]
    ip_address: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "geographicalContext")]
    geo: Option<RawGeo<'a>>,
    #[serde(borrow, default, rename = "userAgent")]
    user_agent: Option<RawUserAgent<'a>>,
}

#[derive(Deserialize, Default)]
struct RawGeo<'a> {
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct RawUserAgent<'a> {
    #[serde(borrow, default)]
    browser: Option<Cow<'a, str>>,
}

impl<'a> RawOkta<'a> {
    fn into_event(self, envelope_time: Option<Cow<'a, str>>) -> Result<Event<'a>, ParseError> {
        let event_type = self.event_type.ok_or(ParseError::NoEventType)?;
        let stamp = self
            .published
            .or(envelope_time)
            .ok_or_else(|| ParseError::BadTimestamp(String::new()))?;
        let published_ms =
            parse_rfc3339_ms(&stamp).ok_or_else(|| ParseError::BadTimestamp(stamp.to_string()))?;
        let (result, reason) = match self.outcome {
            Some(o) => (o.result.unwrap_or(Cow::Borrowed("UNKNOWN")), o.reason),
            None => (Cow::Borrowed("UNKNOWN"), None),
        };
        let (ip, country, browser) = match self.client {
            Some(c) => (
                c.ip_address,
                c.geo.and_then(|g| g.country),
                c.user_agent.and_then(|u| u.browser),
            ),
            None => (None, None, None),
        };
        let (user, actor_id) = match self.actor {
            Some(a) => (a.alternate_id, a.id),
            None => (None, None),
        };
        let threat_suspected = self
            .debug_context
            .and_then(|d| d.debug_data)
            .and_then(|d| d.threat_suspected)
            .map(|t| match t {
                StrOrBool::Str(s) => s,
                StrOrBool::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            });
        Ok(Event {
            published_ms,
            event_type,
            result,
            reason,
            ip,
            user,
            country,
            browser,
            actor_id,
            threat_suspected,
        })
    }
}

/// Parse an RFC 3339 timestamp to epoch milliseconds.
///
/// Okta writes `2026-11-25T10:15:03.123Z`; that exact shape takes a fast path and
/// anything else (offsets, other precisions) goes through chrono.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    fast_utc_ms(s.as_bytes()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

fn fast_utc_ms(b: &[u8]) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS[.mmm]Z
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let sep_ok = b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b'T') | Some(b't'))
        && b.get(13) == Some(&b':')
        && b.get(16) == Some(&b':');
    if !sep_ok {
        return None;
    }
    let millis = match (b.len(), b.get(19)) {
        (20, Some(b'Z')) => 0,
        (24, Some(b'.')) if b[23] == b'Z' => digits(20..23)?,
        _ => return None,
    };
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)?;
    let days = date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?);
    Some(((days.num_days() * 24 + h) * 60 + mi) * 60_000 + s * 1000 + millis)
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
        assert!(matches!(Event::parse("[1,2]"), Err(ParseError::Json(_))));
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
            Err(ParseError::Json(_))
        ));
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
}
