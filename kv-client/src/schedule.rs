//! When each op of an open-loop run is meant to start: fixed gaps or
//! Poisson arrivals (seeded exponential gaps), one schedule per generator
//! thread. No clock here: a schedule yields offsets from the run's start.

use std::time::Duration;

// The arrival kinds are run facts (kv-core), recorded in the manifest.
pub use kv_core::facts::Arrival;

/// splitmix64: a tiny, well-known generator whose output is fixed by its
/// definition. rand's distributions do not promise value stability across
/// versions, and a repeatable schedule is the point here.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// Keeps the arrival stream apart from the op stream seeded with the same
/// thread seed.
const ARRIVAL_SALT: u64 = 0x6172_7269_7661_6c73; // "arrivals"

/// Intended start offsets of one generator thread's ops.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    mean_gap_ns: f64,
    /// Offset of the first op (fixed: staggers threads so the process's
    /// ops are evenly spaced, not fired together).
    phase_ns: f64,
    issued: u64,
    /// Poisson: offset of the last op, accumulated.
    last_ns: f64,
    rng: SplitMix64,
}

impl Schedule {
    /// `rate_per_s` is this thread's rate (> 0); `phase` in [0, 1) shifts
    /// the first op by that fraction of a gap.
    pub fn new(rate_per_s: f64, arrival: Arrival, seed: u64, phase: f64) -> Self {
        let mean_gap_ns = 1e9 / rate_per_s;
        Self {
            arrival,
            mean_gap_ns,
            phase_ns: phase * mean_gap_ns,
            issued: 0,
            last_ns: 0.0,
            rng: SplitMix64(seed ^ ARRIVAL_SALT),
        }
    }

    /// The next op's intended start, as an offset from the run's start.
    pub fn next_offset(&mut self) -> Duration {
        let ns = match self.arrival {
            // k * gap, not a running sum: no drift over long runs.
            Arrival::Fixed => self.phase_ns + self.issued as f64 * self.mean_gap_ns,
            Arrival::Poisson => {
                // Inverse CDF of the exponential distribution.
                self.last_ns += -self.rng.next_open01().ln() * self.mean_gap_ns;
                self.last_ns
            }
        };
        self.issued += 1;
        Duration::from_nanos(ns as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(s: &mut Schedule, n: usize) -> Vec<Duration> {
        (0..n).map(|_| s.next_offset()).collect()
    }

    #[test]
    fn fixed_is_evenly_spaced_and_phased() {
        let mut s = Schedule::new(1000.0, Arrival::Fixed, 1, 0.5);
        let v = take(&mut s, 3);
        assert_eq!(
            v,
            vec![
                Duration::from_micros(500),
                Duration::from_micros(1500),
                Duration::from_micros(2500)
            ]
        );
    }

    #[test]
    fn poisson_with_a_seed_repeats_its_schedule() {
        let a = take(
            &mut Schedule::new(10_000.0, Arrival::Poisson, 42, 0.0),
            1000,
        );
        let b = take(
            &mut Schedule::new(10_000.0, Arrival::Poisson, 42, 0.0),
            1000,
        );
        assert_eq!(a, b);
        let c = take(
            &mut Schedule::new(10_000.0, Arrival::Poisson, 43, 0.0),
            1000,
        );
        assert_ne!(a, c, "another seed, another schedule");
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "offsets never go back");
    }

    #[test]
    fn poisson_gaps_have_the_asked_mean_and_spread() {
        // 100k exponential gaps with mean 100 us: the sample mean is within
        // 2% (its standard error is 0.3%), and the standard deviation of an
        // exponential equals its mean (fixed gaps would give 0).
        let n = 100_000;
        let mut s = Schedule::new(10_000.0, Arrival::Poisson, 7, 0.0);
        let v: Vec<f64> = take(&mut s, n)
            .iter()
            .map(|d| d.as_nanos() as f64)
            .collect();
        let gaps: Vec<f64> = std::iter::once(v[0])
            .chain(v.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 100_000.0).abs() < 2_000.0, "mean gap {mean} ns");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "sd/mean {}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn arrival_parses() {
        assert_eq!("poisson".parse::<Arrival>().unwrap(), Arrival::Poisson);
        assert!("uniform".parse::<Arrival>().is_err());
    }
}
