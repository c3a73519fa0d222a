//! `--profile` on the real server: after a loaded run and SIGTERM it leaves
//! a flamegraph, a pprof protobuf that decodes, and folded stacks, and they
//! name the functions of our request path.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::rpc::Op;
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};

#[test]
fn profile_files_name_our_request_path() {
    let dir = kv_testkit::TempDir::new("profile");
    let prefix = dir.0.join("server-node0");
    let mut server =
        common::Server::start(&["--preload", "100000", "--profile", prefix.to_str().unwrap()]);
    common::rt().block_on(async {
        let c = connect(&server.addr, &ConnectOptions::default())
            .await
            .unwrap();
        // Bounded load: 1.5 s of 1024-op batches, so the profiler sees the request path.
        let end = Instant::now() + Duration::from_millis(1500);
        let mut k = 0u64;
        while Instant::now() < end {
            let ops: Vec<Op> = (0..1024)
                .map(|_| {
                    k = (k + 7919) % 100_000;
                    Op::Get {
                        key: Bytes::from(k.to_string()),
                    }
                })
                .collect();
            let res = c
                .batch(context_with_timeout(Duration::from_secs(5)), ops)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(res.len(), 1024);
        }
    });
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("server stops on SIGTERM");
    assert!(status.success(), "{status:?}: {}", server.stderr_text());
    // Symbolised in a child (kv_core::symbolize), whose raw input is gone.
    assert!(
        !server.stderr_text().contains("symbolising here"),
        "{}",
        server.stderr_text()
    );

    let ext = |e: &str| dir.0.join(format!("server-node0.{e}"));
    assert!(!ext("raw").exists(), "raw profile left behind");
    let svg = std::fs::read_to_string(ext("svg")).unwrap();
    assert!(svg.contains("<svg"), "not an svg");
    let folded = std::fs::read_to_string(ext("folded")).unwrap();
    assert!(
        folded
            .lines()
            // Frames are named module::name (kv_core::folded), inlined
            // ones marked `_[i]`.
            .any(|l| l
                .split(';')
                .any(|f| f.trim_end_matches("_[i]") == "kv_store::store::apply")),
        "folded stacks never show kv_store::store::apply"
    );
    assert!(folded.lines().all(|l| l
        .rsplit_once(' ')
        .is_some_and(|(_, n)| n.parse::<u64>().is_ok())));
    let pb = kv_core::profile::read_pb(&ext("pb")).expect(".pb decodes");
    assert!(pb.samples > 0, "no samples");
    assert!(
        pb.functions.iter().any(|f| f == "apply"),
        "pb functions lack apply"
    );
}
