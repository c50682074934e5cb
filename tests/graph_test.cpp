// SPDX-License-Identifier: MIT
// tests/graph_test.cpp: plumb::Graph in every mode (sequential, thread, process, mixed): the
// issue's graph (inp -> n1 -> n2 -> n3 -> n4), broadcast, merge, route, round robin, joins by
// order and by key, the errors a graph raises (a node's own, a join's partners missing, its
// window, a route out of range, a packet too large), ConfigErrors before anything runs, stop,
// and statistics per node. Sinks return what they saw, so that a sink in a worker process
// reports it too.

#include <plumb/graph.hpp>

#include "support/modes.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::test::modes;

namespace {

Generator<std::string> strings(int count) {
  for (int i = 0; i < count; ++i) {
    std::string text = "Str" + std::to_string(i) + "x";
    co_yield text;
  }
}

Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}

std::string reversed(const std::string& text) { return {text.rbegin(), text.rend()}; }
std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}
std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Generator<std::string> reverse_each(Stream<std::string> in) {
  for (std::string& text : in) {
    std::string out = reversed(text);
    co_yield out;
  }
}
Generator<std::string> upper_each(Stream<std::string> in) {
  for (std::string& text : in) {
    std::string out = upper(text);
    co_yield out;
  }
}
Generator<std::string> lower_each(Stream<std::string> in) {
  for (std::string& text : in) {
    std::string out = lower(text);
    co_yield out;
  }
}

Generator<int> times(Stream<int> in, int factor) {
  for (int x : in) co_yield x * factor;
}

// What a sink saw, sorted (a value run() returns from every mode).
template <class T>
std::vector<T> collect_all(Stream<T> in) {
  std::vector<T> seen;
  for (T& value : in) seen.push_back(std::move(value));
  std::sort(seen.begin(), seen.end());
  return seen;
}

template <class T>
std::vector<T> sorted(std::multiset<T> values) {
  return {values.begin(), values.end()};
}

// Every mode a graph runs in; a run in worker processes where this build checks them.
auto every_mode() { return modes({Mode::sequential, Mode::thread, Mode::process}); }

}  // namespace

TEST_CASE("graph: the issue's graph prints every string's three forms through n4", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Graph graph{
      plumb::node<"inp">(plumb::stage(strings, 200)),
      plumb::node<"n1">(plumb::stage(reverse_each), plumb::from<"inp">),
      plumb::node<"n2">(plumb::stage(upper_each), plumb::from<"n1">),
      plumb::node<"n3">(plumb::stage(lower_each), plumb::from<"n1", "n2">),
      plumb::node<"n4">(plumb::stage(collect_all<std::string>), plumb::from<"n2", "n3">),
  };
  const std::vector<std::string> n4 = graph.run(mode);
  std::multiset<std::string> expected;
  for (int i = 0; i < 200; ++i) {
    const std::string text = "Str" + std::to_string(i) + "x";
    expected.insert(upper(reversed(text)));  // n1 -> n2 -> n4
    expected.insert(lower(reversed(text)));  // n1 -> n3 -> n4
    expected.insert(lower(reversed(text)));  // n1 -> n2 -> n3 -> n4
  }
  CHECK(n4 == sorted(expected));
  const plumb::Stats& stats = graph.last_stats();
  REQUIRE(stats.stages.size() == 5);
  CHECK(stats.finished);
  CHECK(stats.stages[0].name == "inp");
  CHECK(stats.stages[3].name == "n3");
  CHECK(stats.stages[0].packets_out == 200);
  CHECK(stats.stages[3].packets_in == 400);
  CHECK(stats.stages[3].packets_out == 400);
  CHECK(stats.stages[4].packets_in == 600);
  // The graph's shape and links in the statistics: each node's inputs and its input link.
  CHECK(stats.graph());
  CHECK(stats.stages[0].inputs.empty());
  CHECK_FALSE(stats.stages[0].input);
  CHECK(stats.stages[3].inputs == std::vector<std::size_t>{1, 2});
  REQUIRE(stats.stages[3].input);
  CHECK(stats.stages[3].input->capacity == 2);  // in_flight 1 of n1 and of n2
  CHECK(stats.stages[3].input->shared == (mode == Mode::process));
  CHECK(stats.stages[4].rate > 0);  // a sink's rate: the packets it took
  const std::string table = stats.table();
  CHECK_THAT(table, Catch::Contains("graph of 5 nodes") && Catch::Contains("n1,n2"));
  const std::string dot = stats.dot();
  CHECK_THAT(dot, Catch::Contains("s1 -> s3") && Catch::Contains("s2 -> s3") && Catch::Contains("s3 -> s4"));
  CHECK_THAT(stats.mermaid(), Catch::Contains("s2 --> s4") && Catch::Contains("input: 2 slots"));
}

TEST_CASE("graph: a broadcast gives every successor each packet, and a merge reads them all",
          "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers, 300)),
      plumb::node<"x2">(plumb::stage(times, 2), plumb::from<"numbers">),
      plumb::node<"x3">(plumb::stage(times, 3).workers(3).in_flight(6), plumb::from<"numbers">),
      plumb::node<"x5">(plumb::stage(times, 5), plumb::from<"numbers">),
      plumb::node<"all">(plumb::stage(collect_all<int>), plumb::from<"x2", "x3", "x5">),
  };
  std::multiset<int> expected;
  for (int i = 0; i < 300; ++i) expected.insert({2 * i, 3 * i, 5 * i});
  CHECK(graph.run(mode) == sorted(expected));
}

TEST_CASE("graph: two sources merge into one stream, and run() returns the sink's value", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  auto sum = [](Stream<int> in) {
    long total = 0;
    for (int x : in) total += x;
    return total;
  };
  plumb::Graph graph{
      plumb::node<"a">(plumb::stage(numbers, 100)),
      plumb::node<"b">(plumb::stage(numbers, 50)),
      plumb::node<"sum">(plumb::stage(sum), plumb::from<"a", "b">),
  };
  CHECK(graph.run(mode) == 4950 + 1225);
}

TEST_CASE("graph: a route sends each packet to the node it picks, round robin in turn", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto tag = [](Stream<int> in, int offset) -> Generator<int> {
    for (int x : in) co_yield x + offset;
  };
  plumb::Graph routed{
      plumb::node<"numbers">(plumb::stage(numbers, 101),
                             plumb::route<"even", "odd">([](int x) { return static_cast<std::size_t>(x % 2); })),
      plumb::node<"odd">(plumb::stage(tag, 1000), plumb::from<"numbers">),
      plumb::node<"even">(plumb::stage(tag, 2000), plumb::from<"numbers">),
      plumb::node<"all">(plumb::stage(collect_all<int>), plumb::from<"odd", "even">),
  };
  std::multiset<int> expected;
  for (int i = 0; i < 101; ++i) expected.insert(i + (i % 2 == 0 ? 2000 : 1000));
  CHECK(routed.run(mode) == sorted(expected));

  auto count_signs = [](Stream<int> in) {
    std::pair<int, int> counts{0, 0};
    for (int x : in) ++(x >= 0 ? counts.first : counts.second);
    return counts;
  };
  plumb::Graph turns{
      plumb::node<"numbers">(plumb::stage(numbers, 100), plumb::round_robin<"left", "right">),
      plumb::node<"left">(plumb::stage(times, 1), plumb::from<"numbers">),
      plumb::node<"right">(plumb::stage(times, -1), plumb::from<"numbers">),
      plumb::node<"count">(plumb::stage(count_signs), plumb::from<"left", "right">),
  };
  // In turn: the even numbers go left (kept), the odd ones right (negated).
  CHECK(turns.run(mode) == std::pair<int, int>{50, 50});

  if (mode == Mode::thread) {
    // Sinks of their own: each runs at once in thread mode (in sequential mode: a ConfigError,
    // tested below).
    std::atomic<int> left{0};
    std::atomic<int> right{0};
    auto count = [](Stream<int> in, std::atomic<int>* counter) {
      for (int x : in) {
        (void)x;
        ++*counter;
      }
    };
    plumb::Graph sinks{
        plumb::node<"numbers">(plumb::stage(numbers, 100), plumb::round_robin<"left", "right">),
        plumb::node<"left">(plumb::stage(count, &left), plumb::from<"numbers">),
        plumb::node<"right">(plumb::stage(count, &right), plumb::from<"numbers">),
    };
    sinks.run(mode);
    CHECK(left == 50);
    CHECK(right == 50);
  }
}

TEST_CASE("graph: a join by order pairs the i-th packet of each branch of a diamond", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto slow_double = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x % 50 == 0) std::this_thread::sleep_for(1ms);
      co_yield 2 * x;
    }
  };
  auto check_pairs = [](Stream<std::tuple<int, std::string>> in) {
    long pairs = 0;
    for (auto& [doubled, text] : in) {
      if (std::to_string(doubled / 2) != text) throw std::logic_error("pair mismatch: " + text);
      ++pairs;
    }
    return pairs;
  };
  auto as_text = [](Stream<int> in) -> Generator<std::string> {
    for (int x : in) {
      std::string text = std::to_string(x);
      co_yield text;
    }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 500).in_flight(4)),
      plumb::node<"double">(plumb::stage(slow_double), plumb::from<"src">),
      plumb::node<"text">(plumb::stage(as_text), plumb::from<"src">),
      plumb::node<"join">(plumb::stage(check_pairs), plumb::join<"double", "text">),
  };
  CHECK(graph.run(mode) == 500);
}

TEST_CASE("graph: a join by key pairs packets that arrive in different orders", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  // One branch reverses every batch of 10: keys arrive out of order on that input.
  auto reverse_batches = [](Stream<int> in) -> Generator<int> {
    std::vector<int> batch;
    for (int x : in) {
      batch.push_back(x);
      if (batch.size() == 10) {
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
          int value = *it;
          co_yield value;
        }
        batch.clear();
      }
    }
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      int value = *it;
      co_yield value;
    }
  };
  auto square = [](Stream<int> in) -> Generator<std::pair<int, long>> {
    for (int x : in) {
      std::pair<int, long> squared{x, static_cast<long>(x) * x};
      co_yield squared;
    }
  };
  auto check = [](Stream<std::tuple<int, std::pair<int, long>>> in) {
    long pairs = 0;
    for (auto& [x, squared] : in) {
      if (squared.first != x || squared.second != static_cast<long>(x) * x) throw std::logic_error("wrong pair");
      ++pairs;
    }
    return pairs;
  };
  struct Key {
    int operator()(int x) const { return x; }
    int operator()(const std::pair<int, long>& p) const { return p.first; }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1005)),
      plumb::node<"shuffled">(plumb::stage(reverse_batches), plumb::from<"src">),
      plumb::node<"squares">(plumb::stage(square).workers(mode == Mode::thread ? 2 : 1).in_flight(4),
                             plumb::from<"src">),
      plumb::node<"join">(plumb::stage(check), plumb::join_by_key<"shuffled", "squares">(Key{})),
  };
  CHECK(graph.run(mode) == 1005);
}

TEST_CASE("graph: a join whose inputs end without partners fails, naming the join", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto drop_one = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x != 7) co_yield x;
    }
  };
  auto pass = [](Stream<int> in) -> Generator<int> {
    for (int x : in) co_yield x;
  };
  auto pairs = [](Stream<std::tuple<int, int>> in) {
    for (auto& pair : in) (void)pair;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 20)),
      plumb::node<"dropper">(plumb::stage(drop_one), plumb::from<"src">),
      plumb::node<"keeper">(plumb::stage(pass), plumb::from<"src">),
      plumb::node<"pairs">(plumb::stage(pairs), plumb::join<"dropper", "keeper">),
  };
  CHECK_THROWS_WITH(graph.run(mode), Catch::Contains("'pairs'") && Catch::Contains("no partner") &&
                                         Catch::Contains("1 from 'keeper'"));
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "pairs");
  CHECK(graph.last_failure()->stage_index == 3);
}

TEST_CASE("graph: a join holds at most its window of packets waiting for partners", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto evens = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x % 2 == 0) co_yield x;
    }
  };
  auto pass = [](Stream<int> in) -> Generator<int> {
    for (int x : in) co_yield x;
  };
  auto pairs = [](Stream<std::tuple<int, int>> in) {
    for (auto& pair : in) (void)pair;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1000)),
      plumb::node<"evens">(plumb::stage(evens), plumb::from<"src">),
      plumb::node<"all">(plumb::stage(pass), plumb::from<"src">),
      plumb::node<"pairs">(plumb::stage(pairs), plumb::join<"evens", "all">.window(8)),
  };
  CHECK_THROWS_WITH(graph.run(mode), Catch::Contains("'pairs'") && Catch::Contains("window(8)"));
}

TEST_CASE("graph: a node's error stops the run and reaches the caller with its type", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto fragile = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 42) throw std::domain_error("42 is not welcome");
      co_yield x;
    }
  };
  std::atomic<long> seen{0};
  auto count = [&seen](Stream<int> in) {
    for (int x : in) {
      (void)x;
      ++seen;
    }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1'000'000)),
      plumb::node<"fine">(plumb::stage(times, 1), plumb::from<"src">),
      plumb::node<"fragile">(plumb::stage(fragile), plumb::from<"src">),
      plumb::node<"sink">(plumb::stage(count), plumb::from<"fine", "fragile">),
  };
  CHECK_THROWS_AS(graph.run(mode), std::domain_error);
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "fragile");
  CHECK(graph.last_failure()->stage_index == 2);
  CHECK(seen < 1'000'000);
  CHECK_FALSE(graph.last_stats().finished);
}

TEST_CASE("graph: a route's index out of range is the routing node's error", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  auto drain = [](Stream<int> in) {
    for (int x : in) (void)x;
  };
  plumb::Graph graph{
      plumb::node<"numbers">(plumb::stage(numbers, 10),
                             plumb::route<"a", "b">([](int x) { return static_cast<std::size_t>(x); })),
      plumb::node<"a">(plumb::stage(times, 1), plumb::from<"numbers">),
      plumb::node<"b">(plumb::stage(times, 1), plumb::from<"numbers">),
      plumb::node<"sink">(plumb::stage(drain), plumb::from<"a", "b">),
  };
  CHECK_THROWS_WITH(graph.run(mode), Catch::Contains("'numbers'") && Catch::Contains("route picked 2"));
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "numbers");
}

TEST_CASE("graph: what a graph run cannot do is a ConfigError before anything runs", "[graph]") {
  std::atomic<int> started{0};
  auto source = [&started](int count) -> Generator<int> {
    ++started;
    for (int i = 0; i < count; ++i) co_yield i;
  };
  auto drain = [](Stream<int> in) {
    for (int x : in) (void)x;
  };
  auto pairs = [](Stream<std::tuple<int, int>> in) {
    for (auto& pair : in) (void)pair;
  };
  SECTION("a join with several workers") {
    plumb::Graph graph{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"a">(plumb::stage(times, 1), plumb::from<"src">),
        plumb::node<"b">(plumb::stage(times, 2), plumb::from<"src">),
        plumb::node<"j">(plumb::stage(pairs).workers(2), plumb::join<"a", "b">),
    };
    CHECK_THROWS_AS(graph.run(), plumb::ConfigError);
    CHECK_THROWS_WITH(graph.run(), Catch::Contains("'j'") && Catch::Contains("one worker"));
  }
  SECTION("a join by order behind a node whose workers reorder packets") {
    plumb::Graph graph{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"a">(plumb::stage(times, 1).workers(2), plumb::from<"src">),
        plumb::node<"b">(plumb::stage(times, 2), plumb::from<"src">),
        plumb::node<"j">(plumb::stage(pairs), plumb::join<"a", "b">),
    };
    CHECK_THROWS_WITH(graph.run(), Catch::Contains("'j'") && Catch::Contains("node 'a'") &&
                                       Catch::Contains("join_by_key"));
  }
  SECTION("a join of inputs from different sources, and a join by order behind a merge") {
    plumb::Graph zip{
        plumb::node<"a">(plumb::stage(source, 10)),
        plumb::node<"b">(plumb::stage(source, 10)),
        plumb::node<"j">(plumb::stage(pairs), plumb::join<"a", "b">),
    };
    CHECK_THROWS_WITH(zip.run(), Catch::Contains("'j'") && Catch::Contains("same sources"));
    CHECK_THROWS_WITH(zip.run(Mode::sequential), Catch::Contains("same sources"));
    // src -> split -(round robin)-> x, y -> m (merge) ; src -> keep ; join<keep, m>: the merge
    // interleaves x and y as they come, so the i-th of m is not the i-th of keep.
    plumb::Graph merged{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"keep">(plumb::stage(times, 1), plumb::from<"src">),
        plumb::node<"split">(plumb::stage(times, 1), plumb::from<"src">, plumb::round_robin<"x", "y">),
        plumb::node<"x">(plumb::stage(times, 1), plumb::from<"split">),
        plumb::node<"y">(plumb::stage(times, 1), plumb::from<"split">),
        plumb::node<"m">(plumb::stage(times, 1), plumb::from<"x", "y">),
        plumb::node<"j">(plumb::stage(pairs), plumb::join<"keep", "m">),
    };
    CHECK_THROWS_WITH(merged.run(), Catch::Contains("'j'") && Catch::Contains("node 'm'") &&
                                        Catch::Contains("join_by_key"));
  }
  SECTION("a node's own mode that the run's mode cannot give") {
    plumb::Graph fused{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"sink">(plumb::stage(drain).mode(Mode::sequential), plumb::from<"src">),
    };
    CHECK_THROWS_WITH(fused.run(Mode::thread), Catch::Contains("'sink'") && Catch::Contains("never fused"));
    plumb::Graph threaded{
        plumb::node<"src">(plumb::stage(source, 10).mode(Mode::thread)),
        plumb::node<"sink">(plumb::stage(drain), plumb::from<"src">),
    };
    CHECK_THROWS_WITH(threaded.run(Mode::sequential),
                      Catch::Contains("'src'") && Catch::Contains("calling thread"));
  }
  SECTION("a type that cannot cross a process boundary") {
    struct Handle {
      int* pointer;
    };
    auto handles = [&started]() -> Generator<Handle> {
      ++started;
      Handle handle{nullptr};
      co_yield handle;
    };
    auto use = [](Stream<Handle> in) {
      for (Handle& handle : in) (void)handle;
    };
    plumb::Graph graph{
        plumb::node<"handles">(plumb::stage(handles)),
        plumb::node<"use">(plumb::stage(use).mode(Mode::process), plumb::from<"handles">),
    };
    CHECK_THROWS_WITH(graph.run(Mode::thread), Catch::Contains("'use'") && Catch::Contains("'handles'") &&
                                                   Catch::Contains("cannot be serialized"));
  }
  SECTION("ordered() on a source or a sink, in_flight below workers, window(0)") {
    plumb::Graph ordered_source{
        plumb::node<"src">(plumb::stage(source, 10).workers(2).ordered()),
        plumb::node<"sink">(plumb::stage(drain), plumb::from<"src">),
    };
    CHECK_THROWS_WITH(ordered_source.run(), Catch::Contains("'src'") && Catch::Contains("source has no input"));
    plumb::Graph ordered_sink{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"sink">(plumb::stage(drain).workers(2).ordered(), plumb::from<"src">),
    };
    CHECK_THROWS_WITH(ordered_sink.run(), Catch::Contains("'sink'") && Catch::Contains("a sink sends none"));
    plumb::Graph narrow{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"a">(plumb::stage(times, 1).workers(4).in_flight(2), plumb::from<"src">),
        plumb::node<"sink">(plumb::stage(drain), plumb::from<"a">),
    };
    CHECK_THROWS_WITH(narrow.run(), Catch::Contains("'a'") && Catch::Contains("in_flight(2)"));
    plumb::Graph closed{
        plumb::node<"src">(plumb::stage(source, 10)),
        plumb::node<"a">(plumb::stage(times, 1), plumb::from<"src">),
        plumb::node<"b">(plumb::stage(times, 2), plumb::from<"src">),
        plumb::node<"j">(plumb::stage(pairs), plumb::join<"a", "b">.window(0)),
    };
    CHECK_THROWS_WITH(closed.run(), Catch::Contains("'j'") && Catch::Contains("window(0)"));
  }
  CHECK(started == 0);
}

TEST_CASE("graph: a stop_token and the inactivity timeout stop a running graph", "[graph]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto endless = []() -> Generator<int> {
    for (int i = 0;; ++i) co_yield i;
  };
  auto slow = [](Stream<int> in) {
    for (int x : in) {
      (void)x;
      std::this_thread::sleep_for(1ms);
    }
  };
  std::stop_source stop;
  std::jthread canceller([&stop] {
    std::this_thread::sleep_for(50ms);
    stop.request_stop();
  });
  plumb::Graph graph{
      plumb::node<"endless">(plumb::stage(endless)),
      plumb::node<"a">(plumb::stage(times, 1), plumb::from<"endless">),
      plumb::node<"b">(plumb::stage(times, 2), plumb::from<"endless">),
      plumb::node<"slow">(plumb::stage(slow), plumb::from<"a", "b">),
  };
  plumb::RunOptions options;
  options.mode = mode;
  options.stop_token = stop.get_token();
  CHECK_THROWS_AS(graph.run(options), plumb::CancelledError);

  auto stuck = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 3) std::this_thread::sleep_for(600ms);
      co_yield x;
    }
  };
  auto drain = [](Stream<int> in) {
    for (int x : in) (void)x;
  };
  plumb::Graph idle{
      plumb::node<"src">(plumb::stage(numbers, 10)),
      plumb::node<"stuck">(plumb::stage(stuck), plumb::from<"src">),
      plumb::node<"sink">(plumb::stage(drain), plumb::from<"stuck">),
  };
  plumb::RunOptions timeout;
  timeout.mode = mode;
  timeout.inactivity_timeout = 100ms;
  CHECK_THROWS_AS(idle.run(timeout), plumb::InactivityError);
}

TEST_CASE("graph: in sequential mode two sinks of one node are a ConfigError", "[graph]") {
  // The calling thread runs one sink at a time, to its end: the second one's packets would pile
  // up meanwhile. A thread run has both at once; sinks with no common node run one by one.
  std::atomic<long> first{0};
  std::atomic<long> second{0};
  auto count_first = [&first](Stream<int> in) {
    for (int x : in) first += x >= 0;
  };
  auto count_second = [&second](Stream<int> in) {
    for (int x : in) second += x >= 0;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1000)),
      plumb::node<"first">(plumb::stage(count_first), plumb::from<"src">),
      plumb::node<"second">(plumb::stage(count_second), plumb::from<"src">),
  };
  CHECK_THROWS_WITH(graph.run(Mode::sequential), Catch::Contains("'second'") && Catch::Contains("'src'") &&
                                                     Catch::Contains("Mode::thread"));
  CHECK(first == 0);
  graph.run(Mode::thread);
  CHECK(first == 1000);
  CHECK(second == 1000);

  first = 0;
  second = 0;
  plumb::Graph apart{
      plumb::node<"a">(plumb::stage(numbers, 300)),
      plumb::node<"b">(plumb::stage(numbers, 200)),
      plumb::node<"first">(plumb::stage(count_first), plumb::from<"a">),
      plumb::node<"second">(plumb::stage(count_second), plumb::from<"b">),
  };
  apart.run(Mode::sequential);
  CHECK(first == 300);
  CHECK(second == 200);
}

TEST_CASE("mixed: a graph's nodes run in threads and worker processes at once", "[graph][process]") {
  // A source in the caller's process, branches in worker processes (one with 2 workers), a
  // join by key and the sink back in threads: every link kind at once.
  struct Key {
    int operator()(int x) const { return x / 2; }
    int operator()(const std::string& text) const { return std::stoi(text); }
  };
  auto as_text = [](Stream<int> in) -> Generator<std::string> {
    for (int x : in) {
      std::string text = std::to_string(x);
      co_yield text;
    }
  };
  auto check = [](Stream<std::tuple<int, std::string>> in) {
    long total = 0;
    for (auto& [doubled, text] : in) {
      if (doubled / 2 != std::stoi(text)) throw std::logic_error("wrong pair " + text);
      total += doubled / 2;
    }
    return total;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 2000)),
      plumb::node<"double">(plumb::stage(times, 2).mode(Mode::process).workers(2).in_flight(8),
                            plumb::from<"src">),
      plumb::node<"text">(plumb::stage(as_text).mode(Mode::process), plumb::from<"src">),
      plumb::node<"join">(plumb::stage(check), plumb::join_by_key<"double", "text">(Key{})),
  };
  CHECK(graph.run(Mode::thread) == 1999L * 2000 / 2);
  const plumb::Stats& stats = graph.last_stats();
  CHECK(stats.stages[1].mode == Mode::process);
  CHECK(stats.stages[3].mode == Mode::thread);
  CHECK(stats.stages[3].packets_in == 4000);
}

TEST_CASE("process mode: a packet over a node's max_message_size is that node's error",
          "[graph][process]") {
  auto big = [](Stream<int> in) -> Generator<std::string> {
    for (int x : in) {
      std::string text(static_cast<std::size_t>(x) * 100, 'x');
      co_yield text;
    }
  };
  auto drain = [](Stream<std::string> in) {
    std::size_t bytes = 0;
    for (std::string& text : in) bytes += text.size();
    return bytes;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 50)),
      plumb::node<"big">(plumb::stage(big).max_message_size(2000), plumb::from<"src">),
      plumb::node<"sink">(plumb::stage(drain), plumb::from<"big">),
  };
  CHECK_THROWS_WITH(graph.run(Mode::process),
                    Catch::Contains("'big'") && Catch::Contains("max_message_size(2000)"));
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "big");
}

TEST_CASE("graph: a route whose packets come in long runs of one kind, in every mode", "[graph]") {
  // The merge after the route pulls one branch while the route fills the other's queue: in a
  // sequential run that queue holds a whole run (here 100 packets), within its bound.
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto sorted_kinds = []() -> Generator<int> {
    for (int i = 0; i < 100; ++i) co_yield 2 * i + 1;  // odd first
    for (int i = 0; i < 100; ++i) co_yield 2 * i;      // then even
  };
  auto sum = [](Stream<int> in) {
    long total = 0;
    for (int x : in) total += x;
    return total;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(sorted_kinds),
                         plumb::route<"even", "odd">([](int x) { return static_cast<std::size_t>(x % 2); })),
      plumb::node<"odd">(plumb::stage(times, 1), plumb::from<"src">),
      plumb::node<"even">(plumb::stage(times, 1), plumb::from<"src">),
      plumb::node<"sum">(plumb::stage(sum), plumb::from<"odd", "even">),
  };
  CHECK(graph.run(mode) == 199L * 200 / 2);
}

TEST_CASE("graph: stream() gives the output node's packets, in every mode", "[graph][stream]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  // The graph with n4 yielding what it would print: the caller reads n4.
  auto tag = [](Stream<std::string> in) -> Generator<std::string> {
    for (std::string& text : in) {
      std::string tagged = "n4:" + text;
      co_yield tagged;
    }
  };
  plumb::Graph graph{
      plumb::node<"inp">(plumb::stage(strings, 200)),
      plumb::node<"n1">(plumb::stage(reverse_each), plumb::from<"inp">),
      plumb::node<"n2">(plumb::stage(upper_each), plumb::from<"n1">),
      plumb::node<"n3">(plumb::stage(lower_each), plumb::from<"n1", "n2">),
      plumb::node<"n4">(plumb::stage(tag).workers(2).in_flight(3), plumb::from<"n2", "n3">),
  };
  static_assert(decltype(graph)::yields);
  static_assert(std::is_same_v<decltype(graph)::value_type, std::string>);
  std::multiset<std::string> expected;
  for (int i = 0; i < 200; ++i) {
    const std::string text = "Str" + std::to_string(i) + "x";
    expected.insert("n4:" + upper(reversed(text)));
    expected.insert("n4:" + lower(reversed(text)));
    expected.insert("n4:" + lower(reversed(text)));
  }
  for (int round = 0; round < 2; ++round) {  // a graph streams again once its stream ended
    std::multiset<std::string> seen;
    for (std::string& text : graph.stream(mode)) seen.insert(std::move(text));
    CHECK(seen == expected);
    const plumb::Stats& stats = graph.last_stats();
    CHECK(stats.finished);
    // The caller is one more node, the last, as in a Pipeline's stream.
    REQUIRE(stats.stages.size() == 6);
    CHECK(stats.stages[4].name == "n4");
    CHECK(stats.stages[4].packets_out == 600);
    CHECK(stats.stages[5].name == "caller");
    CHECK(stats.stages[5].inputs == std::vector<std::size_t>{4});
    CHECK(stats.stages[5].packets_in == 600);
  }
}

TEST_CASE("graph: leaving a stream() loop early stops every node, and the graph runs again",
          "[graph][stream]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto endless = []() -> Generator<int> {
    for (int i = 0;; ++i) co_yield i;
  };
  plumb::Graph graph{
      plumb::node<"endless">(plumb::stage(endless)),
      plumb::node<"a">(plumb::stage(times, 1), plumb::from<"endless">),
      plumb::node<"b">(plumb::stage(times, -1), plumb::from<"endless">),
      plumb::node<"both">(plumb::stage(times, 10), plumb::from<"a", "b">),
  };
  for (int round = 0; round < 2; ++round) {
    long taken = 0;
    long sum = 0;
    for (int x : graph.stream(mode)) {
      sum += x;
      if (++taken == 1000) break;
    }
    CHECK(taken == 1000);
    CHECK(sum % 10 == 0);
    CHECK_FALSE(graph.last_failure());
    CHECK_FALSE(graph.last_stats().finished);
  }
  // The Results destroyed before its end stops the graph too, and close() on a stream that had
  // no error throws nothing.
  {
    auto results = graph.stream(mode);
    auto it = results.begin();
    REQUIRE(it != results.end());
  }
  auto results = graph.stream(mode);
  CHECK(results.begin() != results.end());
  CHECK_NOTHROW(results.close());
}

TEST_CASE("graph: a node's error is thrown from the stream() loop, naming the node", "[graph][stream]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  auto fragile = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 42) throw std::domain_error("42 is not welcome");
      co_yield x;
    }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1'000'000)),
      plumb::node<"fine">(plumb::stage(times, 1), plumb::from<"src">),
      plumb::node<"fragile">(plumb::stage(fragile), plumb::from<"src">),
      plumb::node<"out">(plumb::stage(times, 1), plumb::from<"fine", "fragile">),
  };
  long seen = 0;
  auto loop = [&] {
    for (int x : graph.stream(mode)) {
      (void)x;
      ++seen;
    }
  };
  CHECK_THROWS_AS(loop(), std::domain_error);
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "fragile");
  CHECK(graph.last_failure()->stage_index == 2);
  CHECK(seen < 2'000'000);

  // A bad option: a ConfigError from stream() itself, before anything runs, and the last
  // run's failure forgotten.
  plumb::Graph bad{
      plumb::node<"src">(plumb::stage(numbers, 10)),
      plumb::node<"join">(plumb::stage(times, 1).workers(0), plumb::from<"src">),
  };
  CHECK_THROWS_AS(bad.stream(mode), plumb::ConfigError);
  CHECK_FALSE(bad.last_failure());

  // The loop left before the error reached it (a break, or the loop's own exception): the
  // node's error is still the run's, in last_failure(). Thread mode: the node fails at 5 only
  // once the loop holds 4 (else the error could end the loop before 4 arrives).
  if (mode != Mode::thread) return;
  std::atomic<bool> holding_4{false};
  auto fails_at_5 = [&holding_4](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 5) {
        for (int i = 0; i < 500 && !holding_4; ++i) std::this_thread::sleep_for(10ms);
        throw std::domain_error("5 is not welcome");
      }
      co_yield x;
    }
  };
  plumb::Graph late{
      plumb::node<"src">(plumb::stage(numbers, 100)),
      plumb::node<"fails">(plumb::stage(fails_at_5), plumb::from<"src">),
  };
  for (int x : late.stream(mode)) {
    if (x == 4) {
      holding_4 = true;
      std::this_thread::sleep_for(100ms);  // packet 5 fails meanwhile
      break;
    }
  }
  REQUIRE(late.last_failure());
  CHECK(late.last_failure()->stage_name == "fails");
  CHECK_THAT(late.last_failure()->what, Catch::Contains("5 is not welcome"));
}

TEST_CASE("graph: a stream's other sinks run beside its output in thread mode, not in sequential mode", "[graph][stream]") {
  std::atomic<long> logged{0};
  auto log = [&logged](Stream<int> in) {
    for (int x : in) logged += x;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1000)),
      plumb::node<"twice">(plumb::stage(times, 2), plumb::from<"src">),
      plumb::node<"log">(plumb::stage(log), plumb::from<"src">),
  };
  long sum = 0;
  for (int x : graph.stream(Mode::thread)) sum += x;
  CHECK(sum == 999L * 1000);
  CHECK(logged == 999L * 1000 / 2);
  // In sequential mode the calling thread pulls the output only: the sink would never run.
  try {
    for (int x : graph.stream(Mode::sequential)) (void)x;
    FAIL("expected a ConfigError");
  } catch (const plumb::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::Contains("'log'") && Catch::Contains("Mode::thread"));
  }
}

TEST_CASE("graph: the stream's output node runs at most its in_flight ahead of the loop",
          "[graph][stream]") {
  std::atomic<int> made{0};
  auto counted = [&made](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      ++made;
      co_yield x;
    }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 1000)),
      plumb::node<"a">(plumb::stage(times, 1), plumb::from<"src">),
      plumb::node<"b">(plumb::stage(times, 2), plumb::from<"src">),
      plumb::node<"out">(plumb::stage(counted).in_flight(4), plumb::from<"a", "b">),
  };
  int taken = 0;
  int most_ahead = 0;
  for (int x : graph.stream(Mode::thread)) {
    (void)x;
    ++taken;
    if (taken % 50 == 0) std::this_thread::sleep_for(2ms);  // let it run ahead if it can
    most_ahead = std::max(most_ahead, made.load() - taken);
  }
  CHECK(taken == 2000);
  // out's packets: the one the loop holds and 4 slots; one more may be made and wait for a slot.
  CHECK(most_ahead <= 5);
}

TEST_CASE("graph: an ordered node's packets leave in its input's order on every edge, in every mode",
          "[graph][ordered]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  // Four workers that take uneven time, and yield 0, 1 or 2 packets per input: what leaves is
  // still every input's packets in input order, on both edges (a broadcast to a sink and to a
  // join by order, which an ordered node may feed).
  auto uneven = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200 + 50 * (x % 5)));
      if (x % 5 == 0) continue;  // nothing for this input
      co_yield x;
      if (x % 3 == 0) {
        const int again = -x;
        co_yield again;
      }
    }
  };
  auto expected = [](int count) {
    std::vector<int> out;
    for (int x = 0; x < count; ++x) {
      if (x % 5 == 0) continue;
      out.push_back(x);
      if (x % 3 == 0) out.push_back(-x);
    }
    return out;
  };
  auto pairs_ok = [](Stream<std::tuple<int, int>> in) {
    std::vector<int> order;
    for (const auto& [a, b] : in) {
      if (a != b) throw std::logic_error("a pair of different packets");
      order.push_back(a);
    }
    return order;
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 600).in_flight(8)),  // several inputs at once
      plumb::node<"uneven">(plumb::stage(uneven).workers(4).in_flight(6).ordered(), plumb::from<"src">),
      plumb::node<"same">(plumb::stage(times, 1), plumb::from<"uneven">),
      plumb::node<"pairs">(plumb::stage(pairs_ok), plumb::join<"uneven", "same">),
  };
  CHECK(graph.run(mode) == expected(600));
  CHECK(graph.last_stats().stages[1].packets_in == 600);

  // Round robin from an ordered node: packet i of the node goes to branch i mod 2, as with one
  // worker, so a join by order behind the two branches pairs packets 2k and 2k + 1.
  auto slow_some = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
      co_yield x;
    }
  };
  auto neighbours = [](Stream<std::tuple<int, int>> in) {
    long pairs = 0;
    for (const auto& [even, odd] : in) {
      if (even % 2 != 0 || odd != even + 1) throw std::logic_error("not neighbours");
      ++pairs;
    }
    return pairs;
  };
  plumb::Graph turns{
      plumb::node<"src">(plumb::stage(numbers, 800).in_flight(8)),
      plumb::node<"spread">(plumb::stage(slow_some).workers(4).ordered(), plumb::from<"src">,
                            plumb::round_robin<"a", "b">),
      plumb::node<"a">(plumb::stage(times, 1), plumb::from<"spread">),
      plumb::node<"b">(plumb::stage(times, 1), plumb::from<"spread">),
      plumb::node<"pairs">(plumb::stage(neighbours), plumb::join<"a", "b">),
  };
  CHECK(turns.run(mode) == 400);

  // Streamed: the caller reads an ordered node.
  plumb::Graph streamed{
      plumb::node<"src">(plumb::stage(numbers, 300).in_flight(8)),
      plumb::node<"uneven">(plumb::stage(uneven).workers(3).ordered(), plumb::from<"src">),
  };
  std::vector<int> seen;
  for (int x : streamed.stream(mode)) seen.push_back(x);
  CHECK(seen == expected(300));
}

TEST_CASE("graph: an ordered node's error or a stop ends the run, never a wait for a turn",
          "[graph][ordered]") {
  const Mode mode = GENERATE(every_mode());
  CAPTURE(plumb::test::mode_name(mode));
  // Worker of input 100 fails while later inputs wait for their turn behind it.
  auto fails_at_100 = [](Stream<int> in) -> Generator<int> {
    for (int x : in) {
      if (x == 100) throw std::domain_error("100 is not welcome");
      co_yield x;
    }
  };
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(numbers, 100'000)),
      plumb::node<"ordered">(plumb::stage(fails_at_100).workers(4).ordered(), plumb::from<"src">),
      plumb::node<"sink">(plumb::stage(collect_all<int>), plumb::from<"ordered">),
  };
  CHECK_THROWS_AS(graph.run(mode), std::domain_error);
  REQUIRE(graph.last_failure());
  CHECK(graph.last_failure()->stage_name == "ordered");

  plumb::Graph early{
      plumb::node<"src">(plumb::stage(numbers, 100'000).in_flight(8)),
      plumb::node<"ordered">(plumb::stage(times, 1).workers(4).ordered(), plumb::from<"src">),
  };
  int taken = 0;
  for (int x : early.stream(mode)) {
    REQUIRE(x == taken);
    if (++taken == 500) break;
  }
  CHECK(taken == 500);
}
