//! `summary.json` and JSON helpers.

use std::fs::{self};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::*;

/// `summary.json`: the run's log row plus per-node figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub record: RunRecord,
    pub nodes: Vec<NodeSummary>,
}

/// Writes any serializable value as pretty JSON (config.json, summary.json).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunLogError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| RunLogError::malformed(path, 0, e.to_string()))?;
    fs::write(path, text + "\n").map_err(|e| RunLogError::io(path, e))
}

/// Reads a JSON file written by [`write_json`].
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunLogError> {
    let text = fs::read_to_string(path).map_err(|e| RunLogError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| RunLogError::malformed(path, e.line() as u64, e.to_string()))
}
