//! The serde path of [`Event::parse`]: every shape and every error, with messages that
//! name the field and the type expected.
//!
//! Only JSON objects are events: serde's derived structs would also read a struct from a
//! JSON sequence (`[null,null,"user.session.start",…]`), so the raw types below have
//! hand-written visitors that take maps only, and every error names the field it is about
//! and the type that was expected.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{known, parse_rfc3339_ms, Event, ParseError};

/// Parse one event in any of the three wrappings.
pub(super) fn parse(text: &str) -> Result<Event<'_>, ParseError> {
    let mut raw: RawOkta<'_> = serde_json::from_str(text).map_err(ParseError::of)?;
    if let Some(message) = raw.message.take() {
        // A CloudWatch export: the event is a JSON string inside `@message`. When it
        // needed unescaping the inner event is owned, so convert to owned data.
        let inner = match message.0 {
            Cow::Borrowed(inner) => Event::parse(inner),
            Cow::Owned(inner) => Event::parse(&inner).map(Event::into_owned),
        };
        return inner.map_err(|e| match e {
            ParseError::Json(m) => ParseError::Json(format!("in `@message`: {m}")),
            ParseError::Field(m) => ParseError::Field(format!("in `@message`: {m}")),
            other => other,
        });
    }
    let envelope_time = raw.time.take().map(|s| s.0);
    let okta = match raw.detail.take() {
        Some(detail) => *detail,
        None if raw.event_type.is_some() => raw,
        None => return Err(ParseError::NotAnEvent),
    };
    okta.into_event(envelope_time)
}

impl ParseError {
    fn of(e: serde_json::Error) -> ParseError {
        match e.classify() {
            serde_json::error::Category::Data => ParseError::Field(strip_position(&e.to_string())),
            _ => ParseError::Json(e.to_string()),
        }
    }
}

/// serde_json appends " at line L column C" to every message; nested messages would carry
/// it twice.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i + 9..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// A JSON string, borrowed from the input when it needed no unescaping.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `null` or a `T`.
struct Opt<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Opt<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Opt)
    }
}

/// `path: message` for a value of the wrong type, with nested paths joined by dots
/// (`client.ipAddress`). Syntax errors pass through unchanged: they are not about a field.
fn in_field<E: de::Error>(key: &str, e: E) -> E {
    let inner = strip_position(&e.to_string());
    if let Some(rest) = inner.strip_prefix('`') {
        E::custom(format!("`{key}.{rest}"))
    } else if inner.starts_with("invalid type") || inner.starts_with("invalid value") {
        E::custom(format!("`{key}`: {inner}"))
    } else {
        e
    }
}

/// Declares a struct of optional fields read from a JSON object only (never from a
/// sequence), skipping unknown keys, with errors that name the field.
macro_rules! raw_object {
    ($name:ident, $expecting:literal, { $($json:literal => $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Default)]
        struct $name<'a> {
            $($field: Option<$ty>,)*
            _borrow: std::marker::PhantomData<&'a ()>,
        }

        impl<'a> Deserialize<'a> for $name<'a> {
            fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'a> Visitor<'a> for V {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<Str<'a>>()? {
                            match key.0.as_ref() {
                                $($json => {
                                    let v: Opt<$ty> = map
                                        .next_value()
                                        .map_err(|e| in_field::<A::Error>($json, e))?;
                                    out.$field = v.0;
                                })*
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

// One JSON object, whichever wrapping it has: the envelope fields (`detail`, `time`), the
// export wrapper (`@message`) and the Okta fields all live in one struct, so an event is
// read in a single pass with no buffering. Unknown fields are skipped.
raw_object!(RawOkta, "an Okta event (a JSON object)", {
    "detail" => detail: Box<RawOkta<'a>>,
    "@message" => message: Str<'a>,
    "time" => time: Str<'a>,
    "eventType" => event_type: Str<'a>,
    "published" => published: Str<'a>,
    "uuid" => uuid: Str<'a>,
    "outcome" => outcome: RawOutcome<'a>,
    "actor" => actor: RawActor<'a>,
    "client" => client: RawClient<'a>,
    "debugContext" => debug_context: RawDebugContext<'a>,
});

raw_object!(RawDebugContext, "an object (`debugContext`)", {
    "debugData" => debug_data: RawDebugData<'a>,
});

raw_object!(RawDebugData, "an object (`debugData`)", {
    "threatSuspected" => threat_suspected: StrOrBool<'a>,
});

/// Okta writes `threatSuspected` as a string (`"true"`); a JSON boolean reads the same.
struct StrOrBool<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for StrOrBool<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrBool<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(StrOrBool(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrBool(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrBool(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

raw_object!(RawOutcome, "an object (`outcome`)", {
    "result" => result: Str<'a>,
    "reason" => reason: Str<'a>,
});

raw_object!(RawActor, "an object (`actor`)", {
    "alternateId" => alternate_id: Str<'a>,
    "id" => id: Str<'a>,
});

raw_object!(RawClient, "an object (`client`)", {
    "ipAddress" => ip_address: Str<'a>,
    "geographicalContext" => geo: RawGeo<'a>,
    "userAgent" => user_agent: RawUserAgent<'a>,
});

raw_object!(RawGeo, "an object (`geographicalContext`)", {
    "country" => country: Str<'a>,
});

raw_object!(RawUserAgent, "an object (`userAgent`)", {
    "browser" => browser: Str<'a>,
});

impl<'a> RawOkta<'a> {
    fn into_event(self, envelope_time: Option<Cow<'a, str>>) -> Result<Event<'a>, ParseError> {
        let event_type = self.event_type.ok_or(ParseError::NoEventType)?.0;
        let stamp = self
            .published
            .map(|s| s.0)
            .or(envelope_time)
            .ok_or_else(|| ParseError::BadTimestamp(String::new()))?;
        let published_ms =
            parse_rfc3339_ms(&stamp).ok_or_else(|| ParseError::BadTimestamp(stamp.to_string()))?;
        let (result, reason) = match self.outcome {
            Some(o) => (
                o.result.map_or(Cow::Borrowed("UNKNOWN"), |s| s.0),
                o.reason.map(|s| s.0),
            ),
            None => (Cow::Borrowed("UNKNOWN"), None),
        };
        let (ip, country, browser) = match self.client {
            Some(c) => (
                known(c.ip_address.map(|s| s.0)),
                known(c.geo.and_then(|g| g.country).map(|s| s.0)),
                known(c.user_agent.and_then(|u| u.browser).map(|s| s.0)),
            ),
            None => (None, None, None),
        };
        let (user, actor_id) = match self.actor {
            Some(a) => (a.alternate_id.map(|s| s.0), a.id.map(|s| s.0)),
            None => (None, None),
        };
        Ok(Event {
            published_ms,
            event_type,
            result,
            reason,
            ip,
            user,
            country,
            browser,
            uuid: self.uuid.map(|s| s.0),
            actor_id,
            threat_suspected: self
                .debug_context
                .and_then(|d| d.debug_data)
                .and_then(|d| d.threat_suspected)
                .map(|t| t.0),
        })
    }
}
