// Spawning icmpcap-helper and receiving the AF_PACKET socket it opens.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "afpacket_source.h"
#include "errors.h"
#include "helper_protocol.h"

namespace icmpcap {

namespace {

constexpr int kHelperTimeoutMs = 5000;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool in_group(gid_t gid) {
  if (getegid() == gid) return true;
  int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = getgroups(n, groups.data());
  for (int i = 0; i < n; i++)
    if (groups[static_cast<size_t>(i)] == gid) return true;
  return false;
}

}  // namespace

int open_afpacket_via_helper(const std::string& helper, const std::string& ifname,
                             uint32_t snaplen) {
  const std::string op_name = "helper " + helper;
  const std::string setcap = "sudo setcap cap_net_raw+ep " + helper;
  struct stat st;
  if (helper.empty() || stat(helper.c_str(), &st) < 0)
    throw_error(op_name, helper.empty() ? ENOENT : errno,
                "the capture helper is missing; rebuild it (npm run build:native) or pass "
                "helperPath, then " +
                    setcap);
  if (S_ISREG(st.st_mode) && access(helper.c_str(), X_OK) < 0 && (st.st_mode & S_IXGRP) &&
      !in_group(st.st_gid)) {
    // Packages install the helper as root:icmpcap 0750: only members of the group may capture.
    const struct group* gr = getgrgid(st.st_gid);
    const std::string group = gr ? gr->gr_name : std::to_string(st.st_gid);
    throw_error(op_name, EACCES,
                "only members of group " + group +
                    " may run the capture helper; join it (sudo usermod -aG " + group +
                    " $USER) and log in again");
  }
  if (!S_ISREG(st.st_mode) || access(helper.c_str(), X_OK) < 0)
    throw_error(op_name, EACCES, "the capture helper is not an executable file; " + setcap);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    throw_error("socketpair", errno);
  Fd ours{sv[0]};
  Fd theirs{sv[1]};
  // posix_spawn's dup2 onto the same number would keep close-on-exec: move it out of the way.
  if (theirs.fd == ICMPCAP_HELPER_FD) {
    int moved = fcntl(theirs.fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) throw_error("fcntl(F_DUPFD_CLOEXEC)", errno);
    ::close(theirs.fd);
    theirs.fd = moved;
  }

  std::vector<std::string> args = {helper, "--snaplen", std::to_string(snaplen)};
  if (!ifname.empty()) {
    args.push_back("--interface");
    args.push_back(ifname);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, theirs.fd, ICMPCAP_HELPER_FD);
  pid_t pid;
  int rc = posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw_error("spawn " + helper, rc, "check that the capture helper is executable");
  ::close(theirs.fd);
  theirs.fd = -1;

  struct icmpcap_helper_reply reply = {};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&reply, sizeof(reply)};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);

  struct pollfd p = {ours.fd, POLLIN, 0};
  int pr;
  do pr = poll(&p, 1, kHelperTimeoutMs);
  while (pr < 0 && errno == EINTR);
  ssize_t n = pr > 0 ? recvmsg(ours.fd, &msg, MSG_CMSG_CLOEXEC) : -1;
  const int recv_err = pr == 0 ? ETIMEDOUT : errno;
  int fd = -1;
  if (n > 0) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
          c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
    }
  }
  if (pr == 0) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (n != static_cast<ssize_t>(sizeof(reply)) || reply.magic != ICMPCAP_HELPER_MAGIC) {
    if (fd >= 0) ::close(fd);
    if (n < 0) throw_error(op_name + ": no reply", recv_err, "run icmpcap doctor");
    throw_error(op_name + ": exited without a reply (status " + std::to_string(status) + ")",
                EPROTO,
                "the helper does not match this version of icmpcap; rebuild it (npm run "
                "build:native)");
  }
  if (reply.err != 0 || fd < 0) {
    if (fd >= 0) ::close(fd);
    reply.op[sizeof(reply.op) - 1] = 0;
    const int err = reply.err ? reply.err : EPROTO;
    std::string fix;
    if (err == EPERM || err == EACCES)
      fix = "run icmpcap doctor; the capture helper needs CAP_NET_RAW (" + setcap + ")";
    else if (err == ENODEV)
      fix = "no such interface; list them with `ip link`";
    throw_error("helper " + std::string(reply.op), err, fix);
  }
  return fd;
}

}  // namespace icmpcap
