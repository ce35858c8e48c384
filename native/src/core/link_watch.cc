#include "link_watch.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "interfaces.h"

namespace icmpcap {

LinkWatch::LinkWatch() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd_ < 0) return;
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) close();
}

LinkWatch::~LinkWatch() { close(); }

void LinkWatch::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<int> LinkWatch::removed(const std::vector<int>& watched) {
  std::vector<int> out;
  auto add = [&](int idx) {
    if (std::find(watched.begin(), watched.end(), idx) != watched.end() &&
        std::find(out.begin(), out.end(), idx) == out.end())
      out.push_back(idx);
  };
  alignas(struct nlmsghdr) char buf[16384];
  while (fd_ >= 0) {
    ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ENOBUFS) {
        char name[IF_NAMESIZE];
        for (int idx : watched)
          if (!if_indextoname(static_cast<unsigned>(idx), name)) add(idx);
        continue;
      }
      break;
    }
    int len = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      LinkMessage l;
      if (parse_link_message(nh, &l) && l.removed) add(l.index);
    }
  }
  return out;
}

}  // namespace icmpcap
