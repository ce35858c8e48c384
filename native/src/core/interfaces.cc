#include "interfaces.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "errors.h"
#include "rtnl.h"

#ifndef IFF_RUNNING
#define IFF_RUNNING 0x40
#endif

namespace icmpcap {

namespace {

bool parse_addr(const struct nlmsghdr* nh, int* index, InterfaceAddress* out) {
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) return false;
  auto* ifa = static_cast<const struct ifaddrmsg*>(NLMSG_DATA(nh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return false;
  *index = static_cast<int>(ifa->ifa_index);
  out->family = ifa->ifa_family == AF_INET ? 4 : 6;
  out->prefix_length = ifa->ifa_prefixlen;
  const void* local = nullptr;
  const void* address = nullptr;
  int len = static_cast<int>(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa)));
  const size_t want = ifa->ifa_family == AF_INET ? 4 : 16;
  for (auto* rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (RTA_PAYLOAD(rta) < want) continue;
    if (rta->rta_type == IFA_LOCAL) local = RTA_DATA(rta);
    if (rta->rta_type == IFA_ADDRESS) address = RTA_DATA(rta);
  }
  // IFA_LOCAL is the interface's own address on point-to-point links; else IFA_ADDRESS.
  const void* a = local ? local : address;
  if (!a) return false;
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(ifa->ifa_family, a, buf, sizeof(buf))) return false;
  out->address = buf;
  return true;
}

InterfaceInfo from_link(const LinkMessage& l) {
  InterfaceInfo i;
  i.index = l.index;
  i.name = l.name;
  i.up = l.flags & IFF_UP;
  i.running = l.flags & IFF_RUNNING;
  i.loopback = l.flags & IFF_LOOPBACK;
  i.mtu = l.mtu;
  return i;
}

std::map<int, InterfaceInfo> snapshot(int fd) {
  std::map<int, InterfaceInfo> out;
  rtnl_dump(fd, RTM_GETLINK, AF_UNSPEC, "rtnetlink dump RTM_GETLINK",
            [&](const struct nlmsghdr* nh) {
              LinkMessage l;
              if (parse_link_message(nh, &l) && !l.removed) out[l.index] = from_link(l);
            });
  rtnl_dump(fd, RTM_GETADDR, AF_UNSPEC, "rtnetlink dump RTM_GETADDR",
            [&](const struct nlmsghdr* nh) {
              int index;
              InterfaceAddress a;
              if (nh->nlmsg_type == RTM_NEWADDR && parse_addr(nh, &index, &a)) {
                auto it = out.find(index);
                if (it != out.end()) it->second.addresses.push_back(a);
              }
            });
  return out;
}

}  // namespace

bool parse_link_message(const struct nlmsghdr* nh, LinkMessage* out) {
  if (nh->nlmsg_type != RTM_NEWLINK && nh->nlmsg_type != RTM_DELLINK) return false;
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) return false;
  auto* ifi = static_cast<const struct ifinfomsg*>(NLMSG_DATA(nh));
  if (ifi->ifi_family == AF_BRIDGE) return false;
  out->index = ifi->ifi_index;
  out->flags = ifi->ifi_flags;
  out->removed = nh->nlmsg_type == RTM_DELLINK;
  int len = static_cast<int>(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
  for (auto* rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (rta->rta_type == IFLA_IFNAME)
      out->name.assign(static_cast<const char*>(RTA_DATA(rta)),
                       strnlen(static_cast<const char*>(RTA_DATA(rta)), RTA_PAYLOAD(rta)));
    else if (rta->rta_type == IFLA_MTU && RTA_PAYLOAD(rta) >= 4)
      memcpy(&out->mtu, RTA_DATA(rta), 4);
  }
  return true;
}

std::vector<std::pair<unsigned, std::string>> resolve_interfaces(
    const std::vector<std::string>& names) {
  std::vector<std::pair<unsigned, std::string>> out;
  for (const auto& name : names) {
    if (name.empty() || name.size() >= IF_NAMESIZE || name.find('\0') != std::string::npos)
      throw_error("open: interface \"" + name + "\"", EINVAL, "interface names have 1 to 15 bytes");
    const unsigned idx = if_nametoindex(name.c_str());
    if (!idx)
      throw_kind("no-such-interface", "open: interface " + name, ENODEV,
                 "no such interface in this network namespace");
    bool dup = false;
    for (auto& t : out) dup |= t.first == idx;
    if (!dup) out.emplace_back(idx, name);
  }
  return out;
}

std::vector<InterfaceInfo> list_interfaces() {
  std::map<int, InterfaceInfo> m = snapshot(RtnlSocket().fd());
  std::vector<InterfaceInfo> out;
  for (auto& kv : m) out.push_back(std::move(kv.second));
  return out;
}

InterfaceWatcher::InterfaceWatcher(Callback on_change) : on_change_(std::move(on_change)) {
  // Subscribe first, then take the snapshot, so no change falls between the two.
  nl_fd_ = open_rtnl(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    int err = errno;
    ::close(nl_fd_);
    throw_error("eventfd", err);
  }
  try {
    known_ = snapshot(RtnlSocket().fd());
  } catch (...) {
    ::close(nl_fd_);
    ::close(stop_fd_);
    throw;
  }
  thread_ = std::thread([this] { run(); });
}

InterfaceWatcher::~InterfaceWatcher() { close(); }

void InterfaceWatcher::close() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
    }
    thread_.join();
  }
  if (nl_fd_ >= 0) ::close(nl_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  nl_fd_ = stop_fd_ = -1;
}

void InterfaceWatcher::run() {
  alignas(struct nlmsghdr) char buf[32768];
  for (;;) {
    struct pollfd p[2] = {{stop_fd_, POLLIN, 0}, {nl_fd_, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents) return;
    if (!p[1].revents) continue;
    ssize_t n = recv(nl_fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ENOBUFS) resync();  // notifications were lost: diff a fresh snapshot
      continue;
    }
    handle(buf, static_cast<size_t>(n));
  }
}

void InterfaceWatcher::handle(const void* data, size_t n) {
  int len = static_cast<int>(n);
  for (auto* nh = reinterpret_cast<const struct nlmsghdr*>(data); NLMSG_OK(nh, len);
       nh = NLMSG_NEXT(nh, len)) {
    switch (nh->nlmsg_type) {
      case RTM_NEWLINK: {
        LinkMessage l;
        if (!parse_link_message(nh, &l)) break;
        auto it = known_.find(l.index);
        if (it == known_.end()) {
          InterfaceInfo info = from_link(l);
          known_[l.index] = info;
          on_change_(InterfaceChange::kAdded, info);
        } else {
          InterfaceInfo info = from_link(l);
          if (info.name.empty()) info.name = it->second.name;
          info.addresses = it->second.addresses;
          const bool same = info.name == it->second.name && info.up == it->second.up &&
                            info.running == it->second.running && info.mtu == it->second.mtu;
          it->second = info;
          if (!same) on_change_(InterfaceChange::kChanged, info);
        }
        break;
      }
      case RTM_DELLINK: {
        LinkMessage l;
        if (!parse_link_message(nh, &l)) break;
        auto it = known_.find(l.index);
        InterfaceInfo info = it != known_.end() ? it->second : from_link(l);
        if (it != known_.end()) known_.erase(it);
        on_change_(InterfaceChange::kRemoved, info);
        break;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR: {
        int index;
        InterfaceAddress a;
        if (!parse_addr(nh, &index, &a)) break;
        auto it = known_.find(index);
        if (it == known_.end()) break;
        auto& v = it->second.addresses;
        auto same = [&](const InterfaceAddress& b) {
          return b.family == a.family && b.address == a.address &&
                 b.prefix_length == a.prefix_length;
        };
        const bool had = std::any_of(v.begin(), v.end(), same);
        if (nh->nlmsg_type == RTM_NEWADDR && !had)
          v.push_back(a);
        else if (nh->nlmsg_type == RTM_DELADDR && had)
          v.erase(std::remove_if(v.begin(), v.end(), same), v.end());
        else
          break;
        on_change_(InterfaceChange::kChanged, it->second);
        break;
      }
      default:
        break;
    }
  }
}

void InterfaceWatcher::resync() {
  std::map<int, InterfaceInfo> fresh;
  try {
    fresh = snapshot(RtnlSocket().fd());
  } catch (...) {
    return;
  }
  for (auto& kv : known_)
    if (!fresh.count(kv.first)) on_change_(InterfaceChange::kRemoved, kv.second);
  for (auto& kv : fresh) {
    auto it = known_.find(kv.first);
    if (it == known_.end())
      on_change_(InterfaceChange::kAdded, kv.second);
    else
      on_change_(InterfaceChange::kChanged, kv.second);
  }
  known_ = std::move(fresh);
}

}  // namespace icmpcap
