#include "errors.h"

#include <string.h>

namespace icmpcap {

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

std::string format_error(const std::string& op, int err, const std::string& detail) {
  std::string msg = "icmpcap: " + op + ": " + errno_name(err) + " \u2014 ";
  msg +=
      detail.empty() ? std::string(strerrordesc_np(err) ? strerrordesc_np(err) : "error") : detail;
  return msg;
}

void throw_error(const std::string& op, int err, const std::string& detail) {
  throw Error(err, format_error(op, err, detail), op);
}

void throw_kind(const std::string& kind, const std::string& op, int err, const std::string& detail,
                ErrorContext context) {
  throw Error(err, format_error(op, err, detail), op, kind, std::move(context));
}

}  // namespace icmpcap
