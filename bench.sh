#!/usr/bin/env bash
# The benchmark: builds release binaries, then kv-bench measures the in-process
# ceiling, kvlab 1 server + 1 client (YCSB-B/A/C), profiling cost and Redis,
# and prints the table. `./bench.sh --quick` is the short regression guard.
# All flags: ./bench.sh --help
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet -p kv-server -p kv-client -p kv-bench
exec "${CARGO_TARGET_DIR:-target}/release/kv-bench" "$@"
