#!/usr/bin/python3
"""Slow client: one client pipelines 2000 `get big` (512 KB value each, ~1 GB
of replies) and never reads.  The server must not buffer the replies in
memory: its VmRSS grows by less than 100 MB, and another client keeps getting
quick, correct answers meanwhile.  Then the slow client reads a few replies
(they must be correct), hangs up, and the server is still fine."""
import socket
import time

from server import Server, check, run

BIG = 512 * 1024
REQUESTS = 2000
RSS_LIMIT_KB = 100 * 1024


def main():
    with Server(['-m', '256', '-t', '2']) as srv:
        big = bytes((i * 7 + 3) & 0xff for i in range(BIG))
        with srv.connect() as c:
            check(c.request(b'set big 0 0 %d\r\n%s\r\n' % (BIG, big)) == b'STORED\r\n', 'set big')
            check(c.request(b'set small 0 0 5\r\nhello\r\n') == b'STORED\r\n', 'set small')
        rss0 = srv.rss_kb()

        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((srv.host, srv.port))
        slow.setblocking(False)
        reqs = b'get big\r\n' * REQUESTS
        sent = 0
        t_end = time.monotonic() + 5
        while sent < len(reqs) and time.monotonic() < t_end:
            try:
                sent += slow.send(reqs[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)
        print('slow client: sent %d of %d request bytes, reading nothing' % (sent, len(reqs)))

        peak = rss0
        worst = 0.0
        n = 0
        with srv.connect() as c:
            t_stop = time.monotonic() + 3.0
            while time.monotonic() < t_stop:
                t = time.monotonic()
                r = c.request(b'get small\r\n', marker=b'END\r\n', timeout=2)
                check(r == b'VALUE small 0 5\r\nhello\r\nEND\r\n', 'small get: %r' % r)
                c.send(b'get big\r\n')
                hdr = c.read_line(timeout=5)
                check(hdr == b'VALUE big 0 %d\r\n' % BIG, 'big get header: %r' % hdr)
                data = c.read_exact(BIG + 7, timeout=5)
                check(data == big + b'\r\nEND\r\n', 'big value read back wrong')
                worst = max(worst, time.monotonic() - t)
                n += 1
                peak = max(peak, srv.rss_kb())
                srv.check_alive('while a client does not read')
                time.sleep(0.05)
        print('other client: %d round trips, slowest %.3f s; VmRSS %d kB -> peak %d kB (+%d kB)'
              % (n, worst, rss0, peak, peak - rss0))
        check(worst < 1.0, 'a round trip took %.2f s while a client does not read' % worst)
        check(peak - rss0 < RSS_LIMIT_KB,
              'VmRSS grew by %d kB (limit %d kB) while a client did not read'
              % (peak - rss0, RSS_LIMIT_KB))

        # The slow client now reads a few replies: they must be intact.
        slow.setblocking(True)
        slow.settimeout(10)
        want = b'VALUE big 0 %d\r\n%s\r\nEND\r\n' % (BIG, big)
        buf = b''
        while len(buf) < 3 * len(want):
            chunk = slow.recv(1 << 20)
            check(chunk, 'slow client: connection closed after %d bytes' % len(buf))
            buf += chunk
        check(buf[:3 * len(want)] == want * 3, 'slow client: replies corrupted')
        slow.close()
        time.sleep(0.3)
        srv.check_alive('after the slow client hung up')
        with srv.connect() as c:
            r = c.request(b'get small\r\n', marker=b'END\r\n', timeout=2)
            check(r == b'VALUE small 0 5\r\nhello\r\nEND\r\n', 'after slow client: %r' % r)
        print('VmRSS at end: %d kB' % srv.rss_kb())


if __name__ == '__main__':
    run(main)
