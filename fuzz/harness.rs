//! What keeps one input's run honest: a counting allocator (the bytes one input held at
//! its peak), the process's peak RSS, a watchdog for inputs that never finish, and the
//! panic catcher.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes live now and the most live since a reset.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Start measuring one input: the bytes live now.
pub fn alloc_mark() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The most bytes held above `mark` since [`alloc_mark`].
pub fn alloc_peak_since(mark: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(mark)
}

/// Peak resident set size of this process in bytes (`VmHWM`), 0 where unknown.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

fn proc_status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// How one input ended.
pub enum Ran {
    /// It returned: `Ok(outcome)` names what the parser said (for the corpus), `Err` a
    /// broken promise that is not a panic (a 5xx, an error that is not an error, …).
    Returned(Result<String, String>),
    Panicked(String),
}

/// The message of the last panic (the hook keeps it quiet and records it here).
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Panics are caught per input: the default hook's output is replaced by a record of
/// the message and where it was raised.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = format!("{msg}{at}");
        }
    }));
}

/// Run `f` on `input`, catching a panic.
pub fn run_one(f: &dyn Fn(&[u8]) -> Result<String, String>, input: &[u8]) -> Ran {
    match catch_unwind(AssertUnwindSafe(|| f(input))) {
        Ok(r) => Ran::Returned(r),
        Err(_) => Ran::Panicked(
            LAST_PANIC
                .lock()
                .map(|m| m.clone())
                .unwrap_or_else(|_| "(panic message lost)".into()),
        ),
    }
}

/// Save `input` under `dir` as `<target>-<kind>-<hash>.bin`; returns the path.
pub fn save(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{target}-{kind}-{:016x}.bin", fnv(input)));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("cannot save the input to {}: {e}", path.display());
    }
    path
}

pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Aborts the process when one input runs longer than `limit`, after saving it: a hang
/// cannot be caught like a panic.
pub struct Watchdog {
    epoch: Instant,
    started_ms: Arc<AtomicU64>,
    busy: Arc<AtomicBool>,
    current: Arc<Mutex<(String, Vec<u8>)>>,
}

impl Watchdog {
    pub fn start(limit: Duration, crash_dir: PathBuf) -> Watchdog {
        let epoch = Instant::now();
        let started_ms = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicBool::new(false));
        let current = Arc::new(Mutex::new((String::new(), Vec::new())));
        let (s, b, c) = (started_ms.clone(), busy.clone(), current.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = epoch.elapsed().as_millis() as u64;
            if b.load(Ordering::SeqCst)
                && now.saturating_sub(s.load(Ordering::SeqCst)) > limit.as_millis() as u64
            {
                let (target, input) = c.lock().map(|g| g.clone()).unwrap_or_default();
                let path = save(&crash_dir, &target, "hang", &input);
                eprintln!(
                    "HANG: one {target} input ran longer than {} s; saved to {}",
                    limit.as_secs_f64(),
                    path.display()
                );
                std::process::exit(3);
            }
        });
        Watchdog {
            epoch,
            started_ms,
            busy,
            current,
        }
    }

    /// The input about to run.
    pub fn arm(&self, target: &str, input: &[u8]) {
        if let Ok(mut c) = self.current.lock() {
            if c.0 != target {
                c.0 = target.to_string();
            }
            c.1.clear();
            c.1.extend_from_slice(input);
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        self.started_ms.store(now, Ordering::SeqCst);
        self.busy.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }
}
