//! A run that cannot be recorded is never reported as a success (issue 14
//! item 7), with the real script, binaries and filesystems: an unwritable
//! or too small experiments folder is refused before anything starts; a
//! disk that fills during the run keeps the log row, names what was lost
//! and exits 1.
//!
//! Filesystems: a tmpfs the test mounts (read-only, 1 MB, or filled up by
//! the test) when it can mount (root). Without that, the read-only case
//! uses a chmod 0555 folder and the size cases are skipped with a line on
//! stderr; KVLAB_REQUIRE_NETNS (set by CI where the machine is root) makes
//! that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log, RunDir, RunStatus};
use kv_run::manifest::Manifest;
use kv_testkit::TempDir;

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The script with prebuilt binaries, logs under `tmp`, records in `exp`.
fn script(tmp: &Path, exp: &Path) -> Command {
    let bins = Path::new(KV_RUN).parent().unwrap();
    for b in ["kv-server", "kv-client"] {
        assert!(
            bins.join(b).exists(),
            "{b} missing: `cargo build --workspace --bins` first"
        );
    }
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", bins)
        .env("KVLAB_EXPERIMENTS_DIR", exp)
        .env("KVLAB_LOG_ROOT", tmp.join("logs"))
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A tmpfs mounted at a folder of the test, unmounted on drop (declare it
/// after the TempDir holding it, so it goes first).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (and why) when this process cannot mount.
    fn mount(at: &Path, options: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "kvlabtest"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A mount for the test, or a visible skip (a failure where CI requires it).
fn tmpfs_or_skip(at: &Path, options: &str, case: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(at, options) {
        Ok(t) => Some(t),
        Err(why) => {
            assert!(
                std::env::var_os("KVLAB_REQUIRE_NETNS").is_none(),
                "{case}: cannot mount a tmpfs ({why}) but KVLAB_REQUIRE_NETNS is set"
            );
            eprintln!("{case}: skipped, cannot mount a tmpfs ({why})");
            None
        }
    }
}

/// Nothing was started: no node line, and no log folder left behind.
fn assert_refused_before_start(tmp: &Path, o: &Output) {
    let out = text(o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("Started "), "{out}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {out}");
    let left: Vec<_> = std::fs::read_dir(tmp.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "latest")
        .collect();
    assert!(left.is_empty(), "log folders left: {left:?}");
}

/// Read-only and too small experiments folders: one line, exit 1, before
/// any process starts (it used to run the whole run, then warn, exit 0).
#[test]
fn unrecordable_runs_are_refused_before_they_start() {
    let tmp = TempDir::new("room-refused");
    let ro = tmp.0.join("ro");
    let ro_mount = match Tmpfs::mount(&ro, "ro,size=1m") {
        Ok(t) => Some(t),
        Err(why) => {
            // Not root: permissions do the same (root would ignore them).
            eprintln!("read-only case: chmod 0555 folder (cannot mount: {why})");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
            None
        }
    };
    let o = script(&tmp.0, &ro.join("experiments"))
        .args(["--secs", "1", "--no-profile", "1", "1", "--preload 1000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_refused_before_start(&tmp.0, &o);
    let why = if ro_mount.is_some() {
        "Read-only file system"
    } else {
        "Permission denied"
    };
    assert!(
        out.contains(&format!(
            "the experiments folder {} is not writable ({why}",
            ro.join("experiments").display()
        )),
        "{out}"
    );
    drop(ro_mount);

    // 1 MB cannot take the profiles of a profiled run (about 4 MB each).
    let small = tmp.0.join("small");
    let Some(small_mount) = tmpfs_or_skip(&small, "size=1m", "too-small case") else {
        return;
    };
    let o = script(&tmp.0, &small)
        .args(["--secs", "1", "1", "1", "--preload 1000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_refused_before_start(&tmp.0, &o);
    assert!(
        out.contains(&format!(
            "the experiments folder {} has 1.0 MB free, and this run's record needs about",
            small.display()
        )) && out.contains("(2 processes, profiled)"),
        "{out}"
    );
    assert!(!log_path(&small).exists());
    drop(small_mount);
}

/// Fills `dir`'s filesystem until `leave` bytes are free (a file of the
/// test's own; tmpfs hands out whole pages).
fn fill_leaving(dir: &Path, leave: u64) {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 16];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
}

fn wait_started(tmp: &Path, child: &mut Child) -> Manifest {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "nodes never started");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        if let Ok(m) = Manifest::read(&tmp.join("logs/latest/cluster.json")) {
            if m.nodes.iter().all(|n| n.pid.is_some()) {
                return m;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The disk fills during the run (a 16 MB tmpfs, filled to 8 KB free once
/// the clients run): the row is in log.csv, the output names every file
/// lost with its cause, no cut-short file is left, no `recorded run (ok)`,
/// exit 1. It used to be exit 0, no row (written last), truncated files.
#[test]
fn a_disk_full_during_the_run_keeps_the_row_and_names_what_was_lost() {
    let tmp = TempDir::new("room-full");
    let exp = tmp.0.join("experiments");
    let Some(mount) = tmpfs_or_skip(&exp, "size=16m", "full-disk case") else {
        return;
    };
    let mut child = script(&tmp.0, &exp)
        .args(["--secs", "3", "--no-profile", "1", "1", "--preload 1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = wait_started(&tmp.0, &mut child);
    fill_leaving(&exp, 8 << 10);
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("recorded run (ok)"), "{out}");
    assert!(
        out.contains("Run complete."),
        "the run itself went well: {out}"
    );
    let run = RunDir::new(&exp, &m.run_id);
    let said = format!(
        "kv-run: error: the run's row is in {} but {} is incomplete; lost: ",
        log_path(&exp).display(),
        run.path().display()
    );
    let line = String::from_utf8_lossy(&o.stderr)
        .lines()
        .find(|l| l.starts_with(&said))
        .unwrap_or_else(|| panic!("no loss line: {out}"))
        .to_string();
    assert!(line.contains("No space left on device"), "{line}");
    assert!(
        out.contains("Error: the run was not fully recorded"),
        "{out}"
    );
    // The row survived, as an ok run with its figures.
    let rows = read_log(&log_path(&exp)).unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0].run_id, m.run_id);
    assert_eq!(rows[0].status, RunStatus::Ok);
    assert!(rows[0].total_ops_per_s.is_some());
    // Every file named lost is gone, every file kept is whole.
    for f in [
        "config.json",
        "summary.json",
        "timeseries.csv",
        "throughput.svg",
    ] {
        let p = run.path().join(f);
        if line.contains(f) {
            assert!(!p.exists(), "{f} named lost but left: {line}");
        }
    }
    let mut kept = 0;
    for e in std::fs::read_dir(run.path()).unwrap() {
        let p = e.unwrap().path();
        let body = std::fs::read_to_string(&p).unwrap_or_default();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            kept += 1;
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "{name} cut short"
            );
        } else if name.ends_with(".svg") {
            kept += 1;
            assert!(body.trim_end().ends_with("</svg>"), "{name} cut short");
        }
    }
    assert!(
        kept > 0 || line.contains("trial.json"),
        "nothing kept and trial.json not named: {line}"
    );
    // Everything is still in the log folder.
    assert!(tmp.0.join("logs/latest/report.txt").exists());
    drop(mount);
}
