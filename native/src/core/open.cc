#include "open.h"

#include "afpacket_source.h"
#include "module_source.h"

namespace icmpcap {

std::unique_ptr<Source> open_source(const OpenConfig& config) {
  if (config.source == SourceKind::kModule) return open_module(config);
  return open_afpacket(config);
}

}  // namespace icmpcap
