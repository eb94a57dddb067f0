#!/usr/bin/env bash
# hitratio.sh [SERVER_BIN] - hit ratio of dpcached against memcached at the
# same memory limit (-m) under the same key stream.
#
# The stream is the look-aside cache pattern: a get, and on a miss a set of
# the same key (--fill-on-miss). Keys follow Zipf(0.99) over a key space
# several times larger than what -m holds, and 10% of requests are a
# sequential scan over a cold key range (one-hit wonders that a good policy
# keeps from flushing the hot set). One connection, one thread and a fixed
# seed make the stream the same for both servers (only the moment a fill is
# sent can move by up to the pipeline depth). A warm-up of WARMUP requests
# fills the cache; the hit ratio is then measured over REQUESTS requests.
#
# Two runs: VALUE_SIZE-byte values (default 500, so memory, not per-item
# overhead, is the constraint) and 32-byte values (where per-item overhead
# decides how many items fit). Environment: MEM_MB (64), KEYS (1000000),
# KEYS_SMALL (3000000), WARMUP (1000000), REQUESTS (1000000), BENCH.
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SERVER_BIN=${1:-$(default_dpcached)}
MEM_MB=${MEM_MB:-64}
VALUE_SIZE=${VALUE_SIZE:-500}
KEYS=${KEYS:-1000000}
KEYS_SMALL=${KEYS_SMALL:-3000000}
WARMUP=${WARMUP:-1000000}
REQUESTS=${REQUESTS:-1000000}
BENCH=$(find_bench) || exit 1

SERVERS="memcached dpcached"
if [ ! -x "$SERVER_BIN" ]; then
	echo "hitratio.sh: $SERVER_BIN not found: measuring memcached alone" >&2
	SERVERS="memcached"
fi

# measure BIN VALUE_SIZE KEYS: prints "hit_ratio hot_hit_ratio errors
# evictions".
measure() {
	local bin=$1 vsize=$2 keys=$3 port summary common evictions
	port=$(pick_port) || return 1
	start_server "$bin" "" "$port" -t 1 -m "$MEM_MB" -c 1024 || return 1
	port=$SERVER_PORT
	common=(--server "127.0.0.1:$port" --proto text --conns 1 --threads 1
		--pipeline 16 --ratio 1:0 --keys "$keys" --value-size "$vsize"
		--zipf 0.99 --scan-fraction 0.1 --fill-on-miss --quiet)
	"$BENCH" "${common[@]}" --requests "$WARMUP" --seed 1 >/dev/null
	summary=$("$BENCH" "${common[@]}" --requests "$REQUESTS" --seed 2 | grep '^SUMMARY')
	# Evictions show that memory, not the key stream, bounded the hits.
	evictions=$(server_stat "$port" evictions)
	stop_server "$SERVER_PID"
	echo "$(field get_hit_ratio "$summary") $(field hot_hit_ratio "$summary")" \
	     "$(( $(field errors "$summary") + $(field timeouts "$summary") ))" \
	     "${evictions:-?}"
}

echo "hitratio.sh: -m $MEM_MB, Zipf 0.99, 10% scans, fill on miss," \
     "warm-up $WARMUP then $REQUESTS measured requests"
printf '%-6s %-8s %-10s %10s %14s %7s %10s\n' value keys server hit_ratio \
	hit_w/o_scans errors evictions
for run in "$VALUE_SIZE $KEYS" "32 $KEYS_SMALL"; do
	set -- $run
	vsize=$1
	keys=$2
	declare -A hr=()
	for name in $SERVERS; do
		bin=$MEMCACHED
		[ "$name" = dpcached ] && bin=$SERVER_BIN
		read -r ratio hot errs evs < <(measure "$bin" "$vsize" "$keys")
		hr[$name]=$ratio
		printf '%-6s %-8s %-10s %10s %14s %7s %10s\n' "$vsize" "$keys" \
			"$name" "$ratio" "$hot" "$errs" "$evs"
	done
	if [ -n "${hr[dpcached]:-}" ]; then
		awk -v d="${hr[dpcached]}" -v m="${hr[memcached]}" -v v="$vsize" \
			'BEGIN { printf "RATIO value=%s hit_ratio dpcached/memcached=%.3f (target >= 1.0)\n", v, (m > 0 ? d / m : 0) }'
	fi
	unset hr
done
