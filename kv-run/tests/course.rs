//! kvlab dropped into the course's workflow: `make links` puts
//! bin/kvsserver and bin/kvsclient where the course's scripts look, and
//! both take the skeleton's single-dash flags, run here with the course's
//! command lines verbatim (`-port 8080` in a network namespace of this
//! test, so 8080 is free; loopback at a free port where namespaces are
//! unavailable, said on stderr). run-cluster.sh passes such flags through.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log};
use kv_run::manifest::Manifest;
use kv_testkit::{bin, TempDir, SERVER_START};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The links `make links` makes, in a test folder (target dir = where the
/// test's binaries are, `PROFILE=dev` for the debug build).
fn course_bin(tmp: &Path) -> PathBuf {
    let built = bin("kv-server").parent().unwrap().to_path_buf();
    let target = built.parent().unwrap();
    let out = tmp.join("bin");
    let o = Command::new("make")
        .current_dir(repo())
        .arg("links")
        .arg(format!(
            "PROFILE={}",
            built.file_name().unwrap().to_string_lossy()
        ))
        .arg(format!("TARGET_DIR={}", target.display()))
        .arg(format!("BIN={}", out.display()))
        .output()
        .expect("make not installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for b in ["kvsserver", "kvsclient"] {
        assert!(out.join(b).exists(), "{b} not linked");
    }
    out
}

/// A network namespace of this test (own name, removed on drop), or none.
struct Ns(Option<String>);

impl Ns {
    fn new() -> Ns {
        let name = format!("kvlabtest-course-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("course test: no network namespace here, loopback at a free port instead");
            return Ns(None);
        }
        let up = Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(up, "cannot bring lo up in {name}");
        Ns(Some(name))
    }

    fn command(&self, program: &Path) -> Command {
        match &self.0 {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if let Some(n) = &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[test]
fn course_command_lines_run_kvlab_verbatim() {
    let tmp = TempDir::new("course");
    let bin_dir = course_bin(&tmp.0);
    let ns = Ns::new();
    let port = if ns.0.is_some() {
        "8080".to_string()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string()
    };
    // The course's server line: bin/kvsserver -port 8080.
    let mut server = ns
        .command(&bin_dir.join("kvsserver"))
        .args(["-port", &port, "-preload", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        line.starts_with(SERVER_START) && line.trim_end().ends_with(&format!(":{port}")),
        "{line}"
    );
    // The course's client line: -hosts, -workload, -theta, -secs.
    let start = Instant::now();
    let o = ns
        .command(&bin_dir.join("kvsclient"))
        .args([
            "-hosts",
            &format!("localhost:{port}"),
            "-workload",
            "YCSB-A",
            "-theta",
            "0.99",
            "-secs",
            "1",
        ])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // -secs 1 was read as --secs 1 (the default is 30).
    assert!(start.elapsed() < Duration::from_secs(20), "{out}");
    assert!(out.contains("YCSB-A"), "{out}");
    // A single-dash flag the program does not have is still refused.
    let o = Command::new(bin_dir.join("kvsclient"))
        .args(["-bogus", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_cluster_passes_course_style_args_through() {
    let tmp = TempDir::new("course-rc");
    let bin_dir = bin("kv-server").parent().unwrap().to_path_buf();
    let o = Command::new(repo().join("run-cluster.sh"))
        .current_dir(repo())
        .env("KVLAB_BIN_DIR", &bin_dir)
        .env("KVLAB_EXPERIMENTS_DIR", tmp.0.join("experiments"))
        .env("KVLAB_LOG_ROOT", tmp.0.join("logs"))
        .stdin(Stdio::null())
        .args([
            "--no-profile",
            "1",
            "1",
            "-port 8080 -preload 1000",
            "-workload YCSB-B -theta 0.5 -secs 1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let m = Manifest::read(&tmp.0.join("logs/latest/cluster.json")).unwrap();
    let server = &m.nodes[0].argv;
    // -port is run-cluster's to set (stripped, like --port); -preload kept.
    assert!(
        !server.iter().any(|w| w == "-port" || w == "8080"),
        "{server:?}"
    );
    assert!(
        server.windows(2).any(|w| w == ["--preload", "1000"]),
        "{server:?}"
    );
    let client = &m.nodes[1].argv;
    assert!(
        client.windows(2).any(|w| w == ["--workload", "YCSB-B"]),
        "{client:?}"
    );
    assert!(
        client.windows(2).any(|w| w == ["--theta", "0.5"]),
        "{client:?}"
    );
    assert_eq!(m.secs, 1.0, "-secs in client_args wins like --secs");
    // The record reads `-preload 1000` as the preload, like `--preload`.
    assert_eq!(m.preloaded_keys(), Some(1000));
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows[0].preload, Some(1000));
}
