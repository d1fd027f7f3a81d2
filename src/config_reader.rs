//! A reader over a parsed config tree that collects every problem instead of stopping at
//! the first, and names each by its key path (`rules[0].bin`).
//!
//! Each table is read through a [`Table`]: typed getters record which keys they know, and
//! [`Table::finish`] reports whatever was left over as an unknown key. A getter that finds
//! a bad value records the problem and returns `None`, so the caller falls back to the
//! default and the reader keeps going.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Map, Value};

/// One thing wrong with a config, located by key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Where problems accumulate while a whole config is read.
#[derive(Default, Debug)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Join a parent path and a key: `rules[0]` + `bin` = `rules[0].bin`.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A TOML table being read.
pub struct Table<'a> {
    pub path: String,
    map: Option<&'a Map<String, Value>>,
    /// Every key a getter asked for: the keys this table knows.
    known: BTreeSet<&'a str>,
}

impl<'a> Table<'a> {
    /// Read `value` as a table at `path`; a non-table value is a problem and reads as empty.
    pub fn new(path: impl Into<String>, value: Option<&'a Value>, problems: &mut Problems) -> Self {
        let path = path.into();
        let map = match value {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                problems.push(&path, format!("expected a table, found {}", kind(other)));
                None
            }
        };
        Table {
            path,
            map,
            known: BTreeSet::new(),
        }
    }

    pub fn is_present(&self) -> bool {
        self.map.is_some()
    }

    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`, marking the key as known.
    pub fn raw(&mut self, key: &'a str) -> Option<&'a Value> {
        self.known.insert(key);
        self.map?.get(key)
    }

    pub fn string(&mut self, key: &'a str, problems: &mut Problems) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                problems.push(
                    self.key_path(key),
                    format!("expected a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, key: &'a str, problems: &mut Problems) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            other => {
                problems.push(
                    self.key_path(key),
                    format!("expected true or false, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A number; strings that parse as numbers are accepted (environment overrides are strings).
    pub fn f64(&mut self, key: &'a str, problems: &mut Problems) -> Option<f64> {
        let v = self.raw(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                problems.push(
                    self.key_path(key),
                    format!("expected a number, found {}", show(v)),
                );
                None
            }
        }
    }

    /// A whole number ≥ `min`.
    pub fn count(&mut self, key: &'a str, min: u64, problems: &mut Problems) -> Option<u64> {
        let v = self.raw(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(x) if x >= min => Some(x),
            _ => {
                problems.push(
                    self.key_path(key),
                    format!("expected a whole number ≥ {min}, found {}", show(v)),
                );
                None
            }
        }
    }

    /// A duration such as `15m`, `1h 30m`, `14d`.
    pub fn duration(&mut self, key: &'a str, problems: &mut Problems) -> Option<Duration> {
        let v = self.raw(key)?;
        let parsed = match v {
            Value::String(s) => humantime::parse_duration(s.trim()).ok(),
            _ => None,
        };
        match parsed {
            Some(d) => Some(d),
            None => {
                problems.push(
                    self.key_path(key),
                    format!(
                        "{} is not a duration (write e.g. \"30s\", \"15m\", \"1h\", \"14d\")",
                        show(v)
                    ),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    pub fn strings(&mut self, key: &'a str, problems: &mut Problems) -> Option<Vec<String>> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => problems.push(
                            format!("{path}[{i}]"),
                            format!("expected a string, found {}", kind(other)),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                problems.push(
                    path,
                    format!("expected a list of strings, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// The entries of a sub-table, in key order (used for `[rules.detectors.<name>]`).
    pub fn entries(&mut self, key: &'a str, problems: &mut Problems) -> Vec<(&'a str, &'a Value)> {
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Some(other) => {
                problems.push(
                    self.key_path(key),
                    format!("expected a table, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    /// An array of tables (`[[rules]]`); a missing key reads as `None`.
    pub fn array(&mut self, key: &'a str, problems: &mut Problems) -> Option<&'a [Value]> {
        match self.raw(key)? {
            Value::Array(items) => Some(items),
            other => {
                problems.push(
                    self.key_path(key),
                    format!("expected an array of tables, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Report every key that no getter asked for.
    pub fn finish(self, problems: &mut Problems) {
        let Some(map) = self.map else { return };
        let allowed: Vec<&str> = self.known.iter().copied().collect();
        for key in map.keys() {
            if !self.known.contains(key.as_str()) {
                let hint = if allowed.is_empty() {
                    String::new()
                } else {
                    format!(" (known here: {})", allowed.join(", "))
                };
                problems.push(join(&self.path, key), format!("unknown key{hint}"));
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}
