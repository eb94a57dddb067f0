"""Where the end-to-end tests run: the kernel backend on loopback, or a
server namespace and a client namespace joined by a veth pair.

DPCACHE_BACKEND selects it:
  kernel (default)  dpcached -l 127.0.0.1 in the test's own namespace.
  dpdk              dpcached --net=dpdk in NAME-dp, polling vdp0 through
                    af_packet; the test itself runs in NAME-cl (dpdk_run.py
                    puts it there) and talks to 198.18.0.1.
  kernel-netns      the same two namespaces, but the kernel backend serves
                    198.18.0.1 on vdp0: a check of the plumbing that needs
                    no DPDK at all.
DPCACHE_NETNS is NAME (set by dpdk_run.py).

Tests address the server as Server.host (127.0.0.1, or 198.18.0.1 in the
namespace modes).  Stock memcached, started by test_compat in the client
namespace, stays on that namespace's own loopback.
"""

import os
import subprocess

SERVER_IP = '198.18.0.1'
CLIENT_IP = '198.18.0.2'
PREFIX = 24
SERVER_MAC = '02:00:00:00:00:01'
SERVER_IF = 'vdp0'
CLIENT_IF = 'vcl0'
NFT = '/usr/sbin/nft'

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS_SH = os.path.join(HERE, '..', '..', 'tools', 'dpdk-netns.sh')

BACKENDS = ('kernel', 'dpdk', 'kernel-netns')


def backend():
    b = os.environ.get('DPCACHE_BACKEND', 'kernel') or 'kernel'
    if b not in BACKENDS:
        raise ValueError('DPCACHE_BACKEND=%s: expected one of %s' % (b, ', '.join(BACKENDS)))
    return b


def netns_mode():
    return backend() != 'kernel'


def netns_name():
    return os.environ.get('DPCACHE_NETNS', '')


def server_ns():
    return netns_name() + '-dp'


def client_ns():
    return netns_name() + '-cl'


def _run(argv, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False, **kw)


def netns_up(name, mode):
    """Returns (rc, output) of tools/dpdk-netns.sh up; rc 77 = cannot here."""
    p = _run(['sh', NETNS_SH, 'up', name] + (['kernel'] if mode == 'kernel-netns' else []))
    return p.returncode, p.stdout.decode(errors='replace')


def netns_down(name):
    _run(['sh', NETNS_SH, 'down', name])


def netns_pids(ns):
    p = _run(['ip', 'netns', 'pids', ns])
    if p.returncode:
        return []
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def pmd_path(which='af_packet'):
    """Path of DPDK's PMD `which` (af_packet, af_xdp), or '' when this DPDK
    has none."""
    import glob
    lib = 'librte_net_%s.so*' % which
    for pat in ('/usr/lib/*/dpdk/pmds-*/' + lib, '/usr/lib/dpdk/pmds-*/' + lib,
                '/usr/local/lib/*/dpdk/pmds-*/' + lib):
        hits = glob.glob(pat)
        if hits:
            return hits[0]
    return ''


def cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


PMDS = ('af_packet', 'af_xdp')
VETH_QUEUES = 2     # tools/dpdk-netns.sh: ethtool -L ... rx 2 tx 2


def pmd():
    """DPCACHE_DPDK_PMD: af_packet (default) or af_xdp."""
    p = os.environ.get('DPCACHE_DPDK_PMD') or 'af_packet'
    if p not in PMDS:
        raise ValueError('DPCACHE_DPDK_PMD=%s: expected one of %s' % (p, ', '.join(PMDS)))
    return p


def set_queues(n):
    """Give both veth ends n RX/TX queues (from the client namespace).
    Returns '' or an error."""
    for argv in (['ip', 'netns', 'exec', server_ns(), 'ethtool', '-L', SERVER_IF],
                 ['ethtool', '-L', CLIENT_IF]):
        p = _run(argv + ['rx', str(n), 'tx', str(n)])
        # ethtool exits 80 when nothing changes (already n queues)
        if p.returncode not in (0, 80):
            return '%s: %s' % (' '.join(argv), p.stdout.decode(errors='replace'))
    return ''


def eal_args(workers, prefix, which=None):
    """EAL arguments for `workers` polling lcores on vdp0.

    Lcore 0 is EAL's main lcore (slow work only); lcores 1..workers poll.
    All of them float over every CPU we may use: the test machine has two,
    shared with the clients, so pinning a poller to a CPU would starve the
    client on it (--poll-idle-us lets the pollers sleep when idle).

    af_packet: one port with a queue pair per worker.  The kernel spreads
    flows over the queues (PACKET_FANOUT hash) and, because DPDK asks for
    PACKET_FANOUT_FLAG_DEFRAG, reassembles IPv4 fragments before DPDK sees
    them.  af_xdp: veth refuses queue_count > 1, so one port per veth queue,
    worker i polling port i (TESTBED.md); frames arrive exactly as sent.
    """
    which = which or pmd()
    cpuset = ','.join(str(c) for c in cpus())
    lcores = ','.join('%d@(%s)' % (i, cpuset) for i in range(workers + 1))
    args = ['--lcores=' + lcores, '--no-huge', '-m', '512', '--in-memory', '--no-pci',
            '--file-prefix=' + prefix, '--log-level=*:warning']
    if which == 'af_xdp':
        return args + ['--vdev=net_af_xdp%d,iface=%s,start_queue=%d,queue_count=1'
                       % (i, SERVER_IF, i) for i in range(min(workers, VETH_QUEUES))]
    return args + ['--vdev=net_af_packet0,iface=%s,qpairs=%d' % (SERVER_IF, workers)]
