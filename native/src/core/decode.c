#include "decode.h"

#include <string.h>

#define IPPROTO_ICMP_ 1
#define IPPROTO_ICMPV6_ 58
#define NEXTHDR_HOP_ 0
#define NEXTHDR_ROUTING_ 43
#define NEXTHDR_FRAGMENT_ 44
#define NEXTHDR_AUTH_ 51
#define NEXTHDR_DEST_ 60
/* As the kernel's ipv6_skip_exthdr(), but bounded: no real packet has more. */
#define MAX_EXT_HEADERS 8

static uint16_t be16(const uint8_t* p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The ICMP header at off: type/code when present, echo id/seq when whole and an echo. */
static void icmp_fields(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len, uint32_t off,
                        struct icmpcap_record* hdr) {
  const int v4 = hdr->family == ICMPCAP_FAMILY_IPV4;
  if (orig_len < off + 8) hdr->flags |= ICMPCAP_REC_F_SHORT;
  if (off + 1 <= cap_len) hdr->icmp_type = ip[off];
  if (off + 2 <= cap_len) hdr->icmp_code = ip[off + 1];
  if (off + 2 > cap_len) return;
  const uint8_t t = hdr->icmp_type;
  const int echo = v4 ? (t == 0 || t == 8) : (t == 128 || t == 129);
  if (echo && off + 8 <= cap_len && off + 8 <= orig_len) {
    hdr->flags |= ICMPCAP_REC_F_HAS_ECHO;
    hdr->icmp_id = be16(ip + off + 4);
    hdr->icmp_seq = be16(ip + off + 6);
  }
}

static int describe_v4(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                       struct icmpcap_record* hdr) {
  if (cap_len < 20) return 0;
  const uint32_t ihl = (ip[0] & 0x0fu) * 4u;
  if (ihl < 20 || ip[9] != IPPROTO_ICMP_) return 0;
  hdr->family = ICMPCAP_FAMILY_IPV4;
  hdr->ttl = ip[8];
  memcpy(hdr->saddr, ip + 12, 4);
  memcpy(hdr->daddr, ip + 16, 4);
  const uint16_t frag = be16(ip + 6);
  if (frag & 0x3fffu) hdr->flags |= ICMPCAP_REC_F_FRAGMENT; /* MF or an offset */
  if (frag & 0x1fffu) {
    hdr->flags |= ICMPCAP_REC_F_NOT_FIRST; /* no ICMP header in this fragment */
    return 1;
  }
  icmp_fields(ip, cap_len, orig_len, ihl, hdr);
  return 1;
}

static int describe_v6(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                       struct icmpcap_record* hdr) {
  if (cap_len < 40) return 0;
  uint8_t next = ip[6];
  uint32_t off = 40;
  int not_first = 0;
  for (int i = 0; next != IPPROTO_ICMPV6_ && i < MAX_EXT_HEADERS; i++) {
    if (next == NEXTHDR_FRAGMENT_) {
      if (off + 8 > cap_len) return 0;
      /* As the module: an atomic fragment (offset 0, no M flag) is not a fragment. */
      const uint16_t frag = be16(ip + off + 2);
      if (frag & 0xfff9u) hdr->flags |= ICMPCAP_REC_F_FRAGMENT;
      if (frag & 0xfff8u) not_first = 1;
      next = ip[off];
      off += 8;
      if (not_first) break;
    } else if (next == NEXTHDR_HOP_ || next == NEXTHDR_ROUTING_ || next == NEXTHDR_DEST_) {
      if (off + 2 > cap_len) return 0;
      next = ip[off];
      off += (ip[off + 1] + 1u) * 8u;
    } else if (next == NEXTHDR_AUTH_) {
      if (off + 2 > cap_len) return 0;
      next = ip[off];
      off += (ip[off + 1] + 2u) * 4u;
    } else {
      return 0;
    }
  }
  if (next != IPPROTO_ICMPV6_) return 0;
  hdr->family = ICMPCAP_FAMILY_IPV6;
  hdr->ttl = ip[7];
  memcpy(hdr->saddr, ip + 8, 16);
  memcpy(hdr->daddr, ip + 24, 16);
  if (not_first) {
    hdr->flags |= ICMPCAP_REC_F_NOT_FIRST;
    return 1;
  }
  icmp_fields(ip, cap_len, orig_len, off, hdr);
  return 1;
}

/*
 * The length the IP header gives the packet, when it is shorter than orig_len: what follows is
 * link-layer padding (an Ethernet frame has at least 60 bytes), which the kernel trims off
 * before the IP layer (ip_rcv_core(), ipv6_rcv()) and so before the module's hooks see the
 * packet. A length beyond orig_len is left alone (the kernel drops such a packet; AF_PACKET
 * still shows it as it came).
 */
static uint32_t ip_length(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len) {
  if ((ip[0] >> 4) == 4 && cap_len >= 4) {
    const uint32_t tot = be16(ip + 2);
    if (tot >= 20 && tot >= (ip[0] & 0x0fu) * 4u && tot < orig_len) return tot;
  } else if ((ip[0] >> 4) == 6 && cap_len >= 7) {
    /* As ipv6_rcv(): a zero payload length with hop-by-hop may be a jumbogram. */
    const uint32_t plen = be16(ip + 4);
    if ((plen || ip[6] != NEXTHDR_HOP_) && 40 + plen < orig_len) return 40 + plen;
  }
  return orig_len;
}

int icmpcap_describe_ip(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                        struct icmpcap_record* hdr) {
  memset(hdr, 0, sizeof(*hdr));
  if (cap_len < 1) return 0;
  if (cap_len > 0xffffu) cap_len = 0xffffu;
  if (orig_len < cap_len) orig_len = cap_len;
  orig_len = ip_length(ip, cap_len, orig_len);
  if (cap_len > orig_len) cap_len = orig_len;
  int ok;
  switch (ip[0] >> 4) {
    case 4:
      ok = describe_v4(ip, cap_len, orig_len, hdr);
      break;
    case 6:
      ok = describe_v6(ip, cap_len, orig_len, hdr);
      break;
    default:
      ok = 0;
  }
  if (!ok) {
    memset(hdr, 0, sizeof(*hdr));
    return 0;
  }
  if (cap_len < orig_len) hdr->flags |= ICMPCAP_REC_F_TRUNCATED;
  hdr->cap_len = (uint16_t)cap_len;
  hdr->orig_len = orig_len;
  hdr->len = ICMPCAP_RECORD_HDR_SIZE + cap_len;
  return 1;
}
