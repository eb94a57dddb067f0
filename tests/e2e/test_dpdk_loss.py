"""Packet loss: with 5% of frames dropped in each direction, every one of
20,000 requests (10,000 sets, then 10,000 gets of those keys) completes with
the right answer, and the DPDK stack shows it worked for it: `stats
dataplane` counts fault-injector drops and TCP retransmissions.  A second
run does the same with duplicated, reordered and delayed frames (and 1%
loss), which must exercise the out-of-order queue (`stats dataplane`
ooo_queued > 0).

The loss comes from the server's own seeded fault injector
(--fault=drop=5,seed=N on the RX and TX bursts of every polling core), so
it hits both directions and is reproducible; DPCACHE_SEED picks N.  The
server's minimum RTO is lowered to 10 ms (--tcp-rto-min-ms) and so is the
client's (the route's rto_min), so losses cost milliseconds, not the 200 ms
default, and the test stays short.  Clients: eight raw-socket connections
that pipeline requests in batches of 25 (so that fast retransmit has
duplicate ACKs to work with, as well as the RTO for the last segment of a
batch) and one pymemcache client doing one request per round trip.

Then a UDP part: 1,000 gets over memcached's UDP frame protocol, each
retried (server.UdpClient: a new request id per try, late answers skipped)
until its answer arrives, every value checked.

Under kernel-netns the same loss comes from nftables in the client
namespace (numgen random mod 100 < 5), and only the answers are checked.
"""
import ipaddress
import os
import subprocess
import threading
import time

import dpdk_env
from server import Server, TestSkip, UdpClient, check, fail, run

LOSS_PCT = 5
WORKERS = 8
KEYS_PER_WORKER = 1200      # 8 x 1200 sets + 8 x 1200 gets = 19,200
PYMC_KEYS = 500             # + 1,000 from pymemcache = 20,200 requests
BATCH = 25
CLIENTS_DEADLINE_S = 120    # TCP clients of one phase, from their start


def client_rto_min():
    """Lower the client's RTO floor on the route to the server."""
    net = ipaddress.ip_network('%s/%d' % (dpdk_env.CLIENT_IP, dpdk_env.PREFIX), strict=False)
    p = subprocess.run(['ip', 'route', 'change', str(net),
                        'dev', dpdk_env.CLIENT_IF, 'proto', 'kernel', 'scope', 'link',
                        'src', dpdk_env.CLIENT_IP, 'rto_min', '10ms'],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    check(p.returncode == 0, 'ip route change ... rto_min 10ms: %s' % p.stdout.decode())


def nft_loss():
    """kernel-netns only: random loss both ways in the client namespace."""
    rules = ('table ip e2e_loss {\n'
             '  chain in { type filter hook input priority 0;'
             ' ip saddr %s numgen random mod 100 < %d drop; }\n'
             '  chain out { type filter hook output priority 0;'
             ' ip daddr %s numgen random mod 100 < %d drop; }\n'
             '}\n' % (dpdk_env.SERVER_IP, LOSS_PCT, dpdk_env.SERVER_IP, LOSS_PCT))
    p = subprocess.run([dpdk_env.NFT, '-f', '-'], input=rules.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, check=False)
    check(p.returncode == 0, 'nft loss rules: %s' % p.stdout.decode())


def value(w, i):
    return b'w%d-k%d-' % (w, i) + b'v' * ((w * 131 + i * 17) % 700)


def raw_worker(srv, w, errors, done):
    try:
        c = srv.connect(timeout=20)
        keys = [b'loss:%d:%d' % (w, i) for i in range(KEYS_PER_WORKER)]
        for b in range(0, KEYS_PER_WORKER, BATCH):
            batch = range(b, min(b + BATCH, KEYS_PER_WORKER))
            c.send(b''.join(b'set %s %d 0 %d\r\n%s\r\n' % (keys[i], i, len(value(w, i)), value(w, i))
                            for i in batch))
            for i in batch:
                got = c.read_line()
                if got != b'STORED\r\n':
                    errors.append('worker %d set %s: %r' % (w, keys[i], got))
                    return
                done[w] += 1
        for b in range(0, KEYS_PER_WORKER, BATCH):
            batch = range(b, min(b + BATCH, KEYS_PER_WORKER))
            c.send(b''.join(b'get %s\r\n' % keys[i] for i in batch))
            for i in batch:
                v = value(w, i)
                want = b'VALUE %s %d %d\r\n%s\r\nEND\r\n' % (keys[i], i, len(v), v)
                got = c.read_exact(len(want))
                if got != want:
                    errors.append('worker %d get %s: expected %r, got %r'
                                  % (w, keys[i], want[:80], got[:80]))
                    return
                done[w] += 1
        c.close()
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append('worker %d after %d requests: %s' % (w, done[w], e))


def pymc_worker(srv, w, errors, done):
    try:
        from pymemcache.client.base import Client
    except ImportError:
        errors.append('pymemcache is not installed for /usr/bin/python3')
        return
    try:
        c = Client((srv.host, srv.port), connect_timeout=10, timeout=20, default_noreply=False)
        for i in range(PYMC_KEYS):
            if not c.set('pymc:%d' % i, value(w, i)):
                errors.append('pymemcache set pymc:%d not stored' % i)
                return
            done[w] += 1
        for i in range(PYMC_KEYS):
            got = c.get('pymc:%d' % i)
            if got != value(w, i):
                errors.append('pymemcache get pymc:%d: %r' % (i, got and got[:80]))
                return
            done[w] += 1
        c.close()
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append('pymemcache after %d requests: %s' % (done[w], e))


def udp_gets(srv, n=1000, tries=40, wait=0.05):
    """n gets of worker 0's keys over UDP under loss, each retried until its
    answer comes; every answer a single datagram with the right value.
    Returns the number of retries."""
    u = UdpClient(srv.host, srv.port)
    try:
        for r in range(n):
            i = r % KEYS_PER_WORKER
            key, v = b'loss:0:%d' % i, value(0, i)
            want = b'VALUE %s %d %d\r\n%s\r\nEND\r\n' % (key, i, len(v), v)
            got, datagrams = u.request(b'get %s\r\n' % key, timeout=wait, tries=tries,
                                       until=b'END\r\n', quiet=True)
            check(got == want and datagrams == 1,
                  'UDP get %s: expected %r in one datagram, got %r in %d'
                  % (key, want[:80], got[:80], datagrams))
        return u.retries
    finally:
        u.close()


def fault_sum(total, kind):
    """Sum of the injector's RX and TX counters of one kind (dropped, ...)."""
    return sum(v for k, v in total.items() if k.startswith('fault_') and k.endswith(kind))


# (fault spec, fault counters that must be non-zero, TCP retransmits needed,
#  segments queued out of order needed)
PHASES = [
    ('drop=%d' % LOSS_PCT, ['dropped'], True, False),
    # Duplicates, reordering and 2 ms delays with a little loss: the
    # out-of-order queue, duplicate-segment and late-ACK paths.
    ('drop=1,dup=3,reorder=3,delay=3:2000', ['duplicated', 'reordered', 'delayed'], False,
     True),
]


def phase(be, spec, seed, need_counters, need_rexmit, need_ooo):
    flags = ['-m', '64']
    if be == 'dpdk':
        flags += ['--fault=%s,seed=%d' % (spec, seed), '--tcp-rto-min-ms=10']
    else:
        spec = 'drop=%d (nftables)' % LOSS_PCT
    with Server(flags, udp=True) as srv:
        if be != 'dpdk':
            nft_loss()
        errors = []
        done = [0] * (WORKERS + 1)
        threads = [threading.Thread(target=raw_worker, args=(srv, w, errors, done), daemon=True)
                   for w in range(WORKERS)]
        threads.append(threading.Thread(target=pymc_worker, args=(srv, WORKERS, errors, done),
                                        daemon=True))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        # One deadline for all (meson's timeout is 180 s for both phases):
        # a hang is reported as such, not killed by meson.
        deadline = t0 + CLIENTS_DEADLINE_S
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - t0
        total = sum(done)
        if any(t.is_alive() for t in threads):
            errors.append('clients still busy after %.0fs (%d requests done)' % (elapsed, total))
        if errors:
            srv.check_alive()
            fail('%d client errors with faults %s (seed %d), first: %s'
                 % (len(errors), spec, seed, errors[0]))
        want = WORKERS * KEYS_PER_WORKER * 2 + PYMC_KEYS * 2
        check(total == want, 'completed %d requests, expected %d' % (total, want))
        t1 = time.monotonic()
        udp_retries = udp_gets(srv)
        line = ('%s (seed %d): %d TCP requests in %.1fs, 1000 UDP gets in %.1fs (%d retries)'
                % (spec, seed, total, elapsed, time.monotonic() - t1, udp_retries))
        if be == 'dpdk':
            # The stats request itself gets through the faults like any other.
            t = srv.dataplane_stats().get('total', {})
            check(t, '`stats dataplane` has no total: lines')
            rexmit = t.get('retransmits', 0)
            print(line + '; faults %s; retransmits %d (fast %d, RTO %d), ooo_queued %d'
                  % (' '.join('%s=%d' % (k, fault_sum(t, k)) for k in need_counters),
                     rexmit, t.get('fast_retransmits', 0), t.get('rto_fired', 0),
                     t.get('ooo_queued', 0)))
            for k in need_counters:
                check(fault_sum(t, k) > 0, 'faults %s: no packet counted as %s: %r'
                      % (spec, k, {k: v for k, v in t.items() if k.startswith('fault_')}))
            if need_rexmit:
                check(rexmit > 0, 'no retransmission counted with faults %s' % spec)
            if need_ooo:
                check(t.get('ooo_queued', 0) > 0, 'faults %s: no segment counted in '
                      'ooo_queued (the out-of-order queue was not exercised)' % spec)
        else:
            print(line)
        srv.check_alive()


def main():
    be = dpdk_env.backend()
    if be == 'kernel':
        raise TestSkip('needs the namespaces: run through dpdk_run.py '
                       '(meson test --suite e2e-dpdk)')
    seed = int(os.environ.get('DPCACHE_SEED', '1'))
    client_rto_min()
    if be != 'dpdk':
        phase(be, None, seed, [], False, False)
        return
    for spec, counters, rexmit, ooo in PHASES:
        phase(be, spec, seed, counters, rexmit, ooo)


if __name__ == '__main__':
    run(main)
