//! End-to-end tests of run-cluster.sh: the real script, the real binaries
//! (prebuilt debug ones via KVLAB_BIN_DIR), temporary log and experiments
//! directories, and for the SSH backend real sshd instances in network
//! namespaces created (and removed) by the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kv_core::runlog::{log_path, read_log, read_timeseries, RunDir, RunStatus};
use kv_core::stats::Role;
use kv_run::manifest::Manifest;
use kv_testkit::{pid_gone, TempDir};

const KV_RUN: &str = env!("CARGO_BIN_EXE_kv-run");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where kv-server and kv-client are: beside kv-run (`cargo test --workspace`
/// builds them there).
fn bin_dir() -> PathBuf {
    let dir = Path::new(KV_RUN).parent().unwrap().to_path_buf();
    for b in ["kv-server", "kv-client"] {
        assert!(
            dir.join(b).exists(),
            "{} missing: run `cargo test --workspace` (or `cargo build -p kv-server -p kv-client`) first",
            dir.join(b).display()
        );
    }
    dir
}

/// The script with test directories and prebuilt binaries.
fn script(tmp: &Path) -> Command {
    let mut c = Command::new(repo().join("run-cluster.sh"));
    c.current_dir(repo())
        .env("KVLAB_BIN_DIR", bin_dir())
        .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
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

fn total_of(out: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix("total "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
}

fn latest_manifest(tmp: &Path) -> Manifest {
    Manifest::read(&tmp.join("logs/latest/cluster.json")).unwrap()
}

fn assert_no_process_left(m: &Manifest) {
    for n in &m.nodes {
        let pid = n
            .pid
            .unwrap_or_else(|| panic!("{} has no pid in the manifest", n.name));
        assert!(pid_gone(pid), "{} (pid {pid}) still running", n.name);
    }
}

/// Checks the files a finished local run leaves.
fn check_run_files(tmp: &Path, m: &Manifest) {
    let logs = tmp.join("logs/latest");
    for n in &m.nodes {
        let log = logs.join(&n.log);
        assert!(log.exists(), "{} missing", log.display());
    }
    let run = RunDir::new(&tmp.join("experiments"), &m.run_id);
    for f in [
        run.config_json(),
        run.summary_json(),
        run.timeseries_csv(),
        run.path().join("throughput.svg"),
        run.logs_dir().join("kvsserver-node0.log"),
    ] {
        assert!(f.exists(), "{} missing", f.display());
    }
}

#[test]
fn local_runs_report_and_record_two_rows() {
    let tmp = TempDir::new("local");
    let o = script(&tmp.0)
        .args([
            "--secs",
            "2",
            "--note",
            "first",
            "--tag",
            "e2e",
            "1",
            "2",
            "--preload 10000",
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("node0 median "), "{out}");
    let m1 = latest_manifest(&tmp.0);
    servers_served(&tmp.0, &m1, &String::from_utf8_lossy(&o.stdout));
    assert_eq!(m1.nodes.len(), 3);
    assert_eq!(m1.clients().count(), 2);
    // Each client has its own seed range, none overlapping.
    let seeds: Vec<(u64, u64)> = m1.clients().map(|n| n.seeds.unwrap()).collect();
    assert!(seeds[0].1 < seeds[1].0, "{seeds:?}");
    assert_no_process_left(&m1);
    check_run_files(&tmp.0, &m1);
    // Clients' per-second latency is recorded and charted; servers have none.
    let run = RunDir::new(&tmp.0.join("experiments"), &m1.run_id);
    let rows = read_timeseries(&run.timeseries_csv()).unwrap();
    assert!(rows
        .iter()
        .filter(|r| r.role == Role::Server)
        .all(|r| r.p50_us.is_none() && r.p99_us.is_none()));
    let timed: Vec<_> = rows.iter().filter_map(|r| r.p50_us.zip(r.p99_us)).collect();
    assert!(!timed.is_empty(), "no client latency in {rows:?}");
    assert!(
        timed.iter().all(|&(p50, p99)| 0 < p50 && p50 <= p99),
        "{timed:?}"
    );
    assert!(run.path().join("latency.svg").exists());
    // Profiling is on by default: every process left svg, pb and folded.
    let profiles = RunDir::new(&tmp.0.join("experiments"), &m1.run_id)
        .profiles()
        .unwrap();
    let names: Vec<String> = profiles.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["server-node0", "client-node1", "client-node2"]);
    assert!(profiles
        .iter()
        .all(|p| p.svg.is_some() && p.pb.is_some() && p.folded.is_some()));
    // SVGs are titled with run id, process and config (for a lab report).
    let svg = std::fs::read_to_string(profiles[0].svg.as_ref().unwrap()).unwrap();
    let title = format!("run {} · server-node0 · 1s 2c", m1.run_id);
    assert!(svg.contains(&title), "{title} not in the SVG");
    let config =
        std::fs::read_to_string(RunDir::new(&tmp.0.join("experiments"), &m1.run_id).config_json())
            .unwrap();
    for key in [
        "\"git\"",
        "\"versions\"",
        "\"host\"",
        "\"script_args\"",
        "--preload 10000",
    ] {
        assert!(config.contains(key), "config.json lacks {key}");
    }

    let o = script(&tmp.0)
        .args([
            "--secs",
            "1",
            "--no-profile",
            "--tag",
            "e2e",
            "1",
            "1",
            "--preload 1000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m2 = latest_manifest(&tmp.0);
    assert_no_process_left(&m2);

    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].run_id, rows[1].run_id);
    assert_eq!((rows[0].servers, rows[0].clients), (Some(1), Some(2)));
    assert_eq!((rows[1].servers, rows[1].clients), (Some(1), Some(1)));
    assert_eq!(rows[0].note, "first");
    assert_eq!(rows[0].preload, Some(10000));
    assert_eq!(rows[0].status, RunStatus::Ok);
    assert!(rows[0].total_ops_per_s.unwrap() > 0.0);
    assert!(rows.iter().all(|r| r.backend == "local" && r.tag == "e2e"));

    // The scaling chart across the two runs sharing the tag.
    let o = Command::new(KV_RUN)
        .args(["plot-scaling", "--tag", "e2e", "--experiments"])
        .arg(tmp.0.join("experiments"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.0.join("experiments/scaling-e2e.svg").exists());
}

#[test]
fn killed_server_fails_the_run_naming_the_node() {
    let tmp = TempDir::new("kill");
    let child: Child = script(&tmp.0)
        .args(["--secs", "30", "--no-profile", "1", "1", "--preload 1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the client is running, then kill the server.
    let deadline = Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        assert!(Instant::now() < deadline, "client never started");
        if let Ok(m) = Manifest::read(&tmp.0.join("logs/latest/cluster.json")) {
            if m.nodes.iter().all(|n| n.pid.is_some()) {
                break m;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Kill mid-run: once the client has logged a second of completed ops.
    let client_log = tmp.0.join("logs/latest").join(
        &manifest
            .nodes
            .iter()
            .find(|n| n.role == Role::Client)
            .unwrap()
            .log,
    );
    loop {
        assert!(Instant::now() < deadline, "client never reported ops");
        let log = std::fs::read_to_string(&client_log).unwrap_or_default();
        if log.lines().any(|l| {
            l.strip_prefix("ops/s ")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|v| v > 0.0)
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let server = manifest.servers().next().unwrap().pid.unwrap();
    // The server's PID as the script recorded it (a process this test started).
    kv_testkit::signal(server, "KILL");
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("node0 (server) exited"), "{out}");
    assert!(out.contains("last lines of"), "{out}");
    assert_no_process_left(&manifest);
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 1);
    match &rows[0].status {
        RunStatus::Failed(reason) => assert!(reason.contains("node0"), "{reason}"),
        s => panic!("status {s:?}"),
    }
    assert_eq!(rows[0].total_ops_per_s, None);
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let tmp = TempDir::new("bad");
    for args in [
        &["abc"][..],
        &["0", "1"],
        &["1", "-3"],
        &["--bogus", "1", "1"],
        &["1", "1", "", "", "extra"],
        &["--secs", "soon", "1", "1"],
        &["--backend", "moon", "1", "1"],
    ] {
        let o = script(&tmp.0).args(args).output().unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    // Client args are validated exactly as kv-client would, before anything starts.
    let o = script(&tmp.0)
        .args(["1", "1", "", "--theta 2"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("theta"), "{out}");
    // Server args are checked at plan with kv-server's own flag types
    // (kv-config) before anything starts: one line naming the flag, exit 2,
    // no run folder.
    for (args, says) in [
        (
            "--bogus-flag",
            "server_args: unexpected argument '--bogus-flag' found",
        ),
        (
            "--workers 100000",
            "server_args: --workers must be at most 1024",
        ),
        (
            "-max-batch-ops 0",
            "server_args: --max-batch-ops must be at least 1",
        ),
    ] {
        let o = script(&tmp.0)
            .args(["--no-build", "1", "1", args])
            .output()
            .unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args}: {out}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(stderr.trim(), format!("kv-run: error: {says}"), "{out}");
        assert!(!out.contains("Started "), "{out}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.0.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "latest")
        .collect();
    assert!(
        left.is_empty(),
        "refused runs leave no log folder: {left:?}"
    );
    // A remote directory that would need shell quoting is refused by name.
    let o = script(&tmp.0)
        .args(["--no-build", "--remote-dir", "/tmp/it's", "1", "1"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "bad arguments exit 2: {out}");
    assert!(
        out.contains("--remote-dir must be an absolute path"),
        "{out}"
    );
    assert!(
        !tmp.0.join("experiments/log.csv").exists(),
        "a bad config is not a run"
    );
    let o = script(&tmp.0).arg("--help").output().unwrap();
    assert!(o.status.success() && text(&o).contains("Examples:"));
    // --check without a checker is refused up front, not after the run.
    let no_checker = tmp.0.join("bin-without-kv-check");
    std::fs::create_dir_all(&no_checker).unwrap();
    for b in ["kv-server", "kv-client", "kv-run"] {
        std::os::unix::fs::symlink(bin_dir().join(b), no_checker.join(b)).unwrap();
    }
    let o = script(&tmp.0)
        .env("KVLAB_BIN_DIR", &no_checker)
        .args(["--check", "--secs", "1", "1", "1"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("kv-check not found"), "{out}");
    assert!(
        !tmp.0.join("experiments/log.csv").exists(),
        "refused before running: {out}"
    );
}

#[test]
fn script_is_shellcheck_clean() {
    // -x from the repo: follow the scripts it sources (scripts/emulate.sh).
    let o = Command::new("shellcheck")
        .arg("-x")
        .arg("run-cluster.sh")
        .current_dir(repo())
        .output()
        .expect("shellcheck not installed: run scripts/install-test-deps.sh");
    assert!(o.status.success(), "{}", text(&o));
}

// ---- SSH backend --------------------------------------------------------

/// Runs a command, panicking with its output when it fails.
fn sh(argv: &[&str]) {
    let o = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(o.status.success(), "{argv:?}: {}", text(&o));
}

/// Test hosts, each with its own sshd and host key (user key and host keys
/// made for the test). Preferably network namespaces
/// `kvlabtest-<pid>-<net>-<i>` (the pid and a per-process counter keep the
/// names of this run apart from any other run's, and from the emulate
/// backend's namespaces): 0 is the hub (a bridge at 192.0.2.1, where the
/// script runs), 1..=n are hosts 192.0.2.(10+i), each with a veth into the
/// hub. Where namespaces cannot be created (or KVLAB_TEST_NO_NETNS is set):
/// sshd instances on 127.0.0.(10+i) at free ports, and the fallback says so
/// on stderr; with KVLAB_REQUIRE_NETNS set (CI, where the machine has
/// them) the fallback is a failure instead. With namespaces, every
/// namespace also gets an /etc/hosts (`/etc/netns/<ns>/hosts`, which `ip
/// netns exec` mounts over /etc/hosts) naming host i `node<i-1>`, as on a
/// CloudLab experiment. Hosts see this machine's files (a shared home, as
/// on CloudLab) unless `hide` is given: then each sshd runs in its own
/// mount namespace with an empty tmpfs over that directory. Everything is
/// removed on drop: sshd by PID, then the namespaces (which takes their
/// links with them) and their /etc/netns folders.
struct TestNet {
    names: Vec<String>,
    /// True when the hosts are network namespaces (else loopback sshds).
    netns: bool,
    sshd: Vec<Child>,
    /// Hosts file lines, one per host.
    hosts: Vec<String>,
    /// Addresses the nodes bind, one per host.
    addrs: Vec<String>,
    dir: PathBuf,
    hide: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    sh(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        path.to_str().unwrap(),
    ]);
}

impl TestNet {
    fn create(hosts: usize, dir: &Path) -> TestNet {
        Self::create_hiding(hosts, dir, None)
    }

    /// Like `create`; the hosts do not see `hide` (a directory).
    fn create_hiding(hosts: usize, dir: &Path, hide: Option<&Path>) -> TestNet {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} missing: install openssh-server (scripts/install-test-deps.sh)"
        );
        let mut net = TestNet {
            names: Vec::new(),
            netns: false,
            sshd: Vec::new(),
            hosts: Vec::new(),
            addrs: Vec::new(),
            dir: dir.to_path_buf(),
            hide: hide.map(Path::to_path_buf),
        };
        let why_not = if std::env::var_os("KVLAB_TEST_NO_NETNS").is_some() {
            Some("KVLAB_TEST_NO_NETNS is set".to_string())
        } else {
            net.try_namespaces(hosts).err()
        };
        net.netns = why_not.is_none();
        if let Some(why) = why_not {
            // Visible, so a CI log says which kind of test ran.
            eprintln!("SSH test hosts: loopback sshd instead of network namespaces ({why})");
            assert!(
                std::env::var_os("KVLAB_REQUIRE_NETNS").is_none(),
                "KVLAB_REQUIRE_NETNS is set but network namespaces are unavailable: {why}"
            );
        }
        keygen(&dir.join("id"));
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap(); // sshd's privilege separation dir
        for i in 1..=hosts {
            let (addr, port) = if net.netns {
                let ns = net.names[i].clone();
                let hub = net.names[0].clone();
                let veth = format!("vh{i}");
                let addr = format!("192.0.2.{}", 10 + i);
                sh(&[
                    "ip", "-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ]);
                sh(&[
                    "ip", "-n", &hub, "link", "set", &veth, "master", "br0", "up",
                ]);
                let cidr = format!("{addr}/24");
                sh(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
                sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
                (addr, 22)
            } else {
                (format!("127.0.0.{}", 10 + i), free_port())
            };
            keygen(&net.host_key(i));
            std::fs::write(
                dir.join(format!("sshd_config_{i}")),
                format!(
                    "ListenAddress {addr}\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\n\
                     PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     UsePAM no\nStrictModes no\nLogLevel ERROR\nSubsystem sftp internal-sftp\n",
                    net.host_key(i).display(),
                    dir.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let child = net.spawn_sshd(i);
            net.sshd.push(child);
            net.hosts.push(if net.netns {
                addr.clone()
            } else {
                format!("{addr}:{port}")
            });
            net.addrs.push(addr);
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        // Lax host keys here; the CloudLab backend's own options (given on
        // its command line, which wins over this file) must override them.
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  User {user}\n  IdentityFile {}\n  UserKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking no\n  LogLevel ERROR\n  ConnectTimeout 5\n",
                dir.join("id").display()
            ),
        )
        .unwrap();
        net
    }

    fn host_key(&self, i: usize) -> PathBuf {
        self.dir.join(format!("host_key_{i}"))
    }

    /// Starts host i's sshd (in its namespace, and with `hide` hidden).
    fn spawn_sshd(&self, i: usize) -> Child {
        let mut cmd = if self.netns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.names[i]]);
            c
        } else {
            Command::new("env")
        };
        if let Some(h) = &self.hide {
            // A private mount namespace: the tmpfs is seen by this sshd
            // and its sessions only.
            cmd.args([
                "unshare",
                "-m",
                "sh",
                "-c",
                "mount -t tmpfs kvlabhide \"$0\" && exec \"$@\"",
            ])
            .arg(h);
        }
        cmd.args([SSHD, "-D", "-e", "-f"])
            .arg(self.dir.join(format!("sshd_config_{i}")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(format!("sshd_{i}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// Host i gets a new host key (as a reinstalled node would).
    fn change_host_key(&mut self, i: usize) {
        let old = &mut self.sshd[i - 1];
        let _ = old.kill();
        let _ = old.wait();
        keygen(&self.host_key(i));
        self.sshd[i - 1] = self.spawn_sshd(i);
    }

    /// Creates the hub and host namespaces; the reason (and nothing left)
    /// when `ip netns` is not available here.
    fn try_namespaces(&mut self, hosts: usize) -> Result<(), String> {
        // Tests run in parallel in this process: each net gets its own names.
        static NETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let net = NETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..=hosts {
            let name = format!("kvlabtest-{}-{net}-{i}", std::process::id());
            let o = Command::new("ip").args(["netns", "add", &name]).output();
            match o {
                Ok(o) if o.status.success() => {}
                other => {
                    self.remove_namespaces();
                    return Err(match other {
                        Ok(o) => format!(
                            "ip netns add failed: {}",
                            String::from_utf8_lossy(&o.stderr).trim()
                        ),
                        Err(e) => format!("cannot run ip: {e}"),
                    });
                }
            }
            self.names.push(name.clone());
            sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        }
        let hub = self.names[0].clone();
        sh(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &hub,
            "addr",
            "add",
            "192.0.2.1/24",
            "dev",
            "br0",
        ]);
        sh(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        let base = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let nodes: String = (1..=hosts)
            .map(|i| format!("192.0.2.{} node{}\n", 10 + i, i - 1))
            .collect();
        for n in &self.names {
            let dir = Path::new("/etc/netns").join(n);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("hosts"), format!("{base}\n{nodes}")).unwrap();
        }
        Ok(())
    }

    fn remove_namespaces(&mut self) {
        for n in self.names.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &n]).status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&n));
        }
    }

    /// Waits (bounded) until every sshd accepts a session.
    fn wait_for_sshd(&self, ssh_config: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for h in &self.hosts {
            let (host, port) = h.split_once(':').unwrap_or((h, "22"));
            loop {
                let ok = self
                    .command("ssh")
                    .arg("-F")
                    .arg(ssh_config)
                    .args(["-o", "BatchMode=yes", "-p", port, host, "true"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                assert!(Instant::now() < deadline, "sshd on {h} never answered");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// run-cluster.sh in the hub with the test's ssh config, remote dir,
    /// free base port and experiment/log folders under `tmp`.
    fn run_cluster(&self, tmp: &Path) -> Command {
        let mut c = self.command(repo().join("run-cluster.sh"));
        c.arg("--ssh-config")
            .arg(tmp.join("ssh_config"))
            .arg("--remote-dir")
            .arg(tmp.join("remote"))
            .args(["--base-port", &free_port().to_string()])
            .current_dir(repo())
            .env("KVLAB_BIN_DIR", bin_dir())
            .env("KVLAB_EXPERIMENTS_DIR", tmp.join("experiments"))
            .env("KVLAB_LOG_ROOT", tmp.join("logs"))
            .stdin(Stdio::null());
        c
    }

    /// A command that runs `program` where the hosts are reachable.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self.names.first() {
            Some(hub) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", hub]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.remove_namespaces();
    }
}

/// The servers served: some `ops/s` line of each server log (fetched back
/// or written in place) is above zero, and the report has a total line.
/// Not `total > 0`: that is the median of every line, and on a starved
/// machine a 2 s run's servers print more idle seconds (clients still
/// starting over ssh) than busy ones.
fn servers_served(tmp: &Path, m: &Manifest, stdout: &str) {
    assert!(total_of(stdout).is_some(), "no total line: {stdout}");
    for n in m.servers() {
        let log = std::fs::read_to_string(tmp.join("logs/latest").join(&n.log)).unwrap();
        let lines = kv_run::report::ops_lines(&log);
        assert!(
            lines.iter().any(|&v| v > 0.0),
            "{}: {lines:?}\n{log}",
            n.name
        );
    }
}

/// The run's preflight record (`preflight.json` in its log folder).
fn preflight_json(tmp: &Path) -> serde_json::Value {
    let p = tmp.join("logs/latest/preflight.json");
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// Names of the files under `dir` (recursively), or none when it does not exist.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.map_while(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// A stand-in for a CloudLab node's tools, on a PATH of its own: `tmcc`
/// answering `hostnames` for `tmcc_nodes` nodes (Emulab's line format, one
/// line per node and link) unless `None`, and `geni-get` answering `-a`
/// with a manifest of `geni_nodes` hosts (quotes escaped, as geni-get
/// prints them). Returns the PATH to run the script with.
fn fake_cloudlab_tools(tmp: &Path, tmcc_nodes: Option<usize>, geni_nodes: usize) -> String {
    use std::os::unix::fs::PermissionsExt;
    let fake = tmp.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let mut tools = Vec::new();
    if let Some(n) = tmcc_nodes {
        let lines: String = (0..n)
            .map(|i| {
                format!(
                    "NAME=node{i}-link-0 IP=10.10.1.{} ALIASES='node{i}-0 node{i}'\\n",
                    i + 1
                )
            })
            .collect();
        tools.push((
            "tmcc",
            format!("#!/bin/sh\n[ \"$1\" = hostnames ] || exit 1\nprintf \"{lines}\"\n"),
        ));
    }
    let hosts: String = (0..geni_nodes)
        .map(|i| {
            format!(
                "<node client_id=\\\\\"node{i}\\\\\"><host name=\\\\\"node{i}.kvlab.test\\\\\"/></node>"
            )
        })
        .collect();
    tools.push((
        "geni-get",
        format!("#!/bin/sh\n[ \"$1\" = -a ] || exit 1\necho '<rspec>{hosts}</rspec>'\n"),
    ));
    for (name, body) in tools {
        let p = fake.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The hosts backend over ssh, nodes that do not see this directory (copy
/// mode: binaries copied, files fetched back), and its strict host keys.
#[test]
fn ssh_backend_runs_across_hosts() {
    let tmp = TempDir::new("ssh");
    std::fs::create_dir_all(tmp.0.join("logs")).unwrap();
    let net = TestNet::create_hiding(3, &tmp.0, Some(&tmp.0.join("logs")));
    std::fs::write(
        tmp.0.join("hosts"),
        format!(
            "# test hosts\n{}\n{} # second\n{}\n",
            net.hosts[0], net.hosts[1], net.hosts[2]
        ),
    )
    .unwrap();
    net.wait_for_sshd(&tmp.0.join("ssh_config"));
    let o = net
        .run_cluster(&tmp.0)
        .arg("--hosts-file")
        .arg(tmp.0.join("hosts"))
        .args(["--secs", "2", "1", "2", "--preload 10000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("node0 median"), "{out}");
    assert!(out.contains("clients 2 combined"), "{out}");
    assert!(out.contains("Nodes do not see this directory"), "{out}");
    let m = latest_manifest(&tmp.0);
    servers_served(&tmp.0, &m, &String::from_utf8_lossy(&o.stdout));
    assert_eq!(m.backend, "hosts");
    let binds: Vec<&str> = m.nodes.iter().map(|n| n.bind.as_str()).collect();
    assert_eq!(binds, net.addrs);
    for n in &m.nodes {
        assert!(n.remote_pid.is_some(), "{} has no remote pid", n.name);
        assert!(pid_gone(n.remote_pid.unwrap()), "{} still running", n.name);
    }
    assert_no_process_left(&m);
    check_run_files(&tmp.0, &m);
    assert_eq!(preflight_json(&tmp.0)["mode"], "copy");
    // Once fetched, a good run's remote folders (binaries, logs) are gone,
    // the run's <remote-dir>/<timestamp> with them (issue 14 item 13).
    let left = files_under(&tmp.0.join("remote"));
    assert!(left.is_empty(), "remote files left: {left:?}");
    let ts_dirs: Vec<_> = std::fs::read_dir(tmp.0.join("remote"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(ts_dirs.is_empty(), "{ts_dirs:?}");
    assert!(!tmp.0.join("logs/latest/remote-kept.txt").exists());
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, RunStatus::Ok);
    assert_eq!(rows[0].hosts, net.addrs.join(";"));

    // A failed run (its server killed by the remote PID the script
    // recorded) keeps every node's folder, says where, and records that.
    let child = net
        .run_cluster(&tmp.0)
        .arg("--hosts-file")
        .arg(tmp.0.join("hosts"))
        .args(["--no-profile", "--secs", "60", "1", "1", "--preload 1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let failing = loop {
        assert!(Instant::now() < deadline, "nodes never started");
        if let Ok(m) = Manifest::read(&tmp.0.join("logs/latest/cluster.json")) {
            if m.run_id != rows[0].run_id && m.nodes.iter().all(|n| n.remote_pid.is_some()) {
                break m;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    kv_testkit::signal(failing.nodes[0].remote_pid.unwrap(), "KILL");
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let kept: Vec<String> = failing
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{} {}:{}",
                n.name,
                n.ssh.as_deref().unwrap(),
                n.remote_dir.as_deref().unwrap()
            )
        })
        .collect();
    assert!(
        out.contains(&format!(
            "Remote run folders kept (the run failed):\n  {}\n  {}\n",
            kept[0], kept[1]
        )),
        "{out}"
    );
    // Copy mode put each node's binary in its own remote folder.
    for (n, bin) in [
        (&failing.nodes[0], "kv-server"),
        (&failing.nodes[1], "kv-client"),
    ] {
        let dir = Path::new(n.remote_dir.as_deref().unwrap());
        assert!(dir.join(bin).exists(), "{} lacks {bin}", dir.display());
        assert!(
            dir.join(&n.log).exists(),
            "{} lacks {}",
            dir.display(),
            n.log
        );
    }
    let note = RunDir::new(&tmp.0.join("experiments"), &failing.run_id)
        .logs_dir()
        .join("remote-kept.txt");
    assert_eq!(
        std::fs::read_to_string(&note).unwrap(),
        format!("{}\n{}\n", kept[0], kept[1])
    );

    // Strict host keys stay on this backend: keys this ssh config has never
    // seen fail the preflight with one hint line, nothing started.
    let strict = tmp.0.join("ssh_config_strict");
    std::fs::write(
        &strict,
        format!(
            "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  LogLevel ERROR\n  ConnectTimeout 5\n",
            tmp.0.join("id").display(),
            tmp.0.join("empty_known_hosts").display()
        ),
    )
    .unwrap();
    let o = net
        .run_cluster(&tmp.0)
        .arg("--ssh-config")
        .arg(&strict)
        .arg("--hosts-file")
        .arg(tmp.0.join("hosts"))
        .args(["--secs", "1", "1", "1"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let hints: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("problem: ") && l.contains("host key verification failed"))
        .collect();
    assert_eq!(hints.len(), 2, "{out}");
    assert!(
        hints[0].contains("not in your known_hosts") && hints[0].contains("true`"),
        "{out}"
    );
    assert!(!out.contains("Started "), "{out}");
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 2, "a refused preflight is not a run");
    drop(net);
}

/// CloudLab as the course's script finds it, with the nodes seeing this
/// directory but files hidden from them (copy mode), and check mode: tools
/// on PATH, nodes named node0..nodeN that resolve on every node. No backend
/// flag: detection picks CloudLab.
#[test]
fn cloudlab_backend_runs_on_named_nodes() {
    let tmp = TempDir::new("cloudlab");
    std::fs::create_dir_all(tmp.0.join("logs")).unwrap();
    let net = TestNet::create_hiding(3, &tmp.0, Some(&tmp.0.join("logs")));
    assert!(
        net.netns,
        "this test needs network namespaces (ip netns, as root): CloudLab node names resolve per namespace"
    );
    // geni-get only (no tmcc): the fallback source.
    let path = fake_cloudlab_tools(&tmp.0, None, 3);
    net.wait_for_sshd(&tmp.0.join("ssh_config"));

    // More nodes than the experiment has: refused up front, naming them.
    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .args(["--secs", "2", "1", "3"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "requested 4 nodes (servers: 1, clients: 3) but only 3 are available (node0 to node2)"
        ),
        "{out}"
    );
    assert!(
        out.contains("CloudLab nodes from `geni-get -a`: 3 (node0 node1 node2)"),
        "{out}"
    );

    // With --check: the two clients run on two hosts (here they share one
    // kernel); each history comes back with its clock samples against the
    // first server and is checked.
    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .args(["--check", "--secs", "2", "1", "2", "--preload 10000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("PASS: "), "{out}");
    let m = latest_manifest(&tmp.0);
    servers_served(&tmp.0, &m, &String::from_utf8_lossy(&o.stdout));
    assert_eq!(m.backend, "cloudlab");
    assert_eq!(preflight_json(&tmp.0)["mode"], "copy");
    let hosts: Vec<&str> = m.nodes.iter().map(|n| n.host.as_str()).collect();
    assert_eq!(hosts, ["node0", "node1", "node2"]);
    // Each node binds the address its name resolves to there.
    let binds: Vec<&str> = m.nodes.iter().map(|n| n.bind.as_str()).collect();
    assert_eq!(binds, net.addrs);
    for n in &m.nodes {
        let pid = n
            .remote_pid
            .unwrap_or_else(|| panic!("{} has no remote pid", n.name));
        assert!(pid_gone(pid), "{} still running", n.name);
    }
    assert_no_process_left(&m);
    check_run_files(&tmp.0, &m);
    // A passing check keeps its verdict, not its histories (no --keep-histories).
    let run = RunDir::new(&tmp.0.join("experiments"), &m.run_id);
    let verdict = std::fs::read_to_string(run.logs_dir().join("check.txt")).unwrap();
    assert!(verdict.starts_with("PASS: "), "{verdict}");
    for dir in [tmp.0.join("logs/latest"), run.logs_dir()] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("history-"))
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 1, "the refused run is not a row");
    assert_eq!(rows[0].status, RunStatus::Ok);
    assert_eq!(rows[0].backend, "cloudlab");
    drop(net);
}

/// The course's headline command rehearsed: an 8-node experiment whose
/// `tmcc hostnames` lists 8 while `geni-get -a` comes back truncated to 6,
/// host keys nobody has seen (accepted on first use into the run's own
/// known_hosts), a shared home (the run must not copy), `--preflight`, a
/// busy port and a changed host key refused. `./run-cluster.sh 1 7` must
/// use all 8 nodes. Kept short: 1 s of load, no profiles.
#[test]
fn cloudlab_rehearsal_one_server_seven_clients() {
    let tmp = TempDir::new("rehearsal");
    let mut net = TestNet::create(8, &tmp.0);
    assert!(
        net.netns,
        "this test needs network namespaces (ip netns, as root): CloudLab node names resolve per namespace"
    );
    let path = fake_cloudlab_tools(&tmp.0, Some(8), 6);
    net.wait_for_sshd(&tmp.0.join("ssh_config"));
    let kh = tmp.0.join("kept_known_hosts");

    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .arg("--known-hosts")
        .arg(&kh)
        .args(["--no-profile", "--secs", "1", "1", "7", "--preload 1000"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("hostnames`: 8 (node0 node1 node2 node3 node4 node5 node6 node7)"),
        "{out}"
    );
    assert!(out.contains("Nodes see this directory"), "{out}");
    assert!(stdout.contains("clients 7 combined"), "{out}");
    let m = latest_manifest(&tmp.0);
    servers_served(&tmp.0, &m, &stdout);
    assert_eq!(m.backend, "cloudlab");
    let hosts: Vec<String> = m.nodes.iter().map(|n| n.host.clone()).collect();
    let want: Vec<String> = (0..8).map(|i| format!("node{i}")).collect();
    assert_eq!(hosts, want);
    assert_eq!(m.clients().count(), 7);
    assert_no_process_left(&m);
    for n in &m.nodes {
        assert!(
            pid_gone(n.remote_pid.expect("remote pid")),
            "{} still running",
            n.name
        );
    }
    // Every node wrote its log straight into the log folder (1 s is too
    // short for the charts check_run_files expects).
    let run = RunDir::new(&tmp.0.join("experiments"), &m.run_id);
    for n in &m.nodes {
        assert!(
            tmp.0.join("logs/latest").join(&n.log).exists(),
            "{} missing",
            n.log
        );
        assert!(
            run.logs_dir().join(&n.log).exists(),
            "{} not recorded",
            n.log
        );
    }
    assert!(run.logs_dir().join("preflight.json").exists());
    let pf = preflight_json(&tmp.0);
    assert_eq!(pf["mode"], "shared");
    assert!(
        pf["source"].as_str().unwrap().ends_with("tmcc hostnames"),
        "{pf}"
    );
    // Shared: every node ran the binaries in place; nothing was copied.
    assert!(
        files_under(&tmp.0.join("remote")).is_empty(),
        "copied: {:?}",
        files_under(&tmp.0.join("remote"))
    );
    for n in &m.nodes {
        assert!(n.argv[0].starts_with('/'), "{}: {:?}", n.name, n.argv);
    }
    // The nodes share this machine's kernel: the true clock offset is 0,
    // so every estimate must lie within its own bound.
    for f in pf["nodes"].as_array().unwrap() {
        let (o, b) = (
            f["clock_offset_ms"].as_f64().unwrap(),
            f["clock_bound_ms"].as_f64().unwrap(),
        );
        assert!(o.abs() <= b + 0.01, "{f}");
        assert_eq!(f["port_free"], true, "{f}");
    }
    // Unknown keys were accepted into the file given, one per node.
    let keys = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(
        keys.lines().filter(|l| !l.trim().is_empty()).count(),
        8,
        "{keys}"
    );

    // --preflight: the table, nothing started, no run recorded.
    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .arg("--known-hosts")
        .arg(&kh)
        .arg("--preflight")
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("node") && l.contains(" same ("))
        .collect();
    assert_eq!(rows.len(), 8, "{out}");
    assert!(out.contains("Preflight passed"), "{out}");

    // A busy port on node3 and a changed host key on node5: one line each,
    // exit 1, nothing started. The listener is a kv-server this test starts
    // in node3's namespace on the port preflight will check.
    let port = free_port();
    let mut squatter = Command::new("ip")
        .args(["netns", "exec", &net.names[4]])
        .arg(bin_dir().join("kv-server"))
        .args([
            "--preload",
            "0",
            "--bind",
            "0.0.0.0",
            "--port",
            &(port + 3).to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(squatter.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with(kv_testkit::SERVER_START), "{first}");
    net.change_host_key(6);
    net.wait_for_sshd(&tmp.0.join("ssh_config"));
    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .arg("--known-hosts")
        .arg(&kh)
        .args(["--base-port", &port.to_string()])
        .arg("--preflight")
        .output()
        .unwrap();
    let _ = squatter.kill();
    let _ = squatter.wait();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("problem: ")).collect();
    assert_eq!(problems.len(), 2, "{out}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("problem: node3: port") && p.contains("in use")),
        "{out}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("problem: node5 (node5): host key verification failed")),
        "{out}"
    );
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 1, "preflights are not runs");
    drop(net);
}
