//! The real kv-server binary enforces its limits with error replies and
//! keeps serving.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kv_core::rpc::{KvError, Op};
use kv_core::transport::{connect, context_with_timeout, ConnectOptions};
use kv_testkit::ServerProc as Server;

#[test]
fn oversized_batch_key_and_value_are_refused_and_the_connection_survives() {
    let server = Server::start(&[
        "--preload",
        "0",
        "--max-batch-ops",
        "4",
        "--max-key-bytes",
        "8",
        "--max-value-bytes",
        "16",
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = connect(&server.addr, &ConnectOptions::default())
            .await
            .unwrap();
        let ctx = || context_with_timeout(Duration::from_secs(5));
        let get = |k: &'static [u8]| Op::Get {
            key: Bytes::from_static(k),
        };
        let five = vec![get(b"1"), get(b"2"), get(b"3"), get(b"4"), get(b"5")];
        assert_eq!(
            c.batch(ctx(), five).await.unwrap(),
            Err(KvError::BatchTooLarge { ops: 5, max: 4 })
        );
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"123456789"))
                .await
                .unwrap(),
            Err(KvError::KeyTooLarge { len: 9, max: 8 })
        );
        assert_eq!(
            c.put(ctx(), Bytes::from_static(b"k"), Bytes::from(vec![0u8; 17]))
                .await
                .unwrap(),
            Err(KvError::ValueTooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            c.get(ctx(), Bytes::new()).await.unwrap(),
            Err(KvError::EmptyKey)
        );
        // A refused batch has no partial effect, and the connection still works.
        let mixed = vec![
            Op::Put {
                key: Bytes::from_static(b"a"),
                value: Bytes::from_static(b"1"),
            },
            get(b"123456789"),
        ];
        assert!(c.batch(ctx(), mixed).await.unwrap().is_err());
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"a")).await.unwrap(),
            Ok(None)
        );
        c.put(ctx(), Bytes::from_static(b"a"), Bytes::from_static(b"ok"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c.get(ctx(), Bytes::from_static(b"a")).await.unwrap(),
            Ok(Some(Bytes::from_static(b"ok")))
        );
        assert_eq!(c.stats(ctx()).await.unwrap().failed, 5);
    });
}

#[test]
fn zero_limits_are_rejected_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_kv-server"))
        .args(["--max-batch-ops", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1);
    assert!(err.contains("--max-batch-ops must be at least 1"), "{err}");
}

/// Every upper-bound flag is refused at start with one line and exit 1,
/// before a thread starts or a record is loaded (issue 14 item 6).
#[test]
fn upper_bound_flags_are_refused_with_one_line() {
    for (args, needle) in [
        (
            &["--workers", "100000"][..],
            "--workers must be at most 1024",
        ),
        (
            &["--preload", "99999999999"],
            "--preload 99999999999 needs about",
        ),
        (
            &["--max-connections", "99999999"],
            "--max-connections must be at most",
        ),
        (
            &["--max-in-flight", "99999999"],
            "--max-in-flight must be at most",
        ),
        (
            &["--max-frame-bytes", "99999999999"],
            "--max-frame-bytes must be at most",
        ),
        (
            &["--idle-timeout-secs", "99999999999"],
            "--idle-timeout-secs must be at most",
        ),
    ] {
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kv-server"))
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        // Refused up front, not after preloading or spawning.
        assert!(out.stdout.is_empty(), "{args:?} started serving");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
    }
}
