//! Helpers for tests that start the real binaries on loopback.

#![allow(dead_code, unused_imports)]

use std::process::{Command, Output};

pub const CLIENT: &str = env!("CARGO_BIN_EXE_kv-client");

pub use kv_testkit::{signal, wait_timeout, ServerProc as Server};

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

/// A kv-client running in the background whose stdout is read as it comes,
/// so a test can act at a known point of the run instead of after a sleep.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
}

impl Running {
    pub fn spawn(args: &[&str]) -> Running {
        use std::io::BufRead;
        let mut child = Command::new(CLIENT)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kv-client");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
        }
    }

    /// Waits (at most `limit`) for the first per-second `ops/s N` line with
    /// N > 0: from then on ops are certainly in flight.
    pub fn wait_for_ops(&mut self, limit: std::time::Duration) {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let busy = l
                        .strip_prefix("ops/s ")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .is_some_and(|v| v > 0.0);
                    self.stdout.push(l);
                    if busy {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no completed ops reported within {limit:?}; stdout so far: {:?}",
                    self.stdout
                ),
            }
        }
    }

    /// The exit status within `limit` (killed after it: `None`), all of
    /// stdout, and stderr.
    pub fn finish(
        mut self,
        limit: std::time::Duration,
    ) -> (Option<std::process::ExitStatus>, String, String) {
        use std::io::Read;
        let status = wait_timeout(&mut self.child, limit);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader thread ends at EOF once the process is gone.
        self.stdout.extend(self.lines.iter());
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (status, self.stdout.join("\n") + "\n", stderr)
    }
}
