#pragma once
// SPDX-License-Identifier: MIT
// plumb/graph.hpp: Graph<Nodes...>, a pipeline that branches and joins: nodes named at compile
// time, fan-out (broadcast, route, round robin), fan-in (merge, join by order or by key), its
// compile-time rules and run().

#include <plumb/detail/graph/plan.hpp>
#include <plumb/detail/graph/rules.hpp>
#include <plumb/detail/graph/sequential_run.hpp>
#include <plumb/detail/graph/setup.hpp>
#include <plumb/detail/graph/stream.hpp>
#include <plumb/detail/graph/spec.hpp>
#include <plumb/detail/graph/parallel_run.hpp>
#include <plumb/detail/graph/topology.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/error.hpp>
#include <plumb/pipeline.hpp>
#include <plumb/results.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stats.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb {

/// A directed acyclic graph of stages: sources, nodes that read one or more other nodes, sinks.
///
/// Each node is `plumb::node<"name">(plumb::stage(...), inputs, fan-out)`, listed after the
/// nodes it reads. A node without inputs is a source; a node that no node reads is a sink. By
/// default every packet a node yields goes to every node that reads it (a copy each, the last
/// one moved); plumb::route and plumb::round_robin send it to one of them. A node reads one
/// input, or several merged (plumb::from<"a", "b">: one type, interleaved as they come), or
/// joined into tuples (plumb::join<"a", "b">: the i-th of each; plumb::join_by_key: equal keys).
///
/// Checked at compile time: names are unique and name earlier nodes (so there is no cycle),
/// the types agree on every edge, a join's node takes the tuple of its inputs, a node that
/// others read yields, a node nobody reads is a sink, a route names exactly the nodes that read
/// it. Every broken rule is a static_assert starting `plumb::Graph:`.
///
/// One node may yield without readers: the graph's output, read with `stream()` (as a
/// Pipeline's last stage); a graph without one is run with `run()`.
///
/// Runs in Mode::sequential (every node in the calling thread), Mode::thread or Mode::process
/// (each node's workers on threads or in worker processes of their own, every node's input a
/// bounded link; nodes may mix thread and process with `.mode()`). Errors, stop and the
/// inactivity timeout behave as in a Pipeline: the first error wins and is thrown from run()
/// (with its original type in sequential and thread mode); `last_failure()` names the node.
///
/// Example (the graph of docs/guide.md, "Graphs"):
/// ```cpp
/// plumb::Graph graph{
///     plumb::node<"inp">(plumb::stage(random_strings, 100)),
///     plumb::node<"n1">(plumb::stage(reverse), plumb::from<"inp">),
///     plumb::node<"n2">(plumb::stage(upper), plumb::from<"n1">),
///     plumb::node<"n3">(plumb::stage(lower), plumb::from<"n1", "n2">),
///     plumb::node<"n4">(plumb::stage(print), plumb::from<"n2", "n3">),
/// };
/// graph.run(plumb::Mode::thread);
/// ```
template <class... Nodes>
class Graph {
  static_assert(sizeof...(Nodes) >= 2, "plumb::Graph: needs a source node and at least one more node");
  static constexpr bool kOk = detail::GraphRules<Nodes...>::ok;
  using Topo = detail::Topology<Nodes...>;
  using Base = detail::GraphRunBase<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);
  static constexpr std::size_t kOutput =
      detail::GraphRules<Nodes...>::output_node(std::index_sequence_for<Nodes...>{});

 public:
  /// What `run()` returns: the value of the one sink that returns one, else void.
  using result_type = std::conditional_t<kOk, typename Base::Result, detail::Rejected>;
  /// True when the graph has an output: a node that yields and that no node reads, whose
  /// packets `stream()` gives.
  static constexpr bool yields = kOk && kOutput < kCount;
  /// What `stream()` iterates: the output node's packets (void without one).
  using value_type = std::conditional_t<yields, typename detail::Topology<Nodes...>::template Output<(yields ? kOutput : 0)>, void>;

 private:
  using streamed_type = std::conditional_t<yields, value_type, detail::Rejected>;

 public:
  /// Number of nodes.
  static constexpr std::size_t size = kCount;

  /// Takes the nodes, each listed after the nodes it reads.
  explicit Graph(Nodes... nodes) : nodes_(std::move(nodes)...) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() = default;

  /// Runs the graph in `Mode::thread` to completion.
  result_type run() { return run(RunOptions{}); }

  /// Runs the graph in `mode` to completion.
  result_type run(Mode mode) {
    RunOptions options;
    options.mode = mode;
    return run(options);
  }

  /// Runs the graph to completion and returns the value of its sink that returns one (if any).
  ///
  /// Throws: `ConfigError` before anything runs if a node's options are invalid or the graph
  /// cannot run as asked (see the guide); otherwise the first error of the run, as
  /// `Pipeline::run()`.
  result_type run(const RunOptions& options) {
    static_assert(!kOk || !yields,
                  "plumb::Graph: the graph's output node yields packets that no node reads; "
                  "iterate them with graph.stream(), or add a sink that reads them");
    if constexpr (kOk && !yields) {
      const detail::RunGuard guard(running_);
      last_failure_.reset();
      last_stats_ = Stats{};
      const detail::GraphSetup<Nodes...> setup(nodes_, options, Base::kValueSink);
      detail::RunState state;
      std::optional<typename Base::ResultStore> result;
      if (setup.plan.mode == Mode::sequential) {
        detail::GraphSequentialRun<Nodes...> runner(nodes_, setup.plan, setup.names, state, options, setup.shapes);
        runner.run(last_stats_);
        result.emplace(std::move(runner.result()));
      } else {
        detail::GraphParallelRun<Nodes...> runner(nodes_, setup.plan, setup.names, state, options, setup.shapes,
                                                  setup.max_message_sizes, arena_);
        runner.run(last_stats_);
        result.emplace(std::move(runner.result()));
      }
      if (const std::exception_ptr error = state.error()) {
        last_failure_ = state.failure();
        std::rethrow_exception(error);
      }
      if constexpr (!std::is_void_v<result_type>) {
        PLUMB_ASSERT(result->has_value(), "plumb: the graph's sink finished without a result");
        return std::move(**result);
      }
    } else if constexpr (!std::is_void_v<result_type>) {
      return result_type{};  // not reached: a static_assert has failed
    }
  }

  /// Starts the graph in `Mode::thread` and returns its output node's packets as a range.
  Results<streamed_type> stream() { return stream(RunOptions{}); }

  /// Starts the graph in `mode` and returns its output node's packets as a range.
  Results<streamed_type> stream(Mode mode) {
    RunOptions options;
    options.mode = mode;
    return stream(options);
  }

  /// Starts the graph, whose output node (the one that yields and that no node reads) the
  /// calling thread then reads: `for (T& packet : graph.stream(options)) ...`, as
  /// `Pipeline::stream()` (the caller is one more node reading the output, in_flight of the
  /// output node's slots; early exit stops the graph; errors are thrown from the loop; in
  /// `Mode::sequential` the nodes run in the calling thread, inside the loop's `++`).
  ///
  /// Preconditions: the Graph outlives the Results, and is not run or streamed again before
  /// the Results is closed, finished or destroyed (a second use aborts).
  /// Throws: `ConfigError` before anything runs if a node's options are invalid.
  Results<streamed_type> stream(const RunOptions& options) {
    static_assert(!kOk || yields,
                  "plumb::Graph: stream() iterates the packets of the graph's output (a node that "
                  "yields and that no node reads), but this graph ends in sinks; call run()");
    static_assert(!yields || Base::kValueSink >= kCount,
                  "plumb::Graph: stream() reads the graph's output, so a sink that returns a value "
                  "has nobody to return it to; let every sink return void (or make that value a "
                  "packet of the output)");
    if constexpr (yields && Base::kValueSink >= kCount) {
      auto run = std::make_unique<detail::GraphStream<Nodes...>>(nodes_, options, running_, last_failure_,
                                                                  last_stats_, arena_);
      run->start();
      return Results<streamed_type>(std::move(run));
    } else {
      return Results<streamed_type>(nullptr);
    }
  }

  /// The node and worker that raised the error of the last run, as `Pipeline::last_failure()`
  /// (`stage_index` is the node's position in the graph).
  [[nodiscard]] const std::optional<Failure>& last_failure() const noexcept { return last_failure_; }

  /// What the last run measured, one StageStats per node in graph order (links are not
  /// reported per edge yet).
  [[nodiscard]] const Stats& last_stats() const noexcept { return last_stats_; }

  /// The nodes, in order.
  [[nodiscard]] const std::tuple<Nodes...>& nodes() const noexcept { return nodes_; }

 private:
  std::tuple<Nodes...> nodes_;
  std::optional<Failure> last_failure_;
  Stats last_stats_;
  std::atomic<bool> running_{false};
  detail::ArenaCache arena_;  // the shared mapping of the last run with worker processes, reused
};

/// Lets `plumb::Graph graph{plumb::node<"a">(...), ...}` deduce the node types.
template <class... Nodes>
Graph(Nodes...) -> Graph<Nodes...>;

}  // namespace plumb
