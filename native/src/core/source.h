// A capture source: one reader thread that drains the kernel into batches for a Sink.
#pragma once

#include <stdint.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "batch.h"
#include "bpf_filter.h"

namespace icmpcap {

enum class SourceKind { kModule, kAfPacket };
const char* source_kind_name(SourceKind kind);

struct CpuStats {
  uint32_t cpu = 0;
  uint64_t captured = 0;
  uint64_t dropped = 0;
};

struct Stats {
  SourceKind source = SourceKind::kAfPacket;
  uint64_t captured = 0;        // records read from the kernel
  uint64_t delivered = 0;       // records handed to the sink
  uint64_t dropped_kernel = 0;  // dropped by the kernel because our ring was full
  uint64_t dropped_ring = 0;    // read or left in a ring but lost in user space
  uint64_t batches = 0;
  uint64_t wakeups = 0;  // times the reader woke up (poll returned); a measure of spinning
  std::vector<CpuStats> per_cpu;
};

struct OpenConfig {
  SourceKind source = SourceKind::kAfPacket;
  std::vector<std::string> interfaces;  // empty = all
  uint32_t snaplen = 256;
  uint64_t ring_bytes = 0;                 // 0 = default
  std::string helper_path;                 // icmpcap-helper (afpacket)
  struct icmpcap_filter_spec filter = {};  // all zero: everything
  BatchLimits limits;
};

class Source {
 public:
  virtual ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Starts the reader thread. The sink must outlive stop().
  void start(Sink* sink);
  // Idempotent. Wakes the reader, which flushes what it holds and emits a final "stopped"
  // event, then joins it.
  void stop();
  // Idempotent: stop() and release fds and mappings.
  void close();
  Stats stats();
  bool running() const { return thread_.joinable(); }

 protected:
  explicit Source(SourceKind kind, BatchLimits limits);

  // The reader loop. Returns when stop_requested() or the source ended (after emitting
  // an error / interface-gone event). Batches go through flush().
  virtual void run() = 0;
  virtual void release() = 0;
  // Adds source-specific counters (kernel drops, per-CPU) under stats_mu_.
  virtual void fill_stats(Stats& s) = 0;

  bool stop_requested() const { return stop_.load(std::memory_order_acquire); }
  int stop_fd() const { return stop_fd_; }
  // Hands the current batch to the sink if it is non-empty and the sink has room (or force).
  // Returns false when the sink is full and the batch is still held.
  bool flush(bool force = false);
  // Waits up to ms for the sink to make room, or for stop (returns false on stop).
  bool wait_for_room(int ms);
  void emit(EventType type, const std::string& message, int err = 0, int ifindex = 0,
            const std::string& ifname = "");

  Batcher batcher_;
  Sink* sink_ = nullptr;
  std::atomic<uint64_t> captured_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> dropped_ring_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::mutex stats_mu_;

 private:
  void thread_main();

  SourceKind kind_;
  int stop_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool closed_ = false;
  std::mutex control_mu_;
};

// Milliseconds of CLOCK_MONOTONIC.
int64_t monotonic_ms();

}  // namespace icmpcap
