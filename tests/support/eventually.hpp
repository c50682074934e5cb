#pragma once
// SPDX-License-Identifier: MIT
// tests/support/eventually.hpp: polling for a condition with a limit, for tests that wait on
// other threads or processes.

#include <chrono>
#include <thread>

namespace plumb::test {

// Polls `condition` every millisecond for up to `limit`; true once it held.
template <class Condition>
bool eventually(Condition condition,
                std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace plumb::test
