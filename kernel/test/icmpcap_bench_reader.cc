// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// The benchmark's ring consumer is the application's: icmpcap::RingReader
// (native/src/core/ring_reader.cc) filling icmpcap::Batcher batches with the
// application's default limits (4096 records / 1 MiB), exactly as
// ModuleSource::run() drives it. Where the app hands a full batch to the
// JavaScript thread, the reader thread here checks and counts every record of
// it itself and returns the buffer to the pool: the same work on the reader
// thread plus a look at every record, never less. The netlink receiver of the
// benchmark appends its records to the same kind of batches
// (bench_batcher_*), as an application built on that design would. C entry
// points for icmpcap_bench.c.
#include <string.h>
#include <time.h>

#include <string>
#include <vector>

#include "ring_reader.h"

#include "icmpcap_bench_reader.h"

struct bench_reader {
  icmpcap::RingReader reader;
  icmpcap::Batcher batcher;
  uint16_t cap_len = 0;
  uint64_t records = 0;
  uint64_t bad = 0;
  uint64_t batches = 0;
  uint64_t t_last = 0;  // CLOCK_MONOTONIC ns when the last batch was done
  std::string error;
};

static uint64_t mono_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// What the JavaScript side gets: one batch. Checks every record (length,
// type, capture length), counts them.
static void deliver(struct bench_reader* br) {
  icmpcap::Batch b = br->batcher.take();
  size_t off = 0;
  for (uint32_t i = 0; i < b.records; i++) {
    if (off + ICMPCAP_RECORD_HDR_SIZE > b.bytes) {
      br->bad += b.records - i;
      break;
    }
    const auto* r = reinterpret_cast<const struct icmpcap_record*>(b.data.get() + off);
    if (r->len != uint32_t{ICMPCAP_RECORD_HDR_SIZE} + r->cap_len || r->cap_len != br->cap_len ||
        r->icmp_type != 8 || off + r->len > b.bytes)
      br->bad++;
    off += ICMPCAP_ALIGN(r->len);
  }
  br->records += b.records;
  br->batches++;
  br->t_last = mono_ns();
}

extern "C" struct bench_reader* bench_reader_new(uint8_t** producer, uint64_t** consumer_pos,
                                                 unsigned int nr, uint64_t data_size,
                                                 uint16_t cap_len) {
  auto* br = new bench_reader;
  std::vector<icmpcap::RingMap> v;
  for (unsigned int i = 0; i < nr; i++)
    v.push_back(icmpcap::RingMap{producer[i], reinterpret_cast<__u64*>(consumer_pos[i])});
  br->cap_len = cap_len;
  if (!br->reader.attach(v, data_size, &br->error)) {
    delete br;
    return nullptr;
  }
  return br;
}

extern "C" struct bench_reader* bench_batcher_new(uint16_t cap_len) {
  auto* br = new bench_reader;
  br->cap_len = cap_len;
  return br;
}

extern "C" void bench_reader_free(struct bench_reader* br) { delete br; }

// ModuleSource::run()'s inner loop: poll_records() until a pass adds nothing,
// delivering full batches. flush: also deliver a partial batch (before sleeping
// in poll(), where the app's 50 ms flush timer would). Returns records taken
// from the rings, or -1 when a ring is corrupt.
extern "C" long bench_reader_drain(struct bench_reader* br, int flush) {
  long n = 0;
  for (;;) {
    if (br->batcher.full()) deliver(br);
    const uint32_t before = br->batcher.records();
    if (!br->reader.poll_records(br->batcher, &br->error)) return -1;
    const uint32_t added = br->batcher.records() - before;
    if (added == 0) break;
    n += added;
  }
  if (flush && !br->batcher.empty()) deliver(br);
  return n;
}

// The classic design's receiver hands its records to the same batches.
extern "C" void bench_batcher_append(struct bench_reader* br, const struct icmpcap_record* rec) {
  if (!br->batcher.fits(rec->len)) deliver(br);
  br->batcher.append_record(*rec, reinterpret_cast<const uint8_t*>(rec) + ICMPCAP_RECORD_HDR_SIZE);
}

extern "C" int bench_batcher_flush(struct bench_reader* br) {
  if (br->batcher.empty()) return 0;
  deliver(br);
  return 1;
}

extern "C" uint64_t bench_reader_done(struct bench_reader* br) { return br->t_last; }
extern "C" uint64_t bench_reader_records(struct bench_reader* br) { return br->records; }
extern "C" uint64_t bench_reader_bad(struct bench_reader* br) { return br->bad; }
extern "C" uint64_t bench_reader_batches(struct bench_reader* br) { return br->batches; }
extern "C" const char* bench_reader_error(const struct bench_reader* br) {
  return br->error.c_str();
}
