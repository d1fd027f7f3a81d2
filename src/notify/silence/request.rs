//! An operator's request for a silence: checked before it is added, and given an id.

use sha2::{Digest, Sha256};

use super::set::Matcher;
use crate::alert::AlertDetector;

/// Silences not yet expired, at most.
pub const MAX_SILENCES: usize = 1000;
/// The longest silence: longer ones belong in the config (`[[mute]]`).
pub const MAX_DURATION_MS: i64 = 90 * 86_400_000;
/// Longest `reason` and `created_by`, in characters.
pub(super) const MAX_TEXT: usize = 1000;

/// A request for a new silence (validated by [`super::Silences::add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    pub matcher: Matcher,
    pub duration_ms: i64,
    pub created_by: String,
    pub reason: String,
}

/// Why a silence cannot be added or expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no silence has id {0:?}")]
    NotFound(String),
    #[error("{MAX_SILENCES} silences are already in force: expire some first")]
    Full,
    #[error("cannot save the silences: {0}")]
    Save(String),
}

/// Check an operator's silence request.
pub(super) fn validate(new: &NewSilence) -> Result<(), SilenceError> {
    let bad = |m: String| Err(SilenceError::Invalid(m));
    if new.matcher.rule.trim().is_empty() {
        return bad("rule: must name a rule".into());
    }
    if let Some(d) = &new.matcher.detector {
        if AlertDetector::from_name(d).is_none() {
            let known: Vec<&str> = crate::detect::DetectorKind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            return bad(format!(
                "detector: {d:?} is not a detector (known: {}, {})",
                known.join(", "),
                crate::alert::SOURCE_UNAVAILABLE
            ));
        }
    }
    for (k, v) in &new.matcher.series {
        if k.trim().is_empty() || v.is_empty() {
            return bad(format!(
                "series: {k:?}={v:?} needs a label name and a value (key=value)"
            ));
        }
    }
    if new.duration_ms <= 0 {
        return bad("duration: must be greater than 0".into());
    }
    if new.duration_ms > MAX_DURATION_MS {
        return bad(
            "duration: at most 90 days (a longer silence is a config change: use [[mute]])".into(),
        );
    }
    if new.reason.trim().is_empty() {
        return bad("reason: say why (it is shown on the status page)".into());
    }
    if new.created_by.trim().is_empty() {
        return bad("created_by: say who is silencing".into());
    }
    if new.reason.chars().count() > MAX_TEXT || new.created_by.chars().count() > MAX_TEXT {
        return bad(format!(
            "reason and created_by: at most {MAX_TEXT} characters"
        ));
    }
    Ok(())
}

/// A short id that does not repeat: a hash of the time, the process and a counter.
pub(super) fn new_id(now_ms: i64, matcher: &Matcher) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(now_ms.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(matcher.describe().as_bytes());
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::notify::silence::set::tests::matcher;

    const HOUR: i64 = 3_600_000;

    pub(crate) fn new(m: Matcher, hours: i64) -> NewSilence {
        NewSilence {
            matcher: m,
            duration_ms: hours * HOUR,
            created_by: "alice".into(),
            reason: "office NAT rebooting".into(),
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let cases = [
            (new(matcher(" ", None, &[]), 1), "rule: must name a rule"),
            (
                new(matcher("r", Some("spikes"), &[]), 1),
                "detector: \"spikes\" is not a detector",
            ),
            (
                new(matcher("r", None, &[("ip", "")]), 1),
                "series: \"ip\"=\"\" needs",
            ),
            (
                new(matcher("r", None, &[]), 0),
                "duration: must be greater than 0",
            ),
            (
                new(matcher("r", None, &[]), 24 * 91),
                "duration: at most 90 days",
            ),
        ];
        for (req, want) in cases {
            let e = validate(&req).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
        let mut no_reason = new(matcher("r", None, &[]), 1);
        no_reason.reason = "  ".into();
        assert!(validate(&no_reason)
            .unwrap_err()
            .to_string()
            .starts_with("reason:"));
    }

    #[test]
    fn ids_do_not_repeat() {
        let m = matcher("r", None, &[]);
        let a = new_id(5, &m);
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_id(5, &m), "same time, same matcher");
    }
}
