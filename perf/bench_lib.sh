# bench_lib.sh - shell helpers shared by the perf/ scripts (sourced, not run).
#
# Servers are started on 127.0.0.1 at a random port in 20000-60000, recorded
# in BENCH_PIDS, and stopped by PID only; bench_cleanup (installed as an EXIT
# trap by bench_init) ends whatever is still running.

BENCH_PIDS=""
PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$PERF_DIR/.." && pwd)
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}

bench_cleanup() {
	local pid
	for pid in $BENCH_PIDS; do
		kill "$pid" 2>/dev/null
	done
	for pid in $BENCH_PIDS; do
		wait "$pid" 2>/dev/null
	done
	BENCH_PIDS=""
	if [ -n "${SERVER_LOG:-}" ]; then
		rm -f "$SERVER_LOG"
	fi
}

bench_init() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# The load generator: $BENCH, else the first one built under the repo.
find_bench() {
	local b
	if [ -n "${BENCH:-}" ]; then
		echo "$BENCH"
		return 0
	fi
	for b in "$REPO_ROOT"/build/perf/dpcache-bench \
		 "$REPO_ROOT"/build-perf/perf/dpcache-bench; do
		if [ -x "$b" ]; then
			echo "$b"
			return 0
		fi
	done
	echo "dpcache-bench not found: build it (ninja -C build perf/dpcache-bench) or set BENCH=" >&2
	return 1
}

# A port nobody listens on (TCP checked; UDP uses the same number). It is
# drawn from 20000-32767, below Linux's ephemeral range (32768-60999), where
# a client socket of some other program could hold the port without
# listening, so the check would pass and the server's bind would fail.
pick_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 12768))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start_server BIN CPU PORT [extra flags...]: starts BIN with memcached's
# flags, pinned to CPU (empty = not pinned), and waits until it accepts.
# Sets SERVER_PID. Startup wait: SERVER_WAIT seconds (default 10).
start_server() {
	if start_server_once "$@"; then
		return 0
	fi
	# The port may have been taken between pick_port and bind: one
	# more try on another port (flags equal to the old port, as in
	# -U PORT, move too). Callers read the port back from SERVER_PORT.
	local bin=$1 cpu=$2 old=$3 new a args=()
	shift 3
	new=$(pick_port) || return 1
	for a in "$@"; do
		[ "$a" = "$old" ] && a=$new
		args+=("$a")
	done
	echo "start-up on port $old failed: retrying on port $new" >&2
	start_server_once "$bin" "$cpu" "$new" "${args[@]}"
}

start_server_once() {
	local bin=$1 cpu=$2 port=$3
	shift 3
	local pin=() user=() i
	SERVER_PORT=$port
	if [ -n "$cpu" ]; then
		pin=(taskset -c "$cpu")
	fi
	# memcached refuses to run as root without -u; dpcached has no -u.
	if [ "$(basename "$bin")" = memcached ] && [ "$(id -u)" = 0 ]; then
		user=(-u root)
	fi
	SERVER_LOG=${SERVER_LOG:-$(mktemp /tmp/dpcache-perf-server.XXXXXX)}
	"${pin[@]}" "$bin" "${user[@]}" -l 127.0.0.1 -p "$port" "$@" \
		>"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	BENCH_PIDS="$BENCH_PIDS $SERVER_PID"
	for i in $(seq 1 $((${SERVER_WAIT:-10} * 10))); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "server $bin exited during start-up:" >&2
			tail -3 "$SERVER_LOG" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "server $bin did not open port $port" >&2
	return 1
}

# stop_server PID: SIGTERM, then SIGKILL after 10 s.
stop_server() {
	local pid=$1 i
	kill "$pid" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	BENCH_PIDS=$(echo "$BENCH_PIDS" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
}

# VmRSS of a process, in KiB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# CPU time (user + system) of a process, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# field NAME LINE: the value of NAME=... in a SUMMARY line.
field() {
	echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# A memcached "stats" value over TCP.
server_stat() {
	local port=$1 name=$2 line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'stats\r\n' >&3
	while IFS= read -r -t 2 line <&3; do
		line=${line%$'\r'}
		[ "$line" = END ] && break
		set -- $line
		if [ "$2" = "$name" ]; then
			echo "$3"
		fi
	done
	exec 3>&-
}

default_dpcached() {
	echo "$REPO_ROOT/build/dataplane/dpcached"
}
