//! Whether the run a manifest describes is over, seen from outside:
//! run-cluster.sh writes `report.txt` into the run's log directory when it
//! finishes (completed, failed or interrupted); a run killed outright
//! leaves none, but then none of its processes is left on this machine.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kv_core::manifest::Manifest;

/// The end check of one run, by its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct EndCheck {
    manifest: PathBuf,
}

impl EndCheck {
    pub fn new(manifest: &Path) -> EndCheck {
        EndCheck {
            manifest: manifest.to_path_buf(),
        }
    }

    /// Why the run is over, or `None` while it may still be going. Reads
    /// the manifest again each time: PIDs are added after it is written.
    pub fn check(&self) -> Option<String> {
        let dir = self.manifest.parent().unwrap_or(Path::new("."));
        if let Ok(meta) = std::fs::metadata(dir.join("report.txt")) {
            let ago = meta
                .modified()
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(String::new(), |d| format!(" {} ago", ago(d.as_secs())));
            return Some(format!(
                "it ended{ago} (its report is in {}/report.txt)",
                dir.display()
            ));
        }
        let m = Manifest::read(&self.manifest).ok()?;
        let pids: Option<Vec<u32>> = m.nodes.iter().map(|n| n.pid).collect();
        let pids = pids.filter(|p| !p.is_empty())?;
        // Without /proc there is no cheap way to tell: assume it runs.
        if !Path::new("/proc/self").exists() {
            return None;
        }
        pids.iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists())
            .then(|| "none of its processes is running".to_string())
    }
}

fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        assert_eq!(ago(5), "5 s");
        assert_eq!(ago(600), "10 min");
        assert_eq!(ago(3 * 3600), "3 h");
        assert_eq!(ago(3 * 86400), "3 days");
    }
}
