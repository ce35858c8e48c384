#include "module_source.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "genl.h"
#include "link_watch.h"
#include "probe.h"
#include "ring_reader.h"

namespace icmpcap {

namespace {

constexpr const char* kDevice = "/dev/" ICMPCAP_DEVICE_NAME;
constexpr int kStopTag = 1;
constexpr int kDevTag = 2;
constexpr int kEventTag = 3;
constexpr int kLinkTag = 4;

std::string device_fix(int err) {
  if (err == ENOENT || err == ENODEV || err == ENXIO)
    return "the icmpcap kernel module is not loaded: sudo modprobe icmpcap (install it with the "
           "icmpcap-dkms package)";
  if (err == EACCES || err == EPERM)
    return "add yourself to group icmpcap (sudo usermod -aG icmpcap $USER, then log in again)";
  return "";
}

std::string genl_fix(int err) {
  if (err == ENOENT)
    return "the generic netlink family \"icmpcap\" is missing: the module is not loaded "
           "(sudo modprobe icmpcap)";
  if (err == EPERM || err == EACCES) return device_fix(EACCES);
  return "";
}

uint32_t round_up_pow2(uint64_t v) {
  uint64_t p = 4096;
  while (p < v && p < (64ull << 20)) p <<= 1;
  return static_cast<uint32_t>(p);
}

class ModuleSource final : public Source {
 public:
  explicit ModuleSource(const OpenConfig& cfg) : Source(SourceKind::kModule, cfg.limits) {}
  ~ModuleSource() override { close(); }

  void open(const OpenConfig& cfg) {
    std::vector<uint32_t> ifindexes;
    for (const auto& name : cfg.interfaces) {
      unsigned idx = name.size() < IF_NAMESIZE ? if_nametoindex(name.c_str()) : 0;
      if (!idx)
        throw_error("open: interface " + name, ENODEV,
                    "no such interface in this network namespace; list them with `ip link`");
      ifindexes.push_back(idx);
      ifnames_[idx] = name;
    }
    if (ifindexes.size() > ICMPCAP_MAX_IFINDEXES)
      throw_error("open: interfaces", EINVAL,
                  "at most " + std::to_string(ICMPCAP_MAX_IFINDEXES) + " interfaces per session");

    dev_fd_ = ::open(kDevice, O_RDWR | O_CLOEXEC);
    if (dev_fd_ < 0) throw_error(std::string("open ") + kDevice, errno, device_fix(errno));
    int err = ctl_.open(ICMPCAP_GENL_NAME);
    if (err) throw_error("resolve generic netlink family icmpcap", -err, genl_fix(-err));
    err = events_.open(ICMPCAP_GENL_NAME, ICMPCAP_GENL_MCGRP_EVENTS);
    if (!err) err = events_.join_group();
    if (err) throw_error("join the icmpcap events group", -err, genl_fix(-err));

    GenlMessage sub(ICMPCAP_CMD_SUBSCRIBE, ICMPCAP_GENL_VERSION);
    sub.u32(ICMPCAP_A_DEV_FD, static_cast<uint32_t>(dev_fd_));
    sub.u32(ICMPCAP_A_SNAPLEN, cfg.snaplen);
    if (cfg.ring_bytes) sub.u32(ICMPCAP_A_RING_DATA_SIZE, round_up_pow2(cfg.ring_bytes));
    if (!ifindexes.empty())
      sub.put(ICMPCAP_A_IFINDEXES, ifindexes.data(), ifindexes.size() * sizeof(uint32_t));
    GenlAttrs r;
    std::string ext;
    err = ctl_.call(sub, &r, &ext);
    if (err)
      throw_error("subscribe (ICMPCAP_CMD_SUBSCRIBE)", -err,
                  ext.empty() ? genl_fix(-err) : "the module says: " + ext);
    const uint32_t abi = r.u32(ICMPCAP_A_ABI_VERSION);
    if (abi != ICMPCAP_ABI_VERSION)
      throw_error("subscribe: module ABI version " + std::to_string(abi), EPROTO,
                  "this app speaks ABI " + std::to_string(ICMPCAP_ABI_VERSION) +
                      "; install the matching icmpcap module (icmpcap-dkms) and reload it");
    nr_rings_ = r.u32(ICMPCAP_A_NR_RINGS);
    const uint64_t data_size = r.u32(ICMPCAP_A_DATA_SIZE);
    stride_ = r.u32(ICMPCAP_A_RING_STRIDE);
    sub_id_ = r.u32(ICMPCAP_A_SUB_ID);
    if (nr_rings_ == 0 || nr_rings_ > 4096 || stride_ != ICMPCAP_RING_HDR_SIZE + data_size)
      throw_error("subscribe: ring geometry (" + std::to_string(nr_rings_) + " rings, stride " +
                      std::to_string(stride_) + ")",
                  EPROTO, "the module's reply is inconsistent; reload the module");

    std::vector<uint8_t*> bases;
    for (uint32_t i = 0; i < nr_rings_; i++) {
      void* m = mmap(nullptr, stride_, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd_,
                     static_cast<off_t>(uint64_t{i} * stride_));
      if (m == MAP_FAILED)
        throw_error("mmap ring " + std::to_string(i) + " of " + kDevice, errno, "");
      maps_.push_back(static_cast<uint8_t*>(m));
    }
    std::string why;
    if (!reader_.attach(maps_, data_size, &why))
      throw_error("attach rings: " + why, EPROTO, "reload the module");

    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_error("epoll_create1", errno);
    add_epoll(stop_fd(), kStopTag, EPOLLIN);
    add_epoll(dev_fd_, kDevTag, EPOLLIN);
    add_epoll(events_.fd(), kEventTag, EPOLLIN);
    if (!ifnames_.empty() && links_.fd() >= 0) add_epoll(links_.fd(), kLinkTag, EPOLLIN);
  }

  int device_fd() const { return dev_fd_; }

 protected:
  void run() override {
    int64_t last_flush = monotonic_ms();
    const int flush_ms = static_cast<int>(batcher_.limits().flush_interval_ms);
    bool dev_watched = true;
    for (;;) {
      if (stop_requested()) {
        drain_all();
        read_events();  // overflow notices that arrived meanwhile
        return;
      }
      // Drain every ring completely: the kernel wakes us at most once per batch.
      bool blocked = false;
      for (;;) {
        if (batcher_.full() && !flush()) {
          blocked = true;
          break;
        }
        const uint32_t before = batcher_.records();
        if (!poll_once()) return;
        if (batcher_.records() == before) break;
        if (batcher_.full()) last_flush = monotonic_ms();
      }
      const int64_t now = monotonic_ms();
      if (!batcher_.empty() && now - last_flush >= flush_ms) {
        if (flush())
          last_flush = now;
        else
          blocked = true;
      }
      if (batcher_.empty()) last_flush = now;
      if (blocked) {
        // Leave the records in the rings (full rings drop and count) until JS catches up;
        // stop watching the device meanwhile, it stays readable.
        if (dev_watched) set_dev_watch(false, &dev_watched);
        wait_for_room(2);
        continue;
      }
      if (!dev_watched) set_dev_watch(true, &dev_watched);
      int timeout = batcher_.empty() ? -1 : static_cast<int>(flush_ms - (now - last_flush));
      if (timeout < -1) timeout = 0;
      struct epoll_event evs[4];
      int n = epoll_wait(epfd_, evs, 4, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_error("epoll_wait", errno);
      }
      for (int i = 0; i < n; i++) {
        if (evs[i].data.u32 == kStopTag) continue;  // handled at the top
        if (evs[i].data.u32 == kEventTag) read_events();
        if (evs[i].data.u32 == kLinkTag && links_gone()) {
          drain_all();
          return;  // every named interface is gone
        }
        if (evs[i].data.u32 == kDevTag && (evs[i].events & EPOLLHUP)) {
          drain_all();
          if (!stop_requested()) {
            emit(EventType::kError,
                 "icmpcap: the kernel ended the subscription" + end_reason_ +
                     " \u2014 the module was told to stop or is being unloaded; start a new "
                     "capture",
                 EPIPE);
          }
          return;
        }
      }
    }
  }

  void release() override {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);  // stats() reads the ring headers
      last_cpu_ = reader_.cpu_stats();
      for (auto* m : maps_) munmap(m, stride_);
      maps_.clear();
    }
    ctl_.close();  // ends the subscription (the subscribing socket goes away)
    links_.close();
    events_.close();
    if (dev_fd_ >= 0) ::close(dev_fd_);
    if (epfd_ >= 0) ::close(epfd_);
    dev_fd_ = epfd_ = -1;
  }

  void fill_stats(Stats& s) override {
    if (maps_.empty()) {
      s.per_cpu = last_cpu_;  // after close(), or before the rings were mapped
    } else {
      s.per_cpu = reader_.cpu_stats();
      last_cpu_ = s.per_cpu;
    }
    for (auto& c : s.per_cpu) s.dropped_kernel += c.dropped;
  }

 private:
  void add_epoll(int fd, int tag, uint32_t events) {
    struct epoll_event ev = {};
    ev.events = events;
    ev.data.u32 = static_cast<uint32_t>(tag);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_error("epoll_ctl", errno);
  }

  void set_dev_watch(bool on, bool* state) {
    struct epoll_event ev = {};
    ev.events = on ? uint32_t{EPOLLIN} : 0u;  // EPOLLHUP/EPOLLERR are always reported
    ev.data.u32 = kDevTag;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, dev_fd_, &ev);
    *state = on;
  }

  // One pass of the ring reader. Returns false when the session must end (corrupt ring).
  bool poll_once() {
    std::string why;
    const uint32_t before = batcher_.records();
    const bool ok = reader_.poll_records(batcher_, &why);
    captured_.fetch_add(batcher_.records() - before, std::memory_order_relaxed);
    if (!ok) {
      flush(true);  // what was read before the corruption is valid
      emit(EventType::kError,
           "icmpcap: corrupt capture ring: " + why +
               " \u2014 the session was ended; reload the module (sudo modprobe -r icmpcap && "
               "sudo modprobe icmpcap) and report this",
           EPROTO);
    }
    return ok;
  }

  void drain_all() {
    for (int guard = 0; guard < 1 << 16; guard++) {
      const uint32_t before = batcher_.records();
      if (!poll_once()) return;
      if (batcher_.full()) flush(true);
      if (batcher_.records() == before && !reader_.pending()) break;
    }
    flush(true);
  }

  // Emits interface-gone for removed named interfaces; true when none is left.
  bool links_gone() {
    std::vector<int> watched;
    for (auto& kv : ifnames_) watched.push_back(static_cast<int>(kv.first));
    for (int idx : links_.removed(watched)) {
      auto it = ifnames_.find(static_cast<unsigned>(idx));
      emit(EventType::kInterfaceGone,
           "icmpcap: interface " + it->second + " (index " + std::to_string(idx) +
               ") was removed; its capture ended",
           ENODEV, idx, it->second);
      ifnames_.erase(it);
    }
    return ifnames_.empty();
  }

  void read_events() {
    alignas(8) uint8_t buf[16384];
    for (;;) {
      ssize_t n = recv(events_.fd(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) return;
      for (auto& ev : GenlSocket::parse_all(buf, static_cast<size_t>(n), events_.family_id())) {
        if (ev.cmd != ICMPCAP_CMD_EVENT || ev.u32(ICMPCAP_A_SUB_ID) != sub_id_) continue;
        switch (ev.u32(ICMPCAP_A_EVENT_TYPE)) {
          case ICMPCAP_EVENT_OVERFLOW:
            emit(EventType::kOverflow,
                 "icmpcap: the kernel dropped records because a capture ring was full (" +
                     std::to_string(ev.u64(ICMPCAP_A_DROPPED)) +
                     " in total); the reader is not keeping up \u2014 raise ringBytes or narrow "
                     "the capture");
            break;
          case ICMPCAP_EVENT_SUBSCRIPTION_END: {
            const uint32_t reason = ev.u32(ICMPCAP_A_END_REASON);
            end_reason_ = reason == ICMPCAP_END_UNSUBSCRIBE     ? " (unsubscribed)"
                          : reason == ICMPCAP_END_SOCKET_CLOSED ? " (control socket closed)"
                          : reason == ICMPCAP_END_FILE_CLOSED   ? " (device file closed)"
                                                                : "";
            break;
          }
          case ICMPCAP_EVENT_CONFIG_CHANGED:
            emit(EventType::kInfo, "icmpcap: the capture filter was changed");
            break;
          default:
            break;
        }
      }
    }
  }

  GenlSocket ctl_;
  GenlSocket events_;
  int dev_fd_ = -1;
  int epfd_ = -1;
  uint32_t nr_rings_ = 0;
  uint64_t stride_ = 0;
  uint32_t sub_id_ = 0;
  std::vector<uint8_t*> maps_;
  RingReader reader_;
  std::map<unsigned, std::string> ifnames_;
  LinkWatch links_;
  std::vector<CpuStats> last_cpu_;
  std::string end_reason_;
};

}  // namespace

std::unique_ptr<Source> open_module(const OpenConfig& cfg) {
  if (cfg.snaplen > kMaxCapLen)
    throw_error("open: snaplen " + std::to_string(cfg.snaplen), EINVAL,
                "snaplen must be between 64 and 65535");
  auto src = std::make_unique<ModuleSource>(cfg);
  src->open(cfg);
  return src;
}

int module_device_fd(Source* source) {
  auto* m = dynamic_cast<ModuleSource*>(source);
  return m ? m->device_fd() : -1;
}

Availability probe_module() {
  Availability a;
  a.source = SourceKind::kModule;
  struct stat st;
  if (stat(kDevice, &st) < 0) {
    a.reason = std::string(kDevice) + " is missing: the icmpcap kernel module is not loaded";
    a.fix = "sudo modprobe icmpcap (install it with the icmpcap-dkms package)";
    return a;
  }
  int fd = ::open(kDevice, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    a.reason = format_error(std::string("open ") + kDevice, err, "");
    a.fix = device_fix(err);
    if (a.fix.empty()) a.fix = "run icmpcap doctor";
    return a;
  }
  GenlSocket nl;
  int err = nl.open(ICMPCAP_GENL_NAME);
  if (!err) {
    GenlMessage info(ICMPCAP_CMD_GET_INFO, ICMPCAP_GENL_VERSION);
    info.u32(ICMPCAP_A_DEV_FD, static_cast<uint32_t>(fd));
    GenlAttrs r;
    err = nl.call(info, &r);
    if (!err && r.u32(ICMPCAP_A_ABI_VERSION) != ICMPCAP_ABI_VERSION) {
      a.reason = "the loaded icmpcap module speaks ABI " +
                 std::to_string(r.u32(ICMPCAP_A_ABI_VERSION)) + ", this app ABI " +
                 std::to_string(ICMPCAP_ABI_VERSION);
      a.fix = "install the matching icmpcap module (icmpcap-dkms) and reload it";
      ::close(fd);
      return a;
    }
  }
  ::close(fd);
  if (err) {
    a.reason = format_error("generic netlink family icmpcap", -err, "");
    a.fix = genl_fix(-err);
    if (a.fix.empty()) a.fix = "run icmpcap doctor";
    return a;
  }
  a.available = true;
  a.via = "direct";
  return a;
}

}  // namespace icmpcap
