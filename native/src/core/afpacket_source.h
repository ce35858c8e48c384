// AF_PACKET source: TPACKET_V3 RX rings with the ICMP/ICMPv6 filter, no kernel module needed.
#pragma once

#include <memory>
#include <string>

#include "source.h"

namespace icmpcap {

// Throws Error (operation, errno, remedy) when a socket cannot be opened.
std::unique_ptr<Source> open_afpacket(const OpenConfig& config);

// Asks icmpcap-helper (which alone holds CAP_NET_RAW) for a filtered, bound AF_PACKET
// socket. ifname empty = all interfaces. Returns the fd; throws Error.
int open_afpacket_via_helper(const std::string& helper_path, const std::string& ifname,
                             uint32_t snaplen);

}  // namespace icmpcap
