//! The storm guard: one page per source is right for three sources, not for three
//! hundred. A split rule pages at most `max_pages_per_hour` sources per detector; the
//! pages that go out say how many more fired in the same bin, and a held-back source's
//! repeats and resolves are held back too.

use std::collections::{HashSet, VecDeque};

use crate::alert::{Alert, Status};

pub struct StormGuard {
    /// Split series whose firing was held back: their repeats and resolves are too.
    held: HashSet<String>,
    /// Per detector: the bins of the pages sent within the last hour.
    pages: Vec<VecDeque<i64>>,
    /// Per detector, this bin: indexes (into the output) of the firing pages sent, and
    /// how many were held back.
    sent_now: Vec<Vec<usize>>,
    held_now: Vec<usize>,
    cap: usize,
}

impl StormGuard {
    pub fn new(cap: usize) -> StormGuard {
        StormGuard {
            held: HashSet::new(),
            pages: Vec::new(),
            sent_now: Vec::new(),
            held_now: Vec::new(),
            cap,
        }
    }

    /// A new bin: forget pages older than an hour.
    pub fn start_bin(&mut self, bin: i64, detectors: usize, hour_bins: i64) {
        self.pages.resize(detectors, VecDeque::new());
        for pages in &mut self.pages {
            while pages.front().is_some_and(|&b| b <= bin - hour_bins) {
                pages.pop_front();
            }
        }
        self.sent_now = vec![Vec::new(); detectors];
        self.held_now = vec![0; detectors];
    }

    /// Whether a notice of `detector` for the series `fp` goes out; `at` is the index it
    /// will have in the output.
    pub fn admit(
        &mut self,
        detector: usize,
        fp: &str,
        status: Status,
        bin: i64,
        at: usize,
    ) -> bool {
        let storm = match status {
            Status::Firing if self.held.contains(fp) => true,
            Status::Firing if self.pages.get(detector).map_or(0, VecDeque::len) >= self.cap => {
                self.held.insert(fp.to_string());
                if let Some(n) = self.held_now.get_mut(detector) {
                    *n += 1;
                }
                true
            }
            Status::Firing => false,
            Status::Resolved => self.held.remove(fp),
        };
        if storm {
            metrics::counter!("authpulse_notifications_suppressed_total", "reason" => "storm")
                .increment(1);
            return false;
        }
        if status == Status::Firing {
            if let Some(sent) = self.sent_now.get_mut(detector) {
                sent.push(at);
            }
            if let Some(p) = self.pages.get_mut(detector) {
                p.push_back(bin);
            }
        }
        true
    }

    /// The pages sent in this bin say how many more sources fired without a page.
    pub fn annotate(&self, out: &mut [Alert]) {
        for (held, sent) in self.held_now.iter().zip(&self.sent_now) {
            if *held == 0 {
                continue;
            }
            for &i in sent {
                if let Some(a) = out.get_mut(i) {
                    a.summary.push_str(&format!(
                        " {held} more sources fired in this bin; they are not paged one by one (max_pages_per_hour = {}): see the status page or the rule's query.",
                        self.cap
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::Status;
    use crate::detect::DetectorKind;
    use crate::pipeline::testing::{c, rule};
    use crate::pipeline::Pipeline;
    use crate::series::{BinIndex, Labels, RuleId};

    #[test]
    fn a_storm_of_sources_pages_a_few_times_not_once_per_source() {
        let mut r = rule();
        r.split_by = Some("client.ipAddress".into());
        r.detectors = vec![crate::detect::DetectorSpec::default_for(
            DetectorKind::FailureSpike,
        )];
        let mut p = Pipeline::new(vec![r]);
        let mut out = Vec::new();
        let ip = |i: usize| {
            let mut l = Labels::new();
            l.insert("client.ipAddress".into(), format!("203.0.113.{i}"));
            l
        };
        // A day of one quiet source, then 40 sources fail hard in one bin, then stop.
        for b in 0..100 {
            p.observe(RuleId(0), BinIndex(b), ip(0), c(4, 0));
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        }
        for i in 1..=40 {
            p.observe(RuleId(0), BinIndex(100), ip(i), c(60, 60));
        }
        p.close_through(RuleId(0), BinIndex(101), &mut out);
        let firing: Vec<_> = out.iter().filter(|a| a.status == Status::Firing).collect();
        assert_eq!(firing.len(), 3, "{firing:#?}");
        assert!(
            firing.iter().all(|a| a.summary.contains("37 more sources")),
            "{:?}",
            firing[0].summary
        );
        for b in 101..104 {
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        }
        let resolved = out.iter().filter(|a| a.status == Status::Resolved).count();
        assert_eq!(resolved, 3, "only what paged resolves");
    }
}
