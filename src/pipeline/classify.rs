//! Classification: what one bin's finding most likely is (see [`crate::alert_kind`] for
//! the kinds and the signals that name them).

use crate::alert_kind::{AlertKind, Verdict};
use crate::detect::baseline::Expected;
use crate::detect::beyond_retry_storm;
use crate::detect::{DetectorKind, Finding};
use crate::series::Counts;
use crate::stats::CountModel;

/// How many sources of one split rule must fire in the same bin before their alerts
/// read as one distributed attack rather than one sprayer each.
pub const MANY_SOURCES: usize = 5;

/// What one bin's finding most likely means.
pub fn classify(
    detector: DetectorKind,
    c: &Counts,
    expected: Option<&Expected>,
    f: &Finding,
    window_bins: u32,
    bin_ms: i64,
) -> Verdict {
    let hours = f64::from(window_bins) * bin_ms as f64 / 3_600_000.0;
    let pct = |x: f64, of: f64| if of > 0.0 { 100.0 * x / of } else { 0.0 };
    let (kind, reason) = match detector {
        DetectorKind::Flatline => (
            AlertKind::PipelineGap,
            format!(
                "no events at all where about {:.0} were expected: delivery from Okta through EventBridge to CloudWatch Logs is broken (or Okta is down for everyone)",
                f.expected
            ),
        ),
        DetectorKind::VolumeDrop => (AlertKind::Outage, volume_drop_reason(c, f)),
        DetectorKind::SuccessDrop => (
            AlertKind::Outage,
            format!(
                "successes fell to {:.0}% of normal while {} attempts still arrived and {} failed: Okta or a directory agent is rejecting sign-ins",
                pct(f.observed, f.expected),
                c.total,
                c.failure
            ),
        ),
        DetectorKind::PushFatigue => (
            AlertKind::MfaPushFatigue,
            format!(
                "{:.0} pushes to one user in {hours:.0} h left unapproved (a person approves the pushes they asked for): someone with the password is pushing until the user gives in",
                f.observed
            ),
        ),
        DetectorKind::DistinctUsers => (
            AlertKind::PasswordSpraying,
            format!(
                "{:.0} distinct users failed from this one source within {hours:.0} h, and it rarely or never succeeded: one password tried across many accounts",
                f.observed
            ),
        ),
        DetectorKind::DistributedSpraying => (
            AlertKind::PasswordSpraying,
            format!(
                "{} for two or more accounts, one try per account, with no success in {hours:.0} h ({} accounts in all; {:.0} sources, an address with more accounts, or with two of the organisation's own, counting twice; usually about {:.0}): {}",
                if c.failed_ips == 1 { "1 address failed".to_string() } else { format!("{} addresses each failed", c.failed_ips) },
                c.failed_users,
                f.observed,
                f.expected,
                if c.failed_ips == 1 {
                    "an address back for another of the organisation's accounts, how a sprayer spreading its tries over addresses and hours begins"
                } else {
                    "one sprayer spreading its tries over addresses and hours"
                }
            ),
        ),
        DetectorKind::FailingSources => (
            AlertKind::CredentialStuffing,
            format!(
                "{:.0} addresses new {} failed on usernames Okta could not resolve or with ThreatInsight's flag, without a single success (usually about {:.0}): many addresses, each trying a few credentials leaked elsewhere",
                f.observed,
                over_bins(f),
                f.expected
            ),
        ),
        DetectorKind::FailureSpike | DetectorKind::FailureRatio | DetectorKind::VolumeSpike => {
            return failures(detector, c, expected);
        }
    };
    Verdict { kind, reason }
}

/// Why a sudden drop in volume reads as an outage. A series without outcomes (a CSV
/// of plain counts: neither successes nor failures) says only that it fell: a success
/// share it does not have would be made up.
fn volume_drop_reason(c: &Counts, f: &Finding) -> String {
    let pct = |x: f64, of: f64| if of > 0.0 { 100.0 * x / of } else { 0.0 };
    let fell = pct(f.observed, f.expected);
    if c.total > 0 && c.success == 0 && c.failure == 0 {
        return format!(
            "counts fell in one step to {fell:.0}% of normal after a normal hour (this series carries no outcomes, so whether what arrives succeeds is not known): whatever feeds it stopped reaching it"
        );
    }
    format!(
        "attempts fell in one step to {fell:.0}% of normal after a normal hour, and {:.0}% of those that arrive still succeed: people cannot reach Okta (network, DNS or login page)",
        pct(c.success as f64, c.total as f64)
    )
}

/// Failure-type findings: outage, brute force, spraying or stuffing, by who failed.
fn failures(detector: DetectorKind, c: &Counts, expected: Option<&Expected>) -> Verdict {
    let (users, ips, failed) = (c.failed_users, c.failed_ips, c.failure);
    if let Some(e) = expected {
        if successes_collapsed(c, e) {
            return Verdict {
                kind: AlertKind::Outage,
                reason: format!(
                    "failures rose while successes fell to {:.0}% of normal: sign-ins are being rejected for everyone, not attacked",
                    100.0 * c.success as f64 / e.success
                ),
            };
        }
        if people_retrying(c, e) {
            return Verdict {
                kind: AlertKind::Outage,
                reason: format!(
                    "{failed} of {} attempts failed ({:.0} times the usual failures), {:.1} per account from no more addresses than accounts ({users} accounts, {ips} addresses): people retrying sign-ins that are being rejected, not an attack trying each account once from rotating addresses",
                    c.total,
                    failed as f64 / e.failure.max(1.0),
                    failed as f64 / users as f64
                ),
            };
        }
        if detector == DetectorKind::VolumeSpike && (failed as f64) < 3.0 * e.failure.max(3.0) {
            return Verdict {
                kind: AlertKind::TrafficSurge,
                reason: format!(
                    "{} attempts with a usual failure count ({failed}): more people or a busy integration, not an attack on passwords",
                    c.total
                ),
            };
        }
    }
    let (kind, reason) = if users <= 3 && ips >= 5 && ips >= 3 * users {
        // Few accounts or none Okta could name, from many rotating addresses: the
        // requests ThreatInsight blocks carry the user `unknown` (one "account" for all
        // of them), as a stuffing run's proxies rotate; a brute force on few accounts
        // or a stuck client comes from few addresses.
        (
            AlertKind::CredentialStuffing,
            format!("{failed} failures from {ips} sources against only {users} account(s) Okta could name (ThreatInsight's blocked requests name none): rotating addresses, as a stuffing run's proxies"),
        )
    } else if users <= 3 && failed > 0 {
        (
            AlertKind::BruteForce,
            format!("{failed} failures against only {users} account(s) from {ips} source(s): a brute force on few accounts, or a stuck client"),
        )
    } else if ips * 5 <= users {
        (
            AlertKind::PasswordSpraying,
            format!("{failed} failures against {users} accounts from only {ips} sources: few sources trying many accounts"),
        )
    } else {
        (
            AlertKind::CredentialStuffing,
            format!("{failed} failures against {users} accounts from {ips} sources: a distributed run of leaked username/password pairs"),
        )
    };
    Verdict { kind, reason }
}

/// Whether a totals bin shows an outage: sign-ins arrive but successes fell far below
/// what the baseline expects — to 70 % or less, and so far that the shortfall is beyond
/// chance (P(successes this low) < [`OUTAGE_P`] for a Poisson count with the expected
/// mean; sign-in counts scatter more than that, hence the strict bound). Judged by its
/// probability rather than a fixed size, an organisation of 300 people whose afternoon
/// bin expects 30 successes and sees none has an outage as surely as a large one; at
/// night a few missing successes stay noise. An attack on passwords adds failures and
/// leaves successes alone; an outage (a directory agent down, Okta rejecting everyone)
/// takes successes away.
/// Failures must have risen too (people retry): a quiet holiday morning, before the
/// baseline's level catches up, has fewer successes *and* fewer failures.
///
/// Or people retry until they get in (a directory agent that fails two sign-ins in
/// five): successes hold, but see [`people_retrying`].
pub fn outage_evidence(c: &Counts, expected: Option<&Expected>) -> bool {
    expected.is_some_and(|e| successes_collapsed(c, e) || people_retrying(c, e))
}

fn successes_collapsed(c: &Counts, e: &Expected) -> bool {
    (c.success as f64) < 0.7 * e.success
        && CountModel::new(e.success, 0.0).lower_tail(c.success) < OUTAGE_P
        && (c.failure as f64) >= (2.0 * e.failure).max(e.failure + 10.0)
}

/// A retry storm of people whose sign-ins are rejected: ten times the usual failures
/// and most attempts of the bin failing ([`beyond_retry_storm`]), each account failing one and a
/// half times or more, from no more addresses than accounts. An attack on passwords
/// tries each account about once (stuffing, spraying) and rotates its addresses; a
/// help-desk reset wave leaves most sign-ins succeeding. Only a series that counts
/// successes too (a rule over Okta's signals counts failures alone).
fn people_retrying(c: &Counts, e: &Expected) -> bool {
    let failed = c.failure as f64;
    e.success >= 1.0
        && c.failed_users > 3
        && beyond_retry_storm(c.failure, c.total, e.failure.max(1.0))
        && failed >= 1.5 * c.failed_users as f64
        && c.failed_ips <= c.failed_users
}

/// How unlikely the successes of a bin must be before their shortfall reads as an outage.
pub const OUTAGE_P: f64 = 1e-6;

/// When many sources of one split rule fire at once, each one is a small part of a
/// distributed attack. Which attack the addresses count cannot say: spraying from
/// several addresses tries the organisation's own accounts, stuffing tries a combo list
/// of other breaches' usernames. The verdict is spraying; the story names it stuffing
/// when the hour holds failures on unresolved usernames beyond chance
/// (`Story::recast_spraying`, asked of every verdict).
pub fn many_sources(sources: usize) -> Verdict {
    Verdict {
        kind: AlertKind::PasswordSpraying,
        reason: format!(
            "{sources} sources failed against many accounts in the same bin: one distributed run rather than one sprayer each"
        ),
    }
}

/// The `(locked-out sources)` count paged: many addresses failed on their own accounts
/// and did not get in by the end of the next bin. People who mistype get in within
/// minutes and a help-desk reset wave gets in after its reset; people Okta (or a
/// directory agent, or an MFA factor) keeps out do not: an outage for some. Unless the
/// stuffing count (new addresses on unknown usernames or flagged) is `beside` it in the
/// same bin: then the addresses are proxies whose combo list holds real usernames.
pub fn locked_out(f: &Finding, bin_ms: i64, beside_stuffing: bool) -> Verdict {
    let minutes = bin_ms / 60_000;
    let (kind, why) = if beside_stuffing {
        (
            AlertKind::CredentialStuffing,
            "new addresses on unknown usernames or flagged by ThreatInsight failed beside them: proxies whose combo list holds real usernames",
        )
    } else {
        (
            AlertKind::Outage,
            "Okta, a directory agent or a sign-in policy is keeping people out",
        )
    };
    Verdict {
        kind,
        reason: format!(
            "{:.0} addresses {} failed to sign in to their own accounts (resolved usernames, no ThreatInsight flag) and had not got in {minutes} min later (usually about {:.0}); {why}",
            f.observed,
            over_bins(f),
            f.expected
        ),
    }
}

/// Over how many bins a finding counted: "over 4 bins", or "in one bin".
fn over_bins(f: &Finding) -> String {
    if f.window_bins > 1 {
        format!("over {} bins", f.window_bins)
    } else {
        "in one bin".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::test_support::expected;
    use crate::detect::Severity;

    #[test]
    fn many_sources_firing_together_are_one_spraying_run_until_unknown_usernames_say_stuffing() {
        let v = many_sources(7);
        assert_eq!(v.kind, AlertKind::PasswordSpraying);
        assert!(v.reason.starts_with("7 sources failed"), "{}", v.reason);
    }

    fn finding(observed: f64, expected: f64) -> Finding {
        Finding {
            anomalous: true,
            observed,
            expected,
            lower: 0.0,
            upper: 0.0,
            p_value: 1e-9,
            severity: Severity::Critical,
            measure: "failed sign-ins",
            window_bins: 1,
            evidence_bins: 1,
        }
    }

    #[test]
    fn people_kept_out_of_their_own_accounts_are_an_outage() {
        let f = Finding {
            window_bins: 4,
            ..finding(22.0, 0.3)
        };
        let v = locked_out(&f, 900_000, false);
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(
            v.reason
                .starts_with("22 addresses over 4 bins failed to sign in to their own accounts"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("not got in 15 min later"), "{}", v.reason);
        // Beside the stuffing count in the same bin: proxies, not people.
        let v = locked_out(&f, 900_000, true);
        assert_eq!(v.kind, AlertKind::CredentialStuffing);
        assert!(
            v.reason.contains("combo list holds real usernames"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_drop_in_plain_counts_claims_no_success_share() {
        let plain = Counts {
            total: 40,
            ..Counts::default()
        };
        let v = classify(
            DetectorKind::VolumeDrop,
            &plain,
            None,
            &finding(40.0, 400.0),
            1,
            900_000,
        );
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(v.reason.contains("10% of normal"), "{}", v.reason);
        assert!(v.reason.contains("carries no outcomes"), "{}", v.reason);
        assert!(!v.reason.contains("still succeed"), "{}", v.reason);

        let sign_ins = Counts {
            total: 40,
            success: 30,
            failure: 10,
            ..Counts::default()
        };
        let v = classify(
            DetectorKind::VolumeDrop,
            &sign_ins,
            None,
            &finding(40.0, 400.0),
            1,
            900_000,
        );
        assert!(
            v.reason.contains("75% of those that arrive still succeed"),
            "{}",
            v.reason
        );
    }

    fn bin(success: u64, failure: u64, users: u64, ips: u64) -> Counts {
        Counts {
            total: success + failure,
            success,
            failure,
            failed_users: users,
            failed_ips: ips,
            ..Counts::default()
        }
    }

    fn kind_of(c: Counts, e: Expected) -> AlertKind {
        let f = finding(c.failure as f64, e.failure);
        classify(DetectorKind::FailureSpike, &c, Some(&e), &f, 1, 900_000).kind
    }

    #[test]
    fn who_failed_names_the_attack() {
        let e = expected(420.0, 400.0, 20.0);
        assert_eq!(
            kind_of(bin(400, 1500, 1400, 700), e),
            AlertKind::CredentialStuffing
        );
        assert_eq!(
            kind_of(bin(400, 220, 215, 23), e),
            AlertKind::PasswordSpraying
        );
        assert_eq!(kind_of(bin(400, 80, 2, 1), e), AlertKind::BruteForce);
        // Many addresses, no account: not a brute force on few accounts.
        assert_eq!(kind_of(bin(0, 17, 0, 16), e), AlertKind::CredentialStuffing);
        // They are logged with the user `unknown`: one "account" for all of them.
        assert_eq!(kind_of(bin(0, 11, 2, 10), e), AlertKind::CredentialStuffing);
        assert_eq!(kind_of(bin(400, 40, 2, 4), e), AlertKind::BruteForce);
        assert_eq!(kind_of(bin(0, 17, 0, 1), e), AlertKind::BruteForce);
        assert_eq!(kind_of(bin(90, 500, 300, 280), e), AlertKind::Outage);
    }

    #[test]
    fn a_small_organisation_has_outages_too() {
        // 300 people: an afternoon bin expects 30 successes and 4 failures; a directory
        // agent down leaves none and 82 failures from the usual people's addresses.
        let e = expected(34.0, 30.0, 4.0);
        assert_eq!(kind_of(bin(0, 82, 35, 32), e), AlertKind::Outage);
        // The same failures with successes at their usual level, one try per account
        // from rotating addresses, are an attack.
        assert_eq!(
            kind_of(bin(29, 82, 78, 80), e),
            AlertKind::CredentialStuffing
        );
        // From the usual people's addresses, two or three tries each, most attempts
        // failing: people retrying sign-ins that are rejected (an agent failing two in
        // five), whose successes hold.
        assert_eq!(kind_of(bin(29, 82, 35, 32), e), AlertKind::Outage);
        assert!(outage_evidence(&bin(29, 82, 35, 32), Some(&e)));
        // A rule over failures alone (unknown usernames tried twice each) is no outage.
        let failures_only = expected(4.0, 0.0, 4.0);
        assert!(!outage_evidence(&bin(0, 82, 35, 32), Some(&failures_only)));
        // A reset wave: most sign-ins still succeed.
        assert_eq!(
            kind_of(bin(90, 82, 35, 32), e),
            AlertKind::CredentialStuffing
        );
        // At night, 3 successes expected and none seen is chance, not an outage.
        let night = expected(4.0, 3.0, 1.0);
        assert_eq!(
            kind_of(bin(0, 40, 30, 28), night),
            AlertKind::CredentialStuffing
        );
        // A quiet holiday morning: fewer successes and fewer failures.
        assert!(!outage_evidence(&bin(5, 1, 1, 1), Some(&e)));
    }

    #[test]
    fn silence_and_drops_are_outages_or_gaps() {
        let c = bin(0, 0, 0, 0);
        let e = expected(400.0, 380.0, 20.0);
        let v = classify(
            DetectorKind::Flatline,
            &c,
            Some(&e),
            &finding(0.0, 1200.0),
            1,
            900_000,
        );
        assert_eq!(v.kind, AlertKind::PipelineGap);
        assert!(v.reason.contains("1200"), "{}", v.reason);
        let v = classify(
            DetectorKind::VolumeDrop,
            &bin(95, 5, 5, 5),
            Some(&e),
            &finding(100.0, 400.0),
            1,
            900_000,
        );
        assert_eq!(v.kind, AlertKind::Outage);
        assert!(v.reason.contains("25%"), "{}", v.reason);
    }
}
