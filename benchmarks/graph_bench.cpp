// SPDX-License-Identifier: MIT
// benchmarks/graph_bench.cpp: a diamond graph, plumb::Graph against oneTBB's flow graph on the
// same work. A source of numbered messages broadcasts each to two branches, `bump` (adds 1 to
// every element, as the pipeline rows' middle stage) and `digest` (folds the message into a
// number); a join pairs the i-th result of each branch and the sink sums them into a checksum
// that every runner must reproduce. Two rows: graph/diamond (cheap branches, the small
// workload's 50,000 messages of 104 bytes) and graph/diamond_cpu (each branch also spins about
// 10 us per message, 5,000 messages: work that two cores can share).
//
// plumb: plumb::node<>s with in_flight(256) per node, a join by order (plumb::join). oneTBB:
// tbb::flow::graph with an input_node, two serial function_nodes fed by the input node's edges
// (a broadcast), a queueing join_node (pairs by order of arrival, as plumb::join) and a serial
// sink; its buffers are unbounded. Names: graph/<row>/<runner>.

#include "context_switches.hpp"
#include "registry.hpp"
#include "spin.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <oneapi/tbb/flow_graph.h>
#include <plumb/graph.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>

namespace bench {
namespace {

struct Row {
  std::string_view name;
  std::int64_t count;
  bool spins;  // each branch spins ~10 us per message
};
constexpr std::array<Row, 2> kRows{{{"diamond", 50'000, false}, {"diamond_cpu", 5'000, true}}};

// The branches' work, shared by every runner. spin() results are folded in as 0 (x & 0) so
// that the checksum does not depend on the rounds, and the work cannot be dropped.
Small bump(Small message, std::uint64_t rounds) {
  SmallWork::bump(message);
  message.values[1] += static_cast<std::int32_t>(spin(rounds, static_cast<std::uint64_t>(message.id)) & 0);
  return message;
}
std::int64_t digest(const Small& message, std::uint64_t rounds) {
  return SmallWork::digest(message) +
         static_cast<std::int64_t>(spin(rounds, static_cast<std::uint64_t>(message.id) + 1) & 0);
}

std::int64_t expected(std::int64_t count) {
  std::int64_t sum = 0;
  for (std::int64_t id = 0; id < count; ++id) {
    Small message = SmallWork::make(id);
    const std::int64_t original = SmallWork::digest(message);
    SmallWork::bump(message);
    sum += SmallWork::digest(message) + original;
  }
  return sum;
}

void check(std::string_view runner, const Row& row, std::int64_t sum) {
  if (sum != expected(row.count)) {
    throw std::runtime_error(fmt::format("graph/{}/{}: checksum {} instead of {}", row.name, runner,
                                         sum, expected(row.count)));
  }
}

plumb::Generator<Small> messages(std::int64_t count) {
  for (std::int64_t id = 0; id < count; ++id) {
    Small message = SmallWork::make(id);
    co_yield message;
  }
}
plumb::Generator<Small> bumped(plumb::Stream<Small> in, std::uint64_t rounds) {
  for (Small& message : in) {
    Small out = bump(message, rounds);
    co_yield out;
  }
}
plumb::Generator<std::int64_t> digested(plumb::Stream<Small> in, std::uint64_t rounds) {
  for (const Small& message : in) {
    std::int64_t value = digest(message, rounds);
    co_yield value;
  }
}
std::int64_t summed(plumb::Stream<std::tuple<Small, std::int64_t>> in) {
  std::int64_t sum = 0;
  for (auto& [message, original] : in) sum += SmallWork::digest(message) + original;
  return sum;
}

void run_plumb(benchmark::State& state, const Row& row, plumb::Mode mode) {
  const std::uint64_t rounds = row.spins ? rounds_for(10.0) : 0;
  constexpr std::int64_t kInFlight = 256;
  plumb::Graph graph{
      plumb::node<"source">(plumb::stage(messages, row.count).in_flight(kInFlight)),
      plumb::node<"bump">(plumb::stage(bumped, rounds).in_flight(kInFlight), plumb::from<"source">),
      plumb::node<"digest">(plumb::stage(digested, rounds).in_flight(kInFlight), plumb::from<"source">),
      plumb::node<"join">(plumb::stage(summed), plumb::join<"bump", "digest">),
  };
  plumb::RunOptions options;
  options.mode = mode;
  options.timing = false;
  const ContextSwitches switches;
  for (auto _ : state) check("plumb", row, graph.run(options));
  switches.report(state, row.count);
  state.SetItemsProcessed(state.iterations() * row.count);
}

void run_tbb_flow(benchmark::State& state, const Row& row) {
  namespace flow = oneapi::tbb::flow;
  const std::uint64_t rounds = row.spins ? rounds_for(10.0) : 0;
  const ContextSwitches switches;
  for (auto _ : state) {
    flow::graph graph;
    std::int64_t next = 0;
    std::int64_t sum = 0;
    flow::input_node<Small> source(graph, [&](oneapi::tbb::flow_control& control) {
      if (next == row.count) {
        control.stop();
        return Small{};
      }
      return SmallWork::make(next++);
    });
    flow::function_node<Small, Small> bump_node(graph, flow::serial,
                                                [rounds](Small message) { return bump(message, rounds); });
    flow::function_node<Small, std::int64_t> digest_node(
        graph, flow::serial, [rounds](const Small& message) { return digest(message, rounds); });
    flow::join_node<std::tuple<Small, std::int64_t>, flow::queueing> join(graph);
    flow::function_node<std::tuple<Small, std::int64_t>> sink(
        graph, flow::serial, [&sum](const std::tuple<Small, std::int64_t>& pair) {
          sum += SmallWork::digest(std::get<0>(pair)) + std::get<1>(pair);
          return flow::continue_msg{};
        });
    flow::make_edge(source, bump_node);
    flow::make_edge(source, digest_node);
    flow::make_edge(bump_node, flow::input_port<0>(join));
    flow::make_edge(digest_node, flow::input_port<1>(join));
    flow::make_edge(join, sink);
    source.activate();
    graph.wait_for_all();
    check("tbb_flow", row, sum);
  }
  switches.report(state, row.count);
  state.SetItemsProcessed(state.iterations() * row.count);
}

}  // namespace

void register_graph() {
  for (const Row& row : kRows) {
    const auto name = [&](std::string_view runner) { return fmt::format("graph/{}/{}", row.name, runner); };
    add(name("plumb_sequential"), false,
        [row](benchmark::State& state) { run_plumb(state, row, plumb::Mode::sequential); });
    add(name("plumb_thread"), true,
        [row](benchmark::State& state) { run_plumb(state, row, plumb::Mode::thread); });
    add(name("plumb_process"), true,
        [row](benchmark::State& state) { run_plumb(state, row, plumb::Mode::process); });
    add(name("tbb_flow"), true, [row](benchmark::State& state) { run_tbb_flow(state, row); });
  }
}

}  // namespace bench
