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

# die MESSAGE: "script.sh: MESSAGE" on stderr, exit 1.
die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# skip MESSAGE: for a meson test that cannot run here: exit 77 (skipped).
skip() {
	echo "$(basename "$0"): skipped: $*"
	exit 77
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

# stop_server PID [SIGNAL [SECONDS]]: sends SIGNAL (default TERM), then
# SIGKILL if PID still runs after SECONDS (default 10); reaps it and drops
# it from BENCH_PIDS.
stop_server() {
	local pid=$1 sig=${2:-TERM} secs=${3:-10} i
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 1 $((secs * 10))); do
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

# print_runs FILE FORMAT HEADING...: the result rows of FILE ("config round
# server ..."), sorted by config, round and server, each printed with the
# printf FORMAT, under a heading of the words HEADING.
print_runs() {
	local file=$1 fmt=$2 row
	shift 2
	# shellcheck disable=SC2059
	printf "$fmt" "$@"
	sort -k1,1 -k2,2n -k3,3 "$file" | while read -r -a row; do
		# shellcheck disable=SC2059
		printf "$fmt" "${row[@]}"
	done
}

# awk functions for the scripts' result tables, to put in front of a
# program: awk "$AWK_MEDIAN"'{ ... }'.
#
# median(list): the median of a space-separated list of numbers; "n/a" for
# an empty list.
AWK_MEDIAN='
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	if (n == 0) return "n/a"
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
'

# For the dpcached-against-memcached tables (compare.sh,
# dpdk-vs-memcached.sh), whose rows start "config round server ops_per_sec
# p50_us p99_us"; a round key k is "config round".
#
# add_run(): records the current row: ops[k, server], p99[k, server],
#     cfg_of[k] = config, and cfgs[1..ncfg], the configs in first-seen order.
# paired(k): both servers ran in round k and memcached's throughput and p99
#     are > 0: ratios against memcached can be formed.
# ratios(v, a, b, per): for each paired k with v[k, b] > 0, the ratio
#     v[k, a] / v[k, b] appended to the list per[config]; returns all those
#     ratios as one list (for the overall median).
AWK_PAIRS='
function add_run(   k) {
	k = $1 " " $2
	ops[k, $3] = $4; p99[k, $3] = $6; cfg_of[k] = $1
	if (!($1 in cfg_seen)) { cfg_seen[$1] = 1; cfgs[++ncfg] = $1 }
}
function paired(k) {
	return ((k, "dpcached") in ops) && ops[k, "memcached"] > 0 && p99[k, "memcached"] > 0
}
function ratios(v, a, b, per,   k, r, all) {
	for (k in cfg_of) {
		if (paired(k) && v[k, b] > 0) {
			r = v[k, a] / v[k, b]
			per[cfg_of[k]] = per[cfg_of[k]] " " r
			all = all " " r
		}
	}
	return all
}
'

# ---- cluster benchmarks (cluster-forward.sh, cluster-move.sh) ---------------

# cluster_stat PORT NAME: one value of 'stats cluster'.
cluster_stat() {
	local port=$1 name=$2 line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'stats cluster\r\n' >&3
	while IFS= read -r -t 2 line <&3; do
		line=${line%$'\r'}
		[ "$line" = END ] && break
		set -- $line
		[ "$2" = "$name" ] && echo "$3"
	done
	exec 3>&-
}

# cluster_cleanup ZK_SERVER_SH ZK_DIR: the nodes this script started, by
# PID, SIGKILL after 5 s (a node that hangs must not hang the script:
# bench_cleanup alone waits for ever), then the ZooKeeper in ZK_DIR.
cluster_cleanup() {
	for pid in $BENCH_PIDS; do
		stop_server "$pid" TERM 5
	done
	bench_cleanup
	"$1" stop "$2" >/dev/null 2>&1
}
