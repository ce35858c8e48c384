#include "module_source.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "genl.h"
#include "interfaces.h"
#include "link_watch.h"
#include "probe.h"
#include "ring_source.h"

namespace icmpcap {

namespace {

constexpr const char* kDevice = "/dev/" ICMPCAP_DEVICE_NAME;

// The kind of a failure to reach the module (for the advice), and what the advice needs.
const char* module_kind(int err) {
  if (err == ENOENT || err == ENODEV || err == ENXIO) return "module-missing";
  if (err == EACCES || err == EPERM) return "module-permission";
  return "";
}

// The module and the app must speak the same ring ABI: a mismatch is refused before anything
// is mapped, never misread.
std::string abi_advice(uint32_t module_abi) {
  return "this app speaks ABI " + std::to_string(ICMPCAP_ABI_VERSION) + " (the module is " +
         (module_abi < ICMPCAP_ABI_VERSION ? "older" : "newer") +
         "): install the icmpcap module of this version (rebuild it with dkms, or reinstall "
         "icmpcap-dkms) and reload it (modprobe -r icmpcap; modprobe icmpcap)";
}

ErrorContext device_context() {
  ErrorContext ctx = {{"device", kDevice}};
  struct stat st;
  if (stat(kDevice, &st) == 0) {
    const struct group* gr = getgrgid(st.st_gid);
    ctx["group"] = gr ? gr->gr_name : std::to_string(st.st_gid);
  }
  return ctx;
}

// The capture filter as the module's filter attributes (absent: the module's default, all).
void put_filter(GenlMessage& m, const struct icmpcap_filter_spec& f) {
  if (f.families) m.u32(ICMPCAP_A_FAMILIES, f.families);
  if (f.has_types_v4) m.put(ICMPCAP_A_TYPES_V4, f.types_v4, sizeof(f.types_v4));
  if (f.has_types_v6) m.put(ICMPCAP_A_TYPES_V6, f.types_v6, sizeof(f.types_v6));
  if (f.has_codes) m.put(ICMPCAP_A_CODES, f.codes, sizeof(f.codes));
  if (f.directions) m.u32(ICMPCAP_A_DIRECTIONS, f.directions);
  if (f.nr_addr_rules)
    m.put(ICMPCAP_A_ADDR_RULES, f.addr_rules, f.nr_addr_rules * sizeof(f.addr_rules[0]));
}

uint32_t round_up_pow2(uint64_t v) {
  uint64_t p = 4096;
  while (p < v && p < (64ull << 20)) p <<= 1;
  return static_cast<uint32_t>(p);
}

class ModuleSource final : public RingSource {
 public:
  explicit ModuleSource(const OpenConfig& cfg) : RingSource(SourceKind::kModule, cfg.limits) {}
  ~ModuleSource() override { close(); }

  void open(const OpenConfig& cfg) {
    std::map<unsigned, std::string> ifnames;
    std::vector<uint32_t> ifindexes;
    for (const auto& t : resolve_interfaces(cfg.interfaces)) {
      ifindexes.push_back(t.first);
      ifnames[t.first] = t.second;
    }
    if (ifindexes.size() > ICMPCAP_MAX_IFINDEXES)
      throw_error("open: interfaces", EINVAL,
                  "at most " + std::to_string(ICMPCAP_MAX_IFINDEXES) + " interfaces per session");

    dev_fd_ = ::open(kDevice, O_RDWR | O_CLOEXEC);
    if (dev_fd_ < 0) {
      const int e = errno;
      throw_kind(module_kind(e), std::string("open ") + kDevice, e, "", device_context());
    }
    int err = ctl_.open(ICMPCAP_GENL_NAME);
    if (err)
      throw_kind(module_kind(-err), "resolve generic netlink family icmpcap", -err, "",
                 device_context());
    err = events_.open(ICMPCAP_GENL_NAME, ICMPCAP_GENL_MCGRP_EVENTS);
    if (!err) err = events_.join_group();
    if (err)
      throw_kind(module_kind(-err), "join the icmpcap events group", -err, "", device_context());

    GenlMessage sub(ICMPCAP_CMD_SUBSCRIBE, ICMPCAP_GENL_VERSION);
    sub.u32(ICMPCAP_A_DEV_FD, static_cast<uint32_t>(dev_fd_));
    sub.u32(ICMPCAP_A_SNAPLEN, cfg.snaplen);
    if (cfg.ring_bytes) sub.u32(ICMPCAP_A_RING_DATA_SIZE, round_up_pow2(cfg.ring_bytes));
    if (!ifindexes.empty())
      sub.put(ICMPCAP_A_IFINDEXES, ifindexes.data(), ifindexes.size() * sizeof(uint32_t));
    put_filter(sub, cfg.filter);
    GenlAttrs r;
    std::string ext;
    err = ctl_.call(sub, &r, &ext);
    // A module older than ICMPCAP_A_ADDR_RULES rejects the unknown attribute (strict
    // validation) with EINVAL, and may not say which attribute in its extack.
    if (err == -EINVAL && cfg.filter.nr_addr_rules &&
        (ext.empty() || ext.find("ttribute") != std::string::npos))
      throw_kind("module-no-addr-rules", "subscribe (ICMPCAP_CMD_SUBSCRIBE)", EINVAL,
                 "the loaded icmpcap module rejected the address rules of the filter "
                 "(ICMPCAP_A_ADDR_RULES)" +
                     (ext.empty() ? std::string() : ": " + ext));
    if (err)
      throw_kind(module_kind(-err), "subscribe (ICMPCAP_CMD_SUBSCRIBE)", -err,
                 ext.empty() ? "" : "the module says: " + ext, device_context());
    const uint32_t abi = r.u32(ICMPCAP_A_ABI_VERSION);
    if (abi != ICMPCAP_ABI_VERSION)
      throw_kind("module-abi", "subscribe: module ABI version " + std::to_string(abi), EPROTO,
                 abi_advice(abi));
    nr_rings_ = r.u32(ICMPCAP_A_NR_RINGS);
    const uint64_t data_size = r.u32(ICMPCAP_A_DATA_SIZE);
    stride_ = r.u32(ICMPCAP_A_RING_STRIDE);
    sub_id_ = r.u32(ICMPCAP_A_SUB_ID);
    if (nr_rings_ == 0 || nr_rings_ > 4096 || stride_ != ICMPCAP_RING_HDR_SIZE + data_size)
      throw_error("subscribe: ring geometry (" + std::to_string(nr_rings_) + " rings, stride " +
                      std::to_string(stride_) + ")",
                  EPROTO, "the module's reply is inconsistent");

    // As a BPF ring buffer: the consumer page read-write, the producer page and the records
    // read-only (the module refuses anything else).
    std::vector<RingMap> rings;
    for (uint32_t i = 0; i < nr_rings_; i++) {
      const uint64_t base = uint64_t{i} * stride_;
      void* c = mmap(nullptr, ICMPCAP_RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd_,
                     static_cast<off_t>(base + ICMPCAP_RING_CONSUMER_OFF));
      if (c == MAP_FAILED)
        throw_error("mmap consumer page of ring " + std::to_string(i) + " of " + kDevice, errno,
                    "");
      cons_maps_.push_back(static_cast<uint8_t*>(c));
      void* p = mmap(nullptr, stride_ - ICMPCAP_RING_PRODUCER_OFF, PROT_READ, MAP_SHARED, dev_fd_,
                     static_cast<off_t>(base + ICMPCAP_RING_PRODUCER_OFF));
      if (p == MAP_FAILED)
        throw_error("mmap ring " + std::to_string(i) + " of " + kDevice, errno, "");
      maps_.push_back(static_cast<uint8_t*>(p));
      rings.push_back(RingMap{
          maps_.back(),
          &reinterpret_cast<struct icmpcap_ring_consumer*>(cons_maps_.back())->consumer_pos});
    }
    std::string why;
    if (!reader_.attach(rings, data_size, &why)) throw_error("attach rings: " + why, EPROTO);

    setup_loop(dev_fd_, ifnames);
    add_watch(events_.fd(), kEventTag);
  }

  int device_fd() const { return dev_fd_; }

 protected:
  bool on_wake(uint32_t events) override {
    if (!(events & EPOLLHUP)) return true;
    read_events();  // the reason, when the kernel said it
    if (!stop_requested()) {
      emit(EventType::kError,
           "icmpcap: the kernel ended the subscription" + end_reason_ +
               " \u2014 the module was told to stop or is being unloaded; start a new "
               "capture",
           EPIPE);
    }
    return false;
  }

  void on_extra(int tag) override {
    if (tag == kEventTag) read_events();
  }

  void finished() override { read_events(); }  // overflow notices that arrived meanwhile

  void release() override {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);  // stats() reads the ring headers
      last_cpu_ = reader_.cpu_stats();
      for (auto* m : maps_) munmap(m, stride_ - ICMPCAP_RING_PRODUCER_OFF);
      for (auto* m : cons_maps_) munmap(m, ICMPCAP_RING_PAGE_SIZE);
      maps_.clear();
      cons_maps_.clear();
    }
    ctl_.close();  // ends the subscription (the subscribing socket goes away)
    close_loop();
    events_.close();
    if (dev_fd_ >= 0) ::close(dev_fd_);
    dev_fd_ = -1;
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
  static constexpr int kEventTag = kFirstExtraTag;

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
  uint32_t nr_rings_ = 0;
  uint64_t stride_ = 0;
  uint32_t sub_id_ = 0;
  std::vector<uint8_t*> maps_;       // producer page + records of each ring, read-only
  std::vector<uint8_t*> cons_maps_;  // consumer page of each ring
  std::vector<CpuStats> last_cpu_;
  std::string end_reason_;
};

}  // namespace

std::unique_ptr<Source> open_module(const OpenConfig& cfg) {
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
  a.context = device_context();
  if (stat(kDevice, &st) < 0) {
    a.reason = std::string(kDevice) + " is missing: the icmpcap kernel module is not loaded";
    a.kind = "module-missing";
    return a;
  }
  int fd = ::open(kDevice, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    a.reason = format_error(std::string("open ") + kDevice, err, "");
    a.kind = module_kind(err);
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
                 std::to_string(r.u32(ICMPCAP_A_ABI_VERSION)) + ": " +
                 abi_advice(r.u32(ICMPCAP_A_ABI_VERSION));
      a.kind = "module-abi";
      ::close(fd);
      return a;
    }
  }
  ::close(fd);
  if (err) {
    a.reason = format_error("generic netlink family icmpcap", -err, "");
    a.kind = module_kind(-err);
    return a;
  }
  a.available = true;
  a.via = "direct";
  return a;
}

}  // namespace icmpcap
