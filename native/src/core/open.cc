#include "open.h"

#include <errno.h>

#include "afpacket_source.h"
#include "errors.h"
#include "module_source.h"
#include "record.h"

namespace icmpcap {

std::unique_ptr<Source> open_source(const OpenConfig& config) {
  if (config.snaplen < 64 || config.snaplen > kMaxCapLen)
    throw_error("open: snaplen " + std::to_string(config.snaplen), EINVAL,
                "snaplen must be between 64 and 65535");
  if (config.source == SourceKind::kModule) return open_module(config);
  return open_afpacket(config);
}

}  // namespace icmpcap
