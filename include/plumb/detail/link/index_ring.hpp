#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/index_ring.hpp: a bounded lock-free MPMC queue of slot indices, laid out in one
// block without pointers so that it can live in shared memory.

#include <plumb/detail/core/cache_line.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>

namespace plumb::detail {

// Dmitry Vyukov's bounded MPMC queue, specialised to 32-bit slot indices: each cell carries a
// sequence number that says whose turn it is, so producers and consumers only contend on their
// own position counter.
//
// Cell c (position p, c = p & mask_) cycles through:
//   sequence == p          free for the producer that claims position p
//   sequence == p + 1      holds a value for the consumer that claims position p
//   sequence == p + size   free again, for the producer of position p + size
//
// Invariants:
//   R1: 0 <= enqueue_pos_ - dequeue_pos_ <= size (claimed positions; a claimed cell may still be
//       mid-write or mid-read).
//   R2: positions only grow; 64-bit counters never wrap in practice (2^64 operations).
//   R3: a cell's value is written only by the producer that claimed its position (CAS on
//       enqueue_pos_), read only by the consumer that claimed it (CAS on dequeue_pos_).
// Written by: any producer (enqueue_pos_, cell value, cell sequence -> p + 1), any consumer
// (dequeue_pos_, cell sequence -> p + size).
//
// In plumb the queue never overflows: only `capacity` slot indices exist and each is in at most
// one ring at a time. A try_* failure therefore means "empty", or "a peer is mid-operation on
// the cell", and callers wait on an Event.
class IndexRing {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  // The cells of a ring for `capacity` indices: a power of two, and at least 2. With one cell,
  // "holds the value of position p" and "free for the producer of position p + 1" would be the
  // same sequence number (p + 1), so a push into the full ring would overwrite its value.
  static std::size_t cells_for(std::size_t capacity) noexcept {
    return std::bit_ceil(std::max<std::size_t>(capacity, 2));
  }

  // Bytes for a ring that holds up to cells_for(capacity) indices.
  static std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(IndexRing) + cells_for(capacity) * sizeof(Cell);
  }

  // Builds an empty ring in `memory` (at least bytes_for(capacity) bytes, 64-byte aligned).
  static IndexRing* create(void* memory, std::size_t capacity) noexcept {
    return new (memory) IndexRing(cells_for(capacity));
  }

  // --- Any thread or process ---

  // Appends `index`; false if the cell is not free yet (full, or its consumer is mid-pop).
  bool try_push(std::uint32_t index) noexcept {
    const std::uint64_t position = try_claim();
    if (position == kNoPosition) return false;
    publish(position, index);
    return true;
  }

  // The two halves of try_push(), apart only in tests (a push preempted between them): claims
  // the next position, or returns kNoPosition if its cell is not free yet; publish() writes
  // `index` into the claimed position and hands it to the consumers.
  static constexpr std::uint64_t kNoPosition = UINT64_MAX;
  std::uint64_t try_claim() noexcept {
    // Relaxed: a stale position only makes the CAS below fail or the sequence check retry.
    std::uint64_t position = enqueue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      const Cell& cell = cells()[position & mask_];
      const std::uint64_t sequence = cell.sequence.load(std::memory_order_acquire);  // [sync R-P1] pairs with [sync R-C2]
      const auto difference = static_cast<std::int64_t>(sequence - position);
      if (difference == 0) {
        // Relaxed CAS: claiming the position publishes nothing; the cell's sequence does (R3).
        if (enqueue_pos_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
          return position;
        }
      } else if (difference < 0) {
        return kNoPosition;
      } else {
        position = enqueue_pos_.load(std::memory_order_relaxed);  // another producer moved on
      }
    }
  }
  void publish(std::uint64_t position, std::uint32_t index) noexcept {
    Cell& cell = cells()[position & mask_];
    cell.index = index;
    cell.sequence.store(position + 1, std::memory_order_release);  // [sync R-P2] publishes index; pairs with [sync R-C1]
  }

  // True if some position was claimed by a producer and not yet by a consumer. Racy: a hint.
  [[nodiscard]] bool was_nonempty() const noexcept {
    // Relaxed: a best-effort observation, used only to pass a wake-up on.
    return enqueue_pos_.load(std::memory_order_relaxed) > dequeue_pos_.load(std::memory_order_relaxed);
  }

  // Removes the oldest index; kNone if there is none ready (empty, or its producer is mid-push).
  // `position` (optional) receives the position popped (0, 1, 2, ... in push order), or on
  // failure the position looked at (after the last push: the number of pushes).
  std::uint32_t try_pop(std::uint64_t* position_out = nullptr) noexcept {
    std::uint64_t position = dequeue_pos_.load(std::memory_order_relaxed);  // see try_push
    for (;;) {
      Cell& cell = cells()[position & mask_];
      const std::uint64_t sequence = cell.sequence.load(std::memory_order_acquire);  // [sync R-C1] pairs with [sync R-P2]
      const auto difference = static_cast<std::int64_t>(sequence - (position + 1));
      if (difference == 0) {
        if (dequeue_pos_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
          const std::uint32_t index = cell.index;
          cell.sequence.store(position + mask_ + 1, std::memory_order_release);  // [sync R-C2] frees the cell; pairs with [sync R-P1]
          if (position_out != nullptr) *position_out = position;
          return index;
        }
      } else if (difference < 0) {
        if (position_out != nullptr) *position_out = position;
        return kNone;
      } else {
        position = dequeue_pos_.load(std::memory_order_relaxed);
      }
    }
  }

 private:
  struct Cell {
    std::atomic<std::uint64_t> sequence;
    std::uint32_t index;
  };
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                "plumb::detail::IndexRing: needs lock-free 64-bit atomics (shared memory)");

  explicit IndexRing(std::size_t size) noexcept : mask_(size - 1) {
    for (std::size_t i = 0; i < size; ++i) {
      new (&cells()[i]) Cell{};
      cells()[i].sequence.store(i, std::memory_order_relaxed);  // published by the creator's fork/thread start
    }
  }

  // The cells were constructed right after the header by the constructor (placement new).
  Cell* cells() noexcept {
    return std::launder(reinterpret_cast<Cell*>(reinterpret_cast<std::byte*>(this) + sizeof(IndexRing)));
  }

  // Producers and consumers each own a cache line for their position (no false sharing).
  alignas(kCacheLine) std::atomic<std::uint64_t> enqueue_pos_{0};
  alignas(kCacheLine) std::atomic<std::uint64_t> dequeue_pos_{0};
  alignas(kCacheLine) std::uint64_t mask_;
};

static_assert(sizeof(IndexRing) % kCacheLine == 0,
              "cells must start on a cache line after the header");

}  // namespace plumb::detail
