#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/parallel_run.hpp: a graph run in Mode::thread, Mode::process or a mix of
// them: each node's workers on threads or in worker processes of their own, the input link of
// every node with inputs built by GraphLinks (links.hpp), supervised from the calling thread.
//
// Every node reads one link (a join reads its inputs' packets as variants from one link), so a
// worker waits for one of two things only: a packet on its node's input link, or a free slot on
// the input link of a node it sends to. Why that cannot deadlock: docs/design/graph.md.
//
// Order of the start, as a Pipeline's (runner.hpp): the shared mapping (if any worker is a
// process), the links, the worker processes (forked before any thread of the run exists), the
// stop_token callback, the worker threads; then the calling thread supervises.

#include <plumb/codec.hpp>
#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/process_executor.hpp>
#include <plumb/detail/exec/remote_result.hpp>
#include <plumb/detail/exec/supervisor.hpp>
#include <plumb/detail/exec/thread_executor.hpp>
#include <plumb/detail/graph/links.hpp>
#include <plumb/detail/graph/order.hpp>
#include <plumb/detail/graph/run_base.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <stop_token>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb::detail {

template <class... Nodes>
class GraphParallelRun : public GraphRunBase<Nodes...> {
  using Base = GraphRunBase<Nodes...>;
  using typename Base::Topo;
  using Base::kCount;
  using Base::kValueSink;
  using typename Base::Result;
  template <std::size_t K>
  using Element = typename Topo::template Element<K>;
  template <std::size_t K>
  using Output = typename Topo::template Output<K>;

 public:
  // `shapes` and `max_message_sizes`: per node (for the links). `arena`: the Graph's shared
  // mapping from earlier runs (reused when large enough), which receives this run's.
  GraphParallelRun(const std::tuple<Nodes...>& nodes, const GraphPlan& plan,
                   const std::vector<std::string>& names, RunState& state, const RunOptions& options,
                   std::span<const GraphNodeShape> shapes, std::span<const std::size_t> max_message_sizes,
                   ArenaCache& arena)
      : Base(nodes, plan, names, state, options, shapes),
        links_(plan, names, max_message_sizes, shapes),
        max_message_sizes_(max_message_sizes),
        processes_(state, arena, this->infos_, done_) {
    for (std::size_t k = 0; k < kCount; ++k) this->graph_layout_.shared[k] = links_.shared(k);
  }
  GraphParallelRun(const GraphParallelRun&) = delete;
  GraphParallelRun& operator=(const GraphParallelRun&) = delete;
  ~GraphParallelRun() { this->state_.clear_wakers(); }

  // Runs every worker to its end; the run's error (if any) is in the RunState, the value of
  // the sink that returns one in result().
  void run(Stats& stats) {
    start(false);
    finish(stats);  // supervises: no helper thread without a stream
  }

  // --- A stream (Graph::stream()): the last node stands for the calling thread -------------

  // Starts every worker; with `streams`, all but the last node's, whose input the calling
  // thread reads through caller_next(), and a helper thread supervises (finish() does, if it
  // cannot start). Throws ConfigError before anything runs.
  void start(bool streams) {
    links_.check_serializable();
    check_result_serializable();
    TickClock::init();  // before any fork (tally.hpp)
    ns_per_tick_ = this->options_.timing ? TickClock::ns_per_tick() : 1.0;
    const std::size_t caller = streams ? this->infos_.size() - 1 : this->infos_.size();
    std::vector<ForkedWorker> forked;
    for (std::size_t id = 0; id < this->infos_.size(); ++id) {
      const std::size_t k = this->node_of_[id];
      if (id == caller) continue;
      if (this->plan_.nodes[k].mode == Mode::process) {
        forked.push_back(ForkedWorker{id, k});
      } else {
        thread_ids_.push_back(id);
      }
    }
    if (!forked.empty()) {
      blocks_.emplace(this->infos_.size(), kCount,
                      processes_.map_run(links_, StatsBlocks::bytes_for(this->infos_.size(), kCount),
                                         result_bytes()));
    } else {
      blocks_.emplace(this->infos_.size(), kCount);
    }
    monitor_ = &this->make_monitor(*blocks_, this->options_,
                                   forked.empty() ? nullptr : &processes_.arena());
    links_.make(this->state_, forked.empty() ? nullptr : &processes_.arena());
    // From the first fork on, nothing may throw until finish() reaped every process.
    if (!forked.empty()) {
      auto child_main = [this](std::size_t id) noexcept { return run_in_process(id); };
      processes_.fork(forked, child_main);
    }
    cancel_.emplace(this->options_.stop_token, CancelRun{&this->state_});
    threads_.start(thread_ids_.size(), [this](std::size_t i) noexcept { run_worker(thread_ids_[i]); });
    if (!streams) return;
    try {
      caller_tally_.emplace(blocks_->clock(caller), blocks_->slots(caller), this->options_.timing, ns_per_tick_);
      caller_tally_->start();
      caller_input_ = &links_.template open<kCount - 1>(caller_store_, this->state_.stop_flag(), *caller_tally_);
      helper_ = std::jthread([this] { supervise_all(); });
    } catch (...) {
      this->state_.fail(std::current_exception(), std::nullopt);  // finish() supervises then
    }
  }

  // The calling thread's next packet of the stream, nullptr at its end; throws Stopped once the
  // run stops.
  [[nodiscard]] typename Topo::template Inbox<kCount - 1>* caller_next() {
    const CurrentStopWordScope stop_word_scope(&this->state_.stop_flag().word());
    return caller_input_ != nullptr ? caller_input_->next() : nullptr;
  }

  // Waits for every worker (the run is over or stopping), then the statistics and a process
  // sink's value. The run's error, if any, stays in the RunState.
  void finish(Stats& stats) {
    caller_store_.clear();
    caller_input_ = nullptr;
    if (caller_tally_) caller_tally_->finish();
    if (helper_.joinable()) {
      helper_.join();
    } else {
      supervise_all();  // a run, or a stream whose helper could not start
    }
    threads_.join();
    cancel_.reset();
    processes_.release();
    processes_.adopt_unreported_failure();
    const bool failed = static_cast<bool>(this->state_.error());
    try {
      stats = monitor_->snapshot(!failed);
    } catch (...) {
      stats = Stats{};
    }
    if (failed) return;
    monitor_->report_finished(stats);
    if constexpr (kValueSink < kCount) {
      if (this->plan_.nodes[kValueSink].mode == Mode::process) {
        if constexpr (is_serializable_v<Result>) this->result_.emplace(read_remote_result<Result>(processes_.result()));
      }
    }
  }

 private:
  // Room in the mapping for the value of a sink that runs in a worker process.
  [[nodiscard]] std::size_t result_bytes() const noexcept {
    if constexpr (kValueSink < kCount) {
      if (this->plan_.nodes[kValueSink].mode == Mode::process) return max_message_sizes_[kValueSink];
    }
    return 0;
  }

  // A sink in a worker process whose value cannot cross back is rejected before anything starts.
  void check_result_serializable() const {
    if constexpr (kValueSink < kCount && !is_serializable_v<Result>) {
      if (this->plan_.nodes[kValueSink].mode == Mode::process) {
        throw ConfigError(detail::format(
            "plumb.config_error: {} runs in a worker process and returns {}, which cannot be "
            "serialized back to the caller; specialize plumb::Codec<{}> for it, or run the sink "
            "in Mode::thread",
            describe_stage(kValueSink, this->names_[kValueSink]), type_name<Result>(), type_name<Result>()));
      }
    }
  }

  Outcome run_worker(std::size_t id) noexcept {
    WorkerTally tally(blocks_->clock(id), blocks_->slots(id), this->options_.timing, ns_per_tick_);
    Outcome outcome = Outcome::finished;
    with_index<kCount>(this->node_of_[id], [&](auto k) { outcome = run_node<decltype(k)::value>(id, tally); });
    return outcome;
  }

  // In a worker process: the worker, then the sink's value for the caller.
  Outcome run_in_process(std::size_t id) noexcept {
    Outcome outcome = run_worker(id);
    if constexpr (kValueSink < kCount && is_serializable_v<Result>) {
      if (outcome == Outcome::finished && this->node_of_[id] == kValueSink &&
          !write_remote_result(processes_.result(), processes_.result_capacity(), *this->result_,
                               this->infos_[id][kValueSink], this->state_)) {
        outcome = Outcome::failed;
      }
    }
    return outcome;
  }

  // Worker `id` of node K: its input (through its JoinInput, for a join), its stage, and each
  // packet sent along its edges; then its producer's end on every link it writes.
  template <std::size_t K>
  Outcome run_node(std::size_t id, WorkerTally& tally) noexcept {
    tally.start();
    WorkerContext context(this->state_.stop_flag(), this->infos_[id], tally, nullptr);
    const CurrentStopWordScope stop_word_scope(&context.stop().word());
    const WorkerInfo& info = context.info(K);
    Outcome outcome = Outcome::finished;
    try {
      context.check_stop();
      // An ordered node's packets leave in the order of its input (order.hpp): outlives `store`,
      // whose input refers to it.
      std::optional<GraphOrderCursor> order;
      if (this->plan_.nodes[K].ordered) order.emplace(links_.gate(K));
      ChainStore store;
      Input<Element<K>>* input = nullptr;
      if constexpr (!Topo::template is_source<K>) {
        input = this->template joined<K>(
            store, links_.template open<K>(store, context.stop(), tally, order ? order->hook() : nullptr), context);
      }
      if constexpr (Topo::template is_sink<K>) {
        this->template call_sink<K>(input, context);
      } else {
        const auto& node = std::get<K>(this->nodes_);
        auto callable = node.stage.callable();
        auto constants = node.stage.constants();
        const std::uint64_t asked_before = this_worker_calls;  // SplitCheck
        GeneratorInput<Output<K>> output(invoke_stage(callable, constants, input, info, context), info,
                                         input, context, false);
        if constexpr (Topo::template is_source<K>) {
          if (info.count > 1 && !node.stage.options().unpartitioned) output.check_split(asked_before);
        }
        Deliver<K> deliver{links_, context, info};
        std::size_t own_turn = info.index;  // round robin: workers start at different edges
        while (Output<K>* packet = output.next()) {
          if (order) order->before_send(context, info);
          // An ordered node's packet of a group: the node's one counter (this worker has the turn).
          std::size_t& turn = order && order->in_group() ? order->round_robin() : own_turn;
          fan_out<Topo, K>(node, deliver, *packet, turn, info);
        }
        if (order) order->finish(context.stop());
      }
    } catch (const Stopped&) {
      outcome = Outcome::stopped;  // the run's error is recorded elsewhere
    } catch (...) {
      this->fail(context, info);
      outcome = Outcome::failed;
    }
    links_.template producer_done<K>();
    tally.finish();
    return outcome;
  }

  // Hands a packet of node K to edge E (GraphLinks::send).
  template <std::size_t K>
  struct Deliver {
    GraphLinks<Nodes...>& links;
    WorkerContext& context;
    const WorkerInfo& info;

    template <std::size_t E, class Value>
    void to(Value&& value) {
      constexpr GraphEdge edge = Topo::template kOutEdges<K>[E];
      links.template send<edge.consumer, edge.port>(std::forward<Value>(value), context, info,
                                                    [this] { Base::count_send(context.tally(), edge.consumer); });
    }
  };

  void supervise_all() noexcept {
    Executor* const executors[] = {&threads_, &processes_};
    supervise(executors, done_, *monitor_, this->state_, this->options_.grace_period);
  }

  double ns_per_tick_ = 1.0;
  Monitor* monitor_ = nullptr;
  std::optional<StatsBlocks> blocks_;
  GraphLinks<Nodes...> links_;
  std::span<const std::size_t> max_message_sizes_;
  std::vector<std::size_t> thread_ids_;
  DoneSignal done_;
  ProcessExecutor processes_;
  ThreadExecutor threads_{this->state_, done_};  // joined in finish(), before the links die
  std::jthread helper_;                          // supervises a stream
  std::optional<std::stop_callback<CancelRun>> cancel_;
  // The calling thread's end of a stream (destroyed before the links).
  std::optional<WorkerTally> caller_tally_;
  ChainStore caller_store_;
  Input<typename Topo::template Inbox<kCount - 1>>* caller_input_ = nullptr;
};

}  // namespace plumb::detail
