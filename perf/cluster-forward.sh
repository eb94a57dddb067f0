#!/usr/bin/env bash
# cluster-forward.sh [SECONDS] - throughput of forwarded requests against
# local ones (issue 4, section 6: forwarded >= 0.5 x local).
#
# Two nodes on one ZooKeeper (started here, tests/control/zk-server.sh):
# A is the only active node, so it owns every key; B is started --standby:
# it is in the cluster, has the map, owns nothing, and forwards every
# request to A over its pipelined node-to-node connection.  The same
# dpcache-bench run (same keys, same mix) is aimed at A ("local": A serves
# every request itself) and at B ("forwarded": every request goes client ->
# B -> A -> B -> client).  That is the case "keys all owned by the other
# node" without choosing keys: dpcache-bench's key names are fixed, and a
# standby node owns none of them.  Runs alternate (local first in odd
# rounds) so drift hits both alike; the verdict is the median over rounds of
# forwarded/local ops per second.  'stats cluster' on B is checked to show
# that its requests really were forwarded (forwarded grows, local does not).
#
# With PIN=1 (the default) both nodes share CPU 0, so a forwarded request
# pays for both nodes' work on one core, where a real cluster gives each
# node its own: the ratio is then a lower bound.  PIN=0 lets the kernel
# place the two nodes and the bench on the two CPUs.
#
# Environment: ROUNDS (3), CONFIGS ("text:1 text:16 meta:16", proto:pipeline),
# KEYS (100000), CONNS (50), PIN (1: nodes on CPU 0, the bench on CPU 1 when
# there are two CPUs; 0: no pinning), DPCACHED, DPCACHECTL, BENCH (default:
# build/ then build-perf/), ZK_SERVER_SH (default tests/control/zk-server.sh).
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SECONDS_PER_RUN=${1:-4}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"text:1 text:16 meta:16"}
KEYS=${KEYS:-100000}
CONNS=${CONNS:-50}
PIN=${PIN:-1}
DPCACHED=${DPCACHED:-$(default_dpcached)}
DPCACHECTL=${DPCACHECTL:-$REPO_ROOT/build/control/dpcachectl}
ZK_SERVER_SH=${ZK_SERVER_SH:-$REPO_ROOT/tests/control/zk-server.sh}
BENCH=$(find_bench) || exit 1
[ -x "$DPCACHED" ] || die "dpcached not found at $DPCACHED (set DPCACHED)"
[ -x "$ZK_SERVER_SH" ] || die "$ZK_SERVER_SH not found"

SERVER_CPU=""
BENCH_CPU=""
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
	SERVER_CPU=0
	BENCH_CPU=1
fi

WORK=$(mktemp -d /tmp/cluster-forward.XXXXXX)
RESULTS=$WORK/results
ZK_DIR=$WORK/zk
cleanup() {
	cluster_cleanup "$ZK_SERVER_SH" "$ZK_DIR"
	rm -rf "$WORK"
}
trap cleanup EXIT

# start_node ID PORT [flags]: one cluster node, pinned like compare.sh's server.
start_node() {
	local id=$1 port=$2 admin
	shift 2
	admin=$(pick_port) || return 1
	SERVER_LOG=$WORK/$id.log start_server_once "$DPCACHED" "$SERVER_CPU" "$port" \
		-U 0 -t 1 -m 1024 -c 4096 --cluster="127.0.0.1:$ZK_PORT/fwdbench" \
		--node-id="$id" --advertise="127.0.0.1:$port" \
		--admin="127.0.0.1:$admin" --zk-session-ms=3000 --grace-ms=3000 "$@"
}

ZK_PORT=$(pick_port) || die "no free port"
"$ZK_SERVER_SH" start "$ZK_DIR" "$ZK_PORT" >/dev/null || die "ZooKeeper did not start"

A_PORT=$(pick_port) || die "no free port"
start_node n1 "$A_PORT" || die "node A did not start: $(tail -3 "$WORK/n1.log")"
A_PORT=$SERVER_PORT
A_PID=$SERVER_PID
B_PORT=$(pick_port) || die "no free port"
start_node n2 "$B_PORT" --standby || die "node B did not start: $(tail -3 "$WORK/n2.log")"
B_PORT=$SERVER_PORT

# Both nodes must have a map in which A owns everything.
for i in $(seq 1 100); do
	ea=$(cluster_stat "$A_PORT" map_epoch)
	eb=$(cluster_stat "$B_PORT" map_epoch)
	ma=$(cluster_stat "$A_PORT" migration)
	if [ -n "$ea" ] && [ "$ea" = "$eb" ] && [ "$ea" -gt 0 ] && [ "$ma" = 0 ] &&
	   [ "$(cluster_stat "$B_PORT" self_state)" != active ]; then
		break
	fi
	[ "$i" = 100 ] && die "the nodes did not agree on a map in 10 s (A epoch '$ea', B epoch '$eb')"
	sleep 0.1
done

pin=()
[ -n "$BENCH_CPU" ] && pin=(taskset -c "$BENCH_CPU")
"${pin[@]}" "$BENCH" --server "127.0.0.1:$A_PORT" --keys "$KEYS" --preload \
	--requests 0 --conns 8 --quiet >/dev/null

# run_one WHERE PROTO DEPTH ROUND: appends "config round where ops p50 p99 errors".
run_one() {
	local where=$1 proto=$2 depth=$3 round=$4 port summary
	port=$A_PORT
	[ "$where" = forwarded ] && port=$B_PORT
	summary=$("${pin[@]}" "$BENCH" --server "127.0.0.1:$port" --proto "$proto" \
		--conns "$CONNS" --threads 1 --pipeline "$depth" --ratio 9:1 \
		--keys "$KEYS" --key-size 16 --value-size 32 \
		--duration "$SECONDS_PER_RUN" --seed "$round" --quiet | grep '^SUMMARY')
	if [ -z "$summary" ]; then
		echo "cluster-forward.sh: no SUMMARY from the $where run" >&2
		return 1
	fi
	echo "$proto:$depth $round $where $(field ops_per_sec "$summary")" \
	     "$(field p50_us "$summary") $(field p99_us "$summary")" \
	     "$(( $(field errors "$summary") + $(field timeouts "$summary") ))" >>"$RESULTS"
}

fwd0=$(cluster_stat "$B_PORT" forwarded)
loc0=$(cluster_stat "$B_PORT" local)
echo "cluster-forward.sh: dpcached=$DPCACHED"
echo "  node A 127.0.0.1:$A_PORT (owns every key), node B 127.0.0.1:$B_PORT (--standby, forwards all)"
echo "  ${SECONDS_PER_RUN}s runs, $ROUNDS rounds, configs: $CONFIGS; nodes on CPU ${SERVER_CPU:-any}, bench on CPU ${BENCH_CPU:-any}"
echo "  90% get / 10% set, keys=$KEYS, 16-byte keys, 32-byte values, $CONNS conns"
for round in $(seq 1 "$ROUNDS"); do
	for cfg in $CONFIGS; do
		order="local forwarded"
		[ $((round % 2)) = 0 ] && order="forwarded local"
		for where in $order; do
			run_one "$where" "${cfg%%:*}" "${cfg##*:}" "$round" || exit 1
		done
	done
done
fwd1=$(cluster_stat "$B_PORT" forwarded)
loc1=$(cluster_stat "$B_PORT" local)
kill -0 "$A_PID" 2>/dev/null || die "node A died during the runs"

echo
print_runs "$RESULTS" '%-10s %5s %-10s %12s %9s %9s %7s\n' config round where \
	ops_per_sec p50_us p99_us errors
echo
echo "node B: forwarded +$((fwd1 - fwd0)), local +$((loc1 - loc0)) during the runs"
if [ "$((fwd1 - fwd0))" -le 0 ] || [ "$((loc1 - loc0))" -gt "$((ROUNDS * 100))" ]; then
	echo "WARNING: node B served requests itself: the forwarded runs did not measure forwarding"
fi
awk "$AWK_MEDIAN"'
{ k = $1 " " $2; ops[k, $3] = $4; p99[k, $3] = $6; cfg_of[k] = $1; err += $7
  if (!($1 in seen)) { seen[$1] = 1; cfgs[++n] = $1 } }
END {
	for (k in cfg_of) {
		if (ops[k, "local"] > 0 && ops[k, "forwarded"] > 0) {
			r = ops[k, "forwarded"] / ops[k, "local"]
			per[cfg_of[k]] = per[cfg_of[k]] " " r; all = all " " r
			lo[cfg_of[k]] = lo[cfg_of[k]] " " ops[k, "local"]
			fw[cfg_of[k]] = fw[cfg_of[k]] " " ops[k, "forwarded"]
			if (p99[k, "local"] > 0) pl[cfg_of[k]] = pl[cfg_of[k]] " " p99[k, "forwarded"] / p99[k, "local"]
		}
	}
	printf "%-10s %14s %14s %16s %14s\n", "config", "local_ops", "forwarded_ops", "ratio_throughput", "ratio_p99"
	for (i = 1; i <= n; i++) {
		c = cfgs[i]
		printf "%-10s %14s %14s %16s %14s\n", c, median(lo[c]), median(fw[c]), \
			(c in per) ? sprintf("%.3f", median(per[c])) : "n/a", \
			(c in pl) ? sprintf("%.3f", median(pl[c])) : "n/a"
	}
	if (all != "")
		printf "MEDIAN ratio forwarded/local: throughput=%.3f (target >= 0.5)\n", median(all)
	if (err > 0)
		printf "WARNING: %d errors or timeouts in these runs\n", err
}' "$RESULTS"
