#!/usr/bin/env bash
# The benchmark: builds release binaries, then kv-bench measures the in-process
# ceiling, kvlab 1 server + 1 client (YCSB-B/A/C), profiling cost and Redis,
# and prints the table. `./bench.sh --quick` is the short regression guard.
# `./bench.sh --against REV` also builds REV's binaries in a git worktree
# beside this tree (removed afterwards) and measures both builds in
# alternating rounds. All flags: ./bench.sh --help
set -euo pipefail
cd "$(dirname "$0")"
target=${CARGO_TARGET_DIR:-target}

against=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --against)
            [ $# -ge 2 ] || { echo "bench.sh: --against needs a revision" >&2; exit 2; }
            against=$2; shift 2 ;;
        --against=*) against=${1#--against=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

cargo build --release --quiet -p kv-server -p kv-client -p kv-bench

if [ -n "$against" ]; then
    rev=$(git rev-parse --verify --quiet "$against^{commit}") \
        || { echo "bench.sh: --against: not a commit: $against" >&2; exit 2; }
    short=$(git rev-parse --short=12 "$rev")
    wt="$(cd .. && pwd)/$(basename "$PWD")-against-$short"
    bins=$(mktemp -d)
    cleanup() {
        git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
        git worktree prune
        rm -rf "$bins"
    }
    trap cleanup EXIT
    git worktree add --detach --quiet "$wt" "$rev"
    # A target dir of its own, kept between invocations so the next --against
    # only rebuilds what differs; seeded once from this tree's release build
    # so dependencies are not all compiled again.
    against_target="$PWD/$target/against"
    if [ ! -d "$against_target/release" ]; then
        mkdir -p "$against_target"
        cp -a "$target/release" "$against_target/release"
    fi
    echo "bench.sh: building $short in $wt"
    (cd "$wt" && CARGO_TARGET_DIR="$against_target" cargo build --release --quiet -p kv-server -p kv-client)
    cp "$against_target/release/kv-server" "$against_target/release/kv-client" "$bins/"
    # Not exec: the trap removes the worktree and the copied binaries afterwards.
    "$target/release/kv-bench" --against-bin-dir "$bins" --against-label "$short" ${args[@]+"${args[@]}"}
else
    exec "$target/release/kv-bench" ${args[@]+"${args[@]}"}
fi
