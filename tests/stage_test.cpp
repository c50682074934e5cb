// SPDX-License-Identifier: MIT
// tests/stage_test.cpp: plumb::stage() and its chainable options.

#include <plumb/generator.hpp>
#include <plumb/pipeline.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace {

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

}  // namespace

TEST_CASE("stage stores the decayed callable and constants", "[stage]") {
  auto spec = plumb::stage(numbers, 3);
  STATIC_REQUIRE(std::is_same_v<decltype(spec),
                                plumb::Stage<plumb::Generator<int> (*)(int), int>>);
  CHECK(std::get<0>(spec.constants()) == 3);
  auto text = plumb::stage([](plumb::Stream<std::string> in, const std::string&) { for (auto& s : in) (void)s; },
                           "literal");
  STATIC_REQUIRE(std::is_same_v<std::tuple_element_t<0, decltype(text)::constants_type>, const char*>);
}

TEST_CASE("stage options chain on temporaries and on named stages", "[stage]") {
  auto spec = plumb::stage(numbers, 3)
                  .workers(4)
                  .in_flight(16)
                  .max_message_size(4096)
                  .name("numbers")
                  .mode(plumb::Mode::process);
  const plumb::StageOptions& options = spec.options();
  CHECK(options.workers == 4);
  CHECK(options.in_flight == 16);
  CHECK(options.max_message_size == 4096);
  CHECK(options.name == "numbers");
  CHECK(options.mode == plumb::Mode::process);

  auto named = plumb::stage(numbers, 1);
  named.workers(2).name("again");
  CHECK(named.options().workers == 2);
  CHECK(named.options().name == "again");
}

TEST_CASE("stage options have documented defaults", "[stage]") {
  const auto spec = plumb::stage(numbers, 3);
  CHECK(spec.options().workers == 1);
  CHECK_FALSE(spec.options().in_flight.has_value());
  CHECK(spec.options().max_message_size == plumb::kDefaultMaxMessageSize);
  CHECK(spec.options().name.empty());
  CHECK_FALSE(spec.options().mode.has_value());
}

namespace {

plumb::Generator<std::string> words() { co_yield std::string("never built"); }
plumb::Generator<std::string> pass(plumb::Stream<std::string> in) {
  for (std::string& word : in) co_yield std::move(word);
}
void drop(plumb::Stream<std::string> in) {
  for (std::string& word : in) (void)word;
}

// Every stage at the documented maxima: 2^20 slots of 2^40 bytes on its output link.
template <class Spec>
auto at_maxima(Spec spec) {
  return std::move(spec).in_flight(plumb::kMaxInFlight).max_message_size(plumb::kMaxMessageSize);
}

template <class Pipeline>
void expect_arena_error(Pipeline& pipeline, const std::string& largest) {
  try {
    pipeline.run(plumb::Mode::process);
    FAIL("run() accepted links that need more shared memory than a process can map");
  } catch (const plumb::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::Matchers::Contains("of shared memory, over the 140737488355328 "
                                                       "bytes a process can map") &&
                                 Catch::Matchers::Contains("the largest is the output link of " + largest) &&
                                 Catch::Matchers::Contains("lower in_flight or max_message_size"));
  }
}

}  // namespace

TEST_CASE("process links at the documented maxima are a ConfigError, not a wrapped size", "[stage][config]") {
  // One link of 2^20 slots of 2^40 bytes: more than any mapping can be. It used to reach mmap
  // and fail there without naming a stage.
  plumb::Pipeline one{at_maxima(plumb::stage(words).name("words")), plumb::stage(drop)};
  expect_arena_error(one, "stage 0 ('words')");
  // Regression (issue 18, item 5): sixteen such links made the total wrap past 2^64; the run
  // mapped the small wrapped size and wrote link headers past its end (SIGSEGV).
  plumb::Pipeline sixteen{at_maxima(plumb::stage(words)), at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)),
                          at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)),
                          at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)),
                          at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)),
                          at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)), at_maxima(plumb::stage(pass)),
                          at_maxima(plumb::stage(pass)), plumb::stage(drop)};
  expect_arena_error(sixteen, "stage 0");
  try {
    sixteen.run(plumb::Mode::process);
  } catch (const plumb::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::Matchers::Contains("need more than 2^64 bytes of shared memory"));
  }
  // The same options are fine where no link crosses a process boundary (a ring's slots hold
  // objects, not max_message_size bytes), and a large process link below the limit maps.
  one.run(plumb::Mode::thread);
  plumb::Pipeline large{plumb::stage(words).in_flight(4).max_message_size(std::size_t{1} << 24), plumb::stage(drop)};
  large.run(plumb::Mode::process);
}
