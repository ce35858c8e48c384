#!/usr/bin/env python3
"""Sends real ICMPv6 router and neighbour advertisements from a raw socket (tests only).

usage: nd_send.py IFNAME JSON  where JSON is a list of messages, sent in order:
  {"kind": "ra", "src": "fe80::1", "lifetime": 1800, "m": false, "o": false, "prefixes": ["2001:db8:1::/64"],
   "mtu": 1500, "rdnss": ["2001:db8::53"], "mac": "02:00:00:00:00:01", "repeat": 1, "gap": 0.0}
  {"kind": "na", "src": "fe80::5", "target": "2001:db8::5", "mac": "...", "r": false, "s": false, "o": true}
  {"kind": "sleep", "seconds": 1.0}
The kernel fills in the ICMPv6 checksum; the hop limit is 255 as ND requires.
"""
import json
import socket
import struct
import sys
import time


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(':'))


def ra(msg):
    flags = (0x80 if msg.get('m') else 0) | (0x40 if msg.get('o') else 0)
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, flags, msg.get('lifetime', 1800), 0, 0)
    if msg.get('mac'):
        body += struct.pack('!BB', 1, 1) + mac_bytes(msg['mac'])
    for p in msg.get('prefixes', []):
        addr, plen = p.split('/')
        body += struct.pack('!BBBBIII', 3, 4, int(plen), 0xC0, 86400, 14400, 0)
        body += socket.inet_pton(socket.AF_INET6, addr)
    if msg.get('mtu'):
        body += struct.pack('!BBHI', 5, 1, 0, msg['mtu'])
    servers = msg.get('rdnss', [])
    if servers:
        body += struct.pack('!BBHI', 25, 1 + 2 * len(servers), 0, 600)
        for s in servers:
            body += socket.inet_pton(socket.AF_INET6, s)
    return body


def na(msg):
    flags = (0x80000000 if msg.get('r') else 0) | (0x40000000 if msg.get('s') else 0)
    flags |= 0x20000000 if msg.get('o', True) else 0
    body = struct.pack('!BBHI', 136, 0, 0, flags) + socket.inet_pton(socket.AF_INET6, msg['target'])
    if msg.get('mac'):
        body += struct.pack('!BB', 2, 1) + mac_bytes(msg['mac'])
    return body


def main():
    ifname, plan = sys.argv[1], json.loads(sys.argv[2])
    ifindex = socket.if_nametoindex(ifname)
    socks = {}
    for msg in plan:
        if msg['kind'] == 'sleep':
            time.sleep(msg['seconds'])
            continue
        src = msg['src']
        s = socks.get(src)
        if s is None:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.bind((src, 0, 0, ifindex))
            socks[src] = s
        body = ra(msg) if msg['kind'] == 'ra' else na(msg)
        for _ in range(msg.get('repeat', 1)):
            s.sendto(body, ('ff02::1', 0, 0, ifindex))
            if msg.get('gap'):
                time.sleep(msg['gap'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
