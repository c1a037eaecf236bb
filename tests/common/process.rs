//! `callflowd serve` as a child process (crash and soak tests: SIGKILL, RSS of its own).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `callflowd serve` child.
pub struct ServeProcess {
    /// The child (killed on drop).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The ESL listener's address.
    pub esl: std::net::SocketAddr,
    /// The API key printed on first start (`None` on later starts).
    pub api_key: Option<String>,
    /// The account id printed on first start.
    pub account_id: Option<String>,
}

impl ServeProcess {
    /// Starts `callflowd serve` on ephemeral ports over `data_dir` (plus `extra` flags) and
    /// waits for its "listening" line.
    pub async fn spawn(data_dir: &Path, extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callflowd"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--esl-listen",
                "127.0.0.1:0",
                "--log-level",
                "warn",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn callflowd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut api_key = None;
        let mut account_id = None;
        let (base, esl) = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("start-up line in time")
                .expect("read stdout")
                .expect("callflowd exited before listening");
            if let Some(key) = line.trim().strip_prefix("API key:") {
                api_key = Some(key.trim().to_string());
            }
            if let Some(id) = line.trim().strip_prefix("account id:") {
                account_id = Some(id.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("callflowd: API listening on ") {
                let (url, esl) = rest.split_once(", ESL on ").expect("ESL address");
                break (
                    url.trim().to_string(),
                    esl.trim().parse().expect("ESL socket address"),
                );
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServeProcess {
            child,
            base,
            esl,
            api_key,
            account_id,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("child still running")
    }

    /// SIGKILL, then reap.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }

    /// SIGTERM (graceful shutdown), then reap; returns whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        let pid = self.pid();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = self.child.start_kill();
                false
            }
        }
    }
}

/// Resident set size of a process in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs an offline `callflowd` command over `data_dir` and returns (success, stdout).
pub fn offline(args: &[&str], data_dir: &Path) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callflowd"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("CALLFLOWD_LOG_LEVEL", "warn")
        .output()
        .expect("run callflowd");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
