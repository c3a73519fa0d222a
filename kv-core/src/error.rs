//! Errors of kv-core's pure parts (configuration and parsing).

use thiserror::Error;

/// A configuration value that cannot be used, named so the user can fix it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    #[error("theta must be strictly between 0 and 1, got {0}")]
    ThetaOutOfRange(f64),
    #[error("unknown workload '{0}' (expected YCSB-A, YCSB-B or YCSB-C)")]
    UnknownWorkload(String),
    #[error("{0}: '{1}' is not a number")]
    BadNumber(&'static str, String),
    #[error("malformed host '{0}': expected HOST:PORT")]
    BadHost(String),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}
