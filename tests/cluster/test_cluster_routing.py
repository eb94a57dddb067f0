"""Routing: ketama compatibility and forwarding for every protocol (issue 4,
sections 2 and 5).

  1. tests/cluster/ketama.py is checked against libmemcached itself (pylibmc
     over stock memcached), so the owners below are libmemcached's.
  2. Three nodes, n2 with --weight=2.  pylibmc with ketama_weighted and the
     server list printed by `dpcachectl map --format=libmemcached`: 5000 sets
     and gets, all correct, and the sum of 'forwarded' over the nodes does
     not move (every request went straight to its owner).
  3. Everything sent to n1 only, keys owned by n2 and n3 (and some by n1):
     text (pymemcache: storage commands, cas, incr/decr, touch, delete,
     multi-get across owners), meta (raw socket: ms/mg/md/ma with the q and
     O flags, pipelined, ended by mn; the forwarded transcript must equal the
     local one byte for byte, keys aside) and binary (pylibmc binary=True,
     no ketama): every answer right, and n1's 'forwarded' grows.
  4. n3 is SIGKILLed: through n1, its keys answer SERVER_ERROR (text, meta)
     in under 2 s, never hang; once the map drops n3 they work again.
"""

import re
import time

import pylibmc

import cluster_env as ce
from cluster_env import check, fail, log

NROUTE = 5000


def keys_owned(c, m, owner, n, prefix):
    out, i = [], 0
    while len(out) < n:
        k = '%s%05d' % (prefix, i)
        if c.owner(m, k) == owner:
            out.append(k)
        i += 1
    return out


def fwd_total(nodes):
    return sum(n.cstats()['forwarded'] for n in nodes)


def libmemcached_servers(c, m):
    """`dpcachectl map --format=libmemcached` parsed into (addr, weight),
    checked against the map's active nodes."""
    _, out, _ = c.ctl('map', '--format=libmemcached')
    found = re.findall(r'(\d+\.\d+\.\d+\.\d+):(\d+)(?:(?::|/\?)(\d+))?', out)
    servers = [('%s:%s' % (h, p), int(w) if w else 1) for h, p, w in found]
    want = sorted((x['addr'], int(x['weight'])) for x in m['nodes']
                  if x.get('state') == 'active' and int(x['weight']) > 0)
    check(sorted(servers) == want, 'dpcachectl map --format=libmemcached printed %r;'
          ' the map has %r' % (out, want))
    return servers


def check_pylibmc_ketama(c, m, nodes):
    servers = libmemcached_servers(c, m)
    specs = ['%s:%d' % (a, w) for a, w in servers]
    log('pylibmc servers: %s' % specs)
    mc = pylibmc.Client(specs, behaviors={'ketama_weighted': True})
    before = fwd_total(nodes)
    for i in range(NROUTE):
        k = 'route%05d' % i
        check(mc.set(k, 'v%d' % i), 'pylibmc set %s failed' % k)
    for i in range(NROUTE):
        k = 'route%05d' % i
        got = mc.get(k)
        check(got == b'v%d' % i or got == 'v%d' % i, 'pylibmc get %s: %r' % (k, got))
    mc.disconnect_all()
    after = fwd_total(nodes)
    check(after == before, 'pylibmc with the cluster\'s server list caused %d forwarded '
          'requests (ketama differs)' % (after - before))
    # And the items really are where ketama.py says.
    for n in nodes:
        owned = sum(1 for i in range(NROUTE) if c.owner(m, 'route%05d' % i) == n.id)
        have = n.stats()['curr_items']
        check(have == owned, '%s holds %d route keys, owns %d' % (n.id, have, owned))
    log('pylibmc ketama: %d keys, 0 forwarded' % NROUTE)


def check_text(c, m, n1):
    remote = keys_owned(c, m, 'n2', 20, 'tx') + keys_owned(c, m, 'n3', 20, 'ty')
    local = keys_owned(c, m, 'n1', 10, 'tz')
    cl = n1.client()
    before = n1.cstats()['forwarded']
    for k in remote + local:
        check(cl.set(k, b'a-' + k.encode()) is True, 'text set %s' % k)
    for k in remote + local:
        check(cl.get(k) == b'a-' + k.encode(), 'text get %s' % k)
    got = cl.get_many(remote + local + ['tmissing1', 'tmissing2'])
    check(got == {k: b'a-' + k.encode() for k in remote + local},
          'text multi-get across owners: %r' % got)
    for k in remote[:10]:
        check(cl.add(k, b'x') is False, 'text add of an existing %s stored' % k)
        check(cl.replace(k, b'r') is True, 'text replace %s' % k)
        check(cl.append(k, b'-end') is True and cl.prepend(k, b'start-') is True,
              'append/prepend %s' % k)
        check(cl.get(k) == b'start-r-end', 'after append/prepend %s: %r' % (k, cl.get(k)))
        v, cas = cl.gets(k)
        check(v == b'start-r-end' and cas, 'gets %s: %r %r' % (k, v, cas))
        check(cl.cas(k, b'c2', cas) is True, 'cas with the right unique %s' % k)
        check(cl.cas(k, b'c3', cas) is False, 'cas with a stale unique %s stored' % k)
        check(cl.get(k) == b'c2', 'after cas %s' % k)
        check(cl.touch(k, 100) is True, 'touch %s' % k)
        check(cl.delete(k) is True, 'delete %s' % k)
        check(cl.get(k) is None, 'get after delete %s' % k)
        check(cl.delete(k) is False, 'second delete %s' % k)
        check(cl.replace(k, b'x') is False, 'replace of a missing %s stored' % k)
        check(cl.add(k, b'7') is True, 'add %s' % k)
        check(cl.incr(k, 5) == 12 and cl.decr(k, 20) == 0, 'incr/decr %s' % k)
        check(cl.incr('nx' + k, 1) is None, 'incr of a missing key')
    for k in remote[10:]:
        check(cl.set(k, b'q', noreply=True) is True, 'noreply set %s' % k)
    check(cl.get_many(remote[10:]) == {k: b'q' for k in remote[10:]}, 'after noreply sets')
    cl.close()
    fwd = n1.cstats()['forwarded'] - before
    check(fwd > 0, 'text traffic for other nodes\' keys was not forwarded')
    log('text: all right, %d forwarded' % fwd)


def meta_script(k, cnt):
    """A pipelined meta conversation; quiet and opaque flags included."""
    miss = k + 'nope'
    return ('ms %(k)s 5 T0 F5\r\nhello\r\n'
            'mg %(k)s v f\r\n'
            'mg %(k)s s v t O123\r\n'
            'mg %(k)s k v q\r\n'
            'mg %(m)s v q\r\n'
            'mg %(m)s v O7\r\n'
            'ms %(k)s 3 MA\r\nxyz\r\n'
            'mg %(k)s v\r\n'
            'ms %(k)s 2 ME\r\nno\r\n'
            'ms %(c)s 1\r\n5\r\n'
            'ma %(c)s\r\n'
            'ma %(c)s v D10\r\n'
            'ma %(c)s MD v q\r\n'
            'ma %(c)s v\r\n'
            'ma %(m)s O9\r\n'
            'ma %(m)s q\r\n'
            'md %(k)s q\r\n'
            'md %(k)s O5\r\n'
            'mg %(k)s v\r\n'
            'ms %(k)s 2 q\r\nab\r\n'
            'mg %(k)s v k\r\n'
            'ms %(k)s 2 MR q\r\nzz\r\n'
            'mg %(k)s v\r\n'
            'mn\r\n' % {'k': k, 'm': miss, 'c': cnt})


def meta_run(node, k, cnt):
    with node.connect() as s:
        s.send(meta_script(k, cnt))
        out = s.read_until(b'MN\r\n', timeout=5.0).decode()
    return out.replace(cnt, '<C>').replace(k + 'nope', '<M>').replace(k, '<K>')


def check_meta(c, m, n1):
    before = n1.cstats()['forwarded']
    lk, lc = keys_owned(c, m, 'n1', 2, 'ml')
    ref = meta_run(n1, lk, lc)
    # The conversation as memcached 1.6 answers it (dpcached locally).
    check(ref.startswith('HD\r\nVA 5 f5\r\nhello\r\nVA 5 s5 t-1 O123\r\nhello\r\n'),
          'local meta conversation starts unexpectedly: %r' % ref[:120])
    check(ref.endswith('MN\r\n') and 'SERVER_ERROR' not in ref, 'local meta: %r' % ref)
    for owner in ('n2', 'n3'):
        rk, rc = keys_owned(c, m, owner, 2, 'm' + owner)
        got = meta_run(n1, rk, rc)
        check(got == ref, 'meta forwarded to %s differs from local:\nlocal:     %r\n'
              'forwarded: %r' % (owner, ref, got))
    fwd = n1.cstats()['forwarded'] - before
    check(fwd >= 2 * 20, 'meta requests forwarded: %d' % fwd)
    log('meta: forwarded transcripts equal the local one, %d forwarded' % fwd)


def check_binary(c, m, n1):
    remote = keys_owned(c, m, 'n2', 15, 'bx') + keys_owned(c, m, 'n3', 15, 'by')
    local = keys_owned(c, m, 'n1', 5, 'bz')
    before = n1.cstats()['forwarded']
    mc = pylibmc.Client([n1.addr], binary=True)
    for k in remote + local:
        check(mc.set(k, 'b-' + k), 'binary set %s' % k)
    got = mc.get_multi(remote + local + ['bmissing'])
    check(got == {k: 'b-' + k for k in remote + local}, 'binary multi-get: %r' % got)
    for k in remote[:10]:
        check(mc.get(k) == 'b-' + k, 'binary get %s' % k)
        check(not mc.add(k, 'x'), 'binary add of an existing %s stored' % k)
        check(mc.replace(k, 'r'), 'binary replace %s' % k)
        check(mc.append(k, '-e') and mc.prepend(k, 's-'), 'binary append/prepend %s' % k)
        check(mc.get(k) == 's-r-e', 'binary after append/prepend %s: %r' % (k, mc.get(k)))
        check(mc.delete(k), 'binary delete %s' % k)
        check(mc.get(k) is None, 'binary get after delete %s' % k)
        check(not mc.delete(k), 'binary second delete %s' % k)
        check(mc.set(k, 5), 'binary set int %s' % k)
        check(mc.incr(k, 3) == 8 and mc.decr(k, 2) == 6, 'binary incr/decr %s' % k)
        check(mc.touch(k, 100), 'binary touch %s' % k)
    check(mc.set_multi({k: 'm' for k in remote[10:]}) == [], 'binary set_multi')
    check(mc.get_multi(remote[10:]) == {k: 'm' for k in remote[10:]}, 'after set_multi')
    mc.disconnect_all()
    fwd = n1.cstats()['forwarded'] - before
    check(fwd > 0, 'binary traffic for other nodes\' keys was not forwarded')
    log('binary: all right, %d forwarded' % fwd)


def check_dead_owner(c, m, n1):
    dead = keys_owned(c, m, 'n3', 12, 'dd')
    c.nodes['n3'].kill9()
    t_kill = ce.now()
    errors = {'text': 0, 'meta': 0}
    with n1.connect(timeout=5.0) as s:
        for i, k in enumerate(dead):
            if ce.now() - t_kill > 2.5:
                break    # beyond this the map may drop n3 (session + grace = 3 s)
            kind = 'text' if i % 2 == 0 else 'meta'
            req = ('get %s\r\n' % k) if kind == 'text' else ('mg %s v\r\n' % k)
            t = time.monotonic()
            s.send(req)
            line = s.read_line(timeout=2.0).decode()
            dt = time.monotonic() - t
            check(dt < 2.0, '%s request for a dead owner\'s key took %.2fs' % (kind, dt))
            if line.startswith('SERVER_ERROR'):
                errors[kind] += 1
            else:
                check(n1.cstats()['map_epoch'] > m['epoch'],
                      '%s request for a dead owner\'s key answered %r' % (kind, line))
                break
            time.sleep(0.1)
    check(errors['text'] > 0 and errors['meta'] > 0,
          'no SERVER_ERROR seen for the dead owner\'s keys: %s' % errors)
    log('dead owner: %s SERVER_ERROR replies, each < 2 s' % errors)
    c.wait_stable(['n1', 'n2'], timeout=60)
    cl = n1.client()
    for k in dead:
        check(cl.set(k, b'back') is True and cl.get(k) == b'back',
              'key %s does not work after the map dropped n3' % k)
    cl.close()
    check(n1.cstats()['forward_errors'] > 0, 'forward_errors did not count the dead owner')


def test():
    ce.check_ketama_against_pylibmc()
    log('tests/cluster/ketama.py agrees with libmemcached')
    c = ce.new_cluster('routing')
    c.start_zk()
    c.add_node('n1')
    c.add_node('n2', weight=2)
    c.add_node('n3')
    m = c.wait_stable(['n1', 'n2', 'n3'], timeout=60)
    w2 = [x for x in m['nodes'] if x['id'] == 'n2']
    if not w2 or int(w2[0]['weight']) != 2:
        fail('n2 started with --weight=2 is in the map as %s' % w2)
    nodes = [c.nodes[i] for i in ('n1', 'n2', 'n3')]
    check_pylibmc_ketama(c, m, nodes)
    n1 = c.nodes['n1']
    check_text(c, m, n1)
    check_meta(c, m, n1)
    check_binary(c, m, n1)
    check_dead_owner(c, m, n1)
    c.check_alive()


if __name__ == '__main__':
    ce.main(test)
