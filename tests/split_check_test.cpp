// SPDX-License-Identifier: MIT
// tests/split_check_test.cpp: a source stage with several workers must split its work by
// this_worker() (or say .unpartitioned()): otherwise every packet would come out once per worker.

#include <plumb/graph.hpp>
#include <plumb/plumb.hpp>

#include "support/modes.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

using plumb::Mode;

// Every worker makes 0..count-1: doubled output with two workers.
plumb::Generator<int> whole(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

// Each worker makes its share.
plumb::Generator<int> split(int count) {
  const plumb::WorkerInfo& me = plumb::this_worker();
  for (int i = int(me.index); i < count; i += int(me.count)) co_yield i;
}

// Asks this_worker() only after its first packet: too late.
plumb::Generator<int> asks_late(int count) {
  co_yield -1;
  const plumb::WorkerInfo& me = plumb::this_worker();
  for (int i = int(me.index); i < count; i += int(me.count)) co_yield i;
}

// A plain callable that asks this_worker() before it makes the generator: it splits.
plumb::Generator<int> range(int first, int step, int count) {
  for (int i = first; i < count; i += step) co_yield i;
}
plumb::Generator<int> split_outside(int count) {
  const plumb::WorkerInfo& me = plumb::this_worker();
  return range(int(me.index), int(me.count), count);
}

struct Tally {
  long sum = 0;
  long packets = 0;
  bool operator==(const Tally&) const = default;
};
Tally tally(plumb::Stream<int> in) {
  Tally result;
  for (int x : in) {
    result.sum += x;
    ++result.packets;
  }
  return result;
}

}  // namespace

TEST_CASE("a source with 2 workers that never asks this_worker() stops the run at its first packet",
          "[split]") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(whole, 100).workers(2).name("numbers"),
                           plumb::stage(tally)};
  try {
    (void)pipeline.run(mode);
    FAIL("the run did not fail");
  } catch (const plumb::StageError& error) {
    const std::string what = error.what();
    CAPTURE(what);
    CHECK(what.rfind("plumb.stage_error: stage 0 ('numbers') has 2 workers, and worker ", 0) == 0);
    CHECK(what.find("without asking plumb::this_worker()") != std::string::npos);
    CHECK(what.find("each packet would come out 2 times") != std::string::npos);
    CHECK(what.find(".unpartitioned()") != std::string::npos);
    CHECK(error.stage_index() == 0);
    CHECK(error.stage_name() == "numbers");
  }
  const auto failure = pipeline.last_failure();
  REQUIRE(failure.has_value());
  CHECK(failure->stage_index == 0);
}

TEST_CASE("a source that asks this_worker() only after its first packet is stopped too", "[split]") {
  plumb::Pipeline pipeline{plumb::stage(asks_late, 10).workers(3), plumb::stage(tally)};
  CHECK_THROWS_WITH(pipeline.run(Mode::thread),
                    Catch::Contains("stage 0 has 3 workers") &&
                        Catch::Contains("before the first co_yield"));
}

TEST_CASE("a source with several workers that splits by this_worker() makes each packet once",
          "[split]") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(split, 100).workers(3), plumb::stage(tally)};
  CHECK(pipeline.run(mode) == Tally{4950, 100});
  plumb::Pipeline outside{plumb::stage(split_outside, 100).workers(3), plumb::stage(tally)};
  CHECK(outside.run(mode) == Tally{4950, 100});
}

TEST_CASE(".unpartitioned() lets every worker of a source run its whole body", "[split]") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(whole, 100).workers(2).unpartitioned(),
                           plumb::stage(tally)};
  CHECK(pipeline.run(mode) == Tally{2 * 4950, 200});
}

TEST_CASE("a source's workers are not checked where it runs once: one worker, sequential mode",
          "[split]") {
  plumb::Pipeline one{plumb::stage(whole, 100), plumb::stage(tally)};
  CHECK(one.run(Mode::thread) == Tally{4950, 100});
  plumb::Pipeline sequential{plumb::stage(whole, 100).workers(2), plumb::stage(tally)};
  CHECK(sequential.run(Mode::sequential) == Tally{4950, 100});
  // A source that yields nothing has nothing to duplicate.
  plumb::Pipeline empty{plumb::stage(whole, 0).workers(2), plumb::stage(tally)};
  CHECK(empty.run(Mode::thread) == Tally{});
}

TEST_CASE("a Graph source with 2 workers that never asks this_worker() stops the run", "[split]") {
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(whole, 50).workers(2)),
      plumb::node<"tally">(plumb::stage(tally), plumb::from<"numbers">),
  };
  CHECK_THROWS_WITH(graph.run(Mode::thread), Catch::Contains("has 2 workers") &&
                                                 Catch::Contains("without asking plumb::this_worker()"));
  plumb::Graph allowed{
      plumb::node<"numbers">(plumb::stage(whole, 50).workers(2).unpartitioned()),
      plumb::node<"tally">(plumb::stage(tally), plumb::from<"numbers">),
  };
  CHECK(allowed.run(Mode::thread) == Tally{2 * 1225, 100});
}
