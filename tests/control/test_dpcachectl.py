#!/usr/bin/python3
"""dpcachectl against a real ZooKeeper, without dpcached: the test seeds
ROOT/nodes, ROOT/map, ROOT/election and ROOT/migrations with kazoo, plays the
leader itself where a command waits for one, and fakes the nodes' memcached
ports for 'stats'.  Checks each command's output and exit code: the read
commands in text and --json, map --format=libmemcached as pylibmc parses it,
SHARE against an independent ketama (tests/cluster/ketama.py), requests that
end done (with a migration whose progress the CLI prints), rejected,
detached then waited for, and timed out; 'hotkeys' over a seeded hot-key
set and node reports (ROOT/hot/set, ROOT/hot/reports/<id>), with --node,
--json, no set yet, and malformed documents; an unreachable ZooKeeper
(exit 3), bad input in ZooKeeper (clean error), usage errors (exit 2).

Environment: DPCACHECTL = the binary (meson sets it); ZooKeeper from
tests/control/zk-server.sh on a random loopback port."""
import base64
import json
import logging
import os
import random
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'cluster'))
import ketama  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

# kazoo logs a dropped connection while ZooKeeper starts; not a failure.
logging.getLogger('kazoo').setLevel(logging.ERROR)

CTL = os.environ.get('DPCACHECTL') or os.path.join(
    HERE, '..', '..', 'build', 'control', 'dpcachectl')
ZK_SCRIPT = os.path.join(HERE, 'zk-server.sh')

ZK = {}


def free_port():
    """A loopback port nobody listens on now (bound, then released)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def zk_alive():
    try:
        with socket.create_connection(('127.0.0.1', ZK['port']), 2) as s:
            s.sendall(b'ruok')
            return s.recv(4) == b'imok'
    except OSError:
        return False


def setUpModule():
    ZK['dir'] = tempfile.mkdtemp(prefix='dpcachectl-zk-')
    for attempt in range(5):
        port = random.randint(20000, 40000)
        r = subprocess.run([ZK_SCRIPT, 'start', ZK['dir'], str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if r.returncode == 0:
            ZK['port'] = port
            break
    else:
        shutil.rmtree(ZK['dir'], ignore_errors=True)
        raise RuntimeError('cannot start ZooKeeper: %s' % r.stderr.decode())
    ZK['hosts'] = '127.0.0.1:%d' % ZK['port']
    ZK['kz'] = KazooClient(hosts=ZK['hosts'], timeout=10)
    ZK['kz'].start(timeout=20)


def tearDownModule():
    if 'kz' in ZK:
        ZK['kz'].stop()
        ZK['kz'].close()
    subprocess.run([ZK_SCRIPT, 'stop', ZK['dir']], timeout=30)
    shutil.rmtree(ZK['dir'], ignore_errors=True)


def node(nid, port, weight=1, state='active'):
    return {'id': nid, 'addr': '127.0.0.1:%d' % port, 'weight': weight,
            'state': state}


class Cluster:
    """One ZooKeeper root seeded for a test."""

    def __init__(self, name):
        self.kz = ZK['kz']
        self.root = '/t_%s_%d' % (name, random.randint(0, 1 << 30))
        self.zk = '%s%s' % (ZK['hosts'], self.root)
        self.kz.ensure_path(self.root)

    def put(self, path, obj, **kw):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        full = self.root + '/' + path
        if self.kz.exists(full):
            self.kz.set(full, data)
        else:
            self.kz.create(full, data, makepath=True, **kw)

    def get(self, path):
        data, _ = self.kz.get(self.root + '/' + path)
        return json.loads(data.decode())

    def register(self, nid, port, weight=1, standby=False, admin=None):
        self.put('nodes/' + nid, {
            'id': nid, 'addr': '127.0.0.1:%d' % port, 'weight': weight,
            'admin': admin, 'standby': standby, 'applied_epoch': 1,
            'pid': os.getpid()}, ephemeral=True)

    def elect(self, nid):
        self.kz.create(self.root + '/election/n_', nid.encode(),
                       ephemeral=True, sequence=True, makepath=True)

    def requests(self):
        path = self.root + '/requests'
        return sorted(self.kz.get_children(path)) if self.kz.exists(path) else []

    def cleanup(self):
        self.kz.delete(self.root, recursive=True)


def run(zk, *args, timeout=30, env=None):
    e = dict(os.environ)
    e.pop('DPCACHE_ZK', None)
    if env:
        e.update(env)
    argv = [CTL] + (['--zk=' + zk] if zk else []) + list(args)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=e)
    return (r.returncode, r.stdout.decode(), r.stderr.decode(),
            time.monotonic() - t0)


def shares(nodes):
    """{id: fraction of the 32-bit hash space} by tests/cluster/ketama.py:
    the arc (previous point, point] belongs to the point's server, the arc
    past the last point wraps to the first."""
    ring, ids = ketama.map_ring(nodes)
    out = {i: 0 for i in ids}
    vals, owners = ring.values, ring.owners
    for k, v in enumerate(vals):
        lo = vals[k - 1] if k else -1
        out[ids[owners[k]]] += v - lo
    out[ids[owners[0]]] += (1 << 32) - 1 - vals[-1]
    return {i: n / float(1 << 32) for i, n in out.items()}


class FakeLeader(threading.Thread):
    """Answers the first pending request under ROOT/requests with 'script',
    a function(cluster, request path, request dict) run on this thread."""

    def __init__(self, cluster, script):
        super().__init__(daemon=True)
        self.c, self.script = cluster, script
        self.seen = None
        self.error = None
        self.start()

    def run(self):
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for name in self.c.requests():
                    path = 'requests/' + name
                    req = self.c.get(path)
                    if req.get('status') == 'pending':
                        self.seen = req
                        self.script(self.c, path, req)
                        return
                time.sleep(0.05)
        except Exception as e:   # reported by the test
            self.error = e


def b64(key):
    return base64.b64encode(key if isinstance(key, bytes)
                            else key.encode()).decode()


def hot_report(nid, received, executed, keys):
    """A node's report as control/hotctl.c writes it; keys: [(key, reads,
    writes)]."""
    return {'node': nid, 'interval_ms': 1000, 'received': received,
            'executed': executed,
            'keys': [{'key': b64(k), 'reads': r, 'writes': w}
                     for k, r, w in keys]}


def hot_set(version, epoch, keys):
    """The leader's set; keys: [(key, owner, replicas, reads, writes)]."""
    return {'version': version, 'epoch': epoch,
            'keys': [{'key': b64(k), 'owner': o, 'replicas': reps,
                      'reads': r, 'writes': w}
                     for k, o, reps, r, w in keys]}


def table(out, header):
    """The rows (lists of cells) of the text table that starts with the
    line whose cells are 'header', up to the next empty line."""
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        if ln.split() == header:
            rows = []
            for row in lines[i + 1:]:
                if not row.strip():
                    break
                rows.append(row.split())
            return rows
    raise AssertionError('no table %r in:\n%s' % (header, out))


def set_req(c, path, **kw):
    req = c.get(path)
    req.update(kw)
    c.put(path, req)


class CtlTest(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(self._testMethodName)
        # A stable map: n1 (weight 1) and n2 (weight 2) active, n3 standby.
        self.map = {'epoch': 7, 'migration': 0,
                    'nodes': [node('n1', 21001), node('n2', 21002, 2),
                              node('n3', 21003, 1, 'standby')]}
        self.c.put('map', self.map)
        # Registered: n1, n3 (standby), n5 (not in the map); n2 is down.
        self.c.register('n1', 21001, admin='127.0.0.1:22001')
        self.c.register('n3', 21003, standby=True)
        self.c.register('n5', 21005)
        self.c.elect('n1')
        self.c.elect('n3')

    def tearDown(self):
        self.c.cleanup()

    def start_migration(self, mid, reason, records):
        m = dict(self.map)
        m['prev'] = self.map['nodes']
        m['nodes'] = self.map['nodes'] + [node('n4', 21004)]
        m['migration'] = mid
        m['epoch'] = 8
        self.c.put('map', m)
        self.c.put('migrations/%d' % mid, {
            'id': mid, 'epoch': 8, 'reason': reason, 'state': 'moving',
            'started_ms': int(time.time() * 1000), 'ranges': 12})
        for src, rec in records.items():
            self.c.put('migrations/%d/%s' % (mid, src), rec)

    # ---- read commands ------------------------------------------------

    def test_status(self):
        rc, out, err, _ = run(self.c.zk, 'status')
        self.assertEqual(rc, 0, err)
        self.assertIn('leader:     n1\n', out)
        self.assertIn('epoch 7, stable', out)
        self.assertIn('2 active, 1 standby, 1 registered but not in map, 1 down',
                      out)
        self.assertIn('migration:  none', out)
        rc, out, err, _ = run(self.c.zk, '--json', 'status')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc['leader'], 'n1')
        self.assertEqual(doc['epoch'], 7)
        self.assertIsNone(doc['migration'])
        self.assertEqual(doc['nodes'], {
            'active': ['n1', 'n2'], 'standby': ['n3'],
            'registered_not_in_map': ['n5'], 'down': ['n2']})

    def test_zk_from_environment(self):
        rc, out, err, _ = run(None, 'status', env={'DPCACHE_ZK': self.c.zk})
        self.assertEqual(rc, 0, err)
        self.assertIn('leader:     n1\n', out)

    def test_nodes(self):
        want = shares(self.map['nodes'])
        rc, out, err, _ = run(self.c.zk, 'nodes')
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(),
                         ['ID', 'ADDR', 'WEIGHT', 'STATE', 'UP', 'SHARE', 'ADMIN'])
        rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
        self.assertEqual(sorted(rows), ['n1', 'n2', 'n3', 'n5'])
        self.assertEqual(rows['n1'], ['n1', '127.0.0.1:21001', '1', 'active',
                                      'yes', '%.1f%%' % (want['n1'] * 100),
                                      '127.0.0.1:22001'])
        self.assertEqual(rows['n2'][1:6], ['127.0.0.1:21002', '2', 'active',
                                           'no', '%.1f%%' % (want['n2'] * 100)])
        self.assertEqual(rows['n3'][3:6], ['standby', 'yes', '0.0%'])
        self.assertEqual(rows['n5'][3:6], ['joining', 'yes', '0.0%'])
        # weight 2 owns about two thirds
        self.assertTrue(0.55 < want['n2'] < 0.78, want)

        rc, out, err, _ = run(self.c.zk, 'nodes', '--json')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        got = {n['id']: n for n in doc['nodes']}
        self.assertAlmostEqual(got['n1']['share'], want['n1'], places=6)
        self.assertAlmostEqual(got['n2']['share'], want['n2'], places=6)
        self.assertAlmostEqual(got['n1']['share'] + got['n2']['share'], 1.0,
                               places=6)
        self.assertFalse(got['n2']['up'])
        self.assertFalse(got['n5']['in_map'])
        self.assertEqual(got['n1']['admin'], '127.0.0.1:22001')

    def test_map_formats(self):
        rc, out, err, _ = run(self.c.zk, 'map', '--format=libmemcached')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '127.0.0.1:21001:1,127.0.0.1:21002:2\n')
        # pylibmc reads every entry with its weight
        import pylibmc.client
        specs = [pylibmc.client.translate_server_spec(s)
                 for s in out.strip().split(',')]
        self.assertEqual([s[1:] for s in specs],
                         [('127.0.0.1', 21001, 1), ('127.0.0.1', 21002, 2)])
        pylibmc.Client(out.strip().split(','),
                       behaviors={'ketama_weighted': True})

        rc, out, err, _ = run(self.c.zk, 'map', '--format=json')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)['nodes'], self.map['nodes'])
        self.assertEqual(json.loads(out)['epoch'], 7)
        rc, out2, err, _ = run(self.c.zk, '--json', 'map')
        self.assertEqual(json.loads(out2), json.loads(out))

        rc, out, err, _ = run(self.c.zk, 'map')
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith('epoch 7, stable\n'), out)
        self.assertIn('n3', out)

        rc, out, err, _ = run(self.c.zk, 'map', '--format=xml')
        self.assertEqual(rc, 2)
        self.assertIn('unknown map format', err)

    def test_migration_in_flight(self):
        self.c.register('n4', 21004)
        self.start_migration(3, 'add n4', {
            'n1': {'keys_total': 100, 'keys_sent': 40, 'bytes_sent': 4000,
                   'done': False, 'failed_targets': 0, 'updated_ms': 1},
            'n2': {'keys_total': 100, 'keys_sent': 20, 'bytes_sent': 2000,
                   'done': False, 'failed_targets': 0, 'updated_ms': 1}})
        rc, out, err, _ = run(self.c.zk, 'status')
        self.assertEqual(rc, 0, err)
        self.assertIn('epoch 8, migration 3 in flight', out)
        self.assertIn('migration:  3 (add n4), moving, 12 ranges, '
                      'keys 60/200 (30%), 5.9 KiB sent, sources 0/2 done', out)
        rc, out, err, _ = run(self.c.zk, '--json', 'status')
        mig = json.loads(out)['migration']
        self.assertEqual((mig['id'], mig['keys_sent'], mig['keys_total'],
                          mig['bytes_sent'], mig['sources']),
                         (3, 60, 200, 6000, 2))
        rc, out, err, _ = run(self.c.zk, 'nodes')
        rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:]}
        self.assertEqual(rows['n4'][3], 'joining')
        self.assertEqual(rows['n1'][3], 'active')
        rc, out, err, _ = run(self.c.zk, 'map')
        self.assertIn('migration 3 in flight (add n4)', out)
        self.assertIn('before migration 3', out)

        # a record without a range count (control/CLUSTER.md's layout)
        self.c.put('migrations/3', {'id': 3, 'epoch': 8, 'reason': 'add n4',
                                    'state': 'moving'})
        rc, out, err, _ = run(self.c.zk, 'status')
        self.assertIn('migration:  3 (add n4), moving, keys 60/200 (30%)', out)

        # a change is refused locally, and no request is written
        rc, out, err, _ = run(self.c.zk, 'drain', 'n1')
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'dpcachectl: conflicting operation in flight: '
                              'migration 3 (add n4)\n')
        self.assertEqual(self.c.requests(), [])

    def test_unknown_node(self):
        rc, out, err, _ = run(self.c.zk, 'add', 'n9')
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'dpcachectl: unknown node n9 '
                              '(known: n1, n2, n3, n5)\n')
        self.assertEqual(self.c.requests(), [])
        rc, out, err, _ = run(self.c.zk, 'stats', 'n9')
        self.assertEqual(rc, 1)
        self.assertIn('unknown node n9', err)

    # ---- requests answered by a scripted leader -----------------------

    def test_add_with_progress(self):
        def leader(c, path, req):
            set_req(c, path, status='running', migration=4)
            c.put('migrations/4', {'id': 4, 'epoch': 8, 'reason': 'add n5',
                                   'state': 'moving', 'ranges': 7,
                                   'started_ms': int(time.time() * 1000)})
            for i in range(1, 7):
                c.put('migrations/4/n1', {
                    'keys_total': 600, 'keys_sent': 100 * i,
                    'bytes_sent': 10000 * i, 'done': i == 6,
                    'failed_targets': 0, 'updated_ms': 1})
                time.sleep(0.5)
            # The request says done before the migration record does: the
            # CLI must keep waiting for the migration (it deletes the
            # request only after that, so this order cannot race it).
            set_req(c, path, status='done')
            time.sleep(0.5)
            mig = c.get('migrations/4')
            mig['state'] = 'done'
            c.put('migrations/4', mig)

        fl = FakeLeader(self.c, leader)
        rc, out, err, secs = run(self.c.zk, 'add', 'n5')
        fl.join(5)
        self.assertIsNone(fl.error)
        self.assertEqual(fl.seen, {'op': 'add', 'id': 'n5', 'status': 'pending'})
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^add n5: done, migration 4 done: 600 keys, '
                              r'58.6 KiB sent in [0-9.]+ s\n$')
        progress = [ln for ln in err.splitlines() if ln.startswith('migration 4')]
        # one line a second (stderr is not a TTY) over ~3 s, and the last
        self.assertGreaterEqual(len(progress), 3, err)
        self.assertIn('(add n5): moving, 7 ranges moving, keys ', progress[0])
        self.assertIn('keys 600/600 (100%), 58.6 KiB sent', progress[-1])
        self.assertIn('ETA', progress[0])
        # the finished request is deleted by the CLI
        self.assertEqual(self.c.requests(), [])

    def test_rejected(self):
        fl = FakeLeader(self.c, lambda c, p, r: set_req(
            c, p, status='rejected', error='node n5 is standby-registered'))
        rc, out, err, _ = run(self.c.zk, 'remove', 'n5')
        fl.join(5)
        self.assertEqual(fl.seen['op'], 'remove')
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'dpcachectl: rejected: node n5 is '
                              'standby-registered\n')
        self.assertEqual(out, '')
        self.assertEqual(self.c.requests(), [])

    def test_weight_no_change_json(self):
        fl = FakeLeader(self.c, lambda c, p, r: set_req(
            c, p, status='done', error='no change'))
        rc, out, err, _ = run(self.c.zk, '--json', 'weight', 'n2', '2')
        fl.join(5)
        self.assertEqual(fl.seen, {'op': 'weight', 'id': 'n2', 'weight': 2,
                                   'status': 'pending'})
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc['op'], doc['id'], doc['status'], doc['error'],
                          doc['migration']), ('weight', 'n2', 'done',
                                              'no change', None))
        self.assertTrue(doc['request'].startswith(self.c.root + '/requests/r_'))

    def test_rebalance_rolled_back(self):
        def leader(c, path, req):
            c.put('migrations/6', {'id': 6, 'reason': 'rebalance',
                                   'state': 'moving', 'ranges': 3})
            set_req(c, path, status='running', migration=6)
            time.sleep(0.3)
            mig = c.get('migrations/6')
            mig['state'] = 'rolled_back'
            c.put('migrations/6', mig)

        fl = FakeLeader(self.c, leader)
        rc, out, err, _ = run(self.c.zk, 'rebalance')
        fl.join(5)
        self.assertEqual(fl.seen, {'op': 'rebalance', 'status': 'pending'})
        self.assertEqual(rc, 1)
        self.assertIn('dpcachectl: migration 6 (rebalance) rolled back', err)

    def test_detach_then_wait(self):
        def leader(c, path, req):
            c.put('migrations/5', {'id': 5, 'reason': 'drain n1',
                                   'state': 'moving', 'ranges': 9})
            set_req(c, path, status='running', migration=5)

        fl = FakeLeader(self.c, leader)
        rc, out, err, _ = run(self.c.zk, 'drain', 'n1', '--detach')
        fl.join(5)
        self.assertEqual(rc, 0, err)
        self.assertIn('migration 5 started (drain n1)', out)
        # detached: the request stays for the leader to clean up
        self.assertEqual(len(self.c.requests()), 1)

        # 'wait 5' follows it to the end
        def finish():
            time.sleep(1.5)
            self.c.put('migrations/5/n1', {'keys_total': 10, 'keys_sent': 10,
                                           'bytes_sent': 100, 'done': True})
            mig = self.c.get('migrations/5')
            mig['state'] = 'done'
            self.c.put('migrations/5', mig)
        t = threading.Thread(target=finish)
        t.start()
        rc, out, err, secs = run(self.c.zk, 'wait', '5')
        t.join()
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^migration 5 \(drain n1\) done: 10 keys in ')
        self.assertGreater(secs, 1.0)

        rc, out, err, _ = run(self.c.zk, '--json', 'wait', '5')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)['migration']['state'], 'done')

    def test_wait_current_and_timeout(self):
        rc, out, err, _ = run(self.c.zk, 'wait')
        self.assertEqual((rc, out), (0, 'no migration in flight\n'))
        self.start_migration(3, 'add n4', {})
        rc, out, err, secs = run(self.c.zk, '--wait-timeout=1', 'wait')
        self.assertEqual(rc, 4, err)
        self.assertIn('dpcachectl: timed out waiting for migration 3 (add n4)',
                      err)
        self.assertLess(secs, 6)
        rc, out, err, _ = run(self.c.zk, 'wait', '77')
        self.assertEqual(rc, 1)
        self.assertIn('no migration 77', err)

    def test_no_leader_times_out(self):
        rc, out, err, secs = run(self.c.zk, '--timeout=1', 'add', 'n5')
        self.assertEqual(rc, 4, err)
        self.assertIn('no leader took request', err)
        self.assertLess(secs, 6)
        # withdrawn: the leader will not act on it later
        self.assertEqual(self.c.requests(), [])

    # ---- stats --------------------------------------------------------

    def test_stats(self):
        servers = []

        def make(cluster_lines):
            class H(socketserver.StreamRequestHandler):
                def handle(self):
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        if line == b'stats\r\n':
                            self.wfile.write(
                                b'STAT pid 1\r\nSTAT curr_items 12\r\n'
                                b'STAT cmd_get 30\r\nSTAT cmd_set 5\r\n'
                                b'STAT get_hits 20\r\nSTAT get_misses 10\r\n'
                                b'STAT version 1.6.18\r\nEND\r\n')
                        elif line == b'stats cluster\r\n':
                            self.wfile.write(cluster_lines)
            srv = socketserver.ThreadingTCPServer(('127.0.0.1', 0), H)
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)
            return srv.server_address[1]

        p1 = make(b'STAT local 7\r\nSTAT forwarded 3\r\nSTAT forward_errors 1\r\n'
                  b'STAT pulls 2\r\nSTAT map_epoch 7\r\n'
                  b'STAT peer:n2:forwarded 3\r\nEND\r\n')
        p2 = make(b'ERROR\r\n')          # a node without the cluster group
        dead = free_port()
        self.c.put('map', {'epoch': 7, 'migration': 0, 'nodes': [
            node('n1', p1), node('n2', p2), node('n3', dead)]})
        for nid, p in (('n1', p1), ('n2', p2), ('n3', dead)):
            self.c.kz.delete(self.c.root + '/nodes/' + nid) \
                if self.c.kz.exists(self.c.root + '/nodes/' + nid) else None
            self.c.register(nid, p)
        self.c.kz.delete(self.c.root + '/nodes/n5')
        try:
            rc, out, err, _ = run(self.c.zk, '--timeout=2', 'stats')
            self.assertEqual(rc, 1, err)       # n3 unreachable
            self.assertIn('dpcachectl: n3 (127.0.0.1:%d): Connection refused'
                          % dead, err)
            rows = {ln.split()[0]: ln.split() for ln in out.splitlines()
                    if ln.startswith('n')}
            self.assertEqual(rows['n1'][2:], ['12', '20', '10', '30', '5',
                                              '7', '3', '1', '2', '7'])
            self.assertEqual(rows['n2'][2:], ['12', '20', '10', '30', '5',
                                              '-', '-', '-', '-', '-'])
            self.assertEqual(rows['n3'][2], 'unreachable')
            self.assertIn('n1 peer:n2:forwarded 3', out)

            rc, out, err, _ = run(self.c.zk, '--json', 'stats', 'n1')
            self.assertEqual(rc, 0, err)
            doc = json.loads(out)
            self.assertEqual(len(doc['nodes']), 1)
            n1 = doc['nodes'][0]
            self.assertEqual(n1['stats'], {'curr_items': 12, 'get_hits': 20,
                                           'get_misses': 10, 'cmd_get': 30,
                                           'cmd_set': 5})
            self.assertEqual(n1['cluster'], {'local': 7, 'forwarded': 3,
                                             'forward_errors': 1, 'pulls': 2,
                                             'map_epoch': 7,
                                             'peer:n2:forwarded': 3})
            rc, out, err, _ = run(self.c.zk, '--json', 'stats', 'n2')
            self.assertEqual(rc, 0, err)
            self.assertIsNone(json.loads(out)['nodes'][0]['cluster'])
        finally:
            for s in servers:
                s.shutdown()
                s.server_close()

    # ---- hotkeys ------------------------------------------------------

    BIN = b'\x00\xffbin'          # not printable: shown as b64:

    def seed_hot(self, with_set=True):
        if with_set:
            self.c.put('hot/set', hot_set(7, 7, [
                ('user:1', 'n1', ['n2'], 4000.0, 1.0),
                (self.BIN, 'n2', ['n1', 'n3'], 150.0, 0.0)]))
        self.c.put('hot/reports/n1', hot_report('n1', 1000.0, 900.0, [
            ('user:1', 3000.0, 1.0), ('hot:a', 500.0, 10.0),
            (self.BIN, 200.0, 0.0), ('cold:b', 50.0, 0.0)]), ephemeral=True)
        self.c.put('hot/reports/n2', hot_report('n2', 2500.5, 2000.25, [
            ('user:1', 2000.0, 0.5), ('has space', 400.0, 0.0),
            ('hot:a', 100.0, 0.0)]), ephemeral=True)
        # n3: many lukewarm keys, so 'hot, not replicated' is cut at 20
        self.c.put('hot/reports/n3', hot_report('n3', 10.0, 10.0, [
            ('k%02d' % i, 10.0 + i, 0.0) for i in range(29, -1, -1)]),
            ephemeral=True)

    def owner(self, key):
        return ketama.map_owner(self.map['nodes'], key)

    def test_hotkeys(self):
        self.seed_hot()
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '')
        self.assertEqual(out.splitlines()[0],
                         'hot-key set: version 7, map epoch 7, 3 nodes '
                         'reporting (n1, n2, n3)')
        # the set, by the reads summed over the reports now (not the
        # leader's figures from when it chose the keys)
        self.assertEqual(table(out, ['KEY', 'READS/S', 'WRITES/S', 'OWNER',
                                     'REPLICAS']), [
            ['user:1', '5000.0', '1.5', 'n1', 'n2'],
            ['b64:' + b64(self.BIN), '200.0', '0.0', 'n2', 'n1,n3']])
        self.assertIn('\nhot, not replicated:\n', out)
        rows = table(out, ['KEY', 'READS/S', 'WRITES/S', 'OWNER', 'NODES'])
        want = [['hot:a', '600.0', '10.0', self.owner('hot:a'), '2'],
                ['b64:' + b64('has space'), '400.0', '0.0',
                 self.owner('has space'), '1'],
                ['cold:b', '50.0', '0.0', self.owner('cold:b'), '1']]
        want += [['k%02d' % i, '%.1f' % (10.0 + i), '0.0',
                  self.owner('k%02d' % i), '1'] for i in range(29, 12, -1)]
        self.assertEqual(rows, want)          # top 20, reads desc
        self.assertNotIn('user:1', [r[0] for r in rows])

        rc, out, err, _ = run(self.c.zk, '--json', 'hotkeys')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc['set']['version'], doc['set']['epoch'],
                          doc['map_epoch'], doc['nodes_reporting']),
                         (7, 7, 7, ['n1', 'n2', 'n3']))
        k0, k1 = doc['set']['keys']
        self.assertEqual(k0, {'key': 'user:1', 'key_b64': b64('user:1'),
                              'reads': 5000.0, 'writes': 1.5, 'owner': 'n1',
                              'replicas': ['n2'], 'set_reads': 4000.0,
                              'set_writes': 1.0})
        self.assertEqual((k1['key'], base64.b64decode(k1['key_b64']),
                          k1['replicas']),
                         ('b64:' + b64(self.BIN), self.BIN, ['n1', 'n3']))
        hot = doc['hot_not_replicated']
        self.assertEqual(len(hot), 20)
        self.assertEqual(hot[0], {'key': 'hot:a', 'key_b64': b64('hot:a'),
                                  'reads': 600.0, 'writes': 10.0,
                                  'owner': self.owner('hot:a'), 'nodes': 2})
        self.assertEqual(base64.b64decode(hot[1]['key_b64']), b'has space')

    def test_hotkeys_node(self):
        self.seed_hot()
        for args in (['hotkeys', '--node', 'n1'], ['hotkeys', '--node=n1'],
                     ['--node', 'n1', 'hotkeys']):
            rc, out, err, _ = run(self.c.zk, *args)
            self.assertEqual(rc, 0, (args, err))
            self.assertEqual(out.splitlines()[0],
                             'node n1: received 1000.0/s, executed 900.0/s '
                             '(interval 1000 ms)')
            self.assertEqual(table(out, ['KEY', 'READS/S', 'WRITES/S',
                                         'REPLICATED']), [
                ['user:1', '3000.0', '1.0', 'yes'],
                ['hot:a', '500.0', '10.0', 'no'],
                ['b64:' + b64(self.BIN), '200.0', '0.0', 'yes'],
                ['cold:b', '50.0', '0.0', 'no']])
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n2', '--json')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc['node'], doc['interval_ms'], doc['received'],
                          doc['executed'], doc['set_version']),
                         ('n2', 1000, 2500.5, 2000.25, 7))
        self.assertEqual(doc['keys'][1], {
            'key': 'b64:' + b64('has space'), 'key_b64': b64('has space'),
            'reads': 400.0, 'writes': 0.0, 'replicated': False})
        self.assertEqual([k['replicated'] for k in doc['keys']],
                         [True, False, False])

        # unknown node: the same error as the other commands
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n9')
        self.assertEqual(rc, 1)
        self.assertEqual(err, 'dpcachectl: unknown node n9 '
                              '(known: n1, n2, n3, n5)\n')
        self.assertEqual(out, '')
        # known, but it wrote no report
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n5')
        self.assertEqual(rc, 1)
        self.assertIn('dpcachectl: no hot-key report from n5', err)
        # a node that reports but is neither registered nor in the map
        self.c.put('hot/reports/n8', hot_report('n8', 1.0, 1.0, []))
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n8')
        self.assertEqual(rc, 0, err)
        self.assertIn('no hot keys reported', out)

    def test_hotkeys_no_set(self):
        self.seed_hot(with_set=False)
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(
            'no hot-key set published yet\n'
            'map epoch 7, 3 nodes reporting (n1, n2, n3)\n'), out)
        rows = table(out, ['KEY', 'READS/S', 'WRITES/S', 'OWNER', 'NODES'])
        self.assertEqual(rows[0], ['user:1', '5000.0', '1.5',
                                   self.owner('user:1'), '2'])
        self.assertEqual(rows[1][:2], ['hot:a', '600.0'])
        self.assertEqual(rows[3][:2], ['b64:' + b64(self.BIN), '200.0'])
        self.assertEqual(len(rows), 20)
        rc, out, err, _ = run(self.c.zk, '--json', 'hotkeys')
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertIsNone(doc['set'])
        self.assertEqual(doc['hot_not_replicated'][0]['key'], 'user:1')
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n1')
        self.assertEqual(rc, 0, err)
        self.assertIn('no hot-key set published yet\n', out)
        self.assertEqual({r[3] for r in table(out, [
            'KEY', 'READS/S', 'WRITES/S', 'REPLICATED'])}, {'no'})

        # nothing under ROOT/hot at all
        self.c.kz.delete(self.c.root + '/hot', recursive=True)
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, 'no hot-key set published yet\n'
                              'map epoch 7, 0 nodes reporting\n'
                              '\nhot, not replicated: none\n')
        # an empty set
        self.c.put('hot/set', hot_set(3, 7, []))
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, 'hot-key set: version 3, map epoch 7, '
                              '0 nodes reporting\nno keys replicated\n'
                              '\nhot, not replicated: none\n')

    def test_hotkeys_bad_documents(self):
        self.seed_hot()
        # the map moved on since the set was chosen: said in the header
        m = dict(self.map, epoch=9)
        self.c.put('map', m)
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 0, err)
        self.assertIn('version 7, map epoch 7 (the map is now at epoch 9)',
                      out.splitlines()[0])

        # a malformed report: left out with a warning, exit 1
        self.c.put('hot/reports/n2', b'{not json')
        rc, out, err, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual(rc, 1)
        self.assertIn('dpcachectl: bad hot-key report in %s/hot/reports/n2: '
                      % self.c.root, err)
        self.assertIn('2 nodes reporting (n1, n3)', out)
        self.assertIn(['user:1', '3000.0', '1.0', 'n1', 'n2'], table(
            out, ['KEY', 'READS/S', 'WRITES/S', 'OWNER', 'REPLICAS']))
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n2')
        self.assertEqual(rc, 1)
        self.assertIn('bad hot-key report in %s/hot/reports/n2' % self.c.root,
                      err)
        # a report filed under another node's name
        self.c.put('hot/reports/n2', hot_report('n1', 1.0, 1.0, []))
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--node', 'n2')
        self.assertEqual(rc, 1)
        self.assertIn("it names node 'n1'", err)

        # a malformed set: a clean error, nothing printed
        for bad in (b'{"version": "x"}', b'\xff\x00garbage', b'',
                    json.dumps(hot_set(8, 7, [('k', 'n1', ['n1'], 1.0, 0.0)]))
                    .encode(),
                    json.dumps(hot_set(8, 7, [('k', 'bad/id', [], 1.0, 0.0)]))
                    .encode()):
            self.c.put('hot/set', bad)
            for args in (['hotkeys'], ['--json', 'hotkeys'],
                         ['hotkeys', '--node', 'n1']):
                rc, out, err, _ = run(self.c.zk, *args)
                self.assertEqual(rc, 1, (bad, args, out, err))
                self.assertEqual(out, '')
                self.assertTrue(err.startswith(
                    'dpcachectl: bad hot-key set in %s/hot/set: '
                    % self.c.root), err)
                self.assertEqual(len(err.splitlines()), 1, err)

    def test_hotkeys_routes(self):
        """--format=routes: KEY ADDR... per replicated key, the map's owner
        first, replicas not in the map left out, keys whose set owner is no
        longer their map owner left out."""
        addr = {n['id']: n['addr'] for n in self.map['nodes']}

        def other(nid):                  # the other active node
            return 'n2' if nid == 'n1' else 'n1'

        # keys named for the node that owns them in the map, by the
        # independent ketama (the leader's owner is the map's owner)
        keys = {}
        for i in range(200):
            k = 'r%d' % i
            keys.setdefault(self.owner(k), []).append(k)
        a, moved = keys['n1'][0], keys['n2'][0]
        spaced = next(k for k in ('sp %d' % i for i in range(100))
                      if self.owner(k) == 'n2')
        binkey = next(k for k in (b'\x00\xff' + bytes([i]) for i in range(256))
                      if self.owner(k) == 'n1')
        lone = keys['n2'][1]
        oa, ob, os_, ol = (self.owner(k) for k in (a, binkey, spaced, lone))
        self.c.put('hot/set', hot_set(11, 7, [
            # n3 (standby) is in the map: kept; n9 is not: left out
            (a, oa, ['n9', other(oa), 'n3'], 9000.0, 0.0),
            # the set says n1, the map says n2 (the map moved on): left out
            (moved, 'n1', ['n3'], 8000.0, 0.0),
            (binkey, ob, [other(ob)], 7000.0, 1.0),
            (spaced, os_, ['n3', other(os_)], 6000.0, 0.0),
            # every replica gone from the map: the owner alone
            (lone, ol, ['n9'], 5000.0, 0.0)]))
        # a malformed report does not matter: routes read no reports
        self.c.put('hot/reports/n2', b'{not json', ephemeral=True)

        want_lines = [
            '# dpcache hot-key routes: set version 11, map epoch 7',
            '%s %s %s %s' % (a, addr[oa], addr[other(oa)], addr['n3']),
            'b64:%s %s %s' % (b64(binkey), addr[ob], addr[other(ob)]),
            'b64:%s %s %s %s' % (b64(spaced), addr[os_], addr['n3'],
                                 addr[other(os_)]),
            '%s %s' % (lone, addr[ol])]
        for args in (['hotkeys', '--format=routes'],
                     ['--format=routes', 'hotkeys'],
                     ['--format', 'routes', 'hotkeys']):
            rc, out, err, _ = run(self.c.zk, *args)
            self.assertEqual(rc, 0, (args, err))
            self.assertEqual(err, '')
            self.assertEqual(out.splitlines(), want_lines, args)

        rc, out, err, _ = run(self.c.zk, '--json', 'hotkeys',
                              '--format=routes')
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '')
        doc = json.loads(out)
        self.assertEqual((doc['version'], doc['epoch']), (11, 7))
        self.assertEqual(doc['routes'][0], {
            'key': a, 'key_b64': b64(a),
            'servers': [addr[oa], addr[other(oa)], addr['n3']]})
        self.assertEqual([base64.b64decode(r['key_b64'])
                          for r in doc['routes']],
                         [a.encode(), binkey, spaced.encode(), lone.encode()])
        self.assertEqual(doc['routes'][1]['key'], 'b64:' + b64(binkey))
        self.assertEqual(doc['routes'][3]['servers'], [addr[ol]])
        # every line of the text form is in the JSON form, and back
        self.assertEqual(
            [' '.join([r['key']] + r['servers']) for r in doc['routes']],
            want_lines[1:])

        # the header's epoch is the map's now, whose addresses are printed
        m = dict(self.map, epoch=9)
        m['nodes'] = [dict(n) for n in self.map['nodes']]
        m['nodes'][2]['addr'] = '127.0.0.1:21013'     # n3 moved port
        self.c.put('map', m)
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[0],
                         '# dpcache hot-key routes: set version 11, '
                         'map epoch 9')
        self.assertEqual(out.splitlines()[1].split()[-1], '127.0.0.1:21013')
        self.c.put('map', self.map)

        # --format=text is the default table
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=text')
        self.assertEqual(rc, 1)           # the malformed report, as always
        rc2, out2, _, _ = run(self.c.zk, 'hotkeys')
        self.assertEqual((rc, out), (rc2, out2))
        self.assertIn('KEY', out)

        # an empty set, then no set at all: the header line alone
        self.c.put('hot/set', hot_set(12, 7, []))
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes')
        self.assertEqual((rc, out), (0, '# dpcache hot-key routes: set '
                                        'version 12, map epoch 7\n'), err)
        self.c.kz.delete(self.c.root + '/hot', recursive=True)
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes')
        self.assertEqual((rc, out, err), (0, '# dpcache hot-key routes: set '
                                             'version 0, map epoch 7\n', ''))
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes',
                              '--json')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out),
                         {'version': 0, 'epoch': 7, 'routes': []})

        # a malformed set: a clean error, nothing on stdout
        self.c.put('hot/set', b'{"version": "x"}')
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes')
        self.assertEqual((rc, out), (1, ''))
        self.assertTrue(err.startswith('dpcachectl: bad hot-key set in '
                                       '%s/hot/set: ' % self.c.root), err)
        # no map: nothing to route to
        self.c.kz.delete(self.c.root + '/map')
        rc, out, err, _ = run(self.c.zk, 'hotkeys', '--format=routes')
        self.assertEqual((rc, out), (1, ''))
        self.assertIn('no shard map', err)

        # usage errors (exit 2), caught before ZooKeeper is asked
        for args in (['hotkeys', '--format=json'],
                     ['hotkeys', '--format=route'],
                     ['hotkeys', '--format='],
                     ['hotkeys', '--format=routes', '--node', 'n1'],
                     ['status', '--format=routes']):
            rc, out, err, _ = run('127.0.0.1:1/x', *args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn('usage: dpcachectl', err)
            self.assertEqual(out, '')
        # 'map' checks its format once connected; routes is not one
        rc, out, err, _ = run(self.c.zk, 'map', '--format=routes')
        self.assertEqual(rc, 2, err)
        self.assertIn("unknown map format 'routes'", err)

    # ---- bad input, errors, usage -------------------------------------

    def test_bad_data_in_zookeeper(self):
        self.c.put('nodes/n7', b'{not json', ephemeral=True)
        rc, out, err, _ = run(self.c.zk, 'nodes')
        self.assertEqual(rc, 0, err)
        self.assertIn('n7', out)
        self.c.put('map', b'{"epoch": "x"}')
        rc, out, err, _ = run(self.c.zk, 'status')
        self.assertEqual(rc, 1)
        self.assertIn('dpcachectl: bad shard map in %s/map' % self.c.root, err)
        self.c.put('map', b'\xff\x00garbage')
        rc, out, err, _ = run(self.c.zk, 'map')
        self.assertEqual(rc, 1)
        self.assertIn('bad shard map', err)

    def test_empty_root(self):
        c = Cluster('empty')
        try:
            rc, out, err, _ = run(c.zk, 'status')
            self.assertEqual(rc, 0, err)
            self.assertIn('leader:     (none)', out)
            self.assertIn('none yet', out)
            rc, out, err, _ = run(c.zk, 'map')
            self.assertEqual(rc, 1)
            self.assertIn('no shard map', err)
        finally:
            c.cleanup()


class ZooKeeperRestartTest(unittest.TestCase):
    """Runs last (unittest orders classes by name): restarts the module's
    ZooKeeper under a waiting CLI, which must ride out the outage."""

    def test_wait_survives_zookeeper_restart(self):
        c = Cluster('restart')
        c.put('map', {'epoch': 2, 'migration': 3, 'nodes': [node('n1', 21001)],
                      'prev': [node('n1', 21001, 1, 'standby')]})
        c.put('migrations/3', {'id': 3, 'reason': 'add n1', 'state': 'moving',
                               'ranges': 1})
        argv = [CTL, '--zk=' + c.zk, '--timeout=20', 'wait', '3']
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            self.assertIsNone(p.poll(), 'wait returned before the end')
            subprocess.run([ZK_SCRIPT, 'stop', ZK['dir']], timeout=30,
                           check=True)
            time.sleep(1)
            self.assertIsNone(p.poll(), 'wait gave up at once on a lost '
                              'ZooKeeper')
            subprocess.run([ZK_SCRIPT, 'start', ZK['dir'], str(ZK['port'])],
                           stdout=subprocess.DEVNULL, timeout=60, check=True)
            deadline = time.monotonic() + 20
            while True:
                try:
                    mig = c.get('migrations/3')
                    mig['state'] = 'done'
                    c.put('migrations/3', mig)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            out, err = p.communicate(timeout=20)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(b'migration 3 (add n1) done', out)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            # a failure above may have left ZooKeeper stopped: kazoo
            # would then block in cleanup, and later tests need it
            if not zk_alive():
                subprocess.run([ZK_SCRIPT, 'start', ZK['dir'],
                                str(ZK['port'])], stdout=subprocess.DEVNULL,
                               timeout=60, check=True)
            c.cleanup()


class NoZooKeeperTest(unittest.TestCase):
    def test_unreachable(self):
        port = free_port()
        rc, out, err, secs = run('127.0.0.1:%d/dpcache' % port, '--timeout=1',
                                 'status')
        self.assertEqual(rc, 3)
        self.assertEqual(err, 'dpcachectl: cannot reach ZooKeeper at '
                              '127.0.0.1:%d: Connection refused\n' % port)
        self.assertLess(secs, 8)
        rc, out, err, secs = run('127.0.0.1:%d/dpcache' % port, '--timeout=1',
                                 'hotkeys', '--node', 'n1')
        self.assertEqual(rc, 3)
        self.assertIn('cannot reach ZooKeeper', err)

    def test_unresolvable(self):
        rc, out, err, _ = run('no-such-host.invalid:2181/x', '--timeout=1',
                              'nodes')
        self.assertEqual(rc, 3)
        self.assertIn('dpcachectl: cannot reach ZooKeeper at '
                      'no-such-host.invalid:2181: ', err)

    def test_usage(self):
        zk = '127.0.0.1:1/x'
        for args in ([], ['frobnicate'], ['add'], ['add', 'a', 'b'],
                     ['weight', 'n1'], ['weight', 'n1', '0'],
                     ['weight', 'n1', '1001'], ['weight', 'n1', 'x'],
                     ['add', 'bad/id'], ['--timeout=0', 'status'],
                     ['--bogus', 'status'], ['status', '--format=json'],
                     ['wait', 'x'], ['hotkeys', 'n1'],
                     ['hotkeys', '--node'], ['hotkeys', '--node', 'bad/id'],
                     ['status', '--node', 'n1'], ['hotkeys', '--format=json']):
            rc, out, err, _ = run(zk, *args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn('usage: dpcachectl', err)
        rc, out, err, _ = run(None, 'status')
        self.assertEqual(rc, 2)
        self.assertIn('no ZooKeeper given', err)
        rc, out, err, _ = run(None, '--help')
        self.assertEqual(rc, 0)
        self.assertIn('usage: dpcachectl', out)
        rc, out, err, _ = run('127.0.0.1:1/', 'status')
        self.assertEqual(rc, 2)


if __name__ == '__main__':
    unittest.main(verbosity=2)
