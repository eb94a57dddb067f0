"""SIGKILL the leader in the middle of a migration (issue 4, section 5).

Three nodes (sources stream at --migrate-rate=1 MB/s) hold 12,000 items of
4 KB; n4 joins, and about a second into the move the leader (the node of
the lowest ROOT/election child) is killed.  Clients are connected to the
two other old nodes.  Then:
  - another node becomes leader; the migration ends 'done' or
    'rolled_back' in ZooKeeper, and the map becomes stable with exactly the
    live nodes active (the dead leader removed after its grace; after a
    rollback n4 joins again on its own);
  - nothing acknowledged on live nodes is lost, precisely: a key is
    "exposed" when the dead leader L owned it in the map before the move
    (m0) or in the migration's map (nodes of mm).  An exposed key may have
    had its only copy on L when L died (as the old owner, as the owner of
    writes during the move, or as the source of a stream that had not sent
    it yet), so its acknowledged data may be lost.  Every other key lived
    only on live nodes from the first write on (stayed put, or streamed
    from a live source to live n4), so it must read back its latest
    acknowledged value, and its requests must never have failed.  An
    exposed key is still checked when its last acknowledged write came
    after the final stable map;
  - exposed keys saw only clean SERVER_ERROR replies and misses.
"""

import time

import cluster_env as ce
from cluster_env import check, log, summarize

NKEYS = 12000
PAD = 4096


def test():
    c = ce.new_cluster('leader')
    m0 = c.start(3, migrate_rate=1)
    leader = ce.wait_for(c.leader_id, 20, 'a leader')
    others = [c.nodes[i] for i in ('n1', 'n2', 'n3') if i != leader]
    log('leader is %s' % leader)
    rec = ce.MapRecorder(c)
    rec.start()

    load = ce.Load(others, NKEYS, per_node=2, pad=PAD)
    load.fill()
    check(not load.events(), 'errors while filling: %s' % summarize(load.events()))
    load.start()
    time.sleep(1.0)

    c.add_node('n4', migrate_rate=1)
    mm = c.wait_map(lambda m: int(m.get('migration', 0)) > 0, 30,
                    'the migration that adds n4')
    time.sleep(1.0)
    now_map = c.read_map()
    check(int(now_map.get('migration', 0)) == int(mm['migration']),
          'the migration ended within a second; the test needs it in flight '
          '(map %s)' % now_map)
    t_kill = ce.now()
    c.nodes[leader].kill9()

    new_leader = ce.wait_for(lambda: (lambda x: x if x and x != leader else None)(
        c.leader_id()), 20, 'a new leader after %s died' % leader)
    log('new leader %s, %.2fs after the kill' % (new_leader, ce.now() - t_kill))
    live_ids = sorted([n.id for n in others] + ['n4'])
    c.wait_stable(live_ids, timeout=120)
    t_final = ce.now()
    time.sleep(2.0)
    load.stop()
    rec.stop()
    c.check_alive('after the leader died')

    mrec, srcs = c.migration(int(mm['migration']))
    check(mrec is not None and mrec.get('state') in ('done', 'rolled_back'),
          'migration %s record after the leader died: %s' % (mm['migration'], mrec))
    log('migration %s ended %s; maps: %s' % (mm['migration'], mrec.get('state'),
                                            ' '.join(rec.epochs())))

    def exposed(k):
        return c.owner(m0, k) == leader or c.owner(mm, k) == leader

    acked, unsure, last = load.acked(), load.unsure(), load.last_ack()
    keys = [k for k in acked if not exposed(k) or last[k] > t_final]
    nexp = sum(1 for k in load.keys if exposed(k))
    log('%d exposed keys, %d keys to read back' % (nexp, len(keys)))
    check(len(keys) > NKEYS // 2, 'too few keys to check: %d' % len(keys))
    problems = ce.verify(others + [c.nodes['n4']], acked, unsure, keys)

    events = load.events()
    bad = [e for e in events if not exposed(e.key)]
    unclean = [e for e in events if e.kind not in ('server_error', 'miss')]
    ce.check_all(
        (not bad, 'keys never owned by the dead leader saw errors: %s' % summarize(bad)),
        (not unclean, 'exposed keys saw more than SERVER_ERROR or a miss: %s'
         % summarize(unclean)),
        (not problems, 'read-back after the leader died: %s' % summarize(problems)))


if __name__ == '__main__':
    ce.main(test)
