//! Helpers for tests that start the real binaries on loopback.

#![allow(dead_code, unused_imports)]

use std::process::{Command, Output};

pub const CLIENT: &str = env!("CARGO_BIN_EXE_kv-client");

pub use kv_testkit::{signal, wait_timeout, ServerProc as Server};

/// Runs kv-client to completion with the given args (bounded by `--secs`).
pub fn client(args: &[&str]) -> Output {
    Command::new(CLIENT)
        .args(args)
        .output()
        .expect("run kv-client")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The number after `prefix` on the line that starts with it.
pub fn field(out: &str, prefix: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
