"""-M (no evictions): once memory is full, a store answers
"SERVER_ERROR out of memory storing object" with its data block swallowed
(the connection stays in sync), nothing stored before is lost or evicted,
and deleting an item makes room for a new one.  Same behaviour as stock
memcached 1.6.18 with the same flags.
"""
import socket

from server import Server, check, fail, run

OOM = b'SERVER_ERROR out of memory storing object\r\n'
VALUE = b'v' * 1000


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5.0)
        self.rfile = self.sock.makefile('rb')

    def line(self, req):
        self.sock.sendall(req)
        got = self.rfile.readline()
        if not got.endswith(b'\r\n'):
            fail('no complete reply to %r (got %r)' % (req[:40], got))
        return got

    def get(self, key):
        """Returns the value of key, or None on a miss."""
        first = self.line(b'get %s\r\n' % key)
        if first == b'END\r\n':
            return None
        if not first.startswith(b'VALUE %s ' % key):
            fail('get %r: unexpected %r' % (key, first))
        n = int(first.split()[3])
        data = self.rfile.read(n + 2)
        end = self.rfile.readline()
        check(data[-2:] == b'\r\n' and end == b'END\r\n',
              'get %r: malformed reply' % key)
        return data[:-2]

    def stat(self, name):
        self.sock.sendall(b'stats\r\n')
        value = None
        while True:
            l = self.rfile.readline()
            if l == b'END\r\n':
                return value
            parts = l.split()
            if len(parts) == 3 and parts[1] == name.encode():
                value = int(parts[2])


def main():
    with Server(['-M', '-m', '2', '-t', '1']) as srv:
        c = Conn(srv.host, srv.port)
        stored = 0
        for i in range(20000):   # -m 2 holds well under 2000 such items
            reply = c.line(b'set k%d 0 0 %d\r\n%s\r\n' % (i, len(VALUE), VALUE))
            if reply == OOM:
                break
            check(reply == b'STORED\r\n', 'set k%d: unexpected %r' % (i, reply))
            stored += 1
        else:
            fail('-M -m 2: 20000 stores of 1 KB never ran out of memory')
        check(stored > 100, 'only %d items fit in -m 2' % stored)

        # The rejected store's data block was swallowed: still in sync.
        check(c.line(b'version\r\n').startswith(b'VERSION '),
              'connection out of sync after the out-of-memory reply')
        # Nothing stored was lost.
        for i in range(stored):
            got = c.get(b'k%d' % i)
            if got != VALUE:
                fail('k%d lost or changed after out of memory: %r' % (i, got))
        check(c.stat('evictions') == 0, '-M must never evict')
        check(c.line(b'set k%d 0 0 %d\r\n%s\r\n' % (stored, len(VALUE), VALUE)) == OOM,
              'a second store should still be out of memory')
        # Deleting frees room for a store of the same size.
        check(c.line(b'delete k0\r\n') == b'DELETED\r\n', 'delete k0 failed')
        check(c.line(b'set again 0 0 %d\r\n%s\r\n' % (len(VALUE), VALUE)) == b'STORED\r\n',
              'after a delete, a store of the same size should fit')
        check(c.get(b'again') == VALUE, 'the new item should read back')
        srv.check_alive()


if __name__ == '__main__':
    run(main)
