"""Shared helpers for the end-to-end tests: start a server, talk to it, stop it.

Which binary runs:
  DPCACHE_E2E_SERVER=memcached  -> /usr/bin/memcached (the reference)
  otherwise                     -> $DPCACHED (meson passes build/dataplane/dpcached)

Every server is started on a free random port on 127.0.0.1, waited for until
it accepts a TCP connection, and always stopped by PID (SIGTERM, then SIGKILL
after a timeout): by the context manager, by atexit, and on SIGTERM/SIGINT to
the test itself (meson's timeout).  A server that died on its own is a test
failure that names its exit status or signal.

Which backend serves (dpdk_env.py has the details):
  DPCACHE_BACKEND=kernel (default) -> as above, on 127.0.0.1
  DPCACHE_BACKEND=dpdk             -> dpcached --net=dpdk in namespace NAME-dp
                                      (af_packet on a veth), this test in NAME-cl;
                                      run through dpdk_run.py, which sets
                                      DPCACHE_NETNS=NAME and cleans up
  DPCACHE_BACKEND=kernel-netns     -> the kernel backend in NAME-dp: a check of
                                      the namespace plumbing without DPDK
Server.host is the address to use (127.0.0.1 or 198.18.0.1).  Stock
memcached (test_compat's reference) always runs beside the test itself.

Exit codes of a test: 0 pass, 1 fail, 77 skip (only when the machine lacks
something, e.g. /usr/bin/memcached for the comparison test).
"""

import atexit
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import dpdk_env

MEMCACHED = '/usr/bin/memcached'
SKIP = 77


class TestFailure(Exception):
    """A check failed; the message says what was expected and what came."""


class TestSkip(Exception):
    """The machine lacks something the test needs."""


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def target():
    """Return (name, path) of the server under test."""
    if os.environ.get('DPCACHE_E2E_SERVER') == 'memcached':
        if not os.access(MEMCACHED, os.X_OK):
            raise TestSkip('DPCACHE_E2E_SERVER=memcached but %s is missing' % MEMCACHED)
        return 'memcached', MEMCACHED
    path = os.environ.get('DPCACHED')
    if not path:
        fail('DPCACHED is not set (path of the dpcached binary); '
             'or set DPCACHE_E2E_SERVER=memcached to test stock memcached')
    if not os.access(path, os.X_OK):
        fail('DPCACHED=%s is not an executable file (was dpcached built?)' % path)
    return 'dpcached', path


def signame(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return 'signal %d' % num


def describe_status(rc):
    if rc is None:
        return 'still running'
    if rc < 0:
        return 'killed by %s' % signame(-rc)
    return 'exit status %d' % rc


_live = []
_started = []   # every server this test started, for the crash report


def _stop_all():
    for s in list(_live):
        try:
            s.stop(check_exit=False)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(_stop_all)


def _on_signal(signum, frame):
    # Turn meson's SIGTERM (timeout) into an exception so that context
    # managers and atexit stop the servers we started.
    raise SystemExit('test interrupted by %s' % signame(signum))


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def free_port(udp_too=False):
    """A port that is free on 127.0.0.1 for TCP (and UDP if asked) right now."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(('127.0.0.1', 0))
        port = t.getsockname()[1]
        ok = True
        if udp_too:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(('127.0.0.1', port))
            except OSError:
                ok = False
            u.close()
        t.close()
        if ok:
            return port
    fail('could not find a free port')


def _split_threads(flags):
    """(flags without -t/--threads, the thread count or None): in DPDK mode
    the polling lcores come from EAL, so -t N becomes N polling lcores."""
    out, threads, i = [], None, 0
    while i < len(flags):
        f = flags[i]
        if f in ('-t', '--threads') and i + 1 < len(flags):
            threads = int(flags[i + 1])
            i += 2
            continue
        if f.startswith('--threads='):
            threads = int(f.split('=', 1)[1])
        elif f.startswith('-t') and f[2:].isdigit():
            threads = int(f[2:])
        else:
            out.append(f)
        i += 1
    return out, threads


_eal_prefixes = [0]


class Server:
    """One server process.  Use as a context manager.

    flags: extra memcached-style flags, e.g. ['-m', '64', '-c', '20'].
    udp: also listen for UDP on the same port number (-U PORT), else -U 0.
    kind/path: default from target(); test_compat passes both explicitly.
    backend: default from DPCACHE_BACKEND; only dpcached runs elsewhere than
    'kernel' (stock memcached always runs beside the test).
    pmd: with backend 'dpdk', af_packet or af_xdp (default DPCACHE_DPDK_PMD,
    else af_packet).
    """

    def __init__(self, flags=(), udp=False, kind=None, path=None,
                 start_timeout=None, stop_timeout=5.0, backend=None, pmd=None):
        if kind is None:
            kind, path = target()
        self.kind = kind
        self.path = path
        self.flags = list(flags)
        self.udp = udp
        self.backend = backend or dpdk_env.backend()
        if kind != 'dpcached':
            self.backend = 'kernel'
        if self.backend != 'kernel' and not dpdk_env.netns_name():
            fail('DPCACHE_BACKEND=%s needs DPCACHE_NETNS: run the test through '
                 'tests/e2e/dpdk_run.py' % self.backend)
        self.host = '127.0.0.1' if self.backend == 'kernel' else dpdk_env.SERVER_IP
        self.pmd = pmd or (dpdk_env.pmd() if self.backend == 'dpdk' else None)
        if start_timeout is None:
            start_timeout = 30.0 if self.backend == 'dpdk' else 15.0
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc = None
        self.port = None
        self.log = None
        self._stopping = False
        self.crash = None     # set when the server died on its own

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        last = None
        for _attempt in range(3):
            self.port = free_port(udp_too=self.udp)
            if self.backend == 'kernel':
                argv = [self.path, '-l', '127.0.0.1', '-p', str(self.port),
                        '-U', str(self.port) if self.udp else '0']
                if self.kind == 'memcached' and os.geteuid() == 0:
                    argv += ['-u', 'root']   # memcached refuses root without -u
                argv += self.flags
            else:
                argv = self._netns_argv()
            self.argv = argv
            self.log = tempfile.TemporaryFile(prefix='e2e-server-')
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=subprocess.STDOUT)
            _live.append(self)
            if self not in _started:
                _started.append(self)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    s = socket.create_connection((self.host, self.port), timeout=0.5)
                    s.close()
                    return self
                except OSError:
                    time.sleep(0.05)
            rc = self.proc.poll()
            if rc is None:
                self._kill()
                fail('%s did not accept connections on port %d within %.0fs\n'
                     'argv: %s\n%s' % (self.kind, self.port, self.start_timeout,
                                       ' '.join(argv), self.log_tail()))
            last = ('%s exited at start (%s)\nargv: %s\n%s'
                    % (self.kind, describe_status(rc), ' '.join(argv), self.log_tail()))
            _live.remove(self)
            if 'in use' not in self.log_tail():
                break   # not a port race: report it
        fail(last)

    def _netns_argv(self):
        """argv for dpcached in the server namespace.  `ip netns exec` execs
        the command, so Popen's PID is dpcached's own and stop() signals it
        directly."""
        argv = ['ip', 'netns', 'exec', dpdk_env.server_ns(), self.path]
        udp = str(self.port) if self.udp else '0'
        if self.backend == 'kernel-netns':
            return argv + ['-l', dpdk_env.SERVER_IP, '-p', str(self.port), '-U', udp] + self.flags
        flags, threads = _split_threads(self.flags)
        workers = max(1, min(threads or 2, 4))
        if self.pmd == 'af_xdp':
            # One XDP socket per veth queue and one worker per socket: the
            # veth must have exactly as many queues as there are workers,
            # or flows hashed to a queue nobody polls vanish.
            workers = min(workers, dpdk_env.VETH_QUEUES)
            err = dpdk_env.set_queues(workers)
            if err:
                fail(err)
        if not any(f.startswith('--poll-idle-us') for f in flags):
            # Two CPUs are shared by the pollers and the clients.
            flags.append('--poll-idle-us=' + (os.environ.get('DPCACHE_POLL_IDLE_US') or '50'))
        _eal_prefixes[0] += 1
        prefix = 'e2e%d_%d' % (os.getpid(), _eal_prefixes[0])
        return (argv + ['--net=dpdk', '--ip=%s/%d' % (dpdk_env.SERVER_IP, dpdk_env.PREFIX),
                        '-p', str(self.port), '-U', udp] + flags
                + ['--'] + dpdk_env.eal_args(workers, prefix, self.pmd))

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        # If the test already failed, still stop the server but keep the
        # original failure; report a crash in addition.
        if exc_type is not None and self.backend == 'dpdk' and self.alive():
            self.print_dataplane_counters()
        self.stop(check_exit=exc_type is None)
        return False

    def print_dataplane_counters(self):
        """After a failure: the DPDK stack's non-zero counters, per core,
        for whoever debugs the stack."""
        try:
            st = self.dataplane_stats()
        except Exception as e:  # noqa: BLE001 - best effort
            print('(stats dataplane unavailable: %s)' % e)
            return
        for scope in sorted(st, key=lambda k: (k != 'total', k)):
            nz = ['%s=%d' % kv for kv in sorted(st[scope].items())
                  if kv[1] and kv[0] != 'idle_sleeps']
            print('stats dataplane %s: %s' % (scope, ' '.join(nz)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, what=''):
        """Fail the test if the server died on its own."""
        rc = self.proc.poll()
        if rc is not None:
            fail('%s died unexpectedly%s: %s\nargv: %s\n%s'
                 % (self.kind, (' ' + what) if what else '', describe_status(rc),
                    ' '.join(self.argv), self.log_tail()))

    def _kill(self):
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, check_exit=True):
        if self.proc is None or self._stopping:
            return
        self._stopping = True
        if self in _live:
            _live.remove(self)
        rc = self.proc.poll()
        if rc is not None:
            # It was gone before we asked it to go: a crash.
            msg = ('%s died unexpectedly: %s\nargv: %s\n%s'
                   % (self.kind, describe_status(rc), ' '.join(self.argv), self.log_tail()))
            self.crash = msg
            if check_exit:
                fail(msg)
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            print('WARNING: %s (pid %d) ignored SIGTERM for %.0fs; sent SIGKILL'
                  % (self.kind, self.proc.pid, self.stop_timeout), file=sys.stderr)
            self._kill()
            return
        if rc not in (0, -signal.SIGTERM):
            msg = ('%s exited badly on SIGTERM: %s\n%s'
                   % (self.kind, describe_status(rc), self.log_tail()))
            self.crash = msg
            if check_exit:
                fail(msg)

    def log_tail(self, n=2000):
        if self.log is None:
            return ''
        try:
            self.log.flush()
            self.log.seek(0)
            data = self.log.read()
        except (OSError, ValueError):
            return ''
        data = data[-n:].decode('utf-8', 'replace')
        return ('server output (tail):\n' + data) if data else '(server printed nothing)'

    # -- observation -------------------------------------------------------
    def rss_kb(self):
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    def connect(self, timeout=5.0):
        return Conn((self.host, self.port), timeout=timeout)

    def stats(self, arg=None, timeout=5.0):
        """`stats [arg]` as a dict of name -> value string."""
        with self.connect(timeout) as c:
            c.send('stats%s\r\n' % ((' ' + arg) if arg else ''))
            text = c.read_until(b'END\r\n').decode(errors='replace')
        out = {}
        for line in text.split('\r\n'):
            parts = line.split(' ', 2)
            if len(parts) == 3 and parts[0] == 'STAT':
                out[parts[1]] = parts[2]
        return out

    def dataplane_stats(self):
        """`stats dataplane` of the DPDK backend: {'total': {counter: int},
        'core0': {...}, ...}."""
        out = {}
        for k, v in self.stats('dataplane').items():
            scope, _, counter = k.partition(':')
            if not counter:
                continue
            try:
                out.setdefault(scope, {})[counter] = int(v)
            except ValueError:
                pass
        return out


class Conn:
    """A raw TCP connection with deadline-bounded reads."""

    def __init__(self, addr, timeout=5.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b''
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes; False at deadline or EOF."""
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        # poll, not select: a test may hold more than FD_SETSIZE sockets.
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        if not p.poll(left * 1000):
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b''
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, marker, timeout=None, what='reply'):
        deadline = time.monotonic() + (timeout or self.timeout)
        while marker not in self.buf:
            if not self._fill(deadline):
                fail('no complete %s (waiting for %r) within %.1fs%s; got %r'
                     % (what, marker, timeout or self.timeout,
                        ' (connection closed)' if self.eof else '', self.buf[:400]))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_line(self, timeout=None):
        return self.read_until(b'\r\n', timeout, what='line')

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                fail('wanted %d bytes within %.1fs%s, got %d'
                     % (n, timeout or self.timeout,
                        ' (connection closed)' if self.eof else '', len(self.buf)))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_idle(self, idle=0.2, timeout=None):
        """Everything that arrives until the line is quiet for `idle` s."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if not self._fill(min(deadline, time.monotonic() + idle)):
                break
        out, self.buf = self.buf, b''
        return out

    def wait_eof(self, timeout=2.0):
        """True if the peer closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        while not self.eof and self._fill(deadline):
            pass
        return self.eof

    def request(self, data, marker=b'\r\n', timeout=None):
        self.send(data)
        return self.read_until(marker, timeout)


HDR = struct.Struct('!HHHH')


class UdpClient:
    """memcached's UDP frame protocol (test_udp, test_dpdk_loss)."""

    def __init__(self, host, port):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.rid = random.randrange(1, 30000)
        self.retries = 0    # tries beyond the first, over all requests

    def close(self):
        self.sock.close()

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

    def request(self, body, timeout=2.0, tries=3, until=None, quiet=False):
        """Send one framed request; return (reassembled reply, datagram count).

        A reply is one or more messages, each numbered 0..total-1 in its own
        frame headers.  memcached 1.6.18 frames each key of a multi-get as a
        separate message (sequence restarting at 0); a server that frames the
        whole reply as one message is fine too.  Messages are joined in
        arrival order; with `until`, the reply is complete when the last
        message is complete and the joined bytes end with `until`.  Each try
        has a new request id, so a late reply to an earlier try is skipped;
        `quiet` leaves retries unreported (a lossy link expects them).
        """
        for t in range(tries):
            if t:
                self.retries += 1
            self.rid = (self.rid + 1) & 0xffff
            rid = self.rid
            try:
                self.sock.send(HDR.pack(rid, 0, 1, 0) + body)
            except PermissionError:
                continue    # a firewall (kernel-netns loss) dropped it on the way out
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
            if not quiet:
                print('UDP reply incomplete (%d messages, %d datagrams), retrying'
                      % (len(done), count))
        fail('no complete UDP reply to %r after %d tries' % (body[:60], tries))


def _crash_report():
    """After a failure: stop what still runs and name any server that died."""
    _stop_all()
    for s in _started:
        if s.crash:
            print('SERVER CRASH: ' + s.crash)


def run(main):
    """Run main() and turn its outcome into the exit code."""
    name = os.path.basename(sys.argv[0])
    try:
        main()
    except TestSkip as e:
        print('SKIP %s: %s' % (name, e))
        _stop_all()
        sys.exit(SKIP)
    except TestFailure as e:
        print('FAIL %s: %s' % (name, e))
        _crash_report()
        sys.exit(1)
    except SystemExit as e:
        if e.code not in (0, None):
            print('FAIL %s: %s' % (name, e.code))
            _crash_report()
            sys.exit(1)
        raise
    except BaseException:  # noqa: BLE001 - any error is a failure
        print('FAIL %s: unexpected error' % name)
        traceback.print_exc(file=sys.stdout)
        _crash_report()
        sys.exit(1)
    print('PASS %s' % name)
    sys.exit(0)
