#!/bin/sh
# tools/dpdk-netns.sh - a veth "NIC" for the DPDK backend, inside two network
# namespaces of its own, so that tests and try-outs need no real NIC and
# never touch the host's network.
#
#   tools/dpdk-netns.sh up NAME [kernel]   create NAME-dp (server) and NAME-cl
#                                          (client); refuses (exit 1) if either
#                                          exists: run 'down NAME' first
#   tools/dpdk-netns.sh down NAME          remove both (idempotent; silent if absent)
#   tools/dpdk-netns.sh check              exit 0 if this machine can do it, else
#                                          print why and exit 77 (no privilege
#                                          for namespaces) or 1 (a tool from
#                                          tools/packages.txt is missing)
#
# NAME-dp holds vdp0 (MAC 02:00:00:00:00:01, IPv6 off, no kernel address: the
# DPDK stack owns 198.18.0.1 and answers ARP for it).  NAME-cl holds vcl0,
# 198.18.0.2/24, with TX checksum offload off (a partial checksum would reach
# DPDK unfinished and be dropped) and TSO/GSO off (no 64 KB super-frames);
# two queues on each side so af_packet's qpairs=2 spreads flows over two
# polling cores.  The commands are those measured in /work/shared/TESTBED.md.
#
# With "kernel" as third word, vdp0 gets 198.18.0.1/24 instead, so the kernel
# backend (dpcached -l 198.18.0.1) can stand in for DPDK when debugging the
# plumbing.  Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking).
set -eu

SRV_MAC=02:00:00:00:00:01
SRV_IP=198.18.0.1
CLI_IP=198.18.0.2

usage() {
	echo "usage: $0 up NAME [kernel] | down NAME | check" >&2
	exit 2
}

check_name() {
	# Interface and namespace names stay short and shell-safe.
	case "$1" in
	''|*[!A-Za-z0-9_-]*) echo "$0: bad NAME '$1' (letters, digits, - and _)" >&2; exit 2 ;;
	esac
	if [ ${#1} -gt 24 ]; then
		echo "$0: NAME '$1' longer than 24 characters" >&2
		exit 2
	fi
}

can_run() {
	# Prints why not and returns 77 where this machine cannot (no privilege
	# for network namespaces), or 1 for a setup error: ip, ethtool and
	# unshare are in tools/packages.txt (iproute2, ethtool, util-linux).
	for tool in ip ethtool unshare; do
		if ! command -v $tool >/dev/null 2>&1; then
			echo "needs '$tool' (tools/packages.txt; run tools/install-deps.sh)"
			return 1
		fi
	done
	if [ "$(id -u)" != 0 ]; then
		echo "needs root (network namespaces)"
		return 77
	fi
	# 'ip netns list' works unprivileged; creating a namespace is the test.
	if ! err=$(unshare -n true 2>&1); then
		echo "cannot create a network namespace here (unshare -n: $err)"
		return 77
	fi
	return 0
}

exists() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"
}

down() {
	# Deleting a namespace deletes the veth pair inside it (both ends).
	ip netns del "$1-dp" 2>/dev/null || true
	ip netns del "$1-cl" 2>/dev/null || true
}

up() {
	name=$1
	mode=${2:-dpdk}
	dp=$name-dp
	cl=$name-cl
	# Never take over (or delete) namespaces of the same name: they may be
	# another run's.  A caller that knows a leftover is stale runs 'down'.
	for ns in "$dp" "$cl"; do
		if exists "$ns"; then
			echo "$0: namespace $ns already exists (a running or killed run of" \
				"the same NAME?); remove it with: $0 down $name" >&2
			exit 1
		fi
	done
	trap 'down "$name"' EXIT
	ip netns add "$dp"
	ip netns add "$cl"
	# The pair is created inside the server namespace, so two runs at once
	# never collide on the host's interface names.
	ip -n "$dp" link add vdp0 numtxqueues 4 numrxqueues 4 type veth \
		peer name vcl0 numtxqueues 4 numrxqueues 4 netns "$cl"
	ip netns exec "$dp" sysctl -qw net.ipv6.conf.vdp0.disable_ipv6=1
	ip netns exec "$cl" sysctl -qw net.ipv6.conf.vcl0.disable_ipv6=1
	ip -n "$dp" link set vdp0 address $SRV_MAC up
	ip -n "$dp" link set lo up
	ip -n "$cl" addr add $CLI_IP/24 dev vcl0
	ip -n "$cl" link set vcl0 up
	ip -n "$cl" link set lo up
	ip netns exec "$cl" ethtool -K vcl0 tx off tso off gso off >/dev/null
	ip netns exec "$dp" ethtool -L vdp0 rx 2 tx 2
	ip netns exec "$cl" ethtool -L vcl0 rx 2 tx 2
	if [ "$mode" = kernel ]; then
		ip -n "$dp" addr add $SRV_IP/24 dev vdp0
	fi
	trap - EXIT
}

[ $# -ge 1 ] || usage
case "$1" in
up)
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
	check_name "$2"
	rc=0
	why=$(can_run) || rc=$?
	if [ $rc != 0 ]; then
		echo "$0: $why" >&2
		exit $rc
	fi
	case "${3:-dpdk}" in dpdk|kernel) ;; *) usage ;; esac
	up "$2" "${3:-dpdk}"
	;;
down)
	[ $# -eq 2 ] || usage
	check_name "$2"
	down "$2"
	;;
check)
	rc=0
	why=$(can_run) || rc=$?
	if [ $rc != 0 ]; then
		echo "$why"
		exit $rc
	fi
	;;
*)
	usage
	;;
esac
