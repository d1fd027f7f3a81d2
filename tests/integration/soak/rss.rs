//! The daemon's resident memory, sampled from `/proc/PID/status` (`VmRSS`) through the
//! whole soak, across restarts (the PID is swapped in on each start).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `VmRSS` of a process in KiB; None once it is gone.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples in KiB, in order.
pub struct RssMonitor {
    pub pid: Arc<AtomicU32>,
    samples: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssMonitor {
    /// Sample every `every` the process whose PID is in `pid` (0: none).
    pub fn start(every: Duration) -> RssMonitor {
        let pid = Arc::new(AtomicU32::new(0));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (p, s) = (pid.clone(), samples.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Some(kib) = vm_rss_kib(p.load(Ordering::SeqCst)) {
                    s.lock().unwrap().push(kib);
                }
                tokio::time::sleep(every).await;
            }
        });
        RssMonitor { pid, samples, task }
    }

    /// Stop sampling; the samples so far.
    pub fn stop(&self) -> Vec<u64> {
        self.task.abort();
        let samples = self.samples.lock().unwrap().clone();
        samples
    }
}

/// Peak and the medians of the first and last quarter of the samples (KiB).
pub fn summary(samples: &[u64]) -> (u64, u64, u64) {
    let median = |part: &[u64]| {
        let mut v = part.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let q = (samples.len() / 4).max(1).min(samples.len());
    (
        samples.iter().copied().max().unwrap_or(0),
        median(&samples[..q]),
        median(&samples[samples.len() - q..]),
    )
}

#[test]
fn reads_this_process_rss() {
    let kib = vm_rss_kib(std::process::id()).unwrap();
    assert!(kib > 100, "{kib}");
    assert_eq!(vm_rss_kib(u32::MAX), None);
    assert_eq!(summary(&[1, 5, 2, 9, 3, 4, 8, 7]), (9, 5, 8));
}
