#!/usr/bin/env bash
# compare.sh [SERVER_BIN] [SECONDS] - throughput and p99 of dpcached against
# stock memcached under the same load, on the same cores.
#
# Each run starts one server alone, pinned to CPU 0 with -t 1 and the same
# -m, preloads the key space, then drives it from dpcache-bench pinned to
# CPU 1: 90% gets / 10% sets, 16-byte keys, 32-byte values, 50 connections,
# one client thread. Servers alternate run by run (memcached first in even
# rounds, dpcached first in odd ones) so slow drift of the machine hits both
# alike. The verdict is the median over rounds of dpcached/memcached.
#
# Environment: ROUNDS (3), CONFIGS ("text:1 text:16 binary:16 meta:16",
# proto:pipeline pairs), KEYS (100000), MEM_MB (1024), BENCH (the bench).
# Default total time: ROUNDS * configs * 2 * (SECONDS + ~1 s) = about 2 min.
# SERVER_BIN=/usr/bin/memcached compares memcached with itself (a check of
# the method: ratios should be near 1).
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SERVER_BIN=${1:-$(default_dpcached)}
SECONDS_PER_RUN=${2:-4}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"text:1 text:16 binary:16 meta:16"}
KEYS=${KEYS:-100000}
MEM_MB=${MEM_MB:-1024}
BENCH=$(find_bench) || exit 1

[ -x "$MEMCACHED" ] || die "$MEMCACHED not found"
SERVERS="memcached dpcached"
if [ ! -x "$SERVER_BIN" ]; then
	echo "compare.sh: $SERVER_BIN not found: measuring memcached alone" >&2
	SERVERS="memcached"
fi

# Pin only where there are two CPUs to pin to.
SERVER_CPU=0
BENCH_CPU=1
if [ "$(nproc)" -lt 2 ]; then
	SERVER_CPU=""
	BENCH_CPU=""
fi

RESULTS=$(mktemp)
trap 'bench_cleanup; rm -f "$RESULTS"' EXIT

# run_one NAME BIN PROTO PIPELINE ROUND: one server, one measured run;
# appends "config round name ops p50 p99 server_cpu client_cpu errors
# server_us_per_op". server_cpu is the share of a CPU the server used;
# server_us_per_op (its CPU time per request) holds steady even when other
# work on the machine steals time, unlike ops per second.
run_one() {
	local name=$1 bin=$2 proto=$3 depth=$4 round=$5
	local port pin=() summary t0 t1 pid secs
	port=$(pick_port) || return 1
	start_server "$bin" "$SERVER_CPU" "$port" -t 1 -m "$MEM_MB" -c 4096 || return 1
	port=$SERVER_PORT
	pid=$SERVER_PID
	if [ -n "$BENCH_CPU" ]; then
		pin=(taskset -c "$BENCH_CPU")
	fi
	"${pin[@]}" "$BENCH" --server "127.0.0.1:$port" --proto "$proto" \
		--keys "$KEYS" --preload --requests 0 --conns 8 --quiet >/dev/null
	t0=$(cpu_ticks "$pid")
	summary=$("${pin[@]}" "$BENCH" --server "127.0.0.1:$port" --proto "$proto" \
		--conns 50 --threads 1 --pipeline "$depth" --ratio 9:1 \
		--keys "$KEYS" --key-size 16 --value-size 32 \
		--duration "$SECONDS_PER_RUN" --seed "$round" --quiet | grep '^SUMMARY')
	t1=$(cpu_ticks "$pid")
	stop_server "$pid"
	if [ -z "$summary" ]; then
		echo "compare.sh: no SUMMARY from the run against $name" >&2
		return 1
	fi
	secs=$(field secs "$summary")
	echo "$proto:$depth $round $name $(field ops_per_sec "$summary")" \
	     "$(field p50_us "$summary") $(field p99_us "$summary")" \
	     "$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$secs" \
		'BEGIN { printf "%.2f", (s > 0 ? d / hz / s : 0) }')" \
	     "$(field client_cpu "$summary")" \
	     "$(( $(field errors "$summary") + $(field timeouts "$summary") ))" \
	     "$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
		-v n="$(field ops "$summary")" \
		'BEGIN { printf "%.2f", (n > 0 ? d / hz * 1e6 / n : 0) }')" >>"$RESULTS"
}

echo "compare.sh: memcached=$MEMCACHED dpcached=$SERVER_BIN"
echo "  ${SECONDS_PER_RUN}s runs, $ROUNDS rounds, configs: $CONFIGS"
echo "  server on CPU ${SERVER_CPU:-any} (-t 1 -m $MEM_MB), bench on CPU ${BENCH_CPU:-any}"
echo "  90% get / 10% set, keys=$KEYS, 16-byte keys, 32-byte values, 50 conns"
for round in $(seq 1 "$ROUNDS"); do
	for cfg in $CONFIGS; do
		proto=${cfg%%:*}
		depth=${cfg##*:}
		order=$SERVERS
		if [ $((round % 2)) = 0 ]; then
			order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
		fi
		for name in $order; do
			if [ "$name" = memcached ]; then
				run_one memcached "$MEMCACHED" "$proto" "$depth" "$round"
			else
				run_one dpcached "$SERVER_BIN" "$proto" "$depth" "$round"
			fi
		done
	done
done

echo
print_runs "$RESULTS" '%-10s %5s %-9s %12s %9s %9s %7s %7s %6s %10s\n' config round \
	server ops_per_sec p50_us p99_us srv_cpu cli_cpu errors srv_us/op

# Per config and overall: median over rounds of dpcached/memcached, where
# each round's ratio pairs the two runs of the same round.
echo
awk "$AWK_MEDIAN$AWK_PAIRS"'
{ add_run(); upo[$1 " " $2, $3] = $10
  err += $9; busy += ($8 > 0.9); idle += ($7 < 0.9) }
END {
	all_t = ratios(ops, "dpcached", "memcached", rt)
	all_l = ratios(p99, "dpcached", "memcached", rl)
	all_u = ratios(upo, "memcached", "dpcached", ru)
	for (k in cfg_of) {
		mc[cfg_of[k]] = mc[cfg_of[k]] " " ops[k, "memcached"]
		mcl[cfg_of[k]] = mcl[cfg_of[k]] " " p99[k, "memcached"]
	}
	printf "%-10s %14s %12s %18s %12s %18s\n", "config", "memcached_ops", "mc_p99_us", "ratio_throughput", "ratio_p99", "ratio_cpu_per_op"
	for (i = 1; i <= ncfg; i++) {
		c = cfgs[i]
		printf "%-10s %14s %12s %18s %12s %18s\n", c, median(mc[c]), median(mcl[c]), \
			(c in rt) ? sprintf("%.3f", median(rt[c])) : "n/a", \
			(c in rl) ? sprintf("%.3f", median(rl[c])) : "n/a", \
			(c in ru) ? sprintf("%.3f", median(ru[c])) : "n/a"
	}
	if (all_t != "") {
		printf "MEDIAN ratio dpcached/memcached: throughput=%.3f p99=%.3f (target >= 1.3 and <= 1.0)\n", median(all_t), median(all_l)
		printf "MEDIAN efficiency memcached_cpu_per_op/dpcached_cpu_per_op=%.3f (> 1: dpcached spends less CPU per request)\n", median(all_u)
	}
	if (idle > 0)
		printf "NOTE: in %d runs the server used < 90%% of its CPU: it was not the bottleneck (client-bound, or the machine is busy: see uptime)\n", idle
	if (busy > 0)
		printf "NOTE: in %d runs the bench used > 90%% of its CPU: those runs measure the client, not the server\n", busy
	if (err > 0)
		printf "WARNING: %d errors or timeouts in these runs\n", err
}' "$RESULTS"
