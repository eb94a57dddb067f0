#!/usr/bin/python3
"""memccapable (Debian's libmemcached-tools) conformance run.

Stock memcached 1.6.18 passes 54 checks (27 "ascii ..." + 27 "binary ...")
and prints "All tests passed".  We parse every line so that a partial pass,
a crash half-way or a missing protocol fails the test.
"""
import os
import re
import shutil
import subprocess

from server import Server, TestSkip, check, fail, run

MEMCCAPABLE = shutil.which('memccapable') or '/usr/bin/memccapable'
EXPECT_ASCII = 27
EXPECT_BINARY = 27


def main():
    if not os.access(MEMCCAPABLE, os.X_OK):
        raise TestSkip('memccapable (libmemcached-tools) is not installed')
    with Server(['-m', '64', '-t', '2']) as srv:
        try:
            p = subprocess.run([MEMCCAPABLE, '-h', srv.host, '-p', str(srv.port),
                                '-t', '5'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=90)
        except subprocess.TimeoutExpired as e:
            fail('memccapable did not finish within 90s; output so far:\n%s'
                 % (e.output or b'').decode(errors='replace'))
        out = p.stdout.decode(errors='replace')
        print(out)
        srv.check_alive('during memccapable')
        judge(out, p.returncode)


def judge(out, rc):
    """Fail unless `out` shows every one of the expected checks passing."""
    results = re.findall(r'^(ascii|binary) (.+?)\s+\[(\w+)\]\s*$', out, re.M)
    passed = [r for r in results if r[2] == 'pass']
    bad = [r for r in results if r[2] != 'pass']
    n_ascii = sum(1 for r in passed if r[0] == 'ascii')
    n_bin = sum(1 for r in passed if r[0] == 'binary')
    print('memccapable: %d ascii + %d binary passed, %d not passed, rc=%d'
          % (n_ascii, n_bin, len(bad), rc))
    check(not bad, 'tests not passed: %s' % ', '.join(
        '%s %s [%s]' % r for r in bad))
    check(n_ascii == EXPECT_ASCII and n_bin == EXPECT_BINARY,
          'expected %d ascii + %d binary passes, got %d + %d'
          % (EXPECT_ASCII, EXPECT_BINARY, n_ascii, n_bin))
    check('All tests passed' in out, 'memccapable did not print "All tests passed"')
    check(rc == 0, 'memccapable exited with %d' % rc)


if __name__ == '__main__':
    run(main)
