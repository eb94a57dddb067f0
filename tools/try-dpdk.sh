#!/usr/bin/env bash
# tools/try-dpdk.sh - try the DPDK data plane with one command, no NIC and no
# hugepages needed: builds dpcached if needed, puts a veth pair in two
# network namespaces (try-dp for the server, try-cl for you), starts
# dpcached --net=dpdk on it, tells you how to talk to it, and on Ctrl-C
# stops it and removes the namespaces.  Run as root from anywhere:
#
#   tools/try-dpdk.sh [DPCACHED_FLAGS...]     e.g. tools/try-dpdk.sh -m 128 -vv
#
# Environment: BUILD (build directory, default build), PORT (default 11211,
# TCP and UDP), LCORES (polling lcores, default 2), NAME (namespace prefix,
# default try), POLL_IDLE_US (default 50: idle pollers nap so a small
# machine stays usable; 0 = pure busy polling).
# It reserves no hugepages (EAL runs with --no-huge) and touches nothing
# outside its own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PORT=${PORT:-11211}
LCORES=${LCORES:-2}
NAME=${NAME:-try}
POLL_IDLE_US=${POLL_IDLE_US:-50}
SRV_IP=198.18.0.1

if [ "$(id -u)" != 0 ]; then
	echo "$0: run me as root (network namespaces and raw sockets)" >&2
	exit 1
fi

if [ ! -f "$BUILD/build.ninja" ]; then
	echo "== configuring $BUILD"
	meson setup "$BUILD"
fi
echo "== building $BUILD (ninja)"
ninja -C "$BUILD" dataplane/dpcached >/dev/null
DPCACHED=$BUILD/dataplane/dpcached
# A dpcached built without DPDK still lists --net in --help; it says "built
# without DPDK" on stderr and exits 2 when started, which the start-up loop
# below shows.

# Every CPU we may use, for every lcore: lcore 0 is EAL's main lcore (stats,
# control), lcores 1..LCORES poll one af_packet queue each.
cpus=$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
lcores="0@($cpus)"
for i in $(seq 1 "$LCORES"); do lcores="$lcores,$i@($cpus)"; done

pid=
cleanup() {
	trap - EXIT INT TERM
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	tools/dpdk-netns.sh down "$NAME"
	echo "== stopped; namespaces $NAME-dp and $NAME-cl removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== namespaces $NAME-dp (dpcached on vdp0, $SRV_IP) and $NAME-cl (you, vcl0, 198.18.0.2)"
# Namespaces of this NAME are ours (try-dp, try-cl by default): a leftover
# from a killed try-out goes first (dpdk-netns.sh up refuses to reuse one).
tools/dpdk-netns.sh down "$NAME"
tools/dpdk-netns.sh up "$NAME"

# `ip netns exec` execs dpcached, so $! is dpcached's own PID.
ip netns exec "$NAME-dp" "$DPCACHED" --net=dpdk --ip=$SRV_IP/24 -p "$PORT" -U "$PORT" \
	--poll-idle-us="$POLL_IDLE_US" -v "$@" \
	-- --lcores="$lcores" --no-huge -m 512 --in-memory --no-pci --file-prefix="$NAME$$" \
	--vdev=net_af_packet0,iface=vdp0,qpairs="$LCORES" &
pid=$!

echo "== waiting for dpcached (pid $pid) to answer on $SRV_IP:$PORT"
ready=
for _ in $(seq 60); do
	if ! kill -0 "$pid" 2>/dev/null; then
		rc=0
		wait "$pid" || rc=$?
		pid=
		echo "$0: dpcached exited ($rc) at start (see its message above; exit 2" \
			"with \"built without DPDK\": libdpdk-dev was missing when $BUILD was configured)" >&2
		exit 1
	fi
	if ip netns exec "$NAME-cl" timeout 1 bash -c \
		"exec 3<>/dev/tcp/$SRV_IP/$PORT && printf 'version\r\n' >&3 && head -c 7 <&3" \
		2>/dev/null | grep -q VERSION; then
		ready=1
		break
	fi
	sleep 0.5
done
if [ -z "$ready" ]; then
	echo "$0: dpcached did not answer within 30 s" >&2
	exit 1
fi

cat <<EOF

dpcached is serving memcached over DPDK at $SRV_IP port $PORT (TCP and UDP).
Talk to it from the client namespace, in another terminal:

  ip netns exec $NAME-cl bash -c 'exec 3<>/dev/tcp/$SRV_IP/$PORT; printf "set hello 0 0 5\r\nworld\r\nget hello\r\nstats dataplane\r\nquit\r\n" >&3; cat <&3'

  ip netns exec $NAME-cl /usr/bin/python3 -c 'from pymemcache.client.base import Client; c = Client(("$SRV_IP", $PORT)); c.set("a", "1", noreply=False); print(c.get("a"))'

  ip netns exec $NAME-cl memccapable -h $SRV_IP -p $PORT      # conformance checks
  ip netns exec $NAME-cl bash                                 # a shell on the client side

Press Ctrl-C here to stop dpcached and remove the namespaces.
EOF
wait "$pid" || true
pid=
echo "== dpcached exited"
