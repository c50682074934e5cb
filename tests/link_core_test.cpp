// SPDX-License-Identifier: MIT
// tests/link_core_test.cpp: detail::LinkCore, the slot accounting of every link, on both of its
// paths (one producer and one consumer: the "single" path; otherwise the index rings) and with
// both kinds of futex: every packet exactly once, in order where the design promises it, never
// more than `capacity` slots out, the end of the stream, and stopping. The packets are plain
// (non-atomic) memory, so under ThreadSanitizer these tests also check that the link orders a
// packet's writes before its reads.

#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/sync/wait.hpp>

#include "support/futexes.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace plumb::detail {

// The test's way into a LinkCore (link_core.hpp declares it): a push stalled between its claim
// and its publish, as when its thread is preempted there.
template <Sharing S>
struct LinkCoreProbe {
  static IndexRing& free_ring(LinkCore<S>& core) noexcept { return core.free_ring(); }
  static void notify_free(LinkCore<S>& core) noexcept { core.free_event_.notify_one(); }
};

}  // namespace plumb::detail

namespace {

using plumb::detail::kCacheLine;
using plumb::detail::RunState;
using plumb::detail::StopFlag;
using plumb::detail::Sharing;
using plumb::detail::Stopped;

using plumb::test::PrivateFutexes;
using plumb::test::SharedFutexes;

// A LinkCore in its own aligned block, with the packets beside it (plain memory).
template <Sharing S>
struct Link {
  using Core = plumb::detail::LinkCore<S>;
  static constexpr std::uint32_t kEnd = Core::kEnd;

  Link(std::size_t capacity, std::size_t producers, std::size_t consumers)
      : block(static_cast<std::byte*>(
            ::operator new(Core::bytes_for(capacity), std::align_val_t{kCacheLine}))),
        core(*Core::create(block.get(), capacity, producers, consumers)),
        packets(capacity) {}

  struct Free {
    void operator()(std::byte* memory) const noexcept {
      ::operator delete(memory, std::align_val_t{kCacheLine});
    }
  };
  struct Packet {
    std::uint64_t producer = 0;
    std::uint64_t number = 0;
  };

  std::unique_ptr<std::byte, Free> block;
  Core& core;
  std::vector<Packet> packets;
};

void fail(RunState& state) {
  state.fail(std::make_exception_ptr(std::runtime_error("stop the test run")), std::nullopt);
}

}  // namespace

TEMPLATE_TEST_CASE("LinkCore: every packet arrives exactly once, each producer's in order for "
                   "one consumer, with at most capacity slots out",
                   "[link]", PrivateFutexes, SharedFutexes) {
  using L = Link<TestType::value>;
  struct Shape {
    std::size_t producers, consumers;
  };
  const Shape shape = GENERATE(Shape{1, 1}, Shape{1, 3}, Shape{2, 1}, Shape{3, 2});
  const std::size_t capacity = GENERATE(1, 3, 4);  // 3: the single path wraps mid-ring
  CAPTURE(shape.producers, shape.consumers, capacity);
  constexpr std::uint64_t kPerProducer = 3'000;

  L link(capacity, shape.producers, shape.consumers);
  RunState state;
  const StopFlag stop = state.stop_flag();
  std::vector<std::atomic<int>> seen(shape.producers * kPerProducer);
  std::atomic<int> out_of_order{0};
  std::atomic<int> out{0};  // slots acquired and not yet recycled
  std::atomic<int> most_out{0};
  std::atomic<std::size_t> ended{0};
  std::vector<std::uint64_t> positions;  // one consumer only

  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < shape.producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint64_t n = 0; n < kPerProducer; ++n) {
        const std::uint32_t slot = link.core.acquire_slot(stop);
        const int now = out.fetch_add(1) + 1;
        int most = most_out.load();
        while (now > most && !most_out.compare_exchange_weak(most, now)) {
        }
        link.packets[slot] = {p, n};
        link.core.enqueue(slot, stop);
      }
      link.core.producer_done();
    });
  }
  for (std::size_t c = 0; c < shape.consumers; ++c) {
    threads.emplace_back([&] {
      std::vector<std::int64_t> last(shape.producers, -1);
      for (;;) {
        std::uint64_t position = 0;
        const std::uint32_t slot = link.core.take(stop, nullptr, &position);
        if (shape.consumers == 1) positions.push_back(position);
        if (slot == L::kEnd) break;
        const auto packet = link.packets[slot];
        if (packet.producer >= shape.producers || packet.number >= kPerProducer) {
          out_of_order.fetch_add(1);  // corrupt: count it instead of indexing out of bounds
          out.fetch_sub(1);
          link.core.recycle(slot, stop);
          continue;
        }
        seen[packet.producer * kPerProducer + packet.number].fetch_add(1);
        const auto number = static_cast<std::int64_t>(packet.number);
        if (number <= last[packet.producer]) out_of_order.fetch_add(1);
        last[packet.producer] = number;
        out.fetch_sub(1);
        link.core.recycle(slot, stop);
      }
      ended.fetch_add(1);
    });
  }
  for (std::thread& thread : threads) thread.join();

  CHECK(ended.load() == shape.consumers);  // every consumer saw the end
  int wrong = 0;
  for (const std::atomic<int>& count : seen) wrong += count.load() != 1 ? 1 : 0;
  CHECK(wrong == 0);
  // Several consumers may finish one producer's packets in another order; one may not.
  if (shape.consumers == 1) {
    CHECK(out_of_order.load() == 0);
    // Positions number the packets in the order they were queued; at the end, the count.
    REQUIRE(positions.size() == shape.producers * kPerProducer + 1);
    for (std::size_t i = 0; i < positions.size(); ++i) REQUIRE(positions[i] == i);
  }
  CHECK(most_out.load() <= static_cast<int>(capacity));
  CHECK(out.load() == 0);
}

TEMPLATE_TEST_CASE("LinkCore: stopping wakes a consumer waiting on an empty link and a producer "
                   "waiting on a full one",
                   "[link]", PrivateFutexes, SharedFutexes) {
  using L = Link<TestType::value>;
  const std::size_t workers = GENERATE(1, 2);  // the single path, then the rings
  CAPTURE(workers);
  // `full` (capacity 1, one packet queued) makes the producers wait, `empty` the consumers.
  L full(1, workers, workers);
  L empty(4, workers, workers);
  RunState state;
  const StopFlag stop = state.stop_flag();
  state.on_stop([&] {
    full.core.wake_all();
    empty.core.wake_all();
  });
  full.core.enqueue(full.core.acquire_slot(stop), stop);

  std::atomic<int> waiting{0};
  std::atomic<int> stopped{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      waiting.fetch_add(1);
      try {
        (void)full.core.acquire_slot(stop);
      } catch (const Stopped&) {
        stopped.fetch_add(1);
      }
    });
    threads.emplace_back([&] {
      waiting.fetch_add(1);
      try {
        (void)empty.core.take(stop);
      } catch (const Stopped&) {
        stopped.fetch_add(1);
      }
    });
  }
  while (waiting.load() < static_cast<int>(2 * workers)) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let them reach their futexes
  fail(state);
  for (std::thread& thread : threads) thread.join();  // a lost wake-up hangs here (ctest timeout)
  CHECK(stopped.load() == static_cast<int>(2 * workers));
}

TEMPLATE_TEST_CASE("LinkCore: once stopped, take throws with packets queued, acquire_slot on a "
                   "full link too, and drain hands back exactly the queued ones",
                   "[link]", PrivateFutexes, SharedFutexes) {
  using L = Link<TestType::value>;
  const std::size_t workers = GENERATE(1, 2);
  CAPTURE(workers);
  L link(3, workers, workers);
  RunState state;
  const StopFlag stop = state.stop_flag();
  std::vector<std::uint32_t> queued;
  auto queue = [&](std::uint64_t n) {
    const std::uint32_t slot = link.core.acquire_slot(stop);
    link.packets[slot] = {0, n};
    link.core.enqueue(slot, stop);
    queued.push_back(slot);
  };
  queue(0);
  queue(1);
  // A slot taken and handed back unfilled (a generator that ended) is not queued.
  link.core.return_slot(link.core.acquire_slot(stop), stop);
  queue(2);  // the link is full now
  fail(state);
  CHECK_THROWS_AS(link.core.take(stop), Stopped);
  CHECK_THROWS_AS(link.core.acquire_slot(stop), Stopped);  // no waiting for room once stopped
  std::vector<std::uint32_t> drained;
  link.core.drain([&](std::uint32_t slot) { drained.push_back(slot); });
  CHECK(drained == queued);  // in queue order
  std::vector<std::uint64_t> numbers;
  for (std::uint32_t slot : drained) numbers.push_back(link.packets[slot].number);
  CHECK(numbers == std::vector<std::uint64_t>{0, 1, 2});
}

TEMPLATE_TEST_CASE("LinkCore: a stream without packets ends for every consumer", "[link]",
                   PrivateFutexes, SharedFutexes) {
  using L = Link<TestType::value>;
  const std::size_t workers = GENERATE(1, 4);  // producers and consumers: both paths
  CAPTURE(workers);
  L link(2, workers, workers);
  RunState state;
  const StopFlag stop = state.stop_flag();
  std::atomic<std::size_t> ended{0};
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < workers; ++c) {
    threads.emplace_back([&] {
      std::uint64_t position = 99;
      if (link.core.take(stop, nullptr, &position) == L::kEnd && position == 0) ended.fetch_add(1);
    });
  }
  for (std::size_t p = 0; p < workers; ++p) link.core.producer_done();  // the last one ends it
  for (std::thread& thread : threads) thread.join();
  CHECK(ended.load() == workers);
}

// L4: seven producers sleep in acquire_slot on a link with no free slot. A consumer's recycle
// claims the free ring's head position and stalls before publishing it (preempted); 16 more
// recycles follow, and their wake-ups find the head unpublished (the ring pops in order), so
// each woken producer sleeps again. Once the head is published, its one notify must reach every
// producer: the one that gets a slot passes the wake-up on. Without that, one producer ran and
// six slept beside 16 free slots for good (a hang seen in the stress harness, under TSan).
TEMPLATE_TEST_CASE("LinkCore: free slots queued behind a stalled recycle reach every waiting producer",
                   "[link]", PrivateFutexes, SharedFutexes) {
  using L = Link<TestType::value>;
  using Probe = plumb::detail::LinkCoreProbe<TestType::value>;
  constexpr std::size_t kCapacity = 17;
  constexpr int kProducers = 7;
  L link(kCapacity, kProducers, 4);
  RunState state;
  const StopFlag stop = state.stop_flag();
  state.on_stop([&] { link.core.wake_all(); });
  std::vector<std::uint32_t> held;
  for (std::size_t i = 0; i < kCapacity; ++i) held.push_back(link.core.acquire_slot(stop));

  std::atomic<int> started{0};
  std::atomic<int> served{0};
  std::vector<std::thread> producers;
  for (int i = 0; i < kProducers; ++i) {
    producers.emplace_back([&] {
      started.fetch_add(1);
      try {
        (void)link.core.acquire_slot(stop);
        served.fetch_add(1);
      } catch (const Stopped&) {
      }
    });
  }
  while (started.load() < kProducers) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // all asleep on the futex

  plumb::detail::IndexRing& free_ring = Probe::free_ring(link.core);
  const std::uint64_t stalled = free_ring.try_claim();  // the recycle preempted after its claim
  REQUIRE(stalled != plumb::detail::IndexRing::kNoPosition);
  for (std::size_t i = 1; i < kCapacity; ++i) {
    link.core.recycle(held[i], stop);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the woken one sleeps again
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(served.load() == 0);  // nothing pops past an unpublished head

  free_ring.publish(stalled, held[0]);  // the stalled recycle runs on: publish, notify
  Probe::notify_free(link.core);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (served.load() < kProducers && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(served.load() == kProducers);
  fail(state);  // wakes any producer still asleep (the failure above), so that the test ends
  for (std::thread& thread : producers) thread.join();
}
