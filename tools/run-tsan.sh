#!/usr/bin/env bash
# Builds dpcached with ThreadSanitizer (build-tsan/) and drives it with the
# concurrent end-to-end tests. A TSan report makes the server exit with
# status 66 when the test stops it, which fails the test.
#
# Why it can be clean with liburcu, which TSan cannot see into: the cache
# annotates the hand-offs liburcu makes for it (cache/tsan.h), sanitizer
# builds take item memory from malloc, and tests/tsan.supp names only
# liburcu's and jemalloc's own internal calls.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build-tsan/build.ninja ]; then
  meson setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dtests=false
fi
ninja -C build-tsan dataplane/dpcached

export DPCACHED=$PWD/build-tsan/dataplane/dpcached
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$PWD/tests/tsan.supp"
status=0
for t in test_stress test_clients test_memccapable test_garbage; do
  echo "--- $t under TSan"
  /usr/bin/python3 "tests/e2e/$t.py" || status=1
done
exit $status
