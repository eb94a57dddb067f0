"""Run one end-to-end test with the server in its own network namespace.

  /usr/bin/python3 dpdk_run.py TEST.py [ARGS...]

DPCACHE_BACKEND is dpdk (the default here) or kernel-netns (see dpdk_env.py).
The wrapper creates the namespaces NAME-dp and NAME-cl (NAME unique per
process, so tests run side by side), re-executes TEST.py inside NAME-cl with
DPCACHE_NETNS=NAME, and always removes both namespaces afterwards, first
killing by PID whatever still runs in them (only processes the test started
can be there: the namespaces are ours alone).

Meson's timeout sends SIGTERM to our process group and SIGKILL half a second
later, too soon for a clean stop of dpcached.  So the test runs in a session
of its own, and on SIGTERM a detached reaper (this file with --reap) takes
over the stop and the teardown while we exit at once.

Exit status: the test's own; 77 (skip) when the machine cannot do this at
all (not root, no network namespaces (tools/dpdk-netns.sh check), no
af_packet PMD (or af_xdp with DPCACHE_DPDK_PMD=af_xdp), or, for
DPCACHE_BACKEND=dpdk, meson found no DPDK at setup (DPCACHE_DPDK_FOUND=0)),
with the reason printed.
"""

import os
import signal
import subprocess
import sys
import time

import dpdk_env

SKIP = 77
PYTHON = '/usr/bin/python3'


def skip(msg):
    print('SKIP %s: %s' % (os.path.basename(sys.argv[-1]), msg))
    sys.exit(SKIP)


def die(msg):
    print('FAIL %s: %s' % (os.path.basename(sys.argv[-1]), msg))
    sys.exit(1)


def teardown(name, child_pid=None, grace=8.0):
    """Stop the test (it stops its servers), then anything left, then the
    namespaces."""
    if child_pid:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(child_pid, os.WNOHANG)
            except ChildProcessError:
                pid = child_pid   # not our child (reaper): poll for existence
                try:
                    os.kill(child_pid, 0)
                    pid = 0
                except ProcessLookupError:
                    pass
            if pid:
                break
            time.sleep(0.1)
    for ns in (name + '-cl', name + '-dp'):
        pids = dpdk_env.netns_pids(ns)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3.0
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if os.path.exists('/proc/%d' % p)]
                time.sleep(0.05)
            if not pids:
                break
    dpdk_env.netns_down(name)


def reap(name, child_pid):
    # Detached from meson's process group: nothing will SIGKILL us.
    # child_pid 0: no test was started (os.kill(0) would hit our group).
    if child_pid > 0:
        try:
            os.kill(child_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    teardown(name, child_pid or None)


def preflight(mode):
    if os.geteuid() != 0:
        skip('needs root for network namespaces (DPCACHE_BACKEND=%s)' % mode)
    p = subprocess.run(['sh', dpdk_env.NETNS_SH, 'check'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, check=False)
    if p.returncode == SKIP:
        skip(p.stdout.decode(errors='replace').strip())
    if p.returncode:
        die('tools/dpdk-netns.sh check: ' + p.stdout.decode(errors='replace'))
    if mode != 'dpdk':
        return
    # dpcached lists --net in --help whether or not DPDK is built in, so
    # meson's own finding decides (DPCACHE_DPDK_FOUND, set by meson.build).
    if os.environ.get('DPCACHE_DPDK_FOUND') == '0':
        skip('meson found no DPDK at setup (libdpdk-dev missing): dpcached '
             'was built without the DPDK backend')
    path = os.path.abspath(os.environ.get('DPCACHED', ''))
    if not os.access(path, os.X_OK):
        die('DPCACHED=%r is not an executable (was dpcached built?)' % path)
    try:
        which = dpdk_env.pmd()
    except ValueError as e:
        die(str(e))
    if not dpdk_env.pmd_path(which):
        skip('this DPDK has no %s PMD (librte_net_%s.so)' % (which, which))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == '--reap':
        reap(sys.argv[2], int(sys.argv[3]))
        return 0
    if len(sys.argv) < 2:
        print('usage: dpdk_run.py TEST.py [ARGS...]', file=sys.stderr)
        return 2
    mode = os.environ.get('DPCACHE_BACKEND') or 'dpdk'
    if mode not in ('dpdk', 'kernel-netns'):
        die('DPCACHE_BACKEND=%s: dpdk_run.py runs dpdk or kernel-netns' % mode)
    preflight(mode)

    name = 'e2e%d' % os.getpid()
    # The name is ours while this PID lives: a namespace of that name is a
    # leftover of a killed run that had our PID, and goes first.
    dpdk_env.netns_down(name)
    rc, out = dpdk_env.netns_up(name, mode)
    if rc == SKIP:
        skip(out.strip())
    if rc:
        dpdk_env.netns_down(name)
        die('tools/dpdk-netns.sh up %s failed (%d):\n%s' % (name, rc, out))

    env = dict(os.environ, DPCACHE_BACKEND=mode, DPCACHE_NETNS=name)
    if env.get('DPCACHED'):
        env['DPCACHED'] = os.path.abspath(env['DPCACHED'])   # the test runs in its own dir
    test = os.path.abspath(sys.argv[1])
    child = None
    state = {'reaped': False}

    def on_signal(signum, frame):
        if not state['reaped']:
            state['reaped'] = True
            # Child 0: the signal came before the test started (or while
            # Popen ran: a child that appears anyway is in NAME-cl, where
            # teardown finds and kills it); the namespaces still go.
            subprocess.Popen([PYTHON, os.path.abspath(__file__), '--reap', name,
                              str(child.pid if child is not None else 0)],
                             start_new_session=True, stdin=subprocess.DEVNULL)
        os._exit(1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        child = subprocess.Popen(['ip', 'netns', 'exec', name + '-cl', PYTHON, test]
                                 + sys.argv[2:], env=env, cwd=os.path.dirname(test),
                                 start_new_session=True)
        rc = child.wait()
    finally:
        if not state['reaped']:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            teardown(name, child.pid if child and child.returncode is None else None)
    return rc if rc >= 0 else 1


if __name__ == '__main__':
    sys.exit(main())
