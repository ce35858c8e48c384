// Consumer of the module's per-CPU rings (layout: kernel/include/uapi/linux/icmpcap.h).
//
// The producer page and the records are mapped read-only, but nothing in them is trusted
// all the same: our consumer position is kept here (never read back), every producer
// position is checked, every record is checked in our own copy (after the copy, so what was
// checked is what JavaScript gets), and any inconsistency ends the session with an error
// instead of a crash or an endless loop.
//
// The drain path copies records in spans: every run of records that lie back to back in a
// ring and follow each other in the merged order goes into the batch with one memcpy.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "batch.h"
#include "record.h"
#include "source.h"

namespace icmpcap {

// Where ring i lives: its producer page (struct icmpcap_ring_producer, followed by the data
// area at ICMPCAP_RING_DATA_OFF - ICMPCAP_RING_PRODUCER_OFF), mapped read-only, and the
// consumer position we publish (the module's consumer page, or icmpcap-helper's consumer
// memfd).
struct RingMap {
  const uint8_t* producer = nullptr;
  __u64* consumer_pos = nullptr;
};

class RingReader {
 public:
  // data_size comes from the control channel; each producer page must agree with it and
  // carry our ABI version. Returns false with *error set.
  bool attach(const std::vector<RingMap>& rings, uint64_t data_size, std::string* error);

  // Moves the records available now into out, up to its limits, merged by timestamp across
  // rings, then hands the space back to the producer (release()). Returns false when a ring
  // is corrupt (*error says which and why); records read before the corruption are in out.
  bool poll_records(Batcher& out, std::string* error);

  // Whether any ring holds unread data (producer position beyond ours).
  bool pending() const;
  // Whether the last poll_records() stopped because the batch had no room for the next
  // record (by records or by bytes): flush the batch before polling again.
  bool batch_full() const { return batch_full_; }
  // Records the kernel says it wrote to ring i but we never read: what a ring abandoned as
  // corrupt takes with it (from the untrusted header counter; for the statistics only).
  uint64_t unread_records() const;

  // Counters published by the producer in each ring (informational).
  std::vector<CpuStats> cpu_stats() const;
  uint64_t total_dropped() const;
  size_t ring_count() const { return rings_.size(); }

 private:
  struct Ring {
    const struct icmpcap_ring_producer* prod = nullptr;
    const uint8_t* data = nullptr;
    uint32_t cpu = 0;
    uint64_t consumer = 0;          // ours; the published copy is write-only for us
    uint64_t scan = 0;              // end of what this poll_records() has taken so far
    uint64_t producer = 0;          // snapshot of this poll_records()
    __u64* consumer_out = nullptr;  // where consumer positions are published
    uint64_t read = 0;              // records taken from this ring
  };
  struct Entry {
    uint64_t ts;      // for the merge only: the copy is what counts
    uint32_t offset;  // in the data area
    uint32_t step;    // aligned length, as scanned
  };

  // Collects up to max_records records of ring r (within max_bytes of batch space) into
  // entries_[r]. Returns false on corruption.
  bool scan(size_t r, uint32_t max_records, size_t* bytes_left, bool* first, std::string* error);
  // The common case, one ring with data: no merge, no entries; walks the lengths, copies
  // each contiguous span with one memcpy and checks the copy. Returns false on corruption.
  bool drain_single(size_t r, Batcher& out, std::string* error);
  // Why the records at copy (bytes long, n records as walked) are not what was walked, or
  // nullptr; *good records at the start are fine and end at offset *bad_at.
  static const char* check_copy(const uint8_t* copy, size_t bytes, size_t n, size_t* bad_at,
                                uint32_t* good);
  void release(Ring& ring);
  // Copies entries [from, to) of ring r, back to back in the ring, with one memcpy, then
  // checks the copy. False (and the batch cut before the bad record) on corruption.
  bool copy_run(size_t r, size_t from, size_t to, Batcher& out, std::string* error);
  bool merge_into(Batcher& out, std::string* error);

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
