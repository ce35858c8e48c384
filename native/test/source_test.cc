// Core tests of the reader loop (RingSource over memfd rings), the packet decoder and the
// AF_PACKET filter program (run by a classic BPF interpreter here, by the kernel in the
// host tests). Linked into core_test; run: make -C native/test test (or test-asan).
#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "../src/core/bpf_filter.h"
#include "../src/core/decode.h"
#include "../src/core/ring_source.h"
#include "memfd_rings.h"
#include "test_main.h"

using icmpcap_test::MemfdRings;

namespace {

// Memfd rings with a wake fd that is readable exactly while a ring holds unread records,
// as /dev/icmpcap is.
class MemfdSource final : public icmpcap::RingSource {
 public:
  MemfdSource(MemfdRings& m, icmpcap::BatchLimits lim)
      : RingSource(icmpcap::SourceKind::kModule, lim), m_(m) {
    std::string err;
    if (!reader_.attach(m.consumer_bases(), m.data_size(), &err)) throw std::runtime_error(err);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    setup_loop(wake_, {});
  }
  ~MemfdSource() override {
    close();
    ::close(wake_);
  }
  void signal() {
    uint64_t one = 1;
    if (write(wake_, &one, sizeof(one)) < 0) abort();
  }

 protected:
  bool on_wake(uint32_t) override {
    if (!reader_.pending()) {
      uint64_t v;
      if (read(wake_, &v, sizeof(v)) < 0) {
      }
    }
    return true;
  }
  void release() override { close_loop(); }
  void fill_stats(icmpcap::Stats&) override {}

 private:
  MemfdRings& m_;
  int wake_ = -1;
};

struct CountingSink : icmpcap::Sink {
  std::mutex mu;
  uint64_t records = 0;
  uint64_t bytes = 0;
  bool refuse = false;  // deliver() fails, as a closing ThreadSafeFunction does
  std::atomic<bool> stopped{false};
  bool can_accept() override { return true; }
  bool deliver(icmpcap::Batch&& b) override {
    if (refuse) return false;
    std::lock_guard<std::mutex> lock(mu);
    records += b.records;
    bytes += b.bytes;
    return true;
  }
  void event(icmpcap::Event&& ev) override {
    if (ev.type == icmpcap::EventType::kStopped) stopped = true;
  }
  uint64_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return records;
  }
};

// 1,500-byte records (large pings at the default snap length would be 256; ICMP errors
// and big pings at larger snap lengths come this big), spread over rings.
void produce_big(MemfdRings& m, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    REQUIRE(m.produce(i % m.rings(), 1000 + i, 1500 - 72, uint16_t(i)));
}

}  // namespace

TEST(reader_loop_drains_big_records_without_spinning) {
  MemfdRings m(2, 4u << 20);
  produce_big(m, 4000);  // 6 MB: several 1 MiB batches, none of them full by records
  CountingSink sink;
  MemfdSource src(m, icmpcap::BatchLimits{});
  src.start(&sink);
  src.signal();
  for (int i = 0; i < 2000 && sink.count() < 4000; i++) usleep(1000);
  const icmpcap::Stats st = src.stats();
  src.stop();
  CHECK(sink.count() == 4000);
  // One wake-up, one per flush interval at most: a reader that spins until the flush timer
  // fires wakes up thousands of times.
  fprintf(stderr, "  wakeups %llu for %llu batches\n", (unsigned long long)st.wakeups,
          (unsigned long long)st.batches);
  CHECK(st.wakeups < 20);
}

TEST(reader_stop_drains_every_big_record) {
  MemfdRings m(2, 4u << 20);
  produce_big(m, 4000);
  CountingSink sink;
  MemfdSource src(m, icmpcap::BatchLimits{});
  src.start(&sink);
  src.stop();  // drain_all at stop: everything, in full batches
  const icmpcap::Stats st = src.stats();
  CHECK(sink.count() == 4000);
  CHECK(st.captured == 4000 && st.delivered == 4000 && st.dropped_ring == 0);
  CHECK(sink.stopped.load());
}

TEST(reader_counts_undelivered_batches_as_lost_not_delivered) {
  MemfdRings m(1, 1u << 20);
  for (uint16_t i = 0; i < 100; i++) REQUIRE(m.produce(0, i, 64, i));
  CountingSink sink;
  sink.refuse = true;
  MemfdSource src(m, icmpcap::BatchLimits{});
  src.start(&sink);
  src.stop();
  const icmpcap::Stats st = src.stats();
  CHECK(st.captured == 100);
  CHECK(st.delivered == 0);
  CHECK(st.dropped_ring == 100);
  CHECK(st.captured == st.delivered + st.dropped_ring);
}

TEST(reader_counts_what_a_corrupt_ring_takes_with_it) {
  MemfdRings m(1, 1u << 16);
  for (uint16_t i = 0; i < 10; i++) REQUIRE(m.produce(0, i, 64, i));
  // Corrupt the 4th record's length: records 4..10 are abandoned with the ring.
  auto* rec = reinterpret_cast<struct icmpcap_record*>(m.data(0) + 3 * ICMPCAP_ALIGN(72 + 64));
  rec->len = 3;
  CountingSink sink;
  MemfdSource src(m, icmpcap::BatchLimits{});
  src.start(&sink);
  src.signal();
  for (int i = 0; i < 2000 && !sink.stopped.load(); i++) usleep(1000);
  src.stop();
  const icmpcap::Stats st = src.stats();
  CHECK(sink.count() == 3);
  fprintf(stderr, "  captured %llu dropped_ring %llu\n", (unsigned long long)st.captured,
          (unsigned long long)st.dropped_ring);
  CHECK(st.captured == 3 && st.dropped_ring == 7);
}

// --- decoding: the odd-packet set -------------------------------------------------------

namespace {

std::vector<uint8_t> v4(uint8_t type, uint16_t frag, size_t payload) {
  std::vector<uint8_t> p(20 + payload, 0);
  p[0] = 0x45;
  p[2] = uint8_t(p.size() >> 8);
  p[3] = uint8_t(p.size());
  p[6] = uint8_t(frag >> 8);
  p[7] = uint8_t(frag);
  p[8] = 64;
  p[9] = 1;
  p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
  if (payload >= 8) {
    p[20] = type;
    p[24] = 0x12, p[25] = 0x34, p[26] = 0, p[27] = 7;
  }
  return p;
}

// IPv6 with the given extension headers (next-header numbers) before `last`.
std::vector<uint8_t> v6(const std::vector<uint8_t>& ext, uint8_t last, uint8_t type,
                        uint16_t frag_off = 0, bool more = false) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x60;
  p[6] = ext.empty() ? last : ext[0];
  p[7] = 1;
  p[8] = 0xfe, p[9] = 0x80, p[23] = 1, p[24] = 0xff, p[25] = 0x02, p[39] = 0x16;
  for (size_t i = 0; i < ext.size(); i++) {
    const uint8_t next = i + 1 < ext.size() ? ext[i + 1] : last;
    std::vector<uint8_t> h(8, 0);
    h[0] = next;
    if (ext[i] == 44) {
      h[2] = uint8_t(frag_off >> 8);
      h[3] = uint8_t((frag_off & 0xf8) | (more ? 1 : 0));
    } else if (ext[i] == 51) {
      h.resize(12, 0);
      h[1] = 1;  // (1 + 2) * 4 = 12 bytes
    } else {
      h[2] = 5, h[3] = 2;  // router alert option
    }
    p.insert(p.end(), h.begin(), h.end());
  }
  std::vector<uint8_t> icmp(8, 0);
  icmp[0] = type;
  icmp[4] = 0xab, icmp[5] = 0xcd, icmp[7] = 3;
  p.insert(p.end(), icmp.begin(), icmp.end());
  p[4] = uint8_t((p.size() - 40) >> 8);
  p[5] = uint8_t(p.size() - 40);
  return p;
}

struct Decoded {
  bool ok;
  icmpcap_record r;
};
Decoded decode(const std::vector<uint8_t>& p, uint32_t orig = 0) {
  Decoded d;
  d.ok = icmpcap_describe_ip(p.data(), uint32_t(p.size()), orig ? orig : uint32_t(p.size()), &d.r);
  return d;
}

}  // namespace

TEST(decode_ipv4_fragments_are_flagged_and_non_first_never_typed) {
  auto first = decode(v4(8, 0x2000, 1480));  // MF, offset 0
  CHECK(first.ok && first.r.icmp_type == 8 && first.r.icmp_seq == 7);
  CHECK(first.r.flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_HAS_ECHO));
  auto rest = v4(0, 185, 100);  // offset 185 * 8, last fragment
  rest[20] = 8;                 // bytes that happen to look like an echo request
  auto nf = decode(rest);
  CHECK(nf.ok && nf.r.flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_NOT_FIRST));
  CHECK(nf.r.icmp_type == 0 && nf.r.icmp_code == 0 && nf.r.icmp_id == 0 && nf.r.icmp_seq == 0);
  CHECK(nf.r.family == 4 && nf.r.ttl == 64 && nf.r.saddr[3] == 1);
}

TEST(decode_ipv4_short_icmp_header) {
  auto p = v4(8, 0, 4);
  p[20] = 3;
  p[21] = 1;
  auto d = decode(p);
  CHECK(d.ok && d.r.icmp_type == 3 && d.r.icmp_code == 1 && d.r.flags == ICMPCAP_REC_F_SHORT);
  // Cut by the snap length is not short: truncated.
  auto big = v4(8, 0, 64);
  auto t = icmpcap_record{};
  CHECK(icmpcap_describe_ip(big.data(), 24, 84, &t) && t.flags == ICMPCAP_REC_F_TRUNCATED &&
        t.icmp_type == 8);
}

TEST(decode_stops_at_the_ip_length_not_at_link_padding) {
  // A 4-byte ICMP header in a 60-byte Ethernet frame: 22 bytes of padding after the packet.
  auto p = v4(8, 0, 4);
  p[20] = 8;
  p.resize(46, 0);
  auto d = decode(p);
  CHECK(d.ok && d.r.orig_len == 24 && d.r.cap_len == 24 && d.r.len == ICMPCAP_RECORD_HDR_SIZE + 24);
  CHECK(d.r.flags == ICMPCAP_REC_F_SHORT && d.r.icmp_type == 8 && d.r.icmp_id == 0);
  auto q = v6({}, 58, 128);
  q.resize(q.size() + 10, 0xee);
  auto e = decode(q);
  CHECK(e.ok && e.r.orig_len == 48 && e.r.cap_len == 48 && e.r.flags == ICMPCAP_REC_F_HAS_ECHO);
  // A length beyond what arrived is left alone (the kernel drops it; AF_PACKET shows it).
  auto r = v4(8, 0, 64);
  r[3] = 200;
  CHECK(decode(r).ok && decode(r).r.orig_len == 84);
}

TEST(decode_ipv6_walks_extension_headers) {
  auto mld = decode(v6({0}, 58, 143));  // MLDv2 report behind hop-by-hop (router alert)
  CHECK(mld.ok && mld.r.family == 6 && mld.r.icmp_type == 143 && mld.r.flags == 0);
  auto dst = decode(v6({60}, 58, 128));
  CHECK(dst.ok && dst.r.icmp_type == 128 && dst.r.icmp_id == 0xabcd && dst.r.icmp_seq == 3);
  auto chain = decode(v6({0, 60, 43, 51}, 58, 129));
  CHECK(chain.ok && chain.r.icmp_type == 129 && (chain.r.flags & ICMPCAP_REC_F_HAS_ECHO));
  auto first = decode(v6({44}, 58, 128, 0, true));
  CHECK(first.ok && first.r.icmp_type == 128 &&
        first.r.flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_HAS_ECHO));
  auto atomic = decode(v6({44}, 58, 128, 0, false));  // offset 0, no M flag: not a fragment
  CHECK(atomic.ok && atomic.r.flags == ICMPCAP_REC_F_HAS_ECHO && atomic.r.icmp_type == 128);
  auto nf = decode(v6({44}, 58, 128, 1448, false));
  CHECK(nf.ok && nf.r.flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_NOT_FIRST) &&
        nf.r.icmp_type == 0 && nf.r.icmp_id == 0);
  CHECK(!decode(v6({60}, 6, 0)).ok);      // TCP behind destination options
  CHECK(!decode(v6({44}, 17, 0, 8)).ok);  // a UDP fragment
}

// --- the filter program, run by a classic BPF interpreter -------------------------------

namespace {

// Runs prog on frame (SOCK_DGRAM: offset 0 is the network header or an inline tag).
uint32_t run_bpf(const std::vector<sock_filter>& prog, const std::vector<uint8_t>& frame,
                 uint16_t proto, uint32_t pkttype = PACKET_HOST) {
  uint32_t A = 0, X = 0, M[16] = {};
  const uint32_t len = uint32_t(frame.size());
  auto load = [&](uint32_t off, uint32_t size, bool* ok) -> uint32_t {
    if (off >= uint32_t(SKF_AD_OFF)) {
      if (off == uint32_t(SKF_AD_OFF + SKF_AD_PROTOCOL)) return proto;
      if (off == uint32_t(SKF_AD_OFF + SKF_AD_PKTTYPE)) return pkttype;
      *ok = false;
      return 0;
    }
    if (off + size > len || off + size < off) {
      *ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (uint32_t i = 0; i < size; i++) v = v << 8 | frame[off + i];
    return v;
  };
  for (size_t pc = 0; pc < prog.size(); pc++) {
    const sock_filter& f = prog[pc];
    const uint32_t size = BPF_SIZE(f.code) == BPF_W ? 4 : BPF_SIZE(f.code) == BPF_H ? 2 : 1;
    bool ok = true;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS)
          A = load(f.k, size, &ok);
        else if (BPF_MODE(f.code) == BPF_IND)
          A = load(X + f.k, size, &ok);
        else if (BPF_MODE(f.code) == BPF_IMM)
          A = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM)
          A = M[f.k];
        else
          abort();
        if (!ok) return 0;
        break;
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_IMM)
          X = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM)
          X = M[f.k];
        else
          abort();
        break;
      case BPF_ST:
        M[f.k] = A;
        break;
      case BPF_STX:
        M[f.k] = X;
        break;
      case BPF_ALU: {
        const uint32_t v = BPF_SRC(f.code) == BPF_X ? X : f.k;
        switch (BPF_OP(f.code)) {
          case BPF_ADD:
            A += v;
            break;
          case BPF_AND:
            A &= v;
            break;
          case BPF_LSH:
            A = v < 32 ? A << v : 0;
            break;
          case BPF_RSH:
            A = v < 32 ? A >> v : 0;
            break;
          default:
            abort();
        }
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        bool c;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ:
            c = A == f.k;
            break;
          case BPF_JSET:
            c = (A & f.k) != 0;
            break;
          case BPF_JGT:
            c = A > f.k;
            break;
          case BPF_JGE:
            c = A >= f.k;
            break;
          default:
            abort();
        }
        pc += c ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? A : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX)
          X = A;
        else
          A = X;
        break;
      default:
        abort();
    }
  }
  abort();  // fell off the end
}

std::vector<sock_filter> build(const icmpcap_filter_spec* spec, uint32_t snaplen = 256) {
  std::vector<sock_filter> prog(ICMPCAP_BPF_MAX_INSNS);
  const int n = icmpcap_bpf_build(spec, snaplen, prog.data(), ICMPCAP_BPF_MAX_INSNS);
  if (n <= 0 || n > BPF_MAXINSNS) abort();
  prog.resize(size_t(n));
  return prog;
}

std::vector<uint8_t> tagged(std::vector<uint8_t> p, uint16_t inner, int tags = 1) {
  for (int i = 0; i < tags; i++) {
    const uint16_t type = i == 0 ? inner : 0x8100;
    p.insert(p.begin(), {0x00, 0x0a, uint8_t(type >> 8), uint8_t(type)});
  }
  return p;
}

void set_bit(uint8_t* bm, unsigned v) { bm[v / 8] |= uint8_t(1u << (v % 8)); }

}  // namespace

TEST(filter_accepts_what_the_decoder_describes_and_nothing_else) {
  auto prog = build(nullptr);
  CHECK(run_bpf(prog, v4(8, 0, 64), 0x0800) == 256 + ICMPCAP_BPF_TAG_ROOM);
  CHECK(run_bpf(prog, v4(8, 0x2000, 1480), 0x0800) > 0);  // first fragment
  CHECK(run_bpf(prog, v4(0, 185, 100), 0x0800) > 0);      // non-first fragment
  CHECK(run_bpf(prog, v6({0}, 58, 143), 0x86dd) > 0);     // MLD behind hop-by-hop
  CHECK(run_bpf(prog, v6({60}, 58, 128), 0x86dd) > 0);
  CHECK(run_bpf(prog, v6({0, 60, 43, 51}, 58, 129), 0x86dd) > 0);
  CHECK(run_bpf(prog, v6({44}, 58, 128, 0, true), 0x86dd) > 0);
  CHECK(run_bpf(prog, v6({44}, 58, 128, 1448), 0x86dd) > 0);
  // Inline 802.1Q (and QinQ) tags before the IP header.
  CHECK(run_bpf(prog, tagged(v4(8, 0, 64), 0x0800), 0x8100) > 0);
  CHECK(run_bpf(prog, tagged(v6({0}, 58, 143), 0x86dd), 0x8100) > 0);
  CHECK(run_bpf(prog, tagged(v4(8, 0, 64), 0x0800, 2), 0x88a8) > 0);
  std::vector<uint8_t> f = tagged(v4(8, 0, 64), 0x0800, 2);
  CHECK(icmpcap_ip_offset(f.data(), uint32_t(f.size()), 0x88a8) == 8);
  // Not ICMP.
  auto tcp = v4(8, 0, 64);
  tcp[9] = 6;
  CHECK(run_bpf(prog, tcp, 0x0800) == 0);
  CHECK(run_bpf(prog, tagged(tcp, 0x0800), 0x8100) == 0);
  CHECK(run_bpf(prog, v6({60}, 6, 0), 0x86dd) == 0);
  CHECK(run_bpf(prog, v6({44}, 17, 0, 8), 0x86dd) == 0);
  CHECK(run_bpf(prog, v4(8, 0, 64), 0x0806) == 0);  // ARP
}

TEST(filter_keeps_the_headers_whole_past_the_snap_length) {
  // IPv6, hop-by-hop, destination options, routing, authentication: the ICMPv6 header at 76.
  auto p = v6({0, 60, 43, 51}, 58, 129);
  p.resize(200, 0);
  CHECK(run_bpf(build(nullptr, 64), p, 0x86dd) == 76 + 8);
  CHECK(run_bpf(build(nullptr, 64), tagged(p, 0x86dd), 0x8100) == 4 + 76 + 8);
  CHECK(run_bpf(build(nullptr, 256), p, 0x86dd) == 256 + ICMPCAP_BPF_TAG_ROOM);
  CHECK(run_bpf(build(nullptr, 64), v4(8, 0, 64), 0x0800) == 64 + ICMPCAP_BPF_TAG_ROOM);
}

TEST(filter_spec_types_codes_families_directions_addresses) {
  icmpcap_filter_spec s = {};
  s.has_types_v4 = 1;
  set_bit(s.types_v4, 8);
  s.families = ICMPCAP_FAMILY_F_IPV4;
  auto prog = build(&s);
  CHECK(run_bpf(prog, v4(8, 0, 64), 0x0800) > 0);
  CHECK(run_bpf(prog, v4(0, 0, 64), 0x0800) == 0);
  CHECK(run_bpf(prog, v4(0, 185, 100), 0x0800) > 0);   // a non-first fragment may belong to an 8
  CHECK(run_bpf(prog, v6({}, 58, 128), 0x86dd) == 0);  // family

  icmpcap_filter_spec c = {};
  c.has_codes = 1;
  set_bit(c.codes, 4);
  auto pc = build(&c);
  auto unreach = v4(3, 0, 64);
  CHECK(run_bpf(pc, unreach, 0x0800) == 0);
  unreach[21] = 4;
  CHECK(run_bpf(pc, unreach, 0x0800) > 0);

  icmpcap_filter_spec d = {};
  d.directions = 1u << ICMPCAP_DIR_OUT;
  auto pd = build(&d);
  CHECK(run_bpf(pd, v4(8, 0, 64), 0x0800, PACKET_OUTGOING) > 0);
  CHECK(run_bpf(pd, v4(8, 0, 64), 0x0800, PACKET_HOST) == 0);

  icmpcap_filter_spec a = {};
  a.nr_addr_rules = 2;
  a.addr_rules[0] = icmpcap_addr_rule{4, 32, ICMPCAP_ADDR_DST, 0, {10, 0, 0, 2}};
  a.addr_rules[1] = icmpcap_addr_rule{6, 16, ICMPCAP_ADDR_SRC, 0, {0xfe, 0x80}};
  auto pa = build(&a);
  CHECK(run_bpf(pa, v4(8, 0, 64), 0x0800) > 0);  // dst 10.0.0.2
  auto other = v4(8, 0, 64);
  other[19] = 3;
  CHECK(run_bpf(pa, other, 0x0800) == 0);
  CHECK(run_bpf(pa, v6({0}, 58, 143), 0x86dd) > 0);  // src fe80::1 in fe80::/16
  a.addr_rules[1].side = ICMPCAP_ADDR_DST;
  CHECK(run_bpf(build(&a), v6({0}, 58, 143), 0x86dd) == 0);

  // Every type: one bit per type, tested through the bitmap.
  icmpcap_filter_spec all = {};
  all.has_types_v6 = 1;
  for (unsigned t = 0; t < 256; t += 3) set_bit(all.types_v6, t);
  auto p6 = build(&all);
  for (unsigned t = 0; t < 256; t++)
    CHECK((run_bpf(p6, v6({}, 58, uint8_t(t)), 0x86dd) > 0) == (t % 3 == 0));
}
