// Routes through rtnetlink, in process: what `ip route get ADDR` and `ip -4 route show table
// main` say, without running ip (a fork of a process with gigabytes resident blocks it for
// tens of milliseconds).
#pragma once

#include <linux/netlink.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace icmpcap {

// One RTM_NEWROUTE message of rtnetlink.
struct RouteMessage {
  int family = 0;      // AF_INET or AF_INET6
  uint8_t type = 0;    // rtm_type: RTN_UNICAST, RTN_LOCAL, ...
  uint32_t table = 0;  // RTA_TABLE, else rtm_table
  unsigned flags = 0;  // rtm_flags: RTM_F_CLONED for a cached exception (a path MTU, a redirect)
  int dst_len = 0;
  std::string dst;      // RTA_DST as text; "0.0.0.0" or "::" without one (a default route)
  std::string gateway;  // RTA_GATEWAY, else RTA_VIA, as text; empty: none
  std::string prefsrc;  // RTA_PREFSRC as text; empty: none
  int oif = 0;          // RTA_OIF; 0: none
  uint32_t mtu = 0;     // RTAX_MTU of RTA_METRICS; 0: none
};

// The one parser of rtnetlink route messages. False for anything else (another message type,
// a family other than AF_INET and AF_INET6, a message too short for its header); attributes
// too short for what they hold are left out.
bool parse_route_message(const struct nlmsghdr* nh, RouteMessage* out);

// The kernel's route to one destination, as `ip route get` shows it.
struct RouteAnswer {
  std::string dev;      // the interface's name; empty: none
  std::string gateway;  // empty: on link
  std::string source;   // the preferred source address; empty: none
  // The route's MTU: the route's own (`mtu N`) or a cached path-MTU exception's (`cache expires
  // ... mtu N`); 0: none, the interface's MTU applies.
  uint32_t mtu = 0;
};

// One RTM_GETROUTE request for `addr` (family AF_INET: 4 bytes, AF_INET6: 16 bytes), as `ip
// route get ADDR`; the answer waits at most 1 s. Throws Error: the kernel's errno (ENETUNREACH:
// no route, EHOSTUNREACH: an unreachable route, ...) with op "route get ADDR"; EAFNOSUPPORT
// for another family; ETIMEDOUT without an answer.
RouteAnswer route_get(int family, const uint8_t* addr);

// An IPv4 unicast route of the main table.
struct Route4 {
  std::string dst;  // "0.0.0.0" for the default route
  int prefix_length = 0;
  std::string gateway;  // empty: on link (or several next hops, as `ip route` shows them)
};

// An RTM_GETROUTE dump of IPv4: the unicast routes (RTN_UNICAST) of the main table
// (RT_TABLE_MAIN), in the kernel's order, without the cached exceptions the kernel dumps among
// them (RTM_F_CLONED: a path MTU learnt, a redirect), as `ip -4 route show table main` lists
// them; each part of the dump waits at most 1 s. Throws Error.
std::vector<Route4> routes_v4_main();

}  // namespace icmpcap
