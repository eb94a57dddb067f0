"""Operator resharding under load with dpcachectl (issue 4, sections 3-4).

Three nodes stream at --migrate-rate=1 MB/s and hold 9,000 items of 2 KB
under steady pymemcache load (two workers per node) during the whole test:
  1. `dpcachectl --detach weight n1 3` returns while its migration is in
     flight; a second request then (`drain n2`) is rejected (exit 1, "in
     flight"); an unknown node is rejected (exit 1); `dpcachectl wait`
     returns when the migration is done, and the map is stable with n1 at
     weight 3;
  2. a --standby node n4 does not join on its own; `dpcachectl add n4` makes
     it active;
  3. `dpcachectl drain n2`: n2 ends standby in a stable map, keeps serving
     its clients (forwarding everything), and drops all its items;
  4. dpcachectl at an address where nothing listens fails with exit 3.
Throughout: no error, timeout, miss or stale read in the load; at the end
every acknowledged key reads back its latest value through every node, and
each node holds exactly the keys it owns.
"""

import time

import cluster_env as ce
from cluster_env import check, log, summarize

NKEYS = 9000
PAD = 2048


def test():
    c = ce.new_cluster('reshard')
    c.start(3, migrate_rate=1)
    nodes = [c.nodes[i] for i in ('n1', 'n2', 'n3')]
    rec = ce.MapRecorder(c)
    rec.start()
    load = ce.Load(nodes, NKEYS, per_node=2, pad=PAD)
    load.fill()
    load.start()
    time.sleep(1.0)

    # 1. A detached weight change, a conflicting request, an unknown node.
    c.ctl('--detach', 'weight', 'n1', '3', timeout=60)
    m = c.read_map()
    check(int(m.get('migration', 0)) > 0, 'no migration in flight after '
          '--detach weight returned: %s' % m)
    rc, out, err = c.ctl('drain', 'n2', timeout=60, check_rc=False)
    check(rc == 1 and 'flight' in (out + err),
          'drain during a migration: exit %d, %r %r (expected 1, "in flight")'
          % (rc, out, err))
    rc, out, err = c.ctl('weight', 'nosuch', '2', timeout=60, check_rc=False)
    check(rc == 1 and 'nosuch' in (out + err),
          'weight of an unknown node: exit %d, %r %r' % (rc, out, err))
    c.ctl('wait', timeout=120)
    m = c.read_map()
    check(c.is_stable(m), 'dpcachectl wait returned before the map was stable: %s' % m)
    check([int(x['weight']) for x in m['nodes'] if x['id'] == 'n1'] == [3],
          'n1 weight after the change: %s' % m)
    log('weight n1 3 done (epoch %s)' % m['epoch'])

    # 2. A standby node added by the operator.
    c.add_node('n4', standby=True, migrate_rate=1)
    ce.wait_for(lambda: 'n4' in c.registered(), 20, 'n4 registered')
    time.sleep(1.0)
    check('n4' not in c.active_ids(c.read_map()), 'a --standby node joined on its own')
    c.ctl('add', 'n4', timeout=120)
    c.wait_stable(['n1', 'n2', 'n3', 'n4'], timeout=60)

    # 3. Drain n2: it leaves the ring, keeps serving its clients.
    c.ctl('drain', 'n2', timeout=120)
    mf = c.wait_stable(['n1', 'n3', 'n4'], timeout=60)
    check([x['state'] for x in mf['nodes'] if x['id'] == 'n2'] == ['standby'],
          'n2 after drain: %s' % mf)
    time.sleep(1.0)
    load.stop()
    rec.stop()
    c.check_alive('after resharding')

    # 4. No ZooKeeper at the address: exit 3.
    rc, out, err = c.ctl('--timeout=2', 'status', timeout=30, check_rc=False,
                         zk='127.0.0.1:%d%s' % (ce.free_port(), c.root))
    check(rc == 3, 'dpcachectl with no ZooKeeper: exit %d (expected 3): %r' % (rc, err))

    all_nodes = [c.nodes[i] for i in ('n1', 'n2', 'n3', 'n4')]
    events = load.events()
    problems = ce.verify(all_nodes, load.acked(), load.unsure())
    ce.check_all(
        (not events, 'the load saw errors during resharding: %s' % summarize(events)),
        (not problems, 'read-back after resharding: %s' % summarize(problems)))

    owned = {n.id: 0 for n in all_nodes}
    for k in load.keys:
        owned[c.owner(mf, k)] += 1
    ce.wait_for(lambda: {n.id: n.stats()['curr_items'] for n in all_nodes} == owned, 30,
                'curr_items per node == keys owned %s' % owned)
    log('maps: %s' % ' '.join(rec.epochs()))


if __name__ == '__main__':
    ce.main(test)
