#!/usr/bin/python3
"""UDP: memcached's 8-byte frame header (request id, sequence number, number
of datagrams, reserved), server started with -U PORT.

Single-datagram get, a multi-datagram reply for a ~10 KB value reassembled by
sequence number, a store over UDP, and garbage datagrams that must be ignored
(or answered) without hurting the server."""
import os
import random
import socket
import struct
import time

from server import Server, check, fail, run

HDR = struct.Struct('!HHHH')


class UdpClient:
    def __init__(self, host, port):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.rid = random.randrange(1, 30000)

    def raw(self, data):
        self.sock.send(data)

    def drain(self, wait=0.2):
        self.sock.settimeout(wait)
        got = []
        try:
            while True:
                got.append(self.sock.recv(65536))
        except (socket.timeout, ConnectionRefusedError):
            pass
        return got

    def request(self, body, timeout=2.0, tries=3, until=None):
        """Send one framed request; return (reassembled reply, datagram count).

        A reply is one or more messages, each numbered 0..total-1 in its own
        frame headers.  memcached 1.6.18 frames each key of a multi-get as a
        separate message (sequence restarting at 0); a server that frames the
        whole reply as one message is fine too.  Messages are joined in
        arrival order; with `until`, the reply is complete when the last
        message is complete and the joined bytes end with `until`.
        """
        for _ in range(tries):
            self.rid = (self.rid + 1) & 0xffff
            rid = self.rid
            self.sock.send(HDR.pack(rid, 0, 1, 0) + body)
            done, parts, total, count = [], {}, None, 0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    d = self.sock.recv(65536)
                except socket.timeout:
                    break
                check(len(d) >= 8, 'datagram shorter than the frame header: %r' % d)
                r, seq, tot, res = HDR.unpack_from(d)
                if r != rid:
                    continue  # a late reply to an earlier (retried) request
                count += 1
                check(res == 0, 'reserved field is %d, expected 0' % res)
                check(tot >= 1, 'total datagrams %d' % tot)
                if total is None:
                    total = tot
                check(tot == total, 'datagrams of one message disagree on the total: %d vs %d'
                      % (tot, total))
                check(seq < total, 'sequence %d >= total %d' % (seq, total))
                check(seq not in parts, 'sequence %d received twice' % seq)
                parts[seq] = d[8:]
                if len(parts) == total:
                    done.append(b''.join(parts[i] for i in range(total)))
                    parts, total = {}, None
                    reply = b''.join(done)
                    if until is None or reply.endswith(until):
                        return reply, count
            print('UDP reply incomplete (%d messages, %d datagrams), retrying'
                  % (len(done), count))
        fail('no complete UDP reply to %r after %d tries' % (body[:60], tries))


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
