// SPDX-License-Identifier: MIT
// tests/order_gate_test.cpp: detail::OrderGate, which puts an ordered stage's output back in the
// order of its input, driven as the runner drives it (OrderCursor, take_from) between two real
// LinkCores: the order and completeness under random timing with a window as small as 1, a
// parked packet leaving on its turn, and stopping a worker that waits for its turn. Run under
// ThreadSanitizer too.

#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/stats/tally.hpp>

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
#include <utility>
#include <vector>

namespace {

using plumb::detail::kCacheLine;
using plumb::detail::OrderCursor;
using plumb::detail::OrderGate;
using plumb::detail::OutputRef;
using plumb::detail::RunState;
using plumb::detail::StopFlag;
using plumb::detail::Sharing;
using plumb::detail::Stopped;
using plumb::detail::WaitTimer;
using Core = plumb::detail::LinkCore<Sharing::process_private>;

struct Free {
  void operator()(std::byte* memory) const noexcept {
    ::operator delete(memory, std::align_val_t{kCacheLine});
  }
};
using Block = std::unique_ptr<std::byte, Free>;
Block allocate(std::size_t bytes) {
  return Block(static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kCacheLine})));
}

struct Packet {
  std::uint64_t input = 0;  // the input it came from (its group)
  std::uint64_t part = 0;   // its place among that input's outputs
};

// A link: the core and its packets (plain memory, ordered by the core).
struct Link {
  Link(std::size_t capacity, std::size_t producers, std::size_t consumers)
      : block(allocate(Core::bytes_for(capacity))),
        core(*Core::create(block.get(), capacity, producers, consumers)),
        packets(capacity) {}
  Block block;
  Core& core;
  std::vector<Packet> packets;
};

// An ordered stage between `in` and `out` (whose capacity is the gate's window).
struct OrderedStage {
  OrderedStage(std::size_t in_capacity, std::size_t workers, std::size_t window)
      : in(in_capacity, 1, workers),
        out(window, workers, 1),
        gate_block(allocate(OrderGate::bytes_for(window))),
        gate(*OrderGate::create(gate_block.get(), window)) {}
  ~OrderedStage() { gate.~OrderGate(); }
  OrderedStage(const OrderedStage&) = delete;
  OrderedStage& operator=(const OrderedStage&) = delete;

  // Queues inputs 0 .. count-1 (packets numbered as their groups will be).
  void feed(std::uint64_t count, StopFlag stop) {
    for (std::uint64_t v = 0; v < count; ++v) {
      const std::uint32_t slot = in.core.acquire_slot(stop);
      in.packets[slot] = {v, 0};
      in.core.enqueue(slot, stop);
    }
  }

  // The worker of `cursor` takes its next input (its new group) and is done with it; returns
  // the input, or nothing at the end of the stream. (The runner keeps the input's slot until
  // its next take; the gate only sees the groups, so freeing it at once tests the same.)
  std::optional<std::uint64_t> take(OrderCursor& cursor, StopFlag stop) {
    WaitTimer* const no_timer = nullptr;
    const std::uint32_t slot = plumb::detail::take_next(in.core, stop, no_timer, &cursor);
    if (slot == Core::kEnd) return std::nullopt;
    const std::uint64_t input = in.packets[slot].input;
    in.core.recycle(slot, stop);
    return input;
  }

  // One output packet of the worker's current group (or trailing), as the runner's
  // produce_ordered() does it: wait for the turn if needed, take a slot, fill it, publish.
  void yield(OrderCursor& cursor, Packet packet, StopFlag stop) {
    if (cursor.has_group()) {
      gate.before_slot(cursor.group(), stop);
    } else {
      gate.before_trailing_slot(cursor.total(), stop);
    }
    const std::uint32_t slot = out.core.acquire_slot(stop);
    out.packets[slot] = packet;
    cursor.publish(slot, stop);
  }

  Link in;
  Link out;
  Block gate_block;
  OrderGate& gate;
};

// A tiny deterministic generator for the timing jitter.
struct Jitter {
  std::uint64_t state;
  void operator()() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto draw = (state >> 33) % 16;
    if (draw == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    } else if (draw < 4) {
      std::this_thread::yield();
    }
  }
};

void fail(RunState& state) {
  state.fail(std::make_exception_ptr(std::runtime_error("stop the test run")), std::nullopt);
}

}  // namespace

TEST_CASE("OrderGate: several workers' outputs leave in input order, whatever the timing",
          "[order]") {
  const std::size_t workers = GENERATE(2, 3);
  const std::size_t window = GENERATE(1, 2, 5);
  CAPTURE(workers, window);
  constexpr std::uint64_t kInputs = 1'500;
  OrderedStage stage(4, workers, window);
  RunState state;
  const StopFlag stop = state.stop_flag();

  // Input v yields v % 3 outputs (none, one, two); every worker yields one trailing packet
  // after its input ended, which leaves after every group.
  std::thread source([&] {
    stage.feed(kInputs, stop);
    stage.in.core.producer_done();
  });
  std::atomic<int> wrong_groups{0};  // Catch2's assertions are for the test's own thread
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      Jitter jitter{w + 1};
      OrderCursor cursor(stage.gate, OutputRef::of(stage.out.core));
      while (const std::optional<std::uint64_t> taken = stage.take(cursor, stop)) {
        const std::uint64_t input = *taken;
        if (cursor.group() != input) wrong_groups.fetch_add(1);  // its position is its group
        for (std::uint64_t part = 0; part < input % 3; ++part) {
          jitter();
          stage.yield(cursor, {input, part}, stop);
        }
        jitter();
      }
      stage.yield(cursor, {kInputs + w, 0}, stop);  // trailing
      cursor.finish(stop);
      stage.out.core.producer_done();
    });
  }
  std::vector<Packet> received;
  for (;;) {
    const std::uint32_t slot = stage.out.core.take(stop);
    if (slot == Core::kEnd) break;
    received.push_back(stage.out.packets[slot]);
    stage.out.core.recycle(slot, stop);
  }
  source.join();
  for (std::thread& thread : threads) thread.join();

  CHECK(wrong_groups.load() == 0);
  std::vector<Packet> expected;
  for (std::uint64_t v = 0; v < kInputs; ++v) {
    for (std::uint64_t part = 0; part < v % 3; ++part) expected.push_back({v, part});
  }
  REQUIRE(received.size() == expected.size() + workers);
  std::size_t misplaced = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (received[i].input != expected[i].input || received[i].part != expected[i].part) ++misplaced;
  }
  CHECK(misplaced == 0);
  std::vector<bool> trailing(workers, false);
  for (std::size_t i = expected.size(); i < received.size(); ++i) {
    REQUIRE(received[i].input >= kInputs);
    trailing[received[i].input - kInputs] = true;
  }
  CHECK(std::count(trailing.begin(), trailing.end(), true) == static_cast<long>(workers));
}

TEST_CASE("OrderGate: a later group's packet is parked until the earlier group completes",
          "[order]") {
  OrderedStage stage(4, 2, 4);
  RunState state;
  const StopFlag stop = state.stop_flag();
  stage.feed(2, stop);
  OrderCursor first(stage.gate, OutputRef::of(stage.out.core));
  OrderCursor second(stage.gate, OutputRef::of(stage.out.core));
  REQUIRE(stage.take(first, stop) == 0u);
  REQUIRE(stage.take(second, stop) == 1u);
  REQUIRE(first.group() == 0);  // a packet's position is its group
  REQUIRE(second.group() == 1);

  stage.yield(second, {1, 0}, stop);  // not its turn: parked, not queued

  // A second packet of group 1 waits for the turn (G2) ...
  std::atomic<bool> second_done{false};
  std::thread later([&] {
    stage.yield(second, {1, 1}, stop);
    second_done = true;
  });
  stage.yield(first, {0, 0}, stop);  // group 0's turn: queued at once
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(second_done.load());
  // ... until group 0 completes: its parked packet leaves first, then the waiter goes on.
  first.finish(stop);
  later.join();
  second.finish(stop);
  std::vector<Packet> received;
  for (int i = 0; i < 3; ++i) {
    const std::uint32_t slot = stage.out.core.take(stop);
    received.push_back(stage.out.packets[slot]);
    stage.out.core.recycle(slot, stop);
  }
  CHECK(received[0].input == 0);
  CHECK((received[1].input == 1 && received[1].part == 0));
  CHECK((received[2].input == 1 && received[2].part == 1));
}

TEST_CASE("OrderGate: stopping wakes a worker waiting for its turn, and its parked packet is "
          "drained",
          "[order]") {
  OrderedStage stage(4, 2, 4);
  RunState state;
  const StopFlag stop = state.stop_flag();
  state.on_stop([&] {
    stage.gate.wake_all();
    stage.in.core.wake_all();
    stage.out.core.wake_all();
  });
  stage.feed(2, stop);
  OrderCursor first(stage.gate, OutputRef::of(stage.out.core));
  OrderCursor second(stage.gate, OutputRef::of(stage.out.core));
  REQUIRE(stage.take(first, stop) == 0u);
  REQUIRE(stage.take(second, stop) == 1u);
  stage.yield(second, {1, 0}, stop);  // parked: group 0 (first) never completes

  std::atomic<bool> stopped{false};
  std::thread waiter([&] {
    try {
      stage.yield(second, {1, 1}, stop);
    } catch (const Stopped&) {
      stopped = true;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  fail(state);
  waiter.join();  // a lost wake-up hangs here (ctest timeout)
  CHECK(stopped.load());
  std::size_t parked = 0;
  stage.gate.drain_parked([&](std::uint32_t) { ++parked; });
  CHECK(parked == 1);
}
