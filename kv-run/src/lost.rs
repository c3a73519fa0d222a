//! What a record could not write. The row goes into log.csv first; every
//! file of the run folder after it is written on its own, and one that
//! fails (a full disk) is removed rather than left cut short, and named.

use std::fmt;
use std::path::{Path, PathBuf};

/// The run's row is in log.csv, but these files of its folder are not.
#[derive(Debug, thiserror::Error)]
pub struct Incomplete {
    pub run_dir: PathBuf,
    pub log: PathBuf,
    /// `(what, cause)`, in the order they were tried.
    pub lost: Vec<(String, String)>,
}

impl fmt::Display for Incomplete {
    /// One line: the row is safe, then what was lost, grouped by cause.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the run's row is in {} but {} is incomplete; lost",
            self.log.display(),
            self.run_dir.display()
        )?;
        let mut causes: Vec<&str> = Vec::new();
        for (_, c) in &self.lost {
            if !causes.contains(&c.as_str()) {
                causes.push(c);
            }
        }
        for (i, cause) in causes.iter().enumerate() {
            let what: Vec<&str> = self
                .lost
                .iter()
                .filter(|(_, c)| c == cause)
                .map(|(w, _)| w.as_str())
                .collect();
            write!(
                f,
                "{} {} ({cause})",
                if i == 0 { ":" } else { ";" },
                what.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The last part of `path: context: cause` (the OS error), so one full
/// disk reads as one cause, not one per file.
fn root_cause(e: &str) -> String {
    e.rsplit(": ").next().unwrap_or(e).to_string()
}

/// Collects what could not be written.
#[derive(Debug, Default)]
pub struct Lost(pub Vec<(String, String)>);

impl Lost {
    /// Notes a failed write of `path` (named `what`) and removes what it
    /// left behind, so no truncated file passes for a whole one.
    pub fn file<E: fmt::Display>(&mut self, what: &str, path: &Path, r: Result<(), E>) {
        if let Err(e) = r {
            let _ = std::fs::remove_file(path);
            self.0.push((what.to_string(), root_cause(&e.to_string())));
        }
    }

    /// Notes a loss that is not one file.
    pub fn other(&mut self, what: &str, cause: impl fmt::Display) {
        self.0
            .push((what.to_string(), root_cause(&cause.to_string())));
    }

    pub fn into_result(self, run_dir: &Path, log: &Path) -> Result<(), Incomplete> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(Incomplete {
            run_dir: run_dir.to_path_buf(),
            log: log.to_path_buf(),
            lost: self.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_grouped_by_cause() {
        let mut l = Lost::default();
        l.other(
            "profiles of server-node0",
            "No space left on device (os error 28)",
        );
        l.other(
            "throughput.svg",
            "cannot draw e/runs/r1/throughput.svg: backend error: No space left on device (os error 28)",
        );
        l.other("config.json", "Permission denied (os error 13)");
        let e = l
            .into_result(Path::new("e/runs/r1"), Path::new("e/log.csv"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the run's row is in e/log.csv but e/runs/r1 is incomplete; lost: \
             profiles of server-node0, throughput.svg (No space left on device (os error 28)); \
             config.json (Permission denied (os error 13))"
        );
    }
}
