//! Check mode on real runs: the real kv-server and two kv-client processes
//! on loopback write histories that kv-check must pass, and a server built
//! with the `fault-stale-reads` bug must be caught with a counterexample.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use kv_testkit::{bin, ServerProc, TempDir};

const CHECK: &str = env!("CARGO_BIN_EXE_kv-check");

/// Two client processes with distinct ids and seeds, YCSB-A at theta 0.99
/// against a server preloaded with all 1M records (every key starts `init`):
/// the hot keys see many concurrent puts and gets.
fn run_clients(addr: &str, dir: &Path) -> Vec<PathBuf> {
    run_clients_env(addr, dir, &[&[], &[]])
}

/// Test-only skew: client 0 plays a host whose clock is 5 ms ahead, client
/// 1 one 3 ms behind, each with its own boot id.
const SKEWED: [&[(&str, &str)]; 2] = [
    &[
        ("KVLAB_TEST_CLOCK_SKEW_NS", "5000000"),
        ("KVLAB_TEST_BOOT_ID", "00000000-0000-0000-0000-00000000000a"),
    ],
    &[
        ("KVLAB_TEST_CLOCK_SKEW_NS", "-3000000"),
        ("KVLAB_TEST_BOOT_ID", "00000000-0000-0000-0000-00000000000b"),
    ],
];

/// Two check-mode clients, client `i` with environment `env[i]`.
fn run_clients_env(addr: &str, dir: &Path, env: &[&[(&str, &str)]; 2]) -> Vec<PathBuf> {
    let children: Vec<(Child, PathBuf)> = (0..2)
        .map(|id| {
            let hist = dir.join(format!("history-{id}.hist"));
            let child = Command::new(bin("kv-client"))
                .args([
                    "--hosts",
                    addr,
                    "--workload",
                    "YCSB-A",
                    "--secs",
                    "1",
                    "--threads",
                    "2",
                ])
                .args([
                    "--batch",
                    "64",
                    "--window",
                    "4",
                    "--client-id",
                    &id.to_string(),
                ])
                .args(["--seed", &(100 + 10 * id).to_string()])
                .arg("--check")
                .arg(&hist)
                .envs(env[id].iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, hist)
        })
        .collect();
    children
        .into_iter()
        .map(|(child, hist)| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "client failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            hist
        })
        .collect()
}

fn check(histories: &[PathBuf]) -> Output {
    Command::new(CHECK).args(histories).output().unwrap()
}

/// The streaming check (the default) and the in-memory one give the same
/// verdict, word for word, on `histories` with `args`; returns the
/// streaming one's output.
fn check_both_ways(histories: &[PathBuf], args: &[&std::ffi::OsStr]) -> Output {
    let run = |extra: &[&str]| {
        Command::new(CHECK)
            .args(histories)
            .args(args)
            .args(extra)
            .output()
            .unwrap()
    };
    let streaming = run(&[]);
    // Small partitions, all spilled to disk: the most moving parts.
    let spilled = run(&["--partitions", "64", "--spill-memory-mib", "0"]);
    let in_memory = run(&["--in-memory"]);
    for other in [&spilled, &in_memory] {
        assert_eq!(
            (other.status.code(), String::from_utf8_lossy(&other.stdout)),
            (
                streaming.status.code(),
                String::from_utf8_lossy(&streaming.stdout)
            ),
            "{}",
            String::from_utf8_lossy(&other.stderr)
        );
    }
    streaming
}

#[test]
fn a_real_two_client_run_is_linearizable() {
    let server = ServerProc::start(&[]);
    let dir = TempDir::new("check-ok");
    let hist = run_clients(&server.addr, &dir.0);
    let out = check_both_ways(&hist, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("PASS"), "{stdout}");
}

/// The server built with the test-only fault feature, in its own target
/// directory; built once per test process.
fn faulty_server() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = Path::new(CHECK)
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("fault-build");
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "kv-server",
                    "--features",
                    "fault-stale-reads",
                ])
                .arg("--target-dir")
                .arg(&target)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "building the faulty server failed");
            target.join("debug/kv-server")
        })
        .clone()
}

/// A run against the faulty server in `mode` (`KVLAB_FAULT`): the check's
/// exit code and stdout.
fn faulty_run(mode: &str) -> (Option<i32>, String) {
    let (code, stdout, _) = faulty_run_in(mode, &[&[], &[]]);
    (code, stdout)
}

/// [`faulty_run`] with client `i`'s environment `env[i]`, keeping the
/// directory (the witness page is written there).
fn faulty_run_in(mode: &str, env: &[&[(&str, &str)]; 2]) -> (Option<i32>, String, TempDir) {
    let server = ServerProc::start_with_env(&faulty_server(), &[], &[("KVLAB_FAULT", mode)]);
    let dir = TempDir::new(&format!("check-fault-{mode}"));
    let hist = run_clients_env(&server.addr, &dir.0, env);
    let out = check_both_ways(&hist, &["--witness-dir".as_ref(), dir.0.as_os_str()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        dir,
    )
}

#[test]
fn stale_reads_from_a_faulty_server_are_caught() {
    let (code, stdout, dir) = faulty_run_in("stale-reads", &[&[], &[]]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("FAIL: key "), "{stdout}");
    // The witness page of the failing key names the ops the verdict lists.
    let key: u64 = stdout["FAIL: key ".len()..]
        .split(':')
        .next()
        .and_then(|k| k.parse().ok())
        .expect("key in the verdict");
    let page = dir.0.join(format!("witness-key-{key}.html"));
    assert!(
        stdout.contains(&format!("witness: {}", page.display())),
        "{stdout}"
    );
    let ops: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("client "))
        .filter_map(|l| l.split("   ").next())
        .collect();
    assert!(!ops.is_empty(), "{stdout}");
    let ops: Vec<String> = ops.iter().map(|o| format!("client {o}")).collect();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&format!("<h1>FAIL: key {key}</h1>")));
    for op in &ops {
        assert!(
            html.contains(&format!(r#"<tr class="conflict"><td>{op}</td>"#)),
            "{op} not in the witness"
        );
    }
    assert!(
        html.len() < 200_000,
        "the witness is the window, not the history"
    );
    // Every failing key up to the bound has its page.
    if let Some(line) = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("witness pages: "))
    {
        let keys = line
            .split("(keys ")
            .nth(1)
            .and_then(|k| k.split(')').next())
            .expect(line);
        for k in keys.split(", ") {
            let page = dir.0.join(format!("witness-key-{k}.html"));
            let html = std::fs::read_to_string(&page)
                .unwrap_or_else(|e| panic!("{}: {e}", page.display()));
            assert!(html.contains(&format!("<h1>FAIL: key {k}</h1>")));
        }
    }
}

/// Issue 17 item 8: a server answering a get with another key's
/// preloaded value is caught (the client records `init:K`, not `init`).
#[test]
fn another_keys_initial_value_from_a_faulty_server_is_caught() {
    let (code, stdout) = faulty_run("foreign-init");
    assert_eq!(code, Some(1), "{stdout}");
    let first = stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with("FAIL: key ")
            && first.contains("a get read another key's preloaded value"),
        "{stdout}"
    );
    assert!(stdout.contains(": get init:"), "{stdout}");
}

/// Issue 17 item 8: a put answered with a value is recorded as such and fails.
#[test]
fn a_wrong_kind_reply_from_a_faulty_server_is_caught() {
    let (code, stdout) = faulty_run("wrong-kind");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("the server answered a put with a value, not 'stored'"),
        "{stdout}"
    );
    assert!(stdout.contains(", wrong-kind"), "{stdout}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Issue 20 item 11, tested at the server: one generator thread, one
/// connection, up to 8 batches in flight. Each key's final value at the
/// server must be the put of that key generated last (highest seq): a
/// client sending batches out of order, or a server applying a
/// connection's batches concurrently, leaves an earlier put on some hot key.
#[test]
fn pipelined_batches_are_applied_in_generation_order() {
    use kv_core::history::{read_history, Action, Outcome};
    use kv_core::value::{identify, ValueKind};
    let server = ServerProc::start(&["--preload", "0"]);
    let dir = TempDir::new("check-order");
    let hist = dir.0.join("history.csv");
    let out = Command::new(bin("kv-client"))
        .args([
            "--hosts",
            &server.addr,
            "--workload",
            "YCSB-A",
            "--secs",
            "1",
        ])
        .args([
            "--threads",
            "1",
            "--connections",
            "1",
            "--window",
            "8",
            "--batch",
            "16",
        ])
        .args(["--seed", "3", "--client-id", "0"])
        .arg("--check")
        .arg(&hist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = read_history(&hist).unwrap();
    assert!(h.complete);
    // Last put of each key, by generation order (seq).
    let mut last: std::collections::HashMap<u64, (u64, kv_core::value::ValueId, u32)> =
        Default::default();
    for op in &h.ops {
        if let Action::Put(id) = op.action {
            assert_eq!(op.outcome, Outcome::Ok);
            let e = last.entry(op.key).or_insert((op.seq, id, 0));
            if op.seq >= e.0 {
                (e.0, e.1) = (op.seq, id);
            }
            e.2 += 1;
        }
    }
    // The test means something only if many keys were written by several
    // batches (a batch holds 16 ops; hot Zipf keys recur across batches).
    let rewritten = last.values().filter(|e| e.2 >= 2).count();
    assert!(rewritten >= 20, "only {rewritten} keys written twice");
    runtime().block_on(async {
        let c = kv_core::transport::connect(&server.addr, &Default::default())
            .await
            .unwrap();
        let keys: Vec<u64> = last.keys().copied().collect();
        for chunk in keys.chunks(512) {
            let ops = chunk
                .iter()
                .map(|k| kv_core::rpc::Op::Get {
                    key: bytes::Bytes::from(k.to_string()),
                })
                .collect();
            let ctx = kv_core::transport::context_with_timeout(std::time::Duration::from_secs(10));
            let results = c.batch(ctx, ops).await.unwrap().unwrap();
            for (k, r) in chunk.iter().zip(results) {
                let kv_core::rpc::OpResult::Value(Some(v)) = r else {
                    panic!("key {k}: {r:?}");
                };
                let want = last[k].1;
                assert_eq!(
                    identify(k.to_string().as_bytes(), &v),
                    ValueKind::Written(want),
                    "key {k}: the server holds another put than the last generated ({want})"
                );
            }
        }
    });
}

/// Issue 20 item 11: a server killed mid-run. The client fails, and its
/// history still ends with its end line, the puts in flight recorded as
/// `unknown`; the history checks (the store was fine until it died).
#[test]
fn a_server_dying_mid_run_leaves_unknown_puts_and_an_end_line() {
    use kv_core::history::{read_history, Action, Outcome};
    let mut server = ServerProc::start(&[]);
    let dir = TempDir::new("check-dies");
    let hist = dir.0.join("history.csv");
    let mut client = Command::new(bin("kv-client"))
        .args([
            "--hosts",
            &server.addr,
            "--workload",
            "YCSB-A",
            "--secs",
            "60",
        ])
        .args([
            "--threads",
            "2",
            "--window",
            "8",
            "--batch",
            "64",
            "--rpc-timeout",
            "2",
        ])
        .arg("--check")
        .arg(&hist)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the client has recorded ops, then kill the server.
    let started = std::time::Instant::now();
    while std::fs::metadata(&hist).map_or(0, |m| m.len()) < 2 << 20 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no history written"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kv_testkit::signal(server.pid(), "KILL");
    let status = kv_testkit::wait_timeout(&mut client, std::time::Duration::from_secs(30))
        .expect("client did not exit after its server died");
    assert_eq!(status.code(), Some(1));
    server.wait_exit(std::time::Duration::from_secs(5));
    let h = read_history(&hist).unwrap();
    assert!(h.complete, "the history has no end line");
    let unknown_puts = h
        .ops
        .iter()
        .filter(|o| matches!(o.action, Action::Put(_)) && o.outcome == Outcome::Unknown)
        .count();
    assert!(unknown_puts > 0, "no put recorded as unknown");
    let out = check(&[hist]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 17: clients on "hosts" with clocks 5 ms ahead and 3 ms behind
/// (test-only skew, different boot ids) against a correct server: the
/// histories are mapped onto the server's clock and pass, with ε reported.
#[test]
fn skewed_hosts_pass_against_a_correct_server_with_epsilon_reported() {
    let server = ServerProc::start(&[]);
    let dir = TempDir::new("check-skew-ok");
    let hist = run_clients_env(&server.addr, &dir.0, &SKEWED);
    for h in &hist {
        assert!(
            kv_core::clock::clock_path(h).exists(),
            "no clock samples beside {}",
            h.display()
        );
    }
    let out = check_both_ways(&hist, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("PASS"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("clocks: "))
        .expect(&stdout);
    assert!(
        line.contains("ε median ") && line.contains(" precedence edges (adjacent ops of a key"),
        "{line}"
    );
    // Without the samples the same histories are refused, as before.
    for h in &hist {
        std::fs::remove_file(kv_core::clock::clock_path(h)).unwrap();
    }
    let out = check(&hist);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recorded on another machine"));
}

/// The same skewed hosts against the stale-read server: still caught, with
/// a witness page on the reference clock.
#[test]
fn skewed_hosts_still_catch_stale_reads() {
    let (code, stdout, _dir) = faulty_run_in("stale-reads", &SKEWED);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("FAIL: key "), "{stdout}");
    assert!(stdout.contains("\nclocks: "), "{stdout}");
    let page = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("witness: "))
        .expect(&stdout);
    let html = std::fs::read_to_string(page).unwrap();
    assert!(
        html.contains("times are on the reference clock"),
        "clock note"
    );
    assert!(html.contains(r#"class="eps""#), "ε whiskers");
}
