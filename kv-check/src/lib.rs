//! kv-check: proves (or refutes) that a check-mode run was linearizable.
//! [`load`] reads the clients' history files ([`kv_core::history`]) into
//! compact records, [`check`] tests each key as a register (Gibbons &
//! Korach's zone method), [`stream`] does the same in bounded memory
//! (partitions of keys, records spilled between two passes by [`spill`]),
//! [`failure`] keeps what a failing key's report needs, [`report`] prints
//! the verdict and a counterexample, [`witness`] draws each failing key as
//! an HTML page, and [`synth`] makes synthetic histories for benchmarks.

pub mod check;
pub mod failure;
pub mod load;
pub mod report;
mod spill;
pub mod stream;
pub mod synth;
pub mod witness;

pub use check::{check, Initial, Summary, Violation};
pub use failure::Failure;
pub use load::{load_files, load_texts, InputError, Loaded};
