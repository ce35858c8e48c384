// Module source: per-CPU rings of /dev/icmpcap, controlled over generic netlink "icmpcap".
#pragma once

#include <memory>

#include "source.h"

namespace icmpcap {

std::unique_ptr<Source> open_module(const OpenConfig& config);  // throws Error

// The open /dev/icmpcap of a module session (for tests: TEST_PRODUCE names it), or -1.
int module_device_fd(Source* source);

}  // namespace icmpcap
