// SPDX-License-Identifier: MIT
// tests/worker_test.cpp: plumb::this_worker() inside and outside a pipeline.

#include <plumb/plumb.hpp>

#include "support/modes.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<plumb::WorkerInfo> seen;

plumb::Generator<int> source(int count) {
  seen.push_back(plumb::this_worker());
  for (int i = 0; i < count; ++i) co_yield i;
  seen.push_back(plumb::this_worker());
}

plumb::Generator<int> middle(plumb::Stream<int> in) {
  for (int x : in) {
    seen.push_back(plumb::this_worker());
    co_yield x;
  }
}

void sink(plumb::Stream<int> in) {
  for (int x : in) {
    (void)x;
    seen.push_back(plumb::this_worker());
  }
}

}  // namespace

TEST_CASE("this_worker outside a pipeline is a single anonymous worker", "[worker]") {
  const plumb::WorkerInfo info = plumb::this_worker();
  CHECK(info.stage_name.empty());
  CHECK(info.stage_index == 0);
  CHECK(info.index == 0);
  CHECK(info.count == 1);
}

TEST_CASE("in sequential mode each fused stage sees its own identity", "[worker]") {
  seen.clear();
  plumb::Pipeline pipeline{plumb::stage(source, 2).name("src").workers(3),
                           plumb::stage(middle).workers(2), plumb::stage(sink).name("out")};
  pipeline.run(plumb::Mode::sequential);
  // source start, then per packet: middle, sink; then source end.
  REQUIRE(seen.size() == 6);
  CHECK(seen[0].stage_name == "src");
  CHECK(seen[0].stage_index == 0);
  CHECK(seen[0].count == 1);  // workers are validated but not used in sequential mode
  for (std::size_t packet = 0; packet < 2; ++packet) {
    CHECK(seen[1 + 2 * packet].stage_name == "stage 1");
    CHECK(seen[1 + 2 * packet].stage_index == 1);
    CHECK(seen[2 + 2 * packet].stage_name == "out");
    CHECK(seen[2 + 2 * packet].stage_index == 2);
  }
  CHECK(seen[5].stage_index == 0);
  CHECK(plumb::this_worker().stage_name.empty());  // restored after the run
}

namespace {

// A source that waits on "something outside plumb" (here: nothing ever arrives) after its first
// packet, checking stop_requested() between waits, as a broker client does. Without the check
// it would never return, and the run would wait for it forever (thread mode) or until the grace
// period kills it (process mode).
plumb::Generator<int> one_then_wait() {
  co_yield 1;
  while (!plumb::stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

long sum_of(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

void failing_sink(plumb::Stream<int> in) {
  for (int x : in) throw std::runtime_error("sink failed on " + std::to_string(x));
}

void check_stop_requested(plumb::Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(one_then_wait).in_flight(2), plumb::stage(failing_sink)};
  const auto start = std::chrono::steady_clock::now();
  // A grace period longer than the test's timeout: in process mode the source must return by
  // itself, not be killed.
  CHECK_THROWS_WITH(pipeline.run({.mode = mode, .grace_period = std::chrono::seconds(600)}), "sink failed on 1");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));  // a bound, not a measurement
}

}  // namespace

TEST_CASE("stop_requested is false outside a pipeline", "[worker]") {
  CHECK_FALSE(plumb::stop_requested());
  std::vector<bool> answers;
  for (int x : one_then_wait()) {
    answers.push_back(plumb::stop_requested() || x != 1);
    break;  // the generator itself would wait forever outside a pipeline
  }
  CHECK(answers == std::vector<bool>{false});
}

TEST_CASE("stop_requested lets a source that waits outside plumb end once another stage failed",
          "[worker][thread][process]") {
  const plumb::Mode mode = GENERATE(plumb::test::modes({plumb::Mode::thread, plumb::Mode::process}));
  INFO("mode " << plumb::test::mode_name(mode));
  check_stop_requested(mode);
}

TEST_CASE("stop_requested is true in a source after the run was cancelled", "[worker][thread]") {
  std::stop_source stop;
  plumb::Pipeline pipeline{plumb::stage(one_then_wait).in_flight(2), plumb::stage(sum_of)};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.request_stop();
  });
  CHECK_THROWS_AS(pipeline.run({.stop_token = stop.get_token()}), plumb::CancelledError);
  canceller.join();
}
