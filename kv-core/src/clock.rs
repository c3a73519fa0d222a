//! Clocks across hosts for check mode: each client samples its clock's
//! offset to one reference clock (the first server's CLOCK_MONOTONIC, over
//! the ping RPC) at start, every second and at the end, and keeps the
//! samples beside its history (`<history>.clock.json`). kv-check maps every
//! op onto the reference clock and widens it by the bound of the sample
//! that bounds it best (Cristian: offset ± (RTT/2 + drift since the sample)).
//!
//! Widening an op's interval can only remove real-time order between ops,
//! never create it, so a FAIL on widened histories is a real violation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Worst rate two clocks drift apart, in parts per million. NTP-disciplined
/// or not, quartz clocks stay within ~100 ppm; a run lasts minutes.
pub const DRIFT_PPM: u64 = 100;

/// Test-only: shifts this process's history clock by this many ns
/// (signed), to rehearse skewed hosts on one machine. Honoured only where
/// history timestamps are taken (check mode); see docs/correctness.md.
pub const ENV_TEST_SKEW_NS: &str = "KVLAB_TEST_CLOCK_SKEW_NS";
/// Test-only: the boot id check-mode histories record instead of the
/// machine's, so one machine can play several hosts.
pub const ENV_TEST_BOOT_ID: &str = "KVLAB_TEST_BOOT_ID";

/// The test skew, read once (0 when unset or malformed).
pub fn test_skew_ns() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var(ENV_TEST_SKEW_NS)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// One round trip to the reference: the local clock when the ping was sent
/// and when its reply came, and the reference clock in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSample {
    pub send_ns: u64,
    pub recv_ns: u64,
    pub reference_ns: u64,
}

impl ClockSample {
    /// reference − local at the sample's midpoint.
    pub fn offset_ns(&self) -> i128 {
        i128::from(self.reference_ns) - i128::from(self.send_ns / 2 + self.recv_ns / 2)
    }

    /// Half the round trip (rounded up): the reply was stamped somewhere in it.
    pub fn bound_ns(&self) -> u64 {
        self.recv_ns.saturating_sub(self.send_ns).div_ceil(2)
    }

    fn mid_ns(&self) -> u64 {
        self.send_ns / 2 + self.recv_ns / 2
    }
}

/// The samples one client took against one reference clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockLog {
    /// The reference clock: `<boot id>/<server instance>` of the server
    /// sampled. All histories checked together must share it.
    pub reference: String,
    pub samples: Vec<ClockSample>,
}

/// Where the clock samples of the history at `history` are kept.
pub fn clock_path(history: &Path) -> PathBuf {
    let mut p = history.as_os_str().to_owned();
    p.push(".clock.json");
    PathBuf::from(p)
}

/// An op's time on the reference clock with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub reference_ns: i128,
    pub epsilon_ns: u64,
}

impl ClockLog {
    pub fn write(&self, history: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(clock_path(history), text)
    }

    /// The samples of `history`, `Ok(None)` when it has none.
    pub fn read(history: &Path) -> Result<Option<ClockLog>, String> {
        let path = clock_path(history);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Local time `t` on the reference clock (see [`ClockMap::map`]).
    pub fn map(&self, t: u64) -> Option<Mapped> {
        self.mapper().map(t)
    }

    /// The samples that are ever the tightest, in time order, for mapping
    /// many times.
    pub fn mapper(&self) -> ClockMap {
        let mut v = self.samples.clone();
        v.sort_by_key(|s| (s.mid_ns(), s.bound_ns()));
        // A sample is never the tightest if another one's bound, drifted
        // to it, is already within its own: drop those.
        let keep: Vec<ClockSample> = v
            .iter()
            .filter(|s| {
                !v.iter().any(|o| {
                    o != *s
                        && bound_at(o, s.mid_ns()) <= s.bound_ns()
                        && (bound_at(o, s.mid_ns()) < s.bound_ns() || o.mid_ns() < s.mid_ns())
                })
            })
            .copied()
            .collect();
        ClockMap { samples: keep }
    }
}

fn bound_at(s: &ClockSample, t: u64) -> u64 {
    let drift = s.mid_ns().abs_diff(t).saturating_mul(DRIFT_PPM) / 1_000_000;
    s.bound_ns().saturating_add(drift)
}

/// [`ClockLog`] samples prepared for mapping: sorted, dominated ones gone.
#[derive(Debug, Clone)]
pub struct ClockMap {
    samples: Vec<ClockSample>,
}

impl ClockMap {
    /// Local time `t` on the reference clock: by the sample whose bound at
    /// `t` (half its round trip plus drift since it) is smallest. With the
    /// dominated samples gone and equal drift slopes, that is one of the
    /// two samples either side of `t`. `None` without samples.
    pub fn map(&self, t: u64) -> Option<Mapped> {
        let i = self.samples.partition_point(|s| s.mid_ns() <= t);
        let lo = i.saturating_sub(1);
        let hi = (i + 1).min(self.samples.len());
        self.samples[lo..hi]
            .iter()
            .map(|s| (bound_at(s, t), s))
            .min_by_key(|(eps, _)| *eps)
            .map(|(epsilon_ns, s)| Mapped {
                reference_ns: i128::from(t) + s.offset_ns(),
                epsilon_ns,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_sample_at_t_wins_and_drift_widens_with_distance() {
        // Local clock 1 ms behind the reference.
        let log = ClockLog {
            reference: "r".into(),
            samples: vec![
                ClockSample {
                    send_ns: 1_000_000,
                    recv_ns: 1_200_000,
                    reference_ns: 2_100_000,
                },
                // A slow round trip much later.
                ClockSample {
                    send_ns: 1_000_000_000,
                    recv_ns: 1_010_000_000,
                    reference_ns: 1_006_000_000,
                },
            ],
        };
        let m = log.map(1_100_000).unwrap();
        assert_eq!(m.reference_ns, 2_100_000);
        assert_eq!(m.epsilon_ns, 100_000);
        // 0.5 s after the first: 100 us + 50 us of drift beats the second's 5 ms.
        let m = log.map(501_100_000).unwrap();
        assert_eq!((m.reference_ns, m.epsilon_ns), (502_100_000, 150_000));
        // At the second sample, the first's 100 us + 100.39 us of drift
        // still beats the second's 5 ms.
        let m = log.map(1_005_000_000).unwrap();
        assert_eq!(m.epsilon_ns, 100_000 + 100_390);
        assert!(ClockLog {
            reference: "r".into(),
            samples: vec![]
        }
        .map(5)
        .is_none());
    }

    #[test]
    fn the_two_neighbours_give_the_same_answer_as_every_sample() {
        // Pseudo-random samples; brute force over all of them agrees.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let samples: Vec<ClockSample> = (0..1 + next() % 12)
                .map(|_| {
                    let send = next() % 10_000_000_000;
                    let rtt = next() % 3_000_000;
                    ClockSample {
                        send_ns: send,
                        recv_ns: send + rtt,
                        reference_ns: next() % 1_000_000,
                    }
                })
                .collect();
            let log = ClockLog {
                reference: "r".into(),
                samples: samples.clone(),
            };
            let m = log.mapper();
            for _ in 0..50 {
                let t = next() % 12_000_000_000;
                let best = samples.iter().map(|s| bound_at(s, t)).min().unwrap();
                assert_eq!(m.map(t).unwrap().epsilon_ns, best, "t={t} {samples:?}");
            }
        }
    }

    #[test]
    fn clock_logs_round_trip_beside_their_history() {
        let dir = std::env::temp_dir().join(format!("kv-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let h = dir.join("history-node1.hist");
        assert_eq!(ClockLog::read(&h).unwrap(), None);
        let log = ClockLog {
            reference: "boot/7".into(),
            samples: vec![ClockSample {
                send_ns: 1,
                recv_ns: 3,
                reference_ns: 10,
            }],
        };
        log.write(&h).unwrap();
        assert_eq!(clock_path(&h), dir.join("history-node1.hist.clock.json"));
        assert_eq!(ClockLog::read(&h).unwrap(), Some(log));
        std::fs::write(clock_path(&h), "{").unwrap();
        assert!(ClockLog::read(&h)
            .unwrap_err()
            .contains("history-node1.hist.clock.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
