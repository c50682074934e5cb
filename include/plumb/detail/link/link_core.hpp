#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/link_core.hpp: LinkCore, the slot accounting every link shares: free and ready
// index rings, end of stream, waiting. One block without pointers, so that it can live in heap
// memory (threads) or in a shared mapping (processes).

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/link/index_ring.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/wait.hpp>

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
// "packets in flight" of a stage's .in_flight()). See docs/design/link.md.
//
// Invariants:
//   L1: (ring path) each slot index is in exactly one place: the free ring, the ready ring, or
//       the hands of one producer or one consumer. The single path (below) leaves the rings
//       unused and follows S1-S3 instead.
//   L2: a slot holds a live packet exactly while its index is in the ready ring or in a
//       consumer's hands (the typed links, RingLink and ShmLink, keep this one).
//   L3: producers_left_ counts producer workers that have not called producer_done(); once it is
//       0 no index enters the ready ring again.
//   L4: (ring path) no index waits in a ring while a worker sleeps for one: each push notifies
//       one waiter, and a waiter that got an index after waiting notifies the next while the
//       ring looks non-empty (a push's notify can be spent on a waiter that found an earlier
//       position still mid-push; the pass-on makes it good once that one is published).
// Written by: producers (enqueue, return_slot, producer_done), consumers (recycle).
//
// A link with one producer worker and one consumer worker (the common case) skips the index
// rings: slots are used in turn, and two sequence numbers do the accounting (the "single" path):
//   S1: tail_ counts the packets the producer has queued, head_ those the consumer has released;
//       head_ <= tail_ <= head_ + capacity. Packet n lives in slot n % capacity.
//   S2: only the producer writes tail_ and its own cursor (producer_*), only the consumer writes
//       head_ and its own cursor (consumer_*); each caches the other's counter and reloads it
//       only when the link looks full (producer) or empty (consumer).
//   S3: the consumer holds at most one packet (it releases before it takes), and the producer
//       builds at most one (it acquires, then enqueues or returns, before acquiring again).
// Sync pairs: [sync S-T1] (producer's release store of tail_) / [sync S-T2] (consumer's acquire
// load): the packet is written before the consumer reads it. [sync S-H1] (consumer's release
// store of head_) / [sync S-H2] (producer's acquire load): the consumer is done with a slot
// before the producer reuses it. A waiting side re-reads the counter under Event's protocol.
// Per packet this costs two plain release stores and the two notifies (one RMW each on an
// Event's line) instead of four contended CAS loops on shared ring cells, and keeps each
// counter's cache line written by one side only.
//
// Layout of the block: [LinkCore][free IndexRing][ready IndexRing], each part 64-byte aligned;
// the rings are found by offsets from `this`, never by pointers (the block may be mapped in
// several processes).
// Who queues a packet (LinkCore::enqueue()): a producer worker on its own thread, or a consumer
// running a lent producer's step (help_desk.hpp).
enum class MadeBy : std::uint8_t { producer, helper };

// Whom a consumer frees a slot for (LinkCore::recycle()): the producers, or the consumer itself,
// which holds the one producer's seat and will run its next step.
enum class FreedFor : std::uint8_t { producers, holder };

// Whether a link with one producer and one consumer worker may take the single path (S1-S3), or
// must keep the rings: a link whose producer may hold a slot while it takes another (plumb::Buffer
// slots, exec/slot_source.hpp), which the single path's "the next slot is the one after the
// last queued" cannot express.
enum class LinkPath : std::uint8_t { any, rings };

template <Sharing Share>
class LinkCore;

// Reaches a LinkCore's rings and events from tests/link_core_test.cpp (defined there only): how a
// test stalls a push between its claim and its publish.
template <Sharing Share>
struct LinkCoreProbe;

template <Sharing Share>
class LinkCore {
  friend struct LinkCoreProbe<Share>;

 public:
  static constexpr std::uint32_t kEnd = IndexRing::kNone;
  // take_until() and try_take(): no packet yet, not the end either; try_acquire_slot(): no room.
  static constexpr std::uint32_t kEmpty = IndexRing::kNone - 1;

  // Bytes for the block of a link with `capacity` slots.
  static std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(LinkCore) + 2 * ring_bytes(capacity);
  }

  // Builds a link in `memory` (bytes_for(capacity) bytes, 64-byte aligned) with every slot free,
  // for `producers` producer workers and `consumers` consumer workers.
  static LinkCore* create(void* memory, std::size_t capacity, std::size_t producers,
                          std::size_t consumers, LinkPath path = LinkPath::any) noexcept {
    return new (memory) LinkCore(capacity, producers, consumers, path);
  }

  LinkCore(const LinkCore&) = delete;
  LinkCore& operator=(const LinkCore&) = delete;

  // --- Producer API: any worker of the producing stage -----------------------------------

  // Waits for a free slot: the right to build one packet. Throws Stopped once the run stops.
  // `timer` (may be null) times the wait, if there is one.
  std::uint32_t acquire_slot(StopFlag stop, WaitTimer* timer = nullptr) {
    if (single_) return single_acquire(stop, timer);
    std::uint32_t slot = free_ring().try_pop();
    if (slot != kEnd) return slot;
    const WaitScope timing(timer);
    free_event_.wait(
        [&] {
          if (stop.stopping()) return true;
          slot = free_ring().try_pop();
          return slot != kEnd;
        },
        SpinPolicy{});
    if (slot == kEnd) throw Stopped{};
    // L4: a producer woken for a later recycle can find the free ring's head cell still
    // mid-push (its recycler preempted between claim and publish) and sleep again; the one
    // notify of that head's publish then wakes one waiter only. Whoever gets a slot after a
    // wait passes the wake-up on while more look free (as take_until() does for packets), so
    // the wake-ups spent on a stalled head are made good once it is published.
    if (free_ring().was_nonempty()) free_event_.notify_one();
    return slot;
  }

  // Queues `slot`, which now holds a packet, for a consumer. `by`: who made it; a helper that
  // is the link's one consumer wakes nobody (the consumer that would wait is itself).
  void enqueue(std::uint32_t slot, StopFlag stop, MadeBy by = MadeBy::producer) noexcept {
    const bool wake = by == MadeBy::producer || !one_consumer_;
    if (single_) {
      PLUMB_ASSERT(slot == producer_slot_, "plumb: single-producer link enqueued out of turn");
      producer_slot_ = next_slot(producer_slot_);
      tail_.store(++producer_tail_, std::memory_order_release);  // [sync S-T1]
      if (wake) ready_event_.notify_one();
      return;
    }
    push(ready_ring(), slot, stop);
    if (wake) ready_event_.notify_one();
  }

  // Gives back a slot from acquire_slot() that was not filled (the generator ended or threw).
  void return_slot(std::uint32_t slot, StopFlag stop) noexcept {
    if (single_) return;  // the slot was never counted (S1): the next acquire gets it again
    push(free_ring(), slot, stop);
    free_event_.notify_one();
    // A helping consumer may wait for room to run a lent producer, as in recycle().
    if (lent_) ready_event_.notify_one();
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
  // and the ring is drained. Throws Stopped once the run stops, even with packets queued: after
  // the first error a consumer must not go on working through up to in_flight more packets.
  // `timer` (may be null) times the wait, if there is one. `position` (may be null) receives
  // the packet's number in the order packets were queued (0, 1, 2, ...), or at the end the
  // number of packets (OrderGate's groups).
  std::uint32_t take(StopFlag stop, WaitTimer* timer = nullptr,
                     std::uint64_t* position = nullptr) {
    return take_until(stop, timer, position, [] { return false; });
  }

  // As take(), but also returns kEmpty once `wake()` is true (checked while waiting, like the
  // link's own condition; whoever makes it true calls wake_consumers()). A consumer that helps
  // the link's lent producers waits this way: for a packet, the end, or a parked producer it
  // can run (ring_link.hpp).
  template <class Wake>
  std::uint32_t take_until(StopFlag stop, WaitTimer* timer, std::uint64_t* position, Wake&& wake) {
    // One relaxed load per packet, like the fused path's check (chain.hpp); the queued packets
    // are destroyed by the link's drain after the workers are joined (L2).
    if (stop.stopping()) [[unlikely]] throw Stopped{};
    if (single_) {
      const std::uint32_t slot = single_take(stop, timer, wake);
      if (position != nullptr) *position = consumer_head_;
      return slot;
    }
    std::uint32_t slot = ready_ring().try_pop(position);
    if (slot != kEnd) return slot;
    bool ended = false;
    bool woken = false;
    const WaitScope timing(timer);
    ready_event_.wait(
        [&] {
          if (stop.stopping()) return true;
          slot = ready_ring().try_pop(position);
          if (slot != kEnd) return true;
          // [sync L-E2] pairs with [sync L-E1]: seeing 0 means every push happened before, so
          // one more pop decides between "a packet" and "the end".
          if (producers_left_.load(std::memory_order_acquire) != 0) {
            woken = wake();
            return woken;
          }
          slot = ready_ring().try_pop(position);
          ended = slot == kEnd;
          return true;
        },
        SpinPolicy{});
    if (woken) return kEmpty;
    if (slot == kEnd && !ended) throw Stopped{};
    // A consumer woken for a later push can find the head cell still mid-push and sleep again,
    // leaving that later packet to nobody; passing the wake-up on keeps consumers busy while
    // the ring has packets.
    if (slot != kEnd && ready_ring().was_nonempty()) ready_event_.notify_one();
    return slot;
  }

  // A queued packet's slot now, kEnd at the end of the stream, or kEmpty (neither yet): take()
  // without waiting. Throws Stopped once the run stops.
  std::uint32_t try_take(StopFlag stop, std::uint64_t* position) {
    if (stop.stopping()) [[unlikely]] throw Stopped{};
    if (single_) {
      bool ended = false;
      if (!consumer_has_packet()) {
        // [sync L-E2], as in take().
        if (producers_left_.load(std::memory_order_acquire) != 0) return kEmpty;
        ended = !consumer_has_packet();
      }
      if (position != nullptr) *position = consumer_head_;
      return ended ? kEnd : consumer_slot_;
    }
    std::uint32_t slot = ready_ring().try_pop(position);
    if (slot != kEnd) return slot;
    if (producers_left_.load(std::memory_order_acquire) != 0) return kEmpty;  // [sync L-E2]
    return ready_ring().try_pop(position);  // kEnd: the end (position: the number of packets)
  }

  // Frees `slot` (its packet already destroyed) for a producer. `for_whom`: on the single path,
  // a consumer that holds the one producer's seat (help_desk.hpp) wakes nobody: that producer's
  // home is not waiting for room, and takes the seat back (acquire, after this release) before
  // it looks for room again.
  void recycle(std::uint32_t slot, StopFlag stop, FreedFor for_whom = FreedFor::producers) noexcept {
    if (single_) {
      PLUMB_ASSERT(slot == consumer_slot_, "plumb: single-consumer link released out of turn");
      consumer_slot_ = next_slot(consumer_slot_);
      head_.store(++consumer_head_, std::memory_order_release);  // [sync S-H1]
      if (for_whom == FreedFor::producers) free_event_.notify_one();
      return;
    }
    push(free_ring(), slot, stop);
    free_event_.notify_one();
    // A helping consumer may wait for room to run a lent producer (take_until()).
    if (lent_) ready_event_.notify_one();
  }

  // Takes every index still queued (after all workers have finished: error paths), so that
  // the typed link can destroy those packets (L2).
  template <class Visit>
  void drain(Visit&& visit) noexcept {
    if (single_) {
      // Relaxed: every worker has been joined, which ordered their writes before this.
      const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
      for (std::uint64_t n = head_.load(std::memory_order_relaxed); n != tail; ++n) {
        visit(static_cast<std::uint32_t>(n % capacity_));
      }
      return;
    }
    for (std::uint32_t slot = ready_ring().try_pop(); slot != kEnd; slot = ready_ring().try_pop()) {
      visit(slot);
    }
  }

  // --- Lending (help_desk.hpp): the consumers run the producers' steps -----------------------

  // The link's producers may be lent (before any worker starts): a consumer's recycle() then
  // also wakes consumers that wait for room to run one (ring path; on the single path the one
  // consumer is the one that recycles).
  void set_lent() noexcept { lent_ = true; }

  // A free slot now, or kEmpty: what a helper takes before it runs a lent producer's step (H2).
  // On the single path only the owner of the producer seat may call it (H1: the producer's
  // cursor is its own).
  std::uint32_t try_acquire_slot() noexcept {
    if (single_) return producer_has_room() ? producer_slot_ : kEmpty;
    const std::uint32_t slot = free_ring().try_pop();
    return slot == kEnd ? kEmpty : slot;
  }

  // Whether a packet looks queued: a helper that just claimed a seat looks again before it runs
  // the step (ring_link.hpp, help()). The consumer's own view on the single path; on the ring,
  // a push under way counts.
  [[nodiscard]] bool ready_approx() noexcept {
    if (single_) return consumer_has_packet();
    return ready_ring().was_nonempty();
  }

  // Whether a slot looks free. Racy: a hint for a waiting helper, re-checked by
  // try_acquire_slot().
  [[nodiscard]] bool room_approx() noexcept {
    // Relaxed: a hint, as above.
    if (single_) return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed) < capacity_;
    return free_ring().was_nonempty();
  }

  // A producer was lent (parked): wakes a waiting consumer to run it.
  void wake_consumers() noexcept { ready_event_.notify_one(); }

  // --- Any thread ----------------------------------------------------------------------------

  // Wakes every waiter so that it sees the run stopping.
  void wake_all() noexcept {
    free_event_.wake_all();
    ready_event_.wake_all();
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // One producer worker and one consumer worker (the single path).
  [[nodiscard]] bool single() const noexcept { return single_; }
  [[nodiscard]] bool one_consumer() const noexcept { return one_consumer_; }

 private:
  LinkCore(std::size_t capacity, std::size_t producers, std::size_t consumers, LinkPath path) noexcept
      : producers_left_(producers),
        capacity_(capacity),
        ring_bytes_(ring_bytes(capacity)),
        single_(path == LinkPath::any && producers == 1 && consumers == 1),
        one_consumer_(consumers == 1) {
    IndexRing::create(ring_memory(0), capacity);
    IndexRing::create(ring_memory(1), capacity);
    for (std::uint32_t slot = 0; slot < capacity; ++slot) free_ring().try_push(slot);
  }

  [[nodiscard]] std::uint32_t next_slot(std::uint32_t slot) const noexcept {
    return slot + 1 == capacity_ ? 0 : slot + 1;
  }

  // --- The single path (S1-S3) ----------------------------------------------------------------

  [[nodiscard]] bool producer_has_room() noexcept {
    if (producer_tail_ - producer_head_cache_ < capacity_) return true;
    producer_head_cache_ = head_.load(std::memory_order_acquire);  // [sync S-H2]
    return producer_tail_ - producer_head_cache_ < capacity_;
  }

  std::uint32_t single_acquire(StopFlag stop, WaitTimer* timer) {
    if (producer_has_room()) return producer_slot_;
    // A second look after a pause before the wait is timed: a wait this short is not worth
    // two clock reads (it counts as busy).
    cpu_relax();
    if (producer_has_room()) return producer_slot_;
    bool room = false;
    const WaitScope timing(timer);
    free_event_.wait(
        [&] {
          if (stop.stopping()) return true;
          room = producer_has_room();
          return room;
        },
        SpinPolicy{});
    if (!room) throw Stopped{};
    return producer_slot_;
  }

  [[nodiscard]] bool consumer_has_packet() noexcept {
    if (consumer_head_ != consumer_tail_cache_) return true;
    consumer_tail_cache_ = tail_.load(std::memory_order_acquire);  // [sync S-T2]
    return consumer_head_ != consumer_tail_cache_;
  }

  template <class Wake>
  std::uint32_t single_take(StopFlag stop, WaitTimer* timer, Wake& wake) {
    if (consumer_has_packet()) return consumer_slot_;
    cpu_relax();  // a second look before a timed wait, as in single_acquire()
    if (consumer_has_packet()) return consumer_slot_;
    bool packet = false;
    bool ended = false;
    bool woken = false;
    const WaitScope timing(timer);
    ready_event_.wait(
        [&] {
          if (stop.stopping()) return true;
          packet = consumer_has_packet();
          if (packet) return true;
          // [sync L-E2]: seeing 0 means the producer's last enqueue happened before; one more
          // look decides between "a packet" and "the end".
          if (producers_left_.load(std::memory_order_acquire) != 0) {
            woken = wake();
            return woken;
          }
          packet = consumer_has_packet();
          ended = !packet;
          return true;
        },
        SpinPolicy{});
    if (packet) return consumer_slot_;
    if (ended) return kEnd;
    if (woken) return kEmpty;
    throw Stopped{};
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
  static void push(IndexRing& ring, std::uint32_t slot, StopFlag stop) noexcept {
    for (int attempt = 0; !ring.try_push(slot); ++attempt) {
      if (attempt < 16) {
        std::this_thread::yield();
        continue;
      }
      if (Share == Sharing::process_shared && stop.stopping()) return;
      std::this_thread::sleep_for(std::chrono::microseconds(1 << std::min(attempt - 16, 10)));
    }
  }

  alignas(kCacheLine) std::atomic<std::uint64_t> producers_left_;
  alignas(kCacheLine) Event<Share> free_event_;
  alignas(kCacheLine) Event<Share> ready_event_;
  alignas(kCacheLine) std::uint64_t capacity_;
  std::uint64_t ring_bytes_;
  bool single_;
  bool one_consumer_;
  bool lent_ = false;
  // The single path: each counter on a line of its own, each side's cursor on a line of its own.
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                "plumb: link counters must be lock-free to work in memory shared by processes");
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  alignas(kCacheLine) std::uint64_t producer_tail_ = 0;
  std::uint64_t producer_head_cache_ = 0;
  std::uint32_t producer_slot_ = 0;
  alignas(kCacheLine) std::uint64_t consumer_head_ = 0;
  std::uint64_t consumer_tail_cache_ = 0;
  std::uint32_t consumer_slot_ = 0;
};

static_assert(sizeof(LinkCore<Sharing::process_private>) % kCacheLine == 0,
              "the rings must start on a cache line after the LinkCore header");

}  // namespace plumb::detail
