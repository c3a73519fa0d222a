#!/usr/bin/env bash
# Memory of a profiled kv-server (1M records) under load and while it writes
# its profile at exit: VmHWM of the server and of its symbolising child,
# sampled every 20 ms. Prints one line. Usage: scripts/profile-exit-peak.sh [BIN_DIR]
# (default target/release; build with `cargo build --release` first).
set -euo pipefail
BIN="${1:-$(dirname "$0")/../target/release}"
[ -x "$BIN/kv-server" ] && [ -x "$BIN/kv-client" ] || { echo "no kv-server/kv-client in $BIN" >&2; exit 2; }
dir=$(mktemp -d)
"$BIN/kv-server" --port 0 --profile "$dir/srv" >"$dir/srv.out" 2>"$dir/srv.err" &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do grep -q "Starting KVS server" "$dir/srv.out" && break; sleep 0.1; done
addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$dir/srv.out" | head -1)
[ -n "$addr" ] || { echo "kv-server did not start: $(tail -1 "$dir/srv.err")" >&2; exit 1; }
# Ready means listening; the preload is done before that.
"$BIN/kv-client" --hosts "$addr" --secs 3 >"$dir/client.out" 2>&1
hwm() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || true; }
load=$(hwm "$pid")
kill -TERM "$pid"
exit_peak=$load child=0
while [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
    h=$(hwm "$pid"); [ -n "$h" ] && exit_peak=$h
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        h=$(hwm "$c"); [ -n "$h" ] && [ "$h" -gt "$child" ] && child=$h
    done
    sleep 0.02
done
wait "$pid" || { echo "kv-server failed: $(tail -1 "$dir/srv.err")" >&2; exit 1; }
files=$(ls "$dir" | grep -c '^srv\.\(svg\|pb\|folded\)$' || true)
echo "server VmHWM under load ${load} MB, at exit ${exit_peak} MB; symbolising child peak ${child} MB; profile files ${files}/3"
