#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/sequential_run.hpp: a graph run in Mode::sequential: every node in the
// calling thread, pulled from its sinks.
//
// Each sink reads its input; a node that finds its input queue empty resumes one of its
// producers (in turn) by one packet, which that producer sends along its edges into the queues
// of the nodes it feeds; and so on up the graph. No node can be resumed while it runs: a
// resume goes from a node to one of its inputs, and the graph has no cycle. A queue that one
// branch fills while another is pulled may grow, up to the graph's total in_flight (at least
// kSequentialQueue); beyond it the run fails (naming the two nodes) rather than use unbounded
// memory.

#include <plumb/detail/graph/run_base.hpp>

#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <stop_token>
#include <tuple>
#include <utility>
#include <vector>

namespace plumb::detail {

template <class... Nodes>
class GraphSequentialRun : public GraphRunBase<Nodes...> {
  using Base = GraphRunBase<Nodes...>;
  using typename Base::Topo;
  using Base::kCount;
  template <std::size_t K>
  using Element = typename Topo::template Element<K>;
  template <std::size_t K>
  using Output = typename Topo::template Output<K>;
  template <std::size_t K>
  using Inbox = typename Topo::template Inbox<K>;

  // A node's input queue: its front is the packet its consumer holds, until the next pull.
  template <class T>
  struct Queue {
    std::deque<T> packets;
    bool held = false;
    std::size_t turn = 0;  // the producer resumed next
  };
  template <std::size_t... K>
  static auto queue_tuple(std::index_sequence<K...>) -> std::tuple<Queue<Inbox<K>>...>;

  // A node that yields: resumed by one packet at a time by the nodes it feeds.
  struct Pump {
    Pump() = default;
    Pump(const Pump&) = delete;
    Pump& operator=(const Pump&) = delete;
    virtual ~Pump() = default;
    // Resumes the node once: true if it sent a packet, false at its end. Throws Stopped (the
    // run's error is recorded), never the node's own error.
    virtual bool step() = 0;
    // Whether a packet waits in its input queue (it can step without resuming its inputs).
    [[nodiscard]] virtual bool ready() const noexcept = 0;
    bool ended = false;
  };

 public:
  GraphSequentialRun(const std::tuple<Nodes...>& nodes, const GraphPlan& plan,
                     const std::vector<std::string>& names, RunState& state, const RunOptions& options,
                     std::span<const GraphNodeShape> shapes)
      : Base(nodes, plan, names, state, options, shapes) {}

  // Runs every sink to its end; the run's error (if any) is in the RunState.
  void run(Stats& stats) {
    start(false);
    if (started_) {
      const CurrentStopWordScope stop_word_scope(&this->state_.stop_flag().word());
      try {
        run_sinks(store_, std::index_sequence_for<Nodes...>{});
      } catch (const Stopped&) {
        // recorded where it happened
      }
    }
    finish(stats);
  }

  // --- A stream (Graph::stream()): the last node stands for the calling thread -------------

  // Builds every node that yields (their generators, not yet resumed) and, with `streams`, the
  // calling thread's input: the last node's queue, read through caller_next(), which resumes
  // the nodes before it in the calling thread.
  void start(bool streams) {
    TickClock::init();
    monitor_options_ = this->options_;
    monitor_options_.timing = false;  // one thread runs every node: no per-node busy times yet
    blocks_.emplace(this->infos_.size(), kCount);
    monitor_ = &this->make_monitor(*blocks_, monitor_options_, nullptr);
    Monitor* inline_monitor = Monitor::wanted_inline(this->options_) ? monitor_ : nullptr;
    for (std::size_t k = 0; k < kCount; ++k) {
      tallies_[k].emplace(blocks_->clock(k), blocks_->slots(k), false, 1.0);
      contexts_[k].emplace(this->state_.stop_flag(), this->infos_[k], *tallies_[k], inline_monitor);
      tallies_[k]->start();
    }
    cancel_.emplace(this->options_.stop_token, CancelRun{&this->state_});
    const CurrentStopWordScope stop_word_scope(&this->state_.stop_flag().word());
    try {
      open_nodes(store_, std::index_sequence_for<Nodes...>{});
      if (streams) caller_input_ = open_input<kCount - 1>(store_);
      started_ = true;
    } catch (const Stopped&) {
      // recorded where it happened
    }
  }

  // The calling thread's next packet of the stream, nullptr at its end; throws Stopped once the
  // run stopped (its error is recorded).
  [[nodiscard]] Element<kCount - 1>* caller_next() {
    const CurrentStopWordScope stop_word_scope(&this->state_.stop_flag().word());
    return caller_input_ != nullptr ? caller_input_->next() : nullptr;
  }

  // The end of the run: every generator destroyed (before the queues they read), the
  // statistics. The run's error, if any, stays in the RunState.
  void finish(Stats& stats) {
    caller_input_ = nullptr;
    store_.clear();
    cancel_.reset();
    for (std::size_t k = 0; k < kCount; ++k) {
      if (tallies_[k]) tallies_[k]->finish();
    }
    try {
      stats = monitor_->snapshot(!this->state_.error());
    } catch (...) {
      stats = Stats{};
    }
    if (!this->state_.error()) monitor_->report_finished(stats);
  }

 private:
  // The input of node K: a queue fed by its producers, resumed in turn while it is empty.
  template <std::size_t K>
  class QueueInput final : public Input<Inbox<K>> {
   public:
    QueueInput(GraphSequentialRun& run, WorkerTally& tally) noexcept : run_(run), tally_(tally) {}

   private:
    Inbox<K>* pull() override {
      auto& queue = std::get<K>(run_.queues_);
      if (queue.held) {
        queue.packets.pop_front();
        queue.held = false;
      }
      while (queue.packets.empty()) {
        if (!run_.resume_producer<K>(queue.turn)) return nullptr;
      }
      queue.held = true;
      tally_.took();
      return &queue.packets.front();
    }

    GraphSequentialRun& run_;
    WorkerTally& tally_;
  };

  // Resumes a producer of node K that has not ended; false if all have. First one that can
  // step without resuming its own inputs (a packet waits in its queue), so that queues drain
  // before new packets enter the graph; else the next one in turn.
  template <std::size_t K>
  bool resume_producer(std::size_t& turn) {
    constexpr std::span<const std::string_view> ports = Topo::template input_names<K>();
    Pump* next = nullptr;
    for (std::size_t tries = 0; tries < ports.size(); ++tries) {
      const std::size_t port = (turn + tries) % ports.size();
      Pump& pump = *pumps_[Topo::Tables::index_of(ports[port])];
      if (pump.ended) continue;
      if (next == nullptr) next = &pump;
      if (pump.ready()) {
        next = &pump;
        break;
      }
    }
    ++turn;
    if (next == nullptr) return false;
    next->ended = !next->step();
    return true;
  }

  template <std::size_t K>
  struct NodePump final : Pump {
    NodePump(GraphSequentialRun& run, const typename Topo::template NodeAt<K>& node, Input<Element<K>>* input,
             WorkerContext& context)
        : run_(run),
          node_(node),
          context_(context),
          callable_(node.stage.callable()),
          constants_(node.stage.constants()),
          output_(invoke_stage(callable_, constants_, input, context.info(K), context), context.info(K),
                  input, context, false) {}

    [[nodiscard]] bool ready() const noexcept override {
      if constexpr (Topo::template is_source<K>) {
        return true;
      } else {
        const auto& queue = std::get<K>(run_.queues_);
        return queue.packets.size() > (queue.held ? 1U : 0U);
      }
    }

    bool step() override {
      const WorkerInfo& info = context_.info(K);
      try {
        Output<K>* packet = output_.next();
        if (packet == nullptr) return false;
        Deliver deliver{run_, info};
        fan_out<Topo, K>(node_, deliver, *packet, turn_, info);
        return true;
      } catch (const Stopped&) {
        throw;
      } catch (...) {
        run_.fail(context_, info);
        throw Stopped{};
      }
    }

    // Queues a packet of node K for edge E, within the run's bound.
    struct Deliver {
      GraphSequentialRun& run;
      const WorkerInfo& info;
      template <std::size_t E, class Value>
      void to(Value&& value) {
        constexpr GraphEdge edge = Topo::template kOutEdges<K>[E];
        auto& queue = std::get<edge.consumer>(run.queues_);
        if (queue.packets.size() >= run.plan_.sequential_queue) {
          throw StageError(
              detail::format("plumb.stage_error: {} worker {}: in Mode::sequential its packets for "
                             "node '{}' piled up to {} while other nodes were pulled (the bound of "
                             "a sequential run's queues: the graph's total in_flight, at least {}); "
                             "run the graph in Mode::thread, or raise in_flight",
                             describe_stage(info.stage_index, info.stage_name), info.index,
                             run.names_[edge.consumer], run.plan_.sequential_queue, kSequentialQueue),
              info.stage_index, info.stage_name, info.index);
        }
        queue.packets.push_back(Topo::template inbox_value<edge.consumer, edge.port>(std::forward<Value>(value)));
        Base::count_send(run.contexts_[K]->tally(), edge.consumer);  // one thread: order is moot
      }
    };

    GraphSequentialRun& run_;
    const typename Topo::template NodeAt<K>& node_;
    WorkerContext& context_;
    typename Topo::template Spec<K>::callable_type callable_;
    typename Topo::template Spec<K>::constants_type constants_;
    GeneratorInput<Output<K>> output_;
    std::size_t turn_ = 0;
  };

  template <std::size_t K>
  Input<Element<K>>* open_input(ChainStore& store) {
    if constexpr (Topo::template is_source<K>) {
      return nullptr;
    } else {
      auto& raw = store.add<QueueInput<K>>(*this, *tallies_[K]);
      return this->template joined<K>(store, raw, *contexts_[K]);
    }
  }

  // Every node that yields, in graph order (each after its inputs): its input and generator.
  template <std::size_t... K>
  void open_nodes(ChainStore& store, std::index_sequence<K...>) {
    (open_node<K>(store), ...);
  }
  template <std::size_t K>
  void open_node(ChainStore& store) {
    if constexpr (!Topo::template is_sink<K>) {
      WorkerContext& context = *contexts_[K];
      try {
        Input<Element<K>>* input = open_input<K>(store);
        pumps_[K] = &store.add<NodePump<K>>(*this, std::get<K>(this->nodes_), input, context);
      } catch (...) {
        this->fail(context, context.info(K));
        throw Stopped{};
      }
    }
  }

  template <std::size_t... K>
  void run_sinks(ChainStore& store, std::index_sequence<K...>) {
    (run_sink<K>(store), ...);
  }
  template <std::size_t K>
  void run_sink(ChainStore& store) {
    if constexpr (Topo::template is_sink<K>) {
      WorkerContext& context = *contexts_[K];
      try {
        context.check_stop();
        this->template call_sink<K>(open_input<K>(store), context);
      } catch (const Stopped&) {
        throw;
      } catch (...) {
        this->fail(context, context.info(K));
        throw Stopped{};
      }
    }
  }

  std::optional<StatsBlocks> blocks_;
  RunOptions monitor_options_;  // the Monitor keeps a reference
  Monitor* monitor_ = nullptr;
  bool started_ = false;
  std::array<std::optional<WorkerTally>, kCount> tallies_;
  std::array<std::optional<WorkerContext>, kCount> contexts_;
  std::array<Pump*, kCount> pumps_{};
  decltype(queue_tuple(std::index_sequence_for<Nodes...>{})) queues_;
  std::optional<std::stop_callback<CancelRun>> cancel_;
  // The nodes' inputs and generators (destroyed first: before the queues they read).
  ChainStore store_;
  Input<Element<kCount - 1>>* caller_input_ = nullptr;
};

}  // namespace plumb::detail
