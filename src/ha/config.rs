//! `[ha]`: several replicas share one DynamoDB table for leases and alert state.
//!
//! ```toml
//! [ha]
//! table = "authpulse"      # required: the DynamoDB table (absent [ha] = one instance, local files)
//! lease = "15s"            # a leader that has not renewed for this long is taken over
//! region = "eu-west-1"     # optional: else the source's, else the SDK's default chain
//! endpoint_url = "..."     # optional: else the source's, else AWS_ENDPOINT_URL / the SDK's
//! create_table = true      # create the table (on-demand, TTL) when it is missing
//! replica_id = "task-1"    # optional: how this replica names itself (default host-pid-random)
//! ```

use std::time::Duration;

use crate::config_reader::{Problems, Table};

/// The shortest lease accepted: renewals every third of it must fit a DynamoDB round trip
/// with the SDK's retries.
pub const MIN_LEASE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    pub table: String,
    pub lease: Duration,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub create_table: bool,
    pub replica_id: Option<String>,
}

impl HaConfig {
    pub fn new(table: &str) -> HaConfig {
        HaConfig {
            table: table.to_string(),
            lease: Duration::from_secs(15),
            region: None,
            endpoint_url: None,
            create_table: true,
            replica_id: None,
        }
    }

    /// Renewals (and the standbys' look at the leases) happen this often.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// Read `[ha]`; `None` when the table is absent (or broken: the problem is recorded).
    pub fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<HaConfig> {
        if !t.is_present() {
            return None;
        }
        let table = t.string("table", problems);
        let lease = t.duration("lease", problems);
        let region = t.string("region", problems);
        let endpoint_url = t.string("endpoint_url", problems);
        let create_table = t.bool("create_table", problems);
        let replica_id = t.string("replica_id", problems);
        let mut ok = true;
        match &table {
            None => {
                problems.push(
                    t.key_path("table"),
                    "is required when [ha] is set (the DynamoDB table that holds leases and alert state)",
                );
                ok = false;
            }
            Some(name) if !valid_table_name(name) => {
                problems.push(
                    t.key_path("table"),
                    format!("{name:?} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)"),
                );
                ok = false;
            }
            Some(_) => {}
        }
        if let Some(l) = lease {
            if l < MIN_LEASE {
                problems.push(
                    t.key_path("lease"),
                    format!(
                        "{} is too short (at least {})",
                        humantime::format_duration(l),
                        humantime::format_duration(MIN_LEASE)
                    ),
                );
                ok = false;
            }
        }
        if let Some(url) = &endpoint_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(
                    t.key_path("endpoint_url"),
                    format!("{url:?} is not an http(s) URL"),
                );
                ok = false;
            }
        }
        if replica_id.as_deref().is_some_and(str::is_empty) {
            problems.push(t.key_path("replica_id"), "must not be empty");
            ok = false;
        }
        let mut c = HaConfig::new(table.as_deref().unwrap_or_default());
        if let Some(l) = lease {
            c.lease = l;
        }
        c.region = region;
        c.endpoint_url = endpoint_url;
        c.create_table = create_table.unwrap_or(true);
        c.replica_id = replica_id;
        ok.then_some(c)
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value) -> (Option<HaConfig>, Vec<String>) {
        let mut problems = Problems::default();
        let mut t = Table::new("ha", Some(&v), &mut problems);
        let c = HaConfig::read(&mut t, &mut problems);
        t.finish(&mut problems);
        (c, problems.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_full_table_reads() {
        let (c, p) = read(
            json!({"table": "authpulse-ha", "lease": "10s", "region": "eu-west-1",
            "endpoint_url": "http://127.0.0.1:4566", "create_table": false, "replica_id": "a"}),
        );
        assert!(p.is_empty(), "{p:?}");
        let c = c.unwrap();
        assert_eq!(c.table, "authpulse-ha");
        assert_eq!(c.lease, Duration::from_secs(10));
        assert_eq!(c.renew_every(), Duration::from_secs(10) / 3);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(!c.create_table);
        assert_eq!(c.replica_id.as_deref(), Some("a"));
    }

    #[test]
    fn defaults_and_absence() {
        let (c, p) = read(json!({"table": "t-1"}));
        assert!(p.is_empty());
        assert_eq!(c, Some(HaConfig::new("t-1")));
        let mut problems = Problems::default();
        let mut t = Table::new("ha", None, &mut problems);
        assert_eq!(HaConfig::read(&mut t, &mut problems), None);
        assert!(problems.0.is_empty());
    }

    #[test]
    fn every_problem_names_its_key() {
        let (c, p) = read(json!({"lease": "1s", "endpoint_url": "localhost:4566",
            "replica_id": "", "colour": 1}));
        assert!(c.is_none());
        let want = [
            "ha.table: is required",
            "ha.lease: 1s is too short",
            "ha.endpoint_url: \"localhost:4566\" is not an http(s) URL",
            "ha.replica_id: must not be empty",
            "ha.colour: unknown key",
        ];
        for w in want {
            assert!(
                p.iter().any(|l| l.starts_with(w)),
                "missing {w:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
        let (_, p) = read(json!({"table": "a b", "lease": "soon"}));
        assert!(p
            .iter()
            .any(|l| l.starts_with("ha.table: \"a b\" is not a DynamoDB table name")));
        assert!(p
            .iter()
            .any(|l| l.starts_with("ha.lease: \"soon\" is not a duration")));
    }
}
