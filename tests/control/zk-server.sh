#!/bin/bash
# tests/control/zk-server.sh - a throwaway single-node ZooKeeper for tests.
#
#   zk-server.sh start DIR PORT   writes DIR/zoo.cfg (data in DIR/data, so a
#                                 restart with the same DIR keeps the data),
#                                 starts the server on 127.0.0.1:PORT, waits
#                                 until 'ruok' answers 'imok' and prints its PID
#                                 (also kept in DIR/zk.pid). Exit 1 on failure
#                                 (port taken, no answer within 40 s); nothing
#                                 is left running then.
#   zk-server.sh stop DIR         kills the server whose PID is in DIR/zk.pid
#                                 (TERM, then KILL after 5 s) and waits for it.
#
# tickTime 200 lets clients ask for short session timeouts (>= 2 ticks), so
# tests can exercise expiry and grace in about a second. Server output goes to
# DIR/zk.log, never to the test's terminal. Shared by the cmocka agent test
# and the Python cluster tests.
set -u

usage() {
	echo "usage: $0 start DIR PORT | stop DIR" >&2
	exit 2
}

# 'imok' when a server answers ruok on 127.0.0.1:$1 (bash's /dev/tcp: no nc).
ruok() {
	local reply=""
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'ruok' >&3
	read -r -t 2 -n 4 reply <&3
	exec 3<&- 3>&-
	[ "$reply" = "imok" ]
}

stop() {
	local dir=$1 pid i
	[ -f "$dir/zk.pid" ] || return 0
	pid=$(cat "$dir/zk.pid")
	rm -f "$dir/zk.pid"
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for i in $(seq 20); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 0
}

start() {
	local dir=$1 port=$2 pid i
	case "$port" in '' | *[!0-9]*) usage ;; esac
	# Another server already listening there would answer our ruok.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "zk-server.sh: port $port is in use" >&2
		exit 1
	fi
	mkdir -p "$dir/data" || exit 1
	cat > "$dir/zoo.cfg" <<EOF
tickTime=200
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxSessionTimeout=60000
minSessionTimeout=400
4lw.commands.whitelist=ruok,stat,mntr
EOF
	# setsid: the server must not get the test's terminal signals; the test
	# stops it explicitly (and from atexit on failure).
	setsid java -Xmx256m -XX:+UseSerialGC \
		-Dzookeeper.log.dir="$dir" -Dzookeeper.root.logger=INFO,CONSOLE \
		-cp "/etc/zookeeper/conf:/usr/share/java/*" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
		> "$dir/zk.log" 2>&1 < /dev/null &
	pid=$!
	echo "$pid" > "$dir/zk.pid"
	for i in $(seq 400); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "zk-server.sh: server exited; see $dir/zk.log" >&2
			rm -f "$dir/zk.pid"
			exit 1
		fi
		if ruok "$port" 2>/dev/null; then
			echo "$pid"
			exit 0
		fi
		sleep 0.1
	done
	echo "zk-server.sh: no imok on port $port within 40 s" >&2
	stop "$dir"
	exit 1
}

case "${1:-}" in
start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
