//! `kv-run check-room`: before a run starts, the experiments folder can take
//! its record — writable, and room for the files a run like it leaves
//! (profiles above all) — so a run that cannot be recorded is refused
//! before it runs instead of failing after it.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::manifest::Manifest;

/// One process's profiles as recorded (svg + pb + folded, the SVG twice
/// while it is titled), a 30 s run: ~1 MB measured, with room to spare.
pub const PROFILE_BYTES: u64 = 4 << 20;
/// Per node: its log, summary, latency log and time series rows.
pub const NODE_BYTES: u64 = 1 << 20;
/// Per run: config, reports, charts, the log row.
pub const RUN_BYTES: u64 = 2 << 20;

/// What the record of this run needs, roughly (histories of check mode
/// are moved, not copied, so they are not counted).
pub fn expected_bytes(m: &Manifest) -> u64 {
    let profiled = m
        .nodes
        .iter()
        .filter(|n| n.profile_prefix.is_some())
        .count() as u64;
    RUN_BYTES + m.nodes.len() as u64 * NODE_BYTES + profiled * PROFILE_BYTES
}

/// Fails in one line when `experiments` cannot take the record of `m`.
pub fn check(experiments: &Path, m: &Manifest) -> Result<()> {
    let runs = experiments.join("runs");
    let unwritable = |e: &dyn std::fmt::Display| {
        format!(
            "the experiments folder {} is not writable ({e}): the run could not be recorded; \
             fix it or set KVLAB_EXPERIMENTS_DIR",
            experiments.display()
        )
    };
    std::fs::create_dir_all(&runs).map_err(|e| anyhow::anyhow!(unwritable(&e)))?;
    // A file made and removed: permissions, read-only mounts, quotas.
    let probe = runs.join(format!(".write-check-{}", std::process::id()));
    let wrote = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"x"));
    let _ = std::fs::remove_file(&probe);
    wrote.map_err(|e| anyhow::anyhow!(unwritable(&e)))?;
    let log = kv_core::runlog::log_path(experiments);
    if log.exists() {
        OpenOptions::new()
            .append(true)
            .open(&log)
            .map_err(|e| anyhow::anyhow!(unwritable(&format!("{}: {e}", log.display()))))?;
    }
    let need = expected_bytes(m);
    let free = free_bytes(experiments)?;
    if free < need {
        bail!(
            "the experiments folder {} has {} free, and this run's record needs about {} \
             ({} processes{}): free some space or set KVLAB_EXPERIMENTS_DIR",
            experiments.display(),
            mb(free),
            mb(need),
            m.nodes.len(),
            if m.profile { ", profiled" } else { "" }
        );
    }
    Ok(())
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// Bytes an unprivileged writer may still use on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(dir.as_os_str().as_bytes()).context("path has a NUL byte")?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a
    // valid NUL-terminated string for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        let e = std::io::Error::last_os_error();
        bail!("cannot read the free space of {}: {e}", dir.display());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}
