// Notices interfaces being removed (RTM_DELLINK), for sources bound to named interfaces.
#pragma once

#include <vector>

namespace icmpcap {

class LinkWatch {
 public:
  LinkWatch();  // best effort: fd() is -1 when rtnetlink is unavailable
  ~LinkWatch();
  LinkWatch(const LinkWatch&) = delete;
  LinkWatch& operator=(const LinkWatch&) = delete;

  int fd() const { return fd_; }
  // Reads pending notifications; returns the indexes of removed interfaces among `watched`.
  // When notifications were lost (ENOBUFS), checks every watched index instead.
  std::vector<int> removed(const std::vector<int>& watched);
  void close();

 private:
  int fd_ = -1;
};

}  // namespace icmpcap
