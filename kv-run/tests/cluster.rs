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
    let total = total_of(&String::from_utf8_lossy(&o.stdout)).expect("a total line");
    assert!(total > 0.0, "{out}");
    let m1 = latest_manifest(&tmp.0);
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
    let o = Command::new("shellcheck")
        .arg(repo().join("run-cluster.sh"))
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

/// Test hosts, each with its own sshd and a key pair made for the test.
/// Preferably network namespaces `kvlabtest-<pid>-<net>-<i>`: 0 is the hub (a
/// bridge at 192.0.2.1, where the script runs), 1..=n are hosts
/// 192.0.2.(10+i), each with a veth into the hub. Where namespaces are not
/// available (or KVLAB_TEST_NO_NETNS is set): sshd instances on 127.0.0.(10+i)
/// at free ports. With namespaces, every namespace also gets an /etc/hosts
/// (`/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over /etc/hosts)
/// naming host i `node<i-1>`, as on a CloudLab experiment. Everything is
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
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestNet {
    fn create(hosts: usize, dir: &Path) -> Option<TestNet> {
        let sshd_bin = Path::new("/usr/sbin/sshd");
        if !sshd_bin.exists() {
            return None;
        }
        let mut net = TestNet {
            names: Vec::new(),
            netns: false,
            sshd: Vec::new(),
            hosts: Vec::new(),
            addrs: Vec::new(),
        };
        let netns = std::env::var_os("KVLAB_TEST_NO_NETNS").is_none() && net.try_namespaces(hosts);
        net.netns = netns;
        // Keys: one for the user, one for the hosts.
        let key = dir.join("id");
        let host_key = dir.join("host_key");
        for k in [&key, &host_key] {
            sh(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                k.to_str()?,
            ]);
        }
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).ok()?;
        std::fs::create_dir_all("/run/sshd").ok()?; // sshd's privilege separation dir
        for i in 1..=hosts {
            let (addr, port) = if netns {
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
                sh(&[
                    "ip",
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ]);
                sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
                (addr, 22)
            } else {
                (format!("127.0.0.{}", 10 + i), free_port())
            };
            let cfg = dir.join(format!("sshd_config_{i}"));
            std::fs::write(
                &cfg,
                format!(
                    "ListenAddress {addr}\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\n\
                     PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     UsePAM no\nStrictModes no\nLogLevel ERROR\nSubsystem sftp internal-sftp\n",
                    host_key.display(),
                    dir.join("authorized_keys").display()
                ),
            )
            .ok()?;
            let mut cmd = if netns {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.names[i]]).arg(sshd_bin);
                c
            } else {
                Command::new(sshd_bin)
            };
            let child = cmd
                .args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("sshd_{i}.log"))).ok()?)
                .spawn()
                .ok()?;
            net.sshd.push(child);
            net.hosts.push(if netns {
                addr.clone()
            } else {
                format!("{addr}:{port}")
            });
            net.addrs.push(addr);
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  User {user}\n  IdentityFile {}\n  UserKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking no\n  LogLevel ERROR\n  ConnectTimeout 5\n",
                key.display()
            ),
        )
        .ok()?;
        Some(net)
    }

    /// Creates the hub and host namespaces; false (and nothing left) when
    /// `ip netns` is not available here.
    fn try_namespaces(&mut self, hosts: usize) -> bool {
        // Tests run in parallel in this process: each net gets its own names.
        static NETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let net = NETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..=hosts {
            let name = format!("kvlabtest-{}-{net}-{i}", std::process::id());
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                self.remove_namespaces();
                return false;
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
        true
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

#[test]
fn ssh_backend_runs_across_hosts() {
    let tmp = TempDir::new("ssh");
    let net = TestNet::create(3, &tmp.0).expect(
        "cannot start test sshd hosts (is openssh-server installed? scripts/install-test-deps.sh)",
    );
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
    let total = total_of(&String::from_utf8_lossy(&o.stdout)).expect("a total line");
    assert!(total > 0.0, "{out}");
    assert!(out.contains("node0 median"), "{out}");
    assert!(out.contains("clients 2 combined"), "{out}");
    let m = latest_manifest(&tmp.0);
    assert_eq!(m.backend, "hosts");
    let binds: Vec<&str> = m.nodes.iter().map(|n| n.bind.as_str()).collect();
    assert_eq!(binds, net.addrs);
    for n in &m.nodes {
        assert!(n.remote_pid.is_some(), "{} has no remote pid", n.name);
        assert!(pid_gone(n.remote_pid.unwrap()), "{} still running", n.name);
    }
    assert_no_process_left(&m);
    check_run_files(&tmp.0, &m);
    let rows = read_log(&log_path(&tmp.0.join("experiments"))).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, RunStatus::Ok);
    assert_eq!(rows[0].hosts, net.addrs.join(";"));
    drop(net);
}

/// CloudLab as the course's script finds it: `geni-get` on PATH, nodes
/// named node0..nodeN that resolve on every node. A stand-in `geni-get`
/// answers `-a` with a manifest of three hosts; the names resolve through
/// each namespace's /etc/hosts. No backend flag: detection picks CloudLab.
#[test]
fn cloudlab_backend_runs_on_named_nodes() {
    let tmp = TempDir::new("cloudlab");
    let net = TestNet::create(3, &tmp.0).expect(
        "cannot start test sshd hosts (is openssh-server installed? scripts/install-test-deps.sh)",
    );
    assert!(
        net.netns,
        "this test needs network namespaces (ip netns, as root): CloudLab node names resolve per namespace"
    );
    let fake = tmp.0.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let geni = fake.join("geni-get");
    // Quotes escaped, as geni-get prints them.
    std::fs::write(
        &geni,
        "#!/bin/sh\n[ \"$1\" = -a ] || exit 1\n\
         echo '<rspec><node client_id=\\\"node0\\\"><host name=\\\"node0.kvlab.test\\\"/></node>\\n\
         <node client_id=\\\"node1\\\"><host name=\\\"node1.kvlab.test\\\"/></node>\\n\
         <node client_id=\\\"node2\\\"><host name=\\\"node2.kvlab.test\\\"/></node></rspec>'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&geni, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    net.wait_for_sshd(&tmp.0.join("ssh_config"));

    // More nodes than the experiment has: refused up front, naming them.
    let o = net
        .run_cluster(&tmp.0)
        .env("PATH", &path)
        .args(["--secs", "2", "1", "3"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "requested 4 nodes (servers: 1, clients: 3) but only 3 are available (node0 to node2)"
        ),
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
    assert!(
        total_of(&String::from_utf8_lossy(&o.stdout)).is_some_and(|t| t > 0.0),
        "{out}"
    );
    let m = latest_manifest(&tmp.0);
    assert_eq!(m.backend, "cloudlab");
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
