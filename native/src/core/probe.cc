#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afpacket_source.h"
#include "errors.h"

namespace icmpcap {

namespace {

Availability probe_afpacket(const std::string& helper) {
  Availability a;
  a.source = SourceKind::kAfPacket;
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    ::close(fd);
    a.available = true;
    a.via = "direct";
    return a;
  }
  const int direct_err = errno;
  if (direct_err != EPERM && direct_err != EACCES) {
    a.reason = format_error("socket(AF_PACKET)", direct_err, "");
    a.fix = afpacket_fix(direct_err);
    return a;
  }
  try {
    int hfd = open_afpacket_via_helper(helper, "", 64);
    ::close(hfd);
    a.available = true;
    a.via = "helper";
  } catch (const Error& e) {
    a.reason =
        std::string("this process lacks CAP_NET_RAW and the capture helper failed: ") + e.what();
    a.fix = helper.empty() ? "build the capture helper (npm run build:native), then sudo setcap "
                             "cap_net_raw+ep native/build/Release/icmpcap-helper"
                           : "sudo setcap cap_net_raw+ep " + helper;
  }
  return a;
}

}  // namespace

Availability probe_module();  // module_source.cc

std::vector<Availability> probe_sources(const std::string& helper_path) {
  return {probe_module(), probe_afpacket(helper_path)};
}

}  // namespace icmpcap
