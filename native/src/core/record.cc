#include "record.h"

namespace icmpcap {

namespace {
inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
}  // namespace

bool describe_ip_packet(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                        struct icmpcap_record* hdr) {
  memset(hdr, 0, sizeof(*hdr));
  if (cap_len < 1) return false;
  const uint32_t version = ip[0] >> 4;
  uint32_t icmp_off;
  bool echo = false;
  if (version == 4) {
    if (cap_len < 20) return false;
    const uint32_t ihl = (ip[0] & 0x0f) * 4u;
    if (ihl < 20 || ip[9] != 1) return false;
    hdr->family = ICMPCAP_FAMILY_IPV4;
    hdr->ttl = ip[8];
    memcpy(hdr->saddr, ip + 12, 4);
    memcpy(hdr->daddr, ip + 16, 4);
    icmp_off = ihl;
    const bool first_fragment = (load_be16(ip + 6) & 0x1fff) == 0;
    if (!first_fragment) icmp_off = UINT32_MAX;  // no ICMP header in this fragment
    if (icmp_off != UINT32_MAX && icmp_off + 2 <= cap_len) {
      hdr->icmp_type = ip[icmp_off];
      hdr->icmp_code = ip[icmp_off + 1];
      echo = hdr->icmp_type == 0 || hdr->icmp_type == 8;
    }
  } else if (version == 6) {
    if (cap_len < 40 || ip[6] != 58) return false;
    hdr->family = ICMPCAP_FAMILY_IPV6;
    hdr->ttl = ip[7];
    memcpy(hdr->saddr, ip + 8, 16);
    memcpy(hdr->daddr, ip + 24, 16);
    icmp_off = 40;
    if (icmp_off + 2 <= cap_len) {
      hdr->icmp_type = ip[icmp_off];
      hdr->icmp_code = ip[icmp_off + 1];
      echo = hdr->icmp_type == 128 || hdr->icmp_type == 129;
    }
  } else {
    return false;
  }
  if (echo && icmp_off + 8 <= cap_len) {
    hdr->flags |= ICMPCAP_REC_F_HAS_ECHO;
    hdr->icmp_id = load_be16(ip + icmp_off + 4);
    hdr->icmp_seq = load_be16(ip + icmp_off + 6);
  }
  if (cap_len > kMaxCapLen) cap_len = kMaxCapLen;
  if (orig_len < cap_len) orig_len = cap_len;
  if (cap_len < orig_len) hdr->flags |= ICMPCAP_REC_F_TRUNCATED;
  hdr->cap_len = static_cast<uint16_t>(cap_len);
  hdr->orig_len = orig_len;
  hdr->len = kRecordHeaderSize + cap_len;
  return true;
}

}  // namespace icmpcap
