// rtnetlink requests, shared by interfaces.cc and routes.cc: a socket, and one request whose
// answers are read until the kernel is done, each checked to be an answer to it.
#pragma once

#include <linux/netlink.h>
#include <stdint.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace icmpcap {

// A NETLINK_ROUTE socket bound to the multicast `groups` (0: none, for requests). With
// recv_timeout_ms > 0, a receive waits at most that long. Throws Error.
int open_rtnl(unsigned groups, int recv_timeout_ms = 0);

// A NETLINK_ROUTE socket for requests, closed with the object. Throws Error.
class RtnlSocket {
 public:
  explicit RtnlSocket(int recv_timeout_ms = 0) : fd_(open_rtnl(0, recv_timeout_ms)) {}
  ~RtnlSocket() { ::close(fd_); }
  RtnlSocket(const RtnlSocket&) = delete;
  RtnlSocket& operator=(const RtnlSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Sends `req` (a whole message: length, type, flags and body; the sequence number and port
// are set here) and passes each answer to `on_answer` until NLMSG_DONE, an NLMSG_ERROR that
// is an acknowledgement, or on_answer returning false (a request that is not a dump has one
// answer). What is not an answer to this request (another sequence number or port, not sent by
// the kernel) is skipped. Throws Error: op and the kernel's errno for an NLMSG_ERROR;
// ETIMEDOUT when the socket's receive timeout passes; socket errors.
void rtnl_request(int fd, struct nlmsghdr* req, const std::string& op,
                  const std::function<bool(const struct nlmsghdr*)>& on_answer);

// NLM_F_DUMP of `type` (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, ...) for `family`: every
// message of the dump to on_message. Throws Error as rtnl_request does.
void rtnl_dump(int fd, uint16_t type, uint8_t family, const std::string& op,
               const std::function<void(const struct nlmsghdr*)>& on_message);

}  // namespace icmpcap
