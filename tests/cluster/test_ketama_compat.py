#!/usr/bin/python3
"""Our ketama ring against a real libmemcached client, end to end.

Starts four stock memcached processes on free loopback ports, lets pylibmc
(libmemcached) store 2000 keys across them, finds which memcached really
holds each key (a direct get on every server with pymemcache), and compares
that with what replication/ring.c says (the ring_owner program: path in
$RING_OWNER or argv[1]).  Zero mismatches are allowed.

Three server lists are checked:
  - equal weights with pylibmc behaviors {"ketama_weighted": True}: must match;
  - weights 1, 3, 2, 1 ("host:port:weight" specs) with the same behavior:
    must match;
  - equal weights with {"ketama": True}: must NOT match (it is libmemcached's
    unweighted ketama: 100 points per server and the one-at-a-time key
    hash), which is why the documentation says "ketama_weighted".

The 11211 default-port naming rule cannot be exercised here without
binding 11211; tests/replication/test_ring.c covers it with vectors taken
from the same libmemcached.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pylibmc
from pymemcache.client.base import Client as PmClient

NSERVERS = 4
NKEYS = 2000
MEMCACHED = shutil.which('memcached') or '/usr/bin/memcached'


def free_port():
    """A port in 20000-40000 that is free right now (memcached may still
    lose a race for it; start_memcached retries)."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise RuntimeError('no free port found')


def start_memcached():
    """Starts one memcached on a free loopback port: (Popen, port)."""
    for _ in range(10):
        port = free_port()
        cmd = [MEMCACHED, '-l', '127.0.0.1', '-p', str(port), '-U', '0',
               '-m', '16', '-t', '1']
        if os.geteuid() == 0:
            cmd += ['-u', 'root']
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break           # lost the port: try another
            try:
                socket.create_connection(('127.0.0.1', port), 0.2).close()
                return proc, port
            except OSError:
                time.sleep(0.05)
        stop(proc)
    raise RuntimeError('could not start memcached')


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_keys():
    rnd = random.Random(4)
    alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-./'
    keys = ['key:%d' % i for i in range(NKEYS // 2)]
    while len(keys) < NKEYS:
        k = ''.join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 200)))
        if k not in keys:
            keys.append(k)
    return keys


def ring_owners(ring_owner, specs, keys):
    out = subprocess.run([ring_owner] + specs, input='\n'.join(keys) + '\n',
                         capture_output=True, text=True, check=True,
                         timeout=60).stdout.splitlines()
    assert len(out) == len(keys), 'ring_owner printed %d lines' % len(out)
    owners = []
    for key, line in zip(keys, out):
        k, idx = line.rsplit(' ', 1)
        assert k == key, 'ring_owner echoed %r for %r' % (k, key)
        owners.append(int(idx))
    return owners


def real_owners(ports, specs, behaviors, keys):
    """Stores every key through pylibmc, then asks each server directly."""
    direct = [PmClient(('127.0.0.1', p), connect_timeout=2, timeout=5)
              for p in ports]
    try:
        for c in direct:
            c.flush_all()
        mc = pylibmc.Client(specs, behaviors=behaviors)
        for i, key in enumerate(keys):
            mc.set(key, ('v%d' % i).encode())
        mc.disconnect_all()
        holder = {}
        for idx, c in enumerate(direct):
            for j in range(0, len(keys), 100):
                found = c.get_many(keys[j:j + 100])
                for key, val in found.items():
                    key = key.decode() if isinstance(key, bytes) else key
                    assert key not in holder, \
                        '%r on servers %d and %d' % (key, holder[key], idx)
                    assert val == ('v%d' % keys.index(key)).encode()
                    holder[key] = idx
        missing = [k for k in keys if k not in holder]
        assert not missing, '%d keys not stored anywhere, e.g. %r' % (
            len(missing), missing[:3])
        return [holder[k] for k in keys]
    finally:
        for c in direct:
            c.close()


def compare(name, ring_owner, ports, weights, behaviors, keys, expect_equal):
    specs = ['127.0.0.1:%d:%d' % (p, w) for p, w in zip(ports, weights)]
    ours = ring_owners(ring_owner, specs, keys)
    real = real_owners(ports, specs, behaviors, keys)
    bad = [(k, o, r) for k, o, r in zip(keys, ours, real) if o != r]
    per_server = [real.count(i) for i in range(len(ports))]
    print('%s: %d keys, per server %s, mismatches %d' % (
        name, len(keys), per_server, len(bad)))
    if expect_equal:
        assert not bad, '%d mismatches, first: %r' % (len(bad), bad[:5])
        assert min(per_server) > 0, 'a server got no keys: %r' % per_server
    else:
        assert len(bad) > len(keys) // 10, \
            'expected a different ring, got only %d mismatches' % len(bad)


def main():
    ring_owner = os.environ.get('RING_OWNER') or (
        sys.argv[1] if len(sys.argv) > 1 else None)
    if not ring_owner or not os.access(ring_owner, os.X_OK):
        print('usage: RING_OWNER=path %s  (or: %s path)' % (sys.argv[0],
                                                           sys.argv[0]))
        return 2
    keys = make_keys()
    procs = []
    try:
        ports = []
        for _ in range(NSERVERS):
            proc, port = start_memcached()
            procs.append(proc)
            ports.append(port)
        weighted = {'ketama_weighted': True}
        compare('ketama_weighted, equal weights', ring_owner, ports,
                [1] * NSERVERS, weighted, keys, True)
        compare('ketama_weighted, weights 1 3 2 1', ring_owner, ports,
                [1, 3, 2, 1], weighted, keys, True)
        compare('ketama (unweighted), equal weights', ring_owner, ports,
                [1] * NSERVERS, {'ketama': True}, keys, False)
    finally:
        for proc in procs:
            stop(proc)
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
