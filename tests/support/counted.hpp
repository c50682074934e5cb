#pragma once
// SPDX-License-Identifier: MIT
// tests/support/counted.hpp: a payload that counts its constructions, copies and destructions.

#include <atomic>

namespace plumb::test {

// Every live Counted is counted in `alive`; copies are counted separately so that tests can
// prove that plumb moves packets instead of copying them.
struct Counted {
  static inline std::atomic<long> alive{0};
  static inline std::atomic<long> copies{0};

  static void reset() {
    alive = 0;
    copies = 0;
  }

  explicit Counted(int v = 0) : value(v) { ++alive; }
  Counted(const Counted& other) : value(other.value) {
    ++alive;
    ++copies;
  }
  Counted(Counted&& other) noexcept : value(other.value) {
    other.value = -1;
    ++alive;
  }
  Counted& operator=(const Counted& other) {
    value = other.value;
    ++copies;
    return *this;
  }
  Counted& operator=(Counted&& other) noexcept {
    value = other.value;
    other.value = -1;
    return *this;
  }
  ~Counted() { --alive; }

  int value;
};

// A move-only payload.
struct MoveOnly {
  explicit MoveOnly(int v = 0) : value(v) {}
  MoveOnly(MoveOnly&&) noexcept = default;
  MoveOnly& operator=(MoveOnly&&) noexcept = default;
  MoveOnly(const MoveOnly&) = delete;
  MoveOnly& operator=(const MoveOnly&) = delete;
  int value;
};

}  // namespace plumb::test
