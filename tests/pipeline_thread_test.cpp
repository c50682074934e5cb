// SPDX-License-Identifier: MIT
// tests/pipeline_thread_test.cpp: what only thread mode and fused stages do: a source's workers,
// packets in flight, the first error of several, where fused stages run, plans that cannot work.
// The behaviour every mode shares is tested in each mode in pipeline_test.cpp.

#include <plumb/plumb.hpp>

#include "support/eventually.hpp"
#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;  // the shared stages: numbers, plus, sum_ints, ...

TEST_CASE("thread mode: a source with several workers splits its work through this_worker",
          "[thread]") {
  auto source = [](int count) -> Generator<int> {
    const plumb::WorkerInfo me = plumb::this_worker();
    for (int i = static_cast<int>(me.index); i < count; i += static_cast<int>(me.count)) co_yield i;
  };
  std::mutex mutex;
  std::multiset<int> seen;
  auto sink = [&](Stream<int> in) {
    for (int x : in) {
      std::lock_guard lock(mutex);
      seen.insert(x);
    }
  };
  plumb::Pipeline pipeline{plumb::stage(source, 1000).workers(4), plumb::stage(plus, 0).workers(3),
                           plumb::stage(sink).workers(2)};
  pipeline.run();
  REQUIRE(seen.size() == 1000);  // nothing lost, nothing duplicated
  int expected = 0;
  for (int x : seen) CHECK(x == expected++);
}

TEST_CASE("thread mode: a producer is not resumed to build a packet until a slot is free",
          "[thread]") {
  std::atomic<int> built{0};
  std::atomic<bool> release{false};
  auto source = [&built](int count) -> Generator<int> {
    for (int i = 0; i < count; ++i) {
      ++built;
      co_yield i;
    }
  };
  auto sink = [&](Stream<int> in) {
    long sum = 0;
    for (int x : in) {
      while (!release) std::this_thread::sleep_for(1ms);  // hold the first packet
      sum += x;
    }
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(source, 100).in_flight(3), plumb::stage(sink)};
  long result = 0;
  // Pinned: the source builds packets ahead on its own thread (lent to the sink, it would
  // build each when the sink asks: docs/design/lending.md, "What changes for users").
  std::thread runner([&] { result = pipeline.run({.scheduling = plumb::Scheduling::pinned}); });
  // 3 packets in flight: the one the sink holds and two queued. A fourth needs a free slot.
  const bool filled = eventually([&] { return built == 3; });
  std::this_thread::sleep_for(50ms);
  const int built_while_held = built;
  release = true;
  runner.join();
  CHECK(filled);
  CHECK(built_while_held == 3);
  CHECK(result == 99 * 100 / 2);
}

TEST_CASE("thread mode: in_flight 1 everywhere runs strictly one stage at a time", "[thread]") {
  std::atomic<int> active{0};
  std::atomic<int> most_active{0};
  auto busy = [&] {
    const int now = ++active;
    int seen = most_active.load();
    while (now > seen && !most_active.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(200us);  // widen the window in which an overlap would show
    --active;
  };
  auto source = [&](int count) -> Generator<int> {
    for (int i = 0; i < count; ++i) {
      busy();
      co_yield i;
    }
  };
  auto middle = [&](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      busy();
      co_yield x;
    }
  };
  std::vector<int> order;
  auto sink = [&](Stream<int> in) {
    for (int x : in) {
      busy();
      order.push_back(x);
    }
  };
  plumb::Pipeline pipeline{plumb::stage(source, 100).in_flight(1), plumb::stage(middle).in_flight(1),
                           plumb::stage(middle).in_flight(1), plumb::stage(sink)};
  pipeline.run();
  CHECK(most_active == 1);
  REQUIRE(order.size() == 100);
  CHECK(std::is_sorted(order.begin(), order.end()));
}

TEST_CASE("thread mode: the first error wins even when others then fail because of the shutdown",
          "[thread][errors]") {
  auto root = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 50) throw std::invalid_argument("root cause");
      co_yield x;
    }
  };
  // A stage that turns *anything* it sees, including plumb's internal stop signal, into its own
  // error: a secondary failure caused by the shutdown.
  auto swallow = [](Stream<int> in) {
    try {
      for (int x : in) (void)x;
    } catch (...) {
      throw std::runtime_error("secondary failure");
    }
  };
  for (int round = 0; round < 20; ++round) {
    plumb::Pipeline pipeline{plumb::stage(forever).in_flight(64), plumb::stage(root).in_flight(64),
                             plumb::stage(swallow).workers(4)};
    CHECK_THROWS_MATCHES(pipeline.run(), std::invalid_argument, Catch::Matchers::Message("root cause"));
    REQUIRE(pipeline.last_failure().has_value());
    CHECK(pipeline.last_failure()->stage_index == 1);
  }
}

TEST_CASE("fused stages run inside the workers of the stage before them", "[thread][fused]") {
  std::mutex mutex;
  std::vector<std::pair<std::thread::id, std::thread::id>> pairs;  // (middle, fused) per packet
  thread_local std::thread::id middle_thread;
  auto middle = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      middle_thread = std::this_thread::get_id();
      co_yield x;
    }
  };
  std::vector<plumb::WorkerInfo> fused_infos;  // checked on the test's thread: Catch2 is not thread-safe
  auto fused = [&](Stream<int> in) -> Generator<int> {
    {
      std::lock_guard lock(mutex);
      fused_infos.push_back(plumb::this_worker());
    }
    for (int x : in) {
      {
        std::lock_guard lock(mutex);
        pairs.emplace_back(middle_thread, std::this_thread::get_id());
      }
      co_yield x * 2;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 300), plumb::stage(middle).workers(3),
                           plumb::stage(fused).mode(Mode::sequential), plumb::stage(sum_ints)};
  CHECK(pipeline.run() == 299L * 300);
  REQUIRE(pairs.size() == 300);
  for (const auto& [producer, consumer] : pairs) CHECK(producer == consumer);
  REQUIRE(fused_infos.size() == 3);  // one instance of the fused stage per worker of stage 1
  for (const plumb::WorkerInfo& info : fused_infos) {
    CHECK(info.stage_index == 2);
    CHECK(info.count == 3);  // the workers of the group: those of stage 1
  }
}

TEST_CASE("a sequential source runs in the calling thread while later stages use threads",
          "[thread][fused]") {
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id source_thread;
  std::set<std::thread::id> sink_threads;
  std::mutex mutex;
  auto source = [&](int count) -> Generator<int> {
    source_thread = std::this_thread::get_id();
    for (int i = 0; i < count; ++i) co_yield i;
  };
  auto sink = [&](Stream<int> in) {
    for (int x : in) {
      (void)x;
      std::lock_guard lock(mutex);
      sink_threads.insert(std::this_thread::get_id());
    }
  };
  plumb::Pipeline pipeline{plumb::stage(source, 500), plumb::stage(plus, 1).mode(Mode::thread).workers(2),
                           plumb::stage(sink).mode(Mode::thread)};
  pipeline.run({.mode = Mode::sequential, .inactivity_timeout = 10s});
  CHECK(source_thread == caller);
  REQUIRE(sink_threads.size() == 1);
  CHECK(*sink_threads.begin() != caller);
}

TEST_CASE("thread mode rejects plans that cannot work before anything runs", "[thread][config]") {
  std::atomic<int> started{0};
  auto source = [&started]() -> Generator<int> {
    ++started;
    co_yield 1;
  };
  auto expect_config_error = [&](auto pipeline, const std::string& text) {
    try {
      pipeline.run();
      FAIL("run() accepted an invalid configuration: " << text);
    } catch (const plumb::ConfigError& error) {
      CHECK_THAT(error.what(), Catch::Matchers::Contains(text));
    }
    CHECK(started == 0);
  };
  expect_config_error(plumb::Pipeline{plumb::stage(source), plumb::stage(plus, 1).mode(Mode::sequential).workers(3),
                                      plumb::stage(sum_ints)},
                      "stage 1: the stage is fused (mode sequential)");
  expect_config_error(plumb::Pipeline{plumb::stage(source).workers(4).in_flight(4),
                                      plumb::stage(plus, 1).mode(Mode::sequential).in_flight(2),
                                      plumb::stage(sum_ints)},
                      "in_flight(2) is less than the 4 workers of stage 0");
  auto boxes = []() -> Generator<std::unique_ptr<int>> { co_yield std::make_unique<int>(1); };
  auto unbox = [](Stream<std::unique_ptr<int>> in) {
    for (auto& box : in) (void)box;
  };
  expect_config_error(plumb::Pipeline{plumb::stage(boxes).name("boxes"), plumb::stage(unbox).mode(Mode::process)},
                      "stage 0 ('boxes') sends std::unique_ptr<int, std::default_delete<int> > to stage 1 "
                      "across a process boundary, but that type cannot be serialized");
  // The same pipeline is fine within one process.
  plumb::Pipeline in_process{plumb::stage(boxes), plumb::stage(unbox)};
  in_process.run();
}

TEST_CASE("a progress callback that throws becomes the run's error instead of terminating",
          "[thread][errors]") {
  auto throwing = [](const plumb::Stats&) { throw std::runtime_error("progress broke"); };
  plumb::Pipeline threaded{plumb::stage(forever), plumb::stage(plus, 1), plumb::stage(sum_ints)};
  CHECK_THROWS_WITH(threaded.run({.progress = throwing, .progress_interval = 1ms}), "progress broke");
  // The same with the source in the calling thread, where a helper thread supervises.
  plumb::Pipeline mixed{plumb::stage(forever), plumb::stage(plus, 1).mode(Mode::thread),
                        plumb::stage(sum_ints).mode(Mode::thread)};
  CHECK_THROWS_WITH(mixed.run({.mode = Mode::sequential, .progress = throwing, .progress_interval = 1ms}),
                    "progress broke");
}

TEST_CASE("regression (plumb_stress seed 12): a value sink fused into several workers is rejected",
          "[thread][fused][config]") {
  // Each of the three workers ran its own copy of the fused sink, and run() returned the value
  // of one of them: the other packets' share of the result was lost without a word.
  auto sink_spec = plumb::stage(sum_ints).mode(Mode::sequential);
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(plus, 0).workers(3).name("add"),
                           sink_spec};
  for (const Mode mode : {Mode::thread, Mode::process}) {
    CHECK_THROWS_WITH(pipeline.run(mode),
                      Catch::Matchers::Contains("stage 2: a sink that returns a value must run in one "
                                                "worker, but it is fused (mode sequential) into the 3 "
                                                "workers of stage 1"));
  }
  // The same for a sink fused into a source with several workers, and for a sink fused (by a
  // sequential run) into a stage that asks for threads of its own.
  plumb::Pipeline into_source{plumb::stage(numbers, 100).workers(2), sink_spec};
  CHECK_THROWS_WITH(into_source.run(),
                    Catch::Matchers::Contains("fused (mode sequential) into the 2 workers of stage 0"));
  plumb::Pipeline sequential_run{plumb::stage(numbers, 100),
                                 plumb::stage(plus, 0).mode(Mode::thread).workers(3), plumb::stage(sum_ints)};
  CHECK_THROWS_WITH(sequential_run.run(Mode::sequential),
                    Catch::Matchers::Contains("fused (mode sequential) into the 3 workers of stage 1"));
  // With one worker, or in a sequential run (every group has one worker), the fused sink is fine.
  plumb::Pipeline one{plumb::stage(numbers, 100), plumb::stage(plus, 0), sink_spec};
  CHECK(one.run() == 4950);
  CHECK(pipeline.run(Mode::sequential) == 4950);
}
