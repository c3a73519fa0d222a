//! Test-only helpers shared by every crate's integration tests: find the
//! real kvlab binaries that `cargo test --workspace` built, start a
//! kv-server on a free loopback port, signal and wait for processes by PID,
//! drive a program in a real terminal ([`tmux::Tmux`]), keep files in a
//! [`TempDir`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod live_screen;
pub mod tmux;

/// The line a kv-server prints once it is loaded and listening.
pub const SERVER_START: &str = "Starting KVS server on ";

/// A workspace binary, e.g. `bin("kv-server")`: integration tests run from
/// `target/<profile>/deps/`, the binaries sit one folder up.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps")
        .join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo test --workspace` (or `cargo build -p {name}`) first",
        p.display()
    );
    p
}

/// A kv-server child: its address and every stdout/stderr line it printed
/// (both pipes are drained, so it never blocks on them). Killed by PID
/// when dropped.
pub struct ServerProc {
    pub child: Child,
    pub addr: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn drain(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for l in BufReader::new(pipe).lines().map_while(Result::ok) {
            into.lock().unwrap_or_else(|e| e.into_inner()).push(l);
        }
    });
}

impl ServerProc {
    /// `kv-server --port 0 --workers 2 ARGS`, once its start line is out.
    pub fn start(args: &[&str]) -> ServerProc {
        Self::start_bin(&bin("kv-server"), args)
    }

    /// Like [`ServerProc::start`] with another build of the server.
    pub fn start_bin(server: &Path, args: &[&str]) -> ServerProc {
        Self::start_with_env(server, args, &[])
    }

    /// Like [`ServerProc::start_bin`], with extra environment variables.
    pub fn start_with_env(server: &Path, args: &[&str], env: &[(&str, &str)]) -> ServerProc {
        let mut child = Command::new(server)
            .args(["--port", "0", "--workers", "2"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kv-server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines
            .next()
            .expect("kv-server exited before its start line")
            .expect("read start line");
        let addr = first
            .strip_prefix(SERVER_START)
            .unwrap_or_else(|| panic!("unexpected start line {first:?}"))
            .to_string();
        let stdout = Arc::new(Mutex::new(vec![first]));
        let out = stdout.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                out.lock().unwrap_or_else(|e| e.into_inner()).push(l);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        ServerProc {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Waits (bounded) for the exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, limit)
    }

    /// SIGTERM, then the exit status within 10 s.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(10))
            .expect("server did not stop within 10 s of SIGTERM")
    }

    pub fn stdout_text(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIG PID` (a process this test started).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// True when no process `pid` exists any more (a zombie still counts as
/// running: it has not been reaped).
pub fn pid_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `limit` for `pid` to be gone; whether it is.
pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !pid_gone(pid) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The exit status of `child` if it ends within `limit`.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// VmRSS of `pid` from /proc, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

/// A fresh directory under the system temp dir, removed on drop. Unique per
/// process and call, so tests running in parallel never share one.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kvlab-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover of an earlier process with the same PID.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test directory");
        TempDir(dir)
    }

    /// Writes `text` to `name` inside the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
