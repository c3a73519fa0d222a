#!/usr/bin/env bash
# run-cluster.sh: run one kvlab experiment (servers + load-generating
# clients), locally by default, on CloudLab, or on SSH hosts; print the
# course-style report and record the run under experiments/.
#
# This script only starts and stops processes. Planning (nodes, ports,
# seeds, command lines), readiness, live stats, the report and the record
# are `kv-run` subcommands. See docs/run-cluster.md.

set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<EOF
Usage: $0 [options] [server_count] [client_count] [server_args] [client_args]

  server_count  positive integer: kv-server processes (default: 1 locally,
                half of the nodes on CloudLab / in the hosts file)
  client_count  positive integer: kv-client processes (default: 1 locally,
                the remaining nodes otherwise)
  server_args   one quoted string passed to every kv-server (e.g. "--preload 100000")
  client_args   one quoted string passed to every kv-client (e.g. "--workload YCSB-A --batch 256")

Options (before the positional arguments):
  --secs N           seconds of load per client (default 30; a --secs in client_args wins)
  --warmup S         seconds after load start left out of the steady-state figure
                     (default 2; recorded as warmup_s; see docs/figures.md)
  --backend B        local | cloudlab | hosts | emulated (default: hosts with --hosts-file,
                     emulated with --emulate, cloudlab when tmcc or geni-get exists, else local)
  --emulate cpus=C[,rtt=R][,rate=B]
                     emulated cluster on this machine (root): each node in its own
                     network namespace and CPU-quota cgroup, C CPUs each, link rate B
                     (e.g. 1gbit); rtt needs netem (docs/run-cluster.md)
  --scale 1,2,4      with --emulate: scaling study, S servers + S clients per size,
                     one series, chart of throughput vs servers with the ideal line;
                     no counts then, only -- [server_args] [client_args]
  --hosts-file FILE  SSH hosts, one 'host' or 'user@host[:sshport]' a line, '#' comments
  --ssh-config FILE  ssh client config used for every ssh/scp (ssh -F; env KVLAB_SSH_CONFIG)
  --remote-dir DIR   per-run directory on remote hosts (default /tmp/kvlab;
                     absolute, letters, digits and / . _ - only)
  --base-port N      remote backends: node i listens on N+i (default 8080)
  --preflight        remote backends: discover and probe the nodes (reachable, same
                     binaries, free ports, clock offset, cores), print the table, exit
  --copy             copy binaries to the nodes even when they share this directory
  --known-hosts FILE cloudlab: host keys accepted on first use go to FILE
                     (default: known_hosts in the run's log directory)
  --no-build         do not build; use binaries in the bin dir as they are
  --no-dash          plain progress lines instead of the kv-dash live view
  --no-profile       do not ask servers and clients for pprof profiles
  --note TEXT        free text stored with the run in experiments/log.csv
  --tag TEXT         label grouping runs (kv-run plot-scaling --tag TEXT)
  --check            check mode: clients record op histories (history-<node>.hist),
                     then kv-check verifies the run was linearizable
  --keep-histories   with --check: keep the histories of a passing run too
                     (a failing run always keeps them)
  --ready-timeout N  seconds to wait for every server to answer a ping (default 60)
  --sweep-rate F%:T%:S%  latency-throughput curve: a closed-loop run for the maximum,
                     then open-loop runs at F%..T% of it in steps of S% (split across
                     clients), one series; curve SVG with the knee (docs/open-loop.md)
  --slo-us N         with --sweep-rate: the knee's p99 bound (default 2x the lowest step's p99)
  --open-args "ARGS" with --sweep-rate: client args for the open-loop steps only
                     (e.g. "--flush-us 1000 --arrival poisson"); client_args go to every step
  --trials N         run N trials (fresh processes each, one run folder each,
                     one series id); 5 is the recommendation for comparisons
  --against REV      A/B: side A is git revision REV built in a worktree
                     (target/against/), side B this tree; trials alternate A B A B
  --ab "ARGS A" "ARGS B"
                     A/B on the same binaries: client args ARGS A vs ARGS B
                     (appended to client_args), alternating A B A B
  -h, --help         this help

Environment:
  KVLAB_BIN_DIR          prebuilt kv-server/kv-client/kv-run (implies --no-build)
  CARGO_TARGET_DIR       where cargo builds (binaries from its release/ folder)
  KVLAB_EXPERIMENTS_DIR  where log.csv and runs/ go (default: experiments/)
  KVLAB_LOG_ROOT         where logs/<timestamp>/ go (default: logs/)
  KVLAB_BUILD_PROFILE    cargo profile of the builds, also --against's (default release)
  KVLAB_AGAINST_DIR      where --against worktrees and their build go (default target/against)

Examples:
  $0 1 7                                   # 1 server, 7 clients on this machine
  $0 --secs 10 2 2                         # 2 servers, 2 clients, 10 s
  $0 1 2 "--preload 100000" "--workload YCSB-A --theta 0.5"
  $0 --note "batch sweep" --tag batch 1 3 "" "--batch 256"
  $0 --hosts-file hosts.txt 2 4            # over SSH
  $0 --trials 5 --secs 10 1 3              # 5 trials of one config
  $0 --trials 5 --against HEAD~1 1 3       # did my change help? (A = HEAD~1, B = this tree)
  $0 --trials 5 --ab "--batch 1024" "--batch 64" 1 3
  $0 4 4                                   # on CloudLab (node0..node7)
  $0 --preflight                           # CloudLab: check every node, start nothing

Exit status: 0 ok, 1 the run failed (named node and log tail printed; recorded
as failed) or could not be recorded (checked before it starts; losses named),
2 bad arguments (server and client args checked before anything starts),
130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (recorded as failed with the
signal named).
EOF
}

die_usage() {
    echo "Error: $*" >&2
    echo >&2
    usage >&2
    exit 2
}

# ---- options -------------------------------------------------------------
SECS=30
WARMUP=2
BACKEND=""
HOSTS_FILE=""
SSH_CONFIG="${KVLAB_SSH_CONFIG:-}"
REMOTE_DIR=/tmp/kvlab
BASE_PORT=8080
PREFLIGHT=0
COPY=0
KNOWN_HOSTS=""
BUILD=1
DASH=1
PROFILE=1
NOTE=""
TAG=""
CHECK=0
KEEP_HISTORIES=0
READY_TIMEOUT=60
SWEEP_RATE=""
EMULATE=""
SCALE=""
SLO_US=""
OPEN_ARGS=""
TRIALS=1
AGAINST=""
AB=()
PASS_OPTS=() # every option but the trial ones, for each trial of `kv-run trials`
ALL_ARGS=("$@")

need() { [ "$#" -ge 2 ] || die_usage "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
    case "$1" in
        --secs | --warmup | --backend | --hosts-file | --ssh-config | --remote-dir | --base-port | --note | --tag | --ready-timeout | --emulate | --known-hosts)
            if [ "$#" -ge 2 ]; then PASS_OPTS+=("$1" "$2"); fi ;;
        --no-build | --no-dash | --no-profile | --check | --keep-histories | --copy) PASS_OPTS+=("$1") ;;
    esac
    case "$1" in
        -h | --help | -help | help) usage; exit 0 ;;
        --secs) need "$@"; SECS="$2"; shift 2 ;;
        --warmup) need "$@"; WARMUP="$2"; shift 2 ;;
        --backend) need "$@"; BACKEND="$2"; shift 2 ;;
        --hosts-file) need "$@"; HOSTS_FILE="$2"; shift 2 ;;
        --ssh-config) need "$@"; SSH_CONFIG="$2"; shift 2 ;;
        --remote-dir) need "$@"; REMOTE_DIR="$2"; shift 2 ;;
        --base-port) need "$@"; BASE_PORT="$2"; shift 2 ;;
        --known-hosts) need "$@"; KNOWN_HOSTS="$2"; shift 2 ;;
        --preflight) PREFLIGHT=1; shift ;;
        --copy) COPY=1; shift ;;
        --note) need "$@"; NOTE="$2"; shift 2 ;;
        --tag) need "$@"; TAG="$2"; shift 2 ;;
        --ready-timeout) need "$@"; READY_TIMEOUT="$2"; shift 2 ;;
        --sweep-rate) need "$@"; SWEEP_RATE="$2"; shift 2 ;;
        --emulate) need "$@"; EMULATE="$2"; shift 2 ;;
        --scale) need "$@"; SCALE="$2"; shift 2 ;;
        --slo-us) need "$@"; SLO_US="$2"; shift 2 ;;
        --open-args) need "$@"; OPEN_ARGS="$2"; shift 2 ;;
        --trials) need "$@"; TRIALS="$2"; shift 2 ;;
        --against) need "$@"; AGAINST="$2"; shift 2 ;;
        --ab) [ "$#" -ge 3 ] || die_usage "--ab needs two quoted argument sets"; AB=("$2" "$3"); shift 3 ;;
        --no-build) BUILD=0; shift ;;
        --no-dash) DASH=0; shift ;;
        --no-profile) PROFILE=0; shift ;;
        --check) CHECK=1; shift ;;
        --keep-histories) KEEP_HISTORIES=1; shift ;;
        --) shift; break ;;
        -*) die_usage "unknown option '$1'" ;;
        *) break ;;
    esac
done
[ "$#" -le 4 ] || die_usage "too many arguments"

if [ -n "$SCALE" ]; then
    # The study picks the counts: only the argument strings are given.
    [ "$#" -le 2 ] || die_usage "--scale takes no counts, only [server_args] [client_args]"
    [ -n "$EMULATE" ] || die_usage "--scale needs --emulate cpus=C (each size's CPU budget)"
    set -- "" "" "$@"
fi
SERVER_COUNT="${1:-}"
CLIENT_COUNT="${2:-}"
SERVER_ARGS="${3:-}"
CLIENT_ARGS="${4:-}"
for v in "$SERVER_COUNT:server_count" "$CLIENT_COUNT:client_count"; do
    if [ -n "${v%%:*}" ] && ! [[ "${v%%:*}" =~ ^[1-9][0-9]*$ ]]; then
        die_usage "${v#*:} must be a positive integer, got '${v%%:*}'"
    fi
done
[[ "$SECS" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--secs must be a positive number, got '$SECS'"
[[ "$WARMUP" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--warmup must be a number of seconds, got '$WARMUP'"
[[ "$READY_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die_usage "--ready-timeout must be a positive integer"
[[ "$TRIALS" =~ ^[1-9][0-9]*$ ]] || die_usage "--trials must be a positive integer, got '$TRIALS'"
if [ -n "$AGAINST" ] && [ "${#AB[@]}" -gt 0 ]; then die_usage "--against and --ab cannot be combined"; fi
if [ -z "$SWEEP_RATE" ]; then
    [ -z "$SLO_US" ] || die_usage "--slo-us needs --sweep-rate"
    [ -z "$OPEN_ARGS" ] || die_usage "--open-args needs --sweep-rate"
fi

if [ -z "$BACKEND" ]; then
    if [ -n "$HOSTS_FILE" ]; then
        BACKEND=hosts
    elif [ -n "$EMULATE" ]; then
        BACKEND=emulated
    elif [ -x /usr/local/etc/emulab/tmcc ] || command -v tmcc >/dev/null 2>&1 || command -v geni-get >/dev/null 2>&1; then
        BACKEND=cloudlab
    else
        BACKEND=local
    fi
fi
case "$BACKEND" in
    local | cloudlab) ;;
    hosts) [ -n "$HOSTS_FILE" ] || die_usage "--backend hosts needs --hosts-file FILE" ;;
    emulated) [ -n "$EMULATE" ] || die_usage "--backend emulated needs --emulate cpus=C" ;;
    *) die_usage "--backend must be local, cloudlab, hosts or emulated, got '$BACKEND'" ;;
esac
if [ -n "$EMULATE" ] && [ "$BACKEND" != emulated ]; then die_usage "--emulate needs the emulated backend, not --backend $BACKEND"; fi
if [ "$BACKEND" = emulated ]; then
    # Namespaces, cgroups, tc: scripts/emulate.sh. Root, netns, cgroups
    # (and netem for rtt=) are checked here, before anything starts.
    # shellcheck source=scripts/emulate.sh
    . "$ROOT/scripts/emulate.sh"
    emu_preflight
fi
if [ "$BACKEND" = local ] || [ "$BACKEND" = emulated ]; then
    SERVER_COUNT="${SERVER_COUNT:-1}"
    CLIENT_COUNT="${CLIENT_COUNT:-1}"
fi

# ---- binaries ------------------------------------------------------------
if [ -n "${KVLAB_BIN_DIR:-}" ]; then
    BIN_DIR="$KVLAB_BIN_DIR"
    BUILD=0
else
    BUILD_PROFILE="${KVLAB_BUILD_PROFILE:-release}"
    case "$BUILD_PROFILE" in dev | test) PROFILE_DIR=debug ;; *) PROFILE_DIR="$BUILD_PROFILE" ;; esac
    BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE_DIR"
fi
# kv-server/kv-client may come from another build (--against's side A).
NODE_BIN_DIR="${KVLAB_NODE_BIN_DIR:-$BIN_DIR}"
WANT_DASH=0
if [ "$DASH" = 1 ] && [ -t 1 ]; then WANT_DASH=1; fi
if [ "$BUILD" = 1 ]; then
    echo "Building $BUILD_PROFILE binaries..."
    pkgs=(-p kv-server -p kv-client -p kv-run)
    if [ "$WANT_DASH" = 1 ]; then pkgs+=(-p kv-dash); fi
    if [ "$CHECK" = 1 ]; then pkgs+=(-p kv-check); fi
    (cd "$ROOT" && cargo build --profile "$BUILD_PROFILE" "${pkgs[@]}")
fi
KV_RUN="$BIN_DIR/kv-run"
[ -x "$KV_RUN" ] || die_usage "$KV_RUN not found: build first (cargo build --release -p kv-run) or set KVLAB_BIN_DIR"
# Check mode needs the checker before the run starts, not after it.
if [ "$CHECK" = 1 ] && [ ! -x "$BIN_DIR/kv-check" ]; then
    die_usage "$BIN_DIR/kv-check not found: build first (cargo build --release -p kv-check) or drop --no-build"
fi

LOG_ROOT="${KVLAB_LOG_ROOT:-$ROOT/logs}"
mkdir -p "$LOG_ROOT"
LOG_ROOT="$(cd "$LOG_ROOT" && pwd)" # absolute: nodes that share it use the same path

# Options every plan gets (the run's, and --preflight's).
common_plan_args() {
    PLAN_COMMON=(--backend "$BACKEND" --bin-dir "$NODE_BIN_DIR" --remote-dir "$REMOTE_DIR"
        --base-port "$BASE_PORT" --share-dir "$LOG_ROOT")
    [ -n "$SERVER_COUNT" ] && PLAN_COMMON+=(--servers "$SERVER_COUNT")
    [ -n "$CLIENT_COUNT" ] && PLAN_COMMON+=(--clients "$CLIENT_COUNT")
    [ -n "$HOSTS_FILE" ] && PLAN_COMMON+=(--hosts-file "$HOSTS_FILE")
    [ -n "$SSH_CONFIG" ] && PLAN_COMMON+=(--ssh-config "$SSH_CONFIG")
    [ -n "$KNOWN_HOSTS" ] && PLAN_COMMON+=(--known-hosts "$KNOWN_HOSTS")
    [ "$COPY" = 1 ] && PLAN_COMMON+=(--copy)
    return 0
}

# ---- preflight only: probe the nodes, print the table, start nothing ------
if [ "$PREFLIGHT" = 1 ]; then
    common_plan_args
    rc=0
    "$KV_RUN" plan --preflight "${PLAN_COMMON[@]}" --log-dir "$LOG_ROOT/preflight" \
        "--server-args=$SERVER_ARGS" "--client-args=$CLIENT_ARGS" || rc=$?
    exit "$rc"
fi

# ---- rate sweep: kv-run sweep runs this script once per step ---------------
if [ -n "$SWEEP_RATE" ]; then
    sweep=(sweep --rate "$SWEEP_RATE" --script "$ROOT/run-cluster.sh"
        --experiments "${KVLAB_EXPERIMENTS_DIR:-$ROOT/experiments}"
        --servers "${SERVER_COUNT:-1}" --clients "${CLIENT_COUNT:-1}"
        "--server-args=$SERVER_ARGS" "--client-args=$CLIENT_ARGS")
    [ -n "$SLO_US" ] && sweep+=(--slo-us "$SLO_US")
    sweep+=("--open-args=$OPEN_ARGS")
    # The options as given (the positionals are the last $# arguments).
    KVLAB_BIN_DIR="$BIN_DIR" exec "$KV_RUN" "${sweep[@]}" -- "${ALL_ARGS[@]:0:$((${#ALL_ARGS[@]} - $#))}"
fi

# ---- scaling study: kv-run scale runs this script once per size ------------
if [ -n "$SCALE" ]; then
    scale=(scale --sizes "$SCALE" --emulate "$EMULATE" --script "$ROOT/run-cluster.sh"
        --experiments "${KVLAB_EXPERIMENTS_DIR:-$ROOT/experiments}"
        "--server-args=$SERVER_ARGS" "--client-args=$CLIENT_ARGS")
    # The options as given (the positionals are the last $# arguments).
    KVLAB_BIN_DIR="$BIN_DIR" exec "$KV_RUN" "${scale[@]}" -- "${ALL_ARGS[@]:0:$((${#ALL_ARGS[@]} - $# + 2))}"
fi

# ---- trials: kv-run runs this script once per trial ----------------------
if [ "$TRIALS" -gt 1 ] || [ -n "$AGAINST" ] || [ "${#AB[@]}" -gt 0 ]; then
    trial_args=(trials --script "${BASH_SOURCE[0]}" --trials "$TRIALS" --repo "${KVLAB_REPO:-$ROOT}"
        --experiments "${KVLAB_EXPERIMENTS_DIR:-$ROOT/experiments}")
    if [ -n "$AGAINST" ]; then trial_args+=(--against "$AGAINST"); fi
    if [ "${#AB[@]}" -gt 0 ]; then trial_args+=("--ab-a=${AB[0]}" "--ab-b=${AB[1]}"); fi
    for a in ${PASS_OPTS[@]+"${PASS_OPTS[@]}"}; do trial_args+=("--option=$a"); done
    for a in "$SERVER_COUNT" "$CLIENT_COUNT" "$SERVER_ARGS" "$CLIENT_ARGS"; do trial_args+=("--positional=$a"); done
    exec "$KV_RUN" "${trial_args[@]}"
fi

# ---- log directory -------------------------------------------------------
EXP_DIR="${KVLAB_EXPERIMENTS_DIR:-$ROOT/experiments}"
TS="$(date +%Y%m%d-%H%M%S)"
LOG_DIR="$LOG_ROOT/$TS"
n=1
# Two runs in the same second each get their own folder.
while ! mkdir "$LOG_DIR" 2>/dev/null; do
    n=$((n + 1))
    LOG_DIR="$LOG_ROOT/$TS-$n"
done
ln -sfn "$(basename "$LOG_DIR")" "$LOG_ROOT/latest"
mkdir -p "$LOG_DIR/pids"
MANIFEST="$LOG_DIR/cluster.json"

# ---- plan ----------------------------------------------------------------
common_plan_args
plan_args=(plan "${PLAN_COMMON[@]}" --secs "$SECS" --log-dir "$LOG_DIR" --note "$NOTE" --tag "$TAG"
    "--server-args=$SERVER_ARGS" "--client-args=$CLIENT_ARGS")
[ "$PROFILE" = 1 ] && plan_args+=(--profile)
[ "$CHECK" = 1 ] && plan_args+=(--check)
for a in ${ALL_ARGS[@]+"${ALL_ARGS[@]}"}; do plan_args+=("--script-arg=$a"); done
if [ "$BACKEND" = emulated ]; then
    emu_names
    plan_args+=(--emulate "$EMULATE" --emulate-prefix "$EMU_PREFIX" --emulate-subnet "$EMU_SUBNET")
fi

# Filled by the plan (one entry per node, servers first).
RUN_ID="" SERVER_HOSTS="" RUN_SECS="" NODES_MODE_LINE=""
NODE_NAME=() NODE_ROLE=() NODE_LOG=() NODE_SSH=() NODE_SSH_PORT=() NODE_RDIR=() NODE_BIN=() NODE_CMD=()
NODE_SHARED=() # 1: the node sees this directory (runs in place, logs land here)
SSH_OPTS=(-o BatchMode=yes)
# 2: bad arguments; 1: preflight found problems (one line each, above).
plan_rc=0
plan_text="$("$KV_RUN" "${plan_args[@]}")" || plan_rc=$?
if [ "$plan_rc" != 0 ]; then
    rm -rf "$LOG_DIR"
    exit "$plan_rc"
fi
eval "$plan_text"
N_NODES=${#NODE_NAME[@]}
# A run that could not be recorded is refused before it starts: the
# experiments folder must be writable, with room for the run's files.
if ! "$KV_RUN" check-room --manifest "$MANIFEST" --experiments "$EXP_DIR"; then
    rm -rf "$LOG_DIR"
    exit 1
fi

echo "Run $RUN_ID: backend $BACKEND, $N_NODES nodes"
for ((i = 0; i < N_NODES; i++)); do
    echo "  ${NODE_NAME[i]} ${NODE_ROLE[i]}${NODE_SSH[i]:+ on ${NODE_SSH[i]}}"
done
[ -z "$NODES_MODE_LINE" ] || echo "$NODES_MODE_LINE"
echo "Server args: $SERVER_ARGS"
echo "Client args: $CLIENT_ARGS"
echo "Logs will be in $LOG_DIR"
echo

# ---- processes -----------------------------------------------------------
PID=()        # per node: local PID (the process, or its ssh session)
RPID=()       # per node: PID on the remote host
EXITED=()     # per node: 1 once reaped
HELPERS=()    # collector, dashboard, timers: stopped by PID at the end
FINISHED=0
RUN_T0="" # set when the first node starts: duration_s counts from there

ssh_cmd() { # ssh_cmd I: fills SSH with the ssh command for node I
    SSH=(ssh "${SSH_OPTS[@]}")
    if [ -n "$SSH_CONFIG" ]; then SSH+=(-F "$SSH_CONFIG"); fi
    if [ -n "${NODE_SSH_PORT[$1]}" ]; then SSH+=(-p "${NODE_SSH_PORT[$1]}"); fi
    SSH+=("${NODE_SSH[$1]}")
}

scp_cmd() {
    SCP=(scp -q "${SSH_OPTS[@]}")
    if [ -n "$SSH_CONFIG" ]; then SCP+=(-F "$SSH_CONFIG"); fi
    if [ -n "${NODE_SSH_PORT[$1]}" ]; then SCP+=(-P "${NODE_SSH_PORT[$1]}"); fi
}

start_node() { # start_node I
    local i=$1 log="$LOG_DIR/${NODE_LOG[$1]}"
    if [ "$BACKEND" = emulated ]; then
        emu_start_node "$i" "$log"
    elif [ -z "${NODE_SSH[i]}" ]; then
        (cd "$LOG_DIR" && eval "exec ${NODE_CMD[i]}") >"$log" 2>&1 </dev/null &
        PID[i]=$!
    else
        ssh_cmd "$i"
        scp_cmd "$i"
        if [ "${NODE_SHARED[i]}" != 1 ]; then
            "${SSH[@]}" "mkdir -p '${NODE_RDIR[i]}'"
            "${SCP[@]}" "$NODE_BIN_DIR/${NODE_BIN[i]}" "${NODE_SSH[i]}:${NODE_RDIR[i]}/"
        fi
        "${SSH[@]}" "${NODE_CMD[i]}" >"$LOG_DIR/ssh-${NODE_NAME[i]}.log" 2>&1 </dev/null &
        PID[i]=$!
        EXITED[i]=0 # from here on, a failure stops this session too
        local tries=0
        RPID[i]=""
        while [ -z "${RPID[i]}" ] && [ "$tries" -lt 100 ]; do
            RPID[i]="$("${SSH[@]}" "cat '${NODE_RDIR[i]}/pid-${NODE_NAME[i]}' 2>/dev/null" || true)"
            [ -n "${RPID[i]}" ] || sleep 0.1
            tries=$((tries + 1))
        done
        [ -n "${RPID[i]}" ] || fail "${NODE_NAME[i]}" "did not start on ${NODE_SSH[i]}" "$i"
        echo "${RPID[i]}" >"$LOG_DIR/pids/${NODE_NAME[i]}.remote.pid"
    fi
    EXITED[i]=0
    echo "${PID[i]}" >"$LOG_DIR/pids/${NODE_NAME[i]}.pid"
    echo "Started ${NODE_ROLE[i]} ${NODE_NAME[i]} (pid ${PID[i]}${RPID[i]:+, remote pid ${RPID[i]}})"
}

record_pids() {
    local args=() i
    for ((i = 0; i < N_NODES; i++)); do
        if [ -n "${PID[i]:-}" ]; then args+=(--pid "${NODE_NAME[i]}=${PID[i]}"); fi
        if [ -n "${RPID[i]:-}" ]; then args+=(--remote-pid "${NODE_NAME[i]}=${RPID[i]}"); fi
    done
    "$KV_RUN" set-pids --manifest "$MANIFEST" "${args[@]}"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# ended PID: the process has exited (gone, or a zombie not yet reaped).
ended() { ! alive "$1" || grep -q ') Z ' "/proc/$1/stat" 2>/dev/null; }

# signal_node I SIGNAL: asks node I to stop (remote ones by their remote PID).
signal_node() {
    local i=$1 sig=$2
    [ "${EXITED[i]:-1}" = 0 ] || return 0
    if [ -z "${NODE_SSH[i]}" ]; then
        kill "-$sig" "${PID[i]}" 2>/dev/null || true
    else
        ssh_cmd "$i"
        if [ -n "${RPID[i]:-}" ]; then
            "${SSH[@]}" "kill -$sig ${RPID[i]} 2>/dev/null" 2>/dev/null || true
        fi
        if [ "$sig" = KILL ]; then kill -KILL "${PID[i]}" 2>/dev/null || true; fi
    fi
}

# Stops the given nodes: SIGTERM to servers, SIGINT to clients (their
# Ctrl-C: drain, then write the summary), up to 15 s to exit (servers write
# their profiles then), then SIGKILL. Sets STOP_STATUS[i].
STOP_STATUS=()
stop_nodes() {
    local i t rc
    for i in "$@"; do
        if [ "${NODE_ROLE[i]}" = client ]; then signal_node "$i" INT; else signal_node "$i" TERM; fi
    done
    for i in "$@"; do
        [ "${EXITED[i]:-1}" = 0 ] || continue
        for ((t = 0; t < 150; t++)); do alive "${PID[i]}" || break; sleep 0.1; done
        if alive "${PID[i]}"; then
            echo "warning: ${NODE_NAME[i]} ignored SIGTERM for 15 s; killing it" >&2
            signal_node "$i" KILL
        fi
        rc=0
        wait "${PID[i]}" 2>/dev/null || rc=$?
        STOP_STATUS[i]=$rc
        EXITED[i]=1
    done
}

stop_helpers() {
    local p
    for p in ${HELPERS[@]+"${HELPERS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
    for p in ${HELPERS[@]+"${HELPERS[@]}"}; do wait "$p" 2>/dev/null || true; done
    HELPERS=()
}

# Copies every remote node's files here; FETCHED[i]=1 once node i's are.
FETCHED=()
fetch_remote() {
    local i
    for ((i = 0; i < N_NODES; i++)); do
        [ -n "${NODE_SSH[i]}" ] || continue
        [ "${NODE_SHARED[i]}" != 1 ] || continue # its files are already here
        ssh_cmd "$i"
        if "${SSH[@]}" "cd '${NODE_RDIR[i]}' && tar cf - --exclude=./kv-server --exclude=./kv-client --exclude='./pid-*' ." 2>/dev/null |
            tar xf - -C "$LOG_DIR" 2>/dev/null; then
            FETCHED[i]=1
        else
            echo "warning: could not fetch files of ${NODE_NAME[i]} from ${NODE_SSH[i]}" >&2
        fi
    done
}

# clean_remote FAILED: a run that went well removes each remote folder
# whose files were fetched (~15 MB a node); a failed run, or a folder not
# fetched, is kept for a look, and where is said here and in
# remote-kept.txt (recorded with the run).
clean_remote() {
    local i kept=()
    for ((i = 0; i < N_NODES; i++)); do
        if [ -z "${NODE_SSH[i]}" ] || [ "${NODE_SHARED[i]}" = 1 ] || [ -z "${NODE_RDIR[i]}" ]; then continue; fi
        if [ -z "$1" ] && [ "${FETCHED[i]:-0}" = 1 ]; then
            ssh_cmd "$i"
            # The run's <remote-dir>/<timestamp> goes too once it is empty.
            if "${SSH[@]}" "rm -rf '${NODE_RDIR[i]}' && { rmdir '${NODE_RDIR[i]%/*}' 2>/dev/null || true; }"; then
                continue
            fi
            echo "warning: could not remove ${NODE_RDIR[i]} on ${NODE_SSH[i]}" >&2
        fi
        kept+=("${NODE_NAME[i]} ${NODE_SSH[i]}:${NODE_RDIR[i]}")
    done
    [ "${#kept[@]}" -gt 0 ] || return 0
    echo "Remote run folders kept${1:+ (the run failed)}:"
    printf '  %s\n' "${kept[@]}"
    printf '%s\n' "${kept[@]}" >"$LOG_DIR/remote-kept.txt"
}

node_index() { # node_index PID -> index of the node with that local PID, or -1
    local i
    for ((i = 0; i < N_NODES; i++)); do
        if [ "${PID[i]:-}" = "$1" ]; then echo "$i"; return; fi
    done
    echo -1
}

# finish STATUS [REASON]: stop everything, report, record, exit.
finish() {
    local status=$1 reason=${2:-} i servers=()
    [ "$FINISHED" = 0 ] || return 0
    FINISHED=1
    trap - INT TERM HUP
    set +e
    stop_helpers
    for ((i = 0; i < N_NODES; i++)); do [ "${NODE_ROLE[i]}" = client ] && stop_nodes "$i"; done
    for ((i = 0; i < N_NODES; i++)); do [ "${NODE_ROLE[i]}" = server ] && servers+=("$i"); done
    stop_nodes ${servers[@]+"${servers[@]}"}
    if [ "$BACKEND" = emulated ]; then emu_finish; fi
    if [ -z "$reason" ]; then
        for i in ${servers[@]+"${servers[@]}"}; do
            if [ "${STOP_STATUS[i]:-0}" != 0 ]; then
                reason="${NODE_NAME[i]} (server) exited with status ${STOP_STATUS[i]} when stopped"
                status=1
                tail_log "$i"
                break
            fi
        done
    fi
    fetch_remote
    if [ "$CHECK" = 1 ] && [ -z "$reason" ]; then
        local rc=0
        check_histories || rc=$?
        case "$rc" in
            0) ;;
            1) reason="kv-check: the run was not linearizable (see above)"; status=1 ;;
            *) reason="kv-check could not check the histories (exit $rc, see above)"; status=1 ;;
        esac
    fi
    clean_remote "$reason"
    echo
    # The outcome comes first: a failed run's partial figures below are
    # never mistaken for a result.
    if [ -n "$reason" ]; then
        echo "Run FAILED: $reason" >&2
        echo "Logs in $LOG_DIR"
    else
        echo "Run complete. Logs in $LOG_DIR"
    fi
    echo
    "$KV_RUN" report "$LOG_DIR" | tee "$LOG_DIR/report.txt"
    echo
    local rec=(record --manifest "$MANIFEST" --experiments "$EXP_DIR" --timeseries "$LOG_DIR/timeseries.csv"
        --warmup "$WARMUP" --repo "${KVLAB_REPO:-$ROOT}")
    # duration_s is the run (first server started to all stopped), not the build.
    [ -n "$RUN_T0" ] && rec+=(--duration-s "$(awk -v a="$RUN_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')")
    [ -n "$reason" ] && rec+=(--failed "$reason")
    # A run not (fully) recorded is not a success: kv-run said what was lost.
    local rec_rc=0
    "$KV_RUN" "${rec[@]}" || rec_rc=$?
    if [ "$rec_rc" != 0 ]; then
        echo "Error: the run was not fully recorded (see above); its files are all in $LOG_DIR" >&2
        [ "$status" != 0 ] || status=1
    fi
    if [ -n "$reason" ]; then
        echo "Run FAILED: $reason" >&2
        [ "$status" != 0 ] || status=1
    fi
    exit "$status"
}

# Check mode: every client's history through kv-check.
check_histories() {
    local files=()
    for f in "$LOG_DIR"/history-*.hist "$LOG_DIR"/history-*.csv; do [ -e "$f" ] && files+=("$f"); done
    if [ "${#files[@]}" = 0 ]; then echo "kv-check: no histories found" >&2; return 2; fi
    echo
    # No pipe: kv-check writes check.txt itself, so a full disk is its
    # exit 3 ("could not check"), never the verdict 1. The histories record
    # the servers' preload.
    local rc=0
    "$BIN_DIR/kv-check" --output "$LOG_DIR/check.txt" "${files[@]}" || rc=$?
    # A passing run keeps its verdict and counts (check.txt), not its
    # histories, unless asked; a failing one keeps them as evidence.
    if [ "$rc" = 0 ] && [ "$KEEP_HISTORIES" = 0 ]; then
        rm -f "${files[@]}" "$LOG_DIR"/history-*.clock.json
        echo "(histories dropped: the run passed; --keep-histories keeps them)"
    fi
    return "$rc"
}

tail_log() {
    echo "---- last lines of $LOG_DIR/${NODE_LOG[$1]} ----" >&2
    fetch_one_log "$1"
    tail -n 15 "$LOG_DIR/${NODE_LOG[$1]}" >&2 2>/dev/null || true
    echo "----" >&2
}

fetch_one_log() {
    [ -n "${NODE_SSH[$1]}" ] || return 0
    [ "${NODE_SHARED[$1]}" != 1 ] || return 0
    ssh_cmd "$1"
    "${SSH[@]}" "cat '${NODE_RDIR[$1]}/${NODE_LOG[$1]}'" >"$LOG_DIR/${NODE_LOG[$1]}" 2>/dev/null || true
}

# fail NODE WHAT [INDEX]: a node failed; name it, show its log, stop the run.
fail() {
    echo >&2
    echo "Error: $1 $2" >&2
    [ -n "${3:-}" ] && tail_log "$3"
    finish 1 "$1 $2"
}

# An interrupted run is recorded with its cause.
trap 'finish 130 "interrupted (SIGINT)"' INT
trap 'finish 143 "interrupted (SIGTERM)"' TERM
trap 'finish 129 "interrupted (SIGHUP: the terminal closed)"' HUP
ERR_AT=""
trap 'ERR_AT="line $LINENO: $BASH_COMMAND"' ERR
trap 'rc=$?; [ "$FINISHED" = 1 ] || finish "$rc" "run-cluster.sh stopped unexpectedly (status $rc${ERR_AT:+ at $ERR_AT})"' EXIT

# how_ended STATUS [SSH]: "with status N", or "killed by signal N (SIGX)"
# for a local process that a signal ended (a remote one's status is ssh's).
how_ended() {
    if [ -z "${2:-}" ] && [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then
        echo "killed by signal $(($1 - 128)) (SIG$(kill -l "$(($1 - 128))" 2>/dev/null || echo '?'))"
    else
        echo "with status $1"
    fi
}

# watch PIDS...: waits until one of the given helper PIDs or any running
# node ends. Returns the ended PID in DONE_PID and its status in DONE_RC;
# fails the run when a server ends, or a client ends with a non-zero status.
watch() {
    local live=() i
    for ((i = 0; i < N_NODES; i++)); do
        [ "${EXITED[i]:-1}" = 0 ] && live+=("${PID[i]}")
    done
    DONE_PID="" DONE_RC=0
    wait -n -p DONE_PID "$@" ${live[@]+"${live[@]}"} || DONE_RC=$?
    [ -n "$DONE_PID" ] || return 0
    i=$(node_index "$DONE_PID")
    [ "$i" -ge 0 ] || return 0
    EXITED[i]=1
    if [ "${NODE_ROLE[i]}" = server ]; then
        fail "${NODE_NAME[i]}" "(server) exited $(how_ended "$DONE_RC" "${NODE_SSH[i]}") during the run" "$i"
    elif [ "$DONE_RC" != 0 ]; then
        # A client usually fails because a server died: name the server.
        sleep 0.5
        local j rc
        for ((j = 0; j < N_NODES; j++)); do
            if [ "${NODE_ROLE[j]}" = server ] && [ "${EXITED[j]}" = 0 ] && ended "${PID[j]}"; then
                rc=0
                wait "${PID[j]}" 2>/dev/null || rc=$?
                EXITED[j]=1
                fail "${NODE_NAME[j]}" "(server) exited $(how_ended "$rc" "${NODE_SSH[j]}") during the run" "$j"
            fi
        done
        fail "${NODE_NAME[i]}" "(client) exited $(how_ended "$DONE_RC" "${NODE_SSH[i]}")" "$i"
    fi
}

# ---- run -----------------------------------------------------------------
if [ "$BACKEND" = emulated ]; then emu_setup; fi
RUN_T0=$EPOCHREALTIME
for ((i = 0; i < N_NODES; i++)); do
    [ "${NODE_ROLE[i]}" = server ] && start_node "$i"
done
record_pids

echo "Waiting for servers to answer (up to $READY_TIMEOUT s)..."
# NAME=HOST:PORT, so a server that does not answer is named.
IFS=, read -ra server_addrs <<<"$SERVER_HOSTS"
ready_hosts="" j=0
for ((i = 0; i < N_NODES; i++)); do
    if [ "${NODE_ROLE[i]}" = server ]; then
        ready_hosts+="${ready_hosts:+,}${NODE_NAME[i]}=${server_addrs[j]}"
        j=$((j + 1))
    fi
done
"$KV_RUN" wait-ready --hosts "$ready_hosts" --timeout "$READY_TIMEOUT" 2>"$LOG_DIR/ready.txt" &
ready_pid=$!
while :; do
    watch "$ready_pid"
    if [ "$DONE_PID" = "$ready_pid" ]; then
        if [ "$DONE_RC" != 0 ]; then
            why="$(grep -v '^$' "$LOG_DIR/ready.txt" | tail -n 1 || true)"
            fail "servers" "not ready: ${why#kv-run: error: }"
        fi
        break
    fi
done

for ((i = 0; i < N_NODES; i++)); do
    [ "${NODE_ROLE[i]}" = client ] && start_node "$i"
done
record_pids

USE_DASH=0
if [ "$WANT_DASH" = 1 ] && [ -x "$BIN_DIR/kv-dash" ] && "$BIN_DIR/kv-dash" live --help >/dev/null 2>&1; then
    USE_DASH=1
fi
collect_args=(collect --manifest "$MANIFEST" --out "$LOG_DIR/timeseries.csv")
[ "$USE_DASH" = 1 ] || collect_args+=(--plain)
# Helpers stop with this script even when it is SIGKILLed (they watch
# their parent); their PID files say which processes they were.
"$KV_RUN" "${collect_args[@]}" &
HELPERS+=("$!")
echo "$!" >"$LOG_DIR/pids/collect.pid"
echo "Waiting for clients to finish..."
# The dashboard only observes. Quitting it (q) leaves the run going: plain
# progress lines (kv-dash live --plain) take over until the run ends.
DASH_PID=""
if [ "$USE_DASH" = 1 ]; then
    # Clients still connecting are "starting" until --ready-timeout, not DOWN.
    "$BIN_DIR/kv-dash" live --manifest "$MANIFEST" --ready-timeout "$READY_TIMEOUT" --warmup "$WARMUP" </dev/tty &
    DASH_PID=$!
    HELPERS+=("$DASH_PID")
    echo "$DASH_PID" >"$LOG_DIR/pids/dash.pid"
fi

# Clients generate for --secs, then drain; allow generous slack before
# declaring them hung. The clients' own --secs (RUN_SECS, from the plan)
# counts, not the script's. KVLAB_HANG_SLACK_S (default 60) is for tests.
deadline=$(awk -v s="$RUN_SECS" -v k="${KVLAB_HANG_SLACK_S:-60}" 'BEGIN { printf "%d", s * 1.5 + k }')
sleep "$deadline" &
timer_pid=$!
HELPERS+=("$timer_pid")
while :; do
    clients_left=0
    for ((i = 0; i < N_NODES; i++)); do
        [ "${NODE_ROLE[i]}" = client ] && [ "${EXITED[i]}" = 0 ] && clients_left=$((clients_left + 1))
    done
    [ "$clients_left" -gt 0 ] || break
    watch "$timer_pid" ${DASH_PID:+"$DASH_PID"}
    if [ "$DONE_PID" = "$timer_pid" ]; then
        fail "clients" "did not finish within $deadline s"
    fi
    if [ -n "$DASH_PID" ] && [ "$DONE_PID" = "$DASH_PID" ]; then
        DASH_PID=""
        echo "Dashboard closed; the run goes on (Ctrl-C stops it). Progress:"
        "$BIN_DIR/kv-dash" live --plain --manifest "$MANIFEST" --ready-timeout "$READY_TIMEOUT" --warmup "$WARMUP" &
        HELPERS+=("$!")
    fi
done
echo "All clients finished."
finish 0
