//! Targets for what a user hands authpulse: one NDJSON event, a whole export (every
//! shape `backtest --events` reads), a CSV of counts, Logs Insights result rows, the
//! config file (rules, detectors, sinks and their routes, mutes, `[ha]`), and the
//! alerts and labels files of `evaluate`. Each one runs what follows the parser too
//! (the pipeline on what it produced), so a value that parses but breaks the next step
//! is found as well.

use std::time::Duration;

use authpulse::alert::Alert;
use authpulse::event::Event;
use authpulse::pipeline::Pipeline;
use authpulse::rule::RuleSpec;
use authpulse::series::{BinIndex, Counts, Labels, RuleId, Update};
use authpulse::source::replay::{self, ReplayOptions, Source, UpdateSink};

use crate::mutate::{Rng, DICTIONARY};
use crate::seeds::Seeds;

/// "Now" for the inputs that need one: 2026-11-25T10:15:00Z.
pub const T0: i64 = 1_795_601_700_000;

/// The pipeline a replay feeds, as in a backtest.
struct Feed {
    rules: Vec<RuleSpec>,
    pipeline: Pipeline,
    alerts: usize,
    updates: usize,
}

impl Feed {
    fn new(rules: &[RuleSpec]) -> Feed {
        Feed {
            rules: rules.to_vec(),
            pipeline: Pipeline::new(rules.to_vec()),
            alerts: 0,
            updates: 0,
        }
    }

    fn apply(&mut self, u: Update) {
        let mut out = Vec::new();
        self.pipeline.apply(u, &mut out);
        self.updates += 1;
        self.alerts += out.len();
    }
}

impl UpdateSink for Feed {
    fn updates(&mut self, updates: std::vec::Drain<'_, Update>) -> std::io::Result<()> {
        for u in updates {
            self.apply(u);
        }
        Ok(())
    }
    fn restart(&mut self) {
        self.pipeline = Pipeline::new(self.rules.clone());
    }
}

/// One NDJSON line through [`Event::parse`], and the rules' filters on the event.
pub fn event(rules: &[RuleSpec], input: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok("not utf-8".into());
    };
    match Event::parse(text) {
        Ok(e) => {
            let matched = rules.iter().filter(|r| r.matches(&e)).count();
            let fields = authpulse::event::SPLIT_FIELDS
                .iter()
                .filter(|f| e.field(f).is_some())
                .count();
            let owned = e.clone().into_owned();
            if owned != e {
                return Err("an event differs from its owned copy".into());
            }
            Ok(format!("ok rules={matched} fields={fields}"))
        }
        Err(e) => Ok(format!("err {}", outcome_of(&e.to_string()))),
    }
}

/// A whole export through `replay_sources` (line or document splitting, arrays, gzip,
/// the time window, the sort of out-of-order input, the binner) into the pipeline. One
/// input in two takes the two-thread NDJSON path.
pub fn export(rules: &[RuleSpec], input: &[u8]) -> Result<String, String> {
    let mut opts = ReplayOptions::new(Duration::from_secs(300));
    opts.two_threads = crate::harness::fnv(input) & 1 == 1;
    let sources = [Source::Bytes {
        name: "fuzz".into(),
        data: input,
    }];
    let mut feed = Feed::new(rules);
    match replay::replay_sources(&sources, rules, &opts, &mut |_| {}, &mut feed) {
        Ok(stats) => Ok(format!(
            "ok malformed={} outside={} late={} sorted={} alerts={}",
            stats.malformed.min(1),
            stats.outside_window.min(1),
            stats.bins.late.min(1),
            stats.sorted,
            feed.alerts.min(1)
        )),
        Err(e) => Ok(format!("io {}", outcome_of(&e.to_string()))),
    }
}

/// A CSV of counts through `csv::parse` and `csv::updates`, into the pipeline.
pub fn csv(rules: &[RuleSpec], input: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok("not utf-8".into());
    };
    let parsed = authpulse::source::csv::parse(text);
    if parsed.bad_count < parsed.bad.len() as u64 {
        return Err("more bad rows kept than counted".into());
    }
    let (updates, skipped) = authpulse::source::csv::updates(&parsed, rules);
    let mut feed = Feed::new(rules);
    for u in updates {
        feed.apply(u);
    }
    Ok(format!(
        "rows={} bad={} header={} skipped={} alerts={}",
        parsed.rows.len().min(2),
        parsed.bad_count.min(1),
        parsed.header.is_some(),
        skipped.len().min(1),
        feed.alerts.min(1)
    ))
}

/// Logs Insights result rows: one row per line, fields split by tabs, each `name=value`
/// (split at the first `=`). Every built-in rule's `parse_rows` over the poll window
/// before [`T0`], then the counts into the pipeline as the CloudWatch source does.
pub fn insights(rules: &[RuleSpec], input: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(input);
    // Logs Insights returns at most 10,000 rows per query.
    let rows: Vec<Vec<(String, String)>> = text
        .split('\n')
        .take(10_000)
        .map(|line| {
            line.split('\t')
                .map(|f| match f.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (f.to_string(), String::new()),
                })
                .collect()
        })
        .collect();
    let mut pipeline = Pipeline::new(rules.to_vec());
    let mut outcome = String::new();
    for (i, spec) in rules.iter().enumerate() {
        let end = T0 / spec.bin_ms();
        let first = end - 288;
        match authpulse::source::cloudwatch::parse_rows(spec, &rows, first, end) {
            Ok(counts) => {
                let mut out = Vec::new();
                for ((bin, labels), c) in counts {
                    pipeline.observe(RuleId(i), BinIndex(bin), labels, c);
                }
                pipeline.close_through(RuleId(i), BinIndex(end), &mut out);
                outcome.push('o');
            }
            Err(e) => {
                outcome.push_str(&outcome_of(&e));
                outcome.push(';');
            }
        }
    }
    Ok(outcome)
}

/// The config file through `config::from_toml` (every table: daemon, source, rules and
/// their detectors, sinks and their routes, enrichment, mutes, `[ha]`); a config it
/// accepts is then used: a pipeline of its rules gets a few bins, the queries are
/// written, mutes and sink routes are asked about an alert.
pub fn config(alerts: &[Alert], input: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok("not utf-8".into());
    };
    let config = match authpulse::config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            if e.0.is_empty() {
                return Err("a config refused with no problem named".into());
            }
            return Ok(format!("err {}", outcome_of(&e.0[0].to_string())));
        }
    };
    let mut pipeline = Pipeline::new(config.rules.clone());
    let mut out = Vec::new();
    for (i, r) in config.rules.iter().enumerate() {
        let _ = (r.insights_query(), r.bin_literal(), r.window_bins());
        let start = T0 / r.bin_ms();
        for k in 0..3 {
            let counts = Counts {
                total: 10 + k,
                success: 9,
                failure: 1 + k,
                failed_users: 1,
                failed_ips: 1,
                ..Counts::default()
            };
            pipeline.observe(RuleId(i), BinIndex(start + k as i64), Labels::new(), counts);
        }
        pipeline.close_through(RuleId(i), BinIndex(start + 3), &mut out);
    }
    for m in &config.mutes {
        let w = &m.window;
        let _ = (w.contains(i64::MIN), w.contains(i64::MAX), w.contains(T0));
        for a in alerts.iter().take(3) {
            let _ = m.covers(a);
        }
    }
    for s in &config.sinks {
        let _ = s.queue_id();
        for a in alerts.iter().take(3) {
            let _ = s.route().matches(a);
        }
    }
    Ok(format!(
        "ok rules={} sinks={} mutes={} ha={}",
        config.rules.len().min(3),
        config.sinks.len().min(3),
        config.mutes.len().min(1),
        config.ha.is_some()
    ))
}

/// `evaluate`'s two files: alerts (JSON lines, as `backtest --alerts-out` writes) and
/// labels (one incident per line), split at the first line that reads as a label; then
/// the score.
pub fn labels(input: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok("not utf-8".into());
    };
    let (alerts_text, labels_text) = match text.find("\n--\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => ("", text),
    };
    let alerts = authpulse::offline::evaluate::read_alerts(alerts_text);
    let labels = authpulse::offline::evaluate::read_labels(labels_text);
    match (alerts, labels) {
        (Ok(a), Ok(l)) => {
            let s = authpulse::offline::evaluate::score(&a, &l, 900_000, 7.0);
            let _ = (s.table(), s.by_kind(), s.recall(), s.false_pages_per_week());
            Ok(format!(
                "ok alerts={} labels={}",
                a.len().min(1),
                l.len().min(1)
            ))
        }
        (Err(e), _) | (_, Err(e)) => Ok(format!("err {}", outcome_of(&e))),
    }
}

/// A coarse name for an error message (digits and quoted text dropped), so the corpus
/// keeps an input for each new kind of answer, not for each new line number.
pub fn outcome_of(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars().take(120) {
        match c {
            '"' | '`' => quoted = !quoted,
            _ if quoted || c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out.chars().take(60).collect()
}

// ---- structure-aware generators ----

/// An Okta event with a random wrapping and odd values in random fields.
pub fn gen_event(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let mut v: serde_json::Value = seeds
        .event_lines
        .iter()
        .skip(rng.below(seeds.event_lines.len()))
        .find_map(|l| serde_json::from_slice(l).ok())
        .unwrap_or(serde_json::json!({}));
    let fields = [
        "published",
        "eventType",
        "uuid",
        "outcome",
        "client",
        "actor",
        "debugContext",
        "detail",
        "time",
        "@message",
    ];
    for _ in 0..1 + rng.below(3) {
        let f = *rng.pick(&fields);
        let value = match rng.below(6) {
            0 => serde_json::Value::Null,
            1 => serde_json::json!(rng.pick(DICTIONARY)),
            2 => serde_json::json!({"result": rng.pick(DICTIONARY), "reason": null}),
            3 => serde_json::json!({"ipAddress": null, "geographicalContext": null}),
            4 => serde_json::json!(i64::MAX),
            _ => serde_json::json!([]),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert(f.to_string(), value);
        }
    }
    let text = v.to_string();
    match rng.below(3) {
        0 => text.into_bytes(),
        1 => serde_json::json!({"detail": v, "time": "2026-11-25T10:15:00Z"})
            .to_string()
            .into_bytes(),
        _ => serde_json::json!({"@timestamp": 1, "@message": text})
            .to_string()
            .into_bytes(),
    }
}

/// An export: a run of seed events, in order, reversed or shuffled, as lines, one array
/// or a pretty-printed document, sometimes gzipped.
pub fn gen_export(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let n = 1 + rng.below(40);
    let start = rng.below(seeds.event_lines.len());
    let mut lines: Vec<Vec<u8>> = seeds
        .event_lines
        .iter()
        .cycle()
        .skip(start)
        .take(n)
        .cloned()
        .collect();
    match rng.below(3) {
        0 => lines.reverse(),
        1 => {
            for i in (1..lines.len()).rev() {
                lines.swap(i, rng.below(i + 1));
            }
        }
        _ => {}
    }
    if rng.one_in(4) {
        let i = rng.below(lines.len());
        lines[i] = gen_event(rng, seeds);
    }
    let body = match rng.below(4) {
        0 => {
            let mut b = b"[".to_vec();
            b.extend(lines.join(&b",\n"[..]));
            b.extend_from_slice(b"]\n");
            b
        }
        1 => {
            let values: Vec<serde_json::Value> = lines
                .iter()
                .filter_map(|l| serde_json::from_slice(l).ok())
                .collect();
            serde_json::to_vec_pretty(&values).unwrap_or_default()
        }
        _ => lines.join(&b'\n'),
    };
    if rng.one_in(6) {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&body);
        return gz.finish().unwrap_or(body);
    }
    body
}

fn csv_time(rng: &mut Rng, ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match rng.below(3) {
        0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        1 => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        _ => t.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// The demo's first events counted per 5 minutes, written as each accepted CSV shape.
pub fn gen_csv(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let bins = bin_counts(seeds, 300_000);
    let headers = [
        "timestamp,total,failure,success",
        "time,n,failed",
        "\"bin\",\"failures\"",
        "",
        "timestamp,value",
    ];
    let header = *rng.pick(&headers);
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(header);
        out.push('\n');
    }
    for &(ms, total, failed) in &bins {
        let ms = if rng.one_in(20) {
            *rng.pick(&[i64::MIN / 2, 0, -62_135_596_800_000, 253_402_300_799_000])
        } else {
            ms
        };
        out.push_str(&format!(
            "{},{},{},{}\n",
            csv_time(rng, ms),
            total,
            failed,
            total - failed
        ));
    }
    out.into_bytes()
}

/// Counts per bin of the demo slice: (bin start ms, events, failures).
fn bin_counts(seeds: &Seeds, bin_ms: i64) -> Vec<(i64, u64, u64)> {
    let mut bins: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
    for &(ms, failed) in &seeds.demo_times {
        let e = bins.entry(ms.div_euclid(bin_ms) * bin_ms).or_default();
        e.0 += 1;
        e.1 += u64::from(failed);
    }
    bins.into_iter().map(|(b, (t, f))| (b, t, f)).collect()
}

/// Insights rows as the built-in queries return them, for the bins before [`T0`].
pub fn gen_insights(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let bin_ms = *rng.pick(&[300_000i64, 900_000, 3_600_000]);
    let bins = bin_counts(seeds, bin_ms);
    let name = match bin_ms {
        300_000 => "bin(5m)",
        900_000 => "bin(15m)",
        _ => "bin(1h)",
    };
    let mut out = String::new();
    for (k, &(_, total, failed)) in bins.iter().enumerate().take(24) {
        let t = chrono::DateTime::from_timestamp_millis(T0 - (k as i64 + 1) * bin_ms)
            .unwrap_or_default();
        let when = t.format("%Y-%m-%d %H:%M:%S%.3f");
        out.push_str(&format!(
            "{name}={when}\tdetail.outcome.result=SUCCESS\tn={}\n",
            total - failed
        ));
        out.push_str(&format!(
            "{name}={when}\tdetail.outcome.result=FAILURE\tn={failed}\tusers={}\tips={}\tdetail.client.ipAddress=203.0.113.{}\n",
            failed.min(7),
            failed.min(3),
            rng.below(255)
        ));
    }
    out.into_bytes()
}

/// A config: an example config with one `key = value` line's value replaced, or a table
/// added with odd values.
pub fn gen_config(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let base = String::from_utf8_lossy(&seeds.configs[rng.below(seeds.configs.len())]).into_owned();
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    let values = [
        "0",
        "-1",
        "1e309",
        "nan",
        "inf",
        "\"\"",
        "\"0s\"",
        "\"1ns\"",
        "\"584942417355y\"",
        "18446744073709551615",
        "9223372036854775807",
        "[]",
        "{}",
        "true",
        "\"9999-12-31 23:59\"",
        "\"24:00\"",
        "\"Mars/Olympus\"",
        "\"bin(0m)\"",
        "[\"\"]",
        "\"x\"",
    ];
    for _ in 0..1 + rng.below(3) {
        let assignments: Vec<usize> = (0..lines.len())
            .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains(" = "))
            .collect();
        if assignments.is_empty() {
            break;
        }
        let i = *rng.pick(&assignments);
        if let Some((key, _)) = lines[i].split_once(" = ") {
            lines[i] = format!("{key} = {}", rng.pick(&values));
        }
    }
    if rng.one_in(3) {
        let tables = [
            "[[rules]]\nname = \"r\"\nbin = \"5m\"\n[[rules.detectors]]\nkind = \"volume_spike\"\nwindow = \"0m\"\n",
            "[[mute]]\nrule = \"okta-sign-ins\"\ndays = [\"mon\"]\nstart = \"23:59\"\nend = \"00:00\"\ntimezone = \"Etc/GMT+14\"\n",
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://[::1]:0/\"\n[sinks.route]\nseverity = [\"critical\"]\nrules = []\n",
            "[ha]\ntable = \"t\"\nlease = \"0s\"\nrenew = \"1ns\"\n",
            "[source]\nkind = \"cloudwatch\"\nlog_groups = []\nsettle = \"99999999999d\"\n",
        ];
        lines.push((*rng.pick(&tables)).to_string());
    }
    lines.join("\n").into_bytes()
}

/// An `evaluate` input: golden alerts, `--`, demo labels, with an odd value or two.
pub fn gen_labels(rng: &mut Rng, seeds: &Seeds) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(6) {
        out.extend_from_slice(&seeds.alert_lines[rng.below(seeds.alert_lines.len())]);
        out.push(b'\n');
    }
    out.extend_from_slice(b"--\n");
    for _ in 0..1 + rng.below(6) {
        let mut l = seeds.label_lines[rng.below(seeds.label_lines.len())].clone();
        if rng.one_in(2) {
            let t = *rng.pick(&[
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2026-11-25T10:15:00Z",
            ]);
            if let Ok(serde_json::Value::Object(mut o)) =
                serde_json::from_slice::<serde_json::Value>(&l)
            {
                let key = if rng.one_in(2) { "start" } else { "end" };
                o.insert(key.into(), serde_json::json!(t));
                l = serde_json::to_vec(&o).unwrap_or(l);
            }
        }
        out.extend_from_slice(&l);
        out.push(b'\n');
    }
    out
}
