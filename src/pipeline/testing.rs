//! What the pipeline's tests share: a rule, counts, steady traffic, a source address.

use super::Pipeline;
use crate::alert::Alert;
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Counts, Labels, RuleId};

pub(super) fn rule() -> RuleSpec {
    let mut r = RuleSpec::named("t");
    r.warmup = std::time::Duration::from_secs(86_400);
    r
}

pub(super) fn c(total: u64, failure: u64) -> Counts {
    Counts {
        total,
        success: total - failure,
        failure,
        ..Counts::default()
    }
}

/// Feed `days` of steady traffic (100 attempts, 5 failures per bin).
pub(super) fn steady(p: &mut Pipeline, bins: std::ops::Range<i64>, out: &mut Vec<Alert>) {
    for b in bins {
        p.observe(RuleId(0), BinIndex(b), Labels::new(), c(100, 5));
        p.close_through(RuleId(0), BinIndex(b + 1), out);
    }
}

pub(super) fn ip(v: &str) -> Labels {
    [("client.ipAddress".to_string(), v.to_string())].into()
}
