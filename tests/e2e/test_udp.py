#!/usr/bin/python3
"""UDP: memcached's 8-byte frame header (request id, sequence number, number
of datagrams, reserved), server started with -U PORT.

Single-datagram get, a multi-datagram reply for a ~10 KB value reassembled by
sequence number, a store over UDP, and garbage datagrams that must be ignored
(or answered) without hurting the server."""
import os
import random

from server import HDR, Server, UdpClient, check, run


def tcp_set(srv, key, value):
    with srv.connect() as c:
        r = c.request(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(value), value))
        check(r == b'STORED\r\n', 'TCP set %s: %r' % (key, r))


def main():
    with Server(['-m', '64', '-t', '2'], udp=True) as srv:
        u = UdpClient(srv.host, srv.port)
        small = b'small-value-of-key-s1'
        big = b''.join(b'big:%06d;' % i for i in range(1000))   # 11000 bytes
        tcp_set(srv, b's1', small)
        tcp_set(srv, b'b1', big)

        # single-datagram get
        reply, n = u.request(b'get s1\r\n', until=b'END\r\n')
        want = b'VALUE s1 0 %d\r\n%s\r\nEND\r\n' % (len(small), small)
        check(reply == want, 'UDP get s1: expected %r, got %r' % (want, reply))
        check(n == 1, 'small reply came in %d datagrams' % n)

        # miss
        reply, n = u.request(b'get nosuchkey\r\n', until=b'END\r\n')
        check(reply == b'END\r\n', 'UDP get miss: %r' % reply)

        # multi-datagram reply, reassembled by sequence number
        reply, n = u.request(b'get b1\r\n', until=b'END\r\n')
        want = b'VALUE b1 0 %d\r\n%s\r\nEND\r\n' % (len(big), big)
        check(n > 1, 'an 11 KB reply came in one datagram')
        check(reply == want, 'UDP get b1 (%d datagrams) reassembled wrong: %d bytes, '
              'first difference at %s' % (n, len(reply), next(
                  (i for i, (a, b) in enumerate(zip(reply, want)) if a != b),
                  min(len(reply), len(want)))))
        print('11 KB value: %d datagrams, reassembled ok' % n)

        # multi-key get
        reply, n = u.request(b'get s1 nosuchkey b1 s1\r\n', until=b'END\r\n')
        want = (b'VALUE s1 0 %d\r\n%s\r\n' % (len(small), small) +
                b'VALUE b1 0 %d\r\n%s\r\n' % (len(big), big) +
                b'VALUE s1 0 %d\r\n%s\r\nEND\r\n' % (len(small), small))
        check(reply == want, 'UDP multi-get reassembled wrong (%d datagrams, %d bytes) %r'
              % (n, len(reply), reply[:200]))

        # a store over UDP, read back over TCP and UDP
        reply, n = u.request(b'set u1 5 0 7\r\nudp-val\r\n')
        check(reply == b'STORED\r\n', 'UDP set: %r' % reply)
        reply, n = u.request(b'get u1\r\n', until=b'END\r\n')
        check(reply == b'VALUE u1 5 7\r\nudp-val\r\nEND\r\n', 'UDP get after UDP set: %r' % reply)
        with srv.connect() as c:
            r = c.request(b'get u1\r\n', marker=b'END\r\n')
            check(r == b'VALUE u1 5 7\r\nudp-val\r\nEND\r\n', 'TCP get after UDP set: %r' % r)

        # garbage datagrams: ignored (or answered), server stays up and answers
        rnd = random.Random(1234)
        garbage = [b'', b'\x00', b'abc', b'\xff' * 7,             # shorter than a header
                   os.urandom(8), os.urandom(100), os.urandom(1400),
                   HDR.pack(1, 0, 2, 0) + b'get s1\r\n',           # claims 2 datagrams
                   HDR.pack(1, 5, 1, 0) + b'get s1\r\n',           # seq beyond total
                   HDR.pack(1, 0, 1, 7) + b'get s1\r\n',           # reserved not 0
                   HDR.pack(2, 0, 1, 0) + b'\x80\x00\x00\x00' * 10,  # binary junk
                   HDR.pack(3, 0, 1, 0) + b'set x 0 0 2\r\nabcdef\r\n',  # bad data chunk
                   # (a store whose data never comes is left out: memcached 1.6.18
                   # then eats the following datagrams as data)
                   HDR.pack(4, 0, 1, 0) + b'gibberish\r\n',
                   HDR.pack(5, 0, 1, 0) + bytes(rnd.getrandbits(8) for _ in range(500))]
        for g in garbage:
            u.raw(g)
        stray = u.drain(0.3)
        srv.check_alive('after garbage datagrams')
        print('garbage: %d datagrams sent, %d replies seen (allowed)' % (len(garbage), len(stray)))
        reply, n = u.request(b'get s1\r\n', until=b'END\r\n')
        check(reply == b'VALUE s1 0 %d\r\n%s\r\nEND\r\n' % (len(small), small),
              'UDP get after garbage: %r' % reply)
        reply, n = u.request(b'get b1\r\n', until=b'END\r\n')
        check(reply.endswith(b'END\r\n') and big in reply, 'UDP big get after garbage failed')
        with srv.connect() as c:
            r = c.request(b'version\r\n')
            check(r.startswith(b'VERSION '), 'TCP version after UDP garbage: %r' % r)
        srv.check_alive()


if __name__ == '__main__':
    run(main)
