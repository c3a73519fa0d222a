//! What a process costs, read from Linux's /proc: CPU time, resident memory,
//! and bytes moved through read/write syscalls (sockets, for our processes).

use serde::{Deserialize, Serialize};

/// One reading of this process's resource use. Fields are zero where /proc
/// is unavailable (non-Linux), never an error: stats must not stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessSample {
    /// User + system CPU time consumed, in milliseconds.
    pub cpu_ms: u64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// Bytes read via read-like syscalls (`rchar`): for kvlab, mostly socket traffic.
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl ProcessSample {
    pub fn net_bytes(&self) -> u64 {
        self.read_bytes + self.written_bytes
    }

    /// Reads the current process's figures.
    pub fn now() -> Self {
        let mut s = ProcessSample::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                let hz = clock_ticks_per_s();
                s.cpu_ms = (ticks(11) + ticks(12)) * 1000 / hz;
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmRSS:") {
                    s.rss_bytes = kib(v);
                } else if let Some(v) = line.strip_prefix("VmHWM:") {
                    s.peak_rss_bytes = kib(v);
                }
            }
        }
        if let Ok(io) = std::fs::read_to_string("/proc/self/io") {
            for line in io.lines() {
                if let Some(v) = line.strip_prefix("rchar:") {
                    s.read_bytes = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = line.strip_prefix("wchar:") {
                    s.written_bytes = v.trim().parse().unwrap_or(0);
                }
            }
        }
        s
    }
}

fn kib(v: &str) -> u64 {
    v.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        * 1024
}

fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let s = ProcessSample::now();
        assert!(s.rss_bytes > 0);
        assert!(s.peak_rss_bytes >= s.rss_bytes);
    }
}
