"""ZooKeeper stopped for five seconds under load (issue 4, section 5).

Three nodes serve pymemcache load (two workers per node) throughout.
ZooKeeper is stopped for 5 s (longer than the 1.5 s session timeout) and
started again on the same port and data dir.  Then:
  - the load saw no error, timeout, hang, miss or stale read at any time:
    nodes keep serving with the map they have;
  - every node reports 'stats cluster' zk_state connected again, and is
    registered in ROOT/nodes;
  - the map is stable with the three nodes (a node whose session expired
    re-registers; if the leader saw it gone longer than the grace it may
    have been removed and added back: allowed, it ends stable);
  - dpcachectl still drives the cluster: 'weight n1 2' ends in a stable
    map with n1 at weight 2, and a --standby node added with 'add n4'
    ends active; the load keeps running through both moves;
  - every acknowledged key reads back its latest value.
"""

import time

import cluster_env as ce
from cluster_env import check, log, summarize

NKEYS = 6000
DOWN_S = 5.0


def test():
    c = ce.new_cluster('zkdown')
    c.start(3)
    nodes = [c.nodes[i] for i in ('n1', 'n2', 'n3')]
    rec = ce.MapRecorder(c)
    rec.start()
    load = ce.Load(nodes, NKEYS, per_node=2)
    load.fill()
    load.start()
    time.sleep(1.0)

    c.zk.stop()
    t_stop = ce.now()
    time.sleep(1.0)
    mid = [e for e in load.events()]
    states = {n.id: n.cstats().get('zk_state') for n in nodes}
    log('zk_state with ZooKeeper down: %s' % states)
    check(all(s != 'connected' for s in states.values()),
          'a node claims zk_state connected while ZooKeeper is down: %s' % states)
    time.sleep(max(0.0, DOWN_S - (ce.now() - t_stop)))
    ops_down = load.ops()
    c.zk.start()
    t_up = ce.now()
    check(not mid, 'errors while ZooKeeper was down: %s' % summarize(mid))

    ce.wait_for(lambda: all(n.cstats().get('zk_state') == 'connected' for n in nodes),
                30, 'zk_state connected on every node')
    log('all nodes connected %.1fs after ZooKeeper restarted' % (ce.now() - t_up))
    ce.wait_for(lambda: c.registered() == ['n1', 'n2', 'n3'], 30,
                'n1..n3 registered again')
    c.wait_stable(['n1', 'n2', 'n3'], timeout=60)

    # The control plane works again: a weight change and an add.
    c.ctl('weight', 'n1', '2', timeout=90)
    m = c.wait_map(lambda m: c.is_stable(m) and any(
        x['id'] == 'n1' and int(x['weight']) == 2 for x in m['nodes']), 90,
        'a stable map with n1 at weight 2')
    check(c.active_ids(m) == ['n1', 'n2', 'n3'], 'active after weight: %s' % m)
    c.add_node('n4', standby=True)
    ce.wait_for(lambda: 'n4' in c.registered(), 20, 'n4 registered')
    time.sleep(0.5)
    check('n4' not in c.active_ids(c.read_map()), 'a --standby node joined on its own')
    c.ctl('add', 'n4', timeout=90)
    c.wait_stable(['n1', 'n2', 'n3', 'n4'], timeout=90)
    time.sleep(1.0)
    load.stop()
    rec.stop()
    log('maps: %s' % ' '.join(rec.epochs()))
    c.check_alive('after ZooKeeper came back')

    events = load.events()
    problems = ce.verify([c.nodes[i] for i in ('n1', 'n2', 'n3', 'n4')],
                         load.acked(), load.unsure())
    ce.check_all((not events, 'the load saw errors: %s' % summarize(events)),
                 (not problems, 'read-back: %s' % summarize(problems)))
    check(load.ops() > ops_down, 'the load made no progress after ZooKeeper came back')
    log('%d ops, no errors' % load.ops())


if __name__ == '__main__':
    ce.main(test)
