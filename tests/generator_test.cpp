// SPDX-License-Identifier: MIT
// tests/generator_test.cpp: plumb::Generator<T> on its own.

#include <plumb/generator.hpp>

#include "support/counted.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

using plumb::Generator;
using plumb::test::Counted;
using plumb::test::MoveOnly;

namespace {

Generator<int> count_to(int n, int* started = nullptr) {
  if (started != nullptr) ++*started;
  for (int i = 0; i < n; ++i) co_yield i;
}

}  // namespace

TEST_CASE("generator is an input range and yields every value in order", "[generator]") {
  STATIC_REQUIRE(std::ranges::input_range<Generator<int>>);
  STATIC_REQUIRE(std::is_move_constructible_v<Generator<int>>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Generator<int>>);
  std::vector<int> seen;
  for (int x : count_to(5)) seen.push_back(x);
  CHECK(seen == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("generator does not start until begin is called", "[generator]") {
  int started = 0;
  auto generator = count_to(3, &started);
  CHECK(started == 0);
  auto it = generator.begin();
  CHECK(started == 1);
  CHECK(*it == 0);
}

TEST_CASE("an empty generator ends at once", "[generator]") {
  auto generator = count_to(0);
  CHECK(generator.begin() == generator.end());
  Generator<int> default_constructed;
  CHECK(default_constructed.begin() == default_constructed.end());
}

TEST_CASE("generator throwing before its first value rethrows out of begin", "[generator]") {
  auto generator = []() -> Generator<int> {
    throw std::invalid_argument("before first");
    co_return;
  }();
  CHECK_THROWS_MATCHES(generator.begin(), std::invalid_argument,
                       Catch::Matchers::Message("before first"));
}

TEST_CASE("generator throwing after its first value rethrows out of operator++", "[generator]") {
  auto generator = []() -> Generator<int> {
    co_yield 1;
    throw std::out_of_range("after first");
  }();
  auto it = generator.begin();
  REQUIRE(*it == 1);
  CHECK_THROWS_AS(++it, std::out_of_range);
}

TEST_CASE("destroying a generator before completion destroys the locals of its body",
          "[generator]") {
  Counted::reset();
  {
    auto generator = []() -> Generator<int> {
      Counted local(7);
      for (int i = 0;; ++i) co_yield local.value + i;
    }();
    auto it = generator.begin();
    CHECK(*it == 7);
    CHECK(Counted::alive == 1);
  }
  CHECK(Counted::alive == 0);
}

TEST_CASE("co_yield of an rvalue hands over the object without copying it", "[generator]") {
  Counted::reset();
  auto generator = []() -> Generator<Counted> {
    co_yield Counted(1);
    Counted named(2);
    co_yield std::move(named);
  }();
  std::vector<int> seen;
  for (Counted& item : generator) {
    Counted taken = std::move(item);  // the consumer may move from what it receives
    seen.push_back(taken.value);
  }
  CHECK(seen == std::vector<int>{1, 2});
  CHECK(Counted::copies == 0);
  CHECK(Counted::alive == 0);
}

TEST_CASE("co_yield of an lvalue hands over a copy and leaves the body's variable alone",
          "[generator]") {
  std::vector<std::string> after_yield;
  // The lambda outlives its coroutine: a capturing coroutine lambda must not be a temporary.
  auto body = [&after_yield]() -> Generator<std::string> {
    std::string text = "kept";
    co_yield text;
    after_yield.push_back(text);
  };
  auto generator = body();
  for (std::string& received : generator) {
    std::string stolen = std::move(received);
    CHECK(stolen == "kept");
  }
  CHECK(after_yield == std::vector<std::string>{"kept"});
}

TEST_CASE("generator yields move-only values", "[generator]") {
  auto generator = []() -> Generator<MoveOnly> {
    for (int i = 0; i < 3; ++i) co_yield MoveOnly(i);
  }();
  int sum = 0;
  for (MoveOnly& item : generator) {
    MoveOnly taken = std::move(item);
    sum += taken.value;
  }
  CHECK(sum == 3);
}

TEST_CASE("generator converts yielded values to its element type", "[generator]") {
  auto generator = []() -> Generator<long> {
    co_yield 1;  // an int
    const short small = 2;
    co_yield small;
  }();
  std::vector<long> seen;
  for (long x : generator) seen.push_back(x);
  CHECK(seen == std::vector<long>{1, 2});
}

TEST_CASE("a moved-to generator continues where the moved-from one stopped", "[generator]") {
  auto first = count_to(4);
  auto it = first.begin();
  REQUIRE(*it == 0);
  Generator<int> second = std::move(first);
  ++it;  // the coroutine frame moved with the handle
  CHECK(*it == 1);
  second = count_to(1);  // assigning destroys the old frame
  CHECK(*second.begin() == 0);
}
