// Core tests of the route parser (messages built here, cut short and corrupted: under ASan a
// read past a message fails) and of route_get / routes_v4_main against this host's kernel.
// Linked into core_test; run: make -C native/test test (or test-asan). The comparison with
// `ip route get` in a network namespace is native/test/routes.test.ts's.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "../src/core/errors.h"
#include "../src/core/routes.h"
#include "test_main.h"

using icmpcap::RouteMessage;

namespace {

// An rtnetlink route message, built attribute by attribute.
class RouteMsg {
 public:
  RouteMsg(uint16_t type, uint8_t family, uint8_t dst_len, uint8_t table, uint8_t rtm_type,
           unsigned flags = 0) {
    bytes_.resize(NLMSG_LENGTH(sizeof(struct rtmsg)));
    struct rtmsg rtm = {};
    rtm.rtm_family = family;
    rtm.rtm_dst_len = dst_len;
    rtm.rtm_table = table;
    rtm.rtm_type = rtm_type;
    rtm.rtm_flags = flags;
    memcpy(bytes_.data() + NLMSG_HDRLEN, &rtm, sizeof(rtm));
    type_ = type;
  }
  RouteMsg& attr(uint16_t type, const void* data, size_t len) {
    append(&bytes_, type, data, len);
    return *this;
  }
  RouteMsg& u32(uint16_t type, uint32_t v) { return attr(type, &v, 4); }
  RouteMsg& addr(uint16_t type, int family, const char* text) {
    uint8_t a[16];
    inet_pton(family, text, a);
    return attr(type, a, family == AF_INET ? 4 : 16);
  }
  // RTA_METRICS holding these RTAX_* values, in order.
  RouteMsg& metrics(const std::vector<std::pair<uint16_t, uint32_t>>& values) {
    std::vector<uint8_t> inner;
    for (auto& kv : values) append(&inner, kv.first, &kv.second, 4);
    return attr(RTA_METRICS, inner.data(), inner.size());
  }
  // The message in a buffer of exactly its nlmsg_len (or `len`) bytes.
  std::vector<uint8_t> bytes(size_t len = 0) const {
    std::vector<uint8_t> b(bytes_);
    if (len) b.resize(len);
    struct nlmsghdr nh = {};
    nh.nlmsg_len = static_cast<uint32_t>(b.size());
    nh.nlmsg_type = type_;
    if (b.size() >= sizeof(nh)) memcpy(b.data(), &nh, sizeof(nh));
    return b;
  }

 private:
  static void append(std::vector<uint8_t>* to, uint16_t type, const void* data, size_t len) {
    struct rtattr rta;
    rta.rta_type = type;
    rta.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    const size_t at = to->size();
    to->resize(at + RTA_SPACE(len), 0);
    memcpy(to->data() + at, &rta, sizeof(rta));
    memcpy(to->data() + at + RTA_LENGTH(0), data, len);
  }
  std::vector<uint8_t> bytes_;
  uint16_t type_;
};

// Parses a copy in a heap block of exactly its size, so that ASan sees a read past it.
bool parse(const std::vector<uint8_t>& b, RouteMessage* out) {
  void* p = malloc(b.empty() ? 1 : b.size());
  memcpy(p, b.data(), b.size());
  bool ok = b.size() >= sizeof(struct nlmsghdr) &&
            icmpcap::parse_route_message(static_cast<const struct nlmsghdr*>(p), out);
  free(p);
  return ok;
}

RouteMsg v4_route_with_everything() {
  RouteMsg m(RTM_NEWROUTE, AF_INET, 24, RT_TABLE_UNSPEC, RTN_UNICAST, RTM_F_CLONED);
  m.u32(RTA_TABLE, RT_TABLE_MAIN)
      .addr(RTA_DST, AF_INET, "10.77.0.0")
      .u32(RTA_OIF, 7)
      .addr(RTA_GATEWAY, AF_INET, "10.203.0.2")
      .addr(RTA_PREFSRC, AF_INET, "10.203.0.1")
      .metrics({{RTAX_ADVMSS, 1260}, {RTAX_MTU, 1300}, {RTAX_HOPLIMIT, 9}});
  return m;
}

}  // namespace

TEST(routes_parse_ipv4_route_with_every_attribute) {
  RouteMessage r;
  REQUIRE(parse(v4_route_with_everything().bytes(), &r));
  CHECK(r.family == AF_INET);
  CHECK(r.type == RTN_UNICAST);
  CHECK(r.table == RT_TABLE_MAIN);  // RTA_TABLE over rtm_table
  CHECK(r.dst_len == 24);
  CHECK(r.dst == "10.77.0.0");
  CHECK(r.gateway == "10.203.0.2");
  CHECK(r.prefsrc == "10.203.0.1");
  CHECK(r.oif == 7);
  CHECK(r.mtu == 1300);  // RTAX_MTU among other metrics
  CHECK(r.flags == RTM_F_CLONED);
}

TEST(routes_parse_ipv6_default_route_and_metrics_without_mtu) {
  RouteMsg m(RTM_NEWROUTE, AF_INET6, 0, RT_TABLE_MAIN, RTN_UNICAST);
  m.addr(RTA_GATEWAY, AF_INET6, "fd00:203::2").metrics({{RTAX_HOPLIMIT, 64}});
  RouteMessage r;
  REQUIRE(parse(m.bytes(), &r));
  CHECK(r.family == AF_INET6);
  CHECK(r.table == RT_TABLE_MAIN);  // no RTA_TABLE: rtm_table
  CHECK(r.dst == "::");
  CHECK(r.dst_len == 0);
  CHECK(r.gateway == "fd00:203::2");
  CHECK(r.prefsrc.empty());
  CHECK(r.oif == 0);
  CHECK(r.mtu == 0);
}

TEST(routes_parse_via_an_ipv6_next_hop_and_gateway_first) {
  uint8_t via[2 + 16];
  const uint16_t fam = AF_INET6;
  memcpy(via, &fam, 2);
  inet_pton(AF_INET6, "fe80::1", via + 2);
  RouteMessage r;
  RouteMsg m(RTM_NEWROUTE, AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST);
  m.attr(RTA_VIA, via, sizeof(via));
  REQUIRE(parse(m.bytes(), &r));
  CHECK(r.gateway == "fe80::1");
  m.addr(RTA_GATEWAY, AF_INET, "192.0.2.1");
  REQUIRE(parse(m.bytes(), &r));
  CHECK(r.gateway == "192.0.2.1");
  RouteMsg short_via(RTM_NEWROUTE, AF_INET, 0, RT_TABLE_MAIN, RTN_UNICAST);
  short_via.attr(RTA_VIA, via, 2 + 4);  // an IPv6 family with 4 bytes of address
  REQUIRE(parse(short_via.bytes(), &r));
  CHECK(r.gateway.empty());
}

TEST(routes_parse_rejects_other_messages_and_short_attributes) {
  RouteMessage r;
  CHECK(!parse(RouteMsg(RTM_NEWLINK, AF_INET, 0, 0, 0).bytes(), &r));
  CHECK(!parse(RouteMsg(RTM_DELROUTE, AF_INET, 0, 0, 0).bytes(), &r));
  CHECK(!parse(RouteMsg(RTM_NEWROUTE, AF_BRIDGE, 0, 0, 0).bytes(), &r));
  CHECK(
      !parse(RouteMsg(RTM_NEWROUTE, AF_INET, 0, 0, 0).bytes(NLMSG_LENGTH(sizeof(rtmsg)) - 1), &r));
  RouteMsg m(RTM_NEWROUTE, AF_INET, 32, RT_TABLE_MAIN, RTN_UNICAST);
  const uint8_t three[3] = {10, 1, 2};
  const uint16_t two = 5;
  m.attr(RTA_DST, three, 3).attr(RTA_GATEWAY, three, 3).attr(RTA_OIF, &two, 2);
  m.attr(RTA_TABLE, &two, 2).attr(RTA_PREFSRC, three, 3);
  REQUIRE(parse(m.bytes(), &r));
  CHECK(r.dst == "0.0.0.0");
  CHECK(r.gateway.empty());
  CHECK(r.prefsrc.empty());
  CHECK(r.oif == 0);
  CHECK(r.table == RT_TABLE_MAIN);
  // A metrics attribute whose RTAX_MTU is too short.
  RouteMsg mm(RTM_NEWROUTE, AF_INET, 32, RT_TABLE_MAIN, RTN_UNICAST);
  uint8_t inner[RTA_SPACE(2)] = {};
  struct rtattr rta = {static_cast<unsigned short>(RTA_LENGTH(2)), RTAX_MTU};
  memcpy(inner, &rta, sizeof(rta));
  mm.attr(RTA_METRICS, inner, sizeof(inner));
  REQUIRE(parse(mm.bytes(), &r));
  CHECK(r.mtu == 0);
}

TEST(routes_parse_cut_anywhere_or_corrupted_never_reads_past_the_message) {
  const std::vector<uint8_t> whole = v4_route_with_everything().bytes();
  RouteMessage r;
  for (size_t len = sizeof(struct nlmsghdr); len <= whole.size(); len++) {
    bool ok = parse(v4_route_with_everything().bytes(len), &r);
    CHECK(ok == (len >= NLMSG_LENGTH(sizeof(struct rtmsg))));
  }
  std::mt19937 rng(4242);
  for (int i = 0; i < 200000; i++) {
    std::vector<uint8_t> b = whole;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < flips; k++) {
      const size_t at = sizeof(struct nlmsghdr) + rng() % (b.size() - sizeof(struct nlmsghdr));
      b[at] = static_cast<uint8_t>(rng());
    }
    b.resize(sizeof(struct nlmsghdr) + rng() % (b.size() - sizeof(struct nlmsghdr) + 1));
    const uint32_t len = static_cast<uint32_t>(b.size());
    memcpy(b.data(), &len, 4);  // nlmsg_len: what rtnl_request checked against the datagram
    parse(b, &r);
  }
}

TEST(routes_route_get_loopback_in_this_namespace) {
  const uint8_t v4[4] = {127, 0, 0, 1};
  icmpcap::RouteAnswer a = icmpcap::route_get(AF_INET, v4);
  CHECK(a.dev == "lo");
  CHECK(a.gateway.empty());
  CHECK(a.source == "127.0.0.1");
  uint8_t v6[16] = {};
  v6[15] = 1;
  try {
    a = icmpcap::route_get(AF_INET6, v6);
    CHECK(a.dev == "lo");
  } catch (const icmpcap::Error& e) {
    CHECK(e.err() == ENETUNREACH);  // IPv6 disabled here
  }
  try {
    icmpcap::route_get(AF_UNIX, v4);
    CHECK(false);
  } catch (const icmpcap::Error& e) {
    CHECK(e.err() == EAFNOSUPPORT);
  }
  for (const auto& r : icmpcap::routes_v4_main())
    CHECK(r.prefix_length >= 0 && r.prefix_length <= 32);
}

// In a network namespace of its own (root only; a child process, so that the other tests keep
// theirs): no route anywhere, so the kernel's error comes back, named.
TEST(routes_route_get_in_an_empty_namespace_throws_enetunreach) {
  if (geteuid() != 0) {
    printf("  (skipped: not root)\n");
    return;
  }
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(2);
    int status = 0;
    try {
      const uint8_t v4[4] = {10, 9, 9, 9};
      try {
        icmpcap::route_get(AF_INET, v4);
        status |= 4;
      } catch (const icmpcap::Error& e) {
        if (e.err() != ENETUNREACH || e.op() != "route get 10.9.9.9") status |= 8;
      }
      uint8_t v6[16] = {0xfd, 0x99};
      try {
        icmpcap::route_get(AF_INET6, v6);
        status |= 16;
      } catch (const icmpcap::Error& e) {
        if (e.err() != ENETUNREACH || e.op() != "route get fd99::") status |= 32;
      }
      if (!icmpcap::routes_v4_main().empty()) status |= 64;
    } catch (...) {
      status |= 1;  // never back into the harness from the child
    }
    _exit(status);
  }
  int ws = 0;
  REQUIRE(waitpid(pid, &ws, 0) == pid);
  CHECK(WIFEXITED(ws));
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 2) {
    printf("  (skipped: no unshare(CLONE_NEWNET) here)\n");
    return;
  }
  CHECK(WEXITSTATUS(ws) == 0);
  if (WEXITSTATUS(ws)) fprintf(stderr, "  child status %d\n", WEXITSTATUS(ws));
}
