// SPDX-License-Identifier: MIT
// tests/stress/thread_stress_test.cpp: randomized thread-mode pipelines (worker counts,
// in_flight, fused stages, errors, cancellation) that must keep exact totals, report the
// injected error and leak nothing. tests/run.sh runs the [stress] tag in a loop.

#include <plumb/plumb.hpp>

#include "support/counted.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::test::Counted;

namespace {

struct Shape {
  int source_workers, middle_workers, sink_workers;
  std::int64_t source_in_flight, middle_in_flight;
  bool fuse_tail;  // a fused stage after the middle one
};

Shape random_shape(std::mt19937& random) {
  auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(random); };
  Shape shape{};
  shape.source_workers = pick(1, 3);
  shape.middle_workers = pick(1, 6);
  shape.sink_workers = pick(1, 4);
  shape.source_in_flight = shape.source_workers * pick(1, 4);
  shape.middle_in_flight = shape.middle_workers * pick(1, 4);
  shape.fuse_tail = pick(0, 1) == 1;
  return shape;
}

// Source i of n yields the values v = i, i + n, ... below count.
Generator<Counted> counted_source(int count, int fail_at) {
  const auto& me = plumb::this_worker();
  for (int v = static_cast<int>(me.index); v < count; v += static_cast<int>(me.count)) {
    if (v == fail_at) throw std::runtime_error("injected at source");
    co_yield Counted(v);
  }
}

Generator<Counted> counted_pass(Stream<Counted> in, int fail_at) {
  for (Counted& item : in) {
    if (item.value == fail_at) throw std::runtime_error("injected at middle");
    co_yield std::move(item);
  }
}

Generator<Counted> counted_double(Stream<Counted> in) {
  for (Counted& item : in) {
    item.value *= 2;
    co_yield std::move(item);
  }
}

}  // namespace

TEST_CASE("random thread-mode shapes keep the exact total and leak nothing", "[stress]") {
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 12; ++round) {
    const Shape shape = random_shape(random);
    const int count = std::uniform_int_distribution<int>(0, 3000)(random);
    INFO("round " << round << " count " << count << " workers " << shape.source_workers << "/"
                  << shape.middle_workers << "/" << shape.sink_workers << " fused " << shape.fuse_tail);
    Counted::reset();
    std::atomic<long> total{0};
    auto sink = [&total](Stream<Counted> in) {
      for (Counted& item : in) total += item.value;
    };
    auto tail = plumb::stage(counted_double);
    if (shape.fuse_tail) tail.mode(Mode::sequential);
    plumb::Pipeline pipeline{
        plumb::stage(counted_source, count, -1).workers(shape.source_workers).in_flight(shape.source_in_flight),
        plumb::stage(counted_pass, -1).workers(shape.middle_workers).in_flight(shape.middle_in_flight),
        std::move(tail), plumb::stage(sink).workers(shape.sink_workers)};
    pipeline.run();
    CHECK(total == 2L * count * (count - 1) / 2);
    CHECK(Counted::alive == 0);
    CHECK(Counted::copies == 0);
  }
}

TEST_CASE("random injected errors are the ones reported, and nothing leaks", "[stress]") {
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 12; ++round) {
    const Shape shape = random_shape(random);
    const int count = 2000;
    const int fail_at = std::uniform_int_distribution<int>(0, count - 1)(random);
    const bool at_source = std::uniform_int_distribution<int>(0, 1)(random) == 1;
    INFO("round " << round << " fail_at " << fail_at << " at_source " << at_source);
    Counted::reset();
    auto sink = [](Stream<Counted> in) {
      for (Counted& item : in) (void)item;
    };
    plumb::Pipeline pipeline{
        plumb::stage(counted_source, count, at_source ? fail_at : -1)
            .workers(shape.source_workers)
            .in_flight(shape.source_in_flight),
        plumb::stage(counted_pass, at_source ? -1 : fail_at)
            .workers(shape.middle_workers)
            .in_flight(shape.middle_in_flight)
            .name("middle"),
        plumb::stage(sink).workers(shape.sink_workers)};
    CHECK_THROWS_WITH(pipeline.run(), at_source ? "injected at source" : "injected at middle");
    REQUIRE(pipeline.last_failure().has_value());
    CHECK(pipeline.last_failure()->stage_index == (at_source ? 0u : 1u));
    CHECK(Counted::alive == 0);
  }
}

TEST_CASE("cancellation at a random moment stops the run and leaks nothing", "[stress]") {
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 8; ++round) {
    const Shape shape = random_shape(random);
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(random));
    Counted::reset();
    std::stop_source stop;
    auto sink = [](Stream<Counted> in) {
      for (Counted& item : in) (void)item;
    };
    plumb::Pipeline pipeline{
        plumb::stage(counted_source, 1 << 30, -1).workers(shape.source_workers).in_flight(shape.source_in_flight),
        plumb::stage(counted_pass, -1).workers(shape.middle_workers).in_flight(shape.middle_in_flight),
        plumb::stage(sink).workers(shape.sink_workers)};
    std::thread canceller([&] {
      std::this_thread::sleep_for(delay);
      stop.request_stop();
    });
    CHECK_THROWS_AS(pipeline.run({.stop_token = stop.get_token()}), plumb::CancelledError);
    canceller.join();
    CHECK(Counted::alive == 0);
  }
}

TEST_CASE("a consumer returning early at a random point is always reported", "[stress]") {
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 8; ++round) {
    const Shape shape = random_shape(random);
    const int stop_after = std::uniform_int_distribution<int>(0, 500)(random);
    Counted::reset();
    auto quitter = [stop_after](Stream<Counted> in) -> Generator<Counted> {
      int seen = 0;
      for (Counted& item : in) {
        if (seen++ == stop_after) co_return;
        co_yield std::move(item);
      }
    };
    auto sink = [](Stream<Counted> in) {
      for (Counted& item : in) (void)item;
    };
    plumb::Pipeline pipeline{
        plumb::stage(counted_source, 1 << 30, -1).workers(shape.source_workers).in_flight(shape.source_in_flight),
        plumb::stage(quitter).workers(shape.middle_workers).in_flight(shape.middle_in_flight),
        plumb::stage(sink).workers(shape.sink_workers)};
    CHECK_THROWS_AS(pipeline.run(), plumb::StageError);
    REQUIRE(pipeline.last_failure().has_value());
    CHECK(pipeline.last_failure()->stage_index == 1);
    CHECK(Counted::alive == 0);
  }
}

TEST_CASE("cancellation racing with the end of a run either cancels it or lets it finish",
          "[stress]") {
  // Regression: a stop request arriving while a finished run tore down its links woke freed
  // memory (found by review). Under ASan any such access fails this test.
  std::mt19937 random(std::random_device{}());
  auto sink = [](Stream<Counted> in) {
    for (Counted& item : in) (void)item;
  };
  int cancelled = 0;
  int finished = 0;
  for (int round = 0; round < 40; ++round) {
    Counted::reset();
    std::stop_source stop;
    plumb::Pipeline pipeline{plumb::stage(counted_source, 200, -1).in_flight(4),
                             plumb::stage(counted_pass, -1).workers(2), plumb::stage(sink)};
    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 2000)(random));
    std::thread canceller([&] {
      std::this_thread::sleep_for(delay);
      stop.request_stop();
    });
    try {
      pipeline.run({.stop_token = stop.get_token()});
      ++finished;
    } catch (const plumb::CancelledError&) {
      ++cancelled;
    }
    canceller.join();
    CHECK(Counted::alive == 0);
  }
  CHECK(cancelled + finished == 40);
}
