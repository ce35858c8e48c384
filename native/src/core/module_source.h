// Module source: per-CPU rings of /dev/icmpcap, controlled over generic netlink "icmpcap".
#pragma once

#include <memory>

#include "source.h"

namespace icmpcap {

std::unique_ptr<Source> open_module(const OpenConfig& config);  // throws Error

}  // namespace icmpcap
