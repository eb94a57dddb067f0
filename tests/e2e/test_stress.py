#!/usr/bin/python3
"""Concurrent stress: several threads, each on its own connection(s), do
set/get/gets/cas/delete/append/incr/multi-get (some pipelined) on a shared key
set for a bounded time.  Every value encodes its key, version and writer, so
a torn, mixed-up or misrouted value is caught; counters are only incremented,
so the final sums must equal the number of successful incrs.  Any wrong
value, protocol error, hang or server death fails.  Prints one summary line.
"""
import os
import random
import re
import threading
import time
import zlib

from server import Conn, Server, TestFailure, check, fail, run

THREADS = int(os.environ.get('STRESS_THREADS', '4'))
SECONDS = float(os.environ.get('STRESS_SECONDS', '8'))
MAX_OPS = int(os.environ.get('STRESS_MAX_OPS', '400000'))
NKEYS = 64
NCTR = 8
KEYS = [b'st:%d' % i for i in range(NKEYS)]
CTRS = [b'ctr:%d' % i for i in range(NCTR)]

VALUE_RE = re.compile(rb'^(st:\d+)\|v(\d+)\|t(\d+)\|n(\d+)\|')
APPEND_RE = re.compile(rb'\|a:(st:\d+)')


def flags_of(key):
    return zlib.crc32(key) & 0xffff


def make_value(key, ver, tid, size):
    head = b'%s|v%d|t%d|n%d|' % (key, ver, tid, size)
    pat = b'%s.%d.' % (key, ver)
    body = (pat * (size // len(pat) + 1))[:size]
    return head + body


def check_value(key, flags, data, where):
    m = VALUE_RE.match(data)
    if not m:
        fail('%s: value of %s does not parse: %r' % (where, key, data[:80]))
    k, ver, tid, size = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if k != key:
        fail('%s: asked for %s, value belongs to %s: %r' % (where, key, k, data[:80]))
    if flags != flags_of(key):
        fail('%s: %s has flags %d, expected %d' % (where, key, flags, flags_of(key)))
    base = make_value(key, ver, tid, size)
    if not data.startswith(base):
        fail('%s: %s body corrupt (version %d by thread %d, %d bytes)'
             % (where, key, ver, tid, size))
    rest = data[len(base):]
    pieces = APPEND_RE.findall(rest)
    if rest != b''.join(b'|a:' + p for p in pieces) or any(p != key for p in pieces):
        fail('%s: %s has a foreign or torn append: %r' % (where, key, rest[:80]))


class Worker(threading.Thread):
    def __init__(self, tid, addr, stop_at, errors, seed):
        super().__init__(daemon=True)
        self.tid = tid
        self.addr = addr
        self.stop_at = stop_at
        self.errors = errors
        self.rnd = random.Random(seed)
        self.ops = 0
        self.incrs = [0] * NCTR
        self.last_ctr = [0] * NCTR
        self.ver = 0

    # reading one reply ----------------------------------------------------
    def read_values(self, c, keys, where, with_cas=False):
        """Read VALUE ... END for `keys` (in order, misses skipped)."""
        out = {}
        pos = 0
        while True:
            line = c.read_line(timeout=10)
            if line == b'END\r\n':
                return out
            parts = line.split()
            if len(parts) != (5 if with_cas else 4) or parts[0] != b'VALUE':
                fail('%s: unexpected line %r' % (where, line))
            key, flags, n = parts[1], int(parts[2]), int(parts[3])
            while pos < len(keys) and keys[pos] != key:
                pos += 1
            if pos == len(keys):
                fail('%s: VALUE for %s not requested or out of order (asked %r)'
                     % (where, key, keys))
            pos += 1
            data = c.read_exact(n + 2, timeout=10)
            if data[-2:] != b'\r\n':
                fail('%s: value of %s not followed by CRLF (length %d wrong?)' % (where, key, n))
            data = data[:-2]
            if key.startswith(b'ctr:'):
                if not data.rstrip(b' ').isdigit():
                    fail('%s: counter %s is not a number: %r' % (where, key, data))
            else:
                check_value(key, flags, data, where)
            out[key] = (data, int(parts[4]) if with_cas else None)

    def expect(self, c, allowed, where):
        line = c.read_line(timeout=10)
        if line not in allowed:
            fail('%s: got %r, expected one of %r' % (where, line, allowed))
        return line

    def one(self, c):
        r = self.rnd
        op = r.random()
        key = r.choice(KEYS)
        if op < 0.30:
            self.ver += 1
            size = r.choice((10, 100, 1000, 3000)) if r.random() > 0.02 else 100000
            v = make_value(key, self.ver, self.tid, size)
            c.send(b'set %s %d 0 %d\r\n%s\r\n' % (key, flags_of(key), len(v), v))
            self.expect(c, (b'STORED\r\n',), 'set ' + key.decode())
        elif op < 0.55:
            keys = [key] if r.random() < 0.6 else r.sample(KEYS + CTRS, r.randint(2, 8))
            c.send(b'get ' + b' '.join(keys) + b'\r\n')
            self.read_values(c, keys, 'get ' + b' '.join(keys).decode())
        elif op < 0.65:
            c.send(b'delete %s\r\n' % key)
            self.expect(c, (b'DELETED\r\n', b'NOT_FOUND\r\n'), 'delete ' + key.decode())
        elif op < 0.75:
            piece = b'|a:' + key
            c.send(b'append %s 0 0 %d\r\n%s\r\n' % (key, len(piece), piece))
            self.expect(c, (b'STORED\r\n', b'NOT_STORED\r\n'), 'append ' + key.decode())
        elif op < 0.83:
            c.send(b'gets %s\r\n' % key)
            got = self.read_values(c, [key], 'gets ' + key.decode(), with_cas=True)
            if key in got:
                self.ver += 1
                v = make_value(key, self.ver, self.tid, 50)
                c.send(b'cas %s %d 0 %d %d\r\n%s\r\n'
                       % (key, flags_of(key), len(v), got[key][1], v))
                self.expect(c, (b'STORED\r\n', b'EXISTS\r\n', b'NOT_FOUND\r\n'),
                            'cas ' + key.decode())
        elif op < 0.97:
            i = r.randrange(NCTR)
            c.send(b'incr %s 1\r\n' % CTRS[i])
            line = c.read_line(timeout=10)
            if not line.rstrip().isdigit():
                fail('incr %s: got %r' % (CTRS[i].decode(), line))
            n = int(line)
            if n <= self.last_ctr[i]:
                fail('incr %s returned %d after this thread saw %d'
                     % (CTRS[i].decode(), n, self.last_ctr[i]))
            self.last_ctr[i] = n
            self.incrs[i] += 1
        else:
            # pipelined burst: set + get + incr on a value key, one write
            self.ver += 1
            v = make_value(key, self.ver, self.tid, 200)
            c.send(b'set %s %d 0 %d\r\n%s\r\nget %s\r\nincr %s 1\r\n'
                   % (key, flags_of(key), len(v), v, key, key))
            self.expect(c, (b'STORED\r\n',), 'pipelined set ' + key.decode())
            self.read_values(c, [key], 'pipelined get ' + key.decode())
            self.expect(c, (b'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n',
                            b'NOT_FOUND\r\n'), 'incr on non-numeric ' + key.decode())
            self.ops += 2
        self.ops += 1

    def run(self):
        try:
            conns = [Conn(self.addr, timeout=10) for _ in range(2)]
            while time.monotonic() < self.stop_at and not self.errors:
                c = self.rnd.choice(conns)
                for _ in range(50):
                    self.one(c)
                if self.ops > MAX_OPS // THREADS:
                    break
            for c in conns:
                c.close()
        except TestFailure as e:
            self.errors.append('thread %d: %s' % (self.tid, e))
        except Exception as e:  # noqa: BLE001
            self.errors.append('thread %d: %r' % (self.tid, e))


def main():
    with Server(['-m', '64', '-t', '2']) as srv:
        with srv.connect() as c:
            for k in CTRS:
                check(c.request(b'set %s 0 0 1\r\n0\r\n' % k) == b'STORED\r\n', 'init ' + str(k))
        errors = []
        t0 = time.monotonic()
        workers = [Worker(i, (srv.host, srv.port), t0 + SECONDS, errors, 1000 + i) for i in range(THREADS)]
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            for w in workers:
                w.join(0.2)
            if not srv.alive():
                break
            if time.monotonic() > t0 + SECONDS + 30:
                errors.append('workers still running 30 s after the deadline (hang?)')
                break
        elapsed = time.monotonic() - t0
        srv.check_alive('during the stress run')
        ops = sum(w.ops for w in workers)
        print('stress: %d threads, %d ops in %.1f s (%.0f ops/s), errors: %d'
              % (THREADS, ops, elapsed, ops / elapsed, len(errors)))
        check(not errors, '\n'.join(errors[:5]))
        # counters: every successful incr counted exactly once
        with srv.connect() as c:
            c.send(b'get ' + b' '.join(CTRS) + b'\r\n')
            got = Worker(99, None, 0, [], 0).read_values(c, CTRS, 'final counters')
            for i, k in enumerate(CTRS):
                want = sum(w.incrs[i] for w in workers)
                have = int(got[k][0]) if k in got else None
                check(have == want, '%s = %r, but %d incrs succeeded' % (k.decode(), have, want))
            check(c.request(b'version\r\n').startswith(b'VERSION'), 'version after stress')
        srv.check_alive()


if __name__ == '__main__':
    run(main)
