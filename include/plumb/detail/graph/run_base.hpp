#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/run_base.hpp: what both graph runners share: each worker's WorkerInfo, the
// statistics blocks and the monitor (a group per node), a node's stage called over its input,
// the errors charged to a node, and the sink's value.

#include <plumb/detail/core/input.hpp>
#include <plumb/detail/exec/executor.hpp>
#include <plumb/detail/graph/join.hpp>
#include <plumb/detail/graph/plan.hpp>
#include <plumb/detail/graph/topology.hpp>
#include <plumb/detail/run/monitor.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/stage_chain.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stats.hpp>
#include <plumb/worker.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plumb::detail {

// The JoinInput of a joining node K (a std::tuple<T...> element) over its raw input.
template <class Topo, std::size_t K, class Tuple = typename Topo::template Element<K>>
struct JoinFor;
template <class FanIn, class Key, class... T>
struct MatcherOf {
  using type = OrderMatcher<T...>;
  static type make(const FanIn& /*fan_in*/) { return type{}; }
};
template <class KeyFn, NodeName... Names, class Key, class... T>
struct MatcherOf<JoinByKey<KeyFn, Names...>, Key, T...> {
  using type = KeyMatcher<Key, KeyFn, T...>;
  static type make(const JoinByKey<KeyFn, Names...>& fan_in) { return type(fan_in.key); }
};

template <class Topo, std::size_t K, class... T>
struct JoinFor<Topo, K, std::tuple<T...>> {
  using FanIn = typename Topo::template NodeAt<K>::fan_in_type;
  using Matchers = MatcherOf<FanIn, typename Topo::template Rules<K>::key_type, T...>;
  using type = JoinInput<typename Matchers::type, T...>;
};

template <class... Nodes>
class GraphRunBase {
 protected:
  using Topo = Topology<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);
  template <std::size_t K>
  using Element = typename Topo::template Element<K>;
  template <std::size_t K>
  using Output = typename Topo::template Output<K>;

 public:
  // The value of the one sink that returns one (run()'s result), if any.
  static constexpr std::size_t kValueSink = GraphRules<Nodes...>::value_sink(std::index_sequence_for<Nodes...>{});
  using Result = std::conditional_t<kValueSink == kCount, void,
                                    typename Topo::template Rules<(kValueSink < kCount ? kValueSink : 0)>::result>;
  using ResultStore = std::conditional_t<std::is_void_v<Result>, std::monostate, std::optional<Result>>;

  GraphRunBase(const std::tuple<Nodes...>& nodes, const GraphPlan& plan,
               const std::vector<std::string>& names, RunState& state, const RunOptions& options,
               std::span<const GraphNodeShape> shapes)
      : nodes_(nodes), plan_(plan), names_(names), state_(state), options_(options) {
    for (std::size_t k = 0; k < kCount; ++k) {
      graph_layout_.inputs.push_back(shapes[k].producers);
      graph_layout_.capacity.push_back(plan.nodes[k].inbox_capacity);
      graph_layout_.sink.push_back(shapes[k].sink);
    }
    graph_layout_.shared.assign(kCount, false);
    monitor_plan_.fused.assign(kCount, false);
    monitor_plan_.capacity.assign(kCount, 0);  // no per-link statistics for a graph's links yet
    for (std::size_t k = 0; k < kCount; ++k) {
      const GraphNodePlan& node = plan.nodes[k];
      monitor_plan_.groups.push_back(GroupPlan{k, k, node.workers, node.mode, false, false, true});
      first_worker_.push_back(infos_.size());
      for (std::size_t w = 0; w < node.workers; ++w) {
        std::vector<WorkerInfo> infos(kCount);
        infos[k] = WorkerInfo{names[k], k, w, node.workers};
        infos_.push_back(std::move(infos));
        node_of_.push_back(k);
      }
    }
    shared_.assign(kCount, false);
  }

  [[nodiscard]] ResultStore& result() noexcept { return result_; }

  // The calling thread's read of a stream failed (a packet of a worker process that cannot be
  // decoded): the run's error, if first, charged to the caller node (the last; stream() only).
  void caller_failed() noexcept {
    const std::exception_ptr error = std::current_exception();
    std::optional<Failure> failure;
    try {
      failure = make_failure(infos_.back()[kCount - 1], error);
    } catch (...) {
    }
    state_.fail(error, std::move(failure));
  }

 protected:
  // Calls sink K over `input` and keeps its value; it must have read its input to the end.
  template <std::size_t K>
  void call_sink(Input<Element<K>>* input, WorkerContext& context) {
    const WorkerInfo& info = context.info(K);
    const auto& spec = std::get<K>(nodes_).stage;
    auto callable = spec.callable();
    auto constants = spec.constants();
    using R = typename Topo::template Rules<K>::result;
    if constexpr (std::is_void_v<R>) {
      invoke_stage(callable, constants, input, info, context);
      if (input->has_unread()) throw_returned_early(context, info);
    } else {
      R value = invoke_stage(callable, constants, input, info, context);
      if (input->has_unread()) throw_returned_early(context, info);
      if constexpr (K == kValueSink) result_.emplace(std::move(value));
    }
  }

  // Wraps node K's raw input in its JoinInput, if it joins.
  template <std::size_t K, class Raw>
  Input<Element<K>>* joined(ChainStore& store, Raw& raw, WorkerContext& context) {
    if constexpr (Topo::template is_join<K>) {
      using Join = JoinFor<Topo, K>;
      return &store.add<typename Join::type>(raw, Join::Matchers::make(std::get<K>(nodes_).fan_in),
                                             plan_.nodes[K].window,
                                             JoinLabels{&context.info(K), Topo::template input_names<K>()});
    } else {
      return &raw;
    }
  }

  // A worker sent a packet into node `consumer`'s input link: counted in its own slot of that
  // node (GraphLayout: the link's queue in the statistics). One writer: the worker.
  static void count_send(WorkerTally& tally, std::size_t consumer) noexcept {
    StageSlot& slot = tally.slot(consumer);
    slot.out.store(slot.out.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The exception in flight left a worker of node `info`: the run's error, if first.
  void fail(WorkerContext& context, const WorkerInfo& info) noexcept {
    const std::exception_ptr error = std::current_exception();
    std::optional<Failure> failure;
    try {
      failure = context.failure_of(error, info);
    } catch (...) {
    }
    state_.fail(error, std::move(failure));
  }

  // `arena`: the run's shared mapping, or null without worker processes.
  Monitor& make_monitor(StatsBlocks& blocks, const RunOptions& options, const SharedArena* arena) {
    monitor_.emplace(options, state_, blocks,
                     RunLayout{names_, monitor_plan_, shared_, node_of_, &graph_layout_,
                               arena != nullptr ? shared_memory_stats(*arena) : SharedMemoryStats{}},
                     start_);
    return *monitor_;
  }

  const std::tuple<Nodes...>& nodes_;
  const GraphPlan& plan_;
  const std::vector<std::string>& names_;
  RunState& state_;
  const RunOptions& options_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::vector<std::vector<WorkerInfo>> infos_;  // per worker id
  std::vector<std::size_t> node_of_;            // per worker id
  std::vector<std::size_t> first_worker_;       // per node
  Plan monitor_plan_;                           // a group per node, for the Monitor
  GraphLayout graph_layout_;                    // the nodes' inputs and links, for the Monitor
  std::vector<bool> shared_;
  std::optional<Monitor> monitor_;
  ResultStore result_;
};

}  // namespace plumb::detail
