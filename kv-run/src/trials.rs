//! Repeated trials: `run-cluster.sh --trials N [--against REV | --ab A B]`
//! hands over to `kv-run trials`, which runs the script once per trial
//! (fresh processes every time), alternating A B A B for a comparison so
//! drift hits both sides alike, then prints the verdicts. Also the config
//! identity of a recorded run (`trial.json`, see `kv_core::series`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kv_core::identity::{ConfigIdentity, GitIdentity, HostFingerprint};
use kv_core::runlog::RunRecord;
use kv_core::series::{self, compare_groups, resolve, SeriesInfo, TrialInfo};
use kv_core::stats::Role;
use kv_core::trials::Metric;

use crate::manifest::Manifest;

/// Flags of a node's argv that differ between identical runs (addresses,
/// ports, per-run file names, seeds): never part of the identity.
const PER_RUN_FLAGS: &[&str] = &[
    "--hosts",
    "--port",
    "--bind",
    "--client-id",
    "--seed",
    "--summary-json",
    "--stats-bind",
    "--profile",
    "--check",
];

/// `--flag value` / `--flag=value` / bare `--flag` pairs of an argv
/// (program first), minus [`PER_RUN_FLAGS`].
fn argv_flags(argv: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let w = &argv[i];
        i += 1;
        let Some(flag) = w.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match argv.get(i) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    (flag.to_string(), v.clone())
                }
                _ => (flag.to_string(), "true".to_string()),
            },
        };
        if !PER_RUN_FLAGS.contains(&format!("--{name}").as_str()) {
            out.push((name, value));
        }
    }
    out
}

/// Everything about a run that can change its performance. Effective
/// parameters come from the log row (defaults resolved) and every other
/// flag the processes were started with; binaries from the checkout at
/// `repo`; the host from this machine.
pub fn identity_of(m: &Manifest, r: &RunRecord, repo: &Path) -> ConfigIdentity {
    let mut id = ConfigIdentity::new();
    id.set_git(&GitIdentity::of_repo(repo));
    id.set_host(&HostFingerprint::current());
    id.set("backend", &m.backend)
        .set("nodes.servers", m.servers().count())
        .set("nodes.clients", m.clients().count())
        .set("run.secs", m.secs)
        .set("run.profile", m.profile)
        .set("run.check", m.check);
    if let Some(e) = &m.emulate {
        // The resources, not the per-run names (prefix, subnet).
        id.set("emulate", e.spec);
    }
    for (role, prefix) in [(Role::Server, "server"), (Role::Client, "client")] {
        // Every node of a role gets the same user flags; threads may
        // differ per client and is set from each below.
        if let Some(n) = m.nodes.iter().find(|n| n.role == role) {
            for (k, v) in argv_flags(&n.argv) {
                if k != "threads" {
                    id.set(format!("{prefix}.{k}"), v);
                }
            }
        }
    }
    let threads: Vec<String> = m
        .clients()
        .map(|n| {
            argv_flags(&n.argv)
                .into_iter()
                .find(|(k, _)| k == "threads")
                .map_or_else(|| "?".to_string(), |(_, v)| v)
        })
        .collect();
    id.set("client.threads", threads.join(","));
    let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    id.set("client.batch", opt(r.batch.map(|v| v.to_string())))
        .set("client.window", opt(r.window.map(|v| v.to_string())))
        .set(
            "client.connections",
            opt(r.connections.map(|v| v.to_string())),
        )
        .set("client.workload", &r.workload)
        .set("client.theta", opt(r.theta.map(|v| v.to_string())))
        .set("server.preload", opt(r.preload.map(|v| v.to_string())));
    id
}

/// What `runs/<run_id>/trial.json` holds for a run: its identity and, when
/// `kv-run trials` started it, its series and trial number. Not written
/// here: the record puts them in the row before it writes any file.
pub fn trial_info(m: &Manifest, r: &RunRecord, repo: &Path) -> TrialInfo {
    let series_id = std::env::var(series::ENV_SERIES_ID).unwrap_or_default();
    let trial = std::env::var(series::ENV_TRIAL)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    TrialInfo::new(series_id, trial, identity_of(m, r, repo))
}

#[derive(Debug, clap::Args)]
pub struct TrialsArgs {
    /// The run-cluster.sh to run once per trial.
    #[arg(long)]
    pub script: PathBuf,
    #[arg(long)]
    pub experiments: PathBuf,
    /// The checkout whose code runs (its commit is recorded; --against REV
    /// is resolved in it).
    #[arg(long)]
    pub repo: PathBuf,
    /// Trials per side.
    #[arg(long, default_value_t = 1)]
    pub trials: u32,
    /// Side A is REV built in a worktree, side B this tree.
    #[arg(long)]
    pub against: Option<String>,
    /// Client args appended for side A (with --ab-b).
    #[arg(long, requires = "ab_b", allow_hyphen_values = true)]
    pub ab_a: Option<String>,
    #[arg(long, requires = "ab_a", allow_hyphen_values = true)]
    pub ab_b: Option<String>,
    /// Options for every trial's run-cluster.sh (repeat), before positionals.
    #[arg(long = "option", allow_hyphen_values = true)]
    pub options: Vec<String>,
    /// server_count, client_count, server_args, client_args (possibly empty).
    #[arg(long = "positional", allow_hyphen_values = true)]
    pub positionals: Vec<String>,
}

/// One side of what is run: its series and how its trials differ.
struct Side {
    series: SeriesInfo,
    extra_client_args: String,
    /// Where kv-server/kv-client come from (`None`: the tree's own).
    node_bin_dir: Option<PathBuf>,
    /// The checkout those binaries were built from.
    repo: PathBuf,
}

/// Cargo profile of builds (`KVLAB_BUILD_PROFILE`, default release) and its
/// output folder name.
pub fn build_profile() -> (String, String) {
    let p = std::env::var("KVLAB_BUILD_PROFILE").unwrap_or_else(|_| "release".into());
    let dir = if p == "dev" || p == "test" {
        "debug".to_string()
    } else {
        p.clone()
    };
    (p, dir)
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(repo)
        .output()
        .context("cannot run git")?;
    if !o.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Builds `rev` of `repo` in its own worktree (reused when it is already at
/// that commit) and returns (worktree, bin dir, commit). Worktree and build
/// live under `KVLAB_AGAINST_DIR` (default `<repo>/target/against`; the
/// build's target dir can be moved with `KVLAB_AGAINST_TARGET_DIR`), apart
/// from the tree's own target dir, so the tree's binaries are never
/// overwritten.
fn build_against(repo: &Path, rev: &str) -> Result<(PathBuf, PathBuf, String)> {
    let commit = git(
        repo,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )
    .with_context(|| format!("--against {rev}: not a revision of {}", repo.display()))?;
    let root = std::env::var_os("KVLAB_AGAINST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target").join("against"));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let wt = root.join(&commit[..12]);
    let at = git(&wt, &["rev-parse", "HEAD"]).ok();
    if wt.exists() && at.as_deref() != Some(commit.as_str()) {
        bail!(
            "{} exists but is not a worktree at {commit}: remove it",
            wt.display()
        );
    }
    if at.is_none() {
        // A worktree whose folder was deleted is still registered: prune it.
        let _ = git(repo, &["worktree", "prune"]);
        let wt_s = wt.display().to_string();
        git(
            repo,
            &["worktree", "add", "--detach", "--force", &wt_s, &commit],
        )?;
    }
    let (profile, dir) = build_profile();
    let target = std::env::var_os("KVLAB_AGAINST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    seed_target(&target.join(&dir));
    println!(
        "Building {rev} ({}) in {} ({profile} profile)...",
        &commit[..12],
        wt.display()
    );
    let st = Command::new("cargo")
        .args([
            "build",
            "--profile",
            &profile,
            "-p",
            "kv-server",
            "-p",
            "kv-client",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&wt)
        .status()
        .context("cannot run cargo")?;
    if !st.success() {
        bail!("building {rev} in {} failed", wt.display());
    }
    Ok((wt, target.join(dir), commit))
}

/// A first `--against` build would compile every dependency again (minutes
/// on 2 cores). The dependencies are the same crates at the same versions as
/// this tree's, so an empty target dir is seeded with a copy of this tree's
/// build (the folder holding the running kv-run): cargo then rebuilds only
/// kvlab's own crates, whose paths differ. Best effort: on any failure cargo
/// simply builds everything.
fn seed_target(to: &Path) {
    let Some(from) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    else {
        return;
    };
    if to.exists() || !from.join(".fingerprint").is_dir() {
        return;
    }
    if std::fs::create_dir_all(to).is_err() {
        return;
    }
    println!(
        "Seeding {} with this tree's dependencies from {}...",
        to.display(),
        from.display()
    );
    let copied = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .args(["deps", "build", ".fingerprint"].map(|d| from.join(d)))
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    if !copied {
        println!("warning: seeding failed; building every dependency");
    }
}

/// Runs every trial, then prints the comparison and the baseline verdict.
/// Returns the process exit code: 0 when every trial ran, 1 when one failed,
/// 130 when interrupted.
pub fn run_trials(a: &TrialsArgs) -> Result<i32> {
    if a.trials == 0 {
        bail!("--trials must be at least 1");
    }
    if a.positionals.len() > 4 {
        bail!("too many positional arguments");
    }
    let base = series::new_series_id();
    let now = kv_core::runlog::rfc3339_utc(std::time::SystemTime::now());
    let info = |id: String, side: &str, label: String| SeriesInfo {
        series_id: id,
        created_at: now.clone(),
        side: side.to_string(),
        label,
        trials: a.trials,
        compared_with: None,
    };
    let mut sides: Vec<Side> = Vec::new();
    if let Some(rev) = &a.against {
        let (wt, bins, commit) = build_against(&a.repo, rev)?;
        sides.push(Side {
            series: info(
                format!("{base}-a"),
                "A",
                format!("{rev} ({})", &commit[..12]),
            ),
            extra_client_args: String::new(),
            node_bin_dir: Some(bins),
            repo: wt,
        });
        let tree = GitIdentity::of_repo(&a.repo);
        let label = match &tree.dirty_diff {
            Some(d) => format!("work tree ({} + diff {d})", short(&tree.commit)),
            None => format!("work tree ({})", short(&tree.commit)),
        };
        sides.push(Side {
            series: info(format!("{base}-b"), "B", label),
            extra_client_args: String::new(),
            node_bin_dir: None,
            repo: a.repo.clone(),
        });
    } else if let (Some(x), Some(y)) = (&a.ab_a, &a.ab_b) {
        for (side, extra) in [("A", x), ("B", y)] {
            sides.push(Side {
                series: info(
                    format!("{base}-{}", side.to_lowercase()),
                    side,
                    format!("client args {extra}"),
                ),
                extra_client_args: extra.clone(),
                node_bin_dir: None,
                repo: a.repo.clone(),
            });
        }
    } else {
        sides.push(Side {
            series: info(base.clone(), "", "trials".into()),
            extra_client_args: String::new(),
            node_bin_dir: None,
            repo: a.repo.clone(),
        });
    }
    if sides.len() == 2 {
        let (ia, ib) = (
            sides[0].series.series_id.clone(),
            sides[1].series.series_id.clone(),
        );
        sides[0].series.compared_with = Some(ib);
        sides[1].series.compared_with = Some(ia);
    }
    for s in &sides {
        s.series.write(&a.experiments)?;
        println!(
            "Series {}{}: {}",
            s.series.series_id,
            if s.series.side.is_empty() {
                String::new()
            } else {
                format!(" (side {})", s.series.side)
            },
            s.series.label
        );
    }
    let mut failed = 0;
    'trials: for t in 1..=a.trials {
        for s in &sides {
            let mut pos: Vec<String> = a.positionals.clone();
            pos.resize(4, String::new());
            if !s.extra_client_args.is_empty() {
                pos[3] = format!("{} {}", pos[3], s.extra_client_args)
                    .trim()
                    .to_string();
            }
            println!();
            println!(
                "==== trial {t}/{} of series {} ====",
                a.trials, s.series.series_id
            );
            let mut cmd = Command::new(&a.script);
            cmd.args(&a.options)
                .arg("--no-build")
                .arg("--")
                .args(&pos)
                .env(series::ENV_SERIES_ID, &s.series.series_id)
                .env(series::ENV_TRIAL, t.to_string())
                .env("KVLAB_REPO", &s.repo);
            if let Some(b) = &s.node_bin_dir {
                cmd.env("KVLAB_NODE_BIN_DIR", b);
            }
            let st = cmd
                .status()
                .with_context(|| format!("cannot run {}", a.script.display()))?;
            match st.code() {
                Some(0) => {}
                Some(2) => bail!("trial {t} refused its arguments (see above)"),
                Some(130) | None => {
                    eprintln!("interrupted: the trials stop here");
                    failed += 1;
                    break 'trials;
                }
                Some(_) => failed += 1,
            }
        }
    }
    println!();
    print!("{}", final_report(&a.experiments, &sides)?);
    Ok(if failed > 0 { 1 } else { 0 })
}

fn short(c: &str) -> &str {
    &c[..c.len().min(12)]
}

/// The comparison of A and B (when there are two sides) and the verdict
/// against the baseline (when one is set).
fn final_report(experiments: &Path, sides: &[Side]) -> Result<String> {
    let runs = crate::record::read_runs(&kv_core::runlog::log_path(experiments))?;
    let mut out = String::new();
    let ids: Vec<&str> = sides.iter().map(|s| s.series.series_id.as_str()).collect();
    let last = ids.last().copied().unwrap_or_default();
    if ids.len() == 2 {
        let a = resolve(experiments, &runs, ids[0]).map_err(anyhow::Error::msg)?;
        let b = resolve(experiments, &runs, ids[1]).map_err(anyhow::Error::msg)?;
        out += &compare_groups(&a, &b).text();
    } else {
        let g = resolve(experiments, &runs, last).map_err(anyhow::Error::msg)?;
        let s = g.sample(Metric::Throughput);
        if let Some(sp) = s.spread() {
            out += &format!(
                "series {last}: {} ok trial(s), throughput median {:.0} ops/s (min {:.0}, max {:.0})\n",
                s.len(),
                sp.median,
                sp.min,
                sp.max
            );
        } else {
            out += &format!("series {last}: no successful trial\n");
        }
    }
    if let Ok(me) = resolve(experiments, &runs, last) {
        if let Some(v) = kv_core::series::vs_baseline(experiments, &runs, &me) {
            out += &v;
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_flags_drop_per_run_values() {
        let argv = v(&[
            "/bin/kv-client",
            "--hosts",
            "127.0.0.1:8080",
            "--secs",
            "10",
            "--seed",
            "5",
            "--batch=64",
            "--in-process",
            "--profile",
            "client-node1",
            "--window",
            "4",
        ]);
        assert_eq!(
            argv_flags(&argv),
            vec![
                ("secs".to_string(), "10".to_string()),
                ("batch".into(), "64".into()),
                ("in-process".into(), "true".into()),
                ("window".into(), "4".into()),
            ]
        );
    }
}
