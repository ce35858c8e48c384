#include "afpacket_source.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "helper_protocol.h"
#include "interfaces.h"
#include "probe.h"
#include "ring_source.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace icmpcap {

namespace {

constexpr uint64_t kDefaultRingBytes = 4u << 20;
constexpr uint64_t kMinRingBytes = ICMPCAP_HELPER_MIN_RING_BYTES;
constexpr uint64_t kMaxRingBytes = ICMPCAP_HELPER_MAX_RING_BYTES;
constexpr int kReadyTimeoutMs = 5000;
constexpr int kSyncTimeoutMs = 1000;
constexpr int64_t kOverflowIntervalMs = 100;

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
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

std::string filter_hex(const OpenConfig& cfg) {
  std::vector<struct sock_filter> prog(ICMPCAP_BPF_MAX_INSNS);
  const int n = icmpcap_bpf_build(&cfg.filter, cfg.snaplen, prog.data(), ICMPCAP_BPF_MAX_INSNS);
  if (n <= 0) throw_error("open: filter", EINVAL, "the capture filter is too complex");
  std::string out;
  out.reserve(static_cast<size_t>(n) * 16);
  char buf[17];
  for (int i = 0; i < n; i++) {
    const auto& f = prog[static_cast<size_t>(i)];
    snprintf(buf, sizeof(buf), "%04x%02x%02x%08x", f.code, f.jt, f.jf, f.k);
    out += buf;
  }
  return out;
}

// A running icmpcap-helper and our end of its socket.
struct Helper {
  pid_t pid = -1;
  Fd sock;
  std::string path;

  // Closes the socket (the helper exits on EOF) and reaps it; SIGKILL after a grace period.
  // Returns the wait status.
  int reap() {
    sock.reset();
    if (pid < 0) return 0;
    int status = 0;
    for (int i = 0; i < 200; i++) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) {
        pid = -1;
        return status;
      }
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    return status;
  }
  ~Helper() { reap(); }
};

// Starts the helper. Throws Error with the remedy when it cannot be run.
void spawn_helper(Helper& h, const std::vector<std::string>& args) {
  const std::string& helper = h.path;
  const std::string op_name = "helper " + helper;
  const ErrorContext ctx = {{"helperPath", helper}};
  struct stat st;
  if (helper.empty() || stat(helper.c_str(), &st) < 0)
    throw_kind("helper-missing", op_name, helper.empty() ? ENOENT : errno,
               "the capture helper is missing", ctx);
  if (S_ISREG(st.st_mode) && access(helper.c_str(), X_OK) < 0 && (st.st_mode & S_IXGRP) &&
      !in_group(st.st_gid)) {
    // Packages install the helper as root:icmpcap 0750: only members of the group may capture.
    const struct group* gr = getgrgid(st.st_gid);
    const std::string group = gr ? gr->gr_name : std::to_string(st.st_gid);
    throw_kind("helper-group", op_name, EACCES,
               "only members of group " + group + " may run the capture helper",
               {{"helperPath", helper}, {"group", group}});
  }
  if (!S_ISREG(st.st_mode) || access(helper.c_str(), X_OK) < 0)
    throw_kind("helper-not-executable", op_name, EACCES,
               "the capture helper is not an executable file", ctx);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    throw_error("socketpair", errno);
  h.sock.reset(sv[0]);
  Fd theirs(sv[1]);
  // posix_spawn's dup2 onto the same number would keep close-on-exec: move it out of the way.
  if (theirs.fd == ICMPCAP_HELPER_FD) {
    int moved = fcntl(theirs.fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) throw_error("fcntl(F_DUPFD_CLOEXEC)", errno);
    theirs.reset(moved);
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(helper.c_str()));
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, theirs.fd, ICMPCAP_HELPER_FD);
  pid_t pid;
  int rc = posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw_kind("helper-not-executable", "spawn " + helper, rc, "", ctx);
  h.pid = pid;
}

// Receives one message, with up to two fds. Returns the bytes received, 0 on EOF, -errno.
ssize_t recv_msg(int sock, struct icmpcap_helper_msg* m, int fds[2], int* nfds, int flags) {
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(2 * sizeof(int))];
  struct iovec iov = {m, sizeof(*m)};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  *nfds = 0;
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
  if (n < 0) return -errno;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (*nfds < 2)
        fds[(*nfds)++] = fd;
      else
        ::close(fd);
    }
  }
  // A truncated control message means the fds did not all arrive: this process is out of
  // file descriptors (RLIMIT_NOFILE).
  if (msg.msg_flags & MSG_CTRUNC) {
    for (int i = 0; i < *nfds; i++) ::close(fds[i]);
    *nfds = 0;
    return -EMFILE;
  }
  return n;
}

// Waits for READY; throws Error with what the helper said (or how it ended).
struct icmpcap_helper_msg await_ready(Helper& h, Fd* rings, Fd* consumers) {
  struct icmpcap_helper_msg m = {};
  struct pollfd p = {h.sock.fd, POLLIN, 0};
  int pr;
  do pr = poll(&p, 1, kReadyTimeoutMs);
  while (pr < 0 && errno == EINTR);
  int fds[2];
  int nfds = 0;
  const ssize_t n = pr > 0 ? recv_msg(h.sock.fd, &m, fds, &nfds, MSG_DONTWAIT) : -ETIMEDOUT;
  if (nfds > 0) rings->reset(fds[0]);
  if (nfds > 1) consumers->reset(fds[1]);
  const std::string op_name = "helper " + h.path;
  const ErrorContext ctx = {{"helperPath", h.path}};
  if (n == -EMFILE)
    throw_kind("too-many-files", op_name + ": receive the capture rings", EMFILE,
               "the file descriptors did not arrive: this process has too many files open", ctx);
  if (n != static_cast<ssize_t>(sizeof(m)) || m.magic != ICMPCAP_HELPER_MAGIC) {
    if (n == -ETIMEDOUT) kill(h.pid, SIGKILL);
    const int status = h.reap();
    if (n < 0) throw_kind("helper-no-reply", op_name + ": no reply", static_cast<int>(-n), "", ctx);
    throw_kind("helper-version", op_name, EPROTO,
               "the helper " + describe_wait_status(status) +
                   " without a reply: it does not match this version of icmpcap",
               ctx);
  }
  if (m.kind == ICMPCAP_HELPER_ERROR || m.kind != ICMPCAP_HELPER_READY || nfds != 2) {
    m.op[sizeof(m.op) - 1] = 0;
    const int err = m.kind == ICMPCAP_HELPER_ERROR && m.err > 0 ? m.err : EPROTO;
    h.reap();
    const char* kind = err == EPERM || err == EACCES   ? "helper-no-capability"
                       : err == ENODEV || err == ENXIO ? "no-such-interface"
                       : err == EAFNOSUPPORT           ? "no-af-packet"
                                                       : "";
    const std::string detail =
        err == EPERM || err == EACCES ? "the capture helper has no CAP_NET_RAW" : "";
    throw_kind(kind, "helper " + std::string(m.op), err, detail, ctx);
  }
  return m;
}

class HelperSource final : public RingSource {
 public:
  explicit HelperSource(const OpenConfig& cfg) : RingSource(SourceKind::kAfPacket, cfg.limits) {}
  ~HelperSource() override { close(); }

  void open(const OpenConfig& cfg) {
    const uint64_t ring_bytes = cfg.ring_bytes ? cfg.ring_bytes : kDefaultRingBytes;
    if (ring_bytes < kMinRingBytes || ring_bytes > kMaxRingBytes)
      throw_error("open: ringBytes " + std::to_string(ring_bytes), EINVAL,
                  "ringBytes must be between 64 KiB and 1 GiB");
    const auto targets = resolve_interfaces(cfg.interfaces);
    if (targets.size() > ICMPCAP_HELPER_MAX_RINGS)
      throw_error(
          "open: interfaces", EINVAL,
          "at most " + std::to_string(ICMPCAP_HELPER_MAX_RINGS) + " interfaces per session");
    // A ring per socket: the helper refuses more than ICMPCAP_HELPER_MAX_RING_TOTAL over all.
    if (ring_bytes * std::max<uint64_t>(1, targets.size()) > ICMPCAP_HELPER_MAX_RING_TOTAL)
      throw_error("open: ringBytes " + std::to_string(ring_bytes), EINVAL,
                  "ringBytes times the interfaces must be at most 1 GiB");
    std::map<unsigned, std::string> ifnames;
    std::vector<std::string> args = {"--snaplen",    std::to_string(cfg.snaplen),
                                     "--ring-bytes", std::to_string(ring_bytes),
                                     "--filter",     filter_hex(cfg)};
    for (auto& t : targets) {
      args.push_back("--ifindex");
      args.push_back(std::to_string(t.first));
      ifnames[t.first] = t.second;
    }
    helper_.path = cfg.helper_path;
    spawn_helper(helper_, args);
    Fd rings, consumers;
    const auto ready = await_ready(helper_, &rings, &consumers);
    map_rings(ready, rings.fd, consumers.fd, targets.empty() ? 1 : targets.size());
    for (uint32_t i = 0; i < ready.nr_rings; i++) ring_ifindex_.push_back(ready.ifindexes[i]);
    setup_loop(helper_.sock.fd, ifnames);
  }

  pid_t helper_pid() const { return helper_.pid; }

 protected:
  bool on_wake(uint32_t events) override {
    if (!read_messages()) {
      if (!stop_requested()) {
        const int status = helper_.reap();
        emit(EventType::kError,
             "icmpcap: the capture helper " + describe_wait_status(status) +
                 " \u2014 the capture ended; start a new one",
             EPIPE);
      }
      return false;
    }
    (void)events;
    report_drops();
    return true;
  }

  void sync() override { round_trip(ICMPCAP_HELPER_SYNC); }
  void finishing() override { round_trip(ICMPCAP_HELPER_STOP); }
  void finished() override { report_drops(); }

  void release() override {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      if (rings_map_) last_dropped_ = reader_.total_dropped();
      if (rings_map_) munmap(rings_map_, rings_len_);
      if (consumer_map_) munmap(consumer_map_, ICMPCAP_HELPER_CONSUMER_BYTES);
      rings_map_ = consumer_map_ = nullptr;
    }
    close_loop();
    helper_.reap();
  }

  void fill_stats(Stats& s) override {
    s.dropped_kernel = rings_map_ ? reader_.total_dropped() : last_dropped_;
  }

 private:
  void map_rings(const struct icmpcap_helper_msg& m, int rings_fd, int consumers_fd,
                 size_t expect_rings) {
    const uint64_t data_size = m.data_size;
    if (m.nr_rings != expect_rings || data_size < 4096 || (data_size & (data_size - 1)) ||
        m.ring_stride != ICMPCAP_RING_HDR_SIZE + data_size)
      throw_kind("helper-version", "helper: ring geometry", EPROTO,
                 "the helper does not match this version of icmpcap",
                 {{"helperPath", helper_.path}});
    rings_len_ = size_t{m.ring_stride} * m.nr_rings;
    // The helper sealed its rings against growing, shrinking and writable mappings: we can
    // neither fault on a truncated file nor scribble on what the helper reads.
    const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
    struct stat st;
    if (fcntl(rings_fd, F_GET_SEALS) < 0 || (fcntl(rings_fd, F_GET_SEALS) & want) != want ||
        fstat(rings_fd, &st) < 0 || static_cast<uint64_t>(st.st_size) != rings_len_ ||
        (fcntl(consumers_fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
            (F_SEAL_SHRINK | F_SEAL_GROW) ||
        fstat(consumers_fd, &st) < 0 || st.st_size != ICMPCAP_HELPER_CONSUMER_BYTES)
      throw_kind("helper-version", "helper: shared rings", EPROTO,
                 "the helper's memfds are not sealed as expected", {{"helperPath", helper_.path}});
    void* r = mmap(nullptr, rings_len_, PROT_READ, MAP_SHARED, rings_fd, 0);
    if (r == MAP_FAILED) throw_error("mmap(helper rings)", errno);
    rings_map_ = static_cast<uint8_t*>(r);
    void* c = mmap(nullptr, ICMPCAP_HELPER_CONSUMER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
                   consumers_fd, 0);
    if (c == MAP_FAILED) throw_error("mmap(helper consumer positions)", errno);
    consumer_map_ = static_cast<uint8_t*>(c);
    std::vector<RingMap> rings;
    for (uint32_t i = 0; i < m.nr_rings; i++)
      rings.push_back(
          RingMap{rings_map_ + size_t{i} * m.ring_stride + ICMPCAP_RING_PRODUCER_OFF,
                  reinterpret_cast<__u64*>(consumer_map_ + i * ICMPCAP_HELPER_CONSUMER_STRIDE)});
    std::string why;
    if (!reader_.attach(rings, data_size, &why))
      throw_kind("helper-version", "helper: attach rings: " + why, EPROTO, "",
                 {{"helperPath", helper_.path}});
  }

  // Reads every pending message. False when the helper is gone.
  bool read_messages() {
    for (;;) {
      struct icmpcap_helper_msg m;
      int fds[2], nfds;
      const ssize_t n = recv_msg(helper_.sock.fd, &m, fds, &nfds, MSG_DONTWAIT);
      for (int i = 0; i < nfds; i++) ::close(fds[i]);
      if (n == -EAGAIN || n == -EINTR) return true;
      if (n <= 0 && n != -EMFILE) return false;
      if (n != static_cast<ssize_t>(sizeof(m)) || m.magic != ICMPCAP_HELPER_MAGIC) continue;
      if (m.kind == ICMPCAP_HELPER_SYNCED) synced_ = true;
      if (m.kind == ICMPCAP_HELPER_SOCKET_ERROR) socket_error(m.ring, m.err);
    }
  }

  void socket_error(uint32_t ring, int err) {
    if (ring >= ring_ifindex_.size()) return;
    const unsigned ifindex = ring_ifindex_[ring];
    auto it = ifnames_.find(ifindex);
    const std::string name = it != ifnames_.end() ? it->second : std::string();
    const std::string what =
        ifindex ? name + " (index " + std::to_string(ifindex) + ")" : std::string("all interfaces");
    char buf[IF_NAMESIZE];
    if (ifindex && (err == ENETDOWN || err == ENODEV || err == ENXIO) &&
        !if_indextoname(ifindex, buf)) {
      // Removed: LinkWatch says so too, but it may have lost the notification.
      return;
    }
    if (err == ENETDOWN)
      emit(EventType::kInfo, "icmpcap: interface " + what + " went down", err,
           static_cast<int>(ifindex), name);
    else
      emit(EventType::kInfo, format_error("capture on " + what, err, ""), err,
           static_cast<int>(ifindex), name);
  }

  // Sends SYNC or STOP and reads the rings until the helper answers that everything the
  // kernel accepted is published (bounded).
  void round_trip(uint32_t kind) {
    if (helper_.sock.fd < 0) return;
    struct icmpcap_helper_msg m = {};
    m.magic = ICMPCAP_HELPER_MAGIC;
    m.kind = kind;
    synced_ = false;
    if (send(helper_.sock.fd, &m, sizeof(m), MSG_NOSIGNAL) < 0) return;
    const int64_t deadline = monotonic_ms() + kSyncTimeoutMs;
    while (!synced_ && monotonic_ms() < deadline) {
      struct pollfd p = {helper_.sock.fd, POLLIN, 0};
      poll(&p, 1, 5);
      if (p.revents && !read_messages()) break;
      // Keep the rings moving meanwhile: the helper drops what does not fit.
      const uint32_t before = batcher_.records();
      if (!poll_once()) return;
      if (reader_.batch_full() || batcher_.records() != before) flush(true);
    }
  }

  void report_drops() {
    const uint64_t drops = reader_.total_dropped();
    const int64_t now = monotonic_ms();
    if (drops <= reported_drops_ || now - last_overflow_ms_ < kOverflowIntervalMs) return;
    last_overflow_ms_ = now;
    emit(EventType::kOverflow,
         "icmpcap: the kernel dropped " + std::to_string(drops - reported_drops_) +
             " packets because the capture ring was full (" + std::to_string(drops) +
             " in total); the reader is not keeping up \u2014 raise ringBytes or narrow the "
             "capture");
    reported_drops_ = drops;
  }

  Helper helper_;
  uint8_t* rings_map_ = nullptr;
  size_t rings_len_ = 0;
  uint8_t* consumer_map_ = nullptr;
  std::vector<unsigned> ring_ifindex_;
  bool synced_ = false;
  uint64_t reported_drops_ = 0;
  int64_t last_overflow_ms_ = 0;
  uint64_t last_dropped_ = 0;
};

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("was killed by signal ") +
           (name ? "SIG" + std::string(name) : std::to_string(WTERMSIG(status)));
  }
  return "ended (status " + std::to_string(status) + ")";
}

std::unique_ptr<Source> open_afpacket(const OpenConfig& cfg) {
  auto src = std::make_unique<HelperSource>(cfg);
  src->open(cfg);
  return src;
}

pid_t afpacket_helper_pid(Source* source) {
  auto* h = dynamic_cast<HelperSource*>(source);
  return h ? h->helper_pid() : -1;
}

Availability probe_afpacket(const std::string& helper) {
  Availability a;
  a.source = SourceKind::kAfPacket;
  try {
    OpenConfig cfg;
    cfg.snaplen = 64;
    cfg.ring_bytes = kMinRingBytes;
    cfg.helper_path = helper;
    HelperSource src(cfg);
    src.open(cfg);
    a.available = true;
    a.via = "helper";
  } catch (const Error& e) {
    a.reason = std::string("the capture helper cannot capture: ") + e.what();
    a.kind = e.kind().empty() ? "helper-failed" : e.kind();
    a.context = e.context();
    a.context["helperPath"] = helper;
  }
  return a;
}

}  // namespace icmpcap
