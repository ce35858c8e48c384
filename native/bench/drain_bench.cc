// native.drain_records_per_s: how fast the core's RingReader drains records from rings laid
// out exactly as icmpcap.ko lays them out (a memfd producer, test/memfd_rings.h) into
// batches of the JavaScript format. Production is excluded from the timing: the rings are
// filled, then drained, over many rounds. Prints one JSON object.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <string>

#include "../src/core/batch.h"
#include "../src/core/ring_reader.h"
#include "../test/memfd_rings.h"

using icmpcap::Batch;
using icmpcap::Batcher;
using icmpcap::RingReader;

static double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  const uint32_t rings = argc > 1 ? atoi(argv[1]) : 2;
  const uint16_t cap_len = argc > 2 ? atoi(argv[2]) : 64;
  const double min_seconds = argc > 3 ? atof(argv[3]) : 2.0;
  const uint64_t data_size = 8u << 20;
  icmpcap_test::MemfdRings m(rings, data_size);
  RingReader rr;
  std::string err;
  if (!rr.attach(m.consumer_bases(), data_size, &err)) {
    fprintf(stderr, "attach: %s\n", err.c_str());
    return 1;
  }
  uint64_t drained = 0, batches = 0, bytes = 0;
  double busy = 0;
  uint64_t ts = 0;
  uint16_t seq = 0;
  while (busy < min_seconds) {
    // Fill: interleaved timestamps so the merge has real work.
    for (;;) {
      bool any = false;
      for (uint32_t r = 0; r < rings; r++) any |= m.produce(r, ts++, cap_len, seq++);
      if (!any) break;
    }
    for (uint32_t r = 0; r < rings; r++) m.hdr(r)->dropped = 0;
    const double t0 = now_s();
    for (;;) {
      Batcher b;
      if (!rr.poll_records(b, &err)) {
        fprintf(stderr, "corrupt: %s\n", err.c_str());
        return 1;
      }
      if (b.empty()) break;
      Batch batch = b.take();
      drained += batch.records;
      bytes += batch.bytes;
      batches++;
    }
    busy += now_s() - t0;
  }
  printf(
      "{\"records\":%llu,\"batches\":%llu,\"bytes\":%llu,\"seconds\":%.4f,"
      "\"records_per_s\":%.0f,\"rings\":%u,\"record_bytes\":%u}\n",
      (unsigned long long)drained, (unsigned long long)batches, (unsigned long long)bytes, busy,
      drained / busy, rings, (unsigned)ICMPCAP_ALIGN(72u + cap_len));
  return 0;
}
