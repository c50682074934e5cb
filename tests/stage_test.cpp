// SPDX-License-Identifier: MIT
// tests/stage_test.cpp: plumb::stage() and its chainable options.

#include <plumb/generator.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

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
