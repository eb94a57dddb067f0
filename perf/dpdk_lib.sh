# dpdk_lib.sh - shell helpers shared by the dpdk-*.sh scripts (sourced
# after bench_lib.sh, not run).
#
# These scripts run one server at a time, dpcached --net=dpdk (or, in
# dpdk-vs-memcached.sh, memcached), whose PID is in SRV_PID: srv_stop ends
# it and the EXIT trap that dpdk_init installs ends it on any exit. The
# memif ones put dpcached on a net_memif port, server role, whose socket
# file is MEMIF_SOCK; the bench joins it as the client with the EAL flags
# in MEMIF_BENCH_EAL.

SRV_PID=""
# How long srv_stop waits after SIGINT before it sends SIGKILL.
SRV_STOP_SECONDS=5
# Words run in front of dpcached by memif_server_start (dpdk-callgrind.sh:
# valgrind and its flags); empty for a plain run.
SERVER_WRAPPER=()

# dpdk_init TAG [CLEANUP]: the start every dpdk-*.sh shares. Sets TAG to
# TAG plus this shell's PID (the stem of the EAL --file-prefix, and of the
# namespaces' names: unique to this run), WORK to a new temporary folder,
# and installs the EXIT trap: stop the server, run the function CLEANUP if
# given, remove WORK. INT and TERM exit (130) through that trap.
dpdk_init() {
	TAG=$1$$
	DPDK_CLEANUP=${2:-}
	WORK=$(mktemp -d "/tmp/$(basename "$0" .sh).XXXXXX") || exit 1
	MEMIF_SOCK=$WORK/memif.sock
	DPDK_SERVER_LOG=$WORK/server.log
	trap dpdk_cleanup EXIT
	trap 'exit 130' INT TERM
}

dpdk_cleanup() {
	srv_stop
	if [ -n "$DPDK_CLEANUP" ]; then
		"$DPDK_CLEANUP"
	fi
	rm -rf "$WORK"
}

# dpdk_missing BENCH SERVER_BIN: when a DPDK run cannot happen here (not
# root, no such server, a server or bench built without DPDK), prints why
# and succeeds; else prints nothing and fails. BENCH "" leaves the bench
# out (dpdk-vs-memcached.sh drives the server through the kernel).
dpdk_missing() {
	local bench=$1 server=$2

	if [ "$(id -u)" != 0 ]; then
		echo "needs root (DPDK)"
	elif [ ! -x "$server" ]; then
		echo "$server not found"
	elif ! "$server" --help 2>&1 | grep -q -- '--net='; then
		echo "$server has no --net=dpdk"
	elif [ -n "$bench" ] && ! "$bench" --help | grep -q -- '--dpdk '; then
		echo "$bench has no --dpdk"
	elif [ -n "$bench" ] && "$bench" --help | grep -q 'not in this build'; then
		echo "$bench was built without libdpdk"
	else
		return 1
	fi
}

# srv_stop: stops the server in SRV_PID, if any: SIGINT (its clean
# shutdown), SIGKILL if it still runs after SRV_STOP_SECONDS.
srv_stop() {
	[ -n "$SRV_PID" ] || return 0
	stop_server "$SRV_PID" INT "$SRV_STOP_SECONDS"
	SRV_PID=""
}

# memif_server_start WAIT_SECONDS [dpcached flags] -- [EAL flags]: starts
# dpcached --net=dpdk at 198.18.0.1, memcached port 11211 (TCP and UDP),
# with the given flags, and the EAL flags of a memif server on MEMIF_SOCK
# added after the caller's (no PCI, its own --file-prefix). Output goes to
# DPDK_SERVER_LOG. Waits up to WAIT_SECONDS for the socket file, which the
# server creates once its port is up; fails, with the log's tail on stderr
# and the server stopped, if it does not come.
memif_server_start() {
	local wait_s=$1 i
	shift
	rm -f "$MEMIF_SOCK"
	"${SERVER_WRAPPER[@]}" "$SERVER_BIN" --net=dpdk --ip=198.18.0.1/24 \
		-p 11211 -U 11211 "$@" --file-prefix="${TAG}s" --no-pci \
		--vdev="net_memif0,role=server,socket=$MEMIF_SOCK,socket-abstract=no" \
		>"$DPDK_SERVER_LOG" 2>&1 &
	SRV_PID=$!
	MEMIF_BENCH_EAL=(--file-prefix="${TAG}b" --no-pci
		--vdev="net_memif0,role=client,socket=$MEMIF_SOCK,socket-abstract=no"
		--log-level=lib.eal:warning)
	for i in $(seq 1 $((wait_s * 10))); do
		[ -S "$MEMIF_SOCK" ] && return 0
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -S "$MEMIF_SOCK" ] && return 0
	echo "$(basename "$0"): $SERVER_BIN did not open $MEMIF_SOCK:" >&2
	tail -5 "$DPDK_SERVER_LOG" >&2
	srv_stop
	return 1
}
