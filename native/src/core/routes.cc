#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "errors.h"
#include "rtnl.h"

namespace icmpcap {

namespace {

constexpr int kRouteGetTimeoutMs = 1000;

size_t address_bytes(int family) { return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0; }

// An address attribute as text; empty when it is too short for the family.
std::string address_text(int family, const void* data, size_t len) {
  if (len < address_bytes(family)) return "";
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(family, data, buf, sizeof(buf)) ? std::string(buf) : std::string();
}

uint32_t u32_of(const struct rtattr* rta) {
  uint32_t v;
  memcpy(&v, RTA_DATA(rta), sizeof(v));
  return v;
}

// RTAX_MTU among the nested attributes of RTA_METRICS; 0 without one.
uint32_t metrics_mtu(const struct rtattr* metrics) {
  int len = static_cast<int>(RTA_PAYLOAD(metrics));
  for (auto* rta = static_cast<const struct rtattr*>(RTA_DATA(metrics)); RTA_OK(rta, len);
       rta = RTA_NEXT(rta, len))
    if (rta->rta_type == RTAX_MTU && RTA_PAYLOAD(rta) >= 4) return u32_of(rta);
  return 0;
}

}  // namespace

bool parse_route_message(const struct nlmsghdr* nh, RouteMessage* out) {
  if (nh->nlmsg_type != RTM_NEWROUTE) return false;
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg))) return false;
  auto* rtm = static_cast<const struct rtmsg*>(NLMSG_DATA(nh));
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) return false;
  *out = RouteMessage();
  out->family = rtm->rtm_family;
  out->type = rtm->rtm_type;
  out->table = rtm->rtm_table;
  out->flags = rtm->rtm_flags;
  out->dst_len = rtm->rtm_dst_len;
  out->dst = rtm->rtm_family == AF_INET ? "0.0.0.0" : "::";
  std::string via;
  int len = static_cast<int>(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*rtm)));
  for (auto* rta = RTM_RTA(rtm); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    const size_t payload = RTA_PAYLOAD(rta);
    switch (rta->rta_type) {
      case RTA_DST: {
        std::string dst = address_text(out->family, RTA_DATA(rta), payload);
        if (!dst.empty()) out->dst = dst;
        break;
      }
      case RTA_GATEWAY:
        out->gateway = address_text(out->family, RTA_DATA(rta), payload);
        break;
      case RTA_VIA: {
        // struct rtvia: a family, then an address of that family (an IPv4 route through an
        // IPv6 next hop).
        struct rtvia v;
        if (payload < sizeof(v)) break;
        memcpy(&v, RTA_DATA(rta), sizeof(v));
        via = address_text(v.rtvia_family, static_cast<const uint8_t*>(RTA_DATA(rta)) + sizeof(v),
                           payload - sizeof(v));
        break;
      }
      case RTA_PREFSRC:
        out->prefsrc = address_text(out->family, RTA_DATA(rta), payload);
        break;
      case RTA_OIF:
        if (payload >= 4) out->oif = static_cast<int>(u32_of(rta));
        break;
      case RTA_TABLE:
        if (payload >= 4) out->table = u32_of(rta);
        break;
      case RTA_METRICS:
        out->mtu = metrics_mtu(rta);
        break;
      default:
        break;
    }
  }
  if (out->gateway.empty()) out->gateway = via;
  return true;
}

RouteAnswer route_get(int family, const uint8_t* addr) {
  const size_t bytes = address_bytes(family);
  if (!bytes) throw_error("route get", EAFNOSUPPORT, "only AF_INET and AF_INET6");
  const std::string op = "route get " + address_text(family, addr, bytes);
  struct {
    struct nlmsghdr nh;
    struct rtmsg rtm;
    struct rtattr dst;
    uint8_t addr[16];
  } req;
  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.rtm) + RTA_LENGTH(bytes));
  req.nh.nlmsg_type = RTM_GETROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.rtm.rtm_family = static_cast<uint8_t>(family);
  req.rtm.rtm_dst_len = static_cast<uint8_t>(bytes * 8);
  req.rtm.rtm_flags = RTM_F_LOOKUP_TABLE;  // as ip does: the table the lookup used
  req.dst.rta_type = RTA_DST;
  req.dst.rta_len = static_cast<unsigned short>(RTA_LENGTH(bytes));
  memcpy(req.addr, addr, bytes);
  static_assert(offsetof(decltype(req), dst) == NLMSG_LENGTH(sizeof(struct rtmsg)),
                "RTA_DST right after the rtmsg");
  static_assert(offsetof(decltype(req), addr) == NLMSG_LENGTH(sizeof(struct rtmsg)) + RTA_LENGTH(0),
                "the address is the attribute's payload");

  RouteMessage m;
  bool answered = false;
  RtnlSocket s(kRouteGetTimeoutMs);
  rtnl_request(s.fd(), &req.nh, op, [&](const struct nlmsghdr* nh) {
    answered = parse_route_message(nh, &m) && m.family == family;
    return !answered;  // anything else is not the answer: read on
  });
  if (!answered) throw_error(op, EBADMSG, "the kernel answered without a route");
  RouteAnswer a;
  char name[IF_NAMESIZE];
  if (m.oif > 0 && if_indextoname(static_cast<unsigned>(m.oif), name)) a.dev = name;
  a.gateway = m.gateway;
  a.source = m.prefsrc;
  a.mtu = m.mtu;
  return a;
}

std::vector<Route4> routes_v4_main() {
  std::vector<Route4> out;
  RtnlSocket s(kRouteGetTimeoutMs);
  rtnl_dump(s.fd(), RTM_GETROUTE, AF_INET, "rtnetlink dump RTM_GETROUTE",
            [&](const struct nlmsghdr* nh) {
              RouteMessage m;
              if (!parse_route_message(nh, &m) || m.family != AF_INET) return;
              if (m.table != RT_TABLE_MAIN || m.type != RTN_UNICAST) return;
              if (m.flags & RTM_F_CLONED) return;
              out.push_back(Route4{m.dst, m.dst_len, m.gateway});
            });
  return out;
}

}  // namespace icmpcap
