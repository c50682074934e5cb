#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/ring_link.hpp: RingLink<T>, the link between two stages in one process: a fixed
// ring of in_flight slots holding the packets themselves (moved in, read in place).

#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/help_desk.hpp>
#include <plumb/detail/link/index_ring.hpp>
#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/link/solo_gate.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/stats/tally.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <utility>

namespace plumb::detail {

// The slots of a RingLink hold T objects; LinkCore (heap memory, process-private futexes) does
// the accounting. Invariant L2 of LinkCore: a slot holds a live T exactly while its index is in
// the ready ring or in a consumer's hands.
template <class T>
class RingLink {
  using Core = LinkCore<Sharing::process_private>;

 public:
  static constexpr std::uint32_t kEnd = Core::kEnd;

  RingLink(std::size_t capacity, std::size_t producers, std::size_t consumers)
      : block_(static_cast<std::byte*>(
            ::operator new(Core::bytes_for(capacity), std::align_val_t{kCacheLine}))),
        core_(Core::create(block_.get(), capacity, producers, consumers)),
        slots_(std::make_unique<Slot[]>(capacity)) {}

  RingLink(const RingLink&) = delete;
  RingLink& operator=(const RingLink&) = delete;

  // After every worker has finished: destroys the packets that were queued but never consumed
  // (error paths only; L2).
  ~RingLink() {
    core_->drain([this](std::uint32_t slot) { std::destroy_at(packet(slot)); });
  }

  [[nodiscard]] Core& core() noexcept { return *core_; }

  // Its producers may be lent to its consumers through `desk` (set before any worker starts;
  // outlives the link's workers). Null: never.
  void set_help_desk(HelpDesk* desk) noexcept {
    desk_ = desk;
    if (desk != nullptr) core_->set_lent();
  }
  [[nodiscard]] HelpDesk* help_desk() const noexcept { return desk_; }

  // --- Producer API ---------------------------------------------------------------------------

  // Moves `value` into `slot` (from acquire_slot), not queued yet (the producer queues it, or an
  // ordered group's gate does in turn). If the move throws, the slot is given back.
  void fill(std::uint32_t slot, T&& value, StopFlag stop) {
    try {
      std::construct_at(packet(slot), std::move(value));
    } catch (...) {
      core_->return_slot(slot, stop);
      throw;
    }
  }

  // --- Consumer API ---------------------------------------------------------------------------

  // The packet in `slot` (from take()).
  [[nodiscard]] T& at(std::uint32_t slot) noexcept { return *packet(slot); }

  // Destroys the packet in `slot` without freeing the slot (after the workers stopped).
  void destroy(std::uint32_t slot) noexcept { std::destroy_at(packet(slot)); }

  // Destroys the packet in `slot` and frees the slot (for whom: LinkCore::recycle()).
  void release(std::uint32_t slot, StopFlag stop, FreedFor for_whom = FreedFor::producers) noexcept {
    std::destroy_at(packet(slot));
    core_->recycle(slot, stop, for_whom);
  }

 private:
  struct alignas(std::max(alignof(T), kCacheLine)) Slot {
    alignas(T) std::byte storage[sizeof(T)];
  };
  struct AlignedDelete {
    void operator()(std::byte* block) const noexcept {
      ::operator delete(block, std::align_val_t{kCacheLine});
    }
  };

  T* packet(std::uint32_t slot) noexcept {
    return std::launder(reinterpret_cast<T*>(slots_[slot].storage));
  }

  std::unique_ptr<std::byte, AlignedDelete> block_;
  Core* core_;
  std::unique_ptr<Slot[]> slots_;
  HelpDesk* desk_ = nullptr;
};

// A consumer worker's end of a RingLink: the packet it works on stays in its slot until it
// asks for the next one. On a link whose producers may be lent (RingLink::help_desk()), a
// consumer that finds the link empty runs a parked producer's step itself (help()) before it
// waits, and while it waits it wakes for a producer that parks.
template <class T>
class LinkInput final : public Input<T> {
  using Core = LinkCore<Sharing::process_private>;

 public:
  LinkInput(RingLink<T>& link, StopFlag stop, WorkerTally& tally) noexcept
      : link_(link),
        stop_(stop),
        tally_(tally),
        desk_(link.help_desk()),
        keeps_seat_(desk_ != nullptr && link.core().one_consumer()) {}
  LinkInput(const LinkInput&) = delete;
  LinkInput& operator=(const LinkInput&) = delete;
  ~LinkInput() override {
    if (held_ != RingLink<T>::kEnd) link_.release(held_, stop_);
    if (seat_ != kNoSeat) desk_->let_go(seat_);  // H4: its home may wait for it
    if (solo_ != nullptr) solo_->retire();        // makes nothing more (S1)
  }

  // An ordering layer numbers the packets this input takes (take.hpp).
  void set_take_hook(TakeHook* hook) noexcept { hook_ = hook; }

  // This input is a sibling's in a group lent solo (solo_gate.hpp): each pull first waits
  // while the group's lead is lent.
  void set_solo(SoloGate* solo) noexcept { solo_ = solo; }

 private:
  T* pull() override {
    if (held_ != RingLink<T>::kEnd) {
      // Holding the one producer's seat (single path), nobody else waits for the slot.
      const FreedFor for_whom = seat_ != kNoSeat && link_.core().single() ? FreedFor::holder : FreedFor::producers;
      link_.release(std::exchange(held_, RingLink<T>::kEnd), stop_, for_whom);
    }
    if (solo_ != nullptr) solo_->wait_turn(stop_, tally_.input_timer());  // holds nothing (S2)
    const std::uint32_t slot = take();
    if (slot == RingLink<T>::kEnd) return nullptr;
    tally_.took();
    held_ = slot;
    return &link_.at(slot);
  }

  std::uint32_t take() {
    if (desk_ == nullptr) [[likely]] return take_next(link_.core(), stop_, tally_.input_timer(), hook_);
    if (hook_ == nullptr) return take_helping(nullptr);
    return take_numbered(hook_, stop_, [&](std::uint64_t* position) { return take_helping(position); });
  }

  // A packet, or the end: taken if one is queued, else made by running a parked producer's
  // step here (which queues it: another consumer may take it first; then help again), else
  // waited for (waking for a producer that parks, and for room to run it).
  //
  // The wait's hints (a seat looks parked, a slot looks free) can hold while help() finds
  // nothing: another consumer claimed the seat first, or the free ring's head is mid-push by a
  // consumer that was preempted there. Such misses are bounded: after kMissesBeforeYield in a
  // row this thread yields between attempts (the pusher may need its core).
  std::uint32_t take_helping(std::uint64_t* position) {
    Core& core = link_.core();
    for (unsigned misses = 0;; ++misses) {
      std::uint32_t slot = core.try_take(stop_, position);
      if (slot != Core::kEmpty) return slot;
      if (help()) {
        misses = 0;
        continue;
      }
      // About to wait: a kept seat goes back, for its home or another helper.
      if (seat_ != kNoSeat) desk_->let_go(std::exchange(seat_, kNoSeat));
      if (misses >= kMissesBeforeYield) {
        const WaitScope waiting(tally_.input_timer());  // a wait for input (and not a stall)
        std::this_thread::yield();
      }
      slot = core.take_until(stop_, tally_.input_timer(), position,
                             [&] { return desk_->parked_approx() && core.room_approx(); });
      if (slot != Core::kEmpty) return slot;
    }
  }
  static constexpr unsigned kMissesBeforeYield = 64;

  // Runs one step of a parked producer, if one can be claimed and a slot is free (H2). Its time
  // counts as this worker's wait for input (starved) and as the producer's busy time. The
  // link's one consumer keeps the seat for its next packet (no claim and let-go per packet,
  // two read-modify-writes) until its home recalls it or this input waits or ends; with
  // several consumers the seat goes back after each step, for any of them.
  bool help() {
    if (seat_ != kNoSeat && desk_->recalled(seat_)) desk_->let_go(std::exchange(seat_, kNoSeat));
    const bool kept = seat_ != kNoSeat;
    const std::size_t seat = kept ? seat_ : desk_->claim(cursor_);
    if (seat == desk_->seats()) return false;
    // A packet queued after this input looked and before the claim (the worker's last one made
    // at home before it parked, or a solo sibling's before it waited, S1: the claim's acquire
    // sees it) is taken first: the step might wait for input while that packet, which nobody
    // else may take, stayed behind. Not a miss to retry at once: the caller's wait takes it.
    if (!kept && link_.core().ready_approx()) {
      desk_->let_go(seat);
      return false;
    }
    const std::uint32_t slot = link_.core().try_acquire_slot();
    if (slot == Core::kEmpty) {
      if (!kept) desk_->let_go(seat);
      return false;
    }
    std::int64_t ticks = 0;
    seat_ = kNoSeat;  // while the step runs, its outcome decides
    HelpDesk::Help done = HelpDesk::Help::ended;
    // Inside a timed stretch of this worker's own work (OwnWork), the step is timed for it:
    // not its work. The totals are set, not added to, after the step: the steps nested in this
    // one are inside its time already.
    NestedSteps& nested = NestedSteps::here();
    const NestedSteps outer = nested;
    const std::int64_t started = outer.open != 0 ? TickClock::now() : 0;
    // Relaxed: the watch's hint (HelpDesk::watch()); this worker's clock, its owner's.
    std::atomic<std::uint32_t>& helping = tally_.clock().helping;
    helping.store(1, std::memory_order_relaxed);
    try {
      done = desk_->step(seat, slot, ticks);
    } catch (...) {
      helping.store(0, std::memory_order_relaxed);
      charge(ticks);
      throw;
    }
    helping.store(0, std::memory_order_relaxed);
    charge(ticks);
    if (outer.open != 0) {
      nested.ticks = outer.ticks + (TickClock::now() - started);
      nested.charged = outer.charged + (tally_.input_timer() != nullptr ? ticks : 0);
    }
    if (done == HelpDesk::Help::packet) {
      if (keeps_seat_) {
        seat_ = seat;
      } else {
        desk_->let_go(seat);
      }
    }
    return true;
  }

  void charge(std::int64_t ticks) noexcept {
    if (WaitTimer* timer = tally_.input_timer()) timer->add(ticks);
  }

  RingLink<T>& link_;
  StopFlag stop_;
  WorkerTally& tally_;
  static constexpr std::size_t kNoSeat = static_cast<std::size_t>(-1);

  HelpDesk* desk_;
  bool keeps_seat_;  // the link's one consumer keeps the seat it helped (help())
  TakeHook* hook_ = nullptr;
  SoloGate* solo_ = nullptr;
  std::uint32_t held_ = RingLink<T>::kEnd;
  std::size_t cursor_ = 0;  // the seat helped last (HelpDesk::claim())
  std::size_t seat_ = kNoSeat;  // the seat kept (claimed) between two steps
};

}  // namespace plumb::detail
