# shellcheck shell=bash
# scripts/emulate.sh: the emulated backend of run-cluster.sh (sourced).
#
# Every node gets its own network namespace <prefix>-n<i>, joined to the
# run's bridge <prefix>-br by a veth pair (<prefix>-v<i> on the host side,
# eth0 inside), its own CPU-quota cgroup <prefix>/n<i>, and optionally a
# rate limit (tbf) and a delay (netem) on both ends of its veth. The prefix
# is kve<hex pid of run-cluster.sh>: every object of a run carries it, so a
# later run finds what a crashed one left (its owner is gone) and removes
# it first. See docs/run-cluster.md, "Emulated cluster".
#
# Inputs (set by run-cluster.sh): EMULATE (the spec), LOG_DIR, N_NODES,
# NODE_NAME[], NODE_CMD[]. Every function is safe to call twice.

EMU_STATE_DIR="${KVLAB_EMULATE_STATE_DIR:-/run/kvlab-emulate}"
EMU_PERIOD_US=100000
EMU_PREFIX=""
EMU_SUBNET=""
EMU_CG=""      # v1 | v2
EMU_CG_DIRS=() # cgroup directories of the run (v1: cpu and cpuacct)
EMU_T0=()      # per node: start time, ns since the epoch
EMU_UP=0       # 1 once anything of this run may exist

emu_die() {
    echo "Error: --emulate: $*" >&2
    exit 2
}

# The spec's value of KEY (cpus, rtt, rate), or empty.
emu_param() {
    local part
    local IFS=,
    for part in $EMULATE; do
        part="${part// /}"
        if [ "${part%%=*}" = "$1" ]; then
            echo "${part#*=}"
            return
        fi
    done
}

# Microseconds of a time like 200us, 0.2ms, 1s (bare number: ms).
emu_us() {
    awk -v t="$1" 'BEGIN {
        m = 1000
        if (t ~ /us$/) { m = 1; sub(/us$/, "", t) } else if (t ~ /ms$/) { sub(/ms$/, "", t) } else if (t ~ /s$/) { m = 1e6; sub(/s$/, "", t) }
        printf "%d", t * m }'
}

# Bits per second of a rate like 1gbit, 100mbit, 500kbit.
emu_bits() {
    awk -v r="$(echo "$1" | tr '[:upper:]' '[:lower:]')" 'BEGIN {
        m = 1
        if (r ~ /gbit$/) { m = 1e9; sub(/gbit$/, "", r) } else if (r ~ /mbit$/) { m = 1e6; sub(/mbit$/, "", r) } else if (r ~ /kbit$/) { m = 1e3; sub(/kbit$/, "", r) } else sub(/bit$/, "", r)
        printf "%d", r * m }'
}

# Which cgroup CPU controller this machine has: v2 cpu.max at the
# cgroup2 root, or the v1 cpu (quota) and cpuacct (usage) controllers.
emu_cgroup_kind() {
    if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        echo v2
    elif [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
        echo v1
    elif [ -f /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us ]; then
        echo v1-joint
    fi
}

# emu_preflight: everything the backend needs, checked before anything
# starts; the first thing missing is one line and exit 2. The probes run
# in throwaway namespaces (unshare -n), so they cannot leave anything.
emu_preflight() {
    [ "$(id -u)" = 0 ] || emu_die "needs root (network namespaces, veth, tc and cgroups); run it with sudo"
    local t
    for t in ip tc unshare awk; do
        command -v "$t" >/dev/null 2>&1 || emu_die "needs '$t' (iproute2 / util-linux) on PATH"
    done
    unshare -n true 2>/dev/null || emu_die "this kernel cannot create network namespaces (CONFIG_NET_NS)"
    unshare -n ip link add kvep0 type veth peer name kvep1 2>/dev/null ||
        emu_die "this kernel has no veth pairs (CONFIG_VETH)"
    unshare -n ip link add kvepb type bridge 2>/dev/null || emu_die "this kernel has no bridges (CONFIG_BRIDGE)"
    EMU_CG="$(emu_cgroup_kind)"
    case "$EMU_CG" in
        v1 | v2) ;;
        v1-joint) EMU_CG=v1j ;;
        *) emu_die "no cgroup CPU controller (cgroup v2 cpu.max or v1 cpu.cfs_quota_us + cpuacct) under /sys/fs/cgroup" ;;
    esac
    if [ -n "$(emu_param rate)" ]; then
        unshare -n tc qdisc add dev lo root tbf rate 1gbit burst 64kb latency 50ms 2>/dev/null ||
            emu_die "rate= needs the kernel's tbf qdisc (CONFIG_NET_SCH_TBF), which this kernel lacks"
    fi
    if [ -n "$(emu_param rtt)" ]; then
        unshare -n tc qdisc add dev lo root netem delay 1ms 2>/dev/null ||
            emu_die "rtt= needs the kernel's netem qdisc (CONFIG_NET_SCH_NETEM), which this kernel lacks; drop rtt= (see docs/run-cluster.md)"
    fi
    mkdir -p "$EMU_STATE_DIR" 2>/dev/null || emu_die "cannot create $EMU_STATE_DIR"
}

# emu_names: picks the run's prefix and /24 (no side effects).
emu_names() {
    EMU_PREFIX="kve$(printf %x $$)"
    # 10.128-255.x: from the PID, so concurrent runs get different subnets.
    EMU_SUBNET="10.$((128 + (($$ >> 8) & 127))).$(($$ & 255))"
}

# emu_cgroup_dirs PREFIX: the cgroup directories of a run.
emu_cgroup_dirs() {
    case "$EMU_CG" in
        v1) echo "/sys/fs/cgroup/cpu/$1 /sys/fs/cgroup/cpuacct/$1" ;;
        v1j) echo "/sys/fs/cgroup/cpu,cpuacct/$1" ;;
        v2) echo "/sys/fs/cgroup/$1" ;;
    esac
}

# The start time of PID (field 22 of /proc/PID/stat): with the PID, it
# names one process, even after PIDs wrap.
emu_starttime() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# emu_owner_alive PREFIX: the run that made PREFIX still runs.
emu_owner_alive() {
    local f="$EMU_STATE_DIR/$1" pid st
    [ -f "$f" ] || return 1
    read -r pid st <"$f" || return 1
    [ -n "$pid" ] && [ "$(emu_starttime "$pid")" = "$st" ]
}

# Every prefix with something on this machine: namespaces, links, cgroups, state files.
emu_all_prefixes() {
    {
        ip netns list 2>/dev/null | awk '{ print $1 }'
        ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
        local d
        for d in $(emu_cgroup_dirs "") "$EMU_STATE_DIR/"; do
            ls "$d" 2>/dev/null
        done
    } | sed -n 's/^\(kve[0-9a-f]\{1,6\}\)\(-.*\)\{0,1\}$/\1/p' | sort -u
}

# emu_remove PREFIX: removes every object of a run: its processes (only
# those in its own cgroups or namespaces, by PID), namespaces, links,
# cgroups, and last its state file. Returns 1 if something stayed.
emu_remove() {
    local p=$1 ns l d pid left=0
    # Processes still in the run's cgroups or namespaces were started by it.
    for d in $(emu_cgroup_dirs "$p"); do
        cat "$d"/n*/cgroup.procs 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for ns in $(ip netns list 2>/dev/null | awk -v p="$p-" 'index($1, p) == 1 { print $1 }'); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || left=1
    done
    for l in $(ip -o link show 2>/dev/null | awk -F': ' -v p="$p-" '{ sub(/@.*/, "", $2) } index($2, p) == 1 { print $2 }'); do
        ip link del "$l" 2>/dev/null || true
    done
    for d in $(emu_cgroup_dirs "$p"); do
        [ -d "$d" ] || continue
        local tries
        for ((tries = 0; tries < 50; tries++)); do
            # A killed process leaves its cgroup only once reaped.
            rmdir "$d"/n* 2>/dev/null
            rmdir "$d" 2>/dev/null && break
            sleep 0.1
        done
        [ ! -d "$d" ] || left=1
    done
    if ip -o link show 2>/dev/null | grep -q ": $p-"; then left=1; fi
    if [ "$left" = 0 ]; then rm -f "$EMU_STATE_DIR/$p"; fi
    return "$left"
}

# emu_setup: removes leftovers of crashed runs, then builds this run's
# bridge, namespaces, links, qdiscs and cgroups.
emu_setup() {
    local p q i ns v addr cpus quota rate rtt d
    echo "$$ $(emu_starttime $$)" >"$EMU_STATE_DIR/$EMU_PREFIX"
    EMU_UP=1
    for q in $(emu_all_prefixes); do
        [ "$q" != "$EMU_PREFIX" ] || continue
        if ! emu_owner_alive "$q"; then
            echo "Removing leftovers of a crashed emulated run ($q-*)"
            emu_remove "$q" || echo "warning: could not remove everything of $q" >&2
        fi
    done
    p=$EMU_PREFIX
    cpus="$(emu_param cpus)"
    quota=$(awk -v c="$cpus" -v p="$EMU_PERIOD_US" 'BEGIN { q = int(c * p + 0.5); if (q < 1000) q = 1000; print q }')
    rate="$(emu_param rate)"
    rtt="$(emu_param rtt)"
    ip link add "$p-br" type bridge
    ip addr add "$EMU_SUBNET.1/24" dev "$p-br"
    ip link set "$p-br" up
    read -r -a EMU_CG_DIRS <<<"$(emu_cgroup_dirs "$p")"
    for d in "${EMU_CG_DIRS[@]}"; do mkdir -p "$d"; done
    # The run's group gets the highest weight: on a busy machine the
    # nodes still get their whole quota (their own cores, as on a real
    # cluster); the quotas cap what they take from everything else.
    if [ "$EMU_CG" = v2 ]; then
        # Children of the run's group may only use cpu.max if it delegates cpu.
        grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
        echo +cpu >"${EMU_CG_DIRS[0]}/cgroup.subtree_control"
        echo 10000 >"${EMU_CG_DIRS[0]}/cpu.weight"
    else
        echo 262144 >"${EMU_CG_DIRS[0]}/cpu.shares"
    fi
    for ((i = 0; i < N_NODES; i++)); do
        ns="$p-n$i" v="$p-v$i" addr="$EMU_SUBNET.$((i + 2))"
        ip netns add "$ns"
        ip link add "$v" type veth peer name "$p-p$i"
        ip link set "$p-p$i" netns "$ns"
        ip link set "$v" master "$p-br" up
        ip -n "$ns" link set "$p-p$i" name eth0
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # Both ends of the veth: the host side shapes what the node
        # receives, eth0 what it sends. A node-to-node packet crosses the
        # sender's eth0 and the receiver's host side, so each end delays
        # a quarter of the round trip.
        emu_qdisc "$rate" "$rtt" "$v"
        emu_qdisc "$rate" "$rtt" eth0 "$ns"
        for d in "${EMU_CG_DIRS[@]}"; do mkdir -p "$d/n$i"; done
        case "$EMU_CG" in
            v1 | v1j)
                echo "$EMU_PERIOD_US" >"${EMU_CG_DIRS[0]}/n$i/cpu.cfs_period_us"
                echo "$quota" >"${EMU_CG_DIRS[0]}/n$i/cpu.cfs_quota_us"
                ;;
            v2) echo "$quota $EMU_PERIOD_US" >"${EMU_CG_DIRS[0]}/n$i/cpu.max" ;;
        esac
        echo "  ${NODE_NAME[i]}: netns $ns, $addr, cpus $cpus${rate:+, rate $rate}${rtt:+, rtt $rtt}"
    done
}

# emu_qdisc RATE RTT DEV [NETNS]: the root qdisc(s) of one veth end.
emu_qdisc() {
    local rate=$1 rtt=$2 dev=$3 tcq=(tc) burst tbf=()
    [ -z "${4:-}" ] || tcq=(tc -n "$4")
    if [ -n "$rate" ]; then
        # At least a 64 KiB GSO packet, and 1 ms of the rate.
        burst=$(awk -v b="$(emu_bits "$rate")" 'BEGIN { x = int(b / 8 / 1000); if (x < 65536) x = 65536; print x }')
        tbf=(tbf rate "$(emu_bits "$rate")bit" burst "$burst" latency 100ms)
    fi
    if [ -n "$rtt" ]; then
        "${tcq[@]}" qdisc add dev "$dev" root handle 1: netem delay "$(($(emu_us "$rtt") / 4))us"
        if [ -n "$rate" ]; then "${tcq[@]}" qdisc add dev "$dev" parent 1: handle 2: "${tbf[@]}"; fi
    elif [ -n "$rate" ]; then
        "${tcq[@]}" qdisc add dev "$dev" root "${tbf[@]}"
    fi
}

# emu_start_node I LOG: starts node I inside its cgroup and namespace.
# The subshell joins the cgroup, then execs `ip netns exec`, which execs
# the node: one PID from start to end, so the node is stopped by it.
emu_start_node() {
    local i=$1 log=$2 d
    (
        for d in "${EMU_CG_DIRS[@]}"; do echo "$BASHPID" >"$d/n$i/cgroup.procs"; done
        cd "$LOG_DIR" && eval "exec ip netns exec $EMU_PREFIX-n$i ${NODE_CMD[i]}"
    ) >"$log" 2>&1 </dev/null &
    # shellcheck disable=SC2034 # run-cluster.sh's array of node PIDs
    PID[i]=$!
    EMU_T0[i]=$(date +%s%N)
}

# emu_usage I: "usage_ns nr_throttled throttled_ns" of node I's cgroup.
emu_usage() {
    local i=$1 d="${EMU_CG_DIRS[0]}/n$1"
    case "$EMU_CG" in
        v1)
            echo "$(cat "${EMU_CG_DIRS[1]}/n$i/cpuacct.usage" 2>/dev/null || echo 0)" \
                "$(awk '$1 == "nr_throttled" { n = $2 } $1 == "throttled_time" { t = $2 } END { printf "%d %.0f\n", n, t }' "$d/cpu.stat" 2>/dev/null)"
            ;;
        v1j)
            echo "$(cat "$d/cpuacct.usage" 2>/dev/null || echo 0)" \
                "$(awk '$1 == "nr_throttled" { n = $2 } $1 == "throttled_time" { t = $2 } END { printf "%d %.0f\n", n, t }' "$d/cpu.stat" 2>/dev/null)"
            ;;
        v2)
            awk '$1 == "usage_usec" { u = $2 } $1 == "nr_throttled" { n = $2 } $1 == "throttled_usec" { t = $2 }
                 END { printf "%.0f %d %.0f\n", u * 1000, n, t * 1000 }' "$d/cpu.stat" 2>/dev/null
            ;;
    esac
}

# emu_write_usage: emulation.json: per node its namespace, address, CPU
# time from its cgroup, how often the quota stopped it, and its wall time.
emu_write_usage() {
    local i now u n t sep="" out="$LOG_DIR/emulation.json"
    now=$(date +%s%N)
    {
        printf '{\n  "prefix": "%s",\n  "subnet": "%s",\n  "cgroup": "%s",\n  "spec": "%s",\n' \
            "$EMU_PREFIX" "$EMU_SUBNET" "$EMU_CG" "$EMULATE"
        printf '  "cpus": %s,\n  "period_us": %s,\n  "nodes": [\n' "$(emu_param cpus)" "$EMU_PERIOD_US"
        for ((i = 0; i < N_NODES; i++)); do
            [ -n "${EMU_T0[i]:-}" ] || continue
            read -r u n t <<<"$(emu_usage "$i")"
            printf '%s    {"name": "%s", "netns": "%s", "addr": "%s", "cpu_usage_ns": %s, "nr_throttled": %s, "throttled_ns": %s, "wall_ns": %s}' \
                "$sep" "${NODE_NAME[i]}" "$EMU_PREFIX-n$i" "$EMU_SUBNET.$((i + 2))" "${u:-0}" "${n:-0}" "${t:-0}" "$((now - EMU_T0[i]))"
            sep=$',\n'
        done
        printf '\n  ]\n}\n'
    } >"$out"
}

# emu_finish: after the nodes stopped: write the CPU use, remove
# everything. Ctrl-C is ignored meanwhile: half a teardown would leak.
emu_finish() {
    [ "$EMU_UP" = 1 ] || return 0
    trap '' INT TERM
    emu_write_usage || echo "warning: could not write emulation.json" >&2
    if ! emu_remove "$EMU_PREFIX"; then
        echo "warning: some of $EMU_PREFIX-* could not be removed; the next emulated run retries" >&2
    fi
    EMU_UP=0
    trap - INT TERM
}
