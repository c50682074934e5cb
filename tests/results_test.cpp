// SPDX-License-Identifier: MIT
// tests/results_test.cpp: Pipeline::stream(): the last stage's packets as a range in the calling
// thread, in every mode: all packets, the caller's in_flight, early exit, errors, crashes.

#include <plumb/plumb.hpp>

#include "support/eventually.hpp"
#include "support/modes.hpp"
#include "support/shared_counter.hpp"
#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;

namespace {


Generator<std::string> to_text(Stream<int> in) {
  for (int x : in) {
    std::string text = std::to_string(x);
    co_yield text;
  }
}

Generator<int> fail_at(Stream<int> in, int bad) {
  for (int x : in) {
    if (x == bad) throw std::runtime_error("bad packet " + std::to_string(x));
    co_yield x;
  }
}

Generator<int> count_yields(Stream<int> in, std::atomic<long>* yields) {
  for (int x : in) {
    yields->fetch_add(1);
    co_yield x;
  }
}

Generator<int> crash_at(Stream<int> in, int bad) {
  for (int x : in) {
    if (x == bad) ::raise(SIGKILL);
    co_yield x;
  }
}

std::vector<std::string> expected_text(int count) {
  std::vector<std::string> texts;
  for (int i = 0; i < count; ++i) texts.push_back(std::to_string(i + 1));
  return texts;
}

// Every packet arrives, in order (one worker per stage), as the caller's own objects.
void check_all_packets(Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000).in_flight(4), plumb::stage(plus, 1),
                           plumb::stage(to_text).in_flight(3).name("text")};
  std::vector<std::string> seen;
  for (std::string& text : pipeline.stream(mode)) seen.push_back(std::move(text));
  CHECK(seen == expected_text(1000));
  CHECK_FALSE(pipeline.last_failure().has_value());
  // The caller is the last stage of the statistics, and took every packet.
  const plumb::Stats& stats = pipeline.last_stats();
  REQUIRE(stats.stages.size() == 4);
  CHECK(stats.stages.back().name == "caller");
  CHECK(stats.stages.back().packets_in == 1000);
  CHECK(stats.finished);
  // The pipeline can stream again, and run() is not needed for it.
  long again = 0;
  for (const std::string& text : pipeline.stream(mode)) again += std::stol(text);
  CHECK(again == 1000 * 1001 / 2);
}

// Leaving the loop early stops a pipeline whose source never ends, without an error.
void check_early_exit(Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(forever).in_flight(2), plumb::stage(plus, 1).workers(2)};
  for (int round = 0; round < 3; ++round) {
    int taken = 0;
    for (int x : pipeline.stream(mode)) {
      CHECK(x > 0);
      if (++taken == 5) break;
    }
    CHECK(taken == 5);
    CHECK_FALSE(pipeline.last_failure().has_value());
  }
  // close() before the end: the same, and the Results is then empty.
  auto results = pipeline.stream(mode);
  auto it = results.begin();
  REQUIRE(it != results.end());
  CHECK_NOTHROW(results.close());
  CHECK(results.begin() == results.end());
}

// A stage's error is thrown from the iteration, after the packets before it.
void check_error(Mode mode) {
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(fail_at, 40).name("picky"),
                           plumb::stage(plus, 0)};
  std::vector<int> seen;
  auto iterate = [&] {
    for (int x : pipeline.stream(mode)) seen.push_back(x);
  };
  CHECK_THROWS_AS(iterate(), std::runtime_error);
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "picky");
  CHECK(seen.size() <= 40);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<int>(i));
  CHECK_FALSE(pipeline.last_stats().finished);
}

}  // namespace

TEST_CASE("stream: every packet in order as the caller's own objects, and again", "[stream][process]") {
  const Mode mode = GENERATE(modes({Mode::sequential, Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_all_packets(mode);
}

TEST_CASE("stream, sequential: the stages run in the calling thread, inside the loop's ++",
          "[stream]") {
  const auto caller = std::this_thread::get_id();
  std::vector<std::thread::id> where;
  auto record = [&where](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      where.push_back(std::this_thread::get_id());
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 5), plumb::stage(record)};
  int count = 0;
  for (int x : pipeline.stream(Mode::sequential)) {
    CHECK(x == count);
    // The stage has produced exactly this packet: it runs inside the loop's ++.
    CHECK(where.size() == static_cast<std::size_t>(count) + 1);
    ++count;
  }
  CHECK(count == 5);
  for (const auto& id : where) CHECK(id == caller);
}

TEST_CASE("mixed: stream from processes into a fused last stage and the caller",
          "[stream][process]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 500).mode(Mode::process),
                           plumb::stage(plus, 1).workers(3).mode(Mode::process),
                           plumb::stage(to_text).mode(Mode::sequential)};
  std::vector<long> seen;
  for (const std::string& text : pipeline.stream(Mode::thread)) seen.push_back(std::stol(text));
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen.size() == 500);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<long>(i) + 1);
}

TEST_CASE("stream, thread: a source fused into the caller's run becomes a thread", "[stream]") {
  // Stage 0 in Mode::sequential would be run by the calling thread in run(); in a stream the
  // caller iterates, so the source gets a thread of its own.
  plumb::Pipeline pipeline{plumb::stage(numbers, 300).mode(Mode::sequential),
                           plumb::stage(plus, 1).workers(2)};
  long sum = 0;
  for (int x : pipeline.stream(Mode::thread)) sum += x;
  CHECK(sum == 300L * 301 / 2);
}

TEST_CASE("stream: the last stage runs at most in_flight packets ahead of the caller", "[stream]") {
  for (const Mode mode : {Mode::thread, Mode::process}) {
    SharedCounter<long> yields;
    plumb::Pipeline pipeline{plumb::stage(forever).in_flight(8),
                             plumb::stage(count_yields, &*yields).in_flight(3).mode(mode)};
    // Pinned: the last stage runs ahead on its own thread (lent to the caller, it would make
    // each packet when the caller asks).
    auto results = pipeline.stream({.mode = mode == Mode::process ? Mode::process : Mode::thread,
                                    .scheduling = plumb::Scheduling::pinned});
    auto it = results.begin();
    REQUIRE(it != results.end());
    CHECK(*it == 0);
    // The caller holds packet 0 (one slot); the last stage fills the other two and then waits.
    CHECK(eventually([&] { return (*yields).load() >= 3; }));
    std::this_thread::sleep_for(100ms);
    CHECK((*yields).load() == 3);
    ++it;
    CHECK(*it == 1);
    CHECK(eventually([&] { return (*yields).load() >= 4; }));
    std::this_thread::sleep_for(50ms);
    CHECK((*yields).load() == 4);
  }
}

TEST_CASE("stream: leaving the loop early stops cleanly", "[stream][process]") {
  const Mode mode = GENERATE(modes({Mode::sequential, Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_early_exit(mode);
}

// The same exception type in every mode: a std::runtime_error crosses a process boundary as
// itself (pipeline_test.cpp has the rules for other types).
TEST_CASE("stream: a stage's error is thrown from the loop, after the packets before it",
          "[stream][process]") {
  const Mode mode = GENERATE(modes({Mode::sequential, Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  check_error(mode);
}

TEST_CASE("process mode: stream: a crashed worker fails the loop", "[stream][process]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(crash_at, 30).name("fragile")};
  const auto iterate = [&] {
    for (int x : pipeline.stream(Mode::process)) (void)x;
  };
  CHECK_THROWS_AS(iterate(), plumb::WorkerDiedError);
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "fragile");
}

TEST_CASE("stream, thread: close() throws an error that happened while the caller held a packet",
          "[stream]") {
  // The source never ends; its frame is destroyed only when the run stops, which the error
  // (recorded first) causes: `stopped` says the error is in.
  std::atomic<bool> stopped{false};
  struct SetOnDestroy {
    std::atomic<bool>* flag;
    ~SetOnDestroy() { *flag = true; }
  };
  auto endless = [&stopped]() -> Generator<int> {
    const SetOnDestroy guard{&stopped};
    for (int i = 0;; ++i) co_yield i;
  };
  // Fails on packet 1 only once the caller holds packet 0 (else the caller could see the error
  // before it took packet 0, from begin()).
  std::atomic<bool> holding{false};
  auto fail_second = [&holding](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 1) {
        while (!holding.load() && !plumb::stop_requested()) std::this_thread::sleep_for(1ms);
        throw std::logic_error("second packet");
      }
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(endless), plumb::stage(fail_second).in_flight(2)};
  {
    auto results = pipeline.stream();
    auto it = results.begin();
    REQUIRE(it != results.end());
    CHECK(*it == 0);
    holding = true;
    REQUIRE(eventually([&] { return stopped.load(); }));
    CHECK_THROWS_AS(results.close(), std::logic_error);
    REQUIRE(pipeline.last_failure().has_value());
  }
  // The destructor, instead, only records it.
  stopped = false;
  holding = false;
  {
    auto again = pipeline.stream();
    REQUIRE(again.begin() != again.end());
    holding = true;
    REQUIRE(eventually([&] { return stopped.load(); }));
  }
  CHECK(pipeline.last_failure().has_value());
}

TEST_CASE("stream, thread: cancelling through the stop_token ends the loop with CancelledError",
          "[stream]") {
  std::stop_source stop;
  plumb::RunOptions options;
  options.stop_token = stop.get_token();
  plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(plus, 1)};
  int taken = 0;
  const auto iterate = [&] {
    for (int x : pipeline.stream(options)) {
      (void)x;
      if (++taken == 10) stop.request_stop();
    }
  };
  CHECK_THROWS_AS(iterate(), plumb::CancelledError);
  CHECK(taken >= 10);
}

TEST_CASE("stream: a bad option is a ConfigError before anything runs", "[stream]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(plus, 1).workers(0)};
  CHECK_THROWS_AS(pipeline.stream(), plumb::ConfigError);
  // The pipeline is free again.
  plumb::Pipeline fine{plumb::stage(numbers, 3), plumb::stage(plus, 1)};
  int count = 0;
  for (int x : fine.stream()) count += x > 0 ? 1 : 0;
  CHECK(count == 3);
}
