#include "errors.h"

#include <string.h>

namespace icmpcap {

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

std::string format_error(const std::string& op, int err, const std::string& fix) {
  std::string msg = "icmpcap: " + op + ": " + errno_name(err) + " \u2014 ";
  msg += fix.empty() ? std::string(strerrordesc_np(err) ? strerrordesc_np(err) : "error") : fix;
  return msg;
}

void throw_error(const std::string& op, int err, const std::string& fix) {
  throw Error(err, format_error(op, err, fix));
}

std::string afpacket_fix(int err) {
  if (err == EPERM || err == EACCES)
    return "run icmpcap doctor; the capture helper needs CAP_NET_RAW "
           "(sudo setcap cap_net_raw+ep <path of icmpcap-helper>)";
  if (err == EAFNOSUPPORT)
    return "this kernel lacks AF_PACKET (CONFIG_PACKET); use the module source";
  return "";
}

}  // namespace icmpcap
