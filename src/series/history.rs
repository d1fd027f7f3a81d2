//! The ring of one series' most recent bins.

use std::collections::VecDeque;

use super::{BinRecord, Counts};

/// A ring of the most recent bins of one series, indexed by bin index.
#[derive(Debug, Clone)]
pub struct History {
    /// Bin index of `records[0]`.
    first: i64,
    records: VecDeque<BinRecord>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> History {
        let capacity = capacity.max(1);
        History {
            first: 0,
            // Short histories (split series: thousands of them) get exactly what they
            // need up front, so a growing ring never doubles past its capacity.
            records: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// The counts of a past bin as a detector reads them.
    pub fn counts(&self, bin: i64) -> Option<Counts> {
        self.get(bin).filter(|r| r.known).map(|r| r.counts())
    }

    /// The bin index after the newest record, if any.
    pub fn next_bin(&self) -> Option<i64> {
        if self.records.is_empty() {
            None
        } else {
            Some(self.first + self.records.len() as i64)
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Append the record of bin `bin`. Gaps are filled with unknown bins; a bin at or
    /// before the newest replaces that bin (a revision).
    pub fn push(&mut self, bin: i64, record: BinRecord) {
        match self.next_bin() {
            None => {
                self.first = bin;
                self.records.push_back(record);
            }
            Some(next) if bin < self.first => {
                // Older than anything kept: nothing to learn from it.
                let _ = next;
            }
            Some(next) if bin < next => {
                let i = (bin - self.first) as usize;
                self.records[i] = record;
            }
            Some(next) => {
                let gap = (bin - next) as usize;
                if gap >= self.capacity {
                    self.records.clear();
                    self.first = bin;
                } else {
                    for _ in 0..gap {
                        self.push_back(BinRecord::default());
                    }
                }
                self.push_back(record);
            }
        }
    }

    /// Append the next bin, dropping the oldest first when full (so the ring never
    /// grows past its capacity, not even for a moment).
    fn push_back(&mut self, record: BinRecord) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.first += 1;
        }
        self.records.push_back(record);
    }

    pub fn get(&self, bin: i64) -> Option<&BinRecord> {
        if bin < self.first {
            return None;
        }
        self.records.get((bin - self.first) as usize)
    }

    /// The newest `n` records (or fewer), newest last.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &BinRecord> {
        let skip = self.records.len().saturating_sub(n);
        self.records.iter().skip(skip)
    }

    /// The newest `n` clean records (known, not anomalous) among the last `lookback`
    /// records, newest first. Skipping anomalous bins lets an expectation outlast a long
    /// attack instead of learning it.
    ///
    /// A loop over the ring's two halves as slices: the seasonal baseline asks this of
    /// every split series in every bin, and a chain of iterator adapters over the ring
    /// cost as much as the sums it fed.
    pub fn recent_clean(&self, n: usize, lookback: usize, mut f: impl FnMut(&BinRecord)) {
        let (older, newer) = self.records.as_slices();
        let from_newer = newer.len().min(lookback);
        let from_older = older.len().min(lookback - from_newer);
        let parts = [
            &newer[newer.len() - from_newer..],
            &older[older.len() - from_older..],
        ];
        let mut left = n;
        for part in parts {
            for r in part.iter().rev() {
                if left == 0 {
                    return;
                }
                if r.is_clean() {
                    f(r);
                    left -= 1;
                }
            }
        }
    }

    /// Every record with its bin index, oldest first.
    pub fn indexed(&self) -> impl Iterator<Item = (i64, &BinRecord)> {
        (self.first..).zip(self.records.iter())
    }

    /// How many known bins the history holds.
    pub fn known_bins(&self) -> usize {
        self.records.iter().filter(|r| r.known).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(total: u32) -> BinRecord {
        BinRecord {
            total,
            known: true,
            ..BinRecord::default()
        }
    }

    proptest::proptest! {
        /// Over a ring that wrapped any number of times, the recent clean records are
        /// those of walking the history newest first.
        #[test]
        fn recent_clean_walks_newest_first(
            capacity in 1usize..20,
            bins in proptest::collection::vec((0u32..5, proptest::bool::ANY, proptest::bool::ANY), 0..60),
            n in 0usize..10,
            lookback in 0usize..25,
        ) {
            let mut h = History::new(capacity);
            for (i, (total, known, anomalous)) in bins.iter().enumerate() {
                let mut r = rec(*total + i as u32 * 10);
                (r.known, r.anomalous) = (*known, *anomalous);
                h.push(i as i64, r);
            }
            let want: Vec<u32> = (0..h.len())
                .rev()
                .take(lookback)
                .filter_map(|i| h.records.get(i))
                .filter(|r| r.is_clean())
                .take(n)
                .map(|r| r.total)
                .collect();
            let mut got = Vec::new();
            h.recent_clean(n, lookback, |r| got.push(r.total));
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn history_fills_gaps_revises_and_evicts() {
        let mut h = History::new(4);
        h.push(10, rec(1));
        h.push(12, rec(3));
        assert_eq!(h.len(), 3);
        assert!(!h.get(11).unwrap().known);
        h.push(11, rec(2));
        assert_eq!(h.get(11).unwrap().total, 2);
        h.push(13, rec(4));
        h.push(14, rec(5));
        assert_eq!(h.len(), 4);
        assert!(h.get(10).is_none());
        assert_eq!(h.next_bin(), Some(15));
        let last: Vec<u32> = h.last(2).map(|r| r.total).collect();
        assert_eq!(last, vec![4, 5]);
        h.push(100, rec(9));
        assert_eq!(h.len(), 1);
        assert_eq!(h.get(100).unwrap().total, 9);
    }
}
