// A tiny test harness: TEST(name) { ... CHECK(cond) ... }; prints PASS/FAIL lines and a total.
#pragma once

#include <stdio.h>

#include <functional>
#include <string>
#include <vector>

namespace t {

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}
inline int& failures_in_case() {
  static int f = 0;
  return f;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, fn}); }
};

inline int run_all(const char* filter) {
  int passed = 0, failed = 0;
  for (auto& c : cases()) {
    if (filter && std::string(c.name).find(filter) == std::string::npos) continue;
    failures_in_case() = 0;
    try {
      c.fn();
    } catch (const std::exception& e) {
      fprintf(stderr, "  exception: %s\n", e.what());
      failures_in_case()++;
    }
    if (failures_in_case() == 0) {
      printf("PASS %s\n", c.name);
      passed++;
    } else {
      printf("FAIL %s\n", c.name);
      failed++;
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

}  // namespace t

#define TEST(name)                                   \
  static void test_##name();                         \
  static t::Register reg_##name(#name, test_##name); \
  static void test_##name()

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      t::failures_in_case()++;                                                   \
    }                                                                            \
  } while (0)

#define REQUIRE(cond)                                                              \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
      t::failures_in_case()++;                                                     \
      return;                                                                      \
    }                                                                              \
  } while (0)
