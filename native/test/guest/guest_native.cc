// Guest test of the native core against the real icmpcap.ko (run by kernel/test/run.sh in
// QEMU after the module is loaded): subscribes through the module source, sends ICMP and
// ICMPv6 echo requests on loopback with raw sockets, and checks what the rings delivered.
// Prints PASS/FAIL guest_native_* lines.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../src/core/errors.h"
#include "../../src/core/genl.h"
#include "../../src/core/module_source.h"
#include "../../src/core/record.h"

using namespace icmpcap;

namespace {

int failures = 0;

void result(bool ok, const std::string& name, const std::string& why = "") {
  if (ok) {
    printf("PASS %s\n", name.c_str());
  } else {
    printf("FAIL %s: %s\n", name.c_str(), why.c_str());
    failures++;
  }
  fflush(stdout);
}

// Collects records (copies of headers plus the first data bytes) and events.
class CollectSink : public Sink {
 public:
  bool can_accept() override { return true; }
  bool deliver(Batch&& b) override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t off = 0;
    uint64_t last_ts = 0;
    for (uint32_t i = 0; i < b.records; i++) {
      if (off % 8 || off + kRecordHeaderSize > b.bytes) {
        framing_errors++;
        break;
      }
      icmpcap_record r;
      memcpy(&r, b.data.get() + off, sizeof(r));
      if (r.len != kRecordHeaderSize + r.cap_len || off + r.len > b.bytes) {
        framing_errors++;
        break;
      }
      if (r.ts_ns < last_ts) unsorted_batches++;
      last_ts = r.ts_ns;
      if (keep) {
        records.push_back(r);
        first_byte.push_back(r.cap_len ? b.data.get()[off + kRecordHeaderSize] : 0);
      }
      count++;
      off += align_record(r.len);
    }
    if (off != b.bytes) framing_errors++;
    batches++;
    cv_.notify_all();
    return true;
  }
  void event(Event&& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    events.push_back(e);
    cv_.notify_all();
  }
  template <typename Pred>
  bool wait_for(Pred pred, int ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return pred(); });
  }
  std::mutex& mu() { return mu_; }

  bool keep = true;
  std::vector<icmpcap_record> records;
  std::vector<uint8_t> first_byte;
  std::vector<Event> events;
  uint64_t count = 0;
  uint64_t batches = 0;
  uint64_t framing_errors = 0;
  uint64_t unsorted_batches = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

uint16_t checksum(const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len & 1) sum += p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

// Sends n echo requests (id, seq 1..n, 16 bytes of payload). Returns an error or "".
std::string send_echoes(int family, uint16_t id, int n) {
  int fd = family == 4 ? socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
                       : socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  if (fd < 0) return std::string("socket: ") + strerror(errno);
  for (int seq = 1; seq <= n; seq++) {
    uint8_t pkt[24] = {};
    pkt[0] = family == 4 ? 8 : 128;
    pkt[4] = id >> 8;
    pkt[5] = id & 0xff;
    pkt[6] = static_cast<uint8_t>(seq >> 8);
    pkt[7] = static_cast<uint8_t>(seq);
    for (int k = 8; k < 24; k++) pkt[k] = static_cast<uint8_t>(k);
    ssize_t rc;
    if (family == 4) {
      uint16_t c = checksum(pkt, sizeof(pkt));
      memcpy(pkt + 2, &c, 2);
      sockaddr_in to = {};
      to.sin_family = AF_INET;
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = sendto(fd, pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    } else {
      sockaddr_in6 to = {};
      to.sin6_family = AF_INET6;
      to.sin6_addr = in6addr_loopback;
      rc = sendto(fd, pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    }
    if (rc < 0) {
      close(fd);
      return std::string("sendto: ") + strerror(errno);
    }
  }
  close(fd);
  return "";
}

void check_echo(CollectSink& sink, int family, uint16_t id, int n) {
  const std::string name = family == 4 ? "guest_native_ipv4_echo" : "guest_native_ipv6_echo";
  const uint8_t req = family == 4 ? 8 : 128, rep = family == 4 ? 0 : 129;
  const uint32_t ip_len = (family == 4 ? 20 : 40) + 24;
  auto matching = [&] {
    int k = 0;
    for (auto& r : sink.records)
      if (r.family == family && r.icmp_id == id && (r.icmp_type == req || r.icmp_type == rep)) k++;
    return k;
  };
  // Default hooks PRE_ROUTING + LOCAL_OUT: on loopback each request and each reply is seen
  // going out (LOCAL_OUT) and coming in (PRE_ROUTING).
  const int want = 4 * n;
  sink.wait_for([&] { return matching() >= want; }, 3000);
  std::lock_guard<std::mutex> lock(sink.mu());
  std::map<std::pair<int, int>, std::vector<int>> by;  // (type, hook) -> seqs
  std::string why;
  uint8_t lo[16] = {};
  if (family == 4) {
    lo[0] = 127;
    lo[3] = 1;
  } else {
    lo[15] = 1;
  }
  for (size_t i = 0; i < sink.records.size(); i++) {
    const auto& r = sink.records[i];
    if (r.family != family || r.icmp_id != id || (r.icmp_type != req && r.icmp_type != rep))
      continue;
    by[{r.icmp_type, r.hook}].push_back(r.icmp_seq);
    const uint8_t want_dir = r.hook == ICMPCAP_HOOK_LOCAL_OUT ? ICMPCAP_DIR_OUT : ICMPCAP_DIR_IN;
    if (r.dir != want_dir) why = "direction " + std::to_string(r.dir);
    if (!(r.flags & ICMPCAP_REC_F_HAS_ECHO)) why = "no HAS_ECHO flag";
    if (r.orig_len != ip_len || r.cap_len != ip_len) why = "lengths " + std::to_string(r.orig_len);
    if (memcmp(r.saddr, lo, 16) != 0 || memcmp(r.daddr, lo, 16) != 0) why = "addresses";
    if (r.ttl != 64) why = "ttl " + std::to_string(r.ttl);
    if (sink.first_byte[i] >> 4 != family) why = "data does not start at the IP header";
    if (r.ts_ns < 1000000000ull * 1000000000ull / 1000000000ull) why = "timestamp";
  }
  for (int type : {req, rep}) {
    for (int hook : {ICMPCAP_HOOK_PRE_ROUTING, ICMPCAP_HOOK_LOCAL_OUT}) {
      auto& seqs = by[{type, hook}];
      if (static_cast<int>(seqs.size()) != n) {
        why = "type " + std::to_string(type) + " hook " + std::to_string(hook) + ": " +
              std::to_string(seqs.size()) + " records, want " + std::to_string(n);
        continue;
      }
      for (int k = 0; k < n; k++)
        if (seqs[k] != k + 1) why = "sequence out of order";
    }
  }
  result(why.empty(), name, why);
}

std::unique_ptr<Source> open_or_fail(const std::string& name, OpenConfig cfg) {
  try {
    return open_module(cfg);
  } catch (const Error& e) {
    result(false, name, e.what());
    return nullptr;
  }
}

void test_echo_and_stats() {
  CollectSink sink;
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  auto src = open_or_fail("guest_native_open", cfg);
  if (!src) return;
  result(true, "guest_native_open");
  src->start(&sink);
  const int n = 10;
  std::string err = send_echoes(4, 0x4321, n);
  if (!err.empty())
    result(false, "guest_native_ipv4_echo", err);
  else
    check_echo(sink, 4, 0x4321, n);
  err = send_echoes(6, 0x6543, n);
  if (!err.empty())
    result(false, "guest_native_ipv6_echo", err);
  else
    check_echo(sink, 6, 0x6543, n);
  src->stop();
  Stats st = src->stats();
  {
    std::lock_guard<std::mutex> lock(sink.mu());
    const bool stopped_last =
        !sink.events.empty() && sink.events.back().type == EventType::kStopped;
    result(stopped_last && sink.framing_errors == 0 && sink.unsorted_batches == 0,
           "guest_native_batches_framed_sorted_stopped",
           "framing " + std::to_string(sink.framing_errors) + ", unsorted " +
               std::to_string(sink.unsorted_batches) + ", stopped last " +
               std::to_string(stopped_last));
    uint64_t percpu = 0;
    for (auto& c : st.per_cpu) percpu += c.captured;
    result(st.captured == sink.count && st.delivered == sink.count && st.dropped_kernel == 0 &&
               !st.per_cpu.empty() && percpu >= st.captured,
           "guest_native_stats",
           "captured " + std::to_string(st.captured) + " delivered " +
               std::to_string(st.delivered) + " sink " + std::to_string(sink.count) + " percpu " +
               std::to_string(percpu));
  }
  src->close();
  src->close();
  result(true, "guest_native_close_idempotent");
}

// Someone else with the device file cannot rewrite what the app's reader reads: a writable
// mapping of a ring (producer page and records) is refused, a read-only one works, and the
// session goes on capturing whole records. (A reader that finds a corrupt ring ends the
// session with an error: native/test/core_test.cc, ring_corrupt_*.)
void test_ring_cannot_be_corrupted() {
  const char* name = "guest_native_ring_cannot_be_corrupted";
  CollectSink sink;
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  auto src = open_or_fail(name, cfg);
  if (!src) return;
  src->start(&sink);
  const int dev = module_device_fd(src.get());
  GenlSocket nl;
  GenlAttrs info;
  int err = nl.open(ICMPCAP_GENL_NAME);
  if (!err) {
    GenlMessage m(ICMPCAP_CMD_GET_INFO, ICMPCAP_GENL_VERSION);
    m.u32(ICMPCAP_A_DEV_FD, static_cast<uint32_t>(dev));
    err = nl.call(m, &info);
  }
  const uint32_t stride = info.u32(ICMPCAP_A_RING_STRIDE);
  std::string why;
  if (err || !stride) why = "GET_INFO failed";
  for (uint32_t off : {0u, static_cast<uint32_t>(ICMPCAP_RING_PRODUCER_OFF)}) {
    if (!why.empty()) break;
    void* w = mmap(nullptr, stride - off, PROT_READ | PROT_WRITE, MAP_SHARED, dev, off);
    if (w != MAP_FAILED) {
      munmap(w, stride - off);
      why = "a writable mapping of ring 0 from offset " + std::to_string(off) + " was allowed";
    } else if (errno != EPERM) {
      why = "a writable mapping of ring 0 failed with " + std::string(strerror(errno)) +
            ", want EPERM";
    }
  }
  void* ro = why.empty() ? mmap(nullptr, stride, PROT_READ, MAP_SHARED, dev, 0) : MAP_FAILED;
  if (why.empty() && ro == MAP_FAILED)
    why = "a read-only mapping of ring 0 failed: " + std::string(strerror(errno));
  if (why.empty()) {
    const auto* prod = reinterpret_cast<const icmpcap_ring_producer*>(
        static_cast<const uint8_t*>(ro) + ICMPCAP_RING_PRODUCER_OFF);
    if (prod->abi_version != ICMPCAP_ABI_VERSION) why = "read-only mapping: wrong abi_version";
    munmap(ro, stride);
  }
  if (why.empty()) {
    why = send_echoes(4, 0x1111, 3);
    if (why.empty() && !sink.wait_for(
                           [&] {
                             int k = 0;
                             for (auto& r : sink.records) k += r.icmp_id == 0x1111;
                             return k >= 12;  // 3 requests and 3 replies, each out and in
                           },
                           3000))
      why = "the session did not capture the echoes";
  }
  {
    std::lock_guard<std::mutex> lock(sink.mu());
    for (auto& e : sink.events)
      if (why.empty() && e.type == EventType::kError) why = "error event: " + e.message;
  }
  src->close();
  result(why.empty(), name, why);
}

// Test builds of the module: a synthetic in-kernel producer on every CPU, drained by the core.
void test_produce_drain() {
  CollectSink sink;
  sink.keep = false;
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  cfg.ring_bytes = 4u << 20;
  auto src = open_or_fail("guest_native_test_produce", cfg);
  if (!src) return;
  src->start(&sink);
  GenlSocket nl;
  int err = nl.open(ICMPCAP_GENL_NAME);
  GenlAttrs r;
  const uint64_t per_cpu = 200000;
  if (!err) {
    GenlMessage m(ICMPCAP_CMD_TEST_PRODUCE, ICMPCAP_GENL_VERSION);
    m.u32(ICMPCAP_A_DEV_FD, static_cast<uint32_t>(module_device_fd(src.get())));
    m.u64(ICMPCAP_A_TEST_COUNT, per_cpu);
    m.u64(ICMPCAP_A_TEST_RATE, 0);
    m.u32(ICMPCAP_A_TEST_MODE, ICMPCAP_TEST_MODE_RING);
    err = nl.call(m, &r);
  }
  if (err == -EOPNOTSUPP) {
    src->close();
    printf("# guest_native_test_produce skipped: not a test build of the module\n");
    return;
  }
  const uint64_t gen = r.u64(ICMPCAP_A_TEST_GENERATED), cap = r.u64(ICMPCAP_A_CAPTURED),
                 drop = r.u64(ICMPCAP_A_DROPPED), ns = r.u64(ICMPCAP_A_TEST_ELAPSED_NS);
  sink.wait_for([&] { return sink.count >= cap; }, 5000);
  src->stop();
  Stats st = src->stats();
  src->close();
  std::string why;
  if (err)
    why = std::string("TEST_PRODUCE: ") + strerror(-err);
  else if (cap + drop != gen)
    why = "captured + dropped != generated";
  else if (sink.count < cap)
    why = "read " + std::to_string(sink.count) + " of " + std::to_string(cap);
  else if (st.dropped_kernel != drop)
    why = "stats dropped " + std::to_string(st.dropped_kernel) + " != " + std::to_string(drop);
  else if (sink.framing_errors)
    why = "framing errors";
  if (why.empty() && drop > 0) {
    std::lock_guard<std::mutex> lock(sink.mu());
    bool overflow = false;
    for (auto& e : sink.events) overflow |= e.type == EventType::kOverflow;
    if (!overflow) why = "records were dropped but no overflow event arrived";
  }
  printf(
      "# guest_native_test_produce: generated %llu captured %llu dropped %llu read %llu in %.1f ms "
      "(%.2f M records/s produced)\n",
      (unsigned long long)gen, (unsigned long long)cap, (unsigned long long)drop,
      (unsigned long long)sink.count, ns / 1e6, ns ? gen / (ns / 1e9) / 1e6 : 0.0);
  result(why.empty(), "guest_native_test_produce", why);
}

// A named interface that is deleted ends the session with interface-gone, then stopped.
void test_interface_gone() {
  const std::string name = "guest_native_interface_gone";
  if (system("ip link add icgx type veth peer name icgy && ip link set icgx up") != 0) {
    result(false, name, "could not create a veth pair");
    return;
  }
  CollectSink sink;
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  cfg.interfaces = {"icgx"};
  auto src = open_or_fail(name, cfg);
  if (!src) {
    if (system("ip link del icgx") != 0) printf("# could not delete icgx\n");
    return;
  }
  src->start(&sink);
  if (system("ip link del icgx") != 0) printf("# could not delete icgx\n");
  const bool ended = sink.wait_for(
      [&] { return !sink.events.empty() && sink.events.back().type == EventType::kStopped; }, 3000);
  std::string why;
  {
    std::lock_guard<std::mutex> lock(sink.mu());
    int gone = 0;
    for (auto& e : sink.events)
      if (e.type == EventType::kInterfaceGone && e.ifname == "icgx" && e.errno_name == "ENODEV")
        gone++;
    if (!ended)
      why = "the session did not end";
    else if (gone != 1)
      why = std::to_string(gone) + " interface-gone events for icgx";
  }
  src->close();
  result(why.empty(), name, why);
}

void test_open_errors() {
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  cfg.interfaces = {"nosuch0"};
  try {
    open_module(cfg);
    result(false, "guest_native_unknown_interface_enodev", "open succeeded");
  } catch (const Error& e) {
    result(e.code() == "ENODEV", "guest_native_unknown_interface_enodev", e.what());
  }
}

}  // namespace

// OpenConfig.filter reaches the module as its filter attributes: echo requests only, IPv4
// only, destination 127.0.0.1 (an address rule): of 10 requests + 10 replies on each family,
// each seen at two hooks, exactly the 2 x 10 IPv4 requests arrive.
void test_filter() {
  CollectSink sink;
  OpenConfig cfg;
  cfg.source = SourceKind::kModule;
  cfg.filter.families = ICMPCAP_FAMILY_F_IPV4;
  cfg.filter.has_types_v4 = 1;
  cfg.filter.types_v4[8 / 8] |= 1u << (8 % 8);
  cfg.filter.nr_addr_rules = 1;
  cfg.filter.addr_rules[0] = icmpcap_addr_rule{4, 32, ICMPCAP_ADDR_DST, 0, {127, 0, 0, 1}};
  auto src = open_or_fail("guest_native_filter", cfg);
  if (!src) return;
  src->start(&sink);
  std::string err = send_echoes(4, 0x1111, 10);
  if (err.empty()) err = send_echoes(6, 0x2222, 10);
  sink.wait_for([&] { return sink.count >= 20; }, 3000);
  src->stop();
  std::string why = err;
  {
    std::lock_guard<std::mutex> lock(sink.mu());
    if (why.empty() && sink.records.size() != 20)
      why = std::to_string(sink.records.size()) + " records, want 20";
    for (auto& r : sink.records)
      if (r.family != 4 || r.icmp_type != 8 || r.icmp_id != 0x1111 || r.daddr[0] != 127)
        why = "a record the filter excludes: family " + std::to_string(r.family) + " type " +
              std::to_string(r.icmp_type);
  }
  result(why.empty(), "guest_native_filter", why);
  src->close();
}

int main() {
  test_echo_and_stats();
  test_filter();
  test_ring_cannot_be_corrupted();
  test_open_errors();
  test_interface_gone();
  test_produce_drain();
  return failures ? 1 : 0;
}
