#!/usr/bin/env bash
# Runs the whole test suite: builds into ./build (configuring it if needed),
# then the cmocka unit tests, the end-to-end tests with real clients and the
# perf smoke test, all through `meson test`.
#
#   tools/run-tests.sh            the suite, plain build (build/)
#   tools/run-tests.sh --asan     the suite under ASan+UBSan (build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=build
setup_args=()
case "${1:-}" in
  --asan)
    builddir=build-asan
    setup_args=(-Db_sanitize=address,undefined -Db_lundef=false)
    # Fail on the first UBSan report; leaks fail the run too.
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
    ;;
  "") ;;
  *) echo "usage: $0 [--asan]" >&2; exit 2 ;;
esac

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "${setup_args[@]}"
fi
ninja -C "$builddir"
meson test -C "$builddir" --print-errorlogs --num-processes 2
