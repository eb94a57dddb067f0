#!/usr/bin/env bash
# rss.sh [SERVER_BIN] - resident memory of 1M items (16-byte keys, 32-byte
# values) in dpcached against memcached, both with -m 1024 -t 1.
#
# VmRSS is read from /proc/PID/status right after start-up and again after
# the load (and a short pause, so lazily freed memory has settled); the
# difference is what the items cost. The item count is checked with
# "stats" (curr_items) so a server that dropped items cannot look small.
# Environment: ITEMS (1000000), MEM_MB (1024), BENCH.
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SERVER_BIN=${1:-$(default_dpcached)}
ITEMS=${ITEMS:-1000000}
MEM_MB=${MEM_MB:-1024}
BENCH=$(find_bench) || exit 1

SERVERS="memcached dpcached"
if [ ! -x "$SERVER_BIN" ]; then
	echo "rss.sh: $SERVER_BIN not found: measuring memcached alone" >&2
	SERVERS="memcached"
fi

printf '%-10s %12s %12s %12s %12s %8s\n' server rss_start_kb rss_loaded_kb \
	delta_kb bytes_per_item items
declare -A total=()
for name in $SERVERS; do
	bin=$MEMCACHED
	[ "$name" = dpcached ] && bin=$SERVER_BIN
	port=$(pick_port) || exit 1
	start_server "$bin" "" "$port" -t 1 -m "$MEM_MB" -c 1024 || exit 1
	port=$SERVER_PORT
	before=$(rss_kb "$SERVER_PID")
	summary=$("$BENCH" --server "127.0.0.1:$port" --proto text --conns 4 \
		--keys "$ITEMS" --key-size 16 --value-size 32 --preload \
		--requests 0 --quiet | grep '^SUMMARY')
	if [ "$(field preload_errors "$summary")" != 0 ]; then
		echo "rss.sh: preload into $name had errors: $summary" >&2
	fi
	sleep 1
	after=$(rss_kb "$SERVER_PID")
	items=$(server_stat "$port" curr_items)
	stop_server "$SERVER_PID"
	total[$name]=$after
	printf '%-10s %12s %12s %12s %12s %8s\n' "$name" "$before" "$after" \
		$((after - before)) $(((after - before) * 1024 / ITEMS)) "${items:-?}"
done
if [ -n "${total[dpcached]:-}" ]; then
	awk -v d="${total[dpcached]}" -v m="${total[memcached]}" \
		'BEGIN { printf "RATIO rss dpcached/memcached=%.3f (target <= 1.0)\n", d / m }'
fi
