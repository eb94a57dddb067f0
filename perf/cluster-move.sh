#!/usr/bin/env bash
# cluster-move.sh [SLICE_SECONDS (0.5)] - adding a fourth node to a three-node
# cluster that holds 1M items, under steady load (issue 4, section 6): the
# time the move takes, and the p99 latency of the load before the move and
# during it.
#
# ZooKeeper (tests/control/zk-server.sh) and nodes n1..n3 are started here;
# dpcache-bench preloads ITEMS keys through n1 (any node accepts any key, so
# they spread over the three owners), then runs back-to-back slices of
# SLICE_SECONDS against n1 (90% get / 10% set over the same keys): BEFORE
# slices, then n4 starts (it joins on its own: the leader plans the
# migration) and slices go on until the map is stable with four nodes
# (n1's 'stats cluster': migration 0, map_nodes 4) - those are the DURING
# slices - then AFTER slices.  A background poller timestamps the end of the
# move every 100 ms.  Printed: each slice (phase, ops/s, p50, p99, errors),
# the move time (n4 started -> stable map), how many items moved (the
# sources' migrate_keys_sent), the median p99 and ops/s per phase and the
# ratio p99 during / before.
#
# Environment: ITEMS (1000000), BEFORE (5 slices), AFTER (3), CONNS (20),
# MIGRATE_RATE (MB/s per source, default: dpcached's), MOVE_TIMEOUT (300 s),
# DPCACHED, BENCH, ZK_SERVER_SH.  Unpinned: four nodes, ZooKeeper and the
# bench share the machine's CPUs.
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SLICE=${1:-0.5}
ITEMS=${ITEMS:-1000000}
BEFORE=${BEFORE:-5}
AFTER=${AFTER:-3}
CONNS=${CONNS:-20}
MIGRATE_RATE=${MIGRATE_RATE:-}
MOVE_TIMEOUT=${MOVE_TIMEOUT:-300}
DPCACHED=${DPCACHED:-$(default_dpcached)}
ZK_SERVER_SH=${ZK_SERVER_SH:-$REPO_ROOT/tests/control/zk-server.sh}
BENCH=$(find_bench) || exit 1
[ -x "$DPCACHED" ] || die "dpcached not found at $DPCACHED (set DPCACHED)"
[ -x "$ZK_SERVER_SH" ] || die "$ZK_SERVER_SH not found"

WORK=$(mktemp -d /tmp/cluster-move.XXXXXX)
ZK_DIR=$WORK/zk
POLL_PID=""
cleanup() {
	[ -n "$POLL_PID" ] && kill "$POLL_PID" 2>/dev/null && wait "$POLL_PID" 2>/dev/null
	cluster_cleanup "$ZK_SERVER_SH" "$ZK_DIR"
	rm -rf "$WORK"
}
trap cleanup EXIT

# stable_with PORT N: true when the node's map is stable with N nodes.
stable_with() {
	[ "$(cluster_stat "$1" migration)" = 0 ] && [ "$(cluster_stat "$1" map_nodes)" = "$2" ]
}

now_ms() {
	date +%s%3N
}

PORTS=()
PIDS=()
# start_node ID: a cluster node on a fresh port (n4 too: it joins by itself).
start_node() {
	local id=$1 port admin extra=()
	port=$(pick_port) || return 1
	admin=$(pick_port) || return 1
	[ -n "$MIGRATE_RATE" ] && extra=(--migrate-rate="$MIGRATE_RATE")
	SERVER_LOG=$WORK/$id.log start_server_once "$DPCACHED" "" "$port" \
		-U 0 -t 1 -m 512 -c 4096 --cluster="127.0.0.1:$ZK_PORT/movebench" \
		--node-id="$id" --advertise="127.0.0.1:$port" \
		--admin="127.0.0.1:$admin" --zk-session-ms=3000 --grace-ms=3000 \
		"${extra[@]}" || die "node $id did not start: $(tail -3 "$WORK/$id.log")"
	PORTS+=("$SERVER_PORT")
	PIDS+=("$SERVER_PID")
}

ZK_PORT=$(pick_port) || die "no free port"
"$ZK_SERVER_SH" start "$ZK_DIR" "$ZK_PORT" >/dev/null || die "ZooKeeper did not start"
for id in n1 n2 n3; do
	start_node "$id"
done
P1=${PORTS[0]}
for i in $(seq 1 300); do
	stable_with "$P1" 3 && break
	[ "$i" = 300 ] && die "no stable three-node map within 30 s"
	sleep 0.1
done

echo "cluster-move.sh: dpcached=$DPCACHED, $ITEMS items, ${SLICE}s slices, $CONNS conns against n1"
t=$(now_ms)
pre=$("$BENCH" --server "127.0.0.1:$P1" --keys "$ITEMS" --preload --requests 0 \
	--conns 16 --pipeline 16 --key-size 16 --value-size 32 --quiet | grep '^SUMMARY')
[ "$(field preload_errors "$pre")" = 0 ] || die "preload errors: $pre"
items=0
for p in "${PORTS[@]}"; do
	items=$((items + $(server_stat "$p" curr_items)))
done
echo "  preloaded in $(( ($(now_ms) - t) / 1000 )) s; items on n1..n3: $items"
[ "$items" -ge "$ITEMS" ] || echo "WARNING: fewer items than keys (evictions? raise -m)"

# node_report: after a failed slice, whether each node still runs and
# answers, and the tail of its log.
node_report() {
	local i id
	for i in "${!PORTS[@]}"; do
		id=n$((i + 1))
		if kill -0 "${PIDS[$i]}" 2>/dev/null; then
			echo "$id (pid ${PIDS[$i]}, port ${PORTS[$i]}): running;" \
			     "migration=$(timeout 3 bash -c "$(declare -f cluster_stat); cluster_stat ${PORTS[$i]} migration")" \
			     "state: $(awk '{ print $3 }' "/proc/${PIDS[$i]}/stat")" >&2
		else
			echo "$id (pid ${PIDS[$i]}): not running" >&2
		fi
		tail -3 "$WORK/$id.log" >&2
	done
}

SLICES=$WORK/slices
# slice PHASE N: one measured slice, appended as "N phase ops p50 p99 errors".
slice() {
	local s
	s=$("$BENCH" --server "127.0.0.1:$P1" --proto text --conns "$CONNS" --threads 1 \
		--ratio 9:1 --keys "$ITEMS" --key-size 16 --value-size 32 \
		--duration "$SLICE" --seed "$2" --quiet | grep '^SUMMARY')
	if [ -z "$s" ]; then
		node_report
		die "no SUMMARY from slice $2"
	fi
	echo "$2 $1 $(field ops_per_sec "$s") $(field p50_us "$s") $(field p99_us "$s")" \
	     "$(( $(field errors "$s") + $(field timeouts "$s") ))" >>"$SLICES"
}

n=0
for i in $(seq 1 "$BEFORE"); do
	n=$((n + 1)); slice before "$n"
done

# The poller writes the time the move ended (stable map with four nodes).
DONE_FILE=$WORK/done_ms
(
	while ! stable_with "$P1" 4 2>/dev/null; do
		sleep 0.1
	done
	now_ms >"$DONE_FILE"
) &
POLL_PID=$!
t_add=$(now_ms)
start_node n4
echo "  n4 started at +0 ms on 127.0.0.1:${PORTS[3]}"
while [ ! -s "$DONE_FILE" ]; do
	n=$((n + 1)); slice during "$n"
	if [ $(( $(now_ms) - t_add )) -gt $((MOVE_TIMEOUT * 1000)) ]; then
		die "the move did not end within $MOVE_TIMEOUT s"
	fi
done
wait "$POLL_PID" 2>/dev/null
POLL_PID=""
move_ms=$(( $(cat "$DONE_FILE") - t_add ))
for i in $(seq 1 "$AFTER"); do
	n=$((n + 1)); slice after "$n"
done
for i in 0 1 2 3; do
	kill -0 "${PIDS[$i]}" 2>/dev/null || die "node n$((i + 1)) died"
done

sent=0
for p in "${PORTS[@]:0:3}"; do
	sent=$((sent + $(cluster_stat "$p" migrate_keys_sent)))
done
n4items=$(server_stat "${PORTS[3]}" curr_items)

echo
printf '%-6s %-7s %12s %9s %9s %7s\n' slice phase ops_per_sec p50_us p99_us errors
while read -r -a row; do
	printf '%-6s %-7s %12s %9s %9s %7s\n' "${row[@]}"
done <"$SLICES"
echo
echo "move: n4 started -> stable map in $move_ms ms; keys streamed by n1..n3: $sent; items on n4: $n4items (ideal ~$((ITEMS / 4)))"
awk "$AWK_MEDIAN"'
{ p99[$2] = p99[$2] " " $5; ops[$2] = ops[$2] " " $3; cnt[$2]++; err += $6 }
END {
	printf "%-7s %7s %14s %12s\n", "phase", "slices", "median_ops", "median_p99"
	split("before during after", ph, " ")
	for (i = 1; i <= 3; i++)
		printf "%-7s %7d %14s %12s\n", ph[i], cnt[ph[i]], median(ops[ph[i]]), median(p99[ph[i]])
	b = median(p99["before"]); d = median(p99["during"])
	if (cnt["during"] > 0 && b > 0)
		printf "RATIO p99 during/before = %.3f\n", d / b
	else
		printf "RATIO p99 during/before = n/a (the move ended within one slice: use a smaller SLICE or a lower MIGRATE_RATE)\n"
	if (err > 0)
		printf "WARNING: %d errors or timeouts in the slices\n", err
}' "$SLICES"
