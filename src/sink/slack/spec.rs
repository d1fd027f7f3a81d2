//! The `kind = "slack"` table.

use std::path::PathBuf;
use std::time::Duration;

use crate::config_reader::{Problems, Table};
use crate::retry::RetryPolicy;
use crate::sink::route::SinkRoute;
use crate::sink::spec::{read_api_url, read_retry, read_timeout, refuse_secret};

pub const DEFAULT_URL: &str = "https://slack.com/api";

/// A validated `kind = "slack"` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackSpec {
    /// The Web API's base URL (`chat.postMessage` is appended).
    pub url: String,
    /// The environment variable holding the bot token.
    pub token_env: String,
    /// A channel id (`C0123456789`) or name (`#security-alerts`).
    pub channel: String,
    pub timeout: Duration,
    /// The least pause after `ratelimited` without a `Retry-After`.
    pub rate_limit_wait: Duration,
    pub retry: RetryPolicy,
    pub route: SinkRoute,
    /// Where the messages' `ts` are kept (`daemon.state_dir`).
    pub state_dir: PathBuf,
}

impl SlackSpec {
    pub(in crate::sink) fn read(t: &mut Table<'_>, problems: &mut Problems) -> Option<SlackSpec> {
        refuse_secret(t, problems, "token", "the bot token");
        let url = read_api_url(t, problems, DEFAULT_URL)
            .trim_end_matches('/')
            .to_string();
        let timeout = read_timeout(t, problems);
        let rate_limit_wait = t
            .duration("rate_limit_wait", problems)
            .unwrap_or(Duration::from_secs(30));
        let retry = read_retry(t, problems);
        let route = SinkRoute::read(t, problems);
        let channel = match t.string("channel", problems) {
            Some(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
            Some(_) => {
                problems.push(t.key_path("channel"), "must name a channel");
                None
            }
            None => {
                problems.push(
                    t.key_path("channel"),
                    "is required for a slack sink: a channel id such as \"C0123456789\" or a name such as \"#security-alerts\"",
                );
                None
            }
        };
        let token_env = match t.string("token_env", problems) {
            Some(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Some(_) => {
                problems.push(t.key_path("token_env"), "must name an environment variable");
                None
            }
            None => {
                problems.push(
                    t.key_path("token_env"),
                    "is required for a slack sink: the environment variable that holds the bot token (xoxb-…, with chat:write)",
                );
                None
            }
        };
        Some(SlackSpec {
            url,
            token_env: token_env?,
            channel: channel?,
            timeout,
            rate_limit_wait,
            retry,
            route,
            state_dir: PathBuf::from("state"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;
    use crate::sink::SinkSpec;

    #[test]
    fn config_is_read_and_the_token_stays_out_of_it() {
        let c = from_toml(
            r##"
            [daemon]
            state_dir = "/var/lib/authpulse"
            [[sinks]]
            kind = "slack"
            token_env = "AUTHPULSE_SLACK_TOKEN"
            channel = "#security-alerts"
            url = "http://127.0.0.1:9/api/"
            route = { statuses = ["firing", "resolved"] }
            "##,
        )
        .unwrap();
        let SinkSpec::Slack(s) = &c.sinks[0] else {
            panic!("{:?}", c.sinks)
        };
        assert_eq!(s.url, "http://127.0.0.1:9/api");
        assert_eq!(s.channel, "#security-alerts");
        assert_eq!(s.token_env, "AUTHPULSE_SLACK_TOKEN");
        assert_eq!(s.state_dir, PathBuf::from("/var/lib/authpulse"));
        assert_eq!(s.rate_limit_wait, Duration::from_secs(30));
        let problems: Vec<String> = match from_toml(
            "[[sinks]]\nkind = \"slack\"\ntoken = \"xoxb-SECRET-in-file\"\nurl = \"slack.com\"\n",
        ) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        };
        for want in [
            "sinks[0].token: the bot token does not belong in the config file",
            "sinks[0].url: must be an http:// or https:// URL",
            "sinks[0].channel: is required for a slack sink",
            "sinks[0].token_env: is required for a slack sink",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(want)),
                "{want:?} in {problems:#?}"
            );
        }
        assert!(
            problems.iter().all(|p| !p.contains("SECRET")),
            "{problems:#?}"
        );
    }
}
