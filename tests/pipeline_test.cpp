// SPDX-License-Identifier: MIT
// tests/pipeline_test.cpp: Pipeline::run in sequential mode: results, errors, validation.

#include <plumb/plumb.hpp>

#include "support/counted.hpp"
#include "support/stages.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using namespace plumb::test;  // the shared stages: numbers, plus, sum_ints, ...

namespace {
struct CustomError {
  int code;
};

}  // namespace

TEST_CASE("sequential run of the brief's example returns the sink's value", "[pipeline]") {
  plumb::Pipeline pipeline{
      plumb::stage(numbers, 101).in_flight(8),
      plumb::stage(group, std::size_t{5}).workers(2).in_flight(4).max_message_size(4096).name("group"),
      plumb::stage(sum_batches),
  };
  STATIC_REQUIRE(std::is_same_v<decltype(pipeline)::result_type, long>);
  CHECK(pipeline.run(Mode::sequential) == 5050);
  CHECK_FALSE(pipeline.last_failure().has_value());
}

TEST_CASE("sequential run preserves order end to end", "[pipeline]") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 1000), plumb::stage(plus, 1), plumb::stage(collect)};
  const std::vector<int> out = pipeline.run(Mode::sequential);
  REQUIRE(out.size() == 1000);
  for (int i = 0; i < 1000; ++i) REQUIRE(out[static_cast<std::size_t>(i)] == i + 1);
}

TEST_CASE("a pipeline can be run again, and every run gets fresh constants", "[pipeline]") {
  auto counter = [](Stream<int> in, std::vector<int>& scratch) {
    for (int x : in) scratch.push_back(x);
    return scratch.size();  // grows across runs only if the constant were shared
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(counter, std::vector<int>{})};
  CHECK(pipeline.run(Mode::sequential) == 3);
  CHECK(pipeline.run(Mode::sequential) == 3);
}

TEST_CASE("sequential run moves packets and leaks none, on success and on error", "[pipeline]") {
  Counted::reset();
  auto make = [](int count, int fail_at) -> Generator<Counted> {
    for (int i = 0; i < count; ++i) {
      if (i == fail_at) throw std::runtime_error("source failed");
      co_yield Counted(i);
    }
  };
  auto pass = [](Stream<Counted> in) -> Generator<Counted> {
    for (Counted& item : in) co_yield std::move(item);
  };
  auto consume = [](Stream<Counted> in) {
    long sum = 0;
    for (Counted& item : in) sum += item.value;
    return sum;
  };
  plumb::Pipeline ok{plumb::stage(make, 100, -1), plumb::stage(pass), plumb::stage(consume)};
  CHECK(ok.run(Mode::sequential) == 4950);
  CHECK(Counted::copies == 0);
  CHECK(Counted::alive == 0);

  plumb::Pipeline failing{plumb::stage(make, 100, 50), plumb::stage(pass), plumb::stage(consume)};
  CHECK_THROWS_WITH(failing.run(Mode::sequential), "source failed");
  CHECK(Counted::alive == 0);
}

TEST_CASE("sequential run carries move-only payloads", "[pipeline]") {
  auto make = [](int count) -> Generator<MoveOnly> {
    for (int i = 0; i < count; ++i) co_yield MoveOnly(i);
  };
  auto consume = [](Stream<MoveOnly> in) {
    int sum = 0;
    for (MoveOnly& item : in) {
      MoveOnly taken = std::move(item);
      sum += taken.value;
    }
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(make, 10), plumb::stage(consume)};
  CHECK(pipeline.run(Mode::sequential) == 45);
}

TEST_CASE("sequential run rethrows the original exception and names the failing stage",
          "[pipeline][errors]") {
  auto fail_at = [](Stream<int> in, int at) -> Generator<int> {
    for (int x : in) {
      if (x == at) throw std::invalid_argument("bad packet " + std::to_string(x));
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(plus, 0),
                           plumb::stage(fail_at, 7).name("check"), plumb::stage(sum_ints)};
  CHECK_THROWS_MATCHES(pipeline.run(Mode::sequential), std::invalid_argument,
                       Catch::Matchers::Message("bad packet 7"));
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_index == 2);
  CHECK(pipeline.last_failure()->stage_name == "check");
  CHECK(pipeline.last_failure()->worker_index == 0);
  CHECK(pipeline.last_failure()->what == "bad packet 7");

  // The same pipeline runs again; the failure report belongs to the last run only.
  CHECK_THROWS_AS(pipeline.run(Mode::sequential), std::invalid_argument);
  REQUIRE(pipeline.last_failure().has_value());
}

TEST_CASE("errors from the source and from the sink name their stage", "[pipeline][errors]") {
  auto failing_source = [](int at) -> Generator<int> {
    for (int i = 0;; ++i) {
      if (i == at) throw std::out_of_range("source ran out");
      co_yield i;
    }
  };
  plumb::Pipeline from_source{plumb::stage(failing_source, 3).name("src"), plumb::stage(plus, 1),
                              plumb::stage(sum_ints)};
  CHECK_THROWS_AS(from_source.run(Mode::sequential), std::out_of_range);
  REQUIRE(from_source.last_failure().has_value());
  CHECK(from_source.last_failure()->stage_index == 0);
  CHECK(from_source.last_failure()->stage_name == "src");

  auto failing_sink = [](Stream<int> in) {
    for (int x : in) {
      if (x == 5) throw std::logic_error("sink refused");
    }
  };
  plumb::Pipeline from_sink{plumb::stage(numbers, 10), plumb::stage(plus, 1),
                            plumb::stage(failing_sink)};
  CHECK_THROWS_AS(from_sink.run(Mode::sequential), std::logic_error);
  REQUIRE(from_sink.last_failure().has_value());
  CHECK(from_sink.last_failure()->stage_index == 2);
  CHECK(from_sink.last_failure()->stage_name == "stage 2");
}

TEST_CASE("an exception of a type not derived from std::exception arrives unchanged",
          "[pipeline][errors]") {
  auto failing = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 2) throw CustomError{42};
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(failing), plumb::stage(sum_ints)};
  try {
    pipeline.run(Mode::sequential);
    FAIL("run() returned");
  } catch (const CustomError& error) {
    CHECK(error.code == 42);
  }
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_index == 1);
  CHECK(pipeline.last_failure()->what.find("not derived from std::exception") != std::string::npos);
}

TEST_CASE("a stage that catches an upstream error and throws its own is the one reported",
          "[pipeline][errors]") {
  auto failing = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 3) throw std::runtime_error("first");
      co_yield x;
    }
  };
  auto translating = [](Stream<int> in) -> Generator<int> {
    try {
      for (int x : in) co_yield x;
    } catch (const std::runtime_error& error) {
      throw std::domain_error(std::string("translated: ") + error.what());
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(failing),
                           plumb::stage(translating).name("translate"), plumb::stage(sum_ints)};
  CHECK_THROWS_MATCHES(pipeline.run(Mode::sequential), std::domain_error,
                       Catch::Matchers::Message("translated: first"));
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_name == "translate");
}

TEST_CASE("a worker error stops an infinite source", "[pipeline][errors]") {
  auto fail_at = [](Stream<int> in, int at) -> Generator<int> {
    for (int x : in) {
      if (x == at) throw std::runtime_error("stop here");
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(fail_at, 1000), plumb::stage(sum_ints)};
  CHECK_THROWS_WITH(pipeline.run(Mode::sequential), "stop here");
}

TEST_CASE("a processor that returns while its input has packets is an error",
          "[pipeline][errors]") {
  auto first_three = [](Stream<int> in) -> Generator<int> {
    int taken = 0;
    for (int x : in) {
      co_yield x;
      if (++taken == 3) co_return;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(first_three).name("head"),
                           plumb::stage(sum_ints)};
  try {
    pipeline.run(Mode::sequential);
    FAIL("run() returned");
  } catch (const plumb::StageError& error) {
    CHECK(error.stage_index() == 1);
    CHECK(error.stage_name() == "head");
    CHECK(error.worker_index() == 0);
    CHECK_THAT(error.what(), Catch::Matchers::StartsWith("plumb.stage_error: stage 1 ('head') worker 0 "
                                                          "returned while its input still had packets"));
  }
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_index == 1);
}

TEST_CASE("a sink that returns while its input has packets is an error", "[pipeline][errors]") {
  auto first = [](Stream<int> in) {
    for (int x : in) return x;
    return -1;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(first)};
  CHECK_THROWS_AS(pipeline.run(Mode::sequential), plumb::StageError);
  REQUIRE(pipeline.last_failure().has_value());
  CHECK(pipeline.last_failure()->stage_index == 1);
}

TEST_CASE("a consumer that stops right after the last packet is not an error", "[pipeline]") {
  auto first_three = [](Stream<int> in) -> Generator<int> {
    int taken = 0;
    for (int x : in) {
      co_yield x;
      if (++taken == 3) co_return;  // the source has exactly 3 packets
    }
  };
  auto first_two = [](Stream<int> in) {
    long sum = 0;
    int taken = 0;
    for (int x : in) {
      sum += x;
      if (++taken == 3) break;
    }
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(first_three), plumb::stage(first_two)};
  CHECK(pipeline.run(Mode::sequential) == 3);
}

TEST_CASE("a stop requested before the run cancels it before any stage runs",
          "[pipeline][cancel]") {
  int started = 0;
  auto source = [&started]() -> Generator<int> {
    ++started;
    co_yield 1;
  };
  std::stop_source stop;
  stop.request_stop();
  plumb::Pipeline pipeline{plumb::stage(source), plumb::stage(sum_ints)};
  plumb::RunOptions options;
  options.mode = Mode::sequential;
  options.stop_token = stop.get_token();
  CHECK_THROWS_AS(pipeline.run(options), plumb::CancelledError);
  CHECK(started == 0);
  CHECK_FALSE(pipeline.last_failure().has_value());
}

TEST_CASE("a stop requested during the run cancels it at the next packet", "[pipeline][cancel]") {
  std::stop_source stop;
  int seen = 0;
  auto sink = [&](Stream<int> in) {
    for (int x : in) {
      ++seen;
      if (x == 10) stop.request_stop();
    }
  };
  plumb::Pipeline pipeline{plumb::stage(forever), plumb::stage(plus, 0), plumb::stage(sink)};
  CHECK_THROWS_WITH(pipeline.run({.mode = Mode::sequential, .stop_token = stop.get_token()}),
                    Catch::Matchers::StartsWith("plumb.cancelled:"));
  CHECK(seen == 11);
}

TEST_CASE("sequential inactivity timeout fires when a packet took too long", "[pipeline][timeout]") {
  auto slow = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 2) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      co_yield x;
    }
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 5), plumb::stage(slow), plumb::stage(sum_ints)};
  plumb::RunOptions options{.mode = Mode::sequential,
                            .inactivity_timeout = std::chrono::milliseconds(100)};
  CHECK_THROWS_WITH(pipeline.run(options),
                    Catch::Matchers::StartsWith("plumb.inactivity_error: no packet moved"));
  options.inactivity_timeout = std::chrono::seconds(20);
  CHECK(pipeline.run(options) == 10);
}

// In sequential mode a consumer's every take resumes the stage before it, which yields: a slow
// sink is activity here by construction (a guard for the thread and process tests' case).
TEST_CASE("sequential inactivity timeout: a slow sink taking packets is activity", "[pipeline][timeout]") {
  const std::vector<int> all{0, 1, 2, 3, 4, 5};
  auto slow_collect = [](Stream<int> in) {
    std::vector<int> got;
    for (int x : in) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      got.push_back(x);
    }
    return got;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 6).in_flight(6), plumb::stage(slow_collect)};
  CHECK(pipeline.run({.mode = Mode::sequential, .inactivity_timeout = std::chrono::milliseconds(250)}) == all);
}

TEST_CASE("the progress callback gets counts per stage and a final report", "[pipeline]") {
  std::vector<std::vector<std::uint64_t>> reports;
  std::vector<bool> finished;
  plumb::RunOptions options;
  options.mode = Mode::sequential;
  options.progress_interval = std::chrono::steady_clock::duration::zero();  // every packet
  options.progress = [&](const plumb::Stats& progress) {
    reports.emplace_back();
    for (std::size_t i = 0; i + 1 < progress.stages.size(); ++i) {
      reports.back().push_back(progress.stages[i].packets_out);
    }
    finished.push_back(progress.finished);
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, 20), plumb::stage(group, std::size_t{5}),
                           plumb::stage(sum_batches)};
  CHECK(pipeline.run(options) == 190);
  REQUIRE(reports.size() >= 2);
  CHECK(reports.back() == std::vector<std::uint64_t>{20, 4});
  CHECK(finished.back());
  CHECK_FALSE(finished.front());
  for (std::size_t i = 1; i < reports.size(); ++i) {
    CHECK(reports[i][0] >= reports[i - 1][0]);  // counts only grow
  }
}

TEST_CASE("invalid options are rejected before any stage runs", "[pipeline][config]") {
  int started = 0;
  auto source = [&started]() -> Generator<int> {
    ++started;
    co_yield 1;
  };
  auto expect_config_error = [&](auto pipeline, const std::string& text) {
    try {
      pipeline.run(Mode::sequential);
      FAIL("run() accepted an invalid configuration: " << text);
    } catch (const plumb::ConfigError& error) {
      CHECK_THAT(error.what(), Catch::Matchers::StartsWith("plumb.config_error: "));
      CHECK_THAT(error.what(), Catch::Matchers::Contains(text));
    }
    CHECK(started == 0);
  };
  expect_config_error(plumb::Pipeline{plumb::stage(source).workers(0), plumb::stage(sum_ints)},
                      "stage 0: workers(0) is out of range; use 1 to 128");
  expect_config_error(plumb::Pipeline{plumb::stage(source), plumb::stage(plus, 1).workers(129).name("p"),
                                      plumb::stage(sum_ints)},
                      "stage 1 ('p'): workers(129) is out of range");
  expect_config_error(plumb::Pipeline{plumb::stage(source).workers(4).in_flight(2), plumb::stage(sum_ints)},
                      "in_flight(2) is less than workers(4)");
  expect_config_error(plumb::Pipeline{plumb::stage(source).in_flight(0), plumb::stage(sum_ints)},
                      "in_flight(0) is less than workers(1)");
  expect_config_error(plumb::Pipeline{plumb::stage(source).in_flight(-5), plumb::stage(sum_ints)},
                      "in_flight(-5) is less than workers(1)");
  expect_config_error(plumb::Pipeline{plumb::stage(source).in_flight(std::int64_t{1} << 40), plumb::stage(sum_ints)},
                      "is above the limit");
  expect_config_error(plumb::Pipeline{plumb::stage(source).max_message_size(0), plumb::stage(sum_ints)},
                      "max_message_size(0)");
  expect_config_error(plumb::Pipeline{plumb::stage(source), plumb::stage(sum_ints).workers(2)},
                      "stage 1: a sink that returns a value must have one worker, not workers(2)");
  // A void sink may have several workers; in sequential mode they are validated, then unused.
  auto void_sink = [](Stream<int> in) { for (int x : in) (void)x; };
  plumb::Pipeline fine{plumb::stage(source), plumb::stage(void_sink).workers(2)};
  fine.run(Mode::sequential);
  CHECK(started == 1);
}
