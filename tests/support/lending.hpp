// SPDX-License-Identifier: MIT
// tests/support/lending.hpp: the test-only switch that forces lent workers on or off in every
// run of a test binary (PLUMB_TEST_LENDING=adaptive|always|never), so that the whole suite and
// the stress harness run under each engine (tests/run.sh runs them so).
#pragma once

#include <plumb/detail/worker/lend.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace plumb::test {

// Reads PLUMB_TEST_LENDING; false (after a message) if it holds something else.
inline bool apply_lending_from_env() {
  const char* value = std::getenv("PLUMB_TEST_LENDING");
  if (value == nullptr) return true;
  const std::string_view name = value;
  using detail::Lending;
  Lending lending = Lending::adaptive;
  if (name == "always") {
    lending = Lending::always;
  } else if (name == "never") {
    lending = Lending::never;
  } else if (!name.empty() && name != "adaptive") {
    std::fprintf(stderr, "PLUMB_TEST_LENDING=%s: expected adaptive, always or never\n", value);
    return false;
  }
  detail::lending_override_for_tests().store(lending, std::memory_order_relaxed);
  return true;
}

// The lending every run of this binary uses (for tests whose promise depends on it).
inline detail::Lending forced_lending() {
  return detail::lending_override_for_tests().load(std::memory_order_relaxed);
}

}  // namespace plumb::test
