#!/usr/bin/python3
"""Garbage input: random bytes, huge and negative lengths, binary junk, half
requests then close, very long lines, 100 connections opened and dropped.
Replies to garbage are not judged (any error reply or a close is fine); what
is judged: the server stays up, and after every batch a fresh client gets
correct answers (and a client opened before the garbage still does)."""
import random
import socket
import struct
import time

from server import Server, check, run

rnd = random.Random(20261123)


def rbytes(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def binhdr(op, keylen=0, extlen=0, bodylen=0, magic=0x80, opaque=0, cas=0):
    return struct.pack('!BBHBBHIIQ', magic, op, keylen, extlen, 0, 0, bodylen, opaque, cas)


CASES = {
    'random bytes': [rbytes(4096) for _ in range(8)] + [rbytes(64) + b'\r\n' for _ in range(8)],
    'random text lines': [b' '.join(rnd.choice([b'get', b'set', b'mg', b'ms', b'incr', b'cas',
                                                b'-1', b'0', b'99999999999999999999', b'\x00',
                                                b'k', b'T', b'v', b'q', b'noreply', b'\t'])
                                    for _ in range(rnd.randint(1, 12))) + b'\r\n'
                          for _ in range(40)],
    'huge and negative lengths': [
        b'set k 0 0 4294967296\r\nabc\r\n', b'set k 0 0 18446744073709551615\r\n',
        b'set k 0 0 99999999999999999999999\r\n', b'set k 0 0 -1\r\nx\r\n',
        b'set k 0 0 2147483647\r\n', b'set k 0 0 2147483648\r\n',
        b'set k 4294967296 0 1\r\nx\r\n', b'set k -1 0 1\r\nx\r\n',
        b'set k 0 -99999999999999999999 1\r\nx\r\n', b'append k 0 0 -5\r\n',
        b'cas k 0 0 1 -1\r\nx\r\n', b'cas k 0 0 1 99999999999999999999999\r\nx\r\n',
        b'incr k 99999999999999999999999\r\n', b'decr k -1\r\n', b'touch k -99999999999\r\n',
        b'ms k 4294967296\r\n', b'ms k -1 T-1\r\nx\r\n', b'ms k 99999999999999999999 \r\n',
        b'mg k v N-1 T99999999999999999999\r\n', b'ma k D99999999999999999999999 N-5\r\n',
        b'gat -1 k\r\n',
        b'verbosity -99999999999999\r\n', b'get ' + b' '.join([b'k'] * 5000) + b'\r\n'],
    'binary junk': [
        binhdr(0x01, 3, 8, 0xffffffff) + b'\x00' * 11,           # set, body 4 GB
        binhdr(0x00, 0xffff, 0, 10) + b'k' * 10,                 # key longer than body
        binhdr(0x01, 2, 200, 10) + b'x' * 10,                    # extras longer than body
        binhdr(0x05, 1, 0, 0x7fffffff) + b'k',                   # incr, huge body
        binhdr(0x05, 1, 3, 4) + b'abck',                         # incr, short extras
        binhdr(0xff, 1, 0, 1) + b'k',                            # unknown opcode
        binhdr(0x00, 1, 0, 1, magic=0x81) + b'k',                # response magic
        binhdr(0x00, 1, 0, 1, magic=0x42) + b'k',                # bad magic
        b'\x80' * 23,                                             # short header
        b'\x80\x01' + rbytes(2000),
        b''.join(binhdr(rnd.randrange(256), rnd.randrange(64), rnd.randrange(32),
                        rnd.randrange(128)) + rbytes(rnd.randrange(128)) for _ in range(30))],
    'half requests': [b'set k 0 0 100\r\nabc', b'get k', b'gets', b'ms k 10 T0\r\n12345',
                      b'mg k', b'set k 0 0 5\r\n', b'incr', b'\r', b'cas k 0 0 1',
                      binhdr(0x01, 1, 8, 100) + b'\x00' * 9, b'\x80\x00\x00',
                      b'get ' + b'k' * 200],
    'very long lines': [b'x' * (1 << 20), b'get ' + b'a' * (1 << 20) + b'\r\n',
                        b'get ' + b' '.join(b'key%d' % i for i in range(20000)) + b'\r\n',
                        b'set ' + b'k' * 100000 + b' 0 0 1\r\nx\r\n',
                        b'mg ' + b'k' * 4000 + b' v\r\n', b' ' * 300000 + b'\r\n',
                        b'set k 0 0 1 ' + b'noreply ' * 5000 + b'\r\nx\r\n',
                        b'\r\n' * 100000, b'\n' * 100000, b'\x00' * 300000],
}


def blast(host, port, payload, read_for=0.05):
    """Send one garbage payload on a fresh connection, glance at replies, close."""
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(payload)
        s.settimeout(read_for)
        try:
            while s.recv(65536):
                pass
        except (socket.timeout, OSError):
            pass
    except OSError:
        pass   # the server may close on us mid-send: fine
    finally:
        s.close()


def healthy(srv, tag, old=None):
    srv.check_alive('after ' + tag)
    val = b'fresh value after ' + tag.encode()
    key = b'h' + str(len(tag)).encode()
    with srv.connect(timeout=5) as c:
        r = c.request(b'set %s 7 0 %d\r\n%s\r\n' % (key, len(val), val), timeout=5)
        check(r == b'STORED\r\n', 'after %s: fresh client set got %r' % (tag, r))
        r = c.request(b'get %s\r\n' % key, marker=b'END\r\n', timeout=5)
        want = b'VALUE %s 7 %d\r\n%s\r\nEND\r\n' % (key, len(val), val)
        check(r == want, 'after %s: fresh client get: expected %r, got %r' % (tag, want, r))
        r = c.request(b'mn\r\n', timeout=5)
        check(r == b'MN\r\n', 'after %s: mn got %r' % (tag, r))
    if old is not None:
        r = old.request(b'get keep\r\n', marker=b'END\r\n', timeout=5)
        check(r == b'VALUE keep 0 4\r\nkeep\r\nEND\r\n',
              'after %s: the connection opened before the garbage got %r' % (tag, r))


def main():
    with Server(['-m', '64', '-t', '2']) as srv:
        old = srv.connect()
        check(old.request(b'set keep 0 0 4\r\nkeep\r\n') == b'STORED\r\n', 'set keep')
        total = 0
        for tag, payloads in CASES.items():
            for p in payloads:
                blast(srv.host, srv.port, p)
                total += 1
                srv.check_alive('after %s payload %r' % (tag, p[:40]))
            healthy(srv, tag, old)
        # several garbage payloads pipelined on one connection
        blast(srv.host, srv.port, b''.join(CASES['huge and negative lengths']) + rbytes(1000), 0.3)
        healthy(srv, 'pipelined garbage', old)
        # 100 connections opened and dropped (some mid-request, some with RST)
        socks = []
        for i in range(100):
            s = socket.create_connection((srv.host, srv.port), timeout=5)
            if i % 3 == 1:
                s.sendall(b'get k')
            elif i % 3 == 2:
                s.sendall(b'set k 0 0 1000\r\nabc')
            socks.append(s)
        for i, s in enumerate(socks):
            if i % 2:
                # abortive close (RST)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            s.close()
        time.sleep(0.3)
        healthy(srv, '100 dropped connections', old)
        old.close()
        print('garbage: %d payloads + 100 dropped connections; server healthy' % total)
        srv.check_alive()


if __name__ == '__main__':
    run(main)
