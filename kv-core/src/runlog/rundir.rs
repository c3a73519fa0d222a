//! The per-run folder `runs/<run_id>/` and its profile files.

use std::fs::{self};
use std::io::{self};
use std::path::{Path, PathBuf};

use super::*;
use crate::stats::Role;

/// Kind of profile file written for each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// Flamegraph drawing.
    Svg,
    /// pprof protobuf.
    Pb,
    /// Collapsed stacks, one `frame;frame;frame count` per line.
    Folded,
}

impl ProfileKind {
    pub fn extension(self) -> &'static str {
        match self {
            ProfileKind::Svg => "svg",
            ProfileKind::Pb => "pb",
            ProfileKind::Folded => "folded",
        }
    }
}

/// The profile files found for one process of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessProfile {
    pub role: Role,
    pub node: String,
    pub folded: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub pb: Option<PathBuf>,
}

/// The one name of a run's process: `<role>-<node>` (`server-node0`,
/// `client-node1`), as the live view, the browser, the CLI and the profile
/// file names show it. Where a process is asked for, the node alone
/// (`node0`) is accepted too ([`ProcessProfile::answers_to`]).
pub fn process_name(role: Role, node: &str) -> String {
    format!("{}-{}", role.name(), node)
}

impl ProcessProfile {
    /// [`process_name`] of this process.
    pub fn name(&self) -> String {
        process_name(self.role, &self.node)
    }

    /// Whether a typed `--process` names this one exactly: its process
    /// name (`server-node0`) or its node (`node0`).
    pub fn answers_to(&self, spec: &str) -> bool {
        self.name() == spec || self.node == spec
    }
}

/// The folder of one run: `<experiments>/runs/<run_id>/`. Paths only; the
/// files are written by whoever produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn new(experiments_dir: &Path, run_id: &str) -> Self {
        RunDir {
            path: experiments_dir.join(RUNS_DIR).join(run_id),
        }
    }

    /// Creates the folder and its `logs/` subfolder.
    pub fn create(&self) -> Result<(), RunLogError> {
        let logs = self.logs_dir();
        fs::create_dir_all(&logs).map_err(|e| RunLogError::io(&logs, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every flag, versions, host info (free-form JSON).
    pub fn config_json(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// The run's results ([`RunSummary`]).
    pub fn summary_json(&self) -> PathBuf {
        self.path.join("summary.json")
    }

    /// Per second, per node rates ([`TimeseriesRow`]).
    pub fn timeseries_csv(&self) -> PathBuf {
        self.path.join("timeseries.csv")
    }

    /// Copies of every process's log.
    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// `<role>-<node>.<ext>`.
    pub fn profile(&self, role: Role, node: &str, kind: ProfileKind) -> PathBuf {
        self.path
            .join(format!("{}-{}.{}", role.name(), node, kind.extension()))
    }

    /// The processes that left at least one profile file, sorted by name
    /// (servers first). An absent folder is no profiles, not an error.
    pub fn profiles(&self) -> Result<Vec<ProcessProfile>, RunLogError> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RunLogError::io(&self.path, e)),
        };
        let mut found: Vec<ProcessProfile> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RunLogError::io(&self.path, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let kind = match ext {
                "svg" => ProfileKind::Svg,
                "pb" => ProfileKind::Pb,
                "folded" => ProfileKind::Folded,
                _ => continue,
            };
            let (role, node) = if let Some(n) = stem.strip_prefix("server-") {
                (Role::Server, n)
            } else if let Some(n) = stem.strip_prefix("client-") {
                (Role::Client, n)
            } else {
                continue;
            };
            let idx = match found.iter().position(|p| p.role == role && p.node == node) {
                Some(i) => i,
                None => {
                    found.push(ProcessProfile {
                        role,
                        node: node.to_string(),
                        folded: None,
                        svg: None,
                        pb: None,
                    });
                    found.len() - 1
                }
            };
            let slot = match kind {
                ProfileKind::Svg => &mut found[idx].svg,
                ProfileKind::Pb => &mut found[idx].pb,
                ProfileKind::Folded => &mut found[idx].folded,
            };
            *slot = Some(entry.path());
        }
        found.sort_by(|a, b| {
            (a.role != Role::Server, &a.node).cmp(&(b.role != Role::Server, &b.node))
        });
        Ok(found)
    }
}
