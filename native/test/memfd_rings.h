// A producer of the module's ring ABI in a memfd, for tests and the bench: it writes
// records exactly as kernel/ring.c does (pads at the end, release store of producer_pos), in
// the module's layout (consumer page, producer page, data); the consumer's view maps the
// producer page and the data read-only, as ModuleSource does.
#pragma once

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

#include "../src/core/record.h"
#include "../src/core/ring_reader.h"

namespace icmpcap_test {

class MemfdRings {
 public:
  MemfdRings(uint32_t nr_rings, uint64_t data_size) : nr_(nr_rings), size_(data_size) {
    stride_ = ICMPCAP_RING_HDR_SIZE + data_size;
    fd_ = memfd_create("icmpcap-test-rings", MFD_CLOEXEC);
    if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(stride_ * nr_)) < 0)
      throw std::runtime_error("memfd");
    // The producer's mapping and the consumer's mapping are distinct, as with the kernel;
    // the consumer's is read-only.
    prod_map_ = map(PROT_READ | PROT_WRITE);
    cons_map_ = map(PROT_READ);
    for (uint32_t i = 0; i < nr_; i++) {
      auto* h = hdr(i);
      h->data_size = data_size;
      h->cpu = i;
      h->abi_version = ICMPCAP_ABI_VERSION;
    }
    prod_.assign(nr_, 0);
  }
  ~MemfdRings() {
    munmap(prod_map_, stride_ * nr_);
    munmap(cons_map_, stride_ * nr_);
    close(fd_);
  }

  // What RingReader::attach() takes: the read-only producer pages, and the consumer pages.
  std::vector<icmpcap::RingMap> consumer_bases() {
    std::vector<icmpcap::RingMap> v;
    for (uint32_t i = 0; i < nr_; i++)
      v.push_back(icmpcap::RingMap{cons_map_ + i * stride_ + ICMPCAP_RING_PRODUCER_OFF,
                                   &cons(i)->consumer_pos});
    return v;
  }
  struct icmpcap_ring_producer* hdr(uint32_t i) {
    return reinterpret_cast<struct icmpcap_ring_producer*>(prod_map_ + i * stride_ +
                                                           ICMPCAP_RING_PRODUCER_OFF);
  }
  struct icmpcap_ring_consumer* cons(uint32_t i) {
    return reinterpret_cast<struct icmpcap_ring_consumer*>(prod_map_ + i * stride_);
  }
  uint8_t* data(uint32_t i) { return prod_map_ + i * stride_ + ICMPCAP_RING_DATA_OFF; }
  uint64_t data_size() const { return size_; }
  uint32_t rings() const { return nr_; }
  uint64_t producer(uint32_t i) const { return prod_[i]; }

  // Writes one record (as the kernel: pad when it does not fit before the end; drop when the
  // ring is full). Returns false on drop. Publishes unless publish == false.
  bool produce(uint32_t ring, uint64_t ts, uint16_t cap_len, uint16_t seq, bool publish = true) {
    const uint32_t len = ICMPCAP_RECORD_HDR_SIZE + cap_len;
    const uint64_t need = ICMPCAP_ALIGN(len);
    uint64_t cons = __atomic_load_n(&this->cons(ring)->consumer_pos, __ATOMIC_ACQUIRE);
    uint64_t used = prod_[ring] - cons;
    if (used > size_) used = size_;
    const uint64_t off = prod_[ring] & (size_ - 1);
    const uint64_t pad = off + need > size_ ? size_ - off : 0;
    if (used + pad + need > size_) {
      hdr(ring)->dropped++;
      return false;
    }
    if (pad) {
      auto* p = reinterpret_cast<struct icmpcap_record*>(data(ring) + off);
      p->len = static_cast<uint32_t>(pad);
      p->flags = ICMPCAP_REC_F_PAD;
    }
    uint8_t* dst = data(ring) + ((prod_[ring] + pad) & (size_ - 1));
    struct icmpcap_record r;
    memset(&r, 0, sizeof(r));
    r.len = len;
    r.ts_ns = ts;
    r.ifindex = ring + 1;
    r.orig_len = cap_len + 10u;
    r.cap_len = cap_len;
    r.family = 4;
    r.ttl = 64;
    r.icmp_type = 8;
    r.icmp_seq = seq;
    r.icmp_id = static_cast<uint16_t>(ring);
    r.flags = ICMPCAP_REC_F_HAS_ECHO | ICMPCAP_REC_F_TRUNCATED;
    memcpy(dst, &r, sizeof(r));
    for (uint32_t k = 0; k < cap_len; k++) dst[sizeof(r) + k] = static_cast<uint8_t>(seq + k);
    memset(dst + len, 0, need - len);
    prod_[ring] += pad + need;
    hdr(ring)->captured++;
    if (publish) this->publish(ring);
    return true;
  }
  void publish(uint32_t ring) {
    __atomic_store_n(&hdr(ring)->producer_pos, prod_[ring], __ATOMIC_RELEASE);
  }

 private:
  uint8_t* map(int prot) {
    void* m = mmap(nullptr, stride_ * nr_, prot, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) throw std::runtime_error("mmap");
    return static_cast<uint8_t*>(m);
  }
  uint32_t nr_;
  uint64_t size_;
  uint64_t stride_;
  int fd_ = -1;
  uint8_t* prod_map_ = nullptr;
  uint8_t* cons_map_ = nullptr;
  std::vector<uint64_t> prod_;
};

}  // namespace icmpcap_test
