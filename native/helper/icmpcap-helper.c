/*
 * icmpcap-helper: the only part of icmpcap that holds CAP_NET_RAW, and the only holder of
 * its AF_PACKET sockets.
 *
 * Usage: icmpcap-helper --snaplen N --ring-bytes N [--filter HEX] [--ifindex N]...
 *        (--ring-bytes: each socket's packet ring, 64 KiB to 1 GiB, and 1 GiB over all sockets)
 *        (each option at most once, but --ifindex: once per socket, at most 64, each
 *        interface once; 0 means all and goes alone)
 *        (fd 3: a SOCK_SEQPACKET socket to icmpcap; protocol: src/core/helper_protocol.h)
 *
 * Before it looks at its arguments it keeps CAP_NET_RAW alone, sets no_new_privs and asks to
 * die with its parent. It opens one packet socket per ifindex (0 or none: all interfaces),
 * attaches the capture filter (classic BPF: the app's, or the default ICMP/ICMPv6 program)
 * and locks it, binds, then drops CAP_NET_RAW too. From then on it only moves packets from
 * the kernel's TPACKET_V3 rings into rings of the module's record format in a sealed memfd
 * the app maps read-only. Only ICMP and ICMPv6 packets become records, whatever the filter
 * says. It ignores its environment and exits when fd 3 closes or its parent dies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../src/core/bpf_filter.h"
#include "../src/core/helper_protocol.h"
#include "producer.h"

#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define STATS_INTERVAL_MS 100
#define SETTLE_MS 200

static struct icmpcap_prod prods[ICMPCAP_HELPER_MAX_RINGS];
static uint32_t nr_rings;

#define SNAPLEN_MIN 64
#define SNAPLEN_MAX 65535
#define IFINDEX_MAX 0x7fffffff

/* Refuses the argument list: one line that names the argument and what is wrong with it, then
 * the usage; exit 2. */
__attribute__((format(printf, 1, 2), noreturn)) static void refuse(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("icmpcap-helper: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr,
          "\nusage: icmpcap-helper --snaplen %d..%d --ring-bytes %llu..%llu "
          "[--filter HEX] [--ifindex N]...\n"
          "(--ring-bytes is each socket's packet ring: at most %llu over all sockets)\n"
          "(each option at most once, but --ifindex: a socket per interface, at most %d;\n"
          " 0 is all interfaces, alone)\n"
          "Started by icmpcap with a Unix socket on fd 3; not meant to be run by hand.\n",
          SNAPLEN_MIN, SNAPLEN_MAX, ICMPCAP_HELPER_MIN_RING_BYTES, ICMPCAP_HELPER_MAX_RING_BYTES,
          ICMPCAP_HELPER_MAX_RING_TOTAL, ICMPCAP_HELPER_MAX_RINGS);
  exit(2);
}

/* An argument as the user would type it: "" when empty. */
static const char* shown(const char* s) { return *s ? s : "\"\""; }

/* Effective and permitted: CAP_NET_RAW when keep_raw, else nothing. Inheritable: nothing. */
static int set_capabilities(int keep_raw) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  if (keep_raw) {
    data[CAP_NET_RAW / 32].effective = 1u << (CAP_NET_RAW % 32);
    data[CAP_NET_RAW / 32].permitted = 1u << (CAP_NET_RAW % 32);
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return -errno;
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_msg(struct icmpcap_helper_msg* m, const int* fds, int nfds, int flags) {
  m->magic = ICMPCAP_HELPER_MAGIC;
  struct iovec iov = {m, sizeof(*m)};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  if (nfds > 0) {
    memset(&u, 0, sizeof(u));
    msg.msg_control = u.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  return sendmsg(ICMPCAP_HELPER_FD, &msg, MSG_NOSIGNAL | flags) < 0 ? -errno : 0;
}

static void simple(uint32_t kind, int err, uint32_t ring, int flags) {
  struct icmpcap_helper_msg m;
  memset(&m, 0, sizeof(m));
  m.kind = kind;
  m.err = err;
  m.ring = ring;
  send_msg(&m, NULL, 0, flags);
}

static int fail(const char* op, int err) {
  struct icmpcap_helper_msg m;
  memset(&m, 0, sizeof(m));
  m.kind = ICMPCAP_HELPER_ERROR;
  m.err = err;
  snprintf(m.op, sizeof(m.op), "%s", op);
  send_msg(&m, NULL, 0, 0);
  return 1;
}

static int parse_u64(const char* s, uint64_t lo, uint64_t hi, uint64_t* out) {
  char* end;
  errno = 0;
  if (*s < '0' || *s > '9') return 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* 16 hex digits per instruction: code (4), jt (2), jf (2), k (8). Refuses what is not. */
static int parse_filter(const char* s, struct sock_filter* out, int max) {
  const size_t n = strlen(s);
  if (n == 0) refuse("--filter \"\": must be 1..%d instructions of 16 hex digits each", max);
  if (n % 16) refuse("--filter: %zu hex digits: not whole instructions of 16 hex digits each", n);
  if (n / 16 > (size_t)max) refuse("--filter: %zu instructions: must be 1..%d", n / 16, max);
  for (size_t i = 0; i < n / 16; i++) {
    uint64_t v = 0;
    for (size_t j = 0; j < 16; j++) {
      const int h = hexval(s[i * 16 + j]);
      if (h < 0) refuse("--filter: character %zu is not a lowercase hex digit", i * 16 + j + 1);
      v = v << 4 | (uint64_t)h;
    }
    out[i].code = (uint16_t)(v >> 48);
    out[i].jt = (uint8_t)(v >> 40);
    out[i].jf = (uint8_t)(v >> 32);
    out[i].k = (uint32_t)v;
  }
  return (int)(n / 16);
}

static int open_socket(uint32_t ifindex, struct sock_filter* code, int len, const char** op) {
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* protocol 0: nothing queued yet */
  if (fd < 0) {
    *op = "socket(AF_PACKET)";
    return -errno;
  }
  struct sock_fprog prog = {.len = (unsigned short)len, .filter = code};
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
    *op = "setsockopt(SO_ATTACH_FILTER)";
  } else if (setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0) {
    *op = "setsockopt(SO_LOCK_FILTER)";
  } else {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = __builtin_bswap16(ETH_P_ALL);
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr*)&sll, sizeof(sll)) == 0) return fd;
    *op = "bind(AF_PACKET)";
  }
  const int err = errno;
  close(fd);
  return -err;
}

static int memfd(const char* name, size_t size, unsigned seals, uint8_t** map) {
  int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)size) < 0) goto out;
  void* m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) goto out;
  *map = m;
  /* The app can then neither shrink the file under us nor map it writable. */
  if (fcntl(fd, F_ADD_SEALS, seals) < 0) goto out;
  return fd;
out:;
  const int err = errno;
  close(fd);
  return -err;
}

static uint64_t drain_all(void) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < nr_rings; i++) n += icmpcap_prod_drain(&prods[i]);
  return n;
}

static void stats_all(void) {
  for (uint32_t i = 0; i < nr_rings; i++) icmpcap_prod_stats(&prods[i]);
}

/* Publishes every packet the kernel had accepted (the retire timer hands over partly filled
 * blocks: wait for it, bounded). */
static void settle(void) {
  const int64_t deadline = now_ms() + SETTLE_MS;
  for (;;) {
    drain_all();
    stats_all();
    int done = 1;
    for (uint32_t i = 0; i < nr_rings; i++) done &= icmpcap_prod_settled(&prods[i]);
    if (done || now_ms() >= deadline) return;
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int main(int argc, char** argv) {
  /* Privileges first, arguments after. */
  const pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) return 2;
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const int cap_err = set_capabilities(1);
  signal(SIGPIPE, SIG_IGN);

  struct stat st;
  int domain = 0, type = 0;
  socklen_t dlen = sizeof(domain), tlen = sizeof(type);
  if (fstat(ICMPCAP_HELPER_FD, &st) < 0 || !S_ISSOCK(st.st_mode) ||
      getsockopt(ICMPCAP_HELPER_FD, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 ||
      getsockopt(ICMPCAP_HELPER_FD, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || domain != AF_UNIX ||
      type != SOCK_SEQPACKET) {
    fprintf(stderr, "icmpcap-helper: fd 3 is not a Unix SOCK_SEQPACKET socket\n");
    return 2;
  }

  /* Every option takes a value; each but --ifindex (one per socket) at most once. */
  uint64_t snaplen = 0, ring_bytes = 0;
  uint32_t ifindexes[ICMPCAP_HELPER_MAX_RINGS];
  static struct sock_filter filter[ICMPCAP_BPF_MAX_INSNS];
  int filter_len = 0;
  for (int i = 1; i < argc; i += 2) {
    const char* opt = argv[i];
    const int is_snaplen = strcmp(opt, "--snaplen") == 0;
    const int is_ring_bytes = strcmp(opt, "--ring-bytes") == 0;
    const int is_ifindex = strcmp(opt, "--ifindex") == 0;
    const int is_filter = strcmp(opt, "--filter") == 0;
    if (!is_snaplen && !is_ring_bytes && !is_ifindex && !is_filter)
      refuse("%s: unknown option", shown(opt));
    if (i + 1 >= argc) refuse("%s: its value is missing", opt);
    const char* val = argv[i + 1];
    uint64_t v;
    if (is_snaplen) {
      if (snaplen) refuse("--snaplen given twice");
      if (!parse_u64(val, SNAPLEN_MIN, SNAPLEN_MAX, &v))
        refuse("--snaplen %s: must be %d..%d", shown(val), SNAPLEN_MIN, SNAPLEN_MAX);
      snaplen = v;
    } else if (is_ring_bytes) {
      if (ring_bytes) refuse("--ring-bytes given twice");
      if (!parse_u64(val, ICMPCAP_HELPER_MIN_RING_BYTES, ICMPCAP_HELPER_MAX_RING_BYTES, &v))
        refuse("--ring-bytes %s: must be %llu..%llu", shown(val), ICMPCAP_HELPER_MIN_RING_BYTES,
               ICMPCAP_HELPER_MAX_RING_BYTES);
      ring_bytes = v;
    } else if (is_ifindex) {
      if (!parse_u64(val, 0, IFINDEX_MAX, &v))
        refuse("--ifindex %s: must be 0..%d", shown(val), IFINDEX_MAX);
      if (nr_rings == ICMPCAP_HELPER_MAX_RINGS)
        refuse("--ifindex %s: more than %d of them (one socket each)", val,
               ICMPCAP_HELPER_MAX_RINGS);
      /* A socket per interface: an interface twice, or all (0) beside one, would deliver each of
       * its packets twice. */
      for (unsigned k = 0; k < nr_rings; k++) {
        if (ifindexes[k] == (uint32_t)v) refuse("--ifindex %s given twice", val);
        if (ifindexes[k] == 0 || v == 0)
          refuse("--ifindex %s: 0 (all interfaces) goes alone, without other --ifindex", val);
      }
      ifindexes[nr_rings++] = (uint32_t)v;
    } else {
      if (filter_len) refuse("--filter given twice");
      filter_len = parse_filter(val, filter, ICMPCAP_BPF_MAX_INSNS);
    }
  }
  if (!snaplen) refuse("--snaplen is required");
  if (!ring_bytes) refuse("--ring-bytes is required");
  /* Whoever may run the helper chooses how much kernel memory its packet rings pin: bounded
   * for all its sockets together, not only each (ring_bytes <= 1 GiB, at most 64 sockets: the
   * product cannot overflow). */
  if (ring_bytes * (nr_rings ? nr_rings : 1) > ICMPCAP_HELPER_MAX_RING_TOTAL)
    refuse("--ring-bytes %llu: times %u sockets is more than %llu over all sockets",
           (unsigned long long)ring_bytes, nr_rings ? nr_rings : 1, ICMPCAP_HELPER_MAX_RING_TOTAL);
  if (nr_rings == 0) ifindexes[nr_rings++] = 0;
  if (!filter_len) {
    filter_len = icmpcap_bpf_build(NULL, (uint32_t)snaplen, filter, ICMPCAP_BPF_MAX_INSNS);
    if (filter_len <= 0) return fail("build filter", EINVAL);
  }

  /* Our rings: a power of two of at most ring_bytes each. */
  uint64_t data_size = 4096;
  while (data_size * 2 <= ring_bytes && data_size < (1u << 30)) data_size *= 2;
  const uint64_t stride = ICMPCAP_RING_HDR_SIZE + data_size;

  for (uint32_t i = 0; i < nr_rings; i++) {
    const char* op = "socket(AF_PACKET)";
    int fd = open_socket(ifindexes[i], filter, filter_len, &op);
    if (fd < 0) {
      set_capabilities(0);
      return fail(op, -fd);
    }
    prods[i].snaplen = (uint32_t)snaplen;
    int rc = icmpcap_prod_setup_socket(&prods[i], fd, ring_bytes, &op);
    if (rc < 0) {
      set_capabilities(0);
      return fail(op, -rc);
    }
  }
  /* Everything that needs CAP_NET_RAW is done. */
  const int drop_err = set_capabilities(0);
  if (cap_err < 0) return fail("capset(CAP_NET_RAW)", -cap_err);
  if (drop_err < 0) return fail("capset(drop)", -drop_err);

  uint8_t *rings, *consumers;
  int rings_fd = memfd("icmpcap-rings", (size_t)(stride * nr_rings),
                       F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL, &rings);
  if (rings_fd < 0) return fail("memfd(rings)", -rings_fd);
  int cons_fd = memfd("icmpcap-consumer", ICMPCAP_HELPER_CONSUMER_BYTES,
                      F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, &consumers);
  if (cons_fd < 0) return fail("memfd(consumer)", -cons_fd);
  for (uint32_t i = 0; i < nr_rings; i++)
    icmpcap_prod_attach_ring(&prods[i], rings + i * stride, data_size,
                             (const uint64_t*)(consumers + i * ICMPCAP_HELPER_CONSUMER_STRIDE), i);

  struct icmpcap_helper_msg ready;
  memset(&ready, 0, sizeof(ready));
  ready.kind = ICMPCAP_HELPER_READY;
  ready.nr_rings = nr_rings;
  ready.data_size = (uint32_t)data_size;
  ready.ring_stride = (uint32_t)stride;
  memcpy(ready.ifindexes, ifindexes, nr_rings * sizeof(uint32_t));
  const int fds[2] = {rings_fd, cons_fd};
  if (send_msg(&ready, fds, 2, 0) < 0) return 1;
  close(rings_fd);
  close(cons_fd);

  struct pollfd pfd[1 + ICMPCAP_HELPER_MAX_RINGS];
  pfd[0].fd = ICMPCAP_HELPER_FD;
  pfd[0].events = POLLIN;
  for (uint32_t i = 0; i < nr_rings; i++) {
    pfd[1 + i].fd = prods[i].fd;
    pfd[1 + i].events = POLLIN;
  }
  int64_t last_stats = now_ms();
  for (;;) {
    int n = poll(pfd, 1 + nr_rings, STATS_INTERVAL_MS);
    if (n < 0 && errno != EINTR) return 1;
    if (pfd[0].revents & (POLLHUP | POLLERR)) return 0; /* the app went away */
    if (drain_all()) simple(ICMPCAP_HELPER_WAKE, 0, 0, MSG_DONTWAIT);
    for (uint32_t i = 0; i < nr_rings; i++) {
      if (!(pfd[1 + i].revents & POLLERR)) continue;
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(prods[i].fd, SOL_SOCKET, SO_ERROR, &err, &len); /* reading clears it */
      if (err) simple(ICMPCAP_HELPER_SOCKET_ERROR, err, i, 0);
    }
    const int64_t now = now_ms();
    if (now - last_stats >= STATS_INTERVAL_MS) {
      last_stats = now;
      stats_all();
    }
    if (pfd[0].revents & POLLIN) {
      struct icmpcap_helper_msg m;
      ssize_t r = recv(ICMPCAP_HELPER_FD, &m, sizeof(m), MSG_DONTWAIT);
      if (r == 0) return 0;
      if (r != (ssize_t)sizeof(m) || m.magic != ICMPCAP_HELPER_MAGIC) continue;
      if (m.kind == ICMPCAP_HELPER_SYNC || m.kind == ICMPCAP_HELPER_STOP) {
        settle();
        simple(ICMPCAP_HELPER_SYNCED, 0, 0, 0);
        if (m.kind == ICMPCAP_HELPER_STOP) return 0;
      }
    }
  }
}
