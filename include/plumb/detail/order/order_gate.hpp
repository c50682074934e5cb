#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/order/order_gate.hpp: OrderGate, which makes the output of a stage with several workers
// leave in the order of its input (Stage::ordered()). One block without pointers, so that it can
// live in heap memory (threads) or in the run's shared mapping (processes).

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/link/index_ring.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/sync/wait.hpp>

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace plumb::detail {

// Groups and turns. The workers of an ordered group take their inputs from a link whose ready
// ring numbers the packets in the order they were queued (IndexRing positions 0, 1, 2, ...): a
// packet's position is its group number g. Everything a worker yields between taking input g
// and taking its next input (or finishing) is group g. Groups leave, into the output link's
// ready ring, in the order of g; `turn_` is the group now allowed to leave.
//
// Invariants:
//   G1: tickets_ + (groups taken and not yet passed by turn_) == window_: a worker takes an
//       input only with a ticket, and passing a group returns its ticket. So every group taken is
//       in [turn_, turn_ + window_), and the per-group cells (g % window_) never collide.
//   G2: a group other than turn_ keeps at most one packet in the output link (its cell's
//       `parked` slot); its worker waits for the turn before it takes a slot for a second one.
//       So parked slots number at most window_ - 1 <= capacity - 1 (window_ is the output
//       link's capacity), and the worker of turn_ always finds a slot once the consumer moves:
//       no deadlock.
//   G3: only the worker of group g parks for g; a parked slot is queued (in order, before any
//       later packet of g) by whoever moves turn_ to g, under mutex_.
//   G4: turn_ and the parked cells change under mutex_ only; a packet of group turn_ is queued
//       under mutex_, so queueing follows the order of turns.
// Sync: turn_ and tickets_ are also read without mutex_, by waiters' predicates (acquire loads;
// the mutex's release orders the flush before a waiter that sees the new turn takes the mutex).
//
// The mutex is a process-shared robust pthread mutex: a worker process that dies holding it does
// not wedge the others (the run is failing then anyway; see lock()).
class OrderGate {
 public:
  static constexpr std::uint32_t kNone = IndexRing::kNone;

  static std::size_t bytes_for(std::size_t window) noexcept {
    return sizeof(OrderGate) + window * sizeof(Cell);
  }

  // Builds a gate in `memory` (bytes_for(window) bytes, 64-byte aligned).
  static OrderGate* create(void* memory, std::size_t window) noexcept {
    return new (memory) OrderGate(window);
  }

  OrderGate(const OrderGate&) = delete;
  OrderGate& operator=(const OrderGate&) = delete;
  ~OrderGate() { ::pthread_mutex_destroy(&mutex_); }

  // --- A worker's input side ----------------------------------------------------------------

  // Group `done` (if any) is complete; then waits for a ticket to take the next input. Throws
  // Stopped once the run stops.
  template <class Core>
  void before_take(const std::uint64_t* done, Core& output, StopFlag stop) {
    if (done != nullptr) complete(*done, output, stop);
    if (try_ticket()) return;
    bool got = false;
    tickets_event_.wait(
        [&] {
          if (stop.stopping()) return true;
          got = try_ticket();
          return got;
        },
        SpinPolicy{});
    if (!got) throw Stopped{};
  }

  // The take after before_take() found the end of the stream: its ticket is not needed.
  void return_ticket() noexcept {
    tickets_.fetch_add(1, std::memory_order_release);
    tickets_event_.notify_one();
  }

  // --- A worker's output side ----------------------------------------------------------------

  // Before taking a slot for a packet of group `group`: waits for its turn if the group already
  // parked a packet (G2). Throws Stopped once the run stops.
  void before_slot(std::uint64_t group, StopFlag stop) {
    if (turn_.load(std::memory_order_acquire) == group) return;
    {
      const Lock lock(mutex_);
      if (cell(group).parked == kNone) return;
    }
    turn_event_.wait(
        [&] { return stop.stopping() || turn_.load(std::memory_order_acquire) == group; },
        SpinPolicy{});
    if (turn_.load(std::memory_order_acquire) != group) throw Stopped{};
  }

  // Before taking a slot for a packet yielded after the worker's input ended, outside any group:
  // waits until every group of the `total` inputs has passed. Throws Stopped once the run stops.
  void before_trailing_slot(std::uint64_t total, StopFlag stop) { wait_turn(total, stop); }

  // Waits until the turn reaches `group` (the group's worker: the turn then stays there until
  // it completes the group, so this is "until it is group's turn"). Throws Stopped once the run
  // stops. A graph's ordered node sends each packet only in its group's turn, holding no slot
  // while it waits (detail/graph/order.hpp), so it never parks one.
  void wait_turn(std::uint64_t group, StopFlag stop) {
    if (turn_.load(std::memory_order_acquire) >= group) return;
    turn_event_.wait(
        [&] { return stop.stopping() || turn_.load(std::memory_order_acquire) >= group; },
        SpinPolicy{});
    if (turn_.load(std::memory_order_acquire) < group) throw Stopped{};
  }

  // Queues a trailing packet (after before_trailing_slot()): every group has passed.
  template <class Core>
  void publish_trailing(std::uint32_t slot, Core& output, StopFlag stop) noexcept {
    const Lock lock(mutex_);
    output.enqueue(slot, stop);
  }

  // `slot` holds a packet of group `group`: queues it now if it is the group's turn, else parks
  // it until then (G3).
  template <class Core>
  void publish(std::uint64_t group, std::uint32_t slot, Core& output,
               StopFlag stop) noexcept {
    const Lock lock(mutex_);
    if (group == turn_.load(std::memory_order_relaxed)) {
      output.enqueue(slot, stop);
      return;
    }
    PLUMB_ASSERT(cell(group).parked == kNone, "plumb: an ordered group parked a second packet");
    cell(group).parked = slot;
  }

  // Group `group` will yield nothing more; passes every complete group from the turn on.
  template <class Core>
  void complete(std::uint64_t group, Core& output, StopFlag stop) noexcept {
    bool moved = false;
    {
      const Lock lock(mutex_);
      cell(group).done = 1;
      std::uint64_t turn = turn_.load(std::memory_order_relaxed);
      while (cell(turn).done != 0) {
        cell(turn).done = 0;
        ++turn;
        turn_.store(turn, std::memory_order_release);
        tickets_.fetch_add(1, std::memory_order_release);
        moved = true;
        Cell& next = cell(turn);
        if (next.parked != kNone) {
          output.enqueue(next.parked, stop);
          next.parked = kNone;
        }
      }
    }
    if (moved) {
      turn_event_.notify_all();
      tickets_event_.notify_all();
    }
  }

  // After every worker has stopped: hands each parked slot (holding a packet that never left)
  // to `visit`, and forgets it.
  template <class Visit>
  void drain_parked(Visit&& visit) noexcept {
    const Lock lock(mutex_);
    for (std::size_t i = 0; i < window_; ++i) {
      if (cells()[i].parked != kNone) visit(std::exchange(cells()[i].parked, kNone));
    }
  }

  // A round-robin counter of the node's packets (a graph node's round_robin fan-out), touched
  // only by the worker whose group has the turn: the turn's hand-over (turn_, stored with
  // release under mutex_, read with acquire) orders one holder's writes before the next's.
  [[nodiscard]] std::size_t& round_robin() noexcept { return round_robin_; }

  // Wakes every waiter so that it sees the run stopping.
  void wake_all() noexcept {
    turn_event_.wake_all();
    tickets_event_.wake_all();
  }

 private:
  struct Cell {
    std::uint32_t parked = kNone;  // G2, G3
    std::uint32_t done = 0;        // the group is complete, waiting for its turn
  };

  // Locks the robust mutex. A worker process that died holding it left the gate as it was at
  // that instant; the death fails the run (the supervisor reports it), so the gate is only used
  // to wind down: make it consistent and go on.
  class Lock {
   public:
    explicit Lock(pthread_mutex_t& mutex) noexcept : mutex_(mutex) {
      if (::pthread_mutex_lock(&mutex_) == EOWNERDEAD) ::pthread_mutex_consistent(&mutex_);
    }
    ~Lock() { ::pthread_mutex_unlock(&mutex_); }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

   private:
    pthread_mutex_t& mutex_;
  };

  explicit OrderGate(std::size_t window) noexcept : window_(window) {
    pthread_mutexattr_t attributes;
    ::pthread_mutexattr_init(&attributes);
    ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    ::pthread_mutex_init(&mutex_, &attributes);
    ::pthread_mutexattr_destroy(&attributes);
    tickets_.store(static_cast<std::int64_t>(window), std::memory_order_relaxed);
    for (std::size_t i = 0; i < window; ++i) new (cells() + i) Cell{};
  }

  bool try_ticket() noexcept {
    std::int64_t tickets = tickets_.load(std::memory_order_acquire);
    while (tickets > 0) {
      // acq_rel: a ticket returned by a pass (release) comes after that pass's queueing.
      if (tickets_.compare_exchange_weak(tickets, tickets - 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }

  Cell* cells() noexcept {
    return std::launder(reinterpret_cast<Cell*>(reinterpret_cast<std::byte*>(this) + sizeof(OrderGate)));
  }
  Cell& cell(std::uint64_t group) noexcept { return cells()[group % window_]; }

  pthread_mutex_t mutex_;
  std::uint64_t window_;
  std::size_t round_robin_ = 0;
  alignas(kCacheLine) std::atomic<std::uint64_t> turn_{0};
  alignas(kCacheLine) std::atomic<std::int64_t> tickets_{0};
  alignas(kCacheLine) Event<Sharing::process_shared> turn_event_;
  alignas(kCacheLine) Event<Sharing::process_shared> tickets_event_;
};

static_assert(sizeof(OrderGate) % kCacheLine == 0, "the cells must follow the gate aligned");

// Where a run's OrderGates live: in the run's shared mapping (worker processes), or in heap
// memory owned here until this object dies (after every worker ended).
class OrderGates {
 public:
  // A gate of `window` cells at `shared` (bytes_for(window) bytes reserved in the run's
  // mapping), or in heap memory when `shared` is null.
  OrderGate& make(std::size_t window, void* shared) {
    if (shared != nullptr) return *OrderGate::create(shared, window);
    auto& owned = owned_.emplace_back(
        static_cast<std::byte*>(::operator new(OrderGate::bytes_for(window), std::align_val_t{kCacheLine})));
    return *OrderGate::create(owned.get(), window);
  }

 private:
  struct Delete {
    void operator()(std::byte* block) const noexcept {
      std::destroy_at(std::launder(reinterpret_cast<OrderGate*>(block)));
      ::operator delete(block, std::align_val_t{kCacheLine});
    }
  };
  std::vector<std::unique_ptr<std::byte, Delete>> owned_;
};

// The output link of an ordered group, as the gate queues into it (either kind of LinkCore).
struct OutputRef {
  void* core = nullptr;
  void (*queue)(void* core, std::uint32_t slot, StopFlag stop) noexcept = nullptr;

  template <class Core>
  static OutputRef of(Core& output) noexcept {
    return OutputRef{&output, [](void* core, std::uint32_t slot, StopFlag stop) noexcept {
                       static_cast<Core*>(core)->enqueue(slot, stop);
                     }};
  }
  void enqueue(std::uint32_t slot, StopFlag stop) const noexcept { queue(core, slot, stop); }
};

// One worker's place in an ordered group: the group it works on. A packet yielded before the
// worker took its first input belongs to no group (an error); one yielded after its input ended
// trails: it leaves after every group.
//
// Thread affinity: the worker's thread only.
class OrderCursor final : public TakeHook {
 public:
  OrderCursor(OrderGate& gate, OutputRef output) noexcept : gate_(gate), output_(output) {}

  [[nodiscard]] OrderGate& gate() noexcept { return gate_; }
  [[nodiscard]] bool has_group() const noexcept { return has_group_; }
  [[nodiscard]] std::uint64_t group() const noexcept { return group_; }
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }

  // The generator finished: its last group is complete.
  void finish(StopFlag stop) noexcept {
    if (has_group_) gate_.complete(group_, output_, stop);
    has_group_ = false;
  }

  // Queues `slot`, which holds the packet just yielded, in its group's order.
  void publish(std::uint32_t slot, StopFlag stop) noexcept {
    if (has_group_) {
      gate_.publish(group_, slot, output_, stop);
    } else {
      gate_.publish_trailing(slot, output_, stop);
    }
  }

  // Before the input takes a packet: the current group is complete; wait for a ticket.
  void before_take(StopFlag stop) override {
    // Cleared first: should the wait for a ticket throw Stopped, the group is not completed twice.
    const bool had_group = std::exchange(has_group_, false);
    gate_.before_take(had_group ? &group_ : nullptr, output_, stop);
  }
  // The input took the packet at ready-ring position `position`: the new group.
  void took(std::uint64_t position) noexcept override {
    group_ = position;
    has_group_ = true;
  }
  // The input ended after `total` packets.
  void ended(std::uint64_t total) noexcept override {
    gate_.return_ticket();
    ended_ = true;
    total_ = total;
  }

 private:
  OrderGate& gate_;
  OutputRef output_;
  std::uint64_t group_ = 0;
  std::uint64_t total_ = 0;
  bool has_group_ = false;
  bool ended_ = false;
};

}  // namespace plumb::detail
