//! Conditions on an event's Okta fields: `[rules.filter]` and `[rules.when."<type>"]`
//! tables, `field = value` pairs that must all hold and an optional `any` list of
//! alternatives, read from the config, tested on events by the binner and written into
//! the Logs Insights query, the two agreeing.

use serde_json::Value;

use super::query::json_string;
use crate::config_reader::Problems;
use crate::event::FILTER_FIELDS;

/// A condition on an event's Okta fields (`[rules.filter]`, `[rules.when."<type>"]`):
/// every `all` pair holds and, when `any` lists groups, every pair of at least one of
/// them (`any = [{ "actor.id" = "unknown" }, { "debugContext.debugData.threatSuspected"
/// = "true" }]`: an unresolved username *or* a ThreatInsight flag).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    /// `(field, value)`: every one must hold (fields from [`FILTER_FIELDS`]).
    pub all: Vec<(String, String)>,
    /// Alternatives: at least one group must hold wholly (none listed: no alternative
    /// asked for).
    pub any: Vec<Vec<(String, String)>>,
}

impl Conditions {
    /// Every `(field, value)` must hold.
    pub fn all_of(pairs: &[(&str, &str)]) -> Conditions {
        Conditions {
            all: owned(pairs),
            any: Vec::new(),
        }
    }

    /// At least one of the groups must hold wholly.
    pub fn any_of(groups: &[&[(&str, &str)]]) -> Conditions {
        Conditions {
            all: Vec::new(),
            any: groups.iter().map(|g| owned(g)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty()
    }

    /// Does `field` hold each asked value on this event? (`value_of` reads a field.)
    pub fn holds<'v>(&self, value_of: impl Fn(&str) -> Option<&'v str>) -> bool {
        let pairs = |c: &[(String, String)]| {
            c.iter()
                .all(|(field, value)| value_of(field) == Some(value.as_str()))
        };
        pairs(&self.all) && (self.any.is_empty() || self.any.iter().any(|g| pairs(g)))
    }

    /// The condition as a Logs Insights boolean expression, `None` when empty:
    /// `detail.a = "x" and (detail.b = "y" or detail.c = "z")`.
    pub fn insights(&self) -> Option<String> {
        let and = |c: &[(String, String)]| -> Vec<String> {
            c.iter()
                .map(|(f, v)| format!("detail.{f} = {}", json_string(v)))
                .collect()
        };
        let mut parts = and(&self.all);
        let alternatives: Vec<String> = self
            .any
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| {
                let g = and(g);
                if g.len() == 1 {
                    g.join("")
                } else {
                    format!("({})", g.join(" and "))
                }
            })
            .collect();
        // An empty group always holds, and so do the alternatives then.
        if !alternatives.is_empty() && alternatives.len() == self.any.len() {
            parts.push(format!("({})", alternatives.join(" or ")));
        }
        (!parts.is_empty()).then(|| parts.join(" and "))
    }

    /// Read a table of Okta field = value, with an optional `any` list of such tables.
    pub fn read(path: &str, v: &Value, problems: &mut Problems) -> Conditions {
        let Some(m) = v.as_object() else {
            problems.push(path, "must be a table of Okta field = value");
            return Conditions::default();
        };
        let mut out = Conditions::default();
        for (field, value) in m {
            if field == "any" {
                out.any = read_any(&crate::config_reader::join(path, "any"), value, problems);
            } else if let Some(pair) = read_pair(path, field, value, problems) {
                out.all.push(pair);
            }
        }
        out
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect()
}

/// Read one `field = value` of a condition table (`[rules.filter]`,
/// `[rules.when."<type>"]` and their `any` groups).
fn read_pair(
    path: &str,
    field: &str,
    value: &Value,
    problems: &mut Problems,
) -> Option<(String, String)> {
    let field = field.strip_prefix("detail.").unwrap_or(field);
    let at = crate::config_reader::join(path, field);
    if !FILTER_FIELDS.contains(&field) {
        problems.push(
            at,
            format!(
                "is not a field authpulse can filter on (one of: {}; or `any`, a list of such tables)",
                FILTER_FIELDS.join(", ")
            ),
        );
        return None;
    }
    match value {
        Value::String(v) => Some((field.to_string(), v.clone())),
        Value::Bool(b) => Some((field.to_string(), b.to_string())),
        other => {
            problems.push(at, format!("must be a string, found {other}"));
            None
        }
    }
}

/// Read `any = [{ field = value, ... }, ...]`: alternatives, at least one of which must
/// hold wholly. Each must name at least one field (an empty one would always hold).
fn read_any(path: &str, v: &Value, problems: &mut Problems) -> Vec<Vec<(String, String)>> {
    let Some(items) = v.as_array().filter(|a| !a.is_empty()) else {
        problems.push(
            path,
            "must be a non-empty list of tables of Okta field = value, e.g. [{ \"actor.id\" = \"unknown\" }, { \"outcome.reason\" = \"LOCKED_OUT\" }]",
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(m) = item.as_object().filter(|m| !m.is_empty()) else {
            problems.push(at, "must be a table naming at least one Okta field = value");
            continue;
        };
        let group: Vec<(String, String)> = m
            .iter()
            .filter_map(|(f, value)| read_pair(&at, f, value, problems))
            .collect();
        if group.len() == m.len() {
            out.push(group);
        }
    }
    out
}

/// A condition for a human: "on usernames Okta could not resolve (actor.id = unknown) or
/// flagged by Okta ThreatInsight (threatSuspected)".
pub(super) fn describe(c: &Conditions) -> Vec<String> {
    let pair = |(field, value): &(String, String)| match (field.as_str(), value.as_str()) {
        ("actor.id", "unknown") => {
            "on usernames Okta could not resolve (actor.id = unknown)".to_string()
        }
        ("debugContext.debugData.threatSuspected", "true") => {
            "flagged by Okta ThreatInsight (threatSuspected)".to_string()
        }
        (f, v) => format!("with {f} = {v}"),
    };
    let mut out: Vec<String> = c.all.iter().map(pair).collect();
    let groups: Vec<String> = c
        .any
        .iter()
        .map(|g| g.iter().map(pair).collect::<Vec<_>>().join(" and "))
        .collect();
    if !groups.is_empty() {
        out.push(groups.join(" or "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::rule::RuleSpec;

    #[test]
    fn any_reads_alternatives_and_writes_them_as_or() {
        let mut p = Problems::default();
        let v = serde_json::json!({
            "name": "hostile",
            "event_types": ["user.session.start", "security.threat.detected"],
            "filter": {"outcome.result": "FAILURE", "any": [
                {"actor.id": "unknown"},
                {"debugContext.debugData.threatSuspected": true, "client.geographicalContext.country": "Narnia"},
            ]},
        });
        let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
        assert!(p.0.is_empty(), "{p:?}");
        assert_eq!(
            r.filter.all,
            vec![("outcome.result".into(), "FAILURE".into())]
        );
        assert_eq!(r.filter.any.len(), 2);
        let q = r.insights_query();
        assert!(
            q.contains("| filter detail.outcome.result = \"FAILURE\" and (detail.actor.id = \"unknown\" or (detail.client.geographicalContext.country = \"Narnia\" and detail.debugContext.debugData.threatSuspected = \"true\"))"),
            "{q}"
        );
        let line = |id: &str, flag: &str, country: &str| {
            format!(
                r#"{{"eventType":"user.session.start","published":"2026-11-25T10:15:03Z","outcome":{{"result":"FAILURE"}},"actor":{{"id":"{id}"}},"client":{{"geographicalContext":{{"country":"{country}"}}}},"debugContext":{{"debugData":{{"threatSuspected":"{flag}"}}}}}}"#
            )
        };
        let m = |l: String| r.matches(&Event::parse(&l).unwrap());
        assert!(m(line("unknown", "false", "France")));
        assert!(m(line("00u1", "true", "Narnia")));
        assert!(!m(line("00u1", "true", "France")));
        assert!(!m(line("00u1", "false", "Narnia")));
    }

    #[test]
    fn bad_any_is_named() {
        let mut p = Problems::default();
        for (any, path) in [
            (serde_json::json!([]), "rules[0].filter.any"),
            (
                serde_json::json!({"actor.id": "unknown"}),
                "rules[0].filter.any",
            ),
            (serde_json::json!([{}]), "rules[0].filter.any[0]"),
            (serde_json::json!(["actor.id"]), "rules[0].filter.any[0]"),
            (
                serde_json::json!([{"actor": "x"}]),
                "rules[0].filter.any[0].actor",
            ),
            (
                serde_json::json!([{"actor.id": 3}]),
                "rules[0].filter.any[0].actor.id",
            ),
        ] {
            let v = serde_json::json!({"name": "x", "filter": {"any": any}});
            p.0.clear();
            let r = RuleSpec::read("rules[0]", &v, &mut p).unwrap();
            assert_eq!(p.0.len(), 1, "{any}: {p:?}");
            assert_eq!(p.0[0].path, path, "{any}");
            assert!(r.filter.any.is_empty(), "{any}");
        }
    }

    /// A condition as a TOML-like JSON table, the way a config writes it.
    fn table_of(c: &Conditions) -> Value {
        let pairs = |g: &[(String, String)]| -> serde_json::Map<String, Value> {
            g.iter()
                .map(|(f, v)| (f.clone(), Value::String(v.clone())))
                .collect()
        };
        let mut t = pairs(&c.all);
        if !c.any.is_empty() {
            t.insert(
                "any".into(),
                Value::Array(c.any.iter().map(|g| Value::Object(pairs(g))).collect()),
            );
        }
        Value::Object(t)
    }

    fn arb_pairs(min: usize) -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
        use proptest::prelude::*;
        // Distinct fields (a table names each key once), values from a small set so
        // that random events hit them.
        proptest::sample::subsequence(FILTER_FIELDS.to_vec(), min..=3).prop_flat_map(|fields| {
            let n = fields.len();
            (
                Just(fields),
                proptest::collection::vec(
                    proptest::sample::select(vec!["a", "b", "unknown", "true"]),
                    n,
                ),
            )
                .prop_map(|(f, v)| {
                    f.into_iter()
                        .zip(v)
                        .map(|(f, v)| (f.to_string(), v.to_string()))
                        .collect()
                })
        })
    }

    fn arb_conditions() -> impl proptest::strategy::Strategy<Value = Conditions> {
        use proptest::prelude::*;
        (arb_pairs(0), proptest::collection::vec(arb_pairs(1), 0..4))
            .prop_map(|(all, any)| Conditions { all, any })
    }

    proptest::proptest! {
        /// What a config writes is read back as it was, with no problem.
        #[test]
        fn conditions_round_trip(c in arb_conditions()) {
            let mut p = Problems::default();
            let read = Conditions::read("f", &table_of(&c), &mut p);
            proptest::prop_assert!(p.0.is_empty(), "{:?}", p);
            let sorted = |c: &Conditions| {
                let mut c = c.clone();
                c.all.sort();
                for g in &mut c.any { g.sort(); }
                c
            };
            proptest::prop_assert_eq!(sorted(&read), sorted(&c));
        }

        /// The binner's test is the condition's meaning: all of `all`, and one group
        /// of `any` wholly (when there are groups); the query names every pair.
        #[test]
        fn conditions_hold_as_documented(
            c in arb_conditions(),
            values in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "unknown", "true"]), FILTER_FIELDS.len()),
            missing in proptest::collection::vec(proptest::bool::ANY, FILTER_FIELDS.len()),
        ) {
            let value_of = |f: &str| {
                let i = FILTER_FIELDS.iter().position(|x| *x == f)?;
                (!missing[i]).then(|| values[i])
            };
            let group = |g: &[(String, String)]| g.iter().all(|(f, v)| value_of(f) == Some(v.as_str()));
            let want = group(&c.all) && (c.any.is_empty() || c.any.iter().any(|g| group(g)));
            proptest::prop_assert_eq!(c.holds(value_of), want);
            let q = c.insights().unwrap_or_default();
            proptest::prop_assert_eq!(q.is_empty(), c.is_empty());
            for (f, v) in c.all.iter().chain(c.any.iter().flatten()) {
                let pair = format!("detail.{f} = \"{v}\"");
                proptest::prop_assert!(q.contains(&pair), "{} lacks {}", q, pair);
            }
            proptest::prop_assert_eq!(q.matches(" or ").count(), c.any.len().saturating_sub(1));
        }
    }
}
