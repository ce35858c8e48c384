/*
 * Describing an IP packet as an icmpcap record header: shared by icmpcap-helper (C) and the
 * core (C++), so every AF_PACKET record is decoded by this one function. The rules are the
 * uapi's (kernel/include/uapi/linux/icmpcap.h): IPv6 extension headers are walked, fragments
 * are flagged (FRAGMENT, NOT_FIRST; a non-first fragment carries no ICMP fields), a packet
 * that ends before a whole ICMP header is SHORT.
 */
#ifndef ICMPCAP_DECODE_H
#define ICMPCAP_DECODE_H

#include <linux/icmpcap.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fills hdr from the packet at ip (cap_len bytes captured of orig_len, starting at the IP
 * header). Returns 1, or 0 when the bytes are not an ICMP/ICMPv6 packet (too short to
 * tell, wrong version or protocol): the caller skips it. hook, dir, ts_ns and ifindex are
 * left zero for the caller. cap_len above 65535 is cut to 65535. Bytes past the length in the
 * IP header (link-layer padding) are not part of the packet: orig_len and cap_len stop there.
 */
int icmpcap_describe_ip(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                        struct icmpcap_record* hdr);

#ifdef __cplusplus
}
#endif

#endif
