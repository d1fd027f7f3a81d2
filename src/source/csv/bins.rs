//! Rows of counts into the pipeline's updates: each rule's bins, summed from the rows.

use std::collections::BTreeMap;

use super::Parsed;
use crate::rule::RuleSpec;
use crate::series::{BinIndex, Counts, Labels, RuleId, Update};

/// Why a rule cannot take the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub rule: String,
    pub reason: String,
}

/// The pipeline updates for every rule that can take a single series of counts (rules
/// without `split_by`), in bin order. Rules that cannot are returned with the reason.
pub fn updates(parsed: &Parsed, rules: &[RuleSpec]) -> (Vec<Update>, Vec<Skipped>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut times: Vec<i64> = parsed.rows.iter().map(|r| r.ms).collect();
    times.sort_unstable();
    // The file's resolution: the smallest step between rows.
    let step = times.windows(2).map(|w| w[1] - w[0]).min();
    for (i, rule) in rules.iter().enumerate() {
        if rule.split_by.is_some() {
            skipped.push(Skipped {
                rule: rule.name.clone(),
                reason: "it splits series by a field a CSV of counts does not have".into(),
            });
            continue;
        }
        let bin_ms = rule.bin_ms().max(1);
        if let Some(step) = step.filter(|&s| s > bin_ms) {
            skipped.push(Skipped {
                rule: rule.name.clone(),
                reason: format!(
                    "the file has a row every {} but the rule bins by {}: most bins would look empty (use a rule with bin = \"{}\")",
                    humantime::format_duration(std::time::Duration::from_millis(step as u64)),
                    rule.bin_literal(),
                    humantime::format_duration(std::time::Duration::from_millis(step as u64)),
                ),
            });
            continue;
        }
        // Sum rows into the rule's bins; a bin is unknown only if all its rows were.
        let mut bins: BTreeMap<i64, Option<Counts>> = BTreeMap::new();
        for r in &parsed.rows {
            let slot = bins.entry(r.ms.div_euclid(bin_ms)).or_insert(None);
            if let Some(c) = r.counts {
                // Saturating: rows near 2^64 summed into one bin overflowed (found by the
                // fuzz driver).
                let sum = slot.get_or_insert_with(Counts::default);
                sum.total = sum.total.saturating_add(c.total);
                sum.success = sum.success.saturating_add(c.success);
                sum.failure = sum.failure.saturating_add(c.failure);
            }
        }
        // As in the event binner: the first day of a gap is closed bin by bin, the rest
        // skipped as unknown in one step.
        let max_silent = (crate::source::binner::MAX_SILENCE.as_millis() as i64 / bin_ms).max(1);
        let mut last: Option<i64> = None;
        for (bin, counts) in bins {
            if let Some(last) = last.filter(|l| bin - (l + 1) > max_silent) {
                out.push(Update::Close {
                    rule: RuleId(i),
                    end_bin: BinIndex(last + 1 + max_silent),
                });
                out.push(Update::Skip {
                    rule: RuleId(i),
                    end_bin: BinIndex(bin),
                });
            }
            last = Some(bin);
            out.push(match counts {
                Some(counts) => Update::Observe {
                    rule: RuleId(i),
                    bin: BinIndex(bin),
                    labels: Labels::new(),
                    counts,
                },
                None => Update::Unknown {
                    rule: RuleId(i),
                    bin: BinIndex(bin),
                },
            });
            out.push(Update::Close {
                rule: RuleId(i),
                end_bin: BinIndex(bin + 1),
            });
        }
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const T0: i64 = 1_795_601_700_000; // 2026-11-25T10:15:00Z

    #[test]
    fn rows_become_bins_of_each_rule() {
        let p = parse("2026-11-25T10:15:00Z,10,1\n2026-11-25T10:20:00Z,5,1\n2026-11-25T10:25:00Z,,\n2026-11-25T11:00:00Z,,\n");
        let mut split = RuleSpec::named("per-ip");
        split.split_by = Some("client.ipAddress".into());
        let (u, skipped) = updates(&p, &[RuleSpec::named("r"), split]);
        assert_eq!(skipped.len(), 1);
        let bin = T0 / 900_000;
        assert_eq!(
            u,
            vec![
                Update::Observe {
                    rule: RuleId(0),
                    bin: BinIndex(bin),
                    labels: Labels::new(),
                    counts: Counts {
                        total: 15,
                        success: 13,
                        failure: 2,
                        ..Counts::default()
                    }
                },
                Update::Close {
                    rule: RuleId(0),
                    end_bin: BinIndex(bin + 1)
                },
                Update::Unknown {
                    rule: RuleId(0),
                    bin: BinIndex(bin + 3)
                },
                Update::Close {
                    rule: RuleId(0),
                    end_bin: BinIndex(bin + 4)
                },
            ]
        );
    }

    #[test]
    fn a_coarser_file_than_the_rule_is_refused_for_that_rule() {
        let p = parse("2026-11-25T10:00:00Z,10\n2026-11-25T11:00:00Z,12\n");
        let (u, skipped) = updates(&p, &[RuleSpec::named("r")]);
        assert!(u.is_empty());
        assert!(skipped[0].reason.contains("1h"), "{skipped:?}");
    }

    /// Found by the fuzz driver: rows near 2^64 summed into one rule bin overflowed.
    #[test]
    fn rows_summed_into_one_bin_saturate() {
        let max = u64::MAX;
        let p = parse(&format!(
            "timestamp,total\n2026-11-25T10:00:00Z,{max}\n2026-11-25T10:05:00Z,{max}\n"
        ));
        let (updates, _) = updates(&p, &[RuleSpec::named("r")]);
        let totals: Vec<u64> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Observe { counts, .. } => Some(counts.total),
                _ => None,
            })
            .collect();
        assert_eq!(totals, [max]);
    }
}
