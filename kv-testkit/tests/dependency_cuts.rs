//! The workspace's dependency cuts (issue 13): the tools that only read runs
//! do not link the load generator, and the load generator does not link the
//! server. Read from `cargo tree` itself, so a new path back (through any
//! crate, normal, build or dev dependency) fails here.

use std::collections::BTreeSet;
use std::process::Command;

/// Every workspace crate `package` reaches, as `cargo tree` lists them.
fn reaches(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "-e",
            "all",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("kv-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn run_tools_do_not_link_the_client_and_the_client_not_the_server() {
    for (package, banned) in [
        ("kv-dash", "kv-client"),
        ("kv-run", "kv-client"),
        ("kv-client", "kv-server"),
    ] {
        let deps = reaches(package);
        assert!(
            deps.contains(package),
            "cargo tree -p {package} does not list {package}: {deps:?}"
        );
        assert!(
            !deps.contains(banned),
            "cargo tree -p {package} shows {banned}: {deps:?}"
        );
    }
}

#[test]
fn the_store_is_reached_by_both_server_and_client() {
    assert!(reaches("kv-server").contains("kv-store"));
    assert!(reaches("kv-client").contains("kv-store"));
}
