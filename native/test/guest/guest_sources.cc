// Guest test (kernel/test/run.sh, QEMU, icmpcap.ko loaded): the same odd packets through both
// sources give the same records. In namespace xsrc-b it opens a module session and an
// AF_PACKET session (the real helper, icmpcap-helper, as the app runs it) side by side, twice:
// at snaplen 65535 and at snaplen 64. Namespace xsrc-a then sends the odd set over the veth
// pair: fragmented echoes both ways (v4, v6), ICMP headers cut short (one padded to the
// Ethernet minimum, as real NICs deliver it), bad checksums, IP options, IPv6 extension
// headers (hop-by-hop MLD, destination options, both, a fragment header), RFC 4884
// extensions, unknown types, VLAN tags. The two record streams are compared record by record:
// every header field, the flags and the captured bytes. A difference prints both records.
//
// What legitimately differs, and only that, is allowed (see field_diff() and compare_out()):
// hook (the module's netfilter hook; AF_PACKET has none), timestamps (two clocks, two points
// on the path), the sender's pid (only the module's LOCAL_OUT runs in the sender's context),
// the interface of a VLAN packet coming in (the module sees it on the VLAN device, AF_PACKET
// on the device the tag arrived on), and datagrams this host sends larger than the MTU (the
// module's LOCAL_OUT hook runs before fragmentation: one record where AF_PACKET has the
// fragments, which must reassemble into it).
//
// The module's records at snaplen 65535 are printed as base64 (ICMPCAP-XSRC lines) with the
// record range of each case; run.sh writes them to kernel/build/xsrc/ and feeds them through
// the capture service on the host (electron/core/odd-module.test.ts).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../src/core/afpacket_source.h"
#include "../../src/core/errors.h"
#include "../../src/core/module_source.h"
#include "../../src/core/record.h"

using namespace icmpcap;

namespace {

const char* const kIp = "/usr/sbin/ip";
const char* const kNsA = "xsrc-a";
const char* const kNsB = "xsrc-b";
const uint8_t kMacA[6] = {0x02, 0x79, 0, 0, 0, 0x01};
const uint8_t kMacB[6] = {0x02, 0x79, 0, 0, 0, 0x02};
const uint8_t kA4[4] = {10, 79, 0, 1}, kB4[4] = {10, 79, 0, 2};
const uint8_t kA6[16] = {0xfd, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const uint8_t kB6[16] = {0xfd, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
const uint16_t kMarkerId = 0x4d4b;  // "MK": the echo that ends each case
const uint16_t kId = 0x7901;        // the echoes of the cases
const int kVlan = 100;

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

using Bytes = std::vector<uint8_t>;

struct Rec {
  icmpcap_record h;
  Bytes data;
};

class CollectSink : public Sink {
 public:
  bool can_accept() override { return true; }
  bool deliver(Batch&& b) override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t off = 0;
    for (uint32_t i = 0; i < b.records && off + kRecordHeaderSize <= b.bytes; i++) {
      Rec r;
      memcpy(&r.h, b.data.get() + off, sizeof(r.h));
      if (r.h.len < kRecordHeaderSize || off + r.h.len > b.bytes) break;
      const uint8_t* p = b.data.get() + off + kRecordHeaderSize;
      r.data.assign(p, p + (r.h.len - kRecordHeaderSize));
      const uint32_t len = r.h.len;
      if (r.h.family == 4 && (r.h.flags & ICMPCAP_REC_F_HAS_ECHO) && r.h.icmp_id == kMarkerId) {
        if (r.h.icmp_type == 8) markers_in_.insert(r.h.icmp_seq);
        if (r.h.icmp_type == 0) markers_out_.insert(r.h.icmp_seq);
      }
      recs_.push_back(std::move(r));
      off += align_record(len);
    }
    return true;
  }
  void event(Event&& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (e.type == EventType::kError || e.type == EventType::kOverflow) errors_ += e.message + "; ";
  }
  std::vector<Rec> snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    return recs_;
  }
  // Whether the marker echo seq and its reply were captured.
  bool has_marker(uint16_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    return markers_in_.count(seq) && markers_out_.count(seq);
  }
  std::string errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::vector<Rec> recs_;
  std::set<uint16_t> markers_in_, markers_out_;
  std::string errors_;
};

// ---- packets ----------------------------------------------------------------------------

uint32_t sum16(const uint8_t* p, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void append(Bytes& to, const Bytes& b) { to.insert(to.end(), b.begin(), b.end()); }

Bytes payload(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<uint8_t>(i % 48);
  return b;
}

// An ICMP message (checksum left zero): type, code, 4 bytes of rest, body.
Bytes icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq, const Bytes& body) {
  Bytes m = {type, code, 0, 0};
  m.resize(8);
  put16(&m[4], id);
  put16(&m[6], seq);
  append(m, body);
  return m;
}
Bytes icmp4_sum(Bytes m) {
  put16(&m[2], fold(sum16(m.data(), m.size())));
  return m;
}
// ICMPv6 checksum over the pseudo-header of src, dst.
Bytes icmp6_sum(Bytes m, const uint8_t* src, const uint8_t* dst) {
  uint32_t s = sum16(src, 16);
  s = sum16(dst, 16, s);
  s += static_cast<uint32_t>(m.size()) + 58;
  put16(&m[2], fold(sum16(m.data(), m.size(), s)));
  return m;
}

Bytes ipv4(const uint8_t* src, const uint8_t* dst, const Bytes& body, uint16_t ip_id = 1,
           uint16_t frag = 0, const Bytes& options = {}, uint8_t proto = 1) {
  Bytes h(20);
  h[0] = static_cast<uint8_t>(0x40 | (20 + options.size()) / 4);
  put16(&h[2], static_cast<uint16_t>(20 + options.size() + body.size()));
  put16(&h[4], ip_id);
  put16(&h[6], frag);
  h[8] = 64;
  h[9] = proto;
  memcpy(&h[12], src, 4);
  memcpy(&h[16], dst, 4);
  append(h, options);
  put16(&h[10], fold(sum16(h.data(), h.size())));
  append(h, body);
  return h;
}

// body: extension headers (if any) and the upper layer; nh: the first next header.
Bytes ipv6(const uint8_t* src, const uint8_t* dst, uint8_t nh, const Bytes& body,
           uint8_t hlim = 64) {
  Bytes h(40);
  h[0] = 0x60;
  put16(&h[4], static_cast<uint16_t>(body.size()));
  h[6] = nh;
  h[7] = hlim;
  memcpy(&h[8], src, 16);
  memcpy(&h[24], dst, 16);
  append(h, body);
  return h;
}

Bytes ether(const uint8_t* dst, uint16_t type, const Bytes& body, int vlan = -1) {
  Bytes f(12);
  memcpy(&f[0], dst, 6);
  memcpy(&f[6], kMacA, 6);
  if (vlan >= 0) {
    f.push_back(0x81);
    f.push_back(0x00);
    f.push_back(static_cast<uint8_t>(vlan >> 8));
    f.push_back(static_cast<uint8_t>(vlan));
  }
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  append(f, body);
  return f;
}
Bytes eth4(const Bytes& ip, int vlan = -1) { return ether(kMacB, ETHERTYPE_IP, ip, vlan); }
Bytes eth6(const Bytes& ip, int vlan = -1) { return ether(kMacB, ETHERTYPE_IPV6, ip, vlan); }

Bytes echo4(uint16_t seq, const Bytes& body) { return icmp4_sum(icmp(8, 0, kId, seq, body)); }
Bytes echo6(uint16_t seq, const Bytes& body) {
  return icmp6_sum(icmp(128, 0, kId, seq, body), kA6, kB6);
}

// ---- the odd set ------------------------------------------------------------------------

struct Env {
  int packet_a = -1;  // AF_PACKET SOCK_RAW on xsa0 (namespace a)
  int raw4_a = -1, raw6_a = -1, raw4_b = -1, raw6_b = -1;
  int ifindex_a = 0;
};

bool send_frame(const Env& env, const Bytes& f) {
  sockaddr_ll to = {};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = env.ifindex_a;
  to.sll_halen = 6;
  memcpy(to.sll_addr, f.data(), 6);
  return sendto(env.packet_a, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to),
                sizeof(to)) == static_cast<ssize_t>(f.size());
}

// An echo request of 8 + size bytes through a raw socket: the kernel fragments it.
bool send_echo(int fd, int family, const uint8_t* to_addr, uint16_t id, uint16_t seq, size_t size) {
  Bytes m = icmp(family == 4 ? 8 : 128, 0, id, seq, payload(size));
  if (family == 4) {
    m = icmp4_sum(m);
    sockaddr_in to = {};
    to.sin_family = AF_INET;
    memcpy(&to.sin_addr, to_addr, 4);
    return sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) ==
           static_cast<ssize_t>(m.size());
  }
  sockaddr_in6 to = {};  // the kernel fills in the ICMPv6 checksum
  to.sin6_family = AF_INET6;
  memcpy(&to.sin6_addr, to_addr, 16);
  return sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) ==
         static_cast<ssize_t>(m.size());
}

struct Case {
  std::string name;
  std::function<bool(const Env&)> send;
};

std::vector<Case> odd_cases() {
  std::vector<Case> cs;
  auto frame = [&](const std::string& name, std::function<std::vector<Bytes>()> make) {
    cs.push_back({name, [make](const Env& env) {
                    for (auto& f : make())
                      if (!send_frame(env, f)) return false;
                    return true;
                  }});
  };
  auto ping = [&](const std::string& name, bool from_a, int family) {
    cs.push_back({name, [=](const Env& env) {
                    const int fd = family == 4 ? (from_a ? env.raw4_a : env.raw4_b)
                                               : (from_a ? env.raw6_a : env.raw6_b);
                    const uint8_t* to = family == 4 ? (from_a ? kB4 : kA4) : (from_a ? kB6 : kA6);
                    return send_echo(fd, family, to, kId, from_a ? 1 : 2, 3000);
                  }});
  };
  ping("ping4-in", true, 4);
  ping("ping4-out", false, 4);
  ping("ping6-in", true, 6);
  ping("ping6-out", false, 6);
  // 4 bytes of ICMP: type, code, checksum and nothing else (an echo needs 8).
  frame("short4", [] { return std::vector<Bytes>{eth4(ipv4(kA4, kB4, {8, 0, 0xf7, 0xff}))}; });
  // The same on a real Ethernet: padded to the 60-byte minimum frame; the padding is not
  // part of the IP packet (the module sees the packet after ip_rcv() trimmed it).
  frame("short4-padded", [] {
    Bytes f = eth4(ipv4(kA4, kB4, {8, 0, 0xf7, 0xff}));
    f.resize(60, 0);
    return std::vector<Bytes>{f};
  });
  frame("short6", [] {
    return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 58, {0x80, 0, 0x7f, 0xff}))};
  });
  frame("badsum4", [] {
    Bytes m = echo4(1, payload(48));
    m[2] ^= 0x5a;
    m[3] ^= 0x5a;
    return std::vector<Bytes>{eth4(ipv4(kA4, kB4, m))};
  });
  frame("badsum6", [] {
    Bytes m = echo6(1, payload(48));
    m[2] ^= 0x5a;
    m[3] ^= 0x5a;
    return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 58, m))};
  });
  // Record route with room for 4 addresses (20 bytes of options), then with room for 9 (40
  // bytes: the ICMP header ends at byte 68, past a 64-byte snaplen).
  for (int slots : {4, 9}) {
    frame(slots == 4 ? "options4" : "options4-long", [slots] {
      Bytes opt = {7, static_cast<uint8_t>(3 + 4 * slots), 4};
      opt.resize(3 + 4 * slots, 0);
      while (opt.size() % 4) opt.push_back(0);  // end of options
      return std::vector<Bytes>{eth4(ipv4(kA4, kB4, echo4(1, payload(48)), 1, 0, opt))};
    });
  }
  // An MLDv2 report behind Hop-by-Hop (router alert), as the kernel sends them.
  frame("hbh6", [] {
    static const uint8_t all_mld[16] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16};
    static const uint8_t mac[6] = {0x33, 0x33, 0, 0, 0, 0x16};
    Bytes rec = {1, 0, 0, 0, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0x12, 0x34};
    Bytes m = {143, 0, 0, 0, 0, 0, 0, 1};
    append(m, rec);
    m = icmp6_sum(m, kA6, all_mld);
    Bytes body = {58, 0, 5, 2, 0, 0, 1, 0};  // next ICMPv6, router alert (MLD), PadN
    append(body, m);
    return std::vector<Bytes>{ether(mac, ETHERTYPE_IPV6, ipv6(kA6, all_mld, 0, body, 1))};
  });
  frame("dstopt6", [] {
    Bytes body = {58, 0, 1, 4, 0, 0, 0, 0};  // next ICMPv6, PadN
    append(body, echo6(1, payload(48)));
    return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 60, body))};
  });
  // Hop-by-hop, then 24 bytes of destination options: the ICMPv6 header starts at byte 72.
  frame("deep6", [] {
    // An unknown option the receiver skips (type 0x1e): Linux drops PadN over 7 bytes.
    Bytes body = {60, 0, 1, 4, 0, 0, 0, 0, 58, 2, 0x1e, 20};
    body.resize(32, 0);
    append(body, echo6(1, payload(48)));
    return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 0, body))};
  });
  // An echo of 8 + 1920 bytes in fragments of 1000 (IPv4) and 1232 (IPv6) bytes.
  frame("frag4", [] {
    const Bytes m = echo4(1, payload(1920));
    const Bytes first(m.begin(), m.begin() + 1000), rest(m.begin() + 1000, m.end());
    return std::vector<Bytes>{eth4(ipv4(kA4, kB4, first, kId, 0x2000)),
                              eth4(ipv4(kA4, kB4, rest, kId, 1000 / 8))};
  });
  frame("frag6", [] {
    const Bytes m = echo6(1, payload(1920));
    std::vector<Bytes> out;
    for (size_t off = 0; off < m.size(); off += 1232) {
      const size_t n = std::min<size_t>(1232, m.size() - off);
      Bytes body = {58, 0, 0, 0, 0, 0, 0x79, 0x01};
      put16(&body[2], static_cast<uint16_t>(off | (off + n < m.size() ? 1 : 0)));
      body.insert(body.end(), m.begin() + static_cast<long>(off),
                  m.begin() + static_cast<long>(off + n));
      out.push_back(eth6(ipv6(kA6, kB6, 44, body)));
    }
    return out;
  });
  // Time Exceeded quoting 128 bytes of a UDP datagram, then an RFC 4884 extension structure
  // (an MPLS label stack object); the length field says 32 words of original datagram.
  frame("rfc4884", [] {
    static const uint8_t other[4] = {192, 0, 2, 99};
    Bytes udp = {0x9c, 0x40, 0x82, 0x9a, 0, 108, 0, 0};
    udp.resize(108, 0);
    Bytes quoted = ipv4(kB4, other, udp, 1, 0, {}, 17);
    quoted.resize(128, 0);
    Bytes ext = {0x20, 0, 0, 0, 0, 8, 1, 1, 0, 1, 0x41, 1};
    put16(&ext[2], fold(sum16(ext.data(), ext.size())));
    Bytes m = {11, 0, 0, 0, 0, 32, 0, 0};
    append(m, quoted);
    append(m, ext);
    return std::vector<Bytes>{eth4(ipv4(kA4, kB4, icmp4_sum(m)))};
  });
  frame("unknown4", [] {
    return std::vector<Bytes>{eth4(ipv4(kA4, kB4, icmp4_sum(icmp(99, 7, 0, 0, payload(48)))))};
  });
  frame("unknown6", [] {
    Bytes m = {250, 3, 0, 0};
    append(m, payload(48));
    return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 58, icmp6_sum(m, kA6, kB6)))};
  });
  frame("vlan4",
        [] { return std::vector<Bytes>{eth4(ipv4(kA4, kB4, echo4(1, payload(48))), kVlan)}; });
  frame("vlan6",
        [] { return std::vector<Bytes>{eth6(ipv6(kA6, kB6, 58, echo6(1, payload(48))), kVlan)}; });
  return cs;
}

// ---- comparing ----------------------------------------------------------------------------

std::string addr(const uint8_t* a, int family) {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a, buf, sizeof(buf));
  return buf;
}

std::string describe(const Rec& r) {
  const auto& h = r.h;
  char buf[512];
  snprintf(buf, sizeof(buf),
           "len %u flags 0x%x hook %u dir %u if %u orig %u cap %u family %u ttl %u type %u "
           "code %u id %u seq %u pid %u %s > %s data",
           h.len, h.flags, h.hook, h.dir, h.ifindex, h.orig_len, h.cap_len, h.family, h.ttl,
           h.icmp_type, h.icmp_code, h.icmp_id, h.icmp_seq, h.pid, addr(h.saddr, h.family).c_str(),
           addr(h.daddr, h.family).c_str());
  std::string s = buf;
  for (size_t i = 0; i < r.data.size() && i < 80; i++) {
    snprintf(buf, sizeof(buf), "%s%02x", i % 4 ? "" : " ", r.data[i]);
    s += buf;
  }
  return s;
}

bool is_marker(const Rec& r, uint8_t type) {
  return r.h.family == 4 && r.h.icmp_type == type && (r.h.flags & ICMPCAP_REC_F_HAS_ECHO) &&
         r.h.icmp_id == kMarkerId;
}

struct Topology {
  unsigned xsb0 = 0, vlan = 0;
  pid_t self = 0;
};

// The fields of two records that must agree; "" when they do. `hook` is the module's.
std::string field_diff(const Rec& m, const Rec& a, uint8_t hook, const Topology& topo) {
  const auto& x = m.h;
  const auto& y = a.h;
  // The module's flags may add HAS_PID, with our pid, on what this process sent.
  const bool pid_ok = x.dir == ICMPCAP_DIR_OUT && (x.flags & ICMPCAP_REC_F_HAS_PID) &&
                      x.pid == static_cast<uint32_t>(topo.self);
  const uint16_t mflags = pid_ok ? (x.flags & ~ICMPCAP_REC_F_HAS_PID) : x.flags;
  if (mflags != y.flags) return "flags";
  if (!pid_ok && x.pid != y.pid) return "pid";
  if (x.hook != hook || y.hook != ICMPCAP_HOOK_NONE) return "hook";
  if (x.dir != y.dir) return "dir";
  // A VLAN packet coming in: the module sees it on the VLAN device, AF_PACKET on its parent.
  const bool vlan_ok = x.dir == ICMPCAP_DIR_IN && x.ifindex == topo.vlan && y.ifindex == topo.xsb0;
  if (x.ifindex != y.ifindex && !vlan_ok) return "ifindex";
  if (x.len != y.len) return "len";
  if (x.orig_len != y.orig_len) return "orig_len";
  if (x.cap_len != y.cap_len) return "cap_len";
  if (x.family != y.family) return "family";
  if (x.ttl != y.ttl) return "ttl";
  if (x.icmp_type != y.icmp_type) return "icmp_type";
  if (x.icmp_code != y.icmp_code) return "icmp_code";
  if (x.icmp_id != y.icmp_id) return "icmp_id";
  if (x.icmp_seq != y.icmp_seq) return "icmp_seq";
  if (memcmp(x.saddr, y.saddr, 16)) return "saddr";
  if (memcmp(x.daddr, y.daddr, 16)) return "daddr";
  if (!x.ts_ns || !y.ts_ns) return "ts_ns (zero)";
  if (m.data != a.data) return "captured bytes";
  return "";
}

// Where the fragmentable part of an IP packet starts (after the IPv4 header, after the IPv6
// fragment header), or where the payload starts when it is not a fragment. 0: unknown.
size_t payload_offset(const Rec& r, size_t* frag_hdr = nullptr) {
  const Bytes& d = r.data;
  if (r.h.family == 4) return d.empty() ? 0 : (d[0] & 0xfu) * 4u;
  size_t off = 40;
  uint8_t next = d.size() > 6 ? d[6] : 255;
  while (next == 0 || next == 43 || next == 60 || next == 44) {
    if (off + 8 > d.size()) return 0;
    if (next == 44) {
      if (frag_hdr) *frag_hdr = off;
      return off + 8;
    }
    next = d[off];
    off += (d[off + 1] + 1u) * 8u;
  }
  return off;
}

uint32_t frag_id(const Rec& r) {
  if (r.h.family == 4) return r.data.size() >= 6 ? get16(&r.data[4]) : 0;
  size_t fh = 0;
  if (!payload_offset(r, &fh) || !fh) return 0;
  return static_cast<uint32_t>(r.data[fh + 4]) << 24 | r.data[fh + 5] << 16 | r.data[fh + 6] << 8 |
         r.data[fh + 7];
}

struct Streams {
  std::vector<Rec> in, out;
};

// From the start marker (seq 0) to the end marker (seq `end`), each direction on its own.
bool split(const std::vector<Rec>& all, uint16_t end, Streams* s, std::string* why) {
  int in_state = 0, out_state = 0;  // 0 before the start marker, 1 inside, 2 done
  for (const auto& r : all) {
    if (r.h.dir == ICMPCAP_DIR_IN && in_state < 2) {
      if (in_state == 1) s->in.push_back(r);
      if (is_marker(r, 8) && r.h.icmp_seq == 0) in_state = 1;
      if (in_state == 1 && is_marker(r, 8) && r.h.icmp_seq == end) in_state = 2;
    } else if (r.h.dir == ICMPCAP_DIR_OUT && out_state < 2) {
      if (out_state == 1) s->out.push_back(r);
      if (is_marker(r, 0) && r.h.icmp_seq == 0) out_state = 1;
      if (out_state == 1 && is_marker(r, 0) && r.h.icmp_seq == end) out_state = 2;
    }
  }
  if (in_state != 2 || out_state != 2) {
    *why = "the markers did not all arrive";
    return false;
  }
  return true;
}

std::string mismatch(const char* what, size_t i, const Rec* m, const Rec* a) {
  std::string s = std::string(what) + " record " + std::to_string(i) +
                  ":\n  module:   " + (m ? describe(*m) : "(none)") +
                  "\n  afpacket: " + (a ? describe(*a) : "(none)");
  return s;
}

// Incoming: record by record. Reports up to 6 differences.
std::string compare_in(const std::vector<Rec>& m, const std::vector<Rec>& a, const Topology& t) {
  std::string out;
  int found = 0;
  for (size_t i = 0; i < std::max(m.size(), a.size()) && found < 6; i++) {
    if (i >= m.size() || i >= a.size()) {
      out +=
          mismatch("incoming", i, i < m.size() ? &m[i] : nullptr, i < a.size() ? &a[i] : nullptr);
      break;
    }
    const std::string d = field_diff(m[i], a[i], ICMPCAP_HOOK_PRE_ROUTING, t);
    if (!d.empty()) {
      out += (found++ ? "\n" : "") + d + " differs, " + mismatch("incoming", i, &m[i], &a[i]);
    }
  }
  return out;
}

// Outgoing: record by record, but a datagram larger than the MTU is one module record
// (LOCAL_OUT runs before fragmentation) and AF_PACKET's fragments of it.
std::string compare_out(const std::vector<Rec>& m, const std::vector<Rec>& a, const Topology& t,
                        int* reassembled) {
  size_t i = 0, j = 0;
  for (; i < m.size() && j < a.size(); i++) {
    const Rec& x = m[i];
    if (!(a[j].h.flags & ICMPCAP_REC_F_FRAGMENT)) {
      const std::string d = field_diff(x, a[j], ICMPCAP_HOOK_LOCAL_OUT, t);
      if (!d.empty()) return d + " differs, " + mismatch("outgoing", i, &x, &a[j]);
      j++;
      continue;
    }
    // The fragments of one datagram: a first, then the later ones with its identification.
    const Rec& first = a[j];
    const uint32_t id = frag_id(first);
    size_t k = j + 1;
    while (k < a.size() && (a[k].h.flags & ICMPCAP_REC_F_NOT_FIRST) && frag_id(a[k]) == id &&
           a[k].h.family == first.h.family)
      k++;
    if (first.h.flags & ICMPCAP_REC_F_NOT_FIRST)
      return "a later fragment without its first, " + mismatch("outgoing", i, &x, &first);
    // The datagram as AF_PACKET saw it: the first fragment's header fields without FRAGMENT,
    // the payload of every fragment (as far as captured) after the module's own header.
    Rec whole = first;
    whole.h.flags &= static_cast<uint16_t>(~ICMPCAP_REC_F_FRAGMENT);
    const size_t hdr = payload_offset(x);
    uint32_t orig = static_cast<uint32_t>(hdr);
    Bytes body;
    bool complete = true;
    for (size_t f = j; f < k; f++) {
      const size_t off = payload_offset(a[f]);
      if (!off || off > a[f].h.orig_len)
        return "a fragment without a header, " + mismatch("outgoing", i, &x, &a[f]);
      orig += a[f].h.orig_len - static_cast<uint32_t>(off);
      if (complete && off <= a[f].data.size())
        body.insert(body.end(), a[f].data.begin() + static_cast<long>(off), a[f].data.end());
      complete = complete && a[f].h.cap_len == a[f].h.orig_len;
    }
    if (k - j < 2) return "a first fragment alone, " + mismatch("outgoing", i, &x, &first);
    if (x.h.flags & ICMPCAP_REC_F_FRAGMENT)
      return "the module's record is a fragment, " + mismatch("outgoing", i, &x, &first);
    if (x.h.orig_len != orig)
      return "orig_len " + std::to_string(x.h.orig_len) + " != " + std::to_string(orig) +
             " reassembled, " + mismatch("outgoing", i, &x, &first);
    // Header fields as the module reports them for the whole datagram.
    whole.h.orig_len = x.h.orig_len;
    whole.h.cap_len = x.h.cap_len;
    whole.h.len = x.h.len;
    whole.h.flags = static_cast<uint16_t>((whole.h.flags & ~ICMPCAP_REC_F_TRUNCATED) |
                                          (x.h.flags & ICMPCAP_REC_F_TRUNCATED));
    whole.data = x.data;  // compared below, byte by byte, against the fragments' payloads
    const std::string d = field_diff(x, whole, ICMPCAP_HOOK_LOCAL_OUT, t);
    if (!d.empty()) return d + " differs (reassembled), " + mismatch("outgoing", i, &x, &first);
    const size_t n = std::min(body.size(), x.data.size() > hdr ? x.data.size() - hdr : 0);
    if (n == 0 || memcmp(body.data(), x.data.data() + hdr, n) != 0 ||
        (complete && body.size() != x.data.size() - hdr))
      return "the fragments' payload is not the module's, " + mismatch("outgoing", i, &x, &first);
    (*reassembled)++;
    j = k;
  }
  if (i < m.size() || j < a.size())
    return mismatch("outgoing", i, i < m.size() ? &m[i] : nullptr, j < a.size() ? &a[j] : nullptr);
  return "";
}

// ---- setup ----------------------------------------------------------------------------------

// Runs `ip -batch` with these commands (one ip process: each costs a good part of a second
// under TCG). ns: "" or -n NAME.
bool ip_batch(const std::string& ns, const std::vector<std::string>& cmds) {
  const std::string cmd = std::string(kIp) + (ns.empty() ? "" : " -n " + ns) + " -batch -";
  FILE* f = popen(cmd.c_str(), "w");
  if (!f) return false;
  for (const auto& c : cmds) fprintf(f, "%s\n", c.c_str());
  if (pclose(f) == 0) return true;
  printf("# failed: %s\n", cmd.c_str());
  return false;
}

bool setup_network() {
  const std::string mac_a = "02:79:00:00:00:01", mac_b = "02:79:00:00:00:02";
  return ip_batch("", {std::string("netns add ") + kNsA, std::string("netns add ") + kNsB,
                       "link add xsa0 address " + mac_a + " netns " + kNsA +
                           " type veth peer name xsb0 address " + mac_b + " netns " + kNsB}) &&
         // No link-local addresses: no DAD or router solicitations beside the odd set. Fixed
         // neighbours: no ARP or neighbour discovery between the packets of a case.
         ip_batch(kNsA, {"link set xsa0 addrgenmode none", "addr add 10.79.0.1/24 dev xsa0",
                         "addr add fd79::1/64 dev xsa0 nodad", "link set lo up", "link set xsa0 up",
                         "neigh replace 10.79.0.2 lladdr " + mac_b + " dev xsa0 nud permanent",
                         "neigh replace fd79::2 lladdr " + mac_b + " dev xsa0 nud permanent"}) &&
         ip_batch(kNsB, {"link add link xsb0 name xsb0.100 type vlan id " + std::to_string(kVlan),
                         "link set xsb0 addrgenmode none", "link set xsb0.100 addrgenmode none",
                         "addr add 10.79.0.2/24 dev xsb0", "addr add fd79::2/64 dev xsb0 nodad",
                         "link set lo up", "link set xsb0 up", "link set xsb0.100 up",
                         "neigh replace 10.79.0.1 lladdr " + mac_a + " dev xsb0 nud permanent",
                         "neigh replace fd79::1 lladdr " + mac_a + " dev xsb0 nud permanent"});
}

void teardown_network() {
  ip_batch("", {std::string("netns del ") + kNsA, std::string("netns del ") + kNsB});
}

int netns_fd(const char* name) {
  return open((std::string("/run/netns/") + name).c_str(), O_RDONLY | O_CLOEXEC);
}

struct Pair {
  uint32_t snaplen;
  CollectSink module_sink, af_sink;
  std::unique_ptr<Source> module, af;
};

// Capture filter of every session: our addresses only (the kernel's own MLD reports, sent
// from :: when the link comes up, stay out of the comparison).
icmpcap_filter_spec our_addresses() {
  icmpcap_filter_spec f = {};
  f.nr_addr_rules = 2;
  f.addr_rules[0] = icmpcap_addr_rule{4, 16, ICMPCAP_ADDR_ANY, 0, {10, 79}};
  f.addr_rules[1] = icmpcap_addr_rule{6, 64, ICMPCAP_ADDR_ANY, 0, {0xfd, 0x79}};
  return f;
}

bool open_pair(Pair& p, std::string* why) {
  OpenConfig cfg;
  cfg.snaplen = p.snaplen;
  cfg.filter = our_addresses();
  cfg.limits.flush_interval_ms = 10;
  try {
    cfg.source = SourceKind::kModule;
    p.module = open_module(cfg);
    cfg.source = SourceKind::kAfPacket;
    cfg.interfaces = {"xsb0"};
    cfg.helper_path = "/guest/icmpcap-helper";
    p.af = open_afpacket(cfg);
  } catch (const Error& e) {
    *why = std::string("open: ") + e.what();
    return false;
  }
  p.module->start(&p.module_sink);
  p.af->start(&p.af_sink);
  return true;
}

// Sends marker seq from a and waits until every session has it and its reply.
bool mark(const Env& env, std::vector<Pair*>& pairs, uint16_t seq) {
  if (!send_echo(env.raw4_a, 4, kB4, kMarkerId, seq, 8)) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (auto* p : pairs) all = all && p->module_sink.has_marker(seq) && p->af_sink.has_marker(seq);
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// The module's records as the capture service takes them (a batch: records back to back
// at 8-byte-aligned offsets), base64 in lines of the serial log.
size_t print_records(const std::vector<Rec>& recs) {
  Bytes batch;
  for (const auto& r : recs) {
    const size_t at = batch.size();
    batch.resize(at + align_record(r.h.len), 0);
    memcpy(&batch[at], &r.h, kRecordHeaderSize);
    memcpy(&batch[at + kRecordHeaderSize], r.data.data(), r.data.size());
  }
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string line;
  for (size_t i = 0; i < batch.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(batch[i]) << 16 |
                       (i + 1 < batch.size() ? batch[i + 1] << 8 : 0) |
                       (i + 2 < batch.size() ? batch[i + 2] : 0);
    line += b64[v >> 18 & 63];
    line += b64[v >> 12 & 63];
    line += i + 1 < batch.size() ? b64[v >> 6 & 63] : '=';
    line += i + 2 < batch.size() ? b64[v & 63] : '=';
    if (line.size() >= 1024) {
      printf("ICMPCAP-XSRC records %s\n", line.c_str());
      line.clear();
    }
  }
  if (!line.empty()) printf("ICMPCAP-XSRC records %s\n", line.c_str());
  fflush(stdout);
  return batch.size();
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int main() {
  const int64_t t0 = now_ms();
  int64_t t_setup = 0, t_open = 0, t_sent = 0;
  const auto cases = odd_cases();
  std::string why;
  Env env;
  Topology topo;
  topo.self = getpid();
  Pair full, snap64;
  full.snaplen = 65535;
  snap64.snaplen = 64;
  std::vector<Pair*> pairs = {&full, &snap64};
  // Everything is sent from CPU 0, so every packet is received there, in order.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  sched_setaffinity(0, sizeof(cpus), &cpus);

  if (!setup_network()) {
    result(false, "guest_sources_setup", "namespaces, veth, VLAN (see # lines)");
    teardown_network();
    return 1;
  }
  t_setup = now_ms();
  const int ns_a = netns_fd(kNsA), ns_b = netns_fd(kNsB);
  if (ns_a < 0 || ns_b < 0 || setns(ns_a, CLONE_NEWNET) < 0) {
    result(false, "guest_sources_setup", std::string("setns: ") + strerror(errno));
    teardown_network();
    return 1;
  }
  env.ifindex_a = static_cast<int>(if_nametoindex("xsa0"));
  env.packet_a = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  env.raw4_a = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  env.raw6_a = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  setns(ns_b, CLONE_NEWNET);
  topo.xsb0 = if_nametoindex("xsb0");
  topo.vlan = if_nametoindex("xsb0.100");
  env.raw4_b = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  env.raw6_b = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (env.packet_a < 0 || env.raw4_a < 0 || env.raw6_a < 0 || env.raw4_b < 0 || env.raw6_b < 0 ||
      !env.ifindex_a || !topo.xsb0 || !topo.vlan) {
    result(false, "guest_sources_setup", std::string("sockets: ") + strerror(errno));
    teardown_network();
    return 1;
  }
  // Sessions are opened in namespace b (the helper starts there too).
  for (auto* p : pairs) {
    if (!open_pair(*p, &why)) {
      result(false, "guest_sources_setup", why);
      teardown_network();
      return 1;
    }
  }
  result(true, "guest_sources_setup");
  t_open = now_ms();

  // Start marker, then each case and the marker that ends it.
  std::vector<std::pair<std::string, uint16_t>> ranges;  // case, its end marker
  bool sent = mark(env, pairs, 0);
  if (!sent) why = "the start marker did not arrive";
  for (size_t c = 0; sent && c < cases.size(); c++) {
    const uint16_t seq = static_cast<uint16_t>(c + 1);
    if (!cases[c].send(env)) {
      why = cases[c].name + ": send: " + strerror(errno);
      sent = false;
    } else if (!mark(env, pairs, seq)) {
      why = cases[c].name + ": the marker after it did not arrive";
      sent = false;
    }
    ranges.push_back({cases[c].name, seq});
  }
  const uint16_t end = static_cast<uint16_t>(cases.size());
  for (auto* p : pairs) {
    p->module->stop();
    p->af->stop();
  }
  result(sent, "guest_sources_sent", why);
  t_sent = now_ms();

  for (auto* p : pairs) {
    const std::string name = "guest_sources_identical_snaplen_" + std::to_string(p->snaplen);
    Streams m, a;
    std::string err = p->module_sink.errors() + p->af_sink.errors();
    if (err.empty() && sent && split(p->module_sink.snapshot(), end, &m, &err) &&
        split(p->af_sink.snapshot(), end, &a, &err)) {
      int reassembled = 0;
      // Incoming: every case's packets, the markers, the replies to b's echoes.
      const size_t want_in = 2 * cases.size();
      if (m.in.size() < want_in)
        err = std::to_string(m.in.size()) + " incoming records, fewer than the " +
              std::to_string(want_in) + " sent";
      if (err.empty()) err = compare_in(m.in, a.in, topo);
      if (err.empty()) err = compare_out(m.out, a.out, topo, &reassembled);
      // Fragmented going out: the replies to ping4-in, ping6-in, frag4, frag6 and the echoes
      // of ping4-out, ping6-out.
      if (err.empty() && reassembled != 6)
        err = std::to_string(reassembled) + " outgoing datagrams reassembled, want 6";
      if (err.empty())
        printf("# %s: %zu incoming and %zu outgoing records alike (%d reassembled)\n", name.c_str(),
               m.in.size(), m.out.size(), reassembled);
    } else if (err.empty()) {
      err = "nothing sent";
    }
    result(err.empty(), name, err);
  }

  // The module's records at full snaplen, for the host half, and each case's range in them.
  {
    const auto recs = full.module_sink.snapshot();
    std::vector<Rec> keep;
    int state = 0;
    uint16_t next = 1;
    size_t from = 1;  // after the start marker
    for (const auto& r : recs) {
      if (state == 0 && is_marker(r, 8) && r.h.icmp_seq == 0) state = 1;
      if (state == 0) continue;
      keep.push_back(r);
      if (is_marker(r, 8) && r.h.icmp_seq == next && next <= end) {
        // The case ends at its marker; its reply belongs to the next range.
        // Records [from, to) are the case's: after the marker before it, up to its own.
        printf("ICMPCAP-XSRC case %s %zu %zu\n", ranges[next - 1].first.c_str(), from,
               keep.size() - 1);
        from = keep.size();
        next++;
      }
      if (next > end && is_marker(r, 0) && r.h.icmp_seq == end) break;
    }
    const size_t bytes = print_records(keep);
    printf("ICMPCAP-XSRC end %zu %zu\n", keep.size(), bytes);
  }
  for (auto* p : pairs) {
    p->module->close();
    p->af->close();
  }
  teardown_network();
  printf(
      "# guest_sources: network %lld ms, sessions %lld ms, %zu cases sent %lld ms, the rest %lld "
      "ms\n",
      (long long)(t_setup - t0), (long long)(t_open - t_setup), cases.size(),
      (long long)(t_sent - t_open), (long long)(now_ms() - t_sent));
  return failures ? 1 : 0;
}
