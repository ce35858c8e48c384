#include "afpacket_source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "afpacket_socket.h"
#include "errors.h"
#include "link_watch.h"
#include "record.h"

namespace icmpcap {

namespace {

constexpr uint32_t kFrameSize = 2048;
constexpr uint64_t kDefaultRingBytes = 4u << 20;
constexpr uint64_t kMinRingBytes = 64u << 10;
constexpr uint64_t kMaxRingBytes = 1u << 30;
constexpr uint32_t kBlockTimeoutMs = 8;
constexpr int kStopTag = -1;
constexpr int kLinkTag = -2;

struct PacketSocket {
  int fd = -1;
  int ifindex = 0;  // 0 = all interfaces
  std::string ifname;
  uint8_t* map = nullptr;
  size_t map_len = 0;
  uint32_t block_size = 0;
  uint32_t block_nr = 0;
  // Read cursor: the block being read, the next packet in it and its offset.
  uint32_t block = 0;
  uint32_t pkt_index = 0;
  uint32_t pkt_offset = 0;
  bool in_block = false;
  bool alive = true;
  uint64_t kernel_packets = 0;
  uint64_t kernel_drops = 0;
  uint64_t frames_read = 0;  // frames taken from the ring, ICMP or not
};

std::string describe_if(const PacketSocket& s) {
  return s.ifindex ? s.ifname + " (index " + std::to_string(s.ifindex) + ")" : "all interfaces";
}

class AfPacketSource final : public Source {
 public:
  explicit AfPacketSource(const OpenConfig& cfg) : Source(SourceKind::kAfPacket, cfg.limits) {
    snaplen_ = cfg.snaplen;
    ring_bytes_ = cfg.ring_bytes ? cfg.ring_bytes : kDefaultRingBytes;
    if (ring_bytes_ < kMinRingBytes || ring_bytes_ > kMaxRingBytes)
      throw_error("open: ringBytes " + std::to_string(ring_bytes_), EINVAL,
                  "ringBytes must be between 64 KiB and 1 GiB");
  }

  ~AfPacketSource() override { close(); }

  void add_socket(int fd, int ifindex, const std::string& ifname) {
    PacketSocket s;
    s.fd = fd;
    s.ifindex = ifindex;
    s.ifname = ifname;
    socks_.push_back(s);
    setup_ring(socks_.back());
  }

  void setup_epoll() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_error("epoll_create1", errno);
    add_epoll(stop_fd(), kStopTag);
    for (size_t i = 0; i < socks_.size(); i++) add_epoll(socks_[i].fd, static_cast<int>(i));
    // Link removals end the capture of a named interface (a bound packet socket only
    // reports ENETDOWN once, when the interface goes down).
    if (links_.fd() >= 0) add_epoll(links_.fd(), kLinkTag);
  }

 protected:
  void run() override {
    int64_t last_flush = monotonic_ms();
    int64_t last_stats = last_flush;
    const int flush_ms = static_cast<int>(batcher_.limits().flush_interval_ms);
    for (;;) {
      if (stop_requested()) {
        final_drain();
        return;
      }
      bool blocked = false;  // the sink is full: stop draining
      for (auto& s : socks_) {
        if (!s.alive) continue;
        if (!drain(s)) {
          blocked = true;
          break;
        }
      }
      const int64_t now = monotonic_ms();
      if (!batcher_.empty() && (now - last_flush >= flush_ms || batcher_.full())) {
        if (flush())
          last_flush = now;
        else
          blocked = true;
      }
      if (batcher_.empty()) last_flush = now;
      if (now - last_stats >= 500) {
        last_stats = now;
        poll_kernel_stats();
      }
      if (alive_count() == 0) return;
      if (blocked) {
        wait_for_room(2);
        continue;
      }
      int timeout = batcher_.empty() ? 500 : static_cast<int>(flush_ms - (now - last_flush));
      if (timeout < 0) timeout = 0;
      struct epoll_event evs[16];
      int n = epoll_wait(epfd_, evs, 16, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_error("epoll_wait", errno);
      }
      for (int i = 0; i < n; i++) {
        const int tag = static_cast<int>(evs[i].data.u32);
        if (tag == kStopTag) {
          final_drain();
          return;
        }
        if (tag == kLinkTag) {
          read_link_events();
        } else if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
          socket_error(socks_[static_cast<size_t>(tag)]);
        }
      }
    }
  }

  void release() override {
    std::lock_guard<std::mutex> lock(stats_mu_);
    for (auto& s : socks_) {
      if (s.fd >= 0) read_stats_locked(s);
      close_socket(s);
    }
    if (epfd_ >= 0) ::close(epfd_);
    links_.close();
    epfd_ = -1;
  }

  void fill_stats(Stats& st) override {
    for (auto& s : socks_) {
      if (s.fd >= 0) read_stats_locked(s);
      st.dropped_kernel += s.kernel_drops;
    }
  }

 private:
  void add_epoll(int fd, int tag) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLERR;
    ev.data.u32 = static_cast<uint32_t>(tag);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_error("epoll_ctl", errno);
  }

  void setup_ring(PacketSocket& s) {
    int version = TPACKET_V3;
    if (setsockopt(s.fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0)
      throw_error("setsockopt(PACKET_VERSION, TPACKET_V3)", errno);
    uint32_t block = 1u << 20;
    while (block > 4096 && uint64_t{block} * 8 > ring_bytes_) block >>= 1;
    uint32_t nr = static_cast<uint32_t>(ring_bytes_ / block);
    if (nr < 2) nr = 2;
    struct tpacket_req3 req = {};
    req.tp_block_size = block;
    req.tp_block_nr = nr;
    req.tp_frame_size = kFrameSize;
    req.tp_frame_nr = block / kFrameSize * nr;
    req.tp_retire_blk_tov = kBlockTimeoutMs;
    if (setsockopt(s.fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
      throw_error("setsockopt(PACKET_RX_RING, " + std::to_string(uint64_t{block} * nr) + " bytes)",
                  errno, errno == ENOMEM ? "lower ringBytes" : "");
    s.map_len = size_t{block} * nr;
    void* m = mmap(nullptr, s.map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, s.fd, 0);
    if (m == MAP_FAILED) m = mmap(nullptr, s.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, 0);
    if (m == MAP_FAILED) throw_error("mmap(AF_PACKET ring)", errno);
    s.map = static_cast<uint8_t*>(m);
    s.block_size = block;
    s.block_nr = nr;
    // Start the counters with the ring: frames queued before it existed never reach it.
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);
    getsockopt(s.fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);
  }

  // Drains ready blocks of s into the batch. Returns false when the sink is full and the
  // batch could not be flushed: the rest stays in the kernel ring.
  bool drain(PacketSocket& s) {
    for (;;) {
      auto* bd =
          reinterpret_cast<struct tpacket_block_desc*>(s.map + size_t{s.block} * s.block_size);
      if (!s.in_block) {
        // Pairs with the kernel's smp_wmb() before it sets TP_STATUS_USER
        // (prb_close_block / prb_flush_block in net/packet/af_packet.c).
        const uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
        if (!(status & TP_STATUS_USER)) return true;
        s.in_block = true;
        s.pkt_index = 0;
        s.pkt_offset = bd->hdr.bh1.offset_to_first_pkt;
      }
      const uint32_t num = bd->hdr.bh1.num_pkts;
      while (s.pkt_index < num) {
        if (s.pkt_offset < sizeof(struct tpacket_block_desc) ||
            s.pkt_offset + sizeof(struct tpacket3_hdr) > s.block_size)
          break;  // never happens with a sane kernel; do not read outside the block
        auto* h =
            reinterpret_cast<struct tpacket3_hdr*>(reinterpret_cast<uint8_t*>(bd) + s.pkt_offset);
        if (!batcher_.fits(kRecordHeaderSize + h->tp_snaplen)) {
          if (!flush()) return false;
        }
        emit_packet(s, h);
        s.frames_read++;
        s.pkt_index++;
        if (h->tp_next_offset == 0) {
          s.pkt_index = num;
          break;
        }
        s.pkt_offset += h->tp_next_offset;
      }
      // Hand the block back; pairs with the kernel's smp_rmb()/status check in
      // prb_queue_frozen / prb_retire_current_block before it reuses the block.
      __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      s.in_block = false;
      s.block = (s.block + 1) % s.block_nr;
    }
  }

  void emit_packet(PacketSocket& s, const struct tpacket3_hdr* h) {
    const uint8_t* base = reinterpret_cast<const uint8_t*>(h);
    const size_t sll_off = TPACKET_ALIGN(sizeof(struct tpacket3_hdr));
    const auto* sll = reinterpret_cast<const struct sockaddr_ll*>(base + sll_off);
    const uint32_t cap = h->tp_snaplen;
    const size_t h_off = static_cast<size_t>(base - s.map) % s.block_size;
    if (h->tp_net < sll_off + sizeof(struct sockaddr_ll) || h_off + h->tp_net + cap > s.block_size)
      return;
    struct icmpcap_record rec;
    if (!describe_ip_packet(base + h->tp_net, cap, h->tp_len, &rec)) return;
    rec.hook = ICMPCAP_HOOK_NONE;
    rec.dir = sll->sll_pkttype == PACKET_OUTGOING ? ICMPCAP_DIR_OUT : ICMPCAP_DIR_IN;
    rec.ts_ns = uint64_t{h->tp_sec} * 1000000000u + h->tp_nsec;
    rec.ifindex = static_cast<uint32_t>(sll->sll_ifindex);
    batcher_.append_record(rec, base + h->tp_net);
    captured_.fetch_add(1, std::memory_order_relaxed);
  }

  // stop(): read everything the kernel accepted, then flush.
  void final_drain() {
    for (auto& s : socks_)
      if (s.alive) settle(s);
    flush(true);
    poll_kernel_stats();  // report drops not reported yet
  }

  // The kernel hands a partly filled block over only when its retire timer fires: wait
  // (bounded) until every frame it accepted into the ring has been read.
  void settle(PacketSocket& s) {
    const int64_t deadline = monotonic_ms() + 20 * kBlockTimeoutMs;
    for (;;) {
      while (!drain(s)) flush(true);
      bool complete;
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        read_stats_locked(s);
        complete = s.frames_read >= s.kernel_packets - s.kernel_drops;
      }
      if (complete || monotonic_ms() >= deadline) return;
      struct timespec ts = {0, 2 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
  }

  void read_stats_locked(PacketSocket& s) {
    struct tpacket_stats_v3 st = {};
    socklen_t len = sizeof(st);
    // PACKET_STATISTICS resets the kernel counters on every read: accumulate.
    // tp_packets includes tp_drops (packet_getsockopt adds them).
    if (getsockopt(s.fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      s.kernel_packets += st.tp_packets;
      s.kernel_drops += st.tp_drops;
    }
  }

  void poll_kernel_stats() {
    uint64_t drops = 0;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      for (auto& s : socks_) {
        if (s.fd >= 0) read_stats_locked(s);
        drops += s.kernel_drops;
      }
    }
    if (drops > reported_drops_) {
      emit(EventType::kOverflow,
           "icmpcap: the kernel dropped " + std::to_string(drops - reported_drops_) +
               " packets because the capture ring was full (" + std::to_string(drops) +
               " in total); the reader is not keeping up \u2014 raise ringBytes or narrow the "
               "capture");
      reported_drops_ = drops;
    }
  }

  size_t alive_count() const {
    size_t n = 0;
    for (auto& s : socks_) n += s.alive;
    return n;
  }

  void interface_gone(PacketSocket& s) {
    if (!s.alive) return;
    settle(s);  // whatever is left in its ring
    s.alive = false;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      read_stats_locked(s);
    }
    epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
    flush(true);
    emit(EventType::kInterfaceGone,
         "icmpcap: interface " + describe_if(s) + " was removed; its capture ended", ENODEV,
         s.ifindex, s.ifname);
  }

  void socket_error(PacketSocket& s) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);  // reading clears it
    char name[IF_NAMESIZE];
    if (s.ifindex && (err == ENETDOWN || err == ENODEV || err == ENXIO) &&
        !if_indextoname(static_cast<unsigned>(s.ifindex), name)) {
      interface_gone(s);
      return;
    }
    if (err == ENETDOWN) {
      emit(EventType::kInfo, "icmpcap: interface " + describe_if(s) + " went down", err, s.ifindex,
           s.ifname);
    } else if (err) {
      emit(EventType::kInfo, format_error("capture on " + describe_if(s), err, ""), err, s.ifindex,
           s.ifname);
    }
  }

  void read_link_events() {
    std::vector<int> watched;
    for (auto& s : socks_)
      if (s.alive && s.ifindex) watched.push_back(s.ifindex);
    for (int idx : links_.removed(watched))
      for (auto& s : socks_)
        if (s.alive && s.ifindex == idx) interface_gone(s);
  }

  static void close_socket(PacketSocket& s) {
    if (s.map) munmap(s.map, s.map_len);
    if (s.fd >= 0) ::close(s.fd);
    s.map = nullptr;
    s.fd = -1;
    s.alive = false;
  }

  uint32_t snaplen_;
  uint64_t ring_bytes_;
  std::vector<PacketSocket> socks_;
  int epfd_ = -1;
  LinkWatch links_;
  uint64_t reported_drops_ = 0;
};

int open_one(const OpenConfig& cfg, int ifindex, const std::string& ifname) {
  if (!cfg.force_helper) {
    const char* op = "socket(AF_PACKET)";
    int fd = icmpcap_afp_open(ifindex, cfg.snaplen, &op);
    if (fd >= 0) return fd;
    const int err = -fd;
    const bool no_cap = err == EPERM || err == EACCES;
    if (!no_cap || cfg.helper_path.empty()) throw_error(op, err, afpacket_fix(err));
  }
  return open_afpacket_via_helper(cfg.helper_path, ifname, cfg.snaplen);
}

}  // namespace

std::unique_ptr<Source> open_afpacket(const OpenConfig& cfg) {
  if (cfg.snaplen < 64 || cfg.snaplen > kMaxCapLen)
    throw_error("open: snaplen " + std::to_string(cfg.snaplen), EINVAL,
                "snaplen must be between 64 and 65535");
  struct Target {
    int ifindex;
    std::string name;
  };
  std::vector<Target> targets;
  for (const auto& name : cfg.interfaces) {
    if (name.empty() || name.size() >= IF_NAMESIZE)
      throw_error("open: interface \"" + name + "\"", EINVAL, "interface names have 1 to 15 bytes");
    unsigned idx = if_nametoindex(name.c_str());
    if (!idx)
      throw_error("open: interface " + name, ENODEV,
                  "no such interface in this network namespace; list them with `ip link`");
    bool dup = false;
    for (auto& t : targets) dup |= t.ifindex == static_cast<int>(idx);
    if (!dup) targets.push_back({static_cast<int>(idx), name});
  }
  if (targets.empty()) targets.push_back({0, ""});

  auto src = std::make_unique<AfPacketSource>(cfg);
  for (auto& t : targets) {
    // add_socket owns the fd from here on: the source's destructor closes it on failure.
    src->add_socket(open_one(cfg, t.ifindex, t.name), t.ifindex, t.name);
  }
  src->setup_epoll();
  return src;
}

}  // namespace icmpcap
