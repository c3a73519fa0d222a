//! Symbolising a profile in a child process.
//!
//! Turning sampled addresses into function names loads and parses the
//! binary's debug info, ~100 MB that stays resident in whoever does it. Done
//! in the server at exit, that pushed a profiled server past its memory
//! budget for a few seconds. So the profiled process keeps only addresses
//! ([`RawProfile`]: each stack's instruction pointers and its executable
//! mappings), and a child, started from the same binary
//! ([`run_if_asked`]), maps each address into its own copy of the same
//! files, resolves it with the same `backtrace` resolver pprof-rs uses, and
//! writes the usual files. The parent's peak stays the run's.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Set (to a raw profile's path) in the environment of the child that
/// symbolises it.
pub const ENV_RAW_PROFILE: &str = "KVLAB_SYMBOLIZE_RAW_PROFILE";

/// One executable mapping of a process (`/proc/<pid>/maps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub path: String,
}

/// The executable, file-backed mappings of this process.
pub fn own_mappings() -> std::io::Result<Vec<Mapping>> {
    Ok(parse_maps(&std::fs::read_to_string("/proc/self/maps")?))
}

fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
            let path = f.nth(2)?;
            if !perms.contains('x') || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path: path.to_string(),
            })
        })
        .collect()
}

/// Where `ip` of a process with `from` mappings is in one with `to`
/// mappings of the same files; `None` outside any file both have mapped.
pub fn translate(ip: u64, from: &[Mapping], to: &[Mapping]) -> Option<u64> {
    let m = from.iter().find(|m| (m.start..m.end).contains(&ip))?;
    let file_offset = ip - m.start + m.offset;
    let t = to.iter().find(|t| {
        t.path == m.path && (t.offset..t.offset + (t.end - t.start)).contains(&file_offset)
    })?;
    Some(file_offset - t.offset + t.start)
}

/// One sampled stack, innermost frame first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawStack {
    pub ips: Vec<u64>,
    pub thread_name: String,
    pub thread_id: u64,
    pub unix_ns: u64,
    pub count: i64,
}

/// A profile before symbolising: addresses only, and where they were.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawProfile {
    /// Where the files go: `PREFIX.{svg,pb,folded}`.
    pub prefix: PathBuf,
    pub frequency: i32,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub mappings: Vec<Mapping>,
    pub stacks: Vec<RawStack>,
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl RawProfile {
    /// Every sampled stack of a running profiler (as addresses: a few
    /// bytes a frame, where pprof-rs's entries take ~4-6 KB each), merged,
    /// with this process's mappings.
    pub fn of(report: &pprof::ReportBuilder, prefix: &Path) -> Result<Self, pprof::Error> {
        type Key = (Vec<u64>, String, u64);
        let mut merged: HashMap<Key, (u64, i64)> = HashMap::new();
        report.for_each_unresolved(|frames, count| {
            let key = (
                frames.frames.iter().map(|f| f.ip() as u64).collect(),
                String::from_utf8_lossy(&frames.thread_name[..frames.thread_name_length])
                    .into_owned(),
                frames.thread_id,
            );
            let e = merged
                .entry(key)
                .or_insert((unix_ns(frames.sample_timestamp), 0));
            e.1 += count as i64;
        })?;
        let stacks = merged
            .into_iter()
            .map(
                |((ips, thread_name, thread_id), (unix_ns, count))| RawStack {
                    ips,
                    thread_name,
                    thread_id,
                    unix_ns,
                    count,
                },
            )
            .collect();
        let timing = report.timing();
        Ok(RawProfile {
            prefix: prefix.to_path_buf(),
            frequency: timing.frequency,
            start_unix_ns: unix_ns(timing.start_time),
            duration_ns: timing.duration.as_nanos() as u64,
            mappings: own_mappings().map_err(pprof::Error::IoError)?,
            stacks,
        })
    }

    pub fn samples(&self) -> u64 {
        self.stacks.iter().map(|s| s.count.max(0) as u64).sum()
    }

    /// Resolves every address in this process (whose mappings are `here`),
    /// as pprof-rs's own report does: every inlined frame of an address,
    /// innermost first; the signal handler's frame and the one after it
    /// dropped; addresses nothing resolves left out.
    pub fn resolve(&self, here: &[Mapping]) -> pprof::Report {
        let mut cache: HashMap<u64, Vec<pprof::Symbol>> = HashMap::new();
        let mut data: HashMap<pprof::Frames, isize> = HashMap::new();
        for stack in &self.stacks {
            let mut frames = Vec::with_capacity(stack.ips.len());
            let mut ips = stack.ips.iter();
            while let Some(&ip) = ips.next() {
                let symbols = cache
                    .entry(ip)
                    .or_insert_with(|| symbols_at(translate(ip, &self.mappings, here)));
                if symbols.iter().any(|s| s.name() == "perf_signal_handler") {
                    ips.next();
                    continue;
                }
                if !symbols.is_empty() {
                    frames.push(symbols.clone());
                }
            }
            let key = pprof::Frames {
                frames,
                thread_name: stack.thread_name.clone(),
                thread_id: stack.thread_id,
                sample_timestamp: UNIX_EPOCH + Duration::from_nanos(stack.unix_ns),
            };
            *data.entry(key).or_insert(0) += stack.count as isize;
        }
        // pprof-rs does not export its timing type's name, only its fields.
        let mut report = pprof::Report {
            data,
            timing: Default::default(),
        };
        report.timing.frequency = self.frequency;
        report.timing.start_time = UNIX_EPOCH + Duration::from_nanos(self.start_unix_ns);
        report.timing.duration = Duration::from_nanos(self.duration_ns);
        report
    }
}

/// The symbols (inlined frames first) at an address of this process.
fn symbols_at(ip: Option<u64>) -> Vec<pprof::Symbol> {
    let mut out = Vec::new();
    if let Some(ip) = ip {
        // The same resolver and return-address adjustment as pprof-rs's
        // `resolve_symbol` on a captured frame.
        backtrace::resolve(ip as *mut c_void, |s| {
            out.push(pprof::Symbol {
                name: s.name().map(|n| n.as_bytes().to_vec()),
                addr: s.addr(),
                lineno: s.lineno(),
                filename: s.filename().map(Path::to_path_buf),
            })
        });
    }
    out
}

/// Symbolises `raw` in a child process started from this binary and waits
/// for it to write the files. `Err` says why it could not (then the
/// caller may do it itself).
pub fn in_child(raw: &RawProfile) -> Result<(), String> {
    let mut path = raw.prefix.clone().into_os_string();
    path.push(".raw");
    let path = PathBuf::from(path);
    let bytes = bincode::serialize(raw).map_err(|e| e.to_string())?;
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let status = Command::new(&exe)
        .env(ENV_RAW_PROFILE, &path)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()));
    let _ = std::fs::remove_file(&path);
    match status? {
        s if s.success() => Ok(()),
        s => Err(format!("the symbolising child exited with {s}")),
    }
}

/// In a child started by [`in_child`]: symbolises the raw profile, writes
/// the files and returns the exit code for `main` to exit with. `None` in
/// any other process. Call first thing in `main`, before parsing flags.
pub fn run_if_asked() -> Option<i32> {
    let path = std::env::var_os(ENV_RAW_PROFILE)?;
    let result = (|| -> Result<(), String> {
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read the raw profile: {e}"))?;
        let raw: RawProfile = bincode::deserialize(&bytes).map_err(|e| e.to_string())?;
        let here = own_mappings().map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
        crate::profile::write_files(&raw.resolve(&here), &raw.prefix, raw.samples())
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    })();
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("profile symboliser: {e}");
            1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fd:01 42 /usr/bin/kv-server
55d0c0100000-55d0c0900000 r-xp 00100000 fd:01 42 /usr/bin/kv-server
7f0000000000-7f0000100000 r-xp 00028000 fd:01 7 /usr/lib/libc.so.6
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
7ffd00010000-7ffd00020000 rw-p 00000000 00:00 0 [stack]
";

    /// The vendored pprof's `try_for_each` (which reads evicted samples
    /// back in chunks) sees exactly what upstream's `try_iter` sees.
    #[test]
    fn the_chunked_collector_walk_loses_nothing() {
        let mut c = pprof::Collector::new().unwrap();
        // 12,288 distinct keys: far more than the table's 4,096 entries,
        // so most are evicted to the temp file.
        for item in 0..1u64 << 14 {
            for _ in 0..item % 4 {
                c.add(item, 1).unwrap();
            }
        }
        let mut by_iter = std::collections::BTreeMap::new();
        c.try_iter()
            .unwrap()
            .for_each(|e| *by_iter.entry(e.item).or_insert(0) += e.count);
        let mut by_each = std::collections::BTreeMap::new();
        c.try_for_each(|e| *by_each.entry(e.item).or_insert(0) += e.count)
            .unwrap();
        assert_eq!(by_iter, by_each);
        let total: isize = by_each.values().sum();
        assert_eq!(total, (0..1isize << 14).map(|i| i % 4).sum::<isize>());
    }

    #[test]
    fn only_executable_file_mappings_are_kept() {
        let m = parse_maps(MAPS);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[0],
            Mapping {
                start: 0x55d0c0100000,
                end: 0x55d0c0900000,
                offset: 0x100000,
                path: "/usr/bin/kv-server".into()
            }
        );
    }

    #[test]
    fn addresses_move_with_their_file_and_nothing_else_does() {
        let from = parse_maps(MAPS);
        let mut to = from.clone();
        // The child got other load addresses (ASLR).
        to[0].start = 0x5600_0010_0000;
        to[0].end = 0x5600_0090_0000;
        to[1].start = 0x7f10_0000_0000;
        to[1].end = 0x7f10_0010_0000;
        assert_eq!(
            translate(0x55d0c0100000 + 0x1234, &from, &to),
            Some(0x5600_0010_0000 + 0x1234)
        );
        assert_eq!(
            translate(0x7f0000000010, &from, &to),
            Some(0x7f10_0000_0010)
        );
        // The vdso and unmapped addresses resolve to nothing.
        assert_eq!(translate(0x7ffd00000010, &from, &to), None);
        assert_eq!(translate(1, &from, &to), None);
        // A file the child lacks: nothing.
        assert_eq!(translate(0x7f0000000010, &from, &to[..1]), None);
    }

    #[test]
    fn this_process_resolves_its_own_addresses_by_name() {
        let here = own_mappings().unwrap();
        // A return address inside this very function, as a sample holds.
        let ip = this_process_resolves_its_own_addresses_by_name as fn() as usize as u64 + 1;
        let raw = RawProfile {
            prefix: PathBuf::from("/nonexistent/p"),
            frequency: 99,
            start_unix_ns: 0,
            duration_ns: 1,
            mappings: here.clone(),
            stacks: vec![RawStack {
                ips: vec![ip],
                thread_name: "t".into(),
                thread_id: 1,
                unix_ns: 0,
                count: 3,
            }],
        };
        let report = raw.resolve(&here);
        let (frames, count) = report.data.iter().next().unwrap();
        assert_eq!(*count, 3);
        let names: Vec<String> = frames.frames.iter().flatten().map(|s| s.name()).collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("this_process_resolves_its_own_addresses_by_name")),
            "{names:?}"
        );
    }
}
