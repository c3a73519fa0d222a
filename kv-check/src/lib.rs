//! kv-check: proves (or refutes) that a check-mode run was linearizable.
//! [`load`] reads the clients' history files ([`kv_core::history`]) into
//! compact records, [`check`] tests each key as a register (Gibbons &
//! Korach's zone method), [`report`] prints the verdict and a
//! counterexample, [`witness`] draws it as an HTML page, and [`synth`] makes synthetic histories for benchmarks.

pub mod check;
pub mod load;
pub mod report;
pub mod synth;
pub mod witness;

pub use check::{check, Initial, Summary, Violation};
pub use load::{load_files, load_texts, InputError, Loaded};
