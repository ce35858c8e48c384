#include "probe.h"

namespace icmpcap {

Availability probe_module();                             // module_source.cc
Availability probe_afpacket(const std::string& helper);  // afpacket_source.cc

std::vector<Availability> probe_sources(const std::string& helper_path) {
  return {probe_module(), probe_afpacket(helper_path)};
}

}  // namespace icmpcap
