"""The admin endpoint (--admin) of real nodes (issue 4, section 4).

Two cluster nodes serve some forwarded traffic; then each node's
GET /metrics must be valid Prometheus text exposition with the 'stats'
counters (matching what 'stats' says), the cluster's routing counters and
map/migration state, and per-peer series; /healthz answers ok; other paths
404. A single node (no --cluster) serves /metrics too, without cluster
series.
"""

import http.client
import re
import subprocess

import cluster_env as ce
from cluster_env import check, log

# One sample line: name{labels} value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def scrape(port, path='/metrics'):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    conn.request('GET', path)
    r = conn.getresponse()
    body = r.read().decode()
    ctype = r.getheader('Content-Type', '')
    conn.close()
    return r.status, ctype, body


def parse(body):
    """{(name, labels): value}; checks every line's syntax and that each
    series name has at most one TYPE."""
    samples, types = {}, {}
    for line in body.splitlines():
        if not line:
            continue
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ', 3)
            check(name not in types or types[name] == kind,
                  'two TYPEs for %s' % name)
            types[name] = kind
            continue
        if line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        check(m is not None, 'not a Prometheus sample line: %r' % line)
        samples[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return samples, types


def value(samples, name, labels=''):
    check((name, labels) in samples, 'no series %s%s in /metrics' % (name, labels))
    return samples[(name, labels)]


def test():
    c = ce.new_cluster('admin')
    c.start(2)
    n1, n2 = c.nodes['n1'], c.nodes['n2']

    # Traffic through n1 only: about half of it is forwarded to n2.
    cl = n1.client()
    for i in range(400):
        cl.set('adm:%d' % i, b'v%d' % i)
    for i in range(400):
        check(cl.get('adm:%d' % i) == b'v%d' % i, 'read back adm:%d' % i)
    cl.close()

    status, ctype, body = scrape(n1.admin_port)
    check(status == 200, '/metrics status %d' % status)
    check(ctype.startswith('text/plain'), '/metrics content type %r' % ctype)
    samples, types = parse(body)
    st = n1.stats()
    cs = n1.cstats()
    log('%d series from n1' % len(samples))

    # 'stats' counters, as counters where cumulative. No traffic between the
    # scrape and 'stats' (neither counts as a get), so they agree. n1 ran
    # about half of the gets itself; the rest went to n2.
    check(value(samples, 'dpcache_cmd_get') == st['cmd_get'] > 100,
          'cmd_get on /metrics (%s) against stats (%s)'
          % (value(samples, 'dpcache_cmd_get'), st['cmd_get']))
    check(types.get('dpcache_cmd_get') == 'counter', 'cmd_get is a counter')
    check(types.get('dpcache_curr_items') == 'gauge', 'curr_items is a gauge')
    # A scrape after our 'stats': counters only grow.
    check(value(samples, 'dpcache_cmd_set') <= st['cmd_set'] + 1,
          'cmd_set on /metrics (%s) against stats (%s)'
          % (value(samples, 'dpcache_cmd_set'), st['cmd_set']))
    # Cluster state and routing counters, and the peer n2.
    fwd = [v for (name, lab), v in samples.items()
           if name.startswith('dpcache_cluster_') and 'forwarded' in name]
    check(fwd and max(fwd) > 0, 'no forwarded counter above 0 on /metrics: %s'
          % sorted(k for k in samples if 'cluster' in k[0]))
    check(any('peer="n2"' in lab for (_, lab) in samples),
          'no series labelled peer="n2"')
    check(any(name.startswith('dpcache_cluster_map_epoch') and v == cs['map_epoch']
              for (name, _), v in samples.items()),
          'map_epoch on /metrics differs from stats cluster (%s)' % cs['map_epoch'])

    status, _, body = scrape(n1.admin_port, '/healthz')
    check(status == 200 and body.strip() == 'ok', '/healthz: %d %r' % (status, body))
    status, _, _ = scrape(n1.admin_port, '/nope')
    check(status == 404, '/nope answered %d' % status)

    # The other node's endpoint works too and counts what it served.
    status, _, body = scrape(n2.admin_port)
    samples2, _ = parse(body)
    check(status == 200 and value(samples2, 'dpcache_curr_items') > 0,
          'n2 /metrics curr_items')

    # A single node (no --cluster) with --admin: no cluster series.
    port, admin = ce.free_port(), ce.free_port()
    p = subprocess.Popen([c.dpcached, '-p', str(port), '-l', '127.0.0.1',
                          '-t', '1', '--admin=127.0.0.1:%d' % admin],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            try:
                scrape(admin, '/healthz')
                return True
            except OSError:
                return False
        ce.wait_for(up, 10, 'the single node admin endpoint')
        status, _, body = scrape(admin)
        samples3, _ = parse(body)
        check(status == 200 and ('dpcache_cmd_get', '') in samples3,
              'single node /metrics')
        check(not any(name.startswith('dpcache_cluster_') for (name, _) in samples3),
              'a single node shows cluster series')
        # A bad --admin is refused at start with a clear message.
        bad = subprocess.run([c.dpcached, '-p', str(ce.free_port()), '-l',
                              '127.0.0.1', '--admin=127.0.0.1:%d' % admin],
                             stderr=subprocess.PIPE, timeout=10)
        check(bad.returncode != 0 and b'--admin' in bad.stderr,
              'a taken --admin port: rc %d, %r' % (bad.returncode, bad.stderr))
    finally:
        p.terminate()
        p.wait(10)
    log('admin endpoints OK')


if __name__ == '__main__':
    ce.main(test)
