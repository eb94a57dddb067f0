"""-u USER: started as root, the server becomes USER once its ports are
bound, as memcached does, and serves as before; an unknown user is a clear
start-up error.  Needs root (skips otherwise) and the 'nobody' account.
"""
import os
import pwd
import socket
import subprocess
import time

from server import Server, TestSkip, check, free_port, run, target


def uid_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError('no Uid line for pid %d' % pid)


def main():
    if os.geteuid() != 0:
        raise TestSkip('needs root to switch users')
    try:
        nobody = pwd.getpwnam('nobody').pw_uid
    except KeyError:
        raise TestSkip("this machine has no 'nobody' user")
    kind, path = target()
    if kind == 'memcached':
        raise TestSkip('dpcached-only test')

    with Server(['-u', 'nobody', '-t', '2']) as srv:
        # The server accepts connections before it drops privileges (it
        # binds first, as memcached does), so the uid may change a moment
        # after the server looks ready.
        deadline = time.monotonic() + 5
        while uid_of(srv.proc.pid) != [nobody] * 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        check(uid_of(srv.proc.pid) == [nobody] * 4,
              'server should run as nobody (uid %d), /proc says %r'
              % (nobody, uid_of(srv.proc.pid)))
        s = socket.create_connection((srv.host, srv.port), timeout=3.0)
        s.sendall(b'set k 0 0 2\r\nhi\r\nget k\r\n')
        want = b'STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n'
        got = b''
        while len(got) < len(want):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        check(got == want, 'as nobody: expected %r, got %r' % (want, got))
        s.close()
        srv.check_alive()

    res = subprocess.run([path, '-l', '127.0.0.1', '-p', str(free_port()),
                          '-u', 'no-such-user-dpcache'],
                         capture_output=True, timeout=10)
    check(res.returncode == 1,
          'unknown user: exit status %d, expected 1' % res.returncode)
    check(b"no such user 'no-such-user-dpcache'" in res.stderr,
          'unknown user: unclear message %r' % res.stderr)


if __name__ == '__main__':
    run(main)
