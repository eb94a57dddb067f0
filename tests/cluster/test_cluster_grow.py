"""A fourth node joins a three-node cluster under load (issue 4, section 5).

Three nodes, 20,000 keys written through all of them (any node accepts any
key), then steady pymemcache load (two workers per node, each owning its
keys) while n4 starts and joins on its own.  When the map is stable with
four nodes:
  - the load saw no error, timeout, hang, miss or stale read at all;
  - every acknowledged key reads back its latest value through every node;
  - the keys whose ketama owner changed (computed from the two maps with
    tests/cluster/ketama.py, libmemcached's algorithm) are 22.5..27.5% of
    them (ideal 1/4) and all went to n4; each node ends holding exactly the
    keys it owns (the old owners dropped their copies);
  - stats cluster: forwarded > 0, pulls > 0 on n4, dropped_after_migration
    > 0 on the old owners, the migration's progress records are done.
The sources stream at --migrate-rate=1 (MB/s) and items are 2 KB, so the
move lasts a few seconds and gets of moving keys meet n4 before the stream
delivers them (pull on miss).
"""

import time

import cluster_env as ce
from cluster_env import check, log, summarize

NKEYS = 20000
PAD = 2048


def test():
    c = ce.new_cluster('grow')
    m0 = c.start(3, migrate_rate=1)
    n1, n2, n3 = (c.nodes[i] for i in ('n1', 'n2', 'n3'))
    rec = ce.MapRecorder(c)
    rec.start()

    load = ce.Load([n1, n2, n3], NKEYS, per_node=2, pad=PAD)
    load.fill()
    check(not load.events(), 'errors while filling: %s' % summarize(load.events()))
    before = {n.id: n.cstats() for n in (n1, n2, n3)}
    load.start()
    time.sleep(2.0)

    # n4's port is chosen so that its ketama share is 1/4 +- 1%: with 160
    # points per server the share scatters over 0.20..0.30 with the address,
    # and the moved fraction is checked against the ideal 1/4 below.
    port = c.port_for_share(0.24, 0.26)
    t_add = ce.now()
    c.add_node('n4', migrate_rate=1, port=port)
    mf = c.wait_stable(['n1', 'n2', 'n3', 'n4'], timeout=120)
    t_done = ce.now()
    log('migration finished %.1fs after n4 started' % (t_done - t_add))
    time.sleep(2.0)
    load.stop()
    c.check_alive('under load')


    # The migration map: prev = the three-node ring, nodes = with n4.
    t_mig, mm = rec.first(lambda m: int(m.get('migration', 0)) > 0)
    rec.stop()
    check(mm is not None, 'no map with a migration in flight was seen (maps: %s)'
          % rec.epochs())
    check(c.active_ids(mm, 'prev') == ['n1', 'n2', 'n3']
          and c.active_ids(mm) == ['n1', 'n2', 'n3', 'n4'],
          'migration map: prev %s nodes %s' % (c.active_ids(mm, 'prev'), c.active_ids(mm)))

    # Every acknowledged key, through every node.
    acked, unsure = load.acked(), load.unsure()
    check(len(acked) == NKEYS, 'only %d of %d keys were ever acknowledged'
          % (len(acked), NKEYS))
    nodes = [c.nodes[i] for i in ('n1', 'n2', 'n3', 'n4')]
    problems = ce.verify(nodes, acked, unsure)
    events = load.events()
    ce.check_all(
        (not events, 'the load saw errors, hangs or wrong reads: %s' % summarize(events)),
        (not problems, 'read-back after the move: %s' % summarize(problems)))

    # Which keys moved: the real ketama owners before and after.
    moved = [k for k in load.keys if c.owner(m0, k) != c.owner(mf, k)]
    frac = len(moved) / NKEYS
    log('keys moved: %d of %d (%.4f, ideal 0.25)' % (len(moved), NKEYS, frac))
    check(0.225 <= frac <= 0.275, 'moved fraction %.4f is not within 10%% of 1/4' % frac)
    # Exactly n4's arcs moved: the fraction matches its share of the hash
    # space up to the sampling error of 20,000 keys (sd ~0.003).
    ring, ids = ce.ketama.map_ring(mf['nodes'])
    share = ring.share(ids.index('n4'))
    check(abs(frac - share) <= 0.015, 'moved fraction %.4f, n4 owns %.4f of the ring'
          % (frac, share))
    wrong = [k for k in moved if c.owner(mf, k) != 'n4']
    check(not wrong, 'keys moved between old nodes: %s' % summarize(wrong))

    # Where the items are: every node ends with exactly the keys it owns
    # (n4 got its keys; the old owners drop theirs in the background).
    owned = {n.id: 0 for n in nodes}
    for k in load.keys:
        owned[c.owner(mf, k)] += 1

    def settled():
        have = {n.id: n.stats()['curr_items'] for n in nodes}
        return have if have == owned else None
    try:
        ce.wait_for(settled, 30, 'curr_items per node == keys owned %s' % owned)
    except ce.TestFailure as e:
        raise ce.TestFailure('%s; have %s' % (
            e, {n.id: n.stats()['curr_items'] for n in nodes}))

    after = {n.id: n.cstats() for n in nodes}
    fwd = sum(after[i]['forwarded'] - before.get(i, {}).get('forwarded', 0) for i in after)
    check(fwd > 0, 'no forwarded requests counted (stats cluster: %s)' % after)
    check(after['n4']['pulls'] > 0, 'n4 pulled nothing during the move: %s' % after['n4'])
    for i in ('n1', 'n2', 'n3'):
        check(after[i]['dropped_after_migration'] > 0,
              '%s dropped nothing after the migration: %s' % (i, after[i]))
        check(after[i]['migration'] == 0 and after[i]['map_epoch'] == mf['epoch'],
              '%s has not applied the final map (epoch %s): %s' % (i, mf['epoch'], after[i]))
    check(sum(after[i]['forward_errors'] for i in after) == 0,
          'forward errors: %s' % {i: after[i]['forward_errors'] for i in after})

    # ZooKeeper's record of the migration: done, each source done, and the
    # sources together saw exactly the moving keys (all written before it).
    mrec, srcs = c.migration(int(mm['migration']))
    check(mrec is not None and mrec.get('state') == 'done',
          'migration %s record: %s' % (mm['migration'], mrec))
    # n1..n3 are the sources; a record from n4 (it has nothing to send) may
    # exist and must then be empty.
    check({'n1', 'n2', 'n3'} <= set(srcs) and all(s.get('done') for s in srcs.values())
          and all(int(s.get('keys_total', 0)) == 0 for i, s in srcs.items()
                  if i not in ('n1', 'n2', 'n3')),
          'source progress records: %s' % srcs)
    total = sum(int(s.get('keys_total', -1)) for s in srcs.values())
    check(total == len(moved), 'sources counted %d moving keys, ketama says %d (%s)'
          % (total, len(moved), srcs))
    log('load: %d ops; pulls on n4 %d; dropped %s' % (
        load.ops(), after['n4']['pulls'],
        {i: after[i]['dropped_after_migration'] for i in ('n1', 'n2', 'n3')}))


if __name__ == '__main__':
    ce.main(test)
