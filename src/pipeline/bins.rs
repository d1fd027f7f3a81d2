//! Moving a rule through its bins: counts observed (and revised), bins the source could
//! not read, bins closed in order (each judged by the rule's engine) and gaps skipped.

use super::retry_wave::Scope;
use super::{Observer, Pipeline};
use crate::alert::Alert;
use crate::series::{BinIndex, BinRecord, Counts, Labels, RuleId};

impl Pipeline {
    /// Record the absolute counts of one series in one bin (replacing earlier counts).
    pub fn observe(
        &mut self,
        RuleId(rule): RuleId,
        BinIndex(bin): BinIndex,
        labels: Labels,
        counts: Counts,
    ) {
        let Some(r) = self.rules.get_mut(rule) else {
            return;
        };
        if r.first_bin.is_none() {
            let until = (bin + r.spec.warmup_bins() as i64) * r.spec.bin_ms();
            tracing::info!(
                rule = %r.spec.name,
                judged_from = %crate::alert::rfc3339(until),
                "warming up: this rule's bins are learned, not judged, until then"
            );
        }
        if r.first_bin.is_some_and(|f| bin < f) || r.next_bin.is_some_and(|next| bin < next) {
            // A revision, or an earlier first bin (the warm-up moves): teach what was
            // put off as it was then.
            r.catch_up_idle();
        }
        r.first_bin = Some(r.first_bin.map_or(bin, |f| f.min(bin)));
        if r.next_bin.is_none() {
            r.next_bin = Some(bin);
        }
        if r.next_bin.is_some_and(|next| bin < next) {
            // A revision of a closed bin: correct the history the baseline learns from.
            self.stats.revisions += 1;
            let labels = r.cap_series(labels);
            if let Some(s) = r.series.get_mut(&labels) {
                let old = s.history.get(bin).copied().unwrap_or_default();
                let mut rec = BinRecord::from_counts(counts, bin, r.spec.bin_ms());
                rec.anomalous = old.anomalous;
                rec.seasonal_total = old.seasonal_total;
                rec.expected_total = old.expected_total;
                rec.expected_failure = old.expected_failure;
                s.history.push(bin, rec);
            }
            return;
        }
        r.unknown.remove(&bin);
        r.pending.entry(bin).or_default().insert(labels, counts);
    }

    /// The source could not read `bin`: it stays unknown unless observed later.
    pub fn mark_unknown(&mut self, RuleId(rule): RuleId, BinIndex(bin): BinIndex) {
        if let Some(r) = self.rules.get_mut(rule) {
            if r.next_bin.is_none_or(|next| bin >= next) {
                if r.next_bin.is_none() {
                    r.next_bin = Some(bin);
                }
                r.pending.remove(&bin);
                r.unknown.insert(bin);
            }
        }
    }

    /// Close every bin of `rule` before `end_bin`, appending alerts to `out`.
    pub fn close_through(
        &mut self,
        RuleId(rule): RuleId,
        BinIndex(end_bin): BinIndex,
        out: &mut Vec<Alert>,
    ) {
        self.close_through_inner(rule, end_bin, out, None);
    }

    pub(super) fn close_through_inner(
        &mut self,
        rule: usize,
        end_bin: i64,
        out: &mut Vec<Alert>,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) {
        let Some(r) = self.rules.get_mut(rule) else {
            return;
        };
        if r.next_bin.is_none() && r.spec.split_by.is_none() && end_bin > i64::MIN {
            // A rule over totals told to close before it saw anything: its series
            // starts now, with zeros (see `RuleEngine::close_bin`).
            r.next_bin = Some(end_bin - 1);
            r.first_bin = Some(end_bin - 1);
        }
        let Some(mut bin) = r.next_bin else { return };
        let bin_ms = r.spec.bin_ms();
        while bin < end_bin {
            let Some(r) = self.rules.get_mut(rule) else {
                return;
            };
            let from = out.len();
            if r.unknown.remove(&bin) {
                r.pending.remove(&bin);
                r.catch_up_idle();
                for s in r.series.values_mut() {
                    s.history.push(bin, BinRecord::default());
                }
                self.stats.unknown_bins += 1;
            } else {
                let observed = r.pending.remove(&bin).unwrap_or_default();
                if self.source_rule == Some(rule) {
                    let retries = super::retry_wave::Retries::of(&observed);
                    self.waves.note(bin * bin_ms, (bin + 1) * bin_ms, retries);
                }
                let observer = observer.as_deref_mut().map(|o| (rule, o));
                self.stats.series_bins_evaluated += r.close_bin(
                    bin,
                    observed,
                    &mut self.lifecycle,
                    &mut self.story,
                    out,
                    observer,
                ) as u64;
            }
            self.stats.bins_closed += 1;
            bin += 1;
            if let Some(r) = self.rules.get_mut(rule) {
                r.next_bin = Some(bin);
            }
            self.screen_waves(rule, bin * bin_ms, out, from);
        }
    }

    /// [`Update::Skip`]: empty bins before `end_bin` become unknown in one step (each
    /// series' history takes the gap at once); observed bins in between close as usual.
    pub(super) fn skip_to(
        &mut self,
        rule: usize,
        end_bin: i64,
        out: &mut Vec<Alert>,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) {
        loop {
            let Some(r) = self.rules.get_mut(rule) else {
                return;
            };
            let Some(next) = r.next_bin else {
                return;
            };
            if next >= end_bin {
                return;
            }
            let stop = r
                .pending
                .range(next..)
                .next()
                .map(|(b, _)| *b)
                .into_iter()
                .chain(r.unknown.range(next..).next().copied())
                .min()
                .unwrap_or(end_bin)
                .min(end_bin);
            if stop > next {
                r.catch_up_idle();
                for s in r.series.values_mut() {
                    s.history.push(stop - 1, BinRecord::default());
                }
                let n = (stop - next) as u64;
                self.stats.unknown_bins += n;
                self.stats.bins_closed += n;
                r.next_bin = Some(stop);
                if self.source_rule == Some(rule) {
                    // Bins it could not read hold no evidence: nothing waits for them.
                    let end_ms = stop * r.spec.bin_ms();
                    self.waves.advance(end_ms, out);
                }
            }
            if stop < end_bin {
                self.close_through_inner(rule, stop + 1, out, observer.as_deref_mut());
            }
        }
    }

    /// After `rule` closed a bin ending at `end_ms`: its notices `out[from..]` pass the
    /// retry-wave screen (see `retry_wave`); when it is the rule split by source
    /// address, the pages that waited for that bin are judged first.
    fn screen_waves(&mut self, rule: usize, end_ms: i64, out: &mut Vec<Alert>, from: usize) {
        let Some(source) = self.source_rule else {
            return;
        };
        let fresh: Vec<Alert> = out.drain(from..).collect();
        if rule == source {
            self.waves.advance(end_ms, out);
        }
        let scope = self.wave_scopes.get(rule).copied().unwrap_or(Scope::Other);
        self.waves.screen(fresh, out, scope);
    }

    /// Close everything observed so far (end of a backtest).
    pub fn close_all(&mut self, out: &mut Vec<Alert>) {
        for i in 0..self.rules.len() {
            let last = self.rules[i]
                .pending
                .keys()
                .next_back()
                .copied()
                .into_iter()
                .chain(self.rules[i].unknown.iter().next_back().copied())
                .max();
            if let Some(last) = last {
                self.close_through_inner(i, last + 1, out, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;
    use crate::detect::DetectorKind;
    use crate::pipeline::testing::{c, ip, rule, steady};
    use crate::series::{Counts, Labels};

    #[test]
    fn steady_traffic_is_quiet_and_an_attack_fires_then_resolves() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        assert!(out.is_empty(), "{out:#?}");
        let b = 3 * 96;
        p.observe(RuleId(0), BinIndex(b), Labels::new(), c(1100, 1000));
        p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        let fired: Vec<_> = out.iter().map(|a| a.detector.name()).collect();
        assert!(fired.contains(&"failure_spike"), "{fired:?}");
        assert!(out.iter().all(|a| a.status == Status::Firing));
        out.clear();
        steady(&mut p, (b + 1)..(b + 4), &mut out);
        assert!(
            out.iter()
                .any(|a| a.status == Status::Resolved && a.detector == "failure_spike"),
            "{out:#?}"
        );
    }

    /// An outage pages; then every sign-in still fails, but there are too few of them
    /// for a bin to prove it (`failure_ratio`'s floors). The alert stays open — the
    /// share is still far outside its band — and those bins are not learned as normal;
    /// it resolves once the share is back.
    #[test]
    fn an_open_alert_holds_while_its_bins_stay_off_the_band() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        let b = 3 * 96;
        for bin in b..b + 2 {
            p.observe(RuleId(0), BinIndex(bin), Labels::new(), c(100, 100));
            p.close_through(RuleId(0), BinIndex(bin + 1), &mut out);
        }
        let ratio = |out: &[Alert], status: Status| {
            out.iter()
                .filter(|a| a.detector == "failure_ratio" && a.status == status)
                .count()
        };
        assert_eq!(ratio(&out, Status::Firing), 1, "{out:#?}");
        out.clear();
        for bin in b + 2..b + 8 {
            p.observe(RuleId(0), BinIndex(bin), Labels::new(), c(6, 6));
            p.close_through(RuleId(0), BinIndex(bin + 1), &mut out);
        }
        assert_eq!(
            ratio(&out, Status::Resolved),
            0,
            "resolved at 100 % failing: {out:#?}"
        );
        let s = p.rules[0].series.get(&Labels::new()).expect("the series");
        for bin in b + 2..b + 8 {
            let rec = s.history.get(bin).expect("the bin");
            assert!(rec.anomalous, "an off-band bin was learned: {rec:?}");
        }
        steady(&mut p, (b + 8)..(b + 10), &mut out);
        assert_eq!(ratio(&out, Status::Resolved), 1, "{out:#?}");
    }

    #[test]
    fn silence_is_zero_filled_and_flatlines() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        p.close_through(RuleId(0), BinIndex(3 * 96 + 4), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].detector, DetectorKind::Flatline.name());
    }

    #[test]
    fn unknown_bins_do_not_flatline() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        for b in (3 * 96)..(3 * 96 + 8) {
            p.mark_unknown(RuleId(0), BinIndex(b));
        }
        p.close_through(RuleId(0), BinIndex(3 * 96 + 8), &mut out);
        assert!(out.is_empty(), "{out:#?}");
        assert_eq!(p.stats().unknown_bins, 8);
    }

    #[test]
    fn nothing_fires_during_warmup() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..10, &mut out);
        p.observe(RuleId(0), BinIndex(10), Labels::new(), c(5000, 4900));
        p.close_through(RuleId(0), BinIndex(11), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_long_attack_is_not_learned_as_normal() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..(3 * 96), &mut out);
        // Twelve hours of attack: it must keep firing, never resolve.
        for b in (3 * 96)..(3 * 96 + 48) {
            p.observe(RuleId(0), BinIndex(b), Labels::new(), c(1100, 1000));
            p.close_through(RuleId(0), BinIndex(b + 1), &mut out);
        }
        let spike: Vec<_> = out
            .iter()
            .filter(|a| a.detector == "failure_spike")
            .collect();
        assert!(spike.iter().any(|a| a.status == Status::Firing), "{out:#?}");
        assert!(
            spike.iter().all(|a| a.status == Status::Firing),
            "resolved mid-attack: {spike:#?}"
        );
    }

    #[test]
    fn revisions_replace_counts() {
        let mut p = Pipeline::new(vec![rule()]);
        let mut out = Vec::new();
        steady(&mut p, 0..10, &mut out);
        p.observe(RuleId(0), BinIndex(5), Labels::new(), c(120, 5));
        assert_eq!(p.stats().revisions, 1);
        let s = p.rules[0].series.get(&Labels::new()).unwrap();
        assert_eq!(s.history.get(5).unwrap().total, 120);
    }

    /// A totals rule and a rule split by source address: the totals rule's page of a
    /// bin waits until the source rule has read it, and is held when the bin's failures
    /// came from addresses that got in (a reset wave), sent when they came from
    /// addresses that never did (stuffing).
    #[test]
    fn a_wave_of_people_who_get_in_is_held_and_stuffing_pages() {
        let run = |stuffing: bool| {
            let mut totals = rule();
            totals.detectors = vec![crate::detect::DetectorSpec::default_for(
                DetectorKind::FailureSpike,
            )];
            let mut sources = rule();
            sources.name = "per-ip".into();
            sources.split_by = Some("client.ipAddress".into());
            sources.detectors = totals.detectors.clone();
            let mut p = Pipeline::new(vec![totals, sources]);
            let mut out = Vec::new();
            let bin =
                |p: &mut Pipeline, b: i64, per_ip: Vec<(Labels, Counts)>, out: &mut Vec<Alert>| {
                    let sum = per_ip.iter().fold(Counts::default(), |mut t, (_, c)| {
                        t.merge(c);
                        t
                    });
                    p.observe(RuleId(0), BinIndex(b), Labels::new(), sum);
                    p.close_through(RuleId(0), BinIndex(b + 1), out);
                    if b == 200 {
                        // The page waits for the source rule: the totals rule's
                        // notices of this bin are not all out (the delivery ledger's
                        // watermark rests on that).
                        assert_eq!(p.next_bin(RuleId(0)), Some(BinIndex(200)));
                    }
                    for (labels, counts) in per_ip {
                        p.observe(RuleId(1), BinIndex(b), labels, counts);
                    }
                    p.close_through(RuleId(1), BinIndex(b + 1), out);
                    assert_eq!(p.next_bin(RuleId(0)), Some(BinIndex(b + 1)));
                };
            for b in 0..200 {
                bin(&mut p, b, vec![(ip("office"), c(100, 5))], &mut out);
            }
            out.clear();
            let attack = if stuffing {
                // 75 proxies, one failure each, never a success.
                let mut v: Vec<_> = (0..75)
                    .map(|i| (ip(&format!("proxy{i}")), c(1, 1)))
                    .collect();
                v.push((ip("office"), c(100, 5)));
                v
            } else {
                // 75 people fail with the old password and get in from the office.
                vec![(ip("office"), c(180, 80))]
            };
            bin(&mut p, 200, attack, &mut out);
            let paged = out
                .iter()
                .any(|a| a.rule == "t" && a.status == Status::Firing);
            (paged, p.stats().held_waves)
        };
        assert_eq!(run(true), (true, 0), "stuffing pages");
        // The totals rule's page is held (the office address's own page is not this
        // stage's: a page about one address is judged by that address alone).
        assert_eq!(run(false), (false, 1), "a reset wave is held");
    }
}
