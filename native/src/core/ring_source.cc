#include "ring_source.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "errors.h"

namespace icmpcap {

namespace {
constexpr int kStopTag = 1;
constexpr int kWakeTag = 2;
constexpr int kLinkTag = 3;
}  // namespace

void RingSource::setup_loop(int wake_fd, const std::map<unsigned, std::string>& ifnames) {
  ifnames_ = ifnames;
  wake_fd_ = wake_fd;
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw_error("epoll_create1", errno);
  add_watch(stop_fd(), kStopTag);
  add_watch(wake_fd, kWakeTag);
  // A bound packet socket reports ENETDOWN once, when the interface goes down, and the
  // module knows nothing of interfaces: link removals end the capture of named interfaces.
  if (!ifnames_.empty() && links_.fd() >= 0) add_watch(links_.fd(), kLinkTag);
}

void RingSource::add_watch(int fd, int tag) {
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(tag);
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_error("epoll_ctl", errno);
}

void RingSource::close_loop() {
  links_.close();
  if (epfd_ >= 0) ::close(epfd_);
  epfd_ = -1;
}

void RingSource::set_wake_watch(bool on) {
  if (wake_watched_ == on) return;
  struct epoll_event ev = {};
  ev.events = on ? uint32_t{EPOLLIN} : 0u;  // EPOLLHUP/EPOLLERR are always reported
  ev.data.u32 = kWakeTag;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, wake_fd_, &ev);
  wake_watched_ = on;
}

bool RingSource::poll_once() {
  std::string why;
  const uint32_t before = batcher_.records();
  const bool ok = reader_.poll_records(batcher_, &why);
  captured_.fetch_add(batcher_.records() - before, std::memory_order_relaxed);
  if (!ok) {
    flush(true);  // what was read before the corruption is valid
    // What the abandoned rings still held is lost: count it.
    dropped_ring_.fetch_add(reader_.unread_records(), std::memory_order_relaxed);
    emit(EventType::kError,
         "icmpcap: corrupt capture ring: " + why + " \u2014 the session was ended", EPROTO);
  }
  return ok;
}

void RingSource::drain_all() {
  for (;;) {
    const uint32_t before = batcher_.records();
    if (!poll_once()) return;
    if (reader_.batch_full()) {
      flush(true);
      continue;
    }
    if (batcher_.records() == before) break;
  }
  flush(true);
}

void RingSource::interface_gone(unsigned ifindex) {
  auto it = ifnames_.find(ifindex);
  if (it == ifnames_.end()) return;
  emit(EventType::kInterfaceGone,
       "icmpcap: interface " + it->second + " (index " + std::to_string(ifindex) +
           ") was removed; its capture ended",
       ENODEV, static_cast<int>(ifindex), it->second);
  ifnames_.erase(it);
}

// Emits interface-gone for removed named interfaces (after publishing and reading what they
// captured); true when none is left.
bool RingSource::links_gone() {
  std::vector<int> watched;
  for (auto& kv : ifnames_) watched.push_back(static_cast<int>(kv.first));
  const std::vector<int> removed = links_.removed(watched);
  if (removed.empty()) return false;
  sync();
  drain_all();
  for (int idx : removed) interface_gone(static_cast<unsigned>(idx));
  return ifnames_.empty();
}

void RingSource::run() {
  int64_t last_flush = monotonic_ms();
  const int flush_ms = static_cast<int>(batcher_.limits().flush_interval_ms);
  for (;;) {
    if (stop_requested()) {
      finishing();
      drain_all();
      finished();
      return;
    }
    // Drain every ring completely: producers wake us at most once per batch.
    bool blocked = false;
    for (;;) {
      if (reader_.batch_full() || batcher_.full()) {
        if (!flush()) {
          blocked = true;
          break;
        }
        last_flush = monotonic_ms();
      }
      const uint32_t before = batcher_.records();
      if (!poll_once()) return;
      if (batcher_.records() == before && !reader_.batch_full()) break;
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
      // stop watching the wake fd meanwhile, it stays readable.
      set_wake_watch(false);
      wait_for_room(2);
      wakeups_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    set_wake_watch(true);
    int timeout = batcher_.empty() ? -1 : static_cast<int>(flush_ms - (now - last_flush));
    if (timeout < -1) timeout = 0;
    struct epoll_event evs[8];
    int n = epoll_wait(epfd_, evs, 8, timeout);
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_error("epoll_wait", errno);
    }
    for (int i = 0; i < n; i++) {
      const int tag = static_cast<int>(evs[i].data.u32);
      if (tag == kStopTag) continue;  // handled at the top
      if (tag == kWakeTag && !on_wake(evs[i].events)) {
        drain_all();
        finished();
        return;
      }
      if (tag == kLinkTag && links_gone()) {
        finished();
        return;  // every named interface is gone
      }
      if (tag >= kFirstExtraTag) on_extra(tag);
    }
  }
}

}  // namespace icmpcap
