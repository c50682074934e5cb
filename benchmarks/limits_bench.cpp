// SPDX-License-Identifier: MIT
// benchmarks/limits_bench.cpp: what this machine allows any link, measured by the same suite:
// copying a 40 MB message, and handing small messages from one thread to another through the
// leanest lock-free ring there is (one producer, one consumer, cached indices, spinning).

#include "registry.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace bench {
namespace {

void memcpy_40mb(benchmark::State& state) {
  const std::size_t bytes = BigWork::bytes;
  std::vector<char> from(bytes, 1);
  std::vector<char> to(bytes, 0);  // both touched first: a copy, not page faults
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), bytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

// A single-producer single-consumer ring of Small messages.
//
// Invariants: head_ (written by the consumer only) <= tail_ (written by the producer only)
// <= head_ + kCapacity; slots [head_, tail_) hold messages the consumer has not read.
// Sync pairs: the producer's release store of tail_ / the consumer's acquire load of it (the
// message is written before it is published); the consumer's release store of head_ / the
// producer's acquire load of it (the slot is read before it is reused). Each side caches the
// other's index and reloads it only when the ring looks full or empty.
class SpscRing {
 public:
  static constexpr std::uint64_t kCapacity = 1024;

  void push(const Small& message) {
    while (tail_local_ - head_cache_ == kCapacity) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail_local_ - head_cache_ == kCapacity) pause(producer_spins_);
    }
    slots_[tail_local_ % kCapacity] = message;
    tail_.store(++tail_local_, std::memory_order_release);
  }

  Small pop() {
    while (head_local_ == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head_local_ == tail_cache_) pause(consumer_spins_);
    }
    Small message = slots_[head_local_ % kCapacity];
    head_.store(++head_local_, std::memory_order_release);
    return message;
  }

 private:
  // Two threads on two cores: spinning is right here, but a bounded spin still yields the core
  // now and then in case the peer was descheduled.
  static void pause(std::uint64_t& spins) {
    if (++spins % 4096 == 0) std::this_thread::yield();
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  alignas(64) std::atomic<std::uint64_t> tail_{0};
  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::uint64_t tail_local_ = 0;  // producer's
  std::uint64_t head_cache_ = 0;
  std::uint64_t producer_spins_ = 0;
  alignas(64) std::uint64_t head_local_ = 0;  // consumer's
  std::uint64_t tail_cache_ = 0;
  std::uint64_t consumer_spins_ = 0;
  alignas(64) Small slots_[kCapacity];
};

void spsc_handoff(benchmark::State& state) {
  auto ring = std::make_unique<SpscRing>();
  for (auto _ : state) {
    std::int64_t sum = 0;
    std::thread consumer([&] {
      for (std::int64_t i = 0; i < SmallWork::count; ++i) sum += SmallWork::digest(ring->pop());
    });
    for (std::int64_t id = 0; id < SmallWork::count; ++id) {
      Small message = SmallWork::make(id);
      SmallWork::bump(message);
      ring->push(message);
    }
    consumer.join();
    if (sum != expected_checksum<SmallWork>()) throw std::runtime_error("spsc: wrong checksum");
  }
  state.SetItemsProcessed(state.iterations() * SmallWork::count);
  state.SetBytesProcessed(state.iterations() * SmallWork::count * SmallWork::bytes);
}

}  // namespace

void register_limits() {
  add("limits/memcpy_40MB", false, memcpy_40mb);
  add("limits/spsc_handoff_small", true, spsc_handoff);
}

}  // namespace bench
