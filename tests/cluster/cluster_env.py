"""Shared harness of the cluster end-to-end tests (issue 4, section 5).

What it gives a test:
  - a real ZooKeeper (Debian's zookeeper package) on a free loopback port and
    a temporary data dir, stoppable and restartable on the same port and dir;
  - dpcached nodes started with the binding cluster command line
    (-p PORT -l 127.0.0.1 -U 0 -t 1 -m 256 --cluster=... --node-id=nN
    --advertise=... --admin=... --zk-session-ms=1500 --grace-ms=1500),
    waited for until they accept TCP and are in the shard map;
  - the shard map and the election read straight from ZooKeeper with kazoo
    (never through the code under test), key owners computed with ketama.py
    (libmemcached's algorithm, checked against pylibmc);
  - load workers (pymemcache), each owning a disjoint key set, that remember
    the last acknowledged version of every key and record every error with
    its context, and a final read-back check of every acknowledged key.

Why a harness of its own rather than tests/e2e/server.Server: a node needs
its port before its argv is built (--advertise), several run at once, and
SIGKILL / restart are part of the tests.  The raw socket helpers (Conn),
fail/check and free_port are reused from tests/e2e/server.py.

Clean-up: every process started here is recorded by PID and stopped at exit
(atexit, and SIGTERM/SIGINT turned into SystemExit by server.py), the temp
dir is removed.  Nothing else is ever signalled.

Environment: DPCACHED (the binary), DPCACHECTL (the CLI), ZK_SERVER_SH
(optional: tests/control/zk-server.sh; when absent or not executable,
ZooKeeper is started directly with java as /tmp/cluster-spec.md shows),
DPCACHE_CLUSTER_KEEP=1 keeps the temp dir (logs) after a failure.
"""

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
sys.path.insert(0, HERE)

import server as e2e                                     # noqa: E402
from server import Conn, TestFailure, TestSkip, check, fail, free_port  # noqa: E402,F401
import ketama                                            # noqa: E402

from pymemcache.client.base import Client                # noqa: E402
from pymemcache.exceptions import (MemcacheServerError,  # noqa: E402
                                   MemcacheUnexpectedCloseError)

# The binding timing flags: a session lapses after 1.5 s, a node whose
# session lapsed leaves the map 1.5 s later.
ZK_SESSION_MS = 1500
GRACE_MS = 1500

T0 = time.monotonic()


def now():
    """Seconds since the test started (every log line and event uses it)."""
    return time.monotonic() - T0


def log(msg):
    print('[%7.2f] %s' % (now(), msg), flush=True)


# ---- process bookkeeping ----------------------------------------------------

_procs = []       # (Popen, name) of everything we started, for the exit sweep
_tmpdirs = []
_zk_scripts = []  # ZooKeepers started by zk-server.sh: stopped by it at exit
_failed = [False]


def _stop_proc(p, timeout=5.0):
    if p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    except ProcessLookupError:
        pass


def _cleanup():
    for z in _zk_scripts:
        try:
            z.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    for p, _name in reversed(_procs):
        try:
            _stop_proc(p, 3.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    keep = os.environ.get('DPCACHE_CLUSTER_KEEP') == '1' and _failed[0]
    for d in _tmpdirs:
        if keep:
            print('kept logs in %s' % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _spawn(argv, logpath, name):
    logf = open(logpath, 'ab')
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                         stderr=subprocess.STDOUT)
    logf.close()
    _procs.append((p, name))
    return p


def _tail(path, n=3000):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def _env_path(name, required=True):
    path = os.environ.get(name)
    if not path:
        if required:
            fail('%s is not set (meson sets it; see tests/cluster/meson.build)' % name)
        return None
    if not os.access(path, os.X_OK):
        if required:
            fail('%s=%s is not an executable file (was it built?)' % (name, path))
        return None
    return path


def wait_for(pred, timeout, what, interval=0.1):
    """Poll pred() until it returns a true value; fail naming 'what'."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the last error goes in the message
            last_exc = e
        if time.monotonic() >= deadline:
            fail('timed out after %.1fs waiting for %s%s' % (
                timeout, what, (' (last error: %r)' % last_exc) if last_exc else ''))
        time.sleep(interval)


# ---- ZooKeeper --------------------------------------------------------------

class ZooKeeper:
    """One standalone ZooKeeper server on 127.0.0.1, in dir/zk."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, 'zk')
        os.makedirs(os.path.join(self.dir, 'data'), exist_ok=True)
        self.port = None
        self.proc = None          # Popen, or True when zk-server.sh runs it
        self.pid = None
        self.logpath = os.path.join(tmpdir, 'zookeeper.log')
        self.script = _env_path('ZK_SERVER_SH', required=False)

    @property
    def hosts(self):
        return '127.0.0.1:%d' % self.port

    def _write_cfg(self):
        cfg = os.path.join(self.dir, 'zoo.cfg')
        with open(cfg, 'w') as f:
            f.write('tickTime=200\n'
                    'dataDir=%s\n'
                    'clientPort=%d\n'
                    'clientPortAddress=127.0.0.1\n'
                    'admin.enableServer=false\n'
                    'maxSessionTimeout=60000\n'
                    'minSessionTimeout=400\n'
                    '4lw.commands.whitelist=ruok,stat,mntr\n'
                    % (os.path.join(self.dir, 'data'), self.port))
        return cfg

    def ruok(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1.0) as s:
                s.sendall(b'ruok')
                s.settimeout(1.0)
                return s.recv(16) == b'imok'
        except OSError:
            return False

    def start(self, timeout=90.0):
        """Start (or restart with the same port and data dir)."""
        if shutil.which('java') is None:
            raise TestSkip('java not found (Debian package zookeeper is needed)')
        if self.script:
            return self._start_script()
        if self.port is None:
            self.port = free_port()
        cfg = self._write_cfg()
        # A small, single-threaded-GC JVM: the machine has two cores shared
        # with the nodes and the clients.
        argv = ['java', '-Xmx192m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
                '-Dzookeeper.log.dir=' + self.dir,
                '-Dzookeeper.root.logger=INFO,CONSOLE',
                '-cp', '/etc/zookeeper/conf:/usr/share/java/*',
                'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg]
        self.proc = _spawn(argv, self.logpath, 'zookeeper')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail('ZooKeeper exited at start (%s)\n%s'
                     % (e2e.describe_status(self.proc.returncode), _tail(self.logpath)))
            if self.ruok():
                log('ZooKeeper up on port %d (pid %d)' % (self.port, self.proc.pid))
                return
            time.sleep(0.2)
        fail('ZooKeeper did not answer ruok within %.0fs\n%s' % (timeout, _tail(self.logpath)))

    def _start_script(self):
        """tests/control/zk-server.sh start DIR PORT (prints the PID; the
        server's log is DIR/zk.log; stop DIR ends it)."""
        self.logpath = os.path.join(self.dir, 'zk.log')
        if self not in _zk_scripts:
            _zk_scripts.append(self)
        for attempt in range(5):
            fresh = self.port is None
            if fresh:
                self.port = free_port()
            r = subprocess.run([self.script, 'start', self.dir, str(self.port)],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            if r.returncode == 0:
                self.pid = int(r.stdout.split()[-1])
                self.proc = True
                log('ZooKeeper up on port %d (pid %d, %s)'
                    % (self.port, self.pid, os.path.basename(self.script)))
                return
            err = r.stderr.decode(errors='replace')
            if not (fresh and 'in use' in err):
                if not fresh and 'in use' in err and attempt < 4:
                    time.sleep(1.0)   # our old server's port not yet released
                    continue
                fail('%s start %s %d failed: %s\n%s' % (self.script, self.dir, self.port,
                                                       err, _tail(self.logpath)))
            self.port = None

    def stop(self):
        if self.script and self.proc is not None:
            subprocess.run([self.script, 'stop', self.dir], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
            log('ZooKeeper stopped')
        elif self.proc is not None:
            _stop_proc(self.proc, 10.0)
            log('ZooKeeper stopped')
        self.proc = None


# ---- nodes --------------------------------------------------------------------

def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


class Node:
    """One dpcached cluster node."""

    def __init__(self, cluster, nid, weight=None, standby=False,
                 migrate_rate=None, extra=(), port=None):
        self.cluster = cluster
        self.id = nid
        self.weight = weight
        self.standby = standby
        self.migrate_rate = migrate_rate
        self.extra = list(extra)
        self.port = port
        self.admin_port = free_port() if port else None
        self.proc = None
        self.logpath = os.path.join(cluster.tmpdir, nid + '.log')
        self.argv = None

    @property
    def addr(self):
        return '127.0.0.1:%d' % self.port

    def _argv(self):
        argv = [self.cluster.dpcached, '-p', str(self.port), '-l', '127.0.0.1',
                '-U', '0', '-t', '1', '-m', '256',
                '--cluster=' + self.cluster.cluster_arg,
                '--node-id=' + self.id,
                '--advertise=' + self.addr,
                '--admin=127.0.0.1:%d' % self.admin_port,
                '--zk-session-ms=%d' % ZK_SESSION_MS,
                '--grace-ms=%d' % GRACE_MS]
        if self.weight is not None:
            argv.append('--weight=%d' % self.weight)
        if self.standby:
            argv.append('--standby')
        if self.migrate_rate is not None:
            argv.append('--migrate-rate=%s' % self.migrate_rate)
        return argv + self.extra

    def start(self, timeout=20.0):
        """Start and wait until the port accepts.  A restart keeps the port."""
        for attempt in range(3):
            fresh = self.port is None
            if fresh:
                self.port = free_port()
                self.admin_port = free_port()
            self.argv = self._argv()
            with open(self.logpath, 'ab') as f:
                f.write(('---- start %s at %.2f: %s\n'
                         % (self.id, now(), ' '.join(self.argv))).encode())
            self.proc = _spawn(self.argv, self.logpath, self.id)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(('127.0.0.1', self.port), timeout=0.5).close()
                    log('node %s up on %s (pid %d)' % (self.id, self.addr, self.proc.pid))
                    return self
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                fail('node %s did not accept connections within %.0fs\nargv: %s\n%s'
                     % (self.id, timeout, ' '.join(self.argv), self.log_tail()))
            tail = self.log_tail()
            if 'in use' not in tail or not fresh or attempt == 2:
                fail('node %s exited at start (%s)\nargv: %s\n%s'
                     % (self.id, e2e.describe_status(self.proc.returncode),
                        ' '.join(self.argv), tail))
            self.port = None    # a port race: pick others
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, what=''):
        if self.proc is not None and self.proc.poll() is not None:
            fail('node %s died unexpectedly%s: %s\n%s'
                 % (self.id, (' ' + what) if what else '',
                    e2e.describe_status(self.proc.returncode), self.log_tail()))

    def kill9(self):
        log('SIGKILL node %s (pid %d)' % (self.id, self.proc.pid))
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM; a bad exit status fails the test (a crash on shutdown)."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail('node %s ignored SIGTERM for 10s' % self.id)
        if rc not in (0, -signal.SIGTERM):
            fail('node %s exited badly on SIGTERM: %s\n%s'
                 % (self.id, e2e.describe_status(rc), self.log_tail()))

    def log_tail(self, n=3000):
        t = _tail(self.logpath, n)
        return ('node %s output (tail):\n%s' % (self.id, t)) if t else \
            '(node %s printed nothing)' % self.id

    def connect(self, timeout=5.0):
        return Conn(('127.0.0.1', self.port), timeout=timeout)

    def stats(self, group=None, timeout=5.0):
        """`stats [group]` as {name: int or str}."""
        with self.connect(timeout) as c:
            c.send('stats%s\r\n' % ((' ' + group) if group else ''))
            text = c.read_until(b'END\r\n').decode(errors='replace')
        out = {}
        for line in text.split('\r\n'):
            parts = line.split(' ', 2)
            if len(parts) == 3 and parts[0] == 'STAT':
                out[parts[1]] = _int(parts[2])
        return out

    def cstats(self):
        """`stats cluster`."""
        return self.stats('cluster')

    def client(self, timeout=3.0):
        return Client(('127.0.0.1', self.port), connect_timeout=2.0,
                      timeout=timeout, no_delay=True, default_noreply=False)


# ---- the cluster --------------------------------------------------------------

class Cluster:
    def __init__(self, name):
        self.name = name
        self.tmpdir = tempfile.mkdtemp(prefix='dpc-cluster-%s-' % name)
        _tmpdirs.append(self.tmpdir)
        self.dpcached = _env_path('DPCACHED')
        self.dpcachectl = _env_path('DPCACHECTL', required=False)
        self.root = '/dpc_%s_%d' % (name, os.getpid())
        self.zk = ZooKeeper(self.tmpdir)
        self.nodes = {}
        self.kz = None
        self.recorders = []       # MapRecorders, for the failure report

    # -- set-up ---------------------------------------------------------------
    @property
    def cluster_arg(self):
        return '%s%s' % (self.zk.hosts, self.root)

    def start_zk(self):
        self.zk.start()
        from kazoo.client import KazooClient
        import logging
        logging.getLogger('kazoo').setLevel(logging.CRITICAL)
        self.kz = KazooClient(hosts=self.zk.hosts, timeout=10.0,
                              connection_retry={'max_tries': -1, 'max_delay': 1.0})
        self.kz.start(timeout=30)

    def add_node(self, nid, **kw):
        n = Node(self, nid, **kw)
        self.nodes[nid] = n
        return n.start()

    def start(self, n, timeout=60.0, **kw):
        """ZooKeeper and nodes n1..nN; returns when the map is stable with
        all of them active."""
        self.start_zk()
        for i in range(1, n + 1):
            self.add_node('n%d' % i, **kw)
        return self.wait_stable(['n%d' % i for i in range(1, n + 1)], timeout)

    def live_nodes(self):
        return [n for n in self.nodes.values() if n.alive()]

    def check_alive(self, what=''):
        for n in self.nodes.values():
            if n.proc is not None and n.proc.returncode is None:
                n.check_alive(what)

    # -- ZooKeeper state (read with kazoo, not through dpcached) ---------------
    def read_map(self):
        """ROOT/map as a dict, None when absent."""
        from kazoo.exceptions import NoNodeError
        try:
            data, _ = self.kz.get(self.root + '/map')
        except NoNodeError:
            return None
        return json.loads(data.decode())

    @staticmethod
    def active_ids(m, key='nodes'):
        return sorted(n['id'] for n in (m.get(key) or [])
                      if n.get('state') == 'active' and int(n.get('weight', 1)) > 0)

    @staticmethod
    def is_stable(m):
        return m is not None and int(m.get('migration', 0)) == 0 and not m.get('prev')

    def wait_map(self, pred, timeout, what):
        last = [None]

        def probe():
            m = self.read_map()
            last[0] = m
            self.check_alive('while waiting for ' + what)
            return m if (m is not None and pred(m)) else None
        try:
            return wait_for(probe, timeout, what, interval=0.1)
        except TestFailure as e:
            raise TestFailure('%s\nlast map: %s' % (e, json.dumps(last[0])))

    def wait_stable(self, ids, timeout=60.0):
        """A stable map in ZooKeeper with exactly these active nodes, applied
        by every running node (stats cluster map_epoch): a node serves with
        the map it has, so the tests go on only once all have it."""
        ids = sorted(ids)
        t = time.monotonic()
        m = self.wait_map(lambda m: self.is_stable(m) and self.active_ids(m) == ids,
                          timeout, 'a stable map with active nodes %s' % ids)
        epoch = int(m['epoch'])

        def applied():
            return all(int(n.cstats().get('map_epoch', 0)) >= epoch
                       for n in self.live_nodes())
        wait_for(applied, max(5.0, timeout - (time.monotonic() - t)),
                 'every node to apply map epoch %d' % epoch)
        log('map stable: epoch %s, active %s' % (m.get('epoch'), ids))
        return m

    def registered(self):
        from kazoo.exceptions import NoNodeError
        try:
            return sorted(self.kz.get_children(self.root + '/nodes'))
        except NoNodeError:
            return []

    def leader_id(self):
        """The node id in the lowest-sequence ROOT/election child."""
        kids = self.kz.get_children(self.root + '/election')
        if not kids:
            return None
        first = min(kids, key=lambda k: int(k.rsplit('_', 1)[-1][-10:]))
        data, _ = self.kz.get(self.root + '/election/' + first)
        return data.decode().strip()

    def migration(self, n):
        """ROOT/migrations/<n> as a dict and its per-source records."""
        from kazoo.exceptions import NoNodeError
        path = '%s/migrations/%d' % (self.root, n)
        try:
            data, _ = self.kz.get(path)
        except NoNodeError:
            return None, {}
        rec = json.loads(data.decode())
        src = {}
        for kid in self.kz.get_children(path):
            d, _ = self.kz.get(path + '/' + kid)
            try:
                src[kid] = json.loads(d.decode())
            except ValueError:
                src[kid] = d
        return rec, src

    def port_for_share(self, lo, hi, weight=1, tries=500):
        """A free port P such that a node at 127.0.0.1:P with this weight,
        added to the current active nodes, gets a ketama share of the hash
        space in [lo, hi].  Ketama shares scatter with the addresses (a 1/4
        node gets 0.20..0.30 over random ports); a test that checks the
        moved fraction against 1/4 picks a port whose ideal is 1/4."""
        servers = [(n.addr, n.weight or 1) for n in self.live_nodes()]
        for _ in range(tries):
            p = free_port()
            ring = ketama.Ring(servers + [('127.0.0.1:%d' % p, weight)])
            if lo <= ring.share(len(servers)) <= hi:
                return p
        fail('no port gives a ketama share in [%.3f, %.3f]' % (lo, hi))

    # -- owners -----------------------------------------------------------------
    @staticmethod
    def owner(m, key, which='nodes'):
        return ketama.map_owner(m.get(which) or [], key)

    # -- dpcachectl -------------------------------------------------------------
    def ctl(self, *args, timeout=60.0, check_rc=True, zk=None):
        """Runs dpcachectl --zk=... ARGS (zk: another HOST:PORT/ROOT);
        returns (rc, stdout, stderr)."""
        if not self.dpcachectl:
            fail('DPCACHECTL is not set or not executable')
        argv = ([self.dpcachectl, '--zk=' + (zk or self.cluster_arg)]
                + [str(a) for a in args])
        log('run: ' + ' '.join(argv))
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            fail('dpcachectl %s did not finish within %.0fs' % (' '.join(argv[2:]), timeout))
        out, err = r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')
        if check_rc and r.returncode != 0:
            fail('dpcachectl %s: exit %d\nstdout: %s\nstderr: %s'
                 % (' '.join(argv[2:]), r.returncode, out, err))
        return r.returncode, out, err

    # -- failure report ---------------------------------------------------------
    def report(self):
        print('---- failure context')
        for r in self.recorders:
            print('maps seen (time:epoch/migration/active): %s' % ' '.join(r.epochs()))
        try:
            print('map: %s' % json.dumps(self.read_map()))
            print('registered: %s  leader: %s' % (self.registered(), self.leader_id()))
        except Exception as e:  # noqa: BLE001
            print('(ZooKeeper state unavailable: %r)' % e)
        for n in self.nodes.values():
            state = 'alive' if n.alive() else (
                e2e.describe_status(n.proc.returncode) if n.proc else 'never started')
            print('node %s (%s, %s)' % (n.id, n.addr if n.port else '-', state))
            if n.alive():
                try:
                    print('  stats cluster: %s' % n.cstats())
                except Exception as e:  # noqa: BLE001
                    print('  (stats cluster failed: %r)' % e)
            print(n.log_tail(2500))
        print('zookeeper log (tail):\n' + _tail(self.zk.logpath, 1500))


# ---- load -------------------------------------------------------------------

class Event:
    """One thing a load worker saw that was not a clean success."""
    __slots__ = ('t', 'kind', 'node', 'op', 'key', 'detail')

    def __init__(self, kind, node, op, key, detail):
        self.t = now()
        self.kind = kind        # server_error | timeout | closed | protocol |
        self.node = node        # not_stored | miss | stale | wrong_value | slow
        self.op = op
        self.key = key
        self.detail = detail

    def __repr__(self):
        return '[%.2f] %s via %s: %s %s: %s' % (self.t, self.kind, self.node, self.op,
                                                self.key, self.detail)


class LoadWorker(threading.Thread):
    """Writes and reads its own keys through one node.

    Every write is set(key, "key:version") with version increasing by one
    per key.  acked[key] is the last version the server acknowledged
    (STORED); unsure[key] holds versions whose write failed with an error or
    timeout, which may or may not have been applied.  A read is right when it
    returns the last acked version, or a newer unsure one; a miss of an
    acked key, an older version or a foreign value is recorded.  Since one
    thread owns each key, no other write to it is ever in flight.

    SLOW: an operation slower than this many seconds counts as a hang even
    when it succeeded (the client timeout is 3 s).
    """

    SLOW = 2.0

    def __init__(self, node, keys, name, write_ratio=0.5, pace=0.002, pad=0):
        super().__init__(name=name, daemon=True)
        self.node = node
        self.pad = pad
        self.keys = list(keys)
        self.write_ratio = write_ratio
        self.pace = pace
        self.client = node.client()
        self.acked = {}
        self.unsure = {}
        self.version = {}
        self.events = []
        self.ok_writes = []       # (t, key) of acked writes, for recovery checks
        self.last_ack = {}        # key -> time of its last acked write
        self.ok_reads = 0
        self.ops = 0
        self.max_latency = 0.0
        self.rng = random.Random(hash(name) & 0xffffffff)
        self.stop_evt = threading.Event()
        self.filled = threading.Event()
        self.crashed = None

    def _event(self, kind, op, key, detail):
        self.events.append(Event(kind, self.node.id, op, key, detail))

    def _fail_op(self, op, key, e):
        if isinstance(e, MemcacheServerError):
            kind = 'server_error'
        elif isinstance(e, (socket.timeout, TimeoutError)):
            kind = 'timeout'
        elif isinstance(e, (MemcacheUnexpectedCloseError, ConnectionError, OSError)):
            kind = 'closed'
        else:
            kind = 'protocol'
        self._event(kind, op, key, repr(e))
        if kind != 'server_error':
            self.client.close()   # reconnects on the next call

    def fill(self, batch=100):
        """Writes every key once (version 1), pipelined in batches."""
        for i in range(0, len(self.keys), batch):
            chunk = self.keys[i:i + batch]
            vals = {}
            for k in chunk:
                v = self.version.get(k, 0) + 1
                self.version[k] = v
                vals[k] = value_of(k, v, self.pad)
            try:
                res = self.client.set_many(vals)
            except Exception as e:  # noqa: BLE001 - recorded
                self._fail_op('set_many', chunk[0], e)
                for k in chunk:
                    self.unsure.setdefault(k, set()).add(self.version[k])
                continue
            failed = set(res) if isinstance(res, list) else set()
            for k in chunk:
                if k in failed:
                    self._event('not_stored', 'set_many', k, 'not stored')
                    self.unsure.setdefault(k, set()).add(self.version[k])
                else:
                    self._acked(k, self.version[k])
        self.filled.set()

    def _acked(self, k, v):
        self.acked[k] = v
        u = self.unsure.get(k)
        if u:
            # Older unsure versions can no longer be the right answer.
            u.difference_update([x for x in u if x < v])
        t = now()
        self.ok_writes.append((t, k))
        self.last_ack[k] = t

    def write(self, k):
        v = self.version.get(k, 0) + 1
        self.version[k] = v
        t = time.monotonic()
        try:
            ok = self.client.set(k, value_of(k, v, self.pad))
        except Exception as e:  # noqa: BLE001 - recorded
            self._fail_op('set', k, e)
            self.unsure.setdefault(k, set()).add(v)
            return
        finally:
            self._latency('set', k, time.monotonic() - t)
        if ok:
            self._acked(k, v)
        else:
            self._event('not_stored', 'set', k, 'NOT_STORED')
            self.unsure.setdefault(k, set()).add(v)

    def read(self, k):
        t = time.monotonic()
        try:
            got = self.client.get(k)
        except Exception as e:  # noqa: BLE001 - recorded
            self._fail_op('get', k, e)
            return
        finally:
            self._latency('get', k, time.monotonic() - t)
        problem = judge(k, got, self.acked.get(k), self.unsure.get(k))
        if problem:
            self._event(problem[0], 'get', k, problem[1])
        else:
            self.ok_reads += 1

    def _latency(self, op, k, dt):
        self.ops += 1
        if dt > self.max_latency:
            self.max_latency = dt
        if dt > self.SLOW:
            self._event('slow', op, k, '%.2fs' % dt)

    def run(self):
        try:
            if not self.filled.is_set():
                self.fill()
            while not self.stop_evt.is_set():
                k = self.rng.choice(self.keys)
                if self.rng.random() < self.write_ratio:
                    self.write(k)
                else:
                    self.read(k)
                if self.pace:
                    time.sleep(self.pace)
        except BaseException:  # noqa: BLE001 - reported by stop()
            self.crashed = traceback.format_exc()

    def stop(self, timeout=15.0):
        self.stop_evt.set()
        self.join(timeout)
        if self.is_alive():
            self._event('slow', 'stop', '-', 'worker still in an operation after %.0fs'
                        % timeout)
        if self.crashed:
            fail('load worker %s crashed:\n%s' % (self.name, self.crashed))
        self.client.close()


def value_of(key, version, pad=0):
    """The value a load worker writes: "key:version", then ":xxx..." up to
    pad bytes when pad is given (bigger items make a migration last)."""
    v = '%s:%d' % (key, version)
    if pad > len(v) + 1:
        v += ':' + 'x' * (pad - len(v) - 1)
    return v


def judge(key, got, acked, unsure):
    """None if got (bytes or None) is a right answer for key, else
    (kind, detail)."""
    if got is None:
        if acked is not None:
            return ('miss', 'acked version %d missing' % acked)
        return None   # never acknowledged: a miss is fine
    text = got.decode(errors='replace') if isinstance(got, bytes) else str(got)
    parts = text.split(':')
    kp, vs = parts[0], parts[1] if len(parts) > 1 else ''
    if (kp != key or not vs.isdigit() or len(parts) > 3
            or (len(parts) == 3 and parts[2].strip('x'))):
        return ('wrong_value', 'got %r' % text[:80])
    v = int(vs)
    if acked is not None and v == acked:
        return None
    if unsure and v in unsure and (acked is None or v > acked):
        return None
    return ('stale', 'got version %d, acked %s, unsure %s'
            % (v, acked, sorted(unsure) if unsure else []))


class Load:
    """A set of workers over the given nodes, keys split disjointly."""

    def __init__(self, nodes, nkeys, per_node=2, prefix='k', write_ratio=0.5,
                 pace=0.002, pad=0):
        self.keys = ['%s%06d' % (prefix, i) for i in range(nkeys)]
        nworkers = per_node * len(nodes)
        self.workers = []
        for w in range(nworkers):
            node = nodes[w % len(nodes)]
            self.workers.append(LoadWorker(node, self.keys[w::nworkers],
                                           'load-%s-%d' % (node.id, w),
                                           write_ratio=write_ratio, pace=pace,
                                           pad=pad))

    def fill(self):
        """Writes every key once, all workers in parallel; returns the time."""
        t = time.monotonic()
        th = [threading.Thread(target=w.fill) for w in self.workers]
        for x in th:
            x.start()
        for x in th:
            x.join()
        dt = time.monotonic() - t
        log('filled %d keys in %.1fs' % (len(self.keys), dt))
        return dt

    def start(self):
        for w in self.workers:
            w.start()
        return self

    def stop(self):
        for w in self.workers:
            w.stop()
        log('load stopped: %d ops, %d acked writes, max latency %.3fs, %d events'
            % (self.ops(), sum(len(w.ok_writes) for w in self.workers),
               max(w.max_latency for w in self.workers), len(self.events())))

    def ops(self):
        return sum(w.ops for w in self.workers)

    def events(self):
        return sorted((e for w in self.workers for e in w.events), key=lambda e: e.t)

    def acked(self):
        out = {}
        for w in self.workers:
            out.update(w.acked)
        return out

    def unsure(self):
        out = {}
        for w in self.workers:
            out.update(w.unsure)
        return out

    def last_ack(self):
        out = {}
        for w in self.workers:
            out.update(w.last_ack)
        return out

    def ok_writes(self):
        return sorted((t, k) for w in self.workers for t, k in w.ok_writes)


def verify(nodes, acked, unsure, keys=None, batch=100):
    """Reads back every key of 'keys' (default: all acked) through the given
    nodes in turn (multi-key gets of 'batch' keys); returns the problems as
    (key, node id, kind, detail)."""
    keys = sorted(acked) if keys is None else sorted(keys)
    problems = []
    clients = [(n, n.client(timeout=5.0)) for n in nodes]
    for bi, i in enumerate(range(0, len(keys), batch)):
        chunk = keys[i:i + batch]
        n, c = clients[bi % len(clients)]
        try:
            got = c.get_many(chunk)
        except Exception as e:  # noqa: BLE001 - a failure of the read-back
            problems.append((chunk[0], n.id, 'error', 'get_many of %d keys: %r'
                             % (len(chunk), e)))
            c.close()
            continue
        for k in chunk:
            p = judge(k, got.get(k), acked.get(k), unsure.get(k))
            if p:
                problems.append((k, n.id, p[0], p[1]))
    for _, c in clients:
        c.close()
    return problems


def check_all(*checks):
    """(condition, message) pairs: fails naming every one that is false, so
    a run reports both the load's errors and the read-back's problems."""
    bad = [msg for cond, msg in checks if not cond]
    if bad:
        fail('\n'.join(bad))


def summarize(items, limit=15):
    items = list(items)
    head = '\n  '.join(repr(x) for x in items[:limit])
    more = ('\n  ... and %d more' % (len(items) - limit)) if len(items) > limit else ''
    return '%d:\n  %s%s' % (len(items), head, more)


# ---- ketama self-check --------------------------------------------------------

def check_ketama_against_pylibmc(weights=(1, 2, 1), nkeys=600):
    """ketama.py must place keys exactly where libmemcached (pylibmc with
    ketama_weighted) puts them: checked over stock memcached servers."""
    import pylibmc
    mc = '/usr/bin/memcached'
    if not os.access(mc, os.X_OK):
        raise TestSkip('%s is missing (Debian package memcached)' % mc)
    ports, procs = [], []
    tmp = tempfile.mkdtemp(prefix='dpc-ketama-')
    _tmpdirs.append(tmp)
    try:
        for i, _w in enumerate(weights):
            p = free_port()
            ports.append(p)
            procs.append(_spawn([mc, '-u', 'root', '-l', '127.0.0.1', '-p', str(p),
                                 '-U', '0', '-m', '16'],
                                os.path.join(tmp, 'mc%d.log' % i), 'memcached'))
        for p in ports:
            wait_for(lambda p=p: socket.create_connection(('127.0.0.1', p), 0.5).close()
                     or True, 10, 'memcached on port %d' % p)
        specs = ['127.0.0.1:%d:%d' % (p, w) for p, w in zip(ports, weights)]
        c = pylibmc.Client(specs, behaviors={'ketama_weighted': True})
        keys = ['kc%d' % i for i in range(nkeys)]
        for k in keys:
            c.set(k, 'x')
        ring = ketama.Ring([('127.0.0.1:%d' % p, w) for p, w in zip(ports, weights)])
        direct = [Client(('127.0.0.1', p), timeout=3, default_noreply=False) for p in ports]
        bad = [k for k in keys if direct[ring.lookup(k)].get(k) != b'x']
        for d in direct:
            d.close()
        check(not bad, 'tests/cluster/ketama.py disagrees with libmemcached on %d of %d '
              'keys (e.g. %s)' % (len(bad), nkeys, bad[:5]))
    finally:
        for p in procs:
            _stop_proc(p)


# ---- running a test -------------------------------------------------------------

def main(test, name=None):
    """Runs test(); exit 0 pass, 1 fail, 77 skip.  test may set
    main.cluster for the failure report."""
    name = name or os.path.basename(sys.argv[0])
    clusters = []
    main.clusters = clusters
    try:
        test()
    except TestSkip as e:
        print('SKIP %s: %s' % (name, e))
        sys.exit(e2e.SKIP)
    except BaseException as e:  # noqa: BLE001 - every error is a failure
        _failed[0] = True
        if isinstance(e, TestFailure):
            print('FAIL %s: %s' % (name, e))
        elif isinstance(e, SystemExit) and e.code in (0, None):
            raise
        else:
            print('FAIL %s: unexpected error' % name)
            traceback.print_exc(file=sys.stdout)
        for c in clusters:
            try:
                c.report()
            except Exception:  # noqa: BLE001
                traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        sys.exit(1)
    print('PASS %s (%.1fs)' % (name, now()))
    sys.exit(0)


def new_cluster(name):
    c = Cluster(name)
    getattr(main, 'clusters', []).append(c)
    return c


class MapRecorder(threading.Thread):
    """Polls ROOT/map every 50 ms and keeps every distinct epoch seen, with
    the time it was first seen: the tests time map changes with it and find
    the migration map (prev + nodes) even when it lasts only a moment."""

    def __init__(self, cluster, interval=0.05):
        super().__init__(name='map-recorder', daemon=True)
        self.cluster = cluster
        self.interval = interval
        self.seen = []          # (t, map) in epoch order
        self.stop_evt = threading.Event()
        self.lock = threading.Lock()
        cluster.recorders.append(self)

    def run(self):
        last = None
        while not self.stop_evt.is_set():
            try:
                m = self.cluster.read_map()
            except Exception:  # noqa: BLE001 - ZooKeeper may be down on purpose
                m = None
            if m is not None and m.get('epoch') != last:
                last = m.get('epoch')
                with self.lock:
                    self.seen.append((now(), m))
            self.stop_evt.wait(self.interval)

    def stop(self):
        self.stop_evt.set()
        self.join(5)

    def first(self, pred, after=0.0):
        """(t, map) of the first recorded map matching pred at or after t."""
        with self.lock:
            for t, m in self.seen:
                if t >= after and pred(m):
                    return t, m
        return None, None

    def epochs(self):
        with self.lock:
            return ['%.2f:e%s/m%s/%s' % (t, m.get('epoch'), m.get('migration'),
                                         ','.join(Cluster.active_ids(m)))
                    for t, m in self.seen]
