//! `kv-run plan`: decides every process of a run before anything starts —
//! nodes, hosts, addresses, ports, seeds and full command lines — writes the
//! manifest, and prints bash array assignments for run-cluster.sh to
//! execute. Bad arguments fail here, before a process or socket exists.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, ensure, Context, Result};
use kv_config::client::{Args as ClientArgs, Config as ClientConfig};
use kv_config::server::Args as ServerArgs;
use kv_config::Parsed;
use kv_core::facts::NodeFacts;
use kv_core::runlog::{new_run_id, rfc3339_utc};
use kv_core::stats::Role;

use crate::manifest::{Manifest, Node, MANIFEST_FILE, MANIFEST_VERSION};
use crate::shell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Local,
    Cloudlab,
    Hosts,
    /// Every node in its own network namespace and CPU cgroup on this
    /// machine (scripts/emulate.sh).
    Emulated,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Cloudlab => "cloudlab",
            Backend::Hosts => "hosts",
            Backend::Emulated => "emulated",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[arg(long, value_enum)]
    pub backend: Backend,
    /// Default on remote backends: half the nodes (at least one).
    #[arg(long)]
    pub servers: Option<u32>,
    /// Default on remote backends: the nodes the servers leave.
    #[arg(long)]
    pub clients: Option<u32>,
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub server_args: String,
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub client_args: String,
    /// Seconds of load per client (a `--secs` inside client args wins).
    #[arg(long, default_value_t = 30.0)]
    pub secs: f64,
    /// The run's log directory (created by the caller).
    #[arg(long)]
    pub log_dir: PathBuf,
    /// Where kv-server and kv-client are on this machine.
    #[arg(long)]
    pub bin_dir: PathBuf,
    /// `hosts` backend: one `host` or `user@host[:sshport]` a line.
    #[arg(long)]
    pub hosts_file: Option<PathBuf>,
    /// Remote backends: per-node working directories go under this.
    #[arg(long, default_value = "/tmp/kvlab")]
    pub remote_dir: String,
    /// Remote backends: node i listens on BASE+i (server RPC or client stats).
    #[arg(long, default_value_t = 8080)]
    pub base_port: u16,
    /// ssh client config file (`ssh -F`), e.g. for test keys.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// CloudLab: the known_hosts file host keys are accepted into
    /// (default: `known_hosts` in the log directory, one per run).
    #[arg(long)]
    pub known_hosts: Option<PathBuf>,
    /// Remote backends: the directory a node must see for the run to use
    /// this checkout in place (default: the log directory's parent).
    #[arg(long)]
    pub share_dir: Option<PathBuf>,
    /// Copy binaries to every node even when it sees this directory.
    #[arg(long)]
    pub copy: bool,
    /// Only discover and probe the nodes, print the table, write nothing.
    #[arg(long)]
    pub preflight: bool,
    #[arg(long)]
    pub profile: bool,
    #[arg(long)]
    pub check: bool,
    #[arg(long, default_value = "")]
    pub note: String,
    #[arg(long, default_value = "")]
    pub tag: String,
    /// `emulated` backend: `cpus=C[,rtt=R][,rate=B]`.
    #[arg(long)]
    pub emulate: Option<String>,
    /// `emulated` backend: the run's name prefix (scripts/emulate.sh picks it).
    #[arg(long, default_value = "")]
    pub emulate_prefix: String,
    /// `emulated` backend: the run's /24 as `A.B.C` (bridge .1, node i .(i+2)).
    #[arg(long, default_value = "")]
    pub emulate_subnet: String,
    /// Everything run-cluster.sh was given, recorded verbatim.
    #[arg(long = "script-arg", allow_hyphen_values = true)]
    pub script_args: Vec<String>,
}

/// A host to run nodes on and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// `user@host` or `host` as ssh takes it; `None` = this machine.
    pub ssh: Option<String>,
    pub ssh_port: Option<u16>,
    /// The host part alone.
    pub host: String,
}

/// Parses a hosts file: `host` or `user@host[:port]` a line, `#` comments.
pub fn parse_hosts_file(text: &str) -> Result<Vec<Host>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        ensure!(
            !line.contains(char::is_whitespace),
            "hosts file line {}: '{line}' has spaces; expected host or user@host[:port]",
            i + 1
        );
        let (target, port) = match line.rsplit_once(':') {
            Some((t, p)) => {
                let port: u16 =
                    p.parse().ok().filter(|p| *p > 0).with_context(|| {
                        format!("hosts file line {}: bad ssh port '{p}'", i + 1)
                    })?;
                (t, Some(port))
            }
            None => (line, None),
        };
        let host = target.rsplit_once('@').map_or(target, |(_, h)| h);
        ensure!(!host.is_empty(), "hosts file line {}: empty host", i + 1);
        out.push(Host {
            ssh: Some(target.to_string()),
            ssh_port: port,
            host: host.to_string(),
        });
    }
    Ok(out)
}

/// Drops `--flag V` / `--flag=V` (or a bare `--flag` when `takes_value` is
/// false) for each named flag; run-cluster sets those itself.
fn strip_flags(words: &[String], flags: &[(&str, bool)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let hit = flags
            .iter()
            .find(|(f, _)| w == f || w.starts_with(&format!("{f}=")));
        match hit {
            Some((f, takes_value)) => {
                i += if *takes_value && w == f { 2 } else { 1 };
            }
            None => {
                out.push(w.clone());
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The user's client args, parsed exactly as kv-client will (the course's
/// single-dash flags included) and checked as it checks them, with which
/// flags were typed (so defaults of ours do not override them).
pub(crate) fn parse_client_args(client_args: &str) -> Result<Parsed<ClientArgs>> {
    let w = kv_config::words::<ClientArgs>(client_args);
    let parsed =
        kv_config::parse::<ClientArgs>(&w).map_err(|e| anyhow::anyhow!("client_args: {e}"))?;
    ClientConfig::try_from(&parsed.args).context("client_args")?;
    Ok(parsed)
}

/// The user's server args, parsed and checked as kv-server will.
fn parse_server_args(server_args: &str) -> Result<Parsed<ServerArgs>> {
    let w = kv_config::words::<ServerArgs>(server_args);
    let parsed =
        kv_config::parse::<ServerArgs>(&w).map_err(|e| anyhow::anyhow!("server_args: {e}"))?;
    parsed.args.facts().context("server_args")?;
    Ok(parsed)
}

/// What a node's process will run with: its final command line (program
/// first) parsed by the very types the binary parses it with.
fn node_facts(role: Role, argv: &[String]) -> Result<NodeFacts> {
    let words = &argv[1..];
    Ok(match role {
        Role::Server => {
            let p = kv_config::parse::<ServerArgs>(words).map_err(anyhow::Error::msg)?;
            NodeFacts::Server(p.args.facts()?)
        }
        Role::Client => {
            let p = kv_config::parse::<ClientArgs>(words).map_err(anyhow::Error::msg)?;
            NodeFacts::Client(ClientConfig::try_from(&p.args)?.facts())
        }
    })
}

/// Whether `bin --help` mentions `flag` (features landing at different times).
fn supports(bin: &Path, flag: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
        .unwrap_or(false)
}

fn free_local_ports(n: usize) -> Result<Vec<u16>> {
    // Hold every listener until all are bound so the ports are distinct.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("cannot find free local ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    // Keep seeds readable and far from overflow when offsets are added.
    h.finish() % 1_000_000_000
}

/// The hosts a remote backend may use, and where that list came from.
fn available_hosts(a: &PlanArgs) -> Result<(Vec<Host>, String)> {
    if a.backend == Backend::Cloudlab {
        let d = crate::cloudlab::discover()?;
        // Before anything starts, the user sees how many nodes and whence.
        eprintln!("{}", d.line());
        for n in &d.notes {
            eprintln!("{n}");
        }
        let hosts = d
            .nodes
            .iter()
            .map(|n| Host {
                ssh: Some(n.clone()),
                ssh_port: None,
                host: n.clone(),
            })
            .collect();
        Ok((hosts, d.source))
    } else {
        let file = a
            .hosts_file
            .as_deref()
            .context("--backend hosts needs --hosts-file FILE")?;
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read hosts file {}", file.display()))?;
        Ok((
            parse_hosts_file(&text)?,
            format!("hosts file {}", file.display()),
        ))
    }
}

/// Server and client counts: as given, else half the nodes each.
fn counts(a: &PlanArgs, available: usize) -> (u32, u32) {
    let half = (available as u32 / 2).max(1);
    let servers = a.servers.unwrap_or(half);
    let clients = a
        .clients
        .unwrap_or_else(|| (available as u32).saturating_sub(servers).max(1));
    (servers, clients)
}

/// What a remote plan learned of its hosts: the facts per node and the
/// bash (SSH options) the script needs to reach them the same way.
struct Remote {
    report: crate::preflight::Report,
    ssh_opts: Vec<String>,
}

/// Remote backends: discovery, then the preflight of the nodes to use.
/// `Ok(None)` from a `--preflight` run (nothing more to do).
fn remote_preflight(a: &PlanArgs, used: &[Host], source: String, ports: &[u16]) -> Result<Remote> {
    let run_kh = a.log_dir.join("known_hosts");
    let tmp_kh;
    let kh: &Path = match (&a.known_hosts, a.preflight) {
        (Some(k), _) => k,
        (None, false) => &run_kh,
        (None, true) => {
            // Preflight alone writes no run folder: a throwaway file.
            tmp_kh = std::env::temp_dir().join(format!(
                "kvlab-preflight-{}-known_hosts",
                std::process::id()
            ));
            &tmp_kh
        }
    };
    let ssh_opts = crate::preflight::ssh_options(a.backend, a.ssh_config.as_deref(), kh);
    let targets: Vec<crate::preflight::Target> = used
        .iter()
        .enumerate()
        .map(|(i, h)| crate::preflight::Target {
            name: format!("node{i}"),
            host: h,
            port: ports[i],
        })
        .collect();
    let share_dir = a
        .share_dir
        .clone()
        .or_else(|| a.log_dir.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let share = crate::preflight::ShareCheck {
        dir: &share_dir,
        bin_dir: &a.bin_dir,
        // Shared paths go into remote shell commands: no quoting surprises.
        force_copy: a.copy || !plain_path(&a.log_dir) || !plain_path(&a.bin_dir),
    };
    let known = (a.backend == Backend::Cloudlab).then_some(kh);
    let report = crate::preflight::run(a.backend, source, &targets, &ssh_opts, known, &share)?;
    if a.preflight && a.known_hosts.is_none() {
        let _ = std::fs::remove_file(kh);
    }
    eprintln!("Preflight ({} nodes):", targets.len());
    eprint!("{}", report.table());
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    if !report.problems.is_empty() {
        return Err(crate::preflight::Failed(report.problems.len()).into());
    }
    Ok(Remote { report, ssh_opts })
}

/// An absolute path of letters, digits and `/ . _ -` (safe unquoted).
fn plain_path(p: &Path) -> bool {
    let s = p.display().to_string();
    s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

/// Plans the run, writes `<log_dir>/cluster.json` and returns the bash text.
pub fn plan(a: &PlanArgs) -> Result<String> {
    // It is pasted into remote shell commands: allow no quoting surprises.
    ensure!(
        a.remote_dir.starts_with('/')
            && a.remote_dir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)),
        "--remote-dir must be an absolute path of letters, digits and / . _ - (got {:?})",
        a.remote_dir
    );
    let remote_hosts = match a.backend {
        Backend::Local | Backend::Emulated => None,
        Backend::Cloudlab | Backend::Hosts => Some(available_hosts(a)?),
    };
    let (servers, clients) = match &remote_hosts {
        None => (a.servers.unwrap_or(1), a.clients.unwrap_or(1)),
        Some((h, _)) => counts(a, h.len()),
    };
    ensure!(servers >= 1, "server_count must be a positive integer");
    ensure!(clients >= 1, "client_count must be a positive integer");
    let total = (servers + clients) as usize;
    let emulation = crate::emulate::plan_emulation(a, total as u32)?;

    // Both parsed here, once: the manifest keeps what they give per node.
    parse_server_args(&a.server_args)?;
    let server_words = strip_flags(
        &kv_config::words::<ServerArgs>(&a.server_args),
        &[
            ("--port", true),
            ("--bind", true),
            ("--profile", true),
            ("--summary-json", true),
        ],
    );
    let user_client = kv_config::words::<ClientArgs>(&a.client_args);
    let info = parse_client_args(&a.client_args)?;
    let client_words = strip_flags(
        &user_client,
        &[
            ("--hosts", true),
            ("--secs", true),
            ("--threads", true),
            ("--seed", true),
            ("--client-id", true),
            ("--stats-bind", true),
            ("--summary-json", true),
            ("--hdr-log", true),
            ("--profile", true),
            ("--check", true),
        ],
    );
    let secs = if info.given("secs") {
        info.args.secs
    } else {
        a.secs
    };
    ensure!(secs.is_finite() && secs > 0.0, "--secs must be positive");

    let server_bin = a.bin_dir.join("kv-server");
    let client_bin = a.bin_dir.join("kv-client");
    for b in [&server_bin, &client_bin] {
        ensure!(
            b.exists(),
            "{} not found (build first, or set KVLAB_BIN_DIR)",
            b.display()
        );
    }

    // Hosts for node i, and the address it binds / is reached at.
    let mut remote_plan: Option<Remote> = None;
    let (hosts, binds, cores, ports): (Vec<Host>, Vec<String>, Vec<u32>, Vec<u16>) =
        match remote_hosts {
            None if a.backend == Backend::Emulated => {
                let e = emulation
                    .as_ref()
                    .context("--backend emulated needs --emulate")?;
                let addrs = crate::emulate::node_addrs(e, total);
                let hosts = addrs
                    .iter()
                    .map(|h| Host {
                        ssh: None,
                        ssh_port: None,
                        host: h.clone(),
                    })
                    .collect();
                // A node's cores are its quota, rounded up (client threads).
                let cores = e.spec.cpus.ceil().max(1.0) as u32;
                let ports = (0..total)
                    .map(|i| {
                        a.base_port
                            .checked_add(i as u16)
                            .context("--base-port too high for this many nodes")
                    })
                    .collect::<Result<_>>()?;
                (hosts, addrs, vec![cores; total], ports)
            }
            None => {
                let local = Host {
                    ssh: None,
                    ssh_port: None,
                    host: "127.0.0.1".into(),
                };
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                (
                    vec![local; total],
                    vec!["127.0.0.1".into(); total],
                    vec![cores; total],
                    free_local_ports(total)?,
                )
            }
            Some((available, source)) => {
                if total > available.len() {
                    bail!(
                        "requested {total} nodes (servers: {servers}, clients: {clients}) but only {} are available ({})",
                        available.len(),
                        if a.backend == Backend::Cloudlab {
                            format!("node0 to node{}", available.len().saturating_sub(1))
                        } else {
                            "lines of the hosts file".to_string()
                        }
                    );
                }
                // A preflight with no counts looks at every node.
                let n = if a.preflight && a.servers.is_none() {
                    available.len()
                } else {
                    total
                };
                let used: Vec<Host> = available.into_iter().take(n).collect();
                let ports: Vec<u16> = (0..n)
                    .map(|i| {
                        a.base_port
                            .checked_add(i as u16)
                            .context("--base-port too high for this many nodes")
                    })
                    .collect::<Result<_>>()?;
                let r = remote_preflight(a, &used, source, &ports)?;
                if a.preflight {
                    eprintln!("{}", r.report.mode_line(&a.log_dir, &a.remote_dir));
                    eprintln!("Preflight passed: nothing started.");
                    return Ok(String::new());
                }
                let binds = r.report.nodes.iter().map(|f| f.addr.clone()).collect();
                let cores = r.report.nodes.iter().map(|f| f.cores).collect();
                remote_plan = Some(r);
                (used, binds, cores, ports)
            }
        };
    if a.preflight {
        eprintln!(
            "Preflight: local backend, nothing to reach over ssh ({} cores here).",
            cores.first().copied().unwrap_or(1)
        );
        return Ok(String::new());
    }
    let server_profiles = a.profile && supports(&server_bin, "--profile");
    let client_profiles = a.profile && supports(&client_bin, "--profile");
    let stats_bind = supports(&client_bin, "--stats-bind");
    let summary_json = supports(&client_bin, "--summary-json");
    let server_summary = supports(&server_bin, "--summary-json");
    let hdr_log = supports(&client_bin, "--hdr-log");

    let started = SystemTime::now();
    let base_seed = info
        .args
        .seed
        .filter(|_| info.given("seed"))
        .unwrap_or_else(random_seed);
    let remote = !matches!(a.backend, Backend::Local | Backend::Emulated);
    let remote_facts: &[crate::preflight::Facts] = remote_plan
        .as_ref()
        .map_or(&[], |r| r.report.nodes.as_slice());
    let run_id = new_run_id(started);
    let ts_dir = a
        .log_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| run_id.clone());

    let server_addrs: Vec<String> = (0..servers as usize)
        .map(|i| format!("{}:{}", binds[i], ports[i]))
        .collect();
    let mut nodes = Vec::new();
    let mut next_seed = base_seed;
    let mut first_threads = None;
    for i in 0..total {
        let name = format!("node{i}");
        let role = if i < servers as usize {
            Role::Server
        } else {
            Role::Client
        };
        // A node that sees this directory runs our binaries where they
        // are and writes its files straight into the log directory.
        let shared = remote_facts.get(i).is_some_and(|f| f.shared);
        let remote_dir = if shared {
            Some(a.log_dir.display().to_string())
        } else {
            remote.then(|| format!("{}/{}/{}", a.remote_dir, ts_dir, name))
        };
        let program = if remote && !shared {
            format!(
                "./{}",
                if role == Role::Server {
                    "kv-server"
                } else {
                    "kv-client"
                }
            )
        } else if role == Role::Server {
            server_bin.display().to_string()
        } else {
            client_bin.display().to_string()
        };
        let mut argv = vec![program];
        let mut n = Node {
            name: name.clone(),
            role,
            host: hosts[i].host.clone(),
            ssh: hosts[i].ssh.clone(),
            ssh_port: hosts[i].ssh_port,
            bind: binds[i].clone(),
            port: ports[i],
            stats_addr: format!("{}:{}", binds[i], ports[i]),
            argv: Vec::new(),
            log: String::new(),
            pid: None,
            remote_pid: None,
            remote_dir,
            client_id: None,
            seeds: None,
            summary_json: None,
            profile_prefix: None,
            threads: None,
            facts: None,
        };
        match role {
            Role::Server => {
                n.log = format!("kvsserver-{name}.log");
                argv.extend([
                    "--bind".into(),
                    binds[i].clone(),
                    "--port".into(),
                    ports[i].to_string(),
                ]);
                if server_profiles {
                    let p = format!("server-{name}");
                    argv.extend(["--profile".into(), p.clone()]);
                    n.profile_prefix = Some(p);
                }
                if server_summary {
                    let f = format!("server-{name}.summary.json");
                    argv.extend(["--summary-json".into(), f.clone()]);
                    n.summary_json = Some(f);
                }
                argv.extend(server_words.iter().cloned());
            }
            Role::Client => {
                let id = i as u32 - servers;
                let threads = if info.given("threads") {
                    info.args.threads.unwrap_or(1) as u32
                } else {
                    // Clients share the host's cores: one thread each when
                    // there are more clients than cores (see docs).
                    let per_host = if a.backend == Backend::Local {
                        clients
                    } else {
                        1
                    };
                    (cores[i] / per_host).max(1)
                };
                first_threads.get_or_insert(threads);
                n.threads = Some(threads);
                let seeds = (next_seed, next_seed + threads as u64 - 1);
                next_seed += threads as u64;
                n.log = format!("kvsclient-{name}.log");
                n.client_id = Some(id);
                n.seeds = Some(seeds);
                argv.extend([
                    "--hosts".into(),
                    server_addrs.join(","),
                    "--secs".into(),
                    secs.to_string(),
                    "--threads".into(),
                    threads.to_string(),
                    "--seed".into(),
                    seeds.0.to_string(),
                    "--client-id".into(),
                    id.to_string(),
                ]);
                if stats_bind {
                    argv.extend(["--stats-bind".into(), n.stats_addr.clone()]);
                }
                if summary_json {
                    let f = format!("client-{name}.summary.json");
                    argv.extend(["--summary-json".into(), f.clone()]);
                    n.summary_json = Some(f);
                }
                if hdr_log {
                    // Per-second latency histograms (HdrHistogram interval log).
                    argv.extend(["--hdr-log".into(), format!("latency-{name}.hlog")]);
                }
                if client_profiles {
                    let p = format!("client-{name}");
                    argv.extend(["--profile".into(), p.clone()]);
                    n.profile_prefix = Some(p);
                }
                if a.check {
                    // `.hist`: the compact binary history format.
                    argv.extend(["--check".into(), format!("history-{name}.hist")]);
                }
                argv.extend(client_words.iter().cloned());
            }
        }
        n.facts = Some(node_facts(role, &argv).with_context(|| format!("{name}'s command line"))?);
        n.argv = argv;
        nodes.push(n);
    }

    let manifest = Manifest {
        version: MANIFEST_VERSION,
        run_id,
        started_at: rfc3339_utc(started),
        backend: a.backend.name().into(),
        secs,
        seed: base_seed,
        threads: first_threads.unwrap_or(1),
        server_args: a.server_args.clone(),
        client_args: a.client_args.clone(),
        note: a.note.clone(),
        tag: a.tag.clone(),
        profile: a.profile,
        check: a.check,
        bin_dir: a.bin_dir.display().to_string(),
        remote_dir: remote.then(|| a.remote_dir.clone()),
        script_args: a.script_args.clone(),
        nodes,
        emulate: emulation,
    };
    ensure!(
        manifest.preloaded_keys().is_some(),
        "server_args: --preload needs a number of records"
    );
    manifest.write(&a.log_dir.join(MANIFEST_FILE))?;
    let mut text = bash_text(&manifest);
    let shared: Vec<String> = (0..total)
        .map(|i| u8::from(remote_facts.get(i).is_some_and(|f| f.shared)).to_string())
        .collect();
    text += &shell::array("NODE_SHARED", &shared);
    text.push('\n');
    if let Some(r) = &remote_plan {
        // Which mode ran (shared or copy) and what each node answered.
        r.report.write(&a.log_dir.join("preflight.json"))?;
        text += &shell::array("SSH_OPTS", &r.ssh_opts);
        text += &format!(
            "\nNODES_MODE_LINE={}\n",
            shell::quote(&r.report.mode_line(&a.log_dir, &a.remote_dir))
        );
    }
    Ok(text)
}

/// The plan as bash arrays, one entry per node in manifest order.
pub fn bash_text(m: &Manifest) -> String {
    let col = |f: &dyn Fn(&Node) -> String| -> Vec<String> { m.nodes.iter().map(f).collect() };
    let mut out = vec![
        format!("RUN_ID={}", shell::quote(&m.run_id)),
        // The clients' effective load time (a `--secs` in client args wins):
        // the hang deadline is measured from it.
        format!("RUN_SECS={}", m.secs),
        format!("SERVER_HOSTS={}", shell::quote(&m.server_hosts())),
        // Check mode: keys below this start with the preloaded value.
        format!("PRELOAD={}", m.preloaded_keys().unwrap_or_default()),
        shell::array("NODE_NAME", &col(&|n| n.name.clone())),
        shell::array("NODE_ROLE", &col(&|n| n.role.name().to_string())),
        shell::array("NODE_LOG", &col(&|n| n.log.clone())),
        shell::array("NODE_SSH", &col(&|n| n.ssh.clone().unwrap_or_default())),
        shell::array(
            "NODE_SSH_PORT",
            &col(&|n| n.ssh_port.map(|p| p.to_string()).unwrap_or_default()),
        ),
        shell::array(
            "NODE_RDIR",
            &col(&|n| n.remote_dir.clone().unwrap_or_default()),
        ),
        shell::array(
            "NODE_BIN",
            &col(&|n| {
                if n.is_server() {
                    "kv-server".into()
                } else {
                    "kv-client".into()
                }
            }),
        ),
        shell::array("NODE_CMD", &col(&|n| command_line(n))),
    ];
    out.push(String::new());
    out.join("\n")
}

/// The file a remote node's wrapper writes its PID to, in its directory
/// (per node: shared nodes have one directory).
pub fn pid_file(node: &str) -> String {
    format!("pid-{node}")
}

/// What the shell runs for a node: the argv locally; on a remote host a
/// wrapper that starts it in its directory, records its PID in `pid-<node>` and
/// waits for it, so the ssh session ends with the process's exit status.
pub fn command_line(n: &Node) -> String {
    let argv = shell::join(&n.argv);
    match &n.remote_dir {
        None => argv,
        Some(dir) => format!(
            "cd {} && {{ {argv} > {} 2>&1 < /dev/null & echo $! > {}; wait $!; }}",
            shell::quote(dir),
            shell::quote(&n.log),
            shell::quote(&pid_file(&n.name))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_forms_and_comments() {
        let h = parse_hosts_file("# cluster\nalpha\n bob@192.0.2.2:2222 # second\n\nc@gamma\n")
            .unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].ssh.as_deref(), Some("alpha"));
        assert_eq!(h[1].host, "192.0.2.2");
        assert_eq!(h[1].ssh.as_deref(), Some("bob@192.0.2.2"));
        assert_eq!(h[1].ssh_port, Some(2222));
        assert_eq!(h[2].host, "gamma");
        assert!(parse_hosts_file("a b\n").is_err());
        assert!(parse_hosts_file("h:notaport\n").is_err());
    }

    #[test]
    fn strips_flags_in_both_forms() {
        let w = words("--seed 5 --batch 64 --threads=3 --in-process --secs 2");
        let out = strip_flags(
            &w,
            &[("--seed", true), ("--threads", true), ("--secs", true)],
        );
        assert_eq!(out, words("--batch 64 --in-process"));
    }

    #[test]
    fn client_args_validated_like_kv_client() {
        assert!(parse_client_args("--theta 1.5").is_err());
        assert!(parse_client_args("--nonsense").is_err());
        let i = parse_client_args("--threads 3 --batch 64").unwrap();
        assert!(i.given("threads") && !i.given("seed"));
        assert_eq!(i.args.batch, 64);
    }

    #[test]
    fn server_args_validated_like_kv_server() {
        assert!(parse_server_args("--bogus-flag").is_err());
        assert!(parse_server_args("--max-batch-ops 0").is_err());
        assert!(parse_server_args("-preload 10 --workers 2").is_ok());
    }

    #[test]
    fn facts_are_what_the_command_line_gives() {
        let argv = words(
            "kv-client --hosts 127.0.0.1:1 --workload ycsb-a --threads 3 --seed 9 --secs 200",
        );
        let f = node_facts(Role::Client, &argv).unwrap();
        let c = f.client().unwrap();
        assert_eq!(c.workload, kv_core::workload::Workload::A);
        assert_eq!((c.threads, c.seed, c.secs, c.batch), (3, 9, 200.0, 1024));
        let argv = words("kv-server --bind 127.0.0.1 --port 5 --preload 10");
        let f = node_facts(Role::Server, &argv).unwrap();
        assert_eq!(f.server().unwrap().preload, 10);
    }
}
