// SPDX-License-Identifier: MIT
// tests/stream_test.cpp: plumb::Stream<T> built by hand, to unit-test one stage on its own.

#include <plumb/generator.hpp>
#include <plumb/stream.hpp>

#include "support/counted.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <list>
#include <ranges>
#include <string>
#include <vector>

using plumb::Generator;
using plumb::Stream;

namespace {

Generator<int> plus(Stream<int> in, int increment) {
  for (int x : in) co_yield x + increment;
}

template <class T>
std::vector<T> collect(Generator<T> generator) {
  std::vector<T> out;
  for (T& x : generator) out.push_back(std::move(x));
  return out;
}

}  // namespace

TEST_CASE("a stage can be unit-tested on a braced list", "[stream]") {
  STATIC_REQUIRE(std::ranges::input_range<Stream<int>>);
  CHECK(collect(plus(Stream<int>{1, 2, 3}, 5)) == std::vector<int>{6, 7, 8});
}

TEST_CASE("a stream borrows an lvalue container and hands out its elements", "[stream]") {
  std::vector<std::string> words{"a", "b"};
  Stream<std::string> in(words);
  for (std::string& word : in) word += "!";  // T&: the stage may modify or move
  CHECK(words == std::vector<std::string>{"a!", "b!"});
}

TEST_CASE("a stream owns an rvalue container", "[stream]") {
  auto make = [] { return Stream<int>(std::vector<int>{4, 5}); };
  Stream<int> in = make();
  std::vector<int> seen;
  for (int x : in) seen.push_back(x);
  CHECK(seen == std::vector<int>{4, 5});
}

TEST_CASE("a stream over a const range or a range of another type copies each element",
          "[stream]") {
  const std::array<int, 3> values{1, 2, 3};
  CHECK(collect(plus(Stream<int>(values), 1)) == std::vector<int>{2, 3, 4});
  std::list<short> shorts{0, 1, 2};
  CHECK(collect(plus(Stream<int>(shorts), 0)) == std::vector<int>{0, 1, 2});
}

TEST_CASE("a stream over a generator chains two stages by hand", "[stream]") {
  auto numbers = []() -> Generator<int> {
    for (int i = 0; i < 3; ++i) co_yield i;
  };
  CHECK(collect(plus(Stream<int>(numbers()), 10)) == std::vector<int>{10, 11, 12});
  Stream deduced(numbers());  // CTAD: Stream<int>
  STATIC_REQUIRE(std::is_same_v<decltype(deduced), Stream<int>>);
}

TEST_CASE("an exception of the generator behind a stream reaches the stage", "[stream]") {
  auto failing = []() -> Generator<int> {
    co_yield 1;
    throw std::runtime_error("upstream broke");
  };
  auto generator = plus(Stream<int>(failing()), 1);
  auto it = generator.begin();
  REQUIRE(*it == 2);
  CHECK_THROWS_WITH(++it, "upstream broke");
}

TEST_CASE("a stream of move-only values lets the stage take each one", "[stream]") {
  std::vector<plumb::test::MoveOnly> boxes;
  boxes.emplace_back(1);
  boxes.emplace_back(2);
  Stream<plumb::test::MoveOnly> in(std::move(boxes));
  int sum = 0;
  for (auto& box : in) {
    plumb::test::MoveOnly taken = std::move(box);
    sum += taken.value;
  }
  CHECK(sum == 3);
}

TEST_CASE("an empty stream ends at once", "[stream]") {
  Stream<int> in(std::vector<int>{});
  CHECK(in.begin() == in.end());
}
