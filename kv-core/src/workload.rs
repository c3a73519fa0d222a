//! The YCSB workload generator: an exact port of the course's reference
//! generator (xorshift64 + Gray et al. Zipfian), reproduced bit for bit.
//!
//! Every op consumes exactly two draws from the thread's xorshift state: the
//! key first, then the read/write choice. Golden vectors in
//! `kv-core/tests/fixtures/` pin the stream seed for seed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Records in the benchmark's key space (keys `0..RECORD_COUNT`).
pub const RECORD_COUNT: u64 = 1_000_000;
/// Size of every value written by the benchmark.
pub const VALUE_LEN: usize = 128;

/// xorshift64 with shifts (13, 7, 17); a seed of 0 becomes 1.
#[derive(Debug, Clone)]
pub struct Xorshift64 {
    state: u64,
}

impl Xorshift64 {
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 { 1 } else { seed },
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }
}

/// The standard YCSB core workloads the benchmark knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Workload {
    /// 50% reads, 50% updates.
    #[serde(rename = "YCSB-A")]
    A,
    /// 95% reads, 5% updates.
    #[serde(rename = "YCSB-B")]
    B,
    /// 100% reads.
    #[serde(rename = "YCSB-C")]
    C,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::A, Workload::B, Workload::C];

    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "YCSB-A",
            Workload::B => "YCSB-B",
            Workload::C => "YCSB-C",
        }
    }

    /// Share of reads in the workload.
    pub fn read_fraction(self) -> f64 {
        match self {
            Workload::A => 0.50,
            Workload::B => 0.95,
            Workload::C => 1.0,
        }
    }

    fn read_rule(self) -> ReadRule {
        match self {
            // The reference computes floor(p * 2^64) in f64, exactly as here.
            // For p = 1.0 that overflows u64 in Go (yielding 2^63): YCSB-C is
            // 100% reads by definition, so it gets its own rule instead.
            Workload::C => ReadRule::AlwaysRead,
            w => ReadRule::Below((w.read_fraction() * 18_446_744_073_709_551_616.0) as u64),
        }
    }
}

impl Workload {
    /// The one spelling of a workload name (`ycsb-a`, `a` → `YCSB-A`);
    /// a name that is no known workload is kept as it is.
    pub fn canonical(name: &str) -> String {
        name.parse::<Workload>()
            .map_or_else(|_| name.to_string(), |w| w.name().to_string())
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "YCSB-A" | "A" => Ok(Workload::A),
            "YCSB-B" | "B" => Ok(Workload::B),
            "YCSB-C" | "C" => Ok(Workload::C),
            _ => Err(ConfigError::UnknownWorkload(s.to_string())),
        }
    }
}

/// How the second draw of an op picks read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadRule {
    /// Read when the draw is below this threshold.
    Below(u64),
    /// Every op reads (the draw is still consumed).
    AlwaysRead,
}

/// Zipfian skew, validated to lie strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Theta(f64);

impl Theta {
    pub fn new(theta: f64) -> Result<Self, ConfigError> {
        if theta.is_finite() && theta > 0.0 && theta < 1.0 {
            Ok(Self(theta))
        } else {
            Err(ConfigError::ThetaOutOfRange(theta))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Theta {
    type Error = ConfigError;
    fn try_from(v: f64) -> Result<Self, ConfigError> {
        Theta::new(v)
    }
}

impl From<Theta> for f64 {
    fn from(t: Theta) -> f64 {
        t.0
    }
}

impl FromStr for Theta {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| ConfigError::BadNumber("theta", s.to_string()))?;
        Theta::new(v)
    }
}

impl fmt::Display for Theta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Constants of the Gray et al. Zipfian distribution for one (n, theta).
/// Computing `zetan` costs n `powf` calls, so it is done once and the result
/// cloned into every generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    /// `1 + 0.5^theta`: below this (scaled) the key is 1.
    half_pow_theta_plus_one: f64,
}

impl Zipfian {
    pub fn new(n: u64, theta: Theta) -> Self {
        let theta = theta.get();
        let n_f = n as f64;
        // Summation order matters for bit-exactness: ascending i as the reference does.
        let zetan: f64 = (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum();
        let zeta2 = 1.0 + 1.0 / 2f64.powf(theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n_f).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self {
            n,
            theta,
            alpha,
            zetan,
            eta,
            half_pow_theta_plus_one: 1.0 + 0.5f64.powf(theta),
        }
    }

    pub fn zetan(&self) -> f64 {
        self.zetan
    }
    pub fn eta(&self) -> f64 {
        self.eta
    }
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// Maps one raw draw to a key in `0..n`.
    #[inline]
    pub fn key(&self, draw: u64) -> u64 {
        let u = draw as f64 / u64::MAX as f64;
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.half_pow_theta_plus_one {
            return 1;
        }
        let k = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        k % self.n
    }
}

/// Whether an op reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    Get,
    Put,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
        }
    }
}

/// One generated operation: which record, and read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOp {
    pub key: u64,
    pub kind: OpKind,
}

/// The parameters every generator of a run shares.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    pub workload: Workload,
    zipf: Zipfian,
    read_rule: ReadRule,
}

impl WorkloadSpec {
    pub fn new(workload: Workload, theta: Theta) -> Self {
        Self::with_records(workload, theta, RECORD_COUNT)
    }

    pub fn with_records(workload: Workload, theta: Theta, records: u64) -> Self {
        Self {
            workload,
            zipf: Zipfian::new(records, theta),
            read_rule: workload.read_rule(),
        }
    }

    pub fn zipfian(&self) -> &Zipfian {
        &self.zipf
    }

    /// The threshold the reference prints in its vector headers
    /// (`u64::MAX` for YCSB-C, where every op reads).
    pub fn read_threshold(&self) -> u64 {
        match self.read_rule {
            ReadRule::Below(t) => t,
            ReadRule::AlwaysRead => u64::MAX,
        }
    }

    /// A generator seeded with exactly `seed`.
    pub fn generator(&self, seed: u64) -> Generator {
        Generator {
            rng: Xorshift64::new(seed),
            spec: self.clone(),
        }
    }
}

/// One thread's op stream.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Xorshift64,
    spec: WorkloadSpec,
}

impl Generator {
    #[inline]
    pub fn next_op(&mut self) -> GenOp {
        let key = self.spec.zipf.key(self.rng.next_u64());
        let draw = self.rng.next_u64();
        let kind = match self.spec.read_rule {
            ReadRule::Below(t) if draw >= t => OpKind::Put,
            _ => OpKind::Get,
        };
        GenOp { key, kind }
    }
}

impl Iterator for Generator {
    type Item = GenOp;
    fn next(&mut self) -> Option<GenOp> {
        Some(self.next_op())
    }
}

/// Seed of generator thread `thread` in a run seeded with `base` (wrapping).
pub fn thread_seed(base: u64, thread: u64) -> u64 {
    base.wrapping_add(thread)
}

/// Writes the decimal text of `key` (its wire form) into `buf`, returning the used part.
#[inline]
pub fn key_text(key: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut k = key;
    loop {
        i -= 1;
        buf[i] = b'0' + (k % 10) as u8;
        k /= 10;
        if k == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_zero_seed_is_one() {
        assert_eq!(Xorshift64::new(0).next_u64(), Xorshift64::new(1).next_u64());
    }

    #[test]
    fn theta_bounds() {
        assert!(Theta::new(0.0).is_err());
        assert!(Theta::new(1.0).is_err());
        assert!(Theta::new(-0.5).is_err());
        assert!(Theta::new(f64::NAN).is_err());
        assert!(Theta::new(0.99).is_ok());
        assert!("1.5".parse::<Theta>().is_err());
        assert!("abc".parse::<Theta>().is_err());
    }

    #[test]
    fn workload_names_parse() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        }
        assert!("YCSB-Z".parse::<Workload>().is_err());
    }

    #[test]
    fn ycsb_c_reads_only_and_keeps_the_key_stream() {
        let theta = Theta::new(0.99).unwrap();
        let b = WorkloadSpec::new(Workload::B, theta);
        let c = WorkloadSpec::new(Workload::C, theta);
        let (gb, gc) = (b.generator(9), c.generator(9));
        for (ob, oc) in gb.zip(gc).take(100_000) {
            assert_eq!(ob.key, oc.key);
            assert_eq!(oc.kind, OpKind::Get);
        }
    }

    #[test]
    fn key_text_is_decimal() {
        let mut b = [0u8; 20];
        assert_eq!(key_text(0, &mut b), b"0");
        assert_eq!(key_text(4004, &mut b), b"4004");
        assert_eq!(key_text(u64::MAX, &mut b), u64::MAX.to_string().as_bytes());
    }
}
