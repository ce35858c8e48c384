/*
 * The conversation between icmpcap and icmpcap-helper on fd 3 (a SOCK_SEQPACKET socketpair):
 * one struct icmpcap_helper_msg per message, both ways.
 *
 * The helper keeps its AF_PACKET sockets to itself. It writes one record per packet, in the
 * module's ring format (kernel/include/uapi/linux/icmpcap.h), into rings in a sealed memfd
 * that the app can map only read-only (F_SEAL_FUTURE_WRITE), laid out as the module's rings
 * (ring i at i * ring_stride: consumer page, producer page, data). The consumer page of
 * those rings stays unused: the app's consumer positions
 * live in a second, small memfd (one per ring, at ICMPCAP_HELPER_CONSUMER_STRIDE), which the
 * helper never trusts: a position ahead of the producer or more than data_size behind it is
 * "ring full", exactly as in the module.
 *
 *   helper -> app  READY  + SCM_RIGHTS {rings memfd, consumer memfd}, geometry
 *                  ERROR  op + errno; the helper exits
 *                  WAKE   records were published (at most one per drain pass)
 *                  SOCKET_ERROR  ring, errno (e.g. ENETDOWN: the interface went down)
 *                  SYNCED every packet the kernel had accepted is in the rings
 *   app -> helper  SYNC   settle: publish what the kernel holds, answer SYNCED
 *                  STOP   SYNC, then exit 0
 * The helper exits as soon as fd 3 closes or its parent dies.
 */
#ifndef ICMPCAP_HELPER_PROTOCOL_H
#define ICMPCAP_HELPER_PROTOCOL_H

#include <stdint.h>

/* "ICMR": version 3, rings of ring ABI 2 (consumer page, producer page, data) */
#define ICMPCAP_HELPER_MAGIC 0x49434d52u
#define ICMPCAP_HELPER_FD 3
#define ICMPCAP_HELPER_MAX_RINGS 64
#define ICMPCAP_HELPER_CONSUMER_STRIDE 64
#define ICMPCAP_HELPER_CONSUMER_BYTES 4096
/* --ring-bytes: the packet ring of each socket, within these bounds, and of all sockets together
 * (--ring-bytes times the sockets) at most ICMPCAP_HELPER_MAX_RING_TOTAL. */
#define ICMPCAP_HELPER_MIN_RING_BYTES (64ull << 10)
#define ICMPCAP_HELPER_MAX_RING_BYTES (1ull << 30)
#define ICMPCAP_HELPER_MAX_RING_TOTAL (1ull << 30)

enum icmpcap_helper_kind {
  ICMPCAP_HELPER_READY = 1,
  ICMPCAP_HELPER_ERROR = 2,
  ICMPCAP_HELPER_WAKE = 3,
  ICMPCAP_HELPER_SOCKET_ERROR = 4,
  ICMPCAP_HELPER_SYNCED = 5,
  ICMPCAP_HELPER_SYNC = 6,
  ICMPCAP_HELPER_STOP = 7,
};

struct icmpcap_helper_msg {
  uint32_t magic;
  uint32_t kind; /* enum icmpcap_helper_kind */
  int32_t err;   /* ERROR, SOCKET_ERROR: errno */
  uint32_t ring; /* SOCKET_ERROR: which ring (= which ifindex below) */
  /* READY: ring geometry; ring i (socket bound to ifindexes[i], 0 = all) at i * ring_stride */
  uint32_t nr_rings;
  uint32_t data_size;
  uint32_t ring_stride;
  uint32_t ifindexes[ICMPCAP_HELPER_MAX_RINGS];
  char op[60]; /* ERROR: the failing operation, NUL-terminated */
};

#endif
