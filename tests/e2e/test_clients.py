#!/usr/bin/python3
"""Real clients doing real work: pymemcache (text) and pylibmc (libmemcached,
text and binary).  Every result is checked against what the operation must
return; values are large, many, and binary-safe."""
import os
import random
import time

from server import Server, TestSkip, check, run

BIG = 1000 * 1000          # below -I 1m with item header room
N_KEYS = 1000


def val(i, n=None):
    """A value that encodes its key number, of length n."""
    head = b'v%d:' % i
    if n is None:
        n = 20 + i % 200
    return (head * (n // len(head) + 1))[:n]


def pymemcache_work(host, port):
    from pymemcache.client.base import Client

    c = Client((host, port), connect_timeout=5, timeout=10)  # noreply default
    cr = Client((host, port), connect_timeout=5, timeout=10, default_noreply=False)
    check(cr.version(), 'version is empty')
    check(cr.flush_all(noreply=False) is True, 'flush_all failed')

    # set/get, noreply default (pymemcache sends "noreply" on stores)
    check(c.set('k1', b'hello') is True, 'set noreply')
    check(c.get('k1') == b'hello', 'get after noreply set (same connection): %r' % c.get('k1'))
    check(cr.set('k2', b'\x00\r\n\xffbin', expire=0) is True, 'set k2')
    check(cr.get('k2') == b'\x00\r\n\xffbin', 'binary-safe value: %r' % cr.get('k2'))
    check(cr.get('missing') is None, 'get missing')
    check(cr.get('missing', default=b'd') == b'd', 'get default')

    # add / replace
    check(cr.add('k1', b'x') is False, 'add on existing key must fail')
    check(cr.add('k3', b'three') is True, 'add new key')
    check(cr.replace('nokey', b'x') is False, 'replace missing must fail')
    check(cr.replace('k3', b'THREE') is True, 'replace existing')
    check(cr.get('k3') == b'THREE', 'after replace: %r' % cr.get('k3'))
    check(cr.get('nokey') is None, 'replace must not create')

    # append / prepend
    check(cr.append('k3', b'-tail') is True, 'append')
    check(cr.prepend('k3', b'head-') is True, 'prepend')
    check(cr.get('k3') == b'head-THREE-tail', 'append/prepend: %r' % cr.get('k3'))
    check(cr.append('nokey', b'x') is False, 'append to missing')
    check(cr.prepend('nokey', b'x') is False, 'prepend to missing')
    c.append('k3', b'!')  # noreply
    check(c.get('k3') == b'head-THREE-tail!', 'noreply append: %r' % c.get('k3'))

    # incr / decr
    cr.set('n', b'10')
    check(cr.incr('n', 5) == 15, 'incr')
    check(cr.decr('n', 20) == 0, 'decr floors at 0')
    check(cr.incr('n', 2**64 - 1) == 2**64 - 1, 'incr to 2^64-1')
    check(cr.incr('n', 2) == 1, 'incr wraps at 2^64')
    check(cr.incr('nonum', 1) is None, 'incr on missing returns None')
    cr.set('big', b'18446744073709551615')
    check(cr.decr('big', 1) == 18446744073709551614, 'decr from max')
    c.incr('n', 10)   # noreply
    check(int(c.get('n')) == 11, 'noreply incr: %r' % c.get('n'))  # memcached pads in place with spaces

    # gets / cas
    v, cas = cr.gets('k1')
    check(v == b'hello' and cas is not None, 'gets: %r %r' % (v, cas))
    check(cr.cas('k1', b'world', cas) is True, 'cas with right token')
    check(cr.cas('k1', b'again', cas) is False, 'cas with stale token must fail')
    check(cr.cas('nokey', b'x', cas) is None, 'cas on missing must be NOT_FOUND')
    check(cr.get('k1') == b'world', 'after cas: %r' % cr.get('k1'))
    many = cr.gets_many(['k1', 'k3', 'missing'])
    check(set(many) == {'k1', 'k3'} and many['k1'][0] == b'world', 'gets_many: %r' % many)

    # touch / expiry
    check(cr.touch('k3', expire=1) is True, 'touch existing')
    check(cr.touch('nokey', expire=10) is False, 'touch missing')
    cr.set('short', b's', expire=1)
    cr.set('long', b'l', expire=100)
    cr.touch('long', expire=0)

    # delete
    check(cr.delete('k2') is True, 'delete')
    check(cr.delete('k2') is False, 'delete twice')
    check(cr.get('k2') is None, 'deleted key is gone')
    c.delete('k1')   # noreply
    check(c.get('k1') is None, 'noreply delete')

    # values near 1 MB
    rnd = random.Random(7)
    big = bytes(rnd.getrandbits(8) for _ in range(4096)) * (BIG // 4096) + b'z' * (BIG % 4096)
    check(cr.set('big1', big) is True, 'set 1 MB value')
    check(cr.get('big1') == big, '1 MB value read back wrong')
    c.set('big2', big[::-1])
    check(c.get('big2') == big[::-1], '1 MB noreply value read back wrong')
    check(cr.get_many(['big1', 'big2']) == {'big1': big, 'big2': big[::-1]},
          'get_many of two 1 MB values')

    # 1000 keys
    items = {'key:%d' % i: val(i) for i in range(N_KEYS)}
    check(cr.set_many(items) == [], 'set_many 1000 keys')
    keys = list(items)
    got = {}
    for j in range(0, N_KEYS, 100):
        got.update(cr.get_many(keys[j:j + 100]))
    check(got == items, 'get_many of 1000 keys: %d right of %d'
          % (sum(1 for k in items if got.get(k) == items[k]), N_KEYS))
    check(cr.delete_many(keys[:500]) is True, 'delete_many')
    left = cr.get_many(keys[:10] + keys[-10:])
    check(set(left) == set(keys[-10:]), 'after delete_many: %r' % sorted(left))

    # expiry checks (after ~2 s)
    time.sleep(2.2)
    check(cr.get('short') is None, 'item with 1 s TTL still there after 2.2 s')
    check(cr.get('k3') is None, 'item touched to 1 s still there after 2.2 s')
    check(cr.get('long') == b'l', 'item touched to 0 (no expiry) is gone')

    st = cr.stats()
    check(isinstance(st, dict) and st, 'stats returned nothing')
    check(cr.flush_all(noreply=False) is True, 'flush_all')
    check(cr.get('long') is None, 'flush_all left an item')
    c.close()
    cr.close()
    print('pymemcache: ok')


def pylibmc_work(host, port, binary):
    import pylibmc
    name = 'pylibmc(%s)' % ('binary' if binary else 'text')
    c = pylibmc.Client(['%s:%d' % (host, port)], binary=binary,
                       behaviors={'connect_timeout': 5000, 'receive_timeout': 10000000,
                                  'send_timeout': 10000000, 'cas': True})
    c.flush_all()
    p = 'b:' if binary else 't:'

    def refused(op):
        # libmemcached reports a refused store as False in text and as an
        # exception (NotFound / DataExists) in binary.
        try:
            return op() is False
        except (pylibmc.NotFound, pylibmc.DataExists):
            return True

    def k(s):
        return p + s

    check(c.set(k('a'), b'alpha') is True, name + ' set')
    check(c.get(k('a')) == b'alpha', name + ' get: %r' % c.get(k('a')))
    check(c.get(k('none')) is None, name + ' get missing')
    check(refused(lambda: c.add(k('a'), b'x')), name + ' add existing')
    check(c.add(k('b'), b'beta') is True, name + ' add new')
    check(refused(lambda: c.replace(k('none'), b'x')), name + ' replace missing')
    check(c.replace(k('b'), b'BETA') is True, name + ' replace')
    check(c.append(k('b'), b'>') is True and c.prepend(k('b'), b'<') is True,
          name + ' append/prepend')
    check(c.get(k('b')) == b'<BETA>', name + ' after append/prepend: %r' % c.get(k('b')))
    check(refused(lambda: c.append(k('none'), b'x')), name + ' append missing')

    c.set(k('n'), b'41')
    check(c.incr(k('n')) == 42, name + ' incr')
    check(c.incr(k('n'), 8) == 50, name + ' incr 8')
    check(c.decr(k('n'), 100) == 0, name + ' decr floor')
    try:
        c.incr(k('none'))
        check(False, name + ' incr on missing key must raise NotFound')
    except pylibmc.NotFound:
        pass
    c.set(k('txt'), b'abc')
    try:
        c.incr(k('txt'))
        check(False, name + ' incr on non-numeric must fail')
    except pylibmc.Error:
        pass
    check(c.get(k('txt')) == b'abc', name + ' failed incr changed the value')

    v, cas = c.gets(k('a'))
    check(v == b'alpha' and cas, name + ' gets: %r %r' % (v, cas))
    check(c.cas(k('a'), b'ALPHA', cas) is True, name + ' cas right token')
    check(refused(lambda: c.cas(k('a'), b'nope', cas)), name + ' cas stale token')
    check(c.get(k('a')) == b'ALPHA', name + ' after cas: %r' % c.get(k('a')))

    check(c.touch(k('a'), 100) is True, name + ' touch')
    check(refused(lambda: c.touch(k('none'), 100)), name + ' touch missing')

    check(c.delete(k('a')) is True, name + ' delete')
    check(refused(lambda: c.delete(k('a'))), name + ' delete again')
    check(c.get(k('a')) is None, name + ' deleted key still there')

    # multi-get, multi-set, multi-delete
    items = {k('m%d' % i): val(i) for i in range(N_KEYS)}
    check(c.set_multi(items) == [], name + ' set_multi')
    got = c.get_multi(list(items) + [k('none1'), k('none2')])
    check(got == items, name + ' get_multi of %d keys: %d right'
          % (N_KEYS, sum(1 for x in items if got.get(x) == items[x])))
    check(c.delete_multi(list(items)[:100]) is True, name + ' delete_multi')
    got = c.get_multi(list(items)[:200])
    check(set(got) == set(list(items)[100:200]), name + ' after delete_multi: %d keys' % len(got))

    # large values
    big = os.urandom(BIG)
    check(c.set(k('big'), big) is True, name + ' set 1 MB')
    check(c.get(k('big')) == big, name + ' 1 MB value read back wrong')
    mid = os.urandom(300 * 1000)
    c.set_multi({k('mid1'): mid, k('mid2'): mid[::-1]})
    check(c.get_multi([k('mid1'), k('big'), k('mid2')]) ==
          {k('mid1'): mid, k('big'): big, k('mid2'): mid[::-1]},
          name + ' get_multi of large values')
    st = c.get_stats()
    check(st and st[0][1], name + ' get_stats returned nothing')
    c.disconnect_all()
    print(name + ': ok')


def main():
    try:
        import pymemcache  # noqa: F401
        import pylibmc  # noqa: F401
    except ImportError as e:
        raise TestSkip('python3-pymemcache / python3-pylibmc missing: %s' % e)
    with Server(['-m', '128', '-t', '2']) as srv:
        pymemcache_work(srv.host, srv.port)
        srv.check_alive('after pymemcache')
        pylibmc_work(srv.host, srv.port, binary=False)
        srv.check_alive('after pylibmc text')
        pylibmc_work(srv.host, srv.port, binary=True)
        srv.check_alive('after pylibmc binary')


if __name__ == '__main__':
    run(main)
