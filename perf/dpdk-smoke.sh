#!/usr/bin/env bash
# dpdk-smoke.sh BENCH [BIN] - the perf-dpdk-smoke meson test: dpcache-bench
# --dpdk against dpcached --net=dpdk over net_memif, a second each: UDP and
# TCP with one polling lcore, then UDP and TCP with two (flow discovery
# must give each bench lcore flows the server answers on its queue). Every
# run must verify its preload and its GET hits with errors=0, timeouts=0,
# misrouted=0. Skips (77) without root, without a DPDK build of both
# programs. Lcores float over all CPUs, and the server sleeps when idle
# (--poll-idle-us=50), so it runs on a small shared machine.
set -u
BENCH=${1:?usage: dpdk-smoke.sh BENCH [BIN]}
SERVER_BIN=${2:-$(cd "$(dirname "$0")/.." && pwd)/build/dataplane/dpcached}
LAST=$(( $(nproc) - 1 ))
WORK=$(mktemp -d /tmp/dpdk-smoke.XXXXXX)
TAG=dpsm$$
SRV_PID=""

stop_srv() {
	local i
	[ -n "$SRV_PID" ] || return 0
	kill -INT "$SRV_PID" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=""
}
trap 'stop_srv; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

skip() {
	echo "dpdk-smoke.sh: skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
[ -x "$SERVER_BIN" ] || skip "$SERVER_BIN not found"
"$BENCH" --help | grep -q 'not in this build' && skip "bench built without libdpdk"
"$SERVER_BIN" --help 2>&1 | grep -q -- '--net=' || skip "dpcached has no --net=dpdk"

fails=0
# run N PROTO: one server with N polling lcores, one bench run
run() {
	local n=$1 proto=$2 sock="$WORK/m.sock" udp_flag=() summary i
	[ "$proto" = udp ] && udp_flag=(--udp)
	rm -f "$sock"
	"$SERVER_BIN" --net=dpdk --ip=198.18.0.1/24 -p 11211 -U 11211 -m 64 \
		--poll-idle-us=50 -- --lcores="(0-$n)@(0-$LAST)" --no-huge -m 256 \
		--file-prefix="${TAG}s" --no-pci \
		--vdev="net_memif0,role=server,socket=$sock,socket-abstract=no" \
		>"$WORK/server.log" 2>&1 &
	SRV_PID=$!
	for i in $(seq 1 100); do
		[ -S "$sock" ] && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	summary=$(timeout 60 "$BENCH" --dpdk "${udp_flag[@]}" --conns 8 \
		--pipeline 4 --ratio 1:0 --keys 2000 --preload --duration 1 \
		--quiet -- --lcores="(0-$((n - 1)))@(0-$LAST)" --no-huge -m 256 \
		--file-prefix="${TAG}b" --no-pci \
		--vdev="net_memif0,role=client,socket=$sock,socket-abstract=no" \
		--log-level=lib.eal:warning 2>"$WORK/bench.err" | grep '^SUMMARY')
	stop_srv
	if [ -n "$summary" ] &&
	   echo "$summary" | grep -q ' get_hit_ratio=1.0000 ' &&
	   echo "$summary" | grep -q ' errors=0 timeouts=0 preload_errors=0 dpdk=1 misrouted=0 '; then
		echo "ok   $proto, $n lcore(s): $(echo "$summary" | grep -o 'ops_per_sec=[0-9]*')"
	else
		echo "FAIL $proto, $n lcore(s): ${summary:-no SUMMARY}"
		tail -3 "$WORK/bench.err"
		tail -3 "$WORK/server.log"
		fails=$((fails + 1))
	fi
}

for n in 1 2; do
	for proto in udp tcp; do
		run "$n" "$proto"
	done
done
[ "$fails" = 0 ]
