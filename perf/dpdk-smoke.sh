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
. "$(dirname "$0")/bench_lib.sh"
. "$(dirname "$0")/dpdk_lib.sh"

BENCH=${1:?usage: dpdk-smoke.sh BENCH [BIN]}
SERVER_BIN=${2:-$(default_dpcached)}
LAST=$(( $(nproc) - 1 ))

if why=$(dpdk_missing "$BENCH" "$SERVER_BIN"); then
	skip "$why"
fi
dpdk_init dpsm

fails=0
# run N PROTO: one server with N polling lcores, one bench run
run() {
	local n=$1 proto=$2 udp_flag=() summary=""
	[ "$proto" = udp ] && udp_flag=(--udp)
	if memif_server_start 10 -m 64 --poll-idle-us=50 -- \
		--lcores="(0-$n)@(0-$LAST)" --no-huge -m 256; then
		summary=$(timeout 60 "$BENCH" --dpdk "${udp_flag[@]}" --conns 8 \
			--pipeline 4 --ratio 1:0 --keys 2000 --preload --duration 1 \
			--quiet -- --lcores="(0-$((n - 1)))@(0-$LAST)" --no-huge -m 256 \
			"${MEMIF_BENCH_EAL[@]}" 2>"$WORK/bench.err" | grep '^SUMMARY')
		srv_stop
	fi
	if [ -n "$summary" ] &&
	   echo "$summary" | grep -q ' get_hit_ratio=1.0000 ' &&
	   echo "$summary" | grep -q ' errors=0 timeouts=0 preload_errors=0 dpdk=1 misrouted=0 '; then
		echo "ok   $proto, $n lcore(s): $(echo "$summary" | grep -o 'ops_per_sec=[0-9]*')"
	else
		echo "FAIL $proto, $n lcore(s): ${summary:-no SUMMARY}"
		tail -3 "$WORK/bench.err" 2>/dev/null
		tail -3 "$DPDK_SERVER_LOG"
		fails=$((fails + 1))
	fi
}

for n in 1 2; do
	for proto in udp tcp; do
		run "$n" "$proto"
	done
done
[ "$fails" = 0 ]
