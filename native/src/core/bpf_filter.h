/*
 * The capture filter as a classic BPF program for AF_PACKET SOCK_DGRAM sockets (offset 0 is
 * the network header, or an 802.1Q/802.1ad tag still inline). Shared by the core (which
 * builds the user's filter) and icmpcap-helper (which builds the default when given none).
 *
 * The program accepts ICMP and ICMPv6 only, walks IPv6 extension headers (hop-by-hop,
 * routing, destination options, authentication, fragment), accepts inline VLAN tags (up to
 * two), and applies the spec the way the module applies its filter attributes. Fragments
 * that carry no ICMP header (non-first) pass the type and code tests: their first fragment
 * may match. The accepted length is snaplen plus room for inline tags, or more when the
 * headers up to the end of the ICMP header (which the decoder reads, as the module reads the
 * whole packet) reach further: icmpcap-helper records snaplen bytes of it.
 */
#ifndef ICMPCAP_BPF_FILTER_H
#define ICMPCAP_BPF_FILTER_H

#include <linux/filter.h>
#include <linux/icmpcap.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The spec in the module's terms (ICMPCAP_A_* attributes). */
struct icmpcap_filter_spec {
  uint32_t families;                             /* ICMPCAP_FAMILY_F_*; 0 = both */
  uint8_t has_types_v4, has_types_v6, has_codes; /* 0: every value */
  uint8_t types_v4[ICMPCAP_BITMAP_BYTES];
  uint8_t types_v6[ICMPCAP_BITMAP_BYTES];
  uint8_t codes[ICMPCAP_BITMAP_BYTES];
  uint32_t directions; /* 1 << enum icmpcap_dir; 0 = all */
  uint32_t nr_addr_rules;
  struct icmpcap_addr_rule addr_rules[ICMPCAP_MAX_ADDR_RULES];
};

/* Room for any program this builder emits. */
#define ICMPCAP_BPF_MAX_INSNS 2048
/* Bytes the program accepts beyond snaplen, for inline VLAN tags before the IP header. */
#define ICMPCAP_BPF_TAG_ROOM 8

/* Builds the program into out. Returns the instruction count, or -EINVAL (bad spec). */
int icmpcap_bpf_build(const struct icmpcap_filter_spec* spec, uint32_t snaplen,
                      struct sock_filter* out, int max_insns);

/*
 * Where the IP header starts in a SOCK_DGRAM frame of link-layer protocol proto (host
 * order): 0, or past one or two inline VLAN tags (the same rule as the program's). Returns
 * -1 when the frame holds no IP header.
 */
int icmpcap_ip_offset(const uint8_t* frame, uint32_t len, uint16_t proto);

#ifdef __cplusplus
}
#endif

#endif
