// Core tests: the ring consumer against a producer of the same ABI in a memfd, record
// parsing, and randomized corruption. Run: make -C native/test test (or test-asan).
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "../src/core/batch.h"
#include "../src/core/record.h"
#include "../src/core/ring_reader.h"
#include "../src/core/spool_encode.h"
#include "memfd_rings.h"
#include "test_main.h"

using icmpcap::Batch;
using icmpcap::Batcher;
using icmpcap::BatchLimits;
using icmpcap::RingReader;
using icmpcap_test::MemfdRings;

namespace {

struct Seen {
  uint32_t ring;  // from icmp_id
  uint16_t seq;
  uint64_t ts;
  uint16_t cap_len;
};

// Walks a batch as JavaScript would; checks every record's framing and payload pattern.
bool walk(const Batch& b, std::vector<Seen>* out) {
  size_t off = 0;
  for (uint32_t i = 0; i < b.records; i++) {
    if (off % 8 != 0 || off + ICMPCAP_RECORD_HDR_SIZE > b.bytes) return false;
    struct icmpcap_record r;
    memcpy(&r, b.data.get() + off, sizeof(r));
    if (r.len != icmpcap::kRecordHeaderSize + r.cap_len) return false;
    if (off + r.len > b.bytes) return false;
    if (r.flags & ICMPCAP_REC_F_PAD) return false;
    const uint8_t* payload = b.data.get() + off + ICMPCAP_RECORD_HDR_SIZE;
    for (uint32_t k = 0; k < r.cap_len; k++)
      if (payload[k] != static_cast<uint8_t>(r.icmp_seq + k)) return false;
    if (out) out->push_back(Seen{r.icmp_id, r.icmp_seq, r.ts_ns, r.cap_len});
    off += icmpcap::align_record(r.len);
  }
  return off == b.bytes;
}

bool attach(RingReader& rr, MemfdRings& m) {
  std::string err;
  bool ok = rr.attach(m.consumer_bases(), m.data_size(), &err);
  if (!ok) fprintf(stderr, "  attach: %s\n", err.c_str());
  return ok;
}

}  // namespace

TEST(ring_empty_rings_yield_nothing) {
  MemfdRings m(4, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  Batcher b;
  std::string err;
  CHECK(!rr.pending());
  CHECK(rr.poll_records(b, &err));
  CHECK(b.empty());
}

TEST(ring_reads_records_in_order_and_releases_space) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  for (uint16_t i = 0; i < 10; i++) REQUIRE(m.produce(0, 1000 + i, 20 + i, i));
  CHECK(rr.pending());
  Batcher b;
  std::string err;
  REQUIRE(rr.poll_records(b, &err));
  Batch batch = b.take();
  CHECK(batch.records == 10);
  std::vector<Seen> seen;
  REQUIRE(walk(batch, &seen));
  for (uint16_t i = 0; i < 10; i++) CHECK(seen[i].seq == i && seen[i].cap_len == 20 + i);
  CHECK(m.cons(0)->consumer_pos == m.producer(0));
  CHECK(!rr.pending());
}

TEST(ring_wraparound_with_pad_records_over_many_laps) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  std::mt19937 rng(1);
  uint16_t next_prod = 0, next_cons = 0;
  uint64_t pads_seen_laps = 0;
  for (int round = 0; round < 20000; round++) {
    const int burst = static_cast<int>(rng() % 12);
    for (int k = 0; k < burst; k++) {
      const uint16_t cap = static_cast<uint16_t>(rng() % 300);
      if (!m.produce(0, next_prod, cap, next_prod)) break;
      next_prod++;
    }
    Batcher b;
    std::string err;
    REQUIRE(rr.poll_records(b, &err));
    Batch batch = b.take();
    std::vector<Seen> seen;
    REQUIRE(walk(batch, &seen));
    for (auto& s : seen) {
      REQUIRE(s.seq == next_cons);
      next_cons++;
    }
  }
  pads_seen_laps = m.producer(0) / 4096;
  CHECK(next_cons == next_prod);
  CHECK(pads_seen_laps > 100);
}

TEST(ring_batches_respect_record_and_byte_limits) {
  MemfdRings m(1, 1 << 20);
  RingReader rr;
  REQUIRE(attach(rr, m));
  for (uint32_t i = 0; i < 10000; i++) REQUIRE(m.produce(0, i, 32, static_cast<uint16_t>(i)));
  Batcher b(BatchLimits{4096, 1 << 20, 50});
  std::string err;
  REQUIRE(rr.poll_records(b, &err));
  CHECK(b.records() == 4096);
  b.take();
  REQUIRE(rr.poll_records(b, &err));
  CHECK(b.records() == 4096);
  b.take();
  REQUIRE(rr.poll_records(b, &err));
  CHECK(b.records() == 10000 - 8192);
  b.take();
  // Byte limit: 104-byte records, 10 KiB batches -> 98 records each.
  for (uint32_t i = 0; i < 1000; i++) REQUIRE(m.produce(0, i, 32, static_cast<uint16_t>(i)));
  Batcher small(BatchLimits{4096, 10240, 50});
  uint32_t total = 0;
  for (int k = 0; k < 20 && total < 1000; k++) {
    REQUIRE(rr.poll_records(small, &err));
    CHECK(small.bytes() <= 10240);
    CHECK(small.records() == std::min<uint32_t>(98, 1000 - total));
    total += small.take().records;
  }
  CHECK(total == 1000);
}

TEST(ring_oversized_record_goes_alone_into_an_empty_batch) {
  MemfdRings m(1, 1 << 18);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(0, 1, 60000, 1));
  REQUIRE(m.produce(0, 2, 60000, 2));
  Batcher b(BatchLimits{4096, 4096, 50});
  std::string err;
  REQUIRE(rr.poll_records(b, &err));
  CHECK(b.records() == 1);
  b.take();
  REQUIRE(rr.poll_records(b, &err));
  CHECK(b.records() == 1);
}

TEST(ring_many_cpus_merged_by_timestamp_exactly_once) {
  const uint32_t n = 64;
  MemfdRings m(n, 1 << 16);
  RingReader rr;
  REQUIRE(attach(rr, m));
  std::mt19937 rng(7);
  std::vector<uint64_t> ts(n, 0);
  std::vector<uint16_t> produced(n, 0);
  for (int i = 0; i < 20000; i++) {
    uint32_t r = rng() % n;
    ts[r] += 1 + rng() % 1000;
    if (m.produce(r, ts[r] * 64 + r, 16, produced[r])) produced[r]++;
  }
  std::vector<uint16_t> consumed(n, 0);
  std::string err;
  for (;;) {
    Batcher b;
    REQUIRE(rr.poll_records(b, &err));
    if (b.empty()) break;
    Batch batch = b.take();
    std::vector<Seen> seen;
    REQUIRE(walk(batch, &seen));
    for (size_t i = 1; i < seen.size(); i++) CHECK(seen[i - 1].ts <= seen[i].ts);
    for (auto& s : seen) {
      REQUIRE(s.ring < n);
      CHECK(s.seq == consumed[s.ring]);
      consumed[s.ring]++;
    }
  }
  CHECK(consumed == produced);
}

TEST(ring_full_ring_drops_and_counts_never_overwrites) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  uint32_t ok = 0, dropped = 0;
  for (uint16_t i = 0; i < 100; i++) (m.produce(0, i, 56, i) ? ok : dropped)++;
  CHECK(dropped > 0);
  CHECK(rr.total_dropped() == dropped);
  Batcher b;
  std::string err;
  REQUIRE(rr.poll_records(b, &err));
  std::vector<Seen> seen;
  Batch batch = b.take();
  REQUIRE(walk(batch, &seen));
  CHECK(seen.size() == ok);
  for (uint32_t i = 0; i < seen.size(); i++) CHECK(seen[i].seq == i);
}

TEST(ring_concurrent_producer_thread_loses_nothing) {
  MemfdRings m(2, 8192);
  RingReader rr;
  REQUIRE(attach(rr, m));
  const uint32_t total = 200000;
  std::atomic<bool> done{false};
  std::thread producer([&] {
    for (uint32_t i = 0; i < total; i++) {
      const uint32_t r = i & 1;
      while (!m.produce(r, i, static_cast<uint16_t>(i % 200), static_cast<uint16_t>(i >> 1))) {
        m.hdr(r)->dropped--;  // not a drop: the test waits for space instead
        std::this_thread::yield();
      }
    }
    done = true;
  });
  std::vector<uint16_t> next(2, 0);
  uint32_t got = 0;
  std::string err;
  bool ok = true;
  while (ok && (got < total)) {
    Batcher b;
    if (!rr.poll_records(b, &err)) {
      fprintf(stderr, "  %s\n", err.c_str());
      ok = false;
      break;
    }
    Batch batch = b.take();
    std::vector<Seen> seen;
    if (!walk(batch, &seen)) ok = false;
    for (auto& s : seen) {
      if (s.seq != next[s.ring]) ok = false;
      next[s.ring]++;
      got++;
    }
    if (seen.empty()) std::this_thread::yield();
  }
  producer.join();
  CHECK(ok);
  CHECK(got == total);
}

// --- corruption: each must end with a clear error, never a crash or a loop ---

static bool expect_corrupt(MemfdRings& m, RingReader& rr, const char* needle) {
  Batcher b;
  std::string err;
  const bool ok = rr.poll_records(b, &err);
  if (ok) return false;
  if (err.find(needle) == std::string::npos) {
    fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err.c_str(), needle);
    return false;
  }
  (void)m;
  return true;
}

TEST(ring_corrupt_producer_pos_ahead_by_more_than_data_size) {
  MemfdRings m(2, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(1, 1, 10, 1));
  m.hdr(1)->producer_pos = 4096 + 8 + 999;
  CHECK(expect_corrupt(m, rr, "more than data_size"));
  m.hdr(1)->producer_pos = ~0ull;  // "behind" the consumer
  CHECK(expect_corrupt(m, rr, "more than data_size"));
}

TEST(ring_corrupt_producer_pos_not_on_a_record_boundary) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  m.hdr(0)->producer_pos = 4;
  CHECK(expect_corrupt(m, rr, "record boundary"));
}

TEST(ring_corrupt_record_len_smaller_than_header) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(0, 1, 10, 1));
  reinterpret_cast<icmpcap_record*>(m.data(0))->len = 40;
  CHECK(expect_corrupt(m, rr, "smaller than the record header"));
}

TEST(ring_corrupt_record_len_beyond_producer_or_end) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(0, 1, 10, 1));
  auto* r = reinterpret_cast<icmpcap_record*>(m.data(0));
  r->len = 72 + 500;
  r->cap_len = 500;
  CHECK(expect_corrupt(m, rr, "crosses the end"));
  // A record that would cross the end of the data area.
  MemfdRings m2(1, 4096);
  RingReader rr2;
  REQUIRE(attach(rr2, m2));
  for (int i = 0; i < 40; i++) REQUIRE(m2.produce(0, 1, 16, 1));  // 88 bytes each: 3520
  m2.hdr(0)->producer_pos = 4096;
  auto* last = reinterpret_cast<icmpcap_record*>(m2.data(0) + 3520);
  last->len = 72 + 1000;
  last->cap_len = 1000;
  last->orig_len = 1000;
  last->family = 4;
  last->flags = 0;
  CHECK(expect_corrupt(m2, rr2, "crosses the end"));
}

TEST(ring_corrupt_cap_len_inconsistent_with_len) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(0, 1, 10, 1));
  reinterpret_cast<icmpcap_record*>(m.data(0))->cap_len = 9;
  CHECK(expect_corrupt(m, rr, "cap_len inconsistent"));
  reinterpret_cast<icmpcap_record*>(m.data(0))->cap_len = 10;
  reinterpret_cast<icmpcap_record*>(m.data(0))->orig_len = 5;
  CHECK(expect_corrupt(m, rr, "cap_len larger than orig_len"));
}

TEST(ring_corrupt_pad_lengths_cannot_loop) {
  MemfdRings m(1, 4096);
  RingReader rr;
  REQUIRE(attach(rr, m));
  REQUIRE(m.produce(0, 1, 10, 1));
  auto* r = reinterpret_cast<icmpcap_record*>(m.data(0));
  r->flags = ICMPCAP_REC_F_PAD;
  r->len = 0;
  CHECK(expect_corrupt(m, rr, "pad record shorter"));
  r->len = 0xfffffffcu;  // would wrap to 0 in 32-bit alignment arithmetic
  CHECK(expect_corrupt(m, rr, "pad record longer"));
}

TEST(ring_attach_rejects_inconsistent_headers) {
  MemfdRings m(2, 4096);
  RingReader rr;
  std::string err;
  m.hdr(1)->data_size = 8192;
  CHECK(!rr.attach(m.consumer_bases(), 4096, &err) && err.find("data_size") != std::string::npos);
  m.hdr(1)->data_size = 4096;
  m.hdr(0)->abi_version = 99;
  CHECK(!rr.attach(m.consumer_bases(), 4096, &err) && err.find("abi_version") != std::string::npos);
  m.hdr(0)->abi_version = ICMPCAP_ABI_VERSION;
  CHECK(!rr.attach(m.consumer_bases(), 3000, &err));
  CHECK(rr.attach(m.consumer_bases(), 4096, &err));
}

TEST(ring_random_corruptions_never_crash_or_loop) {
  const char* env = getenv("ICMPCAP_FUZZ_ITERATIONS");
  const long iterations = env ? atol(env) : 1000000;
  MemfdRings m(2, 4096);
  std::mt19937_64 rng(42);
  uint64_t ok_polls = 0, corrupt_polls = 0, records = 0;
  for (long it = 0; it < iterations; it++) {
    // Lay out a valid state: consumer at c, a few records after it (possibly wrapping).
    const uint64_t c = (rng() % 1024) * 8 + (rng() % 4) * 4096;
    for (uint32_t r = 0; r < 2; r++) {
      m.cons(r)->consumer_pos = c;
      m.hdr(r)->producer_pos = c;
    }
    // Write records directly (MemfdRings::produce keeps its own position).
    for (uint32_t r = 0; r < 2; r++) {
      uint64_t pos = c;
      const int n = static_cast<int>(rng() % 6);
      for (int k = 0; k < n; k++) {
        const uint16_t cap = static_cast<uint16_t>(rng() % 200);
        const uint64_t need = ICMPCAP_ALIGN(72u + cap);
        const uint64_t off = pos & 4095;
        if (off + need > 4096) {
          auto* pad = reinterpret_cast<icmpcap_record*>(m.data(r) + off);
          pad->len = static_cast<uint32_t>(4096 - off);
          pad->flags = ICMPCAP_REC_F_PAD;
          pos += 4096 - off;
        }
        if (pos + need - c > 4096) break;
        auto* rec = reinterpret_cast<icmpcap_record*>(m.data(r) + (pos & 4095));
        memset(rec, 0, 72);
        rec->len = 72u + cap;
        rec->cap_len = cap;
        rec->orig_len = cap + 1u;
        rec->family = (k & 1) ? 4 : 6;
        rec->ts_ns = pos;
        pos += need;
      }
      m.hdr(r)->producer_pos = pos;
    }
    // Corrupt 1-4 things: a random byte in the published area, a header field, or a position.
    const int nc = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < nc; k++) {
      const uint32_t r = rng() % 2;
      switch (rng() % 5) {
        case 0:
          m.hdr(r)->producer_pos += (rng() % 64) - 32;
          break;
        case 1:
          m.hdr(r)->producer_pos = rng();
          break;
        case 2: {
          const uint64_t off = (c + (rng() % 512)) & 4095;
          m.data(r)[off] = static_cast<uint8_t>(rng());
          break;
        }
        case 3: {
          if ((c & 4095) + 72 > 4096) break;  // the header itself would leave the data area
          auto* rec = reinterpret_cast<icmpcap_record*>(m.data(r) + (c & 4095));
          rec->len = static_cast<uint32_t>(rng());
          break;
        }
        default: {
          if ((c & 4095) + 72 > 4096) break;
          auto* rec = reinterpret_cast<icmpcap_record*>(m.data(r) + (c & 4095));
          rec->cap_len = static_cast<uint16_t>(rng());
          if (rng() & 1) rec->flags ^= ICMPCAP_REC_F_PAD;
          break;
        }
      }
    }
    RingReader rr;
    std::string err;
    // The consumer attaches to whatever is there: attach may already refuse.
    if (!rr.attach(m.consumer_bases(), 4096, &err)) {
      corrupt_polls++;
      continue;
    }
    Batcher b(BatchLimits{64, 4096, 50});
    bool good = true;
    for (int poll = 0; poll < 4 && good; poll++) {  // bounded: each poll makes progress or ends
      good = rr.poll_records(b, &err);
      Batch batch = b.take();
      std::vector<Seen> seen;
      // Whatever came out must be well-framed (payload patterns are random here).
      size_t off = 0;
      for (uint32_t i = 0; i < batch.records; i++) {
        icmpcap_record rec;
        REQUIRE(off + 72 <= batch.bytes);
        memcpy(&rec, batch.data.get() + off, 72);
        REQUIRE(rec.len == 72u + rec.cap_len);
        REQUIRE(!(rec.flags & ICMPCAP_REC_F_PAD));
        off += icmpcap::align_record(rec.len);
        records++;
      }
      REQUIRE(off == batch.bytes);
    }
    (good ? ok_polls : corrupt_polls)++;
  }
  fprintf(stderr, "  %ld iterations: %llu clean, %llu detected corrupt, %llu records out\n",
          iterations, static_cast<unsigned long long>(ok_polls),
          static_cast<unsigned long long>(corrupt_polls), static_cast<unsigned long long>(records));
  CHECK(corrupt_polls > 0);
  CHECK(ok_polls > 0);
}

// --- packet parsing (AF_PACKET path) ---

static std::vector<uint8_t> ipv4_echo(uint8_t type, uint16_t id, uint16_t seq, uint8_t ttl) {
  std::vector<uint8_t> p(20 + 8 + 16, 0);
  p[0] = 0x45;
  p[2] = 0;
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = ttl;
  p[9] = 1;
  uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
  memcpy(&p[12], src, 4);
  memcpy(&p[16], dst, 4);
  p[20] = type;
  p[24] = id >> 8;
  p[25] = id & 0xff;
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  return p;
}

TEST(parse_ipv4_echo_request) {
  auto p = ipv4_echo(8, 0x1234, 7, 61);
  p[3] = 84;  // the first 44 bytes of an 84-byte packet
  icmpcap_record r;
  REQUIRE(icmpcap::describe_ip_packet(p.data(), static_cast<uint32_t>(p.size()), 84, &r));
  CHECK(r.family == 4 && r.ttl == 61 && r.icmp_type == 8 && r.icmp_id == 0x1234 && r.icmp_seq == 7);
  CHECK(r.flags == (ICMPCAP_REC_F_HAS_ECHO | ICMPCAP_REC_F_TRUNCATED));
  CHECK(r.cap_len == p.size() && r.orig_len == 84 && r.len == 72 + p.size());
  CHECK(r.saddr[0] == 10 && r.saddr[3] == 1 && r.daddr[3] == 2);
}

TEST(parse_ipv4_non_echo_and_fragments) {
  auto p = ipv4_echo(3, 0x1234, 7, 61);  // destination unreachable: no id/seq
  icmpcap_record r;
  REQUIRE(icmpcap::describe_ip_packet(p.data(), static_cast<uint32_t>(p.size()),
                                      static_cast<uint32_t>(p.size()), &r));
  CHECK(r.icmp_type == 3 && r.icmp_id == 0 && r.icmp_seq == 0 && r.flags == 0);
  p = ipv4_echo(8, 1, 1, 64);
  p[6] = 0x00;
  p[7] = 0x10;  // fragment offset 16: no ICMP header here
  REQUIRE(icmpcap::describe_ip_packet(p.data(), static_cast<uint32_t>(p.size()),
                                      static_cast<uint32_t>(p.size()), &r));
  CHECK(!(r.flags & ICMPCAP_REC_F_HAS_ECHO) && r.icmp_type == 0);
  p[9] = 6;  // TCP
  CHECK(!icmpcap::describe_ip_packet(p.data(), static_cast<uint32_t>(p.size()), 40, &r));
}

TEST(parse_ipv6_echo_reply) {
  std::vector<uint8_t> p(48, 0);
  p[0] = 0x60;
  p[5] = 8;  // payload length
  p[6] = 58;
  p[7] = 255;
  p[8] = 0xfd;
  p[39] = 2;
  p[40] = 129;
  p[44] = 0xab;
  p[45] = 0xcd;
  p[46] = 0;
  p[47] = 9;
  icmpcap_record r;
  REQUIRE(icmpcap::describe_ip_packet(p.data(), 48, 48, &r));
  CHECK(r.family == 6 && r.ttl == 255 && r.icmp_type == 129 && r.icmp_id == 0xabcd &&
        r.icmp_seq == 9 && r.flags == ICMPCAP_REC_F_HAS_ECHO);
  CHECK(r.saddr[0] == 0xfd && r.daddr[15] == 2);
  CHECK(!icmpcap::describe_ip_packet(p.data(), 39, 48, &r));  // shorter than the IPv6 header
}

TEST(parse_random_packets_never_read_out_of_bounds) {
  std::mt19937 rng(3);
  int accepted = 0;
  for (int i = 0; i < 200000; i++) {
    const uint32_t len = rng() % 80;
    std::vector<uint8_t> p(len);  // exact size: ASan catches any overread
    for (auto& b : p) b = static_cast<uint8_t>(rng());
    if (len > 0 && (rng() & 1)) p[0] = (rng() & 1) ? 0x45 : 0x60;
    if (len > 9 && (rng() & 1)) p[9] = 1;
    if (len > 6 && (rng() & 1)) p[6] = 58;
    icmpcap_record r;
    if (icmpcap::describe_ip_packet(p.data(), len, rng() % 200, &r)) {
      accepted++;
      // Up to the IP length when the header gives one shorter than what arrived.
      CHECK(r.len == 72u + r.cap_len && r.cap_len <= len && r.orig_len >= r.cap_len);
    }
  }
  CHECK(accepted > 0);
}

// The spool's block encoder on batches with any bytes in them: it never reads or writes outside
// what it was given (ASan: exact-size vectors), never loops, and on a well-formed batch with room
// writes the sizes the format says (every block's total at both ends, offsets increasing).
TEST(spool_encode_random_batches_stay_in_bounds) {
  std::mt19937 rng(20261201);
  const uint32_t pairs[] = {1, 0, 5, 1, 0xffffffffu, 2};
  const icmpcap::SpoolInterfaces table{pairs, 3};
  int done = 0, stopped = 0;
  for (int it = 0; it < 20000; it++) {
    // A well-formed batch of 0-20 records, then (often) one corrupted byte.
    std::vector<uint8_t> batch;
    const int n = static_cast<int>(rng() % 21);
    uint32_t records = 0;
    for (int k = 0; k < n; k++) {
      const size_t at = batch.size();
      if (rng() % 10 == 0) {
        const uint32_t pad = 8 + rng() % 32;
        batch.resize(at + icmpcap::align_record(pad));
        icmpcap_record pr{};
        pr.len = pad;
        pr.flags = ICMPCAP_REC_F_PAD;
        memcpy(batch.data() + at, &pr, 8);
        continue;
      }
      const uint16_t cap = static_cast<uint16_t>(rng() % 300);
      batch.resize(at + icmpcap::align_record(72u + cap));
      icmpcap_record r{};
      r.len = 72u + cap;
      r.cap_len = cap;
      r.orig_len = cap;
      r.dir = static_cast<uint8_t>(rng() % 4);
      r.ifindex = pairs[2 * (rng() % 3)];
      r.ts_ns = (static_cast<uint64_t>(rng()) << 32) | rng();
      memcpy(batch.data() + at, &r, sizeof(r));
      for (uint32_t b = 0; b < cap; b++) batch[at + 72 + b] = static_cast<uint8_t>(rng());
      records++;
    }
    const bool corrupt = !batch.empty() && rng() % 2;
    if (corrupt) batch[rng() % batch.size()] = static_cast<uint8_t>(rng());
    const size_t room = rng() % 2 ? batch.size() + 64 : rng() % (batch.size() + 64);
    std::vector<uint8_t> out(room);
    std::vector<double> offsets(rng() % 2 ? records + 1 : rng() % (records + 1));
    auto r = icmpcap::encode_spool_blocks(batch.data(), batch.size(), 0, out.data(), out.size(), 0,
                                          table, offsets.empty() ? nullptr : offsets.data(),
                                          offsets.size(), 0, 1000.0);
    CHECK(r.out_at <= out.size() && r.src_at <= batch.size() + 8);
    // The layout alone (out null, what the spool does on the loop) writes nothing and says the
    // same: where each block goes and where they end; never "no room", so it may lay out past an
    // encode that ran out of it, the same up to there.
    std::vector<double> laid(offsets.size(), -1.0);
    auto l =
        icmpcap::layout_spool_blocks(batch.data(), batch.size(), 0, 0, table,
                                     laid.empty() ? nullptr : laid.data(), laid.size(), 0, 1000.0);
    CHECK(l.status != icmpcap::SpoolEncodeStatus::kNoRoom);
    if (r.status != icmpcap::SpoolEncodeStatus::kNoRoom)
      CHECK(l.status == r.status && l.src_at == r.src_at && l.out_at == r.out_at &&
            l.count == r.count && l.detail == r.detail);
    else
      CHECK(l.count >= r.count && l.out_at >= r.out_at && l.src_at >= r.src_at);
    for (uint32_t i = 0; i < r.count && !offsets.empty(); i++) CHECK(laid[i] == offsets[i]);
    if (r.status == icmpcap::SpoolEncodeStatus::kDone) {
      done++;
      if (!corrupt) CHECK(r.count == records);
      // Every block: type 6, its total at both ends, at the offset recorded.
      size_t o = 0;
      for (uint32_t i = 0; i < r.count; i++) {
        uint32_t type, total, tail;
        memcpy(&type, out.data() + o, 4);
        memcpy(&total, out.data() + o + 4, 4);
        CHECK(type == 6 && total >= 32 && total % 4 == 0 && o + total <= r.out_at);
        memcpy(&tail, out.data() + o + total - 4, 4);
        CHECK(tail == total);
        if (!offsets.empty()) CHECK(offsets[i] == 1000.0 + static_cast<double>(o));
        o += total;
      }
      CHECK(o == r.out_at);
    } else {
      stopped++;
    }
  }
  CHECK(done > 1000 && stopped > 1000);
}

int main(int argc, char** argv) { return t::run_all(argc > 1 ? argv[1] : nullptr); }
