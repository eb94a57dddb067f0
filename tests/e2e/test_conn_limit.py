#!/usr/bin/python3
"""Too many connections: a server started with -c N refuses the excess.

Stock memcached 1.6.18 counts file descriptors, not clients: with -c 64 and
-t 2 it serves 47 clients and answers each further one with
"ERROR Too many open connections\r\n" and closes it.  So we assert the
behaviour, not an exact count: no more than N clients are served, at least
N/2 are, every connection before the first refusal works, refusals carry
that exact message and are closed, the served ones keep working, and after
closing some, new ones are served again.
"""
import socket
import time

from server import Server, check, fail, run

N = 64
EXTRA = 10
REFUSAL = b'ERROR Too many open connections\r\n'


def probe(sock, timeout=2.0):
    """Send `version`; return ('ok'|'refused'|'other', bytes)."""
    sock.settimeout(timeout)
    try:
        sock.sendall(b'version\r\n')
    except OSError as e:
        return 'other', ('send failed: %s' % e).encode()
    data = b''
    deadline = time.monotonic() + timeout
    while b'\r\n' not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        except OSError as e:
            return 'other', data + ('<%s>' % e).encode()
        if not chunk:
            break
        data += chunk
    if data.startswith(b'VERSION ') and data.endswith(b'\r\n'):
        return 'ok', data
    if data == REFUSAL:
        # the refused connection must be closed by the server
        try:
            sock.settimeout(2.0)
            rest = sock.recv(100)
        except socket.timeout:
            return 'other', data + b'<not closed after refusal>'
        except OSError:
            rest = b''
        if rest:
            return 'other', data + rest
        return 'refused', data
    return 'other', data if data else b'<no reply within %.1fs>' % timeout


def roundtrip(sock, i):
    key = b'conn%d' % i
    sock.settimeout(3.0)
    sock.sendall(b'set %s 0 0 %d\r\n%s\r\nget %s\r\n' % (key, len(key), key, key))
    want = b'STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n' % (key, len(key), key)
    got = b''
    while len(got) < len(want):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    check(got == want, 'connection %d: expected %r, got %r' % (i, want, got))


def main():
    with Server(['-c', str(N), '-t', '2', '-m', '64']) as srv:
        served, outcomes = [], []
        first_refusal = None
        for i in range(N + EXTRA):
            try:
                s = socket.create_connection((srv.host, srv.port), timeout=3.0)
            except OSError as e:
                outcomes.append(('connect-failed', str(e).encode()))
                continue
            kind, data = probe(s)
            outcomes.append((kind, data))
            if kind == 'other':
                fail('connection #%d (of -c %d) was neither served nor refused with %r: got %r'
                     % (i, N, REFUSAL, data))
            if kind == 'ok':
                served.append(s)
            else:
                s.close()
                if kind == 'refused' and first_refusal is None:
                    first_refusal = i
            srv.check_alive('while opening connection %d' % i)
        summary = {}
        for k, _ in outcomes:
            summary[k] = summary.get(k, 0) + 1
        print('-c %d, %d attempts: %s (first refusal at #%s)'
              % (N, N + EXTRA, summary, first_refusal))
        others = [(i, d) for i, (k, d) in enumerate(outcomes) if k not in ('ok', 'refused')]
        check(not others, 'connections neither served nor refused with %r: %s'
              % (REFUSAL, ', '.join('#%d got %r' % o for o in others[:5])))
        check(first_refusal is not None,
              'opened %d connections with -c %d and none was refused' % (N + EXTRA, N))
        check(len(served) <= N, 'served %d connections with -c %d' % (len(served), N))
        check(len(served) >= N // 2,
              'only %d connections served with -c %d (expected at least %d)'
              % (len(served), N, N // 2))
        check(all(k == 'ok' for k, _ in outcomes[:first_refusal]),
              'a connection before the first refusal was not served')
        # The served connections still work.
        for i, s in enumerate(served):
            roundtrip(s, i)
        # Free 10 slots; new clients are served again.
        for s in served[-10:]:
            s.close()
        served = served[:-10]
        time.sleep(0.5)
        for j in range(8):
            s = socket.create_connection((srv.host, srv.port), timeout=3.0)
            kind, data = probe(s)
            if kind != 'ok':
                fail('after closing 10 connections, new connection %d got %r' % (j, data))
            roundtrip(s, 1000 + j)
            served.append(s)
        srv.check_alive()
        for s in served:
            s.close()


if __name__ == '__main__':
    run(main)
