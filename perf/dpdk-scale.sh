#!/usr/bin/env bash
# dpdk-scale.sh [SERVER_BIN] [MAXCORES] - per-core throughput of dpcached's
# DPDK data plane and how it scales with polling cores, with no kernel on
# the path: dpcache-bench --dpdk talks to the server over net_memif.
#
# For n = 1..MAXCORES: start dpcached --net=dpdk with n polling lcores on one
# memif port with n queue pairs, preload KEYS keys, then drive GET hits
# (16-byte keys, 32-byte values) from a bench with n lcores (one queue
# each, CONNS_PER_CORE flows per lcore, PIPELINE requests in flight per
# flow), over UDP and over TCP. Prints, per protocol: cores, Mops total,
# Mops per core, scaling efficiency Mops(n) / (n * Mops(1)), p99, errors.
#
# CPUs: the server's EAL main lcore (never polls) is on CPU 0. With 2n+1
# CPUs or more, server workers get CPUs 1..n and the bench n+1..2n; with 2n
# CPUs the workers share CPU 0 with the main lcore, which sleeps (what a
# 2-CPU machine does for n=1, and a 16-CPU one for n=8); with fewer, lcores
# wrap around the CPUs and the row is marked "shared": its numbers measure
# the scheduler, not the data plane. MAXCORES defaults to NCPU/2, the
# largest n where no polling lcore shares a CPU (at least 1).
#
# The last column, Mops_per_cpu_s, divides the requests by the CPU time the
# server's polling threads really got (from /proc, after flow discovery):
# the per-core rate with a dedicated core, which stays meaningful on a
# machine where other work preempts the pollers (it is a lower bound: a
# poller also burns CPU while the bench is the one preempted).
#
# Memory: --no-huge (memif works without hugepages) unless HUGEPAGES=N,
# which reserves N more 2 MB pages for the run, mounts hugetlbfs on
# /dev/hugepages if nothing is mounted there, and gives both back at exit.
#
# Environment: SECONDS_PER_RUN (5), KEYS (100000), CONNS_PER_CORE (16),
# PIPELINE_UDP (32), PIPELINE_TCP (16), PROTOS ("udp tcp"), ROUNDS (1: the
# table shows the best of ROUNDS runs, and their median in the last
# column: on a shared machine the best is the least disturbed run),
# POLL_IDLE_US (0), BENCH (the bench).
# Needs root (DPDK), and a bench built with libdpdk.
set -u
. "$(dirname "$0")/bench_lib.sh"
. "$(dirname "$0")/dpdk_lib.sh"

SERVER_BIN=${1:-$(default_dpcached)}
NCPU=$(nproc)
DEFAULT_MAX=$(( NCPU / 2 ))
[ "$DEFAULT_MAX" -ge 1 ] || DEFAULT_MAX=1
MAXCORES=${2:-$DEFAULT_MAX}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
KEYS=${KEYS:-100000}
CONNS_PER_CORE=${CONNS_PER_CORE:-16}
PIPELINE_UDP=${PIPELINE_UDP:-32}
PIPELINE_TCP=${PIPELINE_TCP:-16}
PROTOS=${PROTOS:-"udp tcp"}
ROUNDS=${ROUNDS:-1}
POLL_IDLE_US=${POLL_IDLE_US:-0}
HUGEPAGES=${HUGEPAGES:-0}
BENCH=$(find_bench) || exit 1

if why=$(dpdk_missing "$BENCH" "$SERVER_BIN"); then
	die "$why"
fi
case "$MAXCORES" in ''|*[!0-9]*|0) die "bad MAXCORES '$MAXCORES'" ;; esac

HUGE_OLD=""
HUGE_MOUNTED=0

# At exit, after the server is stopped: the hugepages and the mount back.
huge_restore() {
	if [ -n "$HUGE_OLD" ]; then
		echo "$HUGE_OLD" >/proc/sys/vm/nr_hugepages
	fi
	if [ "$HUGE_MOUNTED" = 1 ]; then
		umount /dev/hugepages 2>/dev/null
	fi
}
dpdk_init dpscale huge_restore
RESULTS=$WORK/results

if [ "$HUGEPAGES" -gt 0 ]; then
	HUGE_OLD=$(cat /proc/sys/vm/nr_hugepages)
	echo $((HUGE_OLD + HUGEPAGES)) >/proc/sys/vm/nr_hugepages
	if ! mountpoint -q /dev/hugepages; then
		mkdir -p /dev/hugepages
		mount -t hugetlbfs nodev /dev/hugepages || die "cannot mount hugetlbfs"
		HUGE_MOUNTED=1
	fi
	MEMOPT() { echo "--in-memory"; }
else
	MEMOPT() { echo "--no-huge -m $1"; }
fi

# cpu_maps N: sets SRV_LCORES and BENCH_LCORES (EAL --lcores maps) and
# SHARED (1 when an lcore had to share a CPU with a polling one).
cpu_maps() {
	local n=$1 i first_w first_b s="" b=""
	SHARED=0
	if [ $((2 * n + 1)) -le "$NCPU" ]; then
		first_w=1
		first_b=$((n + 1))
	elif [ $((2 * n)) -le "$NCPU" ]; then
		first_w=0
		first_b=$n
	else
		first_w=1
		first_b=$((n + 1))
		SHARED=1
	fi
	s="0@0"
	for i in $(seq 1 "$n"); do
		s="$s,$i@$(( (first_w + i - 1) % NCPU ))"
		b="${b:+$b,}$((i - 1))@$(( (first_b + i - 1) % NCPU ))"
	done
	SRV_LCORES=$s
	BENCH_LCORES=$b
}

# worker_ticks PID: CPU ticks (user + system) of PID's polling lcores.
worker_ticks() {
	local t sum=0
	for t in /proc/"$1"/task/*; do
		case "$(cat "$t/comm" 2>/dev/null)" in
		rte-worker-*|lcore-worker-*)
			sum=$((sum + $(awk '{ print $14 + $15 }' "$t/stat"))) ;;
		esac
	done
	echo "$sum"
}

# run_one PROTO N ROUND: one server with N polling lcores, one bench run;
# appends "proto n round ops_per_sec p99 errors timeouts client_cpu shared".
run_one() {
	local proto=$1 n=$2 round=$3 udp_flag="" pipeline=$PIPELINE_TCP summary rc
	if [ "$proto" = udp ]; then
		# a UDP request is a timeout only after 1 s: on a shared
		# machine a preempted poller stalls a whole window for longer
		# than the default 200 ms
		udp_flag="--udp --rto-ms 1000"
		pipeline=$PIPELINE_UDP
	fi
	cpu_maps "$n"
	# shellcheck disable=SC2046
	memif_server_start 10 -m 1024 -c 65536 --poll-idle-us="$POLL_IDLE_US" \
		-- --lcores="$SRV_LCORES" $(MEMOPT $((256 + 64 * n))) || return 1
	# shellcheck disable=SC2046
	timeout $((SECONDS_PER_RUN * 3 + 120)) "$BENCH" --dpdk $udp_flag \
		--server 198.18.0.1:11211 --conns $((CONNS_PER_CORE * n)) \
		--pipeline "$pipeline" --ratio 1:0 --keys "$KEYS" --key-size 16 \
		--value-size 32 --preload --duration "$SECONDS_PER_RUN" \
		--seed "$round" -- --lcores="$BENCH_LCORES" \
		$(MEMOPT 512) "${MEMIF_BENCH_EAL[@]}" \
		>"$WORK/bench.out" 2>"$WORK/bench.err" &
	bpid=$!
	# The server's polling CPU time from the end of flow discovery (the
	# bench's "flows" line) to the end of the run.
	t0=""
	while kill -0 "$bpid" 2>/dev/null; do
		if [ -z "$t0" ] && grep -q ' flows$' "$WORK/bench.err" 2>/dev/null; then
			t0=$(worker_ticks "$SRV_PID")
		fi
		sleep 0.02
	done
	wait "$bpid"
	rc=$?
	t1=$(worker_ticks "$SRV_PID")
	summary=$(grep '^SUMMARY' "$WORK/bench.out")
	srv_stop
	if [ $rc != 0 ] || [ -z "$summary" ]; then
		echo "dpdk-scale.sh: $proto n=$n: no SUMMARY from the bench:" >&2
		tail -5 "$WORK/bench.err" >&2
		return 1
	fi
	echo "$proto $n $round $(field ops_per_sec "$summary") $(field p99_us "$summary")" \
	     "$(( $(field errors "$summary") + $(field preload_errors "$summary") ))" \
	     "$(field timeouts "$summary") $(field client_cpu "$summary") $SHARED" \
	     "$(awk -v o="$(field ops "$summary")" -v d=$((t1 - ${t0:-$t1})) \
		-v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (d > 0 ? o * hz / d : 0) }')" \
	     >>"$RESULTS"
}

echo "dpdk-scale.sh: server=$SERVER_BIN bench=$BENCH"
echo "  $NCPU CPUs, n = 1..$MAXCORES polling lcores, ${SECONDS_PER_RUN}s per run, $ROUNDS round(s)"
echo "  GET hits, keys=$KEYS, 16-byte keys, 32-byte values, $CONNS_PER_CORE flows per core," \
     "pipeline udp=$PIPELINE_UDP tcp=$PIPELINE_TCP, memif, $([ "$HUGEPAGES" -gt 0 ] && echo hugepages || echo --no-huge)"
: >"$RESULTS"
for proto in $PROTOS; do
	for n in $(seq 1 "$MAXCORES"); do
		for round in $(seq 1 "$ROUNDS"); do
			run_one "$proto" "$n" "$round"
		done
	done
done

echo
awk "$AWK_MEDIAN"'
{ k = $1 " " $2
  all[k] = all[k] " " $4
  if (!(k in best) || $4 + 0 > best[k]) {
	best[k] = $4; p99[k] = $5; err[k] = $6; tmo[k] = $7; cli[k] = $8; sh[k] = $9 }
  if ($10 + 0 > percpu[k]) percpu[k] = $10
  protos[$1] = 1; if ($2 > maxn) maxn = $2 }
END {
	printf "%-5s %5s %11s %14s %10s %9s %7s %9s %8s %11s %14s\n", "proto", "cores", "Mops_total", "Mops_per_core", "efficiency", "p99_us", "errors", "timeouts", "cli_busy", "median_Mops", "Mops_per_cpu_s"
	split("udp tcp", order, " ")
	for (o = 1; o <= 2; o++) {
		p = order[o]
		if (!(p in protos)) continue
		base = best[p " 1"] / 1e6
		for (n = 1; n <= maxn; n++) {
			k = p " " n
			if (!(k in best)) { printf "%-5s %5d %11s\n", p, n, "failed"; continue }
			m = best[k] / 1e6
			printf "%-5s %5d %11.3f %14.3f %10s %9s %7d %9d %8s %11.3f %14.3f%s\n", p, n, m, m / n, \
				(base > 0 ? sprintf("%.3f", m / (n * base)) : "n/a"), \
				p99[k], err[k], tmo[k], cli[k], median(all[k]) / 1e6, \
				percpu[k] / 1e6, \
				(sh[k] ? "  shared" : "")
			if (err[k] + tmo[k] > 0) bad++
			if (cli[k] > 0.9) busy++
		}
	}
	if (busy > 0)
		printf "NOTE: in %d rows the bench was busy > 90%% of the time: it, not the server, may be the limit\n", busy
	if (bad > 0)
		printf "WARNING: %d rows had errors or timeouts\n", bad
}' "$RESULTS"
