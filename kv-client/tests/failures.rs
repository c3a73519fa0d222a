//! How runs fail: a server that hangs, a client killed mid-run, a name that
//! does not resolve, a folder the client may not write. Each ends with one
//! clear line and a non-zero exit, in bounded time. (Port in use and an
//! unreachable server are in e2e.rs.)

mod util;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{field, signal, wait_timeout, Running, Server, CLIENT};

/// Runs kv-client with `args`, killed if it is still running after `limit`.
fn client_bounded(
    args: &[&str],
    limit: Duration,
    as_nobody: bool,
) -> (Option<i32>, String, String) {
    // `nobody` may not reach the build tree (a checkout under a 0700
    // directory, as `mktemp -d` makes): run a copy from a folder it can read.
    let copy = as_nobody.then(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = kv_testkit::TempDir::new("nobody-bin");
        let bin = dir.0.join("kv-client");
        std::fs::copy(CLIENT, &bin).expect("copy kv-client");
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, bin)
    });
    let mut cmd = Command::new(
        copy.as_ref()
            .map_or(CLIENT.as_ref(), |(_, bin)| bin.as_path()),
    );
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some((dir, _)) = &copy {
        cmd.uid(65534).gid(65534).current_dir(&dir.0);
    }
    let mut child = cmd.spawn().expect("spawn kv-client");
    let status = wait_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        status.and_then(|s| s.code()),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line(stderr: &str, needle: &str) {
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
}

#[test]
fn a_hung_server_fails_the_client_within_5_s_naming_it_with_partial_counts() {
    let server = Server::start(&["--preload", "1000"]);
    let addr = server.addr.clone();
    let mut run = Running::spawn(&[
        "--hosts",
        &addr,
        "--secs",
        "30",
        "--threads",
        "2",
        "--rpc-timeout",
        "3",
    ]);
    // Hang the server only once ops are flowing, so some completed for sure.
    run.wait_for_ops(Duration::from_secs(30));
    signal(server.pid(), "STOP");
    let stopped = Instant::now();
    let (status, stdout, stderr) = run.finish(Duration::from_secs(10));
    let waited = stopped.elapsed();
    signal(server.pid(), "CONT");
    let status =
        status.unwrap_or_else(|| panic!("client still running 10 s after the server hung"));
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        waited < Duration::from_secs(5),
        "client took {waited:?} to give up"
    );
    assert!(stderr.contains(&format!("server {addr}")), "{stderr}");
    assert!(stderr.contains("partial counts"), "{stderr}");
    // Every generated op is accounted for: completed or failed, never neither.
    let generated = field(&stdout, "generated ").expect("summary line");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("generated "))
        .unwrap();
    let completed = line
        .split_whitespace()
        .skip_while(|w| *w != "completed")
        .nth(1)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    let failed: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(completed > 0.0, "{line}");
    assert!(failed > 0.0, "{line}");
    assert_eq!(completed + failed, generated, "{line}");
    eprintln!("hung server: client exited 1 after {waited:?}: {line}");
}

#[test]
fn killing_a_client_mid_run_leaves_the_server_serving_the_others() {
    let server = Server::start(&["--preload", "1000"]);
    let addr = server.addr.clone();
    let mut victim = Running::spawn(&["--hosts", &addr, "--secs", "30", "--threads", "2"]);
    let other = std::thread::spawn({
        let addr = addr.clone();
        move || {
            client_bounded(
                &["--hosts", &addr, "--secs", "2", "--threads", "1"],
                Duration::from_secs(20),
                false,
            )
        }
    });
    // Kill the victim mid-run: once it has reported completed ops.
    victim.wait_for_ops(Duration::from_secs(30));
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let (code, stdout, stderr) = other.join().unwrap();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("generated ") && l.ends_with("failed 0")),
        "{stdout}"
    );
    // And a new client after that too.
    let (code, stdout, stderr) = client_bounded(
        &["--hosts", &addr, "--secs", "0.5", "--threads", "1"],
        Duration::from_secs(20),
        false,
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
}

#[test]
fn an_unknown_hostname_is_one_line() {
    let (code, _, stderr) = client_bounded(
        &[
            "--hosts",
            "no-such-host.invalid:8080",
            "--connect-timeout",
            "1",
            "--secs",
            "1",
        ],
        Duration::from_secs(20),
        false,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_one_line(&stderr, "cannot resolve host 'no-such-host.invalid:8080'");
}

/// A folder the client may not write: as root (CI containers), the client
/// runs as `nobody`, because root ignores permission bits.
fn read_only_dir(name: &str) -> (std::path::PathBuf, bool) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("kv-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    (dir, root.unwrap_or(false))
}

#[test]
fn an_unwritable_summary_or_history_folder_is_one_line() {
    let server = Server::start(&["--preload", "1000"]);
    let (dir, as_nobody) = read_only_dir("ro");
    let summary = dir.join("summary.json");
    let history = dir.join("history.bin");
    let base = ["--hosts", &server.addr, "--secs", "0.3", "--threads", "1"];
    let (code, stdout, stderr) = client_bounded(
        &[&base[..], &["--summary-json", summary.to_str().unwrap()]].concat(),
        Duration::from_secs(20),
        as_nobody,
    );
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert_one_line(&stderr, &format!("cannot write {}", summary.display()));
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(
        !stdout.contains("throughput"),
        "refused only after the run: {stdout}"
    );
    let (code, stdout, stderr) = client_bounded(
        &[&base[..], &["--check", history.to_str().unwrap()]].concat(),
        Duration::from_secs(20),
        as_nobody,
    );
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert_one_line(
        &stderr,
        &format!("cannot create history file {}", history.display()),
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
