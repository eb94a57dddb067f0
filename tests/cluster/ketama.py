"""libmemcached's weighted consistent ketama, in Python, for the tests.

Why a second implementation: the cluster tests must know which node owns a
key (before and after a migration) without trusting the code under test.
This one follows libmemcached 1.x's update_continuum() for
MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (the behaviour pylibmc calls
'ketama_weighted'), and cluster_env.check_ketama_against_pylibmc() checks it
against the real libmemcached (pylibmc over stock memcached servers), so a
disagreement with dpcached's ring is dpcached's.

The continuum, per server with weight w out of a total W over n servers:
  points = floor(float32(w / W) * 160 / 4 * n + 1e-10) * 4   (float32 steps)
  for i in 0 .. points/4 - 1: md5("host:port-i") gives four points, the
  little-endian 32-bit words of the digest.  (Port 11211 is written without
  ":port" by libmemcached; the tests never use it, but it is handled.)
A key's hash is the first little-endian word of md5(key); its owner is the
server of the first point >= hash, wrapping to the first point.
"""

import bisect
import hashlib
import struct

POINTS_PER_SERVER = 160
DEFAULT_PORT = 11211


def _f32(x):
    """Round to IEEE single precision, as a C float expression does."""
    return struct.unpack('<f', struct.pack('<f', x))[0]


def key_hash(key):
    if isinstance(key, str):
        key = key.encode()
    return struct.unpack_from('<I', hashlib.md5(key).digest(), 0)[0]


def _points_for(weight, total, nservers):
    pct = _f32(_f32(float(weight)) / _f32(float(total)))
    x = _f32(pct * POINTS_PER_SERVER)
    x = _f32(x / 4)
    x = _f32(x * _f32(float(nservers)))
    x = _f32(x + 0.0000000001)
    return int(x // 1) * 4


class Ring:
    """servers: list of (addr "host:port", weight).  lookup(key) -> index."""

    def __init__(self, servers):
        self.servers = list(servers)
        total = sum(w for _, w in self.servers)
        pts = []
        for idx, (addr, weight) in enumerate(self.servers):
            host, _, port = addr.rpartition(':')
            npoints = _points_for(weight, total, len(self.servers))
            for i in range(npoints // 4):
                if int(port) == DEFAULT_PORT:
                    name = '%s-%d' % (host, i)
                else:
                    name = '%s:%s-%d' % (host, port, i)
                d = hashlib.md5(name.encode()).digest()
                for x in range(4):
                    pts.append((struct.unpack_from('<I', d, 4 * x)[0], idx))
        # libmemcached qsorts by value only; equal values (vanishingly rare
        # with 32-bit MD5 words) could order either way there.
        pts.sort(key=lambda p: p[0])
        self.values = [p[0] for p in pts]
        self.owners = [p[1] for p in pts]

    def lookup_hash(self, h):
        if not self.values:
            return -1
        i = bisect.bisect_left(self.values, h)
        if i == len(self.values):
            i = 0
        return self.owners[i]

    def share(self, idx):
        """The fraction of the 32-bit hash space server idx owns: the arcs
        (previous point, point] of its points, the first arc wrapping."""
        total = 0
        for i, v in enumerate(self.values):
            if self.owners[i] == idx:
                prev = self.values[i - 1] if i else self.values[-1] - 2 ** 32
                total += v - prev
        return total / 2 ** 32

    def lookup(self, key):
        return self.lookup_hash(key_hash(key))

    def owner_addr(self, key):
        i = self.lookup(key)
        return None if i < 0 else self.servers[i][0]


def map_ring(nodes):
    """The ring of a shard map's node list (ROOT/map 'nodes' or 'prev'):
    active nodes with weight > 0, in array order.  Returns (Ring, ids)."""
    active = [n for n in (nodes or [])
              if n.get('state', 'active') == 'active' and int(n.get('weight', 1)) > 0]
    ring = Ring([(n['addr'], int(n['weight'])) for n in active])
    return ring, [n['id'] for n in active]


_rings = {}   # node list description -> (Ring, ids): tests ask thousands of keys


def map_owner(nodes, key):
    """Owner id of key in a shard map's node list (None on an empty ring)."""
    sig = tuple((n['id'], n['addr'], int(n['weight']), n.get('state', 'active'))
                for n in (nodes or []))
    if sig not in _rings:
        if len(_rings) > 16:
            _rings.clear()
        _rings[sig] = map_ring(nodes)
    ring, ids = _rings[sig]
    i = ring.lookup(key)
    return None if i < 0 else ids[i]
