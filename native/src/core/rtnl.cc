#include "rtnl.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>

#include "errors.h"

namespace icmpcap {

namespace {

// The kernel sends a dump in messages of at most 32 KiB (less its overhead): a buffer this
// size never truncates one.
constexpr size_t kRecvBuf = 32768;

uint32_t next_seq() {
  static std::atomic<uint32_t> seq{1};
  return seq.fetch_add(1, std::memory_order_relaxed);
}

uint32_t port_of(int fd, const std::string& op) {
  struct sockaddr_nl sa = {};
  socklen_t len = sizeof(sa);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    throw_error("getsockname(" + op + ")", errno);
  return sa.nl_pid;
}

}  // namespace

int open_rtnl(unsigned groups, int recv_timeout_ms) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw_error("socket(AF_NETLINK, NETLINK_ROUTE)", errno);
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    ::close(fd);
    throw_error("bind(NETLINK_ROUTE)", err);
  }
  if (recv_timeout_ms > 0) {
    struct timeval tv = {recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
      int err = errno;
      ::close(fd);
      throw_error("setsockopt(NETLINK_ROUTE, SO_RCVTIMEO)", err);
    }
  }
  return fd;
}

void rtnl_request(int fd, struct nlmsghdr* req, const std::string& op,
                  const std::function<bool(const struct nlmsghdr*)>& on_answer) {
  const uint32_t port = port_of(fd, op);
  req->nlmsg_seq = next_seq();
  req->nlmsg_pid = 0;
  struct sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
    throw_error("send(" + op + ")", errno);
  alignas(struct nlmsghdr) char buf[kRecvBuf];
  for (;;) {
    struct sockaddr_nl from = {};
    socklen_t from_len = sizeof(from);
    // MSG_TRUNC: the length of the whole message, also when it did not fit.
    ssize_t n =
        recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        throw_error(op, ETIMEDOUT, "no answer from the kernel in time");
      throw_error("recv(" + op + ")", errno);
    }
    if (static_cast<size_t>(n) > sizeof(buf))
      throw_error("recv(" + op + ")", EMSGSIZE, "an answer larger than the receive buffer");
    if (from.nl_pid != 0) continue;  // not from the kernel
    int len = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<const struct nlmsghdr*>(buf); NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_seq != req->nlmsg_seq || nh->nlmsg_pid != port) continue;
      if (nh->nlmsg_type == NLMSG_DONE) return;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
          throw_error(op, EBADMSG, "a truncated error message from the kernel");
        auto* e = static_cast<const struct nlmsgerr*>(NLMSG_DATA(nh));
        if (e->error) throw_error(op, -e->error);
        return;  // an acknowledgement
      }
      if (nh->nlmsg_type < NLMSG_MIN_TYPE) continue;  // NLMSG_NOOP, NLMSG_OVERRUN
      if (!on_answer(nh)) return;
    }
  }
}

void rtnl_dump(int fd, uint16_t type, uint8_t family, const std::string& op,
               const std::function<void(const struct nlmsghdr*)>& on_message) {
  struct {
    struct nlmsghdr nh;
    struct rtgenmsg g;
  } req = {};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = type;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.g.rtgen_family = family;
  rtnl_request(fd, &req.nh, op, [&](const struct nlmsghdr* nh) {
    on_message(nh);
    return true;
  });
}

}  // namespace icmpcap
