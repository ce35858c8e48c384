#include "source.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

namespace icmpcap {

const char* source_kind_name(SourceKind kind) {
  return kind == SourceKind::kModule ? "module" : "afpacket";
}

namespace {
// A few recycled buffers of the usual batch size; others go straight back to malloc. Never
// destroyed: batches may still be released while the process exits.
constexpr size_t kPoolMax = 16;
struct BufferPool {
  std::mutex mu;
  std::vector<std::pair<uint8_t*, size_t>> free;
};
BufferPool& pool() {
  static BufferPool* p = new BufferPool;
  return *p;
}
}  // namespace

uint8_t* acquire_batch_buffer(size_t capacity) {
  BufferPool& bp = pool();
  {
    std::lock_guard<std::mutex> lock(bp.mu);
    for (size_t i = 0; i < bp.free.size(); i++) {
      if (bp.free[i].second == capacity) {
        uint8_t* p = bp.free[i].first;
        bp.free[i] = bp.free.back();
        bp.free.pop_back();
        return p;
      }
    }
  }
  auto* p = static_cast<uint8_t*>(malloc(capacity));
  if (!p) throw std::bad_alloc();
  return p;
}

void release_batch_buffer(uint8_t* p, size_t capacity) {
  if (!p) return;
  BufferPool& bp = pool();
  {
    std::lock_guard<std::mutex> lock(bp.mu);
    if (bp.free.size() < kPoolMax) {
      bp.free.emplace_back(p, capacity);
      return;
    }
  }
  free(p);
}

int64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

Source::Source(SourceKind kind, BatchLimits limits) : batcher_(limits), kind_(kind) {
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw_error("eventfd", errno);
}

Source::~Source() {
  // Derived classes call close() in their destructors; this only covers the eventfd.
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void Source::start(Sink* sink) {
  std::lock_guard<std::mutex> lock(control_mu_);
  if (closed_)
    throw Error(EBADF, "icmpcap: start: EBADF \u2014 the session is closed; open a new one");
  if (thread_.joinable() || sink_)
    throw Error(EBUSY,
                "icmpcap: start: EBUSY \u2014 the session was already started; open a new one");
  sink_ = sink;
  thread_ = std::thread([this] { thread_main(); });
}

void Source::thread_main() {
  try {
    run();
  } catch (const Error& e) {
    emit(EventType::kError, e.what(), e.err());
  } catch (const std::exception& e) {
    emit(EventType::kError, std::string("icmpcap: reader: ") + e.what(), 0);
  }
  flush(true);
  emit(EventType::kStopped, "capture stopped");
}

void Source::stop() {
  std::lock_guard<std::mutex> lock(control_mu_);
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) {
    // EAGAIN: counter saturated, the reader is being woken anyway.
  }
  if (thread_.joinable()) thread_.join();
}

void Source::close() {
  stop();
  std::lock_guard<std::mutex> lock(control_mu_);
  if (closed_) return;
  closed_ = true;
  release();
}

Stats Source::stats() {
  Stats s;
  s.source = kind_;
  s.captured = captured_.load(std::memory_order_relaxed);
  s.delivered = delivered_.load(std::memory_order_relaxed);
  s.dropped_ring = dropped_ring_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.wakeups = wakeups_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(stats_mu_);
  fill_stats(s);
  return s;
}

bool Source::flush(bool force) {
  if (batcher_.empty()) return true;
  if (!force && !sink_->can_accept()) return false;
  const uint32_t n = batcher_.records();
  if (sink_->deliver(batcher_.take())) {
    delivered_.fetch_add(n, std::memory_order_relaxed);
    batches_.fetch_add(1, std::memory_order_relaxed);
  } else {
    dropped_ring_.fetch_add(n, std::memory_order_relaxed);
  }
  return true;
}

bool Source::wait_for_room(int ms) {
  struct pollfd p = {stop_fd_, POLLIN, 0};
  poll(&p, 1, ms);
  return !stop_requested();
}

void Source::emit(EventType type, const std::string& message, int err, int ifindex,
                  const std::string& ifname) {
  if (!sink_) return;
  Event ev;
  ev.type = type;
  ev.message = message;
  ev.ifindex = ifindex;
  ev.ifname = ifname;
  if (err) ev.errno_name = errno_name(err);
  sink_->event(std::move(ev));
}

}  // namespace icmpcap
