#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/wait.hpp: spin-then-block waiting on a futex, with a waiter count so that
// notifying costs no system call while nobody sleeps.

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace plumb::detail {

// Whether an Event may be waited on from several processes (it then lives in shared memory).
enum class Sharing { process_private, process_shared };

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// How long a waiter spins before it sleeps. Spinning only pays while the peer it waits for has
// a core of its own: with more runnable threads than cores a spinning waiter burns the very time
// slice its peer needs (docs/design/link.md; machine-limits: 3 spinners on 2 cores cost 2.67 ms
// per hop). So the budget is chosen per run from the number of workers and cores.
struct SpinPolicy {
  int iterations = 0;

  static SpinPolicy for_threads(std::size_t runnable_threads) noexcept {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    // ~4000 pauses are 50-100 us, a few wake-up costs; 64 pauses are ~1-2 us.
    return SpinPolicy{runnable_threads <= cores ? 4000 : 64};
  }
};

// A futex-backed event: waiters sleep until notified and re-check their condition; notifiers
// skip the system call when nobody sleeps.
//
// Invariants:
//   E1: epoch_ only grows (modulo 2^32); it changes in notify_*() and wake_all() only.
//   E2: waiters_ counts the threads between their announce (fetch_add) and retire (fetch_sub).
//   E3: a waiter sleeps only while epoch_ equals the value it read *after* announcing and
//       *before* its last check of the condition, so a notify that follows a condition change
//       either sees the waiter (E2) or changes epoch_ and the futex wait returns at once.
//
// The Dekker-style pairing: a notifier does  [make condition true]; fence(seq_cst); load waiters_
// and a waiter does  waiters_ += 1; fence(seq_cst); load epoch_; [check condition]. By the fence
// rules either the notifier sees the waiter, or the waiter's check sees the condition.
template <Sharing Share>
class Event {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                    std::atomic<std::uint32_t>::is_always_lock_free,
                "plumb::detail::Event: the futex word must be a plain lock-free 32-bit atomic");

 public:
  // Returns once `ready()` returned true. `ready` is called repeatedly (it may claim what it
  // waits for, e.g. pop from a ring, and must then return true).
  template <class Ready>
  void wait(Ready&& ready, SpinPolicy spin) {
    for (int i = 0; i < spin.iterations; ++i) {
      if (ready()) return;
      cpu_relax();
    }
    for (;;) {
      if (ready()) return;
      waiters_.fetch_add(1, std::memory_order_relaxed);  // ordered by the fence below (E2)
      std::atomic_thread_fence(std::memory_order_seq_cst);  // [sync E-W] pairs with [sync E-N]
      const std::uint32_t epoch = epoch_.load(std::memory_order_acquire);  // [sync E-R] pairs with [sync E-B]
      if (ready()) {
        waiters_.fetch_sub(1, std::memory_order_relaxed);  // only a hint for notifiers
        return;
      }
      futex_wait(epoch);  // returns at once if epoch_ moved on since the load (E3)
      waiters_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Call after making some waiter's condition true. Wakes one sleeper (if any).
  void notify_one() noexcept { notify(1); }
  // Call after making every waiter's condition true (end of stream).
  void notify_all() noexcept { notify(INT_MAX); }

  // Wakes every sleeper unconditionally (the run is stopping).
  void wake_all() noexcept {
    epoch_.fetch_add(1, std::memory_order_release);  // [sync E-B]
    futex_wake(INT_MAX);
  }

 private:
  void notify(int count) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // [sync E-N] pairs with [sync E-W]
    // Relaxed: the fence above orders this load after the condition change (E3).
    if (waiters_.load(std::memory_order_relaxed) == 0) return;
    epoch_.fetch_add(1, std::memory_order_release);  // [sync E-B] pairs with [sync E-R]
    futex_wake(count);
  }

  static constexpr int kPrivate = Share == Sharing::process_private ? FUTEX_PRIVATE_FLAG : 0;

  void futex_wait(std::uint32_t expected) noexcept {
    // EAGAIN (epoch moved on) and EINTR both mean: re-check the condition.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAIT | kPrivate,
              expected, nullptr, nullptr, 0);
  }
  void futex_wake(int count) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&epoch_), FUTEX_WAKE | kPrivate, count,
              nullptr, nullptr, 0);
  }

  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace plumb::detail
