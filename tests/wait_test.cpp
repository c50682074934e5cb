// SPDX-License-Identifier: MIT
// tests/wait_test.cpp: the waits' yield policy (detail/yield_backoff.hpp), with a scripted
// clock: each yield costs what the test says, so nothing here depends on the machine's timing.

#include <plumb/detail/sync/yield_backoff.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

namespace {

using plumb::detail::PhaseEnd;
using plumb::detail::YieldBackoff;

constexpr std::int64_t kUs = 1'000;
constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kBudget = 100 * kUs;  // SpinPolicy::yield_time
constexpr int kYields = 128;                 // SpinPolicy::yields
constexpr int kPid = 100;

// A wait's yield phase on a scripted clock: yield number i costs costs[i] (the last cost
// repeats); ready() turns true on its `ready_at`-th call (never if 0).
struct ScriptedWait {
  std::vector<std::int64_t> costs;
  int ready_at = 0;
  int yields = kYields;
  std::int64_t clock = 0;  // advanced by the caller between waits
  int yielded = 0;
  int calls = 0;

  // True when ready() returned true in the yield phase.
  bool run(YieldBackoff& backoff) { return phase(backoff) == PhaseEnd::ready; }

  // How the wait's yield phase ended (slow: also when it did not yield, in a quiet period).
  PhaseEnd phase(YieldBackoff& backoff) {
    yielded = 0;
    calls = 0;
    auto ready = [&] { return ++calls == ready_at; };
    auto now = [&] { return clock; };
    auto yield = [&] {
      const std::size_t index = static_cast<std::size_t>(yielded);
      clock += index < costs.size() ? costs[index] : costs.back();
      ++yielded;
    };
    if (!backoff.may_yield(clock, [] { return kPid; })) return PhaseEnd::slow;
    return plumb::detail::yield_phase(ready, yields, kBudget, backoff, clock, now, yield,
                                      [] { return kPid; });
  }
};

// Ends a wait with a slow yield right when `backoff` lets it yield again; returns the length of
// the quiet period that follows.
std::int64_t slow_wait_after_quiet(YieldBackoff& backoff, ScriptedWait& wait) {
  wait.clock = std::max(wait.clock, backoff.quiet_until());
  wait.costs = {4 * kMs};
  wait.ready_at = 0;
  wait.run(backoff);
  return backoff.quiet_until() - wait.clock;
}

}  // namespace

TEST_CASE("a wait keeps yielding while every yield is fast, and stays free to yield", "[wait]") {
  YieldBackoff backoff;
  ScriptedWait wait{.costs = {1 * kUs}, .ready_at = 5};
  CHECK(wait.run(backoff));
  CHECK(wait.yielded == 4);
  CHECK(backoff.level() == 0);
  CHECK(backoff.may_yield(wait.clock, [] { return kPid; }));
}

TEST_CASE("the yield phase still ends after its time budget or its count of yields", "[wait]") {
  YieldBackoff backoff;
  SECTION("time: 30 us yields against a 100 us budget") {
    ScriptedWait wait{.costs = {30 * kUs}};
    CHECK_FALSE(wait.run(backoff));
    CHECK(wait.yielded == 4);  // 30, 60, 90 us are within the budget; 120 us is not
  }
  SECTION("count") {
    ScriptedWait wait{.costs = {1 * kUs}, .yields = 3};
    CHECK_FALSE(wait.run(backoff));
    CHECK(wait.yielded == 3);
  }
  CHECK(backoff.level() == 0);
}

TEST_CASE("one slow yield ends the wait's yield phase and stops the thread yielding for 1 ms",
          "[wait]") {
  YieldBackoff backoff;
  ScriptedWait wait{.costs = {1 * kUs, 1 * kUs, 4 * kMs}, .ready_at = 4};
  CHECK_FALSE(wait.run(backoff));  // ready() would have been true on its 4th call: not asked
  CHECK(wait.yielded == 3);
  CHECK(backoff.level() == 1);
  const std::int64_t slow_end = wait.clock;
  CHECK(backoff.quiet_until() == slow_end + YieldBackoff::kFirstQuiet);

  wait.clock = slow_end + YieldBackoff::kFirstQuiet - 1;
  wait.costs = {1 * kUs};
  wait.ready_at = 2;
  CHECK_FALSE(wait.run(backoff));  // the quiet period: no yield at all
  CHECK(wait.yielded == 0);
  CHECK(wait.calls == 0);

  wait.clock = slow_end + YieldBackoff::kFirstQuiet;
  CHECK(wait.run(backoff));  // over: yields again
  CHECK(wait.yielded == 1);
}

TEST_CASE("a yield at the threshold is not slow, one just above it is", "[wait]") {
  YieldBackoff backoff;
  ScriptedWait wait{.costs = {YieldBackoff::kSlowYield}, .ready_at = 2};
  CHECK(wait.run(backoff));
  CHECK(backoff.level() == 0);
  wait.costs = {YieldBackoff::kSlowYield + 1};
  CHECK_FALSE(wait.run(backoff));
  CHECK(backoff.level() == 1);
}

TEST_CASE("slow yields soon after each quiet period double it, up to about a second", "[wait]") {
  YieldBackoff backoff;
  ScriptedWait wait;
  std::int64_t expected = YieldBackoff::kFirstQuiet;
  for (int round = 0; round < 15; ++round) {
    CHECK(slow_wait_after_quiet(backoff, wait) == expected);
    if (backoff.level() < YieldBackoff::kMaxLevel) expected *= 2;
  }
  CHECK(expected == YieldBackoff::kFirstQuiet << (YieldBackoff::kMaxLevel - 1));
  CHECK(expected < 2'000 * kMs);
}

TEST_CASE("fast yielding waits after a quiet period forgive the history after 16 of them",
          "[wait]") {
  YieldBackoff backoff;
  ScriptedWait wait;
  for (int round = 0; round < 3; ++round) slow_wait_after_quiet(backoff, wait);
  REQUIRE(backoff.level() == 3);
  const auto fast_waits = [&](int count) {
    wait.clock = backoff.quiet_until();
    wait.costs = {1 * kUs};
    wait.ready_at = 3;
    for (int i = 0; i < count; ++i) REQUIRE(wait.run(backoff));
  };
  SECTION("15 fast waits, then a slow one: the period doubles") {
    fast_waits(YieldBackoff::kProbesToForgive - 1);
    CHECK(backoff.level() == 3);
    CHECK(slow_wait_after_quiet(backoff, wait) == 8 * YieldBackoff::kFirstQuiet);
  }
  SECTION("16 fast waits, then a slow one: back to 1 ms") {
    fast_waits(YieldBackoff::kProbesToForgive);
    CHECK(backoff.level() == 0);
    CHECK(slow_wait_after_quiet(backoff, wait) == YieldBackoff::kFirstQuiet);
  }
  SECTION("waits that found their condition without yielding prove nothing") {
    wait.clock = backoff.quiet_until();
    wait.ready_at = 1;
    for (int i = 0; i < 2 * YieldBackoff::kProbesToForgive; ++i) REQUIRE(wait.run(backoff));
    CHECK(backoff.level() == 3);
  }
}

TEST_CASE("a quiet period inherited through fork costs the child at most one probe", "[wait]") {
  YieldBackoff backoff;
  backoff.slow_yield(10 * kMs, [] { return kPid; });
  REQUIRE_FALSE(backoff.may_yield(10 * kMs + 1, [] { return kPid; }));
  // The child (another process id) yields at once, with a fresh history.
  CHECK(backoff.may_yield(10 * kMs + 1, [] { return kPid + 1; }));
  CHECK(backoff.level() == 0);
  CHECK(backoff.may_yield(10 * kMs + 2, [] { return kPid; }));
}
