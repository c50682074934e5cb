// SPDX-License-Identifier: MIT
// tests/event_test.cpp: detail::Event, the futex-based wait under every link and gate: no lost
// wake-up (a lost one hangs a test until its timeout), notify_all and wake_all reach every
// sleeper, for both kinds of futex. Run under ThreadSanitizer too.

#include <plumb/detail/sync/wait.hpp>

#include "support/futexes.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using plumb::detail::Event;
using plumb::detail::SpinPolicy;

using plumb::test::PrivateFutexes;
using plumb::test::SharedFutexes;

// Until `count` threads have said they are about to wait, then a little longer for them to
// reach the futex (the tests pass either way; this makes them exercise the sleeping path).
void until_waiting(const std::atomic<int>& waiting, int count) {
  while (waiting.load() < count) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace

TEMPLATE_TEST_CASE("Event: two threads hand a turn back and forth without losing a wake-up",
                   "[wait]", PrivateFutexes, SharedFutexes) {
  // The default (yields, a nap, the futex), pauses then the futex, the futex alone: every path
  // of wait() must see the notify.
  const SpinPolicy spin = GENERATE(SpinPolicy{}, SpinPolicy{64, 0, {}, 0, {}}, SpinPolicy{0, 0, {}, 0, {}});
  CAPTURE(spin.pauses, spin.yields);
  Event<TestType::value> ping;
  Event<TestType::value> pong;
  std::atomic<std::uint64_t> turn{0};  // even: the first thread's turn, odd: the second's
  constexpr std::uint64_t kRounds = 5'000;
  auto player = [&](std::uint64_t parity, Event<TestType::value>& mine,
                    Event<TestType::value>& theirs) {
    for (std::uint64_t round = 0; round < kRounds; ++round) {
      mine.wait([&] { return turn.load(std::memory_order_acquire) % 2 == parity; }, spin);
      turn.fetch_add(1, std::memory_order_release);
      theirs.notify_one();
    }
  };
  std::thread first(player, 0, std::ref(ping), std::ref(pong));
  std::thread second(player, 1, std::ref(pong), std::ref(ping));
  first.join();
  second.join();
  CHECK(turn.load() == 2 * kRounds);
}

TEMPLATE_TEST_CASE("Event: tokens handed to several sleeping consumers with notify_one are all "
                   "taken",
                   "[wait]", PrivateFutexes, SharedFutexes) {
  Event<TestType::value> event;
  std::atomic<int> tokens{0};
  std::atomic<bool> done{false};
  std::atomic<int> taken{0};
  constexpr int kConsumers = 4;
  constexpr int kTokens = 4'000;
  auto claim = [&] {
    int available = tokens.load(std::memory_order_acquire);
    while (available > 0) {
      if (tokens.compare_exchange_weak(available, available - 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  };
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      for (;;) {
        bool got = false;
        event.wait(
            [&] {
              got = claim();
              if (got || !done.load(std::memory_order_acquire)) return got;
              got = claim();  // every token was added before `done`: a last look decides
              return true;
            },
            SpinPolicy{});
        if (!got) return;
        taken.fetch_add(1);
      }
    });
  }
  for (int t = 0; t < kTokens; ++t) {
    tokens.fetch_add(1, std::memory_order_release);
    event.notify_one();
  }
  done.store(true, std::memory_order_release);
  event.notify_all();
  for (std::thread& consumer : consumers) consumer.join();
  CHECK(taken.load() == kTokens);
  CHECK(tokens.load() == 0);
}

TEMPLATE_TEST_CASE("Event: notify_all wakes every sleeper, and wake_all wakes them to see a stop",
                   "[wait]", PrivateFutexes, SharedFutexes) {
  Event<TestType::value> event;
  std::atomic<bool> ready{false};
  std::atomic<bool> stop{false};
  std::atomic<int> waiting{0};
  std::atomic<int> woken{0};
  constexpr int kWaiters = 4;
  const bool by_stop = GENERATE(false, true);
  CAPTURE(by_stop);
  std::vector<std::thread> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&] {
      waiting.fetch_add(1);
      event.wait([&] { return ready.load(std::memory_order_acquire) ||
                              stop.load(std::memory_order_relaxed); },
                 SpinPolicy{});
      woken.fetch_add(1);
    });
  }
  until_waiting(waiting, kWaiters);
  CHECK(woken.load() == 0);
  if (by_stop) {
    stop.store(true, std::memory_order_relaxed);  // published by wake_all's release (E-B)
    event.wake_all();
  } else {
    ready.store(true, std::memory_order_release);
    event.notify_all();
  }
  for (std::thread& waiter : waiters) waiter.join();
  CHECK(woken.load() == kWaiters);
}
