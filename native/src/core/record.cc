#include "record.h"

#include "decode.h"

namespace icmpcap {

bool describe_ip_packet(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                        struct icmpcap_record* hdr) {
  return icmpcap_describe_ip(ip, cap_len, orig_len, hdr) != 0;
}

}  // namespace icmpcap
