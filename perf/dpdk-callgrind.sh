#!/usr/bin/env bash
# dpdk-callgrind.sh [SERVER_BIN] - user-space instructions per GET of
# dpcached's DPDK data plane, over UDP and over TCP, counted by callgrind.
#
# Method (as callgrind.sh for the kernel path): dpcached --net=dpdk runs
# under callgrind with one polling lcore on a net_memif port (--no-huge),
# and dpcache-bench --dpdk preloads a small key set and sends N pipelined
# GET hits, then again with N/2:
#     Ir per get = (Ir(N run) - Ir(N/2 run)) / (N/2)
# A polling server also executes instructions while idle, and how long it
# idles differs between runs; so only the request path is collected:
# inclusive costs of the functions in COLLECT (default net_stack_input and
# net_stack_flush: Ethernet/IP/UDP/TCP input, the memcached protocol, the
# cache lookup, the reply and TCP output; not the PMD's RX/TX bursts nor
# the loop itself). COLLECT="" collects the whole process instead (then
# --poll-idle-us=1000 keeps idle polling small, but not zero). The TCP
# figure includes the ACKs the bench sends; the gets are pipelined 16 deep
# on 4 flows, so it is the batched cost.
# Environment: N (100000), PROTOS ("udp tcp"), COLLECT, BENCH. Root.
set -u
. "$(dirname "$0")/bench_lib.sh"
. "$(dirname "$0")/dpdk_lib.sh"

SERVER_BIN=${1:-$(default_dpcached)}
N=${N:-100000}
PROTOS=${PROTOS:-"udp tcp"}
COLLECT=${COLLECT-"net_stack_input net_stack_flush"}
BENCH=$(find_bench) || exit 1

if why=$(dpdk_missing "$BENCH" "$SERVER_BIN"); then
	die "$why"
fi
command -v valgrind >/dev/null || die "valgrind is not installed"
dpdk_init dpcg
# valgrind accepts no RLIMIT_NOFILE hard limit above its own: -c small
ulimit -Sn 1024
# valgrind writes the callgrind output when the server exits: give it time
SRV_STOP_SECONDS=30

TOGGLES=()
for f in $COLLECT; do
	TOGGLES+=("--toggle-collect=$f")
done

# total_ir PROTO REQUESTS: collected instructions of one server run.
total_ir() {
	local proto=$1 reqs=$2 out="$WORK/callgrind.out.$RANDOM" udp_flag=()
	[ "$proto" = udp ] && udp_flag=(--udp)
	SERVER_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$out"
		"${TOGGLES[@]}")
	memif_server_start 60 -m 64 -c 256 --poll-idle-us=1000 -- \
		--lcores=0@0,1@0 --no-huge -m 512 || return 1
	"$BENCH" --dpdk "${udp_flag[@]}" --conns 4 --pipeline 16 --ratio 1:0 \
		--keys 10000 --preload --requests "$reqs" --rto-ms 2000 \
		--wait 60 --quiet -- -l 1 --no-huge -m 256 "${MEMIF_BENCH_EAL[@]}" \
		2>"$WORK/bench.err" >"$WORK/summary"
	if ! grep -q ' errors=0 timeouts=0 preload_errors=0 ' "$WORK/summary"; then
		echo "dpdk-callgrind.sh: $proto: errors in the run: $(cat "$WORK/summary")" >&2
		tail -3 "$WORK/bench.err" >&2
	fi
	srv_stop
	awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "dpdk-callgrind.sh: $SERVER_BIN, memif, one polling lcore, collected: ${COLLECT:-whole process}"
printf '%-5s %14s %14s %12s\n' proto "Ir(${N})" "Ir($((N / 2)))" Ir_per_get
for proto in $PROTOS; do
	full=$(total_ir "$proto" "$N")
	half=$(total_ir "$proto" $((N / 2)))
	if [ -z "$full" ] || [ -z "$half" ]; then
		echo "dpdk-callgrind.sh: no callgrind totals for $proto" >&2
		continue
	fi
	printf '%-5s %14s %14s %12s\n' "$proto" "$full" "$half" \
		$(( (full - half) / (N / 2) ))
done
