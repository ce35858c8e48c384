// Consumer of the module's per-CPU rings (layout: kernel/include/uapi/linux/icmpcap.h).
//
// The shared pages are writable by anyone who maps them, so nothing in them is trusted:
// our consumer position is kept here (never read back), every producer position and every
// record header is checked before use, and any inconsistency ends the session with an
// error instead of a crash or an endless loop.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "batch.h"
#include "record.h"
#include "source.h"

namespace icmpcap {

class RingReader {
 public:
  // bases[i]: mapping of ring i (ICMPCAP_RING_HDR_SIZE + data_size bytes). data_size comes
  // from the control channel; each header must agree with it. Returns false with *error set.
  bool attach(const std::vector<uint8_t*>& bases, uint64_t data_size, std::string* error);
  // As attach(), with the consumer positions stored at consumer_pos[i] instead of in the ring
  // headers (rings mapped read-only, as icmpcap-helper's are). Both start at zero.
  bool attach(const std::vector<uint8_t*>& bases, const std::vector<uint64_t*>& consumer_pos,
              uint64_t data_size, std::string* error);

  // Moves the records available now into out, up to its limits, merged by timestamp across
  // rings, then hands the space back to the kernel (release()). Returns false when a ring is
  // corrupt (*error says which and why); records read before the corruption are in out.
  bool poll_records(Batcher& out, std::string* error);

  // Whether any ring holds unread data (producer position beyond ours).
  bool pending() const;
  // Whether the last poll_records() stopped because the batch had no room for the next
  // record (by records or by bytes): flush the batch before polling again.
  bool batch_full() const { return batch_full_; }
  // Records the kernel says it wrote to ring i but we never read: what a ring abandoned as
  // corrupt takes with it (from the untrusted header counter; for the statistics only).
  uint64_t unread_records() const;

  // Counters published by the kernel in each ring header (informational).
  std::vector<CpuStats> cpu_stats() const;
  uint64_t total_dropped() const;
  size_t ring_count() const { return rings_.size(); }

 private:
  struct Ring {
    struct icmpcap_ring_header* hdr = nullptr;
    const uint8_t* data = nullptr;
    uint32_t cpu = 0;
    uint64_t consumer = 0;          // ours; the copy in the shared page is write-only for us
    uint64_t scan = 0;              // end of what this poll_records() has taken so far
    uint64_t producer = 0;          // snapshot of this poll_records()
    __u64* consumer_out = nullptr;  // where consumer positions are published
    uint64_t read = 0;              // records taken from this ring
  };
  struct Entry {
    uint64_t ts;
    uint32_t offset;  // in the data area
    uint32_t len;     // validated, unpadded
    // The validated header fields: the producer may rewrite the shared copy after the check.
    uint32_t orig_len;
    uint16_t flags;
    uint8_t family;
  };

  // Collects up to max_records records of ring r (within max_bytes of batch space) into
  // entries_[r]. Returns false on corruption.
  bool scan(size_t r, uint32_t max_records, size_t* bytes_left, bool* first, std::string* error);
  void release(Ring& ring);
  void copy_out(const Ring& ring, const Entry& e, Batcher& out);
  void merge_into(Batcher& out);

  std::vector<Ring> rings_;
  std::vector<std::vector<Entry>> entries_;
  std::vector<size_t> active_;  // rings with entries in this poll
  std::vector<size_t> head_;    // next entry per ring during the merge
  uint64_t data_size_ = 0;
  uint64_t mask_ = 0;
  size_t first_ring_ = 0;  // rotates so no ring always gets the batch budget first
  bool batch_full_ = false;
};

}  // namespace icmpcap
