#!/usr/bin/env bash
# dpdk-vs-memcached.sh [SERVER_BIN] [SECONDS] - dpcached's DPDK data plane
# against stock memcached, on the same veth pair, under the same load from
# the ordinary (kernel socket) dpcache-bench.
#
# A veth pair joins two network namespaces of this script's own (made by
# tools/dpdk-netns.sh): the server side (vdp0) and the client side (vcl0,
# 198.18.0.2). Each round runs both servers, one at a time, in alternating
# order so drift of the machine hits both alike:
#  (a) dpcached --net=dpdk --ip=198.18.0.1/24 on net_af_packet over vdp0,
#      one polling lcore (EAL main lcore and worker both on CPU 0);
#  (b) memcached -t 1 on CPU 0, listening on 198.18.0.1, which vdp0 gets
#      for that phase only.
# The bench runs in the client namespace on CPU 1 (as in compare.sh):
# preload, then 90% gets / 10% sets, 16-byte keys, 32-byte values,
# 50 connections. Prints a table and, per config, the median over rounds of
# the dpcached/memcached throughput and p99 ratios.
#
# Environment: ROUNDS (3), CONFIGS ("text:1 text:16 binary:16"; proto:depth,
# proto:depth:udp for UDP), KEYS (100000), MEM_MB (1024), POLL_IDLE_US (0:
# busy polling), BENCH (the bench). Needs root. Namespaces and servers are
# removed / stopped (by PID) on every exit.
set -u
. "$(dirname "$0")/bench_lib.sh"
. "$(dirname "$0")/dpdk_lib.sh"

SERVER_BIN=${1:-$(default_dpcached)}
SECONDS_PER_RUN=${2:-4}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"text:1 text:16 binary:16"}
KEYS=${KEYS:-100000}
MEM_MB=${MEM_MB:-1024}
POLL_IDLE_US=${POLL_IDLE_US:-0}
BENCH=$(find_bench) || exit 1
NETNS_TOOL=$REPO_ROOT/tools/dpdk-netns.sh
SRV_IP=198.18.0.1
PORT=11211

# the bench here is the kernel-socket one: only the server needs DPDK
if why=$(dpdk_missing "" "$SERVER_BIN"); then
	die "$why"
fi
[ -x "$MEMCACHED" ] || die "$MEMCACHED not found"

SERVER_CPU=0
BENCH_CPU=1
if [ "$(nproc)" -lt 2 ]; then
	die "needs 2 CPUs (server on CPU 0, bench on CPU 1)"
fi

dpdk_init dpvm netns_down
NAME=$TAG
DP=$NAME-dp
CL=$NAME-cl
RESULTS=$WORK/results

netns_down() {
	"$NETNS_TOOL" down "$NAME"
}

netns_up() {
	"$NETNS_TOOL" up "$NAME" >/dev/null
}

# Waits until a TCP connect from the client namespace succeeds.
wait_ready() {
	local i
	for i in $(seq 1 100); do
		if ip netns exec "$CL" timeout 1 bash -c \
			"exec 3<>/dev/tcp/$SRV_IP/$PORT" 2>/dev/null; then
			return 0
		fi
		kill -0 "$SRV_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_dpcached() {
	ip netns exec "$DP" "$SERVER_BIN" --net=dpdk --ip=$SRV_IP/24 -p $PORT \
		-U $PORT -m "$MEM_MB" -c 4096 --poll-idle-us="$POLL_IDLE_US" -- \
		--lcores=0@$SERVER_CPU,1@$SERVER_CPU --no-huge -m 512 \
		--file-prefix="$NAME" --no-pci \
		--vdev=net_af_packet0,iface=vdp0,qpairs=1 >"$DPDK_SERVER_LOG" 2>&1 &
	SRV_PID=$!
}

start_memcached() {
	ip -n "$DP" addr add $SRV_IP/24 dev vdp0 || return 1
	ip netns exec "$DP" taskset -c $SERVER_CPU "$MEMCACHED" -u root -t 1 \
		-l $SRV_IP -p $PORT -U $PORT -m "$MEM_MB" -c 4096 \
		>"$DPDK_SERVER_LOG" 2>&1 &
	SRV_PID=$!
}

# run_one NAME PROTO DEPTH UDP ROUND: appends
# "config round name ops_per_sec p50 p99 client_cpu errors"
run_one() {
	local name=$1 proto=$2 depth=$3 udp=$4 round=$5 summary cfg udp_flag=()
	cfg=$proto:$depth${udp:+:udp}
	[ -n "$udp" ] && udp_flag=(--udp)
	if [ "$name" = memcached ]; then
		start_memcached
	else
		start_dpcached
	fi
	if ! wait_ready; then
		echo "dpdk-vs-memcached.sh: $name did not start:" >&2
		tail -5 "$DPDK_SERVER_LOG" >&2
		srv_stop
		[ "$name" = memcached ] && ip -n "$DP" addr del $SRV_IP/24 dev vdp0
		return 1
	fi
	ip netns exec "$CL" taskset -c $BENCH_CPU "$BENCH" \
		--server $SRV_IP:$PORT --proto "$proto" --keys "$KEYS" --preload \
		--requests 0 --conns 8 --quiet >/dev/null
	summary=$(ip netns exec "$CL" taskset -c $BENCH_CPU "$BENCH" \
		--server $SRV_IP:$PORT --proto "$proto" "${udp_flag[@]}" \
		--conns 50 --threads 1 --pipeline "$depth" --ratio 9:1 \
		--keys "$KEYS" --key-size 16 --value-size 32 \
		--duration "$SECONDS_PER_RUN" --seed "$round" --quiet |
		grep '^SUMMARY')
	srv_stop
	if [ "$name" = memcached ]; then
		ip -n "$DP" addr del $SRV_IP/24 dev vdp0
	fi
	if [ -z "$summary" ]; then
		echo "dpdk-vs-memcached.sh: no SUMMARY from the run against $name" >&2
		return 1
	fi
	echo "$cfg $round $name $(field ops_per_sec "$summary")" \
	     "$(field p50_us "$summary") $(field p99_us "$summary")" \
	     "$(field client_cpu "$summary")" \
	     "$(( $(field errors "$summary") + $(field timeouts "$summary") + \
		  $(field preload_errors "$summary") ))" >>"$RESULTS"
}

netns_up || die "cannot set up the namespaces"
echo "dpdk-vs-memcached.sh: memcached=$MEMCACHED dpcached=$SERVER_BIN (--net=dpdk, net_af_packet on veth)"
echo "  ${SECONDS_PER_RUN}s runs, $ROUNDS rounds, configs: $CONFIGS"
echo "  server on CPU $SERVER_CPU (one polling lcore / -t 1, -m $MEM_MB, poll-idle-us=$POLL_IDLE_US), bench on CPU $BENCH_CPU"
echo "  90% get / 10% set, keys=$KEYS, 16-byte keys, 32-byte values, 50 conns"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
	for cfg in $CONFIGS; do
		IFS=: read -r proto depth udp <<<"$cfg"
		[ "$udp" = udp ] || udp=""
		order="memcached dpcached"
		[ $((round % 2)) = 0 ] && order="dpcached memcached"
		for name in $order; do
			run_one "$name" "$proto" "$depth" "$udp" "$round"
		done
	done
done

echo
print_runs "$RESULTS" '%-14s %5s %-9s %12s %9s %9s %7s %6s\n' config round \
	server ops_per_sec p50_us p99_us cli_cpu errors
echo
awk "$AWK_MEDIAN$AWK_PAIRS"'
{ add_run(); err += $8; busy += ($7 > 0.9) }
END {
	all_t = ratios(ops, "dpcached", "memcached", rt)
	all_l = ratios(p99, "dpcached", "memcached", rl)
	for (k in cfg_of) {
		mc[cfg_of[k]] = mc[cfg_of[k]] " " ops[k, "memcached"]
		dp[cfg_of[k]] = dp[cfg_of[k]] " " ops[k, "dpcached"]
	}
	printf "%-14s %14s %14s %18s %12s\n", "config", "memcached_ops", "dpcached_ops", "ratio_throughput", "ratio_p99"
	for (i = 1; i <= ncfg; i++) {
		c = cfgs[i]
		printf "%-14s %14s %14s %18s %12s\n", c, median(mc[c]), median(dp[c]), \
			(c in rt) ? sprintf("%.3f", median(rt[c])) : "n/a", \
			(c in rl) ? sprintf("%.3f", median(rl[c])) : "n/a"
	}
	if (all_t != "")
		printf "MEDIAN ratio dpcached-dpdk/memcached on veth: throughput=%.3f p99=%.3f\n", median(all_t), median(all_l)
	if (busy > 0)
		printf "NOTE: in %d runs the bench used > 90%% of its CPU: those runs measure the client, not the server\n", busy
	if (err > 0)
		printf "WARNING: %d errors or timeouts in these runs\n", err
}' "$RESULTS"
