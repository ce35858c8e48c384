#!/usr/bin/python3
"""Test support: sends one kind of odd ICMP traffic with scapy, at layer 2, out of IFACE towards DST_MAC.

usage: odd_packets.py CASE IFACE DST_MAC SRC4 DST4 SRC6 DST6 ID
Each case sends a few packets whose ICMP identifier (where there is one) is ID.
"""
import sys

from scapy.all import (  # type: ignore[import-not-found]
    Dot1Q,
    Ether,
    ICMP,
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6MLDMultAddrRec,
    ICMPv6Unknown,
    IP,
    IPOption_RR,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    RouterAlert,
    Raw,
    UDP,
    checksum,
    fragment,
    fragment6,
    raw,
    sendp,
)

case, iface, dst_mac, src4, dst4, src6, dst6, ident = sys.argv[1:9]
ident = int(ident)
eth = Ether(dst=dst_mac)
payload = bytes(range(48))


def send(*frames):
    sendp(list(frames), iface=iface, verbose=False)


def with_bad_checksum(packet, layer, field):
    packet = packet.__class__(raw(packet))  # checksums computed
    setattr(packet[layer], field, getattr(packet[layer], field) ^ 0x5A5A)
    return packet


if case == "short4":
    # 4 bytes of ICMP: type, code, checksum and nothing else (an echo needs 8).
    send(eth / IP(src=src4, dst=dst4, proto=1) / Raw(b"\x08\x00\xf7\xff"))
elif case == "short6":
    send(eth / IPv6(src=src6, dst=dst6, nh=58) / Raw(b"\x80\x00\x7f\xff"))
elif case == "badsum4":
    send(with_bad_checksum(eth / IP(src=src4, dst=dst4) / ICMP(id=ident, seq=1) / payload, ICMP, "chksum"))
elif case == "badsum6":
    send(with_bad_checksum(eth / IPv6(src=src6, dst=dst6) / ICMPv6EchoRequest(id=ident, seq=1) / payload, ICMPv6EchoRequest, "cksum"))
elif case == "options4":
    send(eth / IP(src=src4, dst=dst4, options=[IPOption_RR(routers=["0.0.0.0"] * 4)]) / ICMP(id=ident, seq=1) / payload)
elif case == "hbh6":
    # An MLDv2 report: Hop-by-Hop (router alert) before ICMPv6, as the kernel sends them.
    send(
        Ether(dst="33:33:00:00:00:16")
        / IPv6(src=src6, dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst="ff02::1:ff00:1234")])
    )
elif case == "dstopt6":
    send(eth / IPv6(src=src6, dst=dst6) / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest(id=ident, seq=1) / payload)
elif case == "frag6":
    packet = IPv6(src=src6, dst=dst6) / IPv6ExtHdrFragment(id=ident) / ICMPv6EchoRequest(id=ident, seq=1) / (payload * 40)
    send(*[eth / f for f in fragment6(packet, 1280)])
elif case == "frag4":
    packet = IP(src=src4, dst=dst4) / ICMP(id=ident, seq=1) / (payload * 40)
    send(*[eth / f for f in fragment(packet, 1000)])
elif case == "rfc4884":
    # Time Exceeded quoting a UDP datagram padded to 128 bytes, with an extension structure (RFC 4884/4950:
    # an MPLS label stack object); the length field says 32 words of original datagram.
    quoted = raw(IP(src=dst4, dst="192.0.2.99", ttl=1) / UDP(sport=40000, dport=33434) / bytes(100))[:128]
    quoted = quoted + bytes(128 - len(quoted))
    obj = b"\x00\x08\x01\x01" + b"\x00\x01\x41\x01"  # length 8, class 1 (MPLS), c-type 1, one label entry
    ext = bytearray(b"\x20\x00\x00\x00" + obj)
    s = 0
    for i in range(0, len(ext), 2):
        s += (ext[i] << 8) | ext[i + 1]
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    ext[2:4] = (~s & 0xFFFF).to_bytes(2, "big")
    body = quoted + bytes(ext)
    header = bytearray(b"\x0b\x00\x00\x00\x00\x20\x00\x00")  # type 11, length 32 words (RFC 4884)
    header[2:4] = checksum(bytes(header) + body).to_bytes(2, "big")
    send(eth / IP(src=src4, dst=dst4, proto=1) / Raw(bytes(header) + body))
elif case == "unknown4":
    send(eth / IP(src=src4, dst=dst4) / ICMP(type=99, code=7) / payload)
elif case == "unknown6":
    send(eth / IPv6(src=src6, dst=dst6) / ICMPv6Unknown(type=250, code=3, msgbody=payload))
elif case == "vlan4":
    send(Ether(dst=dst_mac) / Dot1Q(vlan=100) / IP(src=src4, dst=dst4) / ICMP(id=ident, seq=1) / payload)
else:
    sys.exit(f"unknown case {case}")
