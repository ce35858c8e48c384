#include "module_source.h"

#include <errno.h>

#include "errors.h"

namespace icmpcap {

std::unique_ptr<Source> open_module(const OpenConfig&) {
  throw_error("open module source", ENOSYS, "not implemented yet; use source 'afpacket'");
}

}  // namespace icmpcap

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"

namespace icmpcap {

Availability probe_module() {
  Availability a;
  a.source = SourceKind::kModule;
  struct stat st;
  if (stat("/dev/icmpcap", &st) < 0) {
    a.reason = "/dev/icmpcap is missing: the icmpcap kernel module is not loaded";
    a.fix = "sudo modprobe icmpcap (install it with the icmpcap-dkms package)";
    return a;
  }
  a.reason = "the module source is not implemented in this build";
  a.fix = "use the afpacket source";
  return a;
}

}  // namespace icmpcap
