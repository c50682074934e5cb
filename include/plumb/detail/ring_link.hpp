#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/ring_link.hpp: RingLink<T>, the link between two stages in one process: a fixed
// ring of in_flight slots holding the packets themselves, with packets-in-flight semantics.

#include <plumb/detail/index_ring.hpp>
#include <plumb/detail/input.hpp>
#include <plumb/detail/run_state.hpp>
#include <plumb/detail/wait.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <utility>

namespace plumb::detail {

// A slot index travels: free ring -> producer (builds the packet) -> ready ring -> consumer
// (works on the packet in place) -> free ring. A producer takes a free slot *before* it resumes
// its generator, and a consumer gives its slot back only when it asks for the next packet, so
// the number of slots bounds the packets being built, queued and worked on together (the
// brief's "packets in flight"). See docs/design/link.md.
//
// Invariants:
//   L1: each slot index is in exactly one place: the free ring, the ready ring, or the hands of
//       one producer or one consumer.
//   L2: a slot holds a live T exactly while its index is in the ready ring or in a consumer's
//       hands.
//   L3: producers_left_ counts producer workers that have not called producer_done(); once it is
//       0 no index enters the ready ring again.
// Written by: producers (publish, return_slot, producer_done), consumers (release).
//
// RingLinkCore holds everything that does not depend on T; RingLink<T> adds the slots.
class RingLinkCore {
 public:
  static constexpr std::uint32_t kEnd = IndexRing::kNone;

  RingLinkCore(std::size_t capacity, std::size_t producers, SpinPolicy spin)
      : capacity_(capacity),
        spin_(spin),
        free_(make_ring(capacity)),
        ready_(make_ring(capacity)),
        producers_left_(producers) {
    for (std::uint32_t slot = 0; slot < capacity; ++slot) free_.ring->try_push(slot);
  }

  RingLinkCore(const RingLinkCore&) = delete;
  RingLinkCore& operator=(const RingLinkCore&) = delete;

  // --- Producer API: any worker of the producing stage -----------------------------------

  // Waits for a free slot: the right to build one packet. Throws Stopped once the run stops.
  std::uint32_t acquire_slot(const RunState& state) {
    std::uint32_t slot = free_.ring->try_pop();
    if (slot != kEnd) return slot;
    free_event_.wait(
        [&] {
          if (state.stopping()) return true;
          slot = free_.ring->try_pop();
          return slot != kEnd;
        },
        spin_);
    if (slot == kEnd) throw Stopped{};
    return slot;
  }

  // Queues `slot`, which now holds a packet, for a consumer.
  void enqueue(std::uint32_t slot) noexcept {
    push(ready_, slot);
    ready_event_.notify_one();
  }

  // Gives back a slot from acquire_slot() that was not used (the generator ended or threw).
  void return_slot(std::uint32_t slot) noexcept {
    push(free_, slot);
    free_event_.notify_one();
  }

  // One producer worker has finished; the last one ends the stream (L3).
  void producer_done() noexcept {
    // acq_rel: the release publishes this producer's pushes to the consumer that sees 0
    // ([sync L-E1] pairs with [sync L-E2]); the acquire orders the last decrement after the
    // other producers' pushes.
    if (producers_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) ready_event_.notify_all();
  }

  // --- Consumer API: any worker of the consuming stage ------------------------------------

  // Waits for a queued packet and returns its slot, or kEnd once every producer has finished
  // and the ring is drained. Throws Stopped once the run stops.
  std::uint32_t take(const RunState& state) {
    std::uint32_t slot = ready_.ring->try_pop();
    if (slot != kEnd) return slot;
    bool ended = false;
    ready_event_.wait(
        [&] {
          if (state.stopping()) return true;
          slot = ready_.ring->try_pop();
          if (slot != kEnd) return true;
          // [sync L-E2] pairs with [sync L-E1]: seeing 0 means every push happened before, so
          // one more pop decides between "a packet" and "the end".
          if (producers_left_.load(std::memory_order_acquire) != 0) return false;
          slot = ready_.ring->try_pop();
          ended = slot == kEnd;
          return true;
        },
        spin_);
    if (slot == kEnd && !ended) throw Stopped{};
    // A consumer woken for a later push can find the head cell still mid-push and sleep again,
    // leaving that later packet to nobody; passing the wake-up on keeps consumers busy while
    // the ring has packets.
    if (slot != kEnd && ready_.ring->was_nonempty()) ready_event_.notify_one();
    return slot;
  }

  // Frees `slot` (its packet already destroyed) for a producer.
  void recycle(std::uint32_t slot) noexcept {
    push(free_, slot);
    free_event_.notify_one();
  }

  // --- Any thread ----------------------------------------------------------------------------

  // Wakes every waiter so that it sees the run stopping.
  void wake_all() noexcept {
    free_event_.wake_all();
    ready_event_.wake_all();
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 protected:
  struct RingMemory {
    struct Free {
      void operator()(IndexRing* ring) const noexcept {
        ::operator delete(static_cast<void*>(ring), std::align_val_t{kCacheLine});
      }
    };
    std::unique_ptr<IndexRing, Free> ring;
  };

  static RingMemory make_ring(std::size_t capacity) {
    void* memory = ::operator new(IndexRing::bytes_for(capacity), std::align_val_t{kCacheLine});
    return RingMemory{std::unique_ptr<IndexRing, RingMemory::Free>(IndexRing::create(memory, capacity))};
  }

  // Pushing never fails for lack of room (only `capacity` indices exist, L1); it can only find
  // its cell still being read by a consumer preempted between its claim and its release, which
  // finishes in a few instructions once it runs again. So: yield a few times, then back off
  // with sleeps from 1 us doubling to 1 ms, so that a peer that is not scheduled (CPU
  // throttling, a lower priority) is waited for without burning a core.
  static void push(RingMemory& ring, std::uint32_t slot) noexcept {
    for (int attempt = 0; !ring.ring->try_push(slot); ++attempt) {
      if (attempt < 16) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(1 << std::min(attempt - 16, 10)));
      }
    }
  }

  std::size_t capacity_;
  SpinPolicy spin_;
  RingMemory free_;
  RingMemory ready_;
  alignas(kCacheLine) std::atomic<std::size_t> producers_left_;
  alignas(kCacheLine) Event<Sharing::process_private> free_event_;
  alignas(kCacheLine) Event<Sharing::process_private> ready_event_;
};

template <class T>
class RingLink final : public RingLinkCore {
 public:
  RingLink(std::size_t capacity, std::size_t producers, SpinPolicy spin)
      : RingLinkCore(capacity, producers, spin), slots_(std::make_unique<Slot[]>(capacity)) {}

  // After every worker has finished: destroys the packets that were queued but never consumed
  // (error paths only; L2).
  ~RingLink() {
    for (std::uint32_t slot = ready_.ring->try_pop(); slot != kEnd; slot = ready_.ring->try_pop()) {
      std::destroy_at(packet(slot));
    }
  }

  // --- Producer API ---------------------------------------------------------------------------

  // Moves `value` into `slot` (from acquire_slot) and queues it for a consumer.
  void publish(std::uint32_t slot, T&& value) {
    try {
      std::construct_at(packet(slot), std::move(value));
    } catch (...) {
      return_slot(slot);
      throw;
    }
    enqueue(slot);
  }

  // --- Consumer API ---------------------------------------------------------------------------

  // The packet in `slot` (from take()).
  [[nodiscard]] T& at(std::uint32_t slot) noexcept { return *packet(slot); }

  // Destroys the packet in `slot` and frees the slot for a producer.
  void release(std::uint32_t slot) noexcept {
    std::destroy_at(packet(slot));
    recycle(slot);
  }

 private:
  struct alignas(std::max(alignof(T), kCacheLine)) Slot {
    alignas(T) std::byte storage[sizeof(T)];
  };

  T* packet(std::uint32_t slot) noexcept {
    return std::launder(reinterpret_cast<T*>(slots_[slot].storage));
  }

  std::unique_ptr<Slot[]> slots_;
};

// A consumer worker's end of a RingLink: the packet it works on stays in its slot until it
// asks for the next one.
template <class T>
class LinkInput final : public Input<T> {
 public:
  LinkInput(RingLink<T>& link, const RunState& state) noexcept : link_(link), state_(state) {}
  LinkInput(const LinkInput&) = delete;
  LinkInput& operator=(const LinkInput&) = delete;
  ~LinkInput() override {
    if (held_ != RingLinkCore::kEnd) link_.release(held_);
  }

 private:
  T* pull() override {
    if (held_ != RingLinkCore::kEnd) link_.release(std::exchange(held_, RingLinkCore::kEnd));
    const std::uint32_t slot = link_.take(state_);
    if (slot == RingLinkCore::kEnd) return nullptr;
    held_ = slot;
    return &link_.at(slot);
  }

  RingLink<T>& link_;
  const RunState& state_;
  std::uint32_t held_ = RingLinkCore::kEnd;
};

}  // namespace plumb::detail
