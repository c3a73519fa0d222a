//! Preflight: before anything starts on a remote backend, one ssh session
//! per node (all at once) learns what the plan needs and what could sink
//! the run — reachable, the address its name resolves to, cores, boot id,
//! whether it sees this directory (a marker file written here, read there)
//! and then whether its binaries are ours (sha256), whether its port is
//! free, and its clock offset. Problems come back one line each; the table
//! goes to stderr (stdout carries the plan's bash).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::plan::{Backend, Host};
use crate::shell;

/// How long one node's probe may take, connection included.
const PROBE_DEADLINE: Duration = Duration::from_secs(40);

/// Preflight found problems: the run must not start (exit 1, not the
/// "bad arguments" 2).
#[derive(Debug, thiserror::Error)]
#[error("preflight: {0} problem(s), nothing started (see the lines above)")]
pub struct Failed(pub usize);

/// The ssh options of every ssh/scp of a run (after the program name).
/// BatchMode everywhere: never a prompt. CloudLab: a fresh experiment's
/// host keys are unknown, so they are accepted on first use and recorded
/// in the run's own known_hosts file (never the user's); a key that then
/// changes is refused. Hosts backend: the user's known_hosts, strict.
pub fn ssh_options(backend: Backend, cfg: Option<&Path>, known_hosts: &Path) -> Vec<String> {
    let mut v: Vec<String> = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        .map(String::from)
        .to_vec();
    if backend == Backend::Cloudlab {
        v.extend([
            "-o".into(),
            "StrictHostKeyChecking=accept-new".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
        ]);
    }
    if let Some(c) = cfg {
        v.push("-F".into());
        v.push(c.display().to_string());
    }
    v
}

/// One node to probe.
pub struct Target<'a> {
    pub name: String,
    pub host: &'a Host,
    /// The port the node will listen on.
    pub port: u16,
}

/// What the nodes share with this machine, decided by the marker.
pub struct ShareCheck<'a> {
    /// The directory that must be visible on a node (the log root).
    pub dir: &'a Path,
    /// Where kv-server and kv-client are here (and, shared, there).
    pub bin_dir: &'a Path,
    /// Do not even look: copy.
    pub force_copy: bool,
}

/// One node's answers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Facts {
    pub name: String,
    pub ssh: String,
    /// The address its own name resolves to there (what it binds).
    pub addr: String,
    pub cores: u32,
    pub boot: Option<String>,
    /// It sees this directory: binaries run and logs land in place.
    pub shared: bool,
    /// sha256 of kv-server / kv-client as the node sees them (shared only).
    pub server_sha256: Option<String>,
    pub client_sha256: Option<String>,
    pub port: u16,
    /// `None`: could not tell.
    pub port_free: Option<bool>,
    /// Node clock minus this machine's, ms, and the bound of the estimate
    /// (half the round trip of the exchange).
    pub clock_offset_ms: Option<f64>,
    pub clock_bound_ms: Option<f64>,
}

/// The whole preflight, written to `preflight.json` of the run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: String,
    /// How the nodes were found (CloudLab) or the hosts file.
    pub source: String,
    /// `shared`, `copy` or `mixed` (per node in `nodes`).
    pub mode: String,
    pub known_hosts: Option<String>,
    pub local_server_sha256: String,
    pub local_client_sha256: String,
    pub nodes: Vec<Facts>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// sha256 of a file here, via coreutils (the nodes use the same tool).
pub fn sha256(p: &Path) -> Result<String> {
    let o = Command::new("sha256sum")
        .arg(p)
        .output()
        .context("cannot run sha256sum")?;
    anyhow::ensure!(o.status.success(), "cannot hash {}", p.display());
    let text = String::from_utf8_lossy(&o.stdout);
    Ok(text.split_whitespace().next().unwrap_or("").to_string())
}

/// The remote script: facts, then `ready`, then on our newline its clock.
fn script(t: &Target, marker: Option<(&Path, &str)>, bin_dir: &Path) -> String {
    let mut s = format!(
        "echo \"addr=$(getent ahostsv4 {} | awk 'NR==1{{print $1}}')\"; echo \"cores=$(nproc)\"; \
         echo \"boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)\"; ",
        shell::quote(&t.host.host)
    );
    if let Some((file, token)) = marker {
        let bin = |b: &str| shell::quote(&bin_dir.join(b).display().to_string());
        s += &format!(
            "if [ \"$(cat {} 2>/dev/null)\" = {} ]; then echo shared=1; \
             echo \"server_sha=$(sha256sum {} 2>/dev/null | cut -d' ' -f1)\"; \
             echo \"client_sha=$(sha256sum {} 2>/dev/null | cut -d' ' -f1)\"; \
             else echo shared=0; fi; ",
            shell::quote(&file.display().to_string()),
            shell::quote(token),
            bin("kv-server"),
            bin("kv-client"),
        );
    }
    // A listening socket (state 0A) on the port, IPv4 or IPv6.
    s += &format!(
        "echo \"port=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p={:04X} \
         '$4 == \"0A\" {{ split($2, a, \":\"); if (a[2] == p) busy = 1 }} END {{ print busy ? \"busy\" : \"free\" }}')\"; \
         echo ready; read -r _ && echo \"clock=$(date +%s.%N)\"",
        t.port
    );
    s
}

fn epoch_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Probes one node; `Err` is its one-line problem.
fn probe(
    t: &Target,
    opts: &[String],
    marker: Option<(&Path, &str)>,
    bin_dir: &Path,
    hint: &dyn Fn(&str, &str) -> String,
) -> std::result::Result<Facts, String> {
    let target = t.host.ssh.clone().unwrap_or_else(|| t.host.host.clone());
    let mut cmd = Command::new("ssh");
    cmd.args(opts);
    if let Some(p) = t.host.ssh_port {
        cmd.args(["-p", &p.to_string()]);
    }
    let mut child = cmd
        .arg(&target)
        .arg(script(t, marker, bin_dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: cannot run ssh: {e}", t.name))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let err_text = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    // Lines with the time each arrived (the clock exchange needs it).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send((l, SystemTime::now())).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PROBE_DEADLINE;
    let mut lines = Vec::new();
    let mut clock = None;
    let mut asked: Option<SystemTime> = None;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((l, at)) => {
                if l.trim() == "ready" && asked.is_none() {
                    let mut stdin = child.stdin.take().expect("piped stdin");
                    let t0 = SystemTime::now();
                    if stdin.write_all(b"\n").and_then(|_| stdin.flush()).is_ok() {
                        asked = Some(t0);
                    }
                } else if let (Some(v), Some(t0)) = (l.trim().strip_prefix("clock="), asked) {
                    clock = v.parse::<f64>().ok().map(|remote| {
                        let (a, b) = (epoch_s(t0), epoch_s(at));
                        ((remote - (a + b) / 2.0) * 1e3, (b - a) / 2.0 * 1e3)
                    });
                } else {
                    lines.push(l);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().map_err(|e| format!("{}: {e}", t.name))?;
    let err = err_text.join().unwrap_or_default();
    if timed_out {
        return Err(format!(
            "{} ({target}): no answer within {} s",
            t.name,
            PROBE_DEADLINE.as_secs()
        ));
    }
    if !status.success() && asked.is_none() {
        return Err(format!("{} ({target}): {}", t.name, hint(&target, &err)));
    }
    let text = lines.join("\n");
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let cores = field("cores")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{} ({target}): unexpected answer {text:?}", t.name))?;
    Ok(Facts {
        name: t.name.clone(),
        ssh: target,
        addr: field("addr").unwrap_or_else(|| t.host.host.clone()),
        cores,
        boot: field("boot"),
        shared: field("shared").as_deref() == Some("1"),
        server_sha256: field("server_sha"),
        client_sha256: field("client_sha"),
        port: t.port,
        port_free: field("port").map(|p| p == "free"),
        clock_offset_ms: clock.map(|c| c.0),
        clock_bound_ms: clock.map(|c| c.1),
    })
}

/// One line for a failed ssh: host-key trouble gets its own hint.
pub fn ssh_hint(backend: Backend, known_hosts: &Path, target: &str, stderr: &str) -> String {
    let key_changed = stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED");
    if key_changed || stderr.contains("Host key verification failed") {
        return match backend {
            Backend::Cloudlab => format!(
                "host key verification failed: its key differs from the one recorded in {} \
                 (refused; if the node was reloaded, remove its line there or start a new run)",
                known_hosts.display()
            ),
            _ => format!(
                "host key verification failed ({}): the hosts backend keeps ssh strict; check \
                 the host and accept its key once with `ssh {target} true`",
                if key_changed {
                    "its key changed"
                } else {
                    "its key is not in your known_hosts"
                }
            ),
        };
    }
    if stderr.contains("Permission denied") {
        return "ssh: permission denied (is your key authorized there? ssh-agent running?)".into();
    }
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("ssh failed with no message");
    format!("ssh failed: {last}")
}

/// Probes every target at once and judges the answers.
pub fn run(
    backend: Backend,
    source: String,
    targets: &[Target],
    opts: &[String],
    known_hosts: Option<&Path>,
    share: &ShareCheck,
) -> Result<Report> {
    let server_bin = share.bin_dir.join("kv-server");
    let client_bin = share.bin_dir.join("kv-client");
    let local_server = sha256(&server_bin)?;
    let local_client = sha256(&client_bin)?;
    // The marker: a file only this run knows the contents of.
    let token = format!(
        "kvlab-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let marker = share.dir.join(format!(".kvlab-share-{token}"));
    let look = !share.force_copy && std::fs::write(&marker, &token).is_ok();
    let kh = known_hosts.map_or_else(|| PathBuf::from("known_hosts"), Path::to_path_buf);
    let hint = |target: &str, err: &str| ssh_hint(backend, &kh, target, err);
    let answers: Vec<std::result::Result<Facts, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let m = look.then_some((marker.as_path(), token.as_str()));
                let hint = &hint;
                s.spawn(move || probe(t, opts, m, share.bin_dir, hint))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("probe panicked".into())))
            .collect()
    });
    if look {
        let _ = std::fs::remove_file(&marker);
    }
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut nodes = Vec::new();
    for a in answers {
        match a {
            Err(p) => problems.push(p),
            Ok(f) => {
                if f.shared {
                    for (bin, theirs, ours) in [
                        ("kv-server", &f.server_sha256, &local_server),
                        ("kv-client", &f.client_sha256, &local_client),
                    ] {
                        match theirs {
                            Some(h) if h == ours => {}
                            Some(h) => problems.push(format!(
                                "{}: sees this directory but its {bin} differs (sha256 {} there, {} here): \
                                 a stale shared filesystem? wait and retry, or pass --copy",
                                f.name,
                                short(h),
                                short(ours)
                            )),
                            None => problems.push(format!(
                                "{}: sees this directory but cannot read {}",
                                f.name,
                                share.bin_dir.join(bin).display()
                            )),
                        }
                    }
                }
                if f.port_free == Some(false) {
                    problems.push(format!(
                        "{}: port {} is already in use there (another run? pick --base-port)",
                        f.name, f.port
                    ));
                }
                if let Some(o) = f.clock_offset_ms.filter(|o| o.abs() > 1000.0) {
                    warnings.push(format!(
                        "{}: clock {:+.0} ms off this machine's (is NTP running?)",
                        f.name, o
                    ));
                }
                nodes.push(f);
            }
        }
    }
    let shared = nodes.iter().filter(|f| f.shared).count();
    let mode = if shared == 0 {
        "copy"
    } else if shared == nodes.len() {
        "shared"
    } else {
        "mixed"
    };
    Ok(Report {
        backend: backend.name().into(),
        source,
        mode: mode.into(),
        known_hosts: known_hosts.map(|p| p.display().to_string()),
        local_server_sha256: local_server,
        local_client_sha256: local_client,
        nodes,
        problems,
        warnings,
    })
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

impl Report {
    /// The small table, one row per node that answered.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "node".to_string(),
            "ssh".into(),
            "address".into(),
            "cores".into(),
            "binaries".into(),
            "port".into(),
            "clock offset".into(),
        ]];
        for f in &self.nodes {
            let bins = if f.shared {
                match (&f.server_sha256, &f.client_sha256) {
                    (Some(s), Some(c))
                        if *s == self.local_server_sha256 && *c == self.local_client_sha256 =>
                    {
                        format!("same ({})", &s[..8.min(s.len())])
                    }
                    _ => "DIFFERENT".into(),
                }
            } else {
                format!(
                    "copied ({})",
                    &self.local_server_sha256[..8.min(self.local_server_sha256.len())]
                )
            };
            let port = match f.port_free {
                Some(true) => format!("{} free", f.port),
                Some(false) => format!("{} IN USE", f.port),
                None => format!("{} ?", f.port),
            };
            let clock = match (f.clock_offset_ms, f.clock_bound_ms) {
                (Some(o), Some(b)) => format!("{o:+.1} ms ±{b:.1}"),
                _ => "?".into(),
            };
            rows.push([
                f.name.clone(),
                f.ssh.clone(),
                f.addr.clone(),
                f.cores.to_string(),
                bins,
                port,
                clock,
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect();
            out += line.join("  ").trim_end();
            out.push('\n');
        }
        out
    }

    /// What the header says about where the nodes run.
    pub fn mode_line(&self, log_dir: &Path, remote_dir: &str) -> String {
        match self.mode.as_str() {
            "shared" => format!(
                "Nodes see this directory: binaries run in place, logs written straight into {}",
                log_dir.display()
            ),
            "copy" => format!(
                "Nodes do not see this directory: binaries copied to {remote_dir}/<run>/<node>/, logs fetched back"
            ),
            _ => {
                let s: Vec<&str> = self
                    .nodes
                    .iter()
                    .filter(|f| f.shared)
                    .map(|f| f.name.as_str())
                    .collect();
                format!(
                    "Mixed: {} see this directory (run in place); the others get copies",
                    s.join(" ")
                )
            }
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudlab_accepts_new_keys_into_the_runs_file_hosts_stays_strict() {
        let kh = Path::new("/logs/run/known_hosts");
        let c = ssh_options(Backend::Cloudlab, None, kh).join(" ");
        assert!(c.contains("BatchMode=yes"), "{c}");
        assert!(c.contains("StrictHostKeyChecking=accept-new"), "{c}");
        assert!(
            c.contains("UserKnownHostsFile=/logs/run/known_hosts"),
            "{c}"
        );
        let h = ssh_options(Backend::Hosts, Some(Path::new("/cfg")), kh).join(" ");
        assert!(h.contains("BatchMode=yes") && h.ends_with("-F /cfg"), "{h}");
        assert!(!h.contains("StrictHostKeyChecking") && !h.contains("UserKnownHostsFile"));
    }

    #[test]
    fn host_key_failures_get_one_line_with_a_hint() {
        let kh = Path::new("/r/known_hosts");
        let changed = "@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\nHost key verification failed.\n";
        let c = ssh_hint(Backend::Cloudlab, kh, "node3", changed);
        assert!(c.contains("/r/known_hosts") && !c.contains('\n'), "{c}");
        let h = ssh_hint(
            Backend::Hosts,
            kh,
            "alpha",
            "Host key verification failed.\n",
        );
        assert!(
            h.contains("ssh alpha true") && h.contains("not in your known_hosts"),
            "{h}"
        );
        let o = ssh_hint(
            Backend::Hosts,
            kh,
            "a",
            "ssh: connect to host a port 22: No route\n",
        );
        assert_eq!(o, "ssh failed: ssh: connect to host a port 22: No route");
    }
}
