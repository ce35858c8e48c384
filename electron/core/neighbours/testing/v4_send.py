#!/usr/bin/env python3
"""Sends real ICMPv4 router advertisements (RFC 1256) and redirects with scapy (tests only).

usage: v4_send.py IFNAME JSON  where JSON is a list of messages, sent in order:
  {"kind": "rdisc", "src": "198.51.100.2", "dst": "198.51.100.1", "addresses": ["198.51.100.2"],
   "lifetime": 1800}
  {"kind": "redirect", "src": "198.51.100.9", "dst": "198.51.100.1", "gateway": "198.51.100.9",
   "target": "203.0.113.7"}
  {"kind": "sleep", "seconds": 1.0}
"""
import json
import sys
import time

from scapy.all import IP, UDP, Raw, conf, send  # noqa: E402
from scapy.utils import checksum  # noqa: E402


def icmp(type_, code, rest, payload):
    """An ICMPv4 message with its checksum: type, code, the 4-byte rest of header, then the payload."""
    body = bytes([type_, code, 0, 0]) + rest + payload
    s = checksum(body)
    return body[:2] + s.to_bytes(2, 'big') + body[4:]


def v4(text):
    return bytes(int(x) for x in text.split('.'))


def main():
    ifname, plan = sys.argv[1], json.loads(sys.argv[2])
    conf.verb = 0
    for msg in plan:
        if msg['kind'] == 'sleep':
            time.sleep(msg['seconds'])
            continue
        ip = IP(src=msg['src'], dst=msg['dst'], ttl=1, proto=1)
        if msg['kind'] == 'rdisc':
            addrs = msg.get('addresses', [msg['src']])
            rest = bytes([len(addrs), 2]) + msg.get('lifetime', 1800).to_bytes(2, 'big')
            payload = b''.join(v4(a) + (0).to_bytes(4, 'big') for a in addrs)
            pkt = ip / Raw(icmp(9, 0, rest, payload))
        else:
            # The redirect quotes the datagram it is about: this host's UDP to the target.
            quoted = bytes(IP(src=msg['dst'], dst=msg['target'], ttl=63) / UDP(sport=40000, dport=53))[:28]
            pkt = ip / Raw(icmp(5, 1, v4(msg['gateway']), quoted))
        send(pkt, iface=ifname)
    return 0


if __name__ == '__main__':
    sys.exit(main())
