#!/bin/sh
# tests/fuzz/run-fuzzers.sh BUILDDIR SECONDS
#
# Runs each protocol fuzzer built in BUILDDIR (a build set up with
# CC=clang ... -Dfuzzers=true) for SECONDS on a scratch copy of its seed
# corpus (tests/fuzz/corpus/<name>/), so the checked-in seeds stay as they
# are. Fails if any fuzzer finds a crash, a leak or a timeout, or if no
# fuzzer was built; the reproducer is left in the scratch directory, whose
# path is printed.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILDDIR SECONDS" >&2
	exit 2
fi
builddir=$1
seconds=$2
srcdir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dpcache-fuzz.XXXXXX")
status=0
ran=0

for name in fuzz_text fuzz_binary fuzz_udp fuzz_stack; do
	bin=$builddir/tests/fuzz/$name
	if [ ! -x "$bin" ]; then
		echo "$name: not built in $builddir, skipped"
		continue
	fi
	ran=$((ran + 1))
	mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
	cp "$srcdir/corpus/$name/"* "$work/$name/corpus/" 2>/dev/null
	echo "$name: fuzzing for ${seconds}s"
	# One process, no forks: the machine is shared. -timeout catches hangs.
	if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=70000 -print_final_stats=1 \
		-artifact_prefix="$work/$name/artifacts/" \
		"$work/$name/corpus" >"$work/$name/log" 2>&1; then
		grep -E '^stat::number_of_executed_units|^Done' "$work/$name/log" | tail -2
	else
		echo "$name: FAILED, log and reproducer in $work/$name" >&2
		tail -40 "$work/$name/log" >&2
		ls -l "$work/$name/artifacts" >&2
		status=1
	fi
done

if [ "$ran" -eq 0 ]; then
	echo "no fuzzer found under $builddir/tests/fuzz" >&2
	exit 1
fi
if [ "$status" -eq 0 ]; then
	rm -rf "$work"
fi
exit $status
