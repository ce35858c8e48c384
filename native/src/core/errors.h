// Errors of the core: every failure names the operation, the errno and the remedy.
#pragma once

#include <stdexcept>
#include <string>

namespace icmpcap {

// "EPERM", "ENODEV", ... ("E<number>" when glibc does not know the name).
std::string errno_name(int err);

class Error : public std::runtime_error {
 public:
  Error(int err, const std::string& message) : std::runtime_error(message), err_(err) {}
  int err() const { return err_; }
  std::string code() const { return err_ ? errno_name(err_) : std::string("EINVAL"); }

 private:
  int err_;
};

// "icmpcap: <op>: <ENAME> — <fix>"; without a fix, strerror(err) takes its place.
std::string format_error(const std::string& op, int err, const std::string& fix);
[[noreturn]] void throw_error(const std::string& op, int err, const std::string& fix = "");

}  // namespace icmpcap
