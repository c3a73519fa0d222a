//! How a run ended.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a run ended. A failed run is recorded with its reason and never
/// with a throughput figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunStatus {
    #[default]
    Ok,
    Failed(String),
}

impl RunStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, RunStatus::Ok)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Ok => f.write_str("ok"),
            RunStatus::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "ok" {
            return Ok(RunStatus::Ok);
        }
        match s.strip_prefix("failed") {
            Some(rest) => Ok(RunStatus::Failed(
                rest.trim_start_matches(':').trim().to_string(),
            )),
            None => Err(format!("status '{s}' is neither 'ok' nor 'failed: reason'")),
        }
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
