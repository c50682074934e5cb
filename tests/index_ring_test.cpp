// SPDX-License-Identifier: MIT
// tests/index_ring_test.cpp: detail::IndexRing, the bounded MPMC queue of slot indices under
// every link: order, bounds, positions, and exactly-once delivery with several producers and
// consumers (run under ThreadSanitizer too).

#include <plumb/detail/link/index_ring.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <vector>

namespace {

using plumb::detail::IndexRing;
using plumb::detail::kCacheLine;

// A ring in its own aligned block, as links lay them out.
struct OwnedRing {
  explicit OwnedRing(std::size_t capacity)
      : block(static_cast<std::byte*>(::operator new(IndexRing::bytes_for(capacity),
                                                     std::align_val_t{kCacheLine}))),
        ring(IndexRing::create(block.get(), capacity)) {}

  struct Free {
    void operator()(std::byte* memory) const noexcept {
      ::operator delete(memory, std::align_val_t{kCacheLine});
    }
  };
  std::unique_ptr<std::byte, Free> block;
  IndexRing* ring;
};

}  // namespace

TEST_CASE("IndexRing: first in, first out, with each pop's position", "[link]") {
  OwnedRing owned(8);
  IndexRing& ring = *owned.ring;
  std::uint64_t position = 99;
  CHECK(ring.try_pop(&position) == IndexRing::kNone);
  CHECK(position == 0);
  CHECK_FALSE(ring.was_nonempty());
  for (std::uint32_t value : {5u, 3u, 7u}) REQUIRE(ring.try_push(value));
  CHECK(ring.was_nonempty());
  CHECK(ring.try_pop(&position) == 5);
  CHECK(position == 0);
  CHECK(ring.try_pop(&position) == 3);
  CHECK(position == 1);
  REQUIRE(ring.try_push(11));
  CHECK(ring.try_pop(&position) == 7);
  CHECK(position == 2);
  CHECK(ring.try_pop(&position) == 11);
  CHECK(position == 3);
  CHECK(ring.try_pop(&position) == IndexRing::kNone);
  CHECK(position == 4);  // the number of pushes so far
}

TEST_CASE("IndexRing: holds its capacity rounded up to a power of two (at least 2), no more, "
          "and wraps",
          "[link]") {
  const std::size_t capacity = GENERATE(0, 1, 2, 3, 4, 5, 64);
  CAPTURE(capacity);
  // One cell cannot tell "full" from "free" (cells_for): a ring of one (or none) holds two.
  const std::size_t size = capacity <= 1 ? 2 : std::bit_ceil(capacity);
  CHECK(IndexRing::cells_for(capacity) == size);
  const std::size_t cell = (IndexRing::bytes_for(4) - IndexRing::bytes_for(2)) / 2;
  CHECK(IndexRing::bytes_for(capacity) == sizeof(IndexRing) + size * cell);
  OwnedRing owned(capacity);
  IndexRing& ring = *owned.ring;
  for (int round = 0; round < 3; ++round) {  // the cells' sequence numbers go round
    for (std::uint32_t i = 0; i < size; ++i) REQUIRE(ring.try_push(i + 100 * static_cast<std::uint32_t>(round)));
    REQUIRE_FALSE(ring.try_push(999));  // full (a push that overwrote would wedge the pops)
    for (std::uint32_t i = 0; i < size; ++i) {
      REQUIRE(ring.try_pop() == i + 100 * static_cast<std::uint32_t>(round));
    }
    CHECK(ring.try_pop() == IndexRing::kNone);
  }
}

TEST_CASE("IndexRing: several producers and consumers deliver every value exactly once, each "
          "producer's in order",
          "[link]") {
  const int producers = GENERATE(1, 2, 3);
  const int consumers = GENERATE(1, 2, 3);
  CAPTURE(producers, consumers);
  const std::size_t capacity = GENERATE(1, 2, 16);  // the smallest rings too
  CAPTURE(capacity);
  constexpr std::uint32_t kPerProducer = 10'000;
  OwnedRing owned(capacity);
  IndexRing& ring = *owned.ring;

  // Value v = producer * kPerProducer + n. Each consumer records per producer the last n it
  // saw: positions are claimed in order, so one consumer sees one producer's values rising.
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(producers) * kPerProducer);
  std::atomic<std::uint32_t> received{0};
  std::atomic<int> out_of_order{0};
  const std::uint32_t total = static_cast<std::uint32_t>(producers) * kPerProducer;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t n = 0; n < kPerProducer; ++n) {
        const std::uint32_t value = static_cast<std::uint32_t>(p) * kPerProducer + n;
        while (!ring.try_push(value)) std::this_thread::yield();  // full: consumers drain it
      }
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
      while (received.load(std::memory_order_relaxed) < total) {
        const std::uint32_t value = ring.try_pop();
        if (value == IndexRing::kNone) {
          std::this_thread::yield();
          continue;
        }
        received.fetch_add(1, std::memory_order_relaxed);
        if (value >= total) {  // corrupt: count it instead of indexing out of bounds
          out_of_order.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        seen[value].fetch_add(1, std::memory_order_relaxed);
        const std::size_t producer = value / kPerProducer;
        const std::int64_t n = value % kPerProducer;
        if (n <= last[producer]) out_of_order.fetch_add(1, std::memory_order_relaxed);
        last[producer] = n;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(received.load() == total);
  CHECK(out_of_order.load() == 0);
  int wrong = 0;
  for (const std::atomic<int>& count : seen) wrong += count.load() != 1 ? 1 : 0;
  CHECK(wrong == 0);
  CHECK(ring.try_pop() == IndexRing::kNone);
}
