// AF_PACKET source, no kernel module needed: icmpcap-helper holds the packet sockets and
// writes records in the module's ring format into memfd rings this process maps read-only.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "source.h"

namespace icmpcap {

// Throws Error (operation, errno, remedy) when the helper cannot capture.
std::unique_ptr<Source> open_afpacket(const OpenConfig& config);

// "exited with code 2", "was killed by signal SIGKILL" (a waitpid() status).
std::string describe_wait_status(int status);

// The helper's process id of an afpacket session (tests), or -1.
pid_t afpacket_helper_pid(Source* source);

}  // namespace icmpcap
