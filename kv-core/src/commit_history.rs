//! History by commit: for one setup (every config entry except the code),
//! the trials of each code state in commit order, with the change between
//! adjacent code states judged like any A/B ([`crate::trials::compare`]).
//!
//! Change points: a sequential test between adjacent commit groups. Code
//! state k is a change point when the 95% interval of its difference
//! against state k−1 (Hodges–Lehmann estimate, exact Mann–Whitney
//! interval) excludes zero, i.e. the A/B verdict is `better` or `worse`.
//! Each adjacent pair is tested at 95% on its own; over many commits
//! expect about one false flag in twenty pairs of identical code.

use serde::Serialize;

use crate::identity::ConfigIdentity;
use crate::runlog::RunRecord;
use crate::series::{metric_value, TrialInfo};
use crate::trials::{self, Comparison, Metric, Sample, Spread, Verdict};

/// Describes the test in output and docs.
pub const METHOD: &str = "adjacent code states compared by Hodges-Lehmann with the exact \
Mann-Whitney 95% interval; a change point is an interval that excludes zero";

/// Identity entries that describe the code, not the setup it ran.
const CODE_PREFIX: &str = "git.";

/// The hash of everything in `identity` except the code (`git.*`): runs of
/// one setup at different commits share it.
pub fn setup_hash(identity: &ConfigIdentity) -> String {
    let mut setup = ConfigIdentity::new();
    for (k, v) in identity.entries() {
        if !k.starts_with(CODE_PREFIX) {
            setup.set(k, v);
        }
    }
    setup.hash()
}

/// The code a run ran: its commit, and the hash of its uncommitted diff
/// when the tree was dirty (`abc123+d9f8e7`).
pub fn code_state(identity: &ConfigIdentity, record: &RunRecord) -> String {
    let commit = identity.get("git.commit").unwrap_or(&record.git_commit);
    match identity.get("git.dirty_diff") {
        Some(d) if d != "clean" && !d.is_empty() => {
            format!("{commit}+d{}", &d[..d.len().min(6)])
        }
        _ => commit.to_string(),
    }
}

/// One code state's trials.
#[derive(Debug, Clone, Serialize)]
pub struct CodePoint {
    /// `commit` or `commit+d<diff hash>`.
    pub code: String,
    pub commit: String,
    /// Start of the first trial (RFC 3339).
    pub first_started: String,
    pub trials: usize,
    pub spread: Option<Spread>,
    /// This state against the previous one; `None` for the first.
    pub vs_previous: Option<Comparison>,
}

impl CodePoint {
    pub fn is_change_point(&self) -> bool {
        self.vs_previous
            .as_ref()
            .is_some_and(|c| matches!(c.verdict, Verdict::Better | Verdict::Worse))
    }
}

/// The history of one setup.
#[derive(Debug, Clone, Serialize)]
pub struct CommitHistory {
    pub setup_hash: String,
    pub metric: Metric,
    pub method: &'static str,
    pub points: Vec<CodePoint>,
}

/// Builds the history of `setup` from ok runs with their trial info.
/// `commit_order` lists commits oldest first (from `git rev-list`); a
/// commit it lacks, or a match by prefix failing, sorts after the known
/// ones by the time it was first run. Dirty states follow their commit.
pub fn build(
    runs: &[(&RunRecord, &TrialInfo)],
    setup: &str,
    metric: Metric,
    commit_order: &[String],
) -> CommitHistory {
    struct Acc<'a> {
        code: String,
        commit: String,
        first_started: &'a str,
        values: Vec<f64>,
    }
    let mut groups: Vec<Acc> = Vec::new();
    for (r, t) in runs {
        if !r.status.is_ok() || setup_hash(&t.identity) != setup {
            continue;
        }
        let Some(v) = metric_value(r, metric) else {
            continue;
        };
        let code = code_state(&t.identity, r);
        match groups.iter_mut().find(|g| g.code == code) {
            Some(g) => {
                g.values.push(v);
                if r.started_at.as_str() < g.first_started {
                    g.first_started = &r.started_at;
                }
            }
            None => groups.push(Acc {
                commit: t
                    .identity
                    .get("git.commit")
                    .unwrap_or(&r.git_commit)
                    .to_string(),
                code,
                first_started: &r.started_at,
                values: vec![v],
            }),
        }
    }
    let position = |commit: &str| {
        (!commit.is_empty())
            .then(|| {
                commit_order
                    .iter()
                    .position(|c| c.starts_with(commit) || commit.starts_with(c.as_str()))
            })
            .flatten()
            .unwrap_or(usize::MAX)
    };
    groups.sort_by(|a, b| {
        (position(&a.commit), a.code != a.commit, a.first_started).cmp(&(
            position(&b.commit),
            b.code != b.commit,
            b.first_started,
        ))
    });
    let mut points: Vec<CodePoint> = Vec::with_capacity(groups.len());
    let mut previous: Option<Sample> = None;
    for g in groups {
        // metric_value yields only positive finite values.
        let sample = Sample::new(g.values).unwrap_or_else(|_| Sample::new([]).expect("empty"));
        points.push(CodePoint {
            code: g.code,
            commit: g.commit,
            first_started: g.first_started.to_string(),
            trials: sample.len(),
            spread: sample.spread(),
            vs_previous: previous
                .as_ref()
                .map(|p| trials::compare(metric, p, &sample)),
        });
        previous = Some(sample);
    }
    CommitHistory {
        setup_hash: setup.to_string(),
        metric,
        method: METHOD,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::RunStatus;

    fn identity(commit: &str, dirty: &str, batch: u32) -> ConfigIdentity {
        let mut id = ConfigIdentity::new();
        id.set("git.commit", commit)
            .set("git.dirty_diff", dirty)
            .set("client.batch", batch)
            .set("host.cores", 2);
        id
    }

    fn run(n: usize, commit: &str, tput: f64) -> RunRecord {
        let mut r = RunRecord::new(std::time::SystemTime::UNIX_EPOCH);
        r.run_id = format!("r{n}");
        r.started_at = format!("2026-01-01T00:{:02}:00Z", n);
        r.git_commit = commit.into();
        r.status = RunStatus::Ok;
        r.total_ops_per_s = Some(tput);
        r
    }

    #[test]
    fn setup_hash_ignores_the_code_and_nothing_else() {
        let a = identity("aaa", "clean", 64);
        assert_eq!(setup_hash(&a), setup_hash(&identity("bbb", "f00", 64)));
        assert_ne!(setup_hash(&a), setup_hash(&identity("aaa", "clean", 65)));
        assert_ne!(setup_hash(&a), a.hash());
    }

    #[test]
    fn commits_in_git_order_with_a_step_flagged_and_noise_not() {
        // c1, c2: same level (A/A); c3: 30% slower; runs logged out of order.
        let mut runs = Vec::new();
        let mut infos = Vec::new();
        let levels = [("c3", 700.0), ("c1", 1000.0), ("c2", 1000.0)];
        let jitter = [-6.0, 3.0, -1.0, 5.0, 0.0];
        for (commit, level) in levels {
            for j in jitter {
                runs.push(run(runs.len(), commit, level + j));
                infos.push(TrialInfo::new(
                    String::new(),
                    0,
                    identity(commit, "clean", 64),
                ));
            }
        }
        // A run of another setup and a failed run: both left out.
        runs.push(run(99, "c2", 1.0));
        infos.push(TrialInfo::new(String::new(), 0, identity("c2", "clean", 8)));
        let mut failed = run(98, "c2", 1.0);
        failed.status = RunStatus::Failed("boom".into());
        runs.push(failed);
        infos.push(TrialInfo::new(
            String::new(),
            0,
            identity("c2", "clean", 64),
        ));

        let pairs: Vec<(&RunRecord, &TrialInfo)> = runs.iter().zip(infos.iter()).collect();
        let setup = setup_hash(&identity("x", "clean", 64));
        let order = ["c1".to_string(), "c2".into(), "c3".into()];
        let h = build(&pairs, &setup, Metric::Throughput, &order);
        let codes: Vec<&str> = h.points.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["c1", "c2", "c3"]);
        assert!(h.points.iter().all(|p| p.trials == 5));
        assert!(h.points[0].vs_previous.is_none());
        assert!(
            !h.points[1].is_change_point(),
            "{:?}",
            h.points[1].vs_previous
        );
        assert!(h.points[2].is_change_point());
        let step = h.points[2].vs_previous.as_ref().unwrap();
        assert_eq!(step.verdict, Verdict::Worse);
        assert!((step.estimate.unwrap() + 0.3).abs() < 0.02, "{step:?}");
        assert_eq!(h.points[2].spread.unwrap().median, 700.0);
    }

    #[test]
    fn dirty_state_follows_its_commit_and_unknown_commits_go_last_by_time() {
        let specs = [("zz", "clean"), ("c1", "abcdef99"), ("c1", "clean")];
        let runs: Vec<RunRecord> = specs
            .iter()
            .enumerate()
            .map(|(i, (c, _))| run(i, c, 100.0))
            .collect();
        let infos: Vec<TrialInfo> = specs
            .iter()
            .map(|(c, d)| TrialInfo::new(String::new(), 0, identity(c, d, 64)))
            .collect();
        let pairs: Vec<(&RunRecord, &TrialInfo)> = runs.iter().zip(infos.iter()).collect();
        let setup = setup_hash(&identity("x", "clean", 64));
        let h = build(&pairs, &setup, Metric::Throughput, &["c1".to_string()]);
        let codes: Vec<&str> = h.points.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["c1", "c1+dabcdef", "zz"]);
        // One trial a side: never a change point.
        assert!(h.points.iter().all(|p| !p.is_change_point()));
    }
}
