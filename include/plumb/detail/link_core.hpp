#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link_core.hpp: LinkCore, the slot accounting every link shares: free and ready
// index rings, end of stream, waiting. One block without pointers, so that it can live in heap
// memory (threads) or in a shared mapping (processes).

#include <plumb/detail/index_ring.hpp>
#include <plumb/detail/run_state.hpp>
#include <plumb/detail/wait.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <thread>

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
//   L2: a slot holds a live packet exactly while its index is in the ready ring or in a
//       consumer's hands (the typed links, RingLink and ShmLink, keep this one).
//   L3: producers_left_ counts producer workers that have not called producer_done(); once it is
//       0 no index enters the ready ring again.
// Written by: producers (enqueue, return_slot, producer_done), consumers (recycle).
//
// Layout of the block: [LinkCore][free IndexRing][ready IndexRing], each part 64-byte aligned;
// the rings are found by offsets from `this`, never by pointers (the block may be mapped in
// several processes).
template <Sharing Share>
class LinkCore {
 public:
  static constexpr std::uint32_t kEnd = IndexRing::kNone;

  // Bytes for the block of a link with `capacity` slots.
  static std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(LinkCore) + 2 * ring_bytes(capacity);
  }

  // Builds a link in `memory` (bytes_for(capacity) bytes, 64-byte aligned) with every slot free.
  static LinkCore* create(void* memory, std::size_t capacity, std::size_t producers) noexcept {
    return new (memory) LinkCore(capacity, producers);
  }

  LinkCore(const LinkCore&) = delete;
  LinkCore& operator=(const LinkCore&) = delete;

  // --- Producer API: any worker of the producing stage -----------------------------------

  // Waits for a free slot: the right to build one packet. Throws Stopped once the run stops.
  std::uint32_t acquire_slot(const RunState& state) {
    std::uint32_t slot = free_ring().try_pop();
    if (slot != kEnd) return slot;
    free_event_.wait(
        [&] {
          if (state.stopping()) return true;
          slot = free_ring().try_pop();
          return slot != kEnd;
        },
        SpinPolicy{});
    if (slot == kEnd) throw Stopped{};
    return slot;
  }

  // Queues `slot`, which now holds a packet, for a consumer.
  void enqueue(std::uint32_t slot, const RunState& state) noexcept {
    push(ready_ring(), slot, state);
    ready_event_.notify_one();
  }

  // Gives back a slot from acquire_slot() that was not filled (the generator ended or threw).
  void return_slot(std::uint32_t slot, const RunState& state) noexcept {
    push(free_ring(), slot, state);
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
    std::uint32_t slot = ready_ring().try_pop();
    if (slot != kEnd) return slot;
    bool ended = false;
    ready_event_.wait(
        [&] {
          if (state.stopping()) return true;
          slot = ready_ring().try_pop();
          if (slot != kEnd) return true;
          // [sync L-E2] pairs with [sync L-E1]: seeing 0 means every push happened before, so
          // one more pop decides between "a packet" and "the end".
          if (producers_left_.load(std::memory_order_acquire) != 0) return false;
          slot = ready_ring().try_pop();
          ended = slot == kEnd;
          return true;
        },
        SpinPolicy{});
    if (slot == kEnd && !ended) throw Stopped{};
    // A consumer woken for a later push can find the head cell still mid-push and sleep again,
    // leaving that later packet to nobody; passing the wake-up on keeps consumers busy while
    // the ring has packets.
    if (slot != kEnd && ready_ring().was_nonempty()) ready_event_.notify_one();
    return slot;
  }

  // Frees `slot` (its packet already destroyed) for a producer.
  void recycle(std::uint32_t slot, const RunState& state) noexcept {
    push(free_ring(), slot, state);
    free_event_.notify_one();
  }

  // Takes every index still queued (after all workers have finished: error paths), so that
  // the typed link can destroy those packets (L2).
  template <class Visit>
  void drain(Visit&& visit) noexcept {
    for (std::uint32_t slot = ready_ring().try_pop(); slot != kEnd; slot = ready_ring().try_pop()) {
      visit(slot);
    }
  }

  // --- Any thread ----------------------------------------------------------------------------

  // Wakes every waiter so that it sees the run stopping.
  void wake_all() noexcept {
    free_event_.wake_all();
    ready_event_.wake_all();
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  LinkCore(std::size_t capacity, std::size_t producers) noexcept
      : producers_left_(producers), capacity_(capacity), ring_bytes_(ring_bytes(capacity)) {
    IndexRing::create(ring_memory(0), capacity);
    IndexRing::create(ring_memory(1), capacity);
    for (std::uint32_t slot = 0; slot < capacity; ++slot) free_ring().try_push(slot);
  }

  static std::size_t ring_bytes(std::size_t capacity) noexcept {
    return (IndexRing::bytes_for(capacity) + kCacheLine - 1) / kCacheLine * kCacheLine;
  }
  std::byte* ring_memory(std::size_t which) noexcept {
    return reinterpret_cast<std::byte*>(this) + sizeof(LinkCore) + which * ring_bytes_;
  }
  IndexRing& free_ring() noexcept { return *std::launder(reinterpret_cast<IndexRing*>(ring_memory(0))); }
  IndexRing& ready_ring() noexcept { return *std::launder(reinterpret_cast<IndexRing*>(ring_memory(1))); }

  // Pushing never fails for lack of room (only `capacity` indices exist, L1); it can only find
  // its cell still being read by a consumer preempted between its claim and its release, which
  // finishes in a few instructions once it runs again. So: yield a few times, then back off
  // with sleeps from 1 us doubling to 1 ms, so that a peer that is not scheduled (CPU
  // throttling, a lower priority) is waited for without burning a core. Across processes that
  // peer may have died in between, wedging the cell for good; the run is then failing (the
  // supervisor saw the death), so once it stops the push gives up: nobody will read the ring.
  static void push(IndexRing& ring, std::uint32_t slot, const RunState& state) noexcept {
    for (int attempt = 0; !ring.try_push(slot); ++attempt) {
      if (attempt < 16) {
        std::this_thread::yield();
        continue;
      }
      if (Share == Sharing::process_shared && state.stopping()) return;
      std::this_thread::sleep_for(std::chrono::microseconds(1 << std::min(attempt - 16, 10)));
    }
  }

  alignas(kCacheLine) std::atomic<std::uint64_t> producers_left_;
  alignas(kCacheLine) Event<Share> free_event_;
  alignas(kCacheLine) Event<Share> ready_event_;
  alignas(kCacheLine) std::uint64_t capacity_;
  std::uint64_t ring_bytes_;
};

static_assert(sizeof(LinkCore<Sharing::process_private>) % kCacheLine == 0,
              "the rings must start on a cache line after the LinkCore header");

}  // namespace plumb::detail
