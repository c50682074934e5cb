#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/links.hpp: LinkSet, the owner of a run's links and order gates: the one place
// that knows which kind of link joins two groups (a RingLink in one process, a ShmLink across a
// process boundary).

#include <plumb/codec.hpp>
#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/core/with_index.hpp>
#include <plumb/detail/exec/slot_source.hpp>
#include <plumb/detail/link/buffer_input.hpp>
#include <plumb/detail/link/help_desk.hpp>
#include <plumb/detail/link/ring_link.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/detail/link/solo_gate.hpp>
#include <plumb/detail/link/view_input.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/lend.hpp>
#include <plumb/detail/worker/produce.hpp>
#include <plumb/detail/worker/stage_chain.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace plumb::detail {

// Stands in for ShmLink<T> where T cannot be serialized (such a link is rejected before the
// run starts, so it is never used).
struct NoShmLink {};

// A consumer's end of a ShmLink<T> read as Stream<T>: a Buffer is copied into recycled memory,
// anything else decoded.
template <class T>
struct ShmReader {
  using type = ShmInput<T>;
};
template <class U>
struct ShmReader<Buffer<U>> {
  using type = ShmBufferInput<U>;
};

// The links after every group but the last, and the OrderGate of every ordered group.
//
// A link crosses a process boundary (a ShmLink in the run's shared mapping) when the group
// before it or the one after it runs in worker processes; otherwise it is a RingLink in heap
// memory. Nothing else in the engine asks which: workers open their input and drain their
// output through this class.
//
// Lifetime: make() before any worker starts (after the shared mapping exists, if any); the
// links and gates live until the LinkSet dies, after every worker ended. The RunState's wakers
// that make() registers refer to them: the owner clears them first (RunState::clear_wakers()).
template <class... Stages>
class LinkSet {
  static constexpr std::size_t kCount = sizeof...(Stages);
  static constexpr std::size_t kSink = kCount - 1;
  template <std::size_t Index>
  using Output = typename StageRules<Index, Stages...>::output;
  template <std::size_t Index>
  using InputOf = typename StageRules<Index, Stages...>::input;
  template <std::size_t Index>
  static constexpr bool kReadsViews = IsView<typename StageRules<Index, Stages...>::element>::value;
  template <std::size_t Index>
  using ShmLinkOf =
      std::conditional_t<is_serializable_v<Output<Index>>, ShmLink<Output<Index>>, NoShmLink>;
  template <std::size_t... Index>
  static auto ring_tuple(std::index_sequence<Index...>)
      -> std::tuple<std::unique_ptr<RingLink<Output<Index>>>...>;
  template <std::size_t... Index>
  static auto shm_tuple(std::index_sequence<Index...>)
      -> std::tuple<std::unique_ptr<ShmLinkOf<Index>>...>;

 public:
  // The element stage Index's Stream yields: its input type, or a View of it.
  template <std::size_t Index>
  using Element = typename StageRules<Index, Stages...>::element;

  // `max_message_sizes[i]`: stage i's max_message_size (the slot size of a shared link after it).
  // `lending`: whether workers that may be lent are (lend.hpp); never under Scheduling::pinned.
  LinkSet(const Plan& plan, std::span<const std::string> names,
          std::span<const std::size_t> max_message_sizes, Lending lending = Lending::adaptive)
      : plan_(plan), names_(names), max_message_sizes_(max_message_sizes), lending_(lending) {
    shared_.assign(kCount, false);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      shared_[plan_.groups[g].last] = plan_.crosses_processes(g);
    }
  }

  // Whether the workers of group `g` may be lent to the consumers of its output link
  // (help_desk.hpp). Not: in a pinned run or a pinned group; an ordered group (a helper would
  // wait for the gate's turn inside a step); a group not of its own threads (the caller's,
  // processes) or without an in-process link on either side (its steps would wait on shared
  // memory); the last group. A group with an input and several workers is lent solo (H7,
  // solo_gate.hpp): its lead alone, while its siblings wait at a pull holding a slot of the
  // output link each, so that link needs a slot for each and one for each consumer (S2).
  // And H5: the link before the group must have a slot for the lent worker and each worker
  // upstream but one (capacity >= U): else every slot could be held while helpers wait, a
  // cycle (docs/design/lending.md).
  [[nodiscard]] bool lends(std::size_t g) const noexcept {
    if (lending_ == Lending::never || g + 1 >= plan_.groups.size()) return false;
    const GroupPlan& group = plan_.groups[g];
    if (group.mode != Mode::thread || group.pinned || group.ordered || group.caller) return false;
    if (plan_.crosses_processes(g)) return false;
    if (g == 0) return true;
    // S2: a slot for each waiting sibling and for each consumer.
    if (group.workers > 1 && plan_.capacity[group.last] < group.workers - 1 + plan_.groups[g + 1].workers) return false;
    const GroupPlan& upstream = plan_.groups[g - 1];
    if (plan_.crosses_processes(g - 1)) return false;
    return plan_.capacity[upstream.last] >= upstream.workers;  // H5 with W = 1 (the lead)
  }

  // Whether group `g` is lent solo: its lead alone (solo_gate.hpp).
  [[nodiscard]] bool solo(std::size_t g) const noexcept {
    return g > 0 && plan_.groups[g].workers > 1 && lends(g);
  }

  // Whether any group's workers may be lent (then the supervisor watches for stalls).
  [[nodiscard]] bool any_lends() const noexcept {
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      if (lends(g)) return true;
    }
    return false;
  }

  // The supervisor's watch while any group may lend: recalls the workers of a link whose
  // helped step stalls (HelpDesk::watch()). Every kWatchPeriod while a worker is lent; every
  // kIdleWatchPeriod while none is (a run of expensive stages, an idle Service), so that such a
  // run's supervisor does not wake 500 times a second for nothing. A worker lent meanwhile is
  // watched from the next look: a stall right after its first lending is seen within
  // kIdleWatchPeriod + 2 kWatchPeriod. Returns whether any worker is lent.
  static constexpr std::chrono::milliseconds kWatchPeriod{2};
  static constexpr std::chrono::milliseconds kIdleWatchPeriod{20};
  // A solo lead lent for a turn is called home for its siblings' turn (S4).
  bool watch() noexcept {
    bool lent = false;
    std::int64_t now = 0;
    for (std::size_t g = 0; g < desks_.size(); ++g) {
      if (!desks_[g]) continue;
      if (desks_[g]->watch()) lent = true;
      if (!solos_[g]) continue;
      if (now == 0) now = now_ns();
      if (solos_[g]->due(now)) desks_[g]->recall();
    }
    return lent;
  }
  LinkSet(const LinkSet&) = delete;
  LinkSet& operator=(const LinkSet&) = delete;

  // Packets that ordered groups parked in their in-process output links never reached the ready
  // ring, whose drain (~RingLink) destroys the rest (L2).
  ~LinkSet() {
    for (std::size_t g = 0; g < gates_.size(); ++g) {
      if (gates_[g] == nullptr) continue;
      with_index<kSink>(plan_.groups[g].last, [&](auto index) {
        auto& link = std::get<decltype(index)::value>(rings_);
        if (link) gates_[g]->drain_parked([&](std::uint32_t slot) { link->destroy(slot); });
      });
    }
  }

  // Per stage: whether the link after it crosses a process boundary (for the statistics).
  [[nodiscard]] const std::vector<bool>& shared() const noexcept { return shared_; }

  // A type that cannot cross a process boundary is rejected before anything starts.
  void check_serializable() const {
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const std::size_t producer = plan_.groups[g].last;
      if (!shared_[producer]) continue;
      with_index<kSink>(producer, [&](auto index) {
        using T = Output<decltype(index)::value>;
        if constexpr (!is_serializable_v<T>) {
          throw ConfigError(detail::format(
              "plumb.config_error: {} sends {} to {} across a process boundary, but that type "
              "cannot be serialized; specialize plumb::Codec<{}> for it, or run both stages in "
              "one process (Mode::thread)",
              describe_stage(producer, names_[producer]), type_name<T>(),
              describe_stage(producer + 1, names_[producer + 1]), type_name<T>()));
        }
      });
    }
  }

  // Places the shared links and every gate in `layout` (a run with worker processes).
  void reserve(ArenaLayout& layout) {
    offsets_.assign(kCount, 0);
    bytes_.assign(kCount, 0);
    gate_offsets_.assign(plan_.groups.size(), 0);
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const std::size_t producer = plan_.groups[g].last;
      if (shared_[producer]) {
        with_index<kSink>(producer, [&](auto index) {
          constexpr std::size_t kIndex = decltype(index)::value;
          if constexpr (is_serializable_v<Output<kIndex>>) {
            // Cannot overflow: at most 2^20 slots of 2^40 bytes (validate.hpp's limits).
            bytes_[kIndex] = ShmLink<Output<kIndex>>::bytes_for(plan_.capacity[kIndex], slot_bytes<kIndex>());
            offsets_[kIndex] = layout.add(bytes_[kIndex]);
          }
        });
      }
      if (plan_.groups[g].ordered) gate_offsets_[g] = layout.add(OrderGate::bytes_for(plan_.capacity[producer]));
    }
  }

  // The message of the ConfigError when the shared mapping would be more than a process can
  // map (`total` of it, over `limit` bytes): names the link that needs the most.
  [[nodiscard]] std::string too_large(const std::string& total, std::size_t limit) const {
    const auto largest = static_cast<std::size_t>(std::max_element(bytes_.begin(), bytes_.end()) - bytes_.begin());
    return detail::format(
        "plumb.config_error: the links between this run's worker processes need {} of shared "
        "memory, over the {} bytes a process can map; the largest is the output link of {}: "
        "in_flight({}) slots of max_message_size({}) bytes ({} bytes); lower in_flight or "
        "max_message_size there or on the other process links",
        total, limit, describe_stage(largest, names_[largest]), plan_.capacity[largest],
        max_message_sizes_[largest], bytes_[largest]);
  }

  // Builds every link and gate: the shared ones in `arena` (reserve() placed them), the others
  // in heap memory; the run's stop wakes each.
  void make(RunState& state, SharedArena* arena) {
    gates_.assign(plan_.groups.size(), nullptr);
    desks_.resize(plan_.groups.size());
    solos_.resize(plan_.groups.size());
    for (std::size_t g = 0; g + 1 < plan_.groups.size(); ++g) {
      const GroupPlan& group = plan_.groups[g];
      if (group.ordered) make_gate(g, state, arena);
      with_index<kSink>(group.last, [&](auto index) {
        constexpr std::size_t kIndex = decltype(index)::value;
        const std::size_t consumers = plan_.groups[g + 1].workers;
        if (!shared_[kIndex]) {
          auto& link = std::get<kIndex>(rings_);
          link = std::make_unique<RingLink<Output<kIndex>>>(plan_.capacity[kIndex], group.workers, consumers);
          auto* core = &link->core();
          state.on_stop([core] { core->wake_all(); });
          if (lends(g)) {
            desks_[g] = std::make_unique<HelpDesk>(group.workers);
            link->set_help_desk(desks_[g].get());
            HelpDesk* desk = desks_[g].get();
            state.on_stop([desk] { desk->wake_homes(); });
            if (solo(g)) {
              solos_[g] = std::make_unique<SoloGate>(group.workers - 1);
              SoloGate* gate = solos_[g].get();
              state.on_stop([gate] { gate->wake_all(); });
            }
          }
        } else if constexpr (is_serializable_v<Output<kIndex>>) {
          auto& link = std::get<kIndex>(shms_);
          link = std::make_unique<ShmLink<Output<kIndex>>>(arena->at(offsets_[kIndex]), plan_.capacity[kIndex],
                                                           slot_bytes<kIndex>(), group.workers, consumers);
          auto* core = &link->core();
          state.on_stop([core] { core->wake_all(); });
        }
      });
    }
  }

  // A consumer's end of the link before stage Index (> 0), kept in `store`: what stage Index's
  // Stream reads (Views where it reads them), for its worker `worker`. `hook`: the ordering
  // layer, for an ordered group.
  template <std::size_t Index>
  Input<Element<Index>>* open_input(ChainStore& store, StopFlag stop, WorkerTally& tally,
                                    TakeHook* hook, std::size_t worker) {
    using In = InputOf<Index>;
    if (!shared_[Index - 1]) {
      auto& input = store.add<LinkInput<In>>(*std::get<Index - 1>(rings_), stop, tally);
      input.set_take_hook(hook);
      if (SoloGate* gate = solos_[group_of(Index)].get(); gate != nullptr && worker != 0) input.set_solo(gate);
      if constexpr (kReadsViews<Index>) {
        return &store.add<ViewInput<In>>(static_cast<Input<In>&>(input));
      } else {
        return &input;
      }
    } else if constexpr (is_serializable_v<In>) {
      using Reader = std::conditional_t<kReadsViews<Index>, ShmViewInput<In>, typename ShmReader<In>::type>;
      auto& link = *std::get<Index - 1>(shms_);
      link.prefault(false);
      auto& input = store.add<Reader>(link, stop, tally);
      input.set_take_hook(hook);
      return &input;
    }
    PLUMB_ASSERT(false, "plumb: unreachable: a link of a type that cannot be serialized");
    return nullptr;
  }

  // Drains `output`, the generator of stage Index (the last of its worker's group), into the
  // link after it. A packet too large for a shared link's slots is the stage's error. `fail()`
  // records the exception in flight as the run's error, charged to the worker (for a lent
  // worker's step, whose exception its helper does not rethrow: H6).
  template <std::size_t Index, class Fail>
  void drain(GeneratorInput<Output<Index>>& output, WorkerContext& context, const WorkerInfo& info, Fail&& fail) {
    using T = Output<Index>;
    const StopFlag stop = context.stop();
    if (!shared_[Index]) {
      auto& link = *std::get<Index>(rings_);
      auto fill = [&link, stop](std::uint32_t slot, T& packet) { link.fill(slot, std::move(packet), stop); };
      if (HelpDesk* desk = link.help_desk()) {
        context.tally().time_waits();
        SoloGate* gate = solos_[group_of(Index)].get();
        if (gate == nullptr || info.index == 0) {
          const LendPolicy policy(lending_, plan_.capacity[Index], context.tally().ns_per_tick(), Index);
          lend_into(link.core(), *desk, info.index, policy, output, context, fill, fail, gate);
        } else {
          drain_into(link.core(), output, context, info, fill);  // a sibling: never lent (S1)
        }
      } else {
        drain_into(link.core(), output, context, info, fill);
      }
    } else if constexpr (is_serializable_v<T>) {
      auto& link = *std::get<Index>(shms_);
      link.prefault(true);
      if constexpr (IsBuffer<T>::value) {
        // An ordered group's packets take their slots in turn (drain_into): no slot in advance.
        if (context.order() == nullptr) return drain_buffers<Index>(link, output, context, info);
      }
      drain_into(link.core(), output, context, info, [&](std::uint32_t slot, const T& packet) {
        fill_or_throw(link, slot, packet, stop, context, info);
      });
    }
  }

  // A producer worker of the link after `stage` is done (finished, failed or stopped).
  void producer_done(std::size_t stage) noexcept {
    with_core(stage, [](auto& core) { core.producer_done(); });
  }

  // The OrderGate of ordered group `group`, and the output link it queues into.
  [[nodiscard]] OrderGate& gate(std::size_t group) noexcept { return *gates_[group]; }
  [[nodiscard]] OutputRef gate_output(std::size_t group) noexcept {
    OutputRef ref;
    with_core(plan_.groups[group].last, [&](auto& core) { ref = OutputRef::of(core); });
    return ref;
  }

 private:
  template <class F>
  void with_core(std::size_t stage, F&& f) noexcept {
    with_index<kSink>(stage, [&](auto index) {
      constexpr std::size_t kIndex = decltype(index)::value;
      if (!shared_[kIndex]) {
        f(std::get<kIndex>(rings_)->core());
      } else if constexpr (is_serializable_v<Output<kIndex>>) {
        f(std::get<kIndex>(shms_)->core());
      }
    });
  }

  // Zero-copy writes: the worker's make_buffer() is served from the slots of `link` while its
  // generator is drained into it (exec/slot_source.hpp).
  template <std::size_t Index, class U>
  void drain_buffers(ShmLink<Buffer<U>>& link, GeneratorInput<Buffer<U>>& output,
                     WorkerContext& context, const WorkerInfo& info) {
    // The link keeps its rings (ShmLink, LinkPath::rings), so a worker holding a slot may wait
    // for another wherever some slot is never held that way (B1: at most one per producer).
    const std::size_t capacity = plan_.capacity[Index];
    const bool second_slot = capacity > plan_.groups[group_of(Index)].workers;
    auto source = SlotSource<U>::make(link, output.buffers().pool(), context.stop(),
                                      context.tally().output_timer(), info);
    output.buffers().serve_from(source.get());
    try {
      drain_in_place(link, *source, output, context, info, second_slot, capacity);
    } catch (...) {
      output.buffers().serve_from(nullptr);
      throw;
    }
    output.buffers().serve_from(nullptr);
  }

  // The slot size of the shared link after stage Index: the exact size of its messages when
  // every message has the same size, else the stage's max_message_size.
  template <std::size_t Index>
  std::size_t slot_bytes() const {
    const std::size_t limit = max_message_sizes_[Index];
    const std::size_t fixed = kFixedEncodedSize<Output<Index>>;
    return fixed != 0 ? std::min(fixed, limit) : limit;
  }

  // The group stage `stage` is in.
  [[nodiscard]] std::size_t group_of(std::size_t stage) const noexcept {
    std::size_t g = 0;
    while (plan_.groups[g].last < stage) ++g;
    return g;
  }

  void make_gate(std::size_t group, RunState& state, SharedArena* arena) {
    const std::size_t window = plan_.capacity[plan_.groups[group].last];
    OrderGate* gate = &owned_gates_.make(window, arena != nullptr ? arena->at(gate_offsets_[group]) : nullptr);
    gates_[group] = gate;
    state.on_stop([gate] { gate->wake_all(); });
  }

  const Plan& plan_;
  std::span<const std::string> names_;
  std::span<const std::size_t> max_message_sizes_;
  std::vector<bool> shared_;             // per stage: the link after it is a ShmLink
  std::vector<std::size_t> offsets_;     // per stage: its ShmLink in the arena
  std::vector<std::size_t> bytes_;       // per stage: its ShmLink's size
  std::vector<std::size_t> gate_offsets_;  // per group: its OrderGate in the arena
  OrderGates owned_gates_;               // the gates' memory without an arena
  std::vector<OrderGate*> gates_;        // per group: its OrderGate, if it is ordered
  Lending lending_;
  std::vector<std::unique_ptr<HelpDesk>> desks_;  // per group: its HelpDesk, if it lends
  std::vector<std::unique_ptr<SoloGate>> solos_;  // per group: its SoloGate, if lent solo
  decltype(ring_tuple(std::make_index_sequence<kSink>{})) rings_;
  decltype(shm_tuple(std::make_index_sequence<kSink>{})) shms_;
};

}  // namespace plumb::detail
