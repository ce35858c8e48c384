// Which sources can capture right now, and for those that cannot: why, and the fix.
#pragma once

#include <string>
#include <vector>

#include "errors.h"
#include "source.h"

namespace icmpcap {

struct Availability {
  SourceKind source = SourceKind::kAfPacket;
  bool available = false;
  std::string via;  // "direct" | "helper" | ""
  std::string reason;
  std::string kind;      // for the advice (electron/core/advice.ts)
  ErrorContext context;  // helperPath, group, device
};

std::vector<Availability> probe_sources(const std::string& helper_path);

}  // namespace icmpcap
