// Which sources can capture right now, and for those that cannot: why, and the fix.
#pragma once

#include <string>
#include <vector>

#include "source.h"

namespace icmpcap {

struct Availability {
  SourceKind source = SourceKind::kAfPacket;
  bool available = false;
  std::string via;  // "direct" | "helper" | ""
  std::string reason;
  std::string fix;
};

std::vector<Availability> probe_sources(const std::string& helper_path);

}  // namespace icmpcap
