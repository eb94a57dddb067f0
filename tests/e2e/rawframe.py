"""Hand-built Ethernet/IPv4/TCP/UDP/ICMP frames and an AF_PACKET socket,
for tests that must put on the wire what no well-behaved stack would send.

Only what the DPDK tests need: headers as RFC 791 (IPv4), RFC 9293 (TCP),
RFC 768 (UDP) and RFC 792 (ICMP) lay them out, every field overridable so a
test can break exactly one thing at a time.
"""

import select
import socket
import struct
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)

IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(':'))


def ip_bytes(ip):
    return socket.inet_aton(ip)


def csum(data):
    """The Internet checksum (RFC 1071): one's complement of the one's
    complement sum of 16-bit words."""
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(dst, src, ethertype, payload):
    return mac_bytes(dst) + mac_bytes(src) + struct.pack('!H', ethertype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=1, flags_frag=0x4000,
         ihl=5, version=4, total_len=None, cksum=None, options=b''):
    """flags_frag: the 16-bit flags + fragment offset word (0x4000 = DF)."""
    if total_len is None:
        total_len = ihl * 4 + len(payload)
    hdr = struct.pack('!BBHHHBBH4s4s', (version << 4) | (ihl & 0xf), 0, total_len & 0xffff,
                      ident, flags_frag, ttl, proto, 0, ip_bytes(src), ip_bytes(dst)) + options
    if cksum is None:
        cksum = csum(hdr)
    hdr = hdr[:10] + struct.pack('!H', cksum) + hdr[12:]
    return hdr + payload


def _pseudo(src, dst, proto, length):
    return ip_bytes(src) + ip_bytes(dst) + struct.pack('!BBH', 0, proto, length)


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b'', window=65535,
        doff=5, options=b'', cksum=None, bad_cksum=False):
    hdr = struct.pack('!HHIIBBHHH', sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                      (doff & 0xf) << 4, flags, window, 0, 0) + options
    seg = hdr + payload
    if cksum is None:
        cksum = csum(_pseudo(src, dst, IPPROTO_TCP, len(seg)) + seg)
        if bad_cksum:
            cksum ^= 0x5a5a
    return seg[:16] + struct.pack('!H', cksum) + seg[18:]


def udp(src, dst, sport, dport, payload, length=None, bad_cksum=False):
    if length is None:
        length = 8 + len(payload)
    seg = struct.pack('!HHHH', sport, dport, length, 0) + payload
    c = csum(_pseudo(src, dst, IPPROTO_UDP, len(seg)) + seg) or 0xffff
    if bad_cksum:
        c ^= 0x5a5a
    return seg[:6] + struct.pack('!H', c) + seg[8:]


def icmp_echo(ident, seq, payload, bad_cksum=False, type_=8):
    msg = struct.pack('!BBHHH', type_, 0, 0, ident, seq) + payload
    c = csum(msg)
    if bad_cksum:
        c ^= 0x5a5a
    return msg[:2] + struct.pack('!H', c) + msg[4:]


def arp(op, sha, spa, tha, tpa, htype=1, ptype=ETH_P_IP, hlen=6, plen=4):
    return struct.pack('!HHBBH6s4s6s4s', htype, ptype, hlen, plen, op, mac_bytes(sha),
                       ip_bytes(spa), mac_bytes(tha), ip_bytes(tpa))


class Parsed:
    """The fields of a received IPv4 frame that the tests look at."""

    def __init__(self, frame):
        self.frame = frame
        self.src_mac = ':'.join('%02x' % b for b in frame[6:12])
        self.ethertype = struct.unpack('!H', frame[12:14])[0] if len(frame) >= 14 else None
        self.proto = None
        if self.ethertype != ETH_P_IP or len(frame) < 34:
            return
        ip = frame[14:]
        ihl = (ip[0] & 0xf) * 4
        total = struct.unpack('!H', ip[2:4])[0]
        self.ip_ok = csum(ip[:ihl]) == 0
        self.proto = ip[9]
        self.src = socket.inet_ntoa(ip[12:16])
        self.dst = socket.inet_ntoa(ip[16:20])
        l4 = ip[ihl:total]
        self.l4 = l4
        if self.proto == IPPROTO_TCP and len(l4) >= 20:
            (self.sport, self.dport, self.seq, self.ack, off, self.flags,
             self.window) = struct.unpack('!HHIIBBH', l4[:16])
            self.payload = l4[(off >> 4) * 4:]
            self.l4_ok = csum(_pseudo(self.src, self.dst, IPPROTO_TCP, len(l4)) + l4) == 0
        elif self.proto == IPPROTO_ICMP and len(l4) >= 8:
            self.type, self.code, _, self.ident, self.icmp_seq = struct.unpack('!BBHHH', l4[:8])
            self.payload = l4[8:]
            self.l4_ok = csum(l4) == 0


class RawSocket:
    """An AF_PACKET socket on one interface: send frames as they are, and
    receive everything the interface receives."""

    def __init__(self, ifname):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.mac = ':'.join('%02x' % b for b in self.sock.getsockname()[4][:6])

    def close(self):
        self.sock.close()

    def send(self, frame):
        return self.sock.send(frame)

    def drain(self):
        while select.select([self.sock], [], [], 0)[0]:
            self.sock.recv(65536)

    def wait_for(self, match, timeout=2.0):
        """The first received frame (as Parsed) for which match() is true,
        or None at the deadline.  Outgoing copies are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            data, addr = self.sock.recvfrom(65536)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            p = Parsed(data)
            if match(p):
                return p
