//! `cluster.json`, the run manifest. The types live in kv-core (kv-dash
//! reads them too); kv-run keeps this path so its modules and tests are
//! unchanged.

pub use kv_core::manifest::*;
