//! The bin exchange on the table ([`BinExchange`] for [`Replica`]): the leader of a rule
//! writes every bin it read from Logs Insights, the standbys read them instead of
//! querying (what the source does with them: `source::exchange`).
//!
//! One item per bin (more, `parts`, when its series do not fit in one item), in the
//! partition `bins#<rule>#<query key>` — the key is a hash of the rule's bin width and
//! query, so a rule whose query changes starts a fresh series — sorted by bin start, with
//! a TTL of the bin's end plus the baseline window. Every write is a transaction whose
//! first item checks the rule's lease (like every other write of shared state), so a
//! replica that lost the lease cannot publish; a bin's parts are written in one
//! transaction, so a reader sees a bin whole or not at all.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::dynamo::{self, get_n, get_s, n, s, DbError, Item, Table};
use super::replica::Replica;
use crate::retry::BoxFuture;
use crate::rule::RuleSpec;
use crate::series::{Counts, FailedAccounts, Labels, Span};
use crate::source::exchange::{BinExchange, ExchangeError, SharedBin};

/// A part's body stays under this (DynamoDB's item limit is 400 KB).
const PART_BYTES: usize = 300_000;
/// A transaction holds at most 100 items (one is the lease check) and 4 MB.
const TRANSACTION_ITEMS: usize = 99;
const TRANSACTION_BYTES: usize = 3_000_000;

/// One series in a part's body: labels, then total, success, failure, failed users,
/// failed addresses.
/// One series of a bin on the wire: its labels and `[total, success, failure,
/// failed_users, failed_ips]`, followed by `first_ms, last_ms` when the leader knew when
/// the bin's first and last events happened (the standby's flatline needs them), then
/// the two keys of the failed accounts when it knew any (`distributed_spraying` needs
/// them; the times are `i64::MIN` then if unknown), then `1` when a failed attempt
/// carried ThreatInsight's flag (`failing_sources` reads it; the times and the keys are
/// `i64::MIN` and `0` then if unknown).
type Series = (Labels, Vec<i64>);

fn wire(c: &Counts) -> Vec<i64> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut out = vec![
        n(c.total),
        n(c.success),
        n(c.failure),
        n(c.failed_users),
        n(c.failed_ips),
    ];
    let accounts = !c.failed_accounts.is_empty() || c.failed_flagged;
    if let Some(span) = c.span {
        out.extend([span.first_ms, span.last_ms]);
    } else if accounts {
        out.extend([i64::MIN, i64::MIN]);
    }
    if accounts {
        out.extend(c.failed_accounts.0.map(i64::from));
    }
    if c.failed_flagged {
        out.push(1);
    }
    out
}

/// The counts of one wire series; `None` when it holds fewer than the five counts.
fn counts(v: &[i64]) -> Option<Counts> {
    let n = |i: usize| v.get(i).map(|&x| u64::try_from(x).unwrap_or(0));
    Some(Counts {
        total: n(0)?,
        success: n(1)?,
        failure: n(2)?,
        failed_users: n(3)?,
        failed_ips: n(4)?,
        span: match (v.get(5), v.get(6)) {
            (Some(&first_ms), Some(&last_ms)) if first_ms != i64::MIN => {
                Some(Span { first_ms, last_ms })
            }
            _ => None,
        },
        failed_accounts: match (v.get(7), v.get(8)) {
            (Some(&a), Some(&b)) => {
                let key = |x: i64| u32::try_from(x).unwrap_or(0);
                FailedAccounts([key(a), key(b)])
            }
            _ => FailedAccounts::default(),
        },
        failed_flagged: v.get(9) == Some(&1),
    })
}

/// The partition of `rule`'s bins.
pub fn partition(rule: &RuleSpec) -> String {
    // FNV-1a: stable across builds (the std hasher is not promised to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{}\n{}", rule.bin_ms(), rule.insights_query());
    for byte in text.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("bins#{}#{h:016x}", rule.name)
}

fn sort_key(start_ms: i64, part: usize) -> String {
    format!("{start_ms:015}#{part:03}")
}

/// The items of one bin (one per part).
pub fn encode(rule: &RuleSpec, bin: &SharedBin, token: u64) -> Result<Vec<Item>, String> {
    let mut bodies: Vec<String> = Vec::new();
    let mut part: Vec<Series> = Vec::new();
    let mut size = 0;
    for (labels, c) in &bin.series {
        let one: Series = (labels.clone(), wire(c));
        let len = serde_json::to_string(&one)
            .map_err(|e| e.to_string())?
            .len();
        if size + len > PART_BYTES && !part.is_empty() {
            bodies.push(serde_json::to_string(&part).map_err(|e| e.to_string())?);
            part.clear();
            size = 0;
        }
        size += len + 1;
        part.push(one);
    }
    if !part.is_empty() || bodies.is_empty() {
        bodies.push(serde_json::to_string(&part).map_err(|e| e.to_string())?);
    }
    let b = rule.bin_ms();
    let expires_s = ((bin.bin + 1) * b + rule.history_window().as_millis() as i64) / 1000;
    let parts = bodies.len();
    Ok(bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut item = Table::item(&partition(rule), &sort_key(bin.bin * b, i));
            item.insert("revision".into(), n(bin.revision));
            item.insert("parts".into(), n(parts));
            item.insert("unknown".into(), n(u8::from(bin.unknown)));
            item.insert("body".into(), s(body));
            item.insert("token".into(), n(token));
            item.insert(dynamo::TTL_ATTRIBUTE.into(), n(expires_s));
            item
        })
        .collect())
}

/// Whole bins from a partition's items (a bin missing a part is left out).
pub fn decode(rule: &RuleSpec, items: &[Item]) -> Vec<SharedBin> {
    // bin start → (revision, parts, unknown, part index → body)
    type Parts<'a> = (i64, i64, bool, BTreeMap<i64, &'a str>);
    let mut bins: BTreeMap<i64, Parts<'_>> = BTreeMap::new();
    for item in items {
        let Some((start, part)) = get_s(item, "sk").and_then(|k| k.split_once('#')) else {
            continue;
        };
        let (Ok(start), Ok(part)) = (start.parse::<i64>(), part.parse::<i64>()) else {
            continue;
        };
        let revision = get_n(item, "revision").unwrap_or(0);
        let parts = get_n(item, "parts").unwrap_or(1);
        let unknown = get_n(item, "unknown").unwrap_or(0) != 0;
        let body = get_s(item, "body").unwrap_or("[]");
        let entry = bins
            .entry(start)
            .or_insert((revision, parts, unknown, BTreeMap::new()));
        if revision > entry.0 {
            *entry = (revision, parts, unknown, BTreeMap::new());
        }
        if revision == entry.0 && part < entry.1 {
            entry.3.insert(part, body);
        }
    }
    let b = rule.bin_ms();
    let mut out = Vec::new();
    for (start, (revision, parts, unknown, bodies)) in bins {
        if bodies.len() as i64 != parts || start.rem_euclid(b) != 0 {
            continue;
        }
        let mut series = Vec::new();
        let mut readable = true;
        for body in bodies.values() {
            match serde_json::from_str::<Vec<Series>>(body) {
                Ok(part) => {
                    for (labels, c) in part {
                        match counts(&c) {
                            Some(counts) => series.push((labels, counts)),
                            None => {
                                tracing::warn!(rule = %rule.name, start, "shared bin with a short series; left to Logs Insights");
                                readable = false;
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(rule = %rule.name, start, %error, "unreadable shared bin; left to Logs Insights");
                    readable = false;
                }
            }
        }
        if readable {
            out.push(SharedBin {
                bin: start / b,
                revision: revision.max(0) as u32,
                unknown,
                series,
            });
        }
    }
    out
}

impl Replica {
    /// Transactions of whole bins, each led by the lease check.
    fn bin_transactions(
        &self,
        rule: &RuleSpec,
        bins: &[SharedBin],
        token: u64,
    ) -> Result<Vec<Vec<TransactWriteItem>>, DbError> {
        let check = || dynamo::lease_check(&self.table.name, &rule.name, &self.me, token);
        let mut out = Vec::new();
        let mut batch = vec![check()?];
        let mut bytes = 0;
        for bin in bins {
            let items = encode(rule, bin, token).map_err(DbError::Other)?;
            let size: usize = items
                .iter()
                .map(|i| get_s(i, "body").map_or(0, str::len))
                .sum();
            if items.len() > TRANSACTION_ITEMS || size > TRANSACTION_BYTES {
                tracing::warn!(rule = %rule.name, bin = bin.bin, series = bin.series.len(), "a bin too large to share; the other replicas read it from Logs Insights");
                continue;
            }
            if batch.len() - 1 + items.len() > TRANSACTION_ITEMS || bytes + size > TRANSACTION_BYTES
            {
                out.push(std::mem::replace(&mut batch, vec![check()?]));
                bytes = 0;
            }
            bytes += size;
            for item in items {
                batch.push(self.table.put(item, None)?);
            }
        }
        if batch.len() > 1 {
            out.push(batch);
        }
        Ok(out)
    }
}

impl BinExchange for Replica {
    fn queries(&self, rule: &str) -> bool {
        self.token(rule).is_some() || !self.coordinating.load(Ordering::SeqCst)
    }

    fn publish<'a>(
        &'a self,
        rule: &'a RuleSpec,
        bins: &'a [SharedBin],
    ) -> BoxFuture<'a, Result<(), ExchangeError>> {
        Box::pin(async move {
            let Some(token) = self.token(&rule.name) else {
                super::replica::fenced("bins");
                return Err(ExchangeError::Fenced(format!(
                    "the lease of {:?} is not ours",
                    rule.name
                )));
            };
            let unavailable = |e: DbError| ExchangeError::Unavailable(e.to_string());
            for items in self
                .bin_transactions(rule, bins, token)
                .map_err(unavailable)?
            {
                match self.table.transact("TransactWriteItems(bins)", items).await {
                    Ok(()) => {}
                    Err(DbError::Condition(0)) => {
                        let e = self.fenced(&rule.name, "bins");
                        return Err(ExchangeError::Fenced(e.to_string()));
                    }
                    Err(e) => return Err(unavailable(e)),
                }
            }
            Ok(())
        })
    }

    fn read<'a>(
        &'a self,
        rule: &'a RuleSpec,
        first: i64,
    ) -> BoxFuture<'a, Result<Vec<SharedBin>, ExchangeError>> {
        Box::pin(async move {
            let from = format!("{:015}", first * rule.bin_ms());
            let items = self
                .table
                .query_from("Query(bins)", &partition(rule), Some(&from))
                .await
                .map_err(|e| ExchangeError::Unavailable(e.to_string()))?;
            Ok(decode(rule, &items))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(b: i64, series: usize) -> SharedBin {
        SharedBin {
            bin: b,
            revision: 1,
            unknown: false,
            series: (0..series)
                .map(|i| {
                    let labels = Labels::from([("client.ipAddress".into(), format!("10.0.{i}"))]);
                    let counts = Counts {
                        total: i as u64 + 5,
                        success: 2,
                        failure: i as u64,
                        failed_users: 1,
                        failed_ips: 1,
                        // Every other series knows when its events happened.
                        span: (i % 2 == 0).then(|| Span {
                            first_ms: b * 1_000 + i as i64,
                            last_ms: b * 1_000 + 2 * i as i64,
                        }),
                        // Every third knows which accounts failed, with or without times.
                        failed_accounts: if i % 3 == 1 {
                            FailedAccounts::of(Some("00ua"), Some(&format!("00u{i}")))
                        } else {
                            FailedAccounts::default()
                        },
                        // Every fourth was flagged by ThreatInsight, with or without
                        // accounts and times.
                        failed_flagged: i % 4 == 3,
                    };
                    (labels, counts)
                })
                .collect(),
        }
    }

    #[test]
    fn bins_round_trip_through_items_and_large_ones_take_parts() {
        let rule = RuleSpec::named("per-ip");
        let small = bin(1_964_000, 3);
        let large = bin(1_964_001, 9_000);
        let mut items = encode(&rule, &small, 4).unwrap();
        let large_items = encode(&rule, &large, 4).unwrap();
        assert!(large_items.len() > 1, "{} parts", large_items.len());
        assert!(large_items
            .iter()
            .all(|i| get_s(i, "body").unwrap().len() <= PART_BYTES + 200));
        items.extend(large_items.iter().cloned());
        assert_eq!(decode(&rule, &items), vec![small.clone(), large.clone()]);
        // A bin missing a part is not a bin yet.
        let partial: Vec<Item> = items[..items.len() - 1].to_vec();
        assert_eq!(decode(&rule, &partial), vec![small.clone()]);
        // The TTL: the bin's end plus the history a series keeps.
        let end_s = (small.bin + 1) * rule.bin_ms() / 1000;
        let ttl = get_n(&items[0], dynamo::TTL_ATTRIBUTE).unwrap();
        assert_eq!(ttl - end_s, rule.history_window().as_secs() as i64);
    }

    #[test]
    fn a_series_of_fewer_than_five_counts_leaves_the_bin_to_logs_insights() {
        let rule = RuleSpec::named("r");
        let mut items = encode(&rule, &bin(3, 1), 1).unwrap();
        items[0].insert(
            "body".into(),
            s(r#"[[{"client.ipAddress":"10.0.0"},[5,2,0]]]"#),
        );
        assert_eq!(decode(&rule, &items), vec![]);
        // The older five-count form (no event times) still reads.
        items[0].insert(
            "body".into(),
            s(r#"[[{"client.ipAddress":"10.0.0"},[5,2,0,1,1]]]"#),
        );
        let got = decode(&rule, &items);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].series[0].1.span, None);
        assert_eq!(got[0].series[0].1.total, 5);
    }

    #[test]
    fn an_unknown_or_empty_bin_is_kept_as_such_and_a_newer_revision_wins() {
        let rule = RuleSpec::named("r");
        let mut unknown = bin(7, 0);
        unknown.unknown = true;
        unknown.revision = 0;
        let mut first = bin(8, 2);
        first.revision = 0;
        let second = bin(8, 1);
        let mut items = encode(&rule, &unknown, 1).unwrap();
        items.extend(encode(&rule, &first, 1).unwrap());
        items.extend(encode(&rule, &second, 1).unwrap());
        assert_eq!(decode(&rule, &items), vec![unknown, second]);
    }

    #[test]
    fn the_partition_changes_with_the_query_and_the_bin() {
        let a = RuleSpec::named("r");
        let mut b = a.clone();
        b.bin = std::time::Duration::from_secs(300);
        let mut c = a.clone();
        c.event_types = vec!["user.mfa.okta_verify.deny_push".into()];
        assert_ne!(partition(&a), partition(&b));
        assert_ne!(partition(&a), partition(&c));
        assert_eq!(partition(&a), partition(&a.clone()));
        assert!(partition(&a).starts_with("bins#r#"));
    }
}

/// Against the AWS emulator's DynamoDB (moto), started by `scripts/test.sh`.
#[cfg(test)]
#[cfg(feature = "aws-emulator")] // needs the emulator scripts/test.sh starts
mod emulator_tests {
    use super::super::replica::testing::{table, LEASE};
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_leader_publishes_bins_the_standby_reads_and_a_lost_lease_cannot_publish() {
        let t = table().await;
        let (ca, cb) = (ManualClock::at(1_000_000), ManualClock::at(9_000_000));
        let a = Replica::new(t.clone(), "a".into(), LEASE, ca.clone());
        let b = Replica::new(t.clone(), "b".into(), LEASE, cb.clone());
        for r in [&a, &b] {
            r.set_rules(vec!["r".into()]);
            assert!(r.round().await);
        }
        let rule = RuleSpec::named("r");
        let bins: Vec<SharedBin> = (100..230)
            .map(|i| SharedBin {
                bin: i,
                revision: 0,
                unknown: i == 150,
                series: vec![(
                    Labels::new(),
                    Counts {
                        total: i as u64,
                        ..Counts::default()
                    },
                )],
            })
            .collect();
        assert!(a.queries("r") && !b.queries("r"));
        // 130 bins: more than one transaction.
        a.publish(&rule, &bins).await.unwrap();
        assert_eq!(b.read(&rule, 0).await.unwrap(), bins);
        assert_eq!(b.read(&rule, 200).await.unwrap(), bins[100..].to_vec());
        // A standby cannot publish.
        assert!(matches!(
            b.publish(&rule, &bins[..1]).await,
            Err(ExchangeError::Fenced(_))
        ));
        // B takes the lease over while A is paused; A's publish is fenced by the table.
        cb.advance(10_000);
        b.round().await;
        cb.advance(15_000);
        b.round().await;
        assert!(b.queries("r"));
        let mut revised = bins[129].clone();
        revised.revision = 1;
        revised.series[0].1.total = 999;
        assert!(matches!(
            a.publish(&rule, std::slice::from_ref(&revised)).await,
            Err(ExchangeError::Fenced(_))
        ));
        assert!(!a.queries("r"), "stepped down");
        b.publish(&rule, std::slice::from_ref(&revised))
            .await
            .unwrap();
        assert_eq!(a.read(&rule, 229).await.unwrap(), vec![revised]);
    }
}
