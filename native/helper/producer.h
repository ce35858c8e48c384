/*
 * icmpcap-helper's half of the data path: drains TPACKET_V3 rings of AF_PACKET sockets into
 * rings of the module's format (one per socket) in shared memory, as the module's hook does:
 * a full ring drops and counts, unread data is never overwritten, the consumer position is
 * never trusted.
 */
#ifndef ICMPCAP_HELPER_PRODUCER_H
#define ICMPCAP_HELPER_PRODUCER_H

#include <linux/icmpcap.h>
#include <stddef.h>
#include <stdint.h>

struct icmpcap_prod {
  /* our ring */
  struct icmpcap_ring_producer* hdr; /* the producer page */
  uint8_t* data;
  uint64_t size;
  uint64_t prod;
  uint64_t cons;                /* last valid consumer position seen */
  const uint64_t* consumer_pos; /* in the consumer memfd: read only, never trusted */
  uint64_t captured;
  uint64_t ring_full_drops;
  uint32_t snaplen;
  /* the packet socket */
  int fd;
  uint8_t* map;
  size_t map_len;
  uint32_t block_size, block_nr, block;
  uint64_t kernel_packets; /* PACKET_STATISTICS: frames the filter accepted (incl. drops) */
  uint64_t kernel_drops;
  uint64_t frames_read;
};

/* TPACKET_V3 ring of about ring_bytes on fd, mapped. Returns 0 or -errno; *op names the call. */
int icmpcap_prod_setup_socket(struct icmpcap_prod* p, int fd, uint64_t ring_bytes, const char** op);

/* Attaches our ring (laid out as the module's, from its consumer page at base, which stays
 * unused: the app's position is consumer_pos) and its consumer position. */
void icmpcap_prod_attach_ring(struct icmpcap_prod* p, uint8_t* base, uint64_t data_size,
                              const uint64_t* consumer_pos, uint32_t cpu);

/* Moves every ready block into our ring. Returns the number of records published. */
uint64_t icmpcap_prod_drain(struct icmpcap_prod* p);

/* Reads PACKET_STATISTICS and publishes dropped = kernel drops + ring-full drops. */
void icmpcap_prod_stats(struct icmpcap_prod* p);

/* Whether every frame the kernel accepted so far was read (after icmpcap_prod_stats()). */
int icmpcap_prod_settled(const struct icmpcap_prod* p);

#endif
