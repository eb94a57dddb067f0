#!/usr/bin/env bash
# smoke.sh BENCH [DPCACHED] - perf-smoke test: dpcache-bench runs for a
# couple of seconds against a memcached it starts (text, meta, binary over
# TCP and text over UDP) and, when DPCACHED names a built binary, against
# dpcached too; every run must print a SUMMARY line with errors=0 and ops>0.
# Exit 77 (skipped) without /usr/bin/memcached.
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

BENCH=${1:-}
DPCACHED=${2:-}
if [ -z "$BENCH" ]; then
	BENCH=$(find_bench) || exit 1
fi
if [ ! -x "$MEMCACHED" ]; then
	echo "smoke.sh: SKIP: $MEMCACHED is not installed (apt-get install memcached)"
	exit 77
fi

failures=0

# check NAME ARGS...: one bench run, judged by its SUMMARY line.
check() {
	local name=$1 out summary
	shift
	out=$("$BENCH" "$@" 2>&1)
	summary=$(echo "$out" | grep '^SUMMARY')
	if [ -n "$summary" ] && [ "$(field errors "$summary")" = 0 ] &&
	   [ "$(field ops "$summary")" -gt 0 ] &&
	   [ "$(field preload_errors "$summary")" = 0 ]; then
		echo "ok   $name: $summary"
	else
		echo "FAIL $name:"
		echo "$out" | tail -5
		failures=$((failures + 1))
	fi
}

# against NAME BIN: the suite against one server with TCP and UDP on.
against() {
	local name=$1 bin=$2 port addr
	port=$(pick_port) || return 1
	if ! start_server "$bin" "" "$port" -U "$port" -t 1 -m 64; then
		echo "FAIL $name: server did not start"
		failures=$((failures + 1))
		return
	fi
	addr="127.0.0.1:$SERVER_PORT"
	check "$name text" --server "$addr" --proto text --conns 8 --pipeline 4 \
		--keys 1000 --preload --duration 1 --zipf 0.99 --quiet
	check "$name meta" --server "$addr" --proto meta --conns 4 --pipeline 8 \
		--keys 1000 --duration 0.3 --quiet
	check "$name binary" --server "$addr" --proto binary --conns 4 --pipeline 8 \
		--keys 1000 --duration 0.3 --quiet
	check "$name text udp" --server "$addr" --proto text --udp --conns 2 \
		--pipeline 2 --keys 1000 --duration 0.3 --quiet
	check "$name fill-on-miss" --server "$addr" --proto text --conns 1 \
		--pipeline 4 --keys 5000 --zipf 0.99 --scan-fraction 0.1 \
		--fill-on-miss --ratio 1:0 --requests 2000 --quiet
	stop_server "$SERVER_PID"
}

against memcached "$MEMCACHED"
if [ -n "$DPCACHED" ] && [ -x "$DPCACHED" ]; then
	against dpcached "$DPCACHED"
else
	echo "note: no dpcached at '${DPCACHED}': checked against memcached only"
fi
if [ "$failures" -gt 0 ]; then
	echo "smoke.sh: $failures check(s) failed"
	exit 1
fi
echo "smoke.sh: all checks passed"
