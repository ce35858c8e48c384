// The one reader loop: every source writes records in the module's ring format into shared
// rings (the module's per-CPU rings, icmpcap-helper's memfd rings), and RingSource drains
// them into batches. Subclasses say where the wake-ups come from and what ends a capture.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "link_watch.h"
#include "ring_reader.h"
#include "source.h"

namespace icmpcap {

class RingSource : public Source {
 protected:
  RingSource(SourceKind kind, BatchLimits limits) : Source(kind, limits) {}

  // After reader_ is attached: epoll over stop, wake_fd (readable when records may be
  // waiting; EPOLLHUP ends the capture) and, when interfaces are named, link removals.
  void setup_loop(int wake_fd, const std::map<unsigned, std::string>& ifnames);
  void add_watch(int fd, int tag);  // tags >= kFirstExtraTag, handled by on_extra()
  static constexpr int kFirstExtraTag = 16;

  void run() final;

  // The wake fd is readable (or hung up). Returns false when the capture must end (after
  // the rings are drained); the subclass emits the event that says why.
  virtual bool on_wake(uint32_t events) = 0;
  virtual void on_extra(int) {}
  // Make the producer publish everything it holds (before a final drain).
  virtual void sync() {}
  // stop(): before the final drain.
  virtual void finishing() {}
  // Called with the rings drained, after the loop ended.
  virtual void finished() {}
  // The capture of a named interface ended: it was removed.
  void interface_gone(unsigned ifindex);
  void close_loop();

  // One pass of the ring reader. Returns false when the session must end (corrupt ring).
  bool poll_once();
  // Reads every ring empty (flushing full batches whatever the sink says).
  void drain_all();

  RingReader reader_;
  std::map<unsigned, std::string> ifnames_;  // named interfaces still captured

 private:
  bool links_gone();
  void set_wake_watch(bool on);

  int epfd_ = -1;
  int wake_fd_ = -1;
  bool wake_watched_ = true;
  LinkWatch links_;
};

}  // namespace icmpcap
