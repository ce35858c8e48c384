#include "producer.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "../src/core/bpf_filter.h"
#include "../src/core/decode.h"

#define FRAME_SIZE 2048
#define BLOCK_TIMEOUT_MS 8

int icmpcap_prod_setup_socket(struct icmpcap_prod* p, int fd, uint64_t ring_bytes,
                              const char** op) {
  p->fd = fd;
  int version = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) {
    *op = "setsockopt(PACKET_VERSION)";
    return -errno;
  }
  uint32_t block = 1u << 20;
  while (block > 4096 && (uint64_t)block * 8 > ring_bytes) block >>= 1;
  uint32_t nr = (uint32_t)(ring_bytes / block);
  if (nr < 2) nr = 2;
  struct tpacket_req3 req;
  memset(&req, 0, sizeof(req));
  req.tp_block_size = block;
  req.tp_block_nr = nr;
  req.tp_frame_size = FRAME_SIZE;
  req.tp_frame_nr = block / FRAME_SIZE * nr;
  req.tp_retire_blk_tov = BLOCK_TIMEOUT_MS;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0) {
    *op = "setsockopt(PACKET_RX_RING)";
    return -errno;
  }
  p->map_len = (size_t)block * nr;
  void* m = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    *op = "mmap(AF_PACKET ring)";
    return -errno;
  }
  p->map = m;
  p->block_size = block;
  p->block_nr = nr;
  /* Start the counters with the ring: frames queued before it existed never reach it. */
  struct tpacket_stats_v3 st;
  socklen_t len = sizeof(st);
  getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);
  return 0;
}

void icmpcap_prod_attach_ring(struct icmpcap_prod* p, uint8_t* base, uint64_t data_size,
                              const uint64_t* consumer_pos, uint32_t cpu) {
  p->hdr = (struct icmpcap_ring_header*)base;
  p->data = base + ICMPCAP_RING_HDR_SIZE;
  p->size = data_size;
  p->consumer_pos = consumer_pos;
  p->hdr->data_size = data_size;
  p->hdr->cpu = cpu;
  p->hdr->abi_version = ICMPCAP_ABI_VERSION;
}

/* As icmpcap_ring_reserve() in kernel/ring.c. */
static uint8_t* reserve(struct icmpcap_prod* p, uint32_t len, uint64_t* new_prod) {
  const uint64_t size = p->size;
  const uint64_t need = ICMPCAP_ALIGN(len);
  const uint64_t off = p->prod & (size - 1);
  uint64_t pad = 0;
  if (off + need > size) pad = size - off;
  if (p->prod - p->cons + pad + need > size) {
    /* Pairs with the release store of consumer_pos in RingReader::release()
     * (native/src/core/ring_reader.cc): the app is done with what it read before. */
    const uint64_t cons = __atomic_load_n(p->consumer_pos, __ATOMIC_ACQUIRE);
    const uint64_t used = p->prod - cons;
    if (used > size || used + pad + need > size) return NULL; /* full, or a bogus position */
    p->cons = cons;
  }
  if (pad) {
    struct icmpcap_record* r = (struct icmpcap_record*)(p->data + off);
    r->len = (uint32_t)pad;
    r->flags = ICMPCAP_REC_F_PAD;
  }
  *new_prod = p->prod + pad + need;
  return p->data + ((p->prod + pad) & (size - 1));
}

static int emit(struct icmpcap_prod* p, const struct tpacket3_hdr* h, size_t h_off) {
  const uint8_t* base = (const uint8_t*)h;
  const size_t sll_off = TPACKET_ALIGN(sizeof(struct tpacket3_hdr));
  if (h->tp_net < sll_off + sizeof(struct sockaddr_ll) ||
      h_off + h->tp_net + h->tp_snaplen > p->block_size)
    return 0; /* never happens with a sane kernel; do not read outside the block */
  const struct sockaddr_ll* sll = (const struct sockaddr_ll*)(base + sll_off);
  const uint8_t* frame = base + h->tp_net;
  const int ip_off =
      icmpcap_ip_offset(frame, h->tp_snaplen, (uint16_t)__builtin_bswap16(sll->sll_protocol));
  if (ip_off < 0 || (uint32_t)ip_off >= h->tp_snaplen || (uint32_t)ip_off >= h->tp_len) return 0;
  /* Decoded from every byte the filter kept (it keeps the headers whole, past snaplen if need
   * be, as the module decodes from the whole packet), then recorded up to snaplen. */
  struct icmpcap_record rec;
  if (!icmpcap_describe_ip(frame + ip_off, h->tp_snaplen - (uint32_t)ip_off,
                           h->tp_len - (uint32_t)ip_off, &rec))
    return 0;
  if (rec.cap_len > p->snaplen) {
    rec.cap_len = (uint16_t)p->snaplen;
    rec.len = ICMPCAP_RECORD_HDR_SIZE + p->snaplen;
    rec.flags |= ICMPCAP_REC_F_TRUNCATED;
  }
  rec.hook = ICMPCAP_HOOK_NONE;
  rec.dir = sll->sll_pkttype == PACKET_OUTGOING ? ICMPCAP_DIR_OUT : ICMPCAP_DIR_IN;
  rec.ts_ns = (uint64_t)h->tp_sec * 1000000000u + h->tp_nsec;
  rec.ifindex = (uint32_t)sll->sll_ifindex;
  uint64_t new_prod;
  uint8_t* dst = reserve(p, rec.len, &new_prod);
  if (!dst) {
    p->ring_full_drops++;
    return 0;
  }
  memcpy(dst, &rec, sizeof(rec));
  memcpy(dst + sizeof(rec), frame + ip_off, rec.cap_len);
  p->prod = new_prod;
  p->captured++;
  __atomic_store_n(&p->hdr->captured, p->captured, __ATOMIC_RELAXED);
  /* Pairs with the acquire load of producer_pos in RingReader::poll_records(). */
  __atomic_store_n(&p->hdr->producer_pos, new_prod, __ATOMIC_RELEASE);
  return 1;
}

uint64_t icmpcap_prod_drain(struct icmpcap_prod* p) {
  uint64_t published = 0;
  for (;;) {
    struct tpacket_block_desc* bd =
        (struct tpacket_block_desc*)(p->map + (size_t)p->block * p->block_size);
    /* Pairs with the kernel's smp_wmb() before it sets TP_STATUS_USER (prb_close_block). */
    const uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
    if (!(status & TP_STATUS_USER)) return published;
    const uint32_t num = bd->hdr.bh1.num_pkts;
    uint32_t off = bd->hdr.bh1.offset_to_first_pkt;
    for (uint32_t i = 0; i < num; i++) {
      if (off < sizeof(struct tpacket_block_desc) ||
          off + sizeof(struct tpacket3_hdr) > p->block_size)
        break;
      const struct tpacket3_hdr* h = (const struct tpacket3_hdr*)((uint8_t*)bd + off);
      published += (uint64_t)emit(p, h, off);
      p->frames_read++;
      if (h->tp_next_offset == 0) break;
      off += h->tp_next_offset;
    }
    /* Hand the block back; pairs with the kernel's status check before it reuses it. */
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    p->block = (p->block + 1) % p->block_nr;
  }
}

void icmpcap_prod_stats(struct icmpcap_prod* p) {
  struct tpacket_stats_v3 st;
  memset(&st, 0, sizeof(st));
  socklen_t len = sizeof(st);
  /* PACKET_STATISTICS resets the kernel's counters on every read: accumulate. tp_packets
   * includes tp_drops. */
  if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    p->kernel_packets += st.tp_packets;
    p->kernel_drops += st.tp_drops;
  }
  __atomic_store_n(&p->hdr->dropped, p->kernel_drops + p->ring_full_drops, __ATOMIC_RELAXED);
}

int icmpcap_prod_settled(const struct icmpcap_prod* p) {
  return p->frames_read >= p->kernel_packets - p->kernel_drops;
}
