#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/stream.hpp: GraphStream, one Graph::stream(): the graph's nodes and one more,
// the caller's, reading the graph's output node; the calling thread iterates that node's input
// (Results<T>), in every mode.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/graph/parallel_run.hpp>
#include <plumb/detail/graph/rules.hpp>
#include <plumb/detail/graph/sequential_run.hpp>
#include <plumb/detail/graph/setup.hpp>
#include <plumb/detail/graph/spec.hpp>
#include <plumb/detail/graph/topology.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/error.hpp>
#include <plumb/pipeline.hpp>
#include <plumb/results.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>
#include <plumb/stats.hpp>
#include <plumb/stream.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <utility>

namespace plumb::detail {

// `Nodes...`: the user's graph, whose output node (the one that yields and that no node reads)
// the caller reads. The Graph keeps running (its RunGuard held here) until the stream ended or
// was closed.
template <class... Nodes>
class GraphStream final
    : public ResultsSource<typename NodeRules<GraphRules<Nodes...>::output_node(std::index_sequence_for<Nodes...>{}),
                                              Nodes...>::output> {
  static constexpr std::size_t kOutput = GraphRules<Nodes...>::output_node(std::index_sequence_for<Nodes...>{});
  using T = typename NodeRules<kOutput, Nodes...>::output;
  using OutputNode = std::tuple_element_t<kOutput, std::tuple<Nodes...>>;
  // The caller's node: the Pipeline's caller stage, a sink whose body never runs.
  using Caller = Node<"(caller)", Stage<CallerStage<T>>, From<OutputNode::node_name>, Broadcast>;
  using Sequential = GraphSequentialRun<Nodes..., Caller>;
  using Parallel = GraphParallelRun<Nodes..., Caller>;

 public:
  // `last_failure`, `last_stats`: the Graph's, set as the stream ends. `arena`: its shared mapping.
  GraphStream(const std::tuple<Nodes...>& nodes, const RunOptions& options, std::atomic<bool>& running,
              std::optional<Failure>& last_failure, Stats& last_stats, ArenaCache& arena)
      : guard_(running),
        options_(options),
        last_failure_(last_failure),
        last_stats_(last_stats),
        checked_(forget(last_failure, last_stats) && check_sequential_sinks(nodes, options)),
        nodes_(std::tuple_cat(nodes, std::tuple<Caller>(caller(options)))),
        setup_(nodes_, options_, GraphRunBase<Nodes...>::kValueSink) {
    if (setup_.plan.mode == Mode::sequential) {
      sequential_.emplace(nodes_, setup_.plan, setup_.names, state_, options_, setup_.shapes);
    } else {
      parallel_.emplace(nodes_, setup_.plan, setup_.names, state_, options_, setup_.shapes,
                        setup_.max_message_sizes, arena);
    }
  }
  GraphStream(const GraphStream&) = delete;
  GraphStream& operator=(const GraphStream&) = delete;
  // A started stream is always ended (Results calls close()); ending it here too keeps the
  // runner's threads from outliving it should that ever change.
  ~GraphStream() override {
    if (started_ && !ended_) close(true);
  }

  // Starts every node. Throws ConfigError (nothing started), or the run's first error.
  void start() {
    try {
      if (sequential_) {
        sequential_->start(true);
      } else {
        parallel_->start(true);
      }
      started_ = true;
    } catch (...) {
      last_failure_ = state_.failure();
      throw;
    }
    if (state_.error()) (void)next();  // the start failed: end the run, throw its error
  }

  T* next() override {
    if (!ended_) {
      try {
        T* packet = sequential_ ? sequential_->caller_next() : parallel_->caller_next();
        if (packet != nullptr) return packet;
      } catch (const Stopped&) {
        // the run's error is recorded elsewhere
      } catch (...) {
        if (sequential_) {
          sequential_->caller_failed();
        } else {
          parallel_->caller_failed();
        }
      }
    }
    end();
    rethrow();
    return nullptr;
  }

  // Quiet (the Results' destructor): an error the run had still reaches last_failure().
  void close(bool quiet) override {
    state_.fail(std::make_exception_ptr(StreamClosed{}), std::nullopt);
    end();
    try {
      rethrow();
    } catch (...) {
      if (!quiet) throw;
    }
  }

 private:
  // Called before anything that can throw: a ConfigError leaves no stale failure or statistics.
  static bool forget(std::optional<Failure>& last_failure, Stats& last_stats) {
    last_failure.reset();
    last_stats = Stats{};
    return true;
  }

  // In Mode::sequential the calling thread pulls the output only: a sink elsewhere in the graph
  // would never run. Before setup_, whose own check would blame the caller's node.
  static bool check_sequential_sinks(const std::tuple<Nodes...>& nodes, const RunOptions& options) {
    if (options.mode != Mode::sequential) return true;
    [&]<std::size_t... K>(std::index_sequence<K...>) { (check_not_sink<K>(nodes), ...); }(
        std::index_sequence_for<Nodes...>{});
    return true;
  }
  template <std::size_t K>
  static void check_not_sink(const std::tuple<Nodes...>& nodes) {
    if constexpr (Topology<Nodes...>::template is_sink<K>) {
      throw ConfigError(detail::format(
          "plumb.config_error: {} is a sink, but in Mode::sequential graph.stream() runs only the "
          "nodes its output reads, in the calling thread, so it would never run; stream the graph "
          "in Mode::thread or Mode::process, or read that node's packets through the output",
          describe_stage(K, std::get<K>(nodes).stage.options().name)));
    }
  }

  static Caller caller(const RunOptions& options) {
    Stage<CallerStage<T>> stage(CallerStage<T>{});
    stage.name(kCallerStageName);
    stage.mode(options.mode == Mode::sequential ? Mode::sequential : Mode::thread);
    return Caller{std::move(stage), From<OutputNode::node_name>{}, Broadcast{}};
  }

  // Waits for the end of every node (once).
  void end() noexcept {
    if (ended_ || !started_) {
      ended_ = true;
      return;
    }
    ended_ = true;
    try {
      if (sequential_) {
        sequential_->finish(last_stats_);
      } else {
        parallel_->finish(last_stats_);
      }
    } catch (...) {
      state_.fail(std::current_exception(), std::nullopt);
    }
  }

  // The run's error, if it had one other than the caller's own close.
  void rethrow() {
    const std::exception_ptr error = state_.error();
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const StreamClosed&) {
      return;
    } catch (...) {
      last_failure_ = state_.failure();
      throw;
    }
  }

  RunGuard guard_;
  RunOptions options_;
  std::optional<Failure>& last_failure_;
  Stats& last_stats_;
  bool checked_;  // forget() and check_sequential_sinks() ran, before setup_ can throw
  std::tuple<Nodes..., Caller> nodes_;
  GraphSetup<Nodes..., Caller> setup_;
  RunState state_;
  std::optional<Sequential> sequential_;
  std::optional<Parallel> parallel_;
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace plumb::detail
