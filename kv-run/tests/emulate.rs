//! The emulated backend end to end (root, as CI runs): run-cluster.sh
//! --emulate builds real namespaces, veths, a bridge and CPU cgroups, the
//! real binaries run inside them, and everything named with the run's
//! prefix is gone afterwards, also after Ctrl-C and after a crash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log};
use kv_run::manifest::Manifest;
use kv_testkit::{pid_gone, signal, wait_gone, wait_timeout, TempDir};

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

/// One emulated run at a time: CI has 2 cores, and the crash test must
/// be the one that finds its own leftovers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn is_root() -> bool {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        eprintln!("skipped: the emulated backend needs root (CI runs as root)");
    }
    root
}

fn script(tmp: &Path) -> Command {
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", Path::new(KV_RUN).parent().unwrap())
        .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
        .env("KVLAB_LOG_ROOT", tmp.join("logs"))
        .stdin(Stdio::null());
    c
}

/// A short 2+2 at 0.2 CPUs per node (0.8 of CI's 2 cores).
const RUN_2_2: &[&str] = &[
    "--emulate",
    "cpus=0.2",
    "--no-dash",
    "--no-profile",
    "--secs",
    "3",
    "2",
    "2",
    "--preload 10000",
];

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every namespace, link, qdisc, cgroup and state file named with `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    let p = format!("{prefix}-");
    let mut out: Vec<String> = sh("ip netns list; ip -o link show; tc qdisc show")
        .lines()
        .filter(|l| l.contains(&p))
        .map(str::to_string)
        .collect();
    for d in [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpuacct",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup",
        "/run/kvlab-emulate",
    ] {
        let f = Path::new(d).join(prefix);
        if f.exists() {
            out.push(f.display().to_string());
        }
    }
    out
}

fn manifest_in(tmp: &Path) -> Option<Manifest> {
    Manifest::read(&tmp.join("logs/latest/cluster.json")).ok()
}

/// Polls until every node of the run has a PID in the manifest.
fn wait_all_started(tmp: &Path, child: &mut Child) -> Manifest {
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(m) = manifest_in(tmp) {
            if m.nodes.iter().all(|n| n.pid.is_some()) {
                return m;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before all nodes started"
        );
        assert!(Instant::now() < end, "nodes did not start within 90 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn net_ns_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn emulated_two_plus_two_isolated_within_quota_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let _g = serial();
    let tmp = TempDir::new("emulate");
    let mut child = script(&tmp.0)
        .args(RUN_2_2)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let m = wait_all_started(&tmp.0, &mut child);
    // While it runs: each node in its own network namespace (not ours)
    // and its own cpu cgroup named with the run's prefix.
    let e = m.emulate.clone().expect("manifest records the emulation");
    let ours = net_ns_of(std::process::id());
    let mut seen = Vec::new();
    for (i, n) in m.nodes.iter().enumerate() {
        let pid = n.pid.unwrap();
        // The recorded PID enters its namespace as it execs (ip netns
        // exec): wait, bounded, for that rather than reading it once.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let ns = loop {
            let ns = net_ns_of(pid);
            if (!ns.is_empty() && ns != ours) || std::time::Instant::now() > until {
                break ns;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(!ns.is_empty() && ns != ours, "{} in our namespace", n.name);
        assert!(!seen.contains(&ns), "{} shares a namespace", n.name);
        seen.push(ns);
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(
            cg.contains(&format!("/{}/n{i}", e.prefix)),
            "{} not in its cgroup: {cg}",
            n.name
        );
    }
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // Shard balance of the two servers.
    assert!(
        t.contains("ops per server node0 ") && t.contains("imbalance max/mean "),
        "{t}"
    );
    assert!(
        leftovers(&e.prefix).is_empty(),
        "{:?}",
        leftovers(&e.prefix)
    );
    for n in &m.nodes {
        assert!(pid_gone(n.pid.unwrap()), "{} still running", n.name);
    }

    // Addresses differ: one per node from the run's /24.
    let mut addrs: Vec<&str> = m.nodes.iter().map(|n| n.bind.as_str()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    assert!(addrs.iter().all(|a| a.starts_with(&e.subnet)), "{addrs:?}");

    // CPU: each node's cgroup used at most its quota over its life (plus
    // 10% and a period's worth), and the quota did stop someone: without
    // it the nodes would never be throttled.
    let usage: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.0.join("logs/latest/emulation.json")).unwrap(),
    )
    .unwrap();
    let nodes = usage["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{usage}");
    let mut throttled = 0;
    for n in nodes {
        let used = n["cpu_usage_ns"].as_f64().unwrap();
        let wall = n["wall_ns"].as_f64().unwrap();
        assert!(used > 0.0, "{n}");
        assert!(used <= 0.2 * wall * 1.1 + 20e6, "over quota: {n}");
        throttled += n["nr_throttled"].as_u64().unwrap();
    }
    assert!(throttled > 0, "no node was ever throttled: {usage}");

    // Recorded as emulated with its parameters, in the row and the identity.
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.last().unwrap().backend, "emulated cpus=0.2");
    let trial = std::fs::read_to_string(
        tmp.0
            .join("experiments/runs")
            .join(&m.run_id)
            .join("trial.json"),
    )
    .unwrap();
    assert!(trial.contains("\"emulate\": \"cpus=0.2\""), "{trial}");
}

#[test]
fn sigint_mid_run_stops_and_removes_everything() {
    if !is_root() {
        return;
    }
    let _g = serial();
    let tmp = TempDir::new("emulate-int");
    let mut args = RUN_2_2.to_vec();
    args[5] = "30"; // --secs: far longer than the test waits
    let mut child = script(&tmp.0)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_all_started(&tmp.0, &mut child);
    let prefix = m.emulate.clone().unwrap().prefix;
    assert!(!leftovers(&prefix).is_empty(), "nothing set up?");
    signal(child.id(), "INT");
    let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("stopped within 60 s");
    assert_eq!(status.code(), Some(130));
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    for n in &m.nodes {
        assert!(pid_gone(n.pid.unwrap()), "{} still running", n.name);
    }
}

#[test]
fn leftovers_of_a_crashed_run_are_removed_before_the_next() {
    if !is_root() {
        return;
    }
    let _g = serial();
    let tmp = TempDir::new("emulate-crash");
    let mut args = RUN_2_2.to_vec();
    args[5] = "30";
    let mut child = script(&tmp.0)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_all_started(&tmp.0, &mut child);
    let prefix = m.emulate.clone().unwrap().prefix;
    let collector = wait_pid_file(&tmp.0.join("logs/latest/pids/collect.pid"));
    assert!(!pid_gone(collector), "the collector is not running");
    // A crash: the script dies without cleaning up.
    signal(child.id(), "KILL");
    child.wait().unwrap();
    assert!(!leftovers(&prefix).is_empty());
    // Its collector notices it is orphaned and stops by itself.
    assert!(
        wait_gone(collector, Duration::from_secs(10)),
        "the crashed run's collector still runs"
    );

    let o = script(&tmp.0)
        .args(["--secs", "1"])
        .args(&RUN_2_2[..4])
        .args(["1", "1", "--preload 1000"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "Removing leftovers of a crashed emulated run ({prefix}-*)"
        )),
        "{t}"
    );
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    // The crashed run's nodes lived in its cgroups: stopped with them.
    for n in &m.nodes {
        let pid = n.pid.unwrap();
        assert!(
            wait_gone(pid, Duration::from_secs(10)),
            "{} of the crashed run still running",
            n.name
        );
    }
}

/// The PID in `file`, once the script has written it (within 30 s).
fn wait_pid_file(file: &Path) -> u32 {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < end,
            "{} not written in 30 s",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn refusals_are_one_line_before_anything_starts() {
    if !is_root() {
        return;
    }
    let tmp = TempDir::new("emulate-bad");
    let run = |args: &[&str]| {
        let o = script(&tmp.0).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let cores = std::thread::available_parallelism().unwrap().get();
    let too_much = format!("cpus={}", cores as f64 / 2.0 + 0.5);
    let err = run(&["--emulate", &too_much, "1", "1"]);
    assert!(err.contains("2 nodes need"), "{err}");
    assert!(
        err.contains(&format!("this machine has {cores} cores")),
        "{err}"
    );
    let err = run(&["--emulate", "cpus=0.2,mem=1g", "1", "1"]);
    assert!(err.contains("unknown key 'mem'"), "{err}");
    let err = run(&["--backend", "local", "--emulate", "cpus=0.2", "1", "1"]);
    assert!(
        err.contains("--emulate needs the emulated backend"),
        "{err}"
    );
    // Without netem, rtt= names the missing kernel feature.
    let netem = Command::new("unshare")
        .args([
            "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !netem {
        let err = run(&["--emulate", "cpus=0.2,rtt=1ms", "1", "1"]);
        assert!(err.contains("CONFIG_NET_SCH_NETEM"), "{err}");
    }
    // Not root: said before anything starts.
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(repo().join("run-cluster.sh"))
        .args(["--emulate", "cpus=0.2", "1", "1"])
        .current_dir(repo())
        .env("KVLAB_BIN_DIR", Path::new(KV_RUN).parent().unwrap())
        .env("KVLAB_LOG_ROOT", tmp.0.join("nobody-logs"))
        .output();
    if let Ok(o) = nobody {
        if o.status.code() == Some(2) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.starts_with("Error: --emulate: needs root"), "{err}");
            assert!(!tmp.0.join("nobody-logs").exists());
        }
    }
    // No run folder stayed behind (a refused plan removes its own).
    let runs = std::fs::read_dir(tmp.0.join("logs"))
        .map(|d| d.filter(|e| e.as_ref().unwrap().path().is_dir()).count())
        .unwrap_or(0);
    assert_eq!(runs, 0);
}

#[test]
fn scale_study_runs_each_size_as_one_series() {
    if !is_root() {
        return;
    }
    let _g = serial();
    let tmp = TempDir::new("emulate-scale");
    let o = script(&tmp.0)
        .args(&RUN_2_2[..4])
        .args(["--secs", "1", "--scale", "2,1", "--", "--preload 1000"])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let exp = tmp.0.join("experiments");
    let json = std::fs::read_dir(&exp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("scale-<series>.json");
    assert!(json.with_extension("svg").exists(), "{t}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let pts = r["points"].as_array().unwrap();
    let sizes: Vec<u64> = pts.iter().map(|p| p["servers"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![1, 2], "smallest first");
    assert!(pts[0]["imbalance"].is_null() && pts[1]["imbalance"].as_f64().unwrap() >= 1.0);
    // One series: both rows carry it, S servers + S clients each.
    let rows = read_log(&log_path(&exp)).unwrap();
    assert_eq!(rows.len(), 2);
    let series = r["series"].as_str().unwrap();
    for (row, n) in rows.iter().zip([1, 2]) {
        assert_eq!((row.servers, row.clients), (Some(n), Some(n)));
        assert_eq!((row.tag.as_str(), row.series_id.as_str()), (series, series));
        assert!(
            row.backend.starts_with("emulated cpus=0.2"),
            "{}",
            row.backend
        );
    }
    assert!(exp.join("series").join(format!("{series}.json")).exists());
    assert!(t.contains("ideal") && t.contains("imbalance"), "{t}");

    // Sizes whose CPU budget exceeds the cores: refused before any run.
    let cores = std::thread::available_parallelism().unwrap().get();
    let too_big = ((cores as f64 / 0.4).floor() as usize + 1).to_string();
    let o = script(&tmp.0)
        .args(&RUN_2_2[..4])
        .args(["--scale", &format!("1,{too_big}")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("--scale size {too_big}")), "{err}");
    assert_eq!(read_log(&log_path(&exp)).unwrap().len(), 2, "nothing ran");
}

/// Where the kernel has netem: node-to-node round trips take at least
/// the requested rtt. (The kvlab VM has no netem; there `rtt=` is
/// refused, which `refusals_are_one_line_before_anything_starts` checks.)
#[test]
fn rtt_between_namespaces_is_at_least_the_requested_delay() {
    if !is_root() {
        return;
    }
    let netem = Command::new("unshare")
        .args([
            "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !netem {
        eprintln!("skipped: no netem in this kernel (CONFIG_NET_SCH_NETEM)");
        return;
    }
    let _g = serial();
    let tmp = TempDir::new("emulate-rtt");
    let mut args = RUN_2_2.to_vec();
    args[1] = "cpus=0.2,rtt=2ms";
    args[5] = "30";
    let mut child = script(&tmp.0)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_all_started(&tmp.0, &mut child);
    let e = m.emulate.clone().unwrap();
    let ping = Command::new("ip")
        .args(["netns", "exec", &format!("{}-n2", e.prefix)])
        .args(["ping", "-c", "3", "-i", "0.2", "-q", &m.nodes[0].bind])
        .output()
        .unwrap();
    signal(child.id(), "INT");
    wait_timeout(&mut child, Duration::from_secs(60)).expect("stopped within 60 s");
    let out = String::from_utf8_lossy(&ping.stdout);
    // "rtt min/avg/max/mdev = 2.1/2.3/2.6/0.2 ms"
    let min: f64 = out
        .lines()
        .find_map(|l| l.split(" = ").nth(1))
        .and_then(|v| v.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no rtt line: {out}"));
    assert!(min >= 2.0, "min rtt {min} ms < 2 ms: {out}");
    assert!(
        leftovers(&e.prefix).is_empty(),
        "{:?}",
        leftovers(&e.prefix)
    );
}
