//! The config file: TOML, read through the `config` crate so that every key can be
//! overridden from the environment as `AUTHPULSE__SECTION__KEY`
//! (`AUTHPULSE__SOURCE__REGION=eu-west-1`, lists comma-separated).
//!
//! Loading never stops at the first mistake: [`load`] returns every problem, each naming
//! its key path, so an operator fixes a config in one round trip. `check-config` prints
//! them and `run` refuses to start with the same messages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use crate::config_reader::Problem;
use crate::config_reader::{Problems, Table};
use crate::source::config::{SourceConfig, SourceKind};

use crate::rule::RuleSpec;
use crate::sink::SinkSpec;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub source: SourceConfig,
    pub rules: Vec<RuleSpec>,
    pub sinks: Vec<SinkSpec>,
    /// `[enrichment]`: follow-up queries on failure-type alerts (see `sink::enrich`).
    pub enrichment: crate::notify::enrich::EnrichSpec,
    /// `[[mute]]`: maintenance windows in which alerts are not sent (see `mute`).
    pub mutes: Vec<crate::notify::mute::Mute>,
    /// `[ha]`: replicas sharing leases and alert state in DynamoDB (`None`: one
    /// instance, local files).
    pub ha: Option<crate::ha::HaConfig>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where alert state and the delivery outbox live.
    pub state_dir: PathBuf,
    /// Health, readiness and metrics.
    pub http_listen: SocketAddr,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `authpulse=debug`.
    pub log_level: String,
    /// CloudWatch source: while loading history on start, alerts about bins older than
    /// this are logged, not paged — except incidents still firing when the history is
    /// loaded, which page once.
    pub page_history: Duration,
    /// The environment variable holding the bearer token of the HTTP API's write
    /// endpoints (silences); unset or empty: they refuse every request.
    pub api_token_env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: PathBuf::from("state"),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 9750)),
            log_format: LogFormat::Text,
            log_level: "info".to_string(),
            page_history: Duration::from_secs(3600),
            api_token_env: "AUTHPULSE_API_TOKEN".to_string(),
        }
    }
}

impl Config {
    /// The configuration used when no file is given: built-in rules, stdout sink.
    pub fn builtin() -> Config {
        Config {
            daemon: DaemonConfig::default(),
            source: SourceConfig::default(),
            rules: RuleSpec::builtin(),
            sinks: vec![SinkSpec::stdout()],
            enrichment: Default::default(),
            mutes: Vec::new(),
            ha: None,
        }
    }
}

/// Everything wrong with a config, one [`Problem`] per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<Problem>);

/// Load a config file, apply `AUTHPULSE__*` environment overrides, and validate it.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let at_file = |message: String| {
        ConfigErrors(vec![Problem {
            path: path.display().to_string(),
            message,
        }])
    };
    if !path.is_file() {
        return Err(at_file("no such file".to_string()));
    }
    let tree = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(environment())
        .build()
        .map_err(|e| at_file(e.to_string()))?;
    let value: Value = tree.try_deserialize().map_err(|e| at_file(e.to_string()))?;
    from_value(&value)
}

/// Parse a config from TOML text (with no environment overrides); used by tests and demos.
pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
    let tree = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .map_err(|e| {
            ConfigErrors(vec![Problem {
                path: "<config>".into(),
                message: e.to_string(),
            }])
        })?;
    let value: Value = tree.try_deserialize().map_err(|e| {
        ConfigErrors(vec![Problem {
            path: "<config>".into(),
            message: e.to_string(),
        }])
    })?;
    from_value(&value)
}

fn environment() -> config::Environment {
    config::Environment::with_prefix("AUTHPULSE")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("source.log_groups")
}

/// Validate a parsed config tree.
pub fn from_value(value: &Value) -> Result<Config, ConfigErrors> {
    let mut problems = Problems::default();
    let mut top = Table::new("", Some(value), &mut problems);

    let daemon = sub_table(&mut top, "daemon", &mut problems, read_daemon);
    let source = sub_table(&mut top, "source", &mut problems, SourceConfig::read);
    let rules = read_rules(&mut top, &mut problems);
    let mut sinks = match top.array("sinks", &mut problems) {
        None => vec![SinkSpec::stdout()],
        Some(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| SinkSpec::read(&format!("sinks[{i}]"), v, &mut problems))
            .collect(),
    };
    let mutes = top
        .array("mute", &mut problems)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            crate::notify::mute::Mute::read(&format!("mute[{i}]"), v, &mut problems)
        })
        .collect();
    let enrichment = sub_table(
        &mut top,
        "enrichment",
        &mut problems,
        crate::notify::enrich::EnrichSpec::read,
    );
    let ha = sub_table(&mut top, "ha", &mut problems, crate::ha::HaConfig::read);
    top.finish(&mut problems);

    if source.kind == SourceKind::Cloudwatch && source.log_groups.is_empty() {
        problems.push(
            "source.log_groups",
            "must name at least one log group when source.kind = \"cloudwatch\"",
        );
    }

    for s in &mut sinks {
        s.with_http_listen(daemon.http_listen);
        s.with_state_dir(&daemon.state_dir);
    }
    if problems.0.is_empty() {
        Ok(Config {
            daemon,
            source,
            rules,
            sinks,
            enrichment,
            mutes,
            ha,
        })
    } else {
        Err(ConfigErrors(problems.0))
    }
}

/// The table `key` of `top`, read by `read` and checked for unknown keys.
fn sub_table<'a, T>(
    top: &mut Table<'a>,
    key: &'static str,
    problems: &mut Problems,
    read: impl FnOnce(&mut Table<'a>, &mut Problems) -> T,
) -> T {
    let mut t = Table::new(key, top.raw(key), problems);
    let value = read(&mut t, problems);
    t.finish(problems);
    value
}

/// `[[rules]]` (the built-in rules when there are none), each taking the top-level
/// `timezone` unless it names its own; two rules may not share a name.
fn read_rules(top: &mut Table<'_>, problems: &mut Problems) -> Vec<RuleSpec> {
    let timezone = crate::rule::read_timezone(top, problems);
    let mut rules = match top.array("rules", problems) {
        None => RuleSpec::builtin(),
        Some([]) => {
            problems.push("rules", "is empty: remove it to use the built-in rules");
            Vec::new()
        }
        Some(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| RuleSpec::read(&format!("rules[{i}]"), v, problems))
            .collect(),
    };
    // The top-level `timezone` is every rule's default (seasons in local time).
    if let (Some(tz), Some(items)) = (timezone, top.raw("rules").and_then(|v| v.as_array())) {
        for (r, v) in rules.iter_mut().zip(items) {
            if v.get("timezone").is_none() {
                r.timezone = Some(tz);
            }
        }
    } else if let Some(tz) = timezone {
        for r in &mut rules {
            r.timezone = Some(tz);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        if !seen.insert(r.name.clone()) {
            problems.push(
                format!("rules[{i}].name"),
                format!("{:?} is used by an earlier rule", r.name),
            );
        }
    }

    rules
}

fn read_daemon<'a>(t: &mut Table<'a>, problems: &mut Problems) -> DaemonConfig {
    let mut d = DaemonConfig::default();
    if let Some(dir) = t.string("state_dir", problems) {
        d.state_dir = PathBuf::from(dir);
    }
    if let Some(addr) = t.string("http_listen", problems) {
        match addr.parse() {
            Ok(a) => d.http_listen = a,
            Err(_) => problems.push(
                t.key_path("http_listen"),
                format!("{addr:?} is not an address:port such as \"127.0.0.1:9750\""),
            ),
        }
    }
    match t.string("log_format", problems).as_deref() {
        None => {}
        Some("text") => d.log_format = LogFormat::Text,
        Some("json") => d.log_format = LogFormat::Json,
        Some(other) => problems.push(
            t.key_path("log_format"),
            format!("{other:?} is not one of \"text\", \"json\""),
        ),
    }
    if let Some(age) = t.duration("page_history", problems) {
        d.page_history = age;
    }
    if let Some(var) = t.string("api_token_env", problems) {
        if var.trim().is_empty() || var.contains('=') {
            problems.push(
                t.key_path("api_token_env"),
                "must name an environment variable (the token itself does not belong in the file)",
            );
        } else {
            d.api_token_env = var.trim().to_string();
        }
    }
    if let Some(level) = t.string("log_level", problems) {
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            problems.push(
                t.key_path("log_level"),
                format!("{level:?} is not a log filter such as \"info\" or \"authpulse=debug\""),
            );
        } else {
            d.log_level = level;
        }
    }
    d
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every problem `from_toml` finds in `toml`, as printed (none when it reads).
    pub(crate) fn problems(toml: &str) -> Vec<String> {
        match from_toml(toml) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn empty_config_is_the_builtin_one() {
        let c = from_toml("").unwrap();
        assert_eq!(c.rules.len(), RuleSpec::builtin().len());
        assert!(matches!(c.sinks[..], [SinkSpec::Stdout { .. }]));
    }

    #[test]
    fn minimal_rule_gets_default_detectors() {
        let c = from_toml("[[rules]]\nname = \"s\"\nbin = \"5m\"\n").unwrap();
        assert_eq!(c.rules[0].bin, Duration::from_secs(300));
        assert_eq!(c.rules[0].event_types, crate::rule::DEFAULT_EVENT_TYPES);
        assert!(c.rules[0].detectors.len() >= 4);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let p = problems(
            r#"
            colour = "red"
            [daemon]
            http_listen = "nowhere"
            [source]
            kind = "cloudwatch"
            log_groups = []
            [[rules]]
            name = "a"
            bin = "banana"
            [rules.detectors.failure_spike]
            p_value = 1.5
            min_cnt = 3
            [rules.detectors.guess]
            [[rules]]
            name = "b"
            bin = "7m"
            [[sinks]]
            kind = "webhook"
            "#,
        );
        let expect = [
            "colour: unknown key",
            "daemon.http_listen: \"nowhere\" is not an address",
            "source.log_groups: must name at least one log group",
            "rules[0].bin: \"banana\" is not a duration",
            "rules[0].detectors.failure_spike.p_value: must be between 0 and 1",
            "rules[0].detectors.failure_spike.min_cnt: unknown key",
            "rules[0].detectors.guess: unknown detector",
            "rules[1].bin: 7m does not divide an hour",
            "sinks[0].url: is required for a webhook sink",
        ];
        for e in expect {
            assert!(
                p.iter().any(|line| line.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn bins_must_divide_an_hour_or_a_day() {
        assert!(problems("[[rules]]\nname='a'\nbin='15m'").is_empty());
        assert!(problems("[[rules]]\nname='a'\nbin='2h'").is_empty());
        assert!(!problems("[[rules]]\nname='a'\nbin='5h'").is_empty());
        assert!(!problems("[[rules]]\nname='a'\nbin='70s'").is_empty());
        assert!(!problems("[[rules]]\nname='a'\nbin='0s'").is_empty());
    }

    #[test]
    fn duplicate_rule_names_are_rejected() {
        let p = problems("[[rules]]\nname='a'\n[[rules]]\nname='a'\n");
        assert_eq!(p, vec!["rules[1].name: \"a\" is used by an earlier rule"]);
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        let p = problems("[[rules]\nname=");
        assert_eq!(p.len(), 1);
    }
}
