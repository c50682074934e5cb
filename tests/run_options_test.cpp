// SPDX-License-Identifier: MIT
// tests/run_options_test.cpp: RunOptions at their limits: durations of duration::max(), and a
// progress callback that throws where a stage could catch it.

#include <plumb/plumb.hpp>

#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;  // the shared stages: numbers, plus, sum_ints, ...

namespace {

// 0 .. count-1, one every `pause`: a run that lasts several of the supervisor's 10 ms ticks.
Generator<int> slow_numbers(int count, std::chrono::milliseconds pause) {
  for (int i = 0; i < count; ++i) {
    std::this_thread::sleep_for(pause);
    co_yield i;
  }
}

// A sink that treats an exception from its input as the end of its work: the kind of stage
// that hid a progress callback's exception (issue 18, item 8).
long sum_until_std_exception(Stream<int> in) {
  long sum = 0;
  try {
    for (int x : in) sum += x;
  } catch (const std::exception&) {
    return -1;
  }
  return sum;
}

// The same, for every exception.
long sum_until_any_exception(Stream<int> in) {
  long sum = 0;
  try {
    for (int x : in) sum += x;
  } catch (...) {
    return -1;
  }
  return sum;
}

}  // namespace

TEST_CASE("durations of duration::max() mean never: one final progress report, no timeout",
          "[run_options]") {
  // Regression (issue 18, item 9): start + progress_interval overflowed the signed tick count,
  // so the report of a max() interval was always due: called on every packet or every tick.
  constexpr auto kNever = std::chrono::steady_clock::duration::max();
  plumb::Pipeline pipeline{plumb::stage(slow_numbers, 12, 5ms), plumb::stage(plus, 1),
                           plumb::stage(sum_ints)};
  for (const Mode mode : {Mode::sequential, Mode::thread, Mode::process}) {
    CAPTURE(mode);
    int reports = 0;
    int unfinished_reports = 0;
    const long sum = pipeline.run({.mode = mode,
                                   .inactivity_timeout = kNever,
                                   .grace_period = kNever,
                                   .progress =
                                       [&](const plumb::Stats& stats) {
                                         ++reports;
                                         if (!stats.finished) ++unfinished_reports;
                                       },
                                   .progress_interval = kNever});
    CHECK(sum == 78);  // 1 + 2 + ... + 12
    CHECK(unfinished_reports == 0);
    CHECK(reports == 1);  // the final report only
  }
}

TEST_CASE("a progress callback's exception is the run's error even where a stage catches its input's errors",
          "[run_options][errors]") {
  // Regression (issue 18, item 8): in a sequential run the callback runs inside the sink's
  // pull, so its exception reached the sink, which swallowed it; run() then reported a
  // StageError of stage 1 (a sink returning early) instead of the callback's error.
  // A callback that fails once (say, a transient write error), as the first report: later
  // reports succeed, so nothing but the first failure can surface it.
  int reports = 0;
  auto throwing_once = [&reports](const plumb::Stats&) {
    if (reports++ == 0) throw std::runtime_error("progress broke");
  };
  plumb::Pipeline catches_std{plumb::stage(numbers, 1000), plumb::stage(sum_until_std_exception)};
  plumb::Pipeline catches_all{plumb::stage(numbers, 1000), plumb::stage(plus, 1), plumb::stage(sum_until_any_exception)};
  for (const Mode mode : {Mode::sequential, Mode::thread}) {
    CAPTURE(mode);
    const plumb::RunOptions options{.mode = mode, .progress = throwing_once, .progress_interval = 0ms};
    reports = 0;
    CHECK_THROWS_WITH(catches_std.run(options), "progress broke");
    reports = 0;
    CHECK_THROWS_WITH(catches_all.run(options), "progress broke");
  }
  // The original object, not a plumb error wrapping it.
  try {
    reports = 0;
    catches_std.run({.mode = Mode::sequential, .progress = throwing_once, .progress_interval = 0ms});
    FAIL("run() succeeded although the progress callback threw");
  } catch (const plumb::Error& error) {
    FAIL("run() threw a plumb error instead of the callback's: " << error.what());
  } catch (const std::runtime_error& error) {
    CHECK(std::string(error.what()) == "progress broke");
  }
}
