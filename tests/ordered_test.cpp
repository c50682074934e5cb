// SPDX-License-Identifier: MIT
// tests/ordered_test.cpp: Stage::ordered(): the output of a stage with several workers leaves in
// the order of its input, under random per-item delays, in every mode; the window; errors.

#include <plumb/plumb.hpp>

#include "support/eventually.hpp"
#include "support/modes.hpp"
#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;

namespace {

// Input x gives (x % 4) packets x * 10 + k (none for multiples of 4), each after a random
// delay of up to `max_delay_us`.
Generator<int> jitter(Stream<int> in, int max_delay_us) {
  std::minstd_rand random(static_cast<unsigned>(::getpid()) * 7919U +
                          static_cast<unsigned>(plumb::this_worker().index));
  for (int x : in) {
    for (int k = 0; k < x % 4; ++k) {
      std::this_thread::sleep_for(std::chrono::microseconds(random() % (max_delay_us + 1)));
      int packet = x * 10 + k;
      co_yield packet;
    }
    if (x % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(random() % (max_delay_us + 1)));
  }
}

std::vector<int> expected_jitter(int count) {
  std::vector<int> packets;
  for (int x = 0; x < count; ++x) {
    for (int k = 0; k < x % 4; ++k) packets.push_back(x * 10 + k);
  }
  return packets;
}

std::vector<int> gather(Stream<int> in) {
  std::vector<int> packets;
  for (int x : in) packets.push_back(x);
  return packets;
}

Generator<int> fail_at_77(Stream<int> in) {
  for (int x : in) {
    if (x == 77) throw std::runtime_error("ordered failure");
    co_yield x;
  }
}

// Dies on input 77, after yielding the first of its two packets: its group never completes,
// and the other workers' groups wait for its turn.
Generator<int> die_at_77(Stream<int> in) {
  for (int x : in) {
    int first = x * 10;
    co_yield first;
    if (x == 77) std::_Exit(3);
    int second = x * 10 + 1;
    co_yield second;
  }
}

// One packet per input, delayed at random: the common case (a parallel map).
Generator<int> slow_square(Stream<int> in, int max_delay_us) {
  std::minstd_rand random(static_cast<unsigned>(::getpid()) * 31U +
                          static_cast<unsigned>(plumb::this_worker().index));
  for (int x : in) {
    std::this_thread::sleep_for(std::chrono::microseconds(random() % (max_delay_us + 1)));
    int square = x * x;
    co_yield square;
  }
}

void check_groups_in_order(Mode mode, std::optional<Mode> ordered_mode = std::nullopt) {
  auto ordered = plumb::stage(jitter, 400).workers(4).in_flight(8).ordered();
  if (ordered_mode) ordered.mode(*ordered_mode);
  plumb::Pipeline pipeline{plumb::stage(numbers, 400).in_flight(4), ordered, plumb::stage(gather)};
  CHECK(pipeline.run(mode) == expected_jitter(400));
}

void check_map_in_order(Mode mode, std::optional<Mode> ordered_mode = std::nullopt) {
  auto ordered = plumb::stage(slow_square, 300).workers(3).in_flight(6).ordered();
  if (ordered_mode) ordered.mode(*ordered_mode);
  plumb::Pipeline pipeline{plumb::stage(numbers, 500), ordered, plumb::stage(gather)};
  const std::vector<int> out = pipeline.run(mode);
  REQUIRE(out.size() == 500);
  for (int i = 0; i < 500; ++i) CHECK(out[static_cast<std::size_t>(i)] == i * i);
}

}  // namespace

namespace {

// The run's mode, and the ordered stage's own mode (nullopt: the run's).
struct Layout {
  const char* name;
  Mode mode;
  std::optional<Mode> ordered;
  friend bool forks(const Layout& layout) {
    return layout.mode == Mode::process || layout.ordered == Mode::process;
  }
};

}  // namespace

// Three rounds: each is a new draw of the random delays. In a sequential run everything is fused
// into the caller, so ordered() holds by construction there.
TEST_CASE("ordered: groups of 0 to 3 packets and a parallel map keep the input order under random "
          "delays",
          "[ordered][process]") {
  const Layout layout = GENERATE(modes<Layout>({
      {"sequential", Mode::sequential, std::nullopt},
      {"thread", Mode::thread, std::nullopt},
      {"process", Mode::process, std::nullopt},
      {"mixed: ordered worker processes between threads", Mode::thread, Mode::process},
  }));
  INFO(layout.name);
  for (int round = 0; round < 3; ++round) check_groups_in_order(layout.mode, layout.ordered);
  check_map_in_order(layout.mode, layout.ordered);
}

TEST_CASE("ordered, thread: the control: without ordered() a slow first item arrives late",
          "[ordered]") {
  // Shows that the other tests can see disorder: the same shape without ordered() reorders.
  // Item 0 is held until the sink has received another packet (unordered), or for 100 ms
  // (ordered: nothing can overtake it, so the wait only ends by its limit).
  for (const bool ordered : {false, true}) {
    std::atomic<int> received{0};
    auto slow_first = [&received, ordered](Stream<int> in) -> Generator<int> {
      for (int x : in) {
        if (x == 0) eventually([&] { return received.load() > 0; }, ordered ? 100ms : 10s);
        co_yield x;
      }
    };
    auto gather_counting = [&received](Stream<int> in) {
      std::vector<int> packets;
      for (int x : in) {
        packets.push_back(x);
        received.fetch_add(1);
      }
      return packets;
    };
    plumb::Pipeline pipeline{plumb::stage(numbers, 20).in_flight(20),
                             plumb::stage(slow_first).workers(2).in_flight(30).ordered(ordered),
                             plumb::stage(gather_counting)};
    const std::vector<int> out = pipeline.run();
    REQUIRE(out.size() == 20);
    CHECK((out.front() == 0) == ordered);
  }
}

TEST_CASE("ordered, thread: a worker takes a new input only within the window of in_flight",
          "[ordered]") {
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  auto hold_first = [&](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      started.fetch_add(1);
      while (x == 0 && !release.load()) std::this_thread::sleep_for(1ms);
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 50).in_flight(50),
                           plumb::stage(hold_first).workers(2).in_flight(4).ordered(),
                           plumb::stage(gather)};
  std::vector<int> out;
  std::thread runner([&] { out = pipeline.run(); });
  // Item 0 is held: the other worker may take items 1 to 3 (4 inputs in the window), no more.
  CHECK(eventually([&] { return started.load() >= 4; }));
  std::this_thread::sleep_for(100ms);
  CHECK(started.load() == 4);
  release = true;
  runner.join();
  REQUIRE(out.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(out[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("ordered, thread: packets yielded after the input ended leave after every group",
          "[ordered]") {
  auto with_trailer = [](Stream<int> in) -> Generator<int> {
    for (int x : in) co_yield x;
    int trailer = -1 - static_cast<int>(plumb::this_worker().index);
    co_yield trailer;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100),
                           plumb::stage(with_trailer).workers(3).in_flight(6).ordered(),
                           plumb::stage(gather)};
  const std::vector<int> out = pipeline.run();
  REQUIRE(out.size() == 103);
  for (int i = 0; i < 100; ++i) CHECK(out[static_cast<std::size_t>(i)] == i);
  std::vector<int> trailers(out.begin() + 100, out.end());
  std::sort(trailers.begin(), trailers.end());
  CHECK(trailers == std::vector<int>{-3, -2, -1});
}

TEST_CASE("ordered, thread: packets parked when the run stops are destroyed", "[ordered]") {
  // Item 0 is held until the run stops and item 5 fails: the items before 5 that the failing
  // worker finished are parked (their turn never comes) when the run stops.
  auto counted = std::make_shared<std::atomic<int>>(0);
  struct Tracked {
    std::shared_ptr<std::atomic<int>> live;
    explicit Tracked(std::shared_ptr<std::atomic<int>> count) : live(std::move(count)) { ++*live; }
    Tracked(const Tracked& other) : live(other.live) { ++*live; }
    Tracked(Tracked&& other) noexcept : live(other.live) { ++*live; }
    Tracked& operator=(const Tracked&) = delete;
    ~Tracked() { --*live; }
  };
  auto make = [counted](Stream<int> in) -> Generator<Tracked> {
    for (int x : in) {
      while (x == 0 && !plumb::stop_requested()) std::this_thread::sleep_for(1ms);
      if (x == 5) throw std::runtime_error("stop here");
      Tracked packet(counted);
      co_yield std::move(packet);
    }
  };
  auto drain = [](Stream<Tracked> in) {
    for (const Tracked& packet : in) (void)packet;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100).in_flight(8),
                           plumb::stage(make).workers(3).in_flight(6).ordered(),
                           plumb::stage(drain)};
  CHECK_THROWS_WITH(pipeline.run(), "stop here");
  CHECK(counted->load() == 0);
}

TEST_CASE("ordered: stream() of an ordered last stage, with an early exit", "[ordered][stream]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10'000),
                           plumb::stage(slow_square, 50).workers(4).in_flight(8).ordered()};
  int expected = 0;
  for (int square : pipeline.stream()) {
    CHECK(square == expected * expected);
    if (++expected == 200) break;
  }
  CHECK(expected == 200);
  CHECK_FALSE(pipeline.last_failure().has_value());
}

// The same exception type and message in every mode: a std::runtime_error crosses a process
// boundary as itself.
TEST_CASE("ordered: an error in an ordered stage stops the run", "[ordered][process]") {
  const Mode mode = GENERATE(modes({Mode::thread, Mode::process}));
  INFO("mode " << mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000),
                           plumb::stage(fail_at_77).workers(3).in_flight(3).ordered().name("ord"),
                           plumb::stage(gather).mode(Mode::thread)};
  CHECK_THROWS_WITH(pipeline.run(mode), "ordered failure");
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "ord");
}

TEST_CASE("process mode: ordered: a worker that dies in the middle of its group fails the run",
          "[ordered][process]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000),
                           plumb::stage(die_at_77).workers(3).in_flight(6).ordered().name("ord"),
                           plumb::stage(gather).mode(Mode::thread)};
  try {
    pipeline.run(Mode::process);
    FAIL("the run did not fail");
  } catch (const plumb::WorkerDiedError& error) {
    CHECK(error.stage_name() == "ord");
  }
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "ord");
}

TEST_CASE("ordered: a packet yielded before the first input is an error naming the stage",
          "[ordered]") {
  auto header_first = [](Stream<int> in) -> Generator<int> {
    int header = -1;
    co_yield header;
    for (int x : in) co_yield x;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 10),
                           plumb::stage(header_first).workers(2).ordered().name("header"),
                           plumb::stage(gather)};
  CHECK_THROWS_WITH(pipeline.run(), Catch::Contains("'header'") &&
                                        Catch::Contains("before it took its first input"));
}

TEST_CASE("ordered: where it cannot apply is a ConfigError naming the stage", "[ordered]") {
  plumb::Pipeline on_source{plumb::stage(numbers, 10).workers(2).ordered(), plumb::stage(gather)};
  CHECK_THROWS_WITH(on_source.run(), Catch::Contains("stage 0") && Catch::Contains("a source has no input"));
  auto drop = [](Stream<int> in) {
    for (int x : in) (void)x;
  };
  plumb::Pipeline on_sink{plumb::stage(numbers, 10), plumb::stage(drop).workers(2).ordered()};
  CHECK_THROWS_WITH(on_sink.run(), Catch::Contains("stage 1") && Catch::Contains("a sink has no output"));
  plumb::Pipeline on_fused{plumb::stage(numbers, 10), plumb::stage(plus, 1).workers(2),
                           plumb::stage(plus, 2).mode(Mode::sequential).ordered(),
                           plumb::stage(gather)};
  CHECK_THROWS_WITH(on_fused.run(), Catch::Contains("stage 2") && Catch::Contains("put .ordered() on the stage"));
  plumb::Pipeline fused_sink{plumb::stage(numbers, 10), plumb::stage(plus, 1).workers(2).ordered(),
                             plumb::stage(drop).mode(Mode::sequential)};
  CHECK_THROWS_WITH(fused_sink.run(), Catch::Contains("stage 1") && Catch::Contains("no output to order"));
  // One worker: nothing to reorder, allowed.
  plumb::Pipeline single{plumb::stage(numbers, 10), plumb::stage(plus, 0).ordered(),
                         plumb::stage(gather)};
  CHECK(single.run() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}
