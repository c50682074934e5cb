#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/ring_link.hpp: RingLink<T>, the link between two stages in one process: a fixed
// ring of in_flight slots holding the packets themselves (moved in, read in place).

#include <plumb/detail/link/index_ring.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/stats/tally.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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

  // Destroys the packet in `slot` and frees the slot for a producer.
  void release(std::uint32_t slot, StopFlag stop) noexcept {
    std::destroy_at(packet(slot));
    core_->recycle(slot, stop);
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
};

// A consumer worker's end of a RingLink: the packet it works on stays in its slot until it
// asks for the next one.
template <class T>
class LinkInput final : public Input<T> {
 public:
  LinkInput(RingLink<T>& link, StopFlag stop, WorkerTally& tally) noexcept
      : link_(link), stop_(stop), tally_(tally) {}
  LinkInput(const LinkInput&) = delete;
  LinkInput& operator=(const LinkInput&) = delete;
  ~LinkInput() override {
    if (held_ != RingLink<T>::kEnd) link_.release(held_, stop_);
  }

  // An ordering layer numbers the packets this input takes (take.hpp).
  void set_take_hook(TakeHook* hook) noexcept { hook_ = hook; }

 private:
  T* pull() override {
    if (held_ != RingLink<T>::kEnd) link_.release(std::exchange(held_, RingLink<T>::kEnd), stop_);
    const std::uint32_t slot = take_next(link_.core(), stop_, tally_.input_timer(), hook_);
    if (slot == RingLink<T>::kEnd) return nullptr;
    tally_.took();
    held_ = slot;
    return &link_.at(slot);
  }

  RingLink<T>& link_;
  StopFlag stop_;
  WorkerTally& tally_;
  TakeHook* hook_ = nullptr;
  std::uint32_t held_ = RingLink<T>::kEnd;
};

}  // namespace plumb::detail
