/* The reply icmpcap-helper sends on fd 3 (one SOCK_SEQPACKET message). */
#ifndef ICMPCAP_HELPER_PROTOCOL_H
#define ICMPCAP_HELPER_PROTOCOL_H

#include <stdint.h>

#define ICMPCAP_HELPER_MAGIC 0x49434d50u /* "ICMP" */
#define ICMPCAP_HELPER_FD 3

struct icmpcap_helper_reply {
  uint32_t magic;
  int32_t err; /* 0: the AF_PACKET fd travels in SCM_RIGHTS; else the errno of op */
  char op[56]; /* the failing operation, NUL-terminated */
};

#endif
