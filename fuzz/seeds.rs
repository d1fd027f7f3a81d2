//! The seeds: the project's own files only — the demo sample, `tests/fixtures/okta/`,
//! `tests/golden/`, the labels of the demo and the example configs. State files, CSV
//! counts and Insights rows are made from those with the project's own writers, so they
//! are the shapes the daemon writes and reads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Lines of the demo sample used as seeds.
const DEMO_LINES: usize = 400;

pub struct Seeds {
    /// Okta events, one per line, in the three wrappings (demo + fixtures).
    pub event_lines: Vec<Vec<u8>>,
    /// Whole export files (fixtures, a slice of the demo, newest first, an API page).
    pub exports: Vec<Vec<u8>>,
    /// Alerts as the daemon writes them (`tests/golden/*.alerts.jsonl`), one per entry.
    pub alert_lines: Vec<Vec<u8>>,
    /// `samples/demo.labels.jsonl`, one incident per entry.
    pub label_lines: Vec<Vec<u8>>,
    /// The example and deployment configs.
    pub configs: Vec<Vec<u8>>,
    /// Publication times (ms) of the demo slice, for CSV and Insights seeds.
    pub demo_times: Vec<(i64, bool)>,
}

fn read(root: &Path, rel: &str) -> Result<Vec<u8>, String> {
    std::fs::read(root.join(rel)).map_err(|e| format!("seed {rel}: {e}"))
}

fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect()
}

impl Seeds {
    /// Read the seeds from the repository at `root`.
    pub fn load(root: &Path) -> Result<Seeds, String> {
        let demo = demo_lines(&root.join("samples/demo.ndjson.gz"))?;
        let mut event_lines = demo.clone();
        let mut exports = Vec::new();
        let fixtures = root.join("tests/fixtures/okta");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .map_err(|e| format!("{}: {e}", fixtures.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if path.extension().is_some_and(|x| x == "ndjson") {
                event_lines.extend(lines_of(&bytes));
            } else if let Ok(serde_json::Value::Array(events)) = serde_json::from_slice(&bytes) {
                event_lines.extend(events.iter().filter_map(|e| serde_json::to_vec(e).ok()));
            }
            exports.push(bytes);
        }
        let slice: Vec<u8> = demo[..demo.len().min(60)].join(&b'\n');
        let mut reversed: Vec<Vec<u8>> = demo[..demo.len().min(60)].to_vec();
        reversed.reverse();
        exports.push(slice);
        exports.push(reversed.join(&b'\n'));
        let mut alert_lines = Vec::new();
        for name in ["demo", "easy-21", "hard-22"] {
            alert_lines.extend(lines_of(&read(
                root,
                &format!("tests/golden/{name}.alerts.jsonl"),
            )?));
        }
        let label_lines = lines_of(&read(root, "samples/demo.labels.jsonl")?);
        let configs = vec![
            read(root, "config/authpulse.example.toml")?,
            read(root, "config/demo.toml")?,
            read(root, "deploy/authpulse.toml")?,
        ];
        let demo_times = demo
            .iter()
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter_map(|l| authpulse::event::Event::parse(l).ok())
            .map(|e| (e.published_ms, e.result != "SUCCESS"))
            .collect();
        Ok(Seeds {
            event_lines,
            exports,
            alert_lines,
            label_lines,
            configs,
            demo_times,
        })
    }

    /// Sixteen of the golden alerts (every ninth: all three sets, firing and resolved),
    /// parsed: enough for every state shape, few enough to keep a state file small.
    pub fn alerts(&self) -> Vec<authpulse::alert::Alert> {
        self.alert_lines
            .iter()
            .step_by(9)
            .take(16)
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

fn demo_lines(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    reader
        .split(b'\n')
        .take(DEMO_LINES)
        .map(|l| l.map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}
