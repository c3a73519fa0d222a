//! Config identity: everything about a run that can change its performance,
//! as sorted `key = value` entries, and a hash of them. Two runs with the
//! same hash ran the same binaries with the same effective parameters on
//! the same kind of host, so any difference between them is run-to-run
//! noise. What cannot change performance is never an entry: seed, start
//! time, run id, series id, note and tag ([`EXCLUDED`]).
//!
//! Entry keys are grouped by prefix: `git.*` (commit, hash of the dirty
//! diff), `server.*` and `client.*` (every effective parameter), `nodes.*`
//! (counts), `backend`, `host.*` (CPU model, cores, kernel). Whoever builds
//! a run's identity (kv-run record) fills them; this module only keeps,
//! hashes and compares.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Keys that never enter an identity: they differ between identical runs.
pub const EXCLUDED: &[&str] = &["seed", "started_at", "run_id", "series_id", "note", "tag"];

/// Hex digits of the config hash shown and stored (64 bits: collisions
/// between a lab's few thousand configs are not a concern).
pub const HASH_HEX_LEN: usize = 16;

/// The last word of a dotted key (`client.seed` -> `seed`).
fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// Sorted entries; a key is set at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigIdentity {
    entries: BTreeMap<String, String>,
}

impl ConfigIdentity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`. A key whose last word is in [`EXCLUDED`]
    /// (`seed`, `client.seed`, ...) is ignored: those never identify a
    /// config, whoever passes them along.
    pub fn set(&mut self, key: impl Into<String>, value: impl fmt::Display) -> &mut Self {
        let key = key.into();
        if !EXCLUDED.contains(&leaf(&key)) {
            self.entries.insert(key, value.to_string());
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// SHA-256 over `key=value\n` lines in key order, first
    /// [`HASH_HEX_LEN`] hex digits. Keys and values are length-prefixed so
    /// no two different entry sets hash alike by moving text across a `=`.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (k, v) in &self.entries {
            h.update(format!("{}:{k}={}:{v}\n", k.len(), v.len()).as_bytes());
        }
        hex(&h.finalize())[..HASH_HEX_LEN].to_string()
    }

    /// Every key whose value differs (or that only one side has), in key order.
    pub fn differences(&self, other: &ConfigIdentity) -> Vec<ConfigDifference> {
        let mut keys: Vec<&String> = self.entries.keys().chain(other.entries.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| {
                let (a, b) = (self.entries.get(k), other.entries.get(k));
                (a != b).then(|| ConfigDifference {
                    key: k.clone(),
                    a: a.cloned(),
                    b: b.cloned(),
                })
            })
            .collect()
    }

    /// Adds the host fingerprint (`host.cpu`, `host.cores`, `host.kernel`).
    pub fn set_host(&mut self, host: &HostFingerprint) -> &mut Self {
        self.set("host.cpu", &host.cpu_model)
            .set("host.cores", host.cores)
            .set("host.kernel", &host.kernel)
    }

    /// Adds the code identity (`git.commit`, `git.dirty_diff`).
    pub fn set_git(&mut self, git: &GitIdentity) -> &mut Self {
        self.set("git.commit", &git.commit).set(
            "git.dirty_diff",
            git.dirty_diff.as_deref().unwrap_or("clean"),
        )
    }
}

/// One key that differs between two identities; `None`: that side lacks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDifference {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// The lines `compare` prints for two identities.
pub fn describe_differences(diffs: &[ConfigDifference]) -> Vec<String> {
    if diffs.is_empty() {
        return vec!["identical configs: any difference is run-to-run noise".to_string()];
    }
    let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not recorded)".into());
    diffs
        .iter()
        .map(|d| format!("{}: {} -> {}", d.key, side(&d.a), side(&d.b)))
        .collect()
}

/// What about the machine changes performance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFingerprint {
    /// `model name` of /proc/cpuinfo (`unknown` when absent, e.g. on some ARM kernels).
    pub cpu_model: String,
    /// Cores this process may use (cgroup and affinity limits included).
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
}

impl HostFingerprint {
    /// The machine this runs on.
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        HostFingerprint {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}

/// The code that ran: a commit, and a hash of the uncommitted changes on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitIdentity {
    /// Full commit id; empty when the tree is not a git checkout.
    pub commit: String,
    /// SHA-256 (first [`HASH_HEX_LEN`] hex) of `git diff HEAD --binary` plus
    /// every untracked, not ignored file (path and content); `None` when clean.
    pub dirty_diff: Option<String>,
}

impl GitIdentity {
    pub fn is_dirty(&self) -> bool {
        self.dirty_diff.is_some()
    }

    /// The state of the checkout at `repo`. Not a checkout, or no git:
    /// an empty commit and no diff (such runs still compare by their other
    /// entries).
    pub fn of_repo(repo: &Path) -> Self {
        let git = |args: &[&str]| -> Option<Vec<u8>> {
            let o = Command::new("git")
                .args(args)
                .current_dir(repo)
                .output()
                .ok()?;
            o.status.success().then_some(o.stdout)
        };
        let Some(commit) = git(&["rev-parse", "HEAD"]) else {
            return GitIdentity {
                commit: String::new(),
                dirty_diff: None,
            };
        };
        let commit = String::from_utf8_lossy(&commit).trim().to_string();
        let diff = git(&["diff", "HEAD", "--binary"]).unwrap_or_default();
        let untracked =
            git(&["ls-files", "--others", "--exclude-standard", "-z"]).unwrap_or_default();
        let mut names: Vec<&[u8]> = untracked
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .collect();
        names.sort();
        if diff.is_empty() && names.is_empty() {
            return GitIdentity {
                commit,
                dirty_diff: None,
            };
        }
        let mut h = Sha256::new();
        h.update(&diff);
        for name in names {
            h.update(b"\0untracked\0");
            h.update(name);
            h.update(b"\0");
            let path = repo.join(String::from_utf8_lossy(name).as_ref());
            // A file that vanished in between hashes as its name only.
            h.update(std::fs::read(path).unwrap_or_default());
        }
        GitIdentity {
            commit,
            dirty_diff: Some(hex(&h.finalize())[..HASH_HEX_LEN].to_string()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConfigIdentity {
        let mut c = ConfigIdentity::new();
        c.set("client.batch", 1024)
            .set("client.window", 8)
            .set("nodes.servers", 1)
            .set("backend", "local");
        c
    }

    #[test]
    fn seed_time_and_ids_never_count() {
        let mut a = sample();
        let h = a.hash();
        a.set("seed", 7)
            .set("client.seed", 99)
            .set("run_id", "20260101-000000-abcd")
            .set("started_at", "2026-01-01T00:00:00Z")
            .set("series_id", "s1")
            .set("note", "x")
            .set("tag", "y");
        assert_eq!(a.hash(), h);
        assert_eq!(a.get("client.seed"), None);
        assert!(a.differences(&sample()).is_empty());
    }

    #[test]
    fn every_parameter_changes_the_hash() {
        let base = sample().hash();
        assert_eq!(base.len(), HASH_HEX_LEN);
        let mut b = sample();
        b.set("client.batch", 4);
        assert_ne!(b.hash(), base);
        let mut c = sample();
        c.set("client.threads", 1);
        assert_ne!(c.hash(), base, "an added key counts");
        // Moving text across the '=' gives a different hash.
        let (mut x, mut y) = (ConfigIdentity::new(), ConfigIdentity::new());
        x.set("a", "b=c");
        y.set("a=b", "c");
        assert_ne!(x.hash(), y.hash());
        // Order of setting does not matter.
        let mut r = ConfigIdentity::new();
        r.set("backend", "local")
            .set("nodes.servers", 1)
            .set("client.window", 8)
            .set("client.batch", 1024);
        assert_eq!(r.hash(), base);
    }

    #[test]
    fn differences_list_changed_and_missing_keys() {
        let a = sample();
        let mut b = sample();
        b.set("client.batch", 4).set("host.cores", 2);
        let d = a.differences(&b);
        assert_eq!(
            d,
            vec![
                ConfigDifference {
                    key: "client.batch".into(),
                    a: Some("1024".into()),
                    b: Some("4".into())
                },
                ConfigDifference {
                    key: "host.cores".into(),
                    a: None,
                    b: Some("2".into())
                },
            ]
        );
        assert_eq!(
            describe_differences(&d),
            ["client.batch: 1024 -> 4", "host.cores: (not recorded) -> 2"]
        );
        assert_eq!(
            describe_differences(&[]),
            ["identical configs: any difference is run-to-run noise"]
        );
    }

    #[test]
    fn cpu_model_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7763 64-Core Processor\n";
        assert_eq!(
            cpu_model(text).as_deref(),
            Some("AMD EPYC 7763 64-Core Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        let h = HostFingerprint::current();
        assert!(h.cores >= 1);
        assert!(!h.kernel.is_empty());
    }

    /// A real repository: clean, then a tracked edit, then an untracked
    /// file; each state has its own diff hash, and undoing restores clean.
    #[test]
    fn git_identity_hashes_the_dirty_diff() {
        let dir = std::env::temp_dir().join(format!("kvlab-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("a.rs"), "fn a() {}\n").unwrap();
        git(&["add", "a.rs"]);
        git(&["commit", "-q", "-m", "one"]);
        let clean = GitIdentity::of_repo(&dir);
        assert_eq!(clean.commit.len(), 40);
        assert!(!clean.is_dirty());

        std::fs::write(dir.join("a.rs"), "fn a() { 1; }\n").unwrap();
        let edited = GitIdentity::of_repo(&dir);
        assert_eq!(edited.commit, clean.commit);
        let e = edited.dirty_diff.clone().unwrap();
        std::fs::write(dir.join("a.rs"), "fn a() { 2; }\n").unwrap();
        let other = GitIdentity::of_repo(&dir).dirty_diff.unwrap();
        assert_ne!(e, other, "a different edit, a different hash");
        std::fs::write(dir.join("a.rs"), "fn a() { 1; }\n").unwrap();
        assert_eq!(GitIdentity::of_repo(&dir).dirty_diff.unwrap(), e, "stable");

        std::fs::write(dir.join("new.rs"), "fn b() {}\n").unwrap();
        let with_new = GitIdentity::of_repo(&dir).dirty_diff.unwrap();
        assert_ne!(with_new, e, "untracked files count");
        std::fs::remove_file(dir.join("new.rs")).unwrap();
        std::fs::write(dir.join("a.rs"), "fn a() {}\n").unwrap();
        assert_eq!(GitIdentity::of_repo(&dir), clean);

        let mut id_clean = ConfigIdentity::new();
        id_clean.set_git(&clean);
        let mut id_dirty = ConfigIdentity::new();
        id_dirty.set_git(&edited);
        assert_eq!(id_clean.get("git.dirty_diff"), Some("clean"));
        assert_ne!(id_clean.hash(), id_dirty.hash());
        std::fs::remove_dir_all(&dir).unwrap();

        let none = GitIdentity::of_repo(Path::new("/"));
        assert_eq!((none.commit.as_str(), none.is_dirty()), ("", false));
    }
}
