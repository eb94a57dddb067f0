#!/usr/bin/env bash
# callgrind.sh [SERVER_BIN] - instructions per request of dpcached and of
# memcached, counted by valgrind's callgrind.
#
# Method: a server (-t 1) runs under callgrind twice: once serving N gets,
# once N/2, after the same small preload. Start-up, preload and shutdown
# cost the same in both runs, so
#     Ir per get = (Ir(N run) - Ir(N/2 run)) / (N/2)
# counts the request path alone (parse, lookup, reply, syscalls' user-side
# cost; the kernel is not counted). The gets are pipelined 16 deep on 4
# connections, so the figure is the batched cost; the same holds for both
# servers. Valgrind cannot change RLIMIT_NOFILE's hard limit: see FD_LIMIT.
# Environment: N (200000 gets), PROTO (text), BENCH.
set -u
. "$(dirname "$0")/bench_lib.sh"
bench_init

SERVER_BIN=${1:-$(default_dpcached)}
N=${N:-200000}
PROTO=${PROTO:-text}
FD_LIMIT=256
BENCH=$(find_bench) || exit 1
WORK=$(mktemp -d)
trap 'bench_cleanup; rm -rf "$WORK"' EXIT

if ! command -v valgrind >/dev/null; then
	echo "callgrind.sh: valgrind is not installed" >&2
	exit 1
fi

SERVERS="memcached dpcached"
if [ ! -x "$SERVER_BIN" ]; then
	echo "callgrind.sh: $SERVER_BIN not found: measuring memcached alone" >&2
	SERVERS="memcached"
fi

# total_ir BIN REQUESTS: total instructions of one server run.
total_ir() {
	local bin=$1 reqs=$2 port out i user=()
	out="$WORK/callgrind.out.$RANDOM"
	port=$(pick_port) || return 1
	if [ "$(basename "$bin")" = memcached ] && [ "$(id -u)" = 0 ]; then
		user=(-u root)
	fi
	# Started by hand: start_server would pass the flags to valgrind.
	# memcached sets both RLIMIT_NOFILE limits to -c, and valgrind only
	# accepts a hard limit equal to the soft limit it started with: so
	# the soft limit and -c are both FD_LIMIT.
	(ulimit -Sn "$FD_LIMIT" && exec valgrind --tool=callgrind \
		--callgrind-out-file="$out" "$bin" "${user[@]}" -l 127.0.0.1 \
		-p "$port" -t 1 -m 64 -c "$FD_LIMIT") >"$WORK/valgrind.log" 2>&1 &
	SERVER_PID=$!
	BENCH_PIDS="$BENCH_PIDS $SERVER_PID"
	# Start-up under valgrind takes seconds; wait up to 60.
	for i in $(seq 1 600); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "callgrind.sh: $bin exited under valgrind:" >&2
			tail -5 "$WORK/valgrind.log" >&2
			return 1
		fi
		sleep 0.1
	done
	"$BENCH" --server "127.0.0.1:$port" --proto "$PROTO" --conns 4 \
		--keys 10000 --preload --requests 0 --quiet >/dev/null
	"$BENCH" --server "127.0.0.1:$port" --proto "$PROTO" --conns 4 \
		--pipeline 16 --ratio 1:0 --keys 10000 --requests "$reqs" \
		--quiet >"$WORK/summary"
	if ! grep -q ' errors=0 ' "$WORK/summary"; then
		echo "callgrind.sh: errors in the run: $(cat "$WORK/summary")" >&2
	fi
	stop_server "$SERVER_PID"
	# "summary:" (or "totals:") holds the total Ir of the whole run.
	awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf '%-10s %14s %14s %14s\n' server "Ir(${N})" "Ir($((N / 2)))" Ir_per_get
declare -A per=()
for name in $SERVERS; do
	bin=$MEMCACHED
	[ "$name" = dpcached ] && bin=$SERVER_BIN
	full=$(total_ir "$bin" "$N")
	half=$(total_ir "$bin" $((N / 2)))
	if [ -z "$full" ] || [ -z "$half" ]; then
		echo "callgrind.sh: no callgrind totals for $name" >&2
		continue
	fi
	per[$name]=$(( (full - half) / (N / 2) ))
	printf '%-10s %14s %14s %14s\n' "$name" "$full" "$half" "${per[$name]}"
done
if [ -n "${per[dpcached]:-}" ] && [ -n "${per[memcached]:-}" ]; then
	awk -v d="${per[dpcached]}" -v m="${per[memcached]}" \
		'BEGIN { printf "RATIO instructions per get dpcached/memcached=%.3f\n", d / m }'
fi
