//! Helpers for tests that start the real binaries on loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT: &str = env!("CARGO_BIN_EXE_kv-client");

/// kv-server is another package's binary: `cargo test --workspace` builds it
/// beside ours (kv-server has integration tests of its own).
pub fn server_bin() -> std::path::PathBuf {
    let p = std::path::Path::new(CLIENT).with_file_name("kv-server");
    assert!(
        p.exists(),
        "{} missing: run `cargo test --workspace` (or `cargo build -p kv-server`) first",
        p.display()
    );
    p
}

/// A kv-server child, killed by PID when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// Starts `kv-server --port 0 ARGS` and waits for its start line.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["--port", "0", "--workers", "2"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kv-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("kv-server exited before its start line")
            .expect("read start line");
        let addr = first
            .strip_prefix("Starting KVS server on ")
            .unwrap_or_else(|| panic!("unexpected start line {first:?}"))
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.pid(), libc_sigterm());
        wait_timeout(&mut self.child, Duration::from_secs(10))
            .expect("server did not stop within 10 s")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libc_sigterm() -> &'static str {
    "TERM"
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs kv-client to completion with the given args (bounded by `--secs`).
pub fn client(args: &[&str]) -> Output {
    Command::new(CLIENT)
        .args(args)
        .output()
        .expect("run kv-client")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The number after `prefix` on the line that starts with it.
pub fn field(out: &str, prefix: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
