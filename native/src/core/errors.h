// Errors of the core: every failure names the operation and the errno, and says what went
// wrong. What to do about it (setcap, join a group, modprobe) is not written here: `kind`
// names the failure and TypeScript turns it into advice, once, beside `icmpcap doctor`
// (electron/core/advice.ts).
#pragma once

#include <map>
#include <stdexcept>
#include <string>

namespace icmpcap {

// "EPERM", "ENODEV", ... ("E<number>" when glibc does not know the name).
std::string errno_name(int err);

// What the advice in TypeScript needs besides the kind: helperPath, group, device.
using ErrorContext = std::map<std::string, std::string>;

class Error : public std::runtime_error {
 public:
  Error(int err, const std::string& message, std::string op = "", std::string kind = "",
        ErrorContext context = {})
      : std::runtime_error(message),
        err_(err),
        op_(std::move(op)),
        kind_(std::move(kind)),
        context_(std::move(context)) {}
  int err() const { return err_; }
  std::string code() const { return err_ ? errno_name(err_) : std::string("EINVAL"); }
  const std::string& op() const { return op_; }
  const std::string& kind() const { return kind_; }
  const ErrorContext& context() const { return context_; }

 private:
  int err_;
  std::string op_;
  std::string kind_;
  ErrorContext context_;
};

// "icmpcap: <op>: <ENAME> — <detail>"; without a detail, strerror(err) takes its place.
std::string format_error(const std::string& op, int err, const std::string& detail);
[[noreturn]] void throw_error(const std::string& op, int err, const std::string& detail = "");
// The same, with a kind for the advice (see electron/core/advice.ts for the list).
[[noreturn]] void throw_kind(const std::string& kind, const std::string& op, int err,
                             const std::string& detail = "", ErrorContext context = {});

}  // namespace icmpcap
