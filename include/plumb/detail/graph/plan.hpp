#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/plan.hpp: a graph run's plan: each node's workers, mode and slots, each input
// link's size, a join's window; and the run-time checks (ConfigError) done before anything runs.

#include <plumb/detail/graph/rules.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace plumb::detail {

inline constexpr std::size_t kSequentialQueue = 256;

// What the plan needs to know of a node's place in the graph (from its Topology).
struct GraphNodeShape {
  std::vector<std::size_t> producers;      // per input port: the node it comes from
  FanInKind kind = FanInKind::none;
  std::optional<std::size_t> window;       // a join's .window()
  bool returns_value = false;              // a sink whose value run() returns
  bool sink = false;                       // no node reads it
};

// The nodes node `k` reads from, however far up (k itself excluded).
inline std::vector<bool> graph_ancestors(std::span<const GraphNodeShape> shapes, std::size_t k) {
  std::vector<bool> seen(shapes.size(), false);
  std::vector<std::size_t> todo(shapes[k].producers.begin(), shapes[k].producers.end());
  while (!todo.empty()) {
    const std::size_t up = todo.back();
    todo.pop_back();
    if (seen[up]) continue;
    seen[up] = true;
    todo.insert(todo.end(), shapes[up].producers.begin(), shapes[up].producers.end());
  }
  return seen;
}

struct GraphNodePlan {
  std::size_t workers = 1;
  Mode mode = Mode::thread;
  std::size_t capacity = 1;         // slots per edge that leaves it (its in_flight)
  std::size_t inbox_capacity = 0;   // slots of its input link: its inputs' capacities, summed
  std::size_t inbox_producers = 0;  // workers that write its input link (one per port each)
  std::size_t window = 0;           // a join: packets that may wait for partners
  bool ordered = false;             // several workers whose packets leave in input order (order.hpp)
};

struct GraphPlan {
  Mode mode = Mode::thread;
  std::vector<GraphNodePlan> nodes;
  // Every packet the graph can hold at once: its links' slots and one per worker. A join's
  // default window.
  std::size_t total_in_flight = 0;
  // The bound of a node's queue in a sequential run, where one branch may fill a queue while
  // another is pulled: the total in flight, at least kSequentialQueue.
  std::size_t sequential_queue = 0;
  std::size_t total_workers = 0;
};

// The sources node `k` descends from (itself, if it is one).
inline std::vector<bool> graph_sources(std::span<const GraphNodeShape> shapes, std::size_t k) {
  std::vector<bool> up = graph_ancestors(shapes, k);
  up[k] = true;
  for (std::size_t a = 0; a < shapes.size(); ++a) up[a] = up[a] && shapes[a].producers.empty();
  return up;
}

// Whether node `k` reads two or more different nodes (a merge interleaves them as they come).
inline bool merges_distinct(const GraphNodeShape& shape, FanInKind kind) {
  if (kind != FanInKind::merge) return false;
  for (std::size_t producer : shape.producers) {
    if (producer != shape.producers.front()) return true;
  }
  return false;
}

// A join holds the packets of its faster inputs until their partners arrive. What bounds that is
// backpressure from a common source: every source upstream of one input must be upstream of
// every other input, or a source that feeds only one input runs ahead of the others without
// limit (and the join's window fails at random). And a join by order pairs the i-th packet of
// each input, so nothing upstream may reorder packets: no node with several workers, and no
// merge of two different nodes (it interleaves them as they come).
inline void check_join(std::span<const GraphNodeShape> shapes, std::span<const std::string> names,
                       const GraphPlan& plan, std::size_t k) {
  const GraphNodeShape& shape = shapes[k];
  const std::vector<bool> first = graph_sources(shapes, shape.producers.front());
  for (std::size_t port = 1; port < shape.producers.size(); ++port) {
    if (graph_sources(shapes, shape.producers[port]) != first) {
      throw_config_error(k, names[k],
                         "the join's inputs '{}' and '{}' do not come from the same sources, so "
                         "nothing holds the faster one back and the packets waiting for partners "
                         "would grow without bound; join inputs that branch from common sources, "
                         "or yield the pairs from one source",
                         names[shape.producers.front()], names[shape.producers[port]]);
    }
  }
  if (shape.kind != FanInKind::join) return;
  const std::vector<bool> up = graph_ancestors(shapes, k);
  for (std::size_t a = 0; a < shapes.size(); ++a) {
    if (!up[a]) continue;
    if (plan.nodes[a].workers > 1 && !plan.nodes[a].ordered) {
      throw_config_error(k, names[k],
                         "a join by order pairs the i-th packet of each input, but node '{}' "
                         "before it has {} workers, which reorder packets; give '{}' .ordered() "
                         "or one worker, or join by key (plumb::join_by_key)",
                         names[a], plan.nodes[a].workers, names[a]);
    }
    if (merges_distinct(shapes[a], shapes[a].kind)) {
      throw_config_error(k, names[k],
                         "a join by order pairs the i-th packet of each input, but node '{}' "
                         "before it merges several nodes, interleaving their packets as they "
                         "come; join by key (plumb::join_by_key)",
                         names[a]);
    }
  }
}

// In a sequential run the calling thread runs one sink at a time, each to its end: two sinks
// that read a common node would need every packet for the second one held until the first one
// ended, so such a graph is rejected (independent sinks, with no common node, run one after
// the other).
inline void check_sequential_sinks(std::span<const GraphNodeShape> shapes, std::span<const std::string> names) {
  std::vector<std::size_t> sinks;
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    if (shapes[k].sink) sinks.push_back(k);
  }
  for (std::size_t i = 0; i < sinks.size(); ++i) {
    const std::vector<bool> first = graph_ancestors(shapes, sinks[i]);
    for (std::size_t j = i + 1; j < sinks.size(); ++j) {
      const std::vector<bool> second = graph_ancestors(shapes, sinks[j]);
      for (std::size_t a = 0; a < shapes.size(); ++a) {
        if (!first[a] || !second[a]) continue;
        throw_config_error(sinks[j], names[sinks[j]],
                           "in Mode::sequential the calling thread runs one sink at a time, and "
                           "this sink reads node '{}' as sink '{}' does, which would hold every "
                           "packet for this one until '{}' ended; run the graph in Mode::thread, "
                           "or merge the two sinks into one",
                           names[a], names[sinks[i]], names[sinks[i]]);
      }
    }
  }
}

// Throws ConfigError for what a graph run cannot do or what could go wrong silently.
inline GraphPlan make_graph_plan(std::span<const StageOptions* const> options,
                                 std::span<const std::string> names,
                                 std::span<const GraphNodeShape> shapes, Mode run_mode) {
  validate_stages(options, names, false);
  const std::size_t count = options.size();
  GraphPlan plan;
  plan.mode = run_mode;
  plan.nodes.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    const StageOptions& node = *options[k];
    GraphNodePlan& planned = plan.nodes[k];
    const Mode mode = node.mode.value_or(run_mode);
    if (run_mode == Mode::sequential && mode != Mode::sequential) {
      throw_config_error(k, names[k],
                         "a graph in Mode::sequential runs every node in the calling thread, and "
                         "this node asks for Mode::{}; run the graph in Mode::thread or "
                         "Mode::process (nodes may then mix thread and process), or remove .mode()",
                         mode == Mode::thread ? "thread" : "process");
    }
    if (run_mode != Mode::sequential && mode == Mode::sequential) {
      throw_config_error(k, names[k],
                         "a graph node runs with workers of its own (it is never fused into "
                         "another node), so .mode(Mode::sequential) cannot apply; remove it, or "
                         "run the whole graph in Mode::sequential");
    }
    planned.mode = mode;
    planned.workers = mode == Mode::sequential ? 1 : static_cast<std::size_t>(node.workers);
    planned.capacity = static_cast<std::size_t>(effective_in_flight(node));
    const GraphNodeShape& shape = shapes[k];
    if (node.ordered && shape.producers.empty()) {
      throw_config_error(k, names[k],
                         "ordered() keeps a node's packets in the order of its input, and a "
                         "source has no input; remove .ordered()");
    }
    if (node.ordered && shape.sink) {
      throw_config_error(k, names[k],
                         "ordered() keeps a node's packets in the order of its input, and a sink "
                         "sends none; remove .ordered(), or put it on the node before");
    }
    planned.ordered = node.ordered && planned.workers > 1;
    const bool join = shape.kind == FanInKind::join || shape.kind == FanInKind::join_by_key;
    if (join && planned.workers != 1) {
      throw_config_error(k, names[k],
                         "a join pairs its inputs' packets in one place, so it runs one worker, "
                         "not workers({}); give the work to a node after the join",
                         node.workers);
    }
    if (shape.returns_value && planned.workers != 1) {
      throw_config_error(k, names[k],
                         "a sink that returns a value must have one worker, not workers({}), "
                         "since run() returns one value; return void, or keep one worker",
                         node.workers);
    }
    if (shape.window && *shape.window == 0) {
      throw_config_error(k, names[k], "window(0) lets no packet wait for its partners; give a "
                                      "window of at least 1, or leave it out for the default");
    }
  }
  for (std::size_t k = 0; k < count; ++k) {
    GraphNodePlan& planned = plan.nodes[k];
    for (std::size_t producer : shapes[k].producers) {
      planned.inbox_capacity += plan.nodes[producer].capacity;
      planned.inbox_producers += plan.nodes[producer].workers;
    }
    plan.total_in_flight += planned.inbox_capacity + planned.workers;
    plan.total_workers += planned.workers;
  }
  plan.sequential_queue = std::max(plan.total_in_flight, kSequentialQueue);
  for (std::size_t k = 0; k < count; ++k) {
    const GraphNodeShape& shape = shapes[k];
    plan.nodes[k].window = shape.window.value_or(plan.total_in_flight);
    if (shape.kind == FanInKind::join || shape.kind == FanInKind::join_by_key) check_join(shapes, names, plan, k);
  }
  if (run_mode == Mode::sequential) check_sequential_sinks(shapes, names);
  return plan;
}

}  // namespace plumb::detail
