// Network interfaces through rtnetlink: a snapshot and a watcher for changes.
#pragma once

#include <linux/netlink.h>
#include <stdint.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace icmpcap {

struct InterfaceAddress {
  int family = 4;  // 4 or 6
  std::string address;
  int prefix_length = 0;
};

struct InterfaceInfo {
  int index = 0;
  std::string name;
  bool up = false;
  bool running = false;
  bool loopback = false;
  uint32_t mtu = 0;
  std::vector<InterfaceAddress> addresses;
};

// One RTM_NEWLINK / RTM_DELLINK message of rtnetlink.
struct LinkMessage {
  int index = 0;
  std::string name;
  unsigned flags = 0;
  uint32_t mtu = 0;
  bool removed = false;  // RTM_DELLINK
};

// The one parser of rtnetlink link messages. False for anything else, and for the bridge's
// per-port notifications (ifi_family AF_BRIDGE): a port leaving a bridge (`ip link set X
// nomaster`, docker or libvirt detaching a veth) sends RTM_DELLINK, but the interface stays.
bool parse_link_message(const struct nlmsghdr* nh, LinkMessage* out);

// RTM_GETLINK + RTM_GETADDR dumps, sorted by index. Throws Error.
std::vector<InterfaceInfo> list_interfaces();

// Interface names (as the kernel accepts them: 1 to 15 bytes) to indexes in this network
// namespace, duplicates removed, in order. Throws Error: EINVAL bad name, ENODEV unknown.
std::vector<std::pair<unsigned, std::string>> resolve_interfaces(
    const std::vector<std::string>& names);

enum class InterfaceChange { kAdded, kRemoved, kChanged };

// Follows RTM_NEWLINK/DELLINK/NEWADDR/DELADDR on its own thread (blocking in poll on the
// netlink socket and an eventfd) and calls on_change from that thread.
class InterfaceWatcher {
 public:
  using Callback = std::function<void(InterfaceChange, const InterfaceInfo&)>;
  explicit InterfaceWatcher(Callback on_change);  // throws Error
  ~InterfaceWatcher();
  void close();  // idempotent, joins the thread

 private:
  void run();
  void handle(const void* buf, size_t len);
  void resync();

  Callback on_change_;
  int nl_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::map<int, InterfaceInfo> known_;
};

}  // namespace icmpcap
