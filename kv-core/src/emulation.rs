//! The emulated backend's parameters (`run-cluster.sh --emulate
//! cpus=C[,rtt=R][,rate=B]`): parsed and checked here, recorded in the
//! manifest, the log row's backend label and the config identity. The
//! namespaces, cgroups and qdiscs themselves are scripts/emulate.sh's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an `--emulate` spec was refused.
#[derive(Debug, Error, PartialEq)]
pub enum EmulateSpecError {
    #[error("--emulate: '{0}' is not key=value (expected cpus=C[,rtt=R][,rate=B])")]
    NotKeyValue(String),
    #[error("--emulate: unknown key '{0}' (known: cpus, rtt, rate)")]
    UnknownKey(String),
    #[error("--emulate: {0} given twice")]
    Repeated(&'static str),
    #[error("--emulate needs cpus=C (CPUs per node, e.g. cpus=0.2)")]
    NoCpus,
    #[error("--emulate: cpus must be a number in (0, 64], got '{0}'")]
    BadCpus(String),
    #[error("--emulate: rtt must be a time like 0.2ms, 200us or 1s, got '{0}'")]
    BadRtt(String),
    #[error("--emulate: rate must be a rate like 1gbit, 100mbit or 500kbit, got '{0}'")]
    BadRate(String),
    #[error(
        "--emulate cpus={cpus}: {nodes} nodes need {need} CPUs but this machine has {cores} cores"
    )]
    OverBudget {
        cpus: f64,
        nodes: u32,
        need: f64,
        cores: u32,
    },
}

/// Per-node resources of an emulated run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmulateSpec {
    /// CPU quota of every node, in CPUs (0.2 = 20 ms per 100 ms period).
    pub cpus: f64,
    /// Round-trip time between two nodes, microseconds.
    pub rtt_us: Option<f64>,
    /// Link rate of every node, each direction, bits per second.
    pub rate_bits_per_s: Option<u64>,
}

impl EmulateSpec {
    /// CPU quota in microseconds per `period_us` (what cgroups take).
    pub fn quota_us(&self, period_us: u64) -> u64 {
        ((self.cpus * period_us as f64).round() as u64).max(1000)
    }

    /// Refuses `nodes` nodes whose CPU budget exceeds `cores`: a quota the
    /// machine cannot give is not a quota.
    pub fn check_budget(&self, nodes: u32, cores: u32) -> Result<(), EmulateSpecError> {
        let need = self.cpus * nodes as f64;
        // A hair of slack so 10 × 0.2 fits 2 cores despite rounding.
        if need > cores as f64 + 1e-9 {
            return Err(EmulateSpecError::OverBudget {
                cpus: self.cpus,
                nodes,
                need: (need * 1000.0).round() / 1000.0,
                cores,
            });
        }
        Ok(())
    }
}

/// Microseconds from `200us`, `0.2ms`, `1s` (a bare number is ms, as tc's).
fn parse_time_us(s: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        (s, 1e3)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0 && v * mult <= 10e6).then_some(v * mult)
}

/// Bits per second from tc-style `1gbit`, `100mbit`, `500kbit`, `9600bit`.
fn parse_rate(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(suf, m)| lower.strip_suffix(suf).map(|n| (n.to_string(), *m)))?;
    let v: f64 = num.parse().ok()?;
    let bits = v * mult;
    // Below ~8 kbit/s nothing useful crosses; above 100 Gbit/s a veth is the limit.
    (bits.is_finite() && (8e3..=100e9).contains(&bits)).then_some(bits.round() as u64)
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl FromStr for EmulateSpec {
    type Err = EmulateSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (mut cpus, mut rtt, mut rate) = (None, None, None);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| EmulateSpecError::NotKeyValue(part.to_string()))?;
            match k.trim() {
                "cpus" => {
                    let c: f64 = v
                        .parse()
                        .ok()
                        .filter(|c: &f64| c.is_finite() && *c > 0.0 && *c <= 64.0)
                        .ok_or_else(|| EmulateSpecError::BadCpus(v.to_string()))?;
                    if cpus.replace(c).is_some() {
                        return Err(EmulateSpecError::Repeated("cpus"));
                    }
                }
                "rtt" => {
                    let t = parse_time_us(v).ok_or_else(|| EmulateSpecError::BadRtt(v.into()))?;
                    if rtt.replace(t).is_some() {
                        return Err(EmulateSpecError::Repeated("rtt"));
                    }
                }
                "rate" => {
                    let r = parse_rate(v).ok_or_else(|| EmulateSpecError::BadRate(v.into()))?;
                    if rate.replace(r).is_some() {
                        return Err(EmulateSpecError::Repeated("rate"));
                    }
                }
                other => return Err(EmulateSpecError::UnknownKey(other.to_string())),
            }
        }
        Ok(EmulateSpec {
            cpus: cpus.ok_or(EmulateSpecError::NoCpus)?,
            rtt_us: rtt,
            rate_bits_per_s: rate,
        })
    }
}

/// Canonical form (`cpus=0.2,rtt=200us,rate=1gbit`): the same
/// resources always print the same, so identities compare.
impl fmt::Display for EmulateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpus={}", fmt_num(self.cpus))?;
        if let Some(r) = self.rtt_us {
            if r >= 1000.0 && (r / 1000.0).fract() == 0.0 {
                write!(f, ",rtt={}ms", fmt_num(r / 1000.0))?;
            } else {
                write!(f, ",rtt={}us", fmt_num(r))?;
            }
        }
        if let Some(b) = self.rate_bits_per_s {
            let (v, unit) = [
                (1_000_000_000, "gbit"),
                (1_000_000, "mbit"),
                (1_000, "kbit"),
            ]
            .iter()
            .find(|(m, _)| b % m == 0)
            .map_or((b, "bit"), |(m, u)| (b / m, *u));
            write!(f, ",rate={v}{unit}")?;
        }
        Ok(())
    }
}

/// What an emulated run set up, as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emulation {
    pub spec: EmulateSpec,
    /// Run-specific name prefix of every namespace, link and cgroup
    /// (`kve<hex pid>`); leftovers are found by it.
    pub prefix: String,
    /// The run's /24: the bridge is `.1`, node i is `.(i+2)`.
    pub subnet: String,
}

impl Emulation {
    /// The log row's backend label: `emulated cpus=0.2 rate=1gbit`
    /// (spaces, not commas: the row stays readable as plain CSV).
    pub fn backend_label(&self) -> String {
        format!("emulated {}", self.spec.to_string().replace(',', " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let s: EmulateSpec = "cpus=0.2,rtt=0.2ms,rate=1gbit".parse().unwrap();
        assert_eq!(s.cpus, 0.2);
        assert_eq!(s.rtt_us, Some(200.0));
        assert_eq!(s.rate_bits_per_s, Some(1_000_000_000));
        assert_eq!(s.to_string(), "cpus=0.2,rtt=200us,rate=1gbit");
        let t: EmulateSpec = "cpus=0.50,rtt=2000us,rate=1500kbit".parse().unwrap();
        assert_eq!(t.to_string(), "cpus=0.5,rtt=2ms,rate=1500kbit");
        let again: EmulateSpec = s.to_string().parse().unwrap();
        assert_eq!(again, s);
        let c: EmulateSpec = "cpus=1".parse().unwrap();
        assert_eq!((c.rtt_us, c.rate_bits_per_s), (None, None));
        assert_eq!(c.quota_us(100_000), 100_000);
        assert_eq!(
            "rtt=250us, cpus=0.25"
                .parse::<EmulateSpec>()
                .unwrap()
                .rtt_us,
            Some(250.0)
        );
    }

    #[test]
    fn refuses_bad_specs_by_name() {
        use EmulateSpecError::*;
        let err = |s: &str| s.parse::<EmulateSpec>().unwrap_err();
        assert_eq!(err(""), NoCpus);
        assert_eq!(err("rtt=1ms"), NoCpus);
        assert_eq!(err("cpus=0"), BadCpus("0".into()));
        assert_eq!(err("cpus=x"), BadCpus("x".into()));
        assert_eq!(err("cpus=0.2,cpus=0.3"), Repeated("cpus"));
        assert_eq!(err("cpus=0.2,mem=1g"), UnknownKey("mem".into()));
        assert_eq!(err("cpus"), NotKeyValue("cpus".into()));
        assert_eq!(err("cpus=1,rtt=-1ms"), BadRtt("-1ms".into()));
        assert_eq!(err("cpus=1,rate=fast"), BadRate("fast".into()));
        assert_eq!(err("cpus=1,rate=1gbps"), BadRate("1gbps".into()));
    }

    #[test]
    fn budget_is_nodes_times_cpus_against_cores() {
        let s: EmulateSpec = "cpus=0.2".parse().unwrap();
        assert!(s.check_budget(8, 2).is_ok());
        assert!(s.check_budget(10, 2).is_ok(), "exactly the cores fits");
        let e = s.check_budget(12, 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "--emulate cpus=0.2: 12 nodes need 2.4 CPUs but this machine has 2 cores"
        );
    }
}
