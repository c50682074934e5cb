#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/links.hpp: GraphLinks, the owner of a graph run's links: the one input link
// of every node that has inputs, a RingLink in one process or a ShmLink in the run's shared
// mapping when the node or one of the nodes it reads runs in worker processes. The only file of
// the graph engine that knows which.

#include <plumb/codec.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/graph/plan.hpp>
#include <plumb/detail/graph/topology.hpp>
#include <plumb/detail/link/ring_link.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/produce.hpp>
#include <plumb/detail/worker/stage_chain.hpp>
#include <plumb/error.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plumb::detail {

// Stands in for ShmLink<T> where T cannot be serialized (rejected before the run starts).
struct NoGraphShmLink {};

// Lifetime: make() before any worker starts (after the shared mapping exists, if any); the links
// live until the GraphLinks dies, after every worker ended. The wakers make() registers with the
// RunState refer to them: the owner clears them first.
template <class... Nodes>
class GraphLinks {
  using Topo = Topology<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);
  template <std::size_t K>
  using Inbox = typename Topo::template Inbox<K>;
  template <std::size_t K>
  using ShmOf = std::conditional_t<is_serializable_v<Inbox<K>>, ShmLink<Inbox<K>>, NoGraphShmLink>;
  template <std::size_t... K>
  static auto ring_tuple(std::index_sequence<K...>) -> std::tuple<std::unique_ptr<RingLink<Inbox<K>>>...>;
  template <std::size_t... K>
  static auto shm_tuple(std::index_sequence<K...>) -> std::tuple<std::unique_ptr<ShmOf<K>>...>;

 public:
  // `max_message_sizes[k]`: node k's .max_message_size() (its packets' limit on a shared link).
  GraphLinks(const GraphPlan& plan, std::span<const std::string> names,
             std::span<const std::size_t> max_message_sizes, std::span<const GraphNodeShape> shapes)
      : plan_(plan), names_(names), max_message_sizes_(max_message_sizes), shapes_(shapes) {
    shared_.assign(kCount, false);
    for (std::size_t k = 0; k < kCount; ++k) {
      bool crosses = plan.nodes[k].mode == Mode::process;
      for (std::size_t producer : shapes[k].producers) crosses = crosses || plan.nodes[producer].mode == Mode::process;
      shared_[k] = crosses && !shapes[k].producers.empty();
    }
  }
  GraphLinks(const GraphLinks&) = delete;
  GraphLinks& operator=(const GraphLinks&) = delete;

  // Whether node k's input link crosses a process boundary.
  [[nodiscard]] bool shared(std::size_t k) const noexcept { return shared_[k]; }
  [[nodiscard]] bool any_shared() const noexcept {
    return std::find(shared_.begin(), shared_.end(), true) != shared_.end();
  }

  // A type that cannot cross a process boundary is a ConfigError before anything starts.
  void check_serializable() const {
    [&]<std::size_t... K>(std::index_sequence<K...>) { (check_serializable<K>(), ...); }(
        std::index_sequence_for<Nodes...>{});
  }

  // The slot size of node k's shared input link: the exact size of its messages when they all
  // have one size, else the largest max_message_size of the nodes it reads (plus, for a join,
  // what its variant adds).
  template <std::size_t K>
  [[nodiscard]] std::size_t slot_bytes() const {
    std::size_t limit = 0;
    for (std::size_t producer : shapes_[K].producers) limit = std::max(limit, max_message_sizes_[producer]);
    // A join's variant: its 4-byte index, which also shifts the 64-byte alignment of bulk data
    // inside the packet (up to 63 bytes more).
    if constexpr (Topo::template is_join<K>) limit += sizeof(std::uint32_t) + 63;
    const std::size_t fixed = kFixedEncodedSize<Inbox<K>>;
    return fixed != 0 ? std::min(fixed, limit) : limit;
  }

  // Places the shared links and the ordered nodes' gates in `layout` (a run with worker
  // processes).
  void reserve(ArenaLayout& layout) {
    offsets_.assign(kCount, 0);
    bytes_.assign(kCount, 0);
    slots_.assign(kCount, 0);
    [&]<std::size_t... K>(std::index_sequence<K...>) { (reserve<K>(layout), ...); }(
        std::index_sequence_for<Nodes...>{});
    gate_offsets_.assign(kCount, 0);
    for (std::size_t k = 0; k < kCount; ++k) {
      if (plan_.nodes[k].ordered) gate_offsets_[k] = layout.add(OrderGate::bytes_for(plan_.nodes[k].capacity));
    }
  }

  // The message of the ConfigError when the shared links need more than a process can map.
  [[nodiscard]] std::string too_large(const std::string& total, std::size_t limit) const {
    const auto largest = static_cast<std::size_t>(std::max_element(bytes_.begin(), bytes_.end()) - bytes_.begin());
    return detail::format(
        "plumb.config_error: the links between this run's worker processes need {} of shared "
        "memory, over the {} bytes a process can map; the largest is the input link of {}: {} "
        "slots (the in_flight of the nodes it reads) of {} bytes ({} bytes); lower in_flight or "
        "max_message_size on the nodes it reads",
        total, limit, describe_stage(largest, names_[largest]), plan_.nodes[largest].inbox_capacity,
        slots_[largest], bytes_[largest]);
  }

  // Builds every link: the shared ones in `arena` (reserve() placed them), the others in heap
  // memory; the run's stop wakes each.
  void make(RunState& state, SharedArena* arena) {
    [&]<std::size_t... K>(std::index_sequence<K...>) { (make<K>(state, arena), ...); }(
        std::index_sequence_for<Nodes...>{});
    gates_.assign(kCount, nullptr);
    for (std::size_t k = 0; k < kCount; ++k) {
      if (plan_.nodes[k].ordered) make_gate(k, state, arena);
    }
  }

  // Node K's raw input for one worker (packets, or a join's variants), kept in `store`; `hook`
  // (an ordered node's cursor, or null) hears of each take.
  template <std::size_t K>
  Input<Inbox<K>>& open(ChainStore& store, StopFlag stop, WorkerTally& tally, TakeHook* hook = nullptr) {
    if (!shared_[K]) {
      auto& input = store.add<LinkInput<Inbox<K>>>(*std::get<K>(rings_), stop, tally);
      input.set_take_hook(hook);
      return input;
    }
    if constexpr (is_serializable_v<Inbox<K>>) {
      auto& input = store.add<ShmInput<Inbox<K>>>(*std::get<K>(shms_), stop, tally);
      input.set_take_hook(hook);
      return input;
    }
    PLUMB_ASSERT(false, "plumb: unreachable: a shared link of a type that cannot be serialized");
    return store.add<LinkInput<Inbox<K>>>(*std::get<K>(rings_), stop, tally);
  }

  // The OrderGate of ordered node k (plan: several workers and .ordered()).
  [[nodiscard]] OrderGate& gate(std::size_t k) noexcept { return *gates_[k]; }

  // Hands `value` (a packet of the node `info` runs) to input `Port` of node `C`: the value the
  // link holds is made first (a copy, for all but the last edge of a broadcast), then a slot is
  // taken, filled, counted (`counted()`, before any consumer can take it) and queued: no slot is
  // held while user code runs or while another link is waited on (docs/design/graph.md). A
  // packet too large for a shared link's slots is the sender's error.
  template <std::size_t C, std::size_t Port, class Value, class Counted>
  void send(Value&& value, WorkerContext& context, const WorkerInfo& info, Counted&& counted) {
    const StopFlag stop = context.stop();
    WaitTimer* const timer = context.tally().output_timer();
    if (!shared_[C]) {
      auto& link = *std::get<C>(rings_);
      Inbox<C> held = Topo::template inbox_value<C, Port>(std::forward<Value>(value));
      const std::uint32_t slot = link.core().acquire_slot(stop, timer);
      link.fill(slot, std::move(held), stop);
      counted();
      link.core().enqueue(slot, stop);
    } else if constexpr (is_serializable_v<Inbox<C>>) {
      auto& link = *std::get<C>(shms_);
      std::size_t size = 0;
      if constexpr (Topo::template is_join<C>) {
        const Inbox<C> held = Topo::template inbox_value<C, Port>(std::forward<Value>(value));
        const std::uint32_t slot = link.core().acquire_slot(stop, timer);
        size = link.fill(slot, held, stop);
        if (size == 0) {
          counted();
          link.core().enqueue(slot, stop);
        }
      } else {
        const std::uint32_t slot = link.core().acquire_slot(stop, timer);
        size = link.fill(slot, value, stop);
        if (size == 0) {
          counted();
          link.core().enqueue(slot, stop);
        }
      }
      if (size != 0) throw_oversized(context, info, size, link.slot_bytes());
    }
  }

  // A worker of node K is done (finished, failed or stopped): one producer less on each link
  // it writes, once per edge.
  template <std::size_t K>
  void producer_done() noexcept {
    constexpr auto& edges = Topo::template kOutEdges<K>;
    [&]<std::size_t... E>(std::index_sequence<E...>) {
      (core_done<edges[E].consumer>(), ...);
    }(std::make_index_sequence<edges.size()>{});
  }

 private:
  template <std::size_t K>
  void core_done() noexcept {
    if (!shared_[K]) {
      std::get<K>(rings_)->core().producer_done();
    } else if constexpr (is_serializable_v<Inbox<K>>) {
      std::get<K>(shms_)->core().producer_done();
    }
  }

  template <std::size_t K>
  void check_serializable() const {
    if constexpr (!is_serializable_v<Inbox<K>> && !Topo::template is_source<K>) {
      if (shared_[K]) {
        const std::size_t from = shapes_[K].producers.front();
        throw ConfigError(detail::format(
            "plumb.config_error: {} reads {} from {} across a process boundary, but that type "
            "cannot be serialized; specialize plumb::Codec for it, or run both nodes in one "
            "process (Mode::thread)",
            describe_stage(K, names_[K]), type_name<Inbox<K>>(), describe_stage(from, names_[from])));
      }
    }
  }

  template <std::size_t K>
  void reserve(ArenaLayout& layout) {
    if constexpr (is_serializable_v<Inbox<K>> && !Topo::template is_source<K>) {
      if (!shared_[K]) return;
      slots_[K] = slot_bytes<K>();
      // Cannot overflow: at most 2^20 slots of 2^40 bytes each (validate.hpp's limits).
      bytes_[K] = ShmLink<Inbox<K>>::bytes_for(plan_.nodes[K].inbox_capacity, slots_[K]);
      offsets_[K] = layout.add(bytes_[K]);
    }
  }

  template <std::size_t K>
  void make(RunState& state, SharedArena* arena) {
    if constexpr (!Topo::template is_source<K>) {
      const GraphNodePlan& node = plan_.nodes[K];
      if (!shared_[K]) {
        auto& link = std::get<K>(rings_);
        link = std::make_unique<RingLink<Inbox<K>>>(node.inbox_capacity, node.inbox_producers, node.workers);
        auto* core = &link->core();
        state.on_stop([core] { core->wake_all(); });
      } else if constexpr (is_serializable_v<Inbox<K>>) {
        auto& link = std::get<K>(shms_);
        link = std::make_unique<ShmLink<Inbox<K>>>(arena->at(offsets_[K]), node.inbox_capacity, slot_bytes<K>(),
                                                   node.inbox_producers, node.workers);
        auto* core = &link->core();
        state.on_stop([core] { core->wake_all(); });
      }
    }
  }

  // An ordered node's gate: in the arena when the run has worker processes (reserve() placed
  // it), else in heap memory; its window is the node's in_flight (at least its workers).
  void make_gate(std::size_t k, RunState& state, SharedArena* arena) {
    OrderGate* gate = &owned_gates_.make(plan_.nodes[k].capacity, arena != nullptr ? arena->at(gate_offsets_[k]) : nullptr);
    gates_[k] = gate;
    state.on_stop([gate] { gate->wake_all(); });
  }

  const GraphPlan& plan_;
  std::span<const std::string> names_;
  std::span<const std::size_t> max_message_sizes_;
  std::span<const GraphNodeShape> shapes_;
  std::vector<bool> shared_;          // per node: its input link is a ShmLink
  std::vector<std::size_t> offsets_;  // per node: its ShmLink in the arena
  std::vector<std::size_t> bytes_;    // per node: its ShmLink's size
  std::vector<std::size_t> slots_;    // per node: its ShmLink's slot size
  std::vector<std::size_t> gate_offsets_;  // per node: its OrderGate in the arena, if ordered
  OrderGates owned_gates_;                 // the gates' memory without an arena
  std::vector<OrderGate*> gates_;          // per node: its OrderGate, if ordered
  decltype(ring_tuple(std::index_sequence_for<Nodes...>{})) rings_;
  decltype(shm_tuple(std::index_sequence_for<Nodes...>{})) shms_;
};

}  // namespace plumb::detail
