// Batches of whole records, back to back at 8-byte-aligned offsets, as JavaScript receives them.
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

#include "record.h"

namespace icmpcap {

// Batch buffers are recycled: a fresh 1 MiB buffer per batch would cost page faults on
// every batch once the allocator returns it to the kernel.
uint8_t* acquire_batch_buffer(size_t capacity);
void release_batch_buffer(uint8_t* p, size_t capacity);

struct BatchRelease {
  size_t capacity = 0;
  void operator()(uint8_t* p) const { release_batch_buffer(p, capacity); }
};

struct Batch {
  std::unique_ptr<uint8_t, BatchRelease> data;
  size_t bytes = 0;
  size_t capacity = 0;
  uint32_t records = 0;
};

enum class EventType { kError, kInterfaceGone, kOverflow, kStopped, kInfo };

struct Event {
  EventType type = EventType::kInfo;
  std::string message;
  int ifindex = 0;
  std::string ifname;
  std::string errno_name;
};

// Where a session's batches and events go. Called from the reader thread only.
class Sink {
 public:
  virtual ~Sink() = default;
  // False while the consumer is behind (bounded queue full): the reader then stops draining
  // and leaves the records in the kernel ring, where a full ring drops and counts.
  virtual bool can_accept() = 0;
  // False when the batch could not be queued (the consumer is gone): its records are lost
  // and counted as such.
  virtual bool deliver(Batch&& batch) = 0;
  virtual void event(Event&& ev) = 0;
};

struct BatchLimits {
  uint32_t max_records = 4096;
  size_t max_bytes = 1u << 20;
  uint32_t flush_interval_ms = 50;
};

// Accumulates records into the current batch.
class Batcher {
 public:
  explicit Batcher(BatchLimits limits = {}) : limits_(limits) {}

  const BatchLimits& limits() const { return limits_; }
  uint32_t records() const { return cur_.records; }
  size_t bytes() const { return cur_.bytes; }
  bool empty() const { return cur_.records == 0; }
  bool full() const {
    return cur_.records >= limits_.max_records ||
           cur_.bytes + align_record(kRecordHeaderSize) > limits_.max_bytes;
  }
  // Whether a record of len bytes (unpadded) still fits in the current batch. A record larger
  // than max_bytes always fits an empty batch.
  bool fits(uint32_t len) const {
    if (cur_.records >= limits_.max_records) return false;
    return cur_.records == 0 || cur_.bytes + align_record(len) <= limits_.max_bytes;
  }

  // Room for a record of len bytes at an aligned offset; the padding up to the next record
  // is zeroed. Call fits() first.
  uint8_t* append(uint32_t len) {
    const size_t step = align_record(len);
    if (!cur_.data || cur_.bytes + step > cur_.capacity) grow(cur_.bytes + step);
    uint8_t* p = cur_.data.get() + cur_.bytes;
    if (step > len) memset(p + len, 0, step - len);
    cur_.bytes += step;
    cur_.records++;
    return p;
  }

  // Room for records already laid out as in a batch (bytes a multiple of 8): a span copied
  // from a ring in one go. Call fits() for the span first.
  uint8_t* append_span(size_t bytes, uint32_t records) {
    if (!cur_.data || cur_.bytes + bytes > cur_.capacity) grow(cur_.bytes + bytes);
    uint8_t* p = cur_.data.get() + cur_.bytes;
    cur_.bytes += bytes;
    cur_.records += records;
    return p;
  }

  // Drops what was appended after the batch held bytes in records.
  void truncate(size_t bytes, uint32_t records) {
    cur_.bytes = bytes;
    cur_.records = records;
  }

  void append_record(const struct icmpcap_record& hdr, const uint8_t* payload) {
    uint8_t* p = append(hdr.len);
    memcpy(p, &hdr, kRecordHeaderSize);
    memcpy(p + kRecordHeaderSize, payload, hdr.len - kRecordHeaderSize);
  }

  Batch take() {
    Batch out = std::move(cur_);
    cur_ = Batch();
    return out;
  }

 private:
  void grow(size_t need) {
    size_t cap = cur_.capacity ? cur_.capacity * 2 : limits_.max_bytes;
    while (cap < need) cap *= 2;
    uint8_t* p = acquire_batch_buffer(cap);
    if (cur_.bytes) memcpy(p, cur_.data.get(), cur_.bytes);
    cur_.data = std::unique_ptr<uint8_t, BatchRelease>(p, BatchRelease{cap});
    cur_.capacity = cap;
  }

  BatchLimits limits_;
  Batch cur_;
};

}  // namespace icmpcap
