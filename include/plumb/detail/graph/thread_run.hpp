#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/thread_run.hpp: a graph run in Mode::thread: a RingLink into every node that
// has inputs, each node's workers on threads of their own, supervised from the calling thread.
//
// Every node reads one link (a join reads its inputs' packets as variants from one link), so
// a worker waits for one of two things only: a packet in its own input link, or a free slot
// in the input link of a node it sends to. Why that cannot deadlock: docs/design/graph.md.

#include <plumb/detail/exec/done_signal.hpp>
#include <plumb/detail/exec/supervisor.hpp>
#include <plumb/detail/exec/thread_executor.hpp>
#include <plumb/detail/graph/run_base.hpp>
#include <plumb/detail/link/ring_link.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <utility>

namespace plumb::detail {

template <class... Nodes>
class GraphThreadRun : public GraphRunBase<Nodes...> {
  using Base = GraphRunBase<Nodes...>;
  using typename Base::Topo;
  using Base::kCount;
  template <std::size_t K>
  using Element = typename Topo::template Element<K>;
  template <std::size_t K>
  using Output = typename Topo::template Output<K>;
  template <std::size_t K>
  using Inbox = typename Topo::template Inbox<K>;
  template <std::size_t... K>
  static auto link_tuple(std::index_sequence<K...>) -> std::tuple<std::unique_ptr<RingLink<Inbox<K>>>...>;

 public:
  using Base::Base;
  ~GraphThreadRun() { this->state_.clear_wakers(); }

  // Runs every worker to its end; the run's error (if any) is in the RunState.
  void run(Stats& stats) {
    make_links(std::index_sequence_for<Nodes...>{});
    TickClock::init();
    ns_per_tick_ = this->options_.timing ? TickClock::ns_per_tick() : 1.0;
    blocks_.emplace(this->infos_.size(), kCount);
    Monitor& monitor = this->make_monitor(*blocks_, this->options_);
    {
      std::stop_callback cancel(this->options_.stop_token, [this] {
        this->state_.fail(std::make_exception_ptr(CancelledError(
                              "plumb.cancelled: the run was cancelled through RunOptions::stop_token")),
                          std::nullopt);
      });
      threads_.start(this->infos_.size(), [this](std::size_t id) noexcept { run_worker(id); });
      Executor* const executors[] = {&threads_};
      supervise(executors, done_, monitor, this->state_, this->options_.grace_period);
      threads_.join();
    }
    try {
      stats = monitor.snapshot(!this->state_.error());
    } catch (...) {
      stats = Stats{};
    }
    if (!this->state_.error()) monitor.report_finished(stats);
  }

 private:
  template <std::size_t... K>
  void make_links(std::index_sequence<K...>) {
    (make_link<K>(), ...);
  }
  template <std::size_t K>
  void make_link() {
    if constexpr (!Topo::template is_source<K>) {
      const GraphNodePlan& node = this->plan_.nodes[K];
      auto& link = std::get<K>(links_);
      link = std::make_unique<RingLink<Inbox<K>>>(node.inbox_capacity, node.inbox_producers, node.workers);
      auto* core = &link->core();
      this->state_.on_stop([core] { core->wake_all(); });
    }
  }

  void run_worker(std::size_t id) noexcept {
    WorkerTally tally(blocks_->clock(id), blocks_->slots(id), this->options_.timing, ns_per_tick_);
    with_index<kCount>(this->node_of_[id], [&](auto k) { run_node<decltype(k)::value>(id, tally); });
  }

  // Worker `id` of node K: its input link (through its JoinInput, for a join), its stage, and
  // each packet sent along its edges; then its producer's end on every link it writes.
  template <std::size_t K>
  void run_node(std::size_t id, WorkerTally& tally) noexcept {
    tally.start();
    WorkerContext context(this->state_.stop_flag(), this->infos_[id], tally, nullptr);
    const CurrentStopWordScope stop_word_scope(&context.stop().word());
    const WorkerInfo& info = context.info(K);
    try {
      context.check_stop();
      ChainStore store;
      Input<Element<K>>* input = nullptr;
      if constexpr (!Topo::template is_source<K>) {
        auto& raw = store.add<LinkInput<Inbox<K>>>(*std::get<K>(links_), context.stop(), tally);
        input = this->template joined<K>(store, raw, context);
      }
      if constexpr (Topo::template is_sink<K>) {
        this->template call_sink<K>(input, context);
      } else {
        const auto& node = std::get<K>(this->nodes_);
        auto callable = node.stage.callable();
        auto constants = node.stage.constants();
        GeneratorInput<Output<K>> output(invoke_stage(callable, constants, input, info, context), info,
                                         input, context, false);
        Deliver<K> deliver{*this, context.stop(), tally.output_timer()};
        std::size_t turn = info.index;  // round robin: workers start at different edges
        while (Output<K>* packet = output.next()) fan_out<Topo, K>(node, deliver, *packet, turn, info);
      }
    } catch (const Stopped&) {
      // the run's error is recorded elsewhere
    } catch (...) {
      this->fail(context, info);
    }
    constexpr auto& edges = Topo::template kOutEdges<K>;
    [&]<std::size_t... E>(std::index_sequence<E...>) {
      (std::get<edges[E].consumer>(links_)->core().producer_done(), ...);
    }(std::make_index_sequence<edges.size()>{});
    tally.finish();
  }

  // Hands a packet of node K to edge E: a slot of the consumer's input link, filled, queued.
  template <std::size_t K>
  struct Deliver {
    GraphThreadRun& run;
    StopFlag stop;
    WaitTimer* timer;

    template <std::size_t E, class Value>
    void to(Value&& value) {
      constexpr GraphEdge edge = Topo::template kOutEdges<K>[E];
      auto& link = *std::get<edge.consumer>(run.links_);
      const std::uint32_t slot = link.core().acquire_slot(stop, timer);
      link.fill(slot, Topo::template inbox_value<edge.consumer, edge.port>(std::forward<Value>(value)), stop);
      link.core().enqueue(slot, stop);
    }
  };

  double ns_per_tick_ = 1.0;
  std::optional<StatsBlocks> blocks_;
  decltype(link_tuple(std::index_sequence_for<Nodes...>{})) links_;
  DoneSignal done_;
  ThreadExecutor threads_{this->state_, done_};  // joined in run(), before the links die
};

}  // namespace plumb::detail
