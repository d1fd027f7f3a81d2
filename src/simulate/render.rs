//! Turns an [`Ev`] into one NDJSON line: an EventBridge envelope whose
//! `detail` is the Okta System Log event, field names as Okta and the
//! EventBridge → CloudWatch Logs rule write them.
//!
//! Hand-rolled rather than serde so a gigabyte renders in seconds: most of a
//! line is constant text, the rest is short strings from fixed tables, a few
//! integers and ids. Every string that is not a literal here goes through
//! [`push_str`], which escapes what JSON requires.

use super::event::{Actor, Ev, EventType, Outcome};
use super::mix;
use super::world::{push_base62, Factor, World, DOMAIN, FIRST, LAST};

/// Appends `s` as JSON string content (without quotes), escaping `"`, `\`
/// and control characters. Non-ASCII UTF-8 passes through, as JSON allows.
pub(super) fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn push_ip(out: &mut Vec<u8>, ip: u32) {
    for (i, octet) in ip.to_be_bytes().iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, u64::from(*octet));
    }
}

/// A uuid-looking string from 128 bits, with the given version nibble
/// (Okta uses time-based v1 uuids, EventBridge random v4 ones).
fn push_uuid(out: &mut Vec<u8>, bits: u128, version: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        let nibble = match i {
            12 => version,
            16 => 8 | ((bits >> 2) & 3) as u8,
            _ => ((bits >> (124 - 4 * i)) & 15) as u8,
        };
        out.push(HEX[usize::from(nibble)]);
    }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), for
/// the proleptic Gregorian calendar.
pub(super) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Renders events into lines. Caches the envelope's constant text and the
/// current date.
pub(super) struct Renderer {
    /// Envelope text between the EventBridge id and the time.
    source: Vec<u8>,
    seed: u64,
    day: i64,
    date: Vec<u8>,
    scratch: String,
}

impl Renderer {
    pub fn new(tenant: &str, seed: u64) -> Renderer {
        let mut source =
            b"\",\"detail-type\":\"SystemLog\",\"source\":\"aws.partner/okta.com/".to_vec();
        push_str(&mut source, tenant);
        source.extend_from_slice(b"/okta-logs\",\"account\":\"123456789012\",\"time\":\"");
        Renderer {
            source,
            seed,
            day: i64::MIN,
            date: Vec::new(),
            scratch: String::new(),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS`, then `.mmm` if `millis`.
    fn push_time(&mut self, out: &mut Vec<u8>, t_ms: i64, millis: bool) {
        let day = t_ms.div_euclid(86_400_000);
        if day != self.day {
            let (y, m, d) = civil(day);
            self.date = format!("{y:04}-{m:02}-{d:02}T").into_bytes();
            self.day = day;
        }
        out.extend_from_slice(&self.date);
        let ms = t_ms.rem_euclid(86_400_000) as u32;
        let secs = ms / 1000;
        push_2(out, secs / 3600);
        out.push(b':');
        push_2(out, secs / 60 % 60);
        out.push(b':');
        push_2(out, secs % 60);
        if millis {
            let frac = ms % 1000;
            out.push(b'.');
            out.push(b'0' + (frac / 100) as u8);
            push_2(out, frac % 100);
        }
    }

    /// The address a non-existent user typed: either a real person's login
    /// with a slip (`Typo`) or an address from someone else's breach.
    fn attempted_login(&mut self, world: &World, actor: Actor) -> &str {
        let s = &mut self.scratch;
        s.clear();
        match actor {
            Actor::Typo { user, variant } => {
                let login = world
                    .users
                    .get(user as usize)
                    .map_or("", |u| u.login.as_str());
                let (local, _) = login.split_once('@').unwrap_or((login, ""));
                match variant % 3 {
                    // Domain slip.
                    0 => {
                        s.push_str(local);
                        s.push_str("@exmaple.com");
                    }
                    // Two neighbouring letters swapped.
                    1 if local.len() > 2 && local.is_ascii() => {
                        let i = 1 + usize::from(variant / 3) % (local.len() - 2);
                        let b = local.as_bytes();
                        s.push_str(&local[..i]);
                        s.push(char::from(b[i + 1]));
                        s.push(char::from(b[i]));
                        s.push_str(&local[i + 2..]);
                        s.push('@');
                        s.push_str(DOMAIN);
                    }
                    // Forgot the dot (or the name was too short to swap).
                    _ => {
                        s.extend(local.chars().filter(|&c| c != '.'));
                        s.push('@');
                        s.push_str(DOMAIN);
                    }
                }
            }
            Actor::Unknown(x) => {
                const FREEMAIL: [&str; 8] = [
                    "gmail.com",
                    "yahoo.com",
                    "hotmail.com",
                    "outlook.com",
                    "aol.com",
                    "icloud.com",
                    "mail.ru",
                    "gmx.de",
                ];
                let first = FIRST[(x % 64) as usize].to_ascii_lowercase();
                let last = LAST[((x >> 6) % 64) as usize].to_ascii_lowercase();
                let num = (x >> 12) % 100;
                let mail = FREEMAIL[((x >> 19) % 8) as usize];
                let guess = match (x >> 22) % 4 {
                    0 => format!("{first}{last}{num}@{mail}"),
                    1 => format!("{}{last}@{DOMAIN}", &first[..1]),
                    2 => format!("{first}_{last}{num}@{mail}"),
                    _ => format!("{last}.{first}{}@{mail}", 1960 + num % 45),
                };
                s.push_str(&guess);
            }
            Actor::User(_) => {}
        }
        &self.scratch
    }

    /// Appends one complete line (with `\n`) for `ev`.
    pub fn line(&mut self, ev: &Ev, world: &World, out: &mut Vec<u8>) {
        self.push_head(ev, out);
        self.push_actor(ev, world, out);
        push_client(ev, out);
        push_outcome(ev, out);
        self.push_debug_context(ev, out);
        push_authentication_context(ev, out);
        push_security_context(ev, out);
        out.extend_from_slice(b"},\"target\":[");
        out.extend_from_slice(b"]}}\n");
    }

    /// The EventBridge envelope, the ids, the times, the event type and its message.
    fn push_head(&mut self, ev: &Ev, out: &mut Vec<u8>) {
        let (hi, lo) = ((ev.id >> 64) as u64, ev.id as u64);
        let bridge_id = (u128::from(mix(hi ^ 0xEB)) << 64) | u128::from(mix(lo ^ 0xEB));
        out.extend_from_slice(b"{\"version\":\"0\",\"id\":\"");
        push_uuid(out, bridge_id, 4);
        out.extend_from_slice(&self.source);
        self.push_time(out, ev.t_ms, false);
        out.extend_from_slice(
            b"Z\",\"region\":\"us-east-1\",\"resources\":[],\"detail\":{\"uuid\":\"",
        );
        push_uuid(out, ev.id, 1);
        out.extend_from_slice(b"\",\"published\":\"");
        self.push_time(out, ev.t_ms, true);
        let failed = matches!(ev.outcome, Outcome::Failure(_) | Outcome::Deny);
        let (event_type, message) = match ev.kind {
            EventType::SessionStart => ("user.session.start", "User login to Okta"),
            EventType::AuthViaMfa => (
                "user.authentication.auth_via_mfa",
                "Authentication of user via MFA",
            ),
            EventType::PushSend => (
                "system.push.send_factor_verify_push",
                "Send push verify notification",
            ),
            EventType::DenyPush => (
                "user.mfa.okta_verify.deny_push",
                "User rejected Okta push verify",
            ),
            EventType::SessionEnd => ("user.session.end", "User logout from Okta"),
            EventType::ThreatDetected => {
                ("security.threat.detected", "Request from suspicious actor")
            }
        };
        out.extend_from_slice(b"Z\",\"eventType\":\"");
        out.extend_from_slice(event_type.as_bytes());
        out.extend_from_slice(b"\",\"version\":\"0\",\"severity\":\"");
        out.extend_from_slice(if failed { b"WARN" } else { b"INFO" });
        out.extend_from_slice(b"\",\"displayMessage\":\"");
        out.extend_from_slice(message.as_bytes());
    }

    /// The actor: the user, or the login an attacker tried, or nobody (ThreatInsight).
    fn push_actor(&mut self, ev: &Ev, world: &World, out: &mut Vec<u8>) {
        let flow = &ev.flow;
        out.extend_from_slice(b"\",\"actor\":{\"id\":\"");
        let user = match flow.actor {
            Actor::User(i) if ev.kind != EventType::ThreatDetected => world.users.get(i as usize),
            _ => None,
        };
        match user {
            // ThreatInsight decides before the username is read: no user.
            None if ev.kind == EventType::ThreatDetected => {
                out.extend_from_slice(
                    b"unknown\",\"type\":\"User\",\"alternateId\":\"unknown\",\"displayName\":\"unknown",
                );
            }
            Some(u) => {
                push_str(out, &u.id);
                out.extend_from_slice(b"\",\"type\":\"User\",\"alternateId\":\"");
                push_str(out, &u.login);
                out.extend_from_slice(b"\",\"displayName\":\"");
                push_str(out, &u.display);
            }
            None => {
                out.extend_from_slice(b"unknown\",\"type\":\"User\",\"alternateId\":\"");
                let login = self.attempted_login(world, flow.actor);
                push_str(out, login);
                out.extend_from_slice(b"\",\"displayName\":\"unknown");
            }
        }
    }

    /// The transaction and the debug context (request URI, ThreatInsight, the factor).
    fn push_debug_context(&self, ev: &Ev, out: &mut Vec<u8>) {
        let (flow, net) = (&ev.flow, &ev.flow.net);
        out.extend_from_slice(b"},\"transaction\":{\"type\":\"WEB\",\"id\":\"");
        push_base62(out, flow.txn, 27);
        out.extend_from_slice(b"\"},\"debugContext\":{\"debugData\":{\"requestUri\":\"");
        match ev.kind {
            EventType::SessionStart => out.extend_from_slice(b"/api/v1/authn"),
            EventType::SessionEnd => out.extend_from_slice(b"/login/signout"),
            EventType::ThreatDetected => out.extend_from_slice(b"/api/v1/authn"),
            _ => {
                // The user's Okta Verify enrollment (stable per person).
                out.extend_from_slice(b"/api/v1/authn/factors/opf");
                let factor_id = match flow.actor {
                    Actor::User(i) => mix(self.seed ^ 0x0FAC ^ u64::from(i)),
                    _ => flow.session,
                };
                push_base62(out, factor_id, 17);
                out.extend_from_slice(b"/verify");
            }
        }
        out.extend_from_slice(b"\",\"threatSuspected\":\"");
        // Okta ThreatInsight sets `threatSuspected` on sign-ins from addresses it
        // suspects (Okta's ThreatInsight System Log help page; the query it gives
        // is `debugContext.debugData.threatSuspected eq "true"`), and on every
        // `security.threat.detected`.
        let suspected = net.proxy || ev.kind == EventType::ThreatDetected;
        out.extend_from_slice(if suspected { b"true" } else { b"false" });
        let mfa = is_mfa(ev);
        if mfa && flow.factor == Factor::Push {
            out.extend_from_slice(b"\",\"factor\":\"OKTA_VERIFY_PUSH");
        }
    }
}

/// Whether `ev` is a step of the second factor.
fn is_mfa(ev: &Ev) -> bool {
    matches!(
        ev.kind,
        EventType::AuthViaMfa | EventType::PushSend | EventType::DenyPush
    )
}

/// The client: user agent, address and where it is.
fn push_client(ev: &Ev, out: &mut Vec<u8>) {
    let flow = &ev.flow;
    let agent = flow.agent;
    let net = &flow.net;
    out.extend_from_slice(b"\"},\"client\":{\"userAgent\":{\"rawUserAgent\":\"");
    push_str(out, agent.raw);
    out.extend_from_slice(b"\",\"os\":\"");
    push_str(out, agent.os);
    out.extend_from_slice(b"\",\"browser\":\"");
    push_str(out, agent.browser);
    out.extend_from_slice(b"\"},\"zone\":\"null\",\"device\":\"");
    push_str(out, agent.device);
    out.extend_from_slice(b"\",\"ipAddress\":\"");
    push_ip(out, net.ip);
    out.extend_from_slice(b"\",\"geographicalContext\":{\"city\":\"");
    push_str(out, net.place.city);
    out.extend_from_slice(b"\",\"state\":\"");
    push_str(out, net.place.state);
    out.extend_from_slice(b"\",\"country\":\"");
    push_str(out, net.place.country);
    out.extend_from_slice(b"\",\"postalCode\":\"");
    push_str(out, net.place.postal);
    out.extend_from_slice(b"\",\"geolocation\":{\"lat\":");
    out.extend_from_slice(net.place.lat.as_bytes());
    out.extend_from_slice(b",\"lon\":");
    out.extend_from_slice(net.place.lon.as_bytes());
}

/// The outcome: result and reason.
fn push_outcome(ev: &Ev, out: &mut Vec<u8>) {
    out.extend_from_slice(b"}}},\"outcome\":{\"result\":");
    match ev.outcome {
        Outcome::Success => out.extend_from_slice(b"\"SUCCESS\",\"reason\":null"),
        Outcome::Failure(reason) => {
            out.extend_from_slice(b"\"FAILURE\",\"reason\":\"");
            push_str(out, reason.as_str());
            out.push(b'"');
        }
        Outcome::Deny => out.extend_from_slice(
            b"\"DENY\",\"reason\":\"Login failures with high unknown users count\"",
        ),
    }
}

/// The authentication context: step 0 is the password, 1 the factor.
fn push_authentication_context(ev: &Ev, out: &mut Vec<u8>) {
    let (flow, mfa) = (&ev.flow, is_mfa(ev));
    out.extend_from_slice(b"\"}},\"authenticationContext\":{\"authenticationStep\":");
    out.push(if mfa { b'1' } else { b'0' });
    out.extend_from_slice(b",\"externalSessionId\":\"");
    if flow.session == 0 {
        out.extend_from_slice(b"unknown");
    } else {
        out.extend_from_slice(b"102");
        push_base62(out, flow.session, 22);
    }
}

/// The security context: the network's AS and whether it is a proxy.
fn push_security_context(ev: &Ev, out: &mut Vec<u8>) {
    let net = &ev.flow.net;
    out.extend_from_slice(b"\"},\"securityContext\":{\"asNumber\":");
    push_u64(out, u64::from(net.isp.asn));
    out.extend_from_slice(b",\"asOrg\":\"");
    push_str(out, net.isp.as_org);
    out.extend_from_slice(b"\",\"isp\":\"");
    push_str(out, net.isp.isp);
    out.extend_from_slice(b"\",\"domain\":\"");
    push_str(out, net.isp.domain);
    out.extend_from_slice(b"\",\"isProxy\":");
    out.extend_from_slice(if net.proxy { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires() {
        let mut out = Vec::new();
        push_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001é".as_bytes());
        let parsed: String = serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn civil_dates_match_chrono() {
        for days in [-1, 0, 59, 10_000, 11_016, 20_600, 20_782, 2_000_000] {
            let d = chrono::DateTime::from_timestamp(days * 86_400, 0)
                .unwrap()
                .date_naive();
            let (y, m, dd) = civil(days);
            assert_eq!(
                format!("{y:04}-{m:02}-{dd:02}"),
                d.format("%Y-%m-%d").to_string()
            );
        }
    }

    #[test]
    fn uuids_have_the_right_shape() {
        let mut out = Vec::new();
        push_uuid(&mut out, u128::MAX / 3, 1);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "1");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(s.matches('-').count(), 4);
    }
}
