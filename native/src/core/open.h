// Opening a capture session of any source.
#pragma once

#include <memory>

#include "source.h"

namespace icmpcap {

std::unique_ptr<Source> open_source(const OpenConfig& config);  // throws Error

}  // namespace icmpcap
