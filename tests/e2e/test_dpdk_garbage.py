"""Garbage on the wire: the DPDK stack drops malformed frames and counts each
drop under its reason, answers what RFC 9293 and RFC 792 say it must answer,
and keeps serving.

From the client namespace an AF_PACKET socket on vcl0 sends, batch by batch,
frames to the server's MAC: random bytes, runts, bad IPv4 version, IHL and
total length, bad header checksum, fragments, unknown protocols, bad source
addresses, bad TCP/UDP/ICMP checksums, truncated L4 headers, UDP to ports we
do not serve, TCP with odd flag sets, segments for flows that do not exist,
and ICMP echo requests.  After each batch the test reads `stats dataplane`
and checks that the counter named for that kind of garbage grew by at least
the number of frames sent (every frame must be counted: silently lost
garbage hides bugs as well as a crash does).  Then a normal set/get.

It runs twice, once per PMD, because they differ in what reaches DPDK:
af_packet (the suite's default) lets the kernel reassemble IPv4 fragments
first (DPDK sets PACKET_FANOUT_FLAG_DEFRAG), so there a complete fragmented
UDP request must be answered and stray fragments never arrive; af_xdp hands
over frames exactly as sent, so there every fragment is a drop_ip_fragment.

DPCACHE_BACKEND=dpdk only (run through dpdk_run.py).  Under kernel-netns the
same frames go to the kernel backend, and only the replies and liveness are
checked (the kernel has no `stats dataplane`).
"""
import os
import random
import socket
import time

import dpdk_env
import rawframe as rf
from server import Server, TestSkip, check, fail, run

SRV_IP = dpdk_env.SERVER_IP
CLI_IP = dpdk_env.CLIENT_IP
SRV_MAC = dpdk_env.SERVER_MAC


def roundtrip(srv, key):
    with srv.connect() as c:
        c.send(b'set %s 0 0 5\r\nhello\r\nget %s\r\n' % (key, key))
        got = c.read_until(b'END\r\n')
    want = b'STORED\r\nVALUE %s 0 5\r\nhello\r\nEND\r\n' % key
    check(got == want, 'set/get %r: expected %r, got %r' % (key, want, got))


class Garbage:
    def __init__(self, raw, port, udp_port, pmd=None):
        self.raw = raw
        self.pmd = pmd
        self.mac = raw.mac
        self.port = port
        self.udp_port = udp_port
        self.rng = random.Random(int(os.environ.get('DPCACHE_SEED', '7')))

    def frame(self, ip_payload_or_l3, ethertype=rf.ETH_P_IP):
        return rf.eth(SRV_MAC, self.mac, ethertype, ip_payload_or_l3)

    def ip(self, proto, l4, **kw):
        return self.frame(rf.ipv4(CLI_IP, SRV_IP, proto, l4, **kw))

    def tcp(self, flags, seq=1000, ack=0, sport=None, dport=None, payload=b'', **kw):
        sport = sport or self.rng.randrange(20000, 30000)
        dport = dport or self.port
        return self.ip(rf.IPPROTO_TCP,
                       rf.tcp(CLI_IP, SRV_IP, sport, dport, seq, ack, flags, payload, **kw))

    def udp(self, dport, payload=b'\0\x01\0\0\0\x01\0\0get k\r\n', **kw):
        return self.ip(rf.IPPROTO_UDP, rf.udp(CLI_IP, SRV_IP, 40000, dport, payload, **kw))

    def fragmented_get(self, key, ident=4242):
        """A memcached UDP `get key` split into two IPv4 fragments
        (RFC 791: offsets in 8-byte units, MF on all but the last)."""
        dgram = rf.udp(CLI_IP, SRV_IP, 40001, self.udp_port,
                       b'\0\x09\0\0\0\x01\0\0get %s\r\n' % key)
        cut = 24
        return [self.frame(rf.ipv4(CLI_IP, SRV_IP, rf.IPPROTO_UDP, dgram[:cut],
                                   ident=ident, flags_frag=0x2000)),
                self.frame(rf.ipv4(CLI_IP, SRV_IP, rf.IPPROTO_UDP, dgram[cut:],
                                   ident=ident, flags_frag=cut // 8))]

    def rbytes(self, n):
        return bytes(self.rng.randrange(256) for _ in range(n))

    def batches(self):
        """(name, frames, counters): each frame must raise the sum of
        `counters` by one."""
        good_syn = self.tcp(rf.TCP_SYN, sport=29999)
        good_udp = self.udp(self.udp_port)
        good_icmp = self.ip(rf.IPPROTO_ICMP, rf.icmp_echo(1, 1, b'x' * 8))
        # (Linux refuses to send frames shorter than an Ethernet header, so
        # the shortest runts start at 14 bytes.)
        yield ('runt: IPv4 header cut at every length',
               [good_syn[:14 + n] for n in range(0, 20)],
               ['drop_runt', 'drop_ip_hdr_len', 'drop_ip_total_len'])
        yield ('other ethertypes (IPv6, VLAN, random)',
               [self.frame(self.rbytes(60), et) for et in (0x86dd, 0x8100, 0x88cc, 0x1234)],
               ['drop_ethertype'])
        yield ('random bytes after an IPv4 ethertype',
               [self.frame(self.rbytes(self.rng.randrange(20, 200))) for _ in range(50)],
               [c for c in COUNTERS if c.startswith('drop_')])
        yield ('not our IPv4 address',
               [rf.eth(SRV_MAC, self.mac, rf.ETH_P_IP,
                       rf.ipv4(CLI_IP, '198.18.0.%d' % i, rf.IPPROTO_UDP,
                               rf.udp(CLI_IP, '198.18.0.%d' % i, 1, self.udp_port, b'x')))
                for i in (3, 4, 255)], ['drop_not_for_us'])
        yield ('IPv4 version not 4',
               [self.ip(rf.IPPROTO_TCP, good_syn[34:], version=v) for v in (0, 5, 6, 15)],
               ['drop_ip_version'])
        yield ('IHL below 5 or beyond the frame',
               [self.ip(rf.IPPROTO_TCP, good_syn[34:], ihl=i) for i in (0, 1, 4, 15)],
               ['drop_ip_hdr_len'])
        yield ('total length beyond the frame or below the header',
               [self.ip(rf.IPPROTO_TCP, good_syn[34:], total_len=n)
                for n in (0, 19, 41, 1500, 65535)],
               ['drop_ip_total_len'])
        yield ('IPv4 header checksum wrong',
               [self.ip(rf.IPPROTO_TCP, good_syn[34:], cksum=c) for c in (0, 1, 0xffff, 0x1234)],
               ['drop_ip_cksum'])
        if self.pmd != 'af_packet':
            yield ('IPv4 fragments (MF set, or an offset)',
                   [self.ip(rf.IPPROTO_UDP, good_udp[34:], flags_frag=ff)
                    for ff in (0x2000, 0x0001, 0x2010, 0x1fff)]
                   + self.fragmented_get(b'k'),
                   ['drop_ip_fragment'])
        yield ('IPv4 protocols other than ICMP, TCP, UDP',
               [self.ip(p, self.rbytes(40)) for p in (0, 2, 41, 47, 50, 132, 255)],
               ['drop_ip_proto'])
        yield ('bad source addresses (broadcast, multicast, ours)',
               [rf.eth(SRV_MAC, self.mac, rf.ETH_P_IP,
                       rf.ipv4(src, SRV_IP, rf.IPPROTO_UDP,
                               rf.udp(src, SRV_IP, 1, self.udp_port, b'x')))
                for src in ('255.255.255.255', '224.0.0.1', '239.1.2.3', SRV_IP)],
               ['drop_ip_src'])
        yield ('TCP checksum wrong',
               [self.tcp(rf.TCP_SYN, bad_cksum=True) for _ in range(5)]
               + [self.tcp(rf.TCP_ACK | rf.TCP_PSH, payload=b'get k\r\n', bad_cksum=True)],
               ['drop_l4_cksum'])
        yield ('UDP checksum wrong',
               [self.udp(self.udp_port, bad_cksum=True) for _ in range(5)],
               ['drop_l4_cksum'])
        yield ('TCP header cut at every length (IPv4 consistent)',
               [self.ip(rf.IPPROTO_TCP, good_syn[34:34 + n]) for n in range(0, 20)],
               ['drop_l4_short', 'drop_runt'])
        yield ('TCP data offset beyond the segment',
               [self.tcp(rf.TCP_SYN, doff=d) for d in (0, 4, 6, 15)],
               ['drop_l4_short', 'bad_segments'])
        yield ('UDP header cut at every length (IPv4 consistent)',
               [self.ip(rf.IPPROTO_UDP, good_udp[34:34 + n]) for n in range(0, 8)],
               ['drop_l4_short', 'drop_runt'])
        yield ('UDP length field wrong',
               [self.udp(self.udp_port, length=n) for n in (0, 7, 200, 65535)],
               ['drop_l4_short', 'drop_l4_cksum'])
        yield ('UDP to ports we do not serve',
               [self.udp(p) for p in (1, 53, 11212, 65535) if p != self.udp_port],
               ['drop_udp_port'])
        yield ('ICMP checksum wrong or truncated',
               [self.ip(rf.IPPROTO_ICMP, rf.icmp_echo(1, 1, b'abc', bad_cksum=True)),
                self.ip(rf.IPPROTO_ICMP, good_icmp[34:34 + 3])],
               ['drop_icmp_bad'])
        yield ('ARP malformed or unsupported',
               [self.frame(rf.arp(1, self.mac, CLI_IP, '00:00:00:00:00:00', SRV_IP, htype=6),
                           rf.ETH_P_ARP),
                self.frame(rf.arp(1, self.mac, CLI_IP, '00:00:00:00:00:00', SRV_IP, hlen=8),
                           rf.ETH_P_ARP),
                self.frame(rf.arp(1, self.mac, CLI_IP, '00:00:00:00:00:00', SRV_IP)[:20],
                           rf.ETH_P_ARP)],
               ['drop_arp_bad', 'drop_runt'])


COUNTERS = ['drop_runt', 'drop_not_for_us', 'drop_ethertype', 'drop_arp_bad',
            'drop_ip_version', 'drop_ip_hdr_len', 'drop_ip_total_len', 'drop_ip_cksum',
            'drop_ip_fragment', 'drop_ip_proto', 'drop_ip_src', 'drop_icmp_bad',
            'drop_l4_cksum', 'drop_l4_short', 'drop_udp_port', 'bad_segments']


def totals(srv):
    st = srv.dataplane_stats()
    check('total' in st, '`stats dataplane` has no STAT total:... lines: %r' % st)
    return st['total']


def grown(before, after, counters):
    return sum(after.get(c, 0) - before.get(c, 0) for c in counters)


# Waits for something that must happen return as soon as it does, so they
# are long (a loaded 2-CPU machine); waits for something that must NOT
# happen (an answer to an RST) stay short.
REPLY_WAIT = 10.0


def settle(srv, before, counters, want, timeout=REPLY_WAIT):
    """Counters once `counters` grew by `want` or at the deadline.  (Our own
    stats connections add frames too, so rx_frames says nothing about
    whether the garbage has been processed yet.)"""
    deadline = time.monotonic() + timeout
    while True:
        now = totals(srv)
        if grown(before, now, counters) >= want or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def expect_rst(raw, sport, dport, want_seq, what):
    p = raw.wait_for(lambda p: p.proto == rf.IPPROTO_TCP and p.src == SRV_IP
                     and p.sport == dport and p.dport == sport, timeout=REPLY_WAIT)
    if p is None:
        return '%s: no reply (expected RST)' % what
    if not p.flags & rf.TCP_RST:
        return '%s: expected RST, got flags 0x%02x' % (what, p.flags)
    if want_seq is not None and p.seq != want_seq:
        return '%s: RST seq %d, expected SEG.ACK %d (RFC 9293 3.10.7.1)' % (what, p.seq, want_seq)
    if not p.l4_ok or not p.ip_ok:
        return '%s: RST with a bad checksum' % what
    return ''


def reply_checks(g, raw, errors):
    """The frames that deserve an answer."""
    rng = g.rng
    if g.pmd == 'af_packet':
        # The kernel reassembles before af_packet hands the datagram over.
        raw.drain()
        for f in g.fragmented_get(b'before'):
            raw.send(f)
        p = raw.wait_for(lambda p: p.proto == rf.IPPROTO_UDP and p.src == SRV_IP,
                         timeout=REPLY_WAIT)
        if p is None or b'VALUE before 0 5\r\nhello\r\nEND\r\n' not in p.frame:
            errors.append('af_packet: a fragmented UDP get (kernel-reassembled) got %r'
                          % (p and p.frame[42:]))
    # ICMP echo (RFC 792): same identifier, sequence and data, valid checksum.
    for size in (0, 56, 1000, 1472):
        ident, seq, data = rng.randrange(65536), rng.randrange(65536), g.rbytes(size)
        raw.drain()
        raw.send(g.ip(rf.IPPROTO_ICMP, rf.icmp_echo(ident, seq, data)))
        p = raw.wait_for(lambda p: p.proto == rf.IPPROTO_ICMP and p.src == SRV_IP
                         and getattr(p, 'type', None) == 0, timeout=REPLY_WAIT)
        if p is None:
            errors.append('ICMP echo with %d bytes: no reply' % size)
        elif (p.ident, p.icmp_seq, p.payload, p.l4_ok) != (ident, seq, data, True):
            errors.append('ICMP echo with %d bytes: reply id/seq/data/checksum differ' % size)
    # A segment with ACK for no connection: <SEQ=SEG.ACK><CTL=RST>, on the
    # service port (LISTEN) and on a closed one (RFC 9293 3.10.7.1, 3.10.7.2).
    for dport, what in ((g.port, 'ACK to an unknown flow'),
                        (g.port + 1 if g.port < 65535 else 1, 'ACK to a closed port'),
                        (g.port, 'data to an unknown flow')):
        sport = rng.randrange(30000, 40000)
        ack = rng.randrange(1, 1 << 32)
        payload = b'get k\r\n' if what.startswith('data') else b''
        raw.drain()
        raw.send(g.tcp(rf.TCP_ACK | (rf.TCP_PSH if payload else 0), seq=rng.randrange(1 << 32),
                       ack=ack, sport=sport, dport=dport, payload=payload))
        err = expect_rst(raw, sport, dport, ack, what)
        if err:
            errors.append(err)
    # Odd flag sets on the service port: whatever the answer, never a crash,
    # and an RST is never answered (RFC 9293 3.10.7.2: RST in LISTEN is
    # ignored).
    for flags, name in ((rf.TCP_SYN | rf.TCP_RST, 'SYN+RST'), (0xff, 'all flags'),
                        (rf.TCP_RST, 'RST'), (rf.TCP_RST | rf.TCP_ACK, 'RST+ACK')):
        sport = rng.randrange(40000, 50000)
        raw.drain()
        raw.send(g.tcp(flags, sport=sport, ack=rng.randrange(1 << 32)))
        p = raw.wait_for(lambda p: p.proto == rf.IPPROTO_TCP and p.src == SRV_IP
                         and p.dport == sport, timeout=0.5)
        if p is not None:
            errors.append('%s to the service port was answered (flags 0x%02x); '
                          'an RST must not be answered' % (name, p.flags))
    for flags, name in ((rf.TCP_SYN | rf.TCP_FIN, 'SYN+FIN'), (0, 'no flags'),
                        (rf.TCP_FIN, 'FIN alone'), (rf.TCP_URG | rf.TCP_PSH | rf.TCP_FIN, 'xmas')):
        raw.send(g.tcp(flags))


def main():
    be = dpdk_env.backend()
    if be == 'kernel':
        raise TestSkip('needs the namespaces: run through dpdk_run.py '
                       '(meson test --suite e2e-dpdk)')
    if be != 'dpdk':
        garbage(be, None)
        return
    for pmd in dpdk_env.PMDS:
        if not dpdk_env.pmd_path(pmd):
            print('NOTE: this DPDK has no %s PMD; that half is not run' % pmd)
            continue
        garbage(be, pmd)


def garbage(be, pmd):
    with Server(['-m', '64'], udp=True, pmd=pmd) as srv:
        roundtrip(srv, b'before')   # ARP both ways is settled now
        raw = rf.RawSocket(dpdk_env.CLIENT_IF)
        g = Garbage(raw, srv.port, srv.port, pmd)
        errors = []
        sent = 0
        for name, frames, counters in g.batches():
            before = totals(srv) if be == 'dpdk' else None
            for f in frames:
                raw.send(f)
            sent += len(frames)
            if be != 'dpdk':
                continue
            after = settle(srv, before, counters, len(frames))
            grew = grown(before, after, counters)
            missing = [c for c in counters if c not in after]
            if missing and len(missing) == len(counters):
                errors.append('%s: `stats dataplane` lacks %s' % (name, ', '.join(missing)))
            elif grew < len(frames):
                errors.append('%s: sent %d frames, %s grew by %d'
                              % (name, len(frames), '+'.join(counters), grew))
            srv.check_alive('after: ' + name)
        reply_checks(g, raw, errors)
        raw.close()
        srv.check_alive('after the garbage')
        roundtrip(srv, b'after')
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        u.sendto(b'\0\x07\0\0\0\x01\0\0get after\r\n', (srv.host, srv.port))
        try:
            data = u.recv(2048)
            if b'VALUE after 0 5\r\nhello\r\nEND\r\n' not in data:
                errors.append('UDP get after the garbage: got %r' % data)
        except socket.timeout:
            errors.append('UDP get after the garbage: no reply')
        u.close()
        if be == 'dpdk':
            t = totals(srv)
            print('%s: %d garbage frames; drops: %s' % (pmd, sent, ', '.join(
                '%s=%d' % (c, t[c]) for c in COUNTERS if t.get(c))))
        else:
            print('%d garbage frames (kernel-netns: replies and liveness only)' % sent)
        if errors:
            fail('%s%d problems:\n  ' % (pmd + ': ' if pmd else '', len(errors))
                 + '\n  '.join(errors))


if __name__ == '__main__':
    run(main)
