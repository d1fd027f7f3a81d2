//! `authpulse run` as a child process: the one harness every test that needs the real
//! binary (signals, exit codes, SIGKILL, systemd's socket, a second process on the same
//! state) starts it with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The `authpulse run` child process; killed on drop.
pub struct Daemon {
    pub child: Child,
    /// Its `daemon.http_listen` port on 127.0.0.1.
    pub port: u16,
    /// Its stderr (the log), appended across restarts.
    pub log: PathBuf,
}

impl Daemon {
    /// `authpulse run --config CONFIG`, logging to `log` at the config's `log_level`
    /// (`RUST_LOG` removed), with the AWS emulator's dummy credentials (a file source never
    /// reads them) and `env` on top.
    pub fn start(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the daemon's log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authpulse"));
        cmd.args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().expect("start authpulse"),
            port,
            log: log.to_path_buf(),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GET a path on the daemon's HTTP port; the status code, or None if unreachable.
    pub async fn get(&self, path: &str) -> Option<u16> {
        reqwest::get(self.url(path))
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// GET a path on the daemon's HTTP port; the body, or "" if unreachable.
    #[cfg_attr(not(feature = "aws-emulator"), allow(dead_code))]
    pub async fn text(&self, path: &str) -> String {
        match reqwest::get(self.url(path)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Wait for `/readyz` (history loaded); panics with the log if the daemon exits first
    /// or is not ready within `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited with {status}; log:\n{}", self.log_text());
            }
            if self.get("/readyz").await == Some(200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "daemon not ready in {timeout:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `/metrics` page (the daemon must be up).
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the /metrics body")
    }

    /// Send a signal (`"HUP"`, `"TERM"`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for authpulse")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
