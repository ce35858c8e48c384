/*
 * icmpcap-helper: the only part of icmpcap that holds CAP_NET_RAW.
 *
 * Usage: icmpcap-helper [--snaplen N] [--interface NAME]   (fd 3: a connected AF_UNIX socket)
 *
 * Opens an AF_PACKET socket, attaches and locks the ICMP/ICMPv6 filter (so the receiver can
 * neither replace nor remove it: it can only ever see ICMP), binds it to NAME (or all
 * interfaces), drops every capability, sends the socket over fd 3 with SCM_RIGHTS and exits.
 * It never runs anything else and ignores its environment.
 */
#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../src/core/afpacket_socket.h"
#include "../src/core/helper_protocol.h"

#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif

static void usage(void) {
  fprintf(stderr,
          "usage: icmpcap-helper [--snaplen 64..65535] [--interface NAME]\n"
          "Started by icmpcap with a Unix socket on fd 3; not meant to be run by hand.\n");
  exit(2);
}

static int valid_ifname(const char* s) {
  size_t n = strlen(s);
  if (n == 0 || n >= IF_NAMESIZE) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == '@' || c == ':'))
      return 0;
  }
  return 1;
}

static int drop_capabilities(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  if (syscall(SYS_capset, &hdr, data) < 0) return -errno;
  return 0;
}

static int reply(int err, const char* op, int fd) {
  struct icmpcap_helper_reply r;
  memset(&r, 0, sizeof(r));
  r.magic = ICMPCAP_HELPER_MAGIC;
  r.err = err;
  snprintf(r.op, sizeof(r.op), "%s", op);
  struct iovec iov = {&r, sizeof(r)};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  if (fd >= 0) {
    memset(&u, 0, sizeof(u));
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof(u.buf);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  if (sendmsg(ICMPCAP_HELPER_FD, &msg, MSG_NOSIGNAL) < 0) return 1;
  return err ? 1 : 0;
}

int main(int argc, char** argv) {
  const char* ifname = NULL;
  unsigned long snaplen = 65535;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--interface") == 0 && !ifname) {
      if (!valid_ifname(argv[i + 1])) usage();
      ifname = argv[i + 1];
    } else if (strcmp(argv[i], "--snaplen") == 0) {
      char* end;
      errno = 0;
      snaplen = strtoul(argv[i + 1], &end, 10);
      if (errno || *end || end == argv[i + 1] || snaplen < 64 || snaplen > 65535) usage();
    } else {
      usage();
    }
  }
  struct stat st;
  int domain = 0;
  socklen_t dlen = sizeof(domain);
  if (fstat(ICMPCAP_HELPER_FD, &st) < 0 || !S_ISSOCK(st.st_mode) ||
      getsockopt(ICMPCAP_HELPER_FD, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 ||
      domain != AF_UNIX) {
    fprintf(stderr, "icmpcap-helper: fd 3 is not a Unix socket\n");
    return 2;
  }
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

  int ifindex = 0;
  if (ifname) {
    ifindex = (int)if_nametoindex(ifname);
    if (!ifindex) {
      drop_capabilities();
      return reply(ENODEV, "if_nametoindex", -1);
    }
  }
  const char* op = "socket(AF_PACKET)";
  int fd = icmpcap_afp_open(ifindex, (uint32_t)snaplen, &op);
  int rc = drop_capabilities();
  if (fd < 0) return reply(-fd, op, -1);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0)
    return reply(errno, "setsockopt(SO_LOCK_FILTER)", -1);
  if (rc < 0) return reply(-rc, "capset", -1);
  return reply(0, "", fd);
}
